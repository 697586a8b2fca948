/**
 * Seeded pseudo-random numbers for the transfer engine. Everything is a pure function of the seed
 * (and, for rows, of the token id), so results never depend on chunking, threads or call order.
 */

/** 32-bit mix (the finaliser of MurmurHash3): spreads nearby seeds over the whole range. */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A uniform generator on [0, 1) (mulberry32) seeded from `seed` and a stream number. */
export function uniformStream(seed: number, stream: number): () => number {
  let s = mix32((seed >>> 0) ^ mix32(stream + 0x9e3779b9));
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Purposes of the seeded streams, so that e.g. the held-out split and the LOO sample are independent. */
export const STREAM = { rows: 0x100, looSample: 0x200, holdout: 0x300, headRows: 0x400, landmarks: 0x500 } as const;

/**
 * Fills `out[offset .. offset + mean.length)` with one N(mean, std) row that depends only on `seed`,
 * `token` and `stream` (Box-Muller on a per-token stream; head rows use another stream than input rows).
 */
export function normalRow(
  out: Float32Array,
  offset: number,
  mean: Float64Array,
  std: Float64Array,
  seed: number,
  token: number,
  stream: number = STREAM.rows,
): void {
  const u = uniformStream(seed, stream ^ mix32(token));
  const h = mean.length;
  for (let j = 0; j < h; j += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const a = 2 * Math.PI * u();
    out[offset + j] = mean[j] + std[j] * r * Math.cos(a);
    if (j + 1 < h) out[offset + j + 1] = mean[j + 1] + std[j + 1] * r * Math.sin(a);
  }
}

/** A seeded permutation of 0..n-1 (Fisher-Yates), of which the first `count` entries are returned. */
export function seededSample(n: number, count: number, seed: number, stream: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const u = uniformStream(seed, stream);
  const c = Math.min(count, n);
  for (let i = 0; i < c; i++) {
    const j = i + Math.floor(u() * (n - i));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p.slice(0, c);
}
