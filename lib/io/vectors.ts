/**
 * Word-vector tables: reading text formats (.vec / GloVe .txt) and a cache format
 * (a safetensors file with one F32 tensor "vectors" plus a JSON vocabulary file).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';

import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { openRegularFile } from '../inputFiles.js';
import { cacheDir } from '../paths.js';
import { ioError, pathExists, writeBytesAtomic } from './atomic.js';
import { SafetensorsFile, writeSafetensors } from './safetensors.js';

/** A table of word vectors: row i of `vectors` (row-major, `dim` wide) belongs to `words[i]`. */
export interface VectorTable {
  /** One word per row. Words may repeat; lookups use the first occurrence. */
  words: string[];
  /** Vector width. */
  dim: number;
  /** `words.length * dim` values, row-major. */
  vectors: Float32Array;
}

/** Word -> first row index of a table. */
export function indexWords(words: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  words.forEach((w, i) => {
    if (!m.has(w)) m.set(w, i);
  });
  return m;
}

/** Checks that a table's parts agree (E_SHAPE otherwise). */
export function checkVectorTable(t: VectorTable, label = 'table'): void {
  if (t === null || typeof t !== 'object')
    throw new SaltTypeError(`${label} must be an object, received ${describe(t)}`);
  if (!Array.isArray(t.words))
    throw new SaltTypeError(`${label}.words must be an array of strings, received ${describe(t.words)}`);
  if (!(t.vectors instanceof Float32Array))
    throw new SaltTypeError(`${label}.vectors must be a Float32Array, received ${describe(t.vectors)}`);
  if (!Number.isSafeInteger(t.dim) || t.dim < 1)
    throw new SaltRangeError(`${label}.dim must be a positive integer, received ${describe(t.dim)}`, 'E_ARGUMENT');
  if (t.vectors.length !== t.words.length * t.dim) {
    throw new SaltRangeError(
      `${label}: ${t.words.length} words x dim ${t.dim} = ${t.words.length * t.dim} values expected, vectors has ${t.vectors.length}`,
      'E_SHAPE',
    );
  }
}

/** Options of {@link readTextVectors}. */
export interface ReadTextVectorsOptions {
  /** Read at most this many vectors (the first ones in the file). */
  maxWords?: number;
}

/**
 * Collects floats when their count is not known up front: fixed-size blocks, joined once at the
 * end (peak memory about twice the table, never three times as with a doubling buffer), or a
 * single exact-size array when the count is known (`.vec` header).
 */
class FloatCollector {
  static readonly BLOCK = 1 << 20;
  private blocks: Float32Array[] = [];
  private cur: Float32Array;
  private pos = 0;
  private readonly fixed: boolean;
  constructor(exact?: number) {
    this.fixed = exact !== undefined;
    this.cur = new Float32Array(exact ?? FloatCollector.BLOCK);
  }
  get length(): number {
    return this.blocks.length * FloatCollector.BLOCK + this.pos;
  }
  push(v: number): void {
    if (this.pos === this.cur.length) {
      if (this.fixed) throw new Error('FloatCollector: exact size exceeded'); // callers check the count first
      this.blocks.push(this.cur);
      this.cur = new Float32Array(FloatCollector.BLOCK);
      this.pos = 0;
    }
    this.cur[this.pos++] = v;
  }
  /** The values, in an array of exactly their length. */
  take(): Float32Array {
    if (this.fixed || (!this.blocks.length && this.pos === this.cur.length))
      return this.pos === this.cur.length ? this.cur : this.cur.slice(0, this.pos);
    const out = new Float32Array(this.length);
    let off = 0;
    for (const b of this.blocks) {
      out.set(b, off);
      off += b.length;
    }
    out.set(this.cur.subarray(0, this.pos), off);
    this.blocks = [];
    return out;
  }
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$/i;

/** Strict UTF-8 (invalid bytes are an error, not U+FFFD); a BOM is kept as text, as before. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Lines of a file (without "\n"), streamed and decoded as strict UTF-8 a slab of whole lines at a
 * time; E_FORMAT naming the line when a line is not valid UTF-8.
 */
async function* textLines(path: string): AsyncGenerator<string> {
  const fh = await openRegularFile(path, 'vector file');
  const stream = fh.createReadStream({ highWaterMark: 1 << 20 });
  let rest: Buffer | null = null;
  let lineNo = 0;
  function* decodeSlab(slab: Buffer): Generator<string> {
    let text: string;
    try {
      text = UTF8.decode(slab);
    } catch {
      // Find the offending line.
      let start = 0;
      for (let n = 1; ; n++) {
        const nl = slab.indexOf(10, start);
        const end = nl < 0 ? slab.length : nl;
        try {
          UTF8.decode(slab.subarray(start, end));
        } catch {
          throw new SaltError('E_FORMAT', `${path}:${lineNo + n}: not valid UTF-8`);
        }
        start = end + 1;
      }
    }
    const lines = text.split('\n');
    for (const l of lines) {
      lineNo++;
      yield l;
    }
  }
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
      const last = buf.lastIndexOf(10);
      if (last < 0) {
        rest = buf;
        continue;
      }
      yield* decodeSlab(buf.subarray(0, last));
      rest = last + 1 < buf.length ? buf.subarray(last + 1) : null;
    }
    if (rest) yield* decodeSlab(rest);
  } finally {
    stream.destroy();
  }
}

/**
 * Reads a text vector file: fastText `.vec` (first line "count dim") or GloVe `.txt` (no header).
 * Each line is a word followed by `dim` numbers separated by spaces; a word may itself contain
 * spaces (the last `dim` fields are the numbers). Streams the file line by line; with a header the
 * result is allocated once at its exact size, without one it is collected in blocks and joined
 * once (peak about twice the table).
 * E_FORMAT (with the line number) for invalid UTF-8, ragged rows, non-numeric values or a wrong
 * header count.
 */
export async function readTextVectors(path: string, options: ReadTextVectorsOptions = {}): Promise<VectorTable> {
  const max = options.maxWords ?? Infinity;
  if (max !== Infinity && (!Number.isSafeInteger(max) || max < 0))
    throw new SaltRangeError(`maxWords must be a non-negative integer, received ${describe(max)}`, 'E_ARGUMENT');
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new SaltError('E_IO', `vector file ${JSON.stringify(path)} is not a regular file`);
    size = st.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new SaltError('E_NOT_FOUND', `vector file ${JSON.stringify(path)} does not exist`);
    throw ioError(err, `could not stat vector file ${JSON.stringify(path)}`);
  }
  const words: string[] = [];
  let vals = new FloatCollector(0);
  let dim = 0;
  let declared: number | null = null;
  let lineNo = 0;
  try {
    for await (const rawLine of textLines(path)) {
      lineNo++;
      const line = rawLine.replace(/[ \t\r]+$/, '');
      if (line === '') continue;
      const fields = line.split(/[ \t]+/);
      if (lineNo === 1 && fields.length === 2 && /^\d+$/.test(fields[0]) && /^\d+$/.test(fields[1])) {
        declared = Number(fields[0]);
        dim = Number(fields[1]);
        if (dim < 1) throw new SaltError('E_FORMAT', `${path}:1: header declares dimension ${dim}`);
        // Every row takes at least 2 bytes per value ("0 "): a header promising more cannot be true.
        if (!Number.isSafeInteger(declared * dim) || declared * dim * 2 > size) {
          throw new SaltError(
            'E_FORMAT',
            `${path}:1: header declares ${fields[0]} vectors of dimension ${dim}, more than the ${size}-byte file can hold`,
          );
        }
        vals = new FloatCollector(Math.min(declared, max) * dim);
        continue;
      }
      if (words.length >= max) break;
      if (dim === 0) {
        dim = fields.length - 1;
        if (dim < 1)
          throw new SaltError(
            'E_FORMAT',
            `${path}:${lineNo}: expected a word followed by numbers, received ${describe(line)}`,
          );
        vals = new FloatCollector();
      }
      if (declared !== null && words.length >= declared)
        throw new SaltError('E_FORMAT', `${path}:${lineNo}: header declares ${declared} vectors, file has more`);
      if (fields.length < dim + 1)
        throw new SaltError(
          'E_FORMAT',
          `${path}:${lineNo}: expected a word and ${dim} numbers, received ${fields.length - 1} fields after the first`,
        );
      const word = fields.length === dim + 1 ? fields[0] : fields.slice(0, fields.length - dim).join(' ');
      for (let i = fields.length - dim; i < fields.length; i++) {
        const f = fields[i];
        if (!NUMBER.test(f))
          throw new SaltError(
            'E_FORMAT',
            `${path}:${lineNo}: value ${i - (fields.length - dim) + 1} of ${JSON.stringify(word)} is not a number: ${describe(f)}`,
          );
        vals.push(Number(f.replace(/^([+-]?)inf(inity)?$/i, '$1Infinity')));
      }
      words.push(word);
    }
  } catch (err) {
    if (err instanceof SaltError) throw err;
    throw ioError(err, `could not read ${JSON.stringify(path)}`);
  }
  if (declared !== null && max === Infinity && words.length !== declared) {
    throw new SaltError('E_FORMAT', `${path}: header declares ${declared} vectors, file has ${words.length}`);
  }
  if (!words.length && dim === 0) throw new SaltError('E_FORMAT', `${path}: no vectors found`);
  return { words, dim, vectors: vals.take() };
}

/** The two files of a cached vector table. */
export function vectorCachePaths(base: string): { tensors: string; vocab: string } {
  return { tensors: `${base}.safetensors`, vocab: `${base}.vocab.json` };
}

/**
 * Writes a table as `<base>.safetensors` (tensor "vectors", F32 [rows, dim]; `metadata` goes into
 * `__metadata__`) and `<base>.vocab.json` (JSON array of the words). Each file is written atomically;
 * the safetensors file is written last. Replaces an existing pair.
 */
export async function writeVectorCache(
  base: string,
  table: VectorTable,
  metadata: Record<string, string> = {},
): Promise<void> {
  checkVectorTable(table);
  const p = vectorCachePaths(base);
  await writeBytesAtomic(p.vocab, JSON.stringify(table.words), { overwrite: true });
  await writeSafetensors(
    p.tensors,
    [{ name: 'vectors', dtype: 'F32', shape: [table.words.length, table.dim], data: table.vectors }],
    {
      metadata: { ...metadata, format: 'salt-vectors', rows: String(table.words.length) },
      overwrite: true,
    },
  );
}

/**
 * Reads a pair written by {@link writeVectorCache}. E_NOT_FOUND when either file is missing,
 * E_FORMAT when they disagree.
 */
export async function readVectorCache(base: string): Promise<VectorTable & { metadata: Record<string, string> }> {
  const p = vectorCachePaths(base);
  let words: unknown;
  try {
    words = JSON.parse(await readFile(p.vocab, 'utf8'));
  } catch (err) {
    if (err instanceof SyntaxError) throw new SaltError('E_FORMAT', `${p.vocab}: not valid JSON`);
    throw ioError(err, `could not read ${JSON.stringify(p.vocab)}`);
  }
  if (!Array.isArray(words) || words.some((w) => typeof w !== 'string'))
    throw new SaltError('E_FORMAT', `${p.vocab}: expected a JSON array of strings`);
  const f = await SafetensorsFile.open(p.tensors);
  try {
    const t = f.info('vectors');
    if (t.shape.length !== 2 || t.shape[0] !== words.length) {
      throw new SaltError(
        'E_FORMAT',
        `${p.tensors}: "vectors" has shape [${t.shape.join(', ')}], expected [${words.length}, dim] to match ${p.vocab}`,
      );
    }
    return {
      words: words as string[],
      dim: t.shape[1],
      vectors: await f.readFloat32('vectors'),
      metadata: { ...f.metadata },
    };
  } finally {
    await f.close();
  }
}

/**
 * Returns the table cached at `base`, building it with `build` and caching it first when the
 * cache is missing or unreadable. Safe when several processes race (each writes atomically).
 */
export async function cachedVectors(
  base: string,
  build: () => Promise<VectorTable>,
  metadata: Record<string, string> = {},
): Promise<VectorTable> {
  const p = vectorCachePaths(base);
  if ((await pathExists(p.tensors)) && (await pathExists(p.vocab))) {
    try {
      return await readVectorCache(base);
    } catch (err) {
      if (!(err instanceof SaltError) || (err.code !== 'E_FORMAT' && err.code !== 'E_NOT_FOUND')) throw err;
      // A corrupt or mismatched cache (or one without its "vectors" tensor) is rebuilt below.
    }
  }
  const table = await build();
  await writeVectorCache(base, table, metadata);
  return table;
}

/**
 * A text vector file (see {@link readTextVectors}) converted once into the vector cache:
 * `<cache>/vectors/<file name>-<key>` where the key hashes the absolute path, size and modification
 * time, so an edited file is converted again. `cache` defaults to `cacheDir()` ($SALT_CACHE_DIR or
 * ~/.cache/salt-transfer/data).
 */
export async function cachedTextVectors(path: string, options: { cache?: string } = {}): Promise<VectorTable> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw ioError(err, `could not stat vector file ${JSON.stringify(path)}`);
  }
  const key = createHash('sha256')
    .update(`${resolve(path)}\0${st.size}\0${st.mtimeMs}`)
    .digest('hex')
    .slice(0, 16);
  const base = join(
    options.cache ?? cacheDir(),
    'vectors',
    `${basename(path).replace(/[^A-Za-z0-9_.-]/g, '_')}-${key}`,
  );
  return cachedVectors(base, () => readTextVectors(path), { source: basename(path) });
}
