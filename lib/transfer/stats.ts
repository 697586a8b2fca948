/**
 * Statistics helpers of the transfer engine (typed arrays, float64 accumulation). The passes over
 * whole matrices run natively off the calling thread (lib/kernels/matrixOps.ts).
 */
import { SaltError } from '../errors.js';
import {
  columnMeanStd as nativeColumnMeanStd,
  findNonFinite,
  rowNorms as nativeRowNorms,
  sortFloat64,
} from '../kernels/matrixOps.js';
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

/** Mean and quantiles of values already sorted ascending (NaN fields when empty). */
function summarise(s: Float64Array): Quantiles {
  const n = s.length;
  if (n === 0) return { count: 0, mean: NaN, min: NaN, p05: NaN, p25: NaN, p50: NaN, p75: NaN, p95: NaN, max: NaN };
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

/** Mean and quantiles of `values` (NaN fields when empty), sorted on the calling thread: for short arrays. */
export function quantiles(values: Float32Array | Float64Array): Quantiles {
  return summarise(new Float64Array(values).sort());
}

/**
 * {@link quantiles} with the sort run natively off the calling thread (the same order as
 * `Float64Array.prototype.sort`, so the same result): for arrays of one value per token.
 */
export async function quantilesOf(values: Float32Array | Float64Array): Promise<Quantiles> {
  // A typed-array copy, not Float64Array.from (its iterator protocol stalled the thread at 256k values).
  return summarise(await sortFloat64(new Float64Array(values)));
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

/** Per-column mean and population standard deviation of a matrix (float64), computed natively off the calling thread. */
export function columnMeanStd(m: Matrix): Promise<{ mean: Float64Array; std: Float64Array }> {
  return nativeColumnMeanStd(m);
}

/** {@link columnMeanStd} and every row's L2 norm, from one pass over the matrix (natively, off the calling thread). */
export function columnMeanStdNorms(m: Matrix): Promise<{ mean: Float64Array; std: Float64Array; norms: Float64Array }> {
  return nativeColumnMeanStd(m, { norms: true });
}

/** L2 norms (float64) of the listed rows (all rows when `rows` is omitted), computed natively off the calling thread. */
export function rowNorms(data: Float32Array, cols: number, rows?: Int32Array): Promise<Float64Array> {
  return nativeRowNorms({ data, rows: data.length / cols, cols }, { rows });
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
 * `present[row] !== 0` when a mask is given), naming the argument, row and column. The scan runs
 * natively off the calling thread.
 */
export async function checkFinite(name: string, m: Matrix, present?: Uint8Array): Promise<void> {
  const i = await findNonFinite(m, { rowMask: present });
  if (i < 0) return;
  const { data, cols } = m;
  const v = data[i];
  const r = Math.floor(i / cols);
  throw new SaltError(
    'E_NONFINITE',
    `${name} contains ${Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'} at row ${r}, column ${i - r * cols}`,
  );
}
