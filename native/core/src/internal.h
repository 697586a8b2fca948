// Private helpers of the core (not installed, not used by the binding).
#ifndef SALT_INTERNAL_H
#define SALT_INTERNAL_H

#include <omp.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <new>

#include "salt/core.h"

// A loop function compiled for AVX-512, AVX2 and baseline x86-64, the version picked at load time
// (prebuilds must run on any x86-64). Lanes must run across independent outputs, never inside one
// sum, so that every version gives the same bits (the core is built with -ffp-contract=off).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SALT_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SALT_VECTOR_CLONES
#endif

namespace salt {

// Sets the OpenMP thread count for parallel regions started from the calling thread (the ICV is
// per thread, so concurrent calls from different worker threads do not disturb each other) and
// restores it afterwards.
// A request beyond 4x the cores is clamped: libgomp exits the process when it cannot create a thread.
// The OpenMP worker threads of the team (not the calling thread) run at a lower scheduling
// priority (see lower_team_priority in plugin.cpp).
void lower_team_priority();

class ThreadScope {
 public:
  explicit ThreadScope(int32_t threads) : previous_(omp_get_max_threads()) {
    const int procs = omp_get_num_procs();
    omp_set_num_threads(threads > 0 ? (threads < 4 * procs ? threads : 4 * procs) : procs);
    lower_team_priority();
  }
  ~ThreadScope() { omp_set_num_threads(previous_); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
};

// Collects failures inside OpenMP regions: an exception must not leave a parallel region (or a
// worksharing iteration), or the runtime terminates the process. run() executes one piece of work,
// catching everything; once something failed, later pieces are skipped.
class RegionErrors {
 public:
  template <class F>
  void run(F&& body) noexcept {
    if (code_.load(std::memory_order_relaxed) != SALT_OK) return;
    try {
      body();
    } catch (const std::bad_alloc&) {
      set(SALT_E_NO_MEMORY);
    } catch (...) {
      set(SALT_E_INTERNAL);
    }
  }
  bool failed() const { return code_.load() != SALT_OK; }
  salt_status status(const char* where) const {
    return code_.load() == SALT_E_NO_MEMORY
               ? make_status(SALT_E_NO_MEMORY, "out of host memory in %s", where)
               : make_status(SALT_E_INTERNAL, "internal error in %s (exception in a worker thread)", where);
  }

 private:
  void set(int32_t c) {
    int32_t none = SALT_OK;
    code_.compare_exchange_strong(none, c);
  }
  std::atomic<int32_t> code_{SALT_OK};
};

// Returns make_status(code, ...) from the calling function when cond is false.
#define SALT_REQUIRE(cond, code, ...)                   \
  do {                                                  \
    if (!(cond)) return make_status(code, __VA_ARGS__); \
  } while (0)

// Position of the first NaN/Inf in a rows x cols matrix, or -1. Parallel; deterministic.
int64_t first_nonfinite(const float* p, int64_t count);

// Reports the first NaN/Inf of a matrix as an E_NONFINITE status naming `what`.
salt_status check_finite(const char* what, const float* p, int64_t rows, int64_t cols);

// Runs `body` and converts C++ exceptions into statuses (the core never lets one escape).
template <class F>
salt_status guarded(F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return make_status(SALT_E_NO_MEMORY, "out of host memory");
  } catch (const std::exception& e) {
    return make_status(SALT_E_INTERNAL, "internal error: %s", e.what());
  } catch (...) {
    return make_status(SALT_E_INTERNAL, "internal error: unknown exception");
  }
}

}  // namespace salt

// BLAS / LAPACK (Fortran ABI, provided by OpenBLAS).
extern "C" {
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a,
            const int* lda, const double* beta, double* c, const int* ldc);
void dgemv_(const char* trans, const int* m, const int* n, const double* alpha, const double* a, const int* lda,
            const double* x, const int* incx, const double* beta, double* y, const int* incy);
void dposv_(const char* uplo, const int* n, const int* nrhs, double* a, const int* lda, double* b, const int* ldb,
            int* info);
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w, double* work,
             const int* lwork, int* iwork, const int* liwork, int* info);
void sgemv_(const char* trans, const int* m, const int* n, const float* alpha, const float* a, const int* lda,
            const float* x, const int* incx, const float* beta, float* y, const int* incy);
char* openblas_get_config(void);
char* openblas_get_corename(void);
// Present in OpenBLAS builds with DYNAMIC_ARCH (Debian's): picks the kernels for the CPU, honouring
// OPENBLAS_CORETYPE. Weak, so that a build against another OpenBLAS still links.
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
}

#endif  // SALT_INTERNAL_H
