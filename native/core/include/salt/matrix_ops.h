/// salt/matrix_ops.h — passes over whole matrices that the TypeScript engine, the evaluation and the
/// readers need besides the three SALT kernels: NaN/Inf scans, column statistics, row norms, row
/// gathers, sorting, and exact Float32 <-> F16/BF16 conversion. CPU only (they are memory-bound).
///
/// Determinism: every floating-point result is computed in the same order as the package's earlier
/// JavaScript loops (float64 accumulation, one value after the other along a row or a column), and
/// the core is compiled with -ffp-contract=off, so results are bit-identical across thread counts
/// and to those loops. Parallel work is split across independent outputs only (rows or columns).
#ifndef SALT_MATRIX_OPS_H
#define SALT_MATRIX_OPS_H

#include <stdint.h>

#include "salt/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/// A dense row-major float32 matrix, read only.
typedef struct salt_matrix_view {
  const float* data;  ///< rows x cols values
  int64_t rows;       ///< >= 0
  int64_t cols;       ///< >= 1
} salt_matrix_view;

/// Arguments of find_nonfinite: the first NaN or +-Inf in row-major order.
typedef struct salt_nonfinite_args {
  salt_matrix_view m;
  const uint8_t* row_mask;  ///< rows entries, or NULL; rows with row_mask[r] == 0 are skipped
  int64_t* out_index;       ///< set to the flat index (r * cols + c) of the first one, or -1
  int32_t threads;          ///< worker threads (0 = all available)
} salt_nonfinite_args;

/// Arguments of column_mean_std: per column, the mean and the population standard deviation
/// (float64), from one pass over the matrix; optionally the row norms of that same pass.
/// Definition (results equal it bit for bit, for every thread count): the rows are cut into blocks
/// of B = max(1, floor(32768 / cols)) rows, and the blocks into groups of 256 blocks. For a block of
/// nb rows, per column: mean_b = (sum of x_ij in row order) / nb, m2_b = sum in row order of
/// (x_ij - mean_b)^2. The blocks of a group are merged in order, then the groups in order, each merge
/// of (na, ma, m2a) with (nb, mb, m2b) being: the second one's as they are when na = 0, else
/// d = mb - ma, mean = ma + d * (nb / n), m2 = (m2a + m2b) + (d * d) * (na * nb / n) with n = na + nb.
/// std_j = sqrt(m2_j / rows). 0 and 0 for a matrix without rows. Norms as row_norms computes them.
typedef struct salt_column_stats_args {
  salt_matrix_view m;
  double* out_mean;  ///< cols
  double* out_std;   ///< cols
  int32_t threads;
  int32_t want_norms;  ///< nonzero: also out_norms[r] = sqrt(sum_j x_rj^2) (float64, j in order)
  double* out_norms;   ///< rows, when want_norms
} salt_column_stats_args;

/// Arguments of row_norms: out_i = sqrt(sum_j x_rj^2) (float64, j in order) for r = ids[i], or r = i
/// when ids is NULL (then n must equal m.rows).
typedef struct salt_row_norms_args {
  salt_matrix_view m;
  const int32_t* ids;  ///< n row indices in [0, rows), or NULL
  int64_t n;
  double* out;  ///< n
  int32_t threads;
} salt_row_norms_args;

/// Arguments of gather_rows: out row i = m row ids[i].
typedef struct salt_gather_args {
  salt_matrix_view m;
  const int32_t* ids;  ///< n row indices in [0, rows)
  int64_t n;
  float* out;  ///< n x cols
  int32_t threads;
} salt_gather_args;

/// Arguments of copy_rows: out row i = m row ids[i] for every ids[i] >= 0; rows with ids[i] = -1
/// are left as they are.
typedef struct salt_copy_rows_args {
  salt_matrix_view m;
  const int32_t* ids;  ///< n entries in [-1, rows)
  int64_t n;
  float* out;  ///< n x cols, written in place
  int32_t threads;
} salt_copy_rows_args;

/// The 16-bit float formats of convert_floats.
enum salt_half_kind { SALT_HALF_F16 = 0, SALT_HALF_BF16 = 1 };

/// Arguments of encode_floats (float32 -> 16-bit, round to nearest, ties to even; overflow gives
/// Inf; NaN stays a quiet NaN) and decode_floats (16-bit -> float32, exact).
typedef struct salt_convert_args {
  int32_t kind;       ///< salt_half_kind
  int64_t n;          ///< values
  const float* f32;   ///< encode: the input; decode: unused
  const uint16_t* h;  ///< decode: the input; encode: unused
  float* out_f32;     ///< decode: n outputs
  uint16_t* out_h;    ///< encode: n outputs
  int32_t threads;
} salt_convert_args;

/// Arguments of widen_floats (float32 -> float64, exact) and narrow_floats (float64 -> float32, round
/// to nearest, ties to even; overflow gives Inf): the conversions of JavaScript's typed-array `set`.
typedef struct salt_precision_args {
  int64_t n;          ///< values
  const float* f32;   ///< widen: the input; narrow: unused
  const double* f64;  ///< narrow: the input; widen: unused
  float* out_f32;     ///< narrow: n outputs
  double* out_f64;    ///< widen: n outputs
  int32_t threads;
} salt_precision_args;

/// Arguments of sort_doubles: sorts in place, ascending, -0 before +0, NaN last (the order of
/// JavaScript's Float64Array.prototype.sort).
typedef struct salt_sort_args {
  double* values;
  int64_t n;
} salt_sort_args;

#ifdef __cplusplus
}
#endif

#endif  // SALT_MATRIX_OPS_H
