// Per-token neighbourhood regressions (solve_neighbourhoods) and weighted sums (apply_weights) on
// the GPU. Same mathematics as native/core/src/solve.cpp, in double precision for the k x k systems:
//   d = argmin ||d A_N - x'||^2 + lambda ||d||^2,  x' = x - w A_N,  c = w + d,  out = c S_N.
//
// Tokens are sorted by neighbourhood size k and processed in tiles of one padded size kp (k rounded
// up; padding rows are zero, which leaves the ridge solution unchanged and adds only exactly-zero
// eigenvalues, which the pseudo-inverse drops). Per tile, on the device:
//   gather A_N (double, from the resident anchors) -> x' = x - w A_N, rhs = A_N x', Gram = A_N A_Nᵀ
//   (three strided-batched DGEMMs) ->
//   lambda > 0: batched Cholesky (potrfBatched + potrsBatched); matrices that are not positive
//               definite in floating point take the eigen path below, like the CPU's dposv fallback;
//   lambda = 0: batched Jacobi eigen-decomposition (cuSOLVER's syevjBatched for kp <= 32, our block
//               Jacobi kernel of jacobi.h for kp <= 128, one syevd per token beyond, and syevd for any
//               matrix that did not converge), then the minimum-norm solution over the eigenpairs above
//               rcond^2 * e_max;
//   c = w + d, residual (a batched DGEMV as DGEMM), and out = c S_N (a fused gather-and-combine
//   kernel reading each neighbour's S row once, accumulated in double).
// Two slots (streams, handles, buffers) alternate tiles so one tile's transfers overlap the other's
// compute. The anchor matrices are resident; everything else is bounded by the tile budget.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "cuda_common.h"
#include "jacobi.h"

namespace salt {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBatchedEig = 32;  // syevjBatched handles matrices up to 32 x 32

int64_t padded_k(int64_t k) { return k <= kMaxBatchedEig ? (k + 7) / 8 * 8 : (k + 31) / 32 * 32; }

// Block (t, r) with r < kp copies anchor row idx[t][r] (or zeros for padding) into X[t][r][:] as
// double; block (t, kp) copies the query into x0 and xq and the prior into w.
__global__ void gather_kernel(const float* __restrict__ A, const int32_t* __restrict__ idx,
                              const float* __restrict__ prior, const float* __restrict__ q, int64_t ht, int kp,
                              double* __restrict__ X, double* __restrict__ x0, double* __restrict__ xq,
                              double* __restrict__ w) {
  const int64_t t = blockIdx.x;
  const int r = blockIdx.y;
  if (r < kp) {
    const int32_t row = idx[t * kp + r];
    double* dst = X + (t * kp + r) * ht;
    if (row >= 0) {
      const float* src = A + static_cast<int64_t>(row) * ht;
      for (int64_t j = threadIdx.x; j < ht; j += blockDim.x) dst[j] = src[j];
    } else {
      for (int64_t j = threadIdx.x; j < ht; j += blockDim.x) dst[j] = 0.0;
    }
  } else {
    const float* src = q + t * ht;
    for (int64_t j = threadIdx.x; j < ht; j += blockDim.x) {
      const double v = src[j];
      x0[t * ht + j] = v;
      xq[t * ht + j] = v;
    }
    for (int i = threadIdx.x; i < kp; i += blockDim.x)
      w[t * kp + i] = prior ? static_cast<double>(prior[t * kp + i]) : 0.0;
  }
}

__global__ void add_diagonal_kernel(double* G, int64_t T, int kp, double lambda) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * kp) return;
  const int64_t t = i / kp, r = i % kp;
  G[t * kp * kp + r * kp + r] += lambda;
}

__global__ void pointer_kernel(double* base_a, double* base_b, int64_t T, int64_t stride_a, int64_t stride_b,
                               double** pa, double** pb) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= T) return;
  pa[t] = base_a + t * stride_a;
  pb[t] = base_b + t * stride_b;
}

// Minimum-norm solve from an eigen-decomposition, one thread per token with mode != 0:
//   mode 1: all kp eigenpairs of the padded matrix (batched Jacobi);
//   mode 2: the leading k x k block was decomposed (per-token syevd; leading dimension kp).
// Eigenvalues at or below rcond^2 * e_max (and non-positive ones) are dropped, as on the CPU.
__global__ void pinv_kernel(const double* __restrict__ V, const double* __restrict__ E, const double* __restrict__ rhs,
                            const int32_t* __restrict__ kk, const int32_t* __restrict__ mode, int64_t T, int kp,
                            int64_t ht, double rcond, double* __restrict__ dsol) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= T || mode[t] == 0) return;
  const int k = kk[t];
  pinv_from_eigen(V + t * kp * kp, E + t * kp, rhs + t * kp, mode[t] == 1 ? kp : k, kp, k, ht, rcond, dsol + t * kp);
}

struct BlockBarrier {
  __device__ void operator()() const { __syncthreads(); }
};

// One block per matrix: block Jacobi (jacobi.h) on G_t in place with eigenvectors in Vb_t; then
// E_t = the eigenvalues and G_t = the eigenvectors (the layout pinv_kernel's mode 1 expects).
// info[t] = 1 when the sweeps did not converge (that matrix is redone with syevd).
__global__ void __launch_bounds__(kThreads)
    jacobi_kernel(double* G, double* Vb, double* E, int* info, int kp, int max_sweeps) {
  __shared__ double rc[kMaxJacobi / 2 + 1], rs[kMaxJacobi / 2 + 1], red[2 * kThreads];
  __shared__ int rp[kMaxJacobi / 2 + 1], rq[kMaxJacobi / 2 + 1];
  const int64_t t = blockIdx.x;
  double* A = G + t * kp * kp;
  double* V = Vb + t * kp * kp;
  const int sweeps = jacobi_eigen(A, V, kp, rc, rs, rp, rq, red, static_cast<int>(threadIdx.x),
                                  static_cast<int>(blockDim.x), BlockBarrier(), max_sweeps);
  for (int j = threadIdx.x; j < kp; j += blockDim.x) E[t * kp + j] = A[static_cast<int64_t>(j) * kp + j];
  __syncthreads();
  for (int e = threadIdx.x; e < kp * kp; e += blockDim.x) A[e] = V[e];
  if (threadIdx.x == 0) info[t] = sweeps < 0 ? 1 : 0;
}

// c = d + w on the real entries (zero on padding), ||c||, and float copies of c.
__global__ void coefficient_kernel(const double* __restrict__ dsol, const double* __restrict__ w,
                                   const int32_t* __restrict__ kk, int64_t T, int kp, double* __restrict__ c,
                                   float* __restrict__ cf, float* __restrict__ cnorm) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= T) return;
  const int k = kk[t];
  double ss = 0;
  for (int i = 0; i < kp; ++i) {
    const double v = i < k ? dsol[t * kp + i] + w[t * kp + i] : 0.0;
    c[t * kp + i] = v;
    cf[t * kp + i] = static_cast<float>(v);
    ss += v * v;
  }
  cnorm[t] = static_cast<float>(sqrt(ss));
}

// One warp per token: residual ||y|| / ||x0|| (0 when x0 = 0), with y = c A_N - x0 already in y.
__global__ void residual_kernel(const double* __restrict__ y, const double* __restrict__ x0, int64_t T, int64_t ht,
                                float* __restrict__ res) {
  const int64_t t = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (t >= T) return;
  double ry = 0, rx = 0;
  for (int64_t j = lane; j < ht; j += 32) {
    ry += y[t * ht + j] * y[t * ht + j];
    rx += x0[t * ht + j] * x0[t * ht + j];
  }
  for (int off = 16; off > 0; off >>= 1) {
    ry += __shfl_xor_sync(0xffffffffu, ry, off);
    rx += __shfl_xor_sync(0xffffffffu, rx, off);
  }
  if (lane == 0) res[t] = rx > 0 ? static_cast<float>(sqrt(ry / rx)) : 0.0f;
}

// out[t][j] = sum over token t's entries of coef * S[idx][j], accumulated in double. Entries of
// token t: [offsets[t], offsets[t+1]) when offsets is given (CSR), else [t*stride, t*stride+kk[t]).
template <class Coef>
__global__ void combine_kernel(const Coef* __restrict__ coef, const int32_t* __restrict__ idx,
                               const int32_t* __restrict__ offsets, const int32_t* __restrict__ kk, int64_t stride,
                               const float* __restrict__ S, int64_t hs, float* __restrict__ out) {
  const int64_t t = blockIdx.x;
  const int64_t j = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (j >= hs) return;
  const int64_t lo = offsets ? offsets[t] : t * stride;
  const int64_t hi = offsets ? offsets[t + 1] : lo + kk[t];
  double acc = 0;
  for (int64_t e = lo; e < hi; ++e) acc += static_cast<double>(coef[e]) * S[static_cast<int64_t>(idx[e]) * hs + j];
  out[t * hs + j] = static_cast<float>(acc);
}

unsigned blocks_for(int64_t items, int per_block) { return static_cast<unsigned>(ceil_div(items, per_block)); }

void launched(const char* what) { check(cudaGetLastError(), what); }

// Device and pinned buffers of one tile of up to T tokens of padded size kp.
struct SolveSlot {
  int64_t T = 0;
  int kp = 0;
  DeviceArray<double> X, x0, xq, G, G2, Vb, E, rhs, dsol, w, c, work, eig_work;
  DeviceArray<float> q, prior, out, res, cn, cf;
  DeviceArray<int32_t> idx, kk, mode, info;
  DeviceArray<double*> pa, pb;
  PinnedArray<float> h_q, h_prior, h_out, h_res, h_cn, h_cf;
  PinnedArray<int32_t> h_idx, h_kk, h_mode, h_info;
  int eig_lwork = 0, syevd_lwork = 0;
  std::vector<int64_t> tokens;  // global token ids of the tile in flight (empty = idle)

  static size_t bytes_per_token(int64_t kp, int64_t ht, int64_t hs) {
    const size_t d8 = sizeof(double), f4 = sizeof(float);
    return static_cast<size_t>(kp * ht + 2 * ht) * d8 + static_cast<size_t>(3 * kp * kp + 6 * kp) * d8 +
           static_cast<size_t>(ht + 2 * kp + hs + 2) * f4 + static_cast<size_t>(kp + 3) * 4 + 2 * sizeof(double*);
  }

  void allocate(int64_t T_, int kp_, int64_t ht, int64_t hs, bool prior_given, bool block_jacobi) {
    T = T_;
    kp = kp_;
    tokens.clear();
    const size_t tk = static_cast<size_t>(T) * kp;
    X.reset(tk * ht);
    x0.reset(static_cast<size_t>(T) * ht);
    xq.reset(static_cast<size_t>(T) * ht);
    G.reset(tk * kp);
    G2.reset(tk * kp);
    Vb.reset(block_jacobi ? tk * kp : 0);
    E.reset(tk);
    rhs.reset(tk);
    dsol.reset(tk);
    w.reset(tk);
    c.reset(tk);
    q.reset(static_cast<size_t>(T) * ht);
    prior.reset(prior_given ? tk : 0);
    out.reset(static_cast<size_t>(T) * hs);
    res.reset(T);
    cn.reset(T);
    cf.reset(tk);
    idx.reset(tk);
    kk.reset(T);
    mode.reset(T);
    info.reset(T);
    pa.reset(T);
    pb.reset(T);
    h_q.reset(static_cast<size_t>(T) * ht);
    h_prior.reset(prior_given ? tk : 0);
    h_out.reset(static_cast<size_t>(T) * hs);
    h_res.reset(T);
    h_cn.reset(T);
    h_cf.reset(tk);
    h_idx.reset(tk);
    h_kk.reset(T);
    h_mode.reset(T);
    h_info.reset(T);
    work.reset(0);
    eig_work.reset(0);
    eig_lwork = syevd_lwork = 0;
  }
};

struct Lanes {
  std::unique_ptr<Stream> stream;
  std::unique_ptr<Blas> blas;
  std::unique_ptr<Solver> solver;
  syevjInfo_t syevj = nullptr;
  ~Lanes() {
    if (syevj) cusolverDnDestroySyevjInfo(syevj);
  }
};

}  // namespace

void solve_neighbourhoods(const salt_solve_args& a, size_t budget) {
  const int64_t n = a.n, m = a.m, ht = a.ht, hs = a.hs;
  const bool prior_given = a.prior != nullptr;

  // Tokens without neighbours are answered on the host; the rest are sorted by k.
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = a.offsets[i + 1] - a.offsets[i];
    if (k == 0) {
      double xn = 0;
      for (int64_t j = 0; j < ht; ++j) xn += static_cast<double>(a.queries[i * ht + j]) * a.queries[i * ht + j];
      std::fill(a.out + i * hs, a.out + (i + 1) * hs, 0.0f);
      a.out_residual[i] = xn > 0 ? 1.0f : 0.0f;
      a.out_coef_norm[i] = 0.0f;
      continue;
    }
    if (padded_k(k) > kSolveMaxNeighbours) {
      throw CudaFailure{make_status(
          SALT_E_ARGUMENT, "token %lld has %lld neighbours; the CUDA solver supports up to %lld (use backend 'cpu')",
          static_cast<long long>(i), static_cast<long long>(k), static_cast<long long>(kSolveMaxNeighbours))};
    }
    order.push_back(i);
  }
  if (order.empty()) return;
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
    return a.offsets[x + 1] - a.offsets[x] < a.offsets[y + 1] - a.offsets[y];
  });

  const size_t resident = static_cast<size_t>(m) * (ht + hs) * sizeof(float);
  if (resident > budget / 10 * 6) {
    throw CudaFailure{
        make_status(SALT_E_CUDA_OOM,
                    "the anchor matrices (%zu MiB) do not fit in the device memory budget (%zu MiB); use backend 'cpu'",
                    resident >> 20, budget >> 20)};
  }
  const size_t tile_budget = budget - resident;

  DeviceArray<float> A(static_cast<size_t>(m) * ht), S(static_cast<size_t>(m) * hs);
  SolveSlot slots[2];
  Lanes lanes[2];
  for (auto& l : lanes) {
    l.stream.reset(new Stream());
    l.blas.reset(new Blas(l.stream->get()));
    l.solver.reset(new Solver(l.stream->get()));
    check(cusolverDnCreateSyevjInfo(&l.syevj), "cusolverDnCreateSyevjInfo");
  }
  check(cudaMemcpyAsync(A.get(), a.anchors_plm, static_cast<size_t>(m) * ht * sizeof(float), cudaMemcpyHostToDevice,
                        lanes[0].stream->get()),
        "cudaMemcpyAsync(anchorsPlm)");
  check(cudaMemcpyAsync(S.get(), a.anchors_src, static_cast<size_t>(m) * hs * sizeof(float), cudaMemcpyHostToDevice,
                        lanes[0].stream->get()),
        "cudaMemcpyAsync(anchorsSrc)");
  lanes[0].stream->sync();

  auto finish = [&](int s) {
    SolveSlot& sl = slots[s];
    if (sl.tokens.empty()) return;
    lanes[s].stream->sync();
    for (size_t t = 0; t < sl.tokens.size(); ++t) {
      const int64_t g = sl.tokens[t];
      std::memcpy(a.out + g * hs, sl.h_out.get() + t * hs, static_cast<size_t>(hs) * sizeof(float));
      a.out_residual[g] = sl.h_res.get()[t];
      a.out_coef_norm[g] = sl.h_cn.get()[t];
      if (a.out_coefficients) {
        const int32_t lo = a.offsets[g], k = a.offsets[g + 1] - lo;
        std::memcpy(a.out_coefficients + lo, sl.h_cf.get() + t * sl.kp, static_cast<size_t>(k) * sizeof(float));
      }
    }
    sl.tokens.clear();
  };

  const double one = 1.0, zero = 0.0, minus_one = -1.0;
  int64_t tile_no = 0;
  size_t pos = 0;
  while (pos < order.size()) {
    // The bucket [pos, end) shares one padded size.
    const int kp = static_cast<int>(padded_k(a.offsets[order[pos] + 1] - a.offsets[order[pos]]));
    size_t end = pos;
    while (end < order.size() && padded_k(a.offsets[order[end] + 1] - a.offsets[order[end]]) == kp) ++end;
    const int64_t per_slot_tokens = static_cast<int64_t>(tile_budget / 2 / SolveSlot::bytes_per_token(kp, ht, hs));
    // Jacobi workspace and cuBLAS/cuSOLVER internals come out of the reserve in memory_budget().
    const int64_t T = std::min<int64_t>({per_slot_tokens, static_cast<int64_t>(end - pos), 8192});
    if (T < 1) throw DeviceOom{"solve tile sizing (one token does not fit)"};
    for (int s = 0; s < 2; ++s) {
      finish(s);
      slots[s].allocate(T, kp, ht, hs, prior_given, a.lambda == 0 && kp > kMaxBatchedEig && kp <= kMaxJacobi);
    }

    for (size_t p0 = pos; p0 < end; p0 += static_cast<size_t>(T), ++tile_no) {
      const int s = static_cast<int>(tile_no % 2);
      SolveSlot& sl = slots[s];
      Lanes& ln = lanes[s];
      const cudaStream_t st = ln.stream->get();
      finish(s);
      const int64_t Tn = std::min<int64_t>(T, static_cast<int64_t>(end - p0));
      sl.tokens.assign(order.begin() + static_cast<std::ptrdiff_t>(p0),
                       order.begin() + static_cast<std::ptrdiff_t>(p0 + Tn));

      // Host staging: queries, padded index lists (-1 = padding), priors (0 on padding), k.
      for (int64_t t = 0; t < Tn; ++t) {
        const int64_t g = sl.tokens[t];
        const int32_t lo = a.offsets[g], k = a.offsets[g + 1] - lo;
        std::memcpy(sl.h_q.get() + t * ht, a.queries + g * ht, static_cast<size_t>(ht) * sizeof(float));
        int32_t* ix = sl.h_idx.get() + t * kp;
        for (int r = 0; r < kp; ++r) ix[r] = r < k ? a.indices[lo + r] : -1;
        if (prior_given) {
          float* pr = sl.h_prior.get() + t * kp;
          for (int r = 0; r < kp; ++r) pr[r] = r < k ? a.prior[lo + r] : 0.0f;
        }
        sl.h_kk.get()[t] = k;
      }
      const size_t tk = static_cast<size_t>(Tn) * kp;
      check(cudaMemcpyAsync(sl.q.get(), sl.h_q.get(), static_cast<size_t>(Tn) * ht * sizeof(float),
                            cudaMemcpyHostToDevice, st),
            "cudaMemcpyAsync(queries)");
      check(cudaMemcpyAsync(sl.idx.get(), sl.h_idx.get(), tk * sizeof(int32_t), cudaMemcpyHostToDevice, st),
            "cudaMemcpyAsync(indices)");
      if (prior_given)
        check(cudaMemcpyAsync(sl.prior.get(), sl.h_prior.get(), tk * sizeof(float), cudaMemcpyHostToDevice, st),
              "cudaMemcpyAsync(prior)");
      check(cudaMemcpyAsync(sl.kk.get(), sl.h_kk.get(), static_cast<size_t>(Tn) * sizeof(int32_t),
                            cudaMemcpyHostToDevice, st),
            "cudaMemcpyAsync(k)");

      gather_kernel<<<dim3(static_cast<unsigned>(Tn), static_cast<unsigned>(kp + 1)), kThreads, 0, st>>>(
          A.get(), sl.idx.get(), prior_given ? sl.prior.get() : nullptr, sl.q.get(), ht, kp, sl.X.get(), sl.x0.get(),
          sl.xq.get(), sl.w.get());
      launched("gather_kernel launch");

      // X_t is row-major kp x ht = column-major ht x kp (leading dimension ht).
      const int H = static_cast<int>(ht);
      const long long sX = static_cast<long long>(kp) * ht, sK = kp, sG = static_cast<long long>(kp) * kp, sH = ht;
      cublasHandle_t hb = ln.blas->get();
      if (prior_given) {  // x' = x - X_t w_t
        check(cublasDgemmStridedBatched(hb, CUBLAS_OP_N, CUBLAS_OP_N, H, 1, kp, &minus_one, sl.X.get(), H, sX,
                                        sl.w.get(), kp, sK, &one, sl.xq.get(), H, sH, static_cast<int>(Tn)),
              "cublasDgemmStridedBatched(prior)");
      }
      check(cublasDgemmStridedBatched(hb, CUBLAS_OP_T, CUBLAS_OP_N, kp, 1, H, &one, sl.X.get(), H, sX, sl.xq.get(), H,
                                      sH, &zero, sl.rhs.get(), kp, sK, static_cast<int>(Tn)),
            "cublasDgemmStridedBatched(rhs)");
      check(cublasDgemmStridedBatched(hb, CUBLAS_OP_T, CUBLAS_OP_N, kp, kp, H, &one, sl.X.get(), H, sX, sl.X.get(), H,
                                      sX, &zero, sl.G.get(), kp, sG, static_cast<int>(Tn)),
            "cublasDgemmStridedBatched(gram)");
      if (a.lambda > 0) {
        add_diagonal_kernel<<<blocks_for(static_cast<int64_t>(tk), kThreads), kThreads, 0, st>>>(sl.G.get(), Tn, kp,
                                                                                                 a.lambda);
        launched("add_diagonal_kernel launch");
      }
      check(cudaMemcpyAsync(sl.G2.get(), sl.G.get(), tk * kp * sizeof(double), cudaMemcpyDeviceToDevice, st),
            "cudaMemcpyAsync(gram copy)");

      cusolverDnHandle_t hs_ = ln.solver->get();
      std::vector<int64_t> per_token_eig;  // tile positions that need one syevd each
      int32_t* mode = sl.h_mode.get();
      if (a.lambda > 0) {
        check(cudaMemcpyAsync(sl.dsol.get(), sl.rhs.get(), tk * sizeof(double), cudaMemcpyDeviceToDevice, st),
              "cudaMemcpyAsync(rhs copy)");
        pointer_kernel<<<blocks_for(Tn, kThreads), kThreads, 0, st>>>(sl.G.get(), sl.dsol.get(), Tn, sG, sK,
                                                                      sl.pa.get(), sl.pb.get());
        launched("pointer_kernel launch");
        check(cusolverDnDpotrfBatched(hs_, CUBLAS_FILL_MODE_LOWER, kp, sl.pa.get(), kp, sl.info.get(),
                                      static_cast<int>(Tn)),
              "cusolverDnDpotrfBatched");
        check(cudaMemcpyAsync(sl.h_info.get(), sl.info.get(), static_cast<size_t>(Tn) * sizeof(int),
                              cudaMemcpyDeviceToHost, st),
              "cudaMemcpyAsync(potrf info)");
        ln.stream->sync();
        for (int64_t t = 0; t < Tn; ++t) {
          const int inf = sl.h_info.get()[t];
          if (inf < 0)
            throw CudaFailure{make_status(SALT_E_CUDA, "cusolverDnDpotrfBatched: invalid parameter %d", -inf)};
          mode[t] = inf > 0 ? 2 : 0;
          if (inf > 0) per_token_eig.push_back(t);
        }
        // Batched solve for all (the failed ones are recomputed by the eigen path below).
        check(cusolverDnDpotrsBatched(hs_, CUBLAS_FILL_MODE_LOWER, kp, 1, sl.pa.get(), kp, sl.pb.get(), kp,
                                      sl.info.get(), static_cast<int>(Tn)),
              "cusolverDnDpotrsBatched");
      } else if (kp <= kMaxBatchedEig) {
        // Default tolerance (machine accuracy); matrices that do not converge within the sweeps are
        // redone with syevd below.
        check(cusolverDnXsyevjSetMaxSweeps(ln.syevj, 100), "cusolverDnXsyevjSetMaxSweeps");
        int lwork = 0;
        check(cusolverDnDsyevjBatched_bufferSize(hs_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, kp, sl.G.get(),
                                                 kp, sl.E.get(), &lwork, ln.syevj, static_cast<int>(Tn)),
              "cusolverDnDsyevjBatched_bufferSize");
        if (lwork > sl.eig_lwork) {
          sl.eig_work.reset(static_cast<size_t>(lwork));
          sl.eig_lwork = lwork;
        }
        check(cusolverDnDsyevjBatched(hs_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, kp, sl.G.get(), kp,
                                      sl.E.get(), sl.eig_work.get(), lwork, sl.info.get(), ln.syevj,
                                      static_cast<int>(Tn)),
              "cusolverDnDsyevjBatched");
        check(cudaMemcpyAsync(sl.h_info.get(), sl.info.get(), static_cast<size_t>(Tn) * sizeof(int),
                              cudaMemcpyDeviceToHost, st),
              "cudaMemcpyAsync(syevj info)");
        ln.stream->sync();
        for (int64_t t = 0; t < Tn; ++t) {
          const int inf = sl.h_info.get()[t];
          if (inf < 0)
            throw CudaFailure{make_status(SALT_E_CUDA, "cusolverDnDsyevjBatched: invalid parameter %d", -inf)};
          mode[t] = inf > 0 ? 2 : 1;  // not converged: redo that matrix with syevd
          if (inf > 0) per_token_eig.push_back(t);
        }
      } else if (kp <= kMaxJacobi) {
        jacobi_kernel<<<static_cast<unsigned>(Tn), kThreads, 0, st>>>(sl.G.get(), sl.Vb.get(), sl.E.get(),
                                                                      sl.info.get(), kp, 30);
        launched("jacobi_kernel launch");
        check(cudaMemcpyAsync(sl.h_info.get(), sl.info.get(), static_cast<size_t>(Tn) * sizeof(int),
                              cudaMemcpyDeviceToHost, st),
              "cudaMemcpyAsync(jacobi info)");
        ln.stream->sync();
        for (int64_t t = 0; t < Tn; ++t) {
          mode[t] = sl.h_info.get()[t] != 0 ? 2 : 1;
          if (mode[t] == 2) per_token_eig.push_back(t);
        }
      } else {
        for (int64_t t = 0; t < Tn; ++t) {
          mode[t] = 2;
          per_token_eig.push_back(t);
        }
      }

      if (!per_token_eig.empty()) {
        // One divide-and-conquer eigen-decomposition per matrix, on the leading k x k block of a
        // fresh copy of the Gram matrix (G was overwritten by the factorisation).
        int lwork = 0;
        check(cusolverDnDsyevd_bufferSize(hs_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, kp, sl.G.get(), kp,
                                          sl.E.get(), &lwork),
              "cusolverDnDsyevd_bufferSize");
        if (lwork > sl.syevd_lwork) {
          sl.work.reset(static_cast<size_t>(lwork));
          sl.syevd_lwork = lwork;
        }
        for (int64_t t : per_token_eig) {
          const int k = sl.h_kk.get()[t];
          double* g = sl.G.get() + t * sG;
          check(cudaMemcpyAsync(g, sl.G2.get() + t * sG, static_cast<size_t>(sG) * sizeof(double),
                                cudaMemcpyDeviceToDevice, st),
                "cudaMemcpyAsync(gram restore)");
          check(cusolverDnDsyevd(hs_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, k, g, kp, sl.E.get() + t * sK,
                                 sl.work.get(), sl.syevd_lwork, sl.info.get() + t),
                "cusolverDnDsyevd");
        }
        check(cudaMemcpyAsync(sl.h_info.get(), sl.info.get(), static_cast<size_t>(Tn) * sizeof(int),
                              cudaMemcpyDeviceToHost, st),
              "cudaMemcpyAsync(syevd info)");
        ln.stream->sync();
        for (int64_t t : per_token_eig) {
          if (sl.h_info.get()[t] != 0) {
            throw CudaFailure{make_status(SALT_E_CUDA, "cusolverDnDsyevd failed (info %d) for token %lld",
                                          sl.h_info.get()[t], static_cast<long long>(sl.tokens[t]))};
          }
        }
      }
      bool any_eig = false;
      for (int64_t t = 0; t < Tn; ++t) any_eig |= mode[t] != 0;
      if (any_eig) {
        check(
            cudaMemcpyAsync(sl.mode.get(), mode, static_cast<size_t>(Tn) * sizeof(int32_t), cudaMemcpyHostToDevice, st),
            "cudaMemcpyAsync(mode)");
        pinv_kernel<<<blocks_for(Tn, 128), 128, 0, st>>>(sl.G.get(), sl.E.get(), sl.rhs.get(), sl.kk.get(),
                                                         sl.mode.get(), Tn, kp, ht, a.rcond, sl.dsol.get());
        launched("pinv_kernel launch");
      }
      coefficient_kernel<<<blocks_for(Tn, 128), 128, 0, st>>>(sl.dsol.get(), sl.w.get(), sl.kk.get(), Tn, kp,
                                                              sl.c.get(), sl.cf.get(), sl.cn.get());
      launched("coefficient_kernel launch");
      // y = X_t c_t - x0_t (reuses xq), then the relative residual.
      check(cudaMemcpyAsync(sl.xq.get(), sl.x0.get(), static_cast<size_t>(Tn) * ht * sizeof(double),
                            cudaMemcpyDeviceToDevice, st),
            "cudaMemcpyAsync(query copy)");
      check(cublasDgemmStridedBatched(hb, CUBLAS_OP_N, CUBLAS_OP_N, H, 1, kp, &one, sl.X.get(), H, sX, sl.c.get(), kp,
                                      sK, &minus_one, sl.xq.get(), H, sH, static_cast<int>(Tn)),
            "cublasDgemmStridedBatched(residual)");
      residual_kernel<<<blocks_for(Tn * 32, kThreads), kThreads, 0, st>>>(sl.xq.get(), sl.x0.get(), Tn, ht,
                                                                          sl.res.get());
      launched("residual_kernel launch");
      combine_kernel<double><<<dim3(static_cast<unsigned>(Tn), blocks_for(hs, kThreads)), kThreads, 0, st>>>(
          sl.c.get(), sl.idx.get(), nullptr, sl.kk.get(), kp, S.get(), hs, sl.out.get());
      launched("combine_kernel launch");

      check(cudaMemcpyAsync(sl.h_out.get(), sl.out.get(), static_cast<size_t>(Tn) * hs * sizeof(float),
                            cudaMemcpyDeviceToHost, st),
            "cudaMemcpyAsync(out)");
      check(cudaMemcpyAsync(sl.h_res.get(), sl.res.get(), static_cast<size_t>(Tn) * sizeof(float),
                            cudaMemcpyDeviceToHost, st),
            "cudaMemcpyAsync(residual)");
      check(cudaMemcpyAsync(sl.h_cn.get(), sl.cn.get(), static_cast<size_t>(Tn) * sizeof(float), cudaMemcpyDeviceToHost,
                            st),
            "cudaMemcpyAsync(coefNorm)");
      if (a.out_coefficients)
        check(cudaMemcpyAsync(sl.h_cf.get(), sl.cf.get(), tk * sizeof(float), cudaMemcpyDeviceToHost, st),
              "cudaMemcpyAsync(coefficients)");
    }
    pos = end;
  }
  finish(0);
  finish(1);
}

void apply_weights(const salt_apply_args& a, size_t budget) {
  const int64_t n = a.n, m = a.m, hs = a.hs;
  const size_t resident = static_cast<size_t>(m) * hs * sizeof(float);
  if (resident > budget / 10 * 6) {
    throw CudaFailure{make_status(
        SALT_E_CUDA_OOM, "anchorsSrc (%zu MiB) does not fit in the device memory budget (%zu MiB); use backend 'cpu'",
        resident >> 20, budget >> 20)};
  }
  const size_t tile_budget = budget - resident;
  const int64_t max_tokens =
      std::min<int64_t>(65535, static_cast<int64_t>(tile_budget / 2 / (static_cast<size_t>(hs) * 4 + 4)));
  const int64_t max_nnz = static_cast<int64_t>(tile_budget / 2 / 8);
  if (max_tokens < 1) throw DeviceOom{"apply_weights tile sizing"};
  int64_t cap_nnz = 0;  // the largest tile's nnz decides the entry buffers
  for (int64_t t0 = 0; t0 < n; t0 += max_tokens) {
    const int64_t t1 = std::min(n, t0 + max_tokens);
    cap_nnz = std::max<int64_t>(cap_nnz, std::min<int64_t>(max_nnz, a.offsets[t1] - a.offsets[t0]));
  }
  cap_nnz = std::max<int64_t>(cap_nnz, 1);
  const int64_t cap_tokens = std::min(max_tokens, n);

  DeviceArray<float> S(static_cast<size_t>(m) * hs), W(static_cast<size_t>(cap_nnz)),
      out(static_cast<size_t>(cap_tokens) * hs);
  DeviceArray<int32_t> idx(static_cast<size_t>(cap_nnz)), off(static_cast<size_t>(cap_tokens) + 1);
  std::vector<int32_t> local(static_cast<size_t>(cap_tokens) + 1);
  Stream st;
  check(cudaMemcpyAsync(S.get(), a.anchors_src, resident, cudaMemcpyHostToDevice, st.get()),
        "cudaMemcpyAsync(anchorsSrc)");
  int64_t t0 = 0;
  while (t0 < n) {
    // Grow the tile while both the token and the entry budgets allow (at least one token).
    int64_t t1 = t0 + 1;
    if (a.offsets[t1] - a.offsets[t0] > cap_nnz)
      throw DeviceOom{"apply_weights tile sizing (one token's entries do not fit)"};
    while (t1 < n && t1 - t0 < cap_tokens && a.offsets[t1 + 1] - a.offsets[t0] <= cap_nnz) ++t1;
    const int64_t T = t1 - t0;
    const int32_t base = a.offsets[t0];
    const int64_t nnz = a.offsets[t1] - base;
    for (int64_t t = 0; t <= T; ++t) local[t] = a.offsets[t0 + t] - base;
    check(cudaMemcpyAsync(off.get(), local.data(), static_cast<size_t>(T + 1) * sizeof(int32_t), cudaMemcpyHostToDevice,
                          st.get()),
          "cudaMemcpyAsync(offsets)");
    if (nnz > 0) {
      check(cudaMemcpyAsync(idx.get(), a.indices + base, static_cast<size_t>(nnz) * sizeof(int32_t),
                            cudaMemcpyHostToDevice, st.get()),
            "cudaMemcpyAsync(indices)");
      check(cudaMemcpyAsync(W.get(), a.weights + base, static_cast<size_t>(nnz) * sizeof(float), cudaMemcpyHostToDevice,
                            st.get()),
            "cudaMemcpyAsync(weights)");
    }
    combine_kernel<float><<<dim3(static_cast<unsigned>(T), blocks_for(hs, kThreads)), kThreads, 0, st.get()>>>(
        W.get(), idx.get(), off.get(), nullptr, 0, S.get(), hs, out.get());
    launched("combine_kernel launch");
    check(cudaMemcpyAsync(a.out + t0 * hs, out.get(), static_cast<size_t>(T) * hs * sizeof(float),
                          cudaMemcpyDeviceToHost, st.get()),
          "cudaMemcpyAsync(out)");
    st.sync();  // `local` and the pageable output are reused/read by the next iteration
    t0 = t1;
  }
}

}  // namespace cuda
}  // namespace salt
