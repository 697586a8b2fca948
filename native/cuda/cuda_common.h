// cuda_common.h — error handling, RAII wrappers and the memory budget shared by the CUDA plugin's
// kernels. Private to native/cuda (never installed, never seen by the addon).
//
// Inside the plugin, failures travel as C++ exceptions (CudaFailure, DeviceOom) so that every
// buffer, stream and handle is released by its destructor on the way out; each exported entry
// catches them and returns a salt_status. Nothing here aborts.
#ifndef SALT_CUDA_COMMON_H
#define SALT_CUDA_COMMON_H

// The toolkit's own runtime headers first: cuBLAS/cuSOLVER headers include "driver_types.h",
// "library_types.h" ... with quotes, which would otherwise resolve next to themselves (for the compile
// check, CUDA 11.8's copies unpacked beside CUDA 11.8's cublas_v2.h) instead of the toolkit's.
#include <cuComplex.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <library_types.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <utility>

#include "salt/core.h"
#include "salt/kernels.h"

namespace salt {
namespace cuda {

/// A CUDA / cuBLAS / cuSOLVER call failed for a reason other than exhausted device memory.
struct CudaFailure {
  salt_status status;
};

/// Device (or pinned host) memory ran out; callers retry with smaller tiles.
struct DeviceOom {
  std::string what;  ///< the API call that failed
};

/// Throws DeviceOom for allocation failures and CudaFailure for anything else.
void check(cudaError_t err, const char* call);
void check(cublasStatus_t st, const char* call);
void check(cusolverStatus_t st, const char* call);

const char* cublas_status_name(cublasStatus_t st);
const char* cusolver_status_name(cusolverStatus_t st);

#define SALT_CU(call) ::salt::cuda::check((call), #call)

/// Selects the device for the calling thread: $SALT_CUDA_DEVICE (default 0).
int select_device();

/// Bytes this call may allocate on the device: `fraction` of what cudaMemGetInfo reports free
/// (default 0.8, $SALT_CUDA_MEMORY_FRACTION overrides), minus a reserve for library workspaces.
size_t memory_budget();

/// Whether the kernels of this plugin have an image (SASS or PTX) loadable on the current device.
cudaError_t probe_kernel_image();

/// Device memory owned by one object; freed on destruction.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t count) { reset(count); }
  ~DeviceArray() { release(); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  void reset(size_t count) {
    release();
    if (count == 0) return;
    void* p = nullptr;
    check(cudaMalloc(&p, count * sizeof(T)), "cudaMalloc");
    p_ = static_cast<T*>(p);
    n_ = count;
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  void release() {
    if (p_) cudaFree(p_);  // synchronises with pending work that may still use the buffer
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  size_t n_ = 0;
};

/// Page-locked host memory (cudaHostAlloc) for asynchronous transfers.
template <class T>
class PinnedArray {
 public:
  PinnedArray() = default;
  explicit PinnedArray(size_t count) { reset(count); }
  ~PinnedArray() { release(); }
  PinnedArray(const PinnedArray&) = delete;
  PinnedArray& operator=(const PinnedArray&) = delete;
  void reset(size_t count) {
    release();
    if (count == 0) return;
    void* p = nullptr;
    check(cudaHostAlloc(&p, count * sizeof(T), cudaHostAllocDefault), "cudaHostAlloc");
    p_ = static_cast<T*>(p);
    n_ = count;
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  void release() {
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  size_t n_ = 0;
};

/// A non-blocking stream; synchronised before it is destroyed so no work outlives its buffers.
class Stream {
 public:
  Stream() { check(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags"); }
  ~Stream() {
    if (s_) {
      cudaStreamSynchronize(s_);
      cudaStreamDestroy(s_);
    }
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }
  void sync() const { check(cudaStreamSynchronize(s_), "cudaStreamSynchronize"); }

 private:
  cudaStream_t s_ = nullptr;
};

/// A cuBLAS handle bound to a stream.
class Blas {
 public:
  explicit Blas(cudaStream_t s) {
    check(cublasCreate(&h_), "cublasCreate");
    check(cublasSetStream(h_, s), "cublasSetStream");
  }
  ~Blas() {
    if (h_) cublasDestroy(h_);
  }
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

/// A cuSOLVER dense handle bound to a stream.
class Solver {
 public:
  explicit Solver(cudaStream_t s) {
    check(cusolverDnCreate(&h_), "cusolverDnCreate");
    check(cusolverDnSetStream(h_, s), "cusolverDnSetStream");
  }
  ~Solver() {
    if (h_) cusolverDnDestroy(h_);
  }
  Solver(const Solver&) = delete;
  Solver& operator=(const Solver&) = delete;
  cusolverDnHandle_t get() const { return h_; }

 private:
  cusolverDnHandle_t h_ = nullptr;
};

/// Runs `attempt(budget)` and, while it runs out of device memory, retries with half the budget
/// (so half-sized tiles) until the budget drops below `min_budget`; then reports E_CUDA_OOM.
/// Converts every failure into a salt_status.
template <class F>
salt_status with_oom_retry(const char* kernel, size_t budget, size_t min_budget, F&& attempt) {
  std::string last;
  for (;;) {
    try {
      attempt(budget);
      return ok_status();
    } catch (const DeviceOom& e) {
      last = e.what;
      cudaGetLastError();  // allocation failures are not sticky; clear the error state
      if (budget / 2 < min_budget) break;
      budget /= 2;
    } catch (const CudaFailure& f) {
      return f.status;
    } catch (const std::bad_alloc&) {
      return make_status(SALT_E_NO_MEMORY, "%s: out of host memory", kernel);
    } catch (const std::exception& e) {
      return make_status(SALT_E_INTERNAL, "%s: internal error: %s", kernel, e.what());
    } catch (...) {
      return make_status(SALT_E_INTERNAL, "%s: internal error: unknown exception", kernel);
    }
  }
  return make_status(SALT_E_CUDA_OOM,
                     "%s: out of device memory even with the smallest tile (%zu bytes); last failure in %s", kernel,
                     budget, last.c_str());
}

/// Runs `body` and converts exceptions into a status (for code paths without OOM retry).
template <class F>
salt_status guarded_cuda(const char* kernel, F&& body) {
  try {
    return body();
  } catch (const DeviceOom& e) {
    cudaGetLastError();
    return make_status(SALT_E_CUDA_OOM, "%s: out of device memory in %s", kernel, e.what.c_str());
  } catch (const CudaFailure& f) {
    return f.status;
  } catch (const std::bad_alloc&) {
    return make_status(SALT_E_NO_MEMORY, "%s: out of host memory", kernel);
  } catch (const std::exception& e) {
    return make_status(SALT_E_INTERNAL, "%s: internal error: %s", kernel, e.what());
  } catch (...) {
    return make_status(SALT_E_INTERNAL, "%s: internal error: unknown exception", kernel);
  }
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Largest neighbourhood (padded) the CUDA solves take; larger ones are rejected with E_ARGUMENT.
constexpr int64_t kSolveMaxNeighbours = 4096;
/// Longest row the GPU sparsemax sorts in shared memory; longer rows use the CPU code.
constexpr int64_t kSparsemaxMaxSortK = 4096;

// Entry points implemented in the .cu files (arguments already validated by the caller).
void topk_cosine(const salt_topk_args& a, size_t budget);
void sparsemax(const salt_sparsemax_args& a, size_t budget);
void solve_neighbourhoods(const salt_solve_args& a, size_t budget);
void apply_weights(const salt_apply_args& a, size_t budget);

}  // namespace cuda
}  // namespace salt

#endif  // SALT_CUDA_COMMON_H
