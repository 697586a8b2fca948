/**
 * The canonical token table: every token id of a vocabulary mapped to what it stands for, independent of
 * the tokenizer family's spelling ("▁word", "Ġword", "word"/"##word", "<0xE2>", byte-level code points).
 */
import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';

/**
 * What a token is.
 * - `normal`: ordinary text.
 * - `special`: flagged special or control by the tokenizer (Hugging Face added token with `special: true`,
 *   GGUF / SentencePiece CONTROL or UNKNOWN type, the `[CLS]`-style entries of a BERT vocab.txt). Never
 *   part of plain text; matched between vocabularies by {@link SpecialRole}, not by bytes.
 * - `byte`: stands for one raw byte that is not a complete UTF-8 character on its own: SentencePiece
 *   byte-fallback pieces `<0xNN>` (all 256 values) and byte-level BPE tokens of a single byte >= 0x80.
 * - `control`: a non-special text token whose bytes are one ASCII control character (0x00-0x1F except
 *   tab, LF, CR; or 0x7F), e.g. GPT-2's tokens for those bytes. Matched like `normal` tokens.
 * - `unused`: a reserved placeholder (GGUF / SentencePiece UNUSED type, or named `<unusedN>`,
 *   `[unusedN]`, `[PADN]`, `<|reserved_special_token_N|>`). Never matched.
 */
export type TokenKind = 'normal' | 'special' | 'byte' | 'control' | 'unused';

/** The kinds in the order of their numeric codes in {@link Vocabulary.kinds}. */
export const TOKEN_KINDS: readonly TokenKind[] = ['normal', 'special', 'byte', 'control', 'unused'];

/** Numeric codes of {@link TokenKind} as stored in {@link Vocabulary.kinds}. */
export const KIND_CODE: Readonly<Record<TokenKind, number>> = { normal: 0, special: 1, byte: 2, control: 3, unused: 4 };

/** Roles of special tokens, used to match special tokens across vocabularies. */
export type SpecialRole = 'bos' | 'eos' | 'unk' | 'pad' | 'mask' | 'cls' | 'sep' | 'eot';

/** All roles, in a fixed order. */
export const SPECIAL_ROLES: readonly SpecialRole[] = ['bos', 'eos', 'unk', 'pad', 'mask', 'cls', 'sep', 'eot'];

/**
 * How the tokenizer spells text in its token strings.
 * - `byte-level`: GPT-2-style byte-to-code-point map; a leading space byte marks a word start ("Ġword").
 * - `sentencepiece`: "▁" stands for a space and marks word starts ("▁word"); `<0xNN>` byte pieces when
 *   byte fallback is on. Also used for llama.cpp's BERT vocabularies, which are stored that way.
 * - `wordpiece`: tokens without the continuation prefix (usually "##") start a word.
 * - `words`: every token is a whole word (a plain word list such as GloVe's).
 */
export type SpellingConvention = 'byte-level' | 'sentencepiece' | 'wordpiece' | 'words';

/** One token in canonical form. */
export interface CanonicalToken {
  /** Token id. */
  id: number;
  /** The token string as stored in the file. */
  piece: string;
  /** What the token is. */
  kind: TokenKind;
  /**
   * Whether the token begins a word: in running text it is preceded by a space (the "▁" / "Ġ" / non-"##"
   * marker). The space itself is not part of {@link bytes}.
   */
  wordStart: boolean;
  /**
   * The exact UTF-8 bytes the token contributes to decoded text, without the word-start space. For
   * `special` and `unused` tokens, the UTF-8 of their stored string.
   */
  bytes: Uint8Array;
  /** The special role of this id, if it has one. */
  role?: SpecialRole;
}

/** Where the data of a {@link Vocabulary} came from. */
export type VocabularyFormat =
  'tokenizer.json' | 'gguf' | 'vocab.txt' | 'sentencepiece-model' | 'vocab.json' | 'word-list' | 'pieces';

/** Input of {@link buildVocabulary}: raw pieces plus per-token flags, as a loader produces them. */
export interface VocabularySource {
  /** Human-readable name (file path or label) used in reports and error messages. */
  name: string;
  /** The file format the pieces were read from. */
  format: VocabularyFormat;
  /** Spelling convention of the pieces. */
  convention: SpellingConvention;
  /** Token strings, index = id. */
  pieces: readonly string[];
  /** Kind flags from the file, index = id; `undefined` entries are inferred (normal/byte/control/unused). */
  kinds?: readonly (TokenKind | undefined)[];
  /** Whether `<0xNN>` pieces are byte-fallback tokens (sentencepiece convention only). */
  byteFallback?: boolean;
  /** Continuation prefix for the wordpiece convention (default "##"). */
  continuationPrefix?: string;
  /** Special roles, role -> id. */
  roles?: ReadonlyMap<SpecialRole, number> | Partial<Record<SpecialRole, number>>;
  /** Whether the tokenizer adds a space before the first word of a text (SentencePiece `add_dummy_prefix`). */
  addsSpacePrefix?: boolean;
}

/** Matches reserved placeholder names; applied in every format so that the same tokenizer gives the same table. */
const PLACEHOLDER = /^(?:<unused\d+>|\[unused\d+\]|\[PAD\d+\]|<\|reserved_special_token_\d+\|>)$/;
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const SPM_SPACE = '\u2581';

let byteLevelDecode: Map<number, number> | undefined;
/** Code point -> byte of the GPT-2 byte-level alphabet (printable bytes map to themselves, others to 256+n). */
function byteLevelTable(): Map<number, number> {
  if (byteLevelDecode) return byteLevelDecode;
  const m = new Map<number, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    m.set(printable ? b : 256 + n++, b);
  }
  byteLevelDecode = m;
  return m;
}

const utf8 = new TextEncoder();

/** Bytes of a byte-level piece, or undefined if some character is outside the byte-level alphabet. */
function decodeByteLevel(piece: string): Uint8Array | undefined {
  const table = byteLevelTable();
  const out: number[] = [];
  for (const ch of piece) {
    const b = table.get(ch.codePointAt(0)!);
    if (b === undefined) return undefined;
    out.push(b);
  }
  return Uint8Array.from(out);
}

function isControlByte(b: number): boolean {
  return (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) || b === 0x7f;
}

/**
 * Canonical form of one text piece under a spelling convention, without kind flags or the placeholder
 * rule (those are applied by {@link buildVocabulary}).
 *
 * @param piece - the token string as stored.
 * @param convention - how the tokenizer spells text.
 * @param options - `byteFallback`: read `<0xNN>` as a byte (sentencepiece); `continuationPrefix`: the
 *   wordpiece continuation marker (default "##").
 * @returns the word-start flag, the bytes (without the word-start space) and whether the piece stands
 *   for a single raw byte (`<0xNN>`, or a byte-level single byte >= 0x80).
 * @throws SaltRangeError `E_ARGUMENT` for an unknown convention.
 */
export function canonicalizePiece(
  piece: string,
  convention: SpellingConvention,
  options: { byteFallback?: boolean; continuationPrefix?: string } = {},
): { wordStart: boolean; bytes: Uint8Array; isByte: boolean } {
  switch (convention) {
    case 'byte-level': {
      // Pieces outside the alphabet (added tokens stored as plain text) contribute their own UTF-8,
      // which is also what Hugging Face's ByteLevel decoder does with them.
      let bytes = decodeByteLevel(piece) ?? utf8.encode(piece);
      let wordStart = false;
      if (bytes.length > 0 && bytes[0] === 0x20) {
        wordStart = true;
        bytes = bytes.subarray(1);
      }
      return { wordStart, bytes, isByte: !wordStart && bytes.length === 1 && bytes[0] >= 0x80 };
    }
    case 'sentencepiece': {
      if (options.byteFallback) {
        const m = BYTE_PIECE.exec(piece);
        if (m) return { wordStart: false, bytes: Uint8Array.of(parseInt(m[1], 16)), isByte: true };
      }
      const text = piece.split(SPM_SPACE).join(' ');
      const wordStart = text.startsWith(' ');
      return { wordStart, bytes: utf8.encode(wordStart ? text.slice(1) : text), isByte: false };
    }
    case 'wordpiece': {
      const prefix = options.continuationPrefix ?? '##';
      if (prefix.length > 0 && piece.startsWith(prefix))
        return { wordStart: false, bytes: utf8.encode(piece.slice(prefix.length)), isByte: false };
      return { wordStart: true, bytes: utf8.encode(piece), isByte: false };
    }
    case 'words':
      return { wordStart: true, bytes: utf8.encode(piece), isByte: false };
    default:
      throw new SaltRangeError(
        `convention must be 'byte-level', 'sentencepiece', 'wordpiece' or 'words', received ${describe(convention)}`,
      );
  }
}

/**
 * A vocabulary in canonical form, stored column-wise (one typed array per field) so that 250k-token
 * vocabularies stay compact. Build one with a loader ({@link loadVocabulary} and friends) or
 * {@link buildVocabulary}.
 */
export class Vocabulary {
  /** Human-readable name (usually the file path). */
  readonly name: string;
  /** The file format it was read from. */
  readonly format: VocabularyFormat;
  /** Spelling convention of {@link pieces}. */
  readonly convention: SpellingConvention;
  /** Token strings as stored, index = id. */
  readonly pieces: readonly string[];
  /** Kind code per id (see {@link KIND_CODE}). */
  readonly kinds: Uint8Array;
  /** 1 where the token starts a word, else 0. */
  readonly wordStarts: Uint8Array;
  /** Token id i owns `bytes[byteOffsets[i] .. byteOffsets[i + 1])`. Length size + 1. */
  readonly byteOffsets: Uint32Array;
  /** Concatenated canonical bytes of all tokens. */
  readonly bytes: Uint8Array;
  /** Special roles, role -> id. */
  readonly roles: ReadonlyMap<SpecialRole, number>;
  /** Whether the tokenizer adds a space before the first word of a text. */
  readonly addsSpacePrefix: boolean;

  /** @internal use {@link buildVocabulary}. */
  constructor(fields: {
    name: string;
    format: VocabularyFormat;
    convention: SpellingConvention;
    pieces: readonly string[];
    kinds: Uint8Array;
    wordStarts: Uint8Array;
    byteOffsets: Uint32Array;
    bytes: Uint8Array;
    roles: ReadonlyMap<SpecialRole, number>;
    addsSpacePrefix: boolean;
  }) {
    this.name = fields.name;
    this.format = fields.format;
    this.convention = fields.convention;
    this.pieces = fields.pieces;
    this.kinds = fields.kinds;
    this.wordStarts = fields.wordStarts;
    this.byteOffsets = fields.byteOffsets;
    this.bytes = fields.bytes;
    this.roles = fields.roles;
    this.addsSpacePrefix = fields.addsSpacePrefix;
  }

  /** Number of token ids (ids are 0 .. size - 1). */
  get size(): number {
    return this.pieces.length;
  }

  private check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.pieces.length) {
      throw new SaltRangeError(
        `token id must be an integer in [0, ${this.pieces.length}) for vocabulary ${this.name}, received ${describe(id)}`,
      );
    }
  }

  /** Kind of token `id`. */
  kindOf(id: number): TokenKind {
    this.check(id);
    return TOKEN_KINDS[this.kinds[id]];
  }

  /** Whether token `id` starts a word. */
  isWordStart(id: number): boolean {
    this.check(id);
    return this.wordStarts[id] === 1;
  }

  /** Canonical bytes of token `id` (a view into {@link bytes}; do not modify). */
  bytesOf(id: number): Uint8Array {
    this.check(id);
    return this.bytes.subarray(this.byteOffsets[id], this.byteOffsets[id + 1]);
  }

  /** The role of token `id`, if it has one. */
  roleOf(id: number): SpecialRole | undefined {
    for (const [role, rid] of this.roles) if (rid === id) return role;
    return undefined;
  }

  /** Token `id` as a {@link CanonicalToken} object (bytes copied). */
  token(id: number): CanonicalToken {
    this.check(id);
    const t: CanonicalToken = {
      id,
      piece: this.pieces[id],
      kind: TOKEN_KINDS[this.kinds[id]],
      wordStart: this.wordStarts[id] === 1,
      bytes: this.bytesOf(id).slice(),
    };
    const role = this.roleOf(id);
    if (role) t.role = role;
    return t;
  }

  /**
   * The bytes a sequence of ids stands for in running text: each word-start token contributes a space
   * followed by its bytes, every other token its bytes. Special and unused tokens contribute nothing
   * unless `keepSpecial` is set (then their stored string). No leading-space stripping is done: a
   * SentencePiece tokenizer that {@link addsSpacePrefix} yields one extra leading space.
   */
  decode(ids: ArrayLike<number>, keepSpecial = false): Uint8Array {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      this.check(id);
      const k = this.kinds[id];
      if (!keepSpecial && (k === KIND_CODE.special || k === KIND_CODE.unused)) continue;
      if (this.wordStarts[id] === 1) {
        parts.push(SPACE);
        total += 1;
      }
      const b = this.bytesOf(id);
      parts.push(b);
      total += b.length;
    }
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Counts of tokens per kind and of word-start tokens. */
  summary(): { size: number; wordStarts: number } & Record<TokenKind, number> {
    const s = { size: this.size, wordStarts: 0, normal: 0, special: 0, byte: 0, control: 0, unused: 0 };
    for (let i = 0; i < this.size; i++) {
      s[TOKEN_KINDS[this.kinds[i]]]++;
      s.wordStarts += this.wordStarts[i];
    }
    return s;
  }
}

const SPACE = Uint8Array.of(0x20);

/**
 * Builds a {@link Vocabulary} from raw pieces and flags: applies the spelling convention, the placeholder
 * rule (`unused`), byte and control detection, and validates roles.
 *
 * @throws SaltTypeError `E_TYPE` when `pieces` is not an array of strings; SaltError `E_FORMAT` when a role
 *   points outside the vocabulary.
 */
export function buildVocabulary(src: VocabularySource): Vocabulary {
  if (!Array.isArray(src.pieces))
    throw new SaltTypeError(
      `pieces of vocabulary ${src.name} must be an array of strings, received ${describe(src.pieces)}`,
    );
  const n = src.pieces.length;
  const kinds = new Uint8Array(n);
  const wordStarts = new Uint8Array(n);
  const byteOffsets = new Uint32Array(n + 1);
  const chunks: Uint8Array[] = new Array(n);
  let total = 0;
  const opts = { byteFallback: src.byteFallback, continuationPrefix: src.continuationPrefix };
  for (let id = 0; id < n; id++) {
    const piece = src.pieces[id];
    if (typeof piece !== 'string')
      throw new SaltTypeError(`token ${id} of vocabulary ${src.name} must be a string, received ${describe(piece)}`);
    let kind = src.kinds?.[id];
    let bytes: Uint8Array;
    let ws = false;
    if (PLACEHOLDER.test(piece) || kind === 'unused') {
      kind = 'unused';
      bytes = utf8.encode(piece);
    } else if (kind === 'special') {
      bytes = utf8.encode(piece);
    } else if (kind === 'byte') {
      const m = BYTE_PIECE.exec(piece);
      if (m) bytes = Uint8Array.of(parseInt(m[1], 16));
      else {
        const c = canonicalizePiece(piece, src.convention, opts);
        bytes = c.bytes;
        ws = c.wordStart;
      }
    } else {
      const c = canonicalizePiece(piece, src.convention, opts);
      bytes = c.bytes;
      ws = c.wordStart;
      kind = c.isByte ? 'byte' : !ws && bytes.length === 1 && isControlByte(bytes[0]) ? 'control' : 'normal';
    }
    kinds[id] = KIND_CODE[kind];
    wordStarts[id] = ws ? 1 : 0;
    chunks[id] = bytes;
    total += bytes.length;
    byteOffsets[id + 1] = total;
  }
  const all = new Uint8Array(total);
  for (let id = 0; id < n; id++) all.set(chunks[id], byteOffsets[id]);
  const roles = new Map<SpecialRole, number>();
  const given =
    src.roles instanceof Map ? src.roles : new Map(Object.entries(src.roles ?? {}) as [SpecialRole, number][]);
  for (const [role, id] of given) {
    if (!SPECIAL_ROLES.includes(role))
      throw new SaltRangeError(
        `unknown special role ${describe(role)} for vocabulary ${src.name}; expected one of ${SPECIAL_ROLES.join(', ')}`,
      );
    if (id === undefined) continue;
    if (!Number.isInteger(id) || id < 0 || id >= n) {
      throw new SaltError(
        'E_FORMAT',
        `vocabulary ${src.name}: ${role} token id must be in [0, ${n}), received ${describe(id)}`,
      );
    }
    roles.set(role, id);
  }
  return new Vocabulary({
    name: src.name,
    format: src.format,
    convention: src.convention,
    pieces: src.pieces,
    kinds,
    wordStarts,
    byteOffsets,
    bytes: all,
    roles,
    addsSpacePrefix: src.addsSpacePrefix ?? false,
  });
}
