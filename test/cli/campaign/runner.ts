/**
 * The campaign's machinery: spawning dist/cli.js with a timeout (and, optionally, a signal at a given
 * time or after a progress line), hashing folder trees (without opening FIFOs or following links),
 * checking an output folder's completeness by hand, and the contract checks shared by every case.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '..', '..', '..');
export const cliJs = join(root, 'dist', 'cli.js');

export type Sig = 'SIGKILL' | 'SIGINT' | 'SIGTERM';

export interface KillPlan {
  sig: Sig;
  /** Send after this many ms from the spawn ... */
  afterMs?: number;
  /** ... or this many ms after the progress line `<stage>: done` appeared on stderr. */
  afterStage?: string;
  delayMs?: number;
  /** Send a second SIGINT 40 ms after the first (Ctrl-C twice). */
  double?: boolean;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
  /** The signal, when it was delivered to a live process. */
  sent: Sig | null;
}

/** Runs `node dist/cli.js ...args`; kills it with SIGKILL after `timeoutMs` (a hang). */
export function runCli(args: string[], opts: { cwd?: string; timeoutMs: number; kill?: KillPlan }): Promise<RunResult> {
  return new Promise((res) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [cliJs, ...args], {
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let sent: Sig | null = null;
    let scheduled = false;
    const timers: NodeJS.Timeout[] = [];
    const alive = () => child.exitCode === null && child.signalCode === null;
    const send = () => {
      const k = opts.kill!;
      if (!alive()) return;
      child.kill(k.sig);
      sent = k.sig;
      if (k.double) timers.push(setTimeout(() => alive() && child.kill(k.sig), 40));
    };
    const k = opts.kill;
    if (k && k.afterMs !== undefined) {
      scheduled = true;
      timers.push(setTimeout(send, k.afterMs));
    }
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (k && k.afterStage && !scheduled && stderr.includes(`${k.afterStage}: done`)) {
        scheduled = true;
        timers.push(setTimeout(send, k.delayMs ?? 0));
      }
    });
    const timeout = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timeout);
      for (const t of timers) clearTimeout(t);
      res({ code, signal, stdout, stderr, ms: performance.now() - t0, timedOut, sent });
    });
  });
}

/** Runs `fn` over `items` with at most `n` at a time; results in order. */
export async function pool<T, R>(items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

/** path (relative) -> what it is: file content hash, folder, link target, FIFO, other. Never opens a FIFO or follows a link. */
export function hashTree(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  const walk = (abs: string, rel: string) => {
    let st;
    try {
      st = lstatSync(abs);
    } catch {
      return;
    }
    if (st.isSymbolicLink()) m.set(rel, 'l:' + readlinkSync(abs));
    else if (st.isFIFO()) m.set(rel, 'p');
    else if (st.isFile())
      m.set(rel, 'f:' + createHash('sha1').update(readFileSync(abs)).digest('hex') + ':' + st.mode.toString(8));
    else if (st.isDirectory()) {
      m.set(rel, 'd:' + st.mode.toString(8));
      for (const e of readdirSync(abs).sort()) walk(join(abs, e), rel === '' ? e : `${rel}/${e}`);
    } else m.set(rel, 'o');
  };
  walk(dir, '');
  return m;
}

/** The differences between two trees, as "+path", "-path", "~path". */
export function diffTrees(a: Map<string, string>, b: Map<string, string>): string[] {
  const d: string[] = [];
  for (const [k, v] of a)
    if (!b.has(k)) d.push(`-${k}`);
    else if (b.get(k) !== v) d.push(`~${k}`);
  for (const k of b.keys()) if (!a.has(k)) d.push(`+${k}`);
  return d;
}

/** Dot-entries with "tmp" in their name in `dir` (the temporary names of atomic writes). */
export function tmpEntries(dir: string): string[] {
  try {
    return readdirSync(dir).filter((e) => e.startsWith('.') && /tmp/i.test(e));
  } catch {
    return [];
  }
}

function safetensorsProblem(file: string): string | null {
  const b = readFileSync(file);
  if (b.length < 8) return `${file}: ${b.length} bytes`;
  const n = Number(b.readBigUInt64LE(0));
  if (8 + n > b.length) return `${file}: header length ${n} past the end`;
  let h: Record<string, { data_offsets?: number[] }>;
  try {
    h = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  } catch {
    return `${file}: header is not JSON`;
  }
  let end = 0;
  for (const [k, v] of Object.entries(h)) if (k !== '__metadata__') end = Math.max(end, v.data_offsets?.[1] ?? 0);
  if (8 + n + end !== b.length) return `${file}: ${b.length} bytes, header says ${8 + n + end}`;
  return null;
}

/** Why `dir` is not a complete output folder (config, weights, tokenizer, report), or null when it is. */
export function incomplete(dir: string): string | null {
  try {
    if (!lstatSync(dir).isDirectory()) return `${dir} is not a folder`;
    const files = readdirSync(dir);
    for (const f of ['config.json', 'tokenizer.json', 'salt-transfer-report.json'])
      if (!files.includes(f)) return `${dir} lacks ${f}`;
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    if (typeof cfg?.vocab_size !== 'number') return `${dir}/config.json has no vocab_size`;
    JSON.parse(readFileSync(join(dir, 'salt-transfer-report.json'), 'utf8'));
    const st = files.filter((f) => f.endsWith('.safetensors'));
    if (!st.length) return `${dir} has no safetensors file`;
    for (const f of st) {
      const p = safetensorsProblem(join(dir, f));
      if (p) return p;
    }
    return null;
  } catch (err) {
    return `${dir}: ${(err as Error).message}`;
  }
}

export type Category = 'crash' | 'hang' | 'uncoded' | 'leftover' | 'silent' | 'modified' | 'contract';
export const CATEGORIES: Category[] = ['crash', 'hang', 'uncoded', 'leftover', 'silent', 'modified', 'contract'];

export interface Violation {
  category: Category;
  /** Case id, e.g. "corrupt#17", with the campaign seed: reproduce with SALT_CAMPAIGN_SEED=<seed> SALT_CAMPAIGN_ONLY=<id>. */
  id: string;
  desc: string;
  detail: string;
}

export const CODED_LINE = /^salt-transfer: (usage error|error) \[(E_[A-Z_]+)\]: (.*)$/m;
export const STACK_LINE = /^\s+at .+\(.+:\d+:\d+\)$/m;

/** The error code printed on stderr, or null. */
export function codeOf(stderr: string): string | null {
  return CODED_LINE.exec(stderr)?.[2] ?? null;
}

export function short(s: string, n = 600): string {
  const t = s.trim();
  return t.length > n ? t.slice(0, n) + ` ... (${t.length} chars)` : t;
}

/** Checks every case must pass: no hang, no crash, a coded error on failure, no stack trace. */
export function processChecks(r: RunResult, v: (c: Category, detail: string) => void): void {
  if (r.timedOut) {
    v('hang', `no exit within the timeout (${Math.round(r.ms)} ms); stderr: ${short(r.stderr, 300)}`);
    return;
  }
  if (r.signal !== null && r.signal !== r.sent) v('crash', `died of ${r.signal}; stderr: ${short(r.stderr)}`);
  if (r.code !== null && ![0, 1, 2, 130].includes(r.code))
    v('crash', `exit code ${r.code}; stderr: ${short(r.stderr)}`);
  if (/Segmentation fault|Aborted|FATAL ERROR|core dumped/.test(r.stderr)) v('crash', `stderr: ${short(r.stderr)}`);
  if (r.code !== null && r.code !== 0) {
    const code = codeOf(r.stderr);
    if (code === null)
      v('uncoded', `exit ${r.code} without a "salt-transfer: error [E_...]: " line; stderr: ${short(r.stderr)}`);
    else if (code === 'E_INTERNAL') v('uncoded', `E_INTERNAL: ${short(r.stderr)}`);
    if (STACK_LINE.test(r.stderr)) v('uncoded', `a JS stack trace on stderr: ${short(r.stderr)}`);
  }
}

/** What a failed (or killed) run must not leave: the out folder, new temp entries, created parents. */
export function leftoverChecks(
  o: { out: string; outParent: string; firstNew?: string; tmpBefore: string[] },
  v: (c: Category, detail: string) => void,
  allowCompleteOut = false,
): void {
  if (existsSync(o.out) || isLink(o.out)) {
    const why = incomplete(o.out);
    if (!allowCompleteOut || why)
      v('leftover', `--out ${o.out} exists after a failure${why ? ` (${why})` : ' (complete)'}`);
  }
  if (o.firstNew && (existsSync(o.firstNew) || isLink(o.firstNew)))
    v('leftover', `parent folder ${o.firstNew} was created and left behind`);
  const extra = tmpEntries(o.outParent).filter((e) => !o.tmpBefore.includes(e));
  if (extra.length) v('leftover', `temporary entries left in ${o.outParent}: ${extra.join(', ')}`);
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
