/** The command line's vocabulary: commands, options, usage text, and the conversion of option strings to typed values. */

import { SaltError } from '../errors.js';
import { type FloatDtype, isFloatDtype } from '../io/dtype.js';
import type { Backend } from '../kernels/kernels.js';
import { type Selection, TRANSFER_METHODS, type TransferMethod } from '../transfer/transferEmbeddings.js';

/** Exit codes of the CLI. */
export const EXIT = { ok: 0, error: 1, usage: 2, interrupted: 130 } as const;

/** A usage error: exit code 2. */
export class UsageError extends SaltError {
  constructor(message: string) {
    super('E_ARGUMENT', message);
    this.name = 'UsageError';
  }
}

export const USAGE = `Usage: salt-transfer <command> [options]

Commands:
  transfer  --source DIR --target DIR --out DIR [--target DIR --out DIR ...]
            [--aux FILE] [--method M | --preset paper] [--K N] [--selection sparsemax|topk:N]
            [--lambda auto|N] [--landmarks auto|all|N] [--seed N] [--case-fold] [--pad-to-multiple-of N]
            [--dtype F32|F16|BF16] [--overwrite]
            Give the LLM in --source the vocabulary of the PLM in --target; write a new model folder.
  evaluate  --source DIR --target DIR [--aux FILE] [--methods a,b,...] [--holdout F|N]
            [--seeds 0,1,2] [--no-ranks] [--case-fold] [--out DIR]
            Hold out shared tokens, rebuild them with every method, print a table;
            with --out, write evaluation.json, evaluation.csv and evaluation.svg there.
  inspect   <token> --source DIR --target DIR [--aux FILE] [--method M] [--K N] [--lambda auto|N] [--case-fold]
            A target token's canonical form, its shared match, or its neighbours, weights and coefficients.
  info      The installation: version, backends, threads, FAISS, BLAS, CUDA.
  demo      [--out DIR] [--overwrite]   The real USE-lite -> GloVe demo (default --out salt-demo-out).

Common options: --backend auto|cpu|cuda, --threads N, --json (machine-readable output on stdout),
--help. Methods: ${TRANSFER_METHODS.join(', ')}.
Exit codes: 0 ok, 1 runtime error, 2 usage error, 130 interrupted.`;

export const OPTIONS = {
  source: { type: 'string' },
  target: { type: 'string', multiple: true },
  out: { type: 'string', multiple: true },
  aux: { type: 'string' },
  method: { type: 'string' },
  methods: { type: 'string' },
  preset: { type: 'string' },
  K: { type: 'string' },
  selection: { type: 'string' },
  lambda: { type: 'string' },
  landmarks: { type: 'string' },
  seed: { type: 'string' },
  seeds: { type: 'string' },
  holdout: { type: 'string' },
  'no-ranks': { type: 'boolean' },
  'case-fold': { type: 'boolean' },
  overwrite: { type: 'boolean' },
  'pad-to-multiple-of': { type: 'string' },
  dtype: { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true }
    ? string[]
    : (typeof OPTIONS)[K]['type'] extends 'boolean'
      ? boolean
      : string;
};

/** Which options each command accepts (others are usage errors, not silently ignored). */
export const ACCEPTS: Record<string, ReadonlyArray<keyof typeof OPTIONS>> = {
  transfer: [
    'source',
    'target',
    'out',
    'aux',
    'method',
    'preset',
    'K',
    'selection',
    'lambda',
    'landmarks',
    'seed',
    'case-fold',
    'overwrite',
    'pad-to-multiple-of',
    'dtype',
    'backend',
    'threads',
    'json',
  ],
  evaluate: [
    'source',
    'target',
    'out',
    'aux',
    'methods',
    'holdout',
    'seeds',
    'no-ranks',
    'case-fold',
    'backend',
    'threads',
    'json',
  ],
  inspect: ['source', 'target', 'aux', 'method', 'K', 'lambda', 'case-fold', 'backend', 'threads', 'json'],
  info: ['json'],
  demo: ['out', 'overwrite', 'backend', 'threads', 'json'],
};

export function int(
  name: string,
  v: string | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `--${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`}, received ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/** --landmarks: 'auto', 'all' or an integer >= 1 (method salt). */
export function landmarksOf(v: string | undefined): 'auto' | 'all' | number | undefined {
  if (v === undefined || v === 'auto' || v === 'all') return v;
  return int('landmarks', v, 1, 46340);
}

/** A plain decimal number ("1", "0.5", "1e-3"); no hex, no whitespace, no "Infinity". */
export const DECIMAL = /^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function lambdaOf(v: string | undefined): 'auto' | number | undefined {
  if (v === undefined || v === 'auto') return v;
  const n = Number(v);
  if (!DECIMAL.test(v) || !Number.isFinite(n))
    throw new UsageError(`--lambda must be "auto" or a number >= 0, received ${JSON.stringify(v)}`);
  return n;
}

export function selectionOf(v: string | undefined): Selection | undefined {
  if (v === undefined || v === 'sparsemax') return v;
  const m = /^topk:(\d+)$/.exec(v);
  if (!m || Number(m[1]) < 1)
    throw new UsageError(`--selection must be "sparsemax" or "topk:N" with N >= 1, received ${JSON.stringify(v)}`);
  return { topk: Number(m[1]) };
}

export function methodOf(v: string | undefined, name = 'method'): TransferMethod | undefined {
  if (v === undefined) return undefined;
  if (!(TRANSFER_METHODS as readonly string[]).includes(v))
    throw new UsageError(`--${name} must be one of ${TRANSFER_METHODS.join(', ')}, received ${JSON.stringify(v)}`);
  return v as TransferMethod;
}

export function dtypeOf(v: string | undefined): FloatDtype | undefined {
  if (v === undefined) return undefined;
  const u = v.toUpperCase();
  if (!isFloatDtype(u)) throw new UsageError(`--dtype must be F32, F16 or BF16, received ${JSON.stringify(v)}`);
  return u;
}

export function backendOf(v: string | undefined): Backend | undefined {
  if (v === undefined) return undefined;
  if (v !== 'auto' && v !== 'cpu' && v !== 'cuda')
    throw new UsageError(`--backend must be auto, cpu or cuda, received ${JSON.stringify(v)}`);
  return v;
}

export function need(v: string | undefined, name: string, cmd: string): string {
  if (v === undefined || v === '') throw new UsageError(`${cmd} needs --${name}`);
  return v;
}

export function one(v: string[] | undefined, name: string, cmd: string): string | undefined {
  if (v && v.length > 1) throw new UsageError(`${cmd} takes one --${name}, received ${v.length}`);
  return v?.[0];
}
