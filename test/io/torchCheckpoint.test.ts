/**
 * PyTorch checkpoints read without executing code: fixtures written by the real `torch.save` (and
 * huggingface_hub's sharding, as transformers 4 wrote `.bin` models) in beforeAll, every tensor
 * compared with what Python itself reports; malicious pickles refused with E_UNSAFE; a seeded fuzz
 * of mutated, truncated and extended files.
 *
 * Needs the Python test environment (`bash scripts/python-env.sh`, torch + transformers): when it
 * is absent the tests are skipped with a message; in CI (`CI` set) they run and fail.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SaltError } from '../../lib/errors.js';
import { PYTORCH_INDEX, SafetensorsCheckpoint } from '../../lib/io/checkpoint.js';
import { HfModel } from '../../lib/io/hfModel.js';
import { TorchFile, unpickle } from '../../lib/io/torchCheckpoint.js';
import { writeTransferredModel } from '../../lib/io/writeModel.js';
import { rng, tempFolder } from './helpers/tmp.js';

const python = join(
  process.env.SALT_PYTHON_ENV ??
    join(process.env.SALT_CACHE_DIR ?? join(homedir(), '.cache', 'salt-transfer'), 'interop-venv'),
  'bin',
  'python',
);
const inCI = !!process.env.CI;
const skip = !existsSync(python) && !inCI;
if (skip)
  console.warn(
    `PyTorch checkpoint tests skipped: no Python test environment at ${python} (run bash scripts/python-env.sh)`,
  );

interface Expected {
  name: string;
  dtype: string;
  shape: number[];
  contiguous: boolean;
  float: boolean;
  i: number;
}

function code(c: string) {
  return expect.objectContaining({ code: c });
}

describe.skipIf(skip)('TorchFile (fixtures from torch.save)', () => {
  let dir = '';
  let cleanup: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempFolder('salt-torch-'));
    const r = spawnSync(python, [join(__dirname, 'helpers', 'torch_fixtures.py'), dir], {
      encoding: 'utf8',
      timeout: 240_000,
    });
    if (r.status !== 0) throw new Error(`torch_fixtures.py failed (${r.status}): ${r.stderr || r.error}`);
  }, 300_000);
  afterAll(() => cleanup());

  /** Compares every tensor of `reader` with the values Python wrote for `expectedDir`. */
  async function compareAll(
    reader: {
      readBytes(n: string): Promise<Buffer>;
      readFloat32(n: string, o?: { shared?: boolean }): Promise<Float32Array>;
      info(n: string): { dtype: string; shape: readonly number[] };
    },
    expectedDir: string,
  ): Promise<number> {
    const manifest = JSON.parse(await readFile(join(expectedDir, 'manifest.json'), 'utf8')) as Expected[];
    for (const e of manifest) {
      const info = reader.info(e.name);
      expect([e.name, info.dtype, [...info.shape]]).toEqual([e.name, e.dtype, e.shape]);
      const raw = await readFile(join(expectedDir, `${e.i}.raw`));
      expect((await reader.readBytes(e.name)).equals(raw), e.name).toBe(true);
      if (e.float) {
        const f32 = await readFile(join(expectedDir, `${e.i}.f32`));
        const got = await reader.readFloat32(e.name);
        expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(f32), e.name).toBe(true);
        // The same values in shared memory (contiguous, strided and F32 tensors alike).
        const shared = await reader.readFloat32(e.name, { shared: true });
        expect(shared.buffer, e.name).toBeInstanceOf(SharedArrayBuffer);
        expect(Buffer.from(shared.buffer, shared.byteOffset, shared.byteLength).equals(f32), e.name).toBe(true);
      }
    }
    return manifest.length;
  }

  it('reads every dtype (F32, F16, BF16, F64, integers, bool, a scalar, an empty tensor) as Python reports them', async () => {
    const f = await TorchFile.open(join(dir, 'dtypes.bin'));
    expect(await compareAll(f, join(dir, 'dtypes.bin.expected'))).toBe(13);
    await expect(f.readFloat32('i64')).rejects.toThrow(code('E_UNSUPPORTED'));
    await expect(f.readBytes('nope')).rejects.toThrow(code('E_NOT_FOUND'));
    await f.close();
  });

  it('reads views: storage offsets, shared storages, transposed / strided / expanded views, Parameters', async () => {
    const f = await TorchFile.open(join(dir, 'views.bin'));
    expect(await compareAll(f, join(dir, 'views.bin.expected'))).toBe(11);
    // Shared storages: the tied pair and the views of m point into one storage entry.
    expect(f.info('emb').storageKey).toBe(f.info('head').storageKey);
    expect(f.info('m_t').storageKey).toBe(f.info('m').storageKey);
    expect(f.info('offset_view')).toMatchObject({ storageOffset: 4, contiguous: true, stride: [3, 1] });
    expect(f.info('m_t')).toMatchObject({ contiguous: false, stride: [1, 5] });
    // Row ranges of a non-contiguous view are gathered too.
    const all = await f.readFloat32('m_t');
    expect(await f.readFloat32('m_t', { rowStart: 2, rowEnd: 4 })).toEqual(all.subarray(8, 16));
    const chunks: Buffer[] = [];
    for await (const c of f.streamBytes('m_block', 7)) chunks.push(c);
    expect(Buffer.concat(chunks).equals(await f.readBytes('m_block'))).toBe(true);
    const contiguousChunks: Buffer[] = [];
    for await (const c of f.streamBytes('m', 7)) contiguousChunks.push(c);
    expect(contiguousChunks.map((c) => c.length)).toEqual([...Array(11).fill(7), 3]);
    expect(Buffer.concat(contiguousChunks).equals(await f.readBytes('m'))).toBe(true);
    // Row ranges of contiguous F16 views at a storage offset.
    const tail = await f.readFloat32('h_tail');
    expect(await f.readFloat32('h_tail', { rowStart: 1, rowEnd: 3 })).toEqual(tail.subarray(1, 3));
    await expect(f.readFloat32('h_tail', { rowStart: 2, rowEnd: 5 })).rejects.toThrow(code('E_ARGUMENT'));
    await f.close();
  });

  it('refuses compressed entries, big-endian files and the legacy (non-zip) format with E_UNSUPPORTED', async () => {
    await expect(TorchFile.open(join(dir, 'deflated.bin'))).rejects.toThrow(/is compressed \(method 8\)/);
    await expect(TorchFile.open(join(dir, 'deflated.bin'))).rejects.toThrow(code('E_UNSUPPORTED'));
    await expect(TorchFile.open(join(dir, 'bigendian.bin'))).rejects.toThrow(/big-endian/);
    await expect(TorchFile.open(join(dir, 'legacy.bin'))).rejects.toThrow(/legacy \(non-zip, torch < 1\.6\)/);
    await expect(TorchFile.open(join(dir, 'legacy.bin'))).rejects.toThrow(code('E_UNSUPPORTED'));
  });

  it('refuses content that is not a flat state dict, and views larger than the file, with E_UNSUPPORTED', async () => {
    await expect(TorchFile.open(join(dir, 'expand_big.bin'))).rejects.toThrow(
      /tensor "x" is an overlapping view \(size \[1000000\], stride \[0\]\) of 4000000 bytes, larger than the \d+-byte file/,
    );
    await expect(TorchFile.open(join(dir, 'nontensor.bin'))).rejects.toThrow(
      /state dict entry "n" must be a tensor, received 3/,
    );
    await expect(TorchFile.open(join(dir, 'nested.bin'))).rejects.toThrow(
      /state dict entry "state_dict" must be a tensor, received dict/,
    );
    await expect(TorchFile.open(join(dir, 'nested.bin'))).rejects.toThrow(code('E_UNSUPPORTED'));
  });

  it('refuses pickles naming os.system or builtins.eval with E_UNSAFE, executing nothing', async () => {
    await expect(TorchFile.open(join(dir, 'evil_system.bin'))).rejects.toThrow(code('E_UNSAFE'));
    await expect(TorchFile.open(join(dir, 'evil_system.bin'))).rejects.toThrow(/global "(posix|os)\.system"/);
    await expect(TorchFile.open(join(dir, 'evil_eval.bin'))).rejects.toThrow(/global "(__builtin__|builtins)\.eval"/);
    const folder = join(dir, 'evil-folder');
    await mkdir(folder);
    await copyFile(join(dir, 'evil_eval.bin'), join(folder, 'pytorch_model.bin'));
    await expect(SafetensorsCheckpoint.open(folder)).rejects.toThrow(code('E_UNSAFE'));
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
    // Opcodes that call code are refused too, and so is a global given by STACK_GLOBAL.
    expect(() => unpickle(Buffer.from([0x80, 2, 0x81]), 'x')).toThrow(code('E_UNSAFE'));
    const stackGlobal = Buffer.concat([
      Buffer.from([0x80, 4, 0x8c, 8]),
      Buffer.from('builtins'),
      Buffer.from([0x8c, 4]),
      Buffer.from('exec'),
      Buffer.from([0x93, 0x2e]),
    ]);
    expect(() => unpickle(stackGlobal, 'x')).toThrow(/"builtins\.exec"/);
  });

  it('opens sharded (pytorch_model.bin.index.json) and single pytorch_model.bin folders; every tensor equals Python', async () => {
    for (const name of ['bert-sharded', 'bert-bin']) {
      const cp = await SafetensorsCheckpoint.open(join(dir, name));
      expect(cp.format).toBe('pytorch');
      expect(cp.files.length).toBe(name === 'bert-sharded' ? 2 : 1);
      expect(await compareAll(cp, join(dir, 'bert.expected'))).toBe(cp.names().length);
      await cp.close();
    }
    const idx = JSON.parse(await readFile(join(dir, 'bert-sharded', PYTORCH_INDEX), 'utf8'));
    expect(Object.keys(idx.weight_map).length).toBeGreaterThan(10);
  });

  it('HfModel.open on a pytorch_model.bin folder gives the same embeddings as the safetensors version; the writer writes safetensors', async () => {
    const st = await HfModel.open(join(dir, 'bert-st'));
    for (const name of ['bert-bin', 'bert-sharded']) {
      const pt = await HfModel.open(join(dir, name));
      expect(pt.embeddings.input.name).toBe(st.embeddings.input.name);
      expect(await pt.readInputEmbedding()).toEqual(await st.readInputEmbedding());
      expect(await pt.readOutputHead()).toEqual(await st.readOutputHead());
      for (const t of st.weights.tensors())
        expect((await pt.weights.readBytes(t.name)).equals(await st.weights.readBytes(t.name))).toBe(true);
      await pt.close();
    }
    await st.close();
    // Transfer-style write from the .bin folder: safetensors out, same tensors.
    const out = join(dir, 'bert-out');
    const src = await HfModel.open(join(dir, 'bert-sharded'));
    const V = src.config.vocabSize;
    const W = src.config.embeddingWidth;
    expect(V).toBe(64);
    const E = new Float32Array(V * W).map((_, i) => i / 7);
    await writeTransferredModel({ source: src, output: out, tokenizer: join(dir, 'bert-tok'), inputEmbedding: E });
    await src.close();
    const written = await readdir(out);
    expect(written.filter((f) => f.endsWith('.bin') || f === PYTORCH_INDEX)).toEqual([]);
    // The shard layout is kept: pytorch_model-0000i-of-00002.bin -> model-0000i-of-00002.safetensors,
    // each tensor in the same shard as in the .bin index.
    const binIndex = JSON.parse(await readFile(join(dir, 'bert-sharded', PYTORCH_INDEX), 'utf8'));
    const stIndex = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(Object.keys(stIndex.weight_map)).toEqual(Object.keys(binIndex.weight_map));
    for (const [k, f] of Object.entries(binIndex.weight_map as Record<string, string>))
      expect(stIndex.weight_map[k]).toBe((f as string).replace(/^pytorch_model(.*)\.bin$/, 'model$1.safetensors'));
    expect(written.filter((f) => f.endsWith('.safetensors')).sort()).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    const back = await SafetensorsCheckpoint.open(out);
    expect(back.format).toBe('safetensors');
    for (const f of back.files) expect(back.fileMetadata(f)).toEqual({ format: 'pt' });
    expect(await back.readFloat32('embeddings.word_embeddings.weight')).toEqual(E);
    for (const t of back.tensors())
      if (t.name !== 'embeddings.word_embeddings.weight')
        expect(
          (await back.readBytes(t.name)).equals(
            await readFile(join(dir, 'bert.expected', `${expectedIndex(t.name)}.raw`)),
          ),
        ).toBe(true);
    await back.close();
  });

  let bertManifest: Expected[] = [];
  function expectedIndex(name: string): number {
    const e = bertManifest.find((m) => m.name === name);
    if (!e) throw new Error(`no expected values for ${name}`);
    return e.i;
  }
  beforeAll(async () => {
    bertManifest = JSON.parse(await readFile(join(dir, 'bert.expected', 'manifest.json'), 'utf8')) as Expected[];
  });

  it('fuzz: 100,000 seeded mutated / truncated / extended small torch files load or throw a coded SaltError', async () => {
    const base = await readFile(join(dir, 'small.bin'));
    const ok = await TorchFile.fromBuffer(base, 'small');
    expect(ok.names()).toEqual(['a', 'a_t', 'b', 'c']);
    expect([...(await ok.readFloat32('a_t'))]).toEqual([0, 3, 1, 4, 2, 5]);
    expect([...(await ok.readFloat32('c'))]).toEqual([1, 2, 3]);
    const rand = rng(14);
    const N = 100_000;
    let loaded = 0;
    const codes = new Map<string, number>();
    const t0 = performance.now();
    for (let it = 0; it < N; it++) {
      let b: Buffer;
      const kind = it % 10;
      if (kind < 6) {
        // 1-4 random byte changes (half of them inside the pickle or the zip directories).
        b = Buffer.from(base);
        const k = 1 + Math.floor(rand() * 4);
        for (let j = 0; j < k; j++) {
          const region = rand();
          const pos =
            region < 0.4
              ? 64 + Math.floor(rand() * 400) // data.pkl
              : region < 0.7
                ? b.length - 1 - Math.floor(rand() * 700) // central directory and end records
                : Math.floor(rand() * b.length);
          b[Math.max(0, Math.min(b.length - 1, pos))] = rand() < 0.3 ? 0xff : Math.floor(rand() * 256);
        }
      } else if (kind < 8) {
        b = base.subarray(0, Math.floor(rand() * base.length)); // truncated
      } else if (kind < 9) {
        b = Buffer.concat([base, Buffer.alloc(1 + Math.floor(rand() * 64), Math.floor(rand() * 256))]); // extended
      } else {
        b = Buffer.from(base); // a 32-bit field of the zip set to an extreme value
        const pos = Math.floor(rand() * (b.length - 4));
        b.writeUInt32LE([0xffffffff, 0x7fffffff, 0, b.length][Math.floor(rand() * 4)], pos);
      }
      try {
        const f = await TorchFile.fromBuffer(b, 'fuzz');
        for (const n of f.names()) {
          await f.readBytes(n);
          const d = f.info(n).dtype;
          if (d === 'F32' || d === 'F16' || d === 'BF16') await f.readFloat32(n);
        }
        loaded++;
      } catch (err) {
        if (!(err instanceof SaltError) || typeof (err as SaltError).code !== 'string')
          throw new Error(
            `fuzz case ${it} (kind ${kind}) threw a non-SaltError: ${(err as Error)?.stack ?? String(err)}`,
          );
        const c = (err as SaltError).code;
        codes.set(c, (codes.get(c) ?? 0) + 1);
      }
    }
    const secs = (performance.now() - t0) / 1000;
    console.log(
      `torch fuzz: ${N} files in ${secs.toFixed(1)} s, ${loaded} loaded, refused by code: ${JSON.stringify(Object.fromEntries(codes))}`,
    );
    expect(loaded).toBeGreaterThan(0);
    expect(loaded).toBeLessThan(N);
  }, 120_000);
});

describe('unpickle limits (no Python needed)', () => {
  it('refuses unknown opcodes, truncation, a missing STOP, too many MARKs and GETs of unset memo entries with codes', () => {
    expect(() => unpickle(Buffer.from([0x80, 2, 0x4b]), 'p')).toThrow(code('E_FORMAT'));
    expect(() => unpickle(Buffer.from([0x80, 2, 0x4e]), 'p')).toThrow(/without STOP/);
    expect(() => unpickle(Buffer.from([0x80, 2, 0x68, 3]), 'p')).toThrow(/never PUT/);
    expect(() => unpickle(Buffer.from([0x80, 2, 0x49, 0x2e]), 'p')).toThrow(code('E_UNSUPPORTED'));
    expect(() => unpickle(Buffer.alloc(5000, 0x28), 'p')).toThrow(/more than 4096 MARKs/);
    expect(unpickle(Buffer.from([0x80, 2, 0x7d, 0x4b, 1, 0x4b, 2, 0x73, 0x2e]), 'p')).toBeTruthy();
    // A stack of 2^20 + 1 Nones and a memo of 2^20 + 1 entries are refused.
    expect(() => unpickle(Buffer.concat([Buffer.from([0x80, 2]), Buffer.alloc((1 << 20) + 1, 0x4e)]), 'p')).toThrow(
      /stack deeper than 1048576/,
    );
    const memo = Buffer.alloc(3 + 5 * ((1 << 20) + 1));
    memo.set([0x80, 2, 0x4e]);
    for (let i = 0; i <= 1 << 20; i++) {
      memo[3 + 5 * i] = 0x72;
      memo.writeUInt32LE(i, 4 + 5 * i);
    }
    expect(() => unpickle(memo, 'p')).toThrow(/memo larger than 1048576 entries/);
  });

  it('refuses a file that is not a zip with E_FORMAT', async () => {
    await expect(
      TorchFile.fromBuffer(Buffer.from('not a zip at all, just some text to be long enough')),
    ).rejects.toThrow(code('E_FORMAT'));
  });
});
