import { describe, expect, it } from 'vitest';

import { applyWeights, SaltError, SaltRangeError, SaltTypeError, solveNeighbourhoods } from '../lib/index.js';
import { pinvCoefficients, randomMatrix, ridgeCoefficients, rng } from './helpers/reference.js';

type M = { data: Float32Array; rows: number; cols: number };
const row = (m: M, i: number): number[] => Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols));

interface Case {
  offsets: Int32Array;
  indices: Int32Array;
  queries: M;
  anchorsPlm: M;
  anchorsSrc: M;
  prior?: Float32Array;
}

function randomCase(seed: number, n: number, m: number, ht: number, hs: number, kmin: number, kmax: number): Case {
  const r = rng(seed);
  const offsets = new Int32Array(n + 1);
  const idx: number[] = [];
  for (let i = 0; i < n; ++i) {
    const k = r.int(kmin, kmax);
    for (let j = 0; j < k; ++j) idx.push(r.int(0, m - 1)); // unsorted; repeats make rank-deficient lists
    offsets[i + 1] = idx.length;
  }
  return {
    offsets,
    indices: Int32Array.from(idx),
    queries: randomMatrix(r, n, ht),
    anchorsPlm: randomMatrix(r, m, ht),
    anchorsSrc: randomMatrix(r, m, hs),
  };
}

/** Compares the kernel with the float64 reference: out and coefficient norms within `tol` (relative). */
async function expectMatchesReference(c: Case, lambda: number, tol: number, rcond?: number): Promise<void> {
  const res = await solveNeighbourhoods({
    neighbours: c,
    queries: c.queries,
    anchorsPlm: c.anchorsPlm,
    anchorsSrc: c.anchorsSrc,
    lambda,
    rcond,
    prior: c.prior,
    returnCoefficients: true,
    backend: 'cpu',
  });
  const n = c.queries.rows,
    ht = c.queries.cols,
    hs = c.anchorsSrc.cols;
  expect(res.out.length).toBe(n * hs);
  for (let i = 0; i < n; ++i) {
    const lo = c.offsets[i]!,
      hi = c.offsets[i + 1]!,
      k = hi - lo;
    const A = Array.from({ length: k }, (_, r) => row(c.anchorsPlm, c.indices[lo + r]!));
    const x = row(c.queries, i);
    const w = c.prior ? Array.from(c.prior.subarray(lo, hi)) : undefined;
    let coef: number[];
    if (lambda > 0) coef = ridgeCoefficients(A, x, lambda, w);
    else {
      const xr = x.slice();
      if (w) for (let r = 0; r < k; ++r) for (let j = 0; j < ht; ++j) xr[j]! -= w[r]! * A[r]![j]!;
      coef = pinvCoefficients(A, xr, rcond ?? Math.max(k, ht) * 2 ** -23).map((v, r) => v + (w ? w[r]! : 0));
    }
    const cn = Math.sqrt(coef.reduce((s, v) => s + v * v, 0));
    expect(Math.abs(res.coefNorm[i]! - cn)).toBeLessThanOrEqual(tol * Math.max(cn, 1e-12));
    for (let t = 0; t < hs; ++t) {
      let ref = 0,
        scale = 0;
      for (let r = 0; r < k; ++r) {
        const v = coef[r]! * c.anchorsSrc.data[c.indices[lo + r]! * hs + t]!;
        ref += v;
        scale += Math.abs(v);
      }
      expect(Math.abs(res.out[i * hs + t]! - ref)).toBeLessThanOrEqual(tol * Math.max(scale, 1e-12));
    }
    // residual = ||c A - x|| / ||x||
    let rr = 0,
      xx = 0;
    for (let j = 0; j < ht; ++j) {
      let p = -x[j]!;
      for (let r = 0; r < k; ++r) p += coef[r]! * A[r]![j]!;
      rr += p * p;
      xx += x[j]! ** 2;
    }
    expect(Math.abs(res.residual[i]! - Math.sqrt(rr / xx))).toBeLessThan(1e-4);
  }
}

describe('solveNeighbourhoods', () => {
  it('ridge (lambda > 0) matches the float64 reference on random shapes', async () => {
    await expectMatchesReference(randomCase(1, 60, 40, 16, 11, 1, 12), 0.7, 1e-5);
    await expectMatchesReference(randomCase(2, 30, 200, 48, 96, 20, 64), 5, 1e-5);
  });

  it('lambda = 0 matches pinv for full-rank lists, k = 1, and k > ht', async () => {
    await expectMatchesReference(randomCase(3, 60, 40, 16, 11, 1, 12), 0, 1e-4);
    await expectMatchesReference(randomCase(4, 10, 8, 5, 3, 1, 1), 0, 1e-5);
    await expectMatchesReference(randomCase(5, 30, 80, 6, 9, 7, 25), 0, 1e-4); // k > ht: underdetermined, minimum norm
  });

  it('lambda = 0 matches pinv for rank-deficient lists (repeated neighbours)', async () => {
    const c = randomCase(6, 4, 10, 8, 5, 3, 3);
    c.indices.set([2, 2, 2, 5, 5, 1, 7, 7, 7, 0, 3, 0]);
    await expectMatchesReference(c, 0, 1e-4);
    const res = await solveNeighbourhoods({
      neighbours: c,
      queries: c.queries,
      anchorsPlm: c.anchorsPlm,
      anchorsSrc: c.anchorsSrc,
      returnCoefficients: true,
    });
    expect(res.coefficients![0]).toBeCloseTo(res.coefficients![1]!, 6); // minimum norm splits equally
    expect(res.coefficients![1]).toBeCloseTo(res.coefficients![2]!, 6);
  });

  it('lambda = 0 on near-collinear lists honours rcond like pinv', async () => {
    const c = randomCase(7, 6, 6, 12, 4, 3, 3);
    const ht = 12;
    for (let j = 0; j < ht; ++j) c.anchorsPlm.data[1 * ht + j] = c.anchorsPlm.data[0 * ht + j]! + 1e-3 * ((j % 3) - 1);
    for (let i = 0; i < 6; ++i) c.indices.set([0, 1, 2 + (i % 4)], i * 3);
    await expectMatchesReference(c, 0, 1e-5); // the small direction is kept: conditioning ~1e3
    await expectMatchesReference(c, 0, 1e-4, 1e-2); // ... and dropped above the cutoff
  });

  it('non-contiguous CSR lists, an empty list, and a prior (ridge towards w)', async () => {
    const c = randomCase(8, 20, 30, 10, 7, 0, 9);
    const r = rng(9);
    c.prior = Float32Array.from(c.indices, () => r.uniform());
    await expectMatchesReference({ ...c, offsets: c.offsets }, 2.5, 1e-5);
    await expectMatchesReference(c, 0, 1e-4);
  });

  it('a huge lambda with a prior converges to the prior combination (the FOCUS limit)', async () => {
    const c = randomCase(10, 12, 20, 8, 6, 2, 6);
    const r = rng(11);
    c.prior = Float32Array.from(c.indices, () => r.uniform());
    const res = await solveNeighbourhoods({
      neighbours: c,
      queries: c.queries,
      anchorsPlm: c.anchorsPlm,
      anchorsSrc: c.anchorsSrc,
      lambda: 1e9,
      prior: c.prior,
    });
    const lim = await applyWeights({ n: 12, neighbours: c, weights: c.prior, anchorsSrc: c.anchorsSrc });
    for (let i = 0; i < lim.out.length; ++i) expect(res.out[i]).toBeCloseTo(lim.out[i]!, 4);
  });

  it('handles n = 0', async () => {
    const r = rng(1);
    const res = await solveNeighbourhoods({
      neighbours: { offsets: new Int32Array([0]), indices: new Int32Array(0) },
      queries: { data: new Float32Array(0), rows: 0, cols: 3 },
      anchorsPlm: randomMatrix(r, 2, 3),
      anchorsSrc: randomMatrix(r, 2, 4),
    });
    expect(res.out.length).toBe(0);
  });

  describe('bad input', () => {
    const c = randomCase(12, 3, 5, 4, 2, 1, 3);
    const base = { neighbours: c, queries: c.queries, anchorsPlm: c.anchorsPlm, anchorsSrc: c.anchorsSrc };
    it('negative lambda', async () => {
      const err = await solveNeighbourhoods({ ...base, lambda: -0.5 }).catch((e) => e);
      expect(err).toBeInstanceOf(SaltRangeError);
      expect(err.code).toBe('E_ARGUMENT');
      expect(err.message).toBe('lambda must be a finite number >= 0, received -0.5');
    });
    it('index out of range (checked natively)', async () => {
      const indices = c.indices.slice();
      indices[1] = 5;
      const err = await solveNeighbourhoods({ ...base, neighbours: { offsets: c.offsets, indices } }).catch((e) => e);
      expect(err).toBeInstanceOf(SaltError);
      expect(err.code).toBe('E_ARGUMENT');
      expect(err.message).toBe('indices[1] = 5 is outside [0, 5)');
    });
    it('wrong CSR lengths and types', async () => {
      let err = await solveNeighbourhoods({
        ...base,
        neighbours: { offsets: new Int32Array(3), indices: c.indices },
      }).catch((e) => e);
      expect(err).toBeInstanceOf(SaltRangeError);
      expect(err.code).toBe('E_SHAPE');
      expect(err.message).toBe(
        'neighbours.offsets must have n + 1 = 4 elements (one per query row plus one), received 3',
      );
      err = await solveNeighbourhoods({
        ...base,
        neighbours: { offsets: c.offsets, indices: Float32Array.from(c.indices) as never },
      }).catch((e) => e);
      expect(err).toBeInstanceOf(SaltTypeError);
      expect(err.message).toBe(
        `neighbours.indices must be an Int32Array, received Float32Array of length ${c.indices.length}`,
      );
    });
    it('mismatched anchor rows and widths', async () => {
      let err = await solveNeighbourhoods({
        ...base,
        anchorsSrc: { data: new Float32Array(8), rows: 4, cols: 2 },
      }).catch((e) => e);
      expect(err.code).toBe('E_SHAPE');
      expect(err.message).toBe('anchorsSrc.rows must equal anchorsPlm.rows = 5, received 4');
      err = await solveNeighbourhoods({ ...base, anchorsPlm: { data: new Float32Array(15), rows: 5, cols: 3 } }).catch(
        (e) => e,
      );
      expect(err.message).toBe('anchorsPlm.cols must equal queries.cols = 4, received 3');
    });
    it('NaN in the source rows', async () => {
      const S = { ...c.anchorsSrc, data: c.anchorsSrc.data.slice() };
      S.data[3] = NaN;
      const err = await solveNeighbourhoods({ ...base, anchorsSrc: S }).catch((e) => e);
      expect(err.code).toBe('E_NONFINITE');
      expect(err.message).toBe('anchorsSrc contains NaN at row 1, column 1');
    });
  });
});

describe('applyWeights', () => {
  it('matches a float64 reference on non-contiguous lists with an empty list', async () => {
    const r = rng(3);
    const S = randomMatrix(r, 9, 6);
    const offsets = new Int32Array([0, 3, 3, 6]);
    const indices = new Int32Array([8, 0, 8, 4, 1, 2]);
    const weights = new Float32Array([0.5, 0.25, 0.25, 1, -2, 0.125]);
    const { out } = await applyWeights({ n: 3, neighbours: { offsets, indices }, weights, anchorsSrc: S });
    for (let i = 0; i < 3; ++i)
      for (let t = 0; t < 6; ++t) {
        let ref = 0;
        for (let j = offsets[i]!; j < offsets[i + 1]!; ++j) ref += weights[j]! * S.data[indices[j]! * 6 + t]!;
        expect(Math.abs(out[i * 6 + t]! - ref)).toBeLessThan(1e-6);
      }
  });
  it('rejects weights of the wrong length', async () => {
    const err = await applyWeights({
      n: 1,
      neighbours: { offsets: new Int32Array([0, 2]), indices: new Int32Array([0, 1]) },
      weights: new Float32Array(1),
      anchorsSrc: { data: new Float32Array(4), rows: 2, cols: 2 },
    }).catch((e) => e);
    expect(err.code).toBe('E_SHAPE');
    expect(err.message).toBe('weights must have one weight per neighbour entry (2), received 1');
  });
});
