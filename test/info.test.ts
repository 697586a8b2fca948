import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { info, SaltError, topkCosine } from '../lib/index.js';

describe('info', () => {
  it('reports version, backends, threads, FAISS and BLAS', () => {
    const i = info();
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(i.version).toBe(pkg.version);
    expect(i.backends[0]).toBe('cpu');
    expect(i.threads).toBeGreaterThanOrEqual(1);
    expect(i.faiss).toMatch(/^\d+\.\d+\.\d+$/);
    expect(i.blas).toContain('OpenBLAS');
    expect(i.blas).toContain('USE_OPENMP');
    expect(typeof i.cuda.available).toBe('boolean');
    if (!i.cuda.available) expect(i.cuda.reason.length).toBeGreaterThan(0);
  });

  it.skipIf(info().cuda.available)(
    "backend 'cuda' rejects with E_NO_CUDA when the plugin is unavailable; 'auto' falls back to the CPU",
    async () => {
      const i = info();
      const q = { data: new Float32Array([1, 0]), rows: 1, cols: 2 };
      const err = await topkCosine(q, q, 1, { backend: 'cuda' }).catch((e) => e);
      expect(err).toBeInstanceOf(SaltError);
      expect(err.code).toBe('E_NO_CUDA');
      expect(err.message).toBe(`backend "cuda" is not available: ${i.cuda.reason}`);
      const res = await topkCosine(q, q, 1, { backend: 'auto' });
      expect(Array.from(res.indices)).toEqual([0]);
    },
  );
});
