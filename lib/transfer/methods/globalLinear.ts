/** global-linear: one ridge map from the PLM space to the source space, fitted on all anchors. */
import { applyWeights } from '../../kernels/kernels.js';
import type { Matrix } from '../../kernels/validate.js';
import { type Resolved, throwIfAborted } from '../options.js';
import { seededSample, STREAM } from '../random.js';
import { scatter } from '../rows.js';
import type { LambdaReport } from '../types.js';
import type { MethodContext } from './context.js';
import { cholesky, cholSolve, globalLinearLoo, normalEquations } from './globalLinearFit.js';

/** The fitted global map(s): one d x h matrix per output (source rows, then head rows), d = h_t + 1. */
export interface GlobalMaps {
  maps: Matrix[];
  lambda: LambdaReport;
  jitter: number;
}

/**
 * Fits the ridge map [x, 1] W from the anchors' PLM rows to their source (and head) rows; lambda
 * `'auto'` by closed-form leave-one-out on a seeded sample over `opts.lambdaGrid`.
 */
export async function fitGlobalMaps(
  opts: Resolved,
  anchorsPlm: Matrix,
  anchorsSrc: Matrix,
  anchorsHead: Matrix | undefined,
  lambdaOption: 'auto' | number,
  signal?: AbortSignal,
  onGridPoint?: (done: number, total: number) => void,
): Promise<GlobalMaps> {
  const ne = normalEquations(anchorsPlm, anchorsHead ? [anchorsSrc, anchorsHead] : [anchorsSrc]);
  const d = ne.d,
    hs = anchorsSrc.cols,
    m = anchorsPlm.rows;
  let lambda: LambdaReport;
  if (lambdaOption === 'auto') {
    const sample = seededSample(m, opts.looSample, opts.seed, STREAM.looSample);
    const scores: number[] = [];
    for (let g = 0; g < opts.lambdaGrid.length; g++) {
      throwIfAborted(signal);
      const { L } = cholesky(ne.G, d, opts.lambdaGrid[g]);
      const W = cholSolve(L, d, ne.rhs[0], hs);
      scores.push(globalLinearLoo(L, W, d, anchorsPlm, anchorsSrc, sample));
      onGridPoint?.(g + 1, opts.lambdaGrid.length);
    }
    let best = 0;
    for (let g = 1; g < scores.length; g++) if (scores[g] > scores[best]) best = g;
    lambda = { value: opts.lambdaGrid[best], auto: true, grid: [...opts.lambdaGrid], scores, sample: sample.length };
  } else lambda = { value: lambdaOption, auto: false };
  const { L, jitter } = cholesky(ne.G, d, lambda.value);
  const maps = ne.rhs.map((B, k) => {
    const h = k === 0 ? hs : anchorsHead!.cols;
    return { data: new Float32Array(cholSolve(L, d, B, h)), rows: d, cols: h };
  });
  return { maps, lambda, jitter };
}

/** global-linear: one ridge map [x, 1] W fitted on the anchors; W applied natively (applyWeights). */
export async function globalLinear(ctx: MethodContext): Promise<void> {
  const { opts, Pm, anchorsPlm, anchorsSrc, anchorsHead, solveIds, embeddings, headOut, report, progress, signal } =
    ctx;
  const timings = report.timings;
  const tl = performance.now();
  const { maps, lambda, jitter } = await fitGlobalMaps(
    opts,
    anchorsPlm,
    anchorsSrc,
    anchorsHead,
    opts.lambda,
    signal,
    (done, total) => progress('lambda', done, total),
  );
  report.lambda = lambda;
  report.jitter = jitter;
  const d = anchorsPlm.cols + 1,
    hs = anchorsSrc.cols;
  timings.lambda = performance.now() - tl;
  const n = solveIds.length,
    ht = Pm.cols;
  for (let from = 0; from < n; from += opts.chunkSize) {
    throwIfAborted(signal);
    const ids = solveIds.subarray(from, Math.min(n, from + opts.chunkSize));
    const c = ids.length;
    const t = performance.now();
    // x W as a weighted combination of W's rows: token i uses rows 0..d-1 with weights [x_i, 1].
    const offsets = new Int32Array(c + 1);
    const indices = new Int32Array(c * d);
    const weights = new Float32Array(c * d);
    for (let i = 0; i < c; i++) {
      offsets[i + 1] = (i + 1) * d;
      for (let j = 0; j < d; j++) indices[i * d + j] = j;
      weights.set(Pm.data.subarray(ids[i] * ht, ids[i] * ht + ht), i * d);
      weights[i * d + ht] = 1;
    }
    const res = await applyWeights({
      n: c,
      neighbours: { offsets, indices },
      weights,
      anchorsSrc: maps[0],
      ...opts.kernel,
    });
    await scatter(embeddings, res.out, solveIds, from, c, hs);
    timings.combine += performance.now() - t;
    if (anchorsHead) {
      const th = performance.now();
      const rh = await applyWeights({
        n: c,
        neighbours: { offsets, indices },
        weights,
        anchorsSrc: maps[1],
        ...opts.kernel,
      });
      await scatter(headOut!, rh.out, solveIds, from, c, maps[1].cols);
      timings.head += performance.now() - th;
    }
    progress('combine', from + c, n);
  }
}
