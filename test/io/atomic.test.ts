import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  checkOutputPlacement,
  checkReplaceable,
  cleanStaleTemps,
  createFolders,
  publishFolder,
  REPORT_FILE,
  tempNameFor,
  writeBytesAtomic,
  writeFileAtomic,
} from '../../lib/io/atomic.js';
import { tempFolder } from './helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(async () => cleanup());
const code = (c: string) => expect.objectContaining({ code: c });

describe('writeFileAtomic', () => {
  it('never replaces a file that appears while it writes (unless overwrite)', async () => {
    const target = join(dir, 'race.bin');
    await expect(
      writeFileAtomic(target, async (fh) => {
        await fh.writeFile('new');
        await writeFile(target, 'someone else'); // created concurrently, after the up-front check
      }),
    ).rejects.toThrow(code('E_EXISTS'));
    expect(await readFile(target, 'utf8')).toBe('someone else');
    expect((await readdir(dir)).filter((f) => f.startsWith('.'))).toEqual([]); // temporary file removed
    await writeBytesAtomic(target, 'replaced', { overwrite: true });
    expect(await readFile(target, 'utf8')).toBe('replaced');
    await expect(writeBytesAtomic(target, 'again')).rejects.toThrow(code('E_EXISTS'));
    expect(await readFile(target, 'utf8')).toBe('replaced');
  });
  it('writes a new file and leaves no temporary name', async () => {
    const target = join(dir, 'sub', 'new.txt');
    await writeBytesAtomic(target, 'hello');
    expect(await readFile(target, 'utf8')).toBe('hello');
    expect(await readdir(join(dir, 'sub'))).toEqual(['new.txt']);
  });
});

describe('publishFolder', () => {
  async function folderWith(name: string, file: string, text: string): Promise<string> {
    const d = join(dir, name);
    await mkdir(d, { recursive: true });
    await writeFile(join(d, file), text);
    return d;
  }
  it('refuses to replace a non-empty folder (or a file) created meanwhile, and leaves both alone', async () => {
    const tmp = await folderWith('.out.tmp', 'a', 'new');
    const out = await folderWith('out', 'b', 'old');
    await expect(publishFolder(tmp, out, false)).rejects.toThrow(code('E_EXISTS'));
    expect(await readdir(out)).toEqual(['b']);
    expect(await readdir(tmp)).toEqual(['a']);
    const file = join(dir, 'out-file');
    await writeFile(file, 'x');
    await expect(publishFolder(tmp, file, false)).rejects.toThrow(code('E_EXISTS'));
    expect(await readFile(file, 'utf8')).toBe('x');
  });
  it('with overwrite, replaces an old folder salt-transfer wrote (it holds the report) and removes it', async () => {
    const tmp = await folderWith('.o2.tmp', 'a', 'new');
    const out = await folderWith('o2', REPORT_FILE, '{}');
    await publishFolder(tmp, out, true);
    expect(await readdir(out)).toEqual(['a']);
    expect((await readdir(dir)).filter((f) => f.startsWith('.o2'))).toEqual([]);
  });
  it('with overwrite, refuses a folder salt-transfer did not write, a file and a symbolic link, and leaves them alone', async () => {
    const tmp = await folderWith('.o3.tmp', 'a', 'new');
    const out = await folderWith('o3', 'notes.txt', 'mine');
    await expect(publishFolder(tmp, out, true)).rejects.toThrow(code('E_EXISTS'));
    expect(await readFile(join(out, 'notes.txt'), 'utf8')).toBe('mine');
    expect(await readdir(tmp)).toEqual(['a']);
    const file = join(dir, 'o3-file');
    await writeFile(file, 'x');
    await expect(checkReplaceable(file, true)).rejects.toThrow(code('E_EXISTS'));
    const ln = join(dir, 'o3-link');
    await symlink(join(dir, 'o2'), ln);
    await expect(checkReplaceable(ln, true)).rejects.toThrow(code('E_EXISTS'));
    expect(await checkReplaceable(await folderWith('o3-ours', REPORT_FILE, '{}'), true)).toBe('ours');
    await mkdir(join(dir, 'o3-empty'));
    expect(await checkReplaceable(join(dir, 'o3-empty'), true)).toBe('empty');
    expect(await checkReplaceable(join(dir, 'o3-absent'), true)).toBe('absent');
    await expect(checkReplaceable(join(dir, 'o3-empty'), false)).rejects.toThrow(code('E_EXISTS'));
  });
  it('undoes a publication that an abort overtook, restoring the old folder', async () => {
    const tmp = await folderWith('.o4.tmp', 'a', 'new');
    const out = await folderWith('o4', REPORT_FILE, 'old');
    const ac = new AbortController();
    const aborted = publishFolder(tmp, out, true, ac.signal);
    ac.abort(); // arrives while the renames are in flight
    await expect(aborted).rejects.toThrow(code('E_ABORTED'));
    expect(await readFile(join(out, REPORT_FILE), 'utf8')).toBe('old');
    expect(await readdir(tmp)).toEqual(['a']);
    expect((await readdir(dir)).filter((f) => f.startsWith('.o4') && f !== '.o4.tmp')).toEqual([]);
  });
});

describe('checkOutputPlacement', () => {
  it('refuses an output that is, contains or lies inside an input, also through a symbolic link', async () => {
    const base = join(dir, 'place');
    await mkdir(join(base, 'inputs', 'llm'), { recursive: true });
    await symlink(join(base, 'inputs'), join(base, 'alias'));
    const inputs = [{ path: join(base, 'inputs', 'llm'), what: 'source folder' }];
    const bad = [
      join(base, 'inputs', 'llm'),
      join(base, 'inputs'),
      base,
      join(base, 'inputs', 'llm', 'out'),
      join(base, 'alias'),
      join(base, 'alias', 'llm', 'new', 'deeper'),
    ];
    for (const out of bad) await expect(checkOutputPlacement(out, inputs), out).rejects.toThrow(code('E_ARGUMENT'));
    await expect(checkOutputPlacement(join(base, 'inputs', 'llm-out'), inputs)).resolves.toBeUndefined();
    await expect(checkOutputPlacement(join(base, 'elsewhere', 'x'), inputs)).resolves.toBeUndefined();
  });
});

describe('temporary names and leftovers', () => {
  it('fit in 255 bytes whatever the output name, with .old appended', () => {
    for (const name of ['o', 'x'.repeat(255), '\u00e9'.repeat(127), '\u{1F600}'.repeat(63)]) {
      const t = tempNameFor(join(dir, name));
      expect(Buffer.byteLength(basename(t + '.old'))).toBeLessThanOrEqual(255);
      expect(basename(t).startsWith('.')).toBe(true);
    }
  });
  it('cleanStaleTemps removes the leftovers of dead processes on this host only', async () => {
    const d = join(dir, 'stale');
    await mkdir(d);
    // A pid that does not exist: beyond the kernel's pid_max.
    const dead = tempNameFor(join(d, 'out')).replace(/-(\d+)-([0-9a-f]{8})$/, '-99999999-$2');
    const mine = tempNameFor(join(d, 'out'));
    const otherHost = basename(dead).replace(/\.tmp-[0-9a-f]{8}-/, '.tmp-zzzzzzzz-');
    await mkdir(dead);
    await writeFile(join(dead, 'model.safetensors'), 'half');
    await mkdir(dead + '.old');
    await mkdir(mine);
    await mkdir(join(d, otherHost));
    await writeFile(join(d, '.keep.tmp-unrelated'), '');
    const removed = await cleanStaleTemps(d);
    expect(removed.sort()).toEqual([basename(dead), basename(dead) + '.old'].sort());
    expect((await readdir(d)).sort()).toEqual([basename(mine), otherHost, '.keep.tmp-unrelated'].sort());
  });
  it('createFolders removes only the empty folders it created', async () => {
    const undo = await createFolders(join(dir, 'made', 'a', 'b'));
    await writeFile(join(dir, 'made', 'keep'), 'x');
    await undo();
    expect(await readdir(join(dir, 'made'))).toEqual(['keep']);
    const undo2 = await createFolders(join(dir, 'made2', 'a', 'b'));
    await undo2();
    expect((await readdir(dir)).includes('made2')).toBe(false);
  });
});
