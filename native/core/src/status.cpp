#include <cfloat>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "internal.h"

namespace salt {

salt_status make_status(int32_t code, const char* fmt, ...) {
  salt_status s;
  s.code = code;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(s.message, sizeof s.message, fmt, ap);
  va_end(ap);
  return s;
}

salt_status ok_status() {
  salt_status s;
  s.code = SALT_OK;
  s.message[0] = '\0';
  return s;
}

const char* code_name(int32_t code) {
  switch (code) {
    case SALT_OK:
      return "OK";
    case SALT_E_ARGUMENT:
      return "E_ARGUMENT";
    case SALT_E_SHAPE:
      return "E_SHAPE";
    case SALT_E_NONFINITE:
      return "E_NONFINITE";
    case SALT_E_NO_MEMORY:
      return "E_NO_MEMORY";
    case SALT_E_NO_CUDA:
      return "E_NO_CUDA";
    case SALT_E_CUDA:
      return "E_CUDA";
    case SALT_E_CUDA_OOM:
      return "E_CUDA_OOM";
    case SALT_E_IO:
      return "E_IO";
    default:
      return "E_INTERNAL";
  }
}

int64_t first_nonfinite(const float* p, int64_t count) {
  // Chunked so the common all-finite case is a vectorisable sweep; the minimum position wins so the
  // answer does not depend on the thread count.
  const int64_t chunk = 1 << 16;
  const int64_t chunks = (count + chunk - 1) / chunk;
  int64_t first = INT64_MAX;
#pragma omp parallel for schedule(static) reduction(min : first) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = c * chunk, hi = lo + chunk < count ? lo + chunk : count;
    bool bad = false;
    for (int64_t i = lo; i < hi; ++i) bad |= !std::isfinite(p[i]);
    if (bad) {
      for (int64_t i = lo; i < hi; ++i) {
        if (!std::isfinite(p[i])) {
          if (i < first) first = i;
          break;
        }
      }
    }
  }
  return first == INT64_MAX ? -1 : first;
}

salt_status check_finite(const char* what, const float* p, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return ok_status();
  const int64_t at = first_nonfinite(p, rows * cols);
  if (at < 0) return ok_status();
  const float v = p[at];
  return make_status(SALT_E_NONFINITE, "%s contains %s at row %lld, column %lld", what,
                     std::isnan(v) ? "NaN" : (v > 0 ? "Infinity" : "-Infinity"), static_cast<long long>(at / cols),
                     static_cast<long long>(at % cols));
}

}  // namespace salt

extern "C" double salt_default_rcond(int64_t k, int64_t ht) {
  return static_cast<double>(k > ht ? k : ht) * static_cast<double>(FLT_EPSILON);
}
