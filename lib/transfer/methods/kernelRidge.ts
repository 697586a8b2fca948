/**
 * salt (the default method): kernel ridge regression from the auxiliary (PLM) space to the source space over all
 * anchors, k(x, y) = linear (x . y + 1) + exp((cos(x, y) - 1) / width). The prediction for a new
 * token x is k(x, Z) beta. See docs/transfer.md, "The kernel method, in detail".
 *
 * - Exact (landmarks = all anchors, m <= MAX_EXACT_ANCHORS): beta = (K + lambda I)^-1 Y, one
 *   Cholesky factorisation of the m x m kernel matrix (float64).
 * - Nystrom / subset of regressors (L landmarks Z, a seeded sample of the anchors): with the whitening
 *   T = L^-T of K_ZZ + jitter I = L L^T (jitter 1e-6 of the mean diagonal) and features
 *   phi(x) = k(x, Z) T, ridge in feature space: beta = T (Phi^T Phi + lambda I)^-1 Phi^T Y. Never an
 *   m x m matrix: Phi^T Phi (L x L) and Phi^T Y accumulate over tiles of anchors. L >= m takes the
 *   exact path.
 * - Hyperparameters (linear, width, lambda) are chosen by exact closed-form leave-one-out on a seeded
 *   sample of anchors (at most one per source row, so no twin leaks its answer): per grid point one
 *   float64 Cholesky factorisation of A = K_s + lambda I gives the LOO predictions
 *   y_i - (A^-1 Y)_i / (A^-1)_ii (the hat-matrix identity y_i - yhat_i = lambda (A^-1 Y)_i and
 *   1 - h_i = lambda (A^-1)_ii). A grid point whose system does not factorise is skipped (noted).
 * - lambda is relative: the system uses lambda x the mean diagonal of the kernel, so one grid fits
 *   every kernel scale.
 */
import { SaltError } from '../../errors.js';
import { topkCosine } from '../../kernels/kernels.js';
import {
  choleskySolve,
  choleskyWhiten,
  gemm,
  kernelLoo,
  kernelMatrix,
  type KernelParams,
} from '../../kernels/linalg.js';
import { allocFloat32, toFloat32, toFloat64 } from '../../kernels/matrixOps.js';
import type { Matrix } from '../../kernels/validate.js';
import { type Resolved, throwIfAborted } from '../options.js';
import { seededSample, STREAM } from '../random.js';
import { gatherRowsAsync, scatter } from '../rows.js';
import { cosine, rowNorms, Yielder } from '../stats.js';
import { type KernelReport, MAX_EXACT_ANCHORS, type TransferReport, type TransferStage } from '../types.js';

/** What the kernel method receives from the engine. */
export interface KernelContext {
  opts: Resolved;
  /** The auxiliary space (|V_t| x h_a): the kernel's input rows. */
  aux: Matrix;
  /** Source embeddings S and the optional head: the regression targets and, for P@1, the ranking. */
  S: Matrix;
  head?: Matrix;
  anchorTarget: Int32Array;
  anchorSource: Int32Array;
  solveIds: Int32Array;
  embeddings: Float32Array;
  headOut?: Float32Array;
  report: TransferReport;
  progress: (stage: TransferStage, done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Anchors per tile of the Nystrom accumulation and of the predictions. */
const TILE = 4096;

/** Mean of k(x, x) over the rows, linear (mean |x|^2 + 1) + 1, from the native row norms. */
async function meanDiagonal(X: Matrix, linear: number): Promise<number> {
  if (X.rows === 0) return 1;
  let q = 0;
  for (const norm of await rowNorms(X.data, X.cols)) q += norm * norm;
  return linear * (q / X.rows + 1) + 1;
}

/** Target rows of the anchors listed (row i = source row anchorSource[ids[i]]), hs + ho columns (source, then head). */
async function targets(ctx: KernelContext, ids: Int32Array): Promise<{ y: Float32Array; cols: number }> {
  const src = Int32Array.from(ids, (i) => ctx.anchorSource[i]);
  const ys = await gatherRowsAsync(ctx.S, src);
  const hs = ctx.S.cols,
    ho = ctx.head?.cols ?? 0,
    w = hs + ho;
  if (!ctx.head) return { y: ys.data, cols: w };
  const y = allocFloat32(ids.length * w);
  const yh = await gatherRowsAsync(ctx.head, src);
  const yielder = new Yielder();
  for (let i = 0; i < ids.length; i++) {
    await yielder.tick();
    y.set(ys.data.subarray(i * hs, (i + 1) * hs), i * w);
    y.set(yh.data.subarray(i * ho, (i + 1) * ho), i * w + hs);
  }
  return { y, cols: w };
}

/** A seeded sample of anchors with at most one anchor per source row. */
function selectionSample(ctx: KernelContext, size: number): Int32Array {
  const m = ctx.anchorTarget.length;
  const order = seededSample(m, m, ctx.opts.seed, STREAM.looSample);
  const seen = new Set<number>();
  const out: number[] = [];
  for (const i of order) {
    const s = ctx.anchorSource[i];
    if (seen.has(s)) continue;
    seen.add(s);
    out.push(i);
    if (out.length >= size) break;
  }
  return Int32Array.from(out).sort();
}

interface GridPoint extends KernelParams {
  lambda: number;
  score: number;
}

/** Chooses (linear, width, lambda) by closed-form leave-one-out on the sample; scores every grid point. */
async function choose(
  ctx: KernelContext,
  X: Matrix,
  sample: Int32Array,
  lambdas: readonly number[],
  notes: string[],
): Promise<{ best: GridPoint; grid: GridPoint[] }> {
  const { opts } = ctx;
  const k = opts.kernel;
  const s = sample.length;
  const Xs = await gatherRowsAsync(X, sample);
  const hs = ctx.S.cols;
  const trueSrc = Int32Array.from(sample, (i) => ctx.anchorSource[i]);
  // The search scores source rows only: the head's columns are not needed here.
  const Ys = await toFloat64((await gatherRowsAsync(ctx.S, trueSrc)).data);
  const grid: GridPoint[] = [];
  const total = opts.kernelLinear.length * opts.kernelWidth.length;
  let done = 0;
  for (const linear of opts.kernelLinear) {
    for (const width of opts.kernelWidth) {
      throwIfAborted(ctx.signal);
      const params = { linear, width };
      const Ks = await toFloat64(await kernelMatrix(Xs, Xs, params, k));
      const scale = await meanDiagonal(Xs, linear);
      for (const rel of lambdas) {
        // One Cholesky factorisation per grid point (float64): LOO row i = y_i - (A^-1 Y)_i / (A^-1)_ii.
        const loo = await kernelLoo(Ks, s, rel * scale, Ys, hs, hs, k.threads);
        if (loo === null) {
          grid.push({ linear, width, lambda: rel, score: -Infinity });
          notes.push(
            `LOO: linear ${linear}, width ${width}, lambda ${rel}: the ${s} x ${s} kernel system is not numerically positive definite; grid point skipped`,
          );
          continue;
        }
        grid.push({ linear, width, lambda: rel, score: await looScore(ctx, loo, trueSrc) });
      }
      ctx.progress('lambda', ++done, total);
    }
  }
  let best = grid[0];
  for (const g of grid) if (g.score > best.score) best = g;
  return { best, grid };
}

/** Mean cosine of the LOO predictions to the true rows, or their P@1 among all source rows. */
async function looScore(ctx: KernelContext, loo: Float32Array, trueSrc: Int32Array): Promise<number> {
  const S = ctx.S,
    hs = S.cols,
    s = trueSrc.length;
  const y = new Yielder();
  if (ctx.opts.looCriterion === 'cosine') {
    let sum = 0;
    for (let i = 0; i < s; i++) {
      await y.tick();
      sum += cosine(loo, i * hs, S.data, trueSrc[i] * hs, hs);
    }
    return sum / s;
  }
  const top = await topkCosine({ data: loo, rows: s, cols: hs }, S, 1, ctx.opts.kernel);
  let hits = 0;
  for (let i = 0; i < s; i++) {
    await y.tick();
    // A source row identical to the true one ties with it: count the tie as a hit.
    if (top.indices[i] === trueSrc[i] || top.scores[i] <= cosine(loo, i * hs, S.data, trueSrc[i] * hs, hs)) hits++;
  }
  return hits / s;
}

/**
 * Fits beta (landmarks x (hs + ho)) at the chosen relative lambda; if the system is not numerically
 * positive definite, the next larger grid value is tried (and named in the report).
 */
async function fit(
  ctx: KernelContext,
  X: Matrix,
  landmarks: Int32Array | null,
  params: KernelParams,
  lambdas: number[],
  notes: string[],
): Promise<{ Z: Matrix; beta: Float32Array; cols: number; lambda: number; rank: number }> {
  const k = ctx.opts.kernel;
  const m = X.rows;
  const scale = await meanDiagonal(X, params.linear);
  if (landmarks === null) {
    const K = await kernelMatrix(X, X, params, k);
    const { y, cols } = await targets(
      ctx,
      Int32Array.from({ length: m }, (_, i) => i),
    );
    for (const rel of lambdas) {
      const sol = await choleskySolve(await toFloat64(K), m, rel * scale, await toFloat64(y), cols, k.threads);
      if (sol) return { Z: X, beta: await toFloat32(sol), cols, lambda: rel, rank: m };
      notes.push(
        `lambda ${rel}: the ${m} x ${m} kernel system is not numerically positive definite; trying the next grid value`,
      );
    }
    throw new SaltError(
      'E_ARGUMENT',
      `salt: no lambda of the grid gives a positive definite kernel system (${lambdas.length} tried); add a larger lambda to lambdaGrid`,
    );
  }
  const Z = await gatherRowsAsync(X, landmarks);
  const L = Z.rows;
  // Whitening T with T^T (K_ZZ + jitter I) T = I (Cholesky; K_ZZ is often numerically singular, so a
  // jitter of 1e-6 of its mean diagonal, raised tenfold until it factorises).
  const Kzz = await kernelMatrix(Z, Z, params, k);
  let Tw: Float64Array | null = null;
  let jitter = 1e-6 * scale;
  for (let attempt = 0; attempt < 6 && Tw === null; attempt++, jitter *= 10) {
    Tw = await choleskyWhiten(await toFloat64(Kzz), L, jitter, k.threads);
    if (Tw === null)
      notes.push(`landmark kernel not positive definite with jitter ${jitter.toExponential(1)}; raising it`);
  }
  if (Tw === null)
    throw new SaltError('E_INTERNAL', 'salt: the landmark kernel matrix could not be factorised even with jitter');
  const Tm = { data: await toFloat32(Tw), rows: L, cols: L };
  const hs = ctx.S.cols,
    ho = ctx.head?.cols ?? 0,
    cols = hs + ho;
  const G = allocFloat32(L * L);
  const B = allocFloat32(L * cols);
  const tiles = Math.ceil(m / TILE);
  for (let t = 0; t < tiles; t++) {
    throwIfAborted(ctx.signal);
    const ids = Int32Array.from({ length: Math.min(TILE, m - t * TILE) }, (_, i) => t * TILE + i);
    const Xt = await gatherRowsAsync(X, ids);
    const phi = {
      data: await kernelMatrix(Xt, Z, params, { proj: Tm, threads: k.threads }),
      rows: ids.length,
      cols: L,
    };
    await gemm({ ...phi, t: true }, phi, { accumulate: G, threads: k.threads });
    const { y } = await targets(ctx, ids);
    await gemm({ ...phi, t: true }, { data: y, rows: ids.length, cols }, { accumulate: B, threads: k.threads });
    ctx.progress('lambda', t + 1, tiles);
  }
  for (const rel of lambdas) {
    // lambda ||w||^2 in the whitened features is lambda beta^T K_ZZ beta: the kernel ridge penalty.
    const W = await choleskySolve(await toFloat64(G), L, rel * scale, await toFloat64(B), cols, k.threads);
    if (W) {
      const beta = await gemm(Tm, { data: await toFloat32(W), rows: L, cols }, k);
      return { Z, beta, cols, lambda: rel, rank: L };
    }
    notes.push(
      `lambda ${rel}: the ${L} x ${L} Nystrom system is not numerically positive definite; trying the next grid value`,
    );
  }
  throw new SaltError(
    'E_ARGUMENT',
    `salt: no lambda of the grid gives a positive definite Nystrom system; add a larger lambda to lambdaGrid`,
  );
}

/** Columns from..from+width of a row-major rows x cols matrix (beta, or predictions: source and head parts). */
async function split(beta: Float32Array, L: number, cols: number, from: number, width: number): Promise<Matrix> {
  if (from === 0 && width === cols) return { data: beta, rows: L, cols };
  const out = allocFloat32(L * width);
  const y = new Yielder();
  for (let l = 0; l < L; l++) {
    await y.tick();
    out.set(beta.subarray(l * cols + from, l * cols + from + width), l * width);
  }
  return { data: out, rows: L, cols: width };
}

/** salt: chooses hyperparameters by LOO, fits on all anchors, predicts every token to build. */
export async function kernelRidge(ctx: KernelContext): Promise<void> {
  const { opts, aux, report, solveIds, signal } = ctx;
  const timings = report.timings;
  const tl = performance.now();
  const m = ctx.anchorTarget.length;
  const X = await gatherRowsAsync(aux, ctx.anchorTarget);
  // Landmarks: all anchors (exact) or a seeded sample (Nystrom).
  let L: number;
  if (opts.landmarks === 'all') {
    if (m > MAX_EXACT_ANCHORS)
      throw new SaltError(
        'E_ARGUMENT',
        `salt: exact kernel ridge over ${m} anchors needs an ${m} x ${m} float64 system (${((m * m * 8 * 2) / 2 ** 30).toFixed(1)} GiB); at most ${MAX_EXACT_ANCHORS} anchors are solved exactly. Use the Nystrom approximation: landmarks: 4096 (or landmarks: 'auto')`,
      );
    L = m;
  } else if (opts.landmarks === 'auto') L = m <= 8192 ? m : 4096;
  else L = Math.min(m, opts.landmarks);
  const landmarks = L >= m ? null : seededSample(m, L, opts.seed, STREAM.landmarks).sort();

  const notes: string[] = [];
  const fixed = opts.kernelLinear.length === 1 && opts.kernelWidth.length === 1 && opts.lambda !== 'auto';
  let chosen: { linear: number; width: number; lambda: number };
  let grid: GridPoint[] | undefined;
  let sample = 0;
  if (fixed) chosen = { linear: opts.kernelLinear[0], width: opts.kernelWidth[0], lambda: opts.lambda as number };
  else {
    const lambdas = opts.lambda === 'auto' ? opts.lambdaGrid : [opts.lambda];
    const ids = selectionSample(ctx, opts.looSample);
    sample = ids.length;
    if (ids.length < 2) {
      chosen = { linear: opts.kernelLinear[0], width: opts.kernelWidth[0], lambda: lambdas[0] };
      notes.push(`fewer than 2 anchors with distinct source rows: the first grid values are used`);
    } else {
      const r = await choose(ctx, X, ids, lambdas, notes);
      chosen = r.best;
      grid = r.grid;
    }
  }
  throwIfAborted(signal);
  // The chosen lambda, then (if its system is not positive definite) the larger grid values in order.
  const tail = (opts.lambda === 'auto' ? [...opts.lambdaGrid] : [chosen.lambda])
    .filter((v) => v >= chosen.lambda)
    .sort((a, b) => a - b);
  const model = await fit(ctx, X, landmarks, chosen, tail, notes);
  const kernelReport: KernelReport = {
    linear: chosen.linear,
    width: chosen.width,
    lambda: model.lambda,
    landmarks: model.Z.rows,
    exact: landmarks === null,
    rank: model.rank,
    criterion: opts.looCriterion,
    sample,
    ...(grid ? { grid: grid.map((g) => ({ ...g })) } : {}),
    notes,
  };
  report.kernel = kernelReport;
  report.lambda = {
    value: model.lambda,
    auto: opts.lambda === 'auto',
    ...(opts.lambda === 'auto' ? { grid: [...opts.lambdaGrid], sample } : {}),
    ...(grid && opts.lambda === 'auto'
      ? {
          scores: opts.lambdaGrid.map((l) => Math.max(...grid!.filter((g) => g.lambda === l).map((g) => g.score))),
        }
      : {}),
  };
  timings.lambda = performance.now() - tl;

  // ---- predictions, in chunks of tokens: one kernel block per chunk, projected on [beta_source |
  // beta_head] at once (an untied head costs columns of the product, not a second kernel block).
  const hs = ctx.S.cols,
    ho = ctx.head?.cols ?? 0;
  const beta = { data: model.beta, rows: model.Z.rows, cols: model.cols };
  const params = { linear: chosen.linear, width: chosen.width };
  const n = solveIds.length;
  for (let from = 0; from < n; from += opts.chunkSize) {
    throwIfAborted(signal);
    const ids = solveIds.subarray(from, Math.min(n, from + opts.chunkSize));
    const t = performance.now();
    const Xq = await gatherRowsAsync(aux, ids);
    const out = await kernelMatrix(Xq, model.Z, params, { proj: beta, threads: opts.kernel.threads });
    const c = ids.length;
    await scatter(ctx.embeddings, (await split(out, c, model.cols, 0, hs)).data, solveIds, from, c, hs);
    if (ctx.head) await scatter(ctx.headOut!, (await split(out, c, model.cols, hs, ho)).data, solveIds, from, c, ho);
    timings.combine += performance.now() - t;
    ctx.progress('combine', from + c, n);
  }
}
