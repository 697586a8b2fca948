import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SaltError, SaltRangeError } from '../../lib/errors.js';
import { SafetensorsCheckpoint, writeCheckpoint } from '../../lib/io/checkpoint.js';
import { rng, tempFolder } from './helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(async () => cleanup());
const code = (c: string) => expect.objectContaining({ code: c });

describe('writeCheckpoint + SafetensorsCheckpoint', () => {
  const r = rng(3);
  const a = new Float32Array(3000).map(() => r() * 2 - 1);
  const b = new Float32Array(500).map(() => r() * 1000);
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    for (const sharded of [false, true]) {
      it(`${dtype} ${sharded ? 'sharded' : 'single'}: write -> read -> write reproduces every byte`, async () => {
        const f1 = join(dir, `${dtype}-${sharded}-1`);
        const f2 = join(dir, `${dtype}-${sharded}-2`);
        await mkdir(f1);
        await mkdir(f2);
        const limit = sharded ? (dtype === 'F32' ? 2000 : 1000) : undefined;
        const w1 = await writeCheckpoint(
          f1,
          [
            { name: 'a', dtype, shape: [30, 100], data: a },
            { name: 'b', dtype, shape: [500], data: b },
            { name: 'c', dtype, shape: [2, 2], data: Float32Array.of(0, -0, Infinity, NaN) },
          ],
          { maxShardBytes: limit },
        );
        expect(w1.files).toEqual(
          sharded
            ? [
                'model-00001-of-00003.safetensors',
                'model-00002-of-00003.safetensors',
                'model-00003-of-00003.safetensors',
                'model.safetensors.index.json',
              ]
            : ['model.safetensors'],
        );
        const cp = await SafetensorsCheckpoint.open(f1);
        expect(cp.names()).toEqual(['a', 'b', 'c']);
        const ra = await cp.readFloat32('a');
        const rb = await cp.readFloat32('b');
        const rc = await cp.readFloat32('c');
        if (dtype === 'F32') {
          expect(ra).toEqual(a);
          expect(rb).toEqual(b);
        }
        expect([rc[0], Object.is(rc[1], -0), rc[2], Number.isNaN(rc[3])]).toEqual([0, true, Infinity, true]);
        await cp.close();
        await writeCheckpoint(
          f2,
          [
            { name: 'a', dtype, shape: [30, 100], data: ra },
            { name: 'b', dtype, shape: [500], data: rb },
            { name: 'c', dtype, shape: [2, 2], data: rc },
          ],
          { maxShardBytes: limit },
        );
        for (const f of w1.files)
          expect(Buffer.compare(await readFile(join(f1, f)), await readFile(join(f2, f)))).toBe(0);
        if (sharded) {
          const idx = JSON.parse(await readFile(join(f1, 'model.safetensors.index.json'), 'utf8'));
          const item = dtype === 'F32' ? 4 : 2;
          expect(idx.metadata.total_size).toBe((3000 + 500 + 4) * item);
          expect(Object.keys(idx.weight_map)).toEqual(['a', 'b', 'c']);
        }
      });
    }
  }

  it('refuses to overwrite existing checkpoint files', async () => {
    const f = join(dir, 'exists');
    await mkdir(f);
    await writeFile(join(f, 'model.safetensors'), 'not ours');
    await expect(
      writeCheckpoint(f, [{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) }]),
    ).rejects.toThrow(
      new SaltError('E_EXISTS', `refusing to overwrite ${JSON.stringify(join(f, 'model.safetensors'))}`),
    );
    expect(await readFile(join(f, 'model.safetensors'), 'utf8')).toBe('not ours');
    expect(await readdir(f)).toEqual(['model.safetensors']);
  });

  it('validates every tensor before writing anything: duplicates across shards, bad specs', async () => {
    const f = join(dir, 'invalid');
    const one = (name: string) => ({ name, dtype: 'F32' as const, shape: [4], data: new Float32Array(4) });
    // 16 bytes per tensor, 16-byte shards: the two "a" would land in different shards.
    await expect(writeCheckpoint(f, [one('a'), one('b'), one('a')], { maxShardBytes: 16 })).rejects.toThrow(
      new SaltRangeError('tensor name "a" is used twice', 'E_ARGUMENT'),
    );
    await expect(
      writeCheckpoint(f, [one('a'), { name: 'b', dtype: 'F32', data: new Float32Array(1) } as never], {
        maxShardBytes: 16,
      }),
    ).rejects.toThrow(
      new SaltRangeError(
        'tensor "b": shape must be an array of non-negative integers, received nothing (the value is missing)',
        'E_ARGUMENT',
      ),
    );
    await expect(
      writeCheckpoint(f, [one('a'), { name: 'b', dtype: 'F32', shape: 4, data: new Float32Array(4) } as never]),
    ).rejects.toThrow(code('E_ARGUMENT'));
    await expect(writeCheckpoint(f, { length: 1 } as never)).rejects.toThrow(
      expect.objectContaining({ code: 'E_TYPE', message: 'tensors must be an array, received object {"length":1}' }),
    );
    await expect(writeCheckpoint(f, [one('a'), null as never])).rejects.toThrow(code('E_TYPE'));
    await expect(readdir(f)).rejects.toThrow(); // nothing was created
  });

  it('keeps a tensor named "__proto__" in the shards and in the index', async () => {
    const f = join(dir, 'proto');
    const w = await writeCheckpoint(
      f,
      [
        { name: '__proto__', dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) },
        { name: 'constructor', dtype: 'F32', shape: [2], data: Float32Array.of(3, 4) },
      ],
      { maxShardBytes: 8 },
    );
    expect(w.files.length).toBe(3);
    const idx = await readFile(join(f, 'model.safetensors.index.json'), 'utf8');
    expect(idx).toContain('"__proto__": "model-00001-of-00002.safetensors"');
    const cp = await SafetensorsCheckpoint.open(f);
    expect(cp.names()).toEqual(['__proto__', 'constructor']);
    expect([...(await cp.readFloat32('__proto__'))]).toEqual([1, 2]);
    await cp.close();
  });

  it('rejects bad index files with E_FORMAT', async () => {
    const f = join(dir, 'badidx');
    await mkdir(f);
    await writeCheckpoint(f, [{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) }], { stem: 'part' });
    const idx = join(f, 'model.safetensors.index.json');
    await writeFile(idx, JSON.stringify({ weight_map: { x: '../part.safetensors' } }));
    await expect(SafetensorsCheckpoint.open(f)).rejects.toThrow(
      new SaltError(
        'E_FORMAT',
        `${idx}: weight_map values must be plain file names in the same folder, received "../part.safetensors"`,
      ),
    );
    await writeFile(idx, JSON.stringify({ weight_map: { y: 'part.safetensors' } }));
    await expect(SafetensorsCheckpoint.open(f)).rejects.toThrow(
      /maps tensor "y" to part.safetensors, which has no such tensor/,
    );
    await writeFile(idx, JSON.stringify({ weight_map: { x: 'missing.safetensors' } }));
    await expect(SafetensorsCheckpoint.open(f)).rejects.toThrow(code('E_NOT_FOUND'));
    await writeFile(idx, '{"weight_map": [');
    await expect(SafetensorsCheckpoint.open(f)).rejects.toThrow(code('E_FORMAT'));
    await writeFile(idx, JSON.stringify({ weight_map: {} }));
    await expect(SafetensorsCheckpoint.open(f)).rejects.toThrow(/weight_map is empty/);
    expect((await readdir(f)).sort()).toEqual(['model.safetensors.index.json', 'part.safetensors']);
  });
});
