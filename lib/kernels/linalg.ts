/**
 * Dense linear algebra of the kernel ridge method (native/core/src/kernel_ridge.cpp, OpenBLAS and
 * LAPACK on the CPU): kernel matrices between rows, matrix products, Cholesky solves and exact
 * leave-one-out predictions. Row-major throughout. Inputs are read in place and must not change until
 * the Promise settles. Internal to the package: callers pass consistent shapes (the binding still checks
 * every length, so a mistake is an E_SHAPE error, never a wild read).
 */
import { call } from './kernels.js';
import { allocFloat32, allocFloat64 } from './matrixOps.js';
import { binding } from './native.js';
import type { Matrix } from './validate.js';

/** The kernel of `salt`: k(x, z) = linear (x . z + 1) + exp((cos(x, z) - 1) / width). */
export interface KernelParams {
  linear: number;
  width: number;
}

/** K(X, Z) (X.rows x Z.rows), or K(X, Z) proj (X.rows x proj.cols) computed in tiles of rows. */
export function kernelMatrix(
  X: Matrix,
  Z: Matrix,
  kernel: KernelParams,
  options: { proj?: Matrix; threads?: number } = {},
): Promise<Float32Array> {
  return call(async () => {
    const r = await binding().kernelMatrix({
      x: X.data,
      n: X.rows,
      z: Z.data,
      L: Z.rows,
      d: X.cols,
      linear: kernel.linear,
      width: kernel.width,
      proj: options.proj?.data,
      r: options.proj?.cols,
      threads: options.threads ?? 0,
    });
    return r.out;
  });
}

/** One operand of {@link gemm}: a row-major matrix, used as stored or transposed. */
export interface Operand<T extends Float32Array | Float64Array> {
  data: T;
  rows: number;
  cols: number;
  /** Use the transpose of the stored matrix. */
  t?: boolean;
}

/** op(A) op(B), or C + op(A) op(B) when `accumulate` is given (written in place and returned). */
export function gemm<T extends Float32Array | Float64Array>(
  A: Operand<T>,
  B: Operand<T>,
  options: { accumulate?: T; threads?: number } = {},
): Promise<T> {
  return call(async () => {
    const rows = A.t ? A.cols : A.rows,
      inner = A.t ? A.rows : A.cols,
      cols = B.t ? B.rows : B.cols;
    const c =
      options.accumulate ??
      ((A.data instanceof Float64Array ? allocFloat64(rows * cols) : allocFloat32(rows * cols)) as T);
    const r = await binding().gemm({
      a: A.data,
      b: B.data,
      c,
      rows,
      inner,
      cols,
      transA: A.t ? 1 : 0,
      transB: B.t ? 1 : 0,
      beta: options.accumulate ? 1 : 0,
      threads: options.threads ?? 0,
    });
    return r.c;
  });
}

/**
 * Exact leave-one-out predictions of kernel ridge regression at one ridge value: with A = K + shift I
 * (K symmetric n x n) and targets Y (n x w), row i is y_i - (A^-1 Y)_i / (A^-1)_ii, for the first
 * `outCols` columns (float32, n x outCols). Float64 Cholesky; `k` and `y` are read, not changed. Null
 * when A is not numerically positive definite.
 */
export function kernelLoo(
  k: Float64Array,
  n: number,
  shift: number,
  y: Float64Array,
  w: number,
  outCols: number,
  threads = 0,
): Promise<Float32Array | null> {
  return call(async () => {
    const r = await binding().kernelLoo({ k, n, shift, y, w, outCols, threads });
    return r.info[0] === 0 ? r.out : null;
  });
}

/**
 * Solves (A + shift I) X = B (A symmetric n x n, B n x h, float64); `a` and `b` are consumed. Returns
 * X, or null when A + shift I is not numerically positive definite (Cholesky failed).
 */
export function choleskySolve(
  a: Float64Array,
  n: number,
  shift: number,
  b: Float64Array,
  h: number,
  threads = 0,
): Promise<Float64Array | null> {
  return call(async () => {
    const r = await binding().choleskySolve({ a, n, shift, b, h, threads });
    return r.info[0] === 0 ? r.b : null;
  });
}

/**
 * The whitening matrix T = L^-T (upper triangular, n x n) of A + shift I = L L^T, so that
 * T^T (A + shift I) T = I; `a` is consumed. Null when A + shift I is not numerically positive definite.
 */
export function choleskyWhiten(a: Float64Array, n: number, shift: number, threads = 0): Promise<Float64Array | null> {
  return call(async () => {
    const r = await binding().choleskyWhiten({ a, n, shift, threads });
    return r.info[0] === 0 ? r.t : null;
  });
}
