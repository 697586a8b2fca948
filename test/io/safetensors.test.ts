import { open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SaltError, SaltRangeError, SaltTypeError } from '../../lib/errors.js';
import {
  bytesToFloat32,
  MAX_HEADER_BYTES,
  openDirect,
  SafetensorsFile,
  safetensorsHeaderBound,
  safetensorsLayout,
  writeBytesAt,
  writeSafetensors,
  writeTensorsAt,
} from '../../lib/io/safetensors.js';
import { copyFileRange, startWriteback } from '../../lib/kernels/matrixOps.js';
import { handMade, rng, tempFolder } from './helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(async () => cleanup());

const code = (c: string) => expect.objectContaining({ code: c });

/** Two tensors laid out by hand: a 2x3 F32 and a 4-element F16. */
function sample(): { buf: Buffer; f32: Float32Array } {
  const f32 = Float32Array.of(1, 2, 3, -4, 5.5, 1e-3);
  const f16 = Buffer.alloc(8);
  [0x3c00, 0xc000, 0x7c00, 0x0001].forEach((v, i) => f16.writeUInt16LE(v, 2 * i));
  const data = Buffer.concat([Buffer.from(f32.buffer), f16]);
  const buf = handMade(
    {
      __metadata__: { format: 'pt' },
      w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
      h: { dtype: 'F16', shape: [4], data_offsets: [24, 32] },
    },
    data,
  );
  return { buf, f32 };
}

describe('SafetensorsFile.open / fromBuffer', () => {
  it('reads a hand-made file: names, infos, metadata, F32 rows and F16', async () => {
    const { buf, f32 } = sample();
    const p = join(dir, 'sample.safetensors');
    await writeFile(p, buf);
    const f = await SafetensorsFile.open(p);
    try {
      expect(f.names()).toEqual(['w', 'h']);
      expect(f.metadata).toEqual({ format: 'pt' });
      expect(f.info('w')).toMatchObject({ dtype: 'F32', shape: [2, 3], numel: 6, byteLength: 24 });
      expect(await f.readFloat32('w')).toEqual(f32);
      expect(await f.readFloat32('w', { rowStart: 1, rowEnd: 2 })).toEqual(f32.subarray(3));
      expect([...(await f.readFloat32('h'))]).toEqual([1, -2, Infinity, 2 ** -24]);
      expect(Buffer.compare(await f.readBytes('h'), buf.subarray(buf.length - 8))).toBe(0);
      const chunks = [];
      for await (const c of f.streamBytes('w', 10)) chunks.push(c);
      expect(chunks.map((c) => c.length)).toEqual([10, 10, 4]);
      await expect(f.readFloat32('w', { rowStart: 1, rowEnd: 3 })).rejects.toThrow(code('E_ARGUMENT'));
      await expect(f.readFloat32('nope')).rejects.toThrow(/no tensor named "nope"/);
      expect(() => f.info('nope')).toThrow(code('E_NOT_FOUND'));
    } finally {
      await f.close();
    }
  });

  it('lists every dtype but rejects non-float dtypes only when read as Float32', async () => {
    const i64 = Buffer.alloc(16);
    i64.writeBigInt64LE(-5n, 0);
    i64.writeBigInt64LE(7n, 8);
    const f = await SafetensorsFile.fromBuffer(
      handMade(
        {
          ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] },
          b: { dtype: 'BOOL', shape: [0], data_offsets: [16, 16] },
        },
        i64,
      ),
    );
    expect(f.info('ids').dtype).toBe('I64');
    expect((await f.readBytes('ids')).readBigInt64LE(8)).toBe(7n);
    await expect(f.readFloat32('ids')).rejects.toThrow(
      new SaltError(
        'E_UNSUPPORTED',
        '<buffer>: tensor "ids" has dtype I64; only F32, F16 and BF16 can be read as Float32 (use readBytes for raw bytes)',
      ),
    );
  });

  it('accepts the packed and newer dtypes of the format (F4, F6, F8_E8M0, C64) and rejects them only when read as Float32', async () => {
    const f = await SafetensorsFile.fromBuffer(
      handMade(
        {
          f4: { dtype: 'F4', shape: [2, 2], data_offsets: [0, 2] },
          f6: { dtype: 'F6_E2M3', shape: [4], data_offsets: [2, 5] },
          e8: { dtype: 'F8_E8M0', shape: [1], data_offsets: [5, 6] },
          c: { dtype: 'C64', shape: [1], data_offsets: [6, 14] },
        },
        Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
      ),
    );
    expect(f.tensors().map((t) => [t.name, t.dtype, t.byteLength])).toEqual([
      ['f4', 'F4', 2],
      ['f6', 'F6_E2M3', 3],
      ['e8', 'F8_E8M0', 1],
      ['c', 'C64', 8],
    ]);
    expect([...(await f.readBytes('f6'))]).toEqual([3, 4, 5]);
    await expect(f.readFloat32('f4')).rejects.toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED' }));
  });

  const bad: Array<[string, () => Buffer, string | RegExp]> = [
    [
      'packed dtype not filling whole bytes',
      () => handMade({ a: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, Buffer.alloc(2)),
      /shape \[3\] of packed F4 is not a whole number of bytes/,
    ],
    ['too short', () => Buffer.alloc(5), /too short/],
    [
      'header length over 100 MB',
      () => {
        const b = Buffer.alloc(16);
        b.writeBigUInt64LE(BigInt(MAX_HEADER_BYTES + 1));
        return b;
      },
      /exceeds the limit of 100000000/,
    ],
    [
      'header length past the end',
      () => {
        const b = Buffer.alloc(16);
        b.writeBigUInt64LE(100n);
        return b;
      },
      /header length 100 runs past the end of the 16-byte file/,
    ],
    [
      'huge 64-bit length',
      () => {
        const b = Buffer.alloc(16, 0xff);
        return b;
      },
      /exceeds the limit/,
    ],
    [
      'not JSON',
      () => {
        const j = Buffer.from('{"a":');
        const p = Buffer.alloc(8);
        p.writeBigUInt64LE(BigInt(j.length));
        return Buffer.concat([p, j]);
      },
      /not valid JSON/,
    ],
    [
      'invalid UTF-8',
      () => {
        const j = Buffer.from([0x7b, 0xff, 0x7d]);
        const p = Buffer.alloc(8);
        p.writeBigUInt64LE(3n);
        return Buffer.concat([p, j]);
      },
      /not valid UTF-8/,
    ],
    ['array header', () => handMade([1, 2], Buffer.alloc(0)), /must be a JSON object, received an array/],
    [
      'unknown dtype',
      () => handMade({ a: { dtype: 'F31', shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(4)),
      /tensor "a" has unknown dtype "F31"/,
    ],
    [
      'shape x itemsize != length',
      () => handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, Buffer.alloc(8)),
      /shape \[2\] x 4 bytes \(F32\) = 8 bytes, but data_offsets span 4/,
    ],
    [
      'negative dim',
      () => handMade({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, Buffer.alloc(4)),
      /non-negative integers, received -1/,
    ],
    [
      'fractional dim',
      () => handMade({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, Buffer.alloc(4)),
      /non-negative integers/,
    ],
    [
      'offsets past data area',
      () => handMade({ a: { dtype: 'U8', shape: [8], data_offsets: [0, 8] } }, Buffer.alloc(4)),
      /run past the end of the data area \(4 bytes\)/,
    ],
    [
      'reversed offsets',
      () => handMade({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 0] } }, Buffer.alloc(4)),
      /0 <= begin <= end/,
    ],
    [
      'three offsets',
      () => handMade({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4, 4] } }, Buffer.alloc(4)),
      /must be \[begin, end\]/,
    ],
    [
      'overlap',
      () =>
        handMade(
          {
            a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
            b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] },
          },
          Buffer.alloc(6),
        ),
      /tensors "a" \[0, 4\] and "b" \[2, 6\] overlap/,
    ],
    [
      'a gap between tensors',
      () =>
        handMade(
          {
            a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
            b: { dtype: 'U8', shape: [2], data_offsets: [4, 6] },
          },
          Buffer.alloc(6),
        ),
      /data area bytes \[2, 4\) belong to no tensor \(gap before "b"\)/,
    ],
    [
      'trailing bytes',
      () => handMade({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, Buffer.alloc(3)),
      /tensors cover 2 bytes of the 3-byte data area/,
    ],
    [
      'metadata value not a string',
      () => handMade({ __metadata__: { n: 1 } }, Buffer.alloc(0)),
      /"__metadata__" value for key "n" must be a string, received 1/,
    ],
    [
      'metadata not an object',
      () => handMade({ __metadata__: 'x' }, Buffer.alloc(0)),
      /"__metadata__" must be an object of strings/,
    ],
    [
      'unknown field',
      () => handMade({ a: { dtype: 'U8', shape: [0], data_offsets: [0, 0], extra: 1 } }, Buffer.alloc(0)),
      /unknown field "extra"/,
    ],
    ['tensor entry not an object', () => handMade({ a: 3 }, Buffer.alloc(0)), /tensor "a" must be an object/],
    [
      'offsets beyond 2^53',
      () =>
        handMade(
          // eslint-disable-next-line no-loss-of-precision -- deliberately past 2^53: the reader must refuse it
          { a: { dtype: 'U8', shape: [0], data_offsets: [9007199254740993, 9007199254740993] } },
          Buffer.alloc(0),
        ),
      /data_offsets must be integers/,
    ],
  ];
  for (const [what, make, msg] of bad) {
    it(`rejects ${what} with E_FORMAT`, async () => {
      const err = await SafetensorsFile.fromBuffer(make()).then(
        () => null,
        (e) => e,
      );
      expect(err).toBeInstanceOf(SaltError);
      expect(err.code).toBe('E_FORMAT');
      expect(err.message).toMatch(msg);
    });
  }

  it('reports a missing file with E_NOT_FOUND naming the path, and a folder with E_IO', async () => {
    await expect(SafetensorsFile.open(join(dir, 'missing.safetensors'))).rejects.toThrow(code('E_NOT_FOUND'));
    await expect(SafetensorsFile.open(join(dir, 'missing.safetensors'))).rejects.toThrow(/missing\.safetensors/);
    await expect(SafetensorsFile.open(dir)).rejects.toThrow(code('E_IO'));
  });
});

describe('files written by the reference implementation (Python safetensors 0.8.0)', () => {
  const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
  it('reads save_file output (numpy API): F32, F16, I64, a scalar and metadata', async () => {
    const f = await SafetensorsFile.open(join(fixtures, 'reference-numpy.safetensors'));
    try {
      expect(f.metadata).toEqual({ format: 'np', writer: 'safetensors 0.8.0' });
      expect(f.names().sort()).toEqual(['a', 'h', 'i', 's']);
      // a = (arange(35) - 17) / 8 as float32 [7, 5]; h = (arange(12) - 6) / 4 as float16 [3, 4]
      expect([...(await f.readFloat32('a'))]).toEqual(Array.from({ length: 35 }, (_, k) => (k - 17) / 8));
      expect(f.info('h')).toMatchObject({ dtype: 'F16', shape: [3, 4] });
      expect([...(await f.readFloat32('h'))]).toEqual(Array.from({ length: 12 }, (_, k) => (k - 6) / 4));
      const i = await f.readBytes('i');
      expect([0, 1, 2, 3, 4, 5].map((k) => i.readBigInt64LE(8 * k))).toEqual([-2n, -1n, 0n, 1n, 2n, 3n]);
      expect(f.info('s').shape).toEqual([]);
      expect([...(await f.readFloat32('s'))]).toEqual([2.5]);
    } finally {
      await f.close();
    }
  });
  it('reads a BF16 tensor serialised by the reference', async () => {
    const f = await SafetensorsFile.open(join(fixtures, 'reference-bf16.safetensors'));
    const b = await f.readFloat32('b');
    const shared = await f.readFloat32('b', { shared: true });
    const a = await f.readFloat32('b', { shared: false, rowStart: 0 });
    await expect(f.readFloat32('b', { shared: 1 as never })).rejects.toThrow(
      new SaltTypeError('shared must be a boolean, received 1'),
    );
    await f.close();
    expect(b.slice(0, 4)).toEqual(Float32Array.of(1, -2, Infinity, 2 ** -133));
    expect(Number.isNaN(b[4])).toBe(true);
    expect(Object.is(b[5], -0)).toBe(true);
    // shared: the same values, in a SharedArrayBuffer.
    expect(b.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(a.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Buffer.from(shared.buffer).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
  });
  it('writes the same bytes as the reference for the same tensors and metadata', async () => {
    const p = join(dir, 'same-as-reference.safetensors');
    const bits = Buffer.alloc(12);
    [0x3f80, 0xc000, 0x7f80, 0x0001, 0x7fc0, 0x8000].forEach((v, k) => bits.writeUInt16LE(v, 2 * k));
    await writeSafetensors(p, [{ name: 'b', dtype: 'BF16', shape: [2, 3], data: bits }], {
      metadata: { format: 'pt' },
    });
    expect(Buffer.compare(await readFile(p), await readFile(join(fixtures, 'reference-bf16.safetensors')))).toBe(0);
  });
});

describe('bytesToFloat32', () => {
  it('is zero-copy for aligned F32 and copies unaligned input', () => {
    const buf = new Uint8Array(12);
    new DataView(buf.buffer).setFloat32(4, 2.5, true);
    const aligned = bytesToFloat32(buf.subarray(4, 8), 'F32');
    expect(aligned.buffer).toBe(buf.buffer);
    expect(aligned[0]).toBe(2.5);
    const un = new Uint8Array(13);
    new DataView(un.buffer).setFloat32(1, -1.25, true);
    const c = bytesToFloat32(un.subarray(1, 5), 'F32');
    expect(c.buffer).not.toBe(un.buffer);
    expect(c[0]).toBe(-1.25);
    expect(() => bytesToFloat32(new Uint8Array(3), 'F16')).toThrow(code('E_SHAPE'));
  });
});

describe('writeSafetensors: tensor data given as a file range', () => {
  it('copies the bytes at { path, offset } between other tensors, byte for byte (hand-parsed)', async () => {
    const srcPath = join(dir, 'range-src.bin');
    const src = Buffer.alloc((3 << 20) + 17);
    for (let i = 0; i < src.length; i++) src[i] = (i * 131 + (i >> 11)) & 0xff;
    await writeFile(srcPath, src);
    const p = join(dir, 'range.safetensors');
    const before = Float32Array.of(1.5, -2);
    // 1 MiB + 2 bytes of F16 starting at an odd offset, then an encoded tensor after it.
    await writeSafetensors(p, [
      { name: 'a', dtype: 'F32', shape: [2], data: before },
      { name: 'r', dtype: 'F16', shape: [(1 << 19) + 1], data: { path: srcPath, offset: 12345 } },
      { name: 'z', dtype: 'U8', shape: [3], data: Uint8Array.of(7, 8, 9) },
    ]);
    const buf = await readFile(p);
    const n = Number(buf.readBigUInt64LE(0));
    const hdr = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    const at = (k: string) => buf.subarray(8 + n + hdr[k].data_offsets[0], 8 + n + hdr[k].data_offsets[1]);
    expect(Buffer.compare(at('r'), src.subarray(12345, 12345 + (1 << 20) + 2))).toBe(0);
    expect(Buffer.compare(at('a'), Buffer.from(before.buffer))).toBe(0);
    expect([...at('z')]).toEqual([7, 8, 9]);
    expect(buf.length).toBe(8 + n + 8 + (1 << 20) + 2 + 3);
  });
  it('copies a range that lies past 2 GiB in its file (a sparse 3 GiB source)', async () => {
    const srcPath = join(dir, 'range-sparse.bin');
    const at = 2 ** 31 + 12345;
    const fh = await open(srcPath, 'w');
    const marker = Buffer.from('bytes past the 2 GiB mark');
    try {
      await fh.truncate(3 * 2 ** 30);
      await fh.write(marker, 0, marker.length, at);
    } finally {
      await fh.close();
    }
    const p = join(dir, 'range-sparse.safetensors');
    await writeSafetensors(p, [
      { name: 'r', dtype: 'U8', shape: [marker.length], data: { path: srcPath, offset: at } },
    ]);
    const f = await SafetensorsFile.open(p);
    expect((await f.readBytes('r')).toString()).toBe(marker.toString());
    await f.close();
    await rm(srcPath);
  });
  it('refuses a range past the end of its file (E_IO, no file left) and a malformed range (E_TYPE)', async () => {
    const srcPath = join(dir, 'range-truncated.bin');
    await writeFile(srcPath, Buffer.alloc(100, 1));
    const p = join(dir, 'range-truncated.safetensors');
    await expect(
      writeSafetensors(p, [{ name: 'r', dtype: 'U8', shape: [101], data: { path: srcPath, offset: 0 } }]),
    ).rejects.toThrow(code('E_IO'));
    await expect(
      writeSafetensors(p, [{ name: 'r', dtype: 'U8', shape: [10], data: { path: srcPath, offset: 95 } }]),
    ).rejects.toThrow(/ended at byte 100/);
    await expect(
      writeSafetensors(p, [
        { name: 'r', dtype: 'U8', shape: [10], data: { path: srcPath, offset: -1 } as unknown as Uint8Array },
      ]),
    ).rejects.toThrow(code('E_TYPE'));
    expect((await readdir(dir)).filter((f) => f.includes('range-truncated.safetensors'))).toEqual([]);
  });
});

describe('laid-out writes (a shard rewritten in place: copies first, new tensors and header later)', () => {
  it('copyFileRange at an output offset leaves the file offset alone; startWriteback changes no byte', async () => {
    const srcPath = join(dir, 'at-src.bin');
    const src = Buffer.alloc(3 << 20);
    for (let i = 0; i < src.length; i++) src[i] = (i * 7 + (i >> 9)) & 0xff;
    await writeFile(srcPath, src);
    const outPath = join(dir, 'at-out.bin');
    const a = await open(srcPath, 'r');
    const b = await open(outPath, 'w+');
    try {
      await b.write(Buffer.from('head'), 0, 4, null); // the file offset is now 4
      await copyFileRange(a.fd, 1000, b.fd, (2 << 20) + 3, { offsetOut: 5000, writeback: true });
      await b.write(Buffer.from('tail'), 0, 4, null); // still at 4: lands at bytes 4..8
      await startWriteback(b.fd);
      await startWriteback(b.fd, 4096, 10);
    } finally {
      await a.close();
      await b.close();
    }
    const out = await readFile(outPath);
    expect(out.length).toBe(5000 + (2 << 20) + 3);
    expect(out.subarray(0, 8).toString()).toBe('headtail');
    expect(out.subarray(8, 5000).every((x) => x === 0)).toBe(true);
    expect(Buffer.compare(out.subarray(5000), src.subarray(1000, 1000 + (2 << 20) + 3))).toBe(0);
    await expect(startWriteback(-1)).rejects.toThrow(code('E_ARGUMENT'));
    await expect(copyFileRange(0, 0, 1, 1, { offsetOut: -2 })).rejects.toThrow(code('E_ARGUMENT'));
  });

  it('copies into the layout, then the other tensors and the header in place: the bytes of writeSafetensors', async () => {
    const srcPath = join(dir, 'lay-src.bin');
    const src = Buffer.alloc(1 << 20);
    for (let i = 0; i < src.length; i++) src[i] = (i * 13 + 5) & 0xff;
    await writeFile(srcPath, src);
    const rnd = rng(11);
    // Over two 8 MiB chunks of F32 input: the encoder's read-ahead crosses a chunk boundary.
    const big = new Float32Array((5 << 20) + 3).map(() => rnd() - 0.5);
    const tensors = [
      { name: 'copied', dtype: 'U8' as const, shape: [100_001], data: { path: srcPath, offset: 77 } },
      { name: 'emb', dtype: 'BF16' as const, shape: [(5 << 20) + 3], data: big },
      { name: 'raw', dtype: 'U8' as const, shape: [5], data: Uint8Array.of(1, 2, 3, 4, 5) },
      { name: 'copied2', dtype: 'F16' as const, shape: [3], data: { path: srcPath, offset: 999 } },
      // At an even offset: with the O_DIRECT descriptor its whole blocks go direct.
      { name: 'emb2', dtype: 'BF16' as const, shape: [3 << 20], data: big.subarray(0, 3 << 20) },
    ];
    const meta = { format: 'pt' };
    const whole = join(dir, 'lay-whole.safetensors');
    await writeSafetensors(whole, tensors, { metadata: meta });
    const layout = safetensorsLayout(tensors, meta);
    const expected = await readFile(whole);
    expect(layout.bytes).toBe(expected.length);
    expect(Buffer.compare(expected.subarray(0, layout.header.length), layout.header)).toBe(0);
    const laid = join(dir, 'lay-inplace.safetensors');
    // Through the page cache, and with an O_DIRECT descriptor where the file system has them ('emb'
    // sits at an odd offset, behind 100,001 bytes: it must take the buffered path, byte for byte).
    for (const withDirect of [false, true]) {
      await rm(laid, { force: true });
      const fh = await open(laid, 'w+');
      const direct = withDirect ? await openDirect(laid) : undefined;
      try {
        await fh.truncate(layout.bytes);
        // The copies first (out of order), then the rest, then the header.
        await writeTensorsAt(fh, laid, layout, tensors, [3, 0], { writeback: true, direct });
        await writeTensorsAt(fh, laid, layout, tensors, [1, 2, 4], { writeback: true, direct });
        await writeBytesAt(fh, layout.header, 0, laid);
      } finally {
        await direct?.close();
        await fh.close();
      }
      expect(Buffer.compare(await readFile(laid), expected), `direct: ${withDirect}`).toBe(0);
    }
    // A tensor whose size is not its place in the layout is refused.
    const wrong = safetensorsLayout([{ ...tensors[0], shape: [100_000] }, ...tensors.slice(1)], meta);
    const fh2 = await open(laid, 'r+');
    try {
      await expect(writeTensorsAt(fh2, laid, wrong, tensors, [0])).rejects.toThrow(code('E_INTERNAL'));
    } finally {
      await fh2.close();
    }
  });
});

describe('safetensorsHeaderBound: a header size that does not depend on the last tensors', () => {
  it('holds every header with other shapes and dtypes of the variable tensors; a written header padded to it reads back', async () => {
    const fixed = [
      { name: 'model.layers.0.w', dtype: 'BF16' as const, shape: [64, 32] },
      { name: 'model.norm.weight', dtype: 'F32' as const, shape: [32] },
    ];
    const meta = { format: 'pt' };
    const variable = (rows: number, dtype: 'F32' | 'F16' | 'BF16') => [
      { name: 'model.embed_tokens.weight', dtype, shape: [rows, 32] },
      { name: 'lm_head.weight', dtype, shape: [rows, 32] },
    ];
    const bound = safetensorsHeaderBound([...fixed, ...variable(1, 'F16')], 2, meta);
    expect(bound % 8).toBe(0);
    for (const rows of [1, 9, 151_669, 262_144, 2 ** 31 - 1]) {
      for (const dtype of ['F32', 'F16', 'BF16'] as const) {
        const tensors = [...fixed, ...variable(rows, dtype)];
        // The bound is the same whatever the variable tensors are, and the header fits in it.
        expect(safetensorsHeaderBound(tensors, 2, meta)).toBe(bound);
        const natural = safetensorsLayout(tensors, meta);
        expect(natural.header.length).toBeLessThanOrEqual(bound);
        const padded = safetensorsLayout(tensors, meta, bound);
        expect(padded.header.length).toBe(bound);
        // The fixed tensors' places do not move.
        expect(padded.offsets.slice(0, 2)).toEqual([bound, bound + 64 * 32 * 2]);
      }
    }
    // Written with the padded header, the file reads back with the same tensors and values.
    const rnd = rng(3);
    const tensors = [...fixed, ...variable(5, 'F32')].map((t) => ({
      ...t,
      // Multiples of 1/64 below 1: exact in BF16 too.
      data: new Float32Array(t.shape.reduce((a, b) => a * b, 1)).map(() => Math.round((rnd() - 0.5) * 64) / 64),
    }));
    const path = join(dir, 'padded-header.safetensors');
    await writeSafetensors(path, tensors, { metadata: meta, headerBytes: bound + 16 });
    const bytes = await readFile(path);
    expect(Number(bytes.readBigUInt64LE(0))).toBe(bound + 8);
    expect(bytes.subarray(bound + 8 - 4, bound + 8).toString('latin1')).toBe('    ');
    const f = await SafetensorsFile.open(path);
    try {
      expect(f.metadata).toEqual(meta);
      for (const t of tensors) expect(Array.from(await f.readFloat32(t.name)), t.name).toEqual(Array.from(t.data));
    } finally {
      await f.close();
    }
    // A header longer than the size asked for is refused, and nothing is written.
    await expect(writeSafetensors(join(dir, 'short-header.safetensors'), tensors, { headerBytes: 64 })).rejects.toThrow(
      code('E_INTERNAL'),
    );
    expect((await readdir(dir)).filter((n) => n.startsWith('short-header'))).toEqual([]);
  });
});

describe('writeSafetensors', () => {
  const rnd = rng(7);
  const values = new Float32Array(1000).map(() => (rnd() - 0.5) * 100);
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`round-trips ${dtype} bit-exactly (write -> read -> write gives the same bytes)`, async () => {
      const p = join(dir, `rt-${dtype}.safetensors`);
      await writeSafetensors(p, [{ name: 'x', dtype, shape: [10, 100], data: values }], { metadata: { k: 'v' } });
      const f = await SafetensorsFile.open(p);
      const back = await f.readFloat32('x');
      const raw = await f.readBytes('x');
      expect(f.metadata).toEqual({ k: 'v' });
      expect(f.headerLength % 8).toBe(0);
      await f.close();
      if (dtype === 'F32') expect(back).toEqual(values);
      // Re-encoding the decoded values must reproduce the stored bytes exactly.
      const p2 = join(dir, `rt2-${dtype}.safetensors`);
      await writeSafetensors(p2, [{ name: 'x', dtype, shape: [10, 100], data: back }], { metadata: { k: 'v' } });
      expect(Buffer.compare(await readFile(p), await readFile(p2))).toBe(0);
      const f2 = await SafetensorsFile.open(p2);
      expect(Buffer.compare(await f2.readBytes('x'), raw)).toBe(0);
      await f2.close();
    });
  }

  it('streams chunked sources (float and raw) and checks their total length', async () => {
    const p = join(dir, 'stream.safetensors');
    async function* gen() {
      yield values.subarray(0, 300);
      yield values.subarray(300);
    }
    const raw = Buffer.from([1, 2, 3, 4]);
    await writeSafetensors(p, [
      { name: 'a', dtype: 'F32', shape: [1000], data: gen },
      { name: 'b', dtype: 'U8', shape: [4], data: () => [raw.subarray(0, 1), raw.subarray(1)] },
    ]);
    const f = await SafetensorsFile.open(p);
    expect(await f.readFloat32('a')).toEqual(values);
    expect([...(await f.readBytes('b'))]).toEqual([1, 2, 3, 4]);
    await f.close();
    await expect(
      writeSafetensors(join(dir, 'short.safetensors'), [{ name: 'a', dtype: 'F32', shape: [1001], data: gen }]),
    ).rejects.toThrow(
      new SaltRangeError('tensor "a": chunks gave 4000 bytes, shape [1001] in F32 needs 4004', 'E_SHAPE'),
    );
    // The failed write left nothing behind, not even its temporary file.
    expect((await readdir(dir)).filter((n) => n.includes('short'))).toEqual([]);
  });

  it('refuses to overwrite unless told to, and validates its arguments', async () => {
    const p = join(dir, 'exists.safetensors');
    await writeSafetensors(p, []);
    await expect(writeSafetensors(p, [])).rejects.toThrow(code('E_EXISTS'));
    await writeSafetensors(p, [{ name: 'z', dtype: 'F32', shape: [1], data: Float32Array.of(3) }], { overwrite: true });
    const f = await SafetensorsFile.open(p);
    try {
      expect(await f.readFloat32('z')).toEqual(Float32Array.of(3));
    } finally {
      await f.close();
    }
    await expect(
      writeSafetensors(join(dir, 'e1'), [{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array(3) }]),
    ).rejects.toThrow(new SaltRangeError('tensor "a": shape [2] has 2 elements, data has 3', 'E_SHAPE'));
    await expect(
      writeSafetensors(join(dir, 'e2'), [{ name: 'a', dtype: 'I32', shape: [1], data: new Float32Array(1) }]),
    ).rejects.toThrow(code('E_ARGUMENT'));
    await expect(
      writeSafetensors(join(dir, 'e3'), [
        { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
        { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      ]),
    ).rejects.toThrow(/used twice/);
    await expect(
      writeSafetensors(join(dir, 'e4'), [
        { name: '__metadata__', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      ]),
    ).rejects.toThrow(/reserved/);
    await expect(
      writeSafetensors(join(dir, 'e5'), [{ name: 'a', dtype: 'F32', shape: [1], data: [1] as never }]),
    ).rejects.toThrow(code('E_TYPE'));
  });
});

describe('prototype-named keys', () => {
  it('writes and reads a tensor named "__proto__" and a metadata key "__proto__"', async () => {
    const p = join(dir, 'proto.safetensors');
    const meta = JSON.parse('{"__proto__": "kept", "format": "pt"}') as Record<string, string>;
    await writeSafetensors(
      p,
      [
        { name: '__proto__', dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) },
        { name: 'b', dtype: 'F32', shape: [1], data: Float32Array.of(3) },
      ],
      { metadata: meta },
    );
    // Parse the header by hand (JSON.parse keeps "__proto__" as an own key).
    const buf = await readFile(p);
    const n = Number(buf.readBigUInt64LE(0));
    const hdr = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    expect(Object.keys(hdr)).toEqual(['__metadata__', '__proto__', 'b']);
    expect(Object.getOwnPropertyDescriptor(hdr, '__proto__')!.value).toEqual({
      dtype: 'F32',
      shape: [2],
      data_offsets: [0, 8],
    });
    expect(Object.getOwnPropertyDescriptor(hdr.__metadata__, '__proto__')!.value).toBe('kept');
    const f = await SafetensorsFile.open(p);
    try {
      expect(f.names()).toEqual(['__proto__', 'b']);
      expect([...(await f.readFloat32('__proto__'))]).toEqual([1, 2]);
      expect(Object.keys(f.metadata).sort()).toEqual(['__proto__', 'format']);
      expect(Object.getOwnPropertyDescriptor(f.metadata, '__proto__')!.value).toBe('kept');
    } finally {
      await f.close();
    }
  });
});

/** Independent minimal parse used as the fuzz oracle: returns tensors' [begin,end) absolute byte ranges. */
function oracle(buf: Buffer): Map<string, { dtype: string; start: number; end: number }> | null {
  try {
    if (buf.length < 8) return null;
    const n = Number(buf.readBigUInt64LE(0));
    const hdr = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n)));
    const out = new Map();
    for (const [k, v] of Object.entries(hdr as Record<string, { dtype: string; data_offsets: number[] }>)) {
      if (k === '__metadata__') continue;
      out.set(k, { dtype: v.dtype, start: 8 + n + v.data_offsets[0], end: 8 + n + v.data_offsets[1] });
    }
    return out;
  } catch {
    return null;
  }
}

describe('SafetensorsFile fuzzing (seeded)', () => {
  it('rejects with E_FORMAT or reads correctly 120,000 mutated headers and truncated/extended files', async () => {
    const rnd = rng(20250524);
    const ri = (n: number) => Math.floor(rnd() * n);
    const bases: Buffer[] = [sample().buf];
    const vals = new Float32Array(24).map((_, i) => i - 3.5);
    bases.push(
      handMade(
        {
          a: { dtype: 'BF16', shape: [3, 4], data_offsets: [0, 24] },
          b: { dtype: 'F32', shape: [2, 3], data_offsets: [24, 48] },
          c: { dtype: 'I32', shape: [2], data_offsets: [48, 56] },
          s: { dtype: 'F16', shape: [], data_offsets: [56, 58] },
        },
        Buffer.concat([
          Buffer.from(vals.buffer).subarray(0, 48),
          Buffer.from(vals.buffer).subarray(0, 8),
          Buffer.from([0, 0x3c]),
        ]),
        5,
      ),
    );
    const specials = [...'{}[]":,0123456789-.eE ', 'F16', 'BF16', 'I64', '1e309', '-0', '99999999999'];
    let accepted = 0;
    let rejected = 0;
    const N = 120_000;
    for (let it = 0; it < N; it++) {
      const base = bases[ri(bases.length)];
      let buf = Buffer.from(base);
      const hdrEnd = 8 + Number(base.readBigUInt64LE(0));
      const kind = ri(8);
      if (kind === 0)
        buf[ri(hdrEnd)] = ri(256); // random byte anywhere in prefix+header
      else if (kind === 1) buf[8 + ri(hdrEnd - 8)] = specials[ri(12)].charCodeAt(0);
      else if (kind === 2) {
        // replace a digit run in the header with a random number
        const txt = buf.subarray(8, hdrEnd).toString('latin1');
        const nums = [...txt.matchAll(/\d+/g)];
        if (nums.length) {
          const m = nums[ri(nums.length)];
          const rep = [String(ri(100)), String(ri(1 << 20)), '0', '1e3', '-1', '2.5', String(2 ** 53 + 2)][ri(7)];
          const t2 = txt.slice(0, m.index) + rep + txt.slice(m.index! + m[0].length);
          const j = Buffer.from(t2, 'latin1');
          const p = Buffer.alloc(8);
          p.writeBigUInt64LE(BigInt(j.length));
          buf = Buffer.concat([p, j, base.subarray(hdrEnd)]);
        }
      } else if (kind === 3)
        buf = buf.subarray(0, ri(buf.length)); // truncation
      else if (kind === 4)
        buf = Buffer.concat([buf, Buffer.alloc(1 + ri(40), ri(256))]); // extension
      else if (kind === 5)
        buf.writeUInt32LE((buf.readUInt32LE(0) + ri(33) - 16) >>> 0, 0); // shifted length
      else if (kind === 6) {
        const t = buf
          .subarray(8, hdrEnd)
          .toString('latin1')
          .replace(/"(F32|F16|BF16|I32)"/, `"${['F32', 'F16', 'BF16', 'I64', 'U8', 'X'][ri(6)]}"`);
        buf = Buffer.concat([buf.subarray(0, 8), Buffer.from(t, 'latin1'), buf.subarray(hdrEnd)]);
      } else {
        for (let k = 0; k < 4; k++) buf[ri(buf.length)] = ri(256);
      }
      let f: SafetensorsFile;
      try {
        f = await SafetensorsFile.fromBuffer(buf);
      } catch (e) {
        if (!(e instanceof SaltError) || e.code !== 'E_FORMAT') throw e;
        rejected++;
        continue;
      }
      accepted++;
      const ref = oracle(buf);
      expect(ref).not.toBeNull();
      for (const name of f.names()) {
        const r = ref!.get(name)!;
        const bytes = await f.readBytes(name);
        expect(r.end).toBeLessThanOrEqual(buf.length);
        if (Buffer.compare(bytes, buf.subarray(r.start, r.end)) !== 0) throw new Error(`wrong bytes for ${name}`);
        if (r.dtype === 'F32') {
          const v = await f.readFloat32(name);
          for (let i = 0; i < v.length; i++)
            if (!Object.is(v[i], buf.readFloatLE(r.start + 4 * i))) throw new Error('bad F32 value');
        } else if (r.dtype === 'BF16' || r.dtype === 'F16') {
          await f.readFloat32(name);
        } else {
          await expect(f.readFloat32(name)).rejects.toThrow(code('E_UNSUPPORTED'));
        }
      }
    }
    console.log(`fuzz: ${accepted} accepted, ${rejected} rejected`);
    expect(accepted + rejected).toBe(N);
    // Both outcomes must really occur, or the fuzzer is not exercising anything.
    expect(accepted).toBeGreaterThan(2000);
    expect(rejected).toBeGreaterThan(50000);
  }, 120_000);

  it('rejects every truncated or extended copy of a file on disk with E_FORMAT', async () => {
    const { buf } = sample();
    let ok = 0;
    for (let cut = 0; cut <= buf.length + 8; cut++) {
      const p = join(dir, `cut-${cut}.safetensors`);
      await writeFile(
        p,
        cut <= buf.length ? buf.subarray(0, cut) : Buffer.concat([buf, Buffer.alloc(cut - buf.length)]),
      );
      const r = await SafetensorsFile.open(p).then(
        async (f) => {
          const v = await f.readFloat32('w');
          await f.close();
          return v;
        },
        (e) => e,
      );
      if (cut === buf.length) {
        expect(r).toEqual(sample().f32);
        ok++;
      } else expect(r).toMatchObject({ code: 'E_FORMAT' });
    }
    expect(ok).toBe(1);
  });
});
