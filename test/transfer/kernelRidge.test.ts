// Method 'salt' (kernel ridge) on small synthetic cases. Expected values come from float64 references written
// here (kernel by its formula, Gaussian elimination, leave-one-out by refitting without each anchor),
// never from the engine.
import { describe, expect, it } from 'vitest';

import { SaltError } from '../../lib/errors.js';
import { seededSample, STREAM } from '../../lib/transfer/random.js';
import { type TransferArgs, transferEmbeddings } from '../../lib/transfer/transferEmbeddings.js';
import { MAX_EXACT_ANCHORS } from '../../lib/transfer/types.js';
import { randomMatrix, rng } from '../helpers/reference.js';

type M = { data: Float32Array; rows: number; cols: number };
const row = (m: M, i: number): number[] => Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols));

/** k(x, z) = linear (x . z + 1) + exp((cos - 1) / width), float64. */
function k(x: number[], z: number[], linear: number, width: number): number {
  let dot = 0,
    nx = 0,
    nz = 0;
  for (let j = 0; j < x.length; j++) {
    dot += x[j]! * z[j]!;
    nx += x[j]! ** 2;
    nz += z[j]! ** 2;
  }
  const cos = nx > 0 && nz > 0 ? dot / Math.sqrt(nx * nz) : 0;
  return linear * (dot + 1) + Math.exp((cos - 1) / width);
}

/** Solves A X = B (A n x n, B n x h) by Gaussian elimination with partial pivoting, float64. */
function solve(A: number[][], B: number[][]): number[][] {
  const n = A.length,
    h = B[0]!.length;
  const M = A.map((r, i) => [...r, ...B[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / M[c]![c]!;
      if (f !== 0) for (let j = c; j < n + h; j++) M[r]![j]! -= f * M[c]![j]!;
    }
  }
  return M.map((r, i) => r.slice(n).map((v) => v / r[i]!));
}

const meanDiag = (X: number[][], linear: number) =>
  X.reduce((s, x) => s + linear * x.reduce((q, v) => q + v * v, 1) + 1, 0) / X.length;

/** Exact kernel ridge: predictions k(q, X) (K + lambda_rel meanDiag I)^-1 Y. */
function krr(X: number[][], Y: number[][], Q: number[][], linear: number, width: number, rel: number): number[][] {
  const lam = rel * meanDiag(X, linear);
  const K = X.map((a, i) => X.map((b, j) => k(a, b, linear, width) + (i === j ? lam : 0)));
  const alpha = solve(K, Y);
  return Q.map((q) => {
    const kq = X.map((a) => k(q, a, linear, width));
    return Y[0]!.map((_, c) => kq.reduce((s, v, i) => s + v * alpha[i]![c]!, 0));
  });
}

function cos(a: number[], b: number[]): number {
  let d = 0,
    na = 0,
    nb = 0;
  for (let j = 0; j < a.length; j++) {
    d += a[j]! * b[j]!;
    na += a[j]! ** 2;
    nb += b[j]! ** 2;
  }
  return na > 0 && nb > 0 ? d / Math.sqrt(na * nb) : 0;
}

/** m shared tokens (target t <-> source t), then n new tokens; aux = target; an optional head. */
function problem(seed: number, m: number, n: number, o: { hs?: number; ht?: number; head?: number } = {}) {
  const r = rng(seed);
  const hs = o.hs ?? 5,
    ht = o.ht ?? 4;
  const target = randomMatrix(r, m + n, ht);
  // Source rows depend smoothly on the target rows (so the regression has something to find), plus noise.
  const source = randomMatrix(r, m + 3, hs);
  for (let t = 0; t < m; t++)
    for (let c = 0; c < hs; c++) {
      const x = row(target, t);
      source.data[t * hs + c] = Math.tanh(x[c % ht]! + 0.5 * x[(c + 1) % ht]!) + 0.1 * source.data[t * hs + c]!;
    }
  const sourceIdOfTarget = new Int32Array(m + n).fill(-1);
  for (let t = 0; t < m; t++) sourceIdOfTarget[t] = t;
  const sourceHead = o.head ? randomMatrix(r, m + 3, o.head) : undefined;
  const args: TransferArgs = {
    source,
    target,
    sourceHead,
    alignment: { sourceIdOfTarget },
    method: 'salt',
    backend: 'cpu',
  };
  const X = Array.from({ length: m }, (_, i) => row(target, i));
  const Q = Array.from({ length: n }, (_, i) => row(target, m + i));
  return { args, X, Q, Y: X.map((_, i) => row(source, i)), H: sourceHead && X.map((_, i) => row(sourceHead, i)) };
}

describe('salt (kernel ridge, the default method)', () => {
  it('exact kernel ridge with fixed hyperparameters equals a float64 solve, head included', async () => {
    const p = problem(1, 40, 15, { head: 3 });
    const res = await transferEmbeddings({ ...p.args, kernelLinear: 0.1, kernelWidth: 0.3, lambda: 0.05 });
    expect(res.report.kernel).toMatchObject({ exact: true, landmarks: 40, linear: 0.1, width: 0.3, lambda: 0.05 });
    const want = krr(p.X, p.Y, p.Q, 0.1, 0.3, 0.05);
    const wantH = krr(p.X, p.H!, p.Q, 0.1, 0.3, 0.05);
    const out = { data: res.embeddings, rows: 55, cols: 5 };
    const outH = { data: res.head!, rows: 55, cols: 3 };
    for (let i = 0; i < 15; i++) {
      row(out, 40 + i).forEach((v, c) => expect(v).toBeCloseTo(want[i]![c]!, 4));
      row(outH, 40 + i).forEach((v, c) => expect(v).toBeCloseTo(wantH[i]![c]!, 4));
    }
    for (let t = 0; t < 40; t++) expect(row(out, t)).toEqual(p.Y[t]); // shared rows copied exactly
  });

  it('a landmark count >= the anchor count takes the exact path; fewer landmarks give subset-of-regressors', async () => {
    const p = problem(2, 36, 10);
    const fixed = { kernelLinear: 0, kernelWidth: 0.5, lambda: 0.1 } as const;
    const exact = await transferEmbeddings({ ...p.args, ...fixed, landmarks: 'all' });
    const all = await transferEmbeddings({ ...p.args, ...fixed, landmarks: 36 });
    expect(all.report.kernel!.exact).toBe(true);
    for (let i = 0; i < exact.embeddings.length; i++) expect(all.embeddings[i]).toBeCloseTo(exact.embeddings[i]!, 5);
    // Fewer landmarks: beta = (K_ZA K_AZ + lambda K_ZZ)^-1 K_ZA Y over the landmark rows Z.
    const few = await transferEmbeddings({ ...p.args, ...fixed, landmarks: 9 });
    const rep = few.report.kernel!;
    expect(rep).toMatchObject({ exact: false, landmarks: 9 });
    expect(rep.rank).toBe(9);
    // The landmarks are the engine's seeded sample of the anchors (an input here, not an expected value).
    const Z = Array.from(seededSample(36, 9, 0, STREAM.landmarks)).sort((a, b) => a - b);
    const lam = 0.1 * meanDiag(p.X, 0);
    const KAZ = p.X.map((x) => Z.map((z) => k(x, p.X[z]!, 0, 0.5)));
    const lhs = Z.map((_, a) =>
      Z.map((zb, b) => KAZ.reduce((s, r) => s + r[a]! * r[b]!, 0) + lam * k(p.X[Z[a]!]!, p.X[zb]!, 0, 0.5)),
    );
    const rhs = Z.map((_, a) => p.Y[0]!.map((_, c) => KAZ.reduce((s, r, i) => s + r[a]! * p.Y[i]![c]!, 0)));
    const beta = solve(lhs, rhs);
    const out = { data: few.embeddings, rows: 46, cols: 5 };
    for (let i = 0; i < 10; i++) {
      const kq = Z.map((z) => k(p.Q[i]!, p.X[z]!, 0, 0.5));
      row(out, 36 + i).forEach((v, c) =>
        expect(v).toBeCloseTo(
          kq.reduce((s, w, j) => s + w * beta[j]![c]!, 0),
          3,
        ),
      );
    }
  });

  it('leave-one-out scores equal refitting without each anchor; the best grid point is chosen', async () => {
    const p = problem(3, 30, 6);
    const grid = { kernelLinear: [0, 0.1], kernelWidth: [0.2, 1], lambdaGrid: [0.01, 0.3], lambda: 'auto' as const };
    for (const looCriterion of ['cosine', 'p1'] as const) {
      const res = await transferEmbeddings({ ...p.args, ...grid, looCriterion, looSample: 1000 });
      const rep = res.report.kernel!;
      expect(rep.sample).toBe(30);
      expect(rep.grid).toHaveLength(8);
      const S = p.args.source as M;
      for (const g of rep.grid!) {
        // Refit without anchor i at the same absolute lambda (relative to the mean diagonal of all 30).
        const lamAbs = g.lambda * meanDiag(p.X, g.linear);
        let score = 0;
        for (let i = 0; i < 30; i++) {
          const Xi = p.X.filter((_, j) => j !== i),
            Yi = p.Y.filter((_, j) => j !== i);
          const rel = lamAbs / meanDiag(Xi, g.linear);
          const pred = krr(Xi, Yi, [p.X[i]!], g.linear, g.width, rel)[0]!;
          if (looCriterion === 'cosine') score += cos(pred, p.Y[i]!);
          else {
            const mine = cos(pred, p.Y[i]!);
            let better = 0;
            for (let s = 0; s < S.rows; s++) if (s !== i && cos(pred, row(S, s)) > mine) better++;
            score += better === 0 ? 1 : 0;
          }
        }
        expect(g.score).toBeCloseTo(score / 30, 4);
      }
      const best = Math.max(...rep.grid!.map((g) => g.score));
      const first = rep.grid!.find((g) => g.score === best)!;
      expect([rep.linear, rep.width, rep.lambda]).toEqual([first.linear, first.width, first.lambda]);
    }
  });

  it('a singular system at the chosen lambda falls back to the next grid value and says so', async () => {
    const p = problem(4, 12, 3);
    // Two anchors with the same target row make K exactly singular at lambda 0.
    const target = p.args.target as M;
    target.data.copyWithin(1 * 4, 0, 4);
    const res = await transferEmbeddings({
      ...p.args,
      kernelLinear: 0,
      kernelWidth: 0.5,
      lambdaGrid: [0, 0.1],
      looSample: 1, // too small to search: the first grid value (0) is used
    });
    const rep = res.report.kernel!;
    expect(rep.lambda).toBe(0.1);
    expect(rep.notes.join('\n')).toMatch(/lambda 0: .*not numerically positive definite/);
    expect(rep.notes.join('\n')).toMatch(/fewer than 2 anchors/);
  });

  it('a grid point whose leave-one-out system does not factorise is skipped, named, and never chosen', async () => {
    const p = problem(6, 12, 3);
    const target = p.args.target as M;
    target.data.copyWithin(1 * 4, 0, 4); // anchors 0 and 1 (distinct source rows) share a target row
    const res = await transferEmbeddings({
      ...p.args,
      kernelLinear: 0,
      kernelWidth: [0.5, 1],
      lambdaGrid: [0, 0.1],
      lambda: 'auto',
      looSample: 1000,
    });
    const rep = res.report.kernel!;
    expect(rep.sample).toBe(12);
    expect(rep.grid!.filter((g) => g.lambda === 0).map((g) => g.score)).toEqual([-Infinity, -Infinity]);
    expect(rep.grid!.filter((g) => g.lambda === 0.1).every((g) => Number.isFinite(g.score))).toBe(true);
    expect(rep.lambda).toBe(0.1);
    const notes = rep.notes.join('\n');
    expect(notes).toMatch(
      /LOO: linear 0, width 0.5, lambda 0: the 12 x 12 kernel system is not numerically positive definite; grid point skipped/,
    );
    expect(notes).toMatch(/LOO: linear 0, width 1, lambda 0: .*grid point skipped/);
  });

  it('refuses an exact fit beyond MAX_EXACT_ANCHORS with a coded error naming the Nystrom option', async () => {
    const m = MAX_EXACT_ANCHORS + 1;
    const source = { data: new Float32Array(m * 2).map((_, i) => Math.sin(i)), rows: m, cols: 2 };
    const target = { data: new Float32Array((m + 1) * 2).map((_, i) => Math.cos(i)), rows: m + 1, cols: 2 };
    const sid = new Int32Array(m + 1).map((_, i) => (i < m ? i : -1));
    const err = await transferEmbeddings({
      source,
      target,
      alignment: { sourceIdOfTarget: sid },
      method: 'salt',
      landmarks: 'all',
      backend: 'cpu',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SaltError);
    expect((err as SaltError).code).toBe('E_ARGUMENT');
    expect((err as SaltError).message).toMatch(/16385 anchors.*landmarks: 4096/);
  });

  it('rejects kernel options for other methods and bad values, naming them', async () => {
    const p = problem(5, 10, 2);
    const bad = async (o: Record<string, unknown>) =>
      transferEmbeddings({ ...p.args, ...o } as TransferArgs).catch((e: SaltError) => `${e.code}: ${e.message}`);
    expect(await bad({ method: 'focus', kernelWidth: 0.2 })).toMatch(/^E_ARGUMENT: kernelWidth does not apply/);
    expect(await bad({ kernelWidth: 0 })).toMatch(/^E_ARGUMENT: kernelWidth must be a finite number > 0/);
    expect(await bad({ kernelLinear: [0.1, -1] })).toMatch(/^E_ARGUMENT: kernelLinear\[1\]/);
    expect(await bad({ landmarks: 0 })).toMatch(/^E_ARGUMENT: landmarks/);
    expect(await bad({ landmarks: 'some' })).toMatch(/^E_TYPE: landmarks/);
    expect(await bad({ looCriterion: 'rank' })).toMatch(/^E_ARGUMENT: looCriterion must be one of/);
  });
});
