// jacobi.h — the small dense eigen-solver and pseudo-inverse step of the CUDA solves, written once for
// the device (one thread block per matrix) and the host (one "thread"), so that the host test
// native/cuda/test/jacobi_host_test.cpp checks, against LAPACK, the same code the GPU runs.
//
// Every function is a sequence of phases; within a phase, thread `tid` of `nt` handles work items
// tid, tid + nt, ...; items of one phase never touch the same element, and `barrier()` separates
// phases. On the device barrier() is __syncthreads(); on the host (nt = 1) it does nothing, which
// computes exactly the same values.
#ifndef SALT_CUDA_JACOBI_H
#define SALT_CUDA_JACOBI_H

#include <cfloat>
#include <cmath>

#include "hd.h"

namespace salt {
namespace cuda {

/// Largest matrix the block Jacobi solver takes (the round-robin scratch arrays hold kMaxJacobi / 2 pairs).
constexpr int kMaxJacobi = 128;

/// Eigen-decomposition of the symmetric n x n matrix A (column-major, leading dimension n) by the
/// cyclic Jacobi method with round-robin ordering: n/2 disjoint rotations per step, n - 1 steps per
/// sweep. On return A is (numerically) diagonal, its diagonal holds the eigenvalues (unsorted) and the
/// columns of V the eigenvectors. Returns the number of sweeps, or -1 when the off-diagonal mass did
/// not fall below n x DBL_EPSILON x ||A||_F within max_sweeps.
/// Scratch: rc, rs (n/2 + 1 doubles each), rp, rq (n/2 + 1 ints each), red (2 * nt doubles).
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Barrier>
SALT_HD int jacobi_eigen(double* A, double* V, int n, double* rc, double* rs, int* rp, int* rq, double* red, int tid,
                         int nt, Barrier barrier, int max_sweeps) {
  const int m = n + (n & 1);  // players of the round-robin; index n is a bye when n is odd
  const int half = m / 2;
  for (int e = tid; e < n * n; e += nt) V[e] = (e % n == e / n) ? 1.0 : 0.0;
  barrier();
  for (int sweep = 0; sweep <= max_sweeps; ++sweep) {
    double off = 0, total = 0;
    for (int e = tid; e < n * n; e += nt) {
      const double v = A[e] * A[e];
      total += v;
      if (e % n != e / n) off += v;
    }
    red[tid] = off;
    red[nt + tid] = total;
    barrier();
    if (tid == 0) {
      double o = 0, t = 0;
      for (int i = 0; i < nt; ++i) {
        o += red[i];
        t += red[nt + i];
      }
      // Converged when the off-diagonal mass is at the rounding level of n rotations per column:
      // ||offdiag(A)||_F <= n * DBL_EPSILON * ||A||_F (a perturbation of the size of the backward
      // error of any stable eigen-solver, LAPACK's included).
      const double tol = static_cast<double>(n) * DBL_EPSILON;
      red[0] = (o <= tol * tol * t) ? 1.0 : 0.0;
    }
    barrier();
    const bool converged = red[0] != 0.0;
    barrier();  // every thread has read the flag before red is reused
    if (converged) return sweep;
    if (sweep == max_sweeps) break;
    for (int step = 0; step < m - 1; ++step) {
      // Rotation parameters of this step's pairs (the circle method: index 0 fixed, 1..m-1 rotate).
      for (int i = tid; i < half; i += nt) {
        int a = i == 0 ? 0 : 1 + (i - 1 + step) % (m - 1);
        int b = 1 + (m - 2 - i + step) % (m - 1);
        if (a > b) {
          const int x = a;
          a = b;
          b = x;
        }
        double c = 1.0, s = 0.0;
        if (b < n) {
          const double apq = A[b * n + a];
          if (apq != 0.0) {
            const double tau = (A[b * n + b] - A[a * n + a]) / (2.0 * apq);
            const double t =
                fabs(tau) > 1e150 ? 0.5 / tau : (tau >= 0 ? 1.0 : -1.0) / (fabs(tau) + sqrt(1.0 + tau * tau));
            c = 1.0 / sqrt(1.0 + t * t);
            s = t * c;
          }
        }
        rp[i] = a;
        rq[i] = b;
        rc[i] = c;
        rs[i] = s;
      }
      barrier();
      // A <- A J and V <- V J (columns p and q of each pair).
      for (int w = tid; w < half * n; w += nt) {
        const int i = w / n, r = w % n;
        const int p = rp[i], q = rq[i];
        if (q >= n || rs[i] == 0.0) continue;
        const double c = rc[i], s = rs[i];
        const double x = A[p * n + r], y = A[q * n + r];
        A[p * n + r] = c * x - s * y;
        A[q * n + r] = s * x + c * y;
        const double vx = V[p * n + r], vy = V[q * n + r];
        V[p * n + r] = c * vx - s * vy;
        V[q * n + r] = s * vx + c * vy;
      }
      barrier();
      // A <- Jᵀ A (rows p and q of each pair).
      for (int w = tid; w < half * n; w += nt) {
        const int i = w / n, col = w % n;
        const int p = rp[i], q = rq[i];
        if (q >= n || rs[i] == 0.0) continue;
        const double c = rc[i], s = rs[i];
        const double x = A[col * n + p], y = A[col * n + q];
        A[col * n + p] = c * x - s * y;
        A[col * n + q] = s * x + c * y;
      }
      barrier();
    }
  }
  return -1;
}

/// Minimum-norm solution d of G d = r from an eigen-decomposition of G (the CPU's pinv_solve):
/// eigenpairs j < ne with eigenvalue e_j > rcond^2 * max(e) (and e_j > 0) are kept,
///   d = sum_j (v_j . r / e_j) v_j,
/// where v_j is column j of V (leading dimension ld, ne meaningful rows). d has ld entries; entries
/// from k on (padding) are set to zero. rcond < 0 means max(k, ht) * FLT_EPSILON.
SALT_HD inline void pinv_from_eigen(const double* V, const double* E, const double* r, int ne, int ld, int k,
                                    long long ht, double rcond, double* d) {
  const double rc = rcond < 0 ? static_cast<double>(k > ht ? k : ht) * static_cast<double>(FLT_EPSILON) : rcond;
  double emax = 0;
  for (int j = 0; j < ne; ++j) emax = fmax(emax, E[j]);
  const double cutoff = emax * rc * rc;
  for (int i = 0; i < ld; ++i) d[i] = 0.0;
  for (int j = 0; j < ne; ++j) {
    const double ej = E[j];
    if (!(ej > cutoff) || ej <= 0) continue;
    const double* col = V + static_cast<long long>(j) * ld;
    double dot = 0;
    for (int i = 0; i < ne; ++i) dot += col[i] * r[i];
    dot /= ej;
    for (int i = 0; i < ne; ++i) d[i] += dot * col[i];
  }
  for (int i = k; i < ld; ++i) d[i] = 0.0;
}

}  // namespace cuda
}  // namespace salt

#endif  // SALT_CUDA_JACOBI_H
