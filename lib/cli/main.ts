/**
 * The `salt-transfer` command line. See docs/cli.md.
 *
 * Exit codes: 0 success; 1 runtime error (a file missing or malformed, a refused overwrite, a kernel
 * failure ...); 2 usage error (unknown command or option, a bad option value); 130 interrupted
 * (SIGINT: the running transfer is aborted through its AbortSignal; the target in progress leaves no folder).
 */
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { SaltError } from '../errors.js';
import { type FloatDtype, isFloatDtype } from '../io/dtype.js';
import { info } from '../kernels/info.js';
import type { Backend } from '../kernels/kernels.js';
import { evaluateModels } from '../pipeline/evaluate.js';
import { inspectToken } from '../pipeline/inspect.js';
import {
  MAX_PAD_MULTIPLE,
  type ModelTransferReport,
  planTransfer,
  REPORT_FILE,
  transfer,
  type TransferTarget,
} from '../pipeline/transfer.js';
import { formatEvaluation, type MethodSpec } from '../transfer/evaluateTransfer.js';
import { type Selection, TRANSFER_METHODS, type TransferMethod } from '../transfer/transferEmbeddings.js';
import { runDemo } from './demo.js';
import { writeEvaluationFiles } from './evaluationFiles.js';

/** Exit codes of the CLI. */
export const EXIT = { ok: 0, error: 1, usage: 2, interrupted: 130 } as const;

/** A usage error: exit code 2. */
export class UsageError extends SaltError {
  constructor(message: string) {
    super('E_ARGUMENT', message);
    this.name = 'UsageError';
  }
}

const USAGE = `Usage: salt-transfer <command> [options]

Commands:
  transfer  --source DIR --target DIR --out DIR [--target DIR --out DIR ...]
            [--aux FILE] [--method M | --preset paper] [--K N] [--selection sparsemax|topk:N]
            [--lambda auto|N] [--seed N] [--case-fold] [--pad-to-multiple-of N] [--dtype F32|F16|BF16] [--overwrite]
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

const OPTIONS = {
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

type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true }
    ? string[]
    : (typeof OPTIONS)[K]['type'] extends 'boolean'
      ? boolean
      : string;
};

/** Which options each command accepts (others are usage errors, not silently ignored). */
const ACCEPTS: Record<string, ReadonlyArray<keyof typeof OPTIONS>> = {
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

function int(name: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `--${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`}, received ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/** A plain decimal number ("1", "0.5", "1e-3"); no hex, no whitespace, no "Infinity". */
const DECIMAL = /^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function lambdaOf(v: string | undefined): 'auto' | number | undefined {
  if (v === undefined || v === 'auto') return v;
  const n = Number(v);
  if (!DECIMAL.test(v) || !Number.isFinite(n))
    throw new UsageError(`--lambda must be "auto" or a number >= 0, received ${JSON.stringify(v)}`);
  return n;
}

function selectionOf(v: string | undefined): Selection | undefined {
  if (v === undefined || v === 'sparsemax') return v;
  const m = /^topk:(\d+)$/.exec(v);
  if (!m || Number(m[1]) < 1)
    throw new UsageError(`--selection must be "sparsemax" or "topk:N" with N >= 1, received ${JSON.stringify(v)}`);
  return { topk: Number(m[1]) };
}

function methodOf(v: string | undefined, name = 'method'): TransferMethod | undefined {
  if (v === undefined) return undefined;
  if (!(TRANSFER_METHODS as readonly string[]).includes(v))
    throw new UsageError(`--${name} must be one of ${TRANSFER_METHODS.join(', ')}, received ${JSON.stringify(v)}`);
  return v as TransferMethod;
}

function dtypeOf(v: string | undefined): FloatDtype | undefined {
  if (v === undefined) return undefined;
  const u = v.toUpperCase();
  if (!isFloatDtype(u)) throw new UsageError(`--dtype must be F32, F16 or BF16, received ${JSON.stringify(v)}`);
  return u;
}

function backendOf(v: string | undefined): Backend | undefined {
  if (v === undefined) return undefined;
  if (v !== 'auto' && v !== 'cpu' && v !== 'cuda')
    throw new UsageError(`--backend must be auto, cpu or cuda, received ${JSON.stringify(v)}`);
  return v;
}

function need(v: string | undefined, name: string, cmd: string): string {
  if (v === undefined || v === '') throw new UsageError(`${cmd} needs --${name}`);
  return v;
}

function one(v: string[] | undefined, name: string, cmd: string): string | undefined {
  if (v && v.length > 1) throw new UsageError(`${cmd} takes one --${name}, received ${v.length}`);
  return v?.[0];
}

/** Progress on stderr: a redrawn line on a TTY (stage, tokens/s, ETA), else one line per finished stage. */
class Progress {
  private readonly tty: boolean;
  private stage = '';
  private start = 0;
  private lastDraw = 0;
  /** Time of the latest event: a new stage is timed from there (the engine reports a stage only after its first chunk). */
  private lastEvent = performance.now();
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly quiet: boolean,
  ) {
    this.tty = Boolean(stream.isTTY);
  }
  update(stage: string, done: number, total: number): void {
    if (this.quiet) return;
    const now = performance.now();
    if (stage !== this.stage) {
      this.finishLine();
      this.stage = stage;
      this.start = this.lastEvent;
    }
    this.lastEvent = now;
    if (this.tty) {
      if (now - this.lastDraw < 100 && done < total) return;
      this.lastDraw = now;
      const s = (now - this.start) / 1000;
      const frac = total > 0 ? done / total : 0;
      const width = 24;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      const rate = s > 0 && total > 1 ? `${Math.round(done / s).toLocaleString('en-US')}/s` : '';
      const eta = frac > 0 && frac < 1 ? `ETA ${((s * (1 - frac)) / frac).toFixed(0)} s` : '';
      this.stream.write(`\r\x1b[K${stage.padEnd(12)} [${bar}] ${done}/${total} ${rate} ${eta}`);
    } else if (done >= total) {
      this.stream.write(`${stage}: done (${total}) in ${((now - this.start) / 1000).toFixed(2)} s\n`);
      this.stage = '';
    }
  }
  finishLine(): void {
    if (this.tty && this.stage) this.stream.write('\r\x1b[K');
  }
}

const fmtMs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function summarise(r: ModelTransferReport): string {
  const c = r.transfer.counts;
  const lines = [
    `${r.output}: ${r.shapes.targetVocab} tokens x ${r.shapes.sourceWidth} (${r.written.dtype}${r.shapes.tied ? ', tied head' : `, untied head x ${r.shapes.headWidth}`})`,
    `  method ${r.transfer.method}; copied ${c.copied}, special ${c.special}, solved ${c.solved}, fallback ${c.fallback}; anchors ${r.transfer.anchors}` +
      (r.transfer.lambda ? `; lambda ${r.transfer.lambda.value}${r.transfer.lambda.auto ? ' (auto)' : ''}` : '') +
      (r.transfer.support
        ? `; mean support ${r.transfer.support.mean.toFixed(1)}, hit K ${r.transfer.support.hitK}`
        : ''),
    `  aux: ${r.aux.kind}${r.aux.path ? ` ${r.aux.path}` : ''}, ${r.aux.present} of ${r.shapes.targetVocab} tokens with a vector`,
    `  timings: ${Object.entries(r.timings)
      .map(([k, v]) => `${k} ${fmtMs(v)}`)
      .join(', ')}`,
    `  engine: ${Object.entries(r.transfer.timings)
      .map(([k, v]) => `${k} ${fmtMs(v)}`)
      .join(', ')}`,
    `  report: ${resolve(r.output, REPORT_FILE)}`,
  ];
  return lines.join('\n');
}

function toJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      ArrayBuffer.isView(x)
        ? Array.from(x as unknown as ArrayLike<number>)
        : typeof x === 'number' && !Number.isFinite(x)
          ? null
          : x,
    2,
  );
}

/** IO of {@link main}, replaceable in tests. */
export interface CliIo {
  stdout: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  stderr: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  signal?: AbortSignal;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const out = (s: string) => void io.stdout.write(s + '\n');
  const err = (s: string) => void io.stderr.write(s + '\n');
  let json = argv.includes('--json');
  try {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      out(USAGE);
      return cmd === undefined ? EXIT.usage : EXIT.ok;
    }
    if (!(cmd in ACCEPTS))
      throw new UsageError(
        `unknown command ${JSON.stringify(cmd)} (expected one of ${Object.keys(ACCEPTS).join(', ')})`,
      );
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: OPTIONS,
        allowPositionals: cmd === 'inspect',
        strict: true,
        tokens: true,
      });
    } catch (e) {
      throw new UsageError(`${cmd}: ${(e as Error).message}`);
    }
    // An option given twice is a mistake (parseArgs would silently keep the last); only --target and --out repeat.
    const seen = new Set<string>();
    for (const t of parsed.tokens ?? []) {
      if (t.kind !== 'option' || 'multiple' in OPTIONS[t.name as keyof typeof OPTIONS]) continue;
      if (seen.has(t.name)) throw new UsageError(`${cmd}: --${t.name} was given more than once`);
      seen.add(t.name);
    }
    const v = parsed.values as Values;
    json = v.json === true;
    if (v.help) {
      out(USAGE);
      return EXIT.ok;
    }
    for (const k of Object.keys(v))
      if (!ACCEPTS[cmd].includes(k as keyof typeof OPTIONS) && k !== 'help')
        throw new UsageError(`${cmd} does not take --${k}`);
    const progress = new Progress(io.stderr as NodeJS.WriteStream, false);
    const kernel = { backend: backendOf(v.backend), threads: int('threads', v.threads, 0) };
    for (const k of ['out', 'target', 'aux', 'source'] as const) {
      const given = v[k];
      if ((Array.isArray(given) ? given : given === undefined ? [] : [given]).some((x) => x === ''))
        throw new UsageError(`${cmd}: --${k} must be a non-empty path, received ""`);
    }
    // Every command that runs a kernel refuses --backend cuda up front when CUDA is missing, whether or not the method would need it.
    if (kernel.backend === 'cuda' && cmd !== 'info' && !info().cuda.available)
      throw new SaltError('E_NO_CUDA', `--backend cuda was given but CUDA is not available: ${info().cuda.reason}`);

    if (cmd === 'info') {
      const i = info();
      if (json) out(toJson(i));
      else {
        out(`salt-transfer ${i.version}`);
        out(`backends: ${i.backends.join(', ')}; threads ${i.threads}`);
        out(`FAISS ${i.faiss}; BLAS ${i.blas}`);
        out(`CUDA: ${i.cuda.available ? i.cuda.description : `not available (${i.cuda.reason})`}`);
        out(`addon: ${i.addon}`);
      }
      return EXIT.ok;
    }

    if (cmd === 'demo') {
      const report = await runDemo({
        out: one(v.out, 'out', cmd),
        overwrite: v.overwrite,
        ...kernel,
        signal: io.signal,
        log: json ? (s) => err(s) : out,
        onProgress: (s, d, t) => progress.update(s, d, t),
      });
      progress.finishLine();
      if (json) out(toJson(report));
      else {
        out(`Wrote ${report.files.length} files to ${report.out}: ${report.files.join(', ')}`);
        out(
          `timings: ${Object.entries(report.timings)
            .map(([k, x]) => `${k} ${fmtMs(x)}`)
            .join(', ')}`,
        );
        out(
          `transfer stages: ${Object.entries(report.transfer.timings)
            .map(([k, x]) => `${k} ${fmtMs(x)}`)
            .join(', ')}`,
        );
      }
      return EXIT.ok;
    }

    const source = need(v.source, 'source', cmd);
    const caseFold = v['case-fold'] === true;

    if (cmd === 'transfer') {
      const targets = v.target ?? [];
      const outs = v.out ?? [];
      if (!targets.length) throw new UsageError('transfer needs --target');
      if (targets.length !== outs.length)
        throw new UsageError(
          `transfer needs one --out per --target (received ${targets.length} --target and ${outs.length} --out)`,
        );
      if (v.preset !== undefined && v.preset !== 'paper')
        throw new UsageError(`--preset must be "paper", received ${JSON.stringify(v.preset)}`);
      if (v.preset && v.method) throw new UsageError('--preset paper and --method are exclusive');
      const list: TransferTarget[] = targets.map((target, i) => ({ target, out: outs[i] }));
      // Outputs published by this run: an interrupt removes them all, so that exit 130 means no output.
      const published = new Set<string>();
      const unpublish = async () => {
        for (const o of published) await rm(o, { recursive: true, force: true });
      };
      // Option values, their combination and every path are checked before any model is loaded; a
      // bad value (E_ARGUMENT, E_TYPE: a wrong K, an --out inside an input, a file as --target ...) is a usage error.
      let plan;
      try {
        plan = await planTransfer({
          source,
          targets: list,
          aux: v.aux,
          method: methodOf(v.method),
          preset: v.preset as 'paper' | undefined,
          K: int('K', v.K, 1),
          selection: selectionOf(v.selection),
          lambda: lambdaOf(v.lambda),
          seed: int('seed', v.seed, 0),
          ...kernel,
          align: { caseFold },
          overwrite: v.overwrite,
          padToMultipleOf: int('pad-to-multiple-of', v['pad-to-multiple-of'], 1, MAX_PAD_MULTIPLE),
          dtype: dtypeOf(v.dtype),
          signal: io.signal,
          onProgress: (e) => {
            if (e.stage === 'write' && e.done === e.total) published.add(resolve(list[e.target].out));
            progress.update(list.length > 1 ? `[${e.target + 1}/${list.length}] ${e.stage}` : e.stage, e.done, e.total);
          },
        });
      } catch (err) {
        const c = (err as { code?: string }).code;
        if (c === 'E_ARGUMENT' || c === 'E_TYPE') throw new UsageError((err as Error).message);
        throw err;
      }
      let reports: ModelTransferReport[];
      try {
        reports = await transfer(plan);
      } catch (err) {
        if ((err as { code?: string }).code === 'E_ABORTED') await unpublish();
        throw err;
      }
      progress.finishLine();
      if (io.signal?.aborted) {
        // The interrupt arrived after transfer()'s last check (while it closed its files).
        await unpublish();
        throw new SaltError('E_ABORTED', 'interrupted after the output was written; it was removed');
      }
      if (json) out(toJson(reports));
      else for (const r of reports) out(summarise(r));
      return EXIT.ok;
    }

    const target = need(one(v.target, 'target', cmd), 'target', cmd);

    if (cmd === 'evaluate') {
      let methods: Array<TransferMethod | MethodSpec> | undefined;
      if (v.methods !== undefined) methods = v.methods.split(',').map((m) => methodOf(m.trim(), 'methods')!);
      let holdout: number | undefined;
      if (v.holdout !== undefined) {
        holdout = Number(v.holdout);
        if (
          !DECIMAL.test(v.holdout) ||
          !Number.isFinite(holdout) ||
          holdout <= 0 ||
          (holdout >= 1 && !Number.isInteger(holdout))
        )
          throw new UsageError(
            `--holdout must be a fraction in (0, 1) or a count >= 1, received ${JSON.stringify(v.holdout)}`,
          );
      }
      let seeds: number[] | undefined;
      if (v.seeds !== undefined) seeds = v.seeds.split(',').map((s) => int('seeds', s.trim(), 0)!);
      const outDir = one(v.out, 'out', cmd);
      const { result, alignment, timings, prepareThread } = await evaluateModels({
        source,
        target,
        aux: v.aux,
        align: { caseFold },
        methods,
        holdout,
        seeds,
        ranks: v['no-ranks'] ? false : true,
        ...kernel,
        signal: io.signal,
        onProgress: (d, t) => progress.update('evaluate', d, t),
      });
      progress.finishLine();
      if (io.signal?.aborted) throw new SaltError('E_ABORTED', 'interrupted before the evaluation files were written');
      const files = outDir
        ? await writeEvaluationFiles(outDir, result, { source, target, alignment, prepareThread, timings })
        : [];
      if (json)
        out(
          toJson({
            source,
            target,
            alignment,
            prepareThread,
            timings,
            files,
            mean: result.mean,
            labels: result.labels,
            seeds: result.seeds.map((s) => ({
              seed: s.seed,
              heldOut: s.heldOut,
              anchors: s.anchors,
              excluded: s.excluded,
            })),
          }),
        );
      else {
        const s0 = result.seeds[0];
        out(
          `${alignment.matched} shared tokens; ${s0.heldOut} held out, ${s0.anchors} anchors per seed; seeds ${result.seeds.map((s) => s.seed).join(', ')}; ranks among ${result.sourceRows} source rows\n`,
        );
        out(formatEvaluation(result));
        out(`\nprepare ${fmtMs(timings.prepare)}, evaluate ${fmtMs(timings.evaluate)}`);
        if (files.length) out(`wrote ${files.join(', ')}`);
      }
      return EXIT.ok;
    }

    // inspect
    if (parsed.positionals.length !== 1)
      throw new UsageError(`inspect takes exactly one token, received ${parsed.positionals.length}`);
    const r = await inspectToken({
      source,
      target,
      aux: v.aux,
      token: parsed.positionals[0],
      method: methodOf(v.method),
      K: int('K', v.K, 1),
      lambda: lambdaOf(v.lambda),
      align: { caseFold },
      ...kernel,
    });
    if (json) out(toJson(r));
    else out(r.text);
    return EXIT.ok;
  } catch (e) {
    const usage = e instanceof UsageError;
    const code = (e as { code?: string }).code ?? 'E_INTERNAL';
    const message = e instanceof Error ? e.message : String(e);
    if (json) out(toJson({ error: { code, message, usage } }));
    err(`salt-transfer: ${usage ? 'usage error' : 'error'} [${code}]: ${message}`);
    if (usage) err('Run salt-transfer --help for the commands and options.');
    // A JavaScript stack is for bug reports: shown only with SALT_DEBUG=1.
    if (!usage && code === 'E_INTERNAL' && e instanceof Error && e.stack && process.env.SALT_DEBUG === '1')
      err(e.stack);
    if (code === 'E_ABORTED') return EXIT.interrupted;
    return usage ? EXIT.usage : EXIT.error;
  }
}
