// Whole-matrix passes of the engine, the evaluation and the readers (see salt/matrix_ops.h). They
// run on a libuv worker thread of the Node binding, so the JavaScript thread never waits for them.
// Every float result keeps the order of the sums of the JavaScript loops these replace, except the
// column statistics (a blocked definition, see salt/matrix_ops.h): the work is split across
// independent outputs (rows) or fixed blocks, never in a way that depends on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "internal.h"

namespace salt {
namespace cpu {
namespace {

salt_status check_view(const char* what, const salt_matrix_view& m) {
  if (m.rows < 0 || m.cols < 1)
    return make_status(SALT_E_SHAPE, "%s must have rows >= 0 and cols >= 1, got %lld x %lld", what,
                       static_cast<long long>(m.rows), static_cast<long long>(m.cols));
  if (m.rows > 0 && m.data == nullptr) return make_status(SALT_E_ARGUMENT, "%s data must not be null", what);
  return ok_status();
}

salt_status check_ids(const int32_t* ids, int64_t n, int64_t rows) {
  if (n < 0) return make_status(SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(n));
  if (n > 0 && ids == nullptr) return make_status(SALT_E_ARGUMENT, "ids must not be null");
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= rows)
      return make_status(SALT_E_ARGUMENT, "ids[%lld] = %d is outside [0, %lld)", static_cast<long long>(i), ids[i],
                         static_cast<long long>(rows));
  return ok_status();
}

// column_mean_std reads the matrix once, in whole rows (salt/matrix_ops.h gives the definition):
// a block of rows (kStatBlockValues values, 128 KiB) is summed, then read again from the cache for
// its squared deviations; blocks are merged into a group (kStatGroupBlocks of them) in order, and
// the groups, each computed by one thread, are merged in order at the end. The blocks and groups
// depend only on the shape, so the results do not depend on the thread count. (The earlier
// two-pass loop read the whole matrix twice, by bands of columns, and the row norms a third time.)
constexpr int64_t kStatBlockValues = 32768;
constexpr int64_t kStatGroupBlocks = 256;

// The loops below are cloned per instruction set (SALT_VECTOR_CLONES): their vector lanes run
// across columns (or, for the norms, across four rows), never inside one sum.

// out[i] = sqrt(sum_j x_ij^2) for the n rows at p, each sum in column order; four rows at a time,
// so that four independent sums are in flight.
SALT_VECTOR_CLONES void block_norms(const float* p, int64_t n, int64_t cols, double* out) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float *r0 = p + i * cols, *r1 = r0 + cols, *r2 = r1 + cols, *r3 = r2 + cols;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const double x0 = r0[j], x1 = r1[j], x2 = r2[j], x3 = r3[j];
      s0 += x0 * x0;
      s1 += x1 * x1;
      s2 += x2 * x2;
      s3 += x3 * x3;
    }
    out[i] = std::sqrt(s0);
    out[i + 1] = std::sqrt(s1);
    out[i + 2] = std::sqrt(s2);
    out[i + 3] = std::sqrt(s3);
  }
  for (; i < n; ++i) {
    const float* r = p + i * cols;
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const double x = r[j];
      s += x * x;
    }
    out[i] = std::sqrt(s);
  }
}

// A block of n rows at p: mean[j] = (sum of its column j in row order) / n, then m2[j] = sum in row
// order of (x_ij - mean[j])^2 (the block is still in the cache).
SALT_VECTOR_CLONES void block_moments(const float* p, int64_t n, int64_t cols, double* mean, double* m2) {
  for (int64_t j = 0; j < cols; ++j) mean[j] = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* r = p + i * cols;
    for (int64_t j = 0; j < cols; ++j) mean[j] += static_cast<double>(r[j]);
  }
  const double nb = static_cast<double>(n);
  for (int64_t j = 0; j < cols; ++j) mean[j] = mean[j] / nb;
  for (int64_t j = 0; j < cols; ++j) m2[j] = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* r = p + i * cols;
    for (int64_t j = 0; j < cols; ++j) {
      const double d = static_cast<double>(r[j]) - mean[j];
      m2[j] += d * d;
    }
  }
}

// (na, ma, m2a) <- (na, ma, m2a) merged with (nb, mb, m2b), column by column (Chan, Golub and
// LeVeque's update): d = mb - ma; mean = ma + d * (nb / n); m2 = (m2a + m2b) + (d * d) * (na * nb / n).
void merge_moments(double na, double* ma, double* m2a, double nb, const double* mb, const double* m2b, int64_t cols) {
  if (na == 0) {
    std::copy(mb, mb + cols, ma);
    std::copy(m2b, m2b + cols, m2a);
    return;
  }
  const double n = na + nb;
  const double fb = nb / n, fab = na * nb / n;
  for (int64_t j = 0; j < cols; ++j) {
    const double d = mb[j] - ma[j];
    ma[j] = ma[j] + d * fb;
    m2a[j] = (m2a[j] + m2b[j]) + (d * d) * fab;
  }
}

// F16 bit pattern -> F32 bit pattern, exact (every F16 value is an F32 value).
uint32_t f16_to_f32_bits(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return sign | 0x7f800000u | (mant << 13);  // Inf / NaN, payload kept
  if (exp != 0) return sign | ((exp + 112) << 23) | (mant << 13);
  if (mant == 0) return sign;
  uint32_t e = 113;  // subnormal F16: normalise into an F32 normal number
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --e;
  }
  return sign | (e << 23) | ((mant & 0x3ffu) << 13);
}

uint16_t f32_bits_to_bf16(uint32_t x) {
  if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu) != 0) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

uint16_t f32_bits_to_f16(uint32_t x) {
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xffu);
  const uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return static_cast<uint16_t>(mant != 0 ? sign | 0x7e00u | (mant >> 13) : sign | 0x7c00u);
  const int32_t e = exp - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    const uint32_t m = mant | 0x800000u;
    const int32_t shift = 14 - e;  // 14..24
    const uint32_t half = 1u << (shift - 1);
    const uint32_t rest = m & ((1u << shift) - 1);
    uint32_t r = m >> shift;
    if (rest > half || (rest == half && (r & 1u) == 1u)) ++r;
    return static_cast<uint16_t>(sign | r);  // a carry into the exponent is the correct smallest normal
  }
  uint32_t r = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (r & 1u) == 1u)) ++r;  // may carry up to Inf: correct
  return static_cast<uint16_t>(sign | r);
}

const uint32_t* f16_table() {
  static const std::vector<uint32_t> table = [] {
    std::vector<uint32_t> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = f16_to_f32_bits(h);
    return t;
  }();
  return table.data();
}

}  // namespace

salt_status find_nonfinite(const salt_nonfinite_args& a) {
  ThreadScope threads(a.threads);
  salt_status st = check_view("matrix", a.m);
  if (st.code) return st;
  if (a.out_index == nullptr) return make_status(SALT_E_ARGUMENT, "out_index must not be null");
  return guarded([&]() -> salt_status {
    const int64_t rows = a.m.rows, cols = a.m.cols;
    int64_t first = INT64_MAX;
#pragma omp parallel for schedule(static) reduction(min : first)
    for (int64_t r = 0; r < rows; ++r) {
      if (first <= r * cols || (a.row_mask && a.row_mask[r] == 0)) continue;
      const float* p = a.m.data + r * cols;
      for (int64_t c = 0; c < cols; ++c)
        if (!std::isfinite(p[c])) {
          first = std::min(first, r * cols + c);
          break;
        }
    }
    *a.out_index = first == INT64_MAX ? -1 : first;
    return ok_status();
  });
}

salt_status column_mean_std(const salt_column_stats_args& a) {
  ThreadScope threads(a.threads);
  salt_status st = check_view("matrix", a.m);
  if (st.code) return st;
  if (a.out_mean == nullptr || a.out_std == nullptr) return make_status(SALT_E_ARGUMENT, "outputs must not be null");
  if (a.out_norms == nullptr && a.want_norms && a.m.rows > 0)
    return make_status(SALT_E_ARGUMENT, "out_norms must not be null when norms are asked for");
  return guarded([&]() -> salt_status {
    const int64_t rows = a.m.rows, cols = a.m.cols;
    std::fill(a.out_mean, a.out_mean + cols, 0.0);
    std::fill(a.out_std, a.out_std + cols, 0.0);
    if (rows == 0) return ok_status();
    const int64_t block = std::max<int64_t>(1, kStatBlockValues / cols);
    const int64_t group = block * kStatGroupBlocks;
    const int64_t groups = (rows + group - 1) / group;
    // Each group's count, means and squared deviations (groups x cols).
    std::vector<double> gmean(static_cast<size_t>(groups * cols)), gm2(static_cast<size_t>(groups * cols));
    // Each thread's block means and squared deviations, allocated here: an allocation failing inside
    // the parallel region would end the process instead of returning SALT_E_NO_MEMORY.
    const int64_t team = std::max(1, omp_get_max_threads());
    std::vector<double> scratch(static_cast<size_t>(team * 2 * cols));
#pragma omp parallel
    {
      double* sum = scratch.data() + static_cast<int64_t>(omp_get_thread_num()) * 2 * cols;
      double* m2 = sum + cols;
#pragma omp for schedule(dynamic, 1)
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t g0 = g * group, g1 = std::min(rows, g0 + group);
        double* mean = gmean.data() + g * cols;
        double* dev = gm2.data() + g * cols;
        for (int64_t b0 = g0; b0 < g1; b0 += block) {
          const int64_t b1 = std::min(g1, b0 + block);
          if (a.want_norms) block_norms(a.m.data + b0 * cols, b1 - b0, cols, a.out_norms + b0);
          block_moments(a.m.data + b0 * cols, b1 - b0, cols, sum, m2);
          merge_moments(static_cast<double>(b0 - g0), mean, dev, static_cast<double>(b1 - b0), sum, m2, cols);
        }
      }
    }
    for (int64_t g = 0; g < groups; ++g)
      merge_moments(static_cast<double>(g * group), a.out_mean, a.out_std,
                    static_cast<double>(std::min(rows, (g + 1) * group) - g * group), gmean.data() + g * cols,
                    gm2.data() + g * cols, cols);
    const double n = static_cast<double>(rows);
    for (int64_t j = 0; j < cols; ++j) a.out_std[j] = std::sqrt(a.out_std[j] / n);
    return ok_status();
  });
}

salt_status row_norms(const salt_row_norms_args& a) {
  ThreadScope threads(a.threads);
  salt_status st = check_view("matrix", a.m);
  if (st.code) return st;
  if (a.ids) {
    st = check_ids(a.ids, a.n, a.m.rows);
    if (st.code) return st;
  } else if (a.n != a.m.rows) {
    return make_status(SALT_E_SHAPE, "n must equal rows = %lld without ids, got %lld", static_cast<long long>(a.m.rows),
                       static_cast<long long>(a.n));
  }
  if (a.n > 0 && a.out == nullptr) return make_status(SALT_E_ARGUMENT, "out must not be null");
  return guarded([&]() -> salt_status {
    const int64_t cols = a.m.cols;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < a.n; ++i) {
      const float* p = a.m.data + (a.ids ? static_cast<int64_t>(a.ids[i]) : i) * cols;
      double s = 0;
      for (int64_t j = 0; j < cols; ++j) {
        const double x = static_cast<double>(p[j]);
        s += x * x;
      }
      a.out[i] = std::sqrt(s);
    }
    return ok_status();
  });
}

salt_status gather_rows(const salt_gather_args& a) {
  ThreadScope threads(a.threads);
  salt_status st = check_view("matrix", a.m);
  if (st.code) return st;
  st = check_ids(a.ids, a.n, a.m.rows);
  if (st.code) return st;
  if (a.n > 0 && a.out == nullptr) return make_status(SALT_E_ARGUMENT, "out must not be null");
  const int64_t cols = a.m.cols;
  const size_t bytes = static_cast<size_t>(cols) * sizeof(float);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < a.n; ++i)
    std::memcpy(a.out + i * cols, a.m.data + static_cast<int64_t>(a.ids[i]) * cols, bytes);
  return ok_status();
}

salt_status copy_rows(const salt_copy_rows_args& a) {
  ThreadScope threads(a.threads);
  salt_status st = check_view("matrix", a.m);
  if (st.code) return st;
  if (a.n < 0) return make_status(SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
  if (a.n > 0 && (a.ids == nullptr || a.out == nullptr))
    return make_status(SALT_E_ARGUMENT, "ids and out must not be null");
  for (int64_t i = 0; i < a.n; ++i)
    if (a.ids[i] < -1 || a.ids[i] >= a.m.rows)
      return make_status(SALT_E_ARGUMENT, "ids[%lld] = %d is outside [-1, %lld)", static_cast<long long>(i), a.ids[i],
                         static_cast<long long>(a.m.rows));
  const int64_t cols = a.m.cols;
  const size_t bytes = static_cast<size_t>(cols) * sizeof(float);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < a.n; ++i)
    if (a.ids[i] >= 0) std::memcpy(a.out + i * cols, a.m.data + static_cast<int64_t>(a.ids[i]) * cols, bytes);
  return ok_status();
}

salt_status encode_floats(const salt_convert_args& a) {
  ThreadScope threads(a.threads);
  if (a.kind != SALT_HALF_F16 && a.kind != SALT_HALF_BF16)
    return make_status(SALT_E_ARGUMENT, "kind must be F16 (0) or BF16 (1), got %d", a.kind);
  if (a.n < 0) return make_status(SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
  if (a.n > 0 && (a.f32 == nullptr || a.out_h == nullptr))
    return make_status(SALT_E_ARGUMENT, "input and output must not be null");
  const bool bf16 = a.kind == SALT_HALF_BF16;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < a.n; ++i) {
    uint32_t x;
    std::memcpy(&x, a.f32 + i, sizeof x);
    a.out_h[i] = bf16 ? f32_bits_to_bf16(x) : f32_bits_to_f16(x);
  }
  return ok_status();
}

salt_status decode_floats(const salt_convert_args& a) {
  ThreadScope threads(a.threads);
  if (a.kind != SALT_HALF_F16 && a.kind != SALT_HALF_BF16)
    return make_status(SALT_E_ARGUMENT, "kind must be F16 (0) or BF16 (1), got %d", a.kind);
  if (a.n < 0) return make_status(SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
  if (a.n > 0 && (a.h == nullptr || a.out_f32 == nullptr))
    return make_status(SALT_E_ARGUMENT, "input and output must not be null");
  return guarded([&]() -> salt_status {
    const bool bf16 = a.kind == SALT_HALF_BF16;
    const uint32_t* table = bf16 ? nullptr : f16_table();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < a.n; ++i) {
      const uint32_t bits = bf16 ? static_cast<uint32_t>(a.h[i]) << 16 : table[a.h[i]];
      std::memcpy(a.out_f32 + i, &bits, sizeof bits);
    }
    return ok_status();
  });
}

salt_status widen_floats(const salt_precision_args& a) {
  ThreadScope threads(a.threads);
  if (a.n < 0) return make_status(SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
  if (a.n > 0 && (a.f32 == nullptr || a.out_f64 == nullptr))
    return make_status(SALT_E_ARGUMENT, "input and output must not be null");
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < a.n; ++i) a.out_f64[i] = static_cast<double>(a.f32[i]);
  return ok_status();
}

salt_status narrow_floats(const salt_precision_args& a) {
  ThreadScope threads(a.threads);
  if (a.n < 0) return make_status(SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
  if (a.n > 0 && (a.f64 == nullptr || a.out_f32 == nullptr))
    return make_status(SALT_E_ARGUMENT, "input and output must not be null");
    // The default rounding mode (to nearest, ties to even) is the one JavaScript's conversion uses.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < a.n; ++i) a.out_f32[i] = static_cast<float>(a.f64[i]);
  return ok_status();
}

salt_status sort_doubles(const salt_sort_args& a) {
  if (a.n < 0) return make_status(SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
  if (a.n > 0 && a.values == nullptr) return make_status(SALT_E_ARGUMENT, "values must not be null");
  return guarded([&]() -> salt_status {
    std::sort(a.values, a.values + a.n, [](double x, double y) {
      if (std::isnan(x)) return false;
      if (std::isnan(y)) return true;
      if (x != y) return x < y;
      return std::signbit(x) && !std::signbit(y);
    });
    return ok_status();
  });
}

}  // namespace cpu
}  // namespace salt
