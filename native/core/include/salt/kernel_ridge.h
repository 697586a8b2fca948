/// salt/kernel_ridge.h — the dense linear algebra of the kernel ridge method (method `salt`): kernel
/// matrices between rows, general matrix products, symmetric eigen-decompositions and Cholesky solves.
/// CPU only (OpenBLAS/LAPACK). Row-major throughout.
#ifndef SALT_KERNEL_RIDGE_H
#define SALT_KERNEL_RIDGE_H

#include <stdint.h>

#include "salt/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Arguments of kernel_matrix. With the kernel
///   k(x, z) = linear * (x . z + 1) + exp((cos(x, z) - 1) / width)
/// (cos = 0 when either row is zero), out = K(X, Z) (n x L) or, with proj, K(X, Z) proj (n x r),
/// computed in tiles of rows so that no n x L matrix is held when proj is given.
typedef struct salt_kernel_args {
  const float* x;     ///< n x d
  int64_t n;          ///< >= 0
  const float* z;     ///< L x d
  int64_t L;          ///< >= 1
  int64_t d;          ///< >= 1
  double linear;      ///< >= 0
  double width;       ///< > 0
  const float* proj;  ///< L x r, or NULL
  int64_t r;          ///< columns of proj (ignored without it)
  float* out;         ///< n x L, or n x r with proj
  int32_t threads;
} salt_kernel_args;

/// Arguments of gemm: C = beta C + op(A) op(B), op(A) rows x inner, op(B) inner x cols. A is stored
/// rows x inner (trans_a 0) or inner x rows (trans_a 1); B inner x cols or cols x inner. All float32
/// (f64 0) or all float64 (f64 1).
typedef struct salt_gemm_args {
  int32_t f64;
  const void* a;
  const void* b;
  void* c;
  int64_t rows, inner, cols;
  int32_t trans_a, trans_b;
  double beta;  ///< 0 or 1
  int32_t threads;
} salt_gemm_args;

/// Arguments of kernel_loo: the exact leave-one-out predictions of kernel ridge regression at one
/// ridge value. With A = K + shift I (K symmetric, n x n, float64) and targets Y (n x w), the LOO
/// prediction of row i is y_i - (A^-1 Y)_i / (A^-1)_ii (the hat-matrix identity for ridge), written as
/// float32 for the first out_cols columns. One Cholesky factorisation (dpotrf), one solve (dpotrs) and
/// the diagonal of A^-1 from L^-1 (dtrtri). K and Y are read only. out_info is 0 on success and i > 0
/// when A is not numerically positive definite (then out is unchanged): not an error status.
typedef struct salt_loo_args {
  const double* k;   ///< n x n
  int64_t n;         ///< >= 1
  double shift;      ///< added to K's diagonal
  const double* y;   ///< n x w
  int64_t w;         ///< >= 1
  int64_t out_cols;  ///< 1 <= out_cols <= w
  float* out;        ///< n x out_cols
  int32_t* out_info;
  int32_t threads;
} salt_loo_args;

/// Arguments of cholesky_solve: solves (A + shift I) X = B for a symmetric positive definite A
/// (float64, LAPACK dpotrf/dpotrs). A is overwritten by the factor, B by X. out_info is 0 on success
/// and i > 0 when the leading minor of order i is not positive definite (then B is unchanged);
/// that is not an error status: the caller decides (another shift, or a coded error).
typedef struct salt_cholesky_args {
  double* a;     ///< n x n
  int64_t n;     ///< >= 1
  double shift;  ///< added to the diagonal before factorising
  double* b;     ///< n x h
  int64_t h;     ///< >= 0
  int32_t* out_info;
  int32_t threads;
} salt_cholesky_args;

#ifdef __cplusplus
}
#endif

#endif  // SALT_KERNEL_RIDGE_H
