// sgemm-only — times the score GEMMs of a top-k job alone (no normalisation, selection or transfers),
// so bench/cuda-bench.mjs can report the top-k kernel's time as a ratio of pure SGEMM time on the same
// shape and the achieved TFLOP/s. Built and run by the benchmark on a GPU machine:
//   nvcc -O2 -std=c++17 bench/sgemm-only.cu -lcublas -o build-bench/sgemm-only
//   build-bench/sgemm-only <n> <m> <d> <tile_rows> <fp32|tf32> <repeats>
// Prints one JSON line: {"seconds": <best total over the tiles>, "tflops": ..., ...}.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

static int fail(const char* what, const char* why) {
  std::printf("{\"error\":\"%s: %s\"}\n", what, why);
  return 1;
}

#define CU(call)                                                              \
  do {                                                                        \
    cudaError_t e_ = (call);                                                  \
    if (e_ != cudaSuccess) return fail(#call, cudaGetErrorString(e_));        \
  } while (0)
#define CB(call)                                                              \
  do {                                                                        \
    cublasStatus_t s_ = (call);                                               \
    if (s_ != CUBLAS_STATUS_SUCCESS) return fail(#call, "cuBLAS error");      \
  } while (0)

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s n m d tile_rows fp32|tf32 repeats\n", argv[0]);
    return 2;
  }
  const long long n = std::atoll(argv[1]), m = std::atoll(argv[2]), d = std::atoll(argv[3]);
  long long tile = std::atoll(argv[4]);
  const bool tf32 = std::strcmp(argv[5], "tf32") == 0;
  const int repeats = std::max(1, std::atoi(argv[6]));
  if (n < 1 || m < 1 || d < 1) return fail("arguments", "n, m and d must be >= 1");
  if (tile < 1 || tile > n) tile = n;

  float *base = nullptr, *q = nullptr, *c = nullptr;
  CU(cudaMalloc(&base, sizeof(float) * m * d));
  CU(cudaMalloc(&q, sizeof(float) * tile * d));
  CU(cudaMalloc(&c, sizeof(float) * tile * m));
  CU(cudaMemset(base, 0, sizeof(float) * m * d));
  CU(cudaMemset(q, 0, sizeof(float) * tile * d));
  cublasHandle_t h;
  CB(cublasCreate(&h));
  cudaEvent_t t0, t1;
  CU(cudaEventCreate(&t0));
  CU(cudaEventCreate(&t1));
  const float one = 1.0f, zero = 0.0f;
  const cublasComputeType_t compute = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  float best = 1e30f;
  for (int r = 0; r <= repeats; ++r) {  // run 0 is a warm-up
    CU(cudaEventRecord(t0));
    for (long long r0 = 0; r0 < n; r0 += tile) {
      const int rows = static_cast<int>(std::min(tile, n - r0));
      CB(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m), rows, static_cast<int>(d), &one, base, CUDA_R_32F,
                      static_cast<int>(d), q, CUDA_R_32F, static_cast<int>(d), &zero, c, CUDA_R_32F, static_cast<int>(m), compute,
                      CUBLAS_GEMM_DEFAULT));
    }
    CU(cudaEventRecord(t1));
    CU(cudaEventSynchronize(t1));
    float ms = 0;
    CU(cudaEventElapsedTime(&ms, t0, t1));
    if (r > 0) best = std::min(best, ms);
  }
  const double seconds = best / 1e3;
  const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(m) * static_cast<double>(d);
  std::printf("{\"seconds\":%.6f,\"tflops\":%.3f,\"n\":%lld,\"m\":%lld,\"d\":%lld,\"tileRows\":%lld,\"precision\":\"%s\"}\n", seconds,
              flops / seconds / 1e12, n, m, d, tile, tf32 ? "tf32" : "fp32");
  cublasDestroy(h);
  cudaFree(base);
  cudaFree(q);
  cudaFree(c);
  return 0;
}
