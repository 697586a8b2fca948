/**
 * Reading of a Hugging Face model folder's `config.json` and tokenizer files.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { describe, SaltError } from '../errors.js';
import { readJsonCached, readJsonFile, readUtf8File } from '../inputFiles.js';
import { specialTokenIds, specialTokenNames } from '../tokenizer/specialTokens.js';
import { readTokenizerJson, type ScannedVocab } from '../tokenizer/tokenizerJson.js';
import { ioError } from './atomic.js';

/** Special-token ids of a model or tokenizer (`null`: the role has no token). */
export interface SpecialTokenIds {
  bos: number | null;
  eos: number | number[] | null;
  pad: number | null;
  unk: number | null;
}

/** The fields of `config.json` that the file layer uses, normalised across families. */
export interface ModelConfig {
  /** `model_type` (of the text model when nested), e.g. "llama", "gemma3_text", "bert". */
  modelType: string;
  /** Top-level `model_type` (differs from {@link modelType} for nested configs, e.g. "gemma3"). */
  outerModelType: string;
  /** Vocabulary size (rows of the input embedding). */
  vocabSize: number;
  /** Hidden size of the transformer (`hidden_size`, `n_embd`, `d_model` or `n_embed`). */
  hiddenSize: number;
  /** Width of the input embedding (differs from hiddenSize for OPT models with `word_embed_proj_dim`). */
  embeddingWidth: number;
  /** Whether input embedding and output head share weights (config flag, or the family's default). */
  tieWordEmbeddings: boolean;
  /** Whether `tie_word_embeddings` was stated in the config (false: family default used). */
  tieStated: boolean;
  /** Special-token ids stated in the config. */
  specialTokens: SpecialTokenIds;
  /** "text_config" when the text model's fields are nested under that key, else null. */
  nestedKey: 'text_config' | null;
  /** The parsed JSON as read. */
  raw: Record<string, unknown>;
}

/** Families whose Hugging Face config class defaults to untied embeddings. */
const UNTIED_BY_DEFAULT = new Set([
  'llama',
  'mistral',
  'mixtral',
  'qwen2',
  'qwen3',
  'qwen2_moe',
  'qwen3_moe',
  'phi3',
  'gpt_neox',
  'mt5',
]);

export { readJsonFile } from '../inputFiles.js';

function intOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

function idOrList(v: unknown): number | number[] | null {
  if (Array.isArray(v)) {
    const ids = v.map(intOrNull);
    return ids.every((x) => x !== null) && ids.length ? (ids as number[]) : null;
  }
  return intOrNull(v);
}

/**
 * Parses a `config.json` object. Fields of multimodal models nested under `text_config` are used
 * when the top level lacks them. E_FORMAT when vocab size or hidden size cannot be found.
 */
export function parseModelConfig(raw: unknown, label = 'config.json'): ModelConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new SaltError('E_FORMAT', `${label}: expected a JSON object, received ${describe(raw)}`);
  const top = raw as Record<string, unknown>;
  const tc = top.text_config;
  const nested =
    tc !== null && typeof tc === 'object' && !Array.isArray(tc) && top.vocab_size === undefined
      ? (tc as Record<string, unknown>)
      : null;
  const c = nested ?? top;
  const pick = (...keys: string[]) => {
    for (const k of keys) if (c[k] !== undefined) return c[k];
    for (const k of keys) if (top[k] !== undefined) return top[k];
    return undefined;
  };
  const outerModelType = typeof top.model_type === 'string' ? top.model_type : '';
  const modelType = typeof c.model_type === 'string' ? c.model_type : outerModelType;
  const vocabSize = intOrNull(pick('vocab_size'));
  if (vocabSize === null || vocabSize === 0)
    throw new SaltError(
      'E_FORMAT',
      `${label}: expected a positive integer "vocab_size"${nested ? ' (in text_config)' : ''}, received ${describe(pick('vocab_size'))}`,
    );
  const hiddenSize = intOrNull(pick('hidden_size', 'n_embd', 'd_model', 'n_embed'));
  if (hiddenSize === null || hiddenSize === 0) {
    throw new SaltError(
      'E_FORMAT',
      `${label}: expected a positive integer "hidden_size" (or n_embd / d_model), received ${describe(pick('hidden_size', 'n_embd', 'd_model'))}`,
    );
  }
  const proj = intOrNull(pick('word_embed_proj_dim'));
  const embeddingWidth =
    modelType === 'opt' && proj
      ? proj
      : modelType === 'albert'
        ? (intOrNull(pick('embedding_size')) ?? hiddenSize)
        : hiddenSize;
  const tieRaw = c.tie_word_embeddings ?? top.tie_word_embeddings;
  // What transformers refuses to load (AutoConfig: "Unrecognized model ... Should have a `model_type`
  // key"; its config classes validate tie_word_embeddings as a bool) is refused here, before any work.
  if (outerModelType === '')
    throw new SaltError(
      'E_FORMAT',
      `${label}: expected a non-empty string "model_type" (transformers chooses the model class by it), received ${describe(top.model_type)}`,
    );
  if (tieRaw !== undefined && tieRaw !== null && typeof tieRaw !== 'boolean') {
    throw new SaltError(
      'E_FORMAT',
      `${label}: expected "tie_word_embeddings"${c !== top && c.tie_word_embeddings !== undefined ? ' (in text_config)' : ''} to be true or false, received ${describe(tieRaw)}`,
    );
  }
  const tieStated = typeof tieRaw === 'boolean';
  const tieWordEmbeddings = tieStated ? (tieRaw as boolean) : !UNTIED_BY_DEFAULT.has(modelType);
  return {
    modelType,
    outerModelType,
    vocabSize,
    hiddenSize,
    embeddingWidth,
    tieWordEmbeddings,
    tieStated,
    specialTokens: {
      bos: intOrNull(pick('bos_token_id')),
      eos: idOrList(pick('eos_token_id')),
      pad: intOrNull(pick('pad_token_id')),
      unk: intOrNull(pick('unk_token_id')),
    },
    nestedKey: nested ? 'text_config' : null,
    raw: top,
  };
}

/** Reads `<folder>/config.json` (see {@link parseModelConfig}). */
export async function readModelConfig(folder: string): Promise<ModelConfig> {
  const p = join(folder, 'config.json');
  return parseModelConfig(await readJsonFile(p), p);
}

/** File names that make up a Hugging Face tokenizer (any of them may be present). */
export const TOKENIZER_FILES: readonly string[] = Object.freeze([
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'tokenizer.model',
  'spiece.model',
  'sentencepiece.bpe.model',
  'spm.model',
  'vocab.json',
  'merges.txt',
  'vocab.txt',
  'chat_template.jinja',
  'chat_template.json',
]);

/** A tokenizer found in a folder. */
export interface TokenizerInfo {
  /** Folder holding the files. */
  folder: string;
  /** Tokenizer files present (names from {@link TOKENIZER_FILES}). */
  files: string[];
  /** Vocabulary size (largest id + 1) when `tokenizer.json` or `vocab.json`/`vocab.txt` is present, else null. */
  vocabSize: number | null;
  /**
   * Ids of the special tokens named in tokenizer_config.json / special_tokens_map.json (precedence as in
   * transformers, see `specialTokenNames` in lib/tokenizer); all null when no vocabulary is available.
   */
  specialTokens: SpecialTokenIds;
  /** Token string -> id, from tokenizer.json (model vocab plus added tokens) or vocab.json / vocab.txt; null when not available. */
  vocab: Map<string, number> | null;
}

/** The content -> id map of a parsed tokenizer.json: its model vocab, then its added tokens (a later entry wins). */
function tokenizerJsonVocab(
  tj: { model?: { vocab?: unknown }; added_tokens?: unknown } | null,
  scanned: ScannedVocab | null,
): Map<string, number> {
  const vocab = new Map<string, number>();
  const mv = tj?.model?.vocab;
  if (scanned) scanned.pieces.forEach((p, i) => vocab.set(p, scanned.ids[i]));
  else if (Array.isArray(mv)) mv.forEach((e, i) => Array.isArray(e) && typeof e[0] === 'string' && vocab.set(e[0], i));
  else if (mv && typeof mv === 'object')
    for (const [k, v] of Object.entries(mv)) if (intOrNull(v) !== null) vocab.set(k, v as number);
  if (Array.isArray(tj?.added_tokens)) {
    for (const t of tj!.added_tokens as Array<{ id?: unknown; content?: unknown }>) {
      if (typeof t?.content === 'string' && intOrNull(t.id) !== null) vocab.set(t.content, t.id as number);
    }
  }
  return vocab;
}

/** The added tokens' content -> id, the last entry of each content winning (as in the map). */
function addedTokenIds(added: unknown): Map<string, number> {
  const addedIds = new Map<string, number>();
  if (Array.isArray(added))
    for (const t of added as Array<{ id?: unknown; content?: unknown }>)
      if (typeof t?.content === 'string' && intOrNull(t.id) !== null) addedIds.set(t.content, t.id as number);
  return addedIds;
}

function isScanned(v: Record<string, unknown> | ScannedVocab): v is ScannedVocab {
  return Array.isArray(v.pieces) && v.ids instanceof Int32Array;
}

/**
 * The vocabulary size and a content -> id lookup of a tokenizer.json whose model vocab is an object
 * (as parsed, or as read by the scan), equal to those of the map {@link readTokenizerInfo} builds
 * (model vocab first, then added tokens, a later entry for the same content winning) without
 * building it: 150k `Map.set` calls were a tenth of a second of a target's preparation.
 */
function sizeAndLookup(
  mv: Record<string, unknown> | ScannedVocab,
  added: unknown,
): { size: number | null; idOf: (content: string) => number | undefined } {
  const addedIds = addedTokenIds(added);
  // The model's entries and the value of one, in either form (a scanned vocabulary's keys are unique).
  const scanned = isScanned(mv) ? mv : null;
  const parsed = mv as Record<string, unknown>;
  const each = (visit: (key: string, id: unknown) => void): void => {
    if (scanned) scanned.pieces.forEach((p, i) => visit(p, scanned.ids[i]));
    else for (const k in parsed) visit(k, parsed[k]);
  };
  const modelValue = (content: string): unknown => {
    if (!scanned) return Object.hasOwn(parsed, content) ? parsed[content] : undefined;
    const i = scanned.pieces.indexOf(content); // a few lookups (the special tokens): a scan each
    return i >= 0 ? scanned.ids[i] : undefined;
  };
  let max = -1;
  let any = addedIds.size > 0;
  for (const id of addedIds.values()) if (id > max) max = id;
  each((k, v) => {
    if (intOrNull(v) === null || addedIds.has(k)) return; // an added token's id replaces the model's
    any = true;
    if ((v as number) > max) max = v as number;
  });
  const idOf = (content: string): number | undefined => {
    const v = addedIds.get(content) ?? modelValue(content);
    return intOrNull(v) !== null ? (v as number) : undefined;
  };
  return { size: any ? max + 1 : null, idOf };
}

/**
 * Lists a folder's tokenizer files and resolves its vocabulary size and special-token ids.
 * `withVocab: false`: a caller that does not need the string -> id map gets `vocab: null` where the
 * size and ids can be read without building it (tokenizer.json with an object vocab); same values.
 * `scan: false`: tokenizer.json parsed whole, never by the addon's scan (same values; see `readTokenizerJson`).
 * E_NOT_FOUND when the folder has no tokenizer file at all; E_NOT_FOUND / E_IO when a file cannot be
 * read; E_FORMAT for invalid JSON, a malformed `*_token` entry, or (when the vocabulary is known) a
 * `*_token` entry naming a token the vocabulary does not have, as the tokenizer loader does.
 */
export async function readTokenizerInfo(
  folder: string,
  options: { json?: Map<string, unknown>; withVocab?: boolean; scan?: boolean } = {},
): Promise<TokenizerInfo> {
  let entries: string[];
  try {
    entries = await readdir(folder);
  } catch (err) {
    throw ioError(err, `could not list tokenizer folder ${JSON.stringify(folder)}`);
  }
  const files = TOKENIZER_FILES.filter((f) => entries.includes(f));
  if (!files.length)
    throw new SaltError(
      'E_NOT_FOUND',
      `${JSON.stringify(folder)} has no tokenizer files (expected one of ${TOKENIZER_FILES.slice(0, 5).join(', ')}, ...)`,
    );
  let vocab: Map<string, number> | null = null;
  // Without the string -> id map (`withVocab: false`, tokenizer.json with an object vocab): the size
  // and the special tokens' ids read from the parsed file directly, with the map's precedence.
  let sized: { size: number | null; idOf: (content: string) => number | undefined } | null = null;
  if (files.includes('tokenizer.json')) {
    const read = await readTokenizerJson(join(folder, 'tokenizer.json'), options.json, { scan: options.scan });
    const tj = read.json as { model?: { vocab?: unknown }; added_tokens?: unknown } | null;
    const mv = tj?.model?.vocab;
    if (
      options.withVocab === false &&
      mv &&
      typeof mv === 'object' &&
      !Array.isArray(mv) &&
      !files.includes('added_tokens.json')
    ) {
      sized = sizeAndLookup(read.vocab ?? (mv as Record<string, unknown>), tj?.added_tokens);
    } else {
      vocab = tokenizerJsonVocab(tj, read.vocab);
    }
  } else if (files.includes('vocab.json')) {
    const vj = await readJsonFile(join(folder, 'vocab.json'));
    if (vj && typeof vj === 'object' && !Array.isArray(vj)) {
      vocab = new Map();
      for (const [k, v] of Object.entries(vj)) if (intOrNull(v) !== null) vocab.set(k, v as number);
    }
  } else if (files.includes('vocab.txt')) {
    const text = await readUtf8File(join(folder, 'vocab.txt'), 'vocabulary');
    const lines = text.split('\n');
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    vocab = new Map(lines.map((l, i) => [l.replace(/\r$/, ''), i]));
  }
  if (vocab && files.includes('added_tokens.json')) {
    const at = await readJsonFile(join(folder, 'added_tokens.json'));
    if (at && typeof at === 'object')
      for (const [k, v] of Object.entries(at)) if (intOrNull(v) !== null) vocab.set(k, v as number);
  }
  let vocabSize: number | null = sized ? sized.size : null;
  if (vocab && vocab.size) {
    let max = -1;
    for (const id of vocab.values()) if (id > max) max = id;
    vocabSize = max + 1;
  }
  // Same resolver and precedence as the tokenizer loader (lib/tokenizer/specialTokens.ts).
  const load = async (f: string) =>
    files.includes(f)
      ? { file: join(folder, f), json: await readJsonCached(join(folder, f), options.json) }
      : undefined;
  const names = specialTokenNames(await load('tokenizer_config.json'), await load('special_tokens_map.json'));
  const lookup = sized ? sized.idOf : vocab ? (content: string) => vocab!.get(content) : null;
  const ids = lookup ? specialTokenIds(names, lookup, `the vocabulary of ${JSON.stringify(folder)}`) : new Map();
  const idOf = (role: 'bos' | 'eos' | 'pad' | 'unk'): number | null => ids.get(role) ?? null;
  return {
    folder,
    files,
    vocabSize,
    vocab,
    specialTokens: { bos: idOf('bos'), eos: idOf('eos'), pad: idOf('pad'), unk: idOf('unk') },
  };
}
