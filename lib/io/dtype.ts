/**
 * Element types of tensor files and exact conversions between Float32 and the 16-bit float formats.
 * Node 20 has no Float16Array, so F16 is decoded through a 65,536-entry table built once.
 */
import { SaltRangeError } from '../errors.js';

/** Data types that may appear in a safetensors header (the full list of the format as of safetensors 0.8). */
export type Dtype =
  | 'BOOL'
  | 'F4'
  | 'F6_E2M3'
  | 'F6_E3M2'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'F8_E8M0'
  | 'F8_E4M3FNUZ'
  | 'F8_E5M2FNUZ'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'C64'
  | 'F64'
  | 'I64'
  | 'U64';

/** Float types this package reads into and writes from a Float32Array. */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

/** Size in bits of one element of each dtype (F4 and F6 are packed: several elements per byte). */
export const DTYPE_BITS: Readonly<Record<Dtype, number>> = Object.freeze({
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
});

/** Size in bytes of one element of each dtype (fractional for the packed F4 and F6 types). */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = Object.freeze(
  Object.fromEntries(Object.entries(DTYPE_BITS).map(([k, b]) => [k, b / 8])) as Record<Dtype, number>,
);

/**
 * Bytes taken by `numel` elements of `dtype`, or NaN when that is not a whole number of bytes
 * (packed sub-byte types) or not a safe integer.
 */
export function dtypeByteLength(dtype: Dtype, numel: number): number {
  const bits = numel * DTYPE_BITS[dtype];
  return Number.isSafeInteger(bits) && bits % 8 === 0 ? bits / 8 : NaN;
}

/** True when `s` is one of the dtypes listed in {@link DTYPE_SIZE}. */
export function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BITS, s);
}

/** True for the float dtypes that can be decoded to Float32 ('F32', 'F16', 'BF16'). */
export function isFloatDtype(s: unknown): s is FloatDtype {
  return s === 'F32' || s === 'F16' || s === 'BF16';
}

let f16Table: Float32Array | undefined;

/** Float32 value of every F16 bit pattern (exact: every F16 value is representable in F32). */
function buildF16Table(): Float32Array {
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0x1f) {
      // Inf / NaN: keep the payload (shifted into the top of the F32 mantissa).
      bits[h] = sign | 0x7f800000 | (mant << 13);
    } else if (exp !== 0) {
      bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant === 0) {
      bits[h] = sign;
    } else {
      // Subnormal F16: normalise into an F32 normal number.
      let e = 113;
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      bits[h] = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
  }
  return new Float32Array(bits.buffer);
}

/** The F16 -> F32 lookup table (65,536 entries, built on first use). */
export function f16ToF32Table(): Float32Array {
  return (f16Table ??= buildF16Table());
}

/** Decodes `src` (F16 bit patterns) into `dst` exactly. `dst.length` must be >= `src.length`. */
export function decodeF16(src: Uint16Array, dst: Float32Array, dstOffset = 0): void {
  const t = f16ToF32Table();
  for (let i = 0; i < src.length; i++) dst[dstOffset + i] = t[src[i]];
}

/** Decodes `src` (BF16 bit patterns) into `dst` exactly (BF16 is the top half of an F32). */
export function decodeBF16(src: Uint16Array, dst: Float32Array, dstOffset = 0): void {
  const out = new Uint32Array(dst.buffer, dst.byteOffset + dstOffset * 4, src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
}

const cvt = new Float32Array(1);
const cvtBits = new Uint32Array(cvt.buffer);

/** F32 bits -> BF16 bits, round to nearest, ties to even; NaN stays NaN (quiet). */
export function f32BitsToBF16(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** F32 bits -> F16 bits, round to nearest, ties to even; overflow gives Inf; NaN stays NaN (quiet). */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Result is subnormal (or zero) in F16.
    if (e < -10) return sign;
    const m = mant | 0x800000; // implicit leading 1
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rest > half || (rest === half && (r & 1) === 1)) r++;
    return sign | r; // r may carry into the exponent field: that is the correct smallest normal
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1) === 1)) r++; // may carry up to Inf: correct
  return sign | r;
}

/** Rounds one number to F16 and returns the bits. */
export function toF16Bits(v: number): number {
  cvt[0] = v;
  return f32BitsToF16(cvtBits[0]);
}

/** Rounds one number to BF16 and returns the bits. */
export function toBF16Bits(v: number): number {
  cvt[0] = v;
  return f32BitsToBF16(cvtBits[0]);
}

/**
 * Encodes Float32 values into little-endian bytes of `dtype` ('F32', 'F16' or 'BF16'), rounding to
 * nearest-even for the 16-bit types. Returns a Buffer of `src.length * itemsize` bytes.
 */
export function encodeFloats(src: Float32Array, dtype: FloatDtype): Buffer {
  if (dtype === 'F32') {
    const out = Buffer.allocUnsafe(src.byteLength);
    out.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    return out;
  }
  if (dtype !== 'F16' && dtype !== 'BF16')
    throw new SaltRangeError(`dtype must be "F32", "F16" or "BF16", received ${JSON.stringify(dtype)}`, 'E_ARGUMENT');
  const out = Buffer.allocUnsafe(src.length * 2);
  encodeHalfInto(src, dtype, new Uint16Array(out.buffer, out.byteOffset, src.length), 0);
  return out;
}

/** Rounds `src` to F16 / BF16 bits into `out` from `at` on (the JavaScript encoder). */
function encodeHalfInto(src: Float32Array, dtype: 'F16' | 'BF16', out: Uint16Array, at: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  if (dtype === 'BF16') for (let i = 0; i < src.length; i++) out[at + i] = f32BitsToBF16(bits[i]);
  else for (let i = 0; i < src.length; i++) out[at + i] = f32BitsToF16(bits[i]);
}

// ---- Off-thread conversion for large arrays (the native codec on the libuv pool)

/** Below this many values the conversion runs inline: it takes well under a millisecond. */
const INLINE_VALUES = 1 << 16;
/** Values converted between two turns of the event loop when the native addon cannot be loaded. */
const FALLBACK_SLICE = 1 << 18;

type MatrixOps = typeof import('../kernels/matrixOps.js');
let codec: Promise<MatrixOps | null> | undefined;

/**
 * @internal The native whole-matrix passes (the codec, byte-range file copies), or null when the
 * addon cannot be loaded: reading and writing files must still work without it (then the
 * JavaScript codec runs in slices, giving the event loop a turn between, and file ranges are streamed).
 */
export function nativeMatrixOps(): Promise<MatrixOps | null> {
  return (codec ??= import('../kernels/matrixOps.js').then(
    async (m) => {
      try {
        (await import('../kernels/native.js')).binding();
        return m;
      } catch {
        return null;
      }
    },
    () => null,
  ));
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/**
 * {@link encodeFloats} without blocking the event loop: the same bytes (round to nearest, ties to
 * even), with the 16-bit rounding of large arrays run natively off the calling thread (or, without
 * the addon, in slices of 262,144 values between turns of the event loop). `src` must not be
 * modified until the Promise settles. Returns a Buffer of `src.length * itemsize` bytes.
 */
export async function encodeFloatsAsync(src: Float32Array, dtype: FloatDtype): Promise<Buffer> {
  if (dtype === 'F32' || src.length <= INLINE_VALUES) return encodeFloats(src, dtype);
  if (dtype !== 'F16' && dtype !== 'BF16')
    throw new SaltRangeError(`dtype must be "F32", "F16" or "BF16", received ${JSON.stringify(dtype)}`, 'E_ARGUMENT');
  // Its own memory (not the shared pool) so that the Uint16Array view is aligned.
  const out = Buffer.allocUnsafeSlow(src.length * 2);
  const o16 = new Uint16Array(out.buffer, out.byteOffset, src.length);
  const native = await nativeMatrixOps();
  if (native) {
    await native.encodeHalf(src, dtype, o16);
    return out;
  }
  for (let i = 0; i < src.length; i += FALLBACK_SLICE) {
    encodeHalfInto(src.subarray(i, i + FALLBACK_SLICE), dtype, o16, i);
    await turn();
  }
  return out;
}

/**
 * Decodes `src` (F16 or BF16 bit patterns) exactly into `dst` from `dstOffset` on, without blocking
 * the event loop: large arrays natively off the calling thread (or, without the addon, in slices
 * between turns of the event loop). Neither array may be modified until the Promise settles.
 */
export async function decodeHalfAsync(
  src: Uint16Array,
  dtype: 'F16' | 'BF16',
  dst: Float32Array,
  dstOffset = 0,
): Promise<void> {
  const decode = dtype === 'F16' ? decodeF16 : dtype === 'BF16' ? decodeBF16 : undefined;
  if (!decode)
    throw new SaltRangeError(`dtype must be "F16" or "BF16", received ${JSON.stringify(dtype)}`, 'E_ARGUMENT');
  if (dstOffset + src.length > dst.length)
    throw new SaltRangeError(
      `dst must hold dstOffset + src.length = ${dstOffset + src.length} values, received ${dst.length}`,
      'E_SHAPE',
    );
  if (src.length <= INLINE_VALUES) return decode(src, dst, dstOffset);
  const native = await nativeMatrixOps();
  if (native) {
    await native.decodeHalf(src, dtype, dst.subarray(dstOffset, dstOffset + src.length));
    return;
  }
  for (let i = 0; i < src.length; i += FALLBACK_SLICE) {
    decode(src.subarray(i, i + FALLBACK_SLICE), dst, dstOffset + i);
    await turn();
  }
}

/**
 * The allocator of Float32 results of the readers: the addon's `allocFloat32` (large arrays freed
 * off the calling thread when they become garbage), or `new Float32Array` without the addon.
 *
 * With `shared`, `allocSharedFloat32` (kernels/matrixOps.ts) instead, for the pipelines' large
 * internal matrices (the source's embedding and head): see `ReadFloat32Options.shared`.
 */
export async function float32Allocator(shared = false): Promise<(length: number) => Float32Array> {
  if (shared) return (await import('../kernels/matrixOps.js')).allocSharedFloat32;
  const native = await nativeMatrixOps();
  return native ? native.allocFloat32 : (n) => new Float32Array(n);
}
