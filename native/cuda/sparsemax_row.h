// sparsemax_row.h — sparsemax of one row, written once for the device (one thread block per row, see
// sparsemax.cu) and the host (one "thread"), so that native/cuda/test/sparsemax_host_test.cpp checks
// the code the GPU runs against the CPU backend. Same algorithm and order of additions as
// native/core/src/sparsemax.cpp: sort descending (double), support = the largest j with
// 1 + j z_j > sum_{i<=j} z_i, tau = (sum of the support - 1) / support, w = max(s - tau, 0).
#ifndef SALT_CUDA_SPARSEMAX_ROW_H
#define SALT_CUDA_SPARSEMAX_ROW_H

#include <cmath>
#include <cstdint>

#include "hd.h"

namespace salt {
namespace cuda {

/// Sparsemax of the K scores s into w and *support. z is scratch of P doubles (P = the smallest power
/// of two >= K; shared memory on the device), *tau scratch for one double (shared on the device).
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Barrier>
SALT_HD void sparsemax_row(const float* s, int64_t K, int P, double* z, double* tau, float* w, int32_t* support,
                           int tid, int nt, Barrier barrier) {
  for (int t = tid; t < P; t += nt) z[t] = t < K ? static_cast<double>(s[t]) : -INFINITY;
  barrier();
  // Bitonic sort, descending.
  for (int size = 2; size <= P; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = tid; t < P; t += nt) {
        const int partner = t ^ stride;
        if (partner > t) {
          const bool descending = (t & size) == 0;
          const double a = z[t], b = z[partner];
          if ((a < b) == descending) {
            z[t] = b;
            z[partner] = a;
          }
        }
      }
      barrier();
    }
  }
  if (tid == 0) {
    double cum = 0, tau_sum = z[0];
    int64_t sup = 1;
    for (int64_t j = 0; j < K; ++j) {
      cum += z[j];
      if (1.0 + static_cast<double>(j + 1) * z[j] > cum) {
        sup = j + 1;
        tau_sum = cum;
      }
    }
    *tau = (tau_sum - 1.0) / static_cast<double>(sup);
    *support = static_cast<int32_t>(sup);
  }
  barrier();
  const double t0 = *tau;
  for (int64_t j = tid; j < K; j += nt) {
    const double v = static_cast<double>(s[j]) - t0;
    w[j] = v > 0 ? static_cast<float>(v) : 0.0f;
  }
}

}  // namespace cuda
}  // namespace salt

#endif  // SALT_CUDA_SPARSEMAX_ROW_H
