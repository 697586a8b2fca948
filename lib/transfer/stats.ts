/** Small statistics helpers of the transfer engine (typed arrays, float64 accumulation). */
import { SaltError } from '../errors.js';
import type { Matrix } from '../kernels/validate.js';

/** Summary of a distribution: mean and quantiles (nearest rank on the sorted values). */
export interface Quantiles {
  /** Number of values. */
  count: number;
  mean: number;
  min: number;
  p05: number;
  p25: number;
  p50: number;
  p75: number;
  p95: number;
  max: number;
}

/** Mean and quantiles of `values` (NaN fields when empty). */
export function quantiles(values: Float32Array | Float64Array): Quantiles {
  const n = values.length;
  if (n === 0) return { count: 0, mean: NaN, min: NaN, p05: NaN, p25: NaN, p50: NaN, p75: NaN, p95: NaN, max: NaN };
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i];
  const q = (p: number) => s[Math.min(n - 1, Math.max(0, Math.round(p * (n - 1))))];
  return {
    count: n,
    mean: sum / n,
    min: s[0],
    p05: q(0.05),
    p25: q(0.25),
    p50: q(0.5),
    p75: q(0.75),
    p95: q(0.95),
    max: s[n - 1],
  };
}

/**
 * Gives the event loop a turn whenever more than `budgetMs` of synchronous work has passed since
 * the last turn. Long loops over embedding matrices call {@link tick} between row blocks, so that a
 * host service's timers and I/O are never held up for longer than about the budget.
 */
export class Yielder {
  private last = performance.now();
  constructor(private readonly budgetMs = 8) {}
  async tick(): Promise<void> {
    if (performance.now() - this.last < this.budgetMs) return;
    await new Promise<void>((r) => setImmediate(r));
    this.last = performance.now();
  }
}

/** Rows per block between two {@link Yielder} checks for a matrix of `cols` columns (about 64k values). */
export function blockRows(cols: number): number {
  return Math.max(1, Math.floor(65536 / Math.max(1, cols)));
}

/** Per-column mean and population standard deviation of a matrix (float64), yielding between row blocks. */
export async function columnMeanStd(m: Matrix, y = new Yielder()): Promise<{ mean: Float64Array; std: Float64Array }> {
  const { data, rows, cols } = m;
  const mean = new Float64Array(cols);
  const sq = new Float64Array(cols);
  const step = blockRows(cols);
  for (let r0 = 0; r0 < rows; r0 += step) {
    for (let i = r0, r1 = Math.min(rows, r0 + step); i < r1; i++) {
      const o = i * cols;
      for (let j = 0; j < cols; j++) mean[j] += data[o + j];
    }
    await y.tick();
  }
  for (let j = 0; j < cols; j++) mean[j] = rows > 0 ? mean[j] / rows : 0;
  for (let r0 = 0; r0 < rows; r0 += step) {
    for (let i = r0, r1 = Math.min(rows, r0 + step); i < r1; i++) {
      const o = i * cols;
      for (let j = 0; j < cols; j++) {
        const d = data[o + j] - mean[j];
        sq[j] += d * d;
      }
    }
    await y.tick();
  }
  const std = new Float64Array(cols);
  for (let j = 0; j < cols; j++) std[j] = rows > 0 ? Math.sqrt(sq[j] / rows) : 0;
  return { mean, std };
}

/** L2 norms of the listed rows (all rows when `rows` is omitted), yielding between row blocks. */
export async function rowNorms(
  data: Float32Array,
  cols: number,
  rows?: Int32Array,
  y = new Yielder(),
): Promise<Float64Array> {
  const n = rows ? rows.length : data.length / cols;
  const out = new Float64Array(n);
  const step = blockRows(cols);
  for (let i0 = 0; i0 < n; i0 += step) {
    for (let i = i0, i1 = Math.min(n, i0 + step); i < i1; i++) {
      const o = (rows ? rows[i] : i) * cols;
      let s = 0;
      for (let j = 0; j < cols; j++) s += data[o + j] * data[o + j];
      out[i] = Math.sqrt(s);
    }
    await y.tick();
  }
  return out;
}

/** Cosine of two float32 rows (float64 accumulation; 0 when either is zero). */
export function cosine(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let d = 0,
    na = 0,
    nb = 0;
  for (let j = 0; j < n; j++) {
    const x = a[ao + j],
      y = b[bo + j];
    d += x * y;
    na += x * x;
    nb += y * y;
  }
  return na > 0 && nb > 0 ? d / Math.sqrt(na * nb) : 0;
}

/**
 * Throws SaltError E_NONFINITE at the first NaN or Infinity of the matrix (only rows with
 * `present[row] !== 0` when a mask is given), naming the argument, row and column. Yields between
 * row blocks.
 */
export async function checkFinite(name: string, m: Matrix, present?: Uint8Array, y = new Yielder()): Promise<void> {
  const { data, cols } = m;
  const step = blockRows(cols) * cols;
  for (let i0 = 0; i0 < data.length; i0 += step) {
    for (let i = i0, i1 = Math.min(data.length, i0 + step); i < i1; i++) {
      const v = data[i];
      if (v - v !== 0) {
        const r = Math.floor(i / cols);
        if (present && present[r] === 0) continue;
        throw new SaltError(
          'E_NONFINITE',
          `${name} contains ${Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'} at row ${r}, column ${i - r * cols}`,
        );
      }
    }
    await y.tick();
  }
}
