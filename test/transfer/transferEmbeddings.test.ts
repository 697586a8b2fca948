// transferEmbeddings on small synthetic cases. Expected values come from the float64 references of
// test/helpers/reference.ts (brute-force cosine, bisection sparsemax, Jacobi-SVD pinv, Gaussian-
// elimination ridge) and from plain loops here, never from the engine.
import { describe, expect, it } from 'vitest';

import { SaltError, SaltRangeError, SaltTypeError } from '../../lib/errors.js';
import { MATCH_CATEGORIES } from '../../lib/tokenizer/align.js';
import { resolveOptions } from '../../lib/transfer/options.js';
import {
  PROVENANCE,
  TRANSFER_METHODS,
  type TransferArgs,
  transferEmbeddings,
  type TransferMethod,
  transferResolved,
} from '../../lib/transfer/transferEmbeddings.js';
import {
  cosineRow,
  pinvCoefficients,
  randomMatrix,
  ridgeCoefficients,
  rng,
  sparsemaxReference,
} from '../helpers/reference.js';

type M = { data: Float32Array; rows: number; cols: number };
const row = (m: M, i: number): number[] => Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols));
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const code = (p: string) => PROVENANCE.indexOf(p as never);

/**
 * A tiny vocabulary pair: Vs source rows; target 0..nShared-1 shared (a permutation of source ids),
 * target nShared a special token matched by role, then nNew new tokens with aux vectors and nAbsent
 * new tokens without.
 */
function tinyCase(
  seed: number,
  o: {
    Vs?: number;
    hs?: number;
    ht?: number;
    ha?: number;
    nShared?: number;
    nNew?: number;
    nAbsent?: number;
    head?: number;
  } = {},
) {
  const r = rng(seed);
  const Vs = o.Vs ?? 20,
    hs = o.hs ?? 6,
    ht = o.ht ?? 8,
    ha = o.ha ?? 5,
    nShared = o.nShared ?? 10,
    nNew = o.nNew ?? 12,
    nAbsent = o.nAbsent ?? 2;
  const Vt = nShared + 1 + nNew + nAbsent;
  const source = randomMatrix(r, Vs, hs);
  const target = randomMatrix(r, Vt, ht);
  const aux = randomMatrix(r, Vt, ha);
  const sourceIdOfTarget = new Int32Array(Vt).fill(-1);
  const category = new Uint8Array(Vt).fill(MATCH_CATEGORIES.indexOf('new'));
  for (let t = 0; t < nShared; t++) {
    sourceIdOfTarget[t] = (t * 7 + 3) % Vs; // distinct for Vs = 20, nShared = 10
    category[t] = MATCH_CATEGORIES.indexOf('exact');
  }
  sourceIdOfTarget[nShared] = Vs - 1;
  category[nShared] = MATCH_CATEGORIES.indexOf('special-role');
  const auxPresent = new Uint8Array(Vt).fill(1);
  for (let t = Vt - nAbsent; t < Vt; t++) {
    auxPresent[t] = 0;
    aux.data.fill(Number.NaN, t * ha, (t + 1) * ha); // absent rows are never read
  }
  const sourceHead = o.head ? randomMatrix(r, Vs, o.head) : undefined;
  return {
    source,
    target,
    aux,
    auxPresent,
    sourceHead,
    alignment: { sourceIdOfTarget, category },
    Vs,
    Vt,
    hs,
    ht,
    ha,
    nShared,
    nNew,
    nAbsent,
  };
}
type Tiny = ReturnType<typeof tinyCase>;
const argsOf = (c: Tiny): TransferArgs => ({
  source: c.source,
  target: c.target,
  aux: c.aux,
  auxPresent: c.auxPresent,
  sourceHead: c.sourceHead,
  alignment: c.alignment,
  backend: 'cpu',
});

/** A segmentation (CSR) from per-target lists. */
function csr(lists: number[][]): { offsets: Int32Array; indices: Int32Array } {
  const offsets = new Int32Array(lists.length + 1);
  lists.forEach((l, t) => (offsets[t + 1] = offsets[t]! + l.length));
  return { offsets, indices: Int32Array.from(lists.flat()) };
}

/**
 * Pieces for method 'fvt' on a tiny case, shaped like the aux presence: shared tokens get a list (ignored:
 * they are copied), new tokens with an aux vector 1-3 pieces (one repeated), the "absent" ones none.
 */
function tinySegmentation(c: Tiny): number[][] {
  return Array.from({ length: c.Vt }, (_, t) => {
    if (t <= c.nShared) return [0];
    if (t >= c.Vt - c.nAbsent) return [];
    return [(t * 5) % c.Vs, (t * 3 + 1) % c.Vs, (t * 5) % c.Vs].slice(0, 1 + (t % 3));
  });
}

/** Float64 reference of the neighbour list of new token t: top-K anchors by aux cosine, sparsemax or top-k. */
function referenceNeighbours(
  c: Tiny,
  t: number,
  K: number,
  selection: 'sparsemax' | number,
  weighting: 'selection' | 'softmax' = 'selection',
  temperature = 0.1,
) {
  const anchors = Array.from({ length: c.nShared }, (_, i) => i); // anchors = shared non-special targets, in target order
  const anchorAux = new Float32Array(anchors.flatMap((a) => row(c.aux, a)));
  const cos = cosineRow(c.aux.data, t, anchorAux, anchors.length, c.ha);
  const order = anchors
    .map((_, i) => i)
    .sort((a, b) => cos[b]! - cos[a]! || a - b)
    .slice(0, Math.min(K, anchors.length));
  const scores = order.map((i) => cos[i]!);
  let w: number[];
  let sel: number[];
  if (selection === 'sparsemax') {
    const sm = Array.from(sparsemaxReference(scores));
    sel = order.filter((_, j) => sm[j]! > 0);
    w = sm.filter((v) => v > 0);
  } else {
    sel = order.slice(0, selection);
    const s = scores.slice(0, selection);
    if (weighting === 'softmax') {
      const e = s.map((v) => Math.exp((v - s[0]!) / temperature));
      const z = e.reduce((a, b) => a + b, 0);
      w = e.map((v) => v / z);
    } else {
      const z = s.reduce((a, b) => a + Math.max(0, b), 0);
      w = s.map((v) => Math.max(0, v) / z);
    }
  }
  return { anchors: sel.map((i) => anchors[i]!), w };
}

function combine(c: number[], rows: number[][]): number[] {
  const out = new Array<number>(rows[0]!.length).fill(0);
  c.forEach((cj, j) => rows[j]!.forEach((v, d) => (out[d]! += cj * v)));
  return out;
}

function expectClose(actual: Float32Array | number[], expected: number[], tol: number, what: string): void {
  let maxErr = 0,
    scale = 0;
  expected.forEach((e, i) => {
    maxErr = Math.max(maxErr, Math.abs(actual[i]! - e));
    scale = Math.max(scale, Math.abs(e));
  });
  if (!(maxErr <= tol * Math.max(1, scale)) || actual.length !== expected.length)
    throw new Error(
      `${what}: max error ${maxErr} > ${tol} (scale ${scale})\nactual   ${Array.from(actual).join(' ')}\nexpected ${expected.join(' ')}`,
    );
}

describe('transferEmbeddings: fvt', () => {
  it("each segmented new row (and head row) is the float64 mean of its pieces' source rows; empty lists get fallback rows", async () => {
    const c = tinyCase(7, { head: 4, nAbsent: 0 });
    const lists = tinySegmentation(c);
    lists[c.nShared + 2] = []; // a new token with an aux vector but no pieces: fallback
    const res = await transferEmbeddings({ ...argsOf(c), method: 'fvt', segmentation: csr(lists), chunkSize: 3 });
    const mean = (m: M, ids: number[]) => {
      const out = new Array<number>(m.cols).fill(0);
      for (const id of ids) for (let j = 0; j < m.cols; j++) out[j]! += m.data[id * m.cols + j]! / ids.length;
      return out;
    };
    let pieces = 0,
      max = 0,
      solved = 0;
    for (let t = c.nShared + 1; t < c.Vt; t++) {
      if (lists[t]!.length === 0) {
        expect(res.provenance[t]).toBe(code('fallback'));
        continue;
      }
      solved++;
      pieces += lists[t]!.length;
      max = Math.max(max, lists[t]!.length);
      expect(res.provenance[t]).toBe(code('solved'));
      expectClose(res.embeddings.subarray(t * c.hs, (t + 1) * c.hs), mean(c.source, lists[t]!), 1e-6, `token ${t}`);
      expectClose(res.head!.subarray(t * 4, (t + 1) * 4), mean(c.sourceHead!, lists[t]!), 1e-6, `head of token ${t}`);
    }
    expect(max).toBe(3); // the case exercises a repeated piece
    expect(res.report.counts).toEqual({ copied: c.nShared, special: 1, solved, fallback: 1 });
    expect(res.report.pieces).toEqual({ mean: pieces / solved, max, unsegmented: 1 });
    // the fallback row is the engine's seeded N(mean, std) row: the same as the random method's row for that token
    const rnd = await transferEmbeddings({ ...argsOf(c), method: 'random' });
    const f = c.nShared + 2;
    expect(
      bytes(res.embeddings.subarray(f * c.hs, (f + 1) * c.hs)).equals(
        bytes(rnd.embeddings.subarray(f * c.hs, (f + 1) * c.hs)),
      ),
    ).toBe(true);
  });

  it('needs no anchors and ignores the aux space', async () => {
    const c = tinyCase(8, { nAbsent: 0 });
    const noShared = { sourceIdOfTarget: new Int32Array(c.Vt).fill(-1) };
    const lists = Array.from({ length: c.Vt }, (_, t) => [t % c.Vs, (t + 1) % c.Vs]);
    const res = await transferEmbeddings({
      source: c.source,
      target: c.target,
      alignment: noShared,
      method: 'fvt',
      segmentation: csr(lists),
      backend: 'cpu',
    });
    expect(res.report.anchors).toBe(0);
    expect(res.report.counts.solved).toBe(c.Vt);
    const t = 5;
    const expected = Array.from(
      { length: c.hs },
      (_, j) => (c.source.data[(t % c.Vs) * c.hs + j]! + c.source.data[((t + 1) % c.Vs) * c.hs + j]!) / 2,
    );
    expectClose(res.embeddings.subarray(t * c.hs, (t + 1) * c.hs), expected, 1e-6, 'token 5');
  });

  it('rejects a missing, malformed or out-of-range segmentation, and segmentation for other methods', async () => {
    const c = tinyCase(9);
    const a = argsOf(c);
    await expect(transferEmbeddings({ ...a, method: 'fvt' })).rejects.toMatchObject({
      name: 'SaltError',
      code: 'E_ARGUMENT',
      message: expect.stringContaining('method "fvt" needs segmentation'),
    });
    const seg = csr(tinySegmentation(c));
    await expect(transferEmbeddings({ ...a, method: 'salt', segmentation: seg })).rejects.toMatchObject({
      name: 'SaltRangeError',
      code: 'E_ARGUMENT',
      message: expect.stringContaining('segmentation does not apply to method "salt" (it applies to "fvt")'),
    });
    await expect(
      transferEmbeddings({
        ...a,
        method: 'fvt',
        segmentation: { offsets: seg.offsets.subarray(1), indices: seg.indices },
      }),
    ).rejects.toMatchObject({ code: 'E_SHAPE' });
    const bad = { offsets: seg.offsets, indices: Int32Array.from(seg.indices) };
    bad.indices[2] = c.Vs;
    await expect(transferEmbeddings({ ...a, method: 'fvt', segmentation: bad })).rejects.toThrow(
      new SaltRangeError(`segmentation.indices[2] must be a source row in [0, ${c.Vs}), received ${c.Vs}`),
    );
  });
});

describe('transferEmbeddings: copying, provenance, report', () => {
  it.each(TRANSFER_METHODS)('%s copies shared rows bit-exactly and labels every row', async (method) => {
    const c = tinyCase(1, { head: 3 });
    const res = await transferEmbeddings({
      ...argsOf(c),
      method,
      ...(method === 'fvt' ? { segmentation: csr(tinySegmentation(c)) } : {}),
    });
    expect(res.embeddings.length).toBe(c.Vt * c.hs);
    expect(res.head!.length).toBe(c.Vt * 3);
    for (let t = 0; t <= c.nShared; t++) {
      const s = c.alignment.sourceIdOfTarget[t]!;
      expect(
        bytes(res.embeddings.subarray(t * c.hs, (t + 1) * c.hs)).equals(
          bytes(c.source.data.subarray(s * c.hs, (s + 1) * c.hs)),
        ),
      ).toBe(true);
      expect(
        bytes(res.head!.subarray(t * 3, (t + 1) * 3)).equals(bytes(c.sourceHead!.data.subarray(s * 3, (s + 1) * 3))),
      ).toBe(true);
    }
    const expected = [
      ...new Array(c.nShared).fill(code('copied')),
      code('special'),
      ...new Array(c.nNew).fill(code('solved')),
    ];
    // mean / random do not use the aux space, so tokens without an aux vector are 'solved' there too;
    // for fvt those tokens have no pieces (tinySegmentation), hence 'fallback'
    const absent = method === 'mean' || method === 'random' ? 'solved' : 'fallback';
    expected.push(...new Array(c.nAbsent).fill(code(absent)));
    expect(Array.from(res.provenance)).toEqual(expected);
    const nAbsentSolved = absent === 'solved' ? c.nAbsent : 0;
    expect(res.report.counts).toEqual({
      copied: c.nShared,
      special: 1,
      solved: c.nNew + nAbsentSolved,
      fallback: c.nAbsent - nAbsentSolved,
    });
    expect(res.report.anchors).toBe(c.nShared);
    expect(res.report.method).toBe(method);
    for (const v of res.embeddings) expect(Number.isFinite(v)).toBe(true);
    expect(res.report.rowNorms.new.count).toBe(c.nNew + c.nAbsent);
    expect(res.report.timings.total).toBeGreaterThan(0);
  });

  it('salt-paper equals the float64 reference (top-K cosine, sparsemax, pinv) and reports support', async () => {
    const c = tinyCase(2, { nAbsent: 0 });
    const K = 6;
    const res = await transferEmbeddings({ ...argsOf(c), method: 'salt-paper', K });
    const hist = new Array(K + 1).fill(0);
    for (let t = c.nShared + 1; t < c.Vt; t++) {
      const nb = referenceNeighbours(c, t, K, 'sparsemax');
      hist[nb.anchors.length]++;
      const A = nb.anchors.map((a) => row(c.target, a));
      const coef = pinvCoefficients(A, row(c.target, t), Math.max(nb.anchors.length, c.ht) * 2 ** -23);
      const expected = combine(
        coef,
        nb.anchors.map((a) => row(c.source, c.alignment.sourceIdOfTarget[a]!)),
      );
      expectClose(res.embeddings.subarray(t * c.hs, (t + 1) * c.hs), expected, 1e-4, `token ${t}`);
    }
    expect(res.report.support!.histogram).toEqual(hist);
    expect(res.report.support!.hitK).toBe(hist[K]);
    expect(res.report.lambda).toEqual({ value: 0, auto: false });
    expect(res.report.K).toBe(K);
    expect(res.report.residual!.count).toBe(c.nNew);
  });

  it('salt (fixed lambda) shrinks towards the sparsemax weights; salt-ridge towards zero; focus/clp/wechsel weights', async () => {
    const c = tinyCase(3, { nAbsent: 0 });
    const K = 5;
    const salt = await transferEmbeddings({ ...argsOf(c), method: 'salt-local', K, lambda: 2.5 });
    const ridge = await transferEmbeddings({ ...argsOf(c), method: 'salt-ridge', K, lambda: 2.5 });
    const focus = await transferEmbeddings({ ...argsOf(c), method: 'focus', K });
    const clp = await transferEmbeddings({ ...argsOf(c), method: 'clp', K: 4 });
    const wechsel = await transferEmbeddings({
      ...argsOf(c),
      method: 'wechsel',
      K,
      selection: { topk: 3 },
      temperature: 0.2,
    });
    const src = (a: number) => row(c.source, c.alignment.sourceIdOfTarget[a]!);
    for (let t = c.nShared + 1; t < c.Vt; t++) {
      const nb = referenceNeighbours(c, t, K, 'sparsemax');
      const A = nb.anchors.map((a) => row(c.target, a));
      const x = row(c.target, t);
      const B = nb.anchors.map(src);
      const out = (r: { embeddings: Float32Array }) => r.embeddings.subarray(t * c.hs, (t + 1) * c.hs);
      expectClose(out(salt), combine(ridgeCoefficients(A, x, 2.5, nb.w), B), 1e-4, `salt ${t}`);
      expectClose(out(ridge), combine(ridgeCoefficients(A, x, 2.5), B), 1e-4, `salt-ridge ${t}`);
      expectClose(out(focus), combine(nb.w, B), 1e-5, `focus ${t}`);
      const nc = referenceNeighbours(c, t, 4, 4);
      expectClose(out(clp), combine(nc.w, nc.anchors.map(src)), 1e-5, `clp ${t}`);
      const nw = referenceNeighbours(c, t, K, 3, 'softmax', 0.2);
      expectClose(out(wechsel), combine(nw.w, nw.anchors.map(src)), 1e-5, `wechsel ${t}`);
    }
    expect(wechsel.report.selection).toEqual({ topk: 3 });
    expect(wechsel.report.temperature).toBe(0.2);
    expect(clp.report.selection).toEqual({ topk: 4 });
  });

  it('an untied head gets the same neighbours and coefficients (float64 reference)', async () => {
    const c = tinyCase(4, { nAbsent: 0, head: 7 });
    const K = 6;
    const res = await transferEmbeddings({ ...argsOf(c), method: 'salt-local', K, lambda: 1.5 });
    const paper = await transferEmbeddings({ ...argsOf(c), method: 'salt-paper', K });
    const H = c.sourceHead!;
    for (let t = c.nShared + 1; t < c.Vt; t++) {
      const nb = referenceNeighbours(c, t, K, 'sparsemax');
      const A = nb.anchors.map((a) => row(c.target, a));
      const headRows = nb.anchors.map((a) => row(H, c.alignment.sourceIdOfTarget[a]!));
      const coef = ridgeCoefficients(A, row(c.target, t), 1.5, nb.w);
      expectClose(res.head!.subarray(t * 7, (t + 1) * 7), combine(coef, headRows), 1e-4, `head ${t}`);
      const coef0 = pinvCoefficients(A, row(c.target, t), Math.max(nb.anchors.length, c.ht) * 2 ** -23);
      expectClose(paper.head!.subarray(t * 7, (t + 1) * 7), combine(coef0, headRows), 1e-4, `paper head ${t}`);
    }
  });

  it('shared outputs (the folder pipeline): the same bytes, in SharedArrayBuffers', async () => {
    const c = tinyCase(4, { nAbsent: 2, head: 7 });
    const args = { ...argsOf(c), method: 'salt-local' as const, K: 6, lambda: 1.5 };
    const plain = await transferEmbeddings(args);
    const shared = await transferResolved(args, resolveOptions(args), undefined, true);
    expect(plain.embeddings.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    for (const [a, b] of [
      [plain.embeddings, shared.embeddings],
      [plain.head!, shared.head!],
    ]) {
      expect(b.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(bytes(b).equals(bytes(a))).toBe(true);
    }
  });

  it('global-linear equals a float64 ridge map [x, 1] W fitted on the anchors', async () => {
    const c = tinyCase(5, { nShared: 14, Vs: 30, nAbsent: 0, ht: 4, head: 3 });
    for (let t = 0; t < 14; t++) c.alignment.sourceIdOfTarget[t] = t * 2;
    const lambda = 0.7;
    const res = await transferEmbeddings({ ...argsOf(c), method: 'global-linear', lambda });
    const d = c.ht + 1;
    // Normal equations by plain loops, solved by Gauss-Jordan elimination, one output column at a time.
    const X = Array.from({ length: 14 }, (_, i) => [...row(c.target, i), 1]);
    const Y = Array.from({ length: 14 }, (_, i) => row(c.source, c.alignment.sourceIdOfTarget[i]!));
    const G = Array.from({ length: d }, (_, r) =>
      Array.from({ length: d }, (_, s) => X.reduce((a, x) => a + x[r]! * x[s]!, 0) + (r === s ? lambda : 0)),
    );
    const H = Array.from({ length: 14 }, (_, i) => row(c.sourceHead!, c.alignment.sourceIdOfTarget[i]!));
    const fit = (Y: number[][], h: number) =>
      Array.from({ length: h }, (_, col) => {
        const aug = G.map((g, r) => [...g, X.reduce((a, x, i) => a + x[r]! * Y[i]![col]!, 0)]);
        for (let p = 0; p < d; p++)
          for (let r = 0; r < d; r++)
            if (r !== p) {
              const f = aug[r]![p]! / aug[p]![p]!;
              for (let j = p; j <= d; j++) aug[r]![j]! -= f * aug[p]![j]!;
            }
        return aug.map((a, r) => a[d]! / a[r]!);
      });
    const W = fit(Y, c.hs),
      WH = fit(H, 3);
    for (let t = 15; t < c.Vt; t++) {
      const x = [...row(c.target, t), 1];
      expectClose(
        res.embeddings.subarray(t * c.hs, (t + 1) * c.hs),
        W.map((w) => w.reduce((a, v, j) => a + v * x[j]!, 0)),
        1e-4,
        `token ${t}`,
      );
      expectClose(
        res.head!.subarray(t * 3, (t + 1) * 3),
        WH.map((w) => w.reduce((a, v, j) => a + v * x[j]!, 0)),
        1e-4,
        `head ${t}`,
      );
    }
    expect(res.report.lambda).toEqual({ value: lambda, auto: false });
    expect(res.report.jitter).toBe(0);
  });

  it('mean fills the per-dimension mean of the source rows', async () => {
    const c = tinyCase(6);
    const res = await transferEmbeddings({ ...argsOf(c), method: 'mean' });
    const mean = Array.from(
      { length: c.hs },
      (_, j) => Array.from({ length: c.Vs }, (_, i) => c.source.data[i * c.hs + j]!).reduce((a, b) => a + b, 0) / c.Vs,
    );
    for (let t = c.nShared + 1; t < c.Vt; t++)
      expectClose(res.embeddings.subarray(t * c.hs, (t + 1) * c.hs), mean, 1e-6, `token ${t}`);
  });
});

describe('transferEmbeddings: fallback rows and determinism', () => {
  it('tokens without an aux vector get seeded N(mean, std) rows with the source statistics', async () => {
    const r = rng(7);
    const Vs = 400,
      hs = 5,
      nAbsent = 6000,
      Vt = 10 + nAbsent;
    const source = randomMatrix(r, Vs, hs);
    const mu = [-3, 0, 2, 10, 0.5],
      sd = [1, 0.1, 4, 2, 0.01];
    for (let i = 0; i < Vs; i++)
      for (let j = 0; j < hs; j++) source.data[i * hs + j] = mu[j]! + sd[j]! * source.data[i * hs + j]!;
    const target = randomMatrix(r, Vt, 3);
    const sourceIdOfTarget = new Int32Array(Vt).fill(-1);
    for (let t = 0; t < 10; t++) sourceIdOfTarget[t] = t;
    const auxPresent = new Uint8Array(Vt);
    auxPresent.fill(1, 0, 10);
    const args: TransferArgs = {
      source,
      target,
      auxPresent,
      alignment: { sourceIdOfTarget },
      backend: 'cpu',
      seed: 42,
    };
    const res = await transferEmbeddings(args);
    expect(res.report.counts.fallback).toBe(nAbsent);
    // expected statistics of the source (population std), computed here
    for (let j = 0; j < hs; j++) {
      let m = 0;
      for (let i = 0; i < Vs; i++) m += source.data[i * hs + j]!;
      m /= Vs;
      let v = 0;
      for (let i = 0; i < Vs; i++) v += (source.data[i * hs + j]! - m) ** 2;
      const s = Math.sqrt(v / Vs);
      let gm = 0,
        gv = 0;
      for (let t = 10; t < Vt; t++) gm += res.embeddings[t * hs + j]!;
      gm /= nAbsent;
      for (let t = 10; t < Vt; t++) gv += (res.embeddings[t * hs + j]! - gm) ** 2;
      const gs = Math.sqrt(gv / nAbsent);
      expect(Math.abs(gm - m)).toBeLessThan((5 * s) / Math.sqrt(nAbsent));
      expect(Math.abs(gs / s - 1)).toBeLessThan(0.05);
    }
    // deterministic: the same seed gives the same bytes (also with another chunk size); another seed differs
    const again = await transferEmbeddings({ ...args, chunkSize: 7 });
    expect(bytes(again.embeddings).equals(bytes(res.embeddings))).toBe(true);
    const other = await transferEmbeddings({ ...args, seed: 43 });
    expect(bytes(other.embeddings.subarray(10 * hs)).equals(bytes(res.embeddings.subarray(10 * hs)))).toBe(false);
    // a token's fallback row depends on the seed and its id only, not on the other tokens
    const fewer = await transferEmbeddings({
      ...args,
      target: { data: target.data.subarray(0, 20 * 3), rows: 20, cols: 3 },
      auxPresent: auxPresent.subarray(0, 20),
      alignment: { sourceIdOfTarget: sourceIdOfTarget.subarray(0, 20) },
    });
    expect(bytes(fewer.embeddings).equals(bytes(res.embeddings.subarray(0, 20 * hs)))).toBe(true);
  });

  it.each(['salt-local', 'random', 'wechsel'] as TransferMethod[])(
    '%s: same inputs and seed give byte-identical output, whatever the chunk size',
    async (method) => {
      const c = tinyCase(8, { nNew: 40, head: 4 });
      const a = await transferEmbeddings({ ...argsOf(c), method, seed: 5 });
      const b = await transferEmbeddings({ ...argsOf(c), method, seed: 5, chunkSize: 3 });
      expect(bytes(a.embeddings).equals(bytes(b.embeddings))).toBe(true);
      expect(bytes(a.head!).equals(bytes(b.head!))).toBe(true);
      expect(Array.from(a.provenance)).toEqual(Array.from(b.provenance));
    },
  );

  it.each(['salt', 'salt-residual'] as TransferMethod[])(
    '%s: byte-identical on a rerun with the same chunk size; across chunk sizes equal to float rounding',
    async (method) => {
      // Their predictions go through OpenBLAS matrix products, whose float32 rounding depends on the
      // number of rows in the call and a row's place in it (measured on this machine's kernels).
      const c = tinyCase(8, { hs: 24, nNew: 40, head: 12 });
      const a = await transferEmbeddings({ ...argsOf(c), method, seed: 5 });
      const again = await transferEmbeddings({ ...argsOf(c), method, seed: 5 });
      expect(bytes(a.embeddings).equals(bytes(again.embeddings))).toBe(true);
      expect(bytes(a.head!).equals(bytes(again.head!))).toBe(true);
      const b = await transferEmbeddings({ ...argsOf(c), method, seed: 5, chunkSize: 3 });
      expect(Array.from(a.provenance)).toEqual(Array.from(b.provenance));
      expectClose(b.embeddings, Array.from(a.embeddings), 1e-5, 'embeddings, chunk size 3');
      expectClose(b.head!, Array.from(a.head!), 1e-5, 'head, chunk size 3');
    },
  );

  it('head fallback rows are drawn independently of the input rows', async () => {
    // Same width and statistics for input and head: shared draws would make the rows identical.
    const c = tinyCase(16, { hs: 6, head: 6, nAbsent: 3 });
    c.sourceHead!.data.set(c.source.data);
    const res = await transferEmbeddings({ ...argsOf(c), method: 'focus' });
    for (let t = c.Vt - 3; t < c.Vt; t++) {
      expect(
        bytes(res.head!.subarray(t * 6, (t + 1) * 6)).equals(bytes(res.embeddings.subarray(t * 6, (t + 1) * 6))),
      ).toBe(false);
    }
    // solved rows of a head equal to the input embeddings do coincide (same neighbours and weights)
    for (let t = c.nShared + 1; t < c.Vt - 3; t++) {
      expect(
        bytes(res.head!.subarray(t * 6, (t + 1) * 6)).equals(bytes(res.embeddings.subarray(t * 6, (t + 1) * 6))),
      ).toBe(true);
    }
  });

  it('salt-residual: a head equal to the input embeddings gets the same rows (same coefficients, same map)', async () => {
    const c = tinyCase(18, { hs: 6, head: 6, nNew: 12 });
    c.sourceHead!.data.set(c.source.data);
    const res = await transferEmbeddings({ ...argsOf(c), method: 'salt-residual' });
    expect(res.report.globalMap!.lambda.auto).toBe(true);
    for (let t = c.nShared; t < c.Vt; t++) {
      if (res.provenance[t] !== code('solved')) continue;
      expectClose(
        res.head!.subarray(t * 6, (t + 1) * 6),
        Array.from(res.embeddings.subarray(t * 6, (t + 1) * 6)),
        1e-4,
        `row ${t}`,
      );
    }
    expect(res.report.counts.solved).toBeGreaterThan(0);
  });

  it('a shared token without an aux vector is copied but is not an anchor', async () => {
    const c = tinyCase(17, { nAbsent: 0 });
    c.auxPresent[2] = 0;
    c.aux.data.fill(Number.NaN, 2 * c.ha, 3 * c.ha);
    const res = await transferEmbeddings({ ...argsOf(c), method: 'focus', K: 3 });
    expect(res.report.anchors).toBe(c.nShared - 1);
    expect(res.provenance[2]).toBe(code('copied'));
    const s = c.alignment.sourceIdOfTarget[2]!;
    expect(
      bytes(res.embeddings.subarray(2 * c.hs, 3 * c.hs)).equals(
        bytes(c.source.data.subarray(s * c.hs, (s + 1) * c.hs)),
      ),
    ).toBe(true);
    // no solved row uses anchor 2: recompute focus rows with the reference over the other anchors
    const keep = tinyCase(17, { nAbsent: 0 });
    for (let t = c.nShared + 1; t < c.Vt; t++) {
      const anchors = Array.from({ length: c.nShared }, (_, i) => i).filter((i) => i !== 2);
      const cos = cosineRow(
        keep.aux.data,
        t,
        new Float32Array(anchors.flatMap((a) => row(keep.aux, a))),
        anchors.length,
        c.ha,
      );
      const order = anchors
        .map((_, i) => i)
        .sort((a, b) => cos[b]! - cos[a]! || a - b)
        .slice(0, 3);
      const w = Array.from(sparsemaxReference(order.map((i) => cos[i]!)));
      const expected = combine(
        w,
        order.map((i) => row(c.source, c.alignment.sourceIdOfTarget[anchors[i]!]!)),
      );
      expectClose(res.embeddings.subarray(t * c.hs, (t + 1) * c.hs), expected, 1e-5, `token ${t}`);
    }
  });

  it('K larger than the anchor count is clamped to it', async () => {
    const c = tinyCase(9, { nShared: 5, nAbsent: 0 });
    const big = await transferEmbeddings({ ...argsOf(c), method: 'salt-paper', K: 1000 });
    const exact = await transferEmbeddings({ ...argsOf(c), method: 'salt-paper', K: 5 });
    expect(big.report.K).toBe(5);
    expect(bytes(big.embeddings).equals(bytes(exact.embeddings))).toBe(true);
    const one = await transferEmbeddings({
      ...argsOf(tinyCase(9, { nShared: 1, nAbsent: 0 })),
      method: 'salt-local',
    });
    expect(one.report.K).toBe(1);
    expect(one.report.support!.histogram).toEqual([0, 12]);
  });
});

describe('transferEmbeddings: lambda by leave-one-out', () => {
  it('chooses the best grid value on anchors, each anchor left out of its own candidates', async () => {
    // Unrelated random spaces, neighbourhoods smaller than ht: with itself among its candidates an
    // anchor would be reproduced exactly at lambda 0 (score 1); left out, nothing comes near 1.
    const r = rng(10);
    const Vs = 300,
      ht = 20,
      hs = 4,
      Vt = 320;
    const target = randomMatrix(r, Vt, ht);
    const source = randomMatrix(r, Vs, hs);
    const sourceIdOfTarget = new Int32Array(Vt).fill(-1);
    for (let t = 0; t < 300; t++) sourceIdOfTarget[t] = t;
    const args: TransferArgs = {
      source,
      target,
      alignment: { sourceIdOfTarget },
      method: 'salt-local',
      lambdaGrid: [0, 1, 1000],
      looSample: 100,
      K: 8,
      backend: 'cpu',
    };
    const res = await transferEmbeddings(args);
    const lam = res.report.lambda!;
    expect(lam.auto).toBe(true);
    expect(lam.grid).toEqual([0, 1, 1000]);
    expect(lam.sample).toBe(100);
    expect(lam.scores).toHaveLength(3);
    for (const s of lam.scores!) expect(s).toBeLessThan(0.5);
    const best = lam.scores!.indexOf(Math.max(...lam.scores!));
    expect(lam.value).toBe(lam.grid![best]);
    // the transfer used the chosen value: same bytes as a run with that lambda fixed
    const fixed = await transferEmbeddings({ ...args, lambda: lam.value, lambdaGrid: undefined, looSample: undefined });
    expect(bytes(fixed.embeddings).equals(bytes(res.embeddings))).toBe(true);
  });

  it('an anchor never sees another anchor with the same source row', async () => {
    // Every source row is shared by two target tokens with identical PLM rows: if the twin were a
    // candidate, lambda 0 would reproduce the row exactly (score 1).
    const r = rng(11);
    const Vs = 100,
      ht = 20,
      hs = 3;
    const base = randomMatrix(r, Vs, ht);
    const Vt = 2 * Vs + 5;
    const target = { data: new Float32Array(Vt * ht), rows: Vt, cols: ht };
    target.data.set(base.data, 0);
    target.data.set(base.data, Vs * ht);
    target.data.set(randomMatrix(r, 5, ht).data, 2 * Vs * ht);
    const sourceIdOfTarget = new Int32Array(Vt).fill(-1);
    for (let t = 0; t < 2 * Vs; t++) sourceIdOfTarget[t] = t % Vs;
    const res = await transferEmbeddings({
      source: randomMatrix(r, Vs, hs),
      target,
      alignment: { sourceIdOfTarget },
      method: 'salt-ridge',
      lambdaGrid: [0],
      looSample: 50,
      K: 8,
      backend: 'cpu',
    });
    expect(res.report.lambda!.scores![0]!).toBeLessThan(0.5);
  });
});

describe('transferEmbeddings: errors', () => {
  it('no shared tokens: SaltError E_ARGUMENT', async () => {
    const c = tinyCase(12);
    const none = { sourceIdOfTarget: new Int32Array(c.Vt).fill(-1) };
    await expect(transferEmbeddings({ ...argsOf(c), alignment: none })).rejects.toThrow(
      new SaltError(
        'E_ARGUMENT',
        `method "salt" needs shared tokens with an aux vector as anchors, but alignment.sourceIdOfTarget shares none (0 of ${c.Vt} target tokens usable)`,
      ),
    );
    await expect(transferEmbeddings({ ...argsOf(c), alignment: none })).rejects.toMatchObject({
      code: 'E_ARGUMENT',
      name: 'SaltError',
    });
    // mean and random need no anchors
    expect((await transferEmbeddings({ ...argsOf(c), alignment: none, method: 'random' })).report.counts.solved).toBe(
      c.Vt,
    );
  });

  it('NaN or Infinity in an input: E_NONFINITE naming the argument, row and column', async () => {
    const c = tinyCase(13);
    c.source.data[3 * c.hs + 2] = Number.NaN;
    await expect(transferEmbeddings(argsOf(c))).rejects.toThrow(
      new SaltError('E_NONFINITE', 'source contains NaN at row 3, column 2'),
    );
    const d = tinyCase(13);
    d.target.data[5 * d.ht + 1] = -Infinity;
    await expect(transferEmbeddings(argsOf(d))).rejects.toMatchObject({
      code: 'E_NONFINITE',
      message: 'target contains -Infinity at row 5, column 1',
    });
    // The source is checked through its row norms first: an infinite value, and the largest finite
    // values (whose squares overflow float32 but not the float64 sums), are told apart.
    const f = tinyCase(13);
    f.source.data[7 * f.hs + f.hs - 1] = -Infinity;
    await expect(transferEmbeddings(argsOf(f))).rejects.toMatchObject({
      code: 'E_NONFINITE',
      message: `source contains -Infinity at row 7, column ${f.hs - 1}`,
    });
    const g = tinyCase(13);
    g.source.data.fill(3.4028234663852886e38, 2 * g.hs, 3 * g.hs);
    g.source.data[4 * g.hs] = -3.4028234663852886e38;
    await expect(transferEmbeddings(argsOf(g))).resolves.toBeDefined();
    const e = tinyCase(13);
    e.aux.data[0] = Infinity; // a present aux row
    await expect(transferEmbeddings(argsOf(e))).rejects.toMatchObject({
      code: 'E_NONFINITE',
      message: 'aux contains Infinity at row 0, column 0',
    });
  });

  it('AbortSignal: rejects with E_ABORTED before starting and between chunks', async () => {
    const c = tinyCase(14, { nNew: 30 });
    const ac = new AbortController();
    ac.abort();
    await expect(transferEmbeddings({ ...argsOf(c), signal: ac.signal })).rejects.toMatchObject({
      code: 'E_ABORTED',
      name: 'SaltError',
    });
    const ac2 = new AbortController();
    const seen: string[] = [];
    const p = transferEmbeddings({
      ...argsOf(c),
      method: 'salt-local',
      chunkSize: 4,
      signal: ac2.signal,
      onProgress: (stage, done, total) => {
        seen.push(`${stage} ${done}/${total}`);
        if (stage === 'combine' && done === 8) ac2.abort();
      },
    });
    await expect(p).rejects.toThrow(new SaltError('E_ABORTED', 'the transfer was aborted through its AbortSignal'));
    expect(seen.filter((s) => s.startsWith('combine'))).toEqual(['combine 4/30', 'combine 8/30']);
    expect(seen.filter((s) => s.startsWith('lambda'))).toEqual([
      'lambda 1/7',
      'lambda 2/7',
      'lambda 3/7',
      'lambda 4/7',
      'lambda 5/7',
      'lambda 6/7',
      'lambda 7/7',
    ]);
  });

  it('bad arguments: typed errors whose messages name the argument, expected and received', async () => {
    const c = tinyCase(15);
    const a = argsOf(c);
    await expect(transferEmbeddings({ ...a, method: 'salt-paper', lambda: 1 })).rejects.toThrow(
      new SaltRangeError('method "salt-paper" is the paper\'s least squares; lambda must be 0, received 1'),
    );
    await expect(transferEmbeddings({ ...a, method: 'focus', lambda: 1 })).rejects.toThrow(
      new SaltRangeError(
        'lambda does not apply to method "focus" (it applies to "salt", "salt-local", "salt-residual", "salt-paper", "salt-ridge", "global-linear"), received 1',
      ),
    );
    await expect(transferEmbeddings({ ...a, method: 'mean', K: 8 })).rejects.toMatchObject({
      code: 'E_ARGUMENT',
      name: 'SaltRangeError',
    });
    await expect(transferEmbeddings({ ...a, method: 'nope' as TransferMethod })).rejects.toThrow(
      new SaltRangeError(
        `method must be one of ${TRANSFER_METHODS.map((m) => JSON.stringify(m)).join(', ')}, received "nope"`,
      ),
    );
    await expect(transferEmbeddings({ ...a, method: 'salt-local', K: 4, selection: { topk: 5 } })).rejects.toThrow(
      new SaltRangeError('selection.topk must be an integer in [1, 4] (K), received 5'),
    );
    await expect(transferEmbeddings({ ...a, lambda: -1 })).rejects.toThrow(
      new SaltRangeError('lambda must be a finite number >= 0, received -1'),
    );
    await expect(transferEmbeddings({ ...a, alignment: { sourceIdOfTarget: new Int32Array(3) } })).rejects.toThrow(
      new SaltRangeError(`alignment.sourceIdOfTarget must have target.rows = ${c.Vt} elements, received 3`, 'E_SHAPE'),
    );
    const bad = Int32Array.from(c.alignment.sourceIdOfTarget);
    bad[2] = c.Vs;
    await expect(transferEmbeddings({ ...a, alignment: { sourceIdOfTarget: bad } })).rejects.toThrow(
      new SaltRangeError(`alignment.sourceIdOfTarget[2] must be -1 or a source row in [0, ${c.Vs}), received ${c.Vs}`),
    );
    await expect(
      transferEmbeddings({ ...a, source: { data: new Float64Array(4) as unknown as Float32Array, rows: 2, cols: 2 } }),
    ).rejects.toThrow(new SaltTypeError('source.data must be a Float32Array, received Float64Array of length 4'));
    await expect(transferEmbeddings({ ...a, aux: randomMatrix(rng(1), 3, c.ha) })).rejects.toMatchObject({
      code: 'E_SHAPE',
      message: `aux.rows must equal target.rows = ${c.Vt}, received 3`,
    });
  });
});
