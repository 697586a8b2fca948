/**
 * fastText binary models (`.bin`, format version 12 as written by fastText 0.9; version 11 read too):
 * words plus character n-gram buckets, so the vector of any string can be computed exactly as
 * fastText does, including out-of-vocabulary words. Quantized models (`.ftz`) are rejected with
 * E_UNSUPPORTED: their product-quantized input matrix is not decoded here.
 *
 * The input matrix is not loaded into memory: rows are fetched by positioned reads, so a 7 GB
 * crawl model costs only its vocabulary in memory.
 */
import { closeSync, fstatSync, readSync } from 'node:fs';

import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { openRegularFileSync } from '../inputFiles.js';
import type { VectorTable } from './vectors.js';

/** fastText's file magic (first int32). */
export const FASTTEXT_MAGIC = 793712314;

/** Training arguments stored in a fastText model. */
export interface FastTextArgs {
  dim: number;
  ws: number;
  epoch: number;
  minCount: number;
  neg: number;
  wordNgrams: number;
  /** 1 hs, 2 ns, 3 softmax, 4 ova. */
  loss: number;
  /** 1 cbow, 2 skipgram, 3 supervised. */
  model: number;
  bucket: number;
  minn: number;
  maxn: number;
  lrUpdateRate: number;
  t: number;
}

const MODEL_NAMES: Record<number, string> = { 1: 'cbow', 2: 'skipgram', 3: 'supervised' };

/** Sequential little-endian reader over a file descriptor with a small buffer. */
class FdReader {
  private buf = Buffer.alloc(1 << 16);
  private bufStart = 0;
  private bufLen = 0;
  pos = 0;
  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly label: string,
  ) {}
  private ensure(n: number): void {
    if (this.pos + n > this.size)
      throw new SaltError(
        'E_FORMAT',
        `${this.label}: file ends at byte ${this.size}, needed ${n} bytes at ${this.pos} (truncated?)`,
      );
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.bufLen) return;
    if (n > this.buf.length) this.buf = Buffer.alloc(n);
    this.bufStart = this.pos;
    this.bufLen = readSync(this.fd, this.buf, 0, Math.min(this.buf.length, this.size - this.pos), this.pos);
    if (this.bufLen < n) throw new SaltError('E_IO', `${this.label}: short read at byte ${this.pos}`);
  }
  i32(): number {
    this.ensure(4);
    const v = this.buf.readInt32LE(this.pos - this.bufStart);
    this.pos += 4;
    return v;
  }
  i64(): number {
    this.ensure(8);
    const v = this.buf.readBigInt64LE(this.pos - this.bufStart);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER))
      throw new SaltError('E_FORMAT', `${this.label}: 64-bit value ${v} at byte ${this.pos - 8} is out of range`);
    return Number(v);
  }
  f64(): number {
    this.ensure(8);
    const v = this.buf.readDoubleLE(this.pos - this.bufStart);
    this.pos += 8;
    return v;
  }
  u8(): number {
    this.ensure(1);
    return this.buf[this.pos++ - this.bufStart];
  }
  /** A NUL-terminated string (bytes kept as UTF-8 Buffer for hashing). */
  cstr(maxLen = 1 << 20): Buffer {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      this.ensure(1);
      const view = this.buf.subarray(this.pos - this.bufStart, this.bufLen);
      const z = view.indexOf(0);
      if (z >= 0) {
        parts.push(Buffer.from(view.subarray(0, z)));
        this.pos += z + 1;
        return parts.length === 1 ? parts[0] : Buffer.concat(parts);
      }
      parts.push(Buffer.from(view));
      total += view.length;
      this.pos += view.length;
      if (total > maxLen)
        throw new SaltError(
          'E_FORMAT',
          `${this.label}: string at byte ${this.pos - total} has no terminating NUL within ${maxLen} bytes`,
        );
    }
  }
}

/** fastText's hash of a byte string: 32-bit FNV-1a over *signed* chars (as its C++ code does). */
export function fastTextHash(bytes: Uint8Array): number {
  let h = 2166136261;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] >= 128 ? bytes[i] - 256 : bytes[i];
    h = Math.imul((h ^ (c >>> 0)) >>> 0, 16777619) >>> 0;
  }
  return h >>> 0;
}

/** An opened fastText `.bin` model. Call {@link close} when done. */
export class FastTextModel {
  /** The file path. */
  readonly path: string;
  /** Format version (11 or 12). */
  readonly version: number;
  /** Training arguments. */
  readonly args: Readonly<FastTextArgs>;
  /** In-vocabulary words in id order (labels of supervised models excluded). */
  readonly words: readonly string[];
  /** Number of rows of the input matrix (words + buckets). */
  readonly rows: number;
  readonly #wordIds: Map<string, number>;
  readonly #pruneIdx: Map<number, number> | null;
  readonly #matrixOffset: number;
  #fd: number | null;
  readonly #row: Float32Array;

  private constructor(
    path: string,
    fd: number,
    version: number,
    args: FastTextArgs,
    words: string[],
    pruneIdx: Map<number, number> | null,
    rows: number,
    matrixOffset: number,
  ) {
    this.path = path;
    this.#fd = fd;
    this.version = version;
    this.args = Object.freeze(args);
    this.words = Object.freeze(words);
    this.#wordIds = new Map(words.map((w, i) => [w, i]));
    this.#pruneIdx = pruneIdx;
    this.rows = rows;
    this.#matrixOffset = matrixOffset;
    this.#row = new Float32Array(args.dim);
  }

  /** Vector width. */
  get dim(): number {
    return this.args.dim;
  }

  /**
   * Opens a fastText model and reads its header and dictionary. E_FORMAT for a file that is not a
   * fastText model or is truncated; E_UNSUPPORTED for quantized models (.ftz) and unknown versions.
   */
  static open(path: string): FastTextModel {
    if (typeof path !== 'string') throw new SaltTypeError(`path must be a string, received ${describe(path)}`);
    const fd = openRegularFileSync(path, 'fastText model');
    try {
      const size = fstatSync(fd).size;
      const r = new FdReader(fd, size, path);
      if (size < 8) throw new SaltError('E_FORMAT', `${path}: ${size} bytes is too short for a fastText model`);
      const magic = r.i32();
      if (magic !== FASTTEXT_MAGIC)
        throw new SaltError('E_FORMAT', `${path}: not a fastText model (magic ${magic}, expected ${FASTTEXT_MAGIC})`);
      const version = r.i32();
      if (version !== 11 && version !== 12)
        throw new SaltError(
          'E_UNSUPPORTED',
          `${path}: fastText format version ${version} is not supported (expected 11 or 12)`,
        );
      const args: FastTextArgs = {
        dim: r.i32(),
        ws: r.i32(),
        epoch: r.i32(),
        minCount: r.i32(),
        neg: r.i32(),
        wordNgrams: r.i32(),
        loss: r.i32(),
        model: r.i32(),
        bucket: r.i32(),
        minn: r.i32(),
        maxn: r.i32(),
        lrUpdateRate: r.i32(),
        t: r.f64(),
      };
      if (version === 11 && args.model === 3) args.maxn = 0; // as fastText does for old supervised models
      if (args.dim < 1 || args.dim > 1 << 16 || args.bucket < 0 || args.minn < 0 || args.maxn < 0 || args.maxn > 64) {
        throw new SaltError(
          'E_FORMAT',
          `${path}: implausible arguments dim=${args.dim} bucket=${args.bucket} minn=${args.minn} maxn=${args.maxn}`,
        );
      }
      const nEntries = r.i32();
      const nwords = r.i32();
      const nlabels = r.i32();
      r.i64(); // ntokens
      const pruneSize = r.i64();
      if (nEntries < 0 || nwords < 0 || nlabels < 0 || nwords + nlabels !== nEntries || nEntries > size) {
        throw new SaltError(
          'E_FORMAT',
          `${path}: dictionary sizes are inconsistent (size ${nEntries}, words ${nwords}, labels ${nlabels})`,
        );
      }
      const words: string[] = [];
      const dec = new TextDecoder('utf-8');
      for (let i = 0; i < nEntries; i++) {
        const w = r.cstr();
        r.i64(); // count
        const type = r.u8();
        if (type === 0) words.push(dec.decode(w));
        else if (type !== 1)
          throw new SaltError(
            'E_FORMAT',
            `${path}: dictionary entry ${i} has type ${type} (expected 0 word or 1 label)`,
          );
      }
      if (words.length !== nwords)
        throw new SaltError('E_FORMAT', `${path}: dictionary says ${nwords} words but lists ${words.length}`);
      // pruneidx_size: -1 = not pruned (n-gram h is row nwords + h); >= 0 = only listed buckets kept.
      let prune: Map<number, number> | null = null;
      if (pruneSize >= 0) {
        if (pruneSize > size) throw new SaltError('E_FORMAT', `${path}: prune index size ${pruneSize} is implausible`);
        prune = new Map();
        for (let i = 0; i < pruneSize; i++) {
          const k = r.i32();
          prune.set(k, r.i32());
        }
      }
      const quant = r.u8();
      if (quant) {
        throw new SaltError(
          'E_UNSUPPORTED',
          `${path}: quantized fastText model (${MODEL_NAMES[args.model] ?? 'model ' + args.model}, ${nwords} words, dim ${args.dim}); its product-quantized matrix is not supported: use the full .bin model (e.g. cc.<lang>.300.bin), not the .ftz`,
        );
      }
      const m = r.i64();
      const n = r.i64();
      if (n !== args.dim)
        throw new SaltError('E_FORMAT', `${path}: input matrix is ${m} x ${n} but dim is ${args.dim}`);
      const expectRows = nwords + (pruneSize >= 0 ? pruneSize : args.bucket);
      if (m !== expectRows)
        throw new SaltError(
          'E_FORMAT',
          `${path}: input matrix has ${m} rows, expected ${expectRows} (words + buckets)`,
        );
      const matrixOffset = r.pos;
      if (matrixOffset + m * n * 4 > size)
        throw new SaltError(
          'E_FORMAT',
          `${path}: input matrix (${m} x ${n} floats at byte ${matrixOffset}) runs past the end of the ${size}-byte file`,
        );
      // The output matrix follows; check that it is complete so truncated files are rejected.
      r.pos = matrixOffset + m * n * 4;
      const qout = r.u8();
      if (qout) throw new SaltError('E_UNSUPPORTED', `${path}: quantized output matrix is not supported`);
      const om = r.i64();
      const on = r.i64();
      if (om < 0 || on !== args.dim || r.pos + om * on * 4 > size) {
        throw new SaltError(
          'E_FORMAT',
          `${path}: output matrix (${om} x ${on} floats at byte ${r.pos}) does not fit in the ${size}-byte file (truncated?)`,
        );
      }
      return new FastTextModel(path, fd, version, args, words, prune, m, matrixOffset);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** True when `word` is in the model's vocabulary. */
  has(word: string): boolean {
    return this.#wordIds.has(word);
  }

  /** Row ids that make up `word`'s vector (its word row if known, plus its character n-gram buckets). */
  subwordIds(word: string): number[] {
    const ids: number[] = [];
    const id = this.#wordIds.get(word);
    if (id !== undefined) ids.push(id);
    if (word === '</s>' || this.args.maxn === 0 || this.args.bucket === 0) return ids;
    const bytes = Buffer.from(`<${word}>`, 'utf8');
    const { minn, maxn, bucket } = this.args;
    const nwords = this.words.length;
    for (let i = 0; i < bytes.length; i++) {
      if ((bytes[i] & 0xc0) === 0x80) continue;
      let j = i;
      for (let n = 1; j < bytes.length && n <= maxn; n++) {
        j++;
        while (j < bytes.length && (bytes[j] & 0xc0) === 0x80) j++;
        if (n >= minn && !(n === 1 && (i === 0 || j === bytes.length))) {
          const h = fastTextHash(bytes.subarray(i, j)) % bucket;
          if (this.#pruneIdx) {
            const p = this.#pruneIdx.get(h);
            if (p !== undefined) ids.push(nwords + p);
          } else ids.push(nwords + h);
        }
      }
    }
    return ids;
  }

  private readRow(row: number): Float32Array {
    if (this.#fd === null) throw new SaltError('E_IO', `${this.path}: the model has been closed`);
    if (row < 0 || row >= this.rows)
      throw new SaltError('E_FORMAT', `${this.path}: row ${row} is outside the ${this.rows}-row input matrix`);
    const b = new Uint8Array(this.#row.buffer);
    const n = readSync(this.#fd, b, 0, b.length, this.#matrixOffset + row * b.length);
    if (n !== b.length) throw new SaltError('E_IO', `${this.path}: short read of matrix row ${row}`);
    return this.#row;
  }

  /**
   * The vector of any string, as `fasttext print-word-vectors` computes it: the mean of the word's
   * row (when in vocabulary) and its n-gram rows; all zeros when it has none. Written into `out`
   * when given (length `dim`).
   */
  wordVector(word: string, out = new Float32Array(this.dim)): Float32Array {
    if (typeof word !== 'string') throw new SaltTypeError(`word must be a string, received ${describe(word)}`);
    if (out.length !== this.dim)
      throw new SaltRangeError(`out has length ${out.length}, expected dim ${this.dim}`, 'E_SHAPE');
    const ids = this.subwordIds(word);
    const acc = new Float64Array(this.dim);
    for (const id of ids) {
      const row = this.readRow(id);
      for (let k = 0; k < this.dim; k++) acc[k] = Math.fround(acc[k] + row[k]);
    }
    const scale = ids.length ? Math.fround(1 / ids.length) : 0;
    for (let k = 0; k < this.dim; k++) out[k] = Math.fround(acc[k] * scale);
    return out;
  }

  /** Vectors of many strings as one table (row i for `words[i]`). */
  table(words: readonly string[]): VectorTable {
    const vectors = new Float32Array(words.length * this.dim);
    words.forEach((w, i) => this.wordVector(w, vectors.subarray(i * this.dim, (i + 1) * this.dim)));
    return { words: [...words], dim: this.dim, vectors };
  }

  /** Closes the file. */
  close(): void {
    if (this.#fd !== null) {
      closeSync(this.#fd);
      this.#fd = null;
    }
  }
}
