import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SaltError, SaltRangeError } from '../../lib/errors.js';
import { writeSafetensors } from '../../lib/io/safetensors.js';
import {
  cachedTextVectors,
  cachedVectors,
  indexWords,
  readTextVectors,
  readVectorCache,
  vectorCachePaths,
  writeVectorCache,
} from '../../lib/io/vectors.js';
import { tempFolder } from './helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(async () => cleanup());

describe('readTextVectors', () => {
  it('reads a fastText .vec with its count header', async () => {
    const p = join(dir, 'a.vec');
    await writeFile(p, '3 2\nthe 0.5 -1\nof 1e-3 2.25 \r\nüber -0 3\n');
    const t = await readTextVectors(p);
    expect(t.words).toEqual(['the', 'of', 'über']);
    expect(t.dim).toBe(2);
    expect([...t.vectors]).toEqual([0.5, -1, Math.fround(1e-3), 2.25, -0, 3]);
  });
  it('reads GloVe text without a header, words containing spaces, and maxWords', async () => {
    const p = join(dir, 'g.txt');
    await writeFile(p, 'the 1 2 3\n. 4 5 6\nat home 7 8 9\n\n');
    const t = await readTextVectors(p);
    expect(t.words).toEqual(['the', '.', 'at home']);
    expect(t.vectors).toEqual(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9));
    expect((await readTextVectors(p, { maxWords: 2 })).words).toEqual(['the', '.']);
    expect(indexWords(['a', 'b', 'a']).get('a')).toBe(0);
  });
  it('rejects malformed files with E_FORMAT and the line number', async () => {
    const p = join(dir, 'bad.vec');
    await writeFile(p, '2 3\nthe 1 2 3\nof 1 2\n');
    await expect(readTextVectors(p)).rejects.toThrow(
      new SaltError('E_FORMAT', `${p}:3: expected a word and 3 numbers, received 2 fields after the first`),
    );
    await writeFile(p, 'the 1 x 3\n');
    await expect(readTextVectors(p)).rejects.toThrow(
      new SaltError('E_FORMAT', `${p}:1: value 2 of "the" is not a number: "x"`),
    );
    await writeFile(p, '3 2\nthe 1 2\n');
    await expect(readTextVectors(p)).rejects.toThrow(
      new SaltError('E_FORMAT', `${p}: header declares 3 vectors, file has 1`),
    );
    await writeFile(p, '');
    await expect(readTextVectors(p)).rejects.toThrow(/no vectors found/);
    await expect(readTextVectors(join(dir, 'missing.vec'))).rejects.toThrow(
      expect.objectContaining({ code: 'E_NOT_FOUND' }),
    );
    await writeFile(p, '1 2\nthe 1 2\nof 3 4\n');
    await expect(readTextVectors(p)).rejects.toThrow(
      new SaltError('E_FORMAT', `${p}:3: header declares 1 vectors, file has more`),
    );
    await writeFile(p, '1000000 300\nthe 1 2\n');
    await expect(readTextVectors(p)).rejects.toThrow(
      new SaltError(
        'E_FORMAT',
        `${p}:1: header declares 1000000 vectors of dimension 300, more than the 20-byte file can hold`,
      ),
    );
  });
  it('rejects invalid UTF-8 with E_FORMAT and the line number (no silent U+FFFD)', async () => {
    const p = join(dir, 'latin1.vec');
    // "café" in Latin-1 (0xE9 alone is not UTF-8) on line 3; line 2 is valid UTF-8 "über".
    await writeFile(p, Buffer.concat([Buffer.from('2 1\n\u00fcber 1\ncaf'), Buffer.of(0xe9), Buffer.from(' 2\n')]));
    await expect(readTextVectors(p)).rejects.toThrow(new SaltError('E_FORMAT', `${p}:3: not valid UTF-8`));
    // A multi-byte character split across the reader's 1 MiB chunks is still decoded whole.
    const q = join(dir, 'long.txt');
    const pad = 'x'.repeat((1 << 20) - 1);
    await writeFile(q, `${pad}\u00e9 1\n\u65e5\u672c 2\n`);
    expect((await readTextVectors(q)).words).toEqual([`${pad}\u00e9`, '\u65e5\u672c']);
  });
  it('reads across the 2^20-value block boundary and returns exact-size arrays, with and without a header', async () => {
    const p = join(dir, 'many.txt');
    const n = 262_150; // just over one 2^20-value block at dim 4
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(`w${i} ${i} ${-i} ${i / 4} 1`);
    await writeFile(p, lines.join('\n') + '\n');
    const t = await readTextVectors(p);
    expect(t.words.length).toBe(n);
    expect(t.vectors.length).toBe(4 * n);
    expect(t.vectors.buffer.byteLength).toBe(t.vectors.byteLength);
    expect([...t.vectors.subarray(4 * 262_143, 4 * 262_145)]).toEqual([
      262_143, -262_143, 65_535.75, 1, 262_144, -262_144, 65_536, 1,
    ]);
    await writeFile(p, `5 4\n` + lines.slice(0, 5).join('\n') + '\n');
    const h = await readTextVectors(p);
    expect(h.vectors.buffer.byteLength).toBe(h.vectors.byteLength);
    expect(h.vectors).toEqual(t.vectors.subarray(0, 20));
    const part = await readTextVectors(p, { maxWords: 3 });
    expect(part.vectors).toEqual(Float32Array.of(0, 0, 0, 1, 1, -1, 0.25, 1, 2, -2, 0.5, 1));
  });
});

describe('vector cache', () => {
  const table = { words: ['a', 'b', 'c d'], dim: 2, vectors: Float32Array.of(1, 2, 3, 4, 5, 6) };
  it('writes and reads back a table with metadata', async () => {
    const base = join(dir, 'cache', 't');
    await writeVectorCache(base, table, { source: 'unit' });
    const back = await readVectorCache(base);
    expect(back).toMatchObject({
      words: table.words,
      dim: 2,
      vectors: table.vectors,
      metadata: { source: 'unit', format: 'salt-vectors', rows: '3' },
    });
    expect(JSON.parse(await readFile(vectorCachePaths(base).vocab, 'utf8'))).toEqual(table.words);
  });
  it('builds once, then reads the cache; rebuilds a mismatched cache', async () => {
    const base = join(dir, 'cache', 'c');
    let builds = 0;
    const build = async () => (builds++, table);
    expect((await cachedVectors(base, build)).words).toEqual(table.words);
    expect((await cachedVectors(base, build)).vectors).toEqual(table.vectors);
    expect(builds).toBe(1);
    await writeFile(vectorCachePaths(base).vocab, JSON.stringify(['only-one']));
    await expect(readVectorCache(base)).rejects.toThrow(
      expect.objectContaining({ code: 'E_FORMAT', message: expect.stringMatching(/expected \[1, dim\]/) }),
    );
    expect((await cachedVectors(base, build)).words).toEqual(table.words);
    expect(builds).toBe(2);
    // A cache whose safetensors file lacks the "vectors" tensor (E_NOT_FOUND) is rebuilt too.
    await writeSafetensors(
      vectorCachePaths(base).tensors,
      [{ name: 'other', dtype: 'F32', shape: [3, 2], data: new Float32Array(6) }],
      { overwrite: true },
    );
    await expect(readVectorCache(base)).rejects.toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }));
    expect((await cachedVectors(base, build)).vectors).toEqual(table.vectors);
    expect(builds).toBe(3);
    expect(await readVectorCache(base)).toMatchObject({ words: table.words, vectors: table.vectors });
  });
  it('converts a text file once, keyed by its size and time, and again after it changes', async () => {
    const p = join(dir, 'ct.vec');
    await writeFile(p, '2 2\nx 1 2\ny 3 4\n');
    const cache = join(dir, 'tcache');
    expect((await cachedTextVectors(p, { cache })).words).toEqual(['x', 'y']);
    const files = await readdir(join(cache, 'vectors'));
    expect(files.filter((f) => f.startsWith('ct.vec-')).length).toBe(2);
    expect((await cachedTextVectors(p, { cache })).vectors).toEqual(Float32Array.of(1, 2, 3, 4));
    await writeFile(p, '1 2\nz 5 6\n');
    await utimes(p, new Date(), new Date(Date.now() + 5000));
    expect((await cachedTextVectors(p, { cache })).words).toEqual(['z']);
  });

  it('validates tables', async () => {
    await expect(
      writeVectorCache(join(dir, 'x'), { words: ['a'], dim: 2, vectors: new Float32Array(3) }),
    ).rejects.toThrow(new SaltRangeError('table: 1 words x dim 2 = 2 values expected, vectors has 3', 'E_SHAPE'));
  });
});
