/**
 * Writing a transferred model folder: {@link writeTransferredModel} copies every tensor of the source
 * LLM except the embedding (and an untied head), writes the new ones, updates config.json,
 * generation_config.json and the tokenizer files, and publishes the folder atomically with its
 * report. Reading model folders is in ./hfModel.ts.
 */
import { constants as fsConstants } from 'node:fs';
import { copyFile, type FileHandle, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { readUtf8File } from '../inputFiles.js';
import {
  checkOutputPlacement,
  checkReplaceable,
  cleanStaleTemps,
  createFolders,
  ioError,
  pathExists,
  publishFolder,
  REPORT_FILE,
  syncFile,
  syncFolder,
  tempNameFor,
  writeBytesAtomic,
} from './atomic.js';
import { SAFETENSORS_INDEX, type SafetensorsCheckpoint, writeCheckpoint } from './checkpoint.js';
import { type FloatDtype, isFloatDtype, nativeMatrixOps } from './dtype.js';
import {
  readJsonFile,
  readTokenizerInfo,
  type SpecialTokenIds,
  TOKENIZER_FILES,
  type TokenizerInfo,
} from './hfConfig.js';
import { HfModel, sameBytes } from './hfModel.js';
import {
  CHUNK_BYTES,
  copyRangeAt,
  openDirect,
  SafetensorsFile,
  safetensorsHeaderBound,
  type SafetensorsLayout,
  safetensorsLayout,
  tensorByteSize,
  type TensorToWrite,
  writeBytesAt,
  writeSafetensors,
  writeTensorsAt,
} from './safetensors.js';

/** Options of {@link writeTransferredModel}. */
export interface WriteTransferredModelOptions {
  /** The source LLM folder (or an already opened {@link HfModel}, which is not closed). */
  source: string | HfModel;
  /** Output folder; must not exist unless `overwrite` is true. */
  output: string;
  /** Folder holding the target tokenizer's files (copied into the output). */
  tokenizer: string;
  /**
   * That folder's tokenizer facts when the caller already has them (`transfer()` gets them from the
   * preparation, which parsed the same files); default: read with `readTokenizerInfo`.
   */
  tokenizerInfo?: TokenizerInfo;
  /** New input embedding, row-major [rows, width]; `rows` is the new vocabulary size. */
  inputEmbedding: Float32Array;
  /** New output head [rows, hiddenSize]; required when the source head is untied, refused when tied. */
  outputHead?: Float32Array;
  /** Special-token ids to write into config/generation_config; default: resolved from the target tokenizer. */
  specialTokens?: Partial<SpecialTokenIds>;
  /** Pad the vocabulary up to a multiple of this (extra rows = mean of the given rows). */
  padToMultipleOf?: number;
  /** Replace an existing output folder (default false: E_EXISTS). */
  overwrite?: boolean;
  /**
   * Re-pack the weights into shards of at most this many bytes of tensor data. Default: keep the
   * source's files (same names, each tensor in the same file, in the same order): shards without a
   * vocabulary-sized tensor are copied as they are, the others are rewritten.
   */
  maxShardBytes?: number;
  /**
   * New values of other tensors with a vocabulary-sized dimension (e.g. BERT's
   * `cls.predictions.bias`, BART's `final_logits_bias`, phi-2's `lm_head.bias`), by name: row-major,
   * the source tensor's shape with the vocabulary dimension replaced by the new row count (before
   * padding). Padding entries get the mean over the given rows, as for the embedding.
   */
  vocabTensors?: Readonly<Record<string, Float32Array>>;
  /**
   * For each new token id (length = rows of `inputEmbedding`), the source token id whose entries a
   * vocabulary-sized tensor not given in `vocabTensors` takes, or -1 for the mean over the source
   * vocabulary. Without it such tensors are refused (E_UNSUPPORTED).
   */
  sourceIdOfTarget?: Int32Array | readonly number[];
  /** Tensors whose dimension equals the vocabulary size by coincidence: copied unchanged. */
  keepTensors?: readonly string[];
  /**
   * Float dtype of the new input embedding, of the head, and of stored copies of the embedding
   * (`'F32'`, `'F16'` or `'BF16'`, rounding to nearest even); default: the source embedding's dtype.
   * Every other tensor keeps its own dtype.
   */
  dtype?: FloatDtype;
  /**
   * The content of `salt-transfer-report.json`, written into the folder before it is published
   * (given what was written); default `{ written }`. The file marks the folder as salt-transfer's
   * output, which a later `overwrite` may replace.
   */
  report?: (written: TransferredModelReport) => unknown;
  /** Cancels: E_ABORTED at the next tensor or chunk, or while publishing; nothing is left behind. */
  signal?: AbortSignal;
  /**
   * @internal A write started earlier by {@link startModelWrite} for the same source and output:
   * its temporary folder is used, and the shards it copied are not copied again. Discarded on failure.
   */
  pending?: PendingModelWrite;
}

/** What {@link writeTransferredModel} wrote. */
export interface TransferredModelReport {
  /** The output folder. */
  output: string;
  /** Vocabulary size written (after padding). */
  vocabSize: number;
  /** Rows added by padToMultipleOf. */
  paddedRows: number;
  /** Float dtype of the new embedding (options.dtype, else the source's). */
  dtype: FloatDtype;
  /** Names of the tensors copied byte for byte. */
  copiedTensors: string[];
  /**
   * Other tensors given the new vocabulary: copies of the input embedding (written with the new
   * embedding) and vocabulary-sized tensors from `vocabTensors` or `sourceIdOfTarget`.
   */
  resizedTensors: string[];
  /** Weight files written. */
  weightFiles: string[];
  /** Weight files copied unchanged from the source (a subset of `weightFiles`; empty when re-packed). */
  copiedFiles: string[];
  /** Other files written or copied (config, tokenizer, ...). */
  otherFiles: string[];
  /** Special-token ids written. */
  specialTokens: SpecialTokenIds;
}

/** Per-column means (float64) of the row-major `rows` x `width` matrix `m`, giving the event loop a turn between row blocks. */
async function columnMeans(m: Float32Array, rows: number, width: number): Promise<Float64Array> {
  const mean = new Float64Array(width);
  const block = Math.max(1, Math.floor((1 << 20) / Math.max(1, width)));
  for (let r0 = 0; r0 < rows; r0 += block) {
    for (let r = r0, r1 = Math.min(rows, r0 + block); r < r1; r++) {
      const o = r * width;
      for (let j = 0; j < width; j++) mean[j] += m[o + j];
    }
    await new Promise<void>((done) => setImmediate(done));
  }
  for (let j = 0; j < width; j++) mean[j] /= rows;
  return mean;
}

/**
 * The rows of `m` ([rows, width]) followed by `newRows - rows` padding rows that hold its column
 * means, as a stream of Float32Array chunks of at most {@link CHUNK_BYTES}: the padded matrix is
 * never materialised (a second copy of a 250k x 4,096 embedding would be 4 GB). `m` itself when no
 * padding is needed. The means are computed once, when the first stream reaches the padding.
 */
function paddedRows(
  m: Float32Array,
  rows: number,
  width: number,
  newRows: number,
  signal: AbortSignal | undefined,
): Float32Array | (() => AsyncIterable<Float32Array>) {
  if (newRows === rows) return m;
  let means: Promise<Float64Array> | undefined;
  const step = CHUNK_BYTES / 4;
  return async function* () {
    for (let i = 0; i < m.length; i += step) {
      throwIfAborted(signal);
      yield m.subarray(i, i + step);
    }
    means ??= columnMeans(m, rows, width);
    const mean = await means;
    const perChunk = Math.max(1, Math.floor(step / width));
    for (let r = rows; r < newRows; r += perChunk) {
      throwIfAborted(signal);
      const n = Math.min(perChunk, newRows - r);
      const out = new Float32Array(n * width);
      for (let k = 0; k < n; k++) for (let j = 0; j < width; j++) out[k * width + j] = mean[j];
      yield out;
    }
  };
}

/**
 * `m` viewed as [outer, rows, inner]: extends the middle axis to `newRows`, the added entries holding
 * the mean over the given rows (computed in float64).
 */
function padAxis(m: Float32Array, outer: number, rows: number, inner: number, newRows: number): Float32Array {
  if (newRows === rows) return m;
  const out = new Float32Array(outer * newRows * inner);
  const mean = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const src = m.subarray(o * rows * inner, (o + 1) * rows * inner);
    out.set(src, o * newRows * inner);
    mean.fill(0);
    for (let r = 0; r < rows; r++) for (let j = 0; j < inner; j++) mean[j] += src[r * inner + j];
    for (let j = 0; j < inner; j++) mean[j] /= rows;
    const base = o * newRows * inner;
    for (let r = rows; r < newRows; r++) for (let j = 0; j < inner; j++) out[base + r * inner + j] = mean[j];
  }
  return out;
}

/** `src` viewed as [outer, vocab, inner]: entries of the middle axis picked by `ids` (-1: the mean over `vocab`). */
function gatherAxis(
  src: Float32Array,
  outer: number,
  vocab: number,
  inner: number,
  ids: ArrayLike<number>,
): Float32Array {
  const rows = ids.length;
  const out = new Float32Array(outer * rows * inner);
  const mean = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    mean.fill(0);
    for (let v = 0; v < vocab; v++) for (let j = 0; j < inner; j++) mean[j] += src[(o * vocab + v) * inner + j];
    for (let j = 0; j < inner; j++) mean[j] /= vocab;
    for (let t = 0; t < rows; t++) {
      const id = ids[t];
      for (let j = 0; j < inner; j++)
        out[(o * rows + t) * inner + j] = id < 0 ? mean[j] : src[(o * vocab + id) * inner + j];
    }
  }
  return out;
}

function setTokenIds(obj: Record<string, unknown>, ids: SpecialTokenIds, vocabSize?: number): void {
  if (vocabSize !== undefined) obj.vocab_size = vocabSize;
  const map: Array<[string, unknown]> = [
    ['bos_token_id', ids.bos],
    ['eos_token_id', ids.eos],
    ['pad_token_id', ids.pad],
    ['unk_token_id', ids.unk],
  ];
  for (const [k, v] of map) {
    // Write a key when the source has it or when the new tokenizer defines that role.
    if (k in obj || v !== null) obj[k] = v;
  }
  if ('decoder_start_token_id' in obj && typeof obj.decoder_start_token_id === 'number')
    obj.decoder_start_token_id = ids.pad ?? ids.bos ?? obj.decoder_start_token_id;
}

const WEIGHT_FILE =
  /\.(safetensors|bin|pt|pth|h5|msgpack|ckpt|gguf)$|^(model|pytorch_model)\.safetensors\.index\.json$|\.bin\.index\.json$/;

/**
 * Writes the transferred LLM: every tensor except the input embedding (and the output head when
 * untied) is copied byte for byte from the source, streamed with bounded memory; the new embedding
 * (and head) is written in the source's float dtype; config.json gets the new vocab_size and
 * special-token ids; generation_config.json the new ids; the target tokenizer's files replace the
 * source's; other files of the source (e.g. custom code) are copied.
 *
 * Every other tensor with a dimension equal to the source vocabulary size must be resized too, or
 * the model would not load: a byte-identical copy of the input embedding gets the new embedding;
 * others take `options.vocabTensors[name]`, else the entries of `options.sourceIdOfTarget`, else
 * the call fails with E_UNSUPPORTED naming them (`options.keepTensors` copies one unchanged).
 *
 * Everything is written into a temporary folder next to `output` and renamed at the end, so an
 * interrupted run leaves no half-written model; an existing output (also one created meanwhile) is
 * replaced only with `overwrite: true`.
 */
export async function writeTransferredModel(options: WriteTransferredModelOptions): Promise<TransferredModelReport> {
  try {
    return await writeModelFolder(options);
  } catch (err) {
    // The pending write of this output is discarded on any failure, also one found before its
    // folder is touched (one given for another output or source was refused and is left alone).
    const pending = options !== null && typeof options === 'object' ? options.pending : undefined;
    if (pending instanceof PendingModelWrite && isPendingFor(pending, options)) await pending.discard();
    throw err;
  }
}

function isPendingFor(pending: PendingModelWrite, options: WriteTransferredModelOptions): boolean {
  return (
    pending.source === options.source &&
    typeof options.output === 'string' &&
    pending.output === resolve(options.output)
  );
}

async function writeModelFolder(options: WriteTransferredModelOptions): Promise<TransferredModelReport> {
  if (options === null || typeof options !== 'object')
    throw new SaltTypeError(`options must be an object, received ${describe(options)}`);
  const { output, tokenizer, inputEmbedding, outputHead } = options;
  if (typeof output !== 'string' || !output)
    throw new SaltTypeError(`options.output must be a folder path, received ${describe(output)}`);
  if (typeof tokenizer !== 'string')
    throw new SaltTypeError(`options.tokenizer must be a folder path, received ${describe(tokenizer)}`);
  if (!(inputEmbedding instanceof Float32Array))
    throw new SaltTypeError(`options.inputEmbedding must be a Float32Array, received ${describe(inputEmbedding)}`);
  if (typeof options.source !== 'string' && !(options.source instanceof HfModel))
    throw new SaltTypeError(`options.source must be a folder path or an HfModel, received ${describe(options.source)}`);
  const pad = options.padToMultipleOf ?? 1;
  if (!Number.isSafeInteger(pad) || pad < 1)
    throw new SaltRangeError(
      `options.padToMultipleOf must be a positive integer, received ${describe(pad)}`,
      'E_ARGUMENT',
    );
  if (options.dtype !== undefined && !isFloatDtype(options.dtype)) {
    throw new SaltRangeError(
      `options.dtype must be "F32", "F16" or "BF16", received ${describe(options.dtype)}`,
      'E_ARGUMENT',
    );
  }
  const vocabTensors = options.vocabTensors ?? {};
  if (vocabTensors === null || typeof vocabTensors !== 'object')
    throw new SaltTypeError(
      `options.vocabTensors must be an object of Float32Arrays, received ${describe(vocabTensors)}`,
    );
  for (const [k, v] of Object.entries(vocabTensors))
    if (!(v instanceof Float32Array))
      throw new SaltTypeError(
        `options.vocabTensors[${JSON.stringify(k)}] must be a Float32Array, received ${describe(v)}`,
      );
  const keep = options.keepTensors ?? [];
  if (!Array.isArray(keep) || keep.some((k) => typeof k !== 'string'))
    throw new SaltTypeError(`options.keepTensors must be an array of tensor names, received ${describe(keep)}`);
  const srcIds = options.sourceIdOfTarget;
  if (srcIds !== undefined && !(srcIds instanceof Int32Array) && !Array.isArray(srcIds))
    throw new SaltTypeError(
      `options.sourceIdOfTarget must be an Int32Array or an array of integers, received ${describe(srcIds)}`,
    );
  const outPath = resolve(output);
  const { signal } = options;
  // Checked before anything is opened, so no file handle is left behind: the output may not be,
  // contain or lie inside an input, and overwrite replaces only a folder salt-transfer wrote.
  const inputs = [
    { path: typeof options.source === 'string' ? options.source : options.source.folder, what: 'source folder' },
    { path: tokenizer, what: 'tokenizer folder' },
  ];
  await checkOutputPlacement(outPath, inputs);
  await checkReplaceable(outPath, options.overwrite === true);
  throwIfAborted(signal);
  const { pending } = options;
  if (pending !== undefined && (!(pending instanceof PendingModelWrite) || !isPendingFor(pending, options)))
    throw new SaltRangeError(
      'options.pending must come from startModelWrite() with the same source HfModel and output folder',
      'E_ARGUMENT',
    );
  const model = typeof options.source === 'string' ? await HfModel.open(options.source) : options.source;
  const tmp = pending?.tmp ?? tempNameFor(outPath);
  let tmpCreated = false;
  let removeCreatedFolders = async () => undefined as void;
  try {
    const { input, head, tied } = model.embeddings;
    if (!isFloatDtype(input.dtype))
      throw new SaltError(
        'E_UNSUPPORTED',
        `${model.folder}: input embedding ${JSON.stringify(input.name)} has dtype ${input.dtype}; only F32, F16 and BF16 embeddings can be replaced`,
      );
    const newDtype: FloatDtype = options.dtype ?? input.dtype;
    const width = input.shape[1];
    const oldVocab = input.shape[0];
    if (inputEmbedding.length === 0 || inputEmbedding.length % width !== 0) {
      throw new SaltRangeError(
        `options.inputEmbedding has ${inputEmbedding.length} values, expected a positive multiple of the embedding width ${width}`,
        'E_SHAPE',
      );
    }
    const rows = inputEmbedding.length / width;
    const untiedHead = !tied && head ? head : null;
    if (untiedHead) {
      if (!(outputHead instanceof Float32Array))
        throw new SaltRangeError(
          `${model.folder} has an untied output head ${JSON.stringify(untiedHead.name)}: options.outputHead (Float32Array [${rows}, ${untiedHead.shape[1]}]) is required`,
          'E_ARGUMENT',
        );
      if (outputHead.length !== rows * untiedHead.shape[1])
        throw new SaltRangeError(
          `options.outputHead has ${outputHead.length} values, expected ${rows} x ${untiedHead.shape[1]} = ${rows * untiedHead.shape[1]}`,
          'E_SHAPE',
        );
      if (!isFloatDtype(untiedHead.dtype))
        throw new SaltError(
          'E_UNSUPPORTED',
          `output head ${JSON.stringify(untiedHead.name)} has dtype ${untiedHead.dtype}`,
        );
    } else if (outputHead !== undefined) {
      throw new SaltRangeError(
        `${model.folder} has a tied output head (${model.embeddings.tieReason}); options.outputHead must not be given`,
        'E_ARGUMENT',
      );
    }
    if (srcIds !== undefined) {
      if (srcIds.length !== rows)
        throw new SaltRangeError(
          `options.sourceIdOfTarget has ${srcIds.length} entries, expected one per row of options.inputEmbedding (${rows})`,
          'E_SHAPE',
        );
      for (let t = 0; t < rows; t++) {
        const id = srcIds[t];
        if (!Number.isSafeInteger(id) || id < -1 || id >= oldVocab)
          throw new SaltRangeError(
            `options.sourceIdOfTarget[${t}] must be -1 or a source token id in [0, ${oldVocab}), received ${describe(id)}`,
            'E_ARGUMENT',
          );
      }
    }
    if (options.tokenizerInfo && resolve(options.tokenizerInfo.folder) !== resolve(tokenizer)) {
      throw new SaltRangeError(
        `options.tokenizerInfo describes ${JSON.stringify(options.tokenizerInfo.folder)}, not the tokenizer folder ${JSON.stringify(tokenizer)}`,
        'E_ARGUMENT',
      );
    }
    const tok = options.tokenizerInfo ?? (await readTokenizerInfo(tokenizer));
    if (tok.vocabSize !== null && tok.vocabSize > rows) {
      throw new SaltRangeError(
        `the target tokenizer in ${JSON.stringify(tokenizer)} has ${tok.vocabSize} tokens but options.inputEmbedding has only ${rows} rows`,
        'E_SHAPE',
      );
    }
    const newRows = Math.ceil(rows / pad) * pad;
    // An override of undefined leaves the tokenizer's id in place.
    const overrides = Object.fromEntries(
      Object.entries(options.specialTokens ?? {}).filter(([, v]) => v !== undefined),
    );
    const ids: SpecialTokenIds = { ...tok.specialTokens, ...overrides };
    for (const [role, v] of Object.entries(ids)) {
      const list = Array.isArray(v) ? v : v === null || v === undefined ? [] : [v];
      if (list.some((x) => !Number.isSafeInteger(x) || x < 0 || x >= newRows))
        throw new SaltRangeError(
          `special token id for ${role} must be an integer in [0, ${newRows}), received ${describe(v)}`,
          'E_ARGUMENT',
        );
    }

    // Other tensors with a vocabulary-sized dimension.
    const all = model.weights.tensors();
    const isEmbeddingOrHead = (name: string) => name === input.name || (head !== null && name === head.name);
    for (const k of [...keep, ...Object.keys(vocabTensors)]) {
      if (
        !all.some((t) => t.name === k) ||
        isEmbeddingOrHead(k) ||
        !all.find((t) => t.name === k)!.shape.includes(oldVocab)
      ) {
        throw new SaltRangeError(
          `options.${keep.includes(k) ? 'keepTensors' : 'vocabTensors'} names ${JSON.stringify(k)}, which is not a tensor of ${model.folder} (other than the embedding and head) with a dimension of the source vocabulary size ${oldVocab}`,
          'E_ARGUMENT',
        );
      }
    }
    const replaced = new Map<string, { shape: number[]; data: Float32Array }>();
    const embeddingCopies = new Set<string>();
    const refused: string[] = [];
    for (const t of all) {
      if (isEmbeddingOrHead(t.name) || keep.includes(t.name)) continue;
      const axes = t.shape.flatMap((d, i) => (d === oldVocab ? [i] : []));
      if (!axes.length) continue;
      const shapeStr = `[${t.shape.join(', ')}]`;
      if (
        t.dtype === input.dtype &&
        t.shape.length === 2 &&
        t.shape[0] === oldVocab &&
        t.shape[1] === width &&
        (await sameBytes(model.weights, input, t))
      ) {
        embeddingCopies.add(t.name); // a stored copy of the input embedding (e.g. T5's encoder.embed_tokens): gets the new one
        continue;
      }
      const given = vocabTensors[t.name];
      if (given === undefined && srcIds === undefined) {
        refused.push(`${t.name} ${shapeStr}`);
        continue;
      }
      if (axes.length > 1)
        throw new SaltError(
          'E_UNSUPPORTED',
          `${model.folder}: tensor ${JSON.stringify(t.name)} ${shapeStr} has several dimensions of the vocabulary size ${oldVocab}; pass it in options.keepTensors if none of them is the vocabulary`,
        );
      if (!isFloatDtype(t.dtype))
        throw new SaltError(
          'E_UNSUPPORTED',
          `${model.folder}: tensor ${JSON.stringify(t.name)} ${shapeStr} has a vocabulary-sized dimension but dtype ${t.dtype}; only F32, F16 and BF16 tensors can be resized`,
        );
      const k = axes[0];
      const outer = t.shape.slice(0, k).reduce((a, b) => a * b, 1);
      const inner = t.shape.slice(k + 1).reduce((a, b) => a * b, 1);
      let values: Float32Array;
      if (given !== undefined) {
        if (given.length !== outer * rows * inner) {
          const want = t.shape.map((d, i) => (i === k ? rows : d));
          throw new SaltRangeError(
            `options.vocabTensors[${JSON.stringify(t.name)}] has ${given.length} values, expected shape [${want.join(', ')}] = ${outer * rows * inner}`,
            'E_SHAPE',
          );
        }
        values = given;
      } else {
        values = gatherAxis(await model.weights.readFloat32(t.name), outer, oldVocab, inner, srcIds!);
      }
      replaced.set(t.name, {
        shape: t.shape.map((d, i) => (i === k ? newRows : d)),
        data: padAxis(values, outer, rows, inner, newRows),
      });
    }
    if (refused.length) {
      throw new SaltError(
        'E_UNSUPPORTED',
        `${model.folder}: besides the embedding${head ? ' and head' : ''}, tensor${refused.length > 1 ? 's' : ''} ${refused.join(', ')} ha${refused.length > 1 ? 've' : 's'} a dimension of the source vocabulary size ${oldVocab} ` +
          'and would not match the new vocab_size: pass new values in options.vocabTensors, or options.sourceIdOfTarget to copy the entries of source ids (-1: mean), or options.keepTensors to copy unchanged',
      );
    }
    const newInput = paddedRows(inputEmbedding, rows, width, newRows, signal);
    const newHead = untiedHead ? paddedRows(outputHead!, rows, untiedHead.shape[1], newRows, signal) : null;

    const copied: string[] = [];
    const resized: string[] = [];
    const tensors: TensorToWrite[] = all.map((t) => {
      if (t.name === input.name || (tied && head && t.name === head.name))
        return { name: t.name, dtype: newDtype, shape: [newRows, width], data: newInput };
      if (untiedHead && t.name === untiedHead.name)
        return { name: t.name, dtype: newDtype, shape: [newRows, untiedHead.shape[1]], data: newHead! };
      if (embeddingCopies.has(t.name)) {
        resized.push(t.name);
        return { name: t.name, dtype: newDtype, shape: [newRows, width], data: newInput };
      }
      const r = replaced.get(t.name);
      if (r) {
        resized.push(t.name);
        return { name: t.name, dtype: t.dtype, shape: r.shape, data: r.data };
      }
      copied.push(t.name);
      return {
        name: t.name,
        dtype: t.dtype,
        shape: [...t.shape],
        // A safetensors tensor is one byte range of its shard: copied file to file (in the kernel
        // where possible), never through JavaScript buffers. PyTorch tensors (views of storages) stream.
        data:
          model.weights.format === 'safetensors'
            ? { path: join(model.folder, t.file), offset: t.fileOffset, signal }
            : () => abortable(model.weights.streamBytes(t.name), signal),
      };
    });
    throwIfAborted(signal);
    if (pending === undefined) {
      removeCreatedFolders = await createFolders(dirname(outPath));
      await cleanStaleTemps(dirname(outPath));
      try {
        await mkdir(tmp);
        tmpCreated = true;
      } catch (err) {
        throw ioError(err, `could not create ${JSON.stringify(tmp)}`);
      }
    }
    // Re-packed shards have other names and layouts: what a pending write prepared is not used.
    if (options.maxShardBytes !== undefined) await pending?.abandon();
    const written =
      options.maxShardBytes !== undefined
        ? {
            ...(await writeCheckpoint(tmp, tensors, {
              maxShardBytes: options.maxShardBytes,
              metadata: model.weights.files.length ? await shardMetadata(model) : undefined,
            })),
            copiedFiles: [] as string[],
          }
        : await writeSourceLayout(model.weights, tmp, tensors, new Set(copied), signal, pending);

    const otherFiles: string[] = [];
    const cfg = structuredClone(model.config.raw);
    if (model.config.nestedKey) {
      setTokenIds(cfg[model.config.nestedKey] as Record<string, unknown>, ids, newRows);
      // Multimodal configs may repeat token ids at the top level: update those that are there.
      for (const [k, v] of [
        ['bos_token_id', ids.bos],
        ['eos_token_id', ids.eos],
        ['pad_token_id', ids.pad],
        ['unk_token_id', ids.unk],
      ] as const)
        if (k in cfg) cfg[k] = v;
    } else setTokenIds(cfg, ids, newRows);
    await writeBytesAtomic(join(tmp, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
    otherFiles.push('config.json');
    const genPath = join(model.folder, 'generation_config.json');
    if (await pathExists(genPath)) {
      const gen = (await readJsonFile(genPath)) as Record<string, unknown>;
      if (gen && typeof gen === 'object') {
        for (const [k, v] of [
          ['bos_token_id', ids.bos],
          ['eos_token_id', ids.eos],
          ['pad_token_id', ids.pad],
        ] as const)
          if (k in gen) gen[k] = v;
        if ('decoder_start_token_id' in gen) gen.decoder_start_token_id = ids.pad ?? ids.bos;
      }
      await writeBytesAtomic(join(tmp, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
      otherFiles.push('generation_config.json');
    }
    for (const f of tok.files) {
      // Text files go to the new folder only when they are valid UTF-8 (a slow tokenizer reads them).
      if (/\.(json|txt)$/.test(f)) await readUtf8File(join(tokenizer, f), 'tokenizer file');
      if (f === 'tokenizer_config.json') await writeCausalTokenizerConfig(join(tokenizer, f), join(tmp, f));
      else await copyInto(join(tokenizer, f), join(tmp, f));
      otherFiles.push(f);
    }
    let entries: string[];
    try {
      entries = await readdir(model.folder);
    } catch (err) {
      throw ioError(err, `could not list source folder ${JSON.stringify(model.folder)}`);
    }
    for (const f of entries) {
      if (
        f.startsWith('.') ||
        WEIGHT_FILE.test(f) ||
        TOKENIZER_FILES.includes(f) ||
        f === 'config.json' ||
        f === 'generation_config.json' ||
        f === SAFETENSORS_INDEX
      )
        continue;
      const fp = join(model.folder, f);
      let st;
      try {
        st = await stat(fp);
      } catch (err) {
        throw ioError(err, `could not stat ${JSON.stringify(fp)}`);
      }
      if (!st.isFile()) continue;
      await copyInto(fp, join(tmp, f));
      otherFiles.push(f);
    }
    otherFiles.push(REPORT_FILE);
    const result: TransferredModelReport = {
      output: outPath,
      vocabSize: newRows,
      paddedRows: newRows - rows,
      dtype: newDtype,
      copiedTensors: copied,
      resizedTensors: resized,
      weightFiles: written.files,
      copiedFiles: written.copiedFiles,
      otherFiles,
      specialTokens: ids,
    };
    // The report goes in before the folder is published: a published folder is always complete.
    const report = options.report ? options.report(result) : { written: result };
    await writeBytesAtomic(join(tmp, REPORT_FILE), JSON.stringify(report, null, 2) + '\n');
    // The rename itself refuses to replace an output that appeared meanwhile unless overwrite is set.
    await publishFolder(tmp, outPath, options.overwrite === true, signal);
    tmpCreated = false;
    pending?.published();
    return result;
  } catch (err) {
    if (tmpCreated) await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    await removeCreatedFolders();
    throw err;
  } finally {
    if (typeof options.source === 'string') await model.close();
  }
}

/**
 * Safetensors shards of `model` that no transfer changes: none of their tensors is the embedding or
 * the head or has a dimension of the source vocabulary size. (`keepTensors` can make more shards
 * unchanged; those are copied when the model is written.)
 */
function vocabFreeShards(model: HfModel): string[] {
  if (model.weights.format !== 'safetensors') return [];
  const { input, head } = model.embeddings;
  const vocab = input.shape[0];
  const touched = new Set(
    model.weights
      .tensors()
      .filter((t) => t.name === input.name || t.name === head?.name || t.shape.includes(vocab))
      .map((t) => t.file),
  );
  return model.weights.files.filter((f) => !touched.has(f));
}

/**
 * @internal A model write started before the new matrices exist (made by {@link startModelWrite}):
 * the output's temporary folder, into which the source's shards without a vocabulary-sized tensor
 * are being copied in the background, in order, one at a time, while the caller loads the target
 * and runs the engine. {@link writeTransferredModel} with `pending` finishes it; {@link discard}
 * stops it and removes everything.
 */
export class PendingModelWrite {
  /** The source model, which must stay open until the write is finished or discarded. */
  readonly source: HfModel;
  /** Absolute output folder. */
  readonly output: string;
  /** The temporary folder next to it. */
  readonly tmp: string;
  readonly #removeCreated: () => Promise<void>;
  readonly #copies = new Map<string, Promise<unknown>>();
  readonly #laidOut = new Map<string, LaidOutShard>();
  #stopped = false;
  #settled = false;
  #chain: Promise<unknown>;

  private constructor(source: HfModel, output: string, tmp: string, removeCreated: () => Promise<void>) {
    this.source = source;
    this.output = output;
    this.tmp = tmp;
    this.#removeCreated = removeCreated;
    let chain: Promise<unknown> = Promise.resolve();
    for (const f of vocabFreeShards(source)) {
      const from = join(source.folder, f);
      const size = source.weights.fileByteLength(f)!;
      // Each entry settles with the copy's error (or null); nothing is left unhandled.
      const p = chain.then(() => (this.#stopped ? 'stopped' : copyShard(from, join(tmp, f), size).then(() => null)));
      const settled = p.then(
        (v) => v,
        (err: unknown) => err ?? new Error('copy failed'),
      );
      this.#copies.set(f, settled);
      chain = settled;
    }
    this.#chain = chain;
  }

  /**
   * Lays out, in the temporary folder, each source shard that will be rewritten and copies its
   * unchanged tensors into their final places in the background (in-kernel copies, after the
   * whole-shard copies, one at a time; the disk starts writing each back at once). The writer puts
   * a rewritten shard's unchanged tensors first, in the source's order, then the vocabulary-sized
   * ones, behind a header padded to a size that does not depend on the new vocabulary (see
   * {@link safetensorsHeaderBound}): so the places are known before the target is. The writer then
   * writes only the new tensors and the header. Only for safetensors sources; a layout the writer
   * does not confirm (another set of unchanged tensors, e.g. with `keepTensors`) is discarded and
   * the shard written whole, so it costs time, never correctness. Called by {@link startModelWrite}
   * (unless told not to); once. `alsoRewritten` (for tests) names tensors to treat as rewritten.
   */
  layOut(options: { alsoRewritten?: ReadonlySet<string> } = {}): void {
    const model = this.source;
    if (this.#stopped || this.#laidOut.size || model.weights.format !== 'safetensors') return;
    const { input, head } = model.embeddings;
    const oldVocab = input.shape[0];
    const free = new Set(vocabFreeShards(model));
    const rewritten = (t: { name: string; shape: readonly number[] }) =>
      t.name === input.name ||
      t.name === head?.name ||
      t.shape.includes(oldVocab) ||
      options.alsoRewritten?.has(t.name) === true;
    let chain = this.#chain;
    for (const file of model.weights.files) {
      if (free.has(file)) continue;
      const inFile = model.weights
        .tensors()
        .filter((t) => t.file === file)
        .sort((a, b) => a.fileOffset - b.fileOffset);
      const kept = inFile.filter((t) => !rewritten(t));
      const order = [...kept, ...inFile.filter((t) => rewritten(t))];
      const meta = { ...model.weights.fileMetadata(file) };
      const metadata = Object.keys(meta).length ? meta : undefined;
      const headerBytes = rewrittenHeaderBytes(order, order.length - kept.length, metadata, kept[0]?.fileOffset);
      const copies: LaidOutShard['copies'][number][] = [];
      let at = headerBytes;
      for (const t of kept) {
        copies.push({ name: t.name, from: t.fileOffset, to: at, length: t.byteLength });
        at += t.byteLength;
      }
      const path = join(this.tmp, file);
      const from = join(model.folder, file);
      const p = chain.then(() => (this.#stopped ? 'stopped' : copyIntoLayout(from, path, copies, () => this.#stopped)));
      const settled = p.then(
        (v) => v,
        (err: unknown) => err ?? new Error('copy failed'),
      );
      this.#laidOut.set(file, { file, path, from, headerBytes, copies, done: settled });
      chain = settled;
    }
    this.#chain = chain;
  }

  /**
   * The laid-out shard for source shard `file`, when the writer's `tensors` (in its order, with
   * `metadata`, behind a header of `headerBytes`) copy from the source exactly the tensors laid out,
   * at the same places; waits for its copies (their error is thrown) and returns the writer's
   * layout. Otherwise its file is removed (after its copies stopped) and the result is undefined:
   * the caller writes the shard whole.
   */
  async laidOut(
    file: string,
    tensors: readonly TensorToWrite[],
    metadata: Record<string, string> | undefined,
    headerBytes: number,
  ): Promise<{ laid: LaidOutShard; layout: SafetensorsLayout } | undefined> {
    const laid = this.#laidOut.get(file);
    if (!laid) return undefined;
    this.#laidOut.delete(file);
    const layout = safetensorsLayout(tensors, metadata, headerBytes);
    const fromSource = tensors.flatMap((t, i) => {
      const d = t.data as { path?: unknown; offset?: unknown };
      return typeof d === 'object' && d !== null && d.path === laid.from && typeof d.offset === 'number'
        ? [{ name: t.name, from: d.offset, to: layout.offsets[i], length: layout.sizes[i] }]
        : [];
    });
    const same =
      laid.headerBytes === headerBytes &&
      fromSource.length === laid.copies.length &&
      fromSource.every((c, i) => {
        const l = laid.copies[i];
        return c.name === l.name && c.from === l.from && c.to === l.to && c.length === l.length;
      });
    const r = await laid.done;
    if (!same || r === 'stopped') {
      await rm(laid.path, { force: true }).catch(() => undefined);
      return undefined;
    }
    if (r !== null) throw r;
    return { laid, layout };
  }

  /** Resolves when every background copy started so far has settled (their errors are the writer's). */
  async copiesDone(): Promise<void> {
    await this.#chain;
  }

  /** Stops the background copies and removes what they wrote; the temporary folder stays. */
  async abandon(): Promise<void> {
    this.#stopped = true;
    await this.#chain;
    const files = [...this.#copies.keys(), ...this.#laidOut.keys()];
    this.#laidOut.clear();
    this.#copies.clear();
    await Promise.all(files.map((f) => rm(join(this.tmp, f), { force: true }).catch(() => undefined)));
  }

  /** Creates the temporary folder and starts copying; see {@link startModelWrite}. */
  static async start(source: HfModel, output: string, overwrite: boolean): Promise<PendingModelWrite> {
    const outPath = resolve(output);
    await checkOutputPlacement(outPath, [{ path: source.folder, what: 'source folder' }]);
    await checkReplaceable(outPath, overwrite);
    const removeCreated = await createFolders(dirname(outPath));
    const tmp = tempNameFor(outPath);
    try {
      await cleanStaleTemps(dirname(outPath));
      await mkdir(tmp);
    } catch (err) {
      await removeCreated();
      throw err instanceof SaltError ? err : ioError(err, `could not create ${JSON.stringify(tmp)}`);
    }
    return new PendingModelWrite(source, outPath, tmp, removeCreated);
  }

  /**
   * Waits for the background copy of source shard `file`: true when it was copied (its error is
   * thrown), false when this write does not copy it.
   */
  async copied(file: string): Promise<boolean> {
    const p = this.#copies.get(file);
    if (p === undefined) return false;
    const r = await p;
    if (r === 'stopped') return false;
    if (r !== null) throw r;
    return true;
  }

  /** The folder was published: nothing is removed any more. */
  published(): void {
    this.#settled = true;
  }

  /** Stops the copies (the one in flight finishes), removes the temporary folder and the parent folders created for it. */
  async discard(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    this.#stopped = true;
    await this.#chain;
    await rm(this.tmp, { recursive: true, force: true }).catch(() => undefined);
    await this.#removeCreated();
  }
}

/**
 * @internal Starts writing a transferred model before its new matrices exist: checks the output
 * (as {@link writeTransferredModel} does), creates its temporary folder and copies the source's
 * shards that hold no vocabulary-sized tensor into it in the background (reflink or in-kernel
 * copies that overlap with the caller's loading and computing). Finish with
 * `writeTransferredModel({ ..., source, pending })` or call `discard()`; the source must stay open
 * until then.
 */
export function startModelWrite(
  source: HfModel,
  output: string,
  options: { overwrite?: boolean; layOut?: boolean } = {},
): Promise<PendingModelWrite> {
  if (!(source instanceof HfModel))
    throw new SaltTypeError(`source must be an open HfModel, received ${describe(source)}`);
  if (typeof output !== 'string' || !output)
    throw new SaltTypeError(`output must be a folder path, received ${describe(output)}`);
  return PendingModelWrite.start(source, output, options.overwrite === true).then((p) => {
    if (options.layOut !== false) p.layOut();
    return p;
  });
}

/** What {@link writeSourceLayout} wrote. */
interface WrittenLayout {
  /** Weight files written (shards in the source's order, then the index). */
  files: string[];
  /** Shards copied unchanged. */
  copiedFiles: string[];
}

/** The safetensors name of a PyTorch weights file: pytorch_model-00001-of-00002.bin -> model-00001-of-00002.safetensors. */
function safetensorsNameOf(file: string): string {
  return file.replace(/^pytorch_model/, 'model').replace(/\.(bin|pt|pth)$/, '') + '.safetensors';
}

/**
 * Writes `tensors` into `folder` in the source checkpoint's own layout: the same files (PyTorch
 * files become safetensors files of the same stem), each tensor in the file that held it, in the
 * order of the source file, and the index (with `total_size` updated) when the source had one.
 *
 * A safetensors shard whose tensors are all in `unchanged` is copied as a whole with `copyFile`
 * (a reflink where the file system has them, else an in-kernel copy), never through JavaScript
 * buffers; every other shard is rewritten, streaming. Nothing is flushed per file: the disk writes
 * the shards back while the next one is produced, and every file is flushed (`fdatasync`), with the
 * folder, before this returns, so the data is on disk before the caller publishes the folder.
 */
async function writeSourceLayout(
  weights: SafetensorsCheckpoint,
  folder: string,
  tensors: readonly TensorToWrite[],
  unchanged: ReadonlySet<string>,
  signal: AbortSignal | undefined,
  pending?: PendingModelWrite,
): Promise<WrittenLayout> {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const infos = weights.tensors();
  const outName = (f: string) => (weights.format === 'safetensors' ? f : safetensorsNameOf(f));
  const names = weights.files.map(outName);
  if (new Set(names).size !== names.length || (weights.indexFile !== null && names.includes(SAFETENSORS_INDEX)))
    throw new SaltError(
      'E_UNSUPPORTED',
      `${weights.folder}: the weight files ${weights.files.join(', ')} do not map to distinct safetensors names; pass maxShardBytes to re-pack them`,
    );
  const files: string[] = [];
  const copiedFiles: string[] = [];
  let totalSize = 0;
  let totalParameters = 0;
  for (const t of tensors) {
    totalSize += tensorByteSize(t);
    totalParameters += t.shape.reduce((a, b) => a * b, 1);
  }
  for (const [i, file] of weights.files.entries()) {
    throwIfAborted(signal);
    const inFile = infos.filter((t) => t.file === file);
    // The source file's order (data offsets; for PyTorch files the pickle's order).
    if (weights.format === 'safetensors') inFile.sort((a, b) => a.fileOffset - b.fileOffset);
    const to = join(folder, names[i]);
    if (weights.format === 'safetensors' && inFile.every((t) => unchanged.has(t.name))) {
      if (!(await pending?.copied(file)))
        await copyShard(join(weights.folder, file), to, weights.fileByteLength(file)!);
      copiedFiles.push(names[i]);
    } else {
      const meta = weights.format === 'pytorch' ? { format: 'pt' } : { ...weights.fileMetadata(file) };
      // The unchanged tensors first (the source's order), then the new ones, behind a header whose
      // size does not depend on the new vocabulary: the unchanged tensors' places are known before
      // the target is (see PendingModelWrite.layOut).
      const kept = inFile.filter((t) => unchanged.has(t.name));
      const order = [...kept, ...inFile.filter((t) => !unchanged.has(t.name))];
      const shardTensors = order.map((t) => byName.get(t.name)!);
      const metadata = Object.keys(meta).length ? meta : undefined;
      const headerBytes = rewrittenHeaderBytes(
        shardTensors,
        order.length - kept.length,
        metadata,
        weights.format === 'safetensors' ? kept[0]?.fileOffset : undefined,
      );
      const laid = await pending?.laidOut(file, shardTensors, metadata, headerBytes);
      if (laid) await finishLaidOut(laid.laid, laid.layout, shardTensors, signal);
      else await writeSafetensors(to, shardTensors, { metadata, sync: false, headerBytes });
    }
    files.push(names[i]);
  }
  throwIfAborted(signal);
  if (weights.indexFile !== null) {
    // The source index's other metadata (e.g. total_parameters) is kept, with the sizes updated.
    const meta: Record<string, unknown> = { ...weights.metadata, total_size: totalSize };
    if (typeof weights.metadata.total_parameters === 'number') meta.total_parameters = totalParameters;
    const weightMap: Record<string, string> = Object.create(null); // "__proto__" is a tensor name like any other
    for (const t of infos) weightMap[t.name] = outName(t.file);
    await writeBytesAtomic(
      join(folder, SAFETENSORS_INDEX),
      JSON.stringify({ metadata: meta, weight_map: weightMap }, null, 2) + '\n',
      { sync: false },
    );
    files.push(SAFETENSORS_INDEX);
  }
  await Promise.all(files.map((f) => syncFile(join(folder, f))));
  await syncFolder(folder);
  return { files, copiedFiles };
}

/**
 * Copies one shard unchanged and checks that it has the size the source had when it was validated:
 * a source shard changed since then is E_IO, not copied stale. A reflink where the file system has
 * them (no bytes copied); else, with the addon, its whole blocks are written with direct I/O (see
 * {@link openDirect}: no page cache filled for the copy) and the rest through the page cache, whose
 * writeback starts at once; else an in-kernel copy.
 */
async function copyShard(from: string, to: string, expectedBytes: number): Promise<void> {
  const native = await nativeMatrixOps();
  let cloned = native === null;
  if (native) {
    try {
      await copyFile(from, to, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE_FORCE);
      cloned = true;
    } catch (err) {
      // No reflink here (another file system, or none across these files): copied below, which
      // reports any real failure (no space, no permission) itself.
      const c = (err as NodeJS.ErrnoException).code;
      if (c === 'EEXIST' || c === 'ENOENT')
        throw ioError(err, `could not copy ${JSON.stringify(from)} to ${JSON.stringify(dirname(to))}/${basename(to)}`);
      await rm(to, { force: true }).catch(() => undefined);
    }
  } else await copyInto(from, to, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
  if (!cloned && native) {
    let src: FileHandle | undefined;
    let out: FileHandle | undefined;
    let direct: FileHandle | undefined;
    try {
      src = await open(from, 'r').catch((err: unknown) => {
        throw ioError(err, `could not open ${JSON.stringify(from)}`);
      });
      out = await open(to, 'wx').catch((err: unknown) => {
        throw ioError(err, `could not create ${JSON.stringify(to)}`);
      });
      // The source's permissions, as copyFile keeps them (a file system without them is no error).
      await out.chmod((await src.stat()).mode & 0o7777).catch(() => undefined);
      direct = await openDirect(to);
      await native
        .writeDirect(
          out.fd,
          direct ? direct.fd : -1,
          0,
          { fdIn: src.fd, offsetIn: 0, length: expectedBytes },
          { writeback: true },
        )
        .catch((err: unknown) => {
          throw err instanceof SaltError
            ? new SaltError(err.code, `copying ${from} to ${to}: ${err.message}`, { cause: err })
            : err;
        });
      const now = (await src.stat()).size;
      if (now !== expectedBytes)
        throw new SaltError(
          'E_IO',
          `${from} has ${now} bytes, but it had ${expectedBytes} when it was opened (was it changed while open?)`,
        );
    } catch (err) {
      if (out) await rm(to, { force: true }).catch(() => undefined); // no partial copy left behind
      throw err;
    } finally {
      await direct?.close().catch(() => undefined);
      await out?.close().catch(() => undefined);
      await src?.close().catch(() => undefined);
    }
    return;
  }
  let size: number;
  try {
    size = (await stat(to)).size;
  } catch (err) {
    throw ioError(err, `could not stat ${JSON.stringify(to)}`);
  }
  if (size !== expectedBytes)
    throw new SaltError(
      'E_IO',
      `${from} has ${size} bytes, but it had ${expectedBytes} when it was opened (was it changed while open?)`,
    );
  // The disk starts writing the copy back now, not at the final flush.
  if (native) {
    const fh = await open(to, 'r').catch(() => undefined);
    if (fh) await native.startWriteback(fh.fd, 0, 0).finally(() => fh.close().catch(() => undefined));
  }
}

/** A rewritten shard laid out ahead of the new matrices by {@link PendingModelWrite.layOut}. */
interface LaidOutShard {
  /** Source shard name (and output name). */
  readonly file: string;
  /** The output file in the temporary folder. */
  readonly path: string;
  /** The source shard. */
  readonly from: string;
  /** The header's size (see {@link rewrittenHeaderBytes}). */
  readonly headerBytes: number;
  /** The unchanged tensors copied into place, in the writer's order: source range -> output offset. */
  readonly copies: readonly { name: string; from: number; to: number; length: number }[];
  /** Settles with null when the copies are done, 'stopped', or their error. */
  readonly done: Promise<unknown>;
}

/**
 * The header size of a rewritten shard: {@link safetensorsHeaderBound} of its tensors, padded by
 * less than 4 KiB so that its first unchanged tensor lies at the same offset modulo 4,096 as in the
 * source (when that offset is a multiple of 8, as the header size must be). The run of unchanged
 * tensors that follows is then block-aligned in both files, and `writeDirect` writes it from a
 * mapping of the source instead of copying it through a buffer.
 */
export function rewrittenHeaderBytes(
  tensors: Parameters<typeof safetensorsHeaderBound>[0],
  variable: number,
  metadata: Record<string, string> | undefined,
  firstKeptOffset: number | undefined,
): number {
  const bound = safetensorsHeaderBound(tensors, variable, metadata);
  if (firstKeptOffset === undefined || firstKeptOffset % 8 !== 0) return bound;
  return bound + ((((firstKeptOffset - bound) % 4096) + 4096) % 4096);
}

/**
 * Copies that follow each other in both files, joined into one (the unchanged tensors of a shard,
 * after a resized embedding, usually form one or two runs): one native call per run, not per tensor.
 * Each call allocates its own staging buffers (up to 16 MiB): one call per tensor cost the 1B folder
 * about 1.1 GB of page faults.
 */
function adjacentCopiesJoined(
  copies: readonly { name: string; from: number; to: number; length: number }[],
): { names: string[]; from: number; to: number; length: number }[] {
  const runs: { names: string[]; from: number; to: number; length: number }[] = [];
  for (const c of copies) {
    const last = runs[runs.length - 1];
    if (last && last.from + last.length === c.from && last.to + last.length === c.to) {
      last.names.push(c.name);
      last.length += c.length;
    } else runs.push({ names: [c.name], from: c.from, to: c.to, length: c.length });
  }
  return runs;
}

/**
 * Creates `path` and copies the byte ranges `copies` of `from` into their places (in-kernel where
 * possible, each range's writeback started once copied); stops between ranges when `stopped()`
 * says so. The header and the other tensors are the writer's, which also sets the final size.
 */
async function copyIntoLayout(
  from: string,
  path: string,
  copies: readonly { name: string; from: number; to: number; length: number }[],
  stopped: () => boolean,
): Promise<null | 'stopped'> {
  let out: FileHandle;
  try {
    out = await open(path, 'wx');
  } catch (err) {
    throw ioError(err, `could not lay out ${JSON.stringify(path)}`);
  }
  // The whole blocks go to disk directly, past the page cache (see openDirect).
  const direct = await openDirect(path);
  try {
    for (const c of adjacentCopiesJoined(copies)) {
      if (stopped()) return 'stopped';
      await copyRangeAt(
        { path: from, offset: c.from },
        out,
        c.length,
        c.to,
        c.names.length === 1
          ? `tensor ${JSON.stringify(c.names[0])} from ${from}`
          : `tensors ${JSON.stringify(c.names[0])} to ${JSON.stringify(c.names[c.names.length - 1])} (${c.names.length}) from ${from}`,
        true,
        direct,
      );
    }
    return null;
  } finally {
    await direct?.close().catch(() => undefined);
    await out.close().catch(() => undefined);
  }
}

/** Sets the final size of a laid-out shard and writes its new tensors (those not copied in) and its header. Nothing is flushed here. */
async function finishLaidOut(
  laid: LaidOutShard,
  layout: SafetensorsLayout,
  tensors: readonly TensorToWrite[],
  signal: AbortSignal | undefined,
): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(laid.path, 'r+');
  } catch (err) {
    throw ioError(err, `could not open ${JSON.stringify(laid.path)}`);
  }
  try {
    try {
      await fh.truncate(layout.bytes);
    } catch (err) {
      throw ioError(err, `could not size ${JSON.stringify(laid.path)}`);
    }
    const copied = new Set(laid.copies.map((c) => c.name));
    const todo = tensors.flatMap((t, i) => (copied.has(t.name) ? [] : [i]));
    const direct = await openDirect(laid.path);
    try {
      await writeTensorsAt(fh, laid.path, layout, tensors, todo, { writeback: true, signal, direct });
    } finally {
      await direct?.close().catch(() => undefined);
    }
    await writeBytesAt(fh, layout.header, 0, laid.path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function shardMetadata(model: HfModel): Promise<Record<string, string> | undefined> {
  // A PyTorch source: the safetensors output gets the metadata transformers writes.
  if (model.weights.format === 'pytorch') return { format: 'pt' };
  const f = await SafetensorsFile.open(join(model.folder, model.weights.files[0]));
  try {
    return Object.keys(f.metadata).length ? { ...f.metadata } : undefined;
  } finally {
    await f.close();
  }
}

/**
 * The model inputs a causal LM takes. A PLM tokenizer's config may name others (BERT's names
 * `token_type_ids`): transformers' `generate(**tokenizer(text))` then passes them to the LLM, which
 * refuses them, so the written tokenizer_config.json lists exactly these.
 */
const CAUSAL_LM_INPUT_NAMES: readonly string[] = ['input_ids', 'attention_mask'];

/** Copies the target's tokenizer_config.json with `model_input_names` set to {@link CAUSAL_LM_INPUT_NAMES}. */
async function writeCausalTokenizerConfig(from: string, to: string): Promise<void> {
  const cfg = await readJsonFile(from);
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg))
    throw new SaltError('E_FORMAT', `${from}: expected a JSON object`);
  (cfg as Record<string, unknown>).model_input_names = [...CAUSAL_LM_INPUT_NAMES];
  await writeBytesAtomic(to, JSON.stringify(cfg, null, 2) + '\n');
}

async function copyInto(from: string, to: string, mode = 0): Promise<void> {
  try {
    await copyFile(from, to, mode);
  } catch (err) {
    throw ioError(err, `could not copy ${JSON.stringify(from)} to ${JSON.stringify(dirname(to))}/${basename(to)}`);
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new SaltError('E_ABORTED', 'aborted while writing the model folder');
}

/** `chunks` checking `signal` before each chunk. */
async function* abortable(chunks: AsyncIterable<Buffer>, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  for await (const c of chunks) {
    throwIfAborted(signal);
    yield c;
  }
}
