// Host test of native/cuda/jacobi.h: the block Jacobi eigen-solver and the pseudo-inverse step that
// the CUDA solves run on the device, executed here with one "thread" (same code, same arithmetic)
// and compared with LAPACK (dsyevd) and with the CPU backend's solve_neighbourhoods (lambda = 0,
// pinv semantics). Runs without a GPU; built (target salt_cuda_host_test) and run by
// scripts/cuda-compile-check.sh. Prints "jacobi_host_test: N passed, M failed" and exits non-zero on
// any failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../jacobi.h"
#include "salt/core.h"

extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                        double* work, const int* lwork, int* iwork, const int* liwork, int* info);

namespace {

using salt::cuda::jacobi_eigen;
using salt::cuda::pinv_from_eigen;

int passed = 0, failed = 0;

void expect(bool ok, const char* what, int n, double value, double limit) {
  if (ok) {
    ++passed;
    return;
  }
  ++failed;
  std::printf("FAIL %s (n = %d): %.3e > %.3e\n", what, n, value, limit);
}

struct NoBarrier {
  void operator()() const {}
};

// Gram matrix (column-major n x n) of n rows of width h; rows may be given.
std::vector<double> gram(const std::vector<double>& rows, int n, int h) {
  std::vector<double> g(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int t = 0; t < h; ++t) s += rows[i * h + t] * rows[j * h + t];
      g[static_cast<size_t>(j) * n + i] = s;
    }
  return g;
}

// Eigen-decomposition by LAPACK (the CPU backend's path).
bool lapack_eigen(std::vector<double> a, int n, std::vector<double>& vals, std::vector<double>& vecs) {
  vals.assign(n, 0.0);
  int lwork = -1, liwork = -1, info = 0, iwq = 0;
  double wq = 0;
  dsyevd_("V", "L", &n, a.data(), &n, vals.data(), &wq, &lwork, &iwq, &liwork, &info);
  if (info) return false;
  lwork = static_cast<int>(wq);
  liwork = iwq;
  std::vector<double> work(lwork);
  std::vector<int> iwork(liwork);
  dsyevd_("V", "L", &n, a.data(), &n, vals.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  vecs = a;
  return info == 0;
}

double frob(const std::vector<double>& a) {
  double s = 0;
  for (double v : a) s += v * v;
  return std::sqrt(s);
}

// Checks one matrix: decomposition quality, eigenvalues against LAPACK, and the pseudo-inverse
// solution against the one computed from LAPACK's decomposition with the same cutoff rule.
void check_case(const char* name, const std::vector<double>& rows, int n, int k, int h, std::mt19937& gen) {
  const std::vector<double> g = gram(rows, n, h);
  std::vector<double> a = g, v(static_cast<size_t>(n) * n);
  std::vector<double> rc(n / 2 + 1), rs(n / 2 + 1), red(2);
  std::vector<int> rp(n / 2 + 1), rq(n / 2 + 1);
  const int sweeps = jacobi_eigen(a.data(), v.data(), n, rc.data(), rs.data(), rp.data(), rq.data(), red.data(), 0, 1,
                                  NoBarrier(), 30);
  char what[160];
  std::snprintf(what, sizeof what, "%s: converged", name);
  expect(sweeps >= 0, what, n, sweeps, 30);
  std::vector<double> e(n);
  for (int j = 0; j < n; ++j) e[j] = a[static_cast<size_t>(j) * n + j];
  const double gn = std::max(frob(g), 1e-300);

  // ||V diag(e) Vᵀ - G|| / ||G|| and ||Vᵀ V - I||.
  double rec = 0, orth = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0, o = 0;
      for (int t = 0; t < n; ++t) {
        s += v[static_cast<size_t>(t) * n + i] * e[t] * v[static_cast<size_t>(t) * n + j];
        o += v[static_cast<size_t>(i) * n + t] * v[static_cast<size_t>(j) * n + t];
      }
      rec += (s - g[static_cast<size_t>(j) * n + i]) * (s - g[static_cast<size_t>(j) * n + i]);
      orth += (o - (i == j)) * (o - (i == j));
    }
  const double orth_limit = 1e-14 * (n + 10);
  std::snprintf(what, sizeof what, "%s: reconstruction", name);
  expect(std::sqrt(rec) / gn < orth_limit, what, n, std::sqrt(rec) / gn, orth_limit);
  // Rounding grows with the number of rotations each column sees (~ n per sweep).
  std::snprintf(what, sizeof what, "%s: orthogonality", name);
  expect(std::sqrt(orth) < orth_limit, what, n, std::sqrt(orth), orth_limit);

  std::vector<double> lv, lvec;
  if (!lapack_eigen(g, n, lv, lvec)) {
    expect(false, "LAPACK dsyevd", n, 1, 0);
    return;
  }
  std::vector<double> es = e;
  std::sort(es.begin(), es.end());
  double emax = std::max(lv.back(), 0.0), dev = 0;
  for (int j = 0; j < n; ++j) dev = std::max(dev, std::fabs(es[j] - lv[j]));
  std::snprintf(what, sizeof what, "%s: eigenvalues vs LAPACK", name);
  expect(dev <= 1e-13 * std::max(emax, 1e-300), what, n, dev, 1e-13 * emax);

  // Pseudo-inverse solutions for a random right-hand side A x (x random), k real rows of n. Both
  // decompositions are backward stable; on the near-collinear cases (condition number of G ~1e7)
  // they differ by ~1e-8 relative, far below the 1e-4 the GPU tests allow on the outputs.
  std::normal_distribution<double> nd;
  std::vector<double> x(h), r(n, 0.0);
  for (auto& xi : x) xi = static_cast<float>(nd(gen));  // float data, as the kernels receive
  for (int i = 0; i < n; ++i)
    for (int t = 0; t < h; ++t) r[i] += rows[i * h + t] * x[t];
  std::vector<double> d_jac(n), d_lap(n);
  pinv_from_eigen(v.data(), e.data(), r.data(), n, n, k, h, -1.0, d_jac.data());
  pinv_from_eigen(lvec.data(), lv.data(), r.data(), n, n, k, h, -1.0, d_lap.data());
  double diff = 0, scale = 0;
  for (int i = 0; i < n; ++i) {
    diff = std::max(diff, std::fabs(d_jac[i] - d_lap[i]));
    scale = std::max(scale, std::fabs(d_lap[i]));
  }
  std::snprintf(what, sizeof what, "%s: pinv solution vs LAPACK", name);
  expect(diff <= 1e-6 * std::max(scale, 1e-12), what, n, diff, 1e-6 * scale);

  // The CPU backend on the same neighbourhood (its k real rows; S = identity so out = c).
  std::vector<float> af(static_cast<size_t>(k) * h), xf(h), sf(static_cast<size_t>(k) * k, 0.0f), out(k), coef(k);
  for (int i = 0; i < k * h; ++i) af[i] = static_cast<float>(rows[i]);
  for (int t = 0; t < h; ++t) xf[t] = static_cast<float>(x[t]);
  for (int i = 0; i < k; ++i) sf[static_cast<size_t>(i) * k + i] = 1.0f;
  std::vector<int32_t> offsets = {0, k}, indices(k);
  for (int i = 0; i < k; ++i) indices[i] = i;
  float res = 0, cn = 0;
  salt_solve_args sa{};
  sa.n = 1;
  sa.offsets = offsets.data();
  sa.indices = indices.data();
  sa.queries = xf.data();
  sa.ht = h;
  sa.anchors_plm = af.data();
  sa.m = k;
  sa.anchors_src = sf.data();
  sa.hs = k;
  sa.lambda = 0;
  sa.rcond = -1;
  sa.threads = 1;
  sa.out = out.data();
  sa.out_residual = &res;
  sa.out_coef_norm = &cn;
  sa.out_coefficients = coef.data();
  const salt_status st = salt::cpu::solve_neighbourhoods(sa);
  std::snprintf(what, sizeof what, "%s: CPU solve_neighbourhoods ran", name);
  expect(st.code == SALT_OK, what, n, st.code, 0);
  double cdiff = 0, cscale = 0;
  for (int i = 0; i < k; ++i) {
    cdiff = std::max(cdiff, std::fabs(static_cast<double>(coef[i]) - d_jac[i]));
    cscale = std::max(cscale, std::fabs(static_cast<double>(coef[i])));
  }
  for (int i = k; i < n; ++i) cdiff = std::max(cdiff, std::fabs(d_jac[i]));  // padding carries nothing
  std::snprintf(what, sizeof what, "%s: coefficients vs CPU solve_neighbourhoods", name);
  expect(cdiff <= 1e-5 * std::max(cscale, 1e-12), what, n, cdiff, 1e-5 * cscale);
}

}  // namespace

int main() {
  std::mt19937 gen(42);
  std::normal_distribution<double> nd;
  const int sizes[] = {1, 2, 3, 7, 8, 33, 40, 64, 96, 128};
  for (int n : sizes) {
    for (int h : {n / 2 + 1, n, 2 * n + 3, 300}) {
      // Random rows: rank min(n, h); k > h gives a rank-deficient Gram matrix.
      std::vector<double> rows(static_cast<size_t>(n) * h);
      for (auto& v : rows) v = static_cast<float>(nd(gen));  // float data, as in the kernels
      check_case("random", rows, n, n, h, gen);
      if (n >= 4) {
        // Duplicate rows, a zero row, a near-collinear row, and zero padding rows at the end.
        std::vector<double> dup = rows;
        const int real = n - n / 4;
        for (int t = 0; t < h; ++t) {
          dup[1 * h + t] = dup[0 * h + t];
          dup[2 * h + t] = 0.0;
          dup[3 * h + t] = static_cast<float>(2.0 * dup[0 * h + t] + 1e-3 * nd(gen));
          for (int i = real; i < n; ++i) dup[i * h + t] = 0.0;
        }
        check_case("duplicate/zero/near-collinear/padded", dup, n, real, h, gen);
      }
    }
  }
  std::printf("jacobi_host_test: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
