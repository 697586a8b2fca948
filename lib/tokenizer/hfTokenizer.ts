/**
 * Loader for Hugging Face `tokenizer.json` (models BPE, Unigram, WordPiece, WordLevel), with the roles of
 * special tokens from `tokenizer_config.json` and `special_tokens_map.json`.
 */
import { join } from 'node:path';

import { describe, SaltError } from '../errors.js';
import { optionalFile, readJsonCached } from '../inputFiles.js';
import { inferRolesByName } from './roles.js';
import { specialTokenIds, specialTokenNames } from './specialTokens.js';
import { readTokenizerJson, type ScannedVocab } from './tokenizerJson.js';
import {
  buildVocabulary,
  type SpecialRole,
  type SpellingConvention,
  type TokenKind,
  type Vocabulary,
} from './vocabulary.js';

/**
 * Most ids a tokenizer.json may leave unused below its largest id (tiktoken-derived vocabularies leave a
 * few hundred). A larger gap is taken as a corrupt id: E_FORMAT rather than a table of billions of entries.
 */
export const MAX_ID_HOLES = 1 << 20;

/** Options of {@link loadHfTokenizerJson}. */
export interface HfTokenizerOptions {
  /** Path of a `tokenizer_config.json` whose `*_token` entries give roles (read if given). */
  tokenizerConfig?: string;
  /**
   * Path of a `special_tokens_map.json` (read if given). As in transformers, it is ignored when
   * tokenizer_config.json has `added_tokens_decoder`, and otherwise its entries win (see specialTokenNames).
   */
  specialTokensMap?: string;
  /** Recognise conventional special-token names for roles the files leave unset (default true). */
  inferRoles?: boolean;
  /** Parsed JSON files by path, shared with other readers of the same folder (see `readJsonCached`). */
  json?: Map<string, unknown>;
  /**
   * Read an object vocabulary with the addon's scan where it takes the file (default true; see
   * `readTokenizerJson`). false parses the file whole; the result is the same either way.
   */
  scan?: boolean;
}

export { readJsonFile } from '../inputFiles.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface DecoderFacts {
  convention?: SpellingConvention;
  byteFallback: boolean;
  prefix?: string;
  unsupported?: string;
}

/** Walks a decoder (or pre-tokenizer) tree and collects what it says about the spelling. */
function scanDecoder(node: unknown, facts: DecoderFacts, file: string): void {
  if (!isObject(node)) return;
  switch (node.type) {
    case 'Sequence': {
      const list = node.decoders ?? node.pretokenizers ?? [];
      if (!Array.isArray(list))
        throw new SaltError(
          'E_FORMAT',
          `${file}: a "Sequence" decoder/pre-tokenizer must hold an array in "decoders" or "pretokenizers", received ${describe(list)}`,
        );
      for (const d of list) scanDecoder(d, facts, file);
      return;
    }
    case 'ByteLevel':
      facts.convention ??= 'byte-level';
      return;
    case 'Metaspace':
      facts.convention ??= 'sentencepiece';
      if (typeof node.replacement === 'string' && node.replacement !== '\u2581')
        facts.unsupported = `Metaspace replacement ${JSON.stringify(node.replacement)} (only "\u2581" is supported)`;
      return;
    case 'Replace': {
      const pat = isObject(node.pattern) ? node.pattern.String : undefined;
      if (pat === '\u2581' && node.content === ' ') facts.convention ??= 'sentencepiece';
      return;
    }
    case 'ByteFallback':
      facts.byteFallback = true;
      return;
    case 'WordPiece':
      facts.convention ??= 'wordpiece';
      if (typeof node.prefix === 'string') facts.prefix = node.prefix;
      return;
    case 'BPEDecoder':
      facts.unsupported = `decoder BPEDecoder with end-of-word suffix ${JSON.stringify(node.suffix)}`;
      return;
    case 'CTC':
      facts.unsupported = 'decoder CTC';
      return;
    default:
      return;
  }
}

/**
 * Loads a Hugging Face `tokenizer.json` into canonical form.
 *
 * The spelling convention comes from the decoder (ByteLevel -> byte-level; Metaspace or Replace "▁"->" "
 * -> sentencepiece; WordPiece -> wordpiece), else from the pre-tokenizer, else from the model type
 * (WordPiece -> wordpiece, WordLevel -> words). Added tokens override the model's entry for their id;
 * `special: true` makes them `special`. Roles come from the config files, then from `model.unk_token`,
 * then (unless `inferRoles: false`) from conventional names of special tokens.
 *
 * @param file - path of tokenizer.json.
 * @throws SaltError `E_NOT_FOUND` / `E_IO` if a file cannot be read; `E_FORMAT` for invalid JSON, a
 *   missing or malformed `model`, duplicate ids, an id beyond (entries + {@link MAX_ID_HOLES}) (ids no token uses
 *   become empty `unused` entries); `E_UNSUPPORTED` for an unknown model type or
 *   a decoder this version cannot interpret (e.g. end-of-word suffixes).
 */
export async function loadHfTokenizerJson(file: string, options: HfTokenizerOptions = {}): Promise<Vocabulary> {
  const read = await readTokenizerJson(file, options.json, { scan: options.scan });
  if (!read.vocab) return vocabularyOf(file, read.json, null, options);
  try {
    return await vocabularyOf(file, read.json, read.vocab, options);
  } catch (err) {
    if (!(err instanceof SaltError)) throw err;
    // A refused file: the error as the whole-file parse words it (its checks visit the vocabulary in
    // for-in order, which puts integer-like keys first; the scan's order is the file's).
    return vocabularyOf(file, (await readTokenizerJson(file, undefined, { scan: false })).json, null, options);
  }
}

/** {@link loadHfTokenizerJson} of a parsed file; `scanned`: its object vocabulary, read by the scan. */
async function vocabularyOf(
  file: string,
  json: unknown,
  scanned: ScannedVocab | null,
  options: HfTokenizerOptions,
): Promise<Vocabulary> {
  if (!isObject(json) || !isObject(json.model)) {
    throw new SaltError(
      'E_FORMAT',
      `${file}: expected a tokenizer.json object with a "model" object, received ${describe(isObject(json) ? json.model : json)}`,
    );
  }
  const model = json.model;
  // Older files omit model.type; infer it from the vocab's shape like the reference library does.
  let type = model.type;
  if (type === undefined)
    type = Array.isArray(model.vocab)
      ? 'Unigram'
      : Array.isArray(model.merges)
        ? 'BPE'
        : isObject(model.vocab)
          ? 'WordLevel'
          : undefined;
  const idToPiece: (string | undefined)[] = [];
  // Ids no token uses become unused entries (below), so the largest id decides the table's size. Bound it
  // by the number of entries plus MAX_ID_HOLES, so that one corrupt id cannot make the loader allocate
  // and fill billions of entries.
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added))
    throw new SaltError('E_FORMAT', `${file}: added_tokens must be an array, received ${describe(added)}`);
  const entries =
    (Array.isArray(model.vocab)
      ? model.vocab.length
      : isObject(model.vocab)
        ? (scanned?.pieces.length ?? Object.keys(model.vocab).length)
        : 0) + added.length;
  const maxId = entries + MAX_ID_HOLES - 1;
  // `what` names the entry in an error; built only then (150k labels per file otherwise).
  const checkId = (id: unknown, what: () => string): number => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new SaltError('E_FORMAT', `${file}: ${what()} has id ${describe(id)} (expected a non-negative integer)`);
    }
    if (id > maxId) {
      throw new SaltError(
        'E_FORMAT',
        `${file}: ${what()} has id ${id}, beyond the largest plausible id ${maxId} (${entries} entries plus at most ${MAX_ID_HOLES} unused ids)`,
      );
    }
    return id;
  };
  const set = (rawId: unknown, piece: string, where: string): void => {
    const id = checkId(rawId, () => `${where} "${piece}"`);
    if (idToPiece[id] !== undefined) {
      throw new SaltError('E_FORMAT', `${file}: duplicate id ${id} in ${where}: "${idToPiece[id]}" and "${piece}"`);
    }
    idToPiece[id] = piece;
  };
  let byteFallback = model.byte_fallback === true;
  switch (type) {
    case 'BPE':
    case 'WordPiece':
    case 'WordLevel': {
      if (!isObject(model.vocab))
        throw new SaltError(
          'E_FORMAT',
          `${file}: model.vocab of a ${type} model must be an object {token: id}, received ${describe(model.vocab)}`,
        );
      if (scanned) {
        for (let i = 0; i < scanned.pieces.length; i++) set(scanned.ids[i], scanned.pieces[i], 'model.vocab');
      } else {
        // for-in visits the keys in Object.entries' order (a parsed object has no inherited enumerable keys).
        const vocab = model.vocab;
        for (const piece in vocab) set(vocab[piece], piece, 'model.vocab');
      }
      if (type === 'BPE' && typeof model.end_of_word_suffix === 'string' && model.end_of_word_suffix !== '') {
        throw new SaltError(
          'E_UNSUPPORTED',
          `${file}: BPE with end_of_word_suffix ${JSON.stringify(model.end_of_word_suffix)} is not supported (word-end markers, e.g. CLIP)`,
        );
      }
      if (
        type === 'BPE' &&
        typeof model.continuing_subword_prefix === 'string' &&
        model.continuing_subword_prefix !== ''
      ) {
        throw new SaltError(
          'E_UNSUPPORTED',
          `${file}: BPE with continuing_subword_prefix ${JSON.stringify(model.continuing_subword_prefix)} is not supported`,
        );
      }
      break;
    }
    case 'Unigram': {
      if (!Array.isArray(model.vocab))
        throw new SaltError(
          'E_FORMAT',
          `${file}: model.vocab of a Unigram model must be an array of [piece, score], received ${describe(model.vocab)}`,
        );
      model.vocab.forEach((entry: unknown, id: number) => {
        if (!Array.isArray(entry) || typeof entry[0] !== 'string')
          throw new SaltError(
            'E_FORMAT',
            `${file}: model.vocab[${id}] must be [piece, score], received ${describe(entry)}`,
          );
        set(id, entry[0], 'model.vocab');
      });
      break;
    }
    default:
      throw new SaltError(
        'E_UNSUPPORTED',
        `${file}: unknown tokenizer model type ${describe(type)}; expected "BPE", "Unigram", "WordPiece" or "WordLevel"`,
      );
  }
  // A model without tokens (only added tokens left) is a broken or truncated file, not a vocabulary.
  if (idToPiece.length === 0)
    throw new SaltError(
      'E_FORMAT',
      `${file}: model.vocab is empty (the tokenizer would consist of its ${added.length} added tokens only)`,
    );
  const kinds: (TokenKind | undefined)[] = [];
  const seenAdded = new Set<number>();
  for (const [i, t] of added.entries()) {
    if (!isObject(t) || typeof t.content !== 'string')
      throw new SaltError(
        'E_FORMAT',
        `${file}: added_tokens[${i}] must be an object with a string "content", received ${describe(t)}`,
      );
    const id = checkId(t.id, () => `added_tokens[${i}] "${t.content}"`);
    if (seenAdded.has(id))
      throw new SaltError('E_FORMAT', `${file}: duplicate id ${id} in added_tokens ("${t.content}")`);
    seenAdded.add(id);
    // An added token may re-declare a model token (same id); it then overrides the model's entry.
    idToPiece[id] = t.content;
    if (t.special === true) kinds[id] = 'special';
  }
  // Ids no token uses (tiktoken-derived vocabularies such as cl100k / o200k have holes) become unused
  // entries with an empty piece, so that ids keep their meaning.
  for (let id = 0; id < idToPiece.length; id++) {
    if (idToPiece[id] === undefined) {
      idToPiece[id] = '';
      kinds[id] = 'unused';
    }
  }
  const pieces = idToPiece as string[];

  const facts: DecoderFacts = { byteFallback: false };
  scanDecoder(json.decoder, facts, file);
  if (facts.unsupported) throw new SaltError('E_UNSUPPORTED', `${file}: ${facts.unsupported} is not supported`);
  if (!facts.convention) scanDecoder(json.pre_tokenizer, facts, file);
  let convention = facts.convention;
  if (!convention && type === 'WordPiece') convention = 'wordpiece';
  if (!convention && type === 'WordLevel') convention = 'words';
  if (!convention) {
    throw new SaltError(
      'E_UNSUPPORTED',
      `${file}: cannot tell how tokens spell text: decoder ${describe(isObject(json.decoder) ? json.decoder.type : json.decoder)} and pre_tokenizer ${describe(isObject(json.pre_tokenizer) ? json.pre_tokenizer.type : json.pre_tokenizer)} are neither ByteLevel, Metaspace, Replace("\u2581"), nor WordPiece`,
    );
  }
  byteFallback ||= facts.byteFallback;
  const prefix =
    facts.prefix ?? (typeof model.continuing_subword_prefix === 'string' ? model.continuing_subword_prefix : '##');

  // Roles: explicit config first, then the model's unk token, then conventional names.
  const byContent = new Map<string, number>();
  for (let id = pieces.length - 1; id >= 0; id--) byContent.set(pieces[id], id);
  const names = specialTokenNames(
    options.tokenizerConfig
      ? { file: options.tokenizerConfig, json: await readJsonCached(options.tokenizerConfig, options.json) }
      : undefined,
    options.specialTokensMap
      ? { file: options.specialTokensMap, json: await readJsonCached(options.specialTokensMap, options.json) }
      : undefined,
  );
  const roles: Map<SpecialRole, number> = specialTokenIds(names, (content) => byContent.get(content), file);
  if (!roles.has('unk') && typeof model.unk_token === 'string' && byContent.has(model.unk_token))
    roles.set('unk', byContent.get(model.unk_token)!);
  if (!roles.has('unk') && type === 'Unigram' && typeof model.unk_id === 'number' && model.unk_id < pieces.length)
    roles.set('unk', model.unk_id);
  // The unknown token is a special token even where it is not listed among the added tokens.
  const unk = roles.get('unk');
  if (unk !== undefined && kinds[unk] === undefined) kinds[unk] = 'special';
  if (options.inferRoles !== false) inferRolesByName(pieces, (id) => kinds[id] === 'special', roles);

  const normalizerPrepends = JSON.stringify(json.normalizer ?? null).includes('"Prepend"');
  const metaspacePrepends =
    JSON.stringify(json.pre_tokenizer ?? null).match(/"prepend_scheme":"(always|first)"|"add_prefix_space":true/) !==
      null && convention === 'sentencepiece';
  return buildVocabulary({
    name: file,
    format: 'tokenizer.json',
    convention,
    pieces,
    kinds,
    byteFallback,
    continuationPrefix: prefix,
    roles,
    addsSpacePrefix: normalizerPrepends || metaspacePrepends,
  });
}

/**
 * Loads the tokenizer of a Hugging Face model folder: `tokenizer.json` plus, where present,
 * `tokenizer_config.json` and `special_tokens_map.json` for roles.
 *
 * @throws SaltError `E_NOT_FOUND` if the folder has no tokenizer.json; otherwise as {@link loadHfTokenizerJson}.
 */
export async function loadHfTokenizerFolder(
  folder: string,
  options: { inferRoles?: boolean; json?: Map<string, unknown> } = {},
): Promise<Vocabulary> {
  const tj = join(folder, 'tokenizer.json');
  // Absent means ENOENT only: a symlink loop, a FIFO or an unreadable folder is an error, not "no file".
  if (!(await optionalFile(tj, 'tokenizer file')))
    throw new SaltError('E_NOT_FOUND', `${folder} has no tokenizer.json (expected a Hugging Face model folder)`);
  const cfg = join(folder, 'tokenizer_config.json');
  const stm = join(folder, 'special_tokens_map.json');
  return loadHfTokenizerJson(tj, {
    tokenizerConfig: (await optionalFile(cfg, 'tokenizer config')) ? cfg : undefined,
    specialTokensMap: (await optionalFile(stm, 'special tokens map')) ? stm : undefined,
    inferRoles: options.inferRoles,
    json: options.json,
  });
}
