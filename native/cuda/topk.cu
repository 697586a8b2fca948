// Exact cosine top-k on the GPU.
//
// Queries are processed in tiles sized to the free device memory. For each tile: L2-normalise the
// rows, compute the scores against (a block of) the normalised base with one cuBLAS SGEMM (TF32 only
// when asked for), and select the k best per row with a block-wide radix select:
//   1. four 8-bit passes find the key of the k-th best score (an order-preserving uint32 key);
//   2. every score above it is taken, and among the scores equal to it the ones with the smallest
//      indices are taken in index order (so ties at the boundary follow the CPU rule);
//   3. the k picks are sorted in shared memory by (score descending, index ascending).
// When the base does not fit on the device it is streamed in blocks and the running top-k of a tile
// is merged with each block's top-k by the same kernel (candidates arrive in index order among equal
// scores, which keeps the tie rule exact). Two streams alternate tiles so uploads, GEMMs and
// downloads overlap; device memory is bounded by the tile budget, not by the number of queries.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>

#include "cuda_common.h"
#include "select.h"

namespace salt {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// Device policy of select_topk_row (select.h): shared-memory atomics, and the block-wide ordered
// count of flagged candidates from warp ballots.
struct DeviceSelectOps {
  __device__ void barrier() { __syncthreads(); }
  __device__ void add(unsigned* p, unsigned v) { atomicAdd(p, v); }
  __device__ int fetch_add(int* p, int v) { return atomicAdd(p, v); }
  // Number of flagged threads before `tid` in the block (and the block's total); all threads call it.
  __device__ int ordered_rank(bool flag, SelectShared& sh, int tid, int& total) {
    const unsigned ballot = __ballot_sync(0xffffffffu, flag);
    const int lane = tid & 31, warp = tid >> 5;
    if (lane == 0) sh.warp_counts[warp] = __popc(ballot);
    __syncthreads();
    int before = 0;
    total = 0;
    for (int w = 0; w < kSelectThreads / 32; ++w) {
      if (w < warp) before += sh.warp_counts[w];
      total += sh.warp_counts[w];
    }
    const int rank = before + __popc(ballot & ((1u << lane) - 1u));
    __syncthreads();  // warp_counts is rewritten by the next call
    return rank;
  }
};

// One warp per row: scale to unit L2 norm (norm accumulated in double, as on the CPU).
__global__ void normalise_rows_kernel(float* x, int64_t rows, int64_t d) {
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (warp >= rows) return;
  float* r = x + warp * d;
  double ss = 0;
  for (int64_t j = lane; j < d; j += 32) ss += static_cast<double>(r[j]) * r[j];
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  const float inv = ss > 0 ? static_cast<float>(1.0 / sqrt(ss)) : 0.0f;
  for (int64_t j = lane; j < d; j += 32) r[j] *= inv;
}

// Fills candidate slots [from, to) of each row with sentinels that rank after every real score.
__global__ void fill_sentinels_kernel(float* s, int32_t* idx, int64_t ld, int64_t rows, int from, int to) {
  const int64_t row = blockIdx.x;
  if (row >= rows) return;
  for (int j = from + threadIdx.x; j < to; j += blockDim.x) {
    s[row * ld + j] = -INFINITY;
    idx[row * ld + j] = INT_MAX;
  }
}

// One block (kSelectThreads threads) per row: the k best of L candidates (select.h). Candidate j of
// row r has score scores[r*ld + j] and index idx[r*ld + j], or idx_base + j when idx is null.
__global__ void __launch_bounds__(kSelectThreads)
    select_topk_kernel(const float* __restrict__ scores, const int32_t* __restrict__ idx, int64_t ld, int32_t idx_base,
                       int L, int k, float* __restrict__ out_s, int32_t* __restrict__ out_i, int64_t out_ld) {
  __shared__ SelectShared sh;
  const int64_t row = blockIdx.x;
  DeviceSelectOps ops;
  select_topk_row(scores + row * ld, idx ? idx + row * ld : nullptr, idx_base, L, k, out_s + row * out_ld,
                  out_i + row * out_ld, sh, static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), ops);
}

void normalise(float* x, int64_t rows, int64_t d, cudaStream_t st) {
  if (rows == 0) return;
  const int64_t warps_per_block = kThreads / 32;
  normalise_rows_kernel<<<static_cast<unsigned>(ceil_div(rows, warps_per_block)), kThreads, 0, st>>>(x, rows, d);
  check(cudaGetLastError(), "normalise_rows_kernel launch");
}

// Per-slot state: one query tile in flight on its own stream.
struct Slot {
  DeviceArray<float> q, scores, cand_s[2];
  DeviceArray<int32_t> cand_i[2];
  PinnedArray<float> in, out_s;
  PinnedArray<int32_t> out_i;
  int64_t t0 = -1, rows = 0;
};

}  // namespace

void topk_cosine(const salt_topk_args& a, size_t budget) {
  const int64_t n = a.n, m = a.m, d = a.d, k = a.k;
  if (k > kMaxK) {
    throw CudaFailure{make_status(SALT_E_ARGUMENT, "the CUDA top-k supports k <= %d, got k = %lld (use backend 'cpu')",
                                  kMaxK, static_cast<long long>(k))};
  }
  const size_t fb = sizeof(float);
  // Keep the whole normalised base resident when it takes at most half of the budget; otherwise
  // stream it in blocks of a quarter of the budget (single stream).
  const bool resident = static_cast<size_t>(m) * d * fb <= budget / 2;
  int64_t mb = resident ? m : static_cast<int64_t>(budget / 4 / (static_cast<size_t>(d) * fb));
  mb = std::min(std::max<int64_t>(mb, 1), m);
  int nslots = resident ? 2 : 1;
  const size_t base_bytes = static_cast<size_t>(mb) * d * fb;
  const size_t per_row = static_cast<size_t>(d) * fb + static_cast<size_t>(mb) * fb +
                         2 * static_cast<size_t>(2 * k) * (sizeof(float) + sizeof(int32_t));
  if (budget <= base_bytes) throw DeviceOom{"topk tile sizing (base block)"};
  int64_t rows = static_cast<int64_t>((budget - base_bytes) / (static_cast<size_t>(nslots) * per_row));
  rows = std::min<int64_t>(rows, n);
  if (a.tile_rows > 0) rows = std::min<int64_t>(rows, a.tile_rows);
  rows = std::min<int64_t>(rows, INT32_MAX / mb);  // cuBLAS dimensions and the scores tile stay int-sized
  rows = std::min<int64_t>(rows, 1 << 16);
  if (rows < 1) throw DeviceOom{"topk tile sizing (one query row does not fit)"};
  const int64_t ntiles = ceil_div(n, rows);
  if (ntiles == 1) nslots = 1;

  // Buffers first, streams after: streams are destroyed (and synchronised) before buffers are freed.
  DeviceArray<float> base(static_cast<size_t>(mb) * d);
  Slot slots[2];
  for (int s = 0; s < nslots; ++s) {
    Slot& sl = slots[s];
    sl.q.reset(static_cast<size_t>(rows) * d);
    sl.scores.reset(static_cast<size_t>(rows) * mb);
    for (int p = 0; p < 2; ++p) {
      sl.cand_s[p].reset(static_cast<size_t>(rows) * 2 * k);
      sl.cand_i[p].reset(static_cast<size_t>(rows) * 2 * k);
    }
    sl.in.reset(static_cast<size_t>(rows) * d);
    sl.out_s.reset(static_cast<size_t>(rows) * k);
    sl.out_i.reset(static_cast<size_t>(rows) * k);
  }
  std::unique_ptr<Stream> streams[2];
  std::unique_ptr<Blas> blas[2];
  for (int s = 0; s < nslots; ++s) {
    streams[s].reset(new Stream());
    blas[s].reset(new Blas(streams[s]->get()));
  }
  const cublasComputeType_t compute = a.precision == 1 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;

  if (resident) {
    check(
        cudaMemcpyAsync(base.get(), a.base, static_cast<size_t>(m) * d * fb, cudaMemcpyHostToDevice, streams[0]->get()),
        "cudaMemcpyAsync(base)");
    normalise(base.get(), m, d, streams[0]->get());
    streams[0]->sync();
  }

  auto finish = [&](Slot& sl, Stream& st) {
    if (sl.t0 < 0) return;
    st.sync();
    std::memcpy(a.out_scores + sl.t0 * k, sl.out_s.get(), static_cast<size_t>(sl.rows) * k * sizeof(float));
    std::memcpy(a.out_indices + sl.t0 * k, sl.out_i.get(), static_cast<size_t>(sl.rows) * k * sizeof(int32_t));
    sl.t0 = -1;
  };

  const float one = 1.0f, zero = 0.0f;
  for (int64_t t = 0; t < ntiles; ++t) {
    const int s = static_cast<int>(t % nslots);
    Slot& sl = slots[s];
    Stream& st = *streams[s];
    finish(sl, st);
    sl.t0 = t * rows;
    sl.rows = std::min(rows, n - sl.t0);
    const int R = static_cast<int>(sl.rows);
    std::memcpy(sl.in.get(), a.queries + sl.t0 * d, static_cast<size_t>(R) * d * fb);
    check(cudaMemcpyAsync(sl.q.get(), sl.in.get(), static_cast<size_t>(R) * d * fb, cudaMemcpyHostToDevice, st.get()),
          "cudaMemcpyAsync(queries)");
    normalise(sl.q.get(), R, d, st.get());
    int cur = 0;
    for (int64_t b0 = 0; b0 < m; b0 += mb) {
      const int Lb = static_cast<int>(std::min(mb, m - b0));
      if (!resident) {
        check(cudaMemcpyAsync(base.get(), a.base + b0 * d, static_cast<size_t>(Lb) * d * fb, cudaMemcpyHostToDevice,
                              st.get()),
              "cudaMemcpyAsync(base block)");
        normalise(base.get(), Lb, d, st.get());
      }
      // Row-major scores (R x Lb) = column-major (Lb x R) = base_blockᵀ-as-stored x queries.
      check(cublasGemmEx(blas[s]->get(), CUBLAS_OP_T, CUBLAS_OP_N, Lb, R, static_cast<int>(d), &one, base.get(),
                         CUDA_R_32F, static_cast<int>(d), sl.q.get(), CUDA_R_32F, static_cast<int>(d), &zero,
                         sl.scores.get(), CUDA_R_32F, Lb, compute, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx(scores)");
      const int kb = static_cast<int>(std::min<int64_t>(k, Lb));
      const bool first = b0 == 0;
      float* dst_s = sl.cand_s[cur].get() + (first ? 0 : k);
      int32_t* dst_i = sl.cand_i[cur].get() + (first ? 0 : k);
      select_topk_kernel<<<R, kSelectThreads, 0, st.get()>>>(sl.scores.get(), nullptr, Lb, static_cast<int32_t>(b0), Lb,
                                                             kb, dst_s, dst_i, 2 * k);
      check(cudaGetLastError(), "select_topk_kernel launch");
      if (kb < k) {
        fill_sentinels_kernel<<<R, 64, 0, st.get()>>>(dst_s, dst_i, 2 * k, R, kb, static_cast<int>(k));
        check(cudaGetLastError(), "fill_sentinels_kernel launch");
      }
      if (!first) {
        select_topk_kernel<<<R, kSelectThreads, 0, st.get()>>>(
            sl.cand_s[cur].get(), sl.cand_i[cur].get(), 2 * k, 0, static_cast<int>(2 * k), static_cast<int>(k),
            sl.cand_s[1 - cur].get(), sl.cand_i[1 - cur].get(), 2 * k);
        check(cudaGetLastError(), "select_topk_kernel launch (merge)");
        cur = 1 - cur;
      }
    }
    check(cudaMemcpy2DAsync(sl.out_s.get(), k * sizeof(float), sl.cand_s[cur].get(), 2 * k * sizeof(float),
                            k * sizeof(float), R, cudaMemcpyDeviceToHost, st.get()),
          "cudaMemcpy2DAsync(scores)");
    check(cudaMemcpy2DAsync(sl.out_i.get(), k * sizeof(int32_t), sl.cand_i[cur].get(), 2 * k * sizeof(int32_t),
                            k * sizeof(int32_t), R, cudaMemcpyDeviceToHost, st.get()),
          "cudaMemcpy2DAsync(indices)");
  }
  for (int64_t t = std::max<int64_t>(0, ntiles - nslots); t < ntiles; ++t) {
    const int s = static_cast<int>(t % nslots);
    finish(slots[s], *streams[s]);
  }
}

}  // namespace cuda
}  // namespace salt
