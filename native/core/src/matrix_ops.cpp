// Whole-matrix passes of the engine, the evaluation and the readers (see salt/matrix_ops.h). They
// run on a libuv worker thread of the Node binding, so the JavaScript thread never waits for them.
// Every float result keeps the order of the sums of the JavaScript loops these replace: the work is
// split across independent outputs (rows, or blocks of columns), never inside one sum.
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

// column_mean_std gives each thread one band of columns: every row's slice of the band is a long
// contiguous run (a narrow band read every row a few cache lines at a stride of the whole row: one
// TLB miss per row and band, 5x slower at 128k x 2,048). The band's accumulators (8 bytes a
// column) stay in the first-level cache. Each column is still summed over the rows in order, so the
// results do not depend on the band width or the thread count.
constexpr int64_t kMinColumnBand = 64;

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
  return guarded([&]() -> salt_status {
    const int64_t rows = a.m.rows, cols = a.m.cols;
    const int64_t nthreads = std::max(1, omp_get_max_threads());
    const int64_t band = std::max(kMinColumnBand, ((cols + nthreads - 1) / nthreads + 15) / 16 * 16);
    const int64_t blocks = (cols + band - 1) / band;
    const double n = static_cast<double>(rows);
#pragma omp parallel for schedule(static, 1)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * band, c1 = std::min(cols, c0 + band);
      double* mean = a.out_mean + c0;
      double* sq = a.out_std + c0;
      const int64_t w = c1 - c0;
      for (int64_t j = 0; j < w; ++j) mean[j] = sq[j] = 0;
      for (int64_t i = 0; i < rows; ++i) {
        const float* p = a.m.data + i * cols + c0;
        for (int64_t j = 0; j < w; ++j) mean[j] += static_cast<double>(p[j]);
      }
      for (int64_t j = 0; j < w; ++j) mean[j] = rows > 0 ? mean[j] / n : 0;
      for (int64_t i = 0; i < rows; ++i) {
        const float* p = a.m.data + i * cols + c0;
        for (int64_t j = 0; j < w; ++j) {
          const double d = static_cast<double>(p[j]) - mean[j];
          sq[j] += d * d;
        }
      }
      for (int64_t j = 0; j < w; ++j) sq[j] = rows > 0 ? std::sqrt(sq[j] / n) : 0;
    }
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
