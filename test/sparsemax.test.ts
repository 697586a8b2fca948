import { describe, expect, it } from 'vitest';

import { SaltError, SaltRangeError, sparsemax, sparsemaxSync } from '../lib/index.js';
import { rng, sparsemaxReference } from './helpers/reference.js';

describe('sparsemax', () => {
  const r = rng(5);
  for (const K of [1, 2, 7, 64, 300]) {
    it(`matches the bisection reference for K=${K}, sorted and unsorted rows, with ties`, async () => {
      const n = 40;
      const data = new Float32Array(n * K);
      for (let i = 0; i < data.length; ++i) data[i] = r.normal() * (i % 3 === 0 ? 0.05 : 0.5);
      for (let i = 0; i < n; i += 4)
        data
          .subarray(i * K, (i + 1) * K)
          .sort()
          .reverse(); // some rows sorted like topk output
      for (let i = 1; i < n; i += 5) if (K > 1) data[i * K + 1] = data[i * K]!; // exact ties
      const res = await sparsemax({ data, rows: n, cols: K }, { backend: 'cpu' });
      for (let i = 0; i < n; ++i) {
        const ref = sparsemaxReference(data.subarray(i * K, (i + 1) * K));
        let sum = 0,
          nz = 0;
        for (let j = 0; j < K; ++j) {
          expect(Math.abs(res.weights[i * K + j]! - ref[j]!)).toBeLessThan(1e-5);
          sum += res.weights[i * K + j]!;
          if (ref[j]! > 1e-7) nz++;
        }
        expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
        expect(res.support[i]).toBe(nz);
      }
      const sync = sparsemaxSync({ data, rows: n, cols: K });
      expect(sync.weights).toEqual(res.weights);
      expect(sync.support).toEqual(res.support);
    });
  }

  it('support is a prefix of the descending order: equal scores are kept or dropped together', async () => {
    const res = await sparsemax({ data: new Float32Array([0.9, 0.5, 0.5, 0.1, 0.5, 0.5, 0.5, 0.5]), rows: 2, cols: 4 });
    expect(Array.from(res.support)).toEqual([3, 4]);
    expect(Array.from(res.weights.subarray(4))).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('handles n = 0', async () => {
    const res = await sparsemax({ data: new Float32Array(0), rows: 0, cols: 3 });
    expect(res.weights.length).toBe(0);
    expect(res.support.length).toBe(0);
  });

  it('rejects NaN with E_NONFINITE and bad shapes with E_SHAPE', async () => {
    const err = await sparsemax({ data: new Float32Array([0, NaN]), rows: 1, cols: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(SaltError);
    expect(err.code).toBe('E_NONFINITE');
    expect(err.message).toBe('scores contains NaN at row 0, column 1');
    expect(() => sparsemaxSync({ data: new Float32Array([Infinity]), rows: 1, cols: 1 })).toThrowError(
      expect.objectContaining({ code: 'E_NONFINITE', message: 'scores contains Infinity at row 0, column 0' }),
    );
    const shape = await sparsemax({ data: new Float32Array(3), rows: 2, cols: 2 }).catch((e) => e);
    expect(shape).toBeInstanceOf(SaltRangeError);
    expect(shape.code).toBe('E_SHAPE');
  });
});
