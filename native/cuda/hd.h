// hd.h — SALT_HD marks functions compiled for both the device (by nvcc) and the host (by the host
// tests), so that one source serves the GPU kernels and their CPU checks.
#ifndef SALT_CUDA_HD_H
#define SALT_CUDA_HD_H

#if defined(__CUDACC__)
#define SALT_HD __host__ __device__
#else
#define SALT_HD
#endif

#endif  // SALT_CUDA_HD_H
