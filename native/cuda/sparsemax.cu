// Row-wise sparsemax on the GPU: one block per row runs sparsemax_row (sparsemax_row.h): the row is
// sorted (as double) in shared memory, one thread runs the same sequential threshold search as the CPU
// (same order of additions, so the results match the CPU's to the last bit), and the block writes the
// weights. Rows longer than kSparsemaxMaxSortK use the CPU implementation (sparsemax is O(n K log K) and never
// the bottleneck of SALT).
#include <algorithm>
#include <cmath>

#include "cuda_common.h"
#include "sparsemax_row.h"

namespace salt {
namespace cuda {
namespace {

constexpr int kThreads = 256;

struct BlockBarrier {
  __device__ void operator()() const { __syncthreads(); }
};

__global__ void __launch_bounds__(kThreads)
    sparsemax_kernel(const float* __restrict__ scores, int64_t K, int P, float* __restrict__ weights,
                     int32_t* __restrict__ support) {
  extern __shared__ double z[];
  __shared__ double sh_tau;
  const int64_t row = blockIdx.x;
  sparsemax_row(scores + row * K, K, P, z, &sh_tau, weights + row * K, support + row, static_cast<int>(threadIdx.x),
                static_cast<int>(blockDim.x), BlockBarrier());
}

}  // namespace

void sparsemax(const salt_sparsemax_args& a, size_t budget) {
  const int64_t n = a.n, K = a.K;
  if (K > kSparsemaxMaxSortK) {  // at most 32 KiB of doubles in shared memory
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
    check(cudaMemcpyAsync(s.get(), a.scores + r0 * K, static_cast<size_t>(R) * K * sizeof(float),
                          cudaMemcpyHostToDevice, st.get()),
          "cudaMemcpyAsync(scores)");
    sparsemax_kernel<<<static_cast<unsigned>(R), kThreads, static_cast<size_t>(P) * sizeof(double), st.get()>>>(
        s.get(), K, P, w.get(), sup.get());
    check(cudaGetLastError(), "sparsemax_kernel launch");
    check(cudaMemcpyAsync(a.out_weights + r0 * K, w.get(), static_cast<size_t>(R) * K * sizeof(float),
                          cudaMemcpyDeviceToHost, st.get()),
          "cudaMemcpyAsync(weights)");
    check(cudaMemcpyAsync(a.out_support + r0, sup.get(), static_cast<size_t>(R) * sizeof(int32_t),
                          cudaMemcpyDeviceToHost, st.get()),
          "cudaMemcpyAsync(support)");
    st.sync();  // pageable host buffers: keep each chunk's copies complete before the next reuses s/w
  }
}

}  // namespace cuda
}  // namespace salt
