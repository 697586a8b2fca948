/**
 * Error classes of salt-transfer. Every error the library raises carries a stable `.code`
 * (see {@link ErrorCode}) so callers can branch on it without parsing messages.
 */

/** Stable error codes. New codes may be added; existing ones keep their meaning. */
export type ErrorCode =
  | 'E_ARGUMENT' // a value is out of its allowed range or an option is unknown
  | 'E_TYPE' // a value has the wrong type (e.g. Float64Array where Float32Array is required)
  | 'E_SHAPE' // array lengths do not match the declared shapes
  | 'E_NONFINITE' // NaN or Infinity in an input matrix
  | 'E_FORMAT' // a file is malformed
  | 'E_IO' // a file could not be read or written
  | 'E_NOT_FOUND' // a file, tensor or package is missing
  | 'E_UNSUPPORTED' // a valid input that this version does not handle
  | 'E_UNSAFE' // a file asks for code to run (a PyTorch pickle naming a global outside the allow-list): refused, nothing executed
  | 'E_EXISTS' // refusing to overwrite
  | 'E_NO_CUDA' // backend 'cuda' requested but unavailable
  | 'E_CUDA' // a CUDA / cuBLAS / cuSOLVER call failed
  | 'E_CUDA_OOM' // device memory exhausted even after retrying with smaller tiles
  | 'E_NO_MEMORY' // host memory exhausted
  | 'E_ABORTED' // cancelled through an AbortSignal
  | 'E_LOAD' // the native addon could not be loaded
  | 'E_INTERNAL'; // a bug: please report it

/**
 * The error of what is found while working: files, data, native code. Which class a failure gets
 * (one rule for the whole library): {@link SaltTypeError} (`E_TYPE`) for an argument of the wrong
 * type; {@link SaltRangeError} (`E_ARGUMENT`, `E_SHAPE`) for an argument out of range or of
 * inconsistent shape, found before any work; SaltError (every other code) for the rest. All three
 * are `instanceof SaltError` and carry `.code`.
 */
export class SaltError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SaltError';
    this.code = code;
  }

  /**
   * Every error salt-transfer raises is `instanceof SaltError`: the argument errors
   * {@link SaltTypeError} and {@link SaltRangeError} too (they also stay a TypeError / RangeError).
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    return this === SaltError && (value instanceof SaltTypeError || value instanceof SaltRangeError);
  }
}

/** A value of the wrong type. `code` is `E_TYPE`. */
export class SaltTypeError extends TypeError {
  readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode = 'E_TYPE') {
    super(message);
    this.name = 'SaltTypeError';
    this.code = code;
  }
}

/** A value out of its allowed range, or inconsistent shapes. `code` is `E_ARGUMENT` or `E_SHAPE`. */
export class SaltRangeError extends RangeError {
  readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode = 'E_ARGUMENT') {
    super(message);
    this.name = 'SaltRangeError';
    this.code = code;
  }
}

/** Human-readable description of a received value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing (the value is missing)';
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor?.name ?? 'TypedArray';
    const len = (value as unknown as { length?: number }).length;
    return len === undefined ? name : `${name} of length ${len}`;
  }
  if (Array.isArray(value)) return `Array of length ${value.length}`;
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'function';
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      // A plain object (e.g. parsed JSON): show it, shortened.
      let text: string;
      try {
        text = JSON.stringify(value) ?? 'object';
      } catch {
        text = 'object';
      }
      return `object ${text.length > 60 ? text.slice(0, 57) + '...' : text}`;
    }
    return value.constructor?.name ? `${value.constructor.name} object` : 'object';
  }
  return String(value);
}
