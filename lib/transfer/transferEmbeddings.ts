/**
 * The in-memory transfer engine: builds the new |V_t| x h_s embedding matrix of an LLM for a target
 * vocabulary, by SALT (Semantic Aware Linear Transfer) or one of the baselines, from matrices the
 * caller already holds. See docs/transfer.md.
 */
import { SaltError, SaltRangeError, SaltTypeError, describe } from '../errors.js';
import { applyWeights, solveNeighbourhoods, sparsemax, topkCosine, type Backend } from '../kernels/kernels.js';
import { checkInteger, checkMatrix, checkNeighbourhoods, checkNumber, checkOneOf, type Matrix, type Neighbourhoods } from '../kernels/validate.js';
import { MATCH_CATEGORIES } from '../tokenizer/align.js';
import { cholesky, cholSolve, globalLinearLoo, normalEquations } from './globalLinear.js';
import { STREAM, normalRow, seededSample } from './random.js';
import { Yielder, blockRows, checkFinite, columnMeanStd, cosine, quantiles, rowNorms, type Quantiles } from './stats.js';

/**
 * How new rows are built.
 * - `'salt'` (default): sparsemax neighbours, per-token ridge regression shrunk towards the sparsemax
 *   weights, lambda chosen by leave-one-out on the anchors. Differs from the paper (see `'salt-paper'`).
 * - `'salt-paper'`: exactly the paper: sparsemax neighbours, least squares with pinv semantics (lambda 0).
 * - `'salt-ridge'`: sparsemax neighbours, ridge shrunk towards zero (lambda `'auto'` by default).
 * - `'focus'`: FOCUS-style: the sparsemax weights as a convex combination of the anchors' source rows.
 * - `'clp'`: similarity-weighted average over the top-K candidates (clamped-at-0 cosines, normalised).
 * - `'wechsel'`: WECHSEL-style: softmax of the top-k cosines with a temperature (k 10, temperature 0.1).
 * - `'mean'`: the per-dimension mean of the source rows.
 * - `'random'`: seeded N(mean, std) rows (per-dimension mean and std of the source rows).
 * - `'global-linear'`: one ridge map from PLM space to source space fitted on the anchors.
 * - `'fvt'`: FVT (Fast Vocabulary Transfer, Gee et al. 2022): the mean of the source rows of the
 *   source tokens the new token's text splits into (`segmentation`, see `segmentWithVocabulary`).
 */
export type TransferMethod = 'salt' | 'salt-paper' | 'salt-ridge' | 'focus' | 'clp' | 'wechsel' | 'mean' | 'random' | 'global-linear' | 'fvt';

/** All methods of {@link transferEmbeddings}. */
export const TRANSFER_METHODS: readonly TransferMethod[] = ['salt', 'salt-paper', 'salt-ridge', 'focus', 'clp', 'wechsel', 'mean', 'random', 'global-linear', 'fvt'];

/**
 * Which candidates become a token's neighbours: `'sparsemax'` (the paper: the support of sparsemax over
 * the top-K cosines) or `{ topk: k }` (the k most similar anchors, k <= K).
 */
export type Selection = 'sparsemax' | { topk: number };

/**
 * How a target row was made. `copied`: a shared token, the source row copied exactly; `special`: a
 * special token matched by role (copied too); `solved`: built by the chosen method; `fallback`: a token
 * without an auxiliary vector, seeded N(mean, std).
 */
export type Provenance = 'copied' | 'special' | 'solved' | 'fallback';

/** Provenance names in the order of their codes in {@link TransferResult.provenance}. */
export const PROVENANCE: readonly Provenance[] = ['copied', 'special', 'solved', 'fallback'];

/** Stages reported to `onProgress` and timed in {@link TransferReport.timings}. */
export type TransferStage = 'prepare' | 'lambda' | 'search' | 'select' | 'combine' | 'head' | 'fallback';

/** The default lambda grid of `lambda: 'auto'`. */
export const DEFAULT_LAMBDA_GRID: readonly number[] = [0, 0.3, 1, 3, 10, 30, 100];

/**
 * Largest candidate count K: sparsemax supports on real pairs stay below 100, and the candidate
 * lists take chunkSize x K x 8 bytes, so a larger K only costs time and memory.
 */
export const MAX_K = 4096;

/** The alignment of the target vocabulary with the source vocabulary (see `alignVocabularies`). */
export interface TransferAlignment {
  /** Per target token: the source row to copy, or -1 for a new token. Length |V_t|. */
  sourceIdOfTarget: Int32Array;
  /**
   * Optional per-target match category (index into `MATCH_CATEGORIES`). Tokens matched by special
   * role are copied with provenance `special` and never used as anchors.
   */
  category?: Uint8Array;
}

/** For every target token, the source token ids its text splits into (CSR; see `segmentWithVocabulary`). */
export interface TransferSegmentation {
  /** Length |V_t| + 1. */
  offsets: Int32Array;
  /** Source row ids in [0, |V_s|). */
  indices: Int32Array;
}

/** Options of {@link transferEmbeddings}. Options that do not apply to the chosen method are rejected (E_ARGUMENT). */
export interface TransferOptions {
  /** Method; default `'salt'`. */
  method?: TransferMethod;
  /** Candidates searched per token among the anchors (exact top-K by cosine in the aux space); default 64, clamped to the anchor count. Methods salt*, focus, clp, wechsel. */
  K?: number;
  /** Neighbour selection; default `'sparsemax'` (salt, salt-ridge, focus; salt-paper allows only this), `{ topk: K }` (clp), `{ topk: 10 }` (wechsel). */
  selection?: Selection;
  /** Ridge strength: `'auto'` (leave-one-out over the anchors) or a number >= 0. Default `'auto'` (salt, salt-ridge, global-linear); salt-paper allows only 0. */
  lambda?: 'auto' | number;
  /** Grid searched by `lambda: 'auto'`; default {@link DEFAULT_LAMBDA_GRID}. */
  lambdaGrid?: readonly number[];
  /** Anchors sampled (seeded) for the leave-one-out choice of lambda; default 500. */
  looSample?: number;
  /** Softmax temperature of `'wechsel'`; default 0.1. */
  temperature?: number;
  /** Seed of every random choice (fallback rows, the LOO sample); default 0. */
  seed?: number;
  /** New tokens per chunk (bounds memory; progress and abort are checked per chunk); default 32,768. */
  chunkSize?: number;
  /** Kernel backend; default `'auto'`. */
  backend?: Backend;
  /** CPU threads of the kernels; default 0 = all cores. */
  threads?: number;
  /** Cancels the transfer: the Promise rejects with SaltError `E_ABORTED` at the next stage or chunk. */
  signal?: AbortSignal;
  /** Progress callback: `done` of `total` units of `stage` (tokens, or grid values for `'lambda'`). */
  onProgress?: (stage: TransferStage, done: number, total: number) => void;
}

/** Arguments of {@link transferEmbeddings}. */
export interface TransferArgs extends TransferOptions {
  /** The LLM's input embeddings S (|V_s| x h_s). */
  source: Matrix;
  /** The LLM's untied output head (|V_s| x h_o), if it has one; transferred with the same neighbours and coefficients. */
  sourceHead?: Matrix;
  /** The PLM's embeddings P (|V_t| x h_t), aligned with the target vocabulary. */
  target: Matrix;
  /** Auxiliary similarity space aligned with V_t (|V_t| x h_a); default `target`. */
  aux?: Matrix;
  /** Per target token: 0 = no auxiliary vector (the row of `aux` is ignored), else present. Default: all present. */
  auxPresent?: Uint8Array;
  /** Which target tokens are shared with the source. */
  alignment: TransferAlignment;
  /**
   * Method `'fvt'` only (required there): each target token's source pieces. New tokens with an empty
   * list get fallback rows; lists of shared tokens are ignored (their rows are copied).
   */
  segmentation?: TransferSegmentation;
}

/** The lambda actually used, and how it was chosen. */
export interface LambdaReport {
  /** The value used. */
  value: number;
  /** Whether it was chosen by leave-one-out. */
  auto: boolean;
  /** The grid searched (auto only). */
  grid?: number[];
  /** Mean cosine of the leave-one-out predictions to the true source rows, per grid value (auto only). */
  scores?: number[];
  /** Anchors in the leave-one-out sample (auto only; 0 when there were too few anchors and the first grid value was used). */
  sample?: number;
}

/** What {@link transferEmbeddings} did. */
export interface TransferReport {
  method: TransferMethod;
  /** Target rows per provenance. */
  counts: Record<Provenance, number>;
  /** Shared tokens usable as anchors (not special, with an aux vector). */
  anchors: number;
  /** Candidates per token actually searched (K clamped to the anchor count), for neighbour methods. */
  K?: number;
  /** The selection used, for neighbour methods (`topk` after clamping). */
  selection?: Selection;
  /** Temperature (wechsel). */
  temperature?: number;
  /** Neighbour counts of solved rows: `histogram[k]` rows had k neighbours; `hitK` rows used all K candidates (K may have cut their support). */
  support?: { histogram: number[]; mean: number; hitK: number };
  /** Relative residual ||c A - x|| / ||x|| of the per-token regressions (salt methods). */
  residual?: Quantiles;
  /** ||c|| of the per-token coefficients (salt methods). */
  coefNorm?: Quantiles;
  /** Row L2 norms of the source rows and of the new (solved + fallback) rows. */
  rowNorms: { source: Quantiles; new: Quantiles };
  /** Ridge lambda (salt, salt-ridge, salt-paper, global-linear). */
  lambda?: LambdaReport;
  /** global-linear only: diagonal jitter added to factorise a singular system (0 normally). */
  jitter?: number;
  /** fvt only: pieces per solved (segmented new) token: mean and maximum; `unsegmented`: new tokens with an empty list (fallback rows). */
  pieces?: { mean: number; max: number; unsegmented: number };
  /** Wall time per stage and in total (ms). */
  timings: Record<TransferStage | 'total', number>;
}

/** Result of {@link transferEmbeddings}. */
export interface TransferResult {
  /** |V_t| x h_s, row-major. */
  embeddings: Float32Array;
  /** |V_t| x h_o when a `sourceHead` was given. */
  head?: Float32Array;
  /** Per target row, an index into {@link PROVENANCE}. */
  provenance: Uint8Array;
  report: TransferReport;
}

const SALT_FAMILY = new Set<TransferMethod>(['salt', 'salt-paper', 'salt-ridge']);
const NEIGHBOUR_METHODS = new Set<TransferMethod>(['salt', 'salt-paper', 'salt-ridge', 'focus', 'clp', 'wechsel']);
const LAMBDA_METHODS = new Set<TransferMethod>(['salt', 'salt-paper', 'salt-ridge', 'global-linear']);
const SPECIAL_ROLE = MATCH_CATEGORIES.indexOf('special-role');
const P = { copied: 0, special: 1, solved: 2, fallback: 3 } as const;

/** Rejects with E_ABORTED when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new SaltError('E_ABORTED', 'the transfer was aborted through its AbortSignal', { cause: signal.reason });
}

/** Gathers rows `ids` of `m` into a new matrix. */
export function gatherRows(m: Matrix, ids: Int32Array): Matrix {
  const c = m.cols;
  const out = new Float32Array(ids.length * c);
  for (let i = 0; i < ids.length; i++) out.set(m.data.subarray(ids[i] * c, ids[i] * c + c), i * c);
  return { data: out, rows: ids.length, cols: c };
}

/** Validated, defaulted options. */
interface Resolved {
  method: TransferMethod;
  K: number;
  selection: Selection;
  lambda: 'auto' | number;
  lambdaGrid: number[];
  looSample: number;
  temperature: number;
  seed: number;
  chunkSize: number;
  kernel: { backend?: Backend; threads?: number };
}

/**
 * Checks a segmentation (CSR lists of source rows per target token): shapes, non-decreasing
 * offsets, and every index a source row in [0, Vs).
 */
export function checkSegmentation(segmentation: unknown, Vt: number, Vs: number): TransferSegmentation {
  const seg = checkNeighbourhoods('segmentation', segmentation, Vt);
  for (let t = 0; t < Vt; t++) {
    if (seg.offsets[t + 1] < seg.offsets[t]) throw new SaltRangeError(`segmentation.offsets must be non-decreasing; offsets[${t + 1}] = ${seg.offsets[t + 1]} < offsets[${t}] = ${seg.offsets[t]}`);
  }
  for (let e = 0; e < seg.indices.length; e++) {
    const s = seg.indices[e];
    if (s < 0 || s >= Vs) throw new SaltRangeError(`segmentation.indices[${e}] must be a source row in [0, ${Vs}), received ${s}`);
  }
  return seg;
}

/**
 * Checks transfer options (method, K, selection, lambda, seed, ...) and their combination without
 * running anything, so callers that load models first can reject bad options before that work.
 * Throws exactly what {@link transferEmbeddings} would throw for them.
 */
export function checkTransferOptions(options: TransferOptions): void {
  resolveOptions(options);
}

function resolveOptions(o: TransferOptions): Resolved {
  const method = o.method === undefined ? 'salt' : checkOneOf('method', o.method, TRANSFER_METHODS);
  const notFor = (name: string, allowed: Set<TransferMethod>) => {
    if ((o as Record<string, unknown>)[name] !== undefined && !allowed.has(method)) {
      throw new SaltRangeError(`${name} does not apply to method ${JSON.stringify(method)} (it applies to ${[...allowed].map((m) => JSON.stringify(m)).join(', ')}), received ${describe((o as Record<string, unknown>)[name])}`);
    }
  };
  notFor('K', NEIGHBOUR_METHODS);
  notFor('selection', NEIGHBOUR_METHODS);
  notFor('lambda', LAMBDA_METHODS);
  notFor('temperature', new Set(['wechsel']));
  notFor('segmentation', new Set(['fvt']));
  const K = o.K === undefined ? 64 : checkInteger('K', o.K, 1, MAX_K);
  let selection: Selection;
  if (o.selection === undefined) selection = method === 'clp' ? { topk: K } : method === 'wechsel' ? { topk: Math.min(10, K) } : 'sparsemax';
  else if (o.selection === 'sparsemax') selection = 'sparsemax';
  else if (typeof o.selection === 'object' && o.selection !== null && !Array.isArray(o.selection) && Object.keys(o.selection).join() === 'topk') {
    selection = { topk: checkInteger('selection.topk', o.selection.topk, 1, K, 'K') };
  } else throw new SaltTypeError(`selection must be "sparsemax" or { topk: number }, received ${describe(o.selection)}`);
  if (method === 'salt-paper' && selection !== 'sparsemax') throw new SaltRangeError(`method "salt-paper" is the paper's sparsemax selection; selection must be "sparsemax", received ${describe(o.selection)}`);
  let lambda: 'auto' | number;
  if (o.lambda === undefined) lambda = method === 'salt-paper' ? 0 : 'auto';
  else if (o.lambda === 'auto') lambda = 'auto';
  else lambda = checkNumber('lambda', o.lambda, 0);
  if (method === 'salt-paper' && lambda !== 0) throw new SaltRangeError(`method "salt-paper" is the paper's least squares; lambda must be 0, received ${describe(o.lambda)}`);
  let lambdaGrid = [...DEFAULT_LAMBDA_GRID];
  if (o.lambdaGrid !== undefined) {
    if (!Array.isArray(o.lambdaGrid) || o.lambdaGrid.length === 0) throw new SaltTypeError(`lambdaGrid must be a non-empty array of numbers >= 0, received ${describe(o.lambdaGrid)}`);
    lambdaGrid = o.lambdaGrid.map((v, i) => checkNumber(`lambdaGrid[${i}]`, v, 0));
  }
  const looSample = o.looSample === undefined ? 500 : checkInteger('looSample', o.looSample, 1);
  let temperature = 0.1;
  if (o.temperature !== undefined) {
    temperature = checkNumber('temperature', o.temperature, 0);
    if (temperature === 0) throw new SaltRangeError('temperature must be a finite number > 0, received 0');
  }
  const seed = o.seed === undefined ? 0 : checkInteger('seed', o.seed, 0, 0xffffffff);
  const chunkSize = o.chunkSize === undefined ? 32768 : checkInteger('chunkSize', o.chunkSize, 1);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new SaltTypeError(`signal must be an AbortSignal, received ${describe(o.signal)}`);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new SaltTypeError(`onProgress must be a function, received ${describe(o.onProgress)}`);
  return { method, K, selection, lambda, lambdaGrid, looSample, temperature, seed, chunkSize, kernel: { backend: o.backend, threads: o.threads } };
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
async function select(indices: Int32Array, scores: Float32Array, n: number, K: number, selection: Selection, weighting: 'selection' | 'softmax', temperature: number, kernel: Resolved['kernel']): Promise<Selected> {
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
 * Low-level SALT transfer on in-memory matrices: shared target tokens copy their source row (and head
 * row) exactly; every other target token gets a row built by `method` from the shared ("anchor")
 * tokens; tokens without an auxiliary vector get seeded N(mean, std) rows.
 *
 * Same inputs and seed give byte-identical output on the CPU backend.
 *
 * @throws SaltTypeError `E_TYPE` / SaltRangeError `E_SHAPE`, `E_ARGUMENT` for bad arguments (messages name
 *   the argument); SaltError `E_ARGUMENT` when the method needs anchors and there are none, or when
 *   method `'fvt'` has no `segmentation`; `E_NONFINITE`
 *   for NaN or Infinity in an input; `E_ABORTED` when `signal` fires; kernel errors as documented there.
 */
export async function transferEmbeddings(args: TransferArgs): Promise<TransferResult> {
  if (typeof args !== 'object' || args === null) throw new SaltTypeError(`transferEmbeddings expects an argument object, received ${describe(args)}`);
  const t0 = performance.now();
  const timings: Record<TransferStage | 'total', number> = { prepare: 0, lambda: 0, search: 0, select: 0, combine: 0, head: 0, fallback: 0, total: 0 };
  const opts = resolveOptions(args);
  const { method, signal } = { ...opts, signal: args.signal };
  const progress = args.onProgress ?? (() => {});
  throwIfAborted(signal);

  // ---- validation
  const S = checkMatrix('source', args.source);
  const Pm = checkMatrix('target', args.target);
  const head = args.sourceHead === undefined ? undefined : checkMatrix('sourceHead', args.sourceHead);
  if (head && head.rows !== S.rows) throw new SaltRangeError(`sourceHead.rows must equal source.rows = ${S.rows}, received ${head.rows}`, 'E_SHAPE');
  const aux = args.aux === undefined ? Pm : checkMatrix('aux', args.aux);
  if (aux.rows !== Pm.rows) throw new SaltRangeError(`aux.rows must equal target.rows = ${Pm.rows}, received ${aux.rows}`, 'E_SHAPE');
  const Vt = Pm.rows, Vs = S.rows, hs = S.cols;
  let present: Uint8Array | undefined;
  if (args.auxPresent !== undefined) {
    if (!(args.auxPresent instanceof Uint8Array)) throw new SaltTypeError(`auxPresent must be a Uint8Array, received ${describe(args.auxPresent)}`);
    if (args.auxPresent.length !== Vt) throw new SaltRangeError(`auxPresent must have target.rows = ${Vt} elements, received ${args.auxPresent.length}`, 'E_SHAPE');
    present = args.auxPresent;
  }
  const al = args.alignment;
  if (typeof al !== 'object' || al === null) throw new SaltTypeError(`alignment must be { sourceIdOfTarget: Int32Array, category?: Uint8Array }, received ${describe(al)}`);
  const sid = al.sourceIdOfTarget;
  if (!(sid instanceof Int32Array)) throw new SaltTypeError(`alignment.sourceIdOfTarget must be an Int32Array, received ${describe(sid)}`);
  if (sid.length !== Vt) throw new SaltRangeError(`alignment.sourceIdOfTarget must have target.rows = ${Vt} elements, received ${sid.length}`, 'E_SHAPE');
  const cat = al.category;
  if (cat !== undefined) {
    if (!(cat instanceof Uint8Array)) throw new SaltTypeError(`alignment.category must be a Uint8Array, received ${describe(cat)}`);
    if (cat.length !== Vt) throw new SaltRangeError(`alignment.category must have target.rows = ${Vt} elements, received ${cat.length}`, 'E_SHAPE');
  }
  for (let t = 0; t < Vt; t++) {
    const s = sid[t];
    if (s < -1 || s >= Vs) throw new SaltRangeError(`alignment.sourceIdOfTarget[${t}] must be -1 or a source row in [0, ${Vs}), received ${s}`);
  }
  let seg: TransferSegmentation | undefined;
  if (method === 'fvt') {
    if (args.segmentation === undefined) throw new SaltError('E_ARGUMENT', 'method "fvt" needs segmentation (each target token\'s source pieces; see segmentWithVocabulary)');
    seg = checkSegmentation(args.segmentation, Vt, Vs);
  }
  // The scans, copies and statistics below give the event loop a turn every few milliseconds.
  const y = new Yielder();
  await checkFinite('source', S, undefined, y);
  if (head) await checkFinite('sourceHead', head, undefined, y);
  await checkFinite('target', Pm, undefined, y);
  if (aux !== Pm) await checkFinite('aux', aux, present, y);
  throwIfAborted(signal);

  // ---- partition the target vocabulary
  const provenance = new Uint8Array(Vt);
  let nAnchors = 0, nSolve = 0, nFallback = 0;
  for (let t = 0; t < Vt; t++) {
    const has = present === undefined || present[t] !== 0;
    if (sid[t] >= 0) {
      const special = cat !== undefined && cat[t] === SPECIAL_ROLE;
      provenance[t] = special ? P.special : P.copied;
      if (!special && has) nAnchors++;
    } else if (seg ? seg.offsets[t + 1] > seg.offsets[t] : has || method === 'random' || method === 'mean') {
      provenance[t] = P.solved;
      nSolve++;
    } else {
      provenance[t] = P.fallback;
      nFallback++;
    }
  }
  const anchorTarget = new Int32Array(nAnchors);
  const solveIds = new Int32Array(nSolve);
  const fallbackIds = new Int32Array(nFallback);
  {
    let a = 0, s = 0, f = 0;
    for (let t = 0; t < Vt; t++) {
      if (provenance[t] === P.copied && (present === undefined || present[t] !== 0)) anchorTarget[a++] = t;
      else if (provenance[t] === P.solved) solveIds[s++] = t;
      else if (provenance[t] === P.fallback) fallbackIds[f++] = t;
    }
  }
  const needsAnchors = method !== 'mean' && method !== 'random' && method !== 'fvt';
  if (needsAnchors && nAnchors === 0) {
    throw new SaltError('E_ARGUMENT', `method ${JSON.stringify(method)} needs shared tokens with an aux vector as anchors, but alignment.sourceIdOfTarget shares none (0 of ${Vt} target tokens usable)`);
  }
  const anchorSource = new Int32Array(nAnchors);
  for (let i = 0; i < nAnchors; i++) anchorSource[i] = sid[anchorTarget[i]];

  // ---- copy shared rows
  const embeddings = new Float32Array(Vt * hs);
  const ho = head?.cols ?? 0;
  const headOut = head ? new Float32Array(Vt * ho) : undefined;
  const copyStep = blockRows(hs + ho);
  for (let t0 = 0; t0 < Vt; t0 += copyStep) {
    for (let t = t0, t1 = Math.min(Vt, t0 + copyStep); t < t1; t++) {
      const s = sid[t];
      if (s < 0) continue;
      embeddings.set(S.data.subarray(s * hs, s * hs + hs), t * hs);
      if (head) headOut!.set(head.data.subarray(s * ho, s * ho + ho), t * ho);
    }
    await y.tick();
  }
  const stats = await columnMeanStd(S, y);
  const headStats = head ? await columnMeanStd(head, y) : undefined;
  const sourceNorms = quantiles(await rowNorms(S.data, hs, undefined, y));
  timings.prepare = performance.now() - t0;

  const report: TransferReport = {
    method,
    counts: { copied: 0, special: 0, solved: nSolve, fallback: nFallback },
    anchors: nAnchors,
    rowNorms: { source: sourceNorms, new: quantiles(new Float64Array(0)) },
    timings,
  };
  for (let t = 0; t < Vt; t++) if (provenance[t] === P.copied) report.counts.copied++;
  report.counts.special = Vt - report.counts.copied - nSolve - nFallback;

  // ---- the method
  if (method === 'mean' || method === 'random') {
    const tf = performance.now();
    fillStatRows(embeddings, solveIds, stats, method, opts.seed);
    if (headOut) fillStatRows(headOut, solveIds, headStats!, method, opts.seed, STREAM.headRows);
    timings.combine = performance.now() - tf;
    progress('combine', nSolve, nSolve);
  } else if (method === 'fvt') {
    await fvt({ S, head, seg: seg!, solveIds, embeddings, headOut, report, chunkSize: opts.chunkSize, kernel: opts.kernel, progress, signal });
    report.pieces!.unsegmented = nFallback;
  } else {
    const anchorsPlm = gatherRows(Pm, anchorTarget);
    const anchorsSrc = gatherRows(S, anchorSource);
    const anchorsHead = head ? gatherRows(head, anchorSource) : undefined;
    if (method === 'global-linear') {
      await globalLinear({ opts, Pm, anchorsPlm, anchorsSrc, anchorsHead, solveIds, embeddings, headOut, report, progress, signal });
    } else {
      const anchorsAux = aux === Pm ? anchorsPlm : gatherRows(aux, anchorTarget);
      await neighbourMethod({ opts, Pm, aux, anchorsAux, anchorsPlm, anchorsSrc, anchorSource, anchorsHead, solveIds, embeddings, headOut, report, progress, signal });
    }
  }

  // ---- fallback rows
  throwIfAborted(signal);
  const tf = performance.now();
  fillStatRows(embeddings, fallbackIds, stats, 'random', opts.seed);
  if (headOut) fillStatRows(headOut, fallbackIds, headStats!, 'random', opts.seed, STREAM.headRows);
  timings.fallback = performance.now() - tf;
  if (nFallback > 0) progress('fallback', nFallback, nFallback);

  const newRows = new Int32Array(nSolve + nFallback);
  newRows.set(solveIds);
  newRows.set(fallbackIds, nSolve);
  report.rowNorms.new = quantiles(await rowNorms(embeddings, hs, newRows, y));
  timings.total = performance.now() - t0;
  return { embeddings, head: headOut, provenance, report };
}

/** Rows of `ids`: the column means (`'mean'`) or seeded N(mean, std) rows keyed by token id (`'random'`). */
function fillStatRows(out: Float32Array, ids: Int32Array, st: { mean: Float64Array; std: Float64Array }, kind: 'mean' | 'random', seed: number, stream: number = STREAM.rows): void {
  const h = st.mean.length;
  const meanRow = Float32Array.from(st.mean);
  for (const t of ids) {
    if (kind === 'mean') out.set(meanRow, t * h);
    else normalRow(out, t * h, st.mean, st.std, seed, t, stream);
  }
}

interface MethodContext {
  opts: Resolved;
  Pm: Matrix;
  anchorsPlm: Matrix;
  anchorsSrc: Matrix;
  anchorsHead?: Matrix;
  solveIds: Int32Array;
  embeddings: Float32Array;
  headOut?: Float32Array;
  report: TransferReport;
  progress: (stage: TransferStage, done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Scatters chunk rows (c x h) into the output rows `ids[from ..]`. */
function scatter(out: Float32Array, rows: Float32Array, ids: Int32Array, from: number, c: number, h: number): void {
  for (let i = 0; i < c; i++) out.set(rows.subarray(i * h, i * h + h), ids[from + i] * h);
}

/**
 * lambda by leave-one-out over a seeded sample of anchors: each is predicted from the other anchors
 * (itself and any anchor sharing its source row are removed from its candidates); score = mean cosine
 * to its true source row. Ties keep the earlier grid value.
 */
async function chooseLambdaLoo(ctx: MethodContext & { anchorsAux: Matrix; anchorSource: Int32Array }): Promise<LambdaReport> {
  const { opts, anchorsAux, anchorsPlm, anchorsSrc, anchorSource, signal } = ctx;
  const m = anchorsPlm.rows, grid = opts.lambdaGrid;
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
  const sel = await select(idx, sc, n, Kl, clampSelection(opts.selection, Kl), 'selection', opts.temperature, opts.kernel);
  const queries = gatherRows(anchorsPlm, sample);
  const scores: number[] = [];
  for (let g = 0; g < grid.length; g++) {
    throwIfAborted(signal);
    const res = await solveNeighbourhoods({ neighbours: sel, queries, anchorsPlm, anchorsSrc, lambda: grid[g], prior: opts.method === 'salt' ? sel.weights : undefined, ...opts.kernel });
    let sum = 0;
    for (let i = 0; i < n; i++) sum += cosine(res.out, i * anchorsSrc.cols, anchorsSrc.data, sample[i] * anchorsSrc.cols, anchorsSrc.cols);
    scores.push(sum / n);
    ctx.progress('lambda', g + 1, grid.length);
  }
  let best = 0;
  for (let g = 1; g < grid.length; g++) if (scores[g] > scores[best]) best = g;
  return { value: grid[best], auto: true, grid: [...grid], scores, sample: n };
}

function clampSelection(s: Selection, K: number): Selection {
  return s === 'sparsemax' ? s : { topk: Math.min(s.topk, K) };
}

/** salt, salt-paper, salt-ridge, focus, clp, wechsel: top-K search, selection, combination, per chunk. */
async function neighbourMethod(ctx: MethodContext & { aux: Matrix; anchorsAux: Matrix; anchorSource: Int32Array }): Promise<void> {
  const { opts, Pm, aux, anchorsAux, anchorsPlm, anchorsSrc, anchorsHead, solveIds, embeddings, headOut, report, progress, signal } = ctx;
  const { method, kernel } = opts;
  const timings = report.timings;
  const m = anchorsPlm.rows;
  const K = Math.min(opts.K, m);
  const selection = clampSelection(opts.selection, K);
  const salt = SALT_FAMILY.has(method);
  report.K = K;
  report.selection = selection;
  if (method === 'wechsel') report.temperature = opts.temperature;
  let lambda = 0;
  if (salt) {
    const tl = performance.now();
    if (opts.lambda === 'auto') report.lambda = await chooseLambdaLoo(ctx);
    else report.lambda = { value: opts.lambda, auto: false };
    lambda = report.lambda.value;
    timings.lambda = performance.now() - tl;
  }
  const n = solveIds.length, hs = anchorsSrc.cols, ho = anchorsHead?.cols ?? 0;
  const histogram = new Array<number>(K + 1).fill(0);
  const residual = salt ? new Float32Array(n) : undefined;
  const coefNorm = salt ? new Float32Array(n) : undefined;
  let hitK = 0, supportSum = 0;
  for (let from = 0; from < n; from += opts.chunkSize) {
    throwIfAborted(signal);
    const ids = solveIds.subarray(from, Math.min(n, from + opts.chunkSize));
    const c = ids.length;
    let t = performance.now();
    const top = await topkCosine(gatherRows(aux, ids), anchorsAux, K, kernel);
    timings.search += performance.now() - t;
    throwIfAborted(signal);
    t = performance.now();
    const sel = await select(top.indices, top.scores, c, K, selection, method === 'wechsel' ? 'softmax' : 'selection', opts.temperature, kernel);
    for (let i = 0; i < c; i++) {
      histogram[sel.support[i]]++;
      supportSum += sel.support[i];
      if (sel.support[i] === K) hitK++;
    }
    timings.select += performance.now() - t;
    throwIfAborted(signal);
    t = performance.now();
    let coefficients = sel.weights;
    if (salt) {
      const res = await solveNeighbourhoods({
        neighbours: sel,
        queries: gatherRows(Pm, ids),
        anchorsPlm,
        anchorsSrc,
        lambda,
        prior: method === 'salt' ? sel.weights : undefined,
        returnCoefficients: anchorsHead !== undefined,
        ...kernel,
      });
      scatter(embeddings, res.out, solveIds, from, c, hs);
      residual!.set(res.residual, from);
      coefNorm!.set(res.coefNorm, from);
      if (res.coefficients) coefficients = res.coefficients;
    } else {
      const res = await applyWeights({ n: c, neighbours: sel, weights: sel.weights, anchorsSrc, ...kernel });
      scatter(embeddings, res.out, solveIds, from, c, hs);
    }
    timings.combine += performance.now() - t;
    if (anchorsHead) {
      throwIfAborted(signal);
      t = performance.now();
      const res = await applyWeights({ n: c, neighbours: sel, weights: coefficients, anchorsSrc: anchorsHead, ...kernel });
      scatter(headOut!, res.out, solveIds, from, c, ho);
      timings.head += performance.now() - t;
    }
    progress('combine', from + c, n);
  }
  report.support = { histogram, mean: n > 0 ? supportSum / n : NaN, hitK };
  if (salt) {
    report.residual = quantiles(residual!);
    report.coefNorm = quantiles(coefNorm!);
  }
}

/**
 * fvt: each solved token's row is the mean of its pieces' source rows (and head rows), combined
 * natively by applyWeights with weights 1 / (number of pieces), per chunk.
 */
async function fvt(ctx: {
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
  let sum = 0, max = 0;
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
      const a = seg.offsets[ids[i]], len = seg.offsets[ids[i] + 1] - a;
      indices.set(seg.indices.subarray(a, a + len), offsets[i]);
      weights.fill(1 / len, offsets[i], offsets[i + 1]);
      sum += len;
      if (len > max) max = len;
    }
    const neighbours = { offsets, indices };
    const res = await applyWeights({ n: c, neighbours, weights, anchorsSrc: S, ...kernel });
    scatter(embeddings, res.out, solveIds, from, c, S.cols);
    timings.combine += performance.now() - t;
    if (head) {
      throwIfAborted(signal);
      t = performance.now();
      const rh = await applyWeights({ n: c, neighbours, weights, anchorsSrc: head, ...kernel });
      scatter(headOut!, rh.out, solveIds, from, c, head.cols);
      timings.head += performance.now() - t;
    }
    progress('combine', from + c, n);
  }
  report.pieces = { mean: n > 0 ? sum / n : NaN, max, unsegmented: 0 };
}

/** global-linear: one ridge map [x, 1] W fitted on the anchors; W applied natively (applyWeights). */
async function globalLinear(ctx: MethodContext): Promise<void> {
  const { opts, Pm, anchorsPlm, anchorsSrc, anchorsHead, solveIds, embeddings, headOut, report, progress, signal } = ctx;
  const timings = report.timings;
  const tl = performance.now();
  const ne = normalEquations(anchorsPlm, anchorsHead ? [anchorsSrc, anchorsHead] : [anchorsSrc]);
  const d = ne.d, hs = anchorsSrc.cols, m = anchorsPlm.rows;
  let lambda: LambdaReport;
  if (opts.lambda === 'auto') {
    const sample = seededSample(m, opts.looSample, opts.seed, STREAM.looSample);
    const scores: number[] = [];
    for (let g = 0; g < opts.lambdaGrid.length; g++) {
      throwIfAborted(signal);
      const { L } = cholesky(ne.G, d, opts.lambdaGrid[g]);
      const W = cholSolve(L, d, ne.rhs[0], hs);
      scores.push(globalLinearLoo(L, W, d, anchorsPlm, anchorsSrc, sample));
      progress('lambda', g + 1, opts.lambdaGrid.length);
    }
    let best = 0;
    for (let g = 1; g < scores.length; g++) if (scores[g] > scores[best]) best = g;
    lambda = { value: opts.lambdaGrid[best], auto: true, grid: [...opts.lambdaGrid], scores, sample: sample.length };
  } else lambda = { value: opts.lambda, auto: false };
  report.lambda = lambda;
  const { L, jitter } = cholesky(ne.G, d, lambda.value);
  report.jitter = jitter;
  const maps = ne.rhs.map((B, k) => {
    const h = k === 0 ? hs : anchorsHead!.cols;
    return { data: Float32Array.from(cholSolve(L, d, B, h)), rows: d, cols: h };
  });
  timings.lambda = performance.now() - tl;
  const n = solveIds.length, ht = Pm.cols;
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
    const res = await applyWeights({ n: c, neighbours: { offsets, indices }, weights, anchorsSrc: maps[0], ...opts.kernel });
    scatter(embeddings, res.out, solveIds, from, c, hs);
    timings.combine += performance.now() - t;
    if (anchorsHead) {
      const th = performance.now();
      const rh = await applyWeights({ n: c, neighbours: { offsets, indices }, weights, anchorsSrc: maps[1], ...opts.kernel });
      scatter(headOut!, rh.out, solveIds, from, c, maps[1].cols);
      timings.head += performance.now() - th;
    }
    progress('combine', from + c, n);
  }
}
