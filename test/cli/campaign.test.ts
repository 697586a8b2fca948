// A fault-injection and fuzz campaign of the salt-transfer CLI (dist/cli.js), issue 13.
//
// Every case spawns the built CLI (run `npx tsc -p tsconfig.build.json` first) with a timeout and
// checks the CONTRACT: no hang, no crash, a coded one-line error on failure (no E_INTERNAL, no
// stack), nothing left behind on failure (no --out folder, no new ".*tmp*" entry beside it, no
// parent folder created for it), inputs byte-identical, and structure-breaking corruption never
// accepted. Groups: corrupt inputs (seeded mutations of every input kind), signals (SIGKILL,
// SIGINT, SIGTERM at random stages), a full disk (a small tmpfs), --out in or around the inputs,
// --overwrite, FIFOs, symlink loops, bad option values, files given as folders, a missing later
// target, and a few hand-made inputs (empty vocab, invalid UTF-8, deep nesting, a bad decoder).
//
// Environment: SALT_CAMPAIGN_SEED (default 13), SALT_CAMPAIGN_CASES (corrupt-input cases; default
// 160; the signal and full-disk counts scale with it), SALT_CAMPAIGN_ONLY (a regex over case ids,
// e.g. "corrupt#17$", to reproduce one case), SALT_CAMPAIGN_JOBS (children at a time; default 2),
// SALT_CAMPAIGN_KEEP=1 (keep the case folders of failing cases under $TMPDIR/salt-campaign-*).
// The tally goes to the console and to build/campaign-tally.json.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { mulberry32 } from '../helpers/reference.js';
import {
  hasFastText,
  LLM_SPECIALS,
  trainFastText,
  vecText,
  wordLevelTokenizer,
  words,
  writeModelFolder,
} from './campaign/fixtures.js';
import {
  binMutations,
  configMutations,
  type Expect,
  indexMutations,
  type Mutation,
  safetensorsMutations,
  specialsJsonMutations,
  tokenizerConfigMutations,
  tokenizerJsonMutations,
  vecMutations,
  vocabTxtMutations,
} from './campaign/mutations.js';
import {
  CATEGORIES,
  type Category,
  cliJs,
  CODED_LINE,
  codeOf,
  diffTrees,
  hashTree,
  incomplete,
  type KillPlan,
  leftoverChecks,
  pool,
  processChecks,
  root,
  runCli,
  type RunResult,
  short,
  tmpEntries,
  type Violation,
} from './campaign/runner.js';

const SEED = Number(process.env.SALT_CAMPAIGN_SEED ?? 13);
const CASES = Number(process.env.SALT_CAMPAIGN_CASES ?? 160);
const ONLY = process.env.SALT_CAMPAIGN_ONLY ? new RegExp(process.env.SALT_CAMPAIGN_ONLY) : null;
const JOBS = Number(process.env.SALT_CAMPAIGN_JOBS ?? 2);
const SIGNAL_CASES = Math.max(12, Math.round(CASES / 8));
const DISK_CASES = Math.max(4, Math.round(CASES / 40));
/** A child that has not exited after this long hangs (small fixtures finish in about 0.5 s). */
const TIMEOUT_MS = 20_000;
const FIFO_TIMEOUT_MS = 10_000;
/** Usage errors must come before any model is loaded: well under this (node's start-up included, on busy cores). */
const USAGE_MAX_MS = 4_000;

/** Whether this process may mount a tmpfs (root, and not forbidden by the container). */
function canMountTmpfs(): boolean {
  const d = mkdtempSync(join(tmpdir(), 'salt-campaign-mnt-'));
  try {
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d], { encoding: 'utf8' });
    if (m.status !== 0) return false;
    spawnSync('umount', [d]);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}
const canMount = canMountTmpfs();
const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;

function seedOf(group: string, i: number): number {
  let h = (SEED ^ 0x9e3779b9) >>> 0;
  for (const c of `${group}#${i}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

// ---------------------------------------------------------------- bookkeeping

interface CaseRecord {
  id: string;
  group: string;
  desc: string;
  ms: number;
  exit: string;
  violations: Violation[];
}
const records: CaseRecord[] = [];

let ROOT: string;
let FX: string;
let caseNo = 0;

interface Paths {
  caseDir: string;
  inDir: string;
  src: string;
  tgt: string;
  aux: string | null;
  outParent: string;
  out: string;
  firstNew?: string;
}

/** A fresh case folder with copies of the named fixtures: in/src, in/tgt and (optionally) in/<aux file>. */
function newCase(opts: { src?: string; tgt?: string; aux?: 'vec' | 'bin' | null; deepOut?: boolean }): Paths {
  const caseDir = join(ROOT, `case-${++caseNo}`);
  const inDir = join(caseDir, 'in');
  mkdirSync(inDir, { recursive: true });
  const src = join(inDir, 'src');
  const tgt = join(inDir, 'tgt');
  cpSync(join(FX, opts.src ?? 'src'), src, { recursive: true });
  cpSync(join(FX, opts.tgt ?? 'tgt'), tgt, { recursive: true });
  let aux: string | null = null;
  if (opts.aux === 'vec') cpSync(join(FX, 'aux.vec'), (aux = join(inDir, 'aux.vec')));
  if (opts.aux === 'bin') cpSync(join(FX, 'ft.bin'), (aux = join(inDir, 'ft.bin')));
  const outParent = join(caseDir, 'outp');
  mkdirSync(outParent);
  const p: Paths = { caseDir, inDir, src, tgt, aux, outParent, out: join(outParent, 'out') };
  if (opts.deepOut) {
    p.firstNew = join(outParent, 'new1');
    p.out = join(outParent, 'new1', 'new2', 'out');
  }
  return p;
}

interface Expectation {
  /** reject: must not exit 0; either: anything coded; warn: exit 0 only with a report warning; ok: must exit 0. */
  kind: Expect | 'ok';
  exit?: number;
  code?: string | RegExp;
  message?: RegExp;
  maxMs?: number;
  /** Must stop before loading a model (no "load-source" progress line). */
  noLoad?: boolean;
  /** The error must be the only non-progress line on stderr (plus the usage hint). */
  oneLine?: boolean;
  /** --out lies in or around the inputs, or exists already: no leftover checks on it; the whole case folder must stay byte-identical. */
  around?: boolean;
}

/** The common checks of a finished case; returns the violations. */
function judge(
  p: Paths,
  r: RunResult,
  before: Map<string, string>,
  tmpBefore: string[],
  ex: Expectation,
  inputsRoot = p.inDir,
): Violation[] {
  const v: Violation[] = [];
  const add = (category: Category, detail: string) => v.push({ category, id: '', desc: '', detail });
  processChecks(r, add);
  const failed = r.code !== 0;
  if (failed && !r.timedOut && !ex.around)
    leftoverChecks({ out: p.out, outParent: p.outParent, firstNew: p.firstNew, tmpBefore }, add);
  if (r.code === 0 && !ex.around) {
    const why = incomplete(p.out);
    if (why) add('contract', `exit 0 but the output is not complete: ${why}`);
    const extra = tmpEntries(p.outParent).filter((e) => !tmpBefore.includes(e));
    if (extra.length) add('leftover', `exit 0 but temporary entries left in ${p.outParent}: ${extra.join(', ')}`);
    if (ex.kind === 'reject')
      add('silent', `exit 0 on an input that must be rejected; stderr: ${short(r.stderr, 200)}`);
    if (ex.kind === 'warn') {
      let warnings: unknown = undefined;
      try {
        warnings = JSON.parse(readFileSync(join(p.out, 'salt-transfer-report.json'), 'utf8')).warnings;
      } catch {
        /* judged below */
      }
      if (!Array.isArray(warnings) || warnings.length === 0)
        add('silent', `exit 0 without a warning in salt-transfer-report.json (warnings: ${JSON.stringify(warnings)})`);
    }
  }
  if (r.code === 0 && ex.around) add('contract', `exit 0 where the run must be refused (--out ${p.out})`);
  if (ex.kind === 'ok' && r.code !== 0 && !r.timedOut)
    add('contract', `expected exit 0, got ${r.code ?? r.signal}; stderr: ${short(r.stderr)}`);
  if (
    !r.timedOut &&
    ex.exit !== undefined &&
    r.code !== ex.exit &&
    !(r.code === 0 && (ex.kind === 'reject' || ex.around))
  )
    add('contract', `expected exit ${ex.exit}, got ${r.code ?? r.signal}; stderr: ${short(r.stderr)}`);
  if (!r.timedOut && ex.code !== undefined && r.code !== 0) {
    const c = codeOf(r.stderr);
    const okCode = typeof ex.code === 'string' ? c === ex.code : c !== null && ex.code.test(c);
    if (!okCode) add('contract', `expected error code ${ex.code}, got ${c}; stderr: ${short(r.stderr)}`);
  }
  if (!r.timedOut && ex.message && r.code !== 0 && !ex.message.test(CODED_LINE.exec(r.stderr)?.[0] ?? r.stderr))
    add('contract', `the error does not match ${ex.message}; stderr: ${short(r.stderr)}`);
  if (ex.maxMs !== undefined && r.ms > ex.maxMs && !r.timedOut)
    add('contract', `took ${Math.round(r.ms)} ms (limit ${ex.maxMs} ms)`);
  if (ex.noLoad && /load-source/.test(r.stderr))
    add('contract', `a model was loaded before the usage error: ${short(r.stderr)}`);
  if (ex.oneLine && r.code !== 0 && !r.timedOut) {
    const lines = r.stderr
      .split('\n')
      .filter((l) => l.trim() !== '' && !/^\S+: done \(/.test(l) && !/^Run salt-transfer --help/.test(l));
    if (lines.length !== 1) add('contract', `expected a one-line error, got ${lines.length} lines: ${short(r.stderr)}`);
  }
  const d = diffTrees(before, hashTree(inputsRoot));
  if (d.length)
    add('modified', `inputs changed: ${d.slice(0, 12).join(' ')}${d.length > 12 ? ` ... (${d.length})` : ''}`);
  return v;
}

function record(group: string, id: string, desc: string, r: RunResult, v: Violation[]): CaseRecord {
  const rec: CaseRecord = {
    id,
    group,
    desc,
    ms: Math.round(r.ms),
    exit: r.timedOut ? 'timeout' : r.code !== null ? String(r.code) : `signal ${r.signal}`,
    violations: v.map((x) => ({ ...x, id, desc })),
  };
  records.push(rec);
  return rec;
}

interface Case {
  id: string;
  desc: string;
  run: () => Promise<CaseRecord>;
}

/** Runs the group's cases (filtered by SALT_CAMPAIGN_ONLY) and asserts no violations. */
async function runGroup(group: string, cases: Case[], jobs = JOBS): Promise<void> {
  const list = ONLY ? cases.filter((c) => ONLY.test(c.id)) : cases;
  const recs = await pool(list, jobs, (c) => c.run());
  const msgs = recs.flatMap((r) =>
    r.violations.map((x) => `[${x.category}] ${x.id} (SALT_CAMPAIGN_SEED=${SEED}) ${x.desc}: ${x.detail}`),
  );
  expect(msgs, `${group}: ${msgs.length} violations in ${recs.length} cases`).toEqual([]);
}

/** A transfer case: builds the folders, applies `prepare`, runs the CLI, judges. */
function transferCase(o: {
  group: string;
  id: string;
  desc: string | (() => string);
  src?: string;
  tgt?: string;
  aux?: 'vec' | 'bin' | null;
  deepOut?: boolean;
  prepare?: (p: Paths) => void;
  args: (p: Paths) => string[];
  /** A function when the expectation is known only after `prepare` (e.g. the mutation applied). */
  expect: Expectation | (() => Expectation);
  timeoutMs?: number;
  cwd?: (p: Paths) => string;
  kill?: KillPlan;
  /** Extra checks after the run. */
  after?: (p: Paths, r: RunResult, v: (c: Category, detail: string) => void) => void;
}): Case {
  const descOf = () => (typeof o.desc === 'function' ? o.desc() : o.desc);
  return {
    id: o.id,
    desc: descOf(),
    run: async () => {
      const p = newCase({ src: o.src, tgt: o.tgt, aux: o.aux, deepOut: o.deepOut });
      o.prepare?.(p);
      const ex = typeof o.expect === 'function' ? o.expect() : o.expect;
      const hashRoot = ex.around ? p.caseDir : p.inDir;
      const before = hashTree(hashRoot);
      const tmpBefore = tmpEntries(p.outParent);
      const r = await runCli(o.args(p), {
        timeoutMs: o.timeoutMs ?? TIMEOUT_MS,
        cwd: o.cwd?.(p) ?? p.caseDir,
        kill: o.kill,
      });
      const v = judge(p, r, before, tmpBefore, ex, hashRoot);
      o.after?.(p, r, (category, detail) => v.push({ category, id: '', desc: '', detail }));
      const rec = record(o.group, o.id, descOf(), r, v);
      if (!v.length) rmSync(p.caseDir, { recursive: true, force: true });
      return rec;
    },
  };
}

const base = (p: Paths, method = 'mean') => [
  'transfer',
  '--source',
  p.src,
  '--target',
  p.tgt,
  '--out',
  p.out,
  '--method',
  method,
  '--threads',
  '1',
];

// ---------------------------------------------------------------- fixtures

const ALL_WORDS = words(400);

beforeAll(() => {
  expect(existsSync(cliJs), 'dist/cli.js is missing: run npx tsc -p tsconfig.build.json first').toBe(true);
  ROOT = mkdtempSync(join(tmpdir(), 'salt-campaign-'));
  FX = join(ROOT, 'fx');
  // Source LLM: 300 tokens x 8, untied head; single file and sharded. Target PLM: 250 tokens x 6
  // (147 shared words, 100 new); BERT-style PLM: WordPiece tokenizer.json + vocab.txt.
  writeModelFolder({ dir: join(FX, 'src'), words: ALL_WORDS.slice(0, 297), width: 8, seed: 1, tied: false });
  writeModelFolder({
    dir: join(FX, 'srcsh'),
    words: ALL_WORDS.slice(0, 297),
    width: 8,
    seed: 1,
    tied: false,
    sharded: true,
  });
  writeModelFolder({ dir: join(FX, 'tgt'), words: ALL_WORDS.slice(150, 397), width: 6, seed: 2, tied: true });
  writeModelFolder({
    dir: join(FX, 'bert'),
    words: ALL_WORDS.slice(150, 397),
    width: 6,
    seed: 2,
    tied: true,
    bert: true,
  });
  // A source whose output is about 4 MB (a 1M-float extra tensor), for the full disk.
  writeModelFolder({
    dir: join(FX, 'big'),
    words: ALL_WORDS.slice(0, 297),
    width: 8,
    seed: 1,
    tied: false,
    bigTensor: 1 << 20,
  });
  // Medium folders for the signal cases: a run of a few seconds with distinct stages.
  const many = words(24000);
  writeModelFolder({
    dir: join(FX, 'msrc'),
    words: many.slice(0, 12000),
    width: 24,
    seed: 1,
    tied: false,
    bigTensor: 1 << 21,
  });
  writeModelFolder({ dir: join(FX, 'mtgt'), words: many.slice(6000, 24000), width: 16, seed: 2, tied: true });
  // 32,000-row embeddings whose tokenizer.json has an empty model vocab (with and without added tokens).
  for (const [name, keepAdded] of [
    ['empty32k', true],
    ['empty32k-bare', false],
  ] as const) {
    writeModelFolder({ dir: join(FX, name), words: [], width: 4, seed: 3, tied: true, rows: 32000 });
    const tj = JSON.parse(wordLevelTokenizer(LLM_SPECIALS, []));
    tj.model.vocab = {};
    if (!keepAdded) tj.added_tokens = [];
    writeFileSync(join(FX, name, 'tokenizer.json'), JSON.stringify(tj));
  }
  writeFileSync(join(FX, 'aux.vec'), vecText(ALL_WORDS.slice(150, 397), 5, 3));
  const bin = trainFastText(join(ROOT, 'ft-train'), ALL_WORDS, 4);
  if (bin) cpSync(bin, join(FX, 'ft.bin'));
}, 120_000);

afterAll(() => {
  const count = (c: Category) => records.filter((r) => r.violations.some((v) => v.category === c)).length;
  const tally = {
    seed: SEED,
    cases: records.length,
    crashes: count('crash'),
    hangs: count('hang'),
    uncodedErrors: count('uncoded'),
    leftovers: count('leftover'),
    silentlyAccepted: count('silent'),
    modifiedInputs: count('modified'),
    otherContract: count('contract'),
    casesWithViolations: records.filter((r) => r.violations.length).length,
    byGroup: Object.fromEntries(
      [...new Set(records.map((r) => r.group))].map((g) => {
        const rs = records.filter((r) => r.group === g);
        return [
          g,
          {
            cases: rs.length,
            failing: rs.filter((r) => r.violations.length).length,
            ...Object.fromEntries(
              CATEGORIES.map((c) => [c, rs.filter((r) => r.violations.some((v) => v.category === c)).length]),
            ),
          },
        ];
      }),
    ),
    skipped: [
      ...(canMount ? [] : ['full disk: mount -t tmpfs not permitted']),
      ...(hasFastText ? [] : ['fastText .bin aux: the fasttext program is not installed']),
      ...(hasMkfifo ? [] : ['FIFOs: mkfifo not available']),
    ],
    violations: records.flatMap((r) => r.violations.map((v) => ({ ...v, seed: SEED, exit: r.exit, ms: r.ms }))),
    cases_run: records.map((r) => ({
      id: r.id,
      desc: r.desc,
      exit: r.exit,
      ms: r.ms,
      violations: r.violations.length,
    })),
  };
  mkdirSync(join(root, 'build'), { recursive: true });
  writeFileSync(join(root, 'build', 'campaign-tally.json'), JSON.stringify(tally, null, 2) + '\n');
  const { violations: _v, cases_run: _c, byGroup, ...head } = tally;
  void _v;
  void _c;
  console.log(`campaign tally (build/campaign-tally.json): ${JSON.stringify(head)}`);
  for (const [g, t] of Object.entries(byGroup)) console.log(`  ${g}: ${JSON.stringify(t)}`);
  // Failing cases reproduce from the seed; their folders are kept only on request.
  if (ROOT && !process.env.SALT_CAMPAIGN_KEEP) rmSync(ROOT, { recursive: true, force: true });
  else if (ROOT) console.log(`  case folders of failing cases kept under ${ROOT} (SALT_CAMPAIGN_KEEP)`);
});

// ---------------------------------------------------------------- corrupt inputs

interface CorruptTarget {
  fixture: 'src' | 'srcsh' | 'tgt' | 'bert' | 'vec' | 'bin';
  file: string;
  muts: Mutation[];
}
const CORRUPT_TARGETS: CorruptTarget[] = [
  { fixture: 'src', file: 'model.safetensors', muts: safetensorsMutations },
  { fixture: 'srcsh', file: 'model-00001-of-00002.safetensors', muts: safetensorsMutations },
  { fixture: 'srcsh', file: 'model-00002-of-00002.safetensors', muts: safetensorsMutations },
  { fixture: 'srcsh', file: 'model.safetensors.index.json', muts: indexMutations },
  { fixture: 'tgt', file: 'model.safetensors', muts: safetensorsMutations },
  { fixture: 'src', file: 'config.json', muts: configMutations },
  { fixture: 'tgt', file: 'config.json', muts: configMutations },
  { fixture: 'src', file: 'tokenizer.json', muts: tokenizerJsonMutations },
  { fixture: 'tgt', file: 'tokenizer.json', muts: tokenizerJsonMutations },
  { fixture: 'bert', file: 'tokenizer.json', muts: tokenizerJsonMutations },
  { fixture: 'src', file: 'tokenizer_config.json', muts: tokenizerConfigMutations },
  { fixture: 'tgt', file: 'tokenizer_config.json', muts: tokenizerConfigMutations },
  { fixture: 'bert', file: 'tokenizer_config.json', muts: tokenizerConfigMutations },
  { fixture: 'src', file: 'special_tokens_map.json', muts: specialsJsonMutations },
  { fixture: 'tgt', file: 'special_tokens_map.json', muts: specialsJsonMutations },
  { fixture: 'bert', file: 'vocab.txt', muts: vocabTxtMutations },
  { fixture: 'vec', file: 'aux.vec', muts: vecMutations },
  ...(hasFastText ? [{ fixture: 'bin' as const, file: 'ft.bin', muts: binMutations }] : []),
];

function corruptCases(): Case[] {
  const cases: Case[] = [];
  // Each target's mutations in a seeded order; case i takes target i mod T and that target's next mutation.
  const orders = CORRUPT_TARGETS.map((t, k) => {
    const r = mulberry32(seedOf('order', k));
    const idx = t.muts.map((_, j) => j);
    for (let j = idx.length - 1; j > 0; j--) {
      const s = Math.floor(r() * (j + 1));
      [idx[j], idx[s]] = [idx[s], idx[j]];
    }
    return idx;
  });
  for (let i = 0; i < CASES; i++) {
    const t = CORRUPT_TARGETS[i % CORRUPT_TARGETS.length];
    const round = Math.floor(i / CORRUPT_TARGETS.length);
    const order = orders[i % CORRUPT_TARGETS.length];
    const r = mulberry32(seedOf('corrupt', i));
    const method = r() < 0.5 ? 'mean' : 'focus';
    const deepOut = r() < 0.3;
    const withVecAux = t.fixture !== 'vec' && t.fixture !== 'bin' && r() < 0.2;
    const role =
      t.fixture === 'src' || t.fixture === 'srcsh'
        ? 'source'
        : t.fixture === 'vec' || t.fixture === 'bin'
          ? 'aux'
          : 'target';
    const mutSeed = seedOf('mutate', i);
    let chosen: Mutation | null = null;
    const what = `${role} ${t.fixture}/${t.file}`;
    const opts = `--method ${method}${deepOut ? ', deep --out' : ''}${withVecAux ? ', --aux aux.vec' : ''}`;
    cases.push(
      transferCase({
        group: 'corrupt',
        id: `corrupt#${i}`,
        desc: () => (chosen ? `${what}: ${chosen.name} [${chosen.expect}] ${opts}` : what),
        src: t.fixture === 'srcsh' ? 'srcsh' : 'src',
        tgt: t.fixture === 'bert' ? 'bert' : 'tgt',
        aux: t.fixture === 'vec' || withVecAux ? 'vec' : t.fixture === 'bin' ? 'bin' : null,
        deepOut,
        prepare: (p) => {
          const file = role === 'source' ? join(p.src, t.file) : role === 'target' ? join(p.tgt, t.file) : p.aux!;
          const orig = readFileSync(file);
          const mr = mulberry32(mutSeed);
          // A mutation that does not apply to this file falls through to the next one in the order.
          let bytes: Buffer | null = null;
          for (let k = 0; k < order.length && bytes === null; k++) {
            chosen = t.muts[order[(round + k) % order.length]];
            bytes = chosen.apply(orig, mr);
          }
          writeFileSync(file, bytes!);
        },
        args: (p) => [...base(p, method), ...(p.aux ? ['--aux', p.aux] : [])],
        expect: () => ({ kind: chosen!.expect, code: chosen!.code }),
      }),
    );
  }
  return cases;
}

// ---------------------------------------------------------------- signals

const pickOf = <T>(r: () => number, a: readonly T[]): T => a[Math.floor(r() * a.length)];

function signalCases(): Case[] {
  const cases: Case[] = [];
  for (let i = 0; i < SIGNAL_CASES; i++) {
    const r = mulberry32(seedOf('signal', i));
    // The first six cases cover each signal during the write and during the engine on the medium
    // folders; the others are drawn (stage-triggered or at a random time, small or medium folders).
    const sig = (['SIGKILL', 'SIGINT', 'SIGTERM'] as const)[i % 3];
    const fixed = i < 6;
    const double = !fixed && sig === 'SIGINT' && r() < 0.25;
    const medium = fixed || r() < 0.65;
    let plan: KillPlan;
    if (fixed)
      plan =
        i < 3
          ? { sig, afterStage: 'combine', delayMs: 60 + Math.floor(r() * 160) }
          : { sig, afterStage: 'lambda', delayMs: Math.floor(r() * 50) };
    else if (medium && r() >= 0.25) {
      const stage = r() < 0.45 ? 'combine' : pickOf(r, ['load-source', 'load-target', 'aux', 'lambda']);
      plan = { sig, double, afterStage: stage, delayMs: Math.floor(r() * (stage === 'combine' ? 250 : 150)) };
    } else plan = { sig, double, afterMs: Math.floor(r() * (medium ? 900 : 700)) };
    const deepOut = r() < 0.3;
    const method = medium ? 'salt-local' : pickOf(r, ['mean', 'focus']);
    const id = `signal#${i}`;
    const desc = `${double ? 'SIGINT twice' : sig} ${plan.afterStage ? `${plan.delayMs} ms after "${plan.afterStage}: done"` : `${plan.afterMs} ms after the start`}, ${medium ? 'medium (12k -> 18k tokens)' : 'small'} folders, --method ${method}${deepOut ? ', deep --out' : ''}`;
    cases.push({
      id,
      desc,
      run: async () => {
        const p = newCase({ src: medium ? 'msrc' : 'src', tgt: medium ? 'mtgt' : 'tgt', deepOut });
        const before = hashTree(p.inDir);
        const tmpBefore = tmpEntries(p.outParent);
        const args = base(p, method);
        const r1 = await runCli(args, { timeoutMs: 90_000, kill: plan });
        const v: Violation[] = [];
        const add = (category: Category, detail: string) => v.push({ category, id, desc, detail });
        processChecks(r1, add);
        const published = r1.stderr.includes('write: done');
        let extraDesc = '';
        if (r1.timedOut) {
          /* a hang, reported by processChecks */
        } else if (r1.sent === null) {
          extraDesc = ' (exited before the signal)';
          if (r1.code !== 0) add('contract', `exit ${r1.code} without a signal; stderr: ${short(r1.stderr)}`);
          else if (incomplete(p.out)) add('contract', `exit 0 but ${incomplete(p.out)}`);
        } else if (sig !== 'SIGKILL' && !double) {
          if (r1.code === 0 && published) {
            const why = incomplete(p.out);
            if (why) add('contract', `exit 0 after ${sig} but the output is not complete: ${why}`);
          } else if (r1.signal === sig && published && !incomplete(p.out)) {
            // The signal landed after the run had finished, while Node was exiting (its signal
            // handlers are closed by then): the output is complete, as after exit 0.
            extraDesc = ' (signal during exit)';
          } else {
            // A signal that lands while Node itself starts (before any JavaScript of ours ran, so
            // nothing was printed or written) ends the process the default way; that is allowed.
            const beforeStart = r1.signal === sig && r1.stderr === '';
            if (r1.code !== 130 && !beforeStart)
              add(
                'contract',
                `${sig} during the run: expected exit 130 and no folder, got ${r1.code ?? `death by ${r1.signal}`}; stderr: ${short(r1.stderr, 300)}`,
              );
            leftoverChecks({ out: p.out, outParent: p.outParent, firstNew: p.firstNew, tmpBefore }, add);
          }
        } else {
          // SIGKILL (or Ctrl-C twice: exit at once): the folder, if any, must be complete; the next run must succeed and clean up.
          // As for one signal: death by SIGINT is allowed only before Node runs our code (nothing
          // printed) or while a finished run exits (its output published and complete).
          const exitingAfterRun = r1.signal === 'SIGINT' && published && !incomplete(p.out);
          if (
            double &&
            r1.code !== 130 &&
            r1.code !== 0 &&
            !(r1.signal === 'SIGINT' && r1.stderr === '') &&
            !exitingAfterRun
          )
            add(
              'contract',
              `SIGINT twice: expected exit 130, got ${r1.code ?? `death by ${r1.signal}`}; stderr: ${short(r1.stderr, 300)}`,
            );
          const outExists = existsSync(p.out);
          if (outExists) {
            const why = incomplete(p.out);
            if (why) add('leftover', `a half-written folder is published at --out after ${sig}: ${why}`);
          }
          const r2 = await runCli(outExists ? [...args, '--overwrite'] : args, { timeoutMs: 90_000 });
          processChecks(r2, add);
          if (r2.code !== 0)
            add(
              'contract',
              `the rerun into the same --out after ${double ? 'SIGINT twice' : sig} failed: exit ${r2.code ?? r2.signal}; stderr: ${short(r2.stderr)}`,
            );
          else if (incomplete(p.out)) add('contract', `the rerun exited 0 but ${incomplete(p.out)}`);
          const dirs = [
            p.outParent,
            ...(p.firstNew ? [join(p.outParent, 'new1'), join(p.outParent, 'new1', 'new2')] : []),
          ];
          for (const d of dirs) {
            const left = tmpEntries(d).filter((e) => d !== p.outParent || !tmpBefore.includes(e));
            if (left.length)
              add(
                'leftover',
                `after ${double ? 'SIGINT twice' : sig} and a successful rerun, temporary entries of the killed run remain in ${d}: ${left.join(', ')}`,
              );
          }
        }
        const d = diffTrees(before, hashTree(p.inDir));
        if (d.length) add('modified', `inputs changed: ${d.slice(0, 12).join(' ')}`);
        const rec = record('signals', id, desc + extraDesc, r1, v);
        for (const x of rec.violations) x.desc = rec.desc;
        if (!v.length) rmSync(p.caseDir, { recursive: true, force: true });
        return rec;
      },
    });
  }
  return cases;
}

// ---------------------------------------------------------------- full disk

function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir)) n += statSync(join(dir, e)).size;
  return n;
}

function diskCases(outputBytes: () => number): Case[] {
  const cases: Case[] = [];
  for (let i = 0; i < DISK_CASES; i++) {
    const r = mulberry32(seedOf('disk', i));
    const frac = 0.03 + 0.87 * r();
    const deepOut = r() < 0.4;
    const method = pickOf(r, ['mean', 'focus']);
    const id = `disk#${i}`;
    let desc = `tmpfs of ${(frac * 100).toFixed(0)}% of the output size${deepOut ? ', deep --out' : ''}, --method ${method}`;
    cases.push({
      id,
      desc,
      run: async () => {
        const size = Math.max(16384, Math.round((outputBytes() * frac) / 4096) * 4096);
        desc = `tmpfs size=${size} (${(frac * 100).toFixed(0)}% of the ${outputBytes()}-byte output)${deepOut ? ', deep --out' : ''}, --method ${method}`;
        const p = newCase({ src: 'big', deepOut });
        const mnt = join(p.caseDir, 'mnt');
        mkdirSync(mnt);
        const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt], { encoding: 'utf8' });
        const v: Violation[] = [];
        const add = (category: Category, detail: string) => v.push({ category, id, desc, detail });
        let r: RunResult;
        try {
          expect(m.status, `mount failed: ${m.stderr}`).toBe(0);
          p.outParent = mnt;
          p.out = deepOut ? join(mnt, 'new1', 'new2', 'out') : join(mnt, 'out');
          p.firstNew = deepOut ? join(mnt, 'new1') : undefined;
          const before = hashTree(p.inDir);
          r = await runCli(base(p, method), { timeoutMs: TIMEOUT_MS });
          for (const x of judge(p, r, before, [], { kind: 'either' })) add(x.category, x.detail);
          if (r.code !== 0 && r.code !== 1 && !r.timedOut)
            add('contract', `a full disk: expected exit 1, got ${r.code ?? r.signal}`);
          if (r.code !== 0) {
            const left = readdirSync(mnt);
            if (left.length) add('leftover', `a full disk: the file system still holds ${left.join(', ')}`);
          }
        } finally {
          if (spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
        }
        const rec = record('disk', id, desc, r!, v);
        for (const x of rec.violations) x.desc = desc;
        if (!v.length) rmSync(p.caseDir, { recursive: true, force: true });
        return rec;
      },
    });
  }
  return cases;
}

// ---------------------------------------------------------------- --out in or around the inputs

function aroundCases(): Case[] {
  const spots: Array<{
    name: string;
    out: (p: Paths) => string;
    cwd?: (p: Paths) => string;
    source?: (p: Paths) => string;
  }> = [
    { name: '--out = --source', out: (p) => p.src },
    { name: '--out = --target', out: (p) => p.tgt },
    { name: '--out = the folder holding both inputs', out: (p) => p.inDir },
    { name: '--out = the grandparent of the inputs', out: (p) => p.caseDir },
    { name: '--out inside --source', out: (p) => join(p.src, 'sub') },
    { name: '--out deep inside --target', out: (p) => join(p.tgt, 'a', 'b') },
    { name: '--out . with the inputs in cwd', out: () => '.', cwd: (p) => p.inDir },
    { name: '--out .. from inside --source', out: () => '..', cwd: (p) => p.src },
    { name: '--out = a symlink to --source', out: (p) => join(p.inDir, 'lsrc') },
    { name: '--out inside --source through a symlinked folder', out: (p) => join(p.inDir, 'self', 'src', 'new') },
    {
      name: '--source through a symlink, --out = its real path',
      out: (p) => p.src,
      source: (p) => join(p.inDir, 'lsrc'),
    },
    { name: '--out = src/../tgt (not normalised)', out: (p) => `${p.src}/../tgt` },
    { name: '--out = a symlink to the folder holding the inputs', out: (p) => join(p.caseDir, 'lin') },
  ];
  const cases: Case[] = [];
  spots.forEach((s, k) => {
    for (const overwrite of [false, true]) {
      const id = `around#${k}${overwrite ? 'o' : ''}`;
      cases.push(
        transferCase({
          group: 'around',
          id,
          desc: `${s.name}${overwrite ? ' --overwrite' : ''}`,
          prepare: (p) => {
            symlinkSync(p.src, join(p.inDir, 'lsrc'));
            symlinkSync('.', join(p.inDir, 'self'));
            symlinkSync(p.inDir, join(p.caseDir, 'lin'));
            p.out = s.out(p);
          },
          args: (p) => [
            'transfer',
            '--source',
            s.source?.(p) ?? p.src,
            '--target',
            p.tgt,
            '--out',
            p.out,
            '--method',
            'mean',
            '--threads',
            '1',
            ...(overwrite ? ['--overwrite'] : []),
          ],
          cwd: s.cwd,
          expect: { kind: 'reject', exit: 2, code: 'E_ARGUMENT', around: true },
        }),
      );
    }
  });
  return cases;
}

// ---------------------------------------------------------------- --overwrite

function overwriteCases(): Case[] {
  const snapshot = (p: Paths) =>
    writeFileSync(join(p.caseDir, 'outp-before.json'), JSON.stringify([...hashTree(p.outParent)]));
  const restore = (p: Paths, _r: RunResult, v: (c: Category, d: string) => void) => {
    const before = new Map<string, string>(JSON.parse(readFileSync(join(p.caseDir, 'outp-before.json'), 'utf8')));
    const d = diffTrees(before, hashTree(p.outParent));
    if (d.length) v('modified', `the existing --out changed: ${d.slice(0, 12).join(' ')}`);
  };
  const mine = (p: Paths) => {
    mkdirSync(p.out);
    writeFileSync(join(p.out, 'notes.txt'), 'my own work\n');
    mkdirSync(join(p.out, 'sub'));
    writeFileSync(join(p.out, 'sub', 'model.safetensors'), 'not a model');
  };
  const refused = { kind: 'reject' as const, exit: 1, code: 'E_EXISTS', around: true };
  const cases: Case[] = [
    transferCase({
      group: 'overwrite',
      id: 'overwrite#0',
      desc: '--overwrite on a non-empty folder salt-transfer did not write',
      prepare: (p) => (mine(p), snapshot(p)),
      args: (p) => [...base(p), '--overwrite'],
      expect: refused,
      after: restore,
    }),
    transferCase({
      group: 'overwrite',
      id: 'overwrite#1',
      desc: 'no --overwrite, a non-empty folder salt-transfer did not write',
      prepare: (p) => (mine(p), snapshot(p)),
      args: (p) => base(p),
      expect: refused,
      after: restore,
    }),
    transferCase({
      group: 'overwrite',
      id: 'overwrite#2',
      desc: '--overwrite on a regular file',
      prepare: (p) => (writeFileSync(p.out, 'a file\n'), snapshot(p)),
      args: (p) => [...base(p), '--overwrite'],
      expect: refused,
      after: restore,
    }),
    transferCase({
      group: 'overwrite',
      id: 'overwrite#3',
      desc: 'no --overwrite, a folder salt-transfer wrote',
      prepare: (p) => {
        const r = spawnSync(process.execPath, [cliJs, ...base(p)], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        snapshot(p);
      },
      args: (p) => base(p, 'focus'),
      expect: refused,
      after: restore,
    }),
    transferCase({
      group: 'overwrite',
      id: 'overwrite#4',
      desc: '--overwrite on a folder salt-transfer wrote (replaced)',
      prepare: (p) => {
        const r = spawnSync(process.execPath, [cliJs, ...base(p)], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        writeFileSync(join(p.out, 'stale-extra.txt'), 'from before\n');
      },
      args: (p) => [...base(p, 'focus'), '--overwrite'],
      expect: { kind: 'ok', exit: 0 },
      after: (p, r, v) => {
        if (r.code !== 0) return;
        const rep = JSON.parse(readFileSync(join(p.out, 'salt-transfer-report.json'), 'utf8'));
        if (rep?.transfer?.method !== 'focus')
          v('contract', `the replaced folder's report says method ${rep?.transfer?.method}, expected focus`);
        if (existsSync(join(p.out, 'stale-extra.txt')))
          v('contract', 'the old folder was not replaced (stale-extra.txt is still there)');
      },
    }),
  ];
  return cases;
}

// ---------------------------------------------------------------- FIFOs and symlink loops

function specialFileCases(kind: 'fifo' | 'loop'): Case[] {
  const names =
    kind === 'fifo'
      ? ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
      : ['tokenizer_config.json', 'config.json', 'tokenizer.json', 'special_tokens_map.json'];
  const make = (path: string) => {
    rmSync(path, { force: true });
    if (kind === 'fifo') execFileSync('mkfifo', [path]);
    else symlinkSync(basename(path), path);
  };
  const what = kind === 'fifo' ? 'a FIFO' : 'a symlink loop';
  const cases: Case[] = [];
  let k = 0;
  for (const role of ['source', 'target'] as const) {
    for (const name of names) {
      cases.push(
        transferCase({
          group: kind,
          id: `${kind}#${k++}`,
          desc: `${what} as the ${role}'s ${name}`,
          prepare: (p) => make(join(role === 'source' ? p.src : p.tgt, name)),
          args: (p) => base(p),
          expect: { kind: 'reject', exit: 1, code: /^E_(?!INTERNAL)/, message: new RegExp(name.replace(/\./g, '\\.')) },
          timeoutMs: kind === 'fifo' ? FIFO_TIMEOUT_MS : TIMEOUT_MS,
        }),
      );
    }
  }
  for (const aux of ['vec', 'bin'] as const) {
    if (aux === 'bin' && !hasFastText) continue;
    cases.push(
      transferCase({
        group: kind,
        id: `${kind}#${k++}`,
        desc: `${what} as --aux (${aux === 'vec' ? 'aux.vec' : 'ft.bin'})`,
        aux,
        prepare: (p) => make(p.aux!),
        args: (p) => [...base(p, 'focus'), '--aux', p.aux!],
        expect: { kind: 'reject', exit: 1, code: /^E_(?!INTERNAL)/, message: aux === 'vec' ? /aux\.vec/ : /ft\.bin/ },
        timeoutMs: kind === 'fifo' ? FIFO_TIMEOUT_MS : TIMEOUT_MS,
      }),
    );
  }
  return cases;
}

// ---------------------------------------------------------------- option values, files as folders, a missing later target

function optionCases(): Case[] {
  const bad: Array<[string, (p: Paths) => string[]]> = [
    ['--lambda 0x1', (p) => [...base(p, 'salt-local'), '--lambda', '0x1']],
    [
      'a repeated --source',
      (p) => [
        'transfer',
        '--source',
        p.src,
        '--source',
        p.tgt,
        '--target',
        p.tgt,
        '--out',
        p.out,
        '--method',
        'salt-local',
        '--threads',
        '1',
      ],
    ],
    [
      '--out ""',
      (p) => [
        'transfer',
        '--source',
        p.src,
        '--target',
        p.tgt,
        '--out',
        '',
        '--method',
        'salt-local',
        '--threads',
        '1',
      ],
    ],
    ['--aux ""', (p) => [...base(p, 'salt-local'), '--aux', '']],
    ['--K 1000000000', (p) => [...base(p, 'salt-local'), '--K', '1000000000']],
    ['--pad-to-multiple-of 1000000000', (p) => [...base(p, 'salt-local'), '--pad-to-multiple-of', '1000000000']],
    ['--seed -1', (p) => [...base(p, 'salt-local'), '--seed', '-1']],
    [
      '--threads abc',
      (p) => [
        'transfer',
        '--source',
        p.src,
        '--target',
        p.tgt,
        '--out',
        p.out,
        '--method',
        'salt-local',
        '--threads',
        'abc',
      ],
    ],
  ];
  return bad.map(([name, args], k) =>
    transferCase({
      group: 'options',
      id: `options#${k}`,
      desc: name,
      args,
      cwd: (p) => p.outParent,
      expect: { kind: 'reject', exit: 2, code: 'E_ARGUMENT', noLoad: true, maxMs: USAGE_MAX_MS },
    }),
  );
}

function folderArgCases(): Case[] {
  // A file where a folder is expected is a bad option value: a usage error (exit 2) naming the path.
  const mustBeFolder = { kind: 'reject' as const, exit: 2, message: /must be a folder/ };
  return [
    transferCase({
      group: 'folders',
      id: 'folders#0',
      desc: 'a file as --source',
      args: (p) => [
        'transfer',
        '--source',
        join(p.src, 'config.json'),
        '--target',
        p.tgt,
        '--out',
        p.out,
        '--method',
        'mean',
      ],
      expect: mustBeFolder,
    }),
    transferCase({
      group: 'folders',
      id: 'folders#1',
      desc: 'a file as --target',
      args: (p) => [
        'transfer',
        '--source',
        p.src,
        '--target',
        join(p.tgt, 'tokenizer.json'),
        '--out',
        p.out,
        '--method',
        'mean',
      ],
      expect: mustBeFolder,
    }),
    transferCase({
      group: 'folders',
      id: 'folders#2',
      desc: 'a file as the second --target',
      args: (p) => [...base(p), '--target', join(p.tgt, 'model.safetensors'), '--out', join(p.outParent, 'out2')],
      expect: mustBeFolder,
      after: (p, _r, v) => existsSync(join(p.outParent, 'out2')) && v('leftover', 'out2 exists'),
    }),
    ...[1, 2].map((k) =>
      transferCase({
        group: 'folders',
        id: `folders#${2 + k}`,
        desc: `a missing --target after ${k} good one(s): nothing written`,
        args: (p) => {
          const a = [...base(p)];
          for (let j = 1; j < k; j++) a.push('--target', p.tgt, '--out', join(p.outParent, `out${j + 1}`));
          return [...a, '--target', join(p.inDir, 'no-such-plm'), '--out', join(p.outParent, 'out-last')];
        },
        expect: { kind: 'reject', exit: 1, code: 'E_NOT_FOUND', message: /no-such-plm/ },
        after: (p, _r, v) => {
          for (const e of readdirSync(p.outParent))
            v('leftover', `a missing later --target: ${join(p.outParent, e)} was written`);
        },
      }),
    ),
  ];
}

// ---------------------------------------------------------------- hand-made inputs

function specialInputCases(): Case[] {
  /** Sets the byte after the start of `needle` (the token's first letter) to 0xff, which UTF-8 never uses. */
  const badUtf8 = (file: string, needle: string) => {
    const b = readFileSync(file);
    const at = b.indexOf(Buffer.from(needle));
    expect(at, `${JSON.stringify(needle)} in ${file}`).toBeGreaterThanOrEqual(0);
    b[at + 1] = 0xff;
    writeFileSync(file, b);
  };
  const deepConfig = (file: string) => {
    const cfg = readFileSync(file, 'utf8').trim();
    writeFileSync(file, cfg.slice(0, -1) + `, "campaign_deep": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
  };
  const seq0 = (file: string) => {
    const j = JSON.parse(readFileSync(file, 'utf8'));
    j.decoder = { type: 'Sequence', decoders: 0 };
    writeFileSync(file, JSON.stringify(j));
  };
  const word = ALL_WORDS[200]; // shared by source and target
  const oneLine = { kind: 'reject' as const, exit: 1, code: /^E_(?!INTERNAL)/, oneLine: true };
  let k = 0;
  const c = (desc: string, o: Partial<Parameters<typeof transferCase>[0]>) =>
    transferCase({ group: 'inputs', id: `inputs#${k++}`, desc, args: (p) => base(p), expect: oneLine, ...o });
  return [
    c('target: a 32,000-row embedding, tokenizer.json with an empty model vocab (3 added tokens)', {
      tgt: 'empty32k',
      expect: { kind: 'warn' },
    }),
    c('target: a 32,000-row embedding, tokenizer.json with no tokens at all', {
      tgt: 'empty32k-bare',
      expect: { kind: 'warn' },
    }),
    c('source: a 32,000-row embedding, tokenizer.json with an empty model vocab (3 added tokens)', {
      src: 'empty32k',
      expect: { kind: 'warn' },
    }),
    c('source: a 32,000-row embedding, tokenizer.json with no tokens at all', {
      src: 'empty32k-bare',
      expect: { kind: 'warn' },
    }),
    c('source tokenizer.json: invalid UTF-8 in a token', {
      prepare: (p) => badUtf8(join(p.src, 'tokenizer.json'), `"${word}"`),
      expect: { kind: 'reject', exit: 1, code: 'E_FORMAT' },
    }),
    c('target tokenizer.json: invalid UTF-8 in a token', {
      prepare: (p) => badUtf8(join(p.tgt, 'tokenizer.json'), `"${word}"`),
      expect: { kind: 'reject', exit: 1, code: 'E_FORMAT' },
    }),
    c('BERT target vocab.txt (beside tokenizer.json): invalid UTF-8 in a token', {
      tgt: 'bert',
      prepare: (p) => badUtf8(join(p.tgt, 'vocab.txt'), `\n${word}\n`),
      expect: { kind: 'reject', exit: 1, code: 'E_FORMAT' },
    }),
    c('BERT target with vocab.txt only (no tokenizer.json), invalid UTF-8 in a token', {
      tgt: 'bert',
      prepare: (p) => {
        rmSync(join(p.tgt, 'tokenizer.json'));
        badUtf8(join(p.tgt, 'vocab.txt'), `\n${word}\n`);
      },
      expect: { kind: 'reject', exit: 1, code: /^E_(?!INTERNAL)/ },
    }),
    // Folders are read through tokenizer.json only: a SentencePiece .model or a GGUF file alone must give a coded error, not be ignored.
    ...(['tokenizer.model', 'model.gguf'] as const).map((f) =>
      c(`target with a corrupt ${f} instead of tokenizer.json`, {
        prepare: (p) => {
          rmSync(join(p.tgt, 'tokenizer.json'));
          writeFileSync(
            join(p.tgt, f),
            Buffer.from(f === 'model.gguf' ? 'GGUF\x03\x00\x00\x00garbage' : '\x0a\x05hello\x15garbage', 'latin1'),
          );
        },
        expect: { kind: 'reject', exit: 1, code: /^E_(?!INTERNAL)/ },
      }),
    ),
    c('source config.json: a value nested 100,000 levels deep', {
      prepare: (p) => deepConfig(join(p.src, 'config.json')),
    }),
    c('target config.json: a value nested 100,000 levels deep', {
      prepare: (p) => deepConfig(join(p.tgt, 'config.json')),
    }),
    c('source tokenizer.json: decoder {"type":"Sequence","decoders":0}', {
      prepare: (p) => seq0(join(p.src, 'tokenizer.json')),
    }),
    c('target tokenizer.json: decoder {"type":"Sequence","decoders":0}', {
      prepare: (p) => seq0(join(p.tgt, 'tokenizer.json')),
    }),
  ];
}

const LONG = 1_800_000;

describe('CLI campaign', () => {
  it(
    'bad option values: exit 2 (E_ARGUMENT) before any model is loaded',
    async () => runGroup('options', optionCases()),
    LONG,
  );
  it(
    'a file as --source / --target (usage error, exit 2), a missing later --target (exit 1): nothing written',
    async () => runGroup('folders', folderArgCases()),
    LONG,
  );
  it(
    '--out in or around the inputs (with and without --overwrite, through symlinks): refused, inputs untouched',
    async () => runGroup('around', aroundCases()),
    LONG,
  );
  it(
    '--overwrite: refused on folders salt-transfer did not write, replaces its own',
    async () => runGroup('overwrite', overwriteCases()),
    LONG,
  );
  it.skipIf(!hasMkfifo)(
    'FIFOs as input files: no hang, a coded error naming the file',
    async () => runGroup('fifo', specialFileCases('fifo'), 16),
    LONG,
  );
  it(
    'symlink loops as input files: a coded error naming the file',
    async () => runGroup('loop', specialFileCases('loop')),
    LONG,
  );
  it(
    'hand-made inputs: empty vocab, invalid UTF-8, deep nesting, a bad decoder',
    async () => runGroup('inputs', specialInputCases()),
    LONG,
  );
  it(
    `corrupt inputs: ${CASES} seeded mutations of every input kind`,
    async () => runGroup('corrupt', corruptCases()),
    LONG,
  );
  it(
    `signals: ${SIGNAL_CASES} SIGKILL / SIGINT / SIGTERM at random stages`,
    async () => runGroup('signals', signalCases()),
    LONG,
  );
  it.skipIf(!canMount)(
    `a full disk: ${DISK_CASES} runs onto a small tmpfs`,
    async () => {
      let bytes = 0;
      const outputBytes = () => {
        if (!bytes) {
          const dir = join(ROOT, 'disk-baseline');
          const r = spawnSync(
            process.execPath,
            [
              cliJs,
              'transfer',
              '--source',
              join(FX, 'big'),
              '--target',
              join(FX, 'tgt'),
              '--out',
              dir,
              '--method',
              'mean',
              '--threads',
              '1',
            ],
            { encoding: 'utf8' },
          );
          expect(r.status, r.stderr).toBe(0);
          bytes = folderBytes(dir);
        }
        return bytes;
      };
      await runGroup('disk', diskCases(outputBytes), 1);
    },
    LONG,
  );
});
