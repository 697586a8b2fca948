// Row-wise sparsemax on the GPU: one block per row sorts the row (as double) in shared memory, one
// thread then runs the same sequential threshold search as the CPU (same order of additions, so the
// results match the CPU's to the last bit for the same sorted values), and the block writes the
// weights. Rows longer than kMaxSortK use the CPU implementation (sparsemax is O(n K log K) and never
// the bottleneck of SALT).
#include <algorithm>
#include <cmath>

#include "cuda_common.h"

namespace salt {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxSortK = 4096;  // 32 KiB of doubles in shared memory

__global__ void __launch_bounds__(kThreads) sparsemax_kernel(const float* __restrict__ scores, int64_t K, int P,
                                                             float* __restrict__ weights, int32_t* __restrict__ support) {
  extern __shared__ double z[];
  __shared__ double sh_tau;
  const int64_t row = blockIdx.x;
  const float* s = scores + row * K;
  for (int t = threadIdx.x; t < P; t += blockDim.x) z[t] = t < K ? static_cast<double>(s[t]) : -INFINITY;
  __syncthreads();
  // Bitonic sort, descending.
  for (int size = 2; size <= P; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = threadIdx.x; t < P; t += blockDim.x) {
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
      __syncthreads();
    }
  }
  if (threadIdx.x == 0) {
    double cum = 0, tau_sum = z[0];
    int64_t sup = 1;
    for (int64_t j = 0; j < K; ++j) {
      cum += z[j];
      if (1.0 + static_cast<double>(j + 1) * z[j] > cum) {
        sup = j + 1;
        tau_sum = cum;
      }
    }
    sh_tau = (tau_sum - 1.0) / static_cast<double>(sup);
    support[row] = static_cast<int32_t>(sup);
  }
  __syncthreads();
  const double tau = sh_tau;
  float* w = weights + row * K;
  for (int64_t j = threadIdx.x; j < K; j += blockDim.x) {
    const double v = static_cast<double>(s[j]) - tau;
    w[j] = v > 0 ? static_cast<float>(v) : 0.0f;
  }
}

}  // namespace

void sparsemax(const salt_sparsemax_args& a, size_t budget) {
  const int64_t n = a.n, K = a.K;
  if (K > kMaxSortK) {
    const salt_status st = cpu::sparsemax(a);
    if (st.code != SALT_OK) throw CudaFailure{st};
    return;
  }
  int P = 1;
  while (P < K) P <<= 1;
  const size_t per_row = static_cast<size_t>(K) * 2 * sizeof(float) + sizeof(int32_t);
  int64_t rows = std::min<int64_t>(n, static_cast<int64_t>(budget / per_row));
  rows = std::min<int64_t>(rows, 1 << 20);
  if (rows < 1) throw DeviceOom{"sparsemax tile sizing"};

  DeviceArray<float> s(static_cast<size_t>(rows) * K), w(static_cast<size_t>(rows) * K);
  DeviceArray<int32_t> sup(static_cast<size_t>(rows));
  Stream st;
  for (int64_t r0 = 0; r0 < n; r0 += rows) {
    const int64_t R = std::min(rows, n - r0);
    check(cudaMemcpyAsync(s.get(), a.scores + r0 * K, static_cast<size_t>(R) * K * sizeof(float), cudaMemcpyHostToDevice, st.get()),
          "cudaMemcpyAsync(scores)");
    sparsemax_kernel<<<static_cast<unsigned>(R), kThreads, static_cast<size_t>(P) * sizeof(double), st.get()>>>(s.get(), K, P, w.get(),
                                                                                                          sup.get());
    check(cudaGetLastError(), "sparsemax_kernel launch");
    check(cudaMemcpyAsync(a.out_weights + r0 * K, w.get(), static_cast<size_t>(R) * K * sizeof(float), cudaMemcpyDeviceToHost,
                          st.get()),
          "cudaMemcpyAsync(weights)");
    check(cudaMemcpyAsync(a.out_support + r0, sup.get(), static_cast<size_t>(R) * sizeof(int32_t), cudaMemcpyDeviceToHost, st.get()),
          "cudaMemcpyAsync(support)");
    st.sync();  // pageable host buffers: keep each chunk's copies complete before the next reuses s/w
  }
}

}  // namespace cuda
}  // namespace salt
