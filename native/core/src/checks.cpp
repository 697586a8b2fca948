// Argument validation shared by all backends. The TypeScript layer already checks types and
// lengths; these checks repeat the cheap ones (the core is a library of its own) and do the value
// checks that need a pass over the data (NaN/Inf, index ranges), off the JS thread.
#include <cmath>

#include "internal.h"

namespace salt {
namespace {

constexpr int64_t kMaxSolveNeighbours = 16384;

salt_status check_csr(int64_t n, const int32_t* offsets, const int32_t* indices, int64_t m,
                      int64_t max_list = INT32_MAX) {
  SALT_REQUIRE(offsets != nullptr, SALT_E_ARGUMENT, "offsets must not be null");
  SALT_REQUIRE(offsets[0] == 0, SALT_E_ARGUMENT, "offsets[0] must be 0, got %d", offsets[0]);
  for (int64_t i = 0; i < n; ++i) {
    SALT_REQUIRE(offsets[i + 1] >= offsets[i], SALT_E_ARGUMENT,
                 "offsets must be non-decreasing, but offsets[%lld] = %d < offsets[%lld] = %d",
                 static_cast<long long>(i + 1), offsets[i + 1], static_cast<long long>(i), offsets[i]);
    SALT_REQUIRE(offsets[i + 1] - offsets[i] <= max_list, SALT_E_ARGUMENT,
                 "token %lld has %d neighbours; at most %lld are supported", static_cast<long long>(i),
                 offsets[i + 1] - offsets[i], static_cast<long long>(max_list));
  }
  const int64_t nnz = offsets[n];
  SALT_REQUIRE(nnz == 0 || indices != nullptr, SALT_E_ARGUMENT, "indices must not be null");
  int64_t bad = -1;
  for (int64_t j = 0; j < nnz; ++j) {
    if (indices[j] < 0 || indices[j] >= m) {
      bad = j;
      break;
    }
  }
  SALT_REQUIRE(bad < 0, SALT_E_ARGUMENT, "indices[%lld] = %d is outside [0, %lld)", static_cast<long long>(bad),
               bad < 0 ? 0 : indices[bad], static_cast<long long>(m));
  return ok_status();
}

}  // namespace

salt_status check_topk(const salt_topk_args& a) {
  SALT_REQUIRE(a.n >= 0, SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
  SALT_REQUIRE(a.m >= 1, SALT_E_SHAPE, "base must have at least one row, got m = %lld", static_cast<long long>(a.m));
  SALT_REQUIRE(a.d >= 1, SALT_E_SHAPE, "d must be >= 1, got %lld", static_cast<long long>(a.d));
  SALT_REQUIRE(a.k >= 1 && a.k <= a.m, SALT_E_ARGUMENT, "k must be in [1, m = %lld], got %lld",
               static_cast<long long>(a.m), static_cast<long long>(a.k));
  SALT_REQUIRE(a.m <= INT32_MAX && a.d <= INT32_MAX, SALT_E_SHAPE, "m = %lld and d = %lld must not exceed 2^31 - 1",
               static_cast<long long>(a.m), static_cast<long long>(a.d));
  SALT_REQUIRE(a.tile_rows >= 0 && a.threads >= 0, SALT_E_ARGUMENT, "tile_rows and threads must be >= 0");
  SALT_REQUIRE(a.precision == 0 || a.precision == 1, SALT_E_ARGUMENT, "precision must be 0 (fp32) or 1 (tf32), got %d",
               a.precision);
  SALT_REQUIRE(a.base && (a.n == 0 || (a.queries && a.out_indices && a.out_scores)), SALT_E_ARGUMENT,
               "null buffer passed to topk_cosine");
  salt_status s = check_finite("queries", a.queries, a.n, a.d);
  if (s.code) return s;
  return check_finite("base", a.base, a.m, a.d);
}

salt_status check_sparsemax(const salt_sparsemax_args& a) {
  SALT_REQUIRE(a.n >= 0, SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
  SALT_REQUIRE(a.K >= 1, SALT_E_SHAPE, "K must be >= 1, got %lld", static_cast<long long>(a.K));
  SALT_REQUIRE(a.n == 0 || (a.scores && a.out_weights && a.out_support), SALT_E_ARGUMENT,
               "null buffer passed to sparsemax");
  return check_finite("scores", a.scores, a.n, a.K);
}

salt_status check_solve(const salt_solve_args& a) {
  SALT_REQUIRE(a.n >= 0, SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
  SALT_REQUIRE(a.m >= 1 && a.ht >= 1 && a.hs >= 1, SALT_E_SHAPE,
               "m, ht and hs must be >= 1, got m = %lld, ht = %lld, hs = %lld", static_cast<long long>(a.m),
               static_cast<long long>(a.ht), static_cast<long long>(a.hs));
  SALT_REQUIRE(a.m <= INT32_MAX && a.ht <= INT32_MAX && a.hs <= INT32_MAX, SALT_E_SHAPE,
               "m, ht and hs must not exceed 2^31 - 1");
  SALT_REQUIRE(std::isfinite(a.lambda) && a.lambda >= 0, SALT_E_ARGUMENT, "lambda must be a finite number >= 0, got %g",
               a.lambda);
  SALT_REQUIRE(!std::isnan(a.rcond) && a.rcond < 1, SALT_E_ARGUMENT, "rcond must be < 1 (negative = automatic), got %g",
               a.rcond);
  SALT_REQUIRE(a.threads >= 0, SALT_E_ARGUMENT, "threads must be >= 0");
  SALT_REQUIRE(a.anchors_plm && a.anchors_src, SALT_E_ARGUMENT, "null anchor matrix passed to solve_neighbourhoods");
  SALT_REQUIRE(a.n == 0 || (a.queries && a.out && a.out_residual && a.out_coef_norm), SALT_E_ARGUMENT,
               "null buffer passed to solve_neighbourhoods");
  // The k x k systems use LAPACK's int workspace sizes (about 2 k^2 for the eigen path).
  salt_status s = check_csr(a.n, a.offsets, a.indices, a.m, kMaxSolveNeighbours);
  if (s.code) return s;
  if ((s = check_finite("queries", a.queries, a.n, a.ht)).code) return s;
  if ((s = check_finite("anchorsPlm", a.anchors_plm, a.m, a.ht)).code) return s;
  if ((s = check_finite("anchorsSrc", a.anchors_src, a.m, a.hs)).code) return s;
  if (a.prior) return check_finite("prior", a.prior, 1, a.offsets[a.n]);
  return ok_status();
}

salt_status check_apply(const salt_apply_args& a) {
  SALT_REQUIRE(a.n >= 0, SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
  SALT_REQUIRE(a.m >= 1 && a.hs >= 1, SALT_E_SHAPE, "m and hs must be >= 1");
  SALT_REQUIRE(a.m <= INT32_MAX && a.hs <= INT32_MAX, SALT_E_SHAPE, "m and hs must not exceed 2^31 - 1");
  SALT_REQUIRE(a.anchors_src && (a.n == 0 || a.out), SALT_E_ARGUMENT, "null buffer passed to apply_weights");
  salt_status s = check_csr(a.n, a.offsets, a.indices, a.m);
  if (s.code) return s;
  SALT_REQUIRE(a.offsets[a.n] == 0 || a.weights, SALT_E_ARGUMENT, "weights must not be null");
  if ((s = check_finite("weights", a.weights, 1, a.offsets[a.n])).code) return s;
  return check_finite("anchorsSrc", a.anchors_src, a.m, a.hs);
}

}  // namespace salt
