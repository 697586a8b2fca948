// The salt-transfer command line (lib/cli.ts, built to dist/cli.js): exit codes, --json, evaluate's files, inspect.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { EXIT, main } from '../../lib/cli/main.js';
import { type Folder, llmFolder, plmFolder, runCli } from './fixtures.js';

const root = resolve(import.meta.dirname, '..', '..');
const cliJs = join(root, 'dist', 'cli.js');

const cli = runCli;

describe('dist/cli.js (the installed binary)', () => {
  it('starts with a shebang and is the package bin', async () => {
    expect(existsSync(cliJs), 'dist/cli.js is missing: run npx tsc -p tsconfig.build.json first').toBe(true);
    expect((await readFile(cliJs, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ 'salt-transfer': './dist/cli.js' });
    expect(pkg.scripts.demo).toBe('node dist/cli.js demo');
  });

  it('info --json exits 0 with the installation as JSON', () => {
    const r = spawnSync(process.execPath, [cliJs, 'info', '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const i = JSON.parse(r.stdout);
    expect(i.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(i.backends).toContain('cpu');
    expect(typeof i.threads).toBe('number');
  });

  it('exits 2 on a usage error and 1 on a missing folder, naming it', () => {
    const u = spawnSync(process.execPath, [cliJs, 'transfer', '--source', 'a', '--bogus'], { encoding: 'utf8' });
    expect(u.status).toBe(2);
    expect(u.stderr).toContain("salt-transfer: usage error [E_ARGUMENT]: transfer: Unknown option '--bogus'");
    const m = spawnSync(
      process.execPath,
      [
        cliJs,
        'transfer',
        '--source',
        '/no/such/llm',
        '--target',
        '/no/such/plm',
        '--out',
        join(tmpdir(), 'never-written'),
      ],
      { encoding: 'utf8' },
    );
    expect(m.status).toBe(1);
    expect(m.stderr).toBe('salt-transfer: error [E_NOT_FOUND]: source "/no/such/llm" does not exist\n');
    expect(existsSync(join(tmpdir(), 'never-written'))).toBe(false);
  });
});

describe('main(): runtime errors as JSON', () => {
  it('a missing folder: exit 1, the error as JSON on stdout', async () => {
    const r = await cli('evaluate', '--source', '/no/such/llm', '--target', '/no/such/plm', '--json');
    expect(r.code).toBe(EXIT.error);
    expect(JSON.parse(r.stdout)).toEqual({
      error: { code: 'E_NOT_FOUND', message: 'source "/no/such/llm" does not exist', usage: false },
    });
  });

  it('demo refuses a folder it did not write (before loading any data)', async () => {
    const d = await mkdtemp(join(tmpdir(), 'salt-demo-refuse-'));
    try {
      const r = await cli('demo', '--out', d);
      expect(r.code).toBe(EXIT.error);
      expect(r.stderr).toBe(
        `salt-transfer: error [E_EXISTS]: output folder ${JSON.stringify(d)} exists and was not written by salt-transfer (choose another folder with --out, or remove it)\n`,
      );
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});

describe('main(): usage errors', () => {
  it.each([
    [['frob'], 'unknown command "frob" (expected one of transfer, evaluate, inspect, info, demo)'],
    [['transfer', '--target', 't', '--out', 'o'], 'transfer needs --source'],
    [
      ['transfer', '--source', 's', '--target', 't'],
      'transfer needs one --out per --target (received 1 --target and 0 --out)',
    ],
    [
      ['transfer', '--source', 's', '--target', 't', '--out', 'o', '--lambda=-1'],
      '--lambda must be "auto" or a number >= 0, received "-1"',
    ],
    [
      ['transfer', '--source', 's', '--target', 't', '--out', 'o', '--method', 'magic'],
      '--method must be one of salt, salt-local, salt-residual, salt-paper, salt-ridge, focus, clp, wechsel, mean, random, global-linear, fvt, received "magic"',
    ],
    [
      ['transfer', '--source', 's', '--target', 't', '--out', 'o', '--selection', 'topk:0'],
      '--selection must be "sparsemax" or "topk:N" with N >= 1, received "topk:0"',
    ],
    [
      ['transfer', '--source', 's', '--target', 't', '--out', 'o', '--dtype', 'f64'],
      '--dtype must be F32, F16 or BF16, received "f64"',
    ],
    [
      ['transfer', '--source', 's', '--target', 't', '--out', 'o', '--method', 'focus', '--lambda', '1'],
      'lambda does not apply to method "focus" (it applies to "salt", "salt-local", "salt-residual", "salt-paper", "salt-ridge", "global-linear"), received 1',
    ],
    [
      ['evaluate', '--source', 's', '--target', 't', '--holdout', '1.5'],
      '--holdout must be a fraction in (0, 1) or a count >= 1, received "1.5"',
    ],
    [['info', '--source', 's'], 'info does not take --source'],
    [['inspect', '--source', 's', '--target', 't'], 'inspect takes exactly one token, received 0'],
  ])('%j', async (argv, message) => {
    const r = await cli(...argv, '--json');
    expect(r.code).toBe(EXIT.usage);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: 'E_ARGUMENT', message, usage: true } });
    expect(r.stderr).toContain(`usage error [E_ARGUMENT]: ${message}`);
  });

  it('--help exits 0, no command exits 2', async () => {
    expect((await cli('--help')).code).toBe(EXIT.ok);
    const none = await cli();
    expect(none.code).toBe(EXIT.usage);
    expect(none.stdout).toContain('Usage: salt-transfer <command>');
  });
});

describe('main() on real-tokenizer folders', () => {
  let dir: string;
  let llm: Folder, plm: Folder;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'salt-cli-'));
    [llm, plm] = await Promise.all([llmFolder(join(dir, 'llm'), { tied: true }), plmFolder(join(dir, 'plm'))]);
  }, 120_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('transfer --json prints the report; a second run without --overwrite exits 1 (E_EXISTS)', async () => {
    const out = join(dir, 'out');
    const r = await cli(
      'transfer',
      '--source',
      llm.dir,
      '--target',
      plm.dir,
      '--out',
      out,
      '--seed',
      '2',
      '--method',
      'salt-local',
      '--K',
      '16',
      '--json',
    );
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const [rep] = JSON.parse(r.stdout);
    expect(rep.output).toBe(out);
    expect(rep.transfer.K).toBe(16);
    expect(rep.shapes).toMatchObject({ targetVocab: plm.vocab, sourceWidth: llm.width, tied: true });
    expect(rep.prepareThread).toBe('main'); // lib/ run from TypeScript sources: no compiled worker script
    // The built CLI parses tokenizers and aligns in a worker thread; same result, byte for byte.
    const viaDist = spawnSync(
      process.execPath,
      [
        cliJs,
        'transfer',
        '--source',
        llm.dir,
        '--target',
        plm.dir,
        '--out',
        join(dir, 'out-dist'),
        '--seed',
        '2',
        '--method',
        'salt-local',
        '--K',
        '16',
        '--json',
      ],
      { encoding: 'utf8' },
    );
    expect(viaDist.status, viaDist.stderr).toBe(0);
    expect(JSON.parse(viaDist.stdout)[0].prepareThread).toBe('worker');
    for (const f of ['model.safetensors', 'config.json', 'tokenizer.json'])
      expect((await readFile(join(dir, 'out-dist', f))).equals(await readFile(join(out, f))), f).toBe(true);
    const again = await cli('transfer', '--source', llm.dir, '--target', plm.dir, '--out', out);
    expect(again.code).toBe(EXIT.error);
    expect(again.stderr).toContain(`[E_EXISTS]: output folder ${JSON.stringify(out)} already exists`);
    // Plain (non-TTY) output: a line per finished stage and a summary.
    const plain = await cli(
      'transfer',
      '--source',
      llm.dir,
      '--target',
      plm.dir,
      '--out',
      out,
      '--overwrite',
      '--method',
      'focus',
    );
    expect(plain.code).toBe(EXIT.ok);
    expect(plain.stderr).toMatch(/^align: done \(1\) in [\d.]+ s$/m);
    expect(plain.stdout).toContain(`${out}: ${plm.vocab} tokens x ${llm.width} (F32, tied head)`);
    expect(plain.stdout).toContain('method focus;');
  }, 60_000);

  it('dist: a target tokenizer parsed ahead in its own worker fails with the error of the main-thread parse, and nothing is written', async () => {
    const bad = join(dir, 'plm-bad-tokenizer');
    await mkdir(bad);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer_config.json'])
      await writeFile(join(bad, f), await readFile(join(plm.dir, f)));
    const text = await readFile(join(plm.dir, 'tokenizer.json'), 'utf8');
    await writeFile(join(bad, 'tokenizer.json'), text.slice(0, text.length >> 1)); // cut in half: invalid JSON
    const args = ['transfer', '--source', llm.dir, '--target', bad, '--out', join(dir, 'out-bad'), '--json'];
    const viaDist = spawnSync(process.execPath, [cliJs, ...args], { encoding: 'utf8' });
    const onMain = await cli(...args);
    expect(onMain.code).toBe(EXIT.error);
    expect(viaDist.status).toBe(EXIT.error);
    const distError = JSON.parse(viaDist.stdout || viaDist.stderr).error;
    expect(distError.code).toBe('E_FORMAT');
    expect(distError.message).toContain(join(bad, 'tokenizer.json'));
    expect(distError).toEqual(JSON.parse(onMain.stdout || onMain.stderr).error);
    expect(existsSync(join(dir, 'out-bad'))).toBe(false);
  }, 60_000);

  it('transfer --method fvt: the segmentation computed in the worker (dist) and on the main thread give the same files', async () => {
    const out = join(dir, 'out-fvt');
    const r = await cli(
      'transfer',
      '--source',
      llm.dir,
      '--target',
      plm.dir,
      '--out',
      out,
      '--method',
      'fvt',
      '--json',
    );
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const [rep] = JSON.parse(r.stdout);
    expect(rep.transfer.method).toBe('fvt');
    expect(rep.transfer.pieces.mean).toBeGreaterThan(1);
    expect(rep.transfer.counts.solved).toBeGreaterThan(0);
    const viaDist = spawnSync(
      process.execPath,
      [
        cliJs,
        'transfer',
        '--source',
        llm.dir,
        '--target',
        plm.dir,
        '--out',
        join(dir, 'out-fvt-dist'),
        '--method',
        'fvt',
        '--json',
      ],
      { encoding: 'utf8' },
    );
    expect(viaDist.status, viaDist.stderr).toBe(0);
    const repDist = JSON.parse(viaDist.stdout)[0];
    expect(repDist.prepareThread).toBe('worker');
    expect(repDist.transfer.counts).toEqual(rep.transfer.counts);
    expect(
      (await readFile(join(dir, 'out-fvt-dist', 'model.safetensors'))).equals(
        await readFile(join(out, 'model.safetensors')),
      ),
    ).toBe(true);
  }, 60_000);

  it('draws a progress bar with rate and ETA on a TTY', async () => {
    let stderr = '';
    const code = await main(
      ['transfer', '--source', llm.dir, '--target', plm.dir, '--out', join(dir, 'out-tty'), '--method', 'clp'],
      {
        stdout: { write: () => true },
        stderr: { write: (s: string) => (stderr += s), isTTY: true },
      },
    );
    expect(code).toBe(EXIT.ok);
    expect(stderr).toContain('\r\x1b[K');
    expect(stderr).toMatch(/combine +\[#+\.*\] \d+\/\d+ [\d,]+\/s/);
    expect(stderr).not.toMatch(/: done \(/); // no plain lines on a TTY
  }, 60_000);

  it('an aborted run (the SIGINT handler aborts this signal) exits 130 and leaves no folder', async () => {
    const ac = new AbortController();
    let stderr = '';
    const out = join(dir, 'out-interrupted');
    const code = await main(['transfer', '--source', llm.dir, '--target', plm.dir, '--out', out], {
      stdout: { write: () => true },
      stderr: {
        write: (s: string) => {
          stderr += s;
          if (s.startsWith('align: done')) ac.abort(); // mid-run, as Ctrl-C would
          return true;
        },
      },
      signal: ac.signal,
    });
    expect(code).toBe(EXIT.interrupted);
    expect(stderr).toContain('salt-transfer: error [E_ABORTED]: the transfer was aborted through its AbortSignal');
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it("the README's transfer() snippet runs as written (its model paths pointed at these folders)", async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const block = /```js\n(import \{ transfer \} from 'salt-transfer';[\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const out = join(dir, 'readme-out');
    const code = block!
      .replace("'models/llm-plm'", JSON.stringify(out))
      .replace("'models/llm'", JSON.stringify(llm.dir))
      .replace("'models/plm'", JSON.stringify(plm.dir));
    const file = join(root, 'build', 'readme-transfer-snippet.mjs'); // inside the package: 'salt-transfer' resolves to itself
    await mkdir(join(root, 'build'), { recursive: true });
    await writeFile(file, code);
    const r = spawnSync(process.execPath, [file], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const m = /^(\d+) tokens: (\d+) copied, (\d+) special, (\d+) solved, (\d+) fallback\n$/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const [total, ...parts] = m!.slice(1).map(Number);
    expect(total).toBe(plm.vocab);
    expect(parts.reduce((a, b) => a + b, 0)).toBe(plm.vocab);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
  }, 60_000);

  it('evaluate writes JSON, CSV and SVG', async () => {
    const out = join(dir, 'eval');
    const r = await cli(
      'evaluate',
      '--source',
      llm.dir,
      '--target',
      plm.dir,
      '--methods',
      'salt-local,focus,random',
      '--holdout',
      '200',
      '--seeds',
      '0,1',
      '--no-ranks',
      '--out',
      out,
    ); // ranks among 128k source rows would be a full sort per token: slow
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toContain(
      '| method | mean cosine | rel. L2 | mean rank | median rank | P@1 | P@5 | lambda per seed |',
    );
    const json = JSON.parse(await readFile(join(out, 'evaluation.json'), 'utf8'));
    expect(json.labels).toEqual(['salt-local', 'focus', 'random']);
    expect(json.seeds.map((s: { seed: number; heldOut: number }) => [s.seed, s.heldOut])).toEqual([
      [0, 200],
      [1, 200],
    ]);
    const csv = (await readFile(join(out, 'evaluation.csv'), 'utf8')).trimEnd().split('\n');
    expect(csv[0]).toBe('seed,method,meanCosine,meanRelL2,meanRank,medianRank,pAt1,pAt5,lambda,heldOut,anchors');
    expect(csv.length).toBe(1 + 2 * 3 + 3);
    const meanSalt = csv.find((l) => l.startsWith('mean,salt-local,'))!.split(',');
    expect(Number(meanSalt[2])).toBeCloseTo(json.mean['salt-local'].meanCosine, 5);
    const seed1Focus = csv.find((l) => l.startsWith('1,focus,'))!.split(',');
    expect(Number(seed1Focus[9])).toBe(200);
    expect(seed1Focus[4]).toBe(''); // --no-ranks: no rank
    expect(seed1Focus.slice(6, 8)).toEqual(['', '']); // nor P@1 / P@5
    const svg = await readFile(join(out, 'evaluation.svg'), 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const m of ['salt-local', 'focus', 'random']) expect(svg).toContain(`text-anchor="end">${m}</text>`);
    expect(svg.match(/<circle /g)!.length).toBe(6); // one dot per seed and method
    for (const h of ['P@1', 'P@5', 'mean rank', 'median']) expect(svg).toContain(`>${h}</text>`);
  }, 120_000);

  it('inspect shows a shared token and a new token whose recomputed row equals the engine row', async () => {
    const shared = await cli('inspect', '▁the', '--source', llm.dir, '--target', plm.dir, '--json');
    expect(shared.code, shared.stderr).toBe(EXIT.ok);
    const s = JSON.parse(shared.stdout);
    expect(s.status).toBe('copied');
    expect(s.token).toMatchObject({ piece: '▁the', wordStart: true, text: 'the' });
    expect(s.shared.piece).toBe('Ġthe');
    // "▁toget" is in Mistral's vocabulary but not in Llama-3's (no "Ġtoget"): a new token.
    const r = await cli('inspect', '▁toget', '--source', llm.dir, '--target', plm.dir, '--K', '32', '--json');
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const n = JSON.parse(r.stdout);
    expect(n.status).toBe('solved');
    expect(n.method).toBe('salt-local');
    expect(n.neighbours.length).toBeGreaterThan(0);
    expect(n.neighbours.length).toBeLessThanOrEqual(32);
    // Sparsemax weights are a distribution over the neighbours, sorted by cosine.
    expect(n.neighbours.reduce((a: number, x: { weight: number }) => a + x.weight, 0)).toBeCloseTo(1, 5);
    for (let j = 1; j < n.neighbours.length; j++)
      expect(n.neighbours[j].cosine).toBeLessThanOrEqual(n.neighbours[j - 1].cosine);
    expect(n.maxAbsDiffToEngine).toBeLessThan(1e-6);
    const text = await cli('inspect', '▁toget', '--source', llm.dir, '--target', plm.dir, '--K', '32');
    expect(text.stdout).toMatch(
      /^target token \d+ "▁toget": kind normal, word start true, text "toget"\nnew token: method salt-local, lambda [\d.]+ \(auto\); \d+ neighbours/,
    );
    const missing = await cli('inspect', 'no-such-token-xyz', '--source', llm.dir, '--target', plm.dir);
    expect(missing.code).toBe(EXIT.error);
    expect(missing.stderr).toContain(
      `[E_NOT_FOUND]: token "no-such-token-xyz" is not in the target vocabulary of ${JSON.stringify(plm.dir)}`,
    );
  }, 60_000);
});
