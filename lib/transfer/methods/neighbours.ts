/** salt-local, salt-residual, salt-paper, salt-ridge, focus, clp, wechsel: neighbours among the anchors, then a combination per token. */
import { applyWeights, solveNeighbourhoods, sparsemax, topkCosine } from '../../kernels/kernels.js';
import { gemm } from '../../kernels/linalg.js';
import { allocFloat32 } from '../../kernels/matrixOps.js';
import { type Matrix, type Neighbourhoods } from '../../kernels/validate.js';
import { type Resolved, SALT_FAMILY, throwIfAborted } from '../options.js';
import { seededSample, STREAM } from '../random.js';
import { gatherRows, gatherRowsAsync, scatter } from '../rows.js';
import { cosine, quantilesOf } from '../stats.js';
import type { LambdaReport, Selection } from '../types.js';
import type { MethodContext } from './context.js';
import { fitGlobalMaps } from './globalLinear.js';

/** The per-token ridge is shrunk towards the sparsemax weights (salt-local, salt-residual). */
const withPrior = (method: string) => method === 'salt-local' || method === 'salt-residual';

/**
 * salt-residual: the inputs [x - c A, 1 - sum c] (n x (h_t + 1)) of the global map, per token: x its
 * PLM row, c its coefficients over its neighbours, A their PLM rows. Row = c S + R W.
 */
async function residualInputs(
  queries: Matrix,
  sel: Neighbourhoods,
  coef: Float32Array,
  plmByTarget: Matrix,
  kernel: Resolved['kernel'],
): Promise<Matrix> {
  const n = queries.rows,
    ht = queries.cols,
    d = ht + 1;
  const { out: cA } = await applyWeights({ n, neighbours: sel, weights: coef, anchorsSrc: plmByTarget, ...kernel });
  const r = allocFloat32(n * d);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let e = sel.offsets[i]; e < sel.offsets[i + 1]; e++) sum += coef[e];
    for (let j = 0; j < ht; j++) r[i * d + j] = queries.data[i * ht + j] - cA[i * ht + j];
    r[i * d + ht] = 1 - sum;
  }
  return { data: r, rows: n, cols: d };
}

/** Neighbour lists with per-entry selection weights. */
interface Selected extends Neighbourhoods {
  weights: Float32Array;
  support: Int32Array;
}

/**
 * Turns top-K candidates (n x K, descending) into neighbour lists: the sparsemax support with its
 * weights, or the first k with normalised clamped cosines (uniform when all are <= 0), or (wechsel)
 * the first k with softmax(score / temperature) weights.
 */
async function select(
  indices: Int32Array,
  scores: Float32Array,
  n: number,
  K: number,
  selection: Selection,
  weighting: 'selection' | 'softmax',
  temperature: number,
  kernel: Resolved['kernel'],
): Promise<Selected> {
  const offsets = new Int32Array(n + 1);
  const idx = new Int32Array(n * K);
  const w = new Float32Array(n * K);
  const support = new Int32Array(n);
  let e = 0;
  if (selection === 'sparsemax') {
    const sm = await sparsemax({ data: scores, rows: n, cols: K }, kernel);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < K; j++) {
        const v = sm.weights[i * K + j];
        if (v > 0) {
          idx[e] = indices[i * K + j];
          w[e++] = v;
        }
      }
      offsets[i + 1] = e;
      support[i] = e - offsets[i];
    }
  } else {
    const k = Math.min(selection.topk, K);
    for (let i = 0; i < n; i++) {
      const o = i * K;
      if (weighting === 'softmax') {
        const top = scores[o];
        let s = 0;
        for (let j = 0; j < k; j++) s += Math.exp((scores[o + j] - top) / temperature);
        for (let j = 0; j < k; j++) w[e + j] = Math.exp((scores[o + j] - top) / temperature) / s;
      } else {
        let s = 0;
        for (let j = 0; j < k; j++) s += Math.max(0, scores[o + j]);
        for (let j = 0; j < k; j++) w[e + j] = s > 0 ? Math.max(0, scores[o + j]) / s : 1 / k;
      }
      for (let j = 0; j < k; j++) idx[e + j] = indices[o + j];
      e += k;
      offsets[i + 1] = e;
      support[i] = k;
    }
  }
  return { offsets, indices: idx.slice(0, e), weights: w.slice(0, e), support };
}

/**
 * lambda by leave-one-out over a seeded sample of anchors: each is predicted from the other anchors
 * (itself and any anchor sharing its source row are removed from its candidates); score = mean cosine
 * to its true source row. Ties keep the earlier grid value.
 */
async function chooseLambdaLoo(ctx: NeighbourContext, globalMap?: Matrix): Promise<LambdaReport> {
  const { opts, anchorsAux, anchorsPlm, anchorsSrc, anchorSource, anchorTarget, signal } = ctx;
  const m = anchorsPlm.rows,
    grid = opts.lambdaGrid;
  // Largest group of anchors sharing one source row: that many candidates may have to be dropped.
  const group = new Map<number, number>();
  let maxGroup = 1;
  for (const s of anchorSource) {
    const g = (group.get(s) ?? 0) + 1;
    group.set(s, g);
    if (g > maxGroup) maxGroup = g;
  }
  const Kl = Math.min(ctx.opts.K, m - maxGroup);
  if (Kl < 1) return { value: grid[0], auto: true, grid: [...grid], scores: grid.map(() => NaN), sample: 0 };
  const sample = seededSample(m, opts.looSample, opts.seed, STREAM.looSample);
  const n = sample.length;
  const Kq = Math.min(m, Kl + maxGroup);
  const q = gatherRows(anchorsAux, sample);
  const top = await topkCosine(q, anchorsAux, Kq, opts.kernel);
  const idx = new Int32Array(n * Kl);
  const sc = new Float32Array(n * Kl);
  for (let i = 0; i < n; i++) {
    const own = anchorSource[sample[i]];
    let j = 0;
    for (let r = 0; r < Kq && j < Kl; r++) {
      const a = top.indices[i * Kq + r];
      if (anchorSource[a] === own) continue;
      idx[i * Kl + j] = a;
      sc[i * Kl + j++] = top.scores[i * Kq + r];
    }
  }
  const sel = toTargetIds(
    await select(idx, sc, n, Kl, clampSelection(opts.selection, Kl), 'selection', opts.temperature, opts.kernel),
    anchorTarget,
  );
  const queries = gatherRows(anchorsPlm, sample);
  const plmByTarget = ctx.Pm; // rows indexed by target id, like the new matrices
  const scores: number[] = [];
  for (let g = 0; g < grid.length; g++) {
    throwIfAborted(signal);
    const res = await solveNeighbourhoods({
      neighbours: sel,
      queries,
      anchorsPlm: plmByTarget,
      anchorsSrc,
      lambda: grid[g],
      prior: withPrior(opts.method) ? sel.weights : undefined,
      returnCoefficients: globalMap !== undefined,
      ...opts.kernel,
    });
    if (globalMap) {
      const R = await residualInputs(queries, sel, res.coefficients!, plmByTarget, opts.kernel);
      await gemm(R, globalMap, { accumulate: res.out, threads: opts.kernel.threads });
    }
    let sum = 0;
    for (let i = 0; i < n; i++)
      sum += cosine(
        res.out,
        i * anchorsSrc.cols,
        anchorsSrc.data,
        anchorTarget[sample[i]] * anchorsSrc.cols,
        anchorsSrc.cols,
      );
    scores.push(sum / n);
    ctx.progress('lambda', g + 1, grid.length);
  }
  let best = 0;
  for (let g = 1; g < grid.length; g++) if (scores[g] > scores[best]) best = g;
  return { value: grid[best], auto: true, grid: [...grid], scores, sample: n };
}

/**
 * What the neighbour methods receive: `anchorsSrc` and `anchorsHead` are the new matrices (one row
 * per target id, the anchors' rows already copied in), `anchorsPlm` and `anchorsAux` the anchors'
 * rows gathered in anchor order (`anchorTarget[a]` / `anchorSource[a]`: anchor a's target and source ids).
 */
type NeighbourContext = MethodContext & {
  aux: Matrix;
  anchorsAux: Matrix;
  anchorTarget: Int32Array;
  anchorSource: Int32Array;
};

/** Neighbour lists over anchor indices, translated to the anchors' target ids (rows of the new matrices and of `Pm`). */
function toTargetIds<T extends Neighbourhoods>(sel: T, anchorTarget: Int32Array): T {
  const indices = new Int32Array(sel.indices.length);
  for (let e = 0; e < indices.length; e++) indices[e] = anchorTarget[sel.indices[e]];
  return { ...sel, indices };
}

function clampSelection(s: Selection, K: number): Selection {
  return s === 'sparsemax' ? s : { topk: Math.min(s.topk, K) };
}

/** salt-local, salt-paper, salt-ridge, focus, clp, wechsel: top-K search, selection, combination, per chunk. */
export async function neighbourMethod(ctx: NeighbourContext): Promise<void> {
  const {
    opts,
    Pm,
    aux,
    anchorsAux,
    anchorsPlm,
    anchorsSrc,
    anchorsHead,
    solveIds,
    embeddings,
    headOut,
    report,
    progress,
    signal,
  } = ctx;
  const { method, kernel } = opts;
  const timings = report.timings;
  const m = anchorsPlm.rows;
  const K = Math.min(opts.K, m);
  const plmByTarget = ctx.Pm; // rows indexed by target id, like the new matrices
  const selection = clampSelection(opts.selection, K);
  const salt = SALT_FAMILY.has(method);
  report.K = K;
  report.selection = selection;
  if (method === 'wechsel') report.temperature = opts.temperature;
  let lambda = 0;
  let globalMaps: Matrix[] | undefined;
  if (salt) {
    const tl = performance.now();
    if (method === 'salt-residual') {
      // The global map first (its own lambda by leave-one-out): the choice of the local lambda scores
      // the whole prediction.
      const src = await gatherRowsAsync(anchorsSrc, ctx.anchorTarget);
      const hd = anchorsHead ? await gatherRowsAsync(anchorsHead, ctx.anchorTarget) : undefined;
      const g = await fitGlobalMaps(opts, anchorsPlm, src, hd, 'auto', signal);
      globalMaps = g.maps;
      report.globalMap = { lambda: g.lambda, jitter: g.jitter };
    }
    if (opts.lambda === 'auto') report.lambda = await chooseLambdaLoo(ctx, globalMaps?.[0]);
    else report.lambda = { value: opts.lambda, auto: false };
    lambda = report.lambda.value;
    timings.lambda = performance.now() - tl;
  }
  const n = solveIds.length,
    hs = anchorsSrc.cols,
    ho = anchorsHead?.cols ?? 0;
  const histogram = new Array<number>(K + 1).fill(0);
  const residual = salt ? new Float32Array(n) : undefined;
  const coefNorm = salt ? new Float32Array(n) : undefined;
  let hitK = 0,
    supportSum = 0;
  for (let from = 0; from < n; from += opts.chunkSize) {
    throwIfAborted(signal);
    const ids = solveIds.subarray(from, Math.min(n, from + opts.chunkSize));
    const c = ids.length;
    let t = performance.now();
    const top = await topkCosine(await gatherRowsAsync(aux, ids), anchorsAux, K, kernel);
    timings.search += performance.now() - t;
    throwIfAborted(signal);
    t = performance.now();
    const sel = toTargetIds(
      await select(
        top.indices,
        top.scores,
        c,
        K,
        selection,
        method === 'wechsel' ? 'softmax' : 'selection',
        opts.temperature,
        kernel,
      ),
      ctx.anchorTarget,
    );
    for (let i = 0; i < c; i++) {
      histogram[sel.support[i]]++;
      supportSum += sel.support[i];
      if (sel.support[i] === K) hitK++;
    }
    timings.select += performance.now() - t;
    throwIfAborted(signal);
    t = performance.now();
    let coefficients = sel.weights;
    let R: Matrix | undefined;
    if (salt) {
      const queries = await gatherRowsAsync(Pm, ids);
      const res = await solveNeighbourhoods({
        neighbours: sel,
        queries,
        anchorsPlm: plmByTarget,
        anchorsSrc,
        lambda,
        prior: withPrior(method) ? sel.weights : undefined,
        returnCoefficients: anchorsHead !== undefined || globalMaps !== undefined,
        ...kernel,
      });
      if (globalMaps) {
        R = await residualInputs(queries, sel, res.coefficients!, plmByTarget, kernel);
        await gemm(R, globalMaps[0], { accumulate: res.out, threads: kernel.threads });
      }
      await scatter(embeddings, res.out, solveIds, from, c, hs);
      residual!.set(res.residual, from);
      coefNorm!.set(res.coefNorm, from);
      if (res.coefficients) coefficients = res.coefficients;
    } else {
      const res = await applyWeights({ n: c, neighbours: sel, weights: sel.weights, anchorsSrc, ...kernel });
      await scatter(embeddings, res.out, solveIds, from, c, hs);
    }
    timings.combine += performance.now() - t;
    if (anchorsHead) {
      throwIfAborted(signal);
      t = performance.now();
      const res = await applyWeights({
        n: c,
        neighbours: sel,
        weights: coefficients,
        anchorsSrc: anchorsHead,
        ...kernel,
      });
      if (R) await gemm(R, globalMaps![1], { accumulate: res.out, threads: kernel.threads });
      await scatter(headOut!, res.out, solveIds, from, c, ho);
      timings.head += performance.now() - t;
    }
    progress('combine', from + c, n);
  }
  report.support = { histogram, mean: n > 0 ? supportSum / n : NaN, hitK };
  if (salt) {
    report.residual = await quantilesOf(residual!);
    report.coefNorm = await quantilesOf(coefNorm!);
  }
}
