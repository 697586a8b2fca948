/**
 * Loading for the folder pipeline: the source LLM's matrices, a target PLM's embeddings, the aux
 * space given as a matrix, and {@link prepareTarget} (the one preparation of a target, used by
 * transfer, evaluate and inspect: tokenizer, alignment and aux file through a {@link Preparer}, the
 * PLM's embeddings here).
 */
import { describe, SaltError, SaltTypeError } from '../errors.js';
import { optionalFile, readableFolder } from '../inputFiles.js';
import { HfModel } from '../io/hfModel.js';
import { releaseFloat32 } from '../kernels/matrixOps.js';
import type { Matrix } from '../kernels/validate.js';
import type { Alignment, AlignOptions } from '../tokenizer/align.js';
import type { Segmentation } from '../tokenizer/segment.js';
import { type AuxInfo, countPresent } from './auxSpace.js';
import { openPreparer, type PreparedTokens, type PrepareOptions, type Preparer } from './preparer.js';

/**
 * The auxiliary similarity space of the target tokens: a fastText `.bin` (vectors composed from
 * character n-grams, so every token with a non-empty string has one), a `.vec` / GloVe `.txt` text
 * file (looked up by the token's string), or a matrix aligned with the target vocabulary
 * (`present[t] = 0`: token t has no vector). Default: the target model's own input embeddings.
 */
export type AuxSpec = string | { data: Float32Array; rows: number; cols: number; present?: Uint8Array };

/** The source side, loaded once for all targets. */
export interface LoadedSource {
  folder: string;
  model: HfModel;
  embeddings: Matrix;
  head: Matrix | null;
}

/** One target, prepared: the PLM's embeddings, the aux space, the alignment (and segmentation / lookup when asked). */
export interface PreparedTarget {
  target: Matrix;
  aux?: Matrix;
  auxPresent?: Uint8Array;
  auxInfo: AuxInfo;
  alignment: Alignment;
  targetVocabSize: number;
  segmentation?: Segmentation;
  lookup?: PreparedTokens['lookup'];
  /** The target folder's tokenizer facts for the writer (see {@link PreparedTokens.tokenizerInfo}). */
  tokenizerInfo?: PreparedTokens['tokenizerInfo'];
}

/** Checks a model-folder argument (the one home of that rule): a non-empty string naming a readable folder. */
export async function checkModelFolder(value: unknown, what: 'source' | 'target'): Promise<string> {
  if (typeof value !== 'string' || value === '')
    throw new SaltTypeError(`${what} must be a model folder path, received ${describe(value)}`);
  await readableFolder(value, what);
  return value;
}

/**
 * Opens the source LLM folder: input embeddings and (untied) head. Close `model` when done.
 * `onOpened` is called with the model once its headers are read, before its matrices are.
 */
export async function loadSource(folder: string, onOpened?: (model: HfModel) => void): Promise<LoadedSource> {
  await checkModelFolder(folder, 'source');
  const model = await HfModel.open(folder);
  const read: Float32Array[] = [];
  try {
    onOpened?.(model);
    const inp = model.embeddings.input;
    const [rows, cols] = inp.shape;
    // In shared memory: gigabytes of it do not force a garbage collection on the calling thread
    // (see ReadFloat32Options.shared); releaseSource gives its pages back.
    const embeddings = { data: await model.readInputEmbedding({ shared: true }), rows, cols };
    read.push(embeddings.data);
    const h = model.embeddings.head;
    let head: Matrix | null = null;
    if (h && !model.embeddings.tied) {
      head = { data: await model.readOutputHead({ shared: true }), rows: h.shape[0], cols: h.shape[1] };
      read.push(head.data);
    }
    return { folder, model, embeddings, head };
  } catch (err) {
    await Promise.all([model.close(), releaseMatrices(read)]);
    throw err;
  }
}

/** Gives back the pages of matrices no one reads again (see `releaseFloat32`); never rejects. */
export function releaseMatrices(matrices: readonly Float32Array[]): Promise<void> {
  return Promise.all(matrices.map((m) => releaseFloat32(m))).then(
    () => undefined,
    () => undefined, // an optimisation only: V8 frees the memory at its next full collection anyway
  );
}

/**
 * Gives back the pages of the source's matrices, which {@link loadSource} reads into shared memory
 * that V8 frees only at its next full collection: once nothing reads them again. Resolves when
 * they are given back (off the calling thread; callers need not wait).
 */
export function releaseSource(src: LoadedSource): Promise<void> {
  return releaseMatrices(src.head ? [src.embeddings.data, src.head.data] : [src.embeddings.data]);
}

/** Checks an aux file path: a regular file (E_NOT_FOUND when missing; see `optionalFile`). */
export async function checkAuxFile(path: string): Promise<void> {
  if (!(await optionalFile(path, 'aux file')))
    throw new SaltError('E_NOT_FOUND', `aux file ${JSON.stringify(path)} does not exist`);
}

/** The aux space of a target vocabulary of `n` tokens when given as a matrix or left out (see {@link AuxSpec}); null for a file (see `loadAuxFile`). */
export function auxMatrix(
  spec: AuxSpec | undefined,
  n: number,
): { aux?: Matrix; present?: Uint8Array; info: AuxInfo } | null {
  if (spec === undefined) return { info: { kind: 'target-embeddings', present: n } };
  if (typeof spec === 'object' && spec !== null && spec.data instanceof Float32Array) {
    if (spec.rows !== n || spec.data.length !== spec.rows * spec.cols)
      throw new SaltError(
        'E_SHAPE',
        `aux must be a matrix with one row per target token (${n} rows), received ${spec.rows} x ${spec.cols} with ${spec.data.length} values`,
      );
    if (spec.present !== undefined && (!(spec.present instanceof Uint8Array) || spec.present.length !== n))
      throw new SaltTypeError(`aux.present must be a Uint8Array of length ${n}, received ${describe(spec.present)}`);
    const present = spec.present ?? new Uint8Array(n).fill(1);
    return {
      aux: { data: spec.data, rows: spec.rows, cols: spec.cols },
      present,
      info: { kind: 'matrix', present: countPresent(present) },
    };
  }
  if (typeof spec !== 'string' || spec === '')
    throw new SaltTypeError(
      `aux must be a file path (.bin, .vec, .txt) or a matrix { data, rows, cols, present? }, received ${describe(spec)}`,
    );
  return null;
}

/** The first `vocabSize` rows of a PLM folder's input embeddings (rows past the tokenizer's size are padding, not part of the new vocabulary). */
export async function readTargetEmbeddings(folder: string, vocabSize: number): Promise<Matrix> {
  const tm = await HfModel.open(folder);
  try {
    const [rows, cols] = tm.embeddings.input.shape;
    if (vocabSize > rows)
      throw new SaltError(
        'E_SHAPE',
        `${folder}: the tokenizer has ${vocabSize} tokens but the input embedding ${JSON.stringify(tm.embeddings.input.name)} has only ${rows} rows`,
      );
    const all = await tm.readInputEmbedding();
    // A view, not a copy (Qwen3's 151,936 x 1,024 embedding would be 0.6 GB copied on the calling thread).
    return { data: rows === vocabSize ? all : all.subarray(0, vocabSize * cols), rows: vocabSize, cols };
  } finally {
    await tm.close();
  }
}

/** One target prepared through a {@link Preparer}: tokenizer, alignment and aux file there, the PLM's embeddings here. */
export async function prepareTarget(
  preparer: Preparer,
  tf: string,
  ax: AuxSpec | undefined,
  align: AlignOptions,
  time: (k: 'loadTarget' | 'align' | 'aux', ms: number) => void,
  options: PrepareOptions = {},
): Promise<PreparedTarget> {
  await checkModelFolder(tf, 'target');
  const auxFile = typeof ax === 'string' && ax !== '' ? ax : undefined;
  if (auxFile !== undefined) await checkAuxFile(auxFile);
  const tok = await preparer.prepare(tf, auxFile, align, options);
  const t1 = performance.now();
  const target = await readTargetEmbeddings(tf, tok.targetVocabSize);
  time('loadTarget', tok.timings.loadTarget + (performance.now() - t1));
  time('align', tok.timings.align);
  const am =
    auxFile === undefined
      ? auxMatrix(ax, tok.targetVocabSize)!
      : { aux: tok.aux, present: tok.auxPresent, info: tok.auxInfo! };
  time('aux', tok.timings.aux);
  const alignment: Alignment = { sourceIdOfTarget: tok.sourceIdOfTarget, category: tok.category, report: tok.report };
  return {
    target,
    aux: am.aux,
    auxPresent: am.present,
    auxInfo: am.info,
    alignment,
    targetVocabSize: tok.targetVocabSize,
    segmentation: tok.segmentation,
    lookup: tok.lookup,
    tokenizerInfo: tok.tokenizerInfo,
  };
}

/** The source side of a run: its matrices, and a {@link Preparer} holding its parsed vocabulary. */
export interface OpenedSource {
  src: LoadedSource;
  preparer: Preparer;
  /** Closes both, and gives back the pages of the source's matrices (nothing may read them after). */
  close(): Promise<void>;
}

/**
 * Opens the source side once for transfer, evaluate and inspect: the matrices here and the
 * vocabulary in the preparer (a worker thread when installed), in parallel; E_SHAPE when the source
 * tokenizer has more tokens than the input embedding has rows. On failure nothing stays open
 * (what `onOpened`, called as in {@link loadSource}, started is the caller's to undo).
 * `onPreparer` is called with the preparer as soon as it holds the source's vocabulary, while the
 * matrices may still be loading (a target can be prepared meanwhile); when opening fails the
 * preparer is closed, so what was asked of it fails too. The tokenizers of the target folders in
 * `preload` are parsed meanwhile too (see {@link openPreparer}).
 */
export async function openSource(
  folder: string,
  worker = true,
  onOpened?: (model: HfModel) => void,
  onPreparer?: (preparer: Preparer) => void,
  preload: readonly string[] = [],
): Promise<OpenedSource> {
  await checkModelFolder(folder, 'source');
  const [srcResult, prepResult] = await Promise.allSettled([
    loadSource(folder, onOpened),
    openPreparer(folder, worker, preload).then((p) => {
      onPreparer?.(p);
      return p;
    }),
  ]);
  if (srcResult.status === 'rejected' || prepResult.status === 'rejected') {
    if (srcResult.status === 'fulfilled')
      await Promise.all([srcResult.value.model.close(), releaseSource(srcResult.value)]);
    if (prepResult.status === 'fulfilled') await prepResult.value.close();
    throw srcResult.status === 'rejected' ? srcResult.reason : (prepResult as PromiseRejectedResult).reason;
  }
  const src = srcResult.value;
  const preparer = prepResult.value;
  // Nothing reads the source's matrices after close(): their pages are given back then.
  const close = async () => {
    await Promise.all([src.model.close(), preparer.close(), releaseSource(src)]);
  };
  if (preparer.sourceVocabSize > src.embeddings.rows) {
    await close();
    throw new SaltError(
      'E_SHAPE',
      `${folder}: the tokenizer has ${preparer.sourceVocabSize} tokens but the input embedding ${JSON.stringify(src.model.embeddings.input.name)} has only ${src.embeddings.rows} rows`,
    );
  }
  return { src, preparer, close };
}
