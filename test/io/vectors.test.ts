import { readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SaltError } from '../../lib/errors.js';
import { cachedTextVectors, cachedVectors, indexWords, readTextVectors, readVectorCache, writeVectorCache, vectorCachePaths } from '../../lib/io/vectors.js';
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
    await expect(readTextVectors(p)).rejects.toThrow(new SaltError('E_FORMAT', `${p}:3: expected a word and 3 numbers, got 2 fields after the first`));
    await writeFile(p, 'the 1 x 3\n');
    await expect(readTextVectors(p)).rejects.toThrow(new SaltError('E_FORMAT', `${p}:1: value 2 of "the" is not a number: "x"`));
    await writeFile(p, '3 2\nthe 1 2\n');
    await expect(readTextVectors(p)).rejects.toThrow(new SaltError('E_FORMAT', `${p}: header declares 3 vectors, file has 1`));
    await writeFile(p, '');
    await expect(readTextVectors(p)).rejects.toThrow(/no vectors found/);
    await expect(readTextVectors(join(dir, 'missing.vec'))).rejects.toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }));
  });
});

describe('vector cache', () => {
  const table = { words: ['a', 'b', 'c d'], dim: 2, vectors: Float32Array.of(1, 2, 3, 4, 5, 6) };
  it('writes and reads back a table with metadata', async () => {
    const base = join(dir, 'cache', 't');
    await writeVectorCache(base, table, { source: 'unit' });
    const back = await readVectorCache(base);
    expect(back).toMatchObject({ words: table.words, dim: 2, vectors: table.vectors, metadata: { source: 'unit', format: 'salt-vectors', rows: '3' } });
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
    await expect(readVectorCache(base)).rejects.toThrow(expect.objectContaining({ code: 'E_FORMAT', message: expect.stringMatching(/expected \[1, dim\]/) }));
    expect((await cachedVectors(base, build)).words).toEqual(table.words);
    expect(builds).toBe(2);
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
    await expect(writeVectorCache(join(dir, 'x'), { words: ['a'], dim: 2, vectors: new Float32Array(3) })).rejects.toThrow(
      new SaltError('E_SHAPE', 'table: 1 words x dim 2 = 2 values expected, vectors has 3'),
    );
  });
});
