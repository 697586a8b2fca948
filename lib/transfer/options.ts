/** Option resolution of the transfer engine: one place that checks and defaults every option. */
import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { type Backend } from '../kernels/kernels.js';
import { checkInteger, checkNeighbourhoods, checkNumber, checkOneOf } from '../kernels/validate.js';
import {
  DEFAULT_LAMBDA_GRID,
  KERNEL_LAMBDA_GRID,
  KERNEL_LINEAR_GRID,
  KERNEL_WIDTH_GRID,
  MAX_K,
  type Selection,
  TRANSFER_METHODS,
  type TransferMethod,
  type TransferOptions,
  type TransferSegmentation,
} from './types.js';

/** Methods of the SALT family (sparsemax neighbours, per-token solves). */
export const SALT_FAMILY = new Set<TransferMethod>(['salt-local', 'salt-residual', 'salt-paper', 'salt-ridge']);
/** Methods that search neighbours among the anchors (K and selection apply). */
export const NEIGHBOUR_METHODS = new Set<TransferMethod>([
  'salt-local',
  'salt-residual',
  'salt-paper',
  'salt-ridge',
  'focus',
  'clp',
  'wechsel',
]);
/** Methods with a ridge lambda. */
export const LAMBDA_METHODS = new Set<TransferMethod>([
  'salt',
  'salt-local',
  'salt-residual',
  'salt-paper',
  'salt-ridge',
  'global-linear',
]);
/** Methods that fit a kernel (kernelWidth, kernelLinear, landmarks, looCriterion apply). */
export const KERNEL_METHODS = new Set<TransferMethod>(['salt']);
/** Default candidate count K. */
export const DEFAULT_K = 64;

/** Rejects with E_ABORTED when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted)
    throw new SaltError('E_ABORTED', 'the transfer was aborted through its AbortSignal', { cause: signal.reason });
}

/** Validated, defaulted options. */
export interface Resolved {
  method: TransferMethod;
  K: number;
  selection: Selection;
  lambda: 'auto' | number;
  lambdaGrid: number[];
  looSample: number;
  kernelWidth: number[];
  kernelLinear: number[];
  landmarks: 'auto' | 'all' | number;
  looCriterion: 'cosine' | 'p1';
  temperature: number;
  seed: number;
  chunkSize: number;
  kernel: { backend?: Backend; threads?: number };
}

/**
 * Checks a segmentation (CSR lists of source rows per target token): shapes, non-decreasing
 * offsets, and every index a source row in [0, Vs).
 */
export function checkSegmentation(segmentation: unknown, Vt: number, Vs: number): TransferSegmentation {
  const seg = checkNeighbourhoods('segmentation', segmentation, Vt);
  for (let t = 0; t < Vt; t++) {
    if (seg.offsets[t + 1] < seg.offsets[t])
      throw new SaltRangeError(
        `segmentation.offsets must be non-decreasing; offsets[${t + 1}] = ${seg.offsets[t + 1]} < offsets[${t}] = ${seg.offsets[t]}`,
      );
  }
  for (let e = 0; e < seg.indices.length; e++) {
    const s = seg.indices[e];
    if (s < 0 || s >= Vs)
      throw new SaltRangeError(`segmentation.indices[${e}] must be a source row in [0, ${Vs}), received ${s}`);
  }
  return seg;
}

/**
 * Checks transfer options (method, K, selection, lambda, seed, ...) and their combination without
 * running anything, so callers that load models first can reject bad options before that work.
 * Throws exactly what {@link transferEmbeddings} would throw for them.
 */
export function checkTransferOptions(options: TransferOptions): void {
  resolveOptions(options);
}

/** Validates and defaults the options: the engine's frozen plan of a run. */
export function resolveOptions(o: TransferOptions): Resolved {
  const method = o.method === undefined ? 'salt' : checkOneOf('method', o.method, TRANSFER_METHODS);
  const notFor = (name: string, allowed: Set<TransferMethod>) => {
    if ((o as Record<string, unknown>)[name] !== undefined && !allowed.has(method)) {
      throw new SaltRangeError(
        `${name} does not apply to method ${JSON.stringify(method)} (it applies to ${[...allowed].map((m) => JSON.stringify(m)).join(', ')}), received ${describe((o as Record<string, unknown>)[name])}`,
      );
    }
  };
  notFor('K', NEIGHBOUR_METHODS);
  notFor('selection', NEIGHBOUR_METHODS);
  notFor('lambda', LAMBDA_METHODS);
  notFor('temperature', new Set(['wechsel']));
  notFor('segmentation', new Set(['fvt']));
  for (const name of ['kernelWidth', 'kernelLinear', 'landmarks', 'looCriterion']) notFor(name, KERNEL_METHODS);
  const K = o.K === undefined ? DEFAULT_K : checkInteger('K', o.K, 1, MAX_K);
  let selection: Selection;
  if (o.selection === undefined)
    selection = method === 'clp' ? { topk: K } : method === 'wechsel' ? { topk: Math.min(10, K) } : 'sparsemax';
  else if (o.selection === 'sparsemax') selection = 'sparsemax';
  else if (
    typeof o.selection === 'object' &&
    o.selection !== null &&
    !Array.isArray(o.selection) &&
    Object.keys(o.selection).join() === 'topk'
  ) {
    selection = { topk: checkInteger('selection.topk', o.selection.topk, 1, K, 'K') };
  } else
    throw new SaltTypeError(`selection must be "sparsemax" or { topk: number }, received ${describe(o.selection)}`);
  if (method === 'salt-paper' && selection !== 'sparsemax')
    throw new SaltRangeError(
      `method "salt-paper" is the paper's sparsemax selection; selection must be "sparsemax", received ${describe(o.selection)}`,
    );
  let lambda: 'auto' | number;
  if (o.lambda === undefined) lambda = method === 'salt-paper' ? 0 : 'auto';
  else if (o.lambda === 'auto') lambda = 'auto';
  else lambda = checkNumber('lambda', o.lambda, 0);
  if (method === 'salt-paper' && lambda !== 0)
    throw new SaltRangeError(
      `method "salt-paper" is the paper's least squares; lambda must be 0, received ${describe(o.lambda)}`,
    );
  let lambdaGrid = [...(method === 'salt' ? KERNEL_LAMBDA_GRID : DEFAULT_LAMBDA_GRID)];
  if (o.lambdaGrid !== undefined) {
    if (!Array.isArray(o.lambdaGrid) || o.lambdaGrid.length === 0)
      throw new SaltTypeError(
        `lambdaGrid must be a non-empty array of numbers >= 0, received ${describe(o.lambdaGrid)}`,
      );
    lambdaGrid = o.lambdaGrid.map((v, i) => checkNumber(`lambdaGrid[${i}]`, v, 0));
  }
  const looSample =
    o.looSample === undefined ? (method === 'salt' ? 1024 : 500) : checkInteger('looSample', o.looSample, 1);
  const grid = (name: string, v: unknown, fallback: readonly number[], positive: boolean): number[] => {
    if (v === undefined) return [...fallback];
    const values = typeof v === 'number' ? [v] : v;
    if (!Array.isArray(values) || values.length === 0)
      throw new SaltTypeError(`${name} must be a number or a non-empty array of numbers, received ${describe(v)}`);
    return values.map((x, i) => {
      const label = typeof v === 'number' ? name : `${name}[${i}]`;
      const n = checkNumber(label, x, 0);
      if (positive && n === 0) throw new SaltRangeError(`${label} must be a finite number > 0, received 0`);
      return n;
    });
  };
  const kernelWidth = grid('kernelWidth', o.kernelWidth, KERNEL_WIDTH_GRID, true);
  const kernelLinear = grid('kernelLinear', o.kernelLinear, KERNEL_LINEAR_GRID, false);
  let landmarks: 'auto' | 'all' | number = 'auto';
  if (o.landmarks === 'all' || o.landmarks === 'auto') landmarks = o.landmarks;
  else if (o.landmarks !== undefined) {
    if (typeof o.landmarks !== 'number')
      throw new SaltTypeError(`landmarks must be 'auto', 'all' or an integer >= 1, received ${describe(o.landmarks)}`);
    landmarks = checkInteger('landmarks', o.landmarks, 1, 46340);
  }
  const looCriterion =
    o.looCriterion === undefined ? 'cosine' : checkOneOf('looCriterion', o.looCriterion, ['cosine', 'p1'] as const);
  let temperature = 0.1;
  if (o.temperature !== undefined) {
    temperature = checkNumber('temperature', o.temperature, 0);
    if (temperature === 0) throw new SaltRangeError('temperature must be a finite number > 0, received 0');
  }
  const seed = o.seed === undefined ? 0 : checkInteger('seed', o.seed, 0, 0xffffffff);
  const chunkSize = o.chunkSize === undefined ? 32768 : checkInteger('chunkSize', o.chunkSize, 1);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new SaltTypeError(`signal must be an AbortSignal, received ${describe(o.signal)}`);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function')
    throw new SaltTypeError(`onProgress must be a function, received ${describe(o.onProgress)}`);
  return {
    method,
    K,
    selection,
    lambda,
    lambdaGrid,
    looSample,
    kernelWidth,
    kernelLinear,
    landmarks,
    looCriterion,
    temperature,
    seed,
    chunkSize,
    kernel: { backend: o.backend, threads: o.threads },
  };
}
