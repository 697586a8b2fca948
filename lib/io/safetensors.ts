/**
 * Strict, streaming reader and writer for the safetensors format
 * (8-byte little-endian header length, a JSON header, then the raw tensor bytes).
 *
 * The reader validates the whole header before trusting any of it and reads tensors by positioned
 * reads, never the whole file. The writer streams tensors to disk with bounded memory and writes
 * atomically (temporary name in the target folder, renamed when complete).
 */
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { endianness } from 'node:os';

import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { openRegularFile } from '../inputFiles.js';
import { ioError, writeFileAtomic } from './atomic.js';
import {
  decodeBF16,
  decodeF16,
  decodeHalfAsync,
  type Dtype,
  DTYPE_SIZE,
  dtypeByteLength,
  encodeFloatsAsync,
  float32Allocator,
  type FloatDtype,
  isDtype,
  isFloatDtype,
  nativeMatrixOps,
} from './dtype.js';

/** Largest accepted JSON header (100 MB, as in the reference implementation). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes read or written per positioned I/O call when streaming (bounds memory use). */
export const CHUNK_BYTES = 8 << 20;

/** One tensor as described by a safetensors header. */
export interface TensorInfo {
  /** Tensor name (the header key). */
  readonly name: string;
  /** Element type. */
  readonly dtype: Dtype;
  /** Dimensions (empty for a scalar). */
  readonly shape: readonly number[];
  /** Number of elements (product of `shape`). */
  readonly numel: number;
  /** Absolute byte offset of the tensor's first byte in the file. */
  readonly fileOffset: number;
  /** Length in bytes (`numel * itemsize`). */
  readonly byteLength: number;
}

/** @internal Something that positioned reads can be made from (a file or an in-memory buffer). */
export interface ByteSource {
  readonly size: number;
  readonly label: string;
  /** Fills `dst` with the bytes at [pos, pos + dst.length). */
  read(dst: Uint8Array, pos: number): Promise<void>;
  close(): Promise<void>;
}

/** @internal Positioned reads from an in-memory buffer. */
export class BufferSource implements ByteSource {
  constructor(
    private readonly buf: Uint8Array,
    readonly label: string,
  ) {}
  get size(): number {
    return this.buf.length;
  }
  async read(dst: Uint8Array, pos: number): Promise<void> {
    if (pos < 0 || pos + dst.length > this.buf.length) {
      throw new SaltError(
        'E_FORMAT',
        `${this.label}: read of ${dst.length} bytes at ${pos} is outside the ${this.buf.length}-byte buffer`,
      );
    }
    dst.set(this.buf.subarray(pos, pos + dst.length));
  }
  async close(): Promise<void> {}
}

/** @internal Positioned reads from an open file. */
/**
 * Opens `path` (a regular file, see `openRegularFile`) as a {@link FileSource} and hands it to
 * `parse`; the file is closed again when parsing fails. The readers of safetensors and PyTorch files
 * share this.
 * @internal
 */
export async function withFileSource<T>(
  path: string,
  what: string,
  parse: (src: FileSource) => Promise<T>,
): Promise<T> {
  const fh = await openRegularFile(path, what);
  try {
    const st = await fh.stat();
    return await parse(new FileSource(fh, st.size, path));
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

export class FileSource implements ByteSource {
  private closed = false;
  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    readonly label: string,
  ) {}
  async read(dst: Uint8Array, pos: number): Promise<void> {
    if (this.closed) throw new SaltError('E_IO', `${this.label}: the file has been closed`);
    let done = 0;
    while (done < dst.length) {
      const want = Math.min(dst.length - done, 1 << 30);
      let n: number;
      try {
        ({ bytesRead: n } = await this.fh.read(dst, done, want, pos + done));
      } catch (err) {
        throw ioError(err, `could not read ${this.label}`);
      }
      if (n === 0) {
        throw new SaltError(
          'E_IO',
          `${this.label}: file ended at byte ${pos + done} while reading ${dst.length} bytes at ${pos} (was it truncated while open?)`,
        );
      }
      done += n;
    }
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => undefined);
  }
}

/** @internal Runs an allocation, turning V8's RangeError (too large for one typed array, or out of memory) into E_NO_MEMORY. */
export function allocate<T>(make: () => T, what: string): T {
  try {
    return make();
  } catch (err) {
    throw new SaltError('E_NO_MEMORY', `could not allocate ${what}: ${(err as Error).message}`, { cause: err });
  }
}

function fmt(label: string, msg: string): SaltError {
  return new SaltError('E_FORMAT', `${label}: ${msg}`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parsed, validated header. */
interface ParsedHeader {
  headerLength: number;
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

/**
 * Validates a complete header. `headerJson` are the `headerLength` bytes after the 8-byte prefix;
 * `fileSize` is the total size of the file.
 */
function parseHeader(headerJson: Uint8Array, headerLength: number, fileSize: number, label: string): ParsedHeader {
  let text: string;
  try {
    text = utf8.decode(headerJson);
  } catch {
    throw fmt(label, 'header is not valid UTF-8');
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw fmt(label, `header is not valid JSON (${(err as Error).message})`);
  }
  if (root === null || typeof root !== 'object' || Array.isArray(root)) {
    throw fmt(label, `header must be a JSON object, received ${Array.isArray(root) ? 'an array' : describe(root)}`);
  }
  const dataStart = 8 + headerLength;
  const dataSize = fileSize - dataStart;
  // Null prototype: a key such as "__proto__" is kept as data, not taken as the prototype.
  const metadata: Record<string, string> = Object.create(null);
  const tensors = new Map<string, TensorInfo>();
  const ranges: Array<[number, number, string]> = [];
  for (const [name, value] of Object.entries(root as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw fmt(label, `"__metadata__" must be an object of strings, received ${describe(value)}`);
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string')
          throw fmt(
            label,
            `"__metadata__" value for key ${JSON.stringify(k)} must be a string, received ${describe(v)}`,
          );
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw fmt(label, `${where} must be an object with dtype, shape and data_offsets, received ${describe(value)}`);
    }
    const entry = value as Record<string, unknown>;
    for (const k of Object.keys(entry)) {
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets')
        throw fmt(label, `${where} has unknown field ${JSON.stringify(k)}`);
    }
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isDtype(dtype)) throw fmt(label, `${where} has unknown dtype ${describe(dtype)}`);
    if (!Array.isArray(shape))
      throw fmt(label, `${where}: shape must be an array of integers, received ${describe(shape)}`);
    let numel = 1;
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        throw fmt(label, `${where}: shape entries must be non-negative integers, received ${describe(d)}`);
      }
      numel *= d;
      if (!Number.isSafeInteger(numel))
        throw fmt(label, `${where}: shape ${JSON.stringify(shape)} has too many elements`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2) {
      throw fmt(label, `${where}: data_offsets must be [begin, end], received ${describe(offsets)}`);
    }
    const [begin, end] = offsets as unknown[];
    if (
      typeof begin !== 'number' ||
      typeof end !== 'number' ||
      !Number.isSafeInteger(begin) ||
      !Number.isSafeInteger(end) ||
      begin < 0 ||
      end < begin
    ) {
      throw fmt(
        label,
        `${where}: data_offsets must be integers with 0 <= begin <= end, received ${JSON.stringify(offsets)}`,
      );
    }
    if (end > dataSize) {
      throw fmt(
        label,
        `${where}: data_offsets [${begin}, ${end}] run past the end of the data area (${dataSize} bytes)`,
      );
    }
    const byteLength = dtypeByteLength(dtype, numel);
    if (Number.isNaN(byteLength))
      throw fmt(label, `${where}: shape ${JSON.stringify(shape)} of packed ${dtype} is not a whole number of bytes`);
    if (end - begin !== byteLength) {
      throw fmt(
        label,
        `${where}: shape ${JSON.stringify(shape)} x ${DTYPE_SIZE[dtype]} bytes (${dtype}) = ${byteLength} bytes, but data_offsets span ${end - begin}`,
      );
    }
    tensors.set(
      name,
      Object.freeze({
        name,
        dtype,
        shape: Object.freeze([...(shape as number[])]),
        numel,
        fileOffset: dataStart + begin,
        byteLength,
      }),
    );
    ranges.push([begin, end, name]);
  }
  // As in the reference implementation, tensors must tile the data area exactly: no overlap, no
  // gap, no trailing bytes.
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let covered = 0;
  for (let i = 0; i < ranges.length; i++) {
    const [begin, end, name] = ranges[i];
    if (begin < covered) {
      const prev = ranges[i - 1];
      throw fmt(
        label,
        `tensors ${JSON.stringify(prev[2])} [${prev[0]}, ${prev[1]}] and ${JSON.stringify(name)} [${begin}, ${end}] overlap`,
      );
    }
    if (begin > covered)
      throw fmt(
        label,
        `data area bytes [${covered}, ${begin}) belong to no tensor (gap before ${JSON.stringify(name)})`,
      );
    covered = end;
  }
  if (covered !== dataSize)
    throw fmt(
      label,
      `tensors cover ${covered} bytes of the ${dataSize}-byte data area (trailing bytes after the last tensor)`,
    );
  return { headerLength, metadata, tensors };
}

/** Options for reading a tensor as Float32. */
export interface ReadFloat32Options {
  /** First row (index along dimension 0) to read; default 0. */
  rowStart?: number;
  /** One past the last row to read; default `shape[0]`. */
  rowEnd?: number;
  /**
   * Return the values in a SharedArrayBuffer (default false): memory V8 does not count as external,
   * so reading a multi-GB tensor does not force a full garbage collection on the calling thread (tens
   * of ms or more), but that V8 frees only at its next full collection. For large matrices whose
   * pages the caller gives back itself when done (`releaseFloat32`), as the pipelines do with the
   * source's embedding and head.
   */
  shared?: boolean;
}

/**
 * The checked rows `[rowStart, rowEnd)` of a tensor of `rows` rows (the rows' range of
 * {@link ReadFloat32Options}) and its `shared` flag.
 * @throws SaltRangeError `E_ARGUMENT` for a range outside the tensor; SaltTypeError for a non-boolean `shared`.
 */
export function readRange(
  name: string,
  rows: number,
  options: ReadFloat32Options,
): { rowStart: number; rowEnd: number; shared: boolean } {
  const rowStart = options.rowStart ?? 0;
  const rowEnd = options.rowEnd ?? rows;
  if (
    !Number.isSafeInteger(rowStart) ||
    !Number.isSafeInteger(rowEnd) ||
    rowStart < 0 ||
    rowEnd < rowStart ||
    rowEnd > rows
  ) {
    throw new SaltRangeError(
      `rows [${describe(rowStart)}, ${describe(rowEnd)}) of tensor ${JSON.stringify(name)} must lie within [0, ${rows}]`,
      'E_ARGUMENT',
    );
  }
  if (options.shared !== undefined && typeof options.shared !== 'boolean')
    throw new SaltTypeError(`shared must be a boolean, received ${describe(options.shared)}`);
  return { rowStart, rowEnd, shared: options.shared === true };
}

/** Common read interface of a single safetensors file and a sharded checkpoint. */
export interface TensorReader {
  /** Tensor names in header order (file order for checkpoints). */
  names(): string[];
  /** True when a tensor of that name exists. */
  has(name: string): boolean;
  /** Header entry of a tensor (E_NOT_FOUND when missing). */
  info(name: string): TensorInfo;
  /** Raw little-endian bytes of a tensor (any dtype). */
  readBytes(name: string): Promise<Buffer>;
  /** Raw bytes of a tensor in chunks of at most `chunkBytes` (bounded memory). */
  streamBytes(name: string, chunkBytes?: number): AsyncGenerator<Buffer>;
  /** A float tensor (F32, F16 or BF16) decoded exactly to Float32; other dtypes give E_UNSUPPORTED. */
  readFloat32(name: string, options?: ReadFloat32Options): Promise<Float32Array>;
  /** Releases file handles. */
  close(): Promise<void>;
}

/** @internal E_UNSUPPORTED on a big-endian host. */
export function checkLittleEndian(): void {
  if (endianness() !== 'LE') throw new SaltError('E_UNSUPPORTED', 'safetensors I/O needs a little-endian host');
}

/** A validated safetensors file opened for positioned reads. */
export class SafetensorsFile implements TensorReader {
  /** Where the file came from (a path or a label for an in-memory buffer). */
  readonly path: string;
  /** Length of the JSON header in bytes (without the 8-byte prefix). */
  readonly headerLength: number;
  /** Total size of the file in bytes. */
  readonly fileSize: number;
  /** The `__metadata__` string map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly #tensors: Map<string, TensorInfo>;
  readonly #src: ByteSource;

  private constructor(src: ByteSource, header: ParsedHeader) {
    this.#src = src;
    this.path = src.label;
    this.fileSize = src.size;
    this.headerLength = header.headerLength;
    this.metadata = Object.freeze(header.metadata);
    this.#tensors = header.tensors;
  }

  private static async fromSource(src: ByteSource): Promise<SafetensorsFile> {
    checkLittleEndian();
    const label = src.label;
    if (src.size < 8) throw fmt(label, `file is ${src.size} bytes, too short for the 8-byte header length`);
    const prefix = new Uint8Array(8);
    await src.read(prefix, 0);
    const n = Buffer.from(prefix.buffer).readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES))
      throw fmt(label, `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
    const headerLength = Number(n);
    if (headerLength < 2) throw fmt(label, `header length ${headerLength} is too small for a JSON object`);
    if (8 + headerLength > src.size)
      throw fmt(label, `header length ${headerLength} runs past the end of the ${src.size}-byte file`);
    const json = new Uint8Array(headerLength);
    await src.read(json, 8);
    return new SafetensorsFile(src, parseHeader(json, headerLength, src.size, label));
  }

  /** Opens and validates a safetensors file (E_NOT_FOUND, E_IO, E_FORMAT). Call {@link close} when done. */
  static async open(path: string): Promise<SafetensorsFile> {
    return withFileSource(path, 'safetensors file', (src) => SafetensorsFile.fromSource(src));
  }

  /** Validates a safetensors file held in memory (the buffer is not copied). */
  static async fromBuffer(buffer: Uint8Array, label = '<buffer>'): Promise<SafetensorsFile> {
    if (!(buffer instanceof Uint8Array))
      throw new SaltTypeError(`buffer must be a Uint8Array, received ${describe(buffer)}`);
    return SafetensorsFile.fromSource(new BufferSource(buffer, label));
  }

  names(): string[] {
    return [...this.#tensors.keys()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.#tensors.get(name);
    if (!t) throw new SaltError('E_NOT_FOUND', `${this.path}: no tensor named ${JSON.stringify(name)}`);
    return t;
  }

  /** All tensors' header entries, in header order. */
  tensors(): TensorInfo[] {
    return [...this.#tensors.values()];
  }

  async readBytes(name: string): Promise<Buffer> {
    const t = this.info(name);
    const out = allocate(
      () => Buffer.alloc(t.byteLength),
      `${t.byteLength} bytes for tensor ${JSON.stringify(name)} of ${this.path}`,
    );
    if (t.byteLength) await this.#src.read(out, t.fileOffset);
    return out;
  }

  async *streamBytes(name: string, chunkBytes = CHUNK_BYTES): AsyncGenerator<Buffer> {
    const t = this.info(name);
    const step = Math.max(1, Math.floor(chunkBytes));
    for (let pos = 0; pos < t.byteLength; pos += step) {
      const buf = Buffer.allocUnsafe(Math.min(step, t.byteLength - pos));
      await this.#src.read(buf, t.fileOffset + pos);
      yield buf;
    }
  }

  async readFloat32(name: string, options: ReadFloat32Options = {}): Promise<Float32Array> {
    const t = this.info(name);
    if (!isFloatDtype(t.dtype)) {
      throw new SaltError(
        'E_UNSUPPORTED',
        `${this.path}: tensor ${JSON.stringify(name)} has dtype ${t.dtype}; only F32, F16 and BF16 can be read as Float32 (use readBytes for raw bytes)`,
      );
    }
    const rows = t.shape.length ? t.shape[0] : 1;
    const { rowStart, rowEnd, shared } = readRange(name, rows, options);
    const rowElems = rows === 0 ? 0 : t.numel / rows;
    const count = (rowEnd - rowStart) * rowElems;
    const item = DTYPE_SIZE[t.dtype];
    const start = t.fileOffset + rowStart * rowElems * item;
    const alloc = await float32Allocator(shared); // large results are freed off the calling thread
    const out = allocate(
      () => alloc(count),
      `${count} Float32 values for tensor ${JSON.stringify(name)} of ${this.path}`,
    );
    if (count === 0) return out;
    if (t.dtype === 'F32') {
      // Read straight into the result's memory: no intermediate copy.
      await this.#src.read(new Uint8Array(out.buffer), start);
      return out;
    }
    // 16-bit types: decode chunk by chunk so peak memory stays near the Float32 result's size.
    const chunkElems = CHUNK_BYTES / 2;
    const scratch = new Uint16Array(Math.min(chunkElems, count));
    const scratchBytes = new Uint8Array(scratch.buffer);
    for (let done = 0; done < count; done += chunkElems) {
      const n = Math.min(chunkElems, count - done);
      await this.#src.read(scratchBytes.subarray(0, n * 2), start + done * 2);
      // Off the calling thread: a 256k x 4,096 embedding is 256 chunks of ~20 ms of decoding each.
      await decodeHalfAsync(scratch.subarray(0, n), t.dtype, out, done);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#src.close();
  }
}

/**
 * Decodes raw little-endian bytes of a float dtype to Float32. For F32 input whose offset is
 * 4-byte aligned the result is a view on the same memory (zero-copy); otherwise a copy is made.
 */
export function bytesToFloat32(bytes: Uint8Array, dtype: FloatDtype): Float32Array {
  const item = DTYPE_SIZE[dtype];
  if (bytes.length % item !== 0)
    throw new SaltRangeError(`${bytes.length} bytes is not a whole number of ${dtype} elements`, 'E_SHAPE');
  const n = bytes.length / item;
  if (dtype === 'F32') {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    return new Float32Array(bytes.slice().buffer, 0, n);
  }
  const src =
    bytes.byteOffset % 2 === 0
      ? new Uint16Array(bytes.buffer, bytes.byteOffset, n)
      : new Uint16Array(bytes.slice().buffer, 0, n);
  const out = new Float32Array(n);
  if (dtype === 'F16') decodeF16(src, out);
  else decodeBF16(src, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writer

/** Data of one tensor to write. */
export type TensorData =
  /** Values to encode into the tensor's float dtype. */
  | Float32Array
  /** Raw little-endian bytes already in the tensor's dtype (copied as they are). */
  | Uint8Array
  /**
   * A producer of chunks, called once when the tensor is written: Float32Array chunks are encoded
   * into the tensor's dtype, Uint8Array chunks are raw bytes. Lets callers stream tensors larger
   * than memory.
   */
  | (() => AsyncIterable<Float32Array | Uint8Array> | Iterable<Float32Array | Uint8Array>)
  /**
   * Bytes already in the tensor's dtype, at `offset` in the file at `path` (as many as the shape
   * needs): copied file to file off the JavaScript thread (in the kernel with `copy_file_range`
   * where it can, else through a native buffer), never through JavaScript buffers. The file must
   * hold them (E_IO otherwise).
   */
  | FileRange;

/** A byte range of a file, as tensor data (see {@link TensorData}). */
export interface FileRange {
  readonly path: string;
  readonly offset: number;
  /** Checked before the copy starts: an aborted signal gives E_ABORTED. */
  readonly signal?: AbortSignal;
}

function isFileRange(d: unknown): d is FileRange {
  return (
    d !== null &&
    typeof d === 'object' &&
    !ArrayBuffer.isView(d) &&
    typeof (d as FileRange).path === 'string' &&
    Number.isSafeInteger((d as FileRange).offset) &&
    (d as FileRange).offset >= 0
  );
}

/** One tensor to write. */
export interface TensorToWrite {
  /** Tensor name (must be unique and not "__metadata__"). */
  name: string;
  /** Output dtype. Float32Array data requires F32, F16 or BF16. */
  dtype: Dtype;
  /** Dimensions. */
  shape: readonly number[];
  /** The values. */
  data: TensorData;
}

/** Options of {@link writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /** String map stored as `__metadata__`. */
  metadata?: Record<string, string>;
  /** Replace an existing file (default false: E_EXISTS). */
  overwrite?: boolean;
  /**
   * Flush the file and its folder before returning (default true). false leaves the flush to the
   * caller (`syncFile`), e.g. to flush a folder's files together before publishing it.
   */
  sync?: boolean;
  /**
   * @internal The header's size, length prefix included (a multiple of 8, at least the header's
   * own): the JSON is padded with spaces to it (see {@link safetensorsHeaderBound}).
   */
  headerBytes?: number;
}

/**
 * Validates tensors to write (types, unique names, shapes, data lengths) before anything is
 * written; returns each tensor's byte size. E_TYPE / E_ARGUMENT / E_SHAPE naming the tensor.
 */
export function checkTensorSpecs(tensors: readonly TensorToWrite[], what = 'tensors'): number[] {
  if (!Array.isArray(tensors)) throw new SaltTypeError(`${what} must be an array, received ${describe(tensors)}`);
  const seen = new Set<string>();
  return tensors.map((t) => checkTensorSpec(t, seen));
}

function checkTensorSpec(t: TensorToWrite, seen: Set<string>): number {
  if (t === null || typeof t !== 'object')
    throw new SaltTypeError(`each tensor must be an object, received ${describe(t)}`);
  if (typeof t.name !== 'string') throw new SaltTypeError(`tensor name must be a string, received ${describe(t.name)}`);
  if (t.name === '__metadata__') throw new SaltRangeError('tensor name "__metadata__" is reserved', 'E_ARGUMENT');
  if (seen.has(t.name)) throw new SaltRangeError(`tensor name ${JSON.stringify(t.name)} is used twice`, 'E_ARGUMENT');
  seen.add(t.name);
  if (!isDtype(t.dtype))
    throw new SaltRangeError(`tensor ${JSON.stringify(t.name)}: unknown dtype ${describe(t.dtype)}`, 'E_ARGUMENT');
  if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new SaltRangeError(
      `tensor ${JSON.stringify(t.name)}: shape must be an array of non-negative integers, received ${describe(t.shape)}`,
      'E_ARGUMENT',
    );
  }
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const bytes = specByteSize(t);
  if (t.data instanceof Float32Array) {
    if (!isFloatDtype(t.dtype))
      throw new SaltRangeError(
        `tensor ${JSON.stringify(t.name)}: Float32Array data needs dtype F32, F16 or BF16, received ${t.dtype}`,
        'E_ARGUMENT',
      );
    if (t.data.length !== numel)
      throw new SaltRangeError(
        `tensor ${JSON.stringify(t.name)}: shape ${JSON.stringify(t.shape)} has ${numel} elements, data has ${t.data.length}`,
        'E_SHAPE',
      );
  } else if (t.data instanceof Uint8Array) {
    if (t.data.length !== bytes)
      throw new SaltRangeError(
        `tensor ${JSON.stringify(t.name)}: shape ${JSON.stringify(t.shape)} in ${t.dtype} is ${bytes} bytes, data has ${t.data.length}`,
        'E_SHAPE',
      );
  } else if (typeof t.data !== 'function' && !isFileRange(t.data)) {
    throw new SaltTypeError(
      `tensor ${JSON.stringify(t.name)}: data must be a Float32Array, a Uint8Array, a function returning chunks or a { path, offset } file range, received ${describe(t.data)}`,
    );
  }
  return bytes;
}

/** Byte size of a tensor of this dtype and shape; E_ARGUMENT when it is not a whole number of bytes. */
function specByteSize(t: Pick<TensorToWrite, 'name' | 'dtype' | 'shape'>): number {
  const bytes = dtypeByteLength(
    t.dtype,
    t.shape.reduce((a, b) => a * b, 1),
  );
  if (Number.isNaN(bytes))
    throw new SaltRangeError(
      `tensor ${JSON.stringify(t.name)}: shape ${JSON.stringify(t.shape)} of ${t.dtype} is not a whole number of bytes`,
      'E_ARGUMENT',
    );
  return bytes;
}

/** Serialises the header for tensors laid out back to back; padded with spaces to a multiple of 8. */
function buildHeader(
  tensors: readonly Pick<TensorToWrite, 'name' | 'dtype' | 'shape'>[],
  sizes: number[],
  metadata?: Record<string, string>,
  headerBytes?: number,
): Buffer {
  let off = 0;
  const json = headerJson(
    tensors.map((t, i) => {
      const e = { name: t.name, dtype: t.dtype, shape: t.shape, offsets: [off, off + sizes[i]] as const };
      off += sizes[i];
      return e;
    }),
    metadata,
  );
  const natural = 8 + Math.ceil(json.length / 8) * 8;
  const total = headerBytes ?? natural;
  if (total < natural || total % 8 !== 0)
    throw new SaltError(
      'E_INTERNAL',
      `a safetensors header of ${natural} bytes cannot be written in ${headerBytes} (a multiple of 8, at least as long)`,
    );
  // Trailing spaces pad the JSON so the data starts at a multiple of 8 (the format allows it).
  const out = Buffer.alloc(total, 0x20);
  out.writeBigUInt64LE(BigInt(total - 8), 0);
  json.copy(out, 8);
  return out;
}

/** The header's JSON for these entries (in this order) and metadata. */
function headerJson(
  entries: readonly { name: string; dtype: string; shape: readonly number[]; offsets: readonly [number, number] }[],
  metadata?: Record<string, string>,
): Buffer {
  // Null prototype, so that a tensor or metadata key named "__proto__" is written like any other.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string')
        throw new SaltTypeError(`metadata value for ${JSON.stringify(k)} must be a string, received ${describe(v)}`);
    }
    const meta: Record<string, string> = Object.create(null);
    for (const [k, v] of Object.entries(metadata)) meta[k] = v;
    header.__metadata__ = meta;
  }
  for (const e of entries) header[e.name] = { dtype: e.dtype, shape: [...e.shape], data_offsets: [...e.offsets] };
  return Buffer.from(JSON.stringify(header), 'utf8');
}

/** The longest dtype name of the format (`F8_E4M3`). */
const LONGEST_DTYPE = 'F8_E4M3';

/**
 * @internal The size of a header (length prefix included, a multiple of 8) that holds any header
 * of `tensors` (in this order, with `metadata`) in which the last `variable` tensors may have any
 * dimensions (same rank) and any dtype: every such dimension and offset written as the largest
 * safe integer, every such dtype as the longest name. The fixed tensors come first, so their
 * offsets do not depend on the variable ones; with a header of this size they are known before
 * the variable tensors' shapes are.
 */
export function safetensorsHeaderBound(
  tensors: readonly Pick<TensorToWrite, 'name' | 'dtype' | 'shape'>[],
  variable: number,
  metadata?: Record<string, string>,
): number {
  const fixed = tensors.length - variable;
  let off = 0;
  const big = Number.MAX_SAFE_INTEGER;
  const json = headerJson(
    tensors.map((t, i) => {
      if (i >= fixed)
        return { name: t.name, dtype: LONGEST_DTYPE, shape: t.shape.map(() => big), offsets: [big, big] as const };
      const n = specByteSize(t);
      const e = { name: t.name, dtype: t.dtype, shape: t.shape, offsets: [off, off + n] as const };
      off += n;
      return e;
    }),
    metadata,
  );
  return 8 + Math.ceil(json.length / 8) * 8;
}

/**
 * @internal Where {@link writeSafetensors} puts every byte of a file of these tensors (in this
 * order, with this metadata): the serialised header and each tensor's absolute offset in the file.
 * Equal headers mean equal layouts.
 */
export interface SafetensorsLayout {
  readonly header: Buffer;
  /** Absolute byte offset of each tensor's data. */
  readonly offsets: readonly number[];
  /** Byte size of each tensor's data. */
  readonly sizes: readonly number[];
  /** File size. */
  readonly bytes: number;
}

/** @internal The layout of a safetensors file of `tensors` (shapes and dtypes checked; data not looked at). */
export function safetensorsLayout(
  tensors: readonly Pick<TensorToWrite, 'name' | 'dtype' | 'shape'>[],
  metadata?: Record<string, string>,
  headerBytes?: number,
): SafetensorsLayout {
  const sizes = tensors.map(specByteSize);
  const header = buildHeader(tensors, sizes, metadata, headerBytes);
  const offsets: number[] = [];
  let at = header.length;
  for (const n of sizes) {
    offsets.push(at);
    at += n;
  }
  return { header, offsets, sizes, bytes: at };
}

/** Writes all of `buf` at `position` (null: at the file's offset, which advances). */
async function writeAll(fh: FileHandle, buf: Uint8Array, label: string, position: number | null = null): Promise<void> {
  try {
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await fh.write(buf, done, buf.length - done, position === null ? null : position + done);
      done += bytesWritten;
    }
  } catch (err) {
    throw ioError(err, `could not write ${label}`);
  }
}

/**
 * Writes tensor data at `position` (advanced as it goes), or at the file's offset when it is null;
 * `writeback` asks the kernel to start writing each piece back to disk once written (positioned
 * writes only).
 */
interface WriteAt {
  position: number | null;
  writeback?: boolean;
  /** The same file opened with O_DIRECT (see {@link openDirect}): positioned writes of file ranges and floats go through it. */
  direct?: FileHandle;
  /** Checked between direct writes. */
  signal?: AbortSignal;
}

/**
 * @internal `path` opened for writing with O_DIRECT (writes bypass the page cache), for
 * {@link writeTensorsAt} and {@link copyRangeAt}; undefined where the platform or the file system
 * has no direct I/O (the writes then go through the page cache). Close it before the file's final
 * fdatasync.
 */
export async function openDirect(path: string): Promise<FileHandle | undefined> {
  const flag = (fsConstants as { O_DIRECT?: number }).O_DIRECT;
  if (flag === undefined || !(await nativeMatrixOps())) return undefined;
  return open(path, fsConstants.O_WRONLY | flag).catch(() => undefined);
}

/** A native SaltError with `label` (the file, the tensor) in front of its message; anything else as it is. */
function relabel(err: unknown, label: string): unknown {
  return err instanceof SaltError ? new SaltError(err.code, `${label}: ${err.message}`) : err;
}

/** Floats per direct write of {@link writeTensorData}: 64 MiB of Float32 input (a multiple of the 4 KiB block in every dtype). */
const DIRECT_FLOATS = 16 << 20;

async function kickWriteback(fh: FileHandle, at: WriteAt, start: number, length: number): Promise<void> {
  if (!at.writeback || at.position === null || length === 0) return;
  const native = await nativeMatrixOps();
  await native?.startWriteback(fh.fd, start, length);
}

/** Writes `buf` as the next piece of the tensor data at `at` (see {@link WriteAt}). */
async function writePiece(fh: FileHandle, buf: Uint8Array, label: string, at: WriteAt): Promise<void> {
  const start = at.position;
  await writeAll(fh, buf, label, start);
  if (start !== null) {
    at.position = start + buf.length;
    await kickWriteback(fh, at, start, buf.length);
  }
}

/** Copies `length` bytes of `range` to `fh` at `at` (see {@link WriteAt}). */
async function copyRange(range: FileRange, fh: FileHandle, length: number, label: string, at: WriteAt): Promise<void> {
  if (range.signal?.aborted) throw new SaltError('E_ABORTED', `aborted before copying ${label}`);
  if (length === 0) return;
  let src: FileHandle;
  try {
    src = await open(range.path, 'r');
  } catch (err) {
    throw ioError(err, `could not open ${JSON.stringify(range.path)}`);
  }
  try {
    const native = await nativeMatrixOps();
    if (native && at.direct && at.position !== null) {
      await native
        .writeDirect(fh.fd, at.direct.fd, at.position, { fdIn: src.fd, offsetIn: range.offset, length }, at)
        .catch((err: unknown) => {
          throw relabel(err, label);
        });
      at.position += length;
      return;
    }
    if (native) {
      await native
        .copyFileRange(src.fd, range.offset, fh.fd, length, {
          ...(at.position !== null ? { offsetOut: at.position } : {}),
          writeback: at.writeback === true && at.position !== null,
        })
        .catch((err: unknown) => {
          throw relabel(err, label);
        });
      if (at.position !== null) at.position += length;
      return;
    }
    const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, length));
    for (let done = 0; done < length;) {
      const want = Math.min(buf.length, length - done);
      let n: number;
      try {
        ({ bytesRead: n } = await src.read(buf, 0, want, range.offset + done));
      } catch (err) {
        throw ioError(err, `could not read ${label}`);
      }
      if (n === 0)
        throw new SaltError(
          'E_IO',
          `${label}: the file ended at byte ${range.offset + done} (was it truncated while open?)`,
        );
      await writePiece(fh, buf.subarray(0, n), label, at);
      done += n;
    }
  } finally {
    await src.close().catch(() => undefined);
  }
}

async function writeTensorData(
  fh: FileHandle,
  t: TensorToWrite,
  expected: number,
  label: string,
  at: WriteAt = { position: null },
): Promise<void> {
  const where = `tensor ${JSON.stringify(t.name)}`;
  const native = at.direct && at.position !== null ? await nativeMatrixOps() : null;
  const es = t.dtype === 'F32' ? 4 : 2;
  // (A tensor placed at an offset that is not a multiple of its element size, e.g. behind an odd-sized
  // U8 tensor, takes the buffered path below.)
  if (
    t.data instanceof Float32Array &&
    native &&
    at.direct &&
    at.position !== null &&
    at.position % es === 0 &&
    isFloatDtype(t.dtype)
  ) {
    // Encoded natively into aligned buffers; the whole blocks bypass the page cache.
    // Pieces end on block boundaries of the file, so only the tensor's two ends are partial blocks.
    let first = Math.min(t.data.length, DIRECT_FLOATS);
    const misaligned = (at.position + first * es) % 4096;
    if (first < t.data.length && misaligned !== 0 && misaligned % es === 0) first -= misaligned / es;
    for (let i = 0; i < t.data.length;) {
      const n = i === 0 ? first : Math.min(DIRECT_FLOATS, t.data.length - i);
      if (at.signal?.aborted) throw new SaltError('E_ABORTED', `aborted while writing ${label}`);
      await native
        .writeDirect(fh.fd, at.direct.fd, at.position, { values: t.data.subarray(i, i + n), dtype: t.dtype }, at)
        .catch((err: unknown) => {
          throw relabel(err, `${label}: ${where}`);
        });
      at.position += n * es;
      i += n;
    }
    return;
  }
  if (t.data instanceof Float32Array) {
    const step = CHUNK_BYTES / 4;
    // The next chunk is encoded (off the calling thread) while this one is written.
    let next = encodeFloatsAsync(t.data.subarray(0, step), t.dtype as FloatDtype);
    next.catch(() => undefined); // handled when awaited
    for (let i = 0; i < t.data.length; i += step) {
      const bytes = await next;
      if (i + step < t.data.length) {
        next = encodeFloatsAsync(t.data.subarray(i + step, i + 2 * step), t.dtype as FloatDtype);
        next.catch(() => undefined); // handled when awaited
      }
      await writePiece(fh, bytes, label, at);
    }
    return;
  }
  if (t.data instanceof Uint8Array) {
    for (let i = 0; i < t.data.length; i += CHUNK_BYTES)
      await writePiece(fh, t.data.subarray(i, i + CHUNK_BYTES), label, at);
    return;
  }
  if (isFileRange(t.data)) {
    await copyRange(t.data, fh, expected, `${where} from ${t.data.path}`, at);
    return;
  }
  let written = 0;
  const src = t.data() as AsyncIterable<Float32Array | Uint8Array> | Iterable<Float32Array | Uint8Array>;
  const it: AsyncIterator<Float32Array | Uint8Array> | Iterator<Float32Array | Uint8Array> =
    Symbol.asyncIterator in src
      ? (src as AsyncIterable<Float32Array | Uint8Array>)[Symbol.asyncIterator]()
      : (src as Iterable<Float32Array | Uint8Array>)[Symbol.iterator]();
  // One chunk of read-ahead: the next chunk is produced (e.g. read from disk) while this one is written.
  // At most two chunks are held at a time.
  let pending = Promise.resolve(it.next());
  for (;;) {
    const step = await pending;
    if (step.done) break;
    const chunk = step.value;
    pending = Promise.resolve(it.next());
    pending.catch(() => undefined); // handled when awaited; avoids an unhandled rejection if writing fails first
    let bytes: Uint8Array;
    if (chunk instanceof Float32Array) {
      if (!isFloatDtype(t.dtype))
        throw new SaltRangeError(
          `${where}: Float32Array chunks need dtype F32, F16 or BF16, received ${t.dtype}`,
          'E_ARGUMENT',
        );
      bytes = await encodeFloatsAsync(chunk, t.dtype);
    } else if (chunk instanceof Uint8Array) {
      bytes = chunk;
    } else {
      throw new SaltTypeError(`${where}: chunks must be Float32Array or Uint8Array, received ${describe(chunk)}`);
    }
    if (written + bytes.length > expected)
      throw new SaltRangeError(
        `${where}: chunks give more than the ${expected} bytes of shape ${JSON.stringify(t.shape)} in ${t.dtype}`,
        'E_SHAPE',
      );
    try {
      await writePiece(fh, bytes, label, at);
    } catch (err) {
      await Promise.resolve(it.return?.()).catch(() => undefined);
      throw err;
    }
    written += bytes.length;
  }
  if (written !== expected)
    throw new SaltRangeError(
      `${where}: chunks gave ${written} bytes, shape ${JSON.stringify(t.shape)} in ${t.dtype} needs ${expected}`,
      'E_SHAPE',
    );
}

/**
 * Writes tensors to one safetensors file, streaming each tensor's data (memory stays bounded by the
 * chunk size for streamed and raw data). The file is written under a temporary name in the target
 * folder and renamed when complete. Returns the number of bytes written.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  options: WriteSafetensorsOptions = {},
): Promise<number> {
  checkLittleEndian();
  const sizes = checkTensorSpecs(tensors);
  const header = buildHeader(tensors, sizes, options.metadata, options.headerBytes);
  await writeFileAtomic(
    path,
    async (fh) => {
      await writeAll(fh, header, path);
      for (let i = 0; i < tensors.length; i++) await writeTensorData(fh, tensors[i], sizes[i], path);
    },
    { overwrite: options.overwrite, sync: options.sync },
  );
  return header.length + sizes.reduce((a, b) => a + b, 0);
}

/**
 * @internal Writes some tensors of a safetensors file laid out by `layout` (from
 * {@link safetensorsLayout} of `tensors`) in place: `tensors[i]` for every `i` in `indices`, at its
 * offset, with `positioned` writes into the open file `fh` (the other tensors' bytes are left as
 * they are). `writeback` starts writing each piece back to disk as it is written (see
 * {@link startWriteback}); `direct` (see {@link openDirect}) writes Float32 tensors and file ranges
 * with direct I/O. Nothing is flushed. The caller writes the header and flushes.
 */
export async function writeTensorsAt(
  fh: FileHandle,
  path: string,
  layout: SafetensorsLayout,
  tensors: readonly TensorToWrite[],
  indices: Iterable<number>,
  options: { writeback?: boolean; signal?: AbortSignal; direct?: FileHandle } = {},
): Promise<void> {
  checkLittleEndian();
  const sizes = checkTensorSpecs(tensors);
  for (const i of indices) {
    if (options.signal?.aborted) throw new SaltError('E_ABORTED', `aborted while writing ${path}`);
    if (sizes[i] !== layout.sizes[i])
      throw new SaltError(
        'E_INTERNAL',
        `${path}: tensor ${JSON.stringify(tensors[i].name)} has ${sizes[i]} bytes, its place in the layout ${layout.sizes[i]}`,
      );
    await writeTensorData(fh, tensors[i], sizes[i], path, {
      position: layout.offsets[i],
      writeback: options.writeback === true,
      direct: options.direct,
      signal: options.signal,
    });
  }
}

/**
 * @internal Copies `length` bytes of `range` into the open file `fh` at `position` (in the kernel
 * where possible, or with direct I/O through `direct`: see {@link openDirect}); `writeback` starts
 * writing them back to disk once copied. Errors name `label`.
 */
export function copyRangeAt(
  range: FileRange,
  fh: FileHandle,
  length: number,
  position: number,
  label: string,
  writeback = false,
  direct?: FileHandle,
): Promise<void> {
  return copyRange(range, fh, length, label, { position, writeback, direct });
}

/** @internal Writes `bytes` at `position` of the open file `fh` (all of them). */
export function writeBytesAt(fh: FileHandle, bytes: Uint8Array, position: number, label: string): Promise<void> {
  return writeAll(fh, bytes, label, position);
}

/** Byte size a tensor will take on disk. */
export function tensorByteSize(t: Pick<TensorToWrite, 'dtype' | 'shape'>): number {
  return dtypeByteLength(
    t.dtype,
    t.shape.reduce((a, b) => a * b, 1),
  );
}
