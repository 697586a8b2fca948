// Error mapping, device selection and the memory budget of the CUDA plugin.
#include <cstdlib>
#include <cstring>

#include "cuda_common.h"

namespace salt {
namespace cuda {

void check(cudaError_t err, const char* call) {
  if (err == cudaSuccess) return;
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw DeviceOom{call};
  }
  throw CudaFailure{
      make_status(SALT_E_CUDA, "%s failed: %s (%s)", call, cudaGetErrorString(err), cudaGetErrorName(err))};
}

const char* cublas_status_name(cublasStatus_t st) {
  switch (st) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "CUBLAS_STATUS_LICENSE_ERROR";
    default:
      return "CUBLAS_STATUS_(unknown)";
  }
}

const char* cusolver_status_name(cusolverStatus_t st) {
  switch (st) {
    case CUSOLVER_STATUS_SUCCESS:
      return "CUSOLVER_STATUS_SUCCESS";
    case CUSOLVER_STATUS_NOT_INITIALIZED:
      return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED:
      return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE:
      return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH:
      return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_MAPPING_ERROR:
      return "CUSOLVER_STATUS_MAPPING_ERROR";
    case CUSOLVER_STATUS_EXECUTION_FAILED:
      return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR:
      return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
      return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
    case CUSOLVER_STATUS_NOT_SUPPORTED:
      return "CUSOLVER_STATUS_NOT_SUPPORTED";
    default:
      return "CUSOLVER_STATUS_(other)";
  }
}

void check(cublasStatus_t st, const char* call) {
  if (st == CUBLAS_STATUS_SUCCESS) return;
  if (st == CUBLAS_STATUS_ALLOC_FAILED) throw DeviceOom{call};
  throw CudaFailure{make_status(SALT_E_CUDA, "%s failed: %s", call, cublas_status_name(st))};
}

void check(cusolverStatus_t st, const char* call) {
  if (st == CUSOLVER_STATUS_SUCCESS) return;
  if (st == CUSOLVER_STATUS_ALLOC_FAILED) throw DeviceOom{call};
  throw CudaFailure{make_status(SALT_E_CUDA, "%s failed: %s", call, cusolver_status_name(st))};
}

int select_device() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw CudaFailure{
        make_status(SALT_E_NO_CUDA, "no usable CUDA device: cudaGetDeviceCount: %s", cudaGetErrorString(err))};
  }
  if (count <= 0) throw CudaFailure{make_status(SALT_E_NO_CUDA, "no CUDA device found")};
  int dev = 0;
  if (const char* env = std::getenv("SALT_CUDA_DEVICE")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || v < 0 || v >= count)
      throw CudaFailure{
          make_status(SALT_E_ARGUMENT, "SALT_CUDA_DEVICE=\"%s\" is not a device number in [0, %d)", env, count)};
    dev = static_cast<int>(v);
  }
  check(cudaSetDevice(dev), "cudaSetDevice");
  return dev;
}

size_t memory_budget() {
  size_t free_b = 0, total_b = 0;
  check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  double fraction = 0.8;
  if (const char* env = std::getenv("SALT_CUDA_MEMORY_FRACTION")) {
    const double v = std::strtod(env, nullptr);
    if (v > 0 && v <= 1) fraction = v;
  }
  // cuBLAS / cuSOLVER allocate their own workspaces; leave room for them.
  const size_t reserve = static_cast<size_t>(256) << 20;
  const size_t usable = static_cast<size_t>(static_cast<double>(free_b) * fraction);
  return usable > 2 * reserve ? usable - reserve : usable / 2;
}

namespace {
__global__ void probe_kernel(int* p) {
  if (p) *p = 1;
}
}  // namespace

cudaError_t probe_kernel_image() {
  cudaFuncAttributes attr;
  const cudaError_t err = cudaFuncGetAttributes(&attr, probe_kernel);
  if (err != cudaSuccess) cudaGetLastError();
  return err;
}

}  // namespace cuda
}  // namespace salt
