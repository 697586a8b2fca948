/**
 * Reader for the key/value metadata of GGUF files (versions 2 and 3), enough to extract a tokenizer
 * vocabulary. Tensor data is never read: the metadata is parsed from the start of the file in chunks,
 * so multi-gigabyte model files cost only the size of their header.
 */
import { closeSync, fstatSync, readSync } from 'node:fs';

import { describe, SaltError } from '../errors.js';
import { openRegularFileSync } from '../inputFiles.js';
import { inferRolesByName } from './roles.js';
import {
  buildVocabulary,
  type SpecialRole,
  type SpellingConvention,
  type TokenKind,
  type Vocabulary,
} from './vocabulary.js';

/** A GGUF metadata value: scalars become number / bigint / boolean / string, arrays become JS arrays. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** Parsed GGUF header: format version, tensor count and every metadata key/value pair in file order. */
export interface GgufMetadata {
  /** GGUF format version (2 or 3). */
  version: number;
  /** Number of tensors the file declares (their data is not read). */
  tensorCount: bigint;
  /** Metadata in file order. 64-bit integers are returned as bigint; other numbers as number. */
  kv: Map<string, GgufValue>;
}

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
/** Upper bound on a string's byte length or the key/value count; checked against the bytes left too. */
const MAX_COUNT = 1 << 28;
/**
 * Upper bound on the elements of one metadata array, which becomes a JS array (real vocabularies and merge
 * lists have at most ~1e6 entries). A corrupt count in a multi-gigabyte file would otherwise pass the
 * remaining-bytes check and build an array of hundreds of millions of values.
 */
export const MAX_GGUF_ARRAY_LENGTH = 1 << 24;

/** Sequential little-endian reader over a file descriptor with a growable buffer. */
class ChunkReader {
  private buf: Buffer;
  private start = 0; // file offset of buf[0]
  private end = 0; // number of valid bytes in buf
  pos = 0; // absolute file offset of the next read
  constructor(
    private readonly fd: number,
    private readonly size: number,
    private readonly file: string,
  ) {
    this.buf = Buffer.alloc(1 << 20);
  }

  private need(n: number): number {
    if (this.pos + n > this.size) {
      throw new SaltError(
        'E_FORMAT',
        `GGUF file ${this.file} is truncated: expected ${n} more bytes at offset ${this.pos}, but the file has ${this.size} bytes`,
      );
    }
    if (this.pos >= this.start && this.pos + n <= this.start + this.end) return this.pos - this.start;
    const want = Math.max(n, 1 << 20);
    if (this.buf.length < want) this.buf = Buffer.alloc(want);
    const len = Math.min(this.buf.length, this.size - this.pos);
    let got = 0;
    while (got < len) {
      const r = readSync(this.fd, this.buf, got, len - got, this.pos + got);
      if (r === 0) break;
      got += r;
    }
    this.start = this.pos;
    this.end = got;
    if (got < n) throw new SaltError('E_IO', `could not read ${n} bytes at offset ${this.pos} of ${this.file}`);
    return 0;
  }
  u8(): number {
    const o = this.need(1);
    this.pos += 1;
    return this.buf.readUInt8(o);
  }
  i8(): number {
    const o = this.need(1);
    this.pos += 1;
    return this.buf.readInt8(o);
  }
  u16(): number {
    const o = this.need(2);
    this.pos += 2;
    return this.buf.readUInt16LE(o);
  }
  i16(): number {
    const o = this.need(2);
    this.pos += 2;
    return this.buf.readInt16LE(o);
  }
  u32(): number {
    const o = this.need(4);
    this.pos += 4;
    return this.buf.readUInt32LE(o);
  }
  i32(): number {
    const o = this.need(4);
    this.pos += 4;
    return this.buf.readInt32LE(o);
  }
  f32(): number {
    const o = this.need(4);
    this.pos += 4;
    return this.buf.readFloatLE(o);
  }
  f64(): number {
    const o = this.need(8);
    this.pos += 8;
    return this.buf.readDoubleLE(o);
  }
  u64(): bigint {
    const o = this.need(8);
    this.pos += 8;
    return this.buf.readBigUInt64LE(o);
  }
  i64(): bigint {
    const o = this.need(8);
    this.pos += 8;
    return this.buf.readBigInt64LE(o);
  }
  /** A u64 count checked against the remaining file size and `max` (default MAX_COUNT). */
  count(what: string, minBytesEach: number, max = MAX_COUNT): number {
    const at = this.pos;
    const n = this.u64();
    const remaining = this.size - this.pos;
    if (n > BigInt(max) || (minBytesEach > 0 && n * BigInt(minBytesEach) > BigInt(remaining))) {
      throw new SaltError(
        'E_FORMAT',
        `GGUF file ${this.file} is truncated or corrupt: bad ${what} ${n} at offset ${at} (expected at most ${Math.min(max, minBytesEach > 0 ? Math.floor(remaining / minBytesEach) : max)} for the ${remaining} bytes left)`,
      );
    }
    return Number(n);
  }
  str(): string {
    const n = this.count('string length', 1);
    const o = this.need(n);
    this.pos += n;
    return this.buf.toString('utf8', o, o + n);
  }
}

const TYPE_NAMES = [
  'uint8',
  'int8',
  'uint16',
  'int16',
  'uint32',
  'int32',
  'float32',
  'bool',
  'string',
  'array',
  'uint64',
  'int64',
  'float64',
];
const TYPE_SIZES = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8]; // minimum encoded size, for count checks

function readValue(r: ChunkReader, type: number, file: string, key: string, depth: number): GgufValue {
  switch (type) {
    case 0:
      return r.u8();
    case 1:
      return r.i8();
    case 2:
      return r.u16();
    case 3:
      return r.i16();
    case 4:
      return r.u32();
    case 5:
      return r.i32();
    case 6:
      return r.f32();
    case 7: {
      const b = r.u8();
      if (b > 1)
        throw new SaltError('E_FORMAT', `GGUF file ${file}: key "${key}" has a bool value ${b} (expected 0 or 1)`);
      return b === 1;
    }
    case 8:
      return r.str();
    case 9: {
      if (depth > 2)
        throw new SaltError('E_FORMAT', `GGUF file ${file}: key "${key}" nests arrays deeper than 2 levels`);
      const at = r.pos;
      const et = r.u32();
      if (et >= TYPE_NAMES.length) {
        throw new SaltError(
          'E_FORMAT',
          `GGUF file ${file}: key "${key}" has an array of unknown element type ${et} at offset ${at} (expected 0..12)`,
        );
      }
      const n = r.count(`array length of key "${key}"`, TYPE_SIZES[et], MAX_GGUF_ARRAY_LENGTH);
      const out: GgufValue[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = readValue(r, et, file, key, depth + 1);
      return out;
    }
    case 10:
      return r.u64();
    case 11:
      return r.i64();
    case 12:
      return r.f64();
    default:
      throw new SaltError(
        'E_FORMAT',
        `GGUF file ${file}: key "${key}" has unknown value type ${type} (expected 0..12)`,
      );
  }
}

/**
 * Reads the metadata of a GGUF file (v2 or v3; v1 is rejected with `E_UNSUPPORTED`).
 *
 * @param file - path of a `.gguf` file.
 * @returns the version, tensor count and all key/value pairs.
 * @throws SaltError `E_NOT_FOUND` if the file does not exist, `E_FORMAT` for a bad magic number,
 *   truncation or impossible counts, `E_UNSUPPORTED` for GGUF v1 or versions above 3.
 */
export function readGgufMetadata(file: string): GgufMetadata {
  const fd = openRegularFileSync(file, 'GGUF file');
  try {
    const size = fstatSync(fd).size;
    const r = new ChunkReader(fd, size, file);
    const magic = r.u32();
    if (magic !== GGUF_MAGIC) {
      throw new SaltError(
        'E_FORMAT',
        `${file} is not a GGUF file: expected magic "GGUF" (0x46554747), received 0x${magic.toString(16).padStart(8, '0')}`,
      );
    }
    const version = r.u32();
    if (version !== 2 && version !== 3) {
      throw new SaltError(
        'E_UNSUPPORTED',
        `GGUF file ${file} has format version ${version}; this reader supports versions 2 and 3`,
      );
    }
    const tensorCount = r.u64();
    const nkv = r.count('metadata key/value count', 13);
    const kv = new Map<string, GgufValue>();
    for (let i = 0; i < nkv; i++) {
      const key = r.str();
      const at = r.pos;
      const type = r.u32();
      if (type >= TYPE_NAMES.length) {
        throw new SaltError(
          'E_FORMAT',
          `GGUF file ${file}: key "${key}" has unknown value type ${type} at offset ${at} (expected 0..12)`,
        );
      }
      if (kv.has(key)) throw new SaltError('E_FORMAT', `GGUF file ${file}: duplicate metadata key "${key}"`);
      kv.set(key, readValue(r, type, file, key, 0));
    }
    return { version, tensorCount, kv };
  } finally {
    closeSync(fd);
  }
}

const GGUF_TOKEN_KIND: Record<number, TokenKind | undefined> = {
  1: undefined,
  2: 'special',
  3: 'special',
  4: undefined,
  5: 'unused',
  6: 'byte',
};

const GGUF_ROLE_KEYS: Readonly<Record<string, SpecialRole>> = {
  'tokenizer.ggml.bos_token_id': 'bos',
  'tokenizer.ggml.eos_token_id': 'eos',
  'tokenizer.ggml.unknown_token_id': 'unk',
  'tokenizer.ggml.padding_token_id': 'pad',
  'tokenizer.ggml.mask_token_id': 'mask',
  'tokenizer.ggml.cls_token_id': 'cls',
  'tokenizer.ggml.seperator_token_id': 'sep', // sic: llama.cpp's key name
  'tokenizer.ggml.separator_token_id': 'sep',
  'tokenizer.ggml.eot_token_id': 'eot',
};

/**
 * Loads the tokenizer vocabulary stored in a GGUF file's metadata (`tokenizer.ggml.model`, `.tokens`,
 * `.token_type`, `.scores` and the `*_token_id` keys).
 *
 * Models: `gpt2` (byte-level BPE), `llama` and `gemma4` (SentencePiece BPE with byte pieces), `t5`
 * (SentencePiece unigram), `bert` (WordPiece, which llama.cpp stores with "▁" word starts and no "##").
 * Token types map to kinds: UNKNOWN and CONTROL -> special, UNUSED -> unused, BYTE -> byte; NORMAL and
 * USER_DEFINED are canonicalised as text. Roles come from the `*_token_id` keys, then conventional names.
 *
 * @throws SaltError as {@link readGgufMetadata}; `E_FORMAT` when tokenizer keys are missing, have the
 *   wrong type or inconsistent lengths; `E_UNSUPPORTED` for other tokenizer models.
 */
export function loadGgufVocabulary(file: string, options: { inferRoles?: boolean } = {}): Vocabulary {
  const { kv } = readGgufMetadata(file);
  const model = kv.get('tokenizer.ggml.model');
  if (typeof model !== 'string')
    throw new SaltError(
      'E_FORMAT',
      `GGUF file ${file} has no string key "tokenizer.ggml.model" (received ${describe(model)}); it holds no tokenizer`,
    );
  const tokens = kv.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) {
    throw new SaltError(
      'E_FORMAT',
      `GGUF file ${file}: "tokenizer.ggml.tokens" must be an array of strings, received ${describe(tokens)}`,
    );
  }
  const types = kv.get('tokenizer.ggml.token_type');
  if (
    types !== undefined &&
    (!Array.isArray(types) || types.length !== tokens.length || types.some((t) => typeof t !== 'number'))
  ) {
    throw new SaltError(
      'E_FORMAT',
      `GGUF file ${file}: "tokenizer.ggml.token_type" must be an array of ${tokens.length} integers, received ${describe(types)}`,
    );
  }
  const scores = kv.get('tokenizer.ggml.scores');
  if (scores !== undefined && (!Array.isArray(scores) || scores.length !== tokens.length)) {
    throw new SaltError(
      'E_FORMAT',
      `GGUF file ${file}: "tokenizer.ggml.scores" must have ${tokens.length} entries, received ${describe(scores)}`,
    );
  }
  let convention: SpellingConvention;
  let byteFallback = false;
  switch (model) {
    case 'gpt2':
      convention = 'byte-level';
      break;
    case 'llama':
    case 'gemma4':
      convention = 'sentencepiece';
      byteFallback = true;
      break;
    case 't5':
    case 'bert':
      convention = 'sentencepiece';
      break;
    default:
      throw new SaltError(
        'E_UNSUPPORTED',
        `GGUF file ${file}: tokenizer model ${JSON.stringify(model)} is not supported (expected gpt2, llama, gemma4, t5 or bert)`,
      );
  }
  const kinds: (TokenKind | undefined)[] = new Array(tokens.length);
  if (types) {
    for (let i = 0; i < tokens.length; i++) {
      const t = types[i] as number;
      if (!(t in GGUF_TOKEN_KIND))
        throw new SaltError(
          'E_FORMAT',
          `GGUF file ${file}: token ${i} ${JSON.stringify(tokens[i])} has token type ${t} (expected 1..6)`,
        );
      kinds[i] = GGUF_TOKEN_KIND[t];
    }
  }
  const roles = new Map<SpecialRole, number>();
  for (const [key, role] of Object.entries(GGUF_ROLE_KEYS)) {
    const v = kv.get(key);
    if (v === undefined) continue;
    const id = typeof v === 'bigint' ? Number(v) : v;
    if (typeof id !== 'number' || !Number.isInteger(id))
      throw new SaltError('E_FORMAT', `GGUF file ${file}: "${key}" must be an integer, received ${describe(v)}`);
    if (id < 0 || id >= tokens.length) {
      // llama.cpp writes -1 (as uint32 0xFFFFFFFF in some files) for "none".
      if (id === -1 || id === 0xffffffff) continue;
      throw new SaltError('E_FORMAT', `GGUF file ${file}: "${key}" is ${id}, outside the ${tokens.length} tokens`);
    }
    if (!roles.has(role)) roles.set(role, id);
  }
  if (options.inferRoles !== false) inferRolesByName(tokens as string[], (id) => kinds[id] === 'special', roles);
  const asp = kv.get('tokenizer.ggml.add_space_prefix');
  return buildVocabulary({
    name: file,
    format: 'gguf',
    convention,
    pieces: tokens as string[],
    kinds,
    byteFallback,
    roles,
    addsSpacePrefix: typeof asp === 'boolean' ? asp : model === 'llama' || model === 't5',
  });
}
