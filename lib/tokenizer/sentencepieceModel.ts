/**
 * Loader for SentencePiece `.model` files (a serialized `sentencepiece.ModelProto` protobuf). Only the
 * fields needed for the vocabulary are decoded: the pieces with their types, the trainer's model type,
 * byte_fallback and special ids, and the normalizer's add_dummy_prefix.
 */
import { describe, SaltError, SaltTypeError } from '../errors.js';
import { readRegularFile } from '../inputFiles.js';
import { inferRolesByName } from './roles.js';
import { buildVocabulary, type SpecialRole, type TokenKind, type Vocabulary } from './vocabulary.js';

/** Minimal protobuf wire-format reader over one message. */
class ProtoReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    readonly where: string,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }
  fail(what: string): never {
    throw new SaltError('E_FORMAT', `${this.where}: malformed SentencePiece model: ${what} at byte ${this.pos}`);
  }
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    return this.fail('varint longer than 10 bytes');
  }
  /** An int32 varint (negative values are sign-extended to 10 bytes on the wire). */
  int32(): number {
    let lo = 0;
    for (let i = 0, shift = 0; i < 10; i++, shift += 7) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++];
      if (shift < 32) lo |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return lo | 0;
    }
    return this.fail('varint longer than 10 bytes');
  }
  /** Returns [field, wireType] or undefined at the end of the message. */
  tag(): [number, number] | undefined {
    if (this.pos >= this.end) return undefined;
    const t = this.varint();
    return [Math.floor(t / 8), t & 7];
  }
  bytes(): [number, number] {
    const n = this.varint();
    if (this.pos + n > this.end)
      this.fail(`length ${n} past the end of the message (${this.end - this.pos} bytes left)`);
    const s = this.pos;
    this.pos += n;
    return [s, this.pos];
  }
  float32(): number {
    if (this.pos + 4 > this.end) this.fail('truncated float');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }
  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.varint();
        return;
      case 1:
        if (this.pos + 8 > this.end) this.fail('truncated 64-bit field');
        this.pos += 8;
        return;
      case 2:
        this.bytes();
        return;
      case 5:
        if (this.pos + 4 > this.end) this.fail('truncated 32-bit field');
        this.pos += 4;
        return;
      default:
        this.fail(`unsupported wire type ${wire}`);
    }
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** SentencePiece piece types (sentencepiece_model.proto). */
const SPM_TYPE_KIND: Record<number, TokenKind | undefined> = {
  1: undefined,
  2: 'special',
  3: 'special',
  4: undefined,
  5: 'unused',
  6: 'byte',
};

/** Parsed content of a SentencePiece model (vocabulary-related fields only). */
export interface SentencePieceModelInfo {
  pieces: string[];
  types: number[];
  scores: number[];
  /** 1 unigram, 2 BPE, 3 word, 4 char (TrainerSpec.model_type; default unigram). */
  modelType: number;
  byteFallback: boolean;
  addDummyPrefix: boolean;
  ids: Partial<Record<'unk' | 'bos' | 'eos' | 'pad', number>>;
}

/**
 * Decodes the vocabulary fields of a serialized SentencePiece ModelProto.
 * @param data - the bytes of a `.model` file.
 * @param where - name used in error messages.
 * @throws SaltError `E_FORMAT` for malformed protobuf data or a model without pieces.
 */
export function parseSentencePieceModel(data: Uint8Array, where = 'SentencePiece model'): SentencePieceModelInfo {
  if (!(data instanceof Uint8Array)) throw new SaltTypeError(`data must be a Uint8Array, received ${describe(data)}`);
  const info: SentencePieceModelInfo = {
    pieces: [],
    types: [],
    scores: [],
    modelType: 1,
    byteFallback: false,
    addDummyPrefix: true,
    ids: { unk: 0, bos: 1, eos: 2, pad: -1 },
  };
  const r = new ProtoReader(data, where);
  for (let t = r.tag(); t; t = r.tag()) {
    const [field, wire] = t;
    if (field === 1 && wire === 2) {
      const [s, e] = r.bytes();
      const p = new ProtoReader(data, where, s, e);
      let piece: string | undefined;
      let score = 0;
      let type = 1;
      for (let u = p.tag(); u; u = p.tag()) {
        if (u[0] === 1 && u[1] === 2) {
          const [a, b] = p.bytes();
          try {
            piece = decoder.decode(data.subarray(a, b));
          } catch {
            p.fail(`piece ${info.pieces.length} is not valid UTF-8`);
          }
        } else if (u[0] === 2 && u[1] === 5) score = p.float32();
        else if (u[0] === 3 && u[1] === 0) type = p.varint();
        else p.skip(u[1]);
      }
      if (piece === undefined) r.fail(`piece ${info.pieces.length} has no string`);
      info.pieces.push(piece as string);
      info.scores.push(score);
      info.types.push(type);
    } else if (field === 2 && wire === 2) {
      const [s, e] = r.bytes();
      const p = new ProtoReader(data, where, s, e);
      for (let u = p.tag(); u; u = p.tag()) {
        const [f, w] = u;
        if (w !== 0) {
          p.skip(w);
          continue;
        }
        const v = p.int32();
        if (f === 3) info.modelType = v;
        else if (f === 35) info.byteFallback = v !== 0;
        else if (f === 40) info.ids.unk = v;
        else if (f === 41) info.ids.bos = v;
        else if (f === 42) info.ids.eos = v;
        else if (f === 43) info.ids.pad = v;
      }
    } else if (field === 3 && wire === 2) {
      const [s, e] = r.bytes();
      const p = new ProtoReader(data, where, s, e);
      for (let u = p.tag(); u; u = p.tag()) {
        if (u[0] === 3 && u[1] === 0) info.addDummyPrefix = p.varint() !== 0;
        else p.skip(u[1]);
      }
    } else r.skip(wire);
  }
  if (info.pieces.length === 0)
    throw new SaltError(
      'E_FORMAT',
      `${where}: SentencePiece model has no pieces (expected repeated field 1 of ModelProto)`,
    );
  return info;
}

/**
 * Builds a canonical vocabulary from SentencePiece model bytes (see {@link parseSentencePieceModel}).
 * Roles come from TrainerSpec's unk/bos/eos/pad ids (negative ids mean "none").
 */
export function sentencePieceModelToVocabulary(
  data: Uint8Array,
  name = 'SentencePiece model',
  options: { inferRoles?: boolean } = {},
): Vocabulary {
  const info = parseSentencePieceModel(data, name);
  const kinds = info.types.map((t, i) => {
    if (!(t in SPM_TYPE_KIND))
      throw new SaltError(
        'E_FORMAT',
        `${name}: piece ${i} ${JSON.stringify(info.pieces[i])} has type ${t} (expected 1..6)`,
      );
    return SPM_TYPE_KIND[t];
  });
  const roles = new Map<SpecialRole, number>();
  for (const role of ['unk', 'bos', 'eos', 'pad'] as const) {
    const id = info.ids[role];
    if (id !== undefined && id >= 0 && id < info.pieces.length) roles.set(role, id);
  }
  if (options.inferRoles !== false) inferRolesByName(info.pieces, (id) => kinds[id] === 'special', roles);
  return buildVocabulary({
    name,
    format: 'sentencepiece-model',
    convention: 'sentencepiece',
    pieces: info.pieces,
    kinds,
    byteFallback: info.byteFallback || info.types.includes(6),
    roles,
    addsSpacePrefix: info.addDummyPrefix,
  });
}

/**
 * Loads a SentencePiece `.model` file.
 * @throws SaltError `E_NOT_FOUND` / `E_IO` if unreadable; `E_FORMAT` if malformed.
 */
export async function loadSentencePieceModel(
  file: string,
  options: { inferRoles?: boolean } = {},
): Promise<Vocabulary> {
  const data = await readRegularFile(file, 'SentencePiece model');
  return sentencePieceModelToVocabulary(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), file, options);
}
