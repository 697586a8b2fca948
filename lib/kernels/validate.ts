/**
 * Argument validation for the public API. Every check throws a SaltTypeError (E_TYPE) or a
 * SaltRangeError (E_SHAPE / E_ARGUMENT) whose message names the argument, what was expected and
 * what was received.
 */
import { describe, SaltRangeError, SaltTypeError } from '../errors.js';

/** A dense row-major float32 matrix. */
export interface Matrix {
  /** rows x cols values, row after row. */
  data: Float32Array;
  rows: number;
  cols: number;
}

/** Neighbour lists in CSR form: token i's neighbours are `indices[offsets[i] .. offsets[i + 1])`. */
export interface Neighbourhoods {
  /** n + 1 non-decreasing offsets starting at 0. */
  offsets: Int32Array;
  /** offsets[n] row indices into the anchor matrices. */
  indices: Int32Array;
}

/** Builds a {@link Matrix}, checking that `data.length === rows * cols`. */
export function matrix(data: Float32Array, rows: number, cols: number): Matrix {
  const m = { data, rows, cols };
  checkMatrix('matrix', m);
  return m;
}

export function checkInteger(
  name: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  maxName?: string,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new SaltTypeError(`${name} must be an integer, received ${describe(value)}`);
  }
  if (value < min || value > max) {
    const range =
      max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]${maxName ? ` (${maxName})` : ''}`;
    throw new SaltRangeError(`${name} must be an integer ${range}, received ${value}`);
  }
  return value;
}

export function checkNumber(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number') throw new SaltTypeError(`${name} must be a number, received ${describe(value)}`);
  if (!Number.isFinite(value) || value < min) {
    throw new SaltRangeError(`${name} must be a finite number >= ${min}, received ${describe(value)}`);
  }
  return value;
}

export function checkFloat32(name: string, value: unknown): Float32Array {
  if (!(value instanceof Float32Array))
    throw new SaltTypeError(`${name} must be a Float32Array, received ${describe(value)}`);
  return value;
}

export function checkInt32(name: string, value: unknown): Int32Array {
  if (!(value instanceof Int32Array))
    throw new SaltTypeError(`${name} must be an Int32Array, received ${describe(value)}`);
  return value;
}

export function checkMatrix(name: string, value: unknown, cols?: { value: number; name: string }): Matrix {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) {
    throw new SaltTypeError(`${name} must be a matrix { data: Float32Array, rows, cols }, received ${describe(value)}`);
  }
  const m = value as Partial<Matrix>;
  checkFloat32(`${name}.data`, m.data);
  checkInteger(`${name}.rows`, m.rows, 0);
  checkInteger(`${name}.cols`, m.cols, 1);
  const rows = m.rows!,
    c = m.cols!;
  if (m.data!.length !== rows * c) {
    throw new SaltRangeError(
      `${name}.data must have ${name}.rows x ${name}.cols = ${rows} x ${c} = ${rows * c} elements, received ${m.data!.length}`,
      'E_SHAPE',
    );
  }
  if (cols && c !== cols.value) {
    throw new SaltRangeError(`${name}.cols must equal ${cols.name} = ${cols.value}, received ${c}`, 'E_SHAPE');
  }
  return m as Matrix;
}

/** Checks CSR lists for n tokens (shape only; index ranges are checked natively off the JS thread). */
export function checkNeighbourhoods(name: string, value: unknown, n: number): Neighbourhoods {
  if (typeof value !== 'object' || value === null) {
    throw new SaltTypeError(
      `${name} must be { offsets: Int32Array, indices: Int32Array }, received ${describe(value)}`,
    );
  }
  const v = value as Partial<Neighbourhoods>;
  const offsets = checkInt32(`${name}.offsets`, v.offsets);
  const indices = checkInt32(`${name}.indices`, v.indices);
  if (offsets.length !== n + 1) {
    throw new SaltRangeError(
      `${name}.offsets must have n + 1 = ${n + 1} elements (one per query row plus one), received ${offsets.length}`,
      'E_SHAPE',
    );
  }
  if (offsets[0] !== 0) throw new SaltRangeError(`${name}.offsets[0] must be 0, received ${offsets[0]}`);
  if (offsets[n] !== indices.length) {
    throw new SaltRangeError(
      `${name}.indices must have ${name}.offsets[${n}] = ${offsets[n]} elements, received ${indices.length}`,
      'E_SHAPE',
    );
  }
  return v as Neighbourhoods;
}

export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new SaltRangeError(
      `${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, received ${describe(value)}`,
    );
  }
  return value as T;
}
