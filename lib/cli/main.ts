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
import { info } from '../kernels/info.js';
import { returnLargeFreesToSystem } from '../kernels/matrixOps.js';
import { evaluateModels } from '../pipeline/evaluate.js';
import { inspectToken } from '../pipeline/inspect.js';
import {
  MAX_PAD_MULTIPLE,
  type ModelTransferReport,
  planTransfer,
  transfer,
  type TransferTarget,
} from '../pipeline/transfer.js';
import { formatEvaluation, type MethodSpec } from '../transfer/evaluateTransfer.js';
import { type TransferMethod } from '../transfer/transferEmbeddings.js';
import {
  ACCEPTS,
  backendOf,
  DECIMAL,
  dtypeOf,
  EXIT,
  int,
  lambdaOf,
  landmarksOf,
  methodOf,
  need,
  one,
  OPTIONS,
  selectionOf,
  USAGE,
  UsageError,
  type Values,
} from './args.js';
import { runDemo } from './demo.js';
import { writeEvaluationFiles } from './evaluationFiles.js';
import { fmtMs, Progress, summarise, toJson } from './output.js';

export { EXIT, UsageError } from './args.js';

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
    returnLargeFreesToSystem(); // the CLI owns its process (see there)
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
          landmarks: landmarksOf(v.landmarks),
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
