// The whole-matrix passes of lib/kernels/matrixOps.ts: bit-for-bit equal to float64 loops written
// here (the column statistics to their blocked definition), validated like the other kernels, and
// run off the JavaScript thread.
import { describe, expect, it } from 'vitest';

import { SaltError } from '../lib/errors.js';
import { decodeBF16, decodeF16, encodeFloats } from '../lib/io/dtype.js';
import {
  allocFloat32,
  allocFloat64,
  columnMeanStd,
  decodeHalf,
  encodeHalf,
  findNonFinite,
  gatherRows,
  releaseFloat32,
  rowNorms,
  sortFloat64,
  toFloat32,
  toFloat64,
} from '../lib/kernels/matrixOps.js';
import { rng } from './helpers/reference.js';

function matrix(rows: number, cols: number, seed: number) {
  const r = rng(seed);
  const data = new Float32Array(rows * cols);
  // Mixed magnitudes, so that the order of the float64 sums matters for the last bits.
  for (let i = 0; i < data.length; i++) data[i] = r.normal() * (i % 7 === 0 ? 1000 : 0.01) + 0.3;
  return { data, rows, cols };
}

/** Float64 reference: sums along each column in row order. */
function meanStdReference(m: { data: Float32Array; rows: number; cols: number }) {
  const mean = new Float64Array(m.cols),
    sq = new Float64Array(m.cols);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) mean[j] += m.data[i * m.cols + j];
  for (let j = 0; j < m.cols; j++) mean[j] = m.rows ? mean[j] / m.rows : 0;
  for (let i = 0; i < m.rows; i++)
    for (let j = 0; j < m.cols; j++) {
      const d = m.data[i * m.cols + j] - mean[j];
      sq[j] += d * d;
    }
  const std = sq.map((s) => (m.rows ? Math.sqrt(s / m.rows) : 0));
  return { mean, std };
}

const bits = (a: Float64Array | Float32Array) => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
/** The index of the first value whose bits differ (-1: none), for long arrays. */
const firstDifference = (a: Float64Array, b: Float64Array) =>
  a.length !== b.length ? -2 : a.findIndex((_, i) => !Object.is(a[i], b[i]));

/**
 * The blocked definition of salt/matrix_ops.h, written out here: blocks of max(1, floor(32768 /
 * cols)) rows, groups of 256 blocks; each block's column means and squared deviations in row order;
 * blocks merged in order into their group, groups in order into the result.
 */
function blockedMeanStdReference(m: { data: Float32Array; rows: number; cols: number }) {
  const { rows, cols, data } = m;
  const merge = (na: number, ma: Float64Array, m2a: Float64Array, nb: number, mb: Float64Array, m2b: Float64Array) => {
    if (na === 0) {
      ma.set(mb);
      m2a.set(m2b);
      return;
    }
    const n = na + nb;
    const fb = nb / n,
      fab = (na * nb) / n;
    for (let j = 0; j < cols; j++) {
      const d = mb[j] - ma[j];
      ma[j] = ma[j] + d * fb;
      m2a[j] = m2a[j] + m2b[j] + d * d * fab;
    }
  };
  const mean = new Float64Array(cols),
    m2 = new Float64Array(cols);
  if (rows === 0) return { mean, std: m2 };
  const block = Math.max(1, Math.floor(32768 / cols));
  const group = block * 256;
  for (let g0 = 0; g0 < rows; g0 += group) {
    const g1 = Math.min(rows, g0 + group);
    const gm = new Float64Array(cols),
      gd = new Float64Array(cols);
    for (let b0 = g0; b0 < g1; b0 += block) {
      const b1 = Math.min(g1, b0 + block);
      const bm = new Float64Array(cols),
        bd = new Float64Array(cols);
      for (let i = b0; i < b1; i++) for (let j = 0; j < cols; j++) bm[j] += data[i * cols + j];
      for (let j = 0; j < cols; j++) bm[j] = bm[j] / (b1 - b0);
      for (let i = b0; i < b1; i++)
        for (let j = 0; j < cols; j++) {
          const d = data[i * cols + j] - bm[j];
          bd[j] += d * d;
        }
      merge(b0 - g0, gm, gd, b1 - b0, bm, bd);
    }
    merge(g0, mean, m2, g1 - g0, gm, gd);
  }
  return { mean, std: m2.map((v) => Math.sqrt(v / rows)) };
}

const normsReference = (m: { data: Float32Array; rows: number; cols: number }) => {
  const ref = new Float64Array(m.rows);
  for (let i = 0; i < m.rows; i++) {
    let s = 0;
    for (let j = 0; j < m.cols; j++) s += m.data[i * m.cols + j] * m.data[i * m.cols + j];
    ref[i] = Math.sqrt(s);
  }
  return ref;
};

describe('columnMeanStd', () => {
  for (const [rows, cols] of [
    [1, 1],
    [257, 63], // blocks of 520 rows: one partial block
    [1000, 130], // blocks of 252 rows: three whole ones and a partial one
    [300, 1001], // blocks of 32 rows
    [1700, 8193], // blocks of 3 rows, groups of 768: two whole groups and a partial one ending in a partial block
    [3, 40_000], // wider than a block: blocks of one row
  ] as const) {
    it(`equals the blocked float64 definition bit for bit at ${rows} x ${cols}, for 1, 2, 3 and all threads`, async () => {
      const m = matrix(rows, cols, rows + cols);
      const ref = blockedMeanStdReference(m);
      const norms = normsReference(m);
      const plain = meanStdReference(m);
      for (const threads of [1, 2, 3, 0]) {
        const got = await columnMeanStd(m, { threads });
        expect(firstDifference(got.mean, ref.mean)).toBe(-1);
        expect(firstDifference(got.std, ref.std)).toBe(-1);
        const withNorms = await columnMeanStd(m, { threads, norms: true });
        expect(firstDifference(withNorms.mean, ref.mean)).toBe(-1);
        expect(firstDifference(withNorms.std, ref.std)).toBe(-1);
        expect(firstDifference(withNorms.norms, norms)).toBe(-1);
      }
      // And close to the plain two-pass loop (which sums each column over all rows at once).
      for (let j = 0; j < cols; j++) {
        expect(Math.abs(ref.mean[j] - plain.mean[j])).toBeLessThanOrEqual(
          1e-12 * (Math.abs(plain.mean[j]) + plain.std[j]),
        );
        expect(Math.abs(ref.std[j] - plain.std[j])).toBeLessThanOrEqual(1e-12 * plain.std[j] + 1e-300);
      }
    });
  }
  it('gives zeros for a matrix without rows', async () => {
    const got = await columnMeanStd({ data: new Float32Array(0), rows: 0, cols: 3 });
    expect(Array.from(got.mean)).toEqual([0, 0, 0]);
    expect(Array.from(got.std)).toEqual([0, 0, 0]);
    const withNorms = await columnMeanStd({ data: new Float32Array(0), rows: 0, cols: 3 }, { norms: true });
    expect(withNorms.norms).toEqual(new Float64Array(0));
  });
  it('rejects a bad matrix with the argument named, and a norms option that is not a boolean', async () => {
    await expect(columnMeanStd({ data: new Float32Array(5), rows: 2, cols: 3 })).rejects.toMatchObject({
      code: 'E_SHAPE',
      message: 'm.data must have m.rows x m.cols = 2 x 3 = 6 elements, received 5',
    });
    await expect(columnMeanStd(matrix(2, 3, 1), { norms: 1 } as unknown as { norms: true })).rejects.toMatchObject({
      code: 'E_TYPE',
    });
  });
});

describe('rowNorms', () => {
  it('equals the float64 loop bit for bit, for all rows and for listed rows', async () => {
    const m = matrix(300, 77, 3);
    const ref = new Float64Array(m.rows);
    for (let i = 0; i < m.rows; i++) {
      let s = 0;
      for (let j = 0; j < m.cols; j++) s += m.data[i * m.cols + j] * m.data[i * m.cols + j];
      ref[i] = Math.sqrt(s);
    }
    expect(bits(await rowNorms(m))).toEqual(bits(ref));
    const ids = Int32Array.of(299, 0, 5, 5);
    expect(Array.from(await rowNorms(m, { rows: ids }))).toEqual(Array.from(ids, (i) => ref[i]));
  });
  it('gives no norms for an empty row list (every target token copied: no new rows)', async () => {
    expect(await rowNorms(matrix(3, 2, 1), { rows: new Int32Array(0) })).toEqual(new Float64Array(0));
    expect(await gatherRows(matrix(3, 2, 1), new Int32Array(0))).toEqual({
      data: new Float32Array(0),
      rows: 0,
      cols: 2,
    });
  });
  it('rejects a row outside the matrix', async () => {
    await expect(rowNorms(matrix(3, 2, 1), { rows: Int32Array.of(0, 3) })).rejects.toMatchObject({
      code: 'E_ARGUMENT',
      message: 'options.rows[1] must be a row in [0, 3), received 3',
    });
  });
});

describe('findNonFinite', () => {
  it('finds the first NaN or Infinity in row-major order, skipping masked rows', async () => {
    const m = matrix(500, 40, 4);
    expect(await findNonFinite(m)).toBe(-1);
    m.data[400 * 40 + 1] = NaN;
    m.data[90 * 40 + 39] = -Infinity;
    m.data[90 * 40 + 38] = Infinity; // earlier in the same row: this one
    expect(await findNonFinite(m, { threads: 2 })).toBe(90 * 40 + 38);
    const mask = new Uint8Array(500).fill(1);
    mask[90] = 0;
    expect(await findNonFinite(m, { rowMask: mask })).toBe(400 * 40 + 1);
    mask[400] = 0;
    expect(await findNonFinite(m, { rowMask: mask })).toBe(-1);
  });
  it('rejects a mask of the wrong length', async () => {
    await expect(findNonFinite(matrix(2, 2, 1), { rowMask: new Uint8Array(3) })).rejects.toMatchObject({
      code: 'E_TYPE',
      message: 'options.rowMask must be a Uint8Array of m.rows = 2 elements, received Uint8Array of length 3',
    });
  });
});

describe('gatherRows and sortFloat64', () => {
  it('gathers the listed rows in order', async () => {
    const m = matrix(50, 9, 5);
    const ids = Int32Array.of(49, 3, 3, 0);
    const g = await gatherRows(m, ids);
    expect(g.rows).toBe(4);
    ids.forEach((id, i) => expect(g.data.subarray(i * 9, i * 9 + 9)).toEqual(m.data.subarray(id * 9, id * 9 + 9)));
    await expect(gatherRows(m, Int32Array.of(-1))).rejects.toBeInstanceOf(SaltError);
  });
  it("sorts in Float64Array.prototype.sort's order (-0 before +0, NaN last)", async () => {
    const r = rng(6);
    const v = Float64Array.from({ length: 5000 }, (_, i) => (i % 97 === 0 ? NaN : i % 89 === 0 ? -0 : r.normal()));
    v[1] = 0;
    const want = Float64Array.from(v).sort();
    expect(bits(await sortFloat64(v))).toEqual(bits(want));
  });
});

describe('encodeHalf and decodeHalf', () => {
  it('give the bits of the JavaScript codec (tested against a float64 reference in test/io/dtype.test.ts)', async () => {
    const r = rng(7);
    const n = 300_000;
    const u = new Uint32Array(n);
    for (let i = 0; i < n; i++) u[i] = Math.floor(r.uniform() * 2 ** 32);
    for (let i = 0; i < n; i += 3) u[i] = (u[i] & 0x8fffe000) | 0x38001000; // F16 midpoints
    for (let i = 1; i < n; i += 3) u[i] = (u[i] & 0x83ff8000) | 0x3c008000; // BF16 midpoints
    const f = new Float32Array(u.buffer);
    for (const dtype of ['F16', 'BF16'] as const) {
      const got = await encodeHalf(f, dtype, new Uint16Array(n));
      const want = encodeFloats(f, dtype);
      expect(Buffer.from(got.buffer).equals(want)).toBe(true);
    }
    // Every bit pattern. NaN patterns are compared with the payload-keeping formula written here:
    // the JavaScript decoder may quiet a signalling NaN (V8 passes values through doubles, depending
    // on the JIT tier), the native one keeps every bit.
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const [dtype, js] of [
      ['F16', decodeF16],
      ['BF16', decodeBF16],
    ] as const) {
      const want = new Float32Array(65536);
      js(all, want);
      const wantBits = new Uint32Array(want.buffer);
      for (let h = 0; h < 65536; h++)
        if (Number.isNaN(want[h]))
          wantBits[h] = dtype === 'BF16' ? h << 16 : (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0;
      const got = await decodeHalf(all, dtype, new Float32Array(65536));
      expect(Array.from(new Uint32Array(got.buffer))).toEqual(Array.from(wantBits));
    }
  });
  it('reject a bad dtype or output', async () => {
    await expect(encodeHalf(new Float32Array(2), 'F8' as never, new Uint16Array(2))).rejects.toMatchObject({
      code: 'E_ARGUMENT',
      message: 'dtype must be "F16" or "BF16", received "F8"',
    });
    await expect(decodeHalf(new Uint16Array(2), 'F16', new Float32Array(1))).rejects.toMatchObject({
      code: 'E_TYPE',
      message: 'out must be a Float32Array of src.length = 2 elements, received Float32Array of length 1',
    });
  });
});

describe('allocFloat32 and allocFloat64', () => {
  it('give zero-filled, writable typed arrays of the length asked for, small and large', () => {
    for (const [alloc, Type] of [
      [allocFloat32, Float32Array],
      [allocFloat64, Float64Array],
    ] as const) {
      for (const n of [0, 5, 1 << 21, (1 << 22) + 3]) {
        const a = alloc(n);
        expect(a).toBeInstanceOf(Type);
        expect(a.length).toBe(n);
        if (n === 0) continue;
        expect([a[0], a[n >> 1], a[n - 1]]).toEqual([0, 0, 0]);
        a[n - 1] = 2.5;
        expect(new Type(a.buffer as ArrayBuffer, a.byteOffset, n)[n - 1]).toBe(2.5);
      }
    }
  });
});

describe('releaseFloat32', () => {
  it('gives back the whole pages inside the array (they read as zeros), keeps the partial pages at its ends', async () => {
    const page = 4096 / 4; // values per page (Linux x86-64 and arm64 pages of 4 KiB or more)
    for (const shared of [true, false]) {
      const n = 64 * page + 300;
      const a = new Float32Array(shared ? new SharedArrayBuffer(n * 4 + 12) : new ArrayBuffer(n * 4 + 12), 12, n);
      a.fill(1.5);
      const bytes = await releaseFloat32(a);
      const zeros = a.reduce((z, v) => z + (v === 0 ? 1 : 0), 0);
      // The dropped bytes are whole pages, all inside the array, and read as zeros; the rest is intact.
      expect(bytes % 4096).toBe(0);
      expect(bytes).toBeGreaterThanOrEqual(62 * 4096);
      expect(zeros * 4).toBe(bytes);
      expect(a.reduce((k, v) => k + (v === 1.5 ? 1 : 0), 0)).toBe(n - zeros);
      expect([a[0], a[n - 1]]).toEqual([1.5, 1.5]);
    }
    expect(await releaseFloat32(Float32Array.of(1, 2))).toBe(0);
    await expect(releaseFloat32(new Float64Array(4) as never)).rejects.toMatchObject({ code: 'E_TYPE' });
  });
});

describe('toFloat64 and toFloat32', () => {
  it('convert exactly as a typed-array set does (float64 exact; float32 round to nearest even, overflow to Infinity)', async () => {
    const r = rng(11);
    const n = (1 << 21) + 5; // large enough for the addon's memory and several threads
    const f32 = new Float32Array(n);
    for (let i = 0; i < n; i++) f32[i] = r.normal() * 10 ** Math.floor(r.uniform() * 60 - 30);
    f32.set([0, -0, Infinity, -Infinity, NaN, 1.401298464324817e-45, 3.4028234663852886e38]);
    const wide = await toFloat64(f32);
    expect(wide).toBeInstanceOf(Float64Array);
    expect(bits(wide)).toEqual(bits(new Float64Array(f32)));
    const f64 = new Float64Array(n);
    for (let i = 0; i < n; i++) f64[i] = r.normal() * 10 ** Math.floor(r.uniform() * 80 - 40);
    // Exact float32 midpoints (ties go to the even neighbour) and values beyond the float32 range.
    f64.set([1 + 2 ** -24, 1 + 3 * 2 ** -24, -(1 + 2 ** -24), 3.5e38, -1e300, 2 ** -150, 2 ** -149 * 1.5, NaN, -0]);
    const narrow = await toFloat32(f64);
    expect(narrow).toBeInstanceOf(Float32Array);
    expect(Array.from(narrow.subarray(0, 7))).toEqual([1, 1 + 2 ** -22, -1, Infinity, -Infinity, 0, 2 ** -148]);
    expect(bits(narrow)).toEqual(bits(new Float32Array(f64)));
    expect((await toFloat64(new Float32Array(0))).length).toBe(0);
  });
  it('reject the wrong array type', async () => {
    await expect(toFloat64(new Float64Array(2) as never)).rejects.toMatchObject({
      code: 'E_TYPE',
      message: 'src must be a Float32Array, received Float64Array of length 2',
    });
    await expect(toFloat32([1, 2] as never)).rejects.toMatchObject({ code: 'E_TYPE' });
  });
});

describe('off the calling thread', () => {
  // No timing assertions. (1) While a pass over a 256 MB matrix runs, the event loop keeps turning
  // (setImmediate callbacks run). (2) The event loop's utilisation (the share of time it was not
  // waiting for events) during the pass is low: the work is on another thread, not on this one
  // cut into slices. The same pass in JavaScript, even yielding between row blocks, keeps this
  // thread busy (the control).
  const rows = 16384,
    cols = 4096;
  const m = { data: new Float32Array(rows * cols).fill(0.5), rows, cols };
  const turnsDuring = async <T>(p: Promise<T>) => {
    let turns = 0,
      settled = false;
    const spin = () => {
      if (settled) return;
      turns++;
      setImmediate(spin);
    };
    setImmediate(spin);
    await p;
    settled = true;
    return turns;
  };
  const utilisationDuring = async (run: () => Promise<unknown>) => {
    const start = performance.eventLoopUtilization();
    await run();
    return performance.eventLoopUtilization(start).utilization;
  };

  it('the event loop turns while a native pass runs', async () => {
    expect(await turnsDuring(columnMeanStd(m, { threads: 1 }))).toBeGreaterThan(0);
    expect(await turnsDuring(findNonFinite(m, { threads: 1 }))).toBeGreaterThan(0);
    expect(await turnsDuring(rowNorms(m, { threads: 1 }))).toBeGreaterThan(0);
    expect(
      await turnsDuring(
        gatherRows(
          m,
          new Int32Array(rows).map((_, i) => rows - 1 - i),
        ),
      ),
    ).toBeGreaterThan(0);
    expect(await turnsDuring(encodeHalf(m.data, 'BF16', new Uint16Array(rows * cols), { threads: 1 }))).toBeGreaterThan(
      0,
    );
    // A Promise-returning function that computes on this thread lets no turn happen.
    expect(
      await turnsDuring(
        (async () => {
          await null;
          return meanStdReference({ data: m.data, rows: 1024, cols });
        })(),
      ),
    ).toBe(0);
  });

  it('the calling thread idles while the native pass runs (event-loop utilisation)', async () => {
    expect(await utilisationDuring(() => columnMeanStd(m, { threads: 1 }))).toBeLessThan(0.5);
    expect(await utilisationDuring(() => findNonFinite(m, { threads: 1 }))).toBeLessThan(0.5);
    // Control: the float64 loop on this thread, yielding to the event loop between row blocks.
    const sliced = async () => {
      const step = 256;
      for (let r0 = 0; r0 < rows; r0 += step) {
        meanStdReference({ data: m.data.subarray(r0 * cols, (r0 + step) * cols), rows: step, cols });
        await new Promise<void>((r) => setImmediate(r));
      }
    };
    expect(await utilisationDuring(sliced)).toBeGreaterThan(0.5);
  });
});
