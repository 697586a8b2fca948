/**
 * Row helpers of the transfer engine: gathering, scattering and statistical rows. Copies of whole
 * matrices run natively off the calling thread ({@link gatherRowsAsync}); the row loops here give
 * the event loop a turn every few milliseconds ({@link Yielder}).
 */
import { copyRows, gatherRows as nativeGatherRows } from '../kernels/matrixOps.js';
import type { Matrix } from '../kernels/validate.js';
import { normalRow, STREAM } from './random.js';
import { blockRows, Yielder } from './stats.js';

/** {@link gatherRows} run natively off the calling thread (for gathers of many or wide rows). */
export function gatherRowsAsync(m: Matrix, ids: Int32Array): Promise<Matrix> {
  return nativeGatherRows(m, ids);
}

/** Gathers rows `ids` of `m` into a new matrix, on the calling thread (for a few rows). */
export function gatherRows(m: Matrix, ids: Int32Array): Matrix {
  const c = m.cols;
  const out = new Float32Array(ids.length * c);
  for (let i = 0; i < ids.length; i++) out.set(m.data.subarray(ids[i] * c, ids[i] * c + c), i * c);
  return { data: out, rows: ids.length, cols: c };
}

/** Scatters chunk rows (c x h) into the output rows `ids[from ..]`, yielding between row blocks. */
export async function scatter(
  out: Float32Array,
  rows: Float32Array,
  ids: Int32Array,
  from: number,
  c: number,
  h: number,
  y = new Yielder(),
): Promise<void> {
  const step = blockRows(h);
  for (let i0 = 0; i0 < c; i0 += step) {
    for (let i = i0, i1 = Math.min(c, i0 + step); i < i1; i++)
      out.set(rows.subarray(i * h, i * h + h), ids[from + i] * h);
    await y.tick();
  }
}

/**
 * Rows of `ids`: the column means (`'mean'`) or seeded N(mean, std) rows keyed by token id
 * (`'random'`), yielding between row blocks (each row depends only on its token id, so the result
 * does not depend on where the loop yields).
 */
export async function fillStatRows(
  out: Float32Array,
  ids: Int32Array,
  st: { mean: Float64Array; std: Float64Array },
  kind: 'mean' | 'random',
  seed: number,
  stream: number = STREAM.rows,
  y = new Yielder(),
): Promise<void> {
  const h = st.mean.length;
  const meanRow = Float32Array.from(st.mean);
  if (kind === 'mean' && h > 0) {
    // Natively, off the calling thread: the mean row copied to every row of `ids` (a second of
    // JavaScript on the calling thread for 42k rows of 2,048, mostly first touches of fresh pages).
    const from = new Int32Array(out.length / h).fill(-1);
    for (let i = 0; i < ids.length; i++) from[ids[i]] = 0;
    await copyRows({ data: meanRow, rows: 1, cols: h }, from, out);
    return;
  }
  // A random row costs about ten times a copied one.
  const step = Math.max(1, Math.floor(blockRows(h) / (kind === 'mean' ? 1 : 8)));
  for (let i0 = 0; i0 < ids.length; i0 += step) {
    for (let i = i0, i1 = Math.min(ids.length, i0 + step); i < i1; i++) {
      const t = ids[i];
      if (kind === 'mean') out.set(meanRow, t * h);
      else normalRow(out, t * h, st.mean, st.std, seed, t, stream);
    }
    await y.tick();
  }
}
