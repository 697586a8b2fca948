// Per-token neighbourhood regressions in Gram form (see docs/method.md, "How to compute step 4").
//
// For token i with neighbour rows A_N (k x ht), query x and prior w (or 0):
//   d = argmin ||d A_N - x'||^2 + lambda ||d||^2  with x' = x - w A_N,   c = w + d,   out = c S_N.
// Normal equations: (A_N A_N^T + lambda I) d^T = A_N x'^T, a k x k symmetric system. The small
// systems are solved in double precision: the Gram matrix squares the condition number, and
// float32 would lose the near-collinear neighbourhoods that pinv semantics must handle.
//   lambda > 0: Cholesky (dposv).
//   lambda = 0: eigen-decomposition of the Gram matrix (dsyevd); eigenvalues e_j = sigma_j^2, and
//               directions with sigma_j <= rcond * sigma_max are dropped, which is exactly the
//               minimum-norm least-squares solution pinv(A_N^T) x'^T with that cutoff.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "internal.h"

namespace salt {
namespace {

// The per-token loops that are not BLAS calls, cloned per instruction set (SALT_VECTOR_CLONES,
// internal.h). They are most of a token's time for small k: gathering rows into double precision,
// and accumulating c S_N.
SALT_VECTOR_CLONES void to_double(const float* src, int64_t n, double* dst) {
  for (int64_t j = 0; j < n; ++j) dst[j] = src[j];
}

// y += c * x (x float, y double)
SALT_VECTOR_CLONES void axpy_f(double c, const float* x, int64_t n, double* y) {
  for (int64_t j = 0; j < n; ++j) y[j] += c * static_cast<double>(x[j]);
}

// y -= c * x (both double)
SALT_VECTOR_CLONES void axmy_d(double c, const double* x, int64_t n, double* y) {
  for (int64_t j = 0; j < n; ++j) y[j] -= c * x[j];
}

SALT_VECTOR_CLONES void to_float(const double* src, int64_t n, float* dst) {
  for (int64_t j = 0; j < n; ++j) dst[j] = static_cast<float>(src[j]);
}

struct Workspace {
  std::vector<double> an, gram, rhs, evals, work, xq, coef, tmp;
  std::vector<int> iwork;
};

// Minimum-norm solution of G d = r via the eigen-decomposition of the symmetric PSD matrix G
// (overwritten). Returns false only if LAPACK fails.
bool pinv_solve(int k, double rcond, Workspace& w, double* d) {
  w.evals.resize(k);
  int lwork = -1, liwork = -1, info = 0;
  double wq = 0;
  int iwq = 0;
  dsyevd_("V", "L", &k, w.gram.data(), &k, w.evals.data(), &wq, &lwork, &iwq, &liwork, &info);
  if (info != 0) return false;
  lwork = static_cast<int>(wq);
  liwork = iwq;
  if (static_cast<int>(w.work.size()) < lwork) w.work.resize(lwork);
  if (static_cast<int>(w.iwork.size()) < liwork) w.iwork.resize(liwork);
  dsyevd_("V", "L", &k, w.gram.data(), &k, w.evals.data(), w.work.data(), &lwork, w.iwork.data(), &liwork, &info);
  if (info != 0) return false;
  const double emax = std::max(w.evals[k - 1], 0.0);
  const double cutoff = emax * rcond * rcond;
  // d = V diag(1/e) V^T r over the kept directions. Columns of V are stored column-major in gram.
  w.tmp.assign(k, 0.0);
  for (int j = 0; j < k; ++j) {
    const double e = w.evals[j];
    if (!(e > cutoff) || e <= 0) continue;
    const double* v = w.gram.data() + static_cast<size_t>(j) * k;
    double dot = 0;
    for (int i = 0; i < k; ++i) dot += v[i] * w.rhs[i];
    dot /= e;
    for (int i = 0; i < k; ++i) w.tmp[i] += dot * v[i];
  }
  std::copy(w.tmp.begin(), w.tmp.end(), d);
  return true;
}

}  // namespace

namespace cpu {

salt_status solve_neighbourhoods(const salt_solve_args& a) {
  ThreadScope threads(a.threads);  // also for the validation scans
  salt_status st = check_solve(a);
  if (st.code || a.n == 0) return st;
  return guarded([&]() -> salt_status {
    const int64_t ht = a.ht, hs = a.hs;
    int64_t failed = -1;  // first token whose LAPACK call failed
    RegionErrors errors;
#pragma omp parallel
    {
      Workspace w;
      errors.run([&] { w.xq.resize(ht); });
#pragma omp for schedule(dynamic, 16)
      for (int64_t i = 0; i < a.n; ++i)
        errors.run([&] {
          const int32_t lo = a.offsets[i], hi = a.offsets[i + 1];
          const int k = hi - lo;
          const float* x = a.queries + i * ht;
          float* out = a.out + i * hs;
          double xnorm2 = 0;
          for (int64_t j = 0; j < ht; ++j) xnorm2 += static_cast<double>(x[j]) * x[j];
          if (k == 0) {  // no neighbours: nothing to combine
            std::fill(out, out + hs, 0.0f);
            a.out_residual[i] = xnorm2 > 0 ? 1.0f : 0.0f;
            a.out_coef_norm[i] = 0.0f;
            return;
          }
          w.an.resize(static_cast<size_t>(k) * ht);
          w.gram.resize(static_cast<size_t>(k) * k);
          w.rhs.resize(k);
          w.coef.resize(k);
          // Gather A_N as a column-major ht x k matrix (= row-major k x ht) in double.
          for (int r = 0; r < k; ++r)
            to_double(a.anchors_plm + static_cast<int64_t>(a.indices[lo + r]) * ht, ht,
                      w.an.data() + static_cast<size_t>(r) * ht);
          // x' = x - w A_N
          to_double(x, ht, w.xq.data());
          if (a.prior) {
            for (int r = 0; r < k; ++r)
              if (a.prior[lo + r] != 0)
                axmy_d(a.prior[lo + r], w.an.data() + static_cast<size_t>(r) * ht, ht, w.xq.data());
          }
          const int H = static_cast<int>(ht), one = 1;
          const double done = 1.0, dzero = 0.0;
          // gram = A_N A_N^T (lower triangle), rhs = A_N x'
          dsyrk_("L", "T", &k, &H, &done, w.an.data(), &H, &dzero, w.gram.data(), &k);
          dgemv_("T", &H, &k, &done, w.an.data(), &H, w.xq.data(), &one, &dzero, w.rhs.data(), &one);
          bool solved = false;
          if (a.lambda > 0) {
            for (int r = 0; r < k; ++r) w.gram[static_cast<size_t>(r) * k + r] += a.lambda;
            std::vector<double>& g = w.tmp;
            g.assign(w.gram.begin(), w.gram.end());
            std::copy(w.rhs.begin(), w.rhs.end(), w.coef.begin());
            int info = 0;
            dposv_("L", &k, &one, g.data(), &k, w.coef.data(), &k, &info);
            solved = info == 0;  // info > 0: not positive definite in floating point; use the eigen path
          }
          if (!solved) {
            const double rc = a.rcond < 0 ? salt_default_rcond(k, ht) : a.rcond;
            if (!pinv_solve(k, rc, w, w.coef.data())) {
#pragma omp critical
              if (failed < 0 || i < failed) failed = i;
              return;
            }
          }
          if (a.prior)
            for (int r = 0; r < k; ++r) w.coef[r] += a.prior[lo + r];
          // Residual ||c A_N - x|| / ||x|| and ||c||.
          double cn = 0, res = 0;
          for (int r = 0; r < k; ++r) cn += w.coef[r] * w.coef[r];
          for (int64_t j = 0; j < ht; ++j) w.xq[j] = -static_cast<double>(x[j]);
          dgemv_("N", &H, &k, &done, w.an.data(), &H, w.coef.data(), &one, &done, w.xq.data(), &one);
          for (int64_t j = 0; j < ht; ++j) res += w.xq[j] * w.xq[j];
          a.out_residual[i] = xnorm2 > 0 ? static_cast<float>(std::sqrt(res / xnorm2)) : 0.0f;
          a.out_coef_norm[i] = static_cast<float>(std::sqrt(cn));
          if (a.out_coefficients)
            for (int r = 0; r < k; ++r) a.out_coefficients[lo + r] = static_cast<float>(w.coef[r]);
          // out = c S_N, accumulated in double.
          w.tmp.assign(static_cast<size_t>(hs), 0.0);
          for (int r = 0; r < k; ++r)
            axpy_f(w.coef[r], a.anchors_src + static_cast<int64_t>(a.indices[lo + r]) * hs, hs, w.tmp.data());
          to_float(w.tmp.data(), hs, out);
        });
    }
    if (errors.failed()) return errors.status("solve_neighbourhoods");
    if (failed >= 0)
      return make_status(SALT_E_INTERNAL, "LAPACK eigen-decomposition failed for token %lld",
                         static_cast<long long>(failed));
    return ok_status();
  });
}

salt_status apply_weights(const salt_apply_args& a) {
  ThreadScope threads(a.threads);  // also for the validation scans
  salt_status st = check_apply(a);
  if (st.code || a.n == 0) return st;
  return guarded([&]() -> salt_status {
    const int64_t hs = a.hs;
    RegionErrors errors;
#pragma omp parallel
    {
      std::vector<double> acc;
      errors.run([&] { acc.resize(static_cast<size_t>(hs)); });
#pragma omp for schedule(dynamic, 64)
      for (int64_t i = 0; i < a.n; ++i) {
        if (errors.failed()) continue;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int32_t j = a.offsets[i]; j < a.offsets[i + 1]; ++j)
          axpy_f(a.weights[j], a.anchors_src + static_cast<int64_t>(a.indices[j]) * hs, hs, acc.data());
        to_float(acc.data(), hs, a.out + i * hs);
      }
    }
    if (errors.failed()) return errors.status("apply_weights");
    return ok_status();
  });
}

}  // namespace cpu
}  // namespace salt
