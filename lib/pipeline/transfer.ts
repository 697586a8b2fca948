/**
 * Folder-level transfer: a Hugging Face LLM folder (source) gets the vocabulary of a PLM folder
 * (target). Loads both, aligns the vocabularies, loads the auxiliary space, runs
 * {@link transferEmbeddings} and writes the new model folder with {@link writeTransferredModel}.
 * See docs/transfer.md ("Folder-level transfer").
 */
import { resolve } from 'node:path';

import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { type FloatDtype, isFloatDtype } from '../io/dtype.js';
import {
  type PendingModelWrite,
  startModelWrite,
  type TransferredModelReport,
  writeTransferredModel,
} from '../io/writeModel.js';
import { type AuxInfo } from './auxSpace.js';
import { type AuxSpec, checkAuxFile, openSource, type PreparedTarget, prepareTarget, releaseMatrices } from './load.js';
import { type Preparer } from './preparer.js';
export type { AuxSpec } from './load.js';
import { readableFolder } from '../inputFiles.js';
import { checkOutputPlacement, checkReplaceable, REPORT_FILE } from '../io/atomic.js';
import { info } from '../kernels/info.js';
import { type AlignmentReport, type AlignOptions } from '../tokenizer/align.js';
import { type Resolved, resolveOptions } from '../transfer/options.js';
import {
  prepareSource,
  throwIfAborted,
  type TransferOptions,
  type TransferReport,
  transferResolved,
  type TransferStage,
} from '../transfer/transferEmbeddings.js';

/** Stages of a folder-level transfer, in order; the engine's stages run between `aux` and `write`. */
export type ModelStage = 'load-source' | 'load-target' | 'align' | 'aux' | TransferStage | 'write';

/** A progress event of {@link transfer}. */
export interface TransferProgress {
  /** Index of the target in `targets` (0 for a single target). */
  target: number;
  stage: ModelStage;
  /** Units done and in total (tokens for the engine's search/combine stages; 0/1 and 1/1 otherwise). */
  done: number;
  total: number;
}

/** One target of {@link transfer}. */
export interface TransferTarget {
  /** The PLM folder: its tokenizer becomes the new vocabulary, its input embeddings the regression inputs. */
  target: string;
  /** Output folder (must not exist unless `overwrite`). */
  out: string;
  /** Auxiliary space for this target; default the shared `aux` option, else the PLM's embeddings. */
  aux?: AuxSpec;
}

/** Arguments of {@link transfer}. */
export interface TransferModelArgs extends Omit<TransferOptions, 'onProgress' | 'signal' | 'method'> {
  /** The LLM folder (config.json, safetensors weights, tokenizer files). */
  source: string;
  /** A single PLM folder (with `out`); or use `targets`. */
  target?: string;
  /** Output folder of the single target. */
  out?: string;
  /** Several targets, the source loaded once. Exclusive with `target` / `out`. */
  targets?: readonly TransferTarget[];
  /** Auxiliary space (see {@link AuxSpec}); default the PLM's input embeddings. */
  aux?: AuxSpec;
  /** Method (default `'salt'`). */
  method?: TransferOptions['method'];
  /** `'paper'`: exactly the paper's algorithm (method `'salt-paper'`: sparsemax, least squares, lambda 0). Exclusive with `method`. */
  preset?: 'paper';
  /** Options of `alignVocabularies` (e.g. `caseFold`). */
  align?: AlignOptions;
  /** Replace existing output folders (default false: E_EXISTS). */
  overwrite?: boolean;
  /** Pad the written vocabulary up to a multiple of this (extra rows: the mean row; see `writeTransferredModel`). Default 1 (no padding). */
  padToMultipleOf?: number;
  /** Float dtype of the new embedding and head: `'F32'`, `'F16'` or `'BF16'`; default the source embedding's. */
  dtype?: FloatDtype;
  /** Cancels: rejects with SaltError `E_ABORTED` at the next stage or chunk; the target being transferred leaves no folder (targets already completed stay). */
  signal?: AbortSignal;
  /** Progress events. */
  onProgress?: (event: TransferProgress) => void;
  /**
   * Parse the tokenizer files, align the vocabularies and read aux files in a worker thread (default
   * true; used when the compiled worker script exists, i.e. from dist/). false: on the calling thread.
   */
  worker?: boolean;
}

/** What {@link transfer} did for one target; also written as `salt-transfer-report.json` in the output folder. */
export interface ModelTransferReport {
  source: string;
  target: string;
  output: string;
  /** Vocabulary sizes and embedding widths. */
  shapes: {
    sourceVocab: number;
    sourceRows: number;
    sourceWidth: number;
    headWidth: number | null;
    tied: boolean;
    targetVocab: number;
    targetWidth: number;
    auxWidth: number;
  };
  /** The auxiliary space used and how many target tokens have a vector in it. */
  aux: AuxInfo;
  /** Where the tokenizer parsing, the alignment and aux-file loading ran: a worker thread, or the calling thread. */
  prepareThread: 'worker' | 'main';
  /** Counts of `alignVocabularies` (samples left out). */
  alignment: Omit<AlignmentReport, 'samples'>;
  /** The engine's report. */
  transfer: TransferReport;
  /** What was written. */
  written: TransferredModelReport;
  /** Input that was accepted but looks wrong (e.g. a tokenizer much smaller than its embedding); empty when none. */
  warnings: string[];
  /** Wall time per stage (ms), including I/O; `engine` is the engine's total (its stages are in `transfer.timings`). The first target's `loadTarget`, `align` and `aux` overlap `loadSource`. */
  timings: Record<'loadSource' | 'loadTarget' | 'align' | 'aux' | 'engine' | 'write' | 'total', number>;
}

/** The file name of the report written into each output folder. */
export { REPORT_FILE };

/** Largest `padToMultipleOf` (real models pad to 8 .. 256). */
export const MAX_PAD_MULTIPLE = 65536;

/**
 * Every check that needs no model loaded, for all targets before any work: the source and each
 * target are readable folders, each aux file a regular file, each output a non-empty path that is
 * not, does not contain and does not lie inside any input, distinct from the other outputs, and
 * either absent or (with `overwrite`) a folder salt-transfer wrote. Old temporary folders of killed
 * runs next to the outputs are removed.
 */
async function checkInputs(source: string, list: readonly TransferTarget[], overwrite: boolean): Promise<void> {
  await readableFolder(source, 'source');
  const inputs: Array<{ path: string; what: string }> = [{ path: source, what: 'source folder' }];
  for (const [i, t] of list.entries()) {
    const label = list.length > 1 ? `target ${i + 1}` : 'target';
    await readableFolder(t.target, label);
    inputs.push({ path: t.target, what: `${label} folder` });
    if (typeof t.aux === 'string') {
      if (t.aux === '') throw new SaltTypeError(`aux must be a file path (.bin, .vec, .txt) or a matrix, received ""`);
      await checkAuxFile(t.aux);
      inputs.push({ path: t.aux, what: 'aux file' });
    }
  }
  const outs = list.map((t) => resolve(t.out));
  if (new Set(outs).size !== outs.length)
    throw new SaltError(
      'E_ARGUMENT',
      `targets must have distinct out folders, received ${outs.map((o) => JSON.stringify(o)).join(', ')}`,
    );
  for (const t of list) {
    await checkOutputPlacement(t.out, inputs);
    await checkReplaceable(resolve(t.out), overwrite);
  }
}

function resolveMethod(args: { method?: TransferOptions['method']; preset?: 'paper' }): TransferOptions['method'] {
  if (args.preset !== undefined) {
    if (args.preset !== 'paper')
      throw new SaltError('E_ARGUMENT', `preset must be "paper", received ${describe(args.preset)}`);
    if (args.method !== undefined && args.method !== 'salt-paper')
      throw new SaltError(
        'E_ARGUMENT',
        `preset "paper" is method "salt-paper"; it cannot be combined with method ${describe(args.method)}`,
      );
    return 'salt-paper';
  }
  return args.method;
}

/** A checked {@link transfer} call: options resolved and every input checked; made by {@link planTransfer}. */
export interface TransferPlan {
  readonly source: string;
  readonly list: readonly TransferTarget[];
  readonly method: TransferOptions['method'];
  /** The engine's options (method excluded). */
  readonly options: Readonly<Omit<TransferOptions, 'onProgress' | 'signal' | 'method'>>;
  /** The engine's options, resolved once (defaults filled in); the engine takes them as they are. */
  readonly engine: Readonly<Resolved>;
  readonly align: AlignOptions;
  readonly overwrite: boolean;
  readonly padToMultipleOf?: number;
  readonly dtype?: FloatDtype;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: TransferProgress) => void;
  readonly worker: boolean;
}

const PLANS = new WeakSet<TransferPlan>();

/**
 * Resolves and checks the arguments of {@link transfer} without loading any model: the options and
 * their combination, and every input and output path (see `checkInputs`). {@link transfer} runs
 * the frozen plan without checking again. E_ARGUMENT / E_TYPE for a bad value, E_NOT_FOUND for a
 * missing input, E_EXISTS for an output that may not be replaced, E_NO_CUDA for backend "cuda"
 * without CUDA.
 */
export async function planTransfer(args: TransferModelArgs): Promise<TransferPlan> {
  if (args === null || typeof args !== 'object')
    throw new SaltTypeError(`transfer() takes an options object, received ${describe(args)}`);
  const {
    source,
    target,
    out,
    targets,
    aux,
    preset,
    align,
    overwrite,
    padToMultipleOf,
    dtype,
    signal,
    onProgress,
    worker,
    ...options
  } = args;
  const method = resolveMethod({ method: args.method, preset });
  delete (options as { method?: unknown }).method;
  // The engine's options, resolved once here (errors before any model is loaded); the engine takes them as they are.
  const engine = Object.freeze(resolveOptions({ ...options, method }));
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new SaltTypeError(`signal must be an AbortSignal, received ${describe(signal)}`);
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw new SaltTypeError(`onProgress must be a function, received ${describe(onProgress)}`);
  let list: TransferTarget[];
  if (targets !== undefined) {
    if (target !== undefined || out !== undefined)
      throw new SaltError('E_ARGUMENT', 'give either target + out or targets, not both');
    if (!Array.isArray(targets) || targets.length === 0)
      throw new SaltTypeError(
        `targets must be a non-empty array of { target, out, aux? }, received ${describe(targets)}`,
      );
    list = targets.map((t, i) => {
      if (
        t === null ||
        typeof t !== 'object' ||
        typeof t.target !== 'string' ||
        t.target === '' ||
        typeof t.out !== 'string' ||
        t.out === ''
      ) {
        throw new SaltTypeError(
          `targets[${i}] must be { target: string, out: string, aux? } with non-empty paths, received ${describe(t)}`,
        );
      }
      return { target: t.target, out: t.out, aux: t.aux ?? aux };
    });
  } else {
    if (typeof target !== 'string' || target === '')
      throw new SaltTypeError(`target must be a model folder path, received ${describe(target)}`);
    if (typeof out !== 'string' || out === '')
      throw new SaltTypeError(`out must be an output folder path, received ${describe(out)}`);
    list = [{ target, out, aux }];
  }
  if (
    padToMultipleOf !== undefined &&
    (!Number.isSafeInteger(padToMultipleOf) || padToMultipleOf < 1 || padToMultipleOf > MAX_PAD_MULTIPLE)
  ) {
    throw new SaltRangeError(
      `padToMultipleOf must be an integer in [1, ${MAX_PAD_MULTIPLE}], received ${describe(padToMultipleOf)}`,
    );
  }
  if (dtype !== undefined && !isFloatDtype(dtype))
    throw new SaltRangeError(`dtype must be "F32", "F16" or "BF16", received ${describe(dtype)}`);
  if (options.backend === 'cuda' && !info().cuda.available)
    throw new SaltError('E_NO_CUDA', `backend "cuda" was requested but CUDA is not available: ${info().cuda.reason}`);
  await checkInputs(source, list, overwrite === true);
  const plan: TransferPlan = Object.freeze({
    source,
    list: Object.freeze(list.map((t) => Object.freeze(t))),
    method,
    options: Object.freeze(options),
    engine,
    align: Object.freeze({ ...(align ?? {}) }),
    overwrite: overwrite === true,
    padToMultipleOf,
    dtype,
    signal,
    onProgress,
    worker: worker !== false,
  });
  PLANS.add(plan);
  return plan;
}

/**
 * Transfers an LLM folder to the vocabulary of one or more PLM folders and writes a new model folder
 * per target (config, weights, tokenizer consistent; loads as a Hugging Face model), with
 * `salt-transfer-report.json` inside.
 *
 * Steps per target: load the PLM (tokenizer + input embeddings) -> align the vocabularies -> load the
 * aux space -> {@link transferEmbeddings} (copy shared rows and special tokens by role, the method for
 * every other token, seeded N(mean, std) for tokens without an aux vector, the same coefficients on an
 * untied head) -> write atomically. The source is loaded once for all targets.
 *
 * @returns One report per target, in the order of `targets` (a single-element array for `target`).
 * @throws SaltError `E_NOT_FOUND` (a folder or file is missing), `E_EXISTS` (an output exists and
 *   `overwrite` is not set; checked for every target before any work), `E_ABORTED`, and the errors of
 *   the loaders, the alignment, the engine and the writer.
 */
export async function transfer(args: TransferModelArgs | TransferPlan): Promise<ModelTransferReport[]> {
  const plan = PLANS.has(args as TransferPlan) ? (args as TransferPlan) : await planTransfer(args as TransferModelArgs);
  const { source, list, method, align, overwrite, padToMultipleOf, dtype, signal, onProgress, worker } = plan;
  throwIfAborted(signal);
  const emit = (i: number, stage: ModelStage, done: number, total: number) =>
    onProgress?.({ target: i, stage, done, total });
  const tAll = performance.now();
  emit(0, 'load-source', 0, 1);
  // The tokenizer files are parsed (and the vocabularies aligned) in a worker thread when available.
  // The first output is started as soon as the source's headers are read: its shards without a
  // vocabulary-sized tensor, and the unchanged tensors of the others, are copied into place while
  // the source's matrices load.
  // The first target is prepared (tokenizer parsed and aligned, embeddings read) as soon as the
  // source's vocabulary is, while the source's matrices are still loading.
  type TargetStage = 'loadTarget' | 'align' | 'aux';
  const startTarget = (preparer: Preparer, i: number, time: (k: TargetStage, ms: number) => void) =>
    prepareTarget(preparer, list[i].target, list[i].aux, align ?? {}, time, { segment: method === 'fvt' });
  let first: Promise<PendingModelWrite> | undefined;
  let firstPair: Promise<PreparedTarget> | undefined;
  const firstTimes = new Map<TargetStage, number>();
  const opened = await openSource(
    source,
    worker,
    (model) => {
      first = startModelWrite(model, list[0].out, { overwrite });
      first.catch(() => undefined); // awaited below
    },
    (preparer) => {
      firstPair = startTarget(preparer, 0, (k, ms) => firstTimes.set(k, ms));
      firstPair.catch(() => undefined); // awaited below
    },
    [list[0].target],
  ).catch(async (err: unknown) => {
    await firstPair?.catch(() => undefined);
    await (await first?.catch(() => undefined))?.discard();
    throw err;
  });
  const { src, preparer } = opened;
  const loadSourceMs = performance.now() - tAll;
  emit(0, 'load-source', 1, 1);
  // The engine's source-only checks and statistics start now, while the first target is still
  // being prepared, and serve every target.
  const sourcePrep = prepareSource(src.embeddings, src.head ?? undefined);
  sourcePrep.catch(() => undefined); // awaited by the engine, and below
  const reports: ModelTransferReport[] = [];
  try {
    for (let i = 0; i < list.length; i++) {
      const t0 = performance.now();
      const { target: tf, out: of } = list[i];
      throwIfAborted(signal);
      const times = {
        loadSource: i === 0 ? loadSourceMs : 0,
        loadTarget: 0,
        align: 0,
        aux: 0,
        engine: 0,
        write: 0,
        total: 0,
      };
      // The source's shards without a vocabulary-sized tensor, and the unchanged tensors of the shards
      // to rewrite, are copied into the output's temporary folder in the background (reflink or
      // in-kernel copies) while the target loads and the engine runs.
      const pending: PendingModelWrite =
        i === 0 && first ? await first : await startModelWrite(src.model, of, { overwrite });
      // The engine's new matrices, in shared memory (no collection forced by their gigabytes); their
      // pages are given back once they are written.
      const written: Float32Array[] = [];
      try {
        emit(i, 'load-target', 0, 1);
        const time = (k: TargetStage, ms: number) => {
          times[k] = ms;
          emit(i, k === 'loadTarget' ? 'load-target' : k, 1, 1);
        };
        let pair: PreparedTarget;
        if (i === 0 && firstPair) {
          pair = await firstPair;
          for (const [k, ms] of firstTimes) time(k, ms);
        } else pair = await startTarget(preparer, i, time);
        // The last target is prepared: the preparation worker's heap (the parsed tokenizers, hundreds
        // of MB for 150k-token vocabularies) is released now, not after the write.
        if (i === list.length - 1) await preparer.close();
        throwIfAborted(signal);
        let t1 = performance.now();
        const res = await transferResolved(
          {
            source: src.embeddings,
            sourceHead: src.head ?? undefined,
            target: pair.target,
            aux: pair.aux,
            auxPresent: pair.auxPresent,
            alignment: pair.alignment,
            ...(method === 'fvt' ? { segmentation: pair.segmentation } : {}),
            signal,
            onProgress: (stage, done, total) => emit(i, stage, done, total),
          },
          plan.engine,
          sourcePrep,
          true,
        );
        written.push(res.embeddings, ...(res.head ? [res.head] : []));
        times.engine = performance.now() - t1;
        throwIfAborted(signal);
        t1 = performance.now();
        emit(i, 'write', 0, 1);
        const { samples: _samples, ...alignCounts } = pair.alignment.report;
        void _samples;
        const warnings: string[] = [];
        if (pair.targetVocabSize < pair.target.rows / 2) {
          warnings.push(
            `the target tokenizer has ${pair.targetVocabSize} tokens, fewer than half of the ${pair.target.rows} rows of the target's input embedding: check that ${JSON.stringify(tf)} holds the tokenizer of that model`,
          );
        }
        const makeReport = (w: TransferredModelReport): ModelTransferReport => ({
          source,
          target: tf,
          output: w.output,
          shapes: {
            sourceVocab: preparer.sourceVocabSize,
            sourceRows: src.embeddings.rows,
            sourceWidth: src.embeddings.cols,
            headWidth: src.head ? src.head.cols : null,
            tied: src.head === null,
            targetVocab: pair.targetVocabSize,
            targetWidth: pair.target.cols,
            auxWidth: pair.aux ? pair.aux.cols : pair.target.cols,
          },
          aux: pair.auxInfo,
          prepareThread: preparer.thread,
          alignment: alignCounts,
          transfer: res.report,
          written: w,
          warnings,
          timings: { ...times },
        });
        let report: ModelTransferReport | undefined;
        await writeTransferredModel({
          source: src.model,
          output: of,
          tokenizer: tf,
          tokenizerInfo: pair.tokenizerInfo,
          inputEmbedding: res.embeddings,
          outputHead: res.head,
          sourceIdOfTarget: pair.alignment.sourceIdOfTarget,
          padToMultipleOf,
          dtype,
          overwrite,
          signal,
          pending,
          // The report goes into the folder before it is published, with the timings up to then.
          report: (w) => {
            times.write = performance.now() - t1;
            times.total = performance.now() - t0 + (i === 0 ? loadSourceMs : 0);
            report = makeReport(w);
            return report;
          },
        });
        emit(i, 'write', 1, 1);
        reports.push(report!);
      } finally {
        await Promise.all([pending.discard(), releaseMatrices(written)]);
      }
    }
  } finally {
    // The first output's write, when the loop ended before taking it (a no-op once published).
    await (await first?.catch(() => undefined))?.discard();
    await sourcePrep.catch(() => undefined);
    await opened.close();
    await firstPair?.catch(() => undefined); // fails once the preparer is closed, if not taken
  }
  return reports;
}
