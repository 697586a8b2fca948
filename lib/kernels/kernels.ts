/**
 * The three numerical kernels of SALT, on the CPU (FAISS + OpenBLAS + OpenMP) or the CUDA plugin.
 * Every kernel runs off the JavaScript thread and returns a Promise; inputs are read in place (no
 * copies) and must not be modified or transferred until the Promise settles.
 */
import { type ErrorCode, SaltError, SaltRangeError } from '../errors.js';
import { binding } from './native.js';
import {
  checkFloat32,
  checkInteger,
  checkMatrix,
  checkNeighbourhoods,
  checkNumber,
  checkOneOf,
  type Matrix,
  type Neighbourhoods,
} from './validate.js';

/**
 * Where a kernel runs. `'auto'` picks CUDA when the plugin loaded, a device is usable and the job
 * fits the plugin's limits (e.g. top-k with k <= 256), else CPU.
 */
export type Backend = 'auto' | 'cpu' | 'cuda';

const BACKENDS = ['auto', 'cpu', 'cuda'] as const;

/** Options common to every kernel. */
export interface KernelOptions {
  /** Backend; default `'auto'`. `'cuda'` without a usable CUDA backend rejects with `E_NO_CUDA`. */
  backend?: Backend;
  /** CPU worker threads; default 0 = all cores. */
  threads?: number;
}

/** Options of {@link topkCosine}. */
export interface TopkOptions extends KernelOptions {
  /** Queries per tile (bounds memory to O(tileRows x base.rows)); default 0 = automatic. */
  tileRows?: number;
  /** `'fp32'` (default) or `'tf32'` (CUDA tensor cores; the CPU always computes in FP32). */
  precision?: 'fp32' | 'tf32';
}

/** Result of {@link topkCosine}: n x k row-major. */
export interface TopkResult {
  /** Base row indices, each row ordered by descending score, ties by ascending index. */
  indices: Int32Array;
  /** Cosine similarities (a zero vector has similarity 0 with everything). */
  scores: Float32Array;
  /** Number of query rows. */
  n: number;
  /** Results per row. */
  k: number;
}

/** Result of {@link sparsemax}. */
export interface SparsemaxResult {
  /** n x K weights, same positions as the input scores; non-negative, each row sums to 1. */
  weights: Float32Array;
  /** Number of non-zero weights per row (1..K); a row with `support === K` may have been cut by K. */
  support: Int32Array;
}

/** Arguments of {@link solveNeighbourhoods}. */
export interface SolveArgs extends KernelOptions {
  /** Each token's neighbour rows (indices into the anchor matrices), CSR form, one list per query row. */
  neighbours: Neighbourhoods;
  /** n x ht: each token's own row in PLM space (x_i). */
  queries: Matrix;
  /** m x ht: the anchors' rows in PLM space (A). */
  anchorsPlm: Matrix;
  /** m x hs: the anchors' rows in the source LLM's space (S). */
  anchorsSrc: Matrix;
  /** Ridge strength lambda >= 0; default 0 = minimum-norm least squares (pinv semantics). */
  lambda?: number;
  /**
   * Relative singular-value cutoff for lambda = 0: singular values of A[N_i] at or below
   * rcond x the largest are dropped. Default: max(k, ht) x 2^-23 (float32 machine epsilon).
   */
  rcond?: number;
  /**
   * Optional prior weights w (one per neighbour entry): the ridge term becomes lambda ||c - w||^2,
   * shrinking towards w instead of zero (lambda -> infinity gives out = w S[N_i]).
   */
  prior?: Float32Array;
  /** Also return the coefficients c (one per neighbour entry). Default false. */
  returnCoefficients?: boolean;
}

/** Result of {@link solveNeighbourhoods}. */
export interface SolveResult {
  /** n x hs: out_i = c_i S[N_i]. */
  out: Float32Array;
  /** n: ||c_i A[N_i] - x_i|| / ||x_i|| (0 when x_i = 0). */
  residual: Float32Array;
  /** n: ||c_i||. */
  coefNorm: Float32Array;
  /** The coefficients, when `returnCoefficients` was set. */
  coefficients?: Float32Array;
}

/** Arguments of {@link applyWeights}. */
export interface ApplyWeightsArgs extends KernelOptions {
  /** Each token's rows of `anchorsSrc`, CSR form. */
  neighbours: Neighbourhoods;
  /** One weight per neighbour entry. */
  weights: Float32Array;
  /** m x hs matrix whose rows are combined. */
  anchorsSrc: Matrix;
  /** Number of tokens (n). */
  n: number;
}

/** Size of a job, for routing 'auto' to a backend whose limits it fits. */
interface JobSize {
  topkK?: number;
  maxNeighbours?: number;
}

function checkCommon(
  options: KernelOptions | undefined,
  job: JobSize = {},
): { backend: 'cpu' | 'cuda'; threads: number } {
  const o = options ?? {};
  const requested = o.backend === undefined ? 'auto' : checkOneOf('options.backend', o.backend, BACKENDS);
  const threads = o.threads === undefined ? 0 : checkInteger('options.threads', o.threads, 0, 4096);
  return { backend: resolveBackend(requested, job), threads };
}

let cudaLimits: { topkMaxK: number; solveMaxNeighbours: number } | undefined;

/** The CUDA plugin's kernel limits, from its self-description. */
function limitsOf(description: string): { topkMaxK: number; solveMaxNeighbours: number } {
  if (!cudaLimits) {
    let parsed: { limits?: { topkMaxK?: number; solveMaxNeighbours?: number } } = {};
    try {
      parsed = JSON.parse(description);
    } catch {
      // A plugin without a readable description gets no jobs from 'auto' beyond the defaults below.
    }
    cudaLimits = { topkMaxK: parsed.limits?.topkMaxK ?? 0, solveMaxNeighbours: parsed.limits?.solveMaxNeighbours ?? 0 };
  }
  return cudaLimits;
}

/**
 * Resolves 'auto' (CUDA when the plugin is usable and the job fits its limits, else CPU) and rejects
 * 'cuda' when unavailable.
 */
export function resolveBackend(requested: Backend, job: JobSize = {}): 'cpu' | 'cuda' {
  if (requested === 'cpu') return 'cpu';
  const cuda = binding().info().cuda;
  if (requested === 'cuda') {
    if (!cuda.available) throw new SaltError('E_NO_CUDA', `backend "cuda" is not available: ${cuda.reason}`);
    return 'cuda';
  }
  if (!cuda.available) return 'cpu';
  const limits = limitsOf(cuda.description);
  if (job.topkK !== undefined && job.topkK > limits.topkMaxK) return 'cpu';
  if (job.maxNeighbours !== undefined && job.maxNeighbours > limits.solveMaxNeighbours) return 'cpu';
  return 'cuda';
}

function maxListLength(offsets: Int32Array): number {
  let best = 0;
  for (let i = 1; i < offsets.length; ++i) best = Math.max(best, offsets[i]! - offsets[i - 1]!);
  return best;
}

/**
 * Runs a native call, turning its rejections into SaltError with a stable code and the caller's
 * stack (the native stack says nothing useful).
 */
export async function call<T>(fn: () => Promise<T>): Promise<T> {
  const trace = new Error();
  try {
    return await fn();
  } catch (err) {
    throw toSaltError(err, trace);
  }
}

function toSaltError(err: unknown, trace: Error): Error {
  if (err instanceof SaltError || !(err instanceof Error)) return err as Error;
  // V8 reports a failed output allocation as a RangeError without a code.
  const fallback =
    err instanceof RangeError && /allocation failed|Invalid typed array length/i.test(err.message)
      ? 'E_NO_MEMORY'
      : 'E_INTERNAL';
  const code = ((err as { code?: string }).code ?? fallback) as ErrorCode;
  const e = new SaltError(code, err.message, { cause: err });
  e.stack = `${e.name}: ${e.message}\n${(trace.stack ?? '').split('\n').slice(1).join('\n')}`;
  return e;
}

/**
 * Exact top-k cosine similarity: for each query row, the k base rows with the highest cosine,
 * in descending order (ties by ascending index). Tiled: memory O(tileRows x base.rows + n x k).
 *
 * @param queries n x d
 * @param base m x d (m >= 1)
 * @param k 1 <= k <= m
 */
export function topkCosine(queries: Matrix, base: Matrix, k: number, options?: TopkOptions): Promise<TopkResult> {
  try {
    checkMatrix('queries', queries);
    checkMatrix('base', base, { value: queries.cols, name: 'queries.cols' });
    if (base.rows < 1) throw new SaltRangeError('base must have at least one row, received 0', 'E_SHAPE');
    checkInteger('k', k, 1, base.rows, 'base.rows');
    const { backend, threads } = checkCommon(options, { topkK: k });
    const tileRows = options?.tileRows === undefined ? 0 : checkInteger('options.tileRows', options.tileRows, 0);
    const precision =
      options?.precision === undefined
        ? 'fp32'
        : checkOneOf('options.precision', options.precision, ['fp32', 'tf32'] as const);
    const n = queries.rows;
    return call(() =>
      binding().topkCosine({
        queries: queries.data,
        n,
        base: base.data,
        m: base.rows,
        d: base.cols,
        k,
        tileRows,
        threads,
        precision,
        backend,
      }),
    ).then((r) => ({ ...r, n, k }));
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Row-wise sparsemax over candidate scores (n x K). The support of each row is the set of
 * neighbours SALT uses; it is always a prefix of the row sorted by descending score.
 */
export function sparsemax(scores: Matrix, options?: KernelOptions): Promise<SparsemaxResult> {
  try {
    checkMatrix('scores', scores);
    const { backend, threads } = checkCommon(options);
    return call(() => binding().sparsemax({ scores: scores.data, n: scores.rows, K: scores.cols, threads, backend }));
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Synchronous {@link sparsemax} on the CPU (cheap: O(n K log K)); blocks the calling thread. */
export function sparsemaxSync(scores: Matrix, options?: Omit<KernelOptions, 'backend'>): SparsemaxResult {
  checkMatrix('scores', scores);
  const threads = options?.threads === undefined ? 0 : checkInteger('options.threads', options.threads, 0, 4096);
  try {
    return binding().sparsemaxSync({ scores: scores.data, n: scores.rows, K: scores.cols, threads });
  } catch (err) {
    throw toSaltError(err, new Error());
  }
}

/**
 * SALT's per-token regressions. For token i with neighbours N_i:
 *   c_i = argmin ||c A[N_i] - x_i||^2 + lambda ||c - w_i||^2   (w_i = prior, or 0),
 *   out_i = c_i S[N_i].
 * lambda = 0 is the paper's least squares with pseudo-inverse semantics (minimum-norm solution,
 * singular values <= rcond x the largest dropped; k > ht and rank-deficient neighbourhoods are fine);
 * lambda > 0 is ridge regression (Cholesky). Solved in the k x k Gram form in double precision.
 */
export function solveNeighbourhoods(args: SolveArgs): Promise<SolveResult> {
  try {
    if (typeof args !== 'object' || args === null)
      throw new SaltRangeError('solveNeighbourhoods expects an argument object', 'E_ARGUMENT');
    const queries = checkMatrix('queries', args.queries);
    const anchorsPlm = checkMatrix('anchorsPlm', args.anchorsPlm, { value: queries.cols, name: 'queries.cols' });
    const anchorsSrc = checkMatrix('anchorsSrc', args.anchorsSrc);
    if (anchorsSrc.rows !== anchorsPlm.rows) {
      throw new SaltRangeError(
        `anchorsSrc.rows must equal anchorsPlm.rows = ${anchorsPlm.rows}, received ${anchorsSrc.rows}`,
        'E_SHAPE',
      );
    }
    if (anchorsPlm.rows < 1) throw new SaltRangeError('anchorsPlm must have at least one row, received 0', 'E_SHAPE');
    const nb = checkNeighbourhoods('neighbours', args.neighbours, queries.rows);
    const lambda = args.lambda === undefined ? 0 : checkNumber('lambda', args.lambda, 0);
    let rcond = -1;
    if (args.rcond !== undefined) {
      rcond = checkNumber('rcond', args.rcond, 0);
      if (rcond >= 1) throw new SaltRangeError(`rcond must be in [0, 1), received ${rcond}`, 'E_ARGUMENT');
    }
    let prior: Float32Array | undefined;
    if (args.prior !== undefined) {
      prior = checkFloat32('prior', args.prior);
      if (prior.length !== nb.indices.length) {
        throw new SaltRangeError(
          `prior must have one weight per neighbour entry (${nb.indices.length}), received ${prior.length}`,
          'E_SHAPE',
        );
      }
    }
    const { backend, threads } = checkCommon(args, { maxNeighbours: maxListLength(nb.offsets) });
    return call(() =>
      binding().solveNeighbourhoods({
        n: queries.rows,
        offsets: nb.offsets,
        indices: nb.indices,
        prior,
        queries: queries.data,
        ht: queries.cols,
        anchorsPlm: anchorsPlm.data,
        m: anchorsPlm.rows,
        anchorsSrc: anchorsSrc.data,
        hs: anchorsSrc.cols,
        lambda,
        rcond,
        threads,
        returnCoefficients: args.returnCoefficients === true,
        backend,
      }),
    );
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Weighted combinations of anchor rows: out_i = sum_j weights[j] anchorsSrc[indices[j]] over token
 * i's list. The engine of the weighted-average baselines (FOCUS, CLP, WECHSEL-style).
 */
export function applyWeights(args: ApplyWeightsArgs): Promise<{ out: Float32Array }> {
  try {
    if (typeof args !== 'object' || args === null)
      throw new SaltRangeError('applyWeights expects an argument object', 'E_ARGUMENT');
    const n = checkInteger('n', args.n, 0);
    const anchorsSrc = checkMatrix('anchorsSrc', args.anchorsSrc);
    if (anchorsSrc.rows < 1) throw new SaltRangeError('anchorsSrc must have at least one row, received 0', 'E_SHAPE');
    const nb = checkNeighbourhoods('neighbours', args.neighbours, n);
    const weights = checkFloat32('weights', args.weights);
    if (weights.length !== nb.indices.length) {
      throw new SaltRangeError(
        `weights must have one weight per neighbour entry (${nb.indices.length}), received ${weights.length}`,
        'E_SHAPE',
      );
    }
    const { backend, threads } = checkCommon(args, { maxNeighbours: maxListLength(nb.offsets) });
    return call(() =>
      binding().applyWeights({
        n,
        offsets: nb.offsets,
        indices: nb.indices,
        weights,
        anchorsSrc: anchorsSrc.data,
        m: anchorsSrc.rows,
        hs: anchorsSrc.cols,
        threads,
        backend,
      }),
    );
  } catch (err) {
    return Promise.reject(err);
  }
}
