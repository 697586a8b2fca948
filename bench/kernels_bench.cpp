// Kernel benchmark (numbers go in notes, not in tests). In one process, on the same data:
//   topk   : salt::cpu::topk_cosine vs the bare SGEMM of the same shape (queries x base^T, tiled
//            by 4096 query rows into one reused output buffer; OpenBLAS, all threads).
//   solve  : salt::cpu::solve_neighbourhoods tokens/s for k neighbours, ht -> hs.
// Usage: kernels_bench topk N M D K [reps]  |  kernels_bench solve N M K HT HS LAMBDA [reps]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "salt/core.h"

extern "C" void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                       const int*, const float*, const int*, const float*, float*, const int*);




namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<float> randn(size_t count, unsigned seed) {
  std::vector<float> v(count);
#pragma omp parallel
  {
    std::mt19937 rng(seed + 7919u * omp_get_thread_num());
    std::normal_distribution<float> nd(0.f, 1.f);
#pragma omp for schedule(static)
    for (long long i = 0; i < (long long)count; ++i) v[i] = nd(rng);
  }
  return v;
}

double best_of(int reps, const std::function<void()>& f) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now();
    f();
    best = std::min(best, now() - t0);
  }
  return best;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string blas = salt::select_blas_kernels();  // the kernels the addon uses
  if (!blas.empty()) std::fprintf(stderr, "%s\n", blas.c_str() + 2);
  const std::string mode = argv[1];
  if (mode == "topk" && argc >= 6) {
    const long long n = atoll(argv[2]), m = atoll(argv[3]), d = atoll(argv[4]), k = atoll(argv[5]);
    const int reps = argc > 6 ? atoi(argv[6]) : 3;
    auto q = randn(n * d, 1), b = randn(m * d, 2);
    std::vector<int32_t> idx(n * k);
    std::vector<float> sc(n * k);
    salt_topk_args a{};
    a.queries = q.data(); a.n = n; a.base = b.data(); a.m = m; a.d = d; a.k = k;
    a.out_indices = idx.data(); a.out_scores = sc.data();
    const long long tile = 4096;
    std::vector<float> c(tile * m);
    auto sgemm_all = [&] {
      const float one = 1, zero = 0;
      for (long long t0 = 0; t0 < n; t0 += tile) {
        const int rows = (int)std::min(tile, n - t0), M = (int)m, D = (int)d;
        // column-major: C^T (m x rows) = B (m x d as d x m col-major, transposed) * Q^T
        sgemm_("T", "N", &M, &rows, &D, &one, b.data(), &D, q.data() + t0 * d, &D, &zero, c.data(), &M);
      }
    };
    salt_status st = salt::cpu::topk_cosine(a);  // warm-up (also page-faults the outputs)
    if (st.code) { std::fprintf(stderr, "%s\n", st.message); return 1; }
    sgemm_all();
    // Interleave the two so drift on a shared machine affects both alike.
    double t_topk = 1e300, t_gemm = 1e300;
    for (int r = 0; r < reps; ++r) {
      t_gemm = std::min(t_gemm, best_of(1, sgemm_all));
      t_topk = std::min(t_topk, best_of(1, [&] { salt::cpu::topk_cosine(a); }));
    }
    const double flop = 2.0 * n * m * d;
    std::printf("topk n=%lld m=%lld d=%lld k=%lld threads=%d: topkCosine %.3f s, bare SGEMM %.3f s (%.1f GFLOP/s), ratio %.2f\n",
                n, m, d, k, omp_get_max_threads(), t_topk, t_gemm, flop / t_gemm * 1e-9, t_topk / t_gemm);
    return 0;
  }
  if (mode == "solve" && argc >= 8) {
    const long long n = atoll(argv[2]), m = atoll(argv[3]), k = atoll(argv[4]), ht = atoll(argv[5]), hs = atoll(argv[6]);
    const double lambda = atof(argv[7]);
    const int reps = argc > 8 ? atoi(argv[8]) : 2;
    auto x = randn(n * ht, 3), A = randn(m * ht, 4), S = randn(m * hs, 5);
    std::vector<int32_t> offsets(n + 1), indices(n * k);
    std::mt19937 rng(6);
    std::uniform_int_distribution<int> pick(0, (int)m - 1);
    for (long long i = 0; i < n; ++i) {
      offsets[i + 1] = (int32_t)((i + 1) * k);
      for (long long j = 0; j < k; ++j) indices[i * k + j] = pick(rng);
    }
    std::vector<float> out(n * hs), res(n), cn(n);
    salt_solve_args a{};
    a.n = n; a.offsets = offsets.data(); a.indices = indices.data(); a.queries = x.data(); a.ht = ht;
    a.anchors_plm = A.data(); a.m = m; a.anchors_src = S.data(); a.hs = hs; a.lambda = lambda; a.rcond = -1;
    a.out = out.data(); a.out_residual = res.data(); a.out_coef_norm = cn.data();
    salt_status st = salt::cpu::solve_neighbourhoods(a);
    if (st.code) { std::fprintf(stderr, "%s\n", st.message); return 1; }
    const double t = best_of(reps, [&] { salt::cpu::solve_neighbourhoods(a); });
    std::printf("solve n=%lld k=%lld ht=%lld hs=%lld lambda=%g threads=%d: %.3f s, %.0f tokens/s\n", n, k, ht, hs, lambda,
                omp_get_max_threads(), t, n / t);
    return 0;
  }
  std::fprintf(stderr, "usage: kernels_bench topk N M D K [reps] | solve N M K HT HS LAMBDA [reps]\n");
  return 2;
}
