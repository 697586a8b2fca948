// writeDirect (lib/kernels/matrixOps.ts, native write_direct): a file range or encoded floats written
// at any offset, the whole 4 KiB blocks through an O_DIRECT descriptor, the partial ends through the
// page cache. Every expected byte comes from the source bytes or from the float bits themselves.
import { constants } from 'node:fs';
import { type FileHandle, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeDirect } from '../../lib/kernels/matrixOps.js';
import { tempFolder } from './helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder('salt-direct-')));
afterAll(async () => cleanup());

const code = (c: string) => expect.objectContaining({ code: c });

/** The file opened with O_DIRECT, or undefined where this file system refuses it. */
async function openDirectFd(path: string): Promise<FileHandle | undefined> {
  const flag = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (flag === undefined) return undefined;
  return open(path, constants.O_WRONLY | flag).catch(() => undefined);
}

/** An output file of `size` bytes of 0xee, so that bytes written outside the range would show. */
async function prefilled(name: string, size: number): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, Buffer.alloc(size, 0xee));
  return p;
}

async function withFiles<T>(out: string, direct: boolean, f: (fd: number, fdDirect: number) => Promise<T>): Promise<T> {
  const fh = await open(out, 'r+');
  const dh = direct ? await openDirectFd(out) : undefined;
  try {
    return await f(fh.fd, dh ? dh.fd : -1);
  } finally {
    await dh?.close();
    await fh.close();
  }
}

describe('writeDirect', () => {
  const srcPath = () => join(dir, 'src.bin');
  const src = Buffer.alloc((9 << 20) + 12345);
  beforeAll(async () => {
    for (let i = 0; i < src.length; i++) src[i] = (i * 31 + (i >> 11)) & 0xff;
    await writeFile(srcPath(), src);
  });

  // [output offset, source offset, length]: inside one block, across one boundary, block-aligned,
  // unaligned at both ends over several 8 MiB chunks, and empty.
  const cases: Array<[number, number, number]> = [
    [1, 5, 10],
    [4095, 0, 2],
    [4096, 4096, 3 * 4096],
    [100, 7, (8 << 20) + 5000],
    [8192 + 3, 1, 4096],
    [10, 0, 0],
  ];
  for (const direct of [true, false]) {
    for (const [at, from, length] of cases) {
      it(`copies ${length} bytes from ${from} to ${at} ${direct ? 'with' : 'without'} an O_DIRECT descriptor`, async () => {
        const size = at + length + 9000;
        const out = await prefilled(`range-${direct}-${at}-${length}.bin`, size);
        const used = await withFiles(out, direct, (fd, fdDirect) =>
          writeDirect(fd, fdDirect, at, { fdIn: srcFd, offsetIn: from, length }),
        );
        const got = await readFile(out);
        expect(got.length).toBe(size);
        expect(got.subarray(0, at).every((b) => b === 0xee)).toBe(true);
        expect(Buffer.compare(got.subarray(at, at + length), src.subarray(from, from + length))).toBe(0);
        expect(got.subarray(at + length).every((b) => b === 0xee)).toBe(true);
        // Direct I/O is used only for whole blocks, and only when asked for and available.
        const wholeBlock = Math.floor((at + length) / 4096) * 4096 - Math.ceil(at / 4096) * 4096 >= 4096;
        if (!direct || !wholeBlock) expect(used).toBe(false);
        else if ((await openDirectFd(out).then((h) => h?.close().then(() => true))) === true) expect(used).toBe(true);
      });
    }
  }

  let srcHandle: FileHandle;
  let srcFd: number;
  beforeAll(async () => {
    srcHandle = await open(srcPath(), 'r');
    srcFd = srcHandle.fd;
  });
  afterAll(async () => srcHandle.close());

  // Values exact in BF16 and F16 (8 significant bits), so the expected bits are the Float32 bits'
  // top half (BF16) and a hand-derived F16 encoding.
  const n = (2 << 20) + 1001; // over 4 MiB of BF16 and 8 MiB of F32
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = ((i % 256) - 128) / 8;
  const f32bits = new Uint32Array(values.buffer);
  const f16of = (v: number): number => {
    if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
    const sign = v < 0 ? 0x8000 : 0;
    const a = Math.abs(v);
    const e = Math.floor(Math.log2(a));
    const mant = Math.round((a / 2 ** e - 1) * 1024);
    return sign | ((e + 15) << 10) | mant;
  };
  for (const direct of [true, false]) {
    for (const [dtype, at] of [
      ['BF16', 2],
      ['BF16', 4096],
      ['F16', 4094],
      ['F32', 12],
    ] as const) {
      it(`encodes ${n} floats as ${dtype} at ${at} ${direct ? 'with' : 'without'} an O_DIRECT descriptor`, async () => {
        const es = dtype === 'F32' ? 4 : 2;
        const size = at + n * es + 5000;
        const out = await prefilled(`floats-${direct}-${dtype}-${at}.bin`, size);
        await withFiles(out, direct, (fd, fdDirect) => writeDirect(fd, fdDirect, at, { values, dtype }));
        const got = await readFile(out);
        expect(got.subarray(0, at).every((b) => b === 0xee)).toBe(true);
        expect(got.subarray(at + n * es).every((b) => b === 0xee)).toBe(true);
        let bad = -1;
        for (let i = 0; i < n && bad < 0; i++) {
          const want = dtype === 'F32' ? f32bits[i] : dtype === 'BF16' ? f32bits[i] >>> 16 : f16of(values[i]);
          const have = dtype === 'F32' ? got.readUInt32LE(at + 4 * i) : got.readUInt16LE(at + 2 * i);
          if (have !== want) bad = i;
        }
        expect(bad).toBe(-1);
      });
    }
  }

  // The 8 MiB direct-write buffers are kept for later calls (native aligned_buffer's pool): calls
  // running at once must never share one, and a kept buffer's old bytes must never reach a file.
  it('writes the right bytes from six calls at once, each using two 8 MiB buffers, twice over', async () => {
    const m = (5 << 20) + 333; // 10 MiB of BF16: two chunks per call
    for (const round of [0, 1]) {
      const jobs = Array.from({ length: 6 }, async (_, k) => {
        const v = new Float32Array(m);
        for (let i = 0; i < m; i++) v[i] = (((i + 37 * k + 101 * round) % 256) - 128) / 8;
        const out = await prefilled(`pool-${round}-${k}.bin`, 4096 + 2 * m + 4096);
        await withFiles(out, true, (fd, fdDirect) => writeDirect(fd, fdDirect, 4096, { values: v, dtype: 'BF16' }));
        const got = await readFile(out);
        const bits = new Uint32Array(v.buffer);
        let bad = -1;
        for (let i = 0; i < m && bad < 0; i++) if (got.readUInt16LE(4096 + 2 * i) !== bits[i] >>> 16) bad = i;
        expect(bad, `round ${round}, call ${k}`).toBe(-1);
        expect(got.subarray(4096 + 2 * m).every((b) => b === 0xee)).toBe(true);
      });
      await Promise.all(jobs);
    }
  });

  // Where the source offset of the first whole output block is block-aligned, the whole blocks are
  // written straight from a mapping of the source, 64 MiB at a time (native write_mapped): two
  // mapped chunks and a partial block at each end here, and the same range unaligned (pread).
  it('copies a range of 70 MiB whose whole blocks come from a mapping of the source, and the same range unaligned', async () => {
    const big = Buffer.alloc((70 << 20) + 777);
    for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 13)) >>> 0, i);
    const bigPath = join(dir, 'big-src.bin');
    await writeFile(bigPath, big);
    const h = await open(bigPath, 'r');
    try {
      for (const [at, from] of [
        [3 * 4096 + 7, 7],
        [4096 + 3, 5],
      ]) {
        const length = big.length - from - 300;
        const size = at + length + 5000;
        const out = await prefilled(`big-${at}.bin`, size);
        await withFiles(out, true, (fd, fdDirect) =>
          writeDirect(fd, fdDirect, at, { fdIn: h.fd, offsetIn: from, length }),
        );
        const got = await readFile(out);
        expect(got.subarray(0, at).every((b) => b === 0xee)).toBe(true);
        expect(Buffer.compare(got.subarray(at, at + length), big.subarray(from, from + length)), `at ${at}`).toBe(0);
        expect(got.subarray(at + length).every((b) => b === 0xee)).toBe(true);
      }
    } finally {
      await h.close();
    }
  });

  it('refuses a float offset that is not a multiple of the size, and names a source that ends early', async () => {
    const out = await prefilled('bad.bin', 100_000);
    await withFiles(out, true, async (fd, fdDirect) => {
      await expect(writeDirect(fd, fdDirect, 3, { values, dtype: 'BF16' })).rejects.toThrow(code('E_ARGUMENT'));
      await expect(
        writeDirect(fd, fdDirect, 0, { fdIn: srcFd, offsetIn: src.length - 10, length: 50_000 }),
      ).rejects.toThrow(/ended at byte/);
      // Block-aligned (the mapped path's case) and past the end: the same error.
      const aligned = Math.floor(src.length / 4096) * 4096 - 4096;
      await expect(writeDirect(fd, fdDirect, 4096, { fdIn: srcFd, offsetIn: aligned, length: 50_000 })).rejects.toThrow(
        /ended at byte/,
      );
      await expect(writeDirect(fd, -2, 0, { fdIn: srcFd, offsetIn: 0, length: 1 })).rejects.toThrow(code('E_ARGUMENT'));
    });
  });
});
