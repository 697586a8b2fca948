// Regression tests of the defects found by the fault and fuzz campaign (issue 13): one or more per
// defect, each failing on the code before the fix. The CLI is run as installed (dist/cli.js) where a
// separate process matters (signals, FIFOs, permissions), else in-process through main().
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { EXIT, main } from '../../lib/cli/main.js';
import { REPORT_FILE, tempNameFor } from '../../lib/io/atomic.js';
import { writeTransferredModel } from '../../lib/io/writeModel.js';
import { transfer } from '../../lib/pipeline/transfer.js';
import { lenmlTokenizer } from '../io/helpers/data.js';
import { type Folder, plmFolder, runCli } from './fixtures.js';

const root = resolve(import.meta.dirname, '..', '..');
const cliJs = join(root, 'dist', 'cli.js');
const ONE_LINE_ERROR = /^salt-transfer: (usage error|error) \[(E_[A-Z_]+)\]: [^\n]+$/m;
const JS_STACK = /^\s+at .+:\d+:\d+\)?$/m;

let dir: string;
let src: Folder; // a Mistral-tokenizer model used as the source LLM (tied)
let plm: Folder;

const cli = runCli;

/** Runs dist/cli.js with a time limit; `hung` when it had to be killed. */
function run(
  args: string[],
  opts: { cwd?: string; timeoutMs?: number; user?: boolean } = {},
): { status: number | null; stderr: string; hung: boolean } {
  const cmd = opts.user ? 'setpriv' : process.execPath;
  const argv = opts.user
    ? ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cliJs, ...args]
    : [cliJs, ...args];
  const r = spawnSync(cmd, argv, {
    cwd: opts.cwd,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
  });
  return { status: r.status, stderr: r.stderr ?? '', hung: r.signal === 'SIGKILL' };
}

/** A hash of every file under `folder` (names and bytes). */
async function treeHash(folder: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      h.update(p.slice(folder.length) + '\0');
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) h.update(await readFile(p));
    }
  };
  await walk(folder);
  return h.digest('hex');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'salt-defects-'));
  [src, plm] = await Promise.all([
    plmFolder(join(dir, 'src'), { width: 8, seed: 11 }),
    plmFolder(join(dir, 'plm'), { width: 6, seed: 12 }),
  ]);
  expect(existsSync(cliJs), 'dist/cli.js is missing: run npx tsc -p tsconfig.build.json first').toBe(true);
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('1. --out around the inputs never deletes them', () => {
  it('an --out that contains, equals or lies inside an input is a usage error, with or without --overwrite; nothing changes', async () => {
    const p = join(dir, 'p');
    await cp(src.dir, join(p, 'llm'), { recursive: true });
    await writeFile(join(p, 'notes.txt'), 'notes');
    await symlink(p, join(dir, 'p-alias'));
    const before = await treeHash(p);
    const cases = [p, join(p, 'llm'), join(p, 'llm', 'inner'), join(dir, 'p-alias'), join(dir, 'p-alias', 'llm'), dir];
    for (const out of cases) {
      for (const extra of [['--overwrite'], []]) {
        const r = await cli(
          'transfer',
          '--source',
          join(p, 'llm'),
          '--target',
          plm.dir,
          '--out',
          out,
          '--method',
          'mean',
          ...extra,
        );
        expect(r.code, `${out} ${extra}: ${r.stderr}`).toBe(EXIT.usage);
        expect(r.stderr).toMatch(
          /usage error \[E_ARGUMENT\]: output folder .* (contains|is|lies inside) the (source|target) /,
        );
      }
    }
    const t = await cli(
      'transfer',
      '--source',
      join(p, 'llm'),
      '--target',
      plm.dir,
      '--out',
      plm.dir,
      '--overwrite',
      '--method',
      'mean',
    );
    expect(t.code).toBe(EXIT.usage);
    expect(t.stderr).toContain(`output folder ${JSON.stringify(plm.dir)} is the target folder`);
    const dot = run(
      ['transfer', '--source', 'llm', '--target', plm.dir, '--out', '.', '--overwrite', '--method', 'mean'],
      { cwd: p },
    );
    expect(dot.status, dot.stderr).toBe(EXIT.usage);
    expect(await treeHash(p)).toBe(before);
  }, 60_000);

  it('--overwrite refuses a folder salt-transfer did not write (the working folder included), and replaces one it wrote', async () => {
    const mine = join(dir, 'mine');
    await mkdir(mine);
    await writeFile(join(mine, 'thesis.tex'), 'years of work');
    const r = await cli(
      'transfer',
      '--source',
      src.dir,
      '--target',
      plm.dir,
      '--out',
      mine,
      '--overwrite',
      '--method',
      'mean',
    );
    expect(r.code).toBe(EXIT.error);
    expect(r.stderr).toContain('[E_EXISTS]: refusing to replace');
    expect(await readFile(join(mine, 'thesis.tex'), 'utf8')).toBe('years of work');
    const cwdRun = run(
      ['transfer', '--source', src.dir, '--target', plm.dir, '--out', '.', '--overwrite', '--method', 'mean'],
      { cwd: mine },
    );
    expect(cwdRun.status).toBe(EXIT.error);
    expect(await readdir(mine)).toEqual(['thesis.tex']);
    const ours = join(dir, 'ours');
    expect(
      (await cli('transfer', '--source', src.dir, '--target', plm.dir, '--out', ours, '--method', 'mean')).code,
    ).toBe(EXIT.ok);
    const again = await cli(
      'transfer',
      '--source',
      src.dir,
      '--target',
      plm.dir,
      '--out',
      ours,
      '--overwrite',
      '--method',
      'random',
    );
    expect(again.code, again.stderr).toBe(EXIT.ok);
    expect(JSON.parse(await readFile(join(ours, REPORT_FILE), 'utf8')).transfer.method).toBe('random');
  }, 60_000);
});

describe('2. an interrupt at any stage exits 130 and publishes nothing', () => {
  it.each(['load-source', 'align', 'combine', 'write'])(
    'abort when stage %s reports done (in-process, the signal the SIGINT handler fires)',
    async (stage) => {
      const ac = new AbortController();
      const out = join(dir, `int-${stage}`);
      let stderr = '';
      const code = await main(
        ['transfer', '--source', src.dir, '--target', plm.dir, '--out', out, '--method', 'mean'],
        {
          stdout: { write: () => true },
          stderr: {
            write: (s: string) => {
              stderr += s;
              if (s.startsWith(`${stage}: done`)) ac.abort();
              return true;
            },
          },
          signal: ac.signal,
        },
      );
      expect(code, stderr).toBe(EXIT.interrupted);
      expect(stderr).toMatch(/\[E_ABORTED\]/);
      expect(existsSync(out)).toBe(false);
      expect((await readdir(dir)).filter((f) => f.startsWith(`.int-${stage}`))).toEqual([]);
    },
    60_000,
  );

  it('SIGTERM is handled like Ctrl-C: exit 130, no output', async () => {
    const out = join(dir, 'sigterm');
    const child = spawn(
      process.execPath,
      [cliJs, 'transfer', '--source', src.dir, '--target', plm.dir, '--out', out, '--method', 'mean'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes('load-source: done')) child.kill('SIGTERM');
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code, stderr).toBe(130);
    expect(stderr).toContain('salt-transfer: terminated, aborting');
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});

describe('3. the report is part of the folder before it is published', () => {
  it('a failure while writing the report publishes nothing and removes the parents it created', async () => {
    const out = join(dir, 'new1', 'new2', 'out');
    const e = new Float32Array(plm.vocab * src.width);
    await expect(
      writeTransferredModel({
        source: src.dir,
        output: out,
        tokenizer: plm.dir,
        inputEmbedding: e,
        report: () => {
          throw Object.assign(new Error('no space left on device'), { code: 'E_IO' });
        },
      }),
    ).rejects.toThrow('no space left on device');
    expect(existsSync(join(dir, 'new1'))).toBe(false);
    const ok = await transfer({ source: src.dir, target: plm.dir, out: join(dir, 'with-report'), method: 'mean' });
    expect(JSON.parse(await readFile(join(dir, 'with-report', REPORT_FILE), 'utf8')).output).toBe(ok[0].output);
  }, 60_000);
});

describe('4. internal errors become coded one-line errors', () => {
  it('--pad-to-multiple-of beyond its bound is a usage error before loading', async () => {
    const r = await cli(
      'transfer',
      '--source',
      src.dir,
      '--target',
      plm.dir,
      '--out',
      join(dir, 'pad'),
      '--pad-to-multiple-of',
      '1000000000',
    );
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toContain('--pad-to-multiple-of must be an integer in [1, 65536], received "1000000000"');
  });
  it('a config.json nested 100k levels deep and a decoder Sequence of 0 give E_FORMAT naming the file, without a stack', async () => {
    const deep = join(dir, 'deep');
    await cp(src.dir, deep, { recursive: true });
    const cfg = JSON.parse(await readFile(join(deep, 'config.json'), 'utf8'));
    await writeFile(
      join(deep, 'config.json'),
      JSON.stringify(cfg).slice(0, -1) + ',"x":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}',
    );
    const a = run([
      'transfer',
      '--source',
      deep,
      '--target',
      plm.dir,
      '--out',
      join(dir, 'deep-out'),
      '--method',
      'mean',
    ]);
    expect(a.stderr).toMatch(ONE_LINE_ERROR);
    expect(a.stderr).toContain(
      `[E_FORMAT]: file ${JSON.stringify(join(deep, 'config.json'))} nests arrays/objects deeper than 256 levels`,
    );
    expect(a.stderr).not.toMatch(JS_STACK);
    const dec = join(dir, 'dec');
    await cp(plm.dir, dec, { recursive: true });
    const tj = JSON.parse(await readFile(join(dec, 'tokenizer.json'), 'utf8'));
    tj.decoder = { type: 'Sequence', decoders: 0 };
    await writeFile(join(dec, 'tokenizer.json'), JSON.stringify(tj));
    const b = run([
      'transfer',
      '--source',
      src.dir,
      '--target',
      dec,
      '--out',
      join(dir, 'dec-out'),
      '--method',
      'mean',
    ]);
    expect(b.status).toBe(EXIT.error);
    expect(b.stderr).toMatch(ONE_LINE_ERROR);
    expect(b.stderr).toContain('[E_FORMAT]: ');
    expect(b.stderr).toContain('a "Sequence" decoder/pre-tokenizer must hold an array');
    expect(b.stderr).not.toMatch(JS_STACK);
  }, 60_000);
});

describe('5. special files never hang a run', () => {
  it.each(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'])(
    'a FIFO named %s is refused at once',
    async (name) => {
      const d = join(dir, `fifo-${name.replace(/\./g, '-')}`);
      await cp(src.dir, d, { recursive: true });
      await rm(join(d, name), { force: true });
      execFileSync('mkfifo', [join(d, name)]);
      const r = run(
        ['transfer', '--source', d, '--target', plm.dir, '--out', join(dir, `fifo-out-${name}`), '--method', 'mean'],
        { timeoutMs: 20_000 },
      );
      expect(r.hung, 'the run hung on the FIFO').toBe(false);
      expect(r.status).toBe(EXIT.error);
      expect(r.stderr).toMatch(ONE_LINE_ERROR);
      expect(r.stderr).toContain(`${JSON.stringify(join(d, name))} is a FIFO (named pipe), expected a regular file`);
    },
    30_000,
  );
});

describe('5b. a run that fails while a worker reads a tokenizer', () => {
  it('ends with the coded error every time, never an abort (the target loader is stopped inside the native tokenizer scan)', async () => {
    // The source fails at once (a FIFO as tokenizer.json) while the target's 152k-token tokenizer
    // is being scanned in its loader worker, which the failed run then terminates. Before the scan
    // built its result without C++ exceptions, about one run in four aborted ("terminate called
    // after throwing an instance of 'Napi::Error'").
    const bad = join(dir, 'fifo-source-2');
    await cp(src.dir, bad, { recursive: true });
    await rm(join(bad, 'tokenizer.json'), { force: true });
    execFileSync('mkfifo', [join(bad, 'tokenizer.json')]);
    const big = join(dir, 'plm-qwen3');
    await cp(plm.dir, big, { recursive: true });
    await cp(join(await lenmlTokenizer('qwen3'), 'tokenizer.json'), join(big, 'tokenizer.json'));
    const statuses: (number | null)[] = [];
    for (let i = 0; i < 20; i++) {
      const r = run(
        ['transfer', '--source', bad, '--target', big, '--out', join(dir, 'fifo-out-2'), '--method', 'mean'],
        {
          timeoutMs: 20_000,
        },
      );
      statuses.push(r.status);
      if (r.status !== EXIT.error) expect(r.stderr, `run ${i}`).toBe('');
      expect(r.stderr, `run ${i}`).toContain('is a FIFO (named pipe), expected a regular file');
    }
    expect(statuses).toEqual(Array(20).fill(EXIT.error));
  }, 120_000);
});

describe('6. leftovers', () => {
  it('temporary folders of killed runs are removed by the next run into the same parent', async () => {
    const parent = join(dir, 'stale');
    await mkdir(parent);
    const dead = tempNameFor(join(parent, 'out')).replace(/-(\d+)-([0-9a-f]{8})$/, '-99999999-$2');
    await mkdir(dead);
    await writeFile(join(dead, 'model.safetensors'), 'half written');
    expect(
      (
        await cli(
          'transfer',
          '--source',
          src.dir,
          '--target',
          plm.dir,
          '--out',
          join(parent, 'out'),
          '--method',
          'mean',
        )
      ).code,
    ).toBe(EXIT.ok);
    expect(await readdir(parent)).toEqual(['out']);
  }, 60_000);
  it('with several targets, a missing later target is found before any output is written', async () => {
    const a = join(dir, 'multi-a');
    const r = await cli(
      'transfer',
      '--source',
      src.dir,
      '--target',
      plm.dir,
      '--out',
      a,
      '--target',
      join(dir, 'missing'),
      '--out',
      join(dir, 'multi-b'),
      '--method',
      'mean',
    );
    expect(r.code).toBe(EXIT.error);
    expect(r.stderr).toContain(`[E_NOT_FOUND]: target 2 ${JSON.stringify(join(dir, 'missing'))} does not exist`);
    expect(existsSync(a)).toBe(false);
  });
});

describe('7. input that used to pass silently', () => {
  async function plmWith(name: string, edit: (tj: Record<string, unknown>) => void): Promise<string> {
    const d = join(dir, name);
    await cp(plm.dir, d, { recursive: true });
    const tj = JSON.parse(await readFile(join(d, 'tokenizer.json'), 'utf8'));
    edit(tj);
    await writeFile(join(d, 'tokenizer.json'), JSON.stringify(tj));
    return d;
  }
  it('a tokenizer.json with an empty model vocab is E_FORMAT', async () => {
    const d = await plmWith('empty-vocab', (tj) => {
      (tj.model as Record<string, unknown>).vocab = {};
      (tj.model as Record<string, unknown>).merges = [];
    });
    const r = await cli(
      'transfer',
      '--source',
      src.dir,
      '--target',
      d,
      '--out',
      join(dir, 'empty-out'),
      '--method',
      'mean',
    );
    expect(r.code).toBe(EXIT.error);
    expect(r.stderr).toContain('model.vocab is empty (the tokenizer would consist of its 3 added tokens only)');
  });
  it('a looping symbolic link as tokenizer_config.json is an error, not an absent file', async () => {
    const d = join(dir, 'loop');
    await cp(plm.dir, d, { recursive: true });
    await rm(join(d, 'tokenizer_config.json'));
    await symlink('tokenizer_config.json', join(d, 'tokenizer_config.json'));
    const r = await cli(
      'transfer',
      '--source',
      src.dir,
      '--target',
      d,
      '--out',
      join(dir, 'loop-out'),
      '--method',
      'mean',
    );
    expect(r.code).toBe(EXIT.error);
    expect(r.stderr).toContain(
      `[E_IO]: cannot inspect tokenizer config ${JSON.stringify(join(d, 'tokenizer_config.json'))}: a symbolic link loop (ELOOP)`,
    );
  });
  it('invalid UTF-8 inside tokenizer.json is E_FORMAT with the byte offset', async () => {
    const d = join(dir, 'utf8');
    await cp(plm.dir, d, { recursive: true });
    const bytes = await readFile(join(d, 'tokenizer.json'));
    const at = bytes.indexOf(Buffer.from('"hello"'));
    expect(at).toBeGreaterThan(0);
    bytes[at + 2] = 0xff;
    await writeFile(join(d, 'tokenizer.json'), bytes);
    const r = await cli(
      'transfer',
      '--source',
      src.dir,
      '--target',
      d,
      '--out',
      join(dir, 'utf8-out'),
      '--method',
      'mean',
    );
    expect(r.code).toBe(EXIT.error);
    expect(r.stderr).toContain(`is not valid UTF-8: invalid byte sequence at byte offset ${at + 2}`);
  });
});

describe('8. option values', () => {
  it.each([
    [['--lambda', '0x1'], '--lambda must be "auto" or a number >= 0, received "0x1"'],
    [['--lambda', ' 1'], '--lambda must be "auto" or a number >= 0, received " 1"'],
    [['--source', 'again'], 'transfer: --source was given more than once'],
    [['--aux', ''], 'transfer: --aux must be a non-empty path, received ""'],
    [['--method', 'salt-local', '--K', '1000000000'], 'K must be an integer in [1, 4096], received 1000000000'],
    [['--K', '8'], 'K does not apply to method "salt"'], // the default fits over all anchors: no K
    [['--landmarks', '0'], '--landmarks must be an integer in [1, 46340], received "0"'],
    [['--method', 'focus', '--landmarks', 'all'], 'landmarks does not apply to method "focus"'],
  ])('%j is a usage error before any model is loaded', async (extra, message) => {
    const r = await cli('transfer', '--source', src.dir, '--target', plm.dir, '--out', join(dir, 'opt-out'), ...extra);
    expect(r.code, r.stderr).toBe(EXIT.usage);
    expect(r.stderr).toContain(message);
  });
  it('--out "" is a usage error; --backend cuda without CUDA fails up front for every method', async () => {
    const r = await cli('transfer', '--source', src.dir, '--target', plm.dir, '--out', '', '--method', 'mean');
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toContain('--out must be a non-empty path');
    const c = await cli(
      'transfer',
      '--source',
      src.dir,
      '--target',
      plm.dir,
      '--out',
      join(dir, 'cuda-out'),
      '--method',
      'mean',
      '--backend',
      'cuda',
    );
    expect(c.code).toBe(EXIT.error);
    expect(c.stderr).toContain('[E_NO_CUDA]: --backend cuda was given but CUDA is not available');
    expect(existsSync(join(dir, 'cuda-out'))).toBe(false);
  });
});

describe('9. messages', () => {
  it('a file as --target says it must be a folder', async () => {
    const r = await cli(
      'transfer',
      '--source',
      src.dir,
      '--target',
      join(plm.dir, 'config.json'),
      '--out',
      join(dir, 'file-out'),
    );
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toContain(
      `target ${JSON.stringify(join(plm.dir, 'config.json'))} must be a folder, but it is a file`,
    );
  });
  it('an unreadable target folder is reported as unreadable, not as lacking a tokenizer.json', async () => {
    const d = join(dir, 'locked');
    await cp(plm.dir, d, { recursive: true });
    await chmod(d, 0o000);
    await chmod(dir, 0o755);
    try {
      const r = run(
        [
          'transfer',
          '--source',
          src.dir,
          '--target',
          d,
          '--out',
          join(tmpdir(), `salt-locked-${process.pid}`),
          '--method',
          'mean',
        ],
        { user: true },
      );
      expect(r.stderr).toContain(`[E_IO]: cannot read target folder ${JSON.stringify(d)}: permission denied (EACCES)`);
      expect(r.status).toBe(EXIT.error);
    } finally {
      await chmod(d, 0o755);
    }
  }, 60_000);
  it('an --out name of 250 bytes works (the temporary name is shortened)', async () => {
    const out = join(dir, 'n'.repeat(250));
    const r = await cli('transfer', '--source', src.dir, '--target', plm.dir, '--out', out, '--method', 'mean');
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(basename(out).length).toBe(250);
    expect(existsSync(join(out, REPORT_FILE))).toBe(true);
  }, 60_000);
});
