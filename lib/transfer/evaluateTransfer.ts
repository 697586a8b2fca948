/**
 * Measuring transfer quality without training an LLM: hold out shared tokens (they have a true source
 * row), treat them as new, rebuild their rows from the remaining shared tokens and compare.
 */
import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { type Backend } from '../kernels/kernels.js';
import { gemm } from '../kernels/linalg.js';
import { allocFloat32 } from '../kernels/matrixOps.js';
import { checkInteger, checkMatrix, checkNumber, type Matrix } from '../kernels/validate.js';
import { isAnchor } from './partition.js';
import { seededSample, STREAM } from './random.js';
import { gatherRowsAsync } from './rows.js';
import { cosine, Yielder } from './stats.js';
import {
  checkSegmentation,
  throwIfAborted,
  TRANSFER_METHODS,
  type TransferAlignment,
  transferEmbeddings,
  type TransferMethod,
  type TransferOptions,
  type TransferReport,
  type TransferSegmentation,
} from './transferEmbeddings.js';

/** One method to evaluate, with its own options; `label` names it in the results (default: the method). */
export interface MethodSpec extends Pick<
  TransferOptions,
  | 'K'
  | 'selection'
  | 'lambda'
  | 'lambdaGrid'
  | 'looSample'
  | 'temperature'
  | 'kernelWidth'
  | 'kernelLinear'
  | 'landmarks'
  | 'looCriterion'
> {
  method: TransferMethod;
  label?: string;
}

/** Arguments of {@link evaluateTransfer}. */
export interface EvaluateArgs {
  /** The LLM's input embeddings S (|V_s| x h_s): the true rows of the held-out tokens. */
  source: Matrix;
  /** The PLM's embeddings P (|V_t| x h_t). */
  target: Matrix;
  /** Auxiliary similarity space aligned with V_t; default `target`. */
  aux?: Matrix;
  /** Per target token: 0 = no auxiliary vector. Default: all present. */
  auxPresent?: Uint8Array;
  /** Which target tokens are shared with the source. */
  alignment: TransferAlignment;
  /**
   * Each target token's source pieces, for method `'fvt'`: compute it with
   * `segmentWithVocabulary(source, target, { exclude: alignment.sourceIdOfTarget })` so that no shared
   * token is segmented into its own source token (that would make FVT trivially exact on held-out
   * tokens). Checked: a usable shared token whose list contains its own source id is rejected (E_ARGUMENT).
   */
  segmentation?: TransferSegmentation;
  /** Methods to compare; default every method of `TRANSFER_METHODS` with its defaults (`'fvt'` only when `segmentation` is given). */
  methods?: ReadonlyArray<TransferMethod | MethodSpec>;
  /** Held-out shared tokens: a fraction in (0, 1) or a count >= 1; default 0.2. */
  holdout?: number;
  /** One split per seed (the seed also seeds each transfer); default [0, 1, 2]. */
  seeds?: readonly number[];
  /**
   * Compute the rank of the true row among all source rows (default true). The exact ranking costs a
   * full sort of |V_s| scores per held-out token; with `false`, `meanRank`, `medianRank`, `pAt1` and
   * `pAt5` are NaN.
   */
  ranks?: boolean;
  /** Kernel backend; default `'auto'`. */
  backend?: Backend;
  /** CPU threads of the kernels; default 0 = all cores. */
  threads?: number;
  /** Cancels the evaluation (rejects with SaltError `E_ABORTED`). */
  signal?: AbortSignal;
  /** Called after each (seed, method) run. */
  onProgress?: (done: number, total: number, seed: number, label: string) => void;
}

/** Scores of one method: predictions for the held-out tokens against their true source rows. */
export interface MethodScores {
  /** Mean cosine similarity of prediction and true row. */
  meanCosine: number;
  /** Mean relative L2 error ||pred - true|| / ||true||. */
  meanRelL2: number;
  /** Mean rank of the true row among all source rows by cosine to the prediction (1 = best). */
  meanRank: number;
  /** Median of those ranks. */
  medianRank: number;
  /** Share of held-out tokens whose true row ranks first (P@1). */
  pAt1: number;
  /** Share whose true row ranks in the top 5 (P@5). */
  pAt5: number;
}

/** Results of one seed. */
export interface SeedEvaluation {
  seed: number;
  /** Held-out tokens (evaluated). */
  heldOut: number;
  /** Their target ids, in evaluation order. */
  heldOutIds: Int32Array;
  /** Anchors the methods could use. */
  anchors: number;
  /** Shared tokens neither held out nor used as anchors because they share a source row with a held-out token. */
  excluded: number;
  /** Per method label: scores, the lambda used (where there is one) and the transfer report. */
  methods: Record<string, MethodScores & { lambda?: number; report: TransferReport }>;
}

/** Result of {@link evaluateTransfer}. */
export interface EvaluationResult {
  /** Method labels, in the order given. */
  labels: string[];
  /** Per seed. */
  seeds: SeedEvaluation[];
  /** Per method label: each score averaged over the seeds (for ranks: mean of the per-seed mean / median). */
  mean: Record<string, MethodScores>;
  /** Number of source rows the ranks are taken among. */
  sourceRows: number;
}

/** Rows scaled to unit L2 norm (float64 sums; zero rows stay zero), giving the event loop turns. */
async function unitRows(m: Matrix): Promise<Float32Array> {
  const out = allocFloat32(m.rows * m.cols);
  const y = new Yielder();
  for (let i = 0; i < m.rows; i++) {
    if ((i & 1023) === 1023) await y.tick();
    let q = 0;
    for (let j = 0; j < m.cols; j++) q += m.data[i * m.cols + j] * m.data[i * m.cols + j];
    const inv = q > 0 ? 1 / Math.sqrt(q) : 0;
    for (let j = 0; j < m.cols; j++) out[i * m.cols + j] = m.data[i * m.cols + j] * inv;
  }
  return out;
}

/**
 * Rank (1 = best) of row `trueIds[i]` of `source` among all source rows by cosine to `pred` row i:
 * 1 + the rows scoring higher + the rows of lower index scoring the same (ties by ascending index).
 * Scores come from one native float32 matrix product of the unit rows per tile of predictions
 * (never an n x |V_s| matrix at once); the counting runs in JavaScript.
 */
export async function trueRowRanks(
  pred: Matrix,
  source: Matrix,
  trueIds: Int32Array,
  kernel: { backend?: Backend; threads?: number } = {},
): Promise<Int32Array> {
  const n = pred.rows,
    m = source.rows,
    h = pred.cols;
  const ranks = new Int32Array(n);
  if (n === 0) return ranks;
  const S = { data: await unitRows(source), rows: m, cols: h, t: true };
  const P = await unitRows(pred);
  const tile = Math.max(1, Math.min(n, Math.floor((1 << 22) / m)));
  const y = new Yielder();
  for (let from = 0; from < n; from += tile) {
    const c = Math.min(tile, n - from);
    const scores = await gemm({ data: P.subarray(from * h, (from + c) * h), rows: c, cols: h }, S, {
      threads: kernel.threads,
    });
    for (let i = 0; i < c; i++) {
      await y.tick();
      const want = trueIds[from + i],
        row = i * m,
        mine = scores[row + want];
      let rank = 1;
      for (let j = 0; j < m; j++) {
        const v = scores[row + j];
        if (v > mine || (v === mine && j < want)) rank++;
      }
      ranks[from + i] = rank;
    }
  }
  return ranks;
}

/**
 * Evaluates transfer methods on held-out shared tokens. For each seed: a seeded sample of the shared
 * tokens usable as anchors (not special, with an aux vector) is held out; shared tokens with the same
 * source row as a held-out token are excluded too (their row would leak the answer); each method runs
 * with the remaining anchors only (so `lambda: 'auto'` tunes on anchors, never on held-out tokens), and
 * its predictions are compared with the true source rows.
 *
 * Only the anchors and the held-out tokens are transferred (new tokens of the vocabulary do not
 * influence each other's rows, so the result is the same as a full transfer restricted to them).
 *
 * @throws SaltRangeError `E_ARGUMENT` for a bad holdout / seeds / method; SaltError `E_ARGUMENT` when
 *   no anchors would remain, when `'fvt'` is asked for without `segmentation`, or when a shared token's
 *   segmentation contains its own source id; whatever {@link transferEmbeddings} throws.
 */
export async function evaluateTransfer(args: EvaluateArgs): Promise<EvaluationResult> {
  if (typeof args !== 'object' || args === null)
    throw new SaltTypeError(`evaluateTransfer expects an argument object, received ${describe(args)}`);
  const S = checkMatrix('source', args.source);
  const Pm = checkMatrix('target', args.target);
  const aux = args.aux === undefined ? undefined : checkMatrix('aux', args.aux);
  const sid = args.alignment?.sourceIdOfTarget;
  if (!(sid instanceof Int32Array))
    throw new SaltTypeError(`alignment.sourceIdOfTarget must be an Int32Array, received ${describe(sid)}`);
  if (sid.length !== Pm.rows)
    throw new SaltRangeError(
      `alignment.sourceIdOfTarget must have target.rows = ${Pm.rows} elements, received ${sid.length}`,
      'E_SHAPE',
    );
  const cat = args.alignment.category;
  if (cat !== undefined && !(cat instanceof Uint8Array))
    throw new SaltTypeError(`alignment.category must be a Uint8Array, received ${describe(cat)}`);
  if (cat !== undefined && cat.length !== Pm.rows)
    throw new SaltRangeError(
      `alignment.category must have target.rows = ${Pm.rows} elements, received ${cat.length}`,
      'E_SHAPE',
    );
  const present = args.auxPresent;
  if (present !== undefined && !(present instanceof Uint8Array))
    throw new SaltTypeError(`auxPresent must be a Uint8Array, received ${describe(present)}`);
  if (present !== undefined && present.length !== Pm.rows)
    throw new SaltRangeError(
      `auxPresent must have target.rows = ${Pm.rows} elements, received ${present.length}`,
      'E_SHAPE',
    );
  if (aux && aux.rows !== Pm.rows)
    throw new SaltRangeError(`aux.rows must equal target.rows = ${Pm.rows}, received ${aux.rows}`, 'E_SHAPE');
  const seg = args.segmentation;
  const specs: MethodSpec[] = (args.methods ?? TRANSFER_METHODS.filter((m) => m !== 'fvt' || seg !== undefined)).map(
    (m, i) => {
      if (typeof m === 'string') return { method: m };
      if (typeof m !== 'object' || m === null || typeof m.method !== 'string')
        throw new SaltTypeError(
          `methods[${i}] must be a method name or { method, ...options }, received ${describe(m)}`,
        );
      return m;
    },
  );
  if (specs.length === 0) throw new SaltRangeError('methods must name at least one method, received an empty array');
  const usesFvt = specs.some((s) => s.method === 'fvt');
  if (usesFvt && seg === undefined)
    throw new SaltError(
      'E_ARGUMENT',
      'method "fvt" needs segmentation (segmentWithVocabulary(source, target, { exclude: alignment.sourceIdOfTarget }))',
    );
  if (seg !== undefined) checkSegmentation(seg, Pm.rows, args.source.rows);
  const labels = specs.map((s) => s.label ?? s.method);
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup !== undefined)
    throw new SaltRangeError(`methods must have distinct labels; ${JSON.stringify(dup)} appears twice (give a label)`);
  const seeds = args.seeds ?? [0, 1, 2];
  if (!Array.isArray(seeds) || seeds.length === 0)
    throw new SaltTypeError(`seeds must be a non-empty array of integers, received ${describe(seeds)}`);
  seeds.forEach((s, i) => checkInteger(`seeds[${i}]`, s, 0, 0xffffffff));
  const holdout = args.holdout === undefined ? 0.2 : checkNumber('holdout', args.holdout, 0);
  if (holdout === 0 || (holdout >= 1 && !Number.isInteger(holdout))) {
    throw new SaltRangeError(`holdout must be a fraction in (0, 1) or an integer count >= 1, received ${holdout}`);
  }
  if (args.ranks !== undefined && typeof args.ranks !== 'boolean')
    throw new SaltTypeError(`ranks must be a boolean, received ${describe(args.ranks)}`);
  const kernel = { backend: args.backend, threads: args.threads };

  // Shared tokens usable as anchors.
  const eligible: number[] = [];
  for (let t = 0; t < Pm.rows; t++) {
    if (isAnchor(t, sid, cat, present)) eligible.push(t);
  }
  const E = Int32Array.from(eligible);
  if (seg !== undefined && usesFvt) {
    for (const t of E) {
      for (let e = seg.offsets[t]; e < seg.offsets[t + 1]; e++) {
        if (seg.indices[e] === sid[t]) {
          throw new SaltError(
            'E_ARGUMENT',
            `segmentation of shared target token ${t} contains its own source id ${sid[t]}, which makes FVT trivially exact; compute it with segmentWithVocabulary(source, target, { exclude: alignment.sourceIdOfTarget })`,
          );
        }
      }
    }
  }
  const nHeld = holdout < 1 ? Math.round(holdout * E.length) : holdout;
  if (nHeld < 1 || nHeld >= E.length) {
    throw new SaltError(
      'E_ARGUMENT',
      `holdout ${holdout} selects ${nHeld} of the ${E.length} shared tokens usable as anchors; at least 1 must be held out and at least 1 must remain`,
    );
  }

  const total = seeds.length * specs.length;
  let done = 0;
  const seedResults: SeedEvaluation[] = [];
  for (const seed of seeds) {
    throwIfAborted(args.signal);
    const pick = seededSample(E.length, nHeld, seed, STREAM.holdout);
    const held = Int32Array.from(pick, (i) => E[i]);
    const heldSources = new Set<number>();
    for (const t of held) heldSources.add(sid[t]);
    const isHeld = new Uint8Array(Pm.rows);
    for (const t of held) isHeld[t] = 1;
    const anchors: number[] = [];
    let excluded = 0;
    for (const t of E) {
      if (isHeld[t]) continue;
      if (heldSources.has(sid[t])) excluded++;
      else anchors.push(t);
    }
    if (anchors.length === 0)
      throw new SaltError('E_ARGUMENT', `seed ${seed}: no anchors remain after holding out ${nHeld} shared tokens`);
    // Sub-problem: rows = anchors, then held-out tokens (as new tokens).
    const rows = new Int32Array(anchors.length + held.length);
    rows.set(anchors);
    rows.set(held, anchors.length);
    const subSid = new Int32Array(rows.length).fill(-1);
    for (let i = 0; i < anchors.length; i++) subSid[i] = sid[anchors[i]];
    const subTarget = await gatherRowsAsync(Pm, rows);
    const subAux = aux ? await gatherRowsAsync(aux, rows) : undefined;
    const trueIds = Int32Array.from(held, (t) => sid[t]);
    // Segmentation of the sub-problem: anchors have empty lists (they are copied), held-out tokens their own.
    let subSeg: TransferSegmentation | undefined;
    if (seg !== undefined && usesFvt) {
      const offsets = new Int32Array(rows.length + 1);
      const parts: Int32Array[] = [];
      for (let i = 0; i < rows.length; i++) {
        const t = rows[i];
        const part = i < anchors.length ? new Int32Array(0) : seg.indices.subarray(seg.offsets[t], seg.offsets[t + 1]);
        parts.push(part);
        offsets[i + 1] = offsets[i] + part.length;
      }
      const indices = new Int32Array(offsets[rows.length]);
      parts.forEach((p, i) => indices.set(p, offsets[i]));
      subSeg = { offsets, indices };
    }
    const hs = S.cols,
      off = anchors.length * hs;
    const methods: SeedEvaluation['methods'] = {};
    for (let k = 0; k < specs.length; k++) {
      const { label: _label, ...spec } = specs[k];
      const res = await transferEmbeddings({
        ...spec,
        source: S,
        target: subTarget,
        aux: subAux,
        alignment: { sourceIdOfTarget: subSid },
        ...(spec.method === 'fvt' ? { segmentation: subSeg } : {}),
        seed,
        ...kernel,
        signal: args.signal,
      });
      const pred = { data: res.embeddings.subarray(off, off + held.length * hs), rows: held.length, cols: hs };
      let cos = 0,
        rel = 0;
      // Scored in JavaScript (the sums keep their order), giving the event loop a turn every few ms.
      const y = new Yielder();
      for (let i = 0; i < held.length; i++) {
        if ((i & 15) === 15) await y.tick();
        const to = trueIds[i] * hs;
        cos += cosine(pred.data, i * hs, S.data, to, hs);
        let d2 = 0,
          t2 = 0;
        for (let j = 0; j < hs; j++) {
          const y = S.data[to + j];
          const d = pred.data[i * hs + j] - y;
          d2 += d * d;
          t2 += y * y;
        }
        rel += t2 > 0 ? Math.sqrt(d2 / t2) : 0;
      }
      let rsum = NaN,
        median = NaN,
        top1 = NaN,
        top5 = NaN;
      if (args.ranks !== false) {
        const ranks = await trueRowRanks(pred, S, trueIds, kernel);
        rsum = 0;
        top1 = 0;
        top5 = 0;
        for (const r of ranks) {
          rsum += r;
          if (r === 1) top1++;
          if (r <= 5) top5++;
        }
        const sorted = Int32Array.from(ranks).sort();
        const mid = sorted.length >> 1;
        median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
      }
      methods[labels[k]] = {
        meanCosine: cos / held.length,
        meanRelL2: rel / held.length,
        meanRank: rsum / held.length,
        medianRank: median,
        pAt1: top1 / held.length,
        pAt5: top5 / held.length,
        ...(res.report.lambda ? { lambda: res.report.lambda.value } : {}),
        report: res.report,
      };
      args.onProgress?.(++done, total, seed, labels[k]);
    }
    seedResults.push({ seed, heldOut: held.length, heldOutIds: held, anchors: anchors.length, excluded, methods });
  }
  const mean: Record<string, MethodScores> = {};
  for (const l of labels) {
    const avg = (f: (s: MethodScores) => number) =>
      seedResults.reduce((a, s) => a + f(s.methods[l]), 0) / seedResults.length;
    mean[l] = {
      meanCosine: avg((s) => s.meanCosine),
      meanRelL2: avg((s) => s.meanRelL2),
      meanRank: avg((s) => s.meanRank),
      medianRank: avg((s) => s.medianRank),
      pAt1: avg((s) => s.pAt1),
      pAt5: avg((s) => s.pAt5),
    };
  }
  return { labels, seeds: seedResults, mean, sourceRows: S.rows };
}

/** A Markdown table of the mean scores (and the lambdas chosen per seed); '–' for ranks not computed. */
export function formatEvaluation(result: EvaluationResult): string {
  const lines = [
    '| method | mean cosine | rel. L2 | mean rank | median rank | P@1 | P@5 | lambda per seed |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const l of result.labels) {
    const m = result.mean[l];
    const lambdas = result.seeds.map((s) => s.methods[l].lambda).filter((v) => v !== undefined);
    const f = (v: number, d: number) => (Number.isNaN(v) ? '–' : v.toFixed(d));
    lines.push(
      `| ${l} | ${f(m.meanCosine, 3)} | ${f(m.meanRelL2, 3)} | ${f(m.meanRank, 1)} | ${f(m.medianRank, 1)} | ${f(m.pAt1, 3)} | ${f(m.pAt5, 3)} | ${lambdas.length ? lambdas.join(', ') : '–'} |`,
    );
  }
  return lines.join('\n');
}
