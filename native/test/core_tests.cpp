// Tests of the C++ core against independent float64 references (brute-force cosine, bisection
// sparsemax, Gaussian-elimination ridge, one-sided Jacobi SVD pseudo-inverse). Built by
// CMakeLists.txt, run by `npm test` normally and under AddressSanitizer/UBSan.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "salt/core.h"
#include "salt/json_vocab.h"

namespace {

int passed = 0, failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

using Mat = std::vector<float>;
using DMat = std::vector<double>;

Mat randn(std::mt19937& rng, size_t count) {
  std::normal_distribution<float> nd(0.f, 1.f);
  Mat v(count);
  for (auto& x : v) x = nd(rng);
  return v;
}

// ---------- top-k ----------
bool topk_matches_reference(const Mat& q, int64_t n, const Mat& b, int64_t m, int64_t d, int64_t k, std::string* why) {
  std::vector<int32_t> idx(n * k);
  std::vector<float> sc(n * k);
  salt_topk_args a{};
  a.queries = q.data();
  a.n = n;
  a.base = b.data();
  a.m = m;
  a.d = d;
  a.k = k;
  a.out_indices = idx.data();
  a.out_scores = sc.data();
  salt_status s = salt::cpu::topk_cosine(a);
  if (s.code) {
    *why = s.message;
    return false;
  }
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> ref(m);
    double qn = 0;
    for (int64_t t = 0; t < d; ++t) qn += double(q[i * d + t]) * q[i * d + t];
    for (int64_t j = 0; j < m; ++j) {
      double dot = 0, bn = 0;
      for (int64_t t = 0; t < d; ++t) {
        dot += double(q[i * d + t]) * b[j * d + t];
        bn += double(b[j * d + t]) * b[j * d + t];
      }
      ref[j] = (qn > 0 && bn > 0) ? dot / std::sqrt(qn * bn) : 0.0;
    }
    std::vector<int> order(m);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return ref[x] > ref[y]; });
    for (int64_t j = 0; j < k; ++j) {
      const int got = idx[i * k + j];
      if (std::fabs(sc[i * k + j] - ref[got]) > 1e-5) {
        *why = "score mismatch";
        return false;
      }
      if (got != order[j] && std::fabs(ref[got] - ref[order[j]]) > 1e-5) {
        *why = "index mismatch";
        return false;
      }
      if (j > 0 &&
          (sc[i * k + j] > sc[i * k + j - 1] || (sc[i * k + j] == sc[i * k + j - 1] && got < idx[i * k + j - 1]))) {
        *why = "order violates (score desc, index asc)";
        return false;
      }
    }
  }
  return true;
}

void test_topk() {
  std::mt19937 rng(1);
  const int64_t shapes[][4] = {{7, 13, 5, 3}, {50, 40, 16, 40},   {33, 100, 1, 1},
                               {1, 1, 4, 1},  {300, 257, 32, 64}, {25, 30, 8, 30}};
  for (auto& sh : shapes) {
    const int64_t n = sh[0], m = sh[1], d = sh[2], k = sh[3];
    Mat q = randn(rng, n * d), b = randn(rng, m * d);
    std::string why;
    check(topk_matches_reference(q, n, b, m, d, k, &why), "topk random n=" + std::to_string(n) +
                                                              " m=" + std::to_string(m) + " d=" + std::to_string(d) +
                                                              " k=" + std::to_string(k) + " " + why);
  }
  // Duplicates and zero rows: exact ties must resolve to the lower index.
  {
    const int64_t m = 12, d = 4, k = 5;
    Mat b = randn(rng, m * d);
    for (int t = 0; t < d; ++t) {
      b[5 * d + t] = b[2 * d + t];
      b[9 * d + t] = b[2 * d + t];
      b[7 * d + t] = 0;
      b[8 * d + t] = 0;
    }
    Mat q(b.begin() + 2 * d, b.begin() + 3 * d);
    std::vector<int32_t> idx(k);
    std::vector<float> sc(k);
    salt_topk_args a{};
    a.queries = q.data();
    a.n = 1;
    a.base = b.data();
    a.m = m;
    a.d = d;
    a.k = 2;
    a.out_indices = idx.data();
    a.out_scores = sc.data();
    check(salt::cpu::topk_cosine(a).code == SALT_OK && idx[0] == 2 && idx[1] == 5,
          "topk ties at the k boundary go to the lower index");
    Mat zq(d, 0.f);
    a.queries = zq.data();
    a.k = k;
    check(salt::cpu::topk_cosine(a).code == SALT_OK && sc[0] == 0.f && idx[0] == 0 && idx[4] == 4,
          "topk zero query: all scores 0, indices 0..k-1");
    std::string why;
    Mat many = randn(rng, 40 * d);
    for (int r = 0; r < 40; ++r)
      for (int t = 0; t < d; ++t)
        if (r % 3 == 0) many[r * d + t] = b[2 * d + t];
    check(topk_matches_reference(many, 40, b, m, d, k, &why), "topk with duplicate/zero base rows " + why);
  }
  // n = 0 and errors.
  {
    Mat b = randn(rng, 8);
    salt_topk_args a{};
    a.base = b.data();
    a.m = 4;
    a.d = 2;
    a.k = 2;
    a.n = 0;
    check(salt::cpu::topk_cosine(a).code == SALT_OK, "topk n = 0");
    a.k = 5;
    check(salt::cpu::topk_cosine(a).code == SALT_E_ARGUMENT, "topk k > m is E_ARGUMENT");
    a.k = 2;
    a.n = 1;
    Mat q = {1.f, NAN};
    std::vector<int32_t> idx(2);
    std::vector<float> sc(2);
    a.queries = q.data();
    a.out_indices = idx.data();
    a.out_scores = sc.data();
    salt_status s = salt::cpu::topk_cosine(a);
    check(s.code == SALT_E_NONFINITE && std::string(s.message) == "queries contains NaN at row 0, column 1",
          std::string("topk NaN: ") + s.message);
  }
}

// ---------- sparsemax ----------
void test_sparsemax() {
  std::mt19937 rng(2);
  for (int K : {1, 2, 5, 64}) {
    const int64_t n = 20;
    Mat z = randn(rng, n * K);
    for (int i = 0; i < n * K; i += 7) z[i] = z[i / K * K];  // some ties
    std::vector<float> w(n * K);
    std::vector<int32_t> sup(n);
    salt_sparsemax_args a{z.data(), n, K, w.data(), sup.data(), 0};
    check(salt::cpu::sparsemax(a).code == SALT_OK, "sparsemax runs");
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) {
      // Reference: tau solving sum max(z - tau, 0) = 1 by bisection.
      const float* r = z.data() + i * K;
      double lo = *std::min_element(r, r + K) - 1, hi = *std::max_element(r, r + K);
      for (int it = 0; it < 200; ++it) {
        const double mid = 0.5 * (lo + hi);
        double s = 0;
        for (int j = 0; j < K; ++j) s += std::max(0.0, r[j] - mid);
        (s > 1 ? lo : hi) = mid;
      }
      int nz = 0;
      for (int j = 0; j < K; ++j) {
        const double ref = std::max(0.0, r[j] - lo);
        ok &= std::fabs(ref - w[i * K + j]) < 1e-5;
        nz += ref > 1e-7;
      }
      ok &= sup[i] == nz;
    }
    check(ok, "sparsemax matches bisection reference, K=" + std::to_string(K));
  }
  Mat bad = {0.f, INFINITY};
  std::vector<float> w(2);
  std::vector<int32_t> s(1);
  salt_sparsemax_args a{bad.data(), 1, 2, w.data(), s.data(), 0};
  check(salt::cpu::sparsemax(a).code == SALT_E_NONFINITE, "sparsemax Inf is E_NONFINITE");
}

// ---------- solves ----------
// Minimum-norm least squares c = x pinv(A) via one-sided Jacobi SVD of A^T (ht x k), float64.
std::vector<double> pinv_reference(const DMat& A, int k, int ht, const std::vector<double>& x, double rcond) {
  DMat U(ht * k);  // columns = A rows
  for (int r = 0; r < k; ++r)
    for (int j = 0; j < ht; ++j) U[j * k + r] = A[r * ht + j];
  DMat V(k * k, 0.0);
  for (int r = 0; r < k; ++r) V[r * k + r] = 1;
  for (int sweep = 0; sweep < 60; ++sweep) {
    double off = 0;
    for (int p = 0; p < k; ++p)
      for (int q = p + 1; q < k; ++q) {
        double a = 0, b = 0, g = 0;
        for (int j = 0; j < ht; ++j) {
          a += U[j * k + p] * U[j * k + p];
          b += U[j * k + q] * U[j * k + q];
          g += U[j * k + p] * U[j * k + q];
        }
        if (std::fabs(g) <= 1e-300 || std::fabs(g) < 1e-15 * std::sqrt(a * b)) continue;
        off = std::max(off, std::fabs(g) / std::sqrt(a * b));
        const double zeta = (b - a) / (2 * g);
        const double t = (zeta >= 0 ? 1 : -1) / (std::fabs(zeta) + std::sqrt(1 + zeta * zeta));
        const double c = 1 / std::sqrt(1 + t * t), s = c * t;
        for (int j = 0; j < ht; ++j) {
          const double up = U[j * k + p], uq = U[j * k + q];
          U[j * k + p] = c * up - s * uq;
          U[j * k + q] = s * up + c * uq;
        }
        for (int j = 0; j < k; ++j) {
          const double vp = V[j * k + p], vq = V[j * k + q];
          V[j * k + p] = c * vp - s * vq;
          V[j * k + q] = s * vp + c * vq;
        }
      }
    if (off < 1e-15) break;
  }
  std::vector<double> sig(k);
  double smax = 0;
  for (int p = 0; p < k; ++p) {
    double s = 0;
    for (int j = 0; j < ht; ++j) s += U[j * k + p] * U[j * k + p];
    sig[p] = std::sqrt(s);
    smax = std::max(smax, sig[p]);
  }
  // A^T = U' diag(sig) V^T with U' = U / sig; c = x pinv(A) = (pinv(A^T) x^T)^T = V diag(1/sig) U'^T x.
  std::vector<double> c(k, 0.0);
  for (int p = 0; p < k; ++p) {
    if (sig[p] <= rcond * smax || sig[p] == 0) continue;
    double ux = 0;
    for (int j = 0; j < ht; ++j) ux += U[j * k + p] / sig[p] * x[j];
    for (int r = 0; r < k; ++r) c[r] += V[r * k + p] * ux / sig[p];
  }
  return c;
}

// Ridge reference: solve (A A^T + lambda I) d = A (x - w A) by Gaussian elimination, c = w + d.
std::vector<double> ridge_reference(const DMat& A, int k, int ht, const std::vector<double>& x,
                                    const std::vector<double>& w, double lambda) {
  std::vector<double> xr(x);
  for (int r = 0; r < k; ++r)
    for (int j = 0; j < ht; ++j) xr[j] -= w[r] * A[r * ht + j];
  DMat G(k * (k + 1), 0.0);
  for (int r = 0; r < k; ++r) {
    for (int s = 0; s < k; ++s) {
      double g = 0;
      for (int j = 0; j < ht; ++j) g += A[r * ht + j] * A[s * ht + j];
      G[r * (k + 1) + s] = g + (r == s ? lambda : 0);
    }
    double b = 0;
    for (int j = 0; j < ht; ++j) b += A[r * ht + j] * xr[j];
    G[r * (k + 1) + k] = b;
  }
  for (int c = 0; c < k; ++c) {
    int piv = c;
    for (int r = c + 1; r < k; ++r)
      if (std::fabs(G[r * (k + 1) + c]) > std::fabs(G[piv * (k + 1) + c])) piv = r;
    for (int j = 0; j <= k; ++j) std::swap(G[c * (k + 1) + j], G[piv * (k + 1) + j]);
    for (int r = 0; r < k; ++r) {
      if (r == c) continue;
      const double f = G[r * (k + 1) + c] / G[c * (k + 1) + c];
      for (int j = c; j <= k; ++j) G[r * (k + 1) + j] -= f * G[c * (k + 1) + j];
    }
  }
  std::vector<double> out(k);
  for (int r = 0; r < k; ++r) out[r] = w[r] + G[r * (k + 1) + k] / G[r * (k + 1) + r];
  return out;
}

struct SolveCase {
  std::string name;
  int64_t n, m, ht, hs;
  std::vector<int32_t> offsets, indices;
  Mat X, A, S, prior;
  double lambda, rcond;
};

void run_solve_case(const SolveCase& c, double tol) {
  std::vector<float> out(c.n * c.hs), res(c.n), cn(c.n), coefs(c.indices.size());
  salt_solve_args a{};
  a.n = c.n;
  a.offsets = c.offsets.data();
  a.indices = c.indices.data();
  a.prior = c.prior.empty() ? nullptr : c.prior.data();
  a.queries = c.X.data();
  a.ht = c.ht;
  a.anchors_plm = c.A.data();
  a.m = c.m;
  a.anchors_src = c.S.data();
  a.hs = c.hs;
  a.lambda = c.lambda;
  a.rcond = c.rcond;
  a.out = out.data();
  a.out_residual = res.data();
  a.out_coef_norm = cn.data();
  a.out_coefficients = coefs.data();
  salt_status s = salt::cpu::solve_neighbourhoods(a);
  if (s.code) {
    check(false, c.name + ": " + s.message);
    return;
  }
  double worst = 0;
  for (int64_t i = 0; i < c.n; ++i) {
    const int lo = c.offsets[i], k = c.offsets[i + 1] - lo;
    DMat An(k * c.ht);
    std::vector<double> x(c.ht), w(k, 0.0);
    for (int r = 0; r < k; ++r)
      for (int j = 0; j < c.ht; ++j) An[r * c.ht + j] = c.A[c.indices[lo + r] * c.ht + j];
    for (int j = 0; j < c.ht; ++j) x[j] = c.X[i * c.ht + j];
    if (!c.prior.empty())
      for (int r = 0; r < k; ++r) w[r] = c.prior[lo + r];
    std::vector<double> ref;
    if (c.lambda > 0) {
      ref = ridge_reference(An, k, c.ht, x, w, c.lambda);
    } else {
      std::vector<double> xr(x);
      for (int r = 0; r < k; ++r)
        for (int j = 0; j < c.ht; ++j) xr[j] -= w[r] * An[r * c.ht + j];
      ref = pinv_reference(An, k, c.ht, xr, c.rcond < 0 ? salt_default_rcond(k, c.ht) : c.rcond);
      for (int r = 0; r < k; ++r) ref[r] += w[r];
    }
    double rn = 0;
    for (int r = 0; r < k; ++r) rn += ref[r] * ref[r];
    for (int t = 0; t < c.hs; ++t) {
      double o = 0, scale = 0;
      for (int r = 0; r < k; ++r) {
        o += ref[r] * c.S[c.indices[lo + r] * c.hs + t];
        scale += std::fabs(ref[r] * c.S[c.indices[lo + r] * c.hs + t]);
      }
      worst = std::max(worst, std::fabs(o - out[i * c.hs + t]) / std::max(scale, 1e-12));
    }
    worst = std::max(worst, std::fabs(std::sqrt(rn) - cn[i]) / std::max(std::sqrt(rn), 1e-12));
  }
  check(worst < tol, c.name + " (worst relative error " + std::to_string(worst) + ")");
}

SolveCase random_case(std::mt19937& rng, const std::string& name, int64_t n, int64_t m, int64_t ht, int64_t hs,
                      int kmin, int kmax, double lambda) {
  SolveCase c{name, n, m, ht, hs, {0}, {}, randn(rng, n * ht), randn(rng, m * ht), randn(rng, m * hs), {}, lambda, -1};
  std::uniform_int_distribution<int> kd(kmin, kmax), md(0, int(m) - 1);
  for (int64_t i = 0; i < n; ++i) {
    const int k = kd(rng);
    for (int r = 0; r < k; ++r) c.indices.push_back(md(rng));  // unsorted, may repeat: rank-deficient
    c.offsets.push_back(int32_t(c.indices.size()));
  }
  return c;
}

void test_solve() {
  std::mt19937 rng(3);
  run_solve_case(random_case(rng, "ridge random", 40, 30, 12, 9, 1, 10, 0.5), 1e-5);
  run_solve_case(random_case(rng, "pinv random (k <= ht)", 40, 30, 12, 9, 1, 10, 0.0), 1e-4);
  run_solve_case(random_case(rng, "pinv k > ht", 30, 50, 4, 6, 5, 20, 0.0), 1e-4);
  run_solve_case(random_case(rng, "ridge k > ht", 30, 50, 4, 6, 5, 20, 2.0), 1e-5);
  run_solve_case(random_case(rng, "pinv k = 1", 10, 5, 3, 2, 1, 1, 0.0), 1e-5);
  {
    SolveCase c = random_case(rng, "ridge towards prior", 25, 30, 8, 5, 1, 12, 3.0);
    for (size_t j = 0; j < c.indices.size(); ++j) c.prior.push_back(std::uniform_real_distribution<float>(0, 1)(rng));
    run_solve_case(c, 1e-5);
    c.name = "pinv with prior";
    c.lambda = 0;
    run_solve_case(c, 1e-4);
  }
  {
    // Near-collinear neighbourhood: rows a, a + 1e-3 e, b; pinv must keep the tiny direction when it
    // is above rcond and drop it when rcond exceeds it.
    SolveCase c = random_case(rng, "pinv near-collinear", 8, 6, 10, 4, 3, 3, 0.0);
    for (int j = 0; j < 10; ++j) c.A[1 * 10 + j] = c.A[0 * 10 + j] + 1e-3f * float(j % 3 - 1);
    for (int64_t i = 0; i < 8; ++i) {
      c.indices[i * 3] = 0;
      c.indices[i * 3 + 1] = 1;
      c.indices[i * 3 + 2] = 2 + int(i % 4);
    }
    run_solve_case(c, 1e-5);
    c.name = "pinv near-collinear, rcond 1e-2";
    c.rcond = 1e-2;
    run_solve_case(c, 1e-4);
  }
  {
    // Exactly duplicated neighbours (rank-deficient): min-norm splits the weight equally.
    SolveCase c = random_case(rng, "pinv duplicate neighbours", 1, 3, 5, 3, 2, 2, 0.0);
    c.indices = {1, 1};
    std::vector<float> co(2), out(3), res(1), cn(1);
    salt_solve_args a{};
    a.n = 1;
    a.offsets = c.offsets.data();
    a.indices = c.indices.data();
    a.queries = c.X.data();
    a.ht = 5;
    a.anchors_plm = c.A.data();
    a.m = 3;
    a.anchors_src = c.S.data();
    a.hs = 3;
    a.rcond = -1;
    a.out = out.data();
    a.out_residual = res.data();
    a.out_coef_norm = cn.data();
    a.out_coefficients = co.data();
    check(salt::cpu::solve_neighbourhoods(a).code == SALT_OK && std::fabs(co[0] - co[1]) < 1e-6,
          "pinv duplicate rows get equal coefficients");
    run_solve_case(c, 1e-4);
  }
  {
    // Errors: negative lambda, index out of range, NaN.
    SolveCase c = random_case(rng, "errors", 2, 4, 3, 2, 1, 2, 0.0);
    std::vector<float> out(4), res(2), cn(2);
    salt_solve_args a{};
    a.n = 2;
    a.offsets = c.offsets.data();
    a.indices = c.indices.data();
    a.queries = c.X.data();
    a.ht = 3;
    a.anchors_plm = c.A.data();
    a.m = 4;
    a.anchors_src = c.S.data();
    a.hs = 2;
    a.rcond = -1;
    a.lambda = -1;
    a.out = out.data();
    a.out_residual = res.data();
    a.out_coef_norm = cn.data();
    check(salt::cpu::solve_neighbourhoods(a).code == SALT_E_ARGUMENT, "negative lambda is E_ARGUMENT");
    a.lambda = 0;
    c.indices[0] = 4;
    salt_status s = salt::cpu::solve_neighbourhoods(a);
    check(s.code == SALT_E_ARGUMENT && std::string(s.message) == "indices[0] = 4 is outside [0, 4)",
          std::string("index out of range: ") + s.message);
    c.indices[0] = 0;
    c.A[5] = NAN;
    s = salt::cpu::solve_neighbourhoods(a);
    check(s.code == SALT_E_NONFINITE && std::string(s.message) == "anchorsPlm contains NaN at row 1, column 2",
          std::string("NaN anchor: ") + s.message);
  }
}

void test_apply() {
  std::mt19937 rng(4);
  const int64_t m = 9, hs = 7;
  Mat S = randn(rng, m * hs);
  std::vector<int32_t> offsets = {0, 3, 3, 5}, indices = {4, 0, 4, 8, 1};
  Mat w = {0.5f, 0.25f, 0.25f, 1.f, -2.f};
  std::vector<float> out(3 * hs);
  salt_apply_args a{3, offsets.data(), indices.data(), w.data(), S.data(), m, hs, out.data(), 0};
  check(salt::cpu::apply_weights(a).code == SALT_OK, "apply_weights runs");
  double worst = 0;
  for (int i = 0; i < 3; ++i)
    for (int t = 0; t < hs; ++t) {
      double ref = 0;
      for (int j = offsets[i]; j < offsets[i + 1]; ++j) ref += double(w[j]) * S[indices[j] * hs + t];
      worst = std::max(worst, std::fabs(ref - out[i * hs + t]));
    }
  check(worst < 1e-6, "apply_weights matches the reference (empty list gives zeros)");
}

// ---------- whole-matrix passes ----------
// column_mean_std of X (rows x cols) for 1, 2 and 3 threads: each within 1e-12 of the plain two-pass
// float64 loop and all the same bits (the blocked definition of salt/matrix_ops.h, which
// test/matrixOps.test.ts checks bit for bit). With `norms`, the 2-thread run writes its row norms there.
void check_column_stats(const Mat& X, int64_t rows, int64_t cols, const std::string& what, std::vector<double>* norms) {
  std::vector<double> rm(cols, 0), rs(cols, 0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) rm[j] += double(X[i * cols + j]);
  for (int64_t j = 0; j < cols; ++j) rm[j] /= double(rows);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const volatile double d = double(X[i * cols + j]) - rm[j];  // volatile: no fused multiply-add here
      rs[j] += d * d;
    }
  for (int64_t j = 0; j < cols; ++j) rs[j] = std::sqrt(rs[j] / double(rows));
  std::vector<double> first_mean, first_sd;
  for (int32_t threads : {1, 2, 3}) {
    std::vector<double> mean(cols, -1), sd(cols, -1);
    const bool with_norms = norms != nullptr && threads == 2;
    salt_column_stats_args a{
        {X.data(), rows, cols}, mean.data(), sd.data(), threads, with_norms, with_norms ? norms->data() : nullptr};
    bool close = salt::cpu::column_mean_std(a).code == SALT_OK;
    for (int64_t j = 0; j < cols; ++j)
      close = close && std::fabs(mean[j] - rm[j]) <= 1e-12 * (std::fabs(rm[j]) + rs[j]) &&
              std::fabs(sd[j] - rs[j]) <= 1e-12 * rs[j];
    check(close, what + " is within 1e-12 of the float64 loop, threads=" + std::to_string(threads));
    if (first_mean.empty()) {
      first_mean = mean;
      first_sd = sd;
    }
    check(mean == first_mean && sd == first_sd, what + " gives the same bits, threads=" + std::to_string(threads));
  }
}

void test_matrix_ops() {
  std::mt19937 rng(5);
  const int64_t rows = 301, cols = 133;  // statistics blocks of 246 rows: a whole one and a partial one
  Mat X = randn(rng, rows * cols);
  for (auto& x : X) x = x * 3.f + 0.25f;
  // Column statistics (and the norms of the same pass, with the 2-thread run): see
  // check_column_stats. The second matrix has several groups (blocks of one row at 16,385 columns,
  // groups of 256 rows: 256 + 256 + 88), which the threads share.
  std::vector<double> norms(rows, -1);
  check_column_stats(X, rows, cols, "column_mean_std", &norms);
  {
    const int64_t r2 = 600, c2 = 16385;
    Mat Y = randn(rng, r2 * c2);
    for (int64_t i = 0; i < r2 * c2; ++i) Y[i] = Y[i] * 0.02f + float(i % c2) * 1e-4f;
    check_column_stats(Y, r2, c2, "column_mean_std over three groups", nullptr);
  }
  {
    std::vector<double> mean(4, -1), sd(4, -1);
    salt_column_stats_args a{{nullptr, 0, 4}, mean.data(), sd.data(), 0, 1, nullptr};
    check(salt::cpu::column_mean_std(a).code == SALT_OK && mean == std::vector<double>(4, 0) && sd == mean,
          "column_mean_std of no rows is 0, 0");
  }
  // Row norms, all rows and listed rows.
  {
    std::vector<double> ref(rows);
    for (int64_t i = 0; i < rows; ++i) {
      double s = 0;
      for (int64_t j = 0; j < cols; ++j) s += double(X[i * cols + j]) * double(X[i * cols + j]);
      ref[i] = std::sqrt(s);
    }
    std::vector<double> out(rows);
    salt_row_norms_args a{{X.data(), rows, cols}, nullptr, rows, out.data(), 0};
    check(salt::cpu::row_norms(a).code == SALT_OK && out == ref, "row_norms equals the float64 loop");
    check(norms == ref, "column_mean_std's norms equal the float64 loop");
    std::vector<int32_t> ids = {300, 0, 7, 7};
    std::vector<double> sub(4);
    salt_row_norms_args b{{X.data(), rows, cols}, ids.data(), 4, sub.data(), 2};
    check(salt::cpu::row_norms(b).code == SALT_OK && sub[0] == ref[300] && sub[1] == ref[0] && sub[3] == ref[7],
          "row_norms of listed rows");
    ids[2] = int32_t(rows);
    const salt_status s = salt::cpu::row_norms(b);
    check(s.code == SALT_E_ARGUMENT && std::string(s.message) == "ids[2] = 301 is outside [0, 301)",
          std::string("row_norms bad id: ") + s.message);
  }
  // Gather.
  {
    std::vector<int32_t> ids = {5, 300, 5};
    Mat out(3 * cols);
    salt_gather_args a{{X.data(), rows, cols}, ids.data(), 3, out.data(), 0};
    check(salt::cpu::gather_rows(a).code == SALT_OK &&
              std::equal(out.begin(), out.begin() + cols, X.begin() + 5 * cols) &&
              std::equal(out.begin() + cols, out.begin() + 2 * cols, X.begin() + 300 * cols),
          "gather_rows copies the listed rows");
  }
  // First non-finite value: the smallest flat index wins over later ones found by other threads.
  {
    Mat Y = X;
    Y[250 * cols + 3] = NAN;
    Y[40 * cols + 100] = INFINITY;
    Y[40 * cols + 101] = NAN;
    int64_t at = -2;
    salt_nonfinite_args a{{Y.data(), rows, cols}, nullptr, &at, 2};
    check(salt::cpu::find_nonfinite(a).code == SALT_OK && at == 40 * cols + 100, "find_nonfinite finds the first");
    std::vector<uint8_t> mask(rows, 1);
    mask[40] = 0;
    a.row_mask = mask.data();
    check(salt::cpu::find_nonfinite(a).code == SALT_OK && at == 250 * cols + 3, "find_nonfinite skips masked rows");
    a.m.data = X.data();
    check(salt::cpu::find_nonfinite(a).code == SALT_OK && at == -1, "find_nonfinite of a finite matrix is -1");
  }
  // F16 / BF16: decoding every bit pattern, and encoding against the compiler's correctly rounded
  // _Float16 conversion and a nearest-even BF16 rounding done in double.
  {
    std::vector<uint16_t> all(65536);
    for (uint32_t h = 0; h < 65536; ++h) all[h] = uint16_t(h);
    Mat f16(65536), bf16(65536);
    salt_convert_args d{SALT_HALF_F16, 65536, nullptr, all.data(), f16.data(), nullptr, 0};
    check(salt::cpu::decode_floats(d).code == SALT_OK, "decode F16 runs");
    d.kind = SALT_HALF_BF16;
    d.out_f32 = bf16.data();
    check(salt::cpu::decode_floats(d).code == SALT_OK, "decode BF16 runs");
    int bad16 = 0, badbf = 0;
    for (uint32_t h = 0; h < 65536; ++h) {
      _Float16 ref;
      const uint16_t bits = uint16_t(h);
      std::memcpy(&ref, &bits, 2);
      const float r = float(ref);
      if (!(std::isnan(r) ? std::isnan(f16[h]) : std::memcmp(&r, &f16[h], 4) == 0)) ++bad16;
      uint32_t u;
      std::memcpy(&u, &bf16[h], 4);
      if (u != h << 16) ++badbf;
    }
    check(bad16 == 0 && badbf == 0, "decode matches _Float16 and the BF16 bit layout for all 65,536 patterns");
    std::uniform_int_distribution<uint32_t> any;
    const int64_t n = 200000;
    Mat src(n);
    for (int64_t i = 0; i < n; ++i) {
      uint32_t u = any(rng);
      if (i % 4 == 1) u = (u & 0x8fffe000u) | 0x38000000u | 0x1000u;  // F16 ties, normal range
      if (i % 4 == 2) u = (u & 0x83ff8000u) | 0x3c000000u | 0x8000u;  // BF16 ties
      if (i % 4 == 3) u = (u & 0x87ffffffu) | 0x30000000u;            // F16 subnormal range
      std::memcpy(&src[i], &u, 4);
    }
    std::vector<uint16_t> h16(n), hbf(n);
    salt_convert_args e{SALT_HALF_F16, n, src.data(), nullptr, nullptr, h16.data(), 2};
    check(salt::cpu::encode_floats(e).code == SALT_OK, "encode F16 runs");
    e.kind = SALT_HALF_BF16;
    e.out_h = hbf.data();
    check(salt::cpu::encode_floats(e).code == SALT_OK, "encode BF16 runs");
    bad16 = badbf = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float x = src[i];
      if (std::isnan(x)) {
        bad16 += (h16[i] & 0x7c00) != 0x7c00 || (h16[i] & 0x3ff) == 0;
        badbf += (hbf[i] & 0x7f80) != 0x7f80 || (hbf[i] & 0x7f) == 0;
        continue;
      }
      const _Float16 r = _Float16(x);
      uint16_t rb;
      std::memcpy(&rb, &r, 2);
      bad16 += rb != h16[i];
      uint32_t u;
      std::memcpy(&u, &x, 4);
      const uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
      // The two BF16 neighbours as exact doubles; the pattern past the largest finite one stands for
      // 2^128, the value an unbounded exponent would give (IEEE rounds to Inf from its midpoint on).
      auto value = [](uint32_t bits) {
        if ((bits & 0x7fffffffu) == 0x7f800000u) return std::copysign(std::ldexp(1.0, 128), bits >> 31 ? -1.0 : 1.0);
        float f;
        std::memcpy(&f, &bits, 4);
        return double(f);
      };
      const double dl = std::fabs(double(x) - value(lo)), dh = std::fabs(double(x) - value(hi));
      const bool up = dh < dl || (dh == dl && ((lo >> 16) & 1u));
      const uint16_t want = uint16_t((up ? hi : lo) >> 16);
      badbf += want != hbf[i];
    }
    check(bad16 == 0, "encode F16 matches _Float16 on 200,000 values (" + std::to_string(bad16) + " differ)");
    check(badbf == 0,
          "encode BF16 matches nearest-even rounding on 200,000 values (" + std::to_string(badbf) + " differ)");
  }
  // Sort.
  {
    std::vector<double> v = {3, NAN, -0.0, 0.0, -1, 2, NAN, 0.0, -0.0};
    salt_sort_args a{v.data(), int64_t(v.size())};
    check(salt::cpu::sort_doubles(a).code == SALT_OK && v[0] == -1 && std::signbit(v[1]) && std::signbit(v[2]) &&
              !std::signbit(v[3]) && !std::signbit(v[4]) && v[5] == 2 && v[6] == 3 && std::isnan(v[7]) &&
              std::isnan(v[8]),
          "sort_doubles: ascending, -0 before +0, NaN last");
  }
}

// Kernel ridge linear algebra against plain double loops.
void test_kernel_ridge() {
  std::mt19937 gen(11);
  std::normal_distribution<float> nd;
  const int64_t n = 37, L = 23, d = 9, r = 5;
  std::vector<float> x(n * d), z(L * d), proj(L * r);
  for (auto& v : x) v = nd(gen);
  for (auto& v : z) v = nd(gen);
  for (auto& v : proj) v = nd(gen);
  std::fill(x.begin() + 3 * d, x.begin() + 4 * d, 0.0f);  // a zero row: cosine 0
  const double lin = 0.3, width = 0.25;
  std::vector<double> want(n * L);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < L; ++j) {
      double dot = 0, nx = 0, nz = 0;
      for (int64_t t = 0; t < d; ++t) {
        dot += double(x[i * d + t]) * z[j * d + t];
        nx += double(x[i * d + t]) * x[i * d + t];
        nz += double(z[j * d + t]) * z[j * d + t];
      }
      const double c = nx > 0 && nz > 0 ? dot / std::sqrt(nx * nz) : 0;
      want[i * L + j] = lin * (dot + 1) + std::exp((c - 1) / width);
    }
  std::vector<float> K(n * L), KP(n * r);
  salt_kernel_args a{x.data(), n, z.data(), L, d, lin, width, nullptr, 0, K.data(), 0};
  check(salt::cpu::kernel_matrix(a).code == SALT_OK, "kernel_matrix runs");
  double worst = 0;
  for (int64_t i = 0; i < n * L; ++i) worst = std::max(worst, std::fabs(K[i] - want[i]) / (1 + std::fabs(want[i])));
  check(worst < 2e-6, "kernel_matrix matches the formula (worst " + std::to_string(worst) + ")");
  a.proj = proj.data();
  a.r = r;
  a.out = KP.data();
  check(salt::cpu::kernel_matrix(a).code == SALT_OK, "kernel_matrix with proj runs");
  worst = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < r; ++c) {
      double s = 0;
      for (int64_t j = 0; j < L; ++j) s += want[i * L + j] * proj[j * r + c];
      worst = std::max(worst, std::fabs(KP[i * r + c] - s) / (1 + std::fabs(s)));
    }
  check(worst < 1e-5, "kernel_matrix proj = K proj (worst " + std::to_string(worst) + ")");
  a.width = 0;
  check(salt::cpu::kernel_matrix(a).code == SALT_E_ARGUMENT, "kernel_matrix width 0 is E_ARGUMENT");

  // gemm (both transposes, float64) and the syrk path (A^T A, float32).
  std::vector<double> A(n * L), B(L * r), C(n * r, 0.0);
  for (int64_t i = 0; i < n * L; ++i) A[i] = want[i];
  for (int64_t i = 0; i < L * r; ++i) B[i] = proj[i];
  salt_gemm_args g{1, A.data(), B.data(), C.data(), n, L, r, 0, 0, 0, 0};
  check(salt::cpu::gemm(g).code == SALT_OK, "gemm f64 runs");
  worst = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < r; ++c) {
      double s = 0;
      for (int64_t j = 0; j < L; ++j) s += A[i * L + j] * B[j * r + c];
      worst = std::max(worst, std::fabs(C[i * r + c] - s));
    }
  check(worst < 1e-9, "gemm f64 = A B");
  std::vector<float> G(L * L, 1.0f);
  salt_gemm_args sy{0, K.data(), K.data(), G.data(), L, n, L, 1, 0, 1, 0};  // G += K^T K
  check(salt::cpu::gemm(sy).code == SALT_OK, "gemm syrk path runs");
  worst = 0;
  for (int64_t p = 0; p < L; ++p)
    for (int64_t q = 0; q < L; ++q) {
      double s = 1;
      for (int64_t i = 0; i < n; ++i) s += want[i * L + p] * want[i * L + q];
      worst = std::max(worst, std::fabs(G[p * L + q] - s) / (1 + std::fabs(s)));
    }
  check(worst < 1e-5, "gemm A^T A accumulates (syrk, mirrored)");

  // LOO, Cholesky solve and whitening on S = K^T K + I (positive definite).
  std::vector<double> S(L * L);
  for (int64_t p = 0; p < L; ++p)
    for (int64_t q = 0; q < L; ++q) {
      double s = p == q ? 1 : 0;
      for (int64_t i = 0; i < n; ++i) s += want[i * L + p] * want[i * L + q];
      S[p * L + q] = s;
    }
  // kernel_loo against leave-one-out by definition: for each i, ridge on the other rows only
  // ((S_-i + lambda I) beta = Y_-i by Gaussian elimination here), then row i's prediction S_i,-i beta.
  {
    const int64_t w = 3, oc = 2;
    const double lambda = 0.7;
    std::vector<double> Yl(L * w);
    for (int64_t i = 0; i < L * w; ++i) Yl[i] = std::cos(0.37 * double(i)) + 0.1 * double(i % 5);
    std::vector<float> loo(L * oc, -7.0f);
    int32_t linfo = -1;
    salt_loo_args la{S.data(), L, lambda, Yl.data(), w, oc, loo.data(), &linfo, 0};
    check(salt::cpu::kernel_loo(la).code == SALT_OK && linfo == 0, "kernel_loo runs");
    double lworst = 0;
    for (int64_t i = 0; i < L; ++i) {
      const int64_t m = L - 1;
      std::vector<double> M(m * (m + oc));  // [S_-i + lambda I | Y_-i], row-reduced below
      for (int64_t p = 0, pr = 0; p < L; ++p) {
        if (p == i) continue;
        for (int64_t q = 0, qc = 0; q < L; ++q) {
          if (q == i) continue;
          M[pr * (m + oc) + qc++] = S[p * L + q] + (p == q ? lambda : 0);
        }
        for (int64_t c = 0; c < oc; ++c) M[pr * (m + oc) + m + c] = Yl[p * w + c];
        ++pr;
      }
      for (int64_t col = 0; col < m; ++col)  // no pivoting needed: symmetric positive definite
        for (int64_t r = 0; r < m; ++r) {
          if (r == col) continue;
          const double f = M[r * (m + oc) + col] / M[col * (m + oc) + col];
          for (int64_t q = col; q < m + oc; ++q) M[r * (m + oc) + q] -= f * M[col * (m + oc) + q];
        }
      for (int64_t c = 0; c < oc; ++c) {
        double pred = 0;
        for (int64_t q = 0, qr = 0; q < L; ++q) {
          if (q == i) continue;
          pred += S[i * L + q] * M[qr * (m + oc) + m + c] / M[qr * (m + oc) + qr];
          ++qr;
        }
        lworst = std::max(lworst, std::fabs(double(loo[i * oc + c]) - pred) / (1 + std::fabs(pred)));
      }
    }
    check(lworst < 1e-5, "kernel_loo = ridge refitted without each row (worst " + std::to_string(lworst) + ")");
    std::vector<double> ind(4, 1.0);  // [[1, 1], [1, 1]] - 0.5 I is indefinite
    std::vector<double> y2(2, 1.0);
    std::vector<float> o2(2, 3.0f);
    salt_loo_args ia{ind.data(), 2, -0.5, y2.data(), 1, 1, o2.data(), &linfo, 0};
    check(salt::cpu::kernel_loo(ia).code == SALT_OK && linfo > 0 && o2[0] == 3.0f,
          "kernel_loo reports an indefinite system and leaves out unchanged");
    ind[1] = std::nan("");
    check(salt::cpu::kernel_loo(ia).code == SALT_E_NONFINITE, "kernel_loo: NaN in the kernel is E_NONFINITE");
  }
  std::vector<double> F = S, X(L * 2), Y(L * 2);
  for (int64_t i = 0; i < L * 2; ++i) X[i] = Y[i] = std::sin(double(i));
  int32_t info = -1;
  salt_cholesky_args ca{F.data(), L, 0.5, X.data(), 2, &info, 0};
  check(salt::cpu::cholesky_solve(ca).code == SALT_OK && info == 0, "cholesky_solve runs");
  worst = 0;  // (S + 0.5 I) X = Y
  for (int64_t p = 0; p < L; ++p)
    for (int64_t c = 0; c < 2; ++c) {
      double s = 0.5 * X[p * 2 + c];
      for (int64_t q = 0; q < L; ++q) s += S[p * L + q] * X[q * 2 + c];
      worst = std::max(worst, std::fabs(s - Y[p * 2 + c]));
    }
  check(worst < 1e-8, "cholesky_solve: (A + shift I) X = B");
  std::vector<double> T = S;
  salt_cholesky_args wa{T.data(), L, 0.0, nullptr, 0, &info, 0};
  check(salt::cpu::cholesky_whiten(wa).code == SALT_OK && info == 0, "cholesky_whiten runs");
  worst = 0;  // T upper triangular and T^T S T = I
  for (int64_t p = 0; p < L; ++p)
    for (int64_t q = 0; q < p; ++q) worst = std::max(worst, std::fabs(T[p * L + q]));
  for (int64_t p = 0; p < L; ++p)
    for (int64_t q = 0; q < L; ++q) {
      double s = 0;
      for (int64_t u = 0; u < L; ++u)
        for (int64_t v = 0; v < L; ++v) s += T[u * L + p] * S[u * L + v] * T[v * L + q];
      worst = std::max(worst, std::fabs(s - (p == q ? 1 : 0)));
    }
  check(worst < 1e-8, "cholesky_whiten: T^T A T = I, T upper triangular");
  std::vector<double> bad(4, 1.0);  // [[1, 1], [1, 1]] - 0.5 I is indefinite
  salt_cholesky_args ba{bad.data(), 2, -0.5, nullptr, 0, &info, 0};
  check(salt::cpu::cholesky_whiten(ba).code == SALT_OK && info > 0, "cholesky_whiten reports an indefinite matrix");
}

// ---------- tokenizer.json vocabulary scan ----------
// Each document is scanned from an exact-size heap copy, so that AddressSanitizer sees any read past it.
const char* scan_copy(const std::string& doc, salt::TokenizerVocabScan& out, int depth = 256) {
  std::vector<unsigned char> copy(doc.begin(), doc.end());
  return salt::scan_tokenizer_vocab(copy.data(), copy.size(), depth, out);
}

void test_json_vocab() {
  const std::string vocab = "{\"a\": 0, \"b\\u00e9\\n\":1 ,\"\\ud83d\\ude00\":2,\"\\u0000\\/\":10,\"\":3}";
  const std::string merges = "[\"a b\", [\"b\\u00e9\", \"\\udc00\"]]";
  const std::string doc =
      "\xEF\xBB\xBF { \"version\": 1.0e-1, \"added_tokens\": [{\"id\": -2, \"x\": [true, false, null]}],\n"
      "\"model\": {\"type\": \"BPE\", \"vocab\": " +
      vocab + ", \"merges\": " + merges + "}}\r\n";
  salt::TokenizerVocabScan s;
  const char* why = scan_copy(doc, s);
  check(why == nullptr, std::string("json_vocab: a valid file is taken: ") + (why ? why : ""));
  check(doc.substr(s.vocab_begin, s.vocab_end - s.vocab_begin) == vocab, "json_vocab: the vocab's byte range");
  check(doc.substr(s.merges_begin, s.merges_end - s.merges_begin) == merges, "json_vocab: the merges' byte range");
  const std::vector<std::string> keys = {"a", "b\xC3\xA9\n", "\xF0\x9F\x98\x80", std::string("\0/", 2), ""};
  bool same = s.key_ends.size() == keys.size() && s.ids == std::vector<int32_t>({0, 1, 2, 10, 3});
  for (size_t k = 0, begin = 0; same && k < keys.size(); begin = s.key_ends[k++])
    same = s.keys.substr(begin, s.key_ends[k] - begin) == keys[k];
  check(same, "json_vocab: keys decoded to UTF-8 (escapes, a surrogate pair, U+0000, empty), ids, in file order");

  const std::string merges_last = "{\"model\":{\"merges\":[],\"vocab\":{}}}";
  check(scan_copy(merges_last, s) == nullptr && s.key_ends.empty() && s.merges_begin == 19 && s.merges_end == 21 &&
            s.vocab_begin == 30 && s.vocab_end == 32,
        "json_vocab: merges before an empty vocab");
  check(scan_copy("{\"model\":{\"vocab\":{\"a\":1},\"merges\":{}}}", s) == nullptr && s.merges_begin == s.merges_end,
        "json_vocab: merges that are not an array are left in place");
  check(scan_copy("{\"model\":{\"vocab\":{\"a\":2147483647}}}", s) == nullptr && s.ids[0] == 2147483647,
        "json_vocab: the largest id");

  // Refused: every file the JS path must read (or reject) itself.
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"", "empty"},
      {"[1]", "top-level array"},
      {"{\"model\":{\"vocab\":{\"a\":0}}", "unterminated"},
      {"{\"model\":{\"vocab\":{\"a\":0,}}}", "trailing comma"},
      {"{\"model\":{\"vocab\":{\"a\":0}}} x", "trailing characters"},
      {"{\"model\":{\"vocab\":{\"a\":01}}}", "leading zero"},
      {"{\"model\":{\"vocab\":{\"a\":1.0}}}", "fractional id"},
      {"{\"model\":{\"vocab\":{\"a\":1e0}}}", "exponent id"},
      {"{\"model\":{\"vocab\":{\"a\":-1}}}", "negative id"},
      {"{\"model\":{\"vocab\":{\"a\":2147483648}}}", "id 2^31"},
      {"{\"model\":{\"vocab\":{\"a\":\"0\"}}}", "string id"},
      {"{\"model\":{\"vocab\":{\"a\":0,\"a\":1}}}", "repeated vocab key"},
      {"{\"model\":{\"vocab\":{\"a\":0,\"\\u0061\":1}}}", "repeated vocab key spelled with an escape"},
      {"{\"model\":{\"vocab\":{\"\\ud800\":0}}}", "lone high surrogate key"},
      {"{\"model\":{\"vocab\":{\"\\udc00x\":0}}}", "lone low surrogate key"},
      {"{\"model\":{\"vocab\":{\"\\ud800\\u0041\":0}}}", "high surrogate before a non-surrogate escape"},
      {"{\"model\":{\"vocab\":{\"a\\x\":0}}}", "bad escape"},
      {"{\"model\":{\"vocab\":{\"a\\u12\":0}}}", "short \\u escape"},
      {"{\"model\":{\"vocab\":{\"a\tb\":0}}}", "control character"},
      {"{\"model\":{\"vocab\":[[\"a\",0.0]]}}", "Unigram array vocab"},
      {"{\"model\":{\"type\":\"BPE\"}}", "no vocab"},
      {"{\"model\":[]}", "model not an object"},
      {"{\"model\":{\"vocab\":{}},\"model\":{\"vocab\":{}}}", "repeated model"},
      {"{\"mod\\u0065l\":{\"vocab\":{}},\"model\":{\"vocab\":{}}}", "repeated model spelled with an escape"},
      {"{\"model\":{\"vocab\":{},\"vocab\":{}}}", "repeated vocab"},
      {"{\"model\":{\"vocab\":{},\"merges\":[],\"merges\":[]}}", "repeated merges"},
      {"{\"model\":{\"vocab\":{}},\"x\":tru}", "bad literal"},
      {"{\"model\":{\"vocab\":{}},\"x\":-}", "bad number"},
      {"{\"model\":{\"vocab\":{}},\"x\":1.}", "bad fraction"},
      {"{\"model\":{\"vocab\":{}},\"x\":[1 2]}", "missing comma"},
      {"{\"model\":{\"vocab\":{}},\"x\":'a'}", "single quotes"},
  };
  for (const auto& r : refused)
    check(scan_copy(r.first, s) != nullptr && s.ids.empty(), "json_vocab refuses: " + r.second);
  check(scan_copy("{\"model\":{\"vocab\":{}},\"x\":\"\\ud800\"}", s) == nullptr,
        "json_vocab: a lone surrogate outside the vocab is valid JSON");

  // Nesting: the top object is level 1, as in the JS reader's depth check.
  const auto nested = [](int levels) {
    return "{\"model\":{\"vocab\":{}},\"x\":" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
  };
  check(scan_copy(nested(5), s, 5) == nullptr, "json_vocab: nesting at the limit");
  check(scan_copy(nested(6), s, 5) != nullptr, "json_vocab: nesting past the limit");
  check(scan_copy("{\"model\":{\"vocab\":{}}}", s, 2) != nullptr, "json_vocab: the vocab counts as a level");

  // Mutated documents: never a read out of bounds (ASan run), and what is taken is consistent.
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\":,\\u0123456789abcdefe.-+ \n\t\x01\xC3\xA9truefalsenull";
  int taken = 0;
  bool consistent = true;
  for (int it = 0; it < 20000; ++it) {
    std::string m = doc;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      const size_t at = rng() % m.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          m[at] = c;
          break;
        case 1:
          m.insert(m.begin() + static_cast<long>(at), c);
          break;
        default:
          m.erase(at, 1 + rng() % 8);
      }
    }
    if (rng() % 16 == 0) m.resize(rng() % (m.size() + 1));
    if (scan_copy(m, s) != nullptr) continue;
    ++taken;
    consistent = consistent && s.vocab_begin < s.vocab_end && s.vocab_end <= m.size() && m[s.vocab_begin] == '{' &&
                 m[s.vocab_end - 1] == '}' && s.ids.size() == s.key_ends.size() &&
                 (s.key_ends.empty() || s.key_ends.back() == s.keys.size());
  }
  check(consistent, "json_vocab: every mutated document taken has a consistent result");
  check(taken > 0, "json_vocab: some mutated documents are still taken");
}

}  // namespace

int main() {
  // The BLAS kernels the addon runs with (salt/core.h), so that these tests check those.
  const std::string blas = salt::select_blas_kernels();
  if (!blas.empty()) std::printf("%s\n", blas.c_str() + 2);
  test_topk();
  test_sparsemax();
  test_solve();
  test_apply();
  test_matrix_ops();
  test_kernel_ridge();
  test_json_vocab();
  std::printf("core_tests: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
