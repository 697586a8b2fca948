// Exact cosine top-k on the CPU with FAISS.
//
// FAISS computes inner products of L2-normalised rows tile by tile (BLAS SGEMM) and keeps a heap
// per query, so memory is O(tile x block + n x k), never n x m. FAISS's heap breaks ties between
// equal scores in its own way; we want "descending score, then ascending index". We therefore ask
// for k+1 candidates: when the k-th and (k+1)-th scores differ, the k best are exactly determined
// and only need sorting by our rule. A row whose k-th and (k+1)-th scores are equal (duplicate or
// zero vectors) is recomputed exactly over all base rows.
#include <faiss/utils/distances.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>
#include <vector>

#include "internal.h"

namespace salt {
namespace {

// Copies `rows` rows of width d and scales each to unit L2 norm (a zero row stays zero).
void normalise_rows(const float* src, int64_t rows, int64_t d, float* dst) {
#pragma omp parallel for schedule(static) if (rows * d > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * d;
    float* t = dst + r * d;
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(s[j]) * s[j];
    const float inv = ss > 0 ? static_cast<float>(1.0 / std::sqrt(ss)) : 0.0f;
    for (int64_t j = 0; j < d; ++j) t[j] = s[j] * inv;
  }
}

// Queries per FAISS call inside a thread: 256 x FAISS's 1,024-row base block of scores is 1 MB,
// which stays in a core's L2 cache while FAISS updates the heaps.
constexpr int64_t kThreadBlockRows = 256;

inline bool better(float sa, int64_t ia, float sb, int64_t ib) { return sa > sb || (sa == sb && ia < ib); }

// Exact selection for one query over all base rows (used only for rows tied at the k boundary).
void exact_row(const float* q, const float* base, int64_t m, int64_t d, int64_t k, std::vector<float>& scores,
               std::vector<int32_t>& order, int32_t* out_idx, float* out_sc) {
  scores.resize(static_cast<size_t>(m));
  order.resize(static_cast<size_t>(m));
  const int M = static_cast<int>(m), D = static_cast<int>(d), one = 1;
  const float alpha = 1.0f, beta = 0.0f;
  // base is row-major m x d = column-major d x m; scores = base * q.
  sgemv_("T", &D, &M, &alpha, base, &D, q, &one, &beta, scores.data(), &one);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return better(scores[a], a, scores[b], b); });
  for (int64_t j = 0; j < k; ++j) {
    out_idx[j] = order[j];
    out_sc[j] = scores[order[j]];
  }
}

}  // namespace

namespace cpu {

salt_status topk_cosine(const salt_topk_args& a) {
  ThreadScope threads(a.threads);  // also for the validation scans
  salt_status st = check_topk(a);
  if (st.code || a.n == 0) return st;
  // FAISS computes tiny query batches (<= 20 rows by default) without BLAS, in another summation
  // order; always taking the BLAS path makes every row's scores independent of the tile it is in.
  static std::once_flag blas_always;
  std::call_once(blas_always, [] { faiss::distance_compute_blas_threshold = 0; });
  return guarded([&]() -> salt_status {
    RegionErrors errors;
    const int64_t n = a.n, m = a.m, d = a.d, k = a.k;
    const int64_t kk = k < m ? k + 1 : k;  // one extra candidate detects ties at the boundary
    // Tiles of queries: large enough for efficient GEMMs, small enough to bound memory
    // (FAISS itself blocks each tile into 4096 x 1024 inner-product blocks).
    const int64_t tile = a.tile_rows > 0 ? a.tile_rows : 16384;
    std::vector<float> base(static_cast<size_t>(m * d));
    normalise_rows(a.base, m, d, base.data());
    const int64_t rows_max = std::min(tile, n);
    std::vector<float> q(static_cast<size_t>(rows_max * d));
    std::vector<float> dist(static_cast<size_t>(rows_max * kk));
    std::vector<int64_t> lab(static_cast<size_t>(rows_max * kk));
    for (int64_t t0 = 0; t0 < n; t0 += tile) {
      const int64_t rows = std::min(tile, n - t0);
      normalise_rows(a.queries + t0 * d, rows, d, q.data());
      // Each thread runs FAISS on its own small block of queries: the inner-product block and the
      // heaps stay in that core's cache, and BLAS/FAISS run single-threaded inside the region
      // (nested parallelism is off). One FAISS call over the whole tile would instead write a
      // large score block to memory and read it back, with a fork/join for every block.
      const int64_t sub = kThreadBlockRows;
      const int64_t blocks = (rows + sub - 1) / sub;
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t bi = 0; bi < blocks; ++bi) {
        errors.run([&] {
          const int64_t r0 = bi * sub, nr = std::min(sub, rows - r0);
          faiss::knn_inner_product(q.data() + r0 * d, base.data(), static_cast<size_t>(d), static_cast<size_t>(nr),
                                   static_cast<size_t>(m), static_cast<size_t>(kk), dist.data() + r0 * kk,
                                   lab.data() + r0 * kk);
        });
      }
      if (errors.failed()) return errors.status("topk_cosine");
#pragma omp parallel
      {
        std::vector<float> scratch_scores;
        std::vector<int32_t> scratch_order;
        std::vector<int32_t> order;
        errors.run([&] { order.resize(static_cast<size_t>(kk)); });
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
          errors.run([&] {
            const float* ds = dist.data() + r * kk;
            const int64_t* ls = lab.data() + r * kk;
            int32_t* oi = a.out_indices + (t0 + r) * k;
            float* os = a.out_scores + (t0 + r) * k;
            if (kk > k && ds[k - 1] == ds[k]) {
              exact_row(q.data() + r * d, base.data(), m, d, k, scratch_scores, scratch_order, oi, os);
              return;
            }
            std::iota(order.begin(), order.end(), 0);
            std::sort(order.begin(), order.begin() + k,
                      [&](int32_t x, int32_t y) { return better(ds[x], ls[x], ds[y], ls[y]); });
            for (int64_t j = 0; j < k; ++j) {
              oi[j] = static_cast<int32_t>(ls[order[j]]);
              os[j] = ds[order[j]];
            }
          });
        }
      }
      if (errors.failed()) return errors.status("topk_cosine");
    }
    return ok_status();
  });
}

}  // namespace cpu
}  // namespace salt
