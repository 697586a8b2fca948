/// salt/core.h — the Node-agnostic C++ core of salt-transfer: the CPU reference backend and the
/// backend registry that opens accelerator plugins. Never throws across its API, never aborts.
#ifndef SALT_CORE_H
#define SALT_CORE_H

#include <string>

#include "salt/file_copy.h"
#include "salt/kernel_ridge.h"
#include "salt/kernels.h"
#include "salt/matrix_ops.h"
#include "salt/plugin.h"

namespace salt {

/// Builds a status with a formatted message (printf-style).
salt_status make_status(int32_t code, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/// The success status.
salt_status ok_status();
/// "E_ARGUMENT", "E_SHAPE", ... for a salt_code.
const char* code_name(int32_t code);

/// Argument checks shared by every backend (shapes, ranges, NaN/Inf, index bounds).
/// Each returns SALT_OK or an error naming the argument.
salt_status check_topk(const salt_topk_args& a);
salt_status check_sparsemax(const salt_sparsemax_args& a);
salt_status check_solve(const salt_solve_args& a);
salt_status check_apply(const salt_apply_args& a);

/// The CPU backend (FAISS + OpenBLAS/LAPACK + OpenMP). Each entry validates its arguments first.
namespace cpu {
/// Exact cosine top-k via FAISS inner products on L2-normalised rows, tiled over the queries.
salt_status topk_cosine(const salt_topk_args& a);
/// Row-wise sparsemax.
salt_status sparsemax(const salt_sparsemax_args& a);
/// Per-token Gram-form least squares / ridge solves (double precision, LAPACK), OpenMP over tokens.
salt_status solve_neighbourhoods(const salt_solve_args& a);
/// Weighted sums of anchor rows.
salt_status apply_weights(const salt_apply_args& a);

/// Whole-matrix passes (salt/matrix_ops.h); CPU only, bit-identical for every thread count.
/// First NaN/Inf in row-major order (masked rows skipped).
salt_status find_nonfinite(const salt_nonfinite_args& a);
/// Per-column mean and population standard deviation (float64).
salt_status column_mean_std(const salt_column_stats_args& a);
/// L2 norms of rows (float64).
salt_status row_norms(const salt_row_norms_args& a);
/// Copies listed rows into a new matrix.
salt_status gather_rows(const salt_gather_args& a);
/// out row i = m row ids[i] where ids[i] >= 0 (in place; -1 leaves the row).
salt_status copy_rows(const salt_copy_rows_args& a);
/// Float32 -> F16 / BF16 bits, round to nearest, ties to even.
salt_status encode_floats(const salt_convert_args& a);
/// F16 / BF16 bits -> Float32, exact.
salt_status decode_floats(const salt_convert_args& a);
/// Ascending sort in place (-0 before +0, NaN last).
salt_status sort_doubles(const salt_sort_args& a);
/// float32 -> float64 (exact); see salt_precision_args.
salt_status widen_floats(const salt_precision_args& a);
/// float64 -> float32 (round to nearest even); see salt_precision_args.
salt_status narrow_floats(const salt_precision_args& a);
/// Kernel ridge linear algebra (salt/kernel_ridge.h).
/// K(X, Z), or K(X, Z) proj in tiles.
salt_status kernel_matrix(const salt_kernel_args& a);
/// C = beta C + op(A) op(B) (float32 or float64).
salt_status gemm(const salt_gemm_args& a);
/// Exact leave-one-out predictions of kernel ridge regression at one ridge value (float64 solve).
salt_status kernel_loo(const salt_loo_args& a);
/// (A + shift I) X = B by Cholesky (float64); out_info > 0 when A + shift I is not positive definite.
salt_status cholesky_solve(const salt_cholesky_args& a);
/// T = L^-T (upper triangular, row-major, in place of A) for A + shift I = L L^T, so T^T (A + shift I) T = I;
/// b and h are unused; out_info > 0 when A + shift I is not positive definite.
salt_status cholesky_whiten(const salt_cholesky_args& a);
/// Copies a byte range of one open file to another, at a given offset or its current one (salt/file_copy.h).
salt_status copy_file_range_all(const salt_file_copy_args& a);
/// Starts writing a byte range of an open file back to disk (Linux; elsewhere nothing). Not a flush.
salt_status start_writeback(const salt_writeback_args& a);
/// Writes a file range or encoded floats at an offset, the whole blocks with direct I/O (salt/file_copy.h).
salt_status write_direct(const salt_direct_write_args& a);
}  // namespace cpu

/// Versions and capabilities of the CPU backend.
struct CpuInfo {
  std::string faiss;    ///< FAISS version
  std::string blas;     ///< BLAS/LAPACK library and its configuration
  int max_threads = 1;  ///< OpenMP threads available
};
CpuInfo cpu_info();

/// Makes OpenBLAS use the kernels this CPU can run when its own detection fell back to the generic
/// Prescott (SSE3) ones: OpenBLAS 0.3.21 (Debian 12, and our prebuilds) does not know newer Intel
/// models such as Emerald Rapids; there its SGEMM ran at 37 GFLOP/s on 2 cores, 164-265 with SkylakeX.
/// Picks SkylakeX with AVX-512 (F, CD, BW, DQ, VL), else Haswell with AVX2 + FMA, else nothing. Does
/// nothing when the user set OPENBLAS_CORETYPE or when OpenBLAS detected another core. Call it before
/// any BLAS work (the addon does, when it loads): the kernels must not change under a running call.
/// Returns a note on what was done (empty when nothing was). Runs once; later calls return the note.
std::string select_blas_kernels();

/// Lowers the calling thread's scheduling priority to nice 10 (Linux; where it is already lower, or
/// elsewhere, nothing). The OpenMP worker threads of the kernels do this themselves; the package's
/// tokenizer workers call it, so that on a machine with few cores the application's event loop and
/// V8's garbage-collection helpers run first.
void lower_thread_priority();

/// glibc: serves every allocation of `bytes` or more with its own mmap, freed with munmap (mallopt
/// M_MMAP_THRESHOLD, which also ends glibc's raising of that threshold after each large free). With
/// the raising, the multi-MB buffers of the file readers, the tokenizer worker and the native
/// threads were kept in up to 16 per-thread arenas after being freed: about 0.5 GB of a 1B-model
/// transfer's peak resident memory. Process-wide: the CLI calls it, a library never does by itself.
/// False where not supported (other C libraries) or refused.
bool fix_malloc_mmap_threshold(int64_t bytes);

/// Result of looking for an accelerator plugin.
struct PluginState {
  const salt_plugin_v1* plugin = nullptr;  ///< non-null when loaded and a device is usable
  std::string path;                        ///< the file that was tried (or loaded)
  std::string reason;                      ///< why it is unavailable (empty when loaded)
  std::string description;                 ///< the plugin's describe() JSON when loaded
};

/// Loads the CUDA plugin once (thread-safe) and returns what happened. Search order: the path in
/// $SALT_CUDA_PLUGIN, then `salt_cuda.so` in the folder of the shared object holding this core.
const PluginState& cuda_plugin();

}  // namespace salt

#endif  // SALT_CORE_H
