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
// 200, the signal and full-disk counts scale with it), SALT_CAMPAIGN_ONLY (a regex over case ids,
// e.g. "corrupt#17$", to reproduce one case), SALT_CAMPAIGN_JOBS (children at a time; default 2).
// The tally goes to the console and to build/campaign-tally.json.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { mulberry32 } from '../helpers/reference.js';
import { hasFastText, trainFastText, vecText, words, wordLevelTokenizer, writeModelFolder, LLM_SPECIALS } from './campaign/fixtures.js';
import {
  binMutations,
  configMutations,
  indexMutations,
  safetensorsMutations,
  specialsJsonMutations,
  tokenizerJsonMutations,
  vecMutations,
  vocabTxtMutations,
  type Expect,
  type Mutation,
} from './campaign/mutations.js';
import {
  CATEGORIES,
  cliJs,
  codeOf,
  CODED_LINE,
  diffTrees,
  hashTree,
  incomplete,
  leftoverChecks,
  pool,
  processChecks,
  root,
  runCli,
  short,
  tmpEntries,
  type Category,
  type KillPlan,
  type RunResult,
  type Violation,
} from './campaign/runner.js';

const SEED = Number(process.env.SALT_CAMPAIGN_SEED ?? 13);
const CASES = Number(process.env.SALT_CAMPAIGN_CASES ?? 200);
const ONLY = process.env.SALT_CAMPAIGN_ONLY ? new RegExp(process.env.SALT_CAMPAIGN_ONLY) : null;
const JOBS = Number(process.env.SALT_CAMPAIGN_JOBS ?? 2);
const SIGNAL_CASES = Math.max(6, Math.round(CASES / 10));
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
}

/** The common checks of a finished case; returns the violations. */
function judge(p: Paths, r: RunResult, before: Map<string, string>, tmpBefore: string[], ex: Expectation, inputsRoot = p.inDir): Violation[] {
  const v: Violation[] = [];
  const add = (category: Category, detail: string) => v.push({ category, id: '', desc: '', detail });
  processChecks(r, add);
  const failed = r.code !== 0;
  if (failed && !r.timedOut) leftoverChecks({ out: p.out, outParent: p.outParent, firstNew: p.firstNew, tmpBefore }, add);
  if (r.code === 0) {
    const why = incomplete(p.out);
    if (why) add('contract', `exit 0 but the output is not complete: ${why}`);
    const extra = tmpEntries(p.outParent).filter((e) => !tmpBefore.includes(e));
    if (extra.length) add('leftover', `exit 0 but temporary entries left in ${p.outParent}: ${extra.join(', ')}`);
    if (ex.kind === 'reject') add('silent', `exit 0 on an input that must be rejected; stderr: ${short(r.stderr, 200)}`);
    if (ex.kind === 'warn') {
      let warnings: unknown = undefined;
      try {
        warnings = JSON.parse(readFileSync(join(p.out, 'salt-transfer-report.json'), 'utf8')).warnings;
      } catch {
        /* judged below */
      }
      if (!Array.isArray(warnings) || warnings.length === 0) add('silent', `exit 0 without a warning in salt-transfer-report.json (warnings: ${JSON.stringify(warnings)})`);
    }
  }
  if (ex.kind === 'ok' && r.code !== 0 && !r.timedOut) add('contract', `expected exit 0, got ${r.code ?? r.signal}; stderr: ${short(r.stderr)}`);
  if (!r.timedOut && ex.exit !== undefined && r.code !== ex.exit) add('contract', `expected exit ${ex.exit}, got ${r.code ?? r.signal}; stderr: ${short(r.stderr)}`);
  if (!r.timedOut && ex.code !== undefined && r.code !== 0) {
    const c = codeOf(r.stderr);
    const okCode = typeof ex.code === 'string' ? c === ex.code : c !== null && ex.code.test(c);
    if (!okCode) add('contract', `expected error code ${ex.code}, got ${c}; stderr: ${short(r.stderr)}`);
  }
  if (!r.timedOut && ex.message && r.code !== 0 && !ex.message.test(CODED_LINE.exec(r.stderr)?.[0] ?? r.stderr)) add('contract', `the error does not match ${ex.message}; stderr: ${short(r.stderr)}`);
  if (ex.maxMs !== undefined && r.ms > ex.maxMs && !r.timedOut) add('contract', `took ${Math.round(r.ms)} ms (limit ${ex.maxMs} ms)`);
  if (ex.noLoad && /load-source/.test(r.stderr)) add('contract', `a model was loaded before the usage error: ${short(r.stderr)}`);
  if (ex.oneLine && r.code !== 0 && !r.timedOut) {
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/^\S+: done \(/.test(l) && !/^Run salt-transfer --help/.test(l));
    if (lines.length !== 1) add('contract', `expected a one-line error, got ${lines.length} lines: ${short(r.stderr)}`);
  }
  const d = diffTrees(before, hashTree(inputsRoot));
  if (d.length) add('modified', `inputs changed: ${d.slice(0, 12).join(' ')}${d.length > 12 ? ` ... (${d.length})` : ''}`);
  return v;
}

function record(group: string, id: string, desc: string, r: RunResult, v: Violation[]): CaseRecord {
  const rec: CaseRecord = { id, group, desc, ms: Math.round(r.ms), exit: r.timedOut ? 'timeout' : r.code !== null ? String(r.code) : `signal ${r.signal}`, violations: v.map((x) => ({ ...x, id, desc })) };
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
  const msgs = recs.flatMap((r) => r.violations.map((x) => `[${x.category}] ${x.id} (SALT_CAMPAIGN_SEED=${SEED}) ${x.desc}: ${x.detail}`));
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
}): Case {
  const descOf = () => (typeof o.desc === 'function' ? o.desc() : o.desc);
  return {
    id: o.id,
    desc: descOf(),
    run: async () => {
      const p = newCase({ src: o.src, tgt: o.tgt, aux: o.aux, deepOut: o.deepOut });
      o.prepare?.(p);
      const ex = typeof o.expect === 'function' ? o.expect() : o.expect;
      const before = hashTree(p.inDir);
      const tmpBefore = tmpEntries(p.outParent);
      const r = await runCli(o.args(p), { timeoutMs: o.timeoutMs ?? TIMEOUT_MS, cwd: o.cwd?.(p) ?? p.caseDir, kill: o.kill });
      const v = judge(p, r, before, tmpBefore, ex);
      const rec = record(o.group, o.id, descOf(), r, v);
      if (!v.length) rmSync(p.caseDir, { recursive: true, force: true });
      return rec;
    },
  };
}

const base = (p: Paths, method = 'mean') => ['transfer', '--source', p.src, '--target', p.tgt, '--out', p.out, '--method', method, '--threads', '1'];

// ---------------------------------------------------------------- fixtures

const ALL_WORDS = words(400);

beforeAll(() => {
  expect(existsSync(cliJs), 'dist/cli.js is missing: run npx tsc -p tsconfig.build.json first').toBe(true);
  ROOT = mkdtempSync(join(tmpdir(), 'salt-campaign-'));
  FX = join(ROOT, 'fx');
  // Source LLM: 300 tokens x 8, untied head; single file and sharded. Target PLM: 250 tokens x 6
  // (147 shared words, 100 new); BERT-style PLM: WordPiece tokenizer.json + vocab.txt.
  writeModelFolder({ dir: join(FX, 'src'), words: ALL_WORDS.slice(0, 297), width: 8, seed: 1, tied: false });
  writeModelFolder({ dir: join(FX, 'srcsh'), words: ALL_WORDS.slice(0, 297), width: 8, seed: 1, tied: false, sharded: true });
  writeModelFolder({ dir: join(FX, 'tgt'), words: ALL_WORDS.slice(150, 397), width: 6, seed: 2, tied: true });
  writeModelFolder({ dir: join(FX, 'bert'), words: ALL_WORDS.slice(150, 397), width: 6, seed: 2, tied: true, bert: true });
  // A source whose output is about 4 MB (a 1M-float extra tensor), for the full disk.
  writeModelFolder({ dir: join(FX, 'big'), words: ALL_WORDS.slice(0, 297), width: 8, seed: 1, tied: false, bigTensor: 1 << 20 });
  // Medium folders for the signal cases: a run of a few seconds with distinct stages.
  const many = words(24000);
  writeModelFolder({ dir: join(FX, 'msrc'), words: many.slice(0, 12000), width: 24, seed: 1, tied: false, bigTensor: 1 << 21 });
  writeModelFolder({ dir: join(FX, 'mtgt'), words: many.slice(6000, 24000), width: 16, seed: 2, tied: true });
  // 32,000-row embeddings whose tokenizer.json has an empty model vocab (with and without added tokens).
  for (const [name, keepAdded] of [['empty32k', true], ['empty32k-bare', false]] as const) {
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
        return [g, { cases: rs.length, failing: rs.filter((r) => r.violations.length).length, ...Object.fromEntries(CATEGORIES.map((c) => [c, rs.filter((r) => r.violations.some((v) => v.category === c)).length])) }];
      }),
    ),
    skipped: [...(canMount ? [] : ['full disk: mount -t tmpfs not permitted']), ...(hasFastText ? [] : ['fastText .bin aux: the fasttext program is not installed']), ...(hasMkfifo ? [] : ['FIFOs: mkfifo not available'])],
    violations: records.flatMap((r) => r.violations.map((v) => ({ ...v, seed: SEED, exit: r.exit, ms: r.ms }))),
  };
  mkdirSync(join(root, 'build'), { recursive: true });
  writeFileSync(join(root, 'build', 'campaign-tally.json'), JSON.stringify(tally, null, 2) + '\n');
  const { violations: _v, byGroup, ...head } = tally;
  void _v;
  console.log(`campaign tally (build/campaign-tally.json): ${JSON.stringify(head)}`);
  for (const [g, t] of Object.entries(byGroup)) console.log(`  ${g}: ${JSON.stringify(t)}`);
  if (ROOT && !records.some((r) => r.violations.length) && !process.env.SALT_CAMPAIGN_KEEP) rmSync(ROOT, { recursive: true, force: true });
  else if (ROOT) console.log(`  case folders of failing cases kept under ${ROOT}`);
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
  { fixture: 'src', file: 'tokenizer_config.json', muts: specialsJsonMutations },
  { fixture: 'tgt', file: 'tokenizer_config.json', muts: specialsJsonMutations },
  { fixture: 'bert', file: 'tokenizer_config.json', muts: specialsJsonMutations },
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
    const role = t.fixture === 'src' || t.fixture === 'srcsh' ? 'source' : t.fixture === 'vec' || t.fixture === 'bin' ? 'aux' : 'target';
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

describe('CLI campaign', () => {
  it(`corrupt inputs: ${CASES} seeded mutations of every input kind`, async () => {
    await runGroup('corrupt', corruptCases());
  }, 1_800_000);
});
