/// salt/kernels.h — the kernel interface shared by the CPU core and the CUDA plugin.
///
/// Plain C structs so that the same definitions cross the plugin boundary (dlopen) unchanged.
/// All matrices are dense, row-major, float32; all index arrays are int32. Nothing here includes
/// Node headers: the core is usable from any C++17 program.
#ifndef SALT_KERNELS_H
#define SALT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Stable error codes; the binding maps them to the JS `.code` strings of the same name.
enum salt_code {
  SALT_OK = 0,
  SALT_E_ARGUMENT = 1,   ///< a value out of its range (k > m, negative lambda, index out of range ...)
  SALT_E_SHAPE = 2,      ///< inconsistent sizes
  SALT_E_NONFINITE = 3,  ///< NaN or Inf in an input
  SALT_E_NO_MEMORY = 4,  ///< host allocation failed
  SALT_E_INTERNAL = 5,   ///< a bug or an unexpected library failure
  SALT_E_NO_CUDA = 6,    ///< CUDA backend requested but not available
  SALT_E_CUDA = 7,       ///< a CUDA / cuBLAS / cuSOLVER call failed
  SALT_E_CUDA_OOM = 8,   ///< device memory exhausted even with the smallest tile
  SALT_E_IO = 9          ///< a file read or write failed (file copies; no kernel uses it)
};

/// Result of every kernel call: `code == SALT_OK` or an error with a human-readable message.
typedef struct salt_status {
  int32_t code;
  char message[488];
} salt_status;

/// Arguments of topk_cosine: exact top-k by cosine similarity of each query row among the base rows.
typedef struct salt_topk_args {
  const float* queries;  ///< n x d
  int64_t n;             ///< number of queries (may be 0)
  const float* base;     ///< m x d
  int64_t m;             ///< number of base rows (>= 1)
  int64_t d;             ///< width (>= 1)
  int64_t k;             ///< results per query, 1 <= k <= m
  int32_t* out_indices;  ///< n x k, each row by descending score, ties by ascending index
  float* out_scores;     ///< n x k cosine similarities; a zero row has cosine 0 with everything
  int64_t tile_rows;     ///< queries per tile (0 = automatic); bounds memory to O(tile_rows x m)
  int32_t threads;       ///< worker threads (0 = all available)
  int32_t precision;     ///< 0 = FP32; 1 = TF32 tensor cores (CUDA only; CPU ignores it)
} salt_topk_args;

/// Arguments of sparsemax: row-wise sparsemax (Martins & Astudillo 2016) over K candidate scores.
typedef struct salt_sparsemax_args {
  const float* scores;  ///< n x K
  int64_t n;
  int64_t K;             ///< >= 1
  float* out_weights;    ///< n x K, non-negative, each row sums to 1, same positions as the input
  int32_t* out_support;  ///< n: number of non-zero weights of each row (1..K)
  int32_t threads;
} salt_sparsemax_args;

/// Arguments of solve_neighbourhoods. For token i with neighbours N_i = indices[offsets[i]..offsets[i+1])
/// (rows of the anchor matrices), query x_i and optional prior weights w_i (same positions as indices):
///   c_i = argmin ||c A[N_i] - x_i||^2 + lambda ||c - w_i||^2   (w_i = 0 without a prior)
///   out_i = c_i S[N_i]
/// lambda = 0 gives the minimum-norm least-squares solution (pseudo-inverse semantics with a relative
/// singular-value cutoff rcond); lambda > 0 is ridge regression solved by Cholesky.
typedef struct salt_solve_args {
  int64_t n;               ///< tokens
  const int32_t* offsets;  ///< n + 1, non-decreasing, offsets[0] = 0
  const int32_t* indices;  ///< offsets[n] entries in [0, m); lists need not be sorted or disjoint
  const float* prior;      ///< offsets[n] weights w, or NULL for shrinkage towards zero
  const float* queries;    ///< n x ht (the tokens' own rows in PLM space)
  int64_t ht;
  const float* anchors_plm;  ///< m x ht (A)
  int64_t m;
  const float* anchors_src;  ///< m x hs (S)
  int64_t hs;
  double lambda;  ///< >= 0
  double rcond;   ///< relative singular-value cutoff for lambda = 0; < 0 = automatic
  int32_t threads;
  float* out;               ///< n x hs
  float* out_residual;      ///< n: ||c A[N_i] - x_i|| / ||x_i|| (0 when x_i = 0)
  float* out_coef_norm;     ///< n: ||c_i||
  float* out_coefficients;  ///< offsets[n] coefficients c (same positions as indices), or NULL
} salt_solve_args;

/// Arguments of apply_weights: out_i = sum_j weights[j] S[indices[j]] over j in token i's CSR list.
typedef struct salt_apply_args {
  int64_t n;
  const int32_t* offsets;    ///< n + 1
  const int32_t* indices;    ///< offsets[n] entries in [0, m)
  const float* weights;      ///< offsets[n]
  const float* anchors_src;  ///< m x hs
  int64_t m;
  int64_t hs;
  float* out;  ///< n x hs
  int32_t threads;
} salt_apply_args;

/// The automatic rcond for a neighbourhood of k rows of width ht: max(k, ht) * FLT_EPSILON,
/// the convention of LAPACK/NumPy for float32 data.
double salt_default_rcond(int64_t k, int64_t ht);

#ifdef __cplusplus
}
#endif

#endif  // SALT_KERNELS_H
