import { describe, expect, it } from 'vitest';

import { loadUseLite } from '../lib/data/sources.js';
import { SaltError, SaltRangeError, SaltTypeError, topkCosine } from '../lib/index.js';
import { cosineRow, randomMatrix, rng } from './helpers/reference.js';

type M = { data: Float32Array; rows: number; cols: number };

/** Checks a top-k result against the float64 brute force: scores within 1e-5, indices equal except
 *  among scores within 1e-5 of each other, rows ordered by (score desc, index asc). */
function expectMatchesReference(q: M, b: M, k: number, res: { indices: Int32Array; scores: Float32Array }): void {
  expect(res.indices.length).toBe(q.rows * k);
  for (let i = 0; i < q.rows; ++i) {
    const ref = cosineRow(q.data, i, b.data, b.rows, b.cols);
    const order = Array.from(ref.keys()).sort((x, y) => ref[y]! - ref[x]! || x - y);
    for (let j = 0; j < k; ++j) {
      const got = res.indices[i * k + j]!;
      const s = res.scores[i * k + j]!;
      expect(Math.abs(s - ref[got]!)).toBeLessThan(1e-5);
      // Ties in the float64 reference need not be ties in float32 (for d = 1, about 15 % of random
      // values normalise to 0.99999994 instead of 1), so only near-equality is required here; exact float ties between
      // identical vectors are checked by the duplicate-vector test below, and the order within the
      // result (score desc, index asc) by the check that follows.
      if (got !== order[j]) expect(Math.abs(ref[got]! - ref[order[j]!]!)).toBeLessThan(1e-5);
      if (j > 0) {
        const prev = res.scores[i * k + j - 1]!;
        expect(s < prev || (s === prev && got > res.indices[i * k + j - 1]!)).toBe(true);
      }
    }
  }
}

describe('topkCosine', () => {
  const r = rng(11);
  const shapes: Array<[number, number, number, number]> = [
    [9, 17, 6, 4],
    [64, 200, 32, 64],
    [150, 90, 48, 90], // k = m
    [40, 25, 1, 3], // d = 1: cosines are +-1, many exact ties
    [5, 5, 3, 1], // k = 1
    [2100, 300, 24, 10], // several FAISS BLAS blocks
  ];
  for (const [n, m, d, k] of shapes) {
    it(`matches the float64 reference for n=${n} m=${m} d=${d} k=${k}`, async () => {
      const q = randomMatrix(r, n, d),
        b = randomMatrix(r, m, d);
      const res = await topkCosine(q, b, k, { backend: 'cpu' });
      expectMatchesReference(q, b, k, res);
      expect(res.n).toBe(n);
      expect(res.k).toBe(k);
    });
  }

  it('breaks exact ties (duplicate and zero vectors) by the lower index, also at the k boundary', async () => {
    const d = 5,
      m = 10;
    const b = randomMatrix(r, m, d);
    for (let t = 0; t < d; ++t) {
      b.data[6 * d + t] = b.data[1 * d + t]!;
      b.data[8 * d + t] = b.data[1 * d + t]!;
      b.data[3 * d + t] = 0;
      b.data[4 * d + t] = 0;
    }
    const q = { data: new Float32Array([...b.data.subarray(d, 2 * d), ...new Array(d).fill(0)]), rows: 2, cols: d };
    const two = await topkCosine(q, b, 2, { backend: 'cpu' });
    expect(Array.from(two.indices.subarray(0, 2))).toEqual([1, 6]);
    expect(Array.from(two.indices.subarray(2, 4))).toEqual([0, 1]); // zero query: all cosines 0
    expect(Array.from(two.scores.subarray(2, 4))).toEqual([0, 0]);
    const three = await topkCosine(q, b, 3, { backend: 'cpu' });
    expect(Array.from(three.indices.subarray(0, 3))).toEqual([1, 6, 8]);
  });

  it('returns empty results for n = 0', async () => {
    const res = await topkCosine({ data: new Float32Array(0), rows: 0, cols: 4 }, randomMatrix(r, 3, 4), 2);
    expect(res.indices.length).toBe(0);
    expect(res.scores.length).toBe(0);
  });

  it('is deterministic, and independent of tile size and threads up to float rounding', async () => {
    const q = randomMatrix(r, 500, 16),
      b = randomMatrix(r, 120, 16);
    const a = await topkCosine(q, b, 7, { tileRows: 0 });
    const again = await topkCosine(q, b, 7, { tileRows: 0 });
    expect(again.indices).toEqual(a.indices);
    expect(again.scores).toEqual(a.scores); // bit-identical
    const t = await topkCosine(q, b, 7, { tileRows: 33, threads: 1 });
    expect(t.indices).toEqual(a.indices);
    for (let i = 0; i < a.scores.length; ++i) expect(Math.abs(t.scores[i]! - a.scores[i]!)).toBeLessThan(1e-6);
  });

  it('finds the real USE-lite neighbours (float64 reference on 300 real rows against all 8,000)', async () => {
    const use = await loadUseLite();
    const cols = use.dim;
    expect(use.words.length).toBe(8000);
    const table = { data: use.vectors, rows: 8000, cols };
    const q = { data: table.data.slice(0, 300 * cols), rows: 300, cols };
    const res = await topkCosine(q, table, 10);
    expectMatchesReference(q, table, 10, res);
    const monday = use.words.indexOf('▁Monday');
    const one = await topkCosine(
      { data: table.data.slice(monday * cols, (monday + 1) * cols), rows: 1, cols },
      table,
      4,
    );
    expect(Array.from(one.indices).map((i) => use.words[i])).toEqual([
      '▁Monday',
      '▁Thursday',
      '▁Wednesday',
      '▁Tuesday',
    ]);
  });

  describe('bad input', () => {
    const b = { data: new Float32Array(12), rows: 4, cols: 3 };
    const q = { data: new Float32Array(6), rows: 2, cols: 3 };
    it('rejects a wrong array type', async () => {
      const err = await topkCosine(
        { data: new Float64Array(6) as unknown as Float32Array, rows: 2, cols: 3 },
        b,
        1,
      ).catch((e) => e);
      expect(err).toBeInstanceOf(SaltTypeError);
      expect(err.code).toBe('E_TYPE');
      expect(err.message).toBe('queries.data must be a Float32Array, received Float64Array of length 6');
    });
    it('rejects a wrong length', async () => {
      const err = await topkCosine({ data: new Float32Array(5), rows: 2, cols: 3 }, b, 1).catch((e) => e);
      expect(err).toBeInstanceOf(SaltRangeError);
      expect(err.code).toBe('E_SHAPE');
      expect(err.message).toBe('queries.data must have queries.rows x queries.cols = 2 x 3 = 6 elements, received 5');
    });
    it('rejects mismatched widths', async () => {
      const err = await topkCosine(q, { data: new Float32Array(8), rows: 4, cols: 2 }, 1).catch((e) => e);
      expect(err).toBeInstanceOf(SaltRangeError);
      expect(err.code).toBe('E_SHAPE');
      expect(err.message).toBe('base.cols must equal queries.cols = 3, received 2');
    });
    it('rejects k > m and k = 0', async () => {
      let err = await topkCosine(q, b, 5).catch((e) => e);
      expect(err).toBeInstanceOf(SaltRangeError);
      expect(err.code).toBe('E_ARGUMENT');
      expect(err.message).toBe('k must be an integer in [1, 4] (base.rows), received 5');
      err = await topkCosine(q, b, 0).catch((e) => e);
      expect(err.message).toBe('k must be an integer in [1, 4] (base.rows), received 0');
      err = await topkCosine(q, b, 1.5).catch((e) => e);
      expect(err).toBeInstanceOf(SaltTypeError);
      expect(err.message).toBe('k must be an integer, received 1.5');
    });
    it('rejects NaN and Infinity with E_NONFINITE, naming the position', async () => {
      const bad = { data: new Float32Array(6), rows: 2, cols: 3 };
      bad.data[4] = NaN;
      let err = await topkCosine(bad, b, 1).catch((e) => e);
      expect(err).toBeInstanceOf(SaltError);
      expect(err.code).toBe('E_NONFINITE');
      expect(err.message).toBe('queries contains NaN at row 1, column 1');
      expect(err.stack).toContain('topkCosine.test.ts');
      const binf = { data: new Float32Array(12), rows: 4, cols: 3 };
      binf.data[11] = -Infinity;
      err = await topkCosine(q, binf, 1).catch((e) => e);
      expect(err.code).toBe('E_NONFINITE');
      expect(err.message).toBe('base contains -Infinity at row 3, column 2');
    });
    it('rejects an unknown backend and bad options', async () => {
      let err = await topkCosine(q, b, 1, { backend: 'gpu' as never }).catch((e) => e);
      expect(err).toBeInstanceOf(SaltRangeError);
      expect(err.code).toBe('E_ARGUMENT');
      expect(err.message).toBe('options.backend must be one of "auto", "cpu", "cuda", received "gpu"');
      err = await topkCosine(q, b, 1, { threads: -1 }).catch((e) => e);
      expect(err.message).toBe('options.threads must be an integer in [0, 4096], received -1');
    });
  });
});
