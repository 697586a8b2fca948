/** Row helpers of the transfer engine: gathering, scattering and statistical rows. */
import type { Matrix } from '../kernels/validate.js';
import { normalRow, STREAM } from './random.js';

/** Gathers rows `ids` of `m` into a new matrix. */
export function gatherRows(m: Matrix, ids: Int32Array): Matrix {
  const c = m.cols;
  const out = new Float32Array(ids.length * c);
  for (let i = 0; i < ids.length; i++) out.set(m.data.subarray(ids[i] * c, ids[i] * c + c), i * c);
  return { data: out, rows: ids.length, cols: c };
}

/** Scatters chunk rows (c x h) into the output rows `ids[from ..]`. */
export function scatter(
  out: Float32Array,
  rows: Float32Array,
  ids: Int32Array,
  from: number,
  c: number,
  h: number,
): void {
  for (let i = 0; i < c; i++) out.set(rows.subarray(i * h, i * h + h), ids[from + i] * h);
}

/** Rows of `ids`: the column means (`'mean'`) or seeded N(mean, std) rows keyed by token id (`'random'`). */
export function fillStatRows(
  out: Float32Array,
  ids: Int32Array,
  st: { mean: Float64Array; std: Float64Array },
  kind: 'mean' | 'random',
  seed: number,
  stream: number = STREAM.rows,
): void {
  const h = st.mean.length;
  const meanRow = Float32Array.from(st.mean);
  for (const t of ids) {
    if (kind === 'mean') out.set(meanRow, t * h);
    else normalRow(out, t * h, st.mean, st.std, seed, t, stream);
  }
}
