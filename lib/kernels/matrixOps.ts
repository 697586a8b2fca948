/**
 * Whole-matrix passes of the engine, the evaluation and the readers, run natively on the libuv
 * thread pool so that the JavaScript thread never waits for them: NaN/Inf scans, per-column mean and
 * standard deviation, row norms, row gathers, sorting, exact Float32 <-> F16/BF16 conversion and
 * Float32 <-> Float64 conversion.
 *
 * Every float result is the same bits for any thread count (the core is compiled without fused
 * multiply-add contraction) and equals, bit for bit, the plain float64 JavaScript loop it replaced
 * (same order of the sums), except the column statistics, which follow a blocked one-pass definition
 * (see {@link columnMeanStd}).
 * Inputs are read in place and must not be modified or transferred until the Promise settles.
 * Internal to the package (not exported from the package root).
 */
import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { call } from './kernels.js';
import { binding, type RawBinding } from './native.js';
import { checkInt32, checkInteger, checkMatrix, type Matrix } from './validate.js';

/** Options of the whole-matrix passes. */
export interface MatrixOpOptions {
  /** CPU worker threads; default 0 = all cores. */
  threads?: number;
}

function threadsOf(options: MatrixOpOptions | undefined): number {
  return options?.threads === undefined ? 0 : checkInteger('options.threads', options.threads, 0, 4096);
}

function checkIds(name: string, ids: unknown, rows: number): Int32Array {
  const v = checkInt32(name, ids);
  // The range is checked natively too; checking here gives the caller's argument name.
  for (let i = 0; i < v.length; i++)
    if (v[i] < 0 || v[i] >= rows)
      throw new SaltRangeError(`${name}[${i}] must be a row in [0, ${rows}), received ${v[i]}`);
  return v;
}

/**
 * The flat index (row * cols + column) of the first NaN or +-Infinity of `m` in row-major order, or
 * -1 when every value is finite. With `rowMask`, rows whose mask entry is 0 are skipped.
 */
export function findNonFinite(m: Matrix, options?: MatrixOpOptions & { rowMask?: Uint8Array }): Promise<number> {
  return call(async () => {
    checkMatrix('m', m);
    const mask = options?.rowMask;
    if (mask !== undefined && (!(mask instanceof Uint8Array) || mask.length !== m.rows))
      throw new SaltTypeError(
        `options.rowMask must be a Uint8Array of m.rows = ${m.rows} elements, received ${describe(mask)}`,
      );
    const r = await binding().findNonFinite({
      data: m.data,
      rows: m.rows,
      cols: m.cols,
      mask,
      threads: threadsOf(options),
    });
    return r.index[0];
  });
}

/**
 * Per-column mean and population standard deviation of `m` (float64), from one pass over the
 * matrix; with `norms: true` also every row's L2 norm from that same pass (equal bit for bit to
 * {@link rowNorms}). The rows are summed in blocks that are merged in a fixed order (the definition
 * is in native/core/include/salt/matrix_ops.h): the results depend only on the values and the
 * shape, not on the thread count, and agree with the plain two-pass float64 loop to ~1e-13
 * relative. 0 and 0 without rows.
 */
export function columnMeanStd(
  m: Matrix,
  options?: MatrixOpOptions & { norms?: false },
): Promise<{ mean: Float64Array; std: Float64Array }>;
export function columnMeanStd(
  m: Matrix,
  options: MatrixOpOptions & { norms: true },
): Promise<{ mean: Float64Array; std: Float64Array; norms: Float64Array }>;
export function columnMeanStd(
  m: Matrix,
  options?: MatrixOpOptions & { norms?: boolean },
): Promise<{ mean: Float64Array; std: Float64Array; norms?: Float64Array }>;
export function columnMeanStd(
  m: Matrix,
  options?: MatrixOpOptions & { norms?: boolean },
): Promise<{ mean: Float64Array; std: Float64Array; norms?: Float64Array }> {
  return call(async () => {
    checkMatrix('m', m);
    const norms = options?.norms ?? false;
    if (typeof norms !== 'boolean')
      throw new SaltTypeError(`options.norms must be a boolean, received ${describe(norms)}`);
    // The addon's result holds `norms` only when asked for.
    return binding().columnMeanStd({ data: m.data, rows: m.rows, cols: m.cols, norms, threads: threadsOf(options) });
  });
}

/** L2 norms (float64) of the rows `rows` of `m` (every row when omitted), in that order. */
export function rowNorms(m: Matrix, options?: MatrixOpOptions & { rows?: Int32Array }): Promise<Float64Array> {
  return call(async () => {
    checkMatrix('m', m);
    const ids = options?.rows === undefined ? undefined : checkIds('options.rows', options.rows, m.rows);
    // An empty typed array reaches the addon as no array at all: answer it here.
    if (ids !== undefined && ids.length === 0) return new Float64Array(0);
    const r = await binding().rowNorms({
      data: m.data,
      rows: m.rows,
      cols: m.cols,
      ids,
      n: ids ? ids.length : m.rows,
      threads: threadsOf(options),
    });
    return r.norms;
  });
}

/** A new matrix of the rows `ids` of `m`, in that order. */
export function gatherRows(m: Matrix, ids: Int32Array, options?: MatrixOpOptions): Promise<Matrix> {
  return call(async () => {
    checkMatrix('m', m);
    checkIds('ids', ids, m.rows);
    if (ids.length === 0) return { data: new Float32Array(0), rows: 0, cols: m.cols };
    const r = await binding().gatherRows({
      data: m.data,
      rows: m.rows,
      cols: m.cols,
      ids,
      n: ids.length,
      threads: threadsOf(options),
    });
    return { data: r.out, rows: ids.length, cols: m.cols };
  });
}

/**
 * Copies into row i of `out` (`ids.length` rows of `m.cols`, written in place) the row `ids[i]` of
 * `m`, for every `ids[i] >= 0`; rows with `ids[i] = -1` are left as they are. Off the calling thread.
 */
export function copyRows(m: Matrix, ids: Int32Array, out: Float32Array, options?: MatrixOpOptions): Promise<void> {
  return call(async () => {
    checkMatrix('m', m);
    if (!(ids instanceof Int32Array)) throw new SaltTypeError(`ids must be an Int32Array, received ${describe(ids)}`);
    if (!(out instanceof Float32Array) || out.length !== ids.length * m.cols)
      throw new SaltRangeError(
        `out must be a Float32Array of ids.length x m.cols = ${ids.length * m.cols} values, received ${describe(out)}`,
        'E_SHAPE',
      );
    if (ids.length === 0 || m.cols === 0) return;
    await binding().copyRows({
      data: m.data,
      rows: m.rows,
      cols: m.cols,
      ids,
      n: ids.length,
      out,
      threads: threadsOf(options),
    });
  });
}

/**
 * Sorts `values` in place in the order of `Float64Array.prototype.sort` (ascending, -0 before +0,
 * NaN last) and returns it.
 */
export function sortFloat64(values: Float64Array): Promise<Float64Array> {
  return call(async () => {
    if (!(values instanceof Float64Array))
      throw new SaltTypeError(`values must be a Float64Array, received ${describe(values)}`);
    await binding().sortDoubles({ values, n: values.length });
    return values;
  });
}

/** The 16-bit float formats of {@link encodeHalf} and {@link decodeHalf}. */
export type HalfDtype = 'F16' | 'BF16';

function checkHalf(dtype: unknown): HalfDtype {
  if (dtype !== 'F16' && dtype !== 'BF16')
    throw new SaltRangeError(`dtype must be "F16" or "BF16", received ${describe(dtype)}`);
  return dtype;
}

/**
 * Rounds `src` to `dtype` (round to nearest, ties to even; overflow gives Infinity; NaN stays a quiet
 * NaN) into `out` (same length) and returns `out`: the bits of the package's JavaScript encoder.
 */
export function encodeHalf(
  src: Float32Array,
  dtype: HalfDtype,
  out: Uint16Array,
  options?: MatrixOpOptions,
): Promise<Uint16Array> {
  return call(async () => {
    if (!(src instanceof Float32Array))
      throw new SaltTypeError(`src must be a Float32Array, received ${describe(src)}`);
    const kind = checkHalf(dtype);
    if (!(out instanceof Uint16Array) || out.length !== src.length)
      throw new SaltTypeError(
        `out must be a Uint16Array of src.length = ${src.length} elements, received ${describe(out)}`,
      );
    await binding().encodeFloats({ src, out, n: src.length, dtype: kind, threads: threadsOf(options) });
    return out;
  });
}

/** Decodes `src` (`dtype` bit patterns) exactly into `out` (same length) and returns `out`. */
export function decodeHalf(
  src: Uint16Array,
  dtype: HalfDtype,
  out: Float32Array,
  options?: MatrixOpOptions,
): Promise<Float32Array> {
  return call(async () => {
    if (!(src instanceof Uint16Array)) throw new SaltTypeError(`src must be a Uint16Array, received ${describe(src)}`);
    const kind = checkHalf(dtype);
    if (!(out instanceof Float32Array) || out.length !== src.length)
      throw new SaltTypeError(
        `out must be a Float32Array of src.length = ${src.length} elements, received ${describe(out)}`,
      );
    await binding().decodeFloats({ src, out, n: src.length, dtype: kind, threads: threadsOf(options) });
    return out;
  });
}

/** Below this many bytes {@link allocFloat32} and {@link allocFloat64} return a plain typed array. */
const NATIVE_ALLOC_BYTES = 1 << 24;

/** A large zero-filled array from the addon (see {@link allocFloat32}), or the runtime's own. */
function allocLarge<T extends Float32Array | Float64Array>(
  length: number,
  native: (b: RawBinding) => (n: number) => T,
  plain: (n: number) => T,
  bytesPer: number,
): T {
  if (length * bytesPer < NATIVE_ALLOC_BYTES) return plain(length);
  try {
    return native(binding())(length);
  } catch (err) {
    if ((err as { code?: string }).code === 'E_NO_MEMORY') throw err;
    return plain(length);
  }
}

/**
 * A zero-filled Float32Array of `length` values. Large ones (16 MiB and more) get memory from the
 * addon that is freed on a thread of its own once the array is garbage: freeing gigabytes written by
 * other threads (file reads, native decoding) otherwise costs the garbage collector ~0.2 s per GiB on
 * the calling thread. Falls back to `new Float32Array` where external memory is not allowed. (The
 * addon's own large results are allocated the same way.)
 */
export function allocFloat32(length: number): Float32Array {
  return allocLarge(
    length,
    (b) => b.allocFloat32,
    (n) => new Float32Array(n),
    4,
  );
}

/**
 * A zero-filled Float32Array in a SharedArrayBuffer: memory V8 does not count as external, so that
 * allocating gigabytes of it forces no full garbage collection on the calling thread, and that V8
 * frees only at its next full collection (give its pages back with {@link releaseFloat32} once done).
 * `E_NO_MEMORY` when it cannot be allocated.
 */
export function allocSharedFloat32(length: number): Float32Array {
  try {
    return new Float32Array(new SharedArrayBuffer(length * 4));
  } catch (err) {
    throw new SaltError('E_NO_MEMORY', `could not allocate ${length} Float32 values: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * Gives the whole memory pages of `a` back to the system, off the calling thread: for a large
 * matrix that will not be read again (it reads as zeros if it is) but that V8 may keep for a while
 * ({@link allocSharedFloat32}). Resolves to the bytes given back: 0 without the addon, or where the
 * system cannot.
 */
export async function releaseFloat32(a: Float32Array): Promise<number> {
  if (!(a instanceof Float32Array)) throw new SaltTypeError(`a must be a Float32Array, received ${describe(a)}`);
  let b: RawBinding;
  try {
    b = binding();
  } catch {
    return 0;
  }
  return (await b.releasePages({ data: a })).result.bytes;
}

/** {@link allocFloat32} for a Float64Array. */
export function allocFloat64(length: number): Float64Array {
  return allocLarge(
    length,
    (b) => b.allocFloat64,
    (n) => new Float64Array(n),
    8,
  );
}

/**
 * `src` converted to float64 (exact) in a new array, or to float32 (round to nearest, ties to even:
 * the rounding of a typed-array `set`) in a new array: off the calling thread, large results in
 * memory that is freed off it too ({@link allocFloat32}).
 */
export function toFloat64(src: Float32Array, options?: MatrixOpOptions): Promise<Float64Array> {
  return call(async () => {
    if (!(src instanceof Float32Array))
      throw new SaltTypeError(`src must be a Float32Array, received ${describe(src)}`);
    const out = allocFloat64(src.length);
    if (src.length > 0) await binding().widenFloats({ src, out, n: src.length, threads: threadsOf(options) });
    return out;
  });
}

/** See {@link toFloat64}. */
export function toFloat32(src: Float64Array, options?: MatrixOpOptions): Promise<Float32Array> {
  return call(async () => {
    if (!(src instanceof Float64Array))
      throw new SaltTypeError(`src must be a Float64Array, received ${describe(src)}`);
    const out = allocFloat32(src.length);
    if (src.length > 0) await binding().narrowFloats({ src, out, n: src.length, threads: threadsOf(options) });
    return out;
  });
}

/**
 * Copies `length` bytes of the open file `fdIn`, from `offsetIn`, to the open file `fdOut`: at
 * `options.offsetOut` when given (fdOut's file offset neither used nor moved), else at its current
 * offset (which advances); off the calling thread. `copy_file_range` where the kernel can (then the
 * bytes stay in the kernel), else a native pread/write loop. `options.writeback` then asks the
 * kernel to start writing the copied range to disk (not a flush: see {@link startWriteback}).
 * Resolves to true when the kernel copied everything. Both descriptors must stay open until the
 * Promise settles. E_IO when a read or write fails or the input ends early.
 */
export function copyFileRange(
  fdIn: number,
  offsetIn: number,
  fdOut: number,
  length: number,
  options: { offsetOut?: number; writeback?: boolean } = {},
): Promise<boolean> {
  return call(async () => {
    checkInteger('fdIn', fdIn, 0, 2 ** 31 - 1);
    checkInteger('fdOut', fdOut, 0, 2 ** 31 - 1);
    checkInteger('offsetIn', offsetIn, 0, Number.MAX_SAFE_INTEGER);
    checkInteger('length', length, 0, Number.MAX_SAFE_INTEGER);
    if (options.offsetOut !== undefined) checkInteger('offsetOut', options.offsetOut, 0, Number.MAX_SAFE_INTEGER);
    const flag = new Int32Array(1);
    await binding().copyFileRange({
      fdIn,
      offsetIn,
      fdOut,
      ...(options.offsetOut !== undefined ? { offsetOut: options.offsetOut } : {}),
      length,
      writeback: options.writeback ? 1 : 0,
      flag,
    });
    return flag[0] === 1;
  });
}

/**
 * Process-wide (glibc only): every allocation of 1 MiB or more gets its own mapping, returned to the
 * system when freed. glibc otherwise raises that threshold after each large free, and the freed
 * multi-MB buffers of the readers, the tokenizer worker and the native threads then stay resident in
 * its per-thread arenas (about 0.5 GB of a 1B-model folder transfer's peak). The CLI calls this when
 * it starts; a library call never changes the process's allocator by itself. False where not
 * available (no addon, another C library).
 */
export function returnLargeFreesToSystem(): boolean {
  try {
    return binding().fixMallocMmapThreshold(1 << 20);
  } catch {
    return false;
  }
}

/** What {@link writeDirect} writes at its offset: a byte range of an open file, or floats encoded as `dtype`. */
export type DirectSource =
  { fdIn: number; offsetIn: number; length: number } | { values: Float32Array; dtype: 'F32' | 'F16' | 'BF16' };

/**
 * Writes `source` at `offset` of the open file `fd`, off the calling thread: the whole 4 KiB blocks
 * through `fdDirect` (the same file opened with `O_DIRECT`; -1 for none), which bypasses the page
 * cache, the partial blocks at both ends through `fd` (`writeback`: their writeback is started). When
 * the file system refuses direct I/O, everything goes through `fd`. Resolves to true when direct I/O
 * was used. For floats `offset` must be a multiple of the dtype's size. The files must stay open
 * until the Promise settles. Not a flush: the caller's fdatasync makes the bytes durable. E_IO when
 * a read or write fails or the source file ends early.
 */
export function writeDirect(
  fd: number,
  fdDirect: number,
  offset: number,
  source: DirectSource,
  options: { writeback?: boolean } = {},
): Promise<boolean> {
  return call(async () => {
    checkInteger('fd', fd, 0, 2 ** 31 - 1);
    checkInteger('fdDirect', fdDirect, -1, 2 ** 31 - 1);
    checkInteger('offset', offset, 0, Number.MAX_SAFE_INTEGER);
    const flag = new Int32Array(1);
    // The binding reads a missing fdDirect as none (-1).
    const common = { fd, ...(fdDirect >= 0 ? { fdDirect } : {}), offset, writeback: options.writeback ? 1 : 0, flag };
    if ('values' in source) {
      if (!(source.values instanceof Float32Array))
        throw new SaltTypeError(`values must be a Float32Array, received ${describe(source.values)}`);
      await binding().writeDirect({ ...common, values: source.values, n: source.values.length, dtype: source.dtype });
    } else {
      checkInteger('fdIn', source.fdIn, 0, 2 ** 31 - 1);
      checkInteger('offsetIn', source.offsetIn, 0, Number.MAX_SAFE_INTEGER);
      checkInteger('length', source.length, 0, Number.MAX_SAFE_INTEGER);
      await binding().writeDirect({ ...common, fdIn: source.fdIn, offsetIn: source.offsetIn, length: source.length });
    }
    return flag[0] === 1;
  });
}

/**
 * Asks the kernel to start writing `[offset, offset + length)` of the open file `fd` back to disk
 * (`length` 0: to the end of the file), off the calling thread: Linux `sync_file_range` WRITE; a
 * no-op elsewhere. Not a flush and no durability promise (the caller's fdatasync is): it lets the
 * disk work while the caller goes on, so that the final flush has less to wait for.
 */
export function startWriteback(fd: number, offset = 0, length = 0): Promise<void> {
  return call(async () => {
    checkInteger('fd', fd, 0, 2 ** 31 - 1);
    checkInteger('offset', offset, 0, Number.MAX_SAFE_INTEGER);
    checkInteger('length', length, 0, Number.MAX_SAFE_INTEGER);
    await binding().startWriteback({ fd, offset, length });
  });
}
