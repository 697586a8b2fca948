/** FVT (Fast Vocabulary Transfer): the mean of the source rows of a token's pieces. */
import { applyWeights } from '../../kernels/kernels.js';
import { type Matrix } from '../../kernels/validate.js';
import { type Resolved, throwIfAborted } from '../options.js';
import { scatter } from '../rows.js';
import type { TransferReport, TransferSegmentation, TransferStage } from '../types.js';

/**
 * fvt: each solved token's row is the mean of its pieces' source rows (and head rows), combined
 * natively by applyWeights with weights 1 / (number of pieces), per chunk.
 */
export async function fvt(ctx: {
  S: Matrix;
  head?: Matrix;
  seg: TransferSegmentation;
  solveIds: Int32Array;
  embeddings: Float32Array;
  headOut?: Float32Array;
  report: TransferReport;
  chunkSize: number;
  kernel: Resolved['kernel'];
  progress: (stage: TransferStage, done: number, total: number) => void;
  signal?: AbortSignal;
}): Promise<void> {
  const { S, head, seg, solveIds, embeddings, headOut, report, chunkSize, kernel, progress, signal } = ctx;
  const timings = report.timings;
  const n = solveIds.length;
  let sum = 0,
    max = 0;
  for (let from = 0; from < n; from += chunkSize) {
    throwIfAborted(signal);
    const ids = solveIds.subarray(from, Math.min(n, from + chunkSize));
    const c = ids.length;
    let t = performance.now();
    const offsets = new Int32Array(c + 1);
    for (let i = 0; i < c; i++) offsets[i + 1] = offsets[i] + seg.offsets[ids[i] + 1] - seg.offsets[ids[i]];
    const indices = new Int32Array(offsets[c]);
    const weights = new Float32Array(offsets[c]);
    for (let i = 0; i < c; i++) {
      const a = seg.offsets[ids[i]],
        len = seg.offsets[ids[i] + 1] - a;
      indices.set(seg.indices.subarray(a, a + len), offsets[i]);
      weights.fill(1 / len, offsets[i], offsets[i + 1]);
      sum += len;
      if (len > max) max = len;
    }
    const neighbours = { offsets, indices };
    const res = await applyWeights({ n: c, neighbours, weights, anchorsSrc: S, ...kernel });
    await scatter(embeddings, res.out, solveIds, from, c, S.cols);
    timings.combine += performance.now() - t;
    if (head) {
      throwIfAborted(signal);
      t = performance.now();
      const rh = await applyWeights({ n: c, neighbours, weights, anchorsSrc: head, ...kernel });
      await scatter(headOut!, rh.out, solveIds, from, c, head.cols);
      timings.head += performance.now() - t;
    }
    progress('combine', from + c, n);
  }
  report.pieces = { mean: n > 0 ? sum / n : NaN, max, unsegmented: 0 };
}
