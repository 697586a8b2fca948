/**
 * Hugging Face model folders: open one (config, tokenizer files, safetensors weights), locate its
 * input embedding and output head, and write a transferred copy with a new vocabulary.
 */
import { readdir } from 'node:fs/promises';

import { describe, SaltError, SaltTypeError } from '../errors.js';
import { type CheckpointTensorInfo, SafetensorsCheckpoint } from './checkpoint.js';
import {
  type ModelConfig,
  readModelConfig,
  readTokenizerInfo,
  TOKENIZER_FILES,
  type TokenizerInfo,
} from './hfConfig.js';
import type { ReadFloat32Options } from './safetensors.js';

/** Name patterns of the input embedding and output head, per family (tried in order). */
interface FamilyPatterns {
  input: RegExp[];
  head: RegExp[];
}

const DECODER: FamilyPatterns = { input: [/(^|\.)embed_tokens\.weight$/], head: [/(^|\.)lm_head\.weight$/] };
const BERTLIKE: FamilyPatterns = {
  input: [/(^|\.)embeddings\.word_embeddings\.weight$/],
  head: [
    /^cls\.predictions\.decoder\.weight$/,
    /^lm_head\.decoder\.weight$/,
    /^generator_lm_head\.weight$/,
    /^lm_predictions\.lm_head\.decoder\.weight$/,
  ],
};

/** Families the locator knows by name; others fall back to trying all patterns. */
export const KNOWN_FAMILIES: Readonly<Record<string, FamilyPatterns>> = Object.freeze({
  llama: DECODER,
  mistral: DECODER,
  mixtral: DECODER,
  gemma: DECODER,
  gemma2: DECODER,
  gemma3: DECODER,
  gemma3_text: DECODER,
  qwen2: DECODER,
  qwen3: DECODER,
  phi3: DECODER,
  xglm: DECODER,
  opt: { input: [/(^|\.)decoder\.embed_tokens\.weight$/], head: [/(^|\.)lm_head\.weight$/] },
  gpt2: { input: [/(^|\.)wte\.weight$/], head: [/(^|\.)lm_head\.weight$/] },
  gpt_neox: { input: [/(^|\.)embed_in\.weight$/], head: [/(^|\.)embed_out\.weight$/] },
  bloom: { input: [/(^|\.)word_embeddings\.weight$/], head: [/(^|\.)lm_head\.weight$/] },
  falcon: { input: [/(^|\.)word_embeddings\.weight$/], head: [/(^|\.)lm_head\.weight$/] },
  bert: BERTLIKE,
  roberta: BERTLIKE,
  'xlm-roberta': BERTLIKE,
  'deberta-v2': BERTLIKE,
  electra: BERTLIKE,
  t5: { input: [/^shared\.weight$/, /(^|\.)encoder\.embed_tokens\.weight$/], head: [/(^|\.)lm_head\.weight$/] },
  mt5: { input: [/^shared\.weight$/, /(^|\.)encoder\.embed_tokens\.weight$/], head: [/(^|\.)lm_head\.weight$/] },
});

/**
 * Why a head was judged tied to the input embedding: `config` (tie_word_embeddings, stated or the
 * family default), `missing-head` (no head tensor and no stated flag), `identical-head` (a head
 * tensor whose storage or bytes are identical to the input embedding's).
 */
export type TieReason = 'config' | 'missing-head' | 'identical-head';

/** Where the embeddings of a model are. */
export interface EmbeddingLocation {
  /** The input embedding tensor ([vocab, width]). */
  input: CheckpointTensorInfo;
  /** The output head tensor when present in the files (also when tied through shared storage), else null. */
  head: CheckpointTensorInfo | null;
  /** True when the output head is (or will be) the input embedding. */
  tied: boolean;
  /** Why {@link tied} is true; null when untied. */
  tieReason: TieReason | null;
}

function isVocabMatrix(
  t: CheckpointTensorInfo,
  cfg: Pick<ModelConfig, 'vocabSize' | 'embeddingWidth' | 'hiddenSize'>,
  width: number,
): boolean {
  return t.shape.length === 2 && t.shape[0] === cfg.vocabSize && t.shape[1] === width;
}

/**
 * Finds the input embedding and output head among a checkpoint's tensors by family name patterns
 * plus shape checks against the config ([vocab_size, width]). Unknown families try every known
 * pattern. E_NOT_FOUND when nothing matches, listing the 2-D candidate tensors and their shapes.
 */
export function locateEmbeddings(
  tensors: readonly CheckpointTensorInfo[],
  config: ModelConfig,
  label = 'model',
): EmbeddingLocation {
  // Own keys only: a model_type such as "constructor" or "__proto__" is an unknown family, not Object's.
  const known = (t: string): FamilyPatterns | undefined =>
    Object.hasOwn(KNOWN_FAMILIES, t) ? KNOWN_FAMILIES[t] : undefined;
  const fam = known(config.modelType) ?? known(config.outerModelType);
  const all = Object.values(KNOWN_FAMILIES);
  const inputPatterns = fam ? fam.input : [...new Set(all.flatMap((f) => f.input))];
  const headPatterns = fam ? fam.head : [...new Set(all.flatMap((f) => f.head))];
  let input: CheckpointTensorInfo | undefined;
  for (const re of inputPatterns) {
    input = tensors.find((t) => re.test(t.name) && isVocabMatrix(t, config, config.embeddingWidth));
    if (input) break;
  }
  if (!input) {
    const cands = tensors
      .filter((t) => t.shape.length === 2)
      .sort((a, b) => b.shape[0] - a.shape[0])
      .slice(0, 20)
      .map((t) => `${t.name} [${t.shape.join(', ')}]`);
    throw new SaltError(
      'E_NOT_FOUND',
      `${label}: no input embedding of shape [${config.vocabSize}, ${config.embeddingWidth}] (vocab_size x width from config.json, model_type ${JSON.stringify(config.modelType)}) ` +
        `matches the known name patterns; 2-D tensors found: ${cands.length ? cands.join(', ') : 'none'}`,
    );
  }
  let head: CheckpointTensorInfo | null = null;
  for (const re of headPatterns) {
    const h = tensors.find((t) => re.test(t.name) && t.name !== input!.name);
    if (h) {
      if (!isVocabMatrix(h, config, config.hiddenSize) && !isVocabMatrix(h, config, config.embeddingWidth)) {
        throw new SaltError(
          'E_FORMAT',
          `${label}: output head ${JSON.stringify(h.name)} has shape [${h.shape.join(', ')}], expected [${config.vocabSize}, ${config.hiddenSize}]`,
        );
      }
      head = h;
      break;
    }
  }
  // (A head holding the same bytes as the input is recognised by HfModel.open, which compares them:
  // the reader rejects tensors sharing storage, so names never share a file offset.)
  let tieReason: TieReason | null = null;
  if (config.tieWordEmbeddings)
    tieReason = 'config'; // stated, or the family's default (as transformers does)
  else if (!head && !config.tieStated) tieReason = 'missing-head';
  if (!head && tieReason === null) {
    throw new SaltError(
      'E_NOT_FOUND',
      `${label}: config.json says tie_word_embeddings is false but no output head tensor (e.g. lm_head.weight) was found`,
    );
  }
  return { input, head, tied: tieReason !== null, tieReason };
}

/** An opened Hugging Face model folder. Call {@link close} when done. */
export class HfModel {
  /** The model folder. */
  readonly folder: string;
  /** Parsed config.json. */
  readonly config: ModelConfig;
  /** The weights (safetensors, or PyTorch `.bin` read without executing code: see `weights.format`). */
  readonly weights: SafetensorsCheckpoint;
  /** Tokenizer files of the folder (empty when none). */
  readonly tokenizerFiles: readonly string[];
  /** Location of the input embedding and output head. */
  readonly embeddings: EmbeddingLocation;

  private constructor(
    folder: string,
    config: ModelConfig,
    weights: SafetensorsCheckpoint,
    tokenizerFiles: string[],
    embeddings: EmbeddingLocation,
  ) {
    this.folder = folder;
    this.config = config;
    this.weights = weights;
    this.tokenizerFiles = Object.freeze(tokenizerFiles);
    this.embeddings = embeddings;
  }

  /**
   * Opens a model folder: reads config.json, lists tokenizer files, opens the weights (safetensors,
   * single or sharded; without them PyTorch `pytorch_model.bin` or its shards, read without
   * executing code) and locates the embeddings.
   */
  static async open(folder: string): Promise<HfModel> {
    if (typeof folder !== 'string') throw new SaltTypeError(`folder must be a string, received ${describe(folder)}`);
    const config = await readModelConfig(folder);
    const weights = await SafetensorsCheckpoint.open(folder);
    try {
      const entries = await readdir(folder);
      const tok = TOKENIZER_FILES.filter((f) => entries.includes(f));
      let emb = locateEmbeddings(weights.tensors(), config, folder);
      if (!emb.tied && emb.head && (await sameBytes(weights, emb.input, emb.head)))
        emb = { ...emb, tied: true, tieReason: 'identical-head' };
      return new HfModel(folder, config, weights, tok, emb);
    } catch (err) {
      await weights.close();
      throw err;
    }
  }

  /** The input embedding decoded to Float32 (row-major [vocab, width]); `options.shared` as in {@link ReadFloat32Options}. */
  readInputEmbedding(options: Pick<ReadFloat32Options, 'shared'> = {}): Promise<Float32Array> {
    return this.weights.readFloat32(this.embeddings.input.name, { shared: options.shared });
  }

  /** The output head decoded to Float32; for tied models this is the input embedding. `options` as in {@link readInputEmbedding}. */
  readOutputHead(options: Pick<ReadFloat32Options, 'shared'> = {}): Promise<Float32Array> {
    const h = this.embeddings.head;
    return this.weights.readFloat32(h && !this.embeddings.tied ? h.name : this.embeddings.input.name, {
      shared: options.shared,
    });
  }

  /** The tokenizer of this folder (see {@link readTokenizerInfo}). */
  readTokenizer(): Promise<TokenizerInfo> {
    return readTokenizerInfo(this.folder);
  }

  /** Closes the weight files. */
  close(): Promise<void> {
    return this.weights.close();
  }
}

/**
 * True when two tensors hold identical bytes (a head saved as a copy of the input embedding).
 * Compares the first chunk first, so untied models cost one small read.
 */
export async function sameBytes(
  w: SafetensorsCheckpoint,
  a: CheckpointTensorInfo,
  b: CheckpointTensorInfo,
): Promise<boolean> {
  if (a.dtype !== b.dtype || a.byteLength !== b.byteLength || a.shape.join() !== b.shape.join()) return false;
  const first = async (name: string) => (await w.streamBytes(name, 1 << 20).next()).value as Buffer | undefined;
  const [fa, fb] = await Promise.all([first(a.name), first(b.name)]);
  if (!fa || !fb) return !fa && !fb;
  if (!fa.equals(fb)) return false;
  const ia = w.streamBytes(a.name);
  const ib = w.streamBytes(b.name);
  for (;;) {
    const [x, y] = await Promise.all([ia.next(), ib.next()]);
    if (x.done || y.done) return x.done === y.done;
    if (!x.value.equals(y.value)) {
      await Promise.all([ia.return(undefined), ib.return(undefined)]);
      return false;
    }
  }
}
