/**
 * The CUDA backend (native/cuda, loaded as salt_cuda.so) against the CPU reference backend.
 *
 * Without a usable GPU only the first block runs: it checks that asking for 'cuda' fails cleanly with
 * E_NO_CUDA and the loader's reason, and that 'auto' falls back to the CPU. With a GPU the second block
 * compares every kernel with the CPU on randomised shapes and the edge cases of the foundation issue:
 *   top-k: indices equal except among scores within 1e-5 of each other (checked against a float64
 *          reference), scores within 1e-5, rows ordered by (score desc, index asc);
 *   sparsemax, solveNeighbourhoods, applyWeights: within 1e-4 relative error (FP32 outputs).
 */
import { afterEach, describe, expect, it } from 'vitest';

import { applyWeights, info, SaltError, solveNeighbourhoods, sparsemax, topkCosine } from '../lib/index.js';
import { mulberry32 as rng } from './helpers/reference.js';

type M = { data: Float32Array; rows: number; cols: number };
type Csr = { offsets: Int32Array; indices: Int32Array };

function normal(r: () => number): number {
  const u = Math.max(r(), 1e-12),
    v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function randomMatrix(r: () => number, rows: number, cols: number): M {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; ++i) data[i] = normal(r);
  return { data, rows, cols };
}

function randomInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** Random CSR lists with sizes in [kMin, kMax], entries drawn from [0, m) (unsorted, repeats across lists). */
function randomCsr(r: () => number, n: number, m: number, kMin: number, kMax: number, distinct = true): Csr {
  const offsets = new Int32Array(n + 1);
  const lists: number[][] = [];
  for (let i = 0; i < n; ++i) {
    const k = randomInt(r, kMin, Math.min(kMax, distinct ? m : kMax));
    const picked = new Set<number>();
    const list: number[] = [];
    while (list.length < k) {
      const j = randomInt(r, 0, m - 1);
      if (distinct && picked.has(j)) continue;
      picked.add(j);
      list.push(j);
    }
    lists.push(list);
    offsets[i + 1] = offsets[i]! + k;
  }
  return { offsets, indices: Int32Array.from(lists.flat()) };
}

/** float64 cosine of query row i against every base row (a zero row has cosine 0). */
function cosineRow(q: M, i: number, b: M): Float64Array {
  const d = q.cols;
  let qn = 0;
  for (let t = 0; t < d; ++t) qn += q.data[i * d + t]! ** 2;
  const out = new Float64Array(b.rows);
  for (let j = 0; j < b.rows; ++j) {
    let dot = 0,
      bn = 0;
    for (let t = 0; t < d; ++t) {
      dot += q.data[i * d + t]! * b.data[j * d + t]!;
      bn += b.data[j * d + t]! ** 2;
    }
    out[j] = qn > 0 && bn > 0 ? dot / Math.sqrt(qn * bn) : 0;
  }
  return out;
}

/** The CUDA top-k agrees with the CPU's: same indices except among near-equal scores. */
function expectTopkAgrees(
  q: M,
  b: M,
  k: number,
  cpu: { indices: Int32Array; scores: Float32Array },
  gpu: { indices: Int32Array; scores: Float32Array },
  tol = 1e-5,
): void {
  expect(gpu.indices.length).toBe(q.rows * k);
  expect(gpu.scores.length).toBe(q.rows * k);
  for (let i = 0; i < q.rows; ++i) {
    const ref = cosineRow(q, i, b);
    const seen = new Set<number>();
    for (let j = 0; j < k; ++j) {
      const g = gpu.indices[i * k + j]!,
        c = cpu.indices[i * k + j]!;
      expect(g).toBeGreaterThanOrEqual(0);
      expect(g).toBeLessThan(b.rows);
      expect(seen.has(g)).toBe(false);
      seen.add(g);
      expect(Math.abs(gpu.scores[i * k + j]! - ref[g]!)).toBeLessThan(tol);
      expect(Math.abs(gpu.scores[i * k + j]! - cpu.scores[i * k + j]!)).toBeLessThan(tol);
      if (g !== c) expect(Math.abs(ref[g]! - ref[c]!)).toBeLessThan(tol);
      if (j > 0) {
        const s = gpu.scores[i * k + j]!,
          prev = gpu.scores[i * k + j - 1]!;
        expect(s < prev || (s === prev && g > gpu.indices[i * k + j - 1]!)).toBe(true);
      }
    }
  }
}

/** Element-wise agreement within `rel` x max(largest |value| of the row, `floor`). */
function expectClose(
  got: Float32Array,
  want: Float32Array,
  rel: number,
  rowLen = want.length,
  what = 'value',
  floor = 1e-6,
): void {
  expect(got.length).toBe(want.length);
  for (let r0 = 0; r0 < want.length; r0 += rowLen) {
    let scale = 0;
    for (let j = r0; j < r0 + rowLen; ++j) scale = Math.max(scale, Math.abs(want[j]!));
    const tol = rel * Math.max(scale, floor);
    for (let j = r0; j < r0 + rowLen; ++j) {
      if (!(Math.abs(got[j]! - want[j]!) <= tol)) {
        throw new Error(`${what}[${j}] = ${got[j]} differs from the CPU's ${want[j]} by more than ${tol} (rel ${rel})`);
      }
    }
  }
}

const cudaAvailable = info().backends.includes('cuda');

describe.skipIf(cudaAvailable)('CUDA backend on a machine without a usable GPU', () => {
  const r = rng(1);
  const q = randomMatrix(r, 3, 4),
    b = randomMatrix(r, 6, 4);

  it('info() says CUDA is unavailable and why', () => {
    const i = info();
    expect(i.cuda.available).toBe(false);
    expect(i.backends).toEqual(['cpu']);
    expect(typeof i.cuda.reason).toBe('string');
    expect(i.cuda.reason.length).toBeGreaterThan(0);
    expect(i.cuda.path.length).toBeGreaterThan(0);
  });

  it("topkCosine with backend 'cuda' rejects with E_NO_CUDA and the reason", async () => {
    const reason = info().cuda.reason;
    const err = await topkCosine(q, b, 2, { backend: 'cuda' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SaltError);
    expect((err as SaltError).code).toBe('E_NO_CUDA');
    expect((err as SaltError).message).toContain(reason);
  });

  it("every kernel with backend 'cuda' rejects with E_NO_CUDA", async () => {
    const nb = { offsets: new Int32Array([0, 2, 3, 3]), indices: new Int32Array([0, 5, 2]) };
    const calls: Array<Promise<unknown>> = [
      sparsemax(q, { backend: 'cuda' }),
      solveNeighbourhoods({ neighbours: nb, queries: q, anchorsPlm: b, anchorsSrc: b, backend: 'cuda' }),
      applyWeights({ neighbours: nb, weights: new Float32Array(3), anchorsSrc: b, n: 3, backend: 'cuda' }),
    ];
    for (const c of calls) {
      const err = await c.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SaltError);
      expect((err as SaltError).code).toBe('E_NO_CUDA');
    }
  });

  it("backend 'auto' falls back to the CPU with identical results", async () => {
    const auto = await topkCosine(q, b, 3, { backend: 'auto' });
    const cpu = await topkCosine(q, b, 3, { backend: 'cpu' });
    expect(Array.from(auto.indices)).toEqual(Array.from(cpu.indices));
    expect(Array.from(auto.scores)).toEqual(Array.from(cpu.scores));
  });
});

describe.skipIf(!cudaAvailable)('CUDA backend compared with the CPU backend', () => {
  afterEach(() => {
    delete process.env.SALT_CUDA_MEMORY_FRACTION;
  });

  it('describes its devices and library versions', () => {
    const d = JSON.parse(info().cuda.description) as {
      devices: Array<{ name: string; memoryBytes: number; computeCapability: string }>;
      cublas: string;
      cusolver: string;
      limits: { topkMaxK: number; solveMaxNeighbours: number; sparsemaxGpuMaxK: number };
    };
    expect(d.devices.length).toBeGreaterThan(0);
    expect(d.devices[0]!.name.length).toBeGreaterThan(0);
    expect(d.devices[0]!.memoryBytes).toBeGreaterThan(0);
    expect(d.devices[0]!.computeCapability).toMatch(/^\d+\.\d+$/);
    expect(d.cublas).toMatch(/^\d+\.\d+\.\d+$/);
    expect(d.cusolver).toMatch(/^\d+\.\d+\.\d+$/);
    expect(d.limits).toEqual({ topkMaxK: 256, solveMaxNeighbours: 4096, sparsemaxGpuMaxK: 4096 });
  });

  describe('topkCosine', () => {
    const r = rng(2);
    const shapes: Array<[number, number, number, number]> = [
      [9, 17, 6, 4],
      [64, 200, 32, 64],
      [150, 90, 48, 90], // k = m
      [40, 25, 1, 3], // d = 1: cosines are +-1, many exact ties
      [5, 5, 3, 1], // k = 1
      [300, 2000, 100, 256], // the largest k the GPU selection supports
      [randomInt(r, 1, 500), randomInt(r, 256, 3000), randomInt(r, 1, 130), randomInt(r, 1, 200)],
      [randomInt(r, 1, 500), randomInt(r, 256, 3000), randomInt(r, 1, 130), randomInt(r, 1, 200)],
    ];
    for (const [n, m, d, k] of shapes) {
      it(`agrees with the CPU for n=${n} m=${m} d=${d} k=${k}`, async () => {
        const q = randomMatrix(r, n, d),
          b = randomMatrix(r, m, d);
        const cpu = await topkCosine(q, b, k, { backend: 'cpu' });
        const gpu = await topkCosine(q, b, k, { backend: 'cuda' });
        expectTopkAgrees(q, b, k, cpu, gpu);
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
      const q = {
        data: new Float32Array([...b.data.subarray(d, 2 * d), ...new Array<number>(d).fill(0)]),
        rows: 2,
        cols: d,
      };
      for (const k of [1, 2, 3, 5, 10]) {
        const cpu = await topkCosine(q, b, k, { backend: 'cpu' });
        const gpu = await topkCosine(q, b, k, { backend: 'cuda' });
        expect(Array.from(gpu.indices)).toEqual(Array.from(cpu.indices));
        expectClose(gpu.scores, cpu.scores, 1e-5, k, 'scores');
      }
    });

    it('gives the same answer for any tile size (many tiles on both streams)', async () => {
      const q = randomMatrix(r, 257, 16),
        b = randomMatrix(r, 700, 16);
      const cpu = await topkCosine(q, b, 20, { backend: 'cpu' });
      for (const tileRows of [1, 7, 64, 0]) {
        const gpu = await topkCosine(q, b, 20, { backend: 'cuda', tileRows });
        expectTopkAgrees(q, b, 20, cpu, gpu);
      }
    });

    it('streams the base in blocks when it exceeds the memory budget, with the same result', async () => {
      // A tiny budget (~0.4 MB on an 80 GB device) forces blocks of the base and the merge path.
      const q = randomMatrix(r, 300, 16),
        b = randomMatrix(r, 20000, 16);
      for (let t = 0; t < 16; ++t) {
        b.data[12345 * 16 + t] = b.data[77 * 16 + t]!; // a tie across blocks ...
        q.data[t] = b.data[77 * 16 + t]!; // ... at the top of query 0
      }
      const cpu = await topkCosine(q, b, 50, { backend: 'cpu' });
      process.env.SALT_CUDA_MEMORY_FRACTION = '0.00001';
      const gpu = await topkCosine(q, b, 50, { backend: 'cuda' });
      expectTopkAgrees(q, b, 50, cpu, gpu);
    });

    it('TF32 stays close to FP32 (looser tolerance)', async () => {
      const q = randomMatrix(r, 100, 128),
        b = randomMatrix(r, 1000, 128);
      const cpu = await topkCosine(q, b, 10, { backend: 'cpu' });
      const gpu = await topkCosine(q, b, 10, { backend: 'cuda', precision: 'tf32' });
      expectTopkAgrees(q, b, 10, cpu, gpu, 5e-3);
    });

    it('handles n = 0', async () => {
      const res = await topkCosine({ data: new Float32Array(0), rows: 0, cols: 3 }, randomMatrix(r, 4, 3), 2, {
        backend: 'cuda',
      });
      expect(res.indices.length).toBe(0);
      expect(res.scores.length).toBe(0);
    });

    it('rejects k > 256 with E_ARGUMENT and NaN with E_NONFINITE', async () => {
      const b = randomMatrix(r, 300, 4),
        q = randomMatrix(r, 2, 4);
      await expect(topkCosine(q, b, 257, { backend: 'cuda' })).rejects.toMatchObject({ code: 'E_ARGUMENT' });
      q.data[5] = Number.NaN;
      await expect(topkCosine(q, b, 2, { backend: 'cuda' })).rejects.toMatchObject({ code: 'E_NONFINITE' });
    });

    it('reports E_CUDA_OOM when not even one tile fits the budget', async () => {
      process.env.SALT_CUDA_MEMORY_FRACTION = '0.000000000001';
      const err = await topkCosine(randomMatrix(r, 10, 8), randomMatrix(r, 100, 8), 5, { backend: 'cuda' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SaltError);
      expect((err as SaltError).code).toBe('E_CUDA_OOM');
    });
  });

  describe('sparsemax', () => {
    const r = rng(3);
    for (const [n, K] of [
      [1, 1],
      [50, 3],
      [1000, 64],
      [37, 257],
      [5, 4096],
      [3, 5000],
    ] as Array<[number, number]>) {
      it(`agrees with the CPU for n=${n} K=${K}`, async () => {
        const s = randomMatrix(r, n, K);
        // Half the rows sorted descending (as candidate lists arrive), some with ties.
        for (let i = 0; i < n; i += 2) {
          const row = Array.from(s.data.subarray(i * K, (i + 1) * K)).sort((x, y) => y - x);
          if (K > 2) row[2] = row[1]!;
          s.data.set(row, i * K);
        }
        const cpu = await sparsemax(s, { backend: 'cpu' });
        const gpu = await sparsemax(s, { backend: 'cuda' });
        expect(Array.from(gpu.support)).toEqual(Array.from(cpu.support));
        expectClose(gpu.weights, cpu.weights, 1e-4, K, 'weights');
      });
    }

    it('handles n = 0', async () => {
      const res = await sparsemax({ data: new Float32Array(0), rows: 0, cols: 4 }, { backend: 'cuda' });
      expect(res.weights.length).toBe(0);
      expect(res.support.length).toBe(0);
    });
  });

  describe('solveNeighbourhoods', () => {
    const r = rng(4);

    async function compare(args: {
      nb: Csr;
      q: M;
      a: M;
      s: M;
      lambda?: number;
      rcond?: number;
      prior?: Float32Array;
    }): Promise<void> {
      const common = {
        neighbours: args.nb,
        queries: args.q,
        anchorsPlm: args.a,
        anchorsSrc: args.s,
        lambda: args.lambda,
        rcond: args.rcond,
        prior: args.prior,
        returnCoefficients: true,
      };
      const cpu = await solveNeighbourhoods({ ...common, backend: 'cpu' });
      const gpu = await solveNeighbourhoods({ ...common, backend: 'cuda' });
      expectClose(gpu.out, cpu.out, 1e-4, args.s.cols, 'out');
      expectClose(gpu.residual, cpu.residual, 1e-4, 1, 'residual', 1); // already relative: absolute 1e-4
      expectClose(gpu.coefNorm, cpu.coefNorm, 1e-4, 1, 'coefNorm');
      const n = args.q.rows;
      for (let i = 0; i < n; ++i) {
        const lo = args.nb.offsets[i]!,
          hi = args.nb.offsets[i + 1]!;
        if (hi > lo)
          expectClose(
            gpu.coefficients!.subarray(lo, hi),
            cpu.coefficients!.subarray(lo, hi),
            1e-4,
            hi - lo,
            'coefficients',
          );
      }
    }

    function problem(n: number, m: number, ht: number, hs: number, kMin: number, kMax: number) {
      return {
        nb: randomCsr(r, n, m, kMin, kMax),
        q: randomMatrix(r, n, ht),
        a: randomMatrix(r, m, ht),
        s: randomMatrix(r, m, hs),
      };
    }

    for (const lambda of [0, 0.5]) {
      it(`agrees with the CPU on random shapes (lambda=${lambda})`, async () => {
        await compare({ ...problem(300, 500, 48, 40, 1, 30), lambda });
        await compare({
          ...problem(randomInt(r, 1, 400), 200, randomInt(r, 1, 80), randomInt(r, 1, 90), 0, 32),
          lambda,
        });
      });

      it(`agrees for neighbourhoods larger than 32 (block Jacobi and per-matrix syevd paths; lambda=${lambda})`, async () => {
        await compare({ ...problem(60, 400, 64, 20, 33, 128), lambda }); // kp 64..128: block Jacobi
        await compare({ ...problem(12, 400, 64, 20, 129, 260), lambda }); // kp > 128: one syevd per token
      });

      it(`agrees with a prior (shrinkage towards w; lambda=${lambda})`, async () => {
        const p = problem(200, 300, 24, 16, 1, 40);
        const prior = new Float32Array(p.nb.indices.length);
        for (let j = 0; j < prior.length; ++j) prior[j] = r();
        await compare({ ...p, prior, lambda });
      });
    }

    it('agrees on k = 1, k > ht, duplicate and zero anchors, zero queries and empty lists', async () => {
      const ht = 6,
        hs = 5,
        m = 12;
      const a = randomMatrix(r, m, ht),
        s = randomMatrix(r, m, hs);
      for (let t = 0; t < ht; ++t) {
        a.data[7 * ht + t] = a.data[2 * ht + t]!; // duplicate rows
        a.data[9 * ht + t] = 0; // zero row
        a.data[10 * ht + t] = a.data[3 * ht + t]! * 2 + a.data[4 * ht + t]! * 1e-3; // near-collinear
      }
      const lists = [
        [5],
        [0, 1, 2, 3, 4, 5, 6, 8, 11],
        [2, 7, 9],
        [3, 4, 10],
        [],
        [1, 2],
        [9],
        [2, 7, 3, 10, 4, 9, 0, 1, 5, 6, 8, 11],
      ];
      const offsets = new Int32Array(lists.length + 1);
      lists.forEach((l, i) => (offsets[i + 1] = offsets[i]! + l.length));
      const nb = { offsets, indices: Int32Array.from(lists.flat()) };
      const q = randomMatrix(r, lists.length, ht);
      q.data.fill(0, 5 * ht, 6 * ht); // a zero query
      for (const lambda of [0, 1e-3, 2]) await compare({ nb, q, a, s, lambda });
      await compare({ nb, q, a, s, lambda: 0, rcond: 1e-2 });
    });

    it('agrees when the CSR lists share, repeat and skip anchors (non-contiguous)', async () => {
      const m = 50,
        ht = 10,
        hs = 7;
      const lists: number[][] = [];
      for (let i = 0; i < 80; ++i)
        lists.push(Array.from({ length: 1 + (i % 17) }, (_, j) => (i * 7 + j * 13) % m).reverse());
      const offsets = new Int32Array(lists.length + 1);
      lists.forEach((l, i) => (offsets[i + 1] = offsets[i]! + l.length));
      await compare({
        nb: { offsets, indices: Int32Array.from(lists.flat()) },
        q: randomMatrix(r, 80, ht),
        a: randomMatrix(r, m, ht),
        s: randomMatrix(r, m, hs),
      });
    });

    it('agrees across many tiles (n much larger than one tile of a tiny budget)', async () => {
      const p = problem(3000, 400, 32, 24, 1, 40);
      process.env.SALT_CUDA_MEMORY_FRACTION = '0.00001'; // ~0.4 MB: tens of tokens per tile
      await compare(p);
    });

    it('handles n = 0 and reports E_CUDA_OOM when the anchors cannot be resident', async () => {
      const a = randomMatrix(r, 40, 4),
        s = randomMatrix(r, 40, 3);
      const empty = await solveNeighbourhoods({
        neighbours: { offsets: new Int32Array([0]), indices: new Int32Array(0) },
        queries: { data: new Float32Array(0), rows: 0, cols: 4 },
        anchorsPlm: a,
        anchorsSrc: s,
        backend: 'cuda',
      });
      expect(empty.out.length).toBe(0);
      process.env.SALT_CUDA_MEMORY_FRACTION = '0.000000000001';
      await expect(
        solveNeighbourhoods({
          neighbours: randomCsr(r, 5, 40, 1, 5),
          queries: randomMatrix(r, 5, 4),
          anchorsPlm: a,
          anchorsSrc: s,
          backend: 'cuda',
        }),
      ).rejects.toMatchObject({ code: 'E_CUDA_OOM' });
    });
  });

  describe('applyWeights', () => {
    const r = rng(5);
    it('agrees with the CPU on random CSR lists, including empty lists', async () => {
      for (const [n, m, hs] of [
        [1, 1, 1],
        [200, 300, 64],
        [1000, 50, 3],
      ] as Array<[number, number, number]>) {
        const nb = randomCsr(r, n, m, 0, 20, false);
        const weights = new Float32Array(nb.indices.length);
        for (let j = 0; j < weights.length; ++j) weights[j] = normal(r);
        const s = randomMatrix(r, m, hs);
        const cpu = await applyWeights({ neighbours: nb, weights, anchorsSrc: s, n, backend: 'cpu' });
        const gpu = await applyWeights({ neighbours: nb, weights, anchorsSrc: s, n, backend: 'cuda' });
        expectClose(gpu.out, cpu.out, 1e-4, hs, 'out');
      }
    });
  });
});
