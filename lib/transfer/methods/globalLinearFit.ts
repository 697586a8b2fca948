/**
 * The global-linear baseline: one ridge map from PLM space to source space, fitted on the anchors by
 * the normal equations in float64 ((h_t + 1) x (h_t + 1) system; the extra column is a bias term,
 * penalised like the rest so that the leave-one-out shortcut below stays exact).
 */
import { SaltError } from '../../errors.js';
import type { Matrix } from '../../kernels/validate.js';
import { cosine } from '../stats.js';

/** Gram matrix and right-hand sides of the anchors: G = sum a a^T, B = sum a^T y, a = [x, 1]. */
export interface NormalEquations {
  /** d = h_t + 1. */
  d: number;
  /** d x d, float64. */
  G: Float64Array;
  /** One d x h right-hand side per output matrix (source rows, head rows). */
  rhs: Float64Array[];
}

/** Accumulates the normal equations over the anchors (rows of `plm`) and their targets (rows of each `ys`). */
export function normalEquations(plm: Matrix, ys: Matrix[]): NormalEquations {
  const ht = plm.cols,
    d = ht + 1,
    m = plm.rows;
  const G = new Float64Array(d * d);
  const rhs = ys.map((y) => new Float64Array(d * y.cols));
  const a = new Float64Array(d);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < ht; j++) a[j] = plm.data[i * ht + j];
    a[ht] = 1;
    for (let r = 0; r < d; r++) {
      const ar = a[r];
      if (ar === 0) continue;
      const row = r * d;
      for (let c = r; c < d; c++) G[row + c] += ar * a[c];
    }
    ys.forEach((y, k) => {
      const h = y.cols,
        B = rhs[k],
        yo = i * h;
      for (let r = 0; r < d; r++) {
        const ar = a[r];
        if (ar === 0) continue;
        const row = r * h;
        for (let c = 0; c < h; c++) B[row + c] += ar * y.data[yo + c];
      }
    });
  }
  for (let r = 0; r < d; r++) for (let c = 0; c < r; c++) G[r * d + c] = G[c * d + r];
  return { d, G, rhs };
}

/**
 * Cholesky factor L (lower, row-major) of G + lambda I. A matrix that is not numerically positive
 * definite (lambda = 0 with fewer anchors than d, collinear rows) gets the smallest added diagonal
 * jitter of the form 1e-10 x 10^j x trace(G)/d that makes it factorisable; `jitter` reports it.
 */
export function cholesky(G: Float64Array, d: number, lambda: number): { L: Float64Array; jitter: number } {
  let trace = 0;
  for (let i = 0; i < d; i++) trace += G[i * d + i];
  const scale = trace > 0 ? trace / d : 1;
  for (let attempt = -1; attempt < 12; attempt++) {
    const jitter = attempt < 0 ? 0 : 1e-10 * 10 ** attempt * scale;
    const L = new Float64Array(d * d);
    let ok = true;
    for (let i = 0; i < d && ok; i++) {
      for (let j = 0; j <= i; j++) {
        let s = G[i * d + j] + (i === j ? lambda + jitter : 0);
        for (let k = 0; k < j; k++) s -= L[i * d + k] * L[j * d + k];
        if (i === j) {
          if (!(s > 0)) {
            ok = false;
            break;
          }
          L[i * d + i] = Math.sqrt(s);
        } else L[i * d + j] = s / L[j * d + j];
      }
    }
    if (ok) return { L, jitter };
  }
  throw new SaltError(
    'E_INTERNAL',
    "global-linear: the normal equations could not be factorised even with added jitter (the anchors' PLM rows are numerically degenerate)",
  );
}

/** Solves L L^T X = B in place (B: d x h, row-major). */
export function cholSolve(L: Float64Array, d: number, B: Float64Array, h: number): Float64Array {
  const X = B.slice();
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < i; k++) {
      const l = L[i * d + k];
      if (l !== 0) for (let c = 0; c < h; c++) X[i * h + c] -= l * X[k * h + c];
    }
    const p = L[i * d + i];
    for (let c = 0; c < h; c++) X[i * h + c] /= p;
  }
  for (let i = d - 1; i >= 0; i--) {
    for (let k = i + 1; k < d; k++) {
      const l = L[k * d + i];
      if (l !== 0) for (let c = 0; c < h; c++) X[i * h + c] -= l * X[k * h + c];
    }
    const p = L[i * d + i];
    for (let c = 0; c < h; c++) X[i * h + c] /= p;
  }
  return X;
}

/**
 * Exact leave-one-out score of the ridge map for the sampled anchors: with hat value
 * h_i = a_i (G + lambda I)^-1 a_i^T, the prediction without anchor i is (a_i W - h_i y_i) / (1 - h_i).
 * Returns the mean cosine of those predictions to the true rows.
 */
export function globalLinearLoo(
  L: Float64Array,
  W: Float64Array,
  d: number,
  plm: Matrix,
  y: Matrix,
  sample: Int32Array,
): number {
  const ht = plm.cols,
    h = y.cols;
  const a = new Float64Array(d);
  const pred = new Float32Array(h);
  let sum = 0;
  for (const i of sample) {
    for (let j = 0; j < ht; j++) a[j] = plm.data[i * ht + j];
    a[ht] = 1;
    const v = cholSolve(L, d, a, 1);
    let hat = 0;
    for (let j = 0; j < d; j++) hat += a[j] * v[j];
    const denom = 1 - hat;
    for (let c = 0; c < h; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += a[j] * W[j * h + c];
      pred[c] = denom > 1e-12 ? (s - hat * y.data[i * h + c]) / denom : 0;
    }
    sum += cosine(pred, 0, y.data, i * h, h);
  }
  return sample.length > 0 ? sum / sample.length : NaN;
}
