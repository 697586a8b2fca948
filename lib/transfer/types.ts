/** Types and constants of the transfer engine (methods, options, arguments, results, reports). */
import type { Backend } from '../kernels/kernels.js';
import type { Matrix } from '../kernels/validate.js';
import type { Quantiles } from './stats.js';

/**
 * How new rows are built.
 * - `'salt'` (default): SALT's idea as one regression: kernel ridge over all anchors from the aux space
 *   to the source space, k(x, y) = linear (x . y + 1) + exp((cos(x, y) - 1) / width); linear, width
 *   and lambda chosen by closed-form leave-one-out on the anchors; exact up to 8,192 anchors, Nystrom
 *   beyond (`landmarks`). Differs from the paper (see `'salt-paper'` and docs/method.md).
 * - `'salt-local'` (the previous default): sparsemax neighbours, per-token ridge regression shrunk
 *   towards the sparsemax weights, lambda chosen by leave-one-out on the anchors.
 * - `'salt-residual'`: a global ridge map W plus salt-local's per-token correction of its residual:
 *   row = [x, 1] W + sum_j c_j (s_j - [a_j, 1] W), c = salt-local's coefficients (lambda for c, the
 *   map's own lambda by leave-one-out over `lambdaGrid`).
 * - `'salt-paper'`: exactly the paper: sparsemax neighbours, least squares with pinv semantics (lambda 0).
 * - `'salt-ridge'`: sparsemax neighbours, ridge shrunk towards zero (lambda `'auto'` by default).
 * - `'focus'`: FOCUS-style: the sparsemax weights as a convex combination of the anchors' source rows.
 * - `'clp'`: similarity-weighted average over the top-K candidates (clamped-at-0 cosines, normalised).
 * - `'wechsel'`: WECHSEL-style: softmax of the top-k cosines with a temperature (k 10, temperature 0.1).
 * - `'mean'`: the per-dimension mean of the source rows.
 * - `'random'`: seeded N(mean, std) rows (per-dimension mean and std of the source rows).
 * - `'global-linear'`: one ridge map from PLM space to source space fitted on the anchors.
 * - `'fvt'`: FVT (Fast Vocabulary Transfer, Gee et al. 2022): the mean of the source rows of the
 *   source tokens the new token's text splits into (`segmentation`, see `segmentWithVocabulary`).
 */
export type TransferMethod =
  | 'salt'
  | 'salt-local'
  | 'salt-residual'
  | 'salt-paper'
  | 'salt-ridge'
  | 'focus'
  | 'clp'
  | 'wechsel'
  | 'mean'
  | 'random'
  | 'global-linear'
  | 'fvt';

/** All methods of {@link transferEmbeddings}. */
export const TRANSFER_METHODS: readonly TransferMethod[] = [
  'salt',
  'salt-local',
  'salt-residual',
  'salt-paper',
  'salt-ridge',
  'focus',
  'clp',
  'wechsel',
  'mean',
  'random',
  'global-linear',
  'fvt',
];

/**
 * Which candidates become a token's neighbours: `'sparsemax'` (the paper: the support of sparsemax over
 * the top-K cosines) or `{ topk: k }` (the k most similar anchors, k <= K).
 */
export type Selection = 'sparsemax' | { topk: number };

/**
 * How a target row was made. `copied`: a shared token, the source row copied exactly; `special`: a
 * special token matched by role (copied too); `solved`: built by the chosen method; `fallback`: a token
 * without an auxiliary vector, seeded N(mean, std).
 */
export type Provenance = 'copied' | 'special' | 'solved' | 'fallback';

/** Provenance names in the order of their codes in {@link TransferResult.provenance}. */
export const PROVENANCE: readonly Provenance[] = ['copied', 'special', 'solved', 'fallback'];

/** Stages reported to `onProgress` and timed in {@link TransferReport.timings}. */
export type TransferStage = 'prepare' | 'lambda' | 'search' | 'select' | 'combine' | 'head' | 'fallback';

/** The default lambda grid of `lambda: 'auto'`. */
export const DEFAULT_LAMBDA_GRID: readonly number[] = [0, 0.3, 1, 3, 10, 30, 100];

/** The default grid of relative lambdas of `'salt'` (lambda x the mean diagonal of the kernel). */
export const KERNEL_LAMBDA_GRID: readonly number[] = [0.003, 0.01, 0.03, 0.1, 0.3, 1, 3];
/** The default grid of the kernel width of `'salt'` (the scale of 1 - cos). */
export const KERNEL_WIDTH_GRID: readonly number[] = [0.05, 0.1, 0.2, 0.4, 0.8];
/** The default grid of the weight of the linear kernel term of `'salt'`. */
export const KERNEL_LINEAR_GRID: readonly number[] = [0, 0.1];
/**
 * Most anchors `'salt'` solves exactly (`landmarks: 'all'`): the m x m float64 system and its
 * copy take 2 x 8 m^2 bytes (4 GiB at this size). More anchors need the Nystrom approximation.
 */
export const MAX_EXACT_ANCHORS = 16384;

/**
 * Largest candidate count K: sparsemax supports on real pairs stay below 100, and the candidate
 * lists take chunkSize x K x 8 bytes, so a larger K only costs time and memory.
 */
export const MAX_K = 4096;

/** The alignment of the target vocabulary with the source vocabulary (see `alignVocabularies`). */
export interface TransferAlignment {
  /** Per target token: the source row to copy, or -1 for a new token. Length |V_t|. */
  sourceIdOfTarget: Int32Array;
  /**
   * Optional per-target match category (index into `MATCH_CATEGORIES`). Tokens matched by special
   * role are copied with provenance `special` and never used as anchors.
   */
  category?: Uint8Array;
}

/** For every target token, the source token ids its text splits into (CSR; see `segmentWithVocabulary`). */
export interface TransferSegmentation {
  /** Length |V_t| + 1. */
  offsets: Int32Array;
  /** Source row ids in [0, |V_s|). */
  indices: Int32Array;
}

/** Options of {@link transferEmbeddings}. Options that do not apply to the chosen method are rejected (E_ARGUMENT). */
export interface TransferOptions {
  /** Method; default `'salt'`. */
  method?: TransferMethod;
  /** Candidates searched per token among the anchors (exact top-K by cosine in the aux space); default 64, clamped to the anchor count. Methods salt*, focus, clp, wechsel. */
  K?: number;
  /** Neighbour selection; default `'sparsemax'` (salt, salt-ridge, focus; salt-paper allows only this), `{ topk: K }` (clp), `{ topk: 10 }` (wechsel). */
  selection?: Selection;
  /** Ridge strength: `'auto'` (leave-one-out over the anchors) or a number >= 0. Default `'auto'` (salt, salt-ridge, global-linear); salt-paper allows only 0. */
  lambda?: 'auto' | number;
  /** Grid searched by `lambda: 'auto'`; default {@link DEFAULT_LAMBDA_GRID}. */
  lambdaGrid?: readonly number[];
  /** Anchors sampled (seeded) for the leave-one-out choice of lambda; default 500. */
  looSample?: number;
  /** `'salt'`: the kernel width (a number, or a grid searched by leave-one-out); default {@link KERNEL_WIDTH_GRID}. */
  kernelWidth?: number | readonly number[];
  /** `'salt'`: the weight of the linear term (a number >= 0, or a grid); default {@link KERNEL_LINEAR_GRID}. */
  kernelLinear?: number | readonly number[];
  /**
   * `'salt'`: `'all'` (exact, at most {@link MAX_EXACT_ANCHORS} anchors), a landmark count L
   * (Nystrom over a seeded sample of L anchors; exact when L >= the anchor count), or `'auto'`
   * (default: exact up to 8,192 anchors, else 4,096 landmarks).
   */
  landmarks?: 'auto' | 'all' | number;
  /** `'salt'`: what the leave-one-out choice maximises: `'cosine'` (default, mean cosine) or `'p1'` (share ranked first among the source rows). */
  looCriterion?: 'cosine' | 'p1';
  /** Softmax temperature of `'wechsel'`; default 0.1. */
  temperature?: number;
  /** Seed of every random choice (fallback rows, the LOO sample); default 0. */
  seed?: number;
  /** New tokens per chunk (bounds memory; progress and abort are checked per chunk); default 32,768. */
  chunkSize?: number;
  /** Kernel backend; default `'auto'`. */
  backend?: Backend;
  /** CPU threads of the kernels; default 0 = all cores. */
  threads?: number;
  /** Cancels the transfer: the Promise rejects with SaltError `E_ABORTED` at the next stage or chunk. */
  signal?: AbortSignal;
  /** Progress callback: `done` of `total` units of `stage` (tokens, or grid values for `'lambda'`). */
  onProgress?: (stage: TransferStage, done: number, total: number) => void;
}

/** Arguments of {@link transferEmbeddings}. */
export interface TransferArgs extends TransferOptions {
  /** The LLM's input embeddings S (|V_s| x h_s). */
  source: Matrix;
  /** The LLM's untied output head (|V_s| x h_o), if it has one; transferred with the same neighbours and coefficients. */
  sourceHead?: Matrix;
  /** The PLM's embeddings P (|V_t| x h_t), aligned with the target vocabulary. */
  target: Matrix;
  /** Auxiliary similarity space aligned with V_t (|V_t| x h_a); default `target`. */
  aux?: Matrix;
  /** Per target token: 0 = no auxiliary vector (the row of `aux` is ignored), else present. Default: all present. */
  auxPresent?: Uint8Array;
  /** Which target tokens are shared with the source. */
  alignment: TransferAlignment;
  /**
   * Method `'fvt'` only (required there): each target token's source pieces. New tokens with an empty
   * list get fallback rows; lists of shared tokens are ignored (their rows are copied).
   */
  segmentation?: TransferSegmentation;
}

/** The lambda actually used, and how it was chosen. */
export interface LambdaReport {
  /** The value used. */
  value: number;
  /** Whether it was chosen by leave-one-out. */
  auto: boolean;
  /** The grid searched (auto only). */
  grid?: number[];
  /** Mean cosine of the leave-one-out predictions to the true source rows, per grid value (auto only). */
  scores?: number[];
  /** Anchors in the leave-one-out sample (auto only; 0 when there were too few anchors and the first grid value was used). */
  sample?: number;
}

/** How `'salt'` fitted (see {@link TransferOptions.landmarks}). */
export interface KernelReport {
  /** The chosen linear weight and width. */
  linear: number;
  width: number;
  /** The relative lambda used (after any fallback to a larger grid value). */
  lambda: number;
  /** Landmark rows of the fit (all anchors when exact). */
  landmarks: number;
  exact: boolean;
  /** Columns of the fitted system: the landmark count (exact: the anchor count). */
  rank: number;
  criterion: 'cosine' | 'p1';
  /** Anchors in the leave-one-out sample (0 when nothing was searched). */
  sample: number;
  /** The leave-one-out score of every grid point (when searched). */
  grid?: { linear: number; width: number; lambda: number; score: number }[];
  /** What went differently: an ill-conditioned lambda skipped, a sample too small to search. */
  notes: string[];
}

/** What {@link transferEmbeddings} did. */
export interface TransferReport {
  method: TransferMethod;
  /** Target rows per provenance. */
  counts: Record<Provenance, number>;
  /** Shared tokens usable as anchors (not special, with an aux vector). */
  anchors: number;
  /** Candidates per token actually searched (K clamped to the anchor count), for neighbour methods. */
  K?: number;
  /** The selection used, for neighbour methods (`topk` after clamping). */
  selection?: Selection;
  /** Temperature (wechsel). */
  temperature?: number;
  /** Neighbour counts of solved rows: `histogram[k]` rows had k neighbours; `hitK` rows used all K candidates (K may have cut their support). */
  support?: { histogram: number[]; mean: number; hitK: number };
  /** Relative residual ||c A - x|| / ||x|| of the per-token regressions (salt methods). */
  residual?: Quantiles;
  /** ||c|| of the per-token coefficients (salt methods). */
  coefNorm?: Quantiles;
  /** Row L2 norms of the source rows and of the new (solved + fallback) rows. */
  rowNorms: { source: Quantiles; new: Quantiles };
  /** Ridge lambda (salt-local, salt-ridge, salt-paper, global-linear; salt: relative to the kernel's mean diagonal). */
  lambda?: LambdaReport;
  /** salt only: the kernel, the fit and the leave-one-out search. */
  kernel?: KernelReport;
  /** salt-residual only: the global map's lambda (its own leave-one-out) and jitter. */
  globalMap?: { lambda: LambdaReport; jitter: number };
  /** global-linear only: diagonal jitter added to factorise a singular system (0 normally). */
  jitter?: number;
  /** fvt only: pieces per solved (segmented new) token: mean and maximum; `unsegmented`: new tokens with an empty list (fallback rows). */
  pieces?: { mean: number; max: number; unsegmented: number };
  /** Wall time per stage and in total (ms). */
  timings: Record<TransferStage | 'total', number>;
}

/** Result of {@link transferEmbeddings}. */
export interface TransferResult {
  /** |V_t| x h_s, row-major. */
  embeddings: Float32Array;
  /** |V_t| x h_o when a `sourceHead` was given. */
  head?: Float32Array;
  /** Per target row, an index into {@link PROVENANCE}. */
  provenance: Uint8Array;
  report: TransferReport;
}
