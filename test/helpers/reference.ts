// Straightforward float64 references for the kernel tests. Deliberately simple and independent of
// the native algorithms: brute-force cosine, bisection sparsemax, Jacobi-SVD pseudo-inverse,
// Gaussian-elimination ridge.

/** mulberry32: a small seeded uniform generator on [0, 1), so failures reproduce. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic PRNG (mulberry32) with a Box-Muller normal sampler and integers. */
export function rng(seed: number): { uniform(): number; normal(): number; int(lo: number, hi: number): number } {
  const uniform = mulberry32(seed);
  return {
    uniform,
    normal: () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()),
    int: (lo, hi) => lo + Math.floor(uniform() * (hi - lo + 1)),
  };
}

export function randomMatrix(
  r: ReturnType<typeof rng>,
  rows: number,
  cols: number,
): { data: Float32Array; rows: number; cols: number } {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; ++i) data[i] = r.normal();
  return { data, rows, cols };
}

/** Cosine of every query row with every base row, float64 (0 for zero rows). */
export function cosineRow(q: Float32Array, qi: number, b: Float32Array, m: number, d: number): Float64Array {
  const out = new Float64Array(m);
  let qn = 0;
  for (let t = 0; t < d; ++t) qn += q[qi * d + t]! ** 2;
  for (let j = 0; j < m; ++j) {
    let dot = 0,
      bn = 0;
    for (let t = 0; t < d; ++t) {
      dot += q[qi * d + t]! * b[j * d + t]!;
      bn += b[j * d + t]! ** 2;
    }
    out[j] = qn > 0 && bn > 0 ? dot / Math.sqrt(qn * bn) : 0;
  }
  return out;
}

/** Sparsemax by bisection on tau: sum max(z - tau, 0) = 1. */
export function sparsemaxReference(z: ArrayLike<number>): Float64Array {
  let lo = Math.min(...Array.from(z)) - 1,
    hi = Math.max(...Array.from(z));
  for (let it = 0; it < 200; ++it) {
    const mid = (lo + hi) / 2;
    let s = 0;
    for (let j = 0; j < z.length; ++j) s += Math.max(0, z[j]! - mid);
    if (s > 1) lo = mid;
    else hi = mid;
  }
  return Float64Array.from(Array.from(z), (v) => Math.max(0, v - lo));
}

/** c = x pinv(A) (A: k x ht rows), minimum norm, singular values <= rcond * max dropped. One-sided Jacobi SVD. */
export function pinvCoefficients(A: number[][], x: number[], rcond: number): number[] {
  const k = A.length,
    ht = x.length;
  const U = A.map((row) => row.slice()); // column p of A^T = row p of A
  const V: number[][] = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 80; ++sweep) {
    let off = 0;
    for (let p = 0; p < k; ++p)
      for (let q = p + 1; q < k; ++q) {
        let a = 0,
          b = 0,
          g = 0;
        for (let j = 0; j < ht; ++j) {
          a += U[p]![j]! ** 2;
          b += U[q]![j]! ** 2;
          g += U[p]![j]! * U[q]![j]!;
        }
        if (g === 0 || Math.abs(g) < 1e-15 * Math.sqrt(a * b)) continue;
        off = Math.max(off, Math.abs(g) / Math.sqrt(a * b));
        const zeta = (b - a) / (2 * g);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t),
          s = c * t;
        for (let j = 0; j < ht; ++j) {
          const up = U[p]![j]!,
            uq = U[q]![j]!;
          U[p]![j] = c * up - s * uq;
          U[q]![j] = s * up + c * uq;
        }
        for (let j = 0; j < k; ++j) {
          const vp = V[j]![p]!,
            vq = V[j]![q]!;
          V[j]![p] = c * vp - s * vq;
          V[j]![q] = s * vp + c * vq;
        }
      }
    if (off < 1e-15) break;
  }
  const sig = U.map((col) => Math.sqrt(col.reduce((s, v) => s + v * v, 0)));
  const smax = Math.max(...sig);
  const c = new Array<number>(k).fill(0);
  for (let p = 0; p < k; ++p) {
    if (sig[p]! === 0 || sig[p]! <= rcond * smax) continue;
    let ux = 0;
    for (let j = 0; j < ht; ++j) ux += (U[p]![j]! / sig[p]!) * x[j]!;
    for (let r = 0; r < k; ++r) c[r]! += (V[r]![p]! * ux) / sig[p]!;
  }
  return c;
}

/** c = w + argmin ||d A - (x - w A)||^2 + lambda ||d||^2, by Gaussian elimination with pivoting. */
export function ridgeCoefficients(A: number[][], x: number[], lambda: number, w?: number[]): number[] {
  const k = A.length,
    ht = x.length;
  const prior = w ?? new Array<number>(k).fill(0);
  const xr = x.slice();
  for (let r = 0; r < k; ++r) for (let j = 0; j < ht; ++j) xr[j]! -= prior[r]! * A[r]![j]!;
  const G = A.map((ar, r) => [
    ...A.map((as, s) => ar.reduce((acc, v, j) => acc + v * as[j]!, 0) + (r === s ? lambda : 0)),
    ar.reduce((acc, v, j) => acc + v * xr[j]!, 0),
  ]);
  for (let c = 0; c < k; ++c) {
    let piv = c;
    for (let r = c + 1; r < k; ++r) if (Math.abs(G[r]![c]!) > Math.abs(G[piv]![c]!)) piv = r;
    [G[c], G[piv]] = [G[piv]!, G[c]!];
    for (let r = 0; r < k; ++r) {
      if (r === c) continue;
      const f = G[r]![c]! / G[c]![c]!;
      for (let j = c; j <= k; ++j) G[r]![j]! -= f * G[c]![j]!;
    }
  }
  return G.map((row, r) => prior[r]! + row[k]! / row[r]!);
}
