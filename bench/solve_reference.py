#!/usr/bin/env python3
"""numpy reference for solveNeighbourhoods: the same per-token Gram-form solves in float64.

  per-token : a Python loop, one token at a time (what a straightforward implementation does)
  batched   : all tokens of a chunk at once with numpy's batched linear algebra (a strong baseline;
              possible here because every token has the same k)
lambda > 0: solve (G + lambda I) c = A x; lambda = 0: eigen-decomposition of G with the same
relative cutoff as salt-transfer (sigma <= max(k, ht) * eps32 * sigma_max dropped).
Usage: solve_reference.py N M K HT HS LAMBDA [per-token|batched]
"""
import sys
import time

import numpy as np


def main() -> None:
    n, m, k, ht, hs = (int(v) for v in sys.argv[1:6])
    lam = float(sys.argv[6])
    mode = sys.argv[7] if len(sys.argv) > 7 else "per-token"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, ht), dtype=np.float32)
    A = rng.standard_normal((m, ht), dtype=np.float32)
    S = rng.standard_normal((m, hs), dtype=np.float32)
    idx = rng.integers(0, m, size=(n, k))
    rcond = max(k, ht) * np.finfo(np.float32).eps
    out = np.empty((n, hs), dtype=np.float32)

    def solve(G, r):
        if lam > 0:
            return np.linalg.solve(G + lam * np.eye(k), r[..., None])[..., 0]
        w, V = np.linalg.eigh(G)
        cutoff = w[..., -1:] * rcond * rcond
        inv = np.where(w > cutoff, 1.0 / np.where(w > cutoff, w, 1.0), 0.0)
        proj = (np.swapaxes(V, -1, -2) @ r[..., None])[..., 0]
        return (V @ (inv * proj)[..., None])[..., 0]

    t0 = time.perf_counter()
    if mode == "per-token":
        for i in range(n):
            An = A[idx[i]].astype(np.float64)
            c = solve(An @ An.T, An @ X[i].astype(np.float64))
            out[i] = c @ S[idx[i]]
    else:
        chunk = max(1, (256 << 20) // (k * max(ht, hs) * 8))
        for i0 in range(0, n, chunk):
            I = idx[i0:i0 + chunk]
            An = A[I].astype(np.float64)  # (c, k, ht)
            G = An @ An.transpose(0, 2, 1)
            r = (An @ X[i0:i0 + chunk].astype(np.float64)[:, :, None])[:, :, 0]
            c = solve(G, r).astype(np.float32)
            out[i0:i0 + chunk] = (c[:, None, :] @ S[I])[:, 0, :]
    t = time.perf_counter() - t0
    print(f"numpy {mode} solve n={n} k={k} ht={ht} hs={hs} lambda={lam:g}: {t:.3f} s, {n / t:.0f} tokens/s")


if __name__ == "__main__":
    main()
