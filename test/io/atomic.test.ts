import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishFolder, writeBytesAtomic, writeFileAtomic } from '../../lib/io/atomic.js';
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
  it('with overwrite, replaces the old folder and removes it', async () => {
    const tmp = await folderWith('.o2.tmp', 'a', 'new');
    const out = await folderWith('o2', 'b', 'old');
    await publishFolder(tmp, out, true);
    expect(await readdir(out)).toEqual(['a']);
    expect((await readdir(dir)).filter((f) => f.startsWith('.o2'))).toEqual([]);
  });
});
