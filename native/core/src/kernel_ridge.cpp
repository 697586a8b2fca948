// Dense linear algebra of the kernel ridge method (salt/kernel_ridge.h): kernel matrices, matrix
// products, symmetric eigen-decompositions and Cholesky solves on OpenBLAS/LAPACK. The BLAS calls run
// at the top level, so OpenBLAS (the OpenMP build) spreads each one over the ThreadScope's threads.
// The kernel loop below clamps, divides and rounds per element. With GCC's default -ftrapping-math it
// keeps those as branches (an operation guarded by a branch may not be executed speculatively), so
// only the AVX-512 clone (masked operations) vectorised and the AVX2 one ran scalar, ~7x slower. No
// code here reads the floating-point exception flags, and the option changes no value.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "internal.h"

extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc);
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda, int* info);
void ssyrk_(const char* uplo, const char* trans, const int* n, const int* k, const float* alpha, const float* a,
            const int* lda, const float* beta, float* c, const int* ldc);
void dpotrs_(const char* uplo, const int* n, const int* nrhs, const double* a, const int* lda, double* b,
             const int* ldb, int* info);
}

namespace salt {
namespace {

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

bool all_finite(const double* p, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

// Row-major C (rows x cols) = beta C + op(A) op(B) through the column-major BLAS: C^T = op(B)^T op(A)^T.
template <class T, class F>
void gemm_rm(F blas, int64_t rows, int64_t inner, int64_t cols, const T* A, bool ta, const T* B, bool tb, T beta,
             T* C) {
  if (rows == 0 || cols == 0) return;
  if (inner == 0) {
    if (beta == T(0)) std::fill(C, C + rows * cols, T(0));
    return;
  }
  const int m = static_cast<int>(cols), n = static_cast<int>(rows), k = static_cast<int>(inner);
  const int ldb = static_cast<int>(tb ? inner : cols), lda = static_cast<int>(ta ? rows : inner), ldc = m;
  const T one = 1;
  blas(tb ? "T" : "N", ta ? "T" : "N", &m, &n, &k, &one, B, &ldb, A, &lda, &beta, C, &ldc);
}

// Row L2 norms as float (the float64 norms of matrix_ops.cpp's row_norms, rounded).
salt_status row_norms_f(const float* x, int64_t n, int64_t d, int32_t threads, std::vector<float>& out) {
  std::vector<double> norms(static_cast<size_t>(n));
  salt_row_norms_args a{{x, n, d}, nullptr, n, norms.data(), threads};
  const salt_status st = cpu::row_norms(a);
  out.assign(norms.begin(), norms.end());
  return st;
}

// exp(x) for x <= 0 in float32 without a libm call per element, so the loop vectorises: x = n ln2 + f
// (Cody-Waite, |f| <= ln2 / 2), exp(f) by its degree-6 Taylor polynomial (relative error < 2e-7 on
// that interval), times 2^n through the exponent bits. Below -87 (2^-126) the result is 0.
inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : (x > 0.0f ? 0.0f : x);
  const float n = __builtin_rintf(x * 1.44269504088896341f);
  const float f = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.0f / 720;
  p = p * f + 1.0f / 120;
  p = p * f + 1.0f / 24;
  p = p * f + 1.0f / 6;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// One row of the kernel: dot products in, k(x, z_j) out.
SALT_VECTOR_CLONES void kernel_row(float* row, const float* nz, float ni, int64_t L, float lin, float inv_w) {
  for (int64_t j = 0; j < L; ++j) {
    const float dot = row[j], nn = ni * nz[j];
    const float cos = nn > 0 ? dot / nn : 0.0f;
    row[j] = lin * (dot + 1.0f) + exp_nonpositive((cos - 1.0f) * inv_w);
  }
}

}  // namespace

namespace cpu {

salt_status kernel_matrix(const salt_kernel_args& a) {
  ThreadScope threads(a.threads);
  SALT_REQUIRE(a.n >= 0 && a.L >= 1 && a.d >= 1, SALT_E_SHAPE, "kernel_matrix: need n >= 0, L >= 1, d >= 1");
  SALT_REQUIRE(a.z && a.out && (a.n == 0 || a.x), SALT_E_ARGUMENT, "kernel_matrix: null buffer");
  SALT_REQUIRE(a.linear >= 0 && std::isfinite(a.linear), SALT_E_ARGUMENT, "kernel_matrix: linear must be >= 0");
  SALT_REQUIRE(a.width > 0 && std::isfinite(a.width), SALT_E_ARGUMENT, "kernel_matrix: width must be > 0");
  SALT_REQUIRE(!a.proj || a.r >= 1, SALT_E_SHAPE, "kernel_matrix: proj needs r >= 1");
  SALT_REQUIRE(fits_int(a.L) && fits_int(a.d) && fits_int(a.r), SALT_E_SHAPE, "kernel_matrix: sizes beyond 2^31");
  if (a.n == 0) return ok_status();
  return guarded([&]() -> salt_status {
    std::vector<float> nz, nx;
    salt_status st = row_norms_f(a.z, a.L, a.d, a.threads, nz);
    if (st.code == SALT_OK) st = row_norms_f(a.x, a.n, a.d, a.threads, nx);
    if (st.code != SALT_OK) return st;
    // Tiles of rows: a tile's kernel block is at most 4M floats (16 MB) when it is projected.
    const int64_t tile = a.proj ? std::max<int64_t>(1, std::min<int64_t>(a.n, (int64_t(1) << 22) / a.L)) : a.n;
    std::vector<float> block;
    if (a.proj) block.resize(static_cast<size_t>(tile * a.L));
    const float lin = static_cast<float>(a.linear), inv_w = static_cast<float>(1.0 / a.width);
    for (int64_t t0 = 0; t0 < a.n; t0 += tile) {
      const int64_t rows = std::min(tile, a.n - t0);
      float* K = a.proj ? block.data() : a.out + t0 * a.L;
      gemm_rm<float>(sgemm_, rows, a.d, a.L, a.x + t0 * a.d, false, a.z, true, 0.0f, K);
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < rows; ++i) kernel_row(K + i * a.L, nz.data(), nx[t0 + i], a.L, lin, inv_w);
      if (a.proj) gemm_rm<float>(sgemm_, rows, a.L, a.r, K, false, a.proj, false, 0.0f, a.out + t0 * a.r);
    }
    return ok_status();
  });
}

salt_status gemm(const salt_gemm_args& a) {
  ThreadScope threads(a.threads);
  SALT_REQUIRE(a.rows >= 0 && a.inner >= 0 && a.cols >= 0, SALT_E_SHAPE, "gemm: negative size");
  SALT_REQUIRE(fits_int(a.rows) && fits_int(a.inner) && fits_int(a.cols), SALT_E_SHAPE, "gemm: sizes beyond 2^31");
  SALT_REQUIRE(a.beta == 0 || a.beta == 1, SALT_E_ARGUMENT, "gemm: beta must be 0 or 1");
  SALT_REQUIRE((a.rows == 0 || a.cols == 0) || (a.c && (a.inner == 0 || (a.a && a.b))), SALT_E_ARGUMENT,
               "gemm: null buffer");
  return guarded([&]() -> salt_status {
    // C = A^T A with A stored inner x rows: one symmetric rank-k update (half the work), mirrored.
    if (!a.f64 && a.a == a.b && a.trans_a && !a.trans_b && a.rows == a.cols && a.rows > 0 && a.inner > 0) {
      const int n = static_cast<int>(a.rows), k = static_cast<int>(a.inner);
      const float one = 1, beta = static_cast<float>(a.beta);
      float* C = static_cast<float*>(a.c);
      // Column-major, the stored A is A^T (n x k, ld n): C = (A^T)(A^T)^T, upper triangle of the
      // column-major C = lower triangle of the row-major one.
      ssyrk_("U", "N", &n, &k, &one, static_cast<const float*>(a.a), &n, &beta, C, &n);
      for (int64_t i = 0; i < a.rows; ++i)
        for (int64_t j = i + 1; j < a.rows; ++j) C[i * a.rows + j] = C[j * a.rows + i];
      return ok_status();
    }
    if (a.f64)
      gemm_rm<double>(dgemm_, a.rows, a.inner, a.cols, static_cast<const double*>(a.a), a.trans_a != 0,
                      static_cast<const double*>(a.b), a.trans_b != 0, a.beta, static_cast<double*>(a.c));
    else
      gemm_rm<float>(sgemm_, a.rows, a.inner, a.cols, static_cast<const float*>(a.a), a.trans_a != 0,
                     static_cast<const float*>(a.b), a.trans_b != 0, static_cast<float>(a.beta),
                     static_cast<float*>(a.c));
    return ok_status();
  });
}

salt_status kernel_loo(const salt_loo_args& a) {
  ThreadScope threads(a.threads);
  SALT_REQUIRE(a.n >= 1 && a.n <= 46340 && a.w >= 1 && a.out_cols >= 1 && a.out_cols <= a.w && fits_int(a.w),
               SALT_E_SHAPE, "kernel_loo: need 1 <= n <= 46340, 1 <= out_cols <= w");
  SALT_REQUIRE(a.k && a.y && a.out && a.out_info, SALT_E_ARGUMENT, "kernel_loo: null buffer");
  SALT_REQUIRE(std::isfinite(a.shift), SALT_E_ARGUMENT, "kernel_loo: shift must be finite");
  SALT_REQUIRE(all_finite(a.k, a.n * a.n) && all_finite(a.y, a.n * a.w), SALT_E_NONFINITE,
               "kernel_loo: NaN or Inf in the kernel matrix or the targets");
  return guarded([&]() -> salt_status {
    const int n = static_cast<int>(a.n), oc = static_cast<int>(a.out_cols);
    const int64_t nn = a.n;
    std::vector<double> L(a.k, a.k + nn * nn);
    for (int64_t i = 0; i < nn; ++i) L[i * nn + i] += a.shift;
    // Row-major symmetric A is its own column-major transpose; "L": A = L L^T, L lower (column-major).
    int info = 0;
    dpotrf_("L", &n, L.data(), &n, &info);
    *a.out_info = info;
    if (info != 0) return ok_status();
    // A^-1 Y for the columns asked for, solved in column-major order (column c of Y contiguous).
    std::vector<double> r(static_cast<size_t>(nn * a.out_cols));
    for (int64_t i = 0; i < nn; ++i)
      for (int64_t c = 0; c < a.out_cols; ++c) r[c * nn + i] = a.y[i * a.w + c];
    dpotrs_("L", &n, &oc, L.data(), &n, r.data(), &n, &info);
    if (info != 0) return make_status(SALT_E_INTERNAL, "kernel_loo: dpotrs failed (info %d)", info);
    // (A^-1)_ii = sum_k ((L^-1)_ki)^2: column i of L^-1 (column-major, contiguous from row i on).
    dtrtri_("L", "N", &n, L.data(), &n, &info);
    if (info != 0) {
      *a.out_info = info;
      return ok_status();
    }
    for (int64_t i = 0; i < nn; ++i) {
      const double* col = L.data() + i * nn;
      double d = 0;
      for (int64_t k = i; k < nn; ++k) d += col[k] * col[k];
      for (int64_t c = 0; c < a.out_cols; ++c)
        a.out[i * a.out_cols + c] = static_cast<float>(a.y[i * a.w + c] - r[c * nn + i] / d);
    }
    return ok_status();
  });
}

salt_status cholesky_solve(const salt_cholesky_args& a) {
  ThreadScope threads(a.threads);
  SALT_REQUIRE(a.n >= 1 && a.n <= 46340 && a.h >= 0 && fits_int(a.h), SALT_E_SHAPE,
               "cholesky_solve: need 1 <= n <= 46340, h >= 0");
  SALT_REQUIRE(a.a && a.out_info && (a.h == 0 || a.b), SALT_E_ARGUMENT, "cholesky_solve: null buffer");
  SALT_REQUIRE(std::isfinite(a.shift), SALT_E_ARGUMENT, "cholesky_solve: shift must be finite");
  return guarded([&]() -> salt_status {
    const int n = static_cast<int>(a.n), h = static_cast<int>(a.h);
    if (a.shift != 0)
      for (int64_t i = 0; i < a.n; ++i) a.a[i * a.n + i] += a.shift;
    // Row-major symmetric A is its own column-major transpose; "L" reads the lower triangle.
    int info = 0;
    dpotrf_("L", &n, a.a, &n, &info);
    *a.out_info = info;
    if (info != 0 || h == 0) return ok_status();
    // B row-major n x h is B^T in column-major order: transpose into column-major, solve, transpose back.
    std::vector<double> bt(static_cast<size_t>(a.n * a.h));
    for (int64_t i = 0; i < a.n; ++i)
      for (int64_t j = 0; j < a.h; ++j) bt[j * a.n + i] = a.b[i * a.h + j];
    dpotrs_("L", &n, &h, a.a, &n, bt.data(), &n, &info);
    if (info != 0) return make_status(SALT_E_INTERNAL, "cholesky_solve: dpotrs failed (info %d)", info);
    for (int64_t i = 0; i < a.n; ++i)
      for (int64_t j = 0; j < a.h; ++j) a.b[i * a.h + j] = bt[j * a.n + i];
    return ok_status();
  });
}

salt_status cholesky_whiten(const salt_cholesky_args& a) {
  ThreadScope threads(a.threads);
  SALT_REQUIRE(a.n >= 1 && a.n <= 46340, SALT_E_SHAPE, "cholesky_whiten: need 1 <= n <= 46340");
  SALT_REQUIRE(a.a && a.out_info, SALT_E_ARGUMENT, "cholesky_whiten: null buffer");
  SALT_REQUIRE(std::isfinite(a.shift), SALT_E_ARGUMENT, "cholesky_whiten: shift must be finite");
  return guarded([&]() -> salt_status {
    const int n = static_cast<int>(a.n);
    if (a.shift != 0)
      for (int64_t i = 0; i < a.n; ++i) a.a[i * a.n + i] += a.shift;
    int info = 0;
    // Column-major: A = L L^T (lower), then L^-1 in place. Read row-major, the upper triangle then
    // holds (L^-1)^T = L^-T =: T, with T^T A T = I.
    dpotrf_("L", &n, a.a, &n, &info);
    *a.out_info = info;
    if (info != 0) return ok_status();
    dtrtri_("L", "N", &n, a.a, &n, &info);
    if (info != 0) {
      *a.out_info = info;
      return ok_status();
    }
    for (int64_t i = 0; i < a.n; ++i)
      for (int64_t j = 0; j < i; ++j) a.a[i * a.n + j] = 0;
    return ok_status();
  });
}

}  // namespace cpu
}  // namespace salt
