import { spawnSync } from 'node:child_process';
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

  it('uses BLAS kernels the CPU can run fast: never the generic Prescott ones on a CPU with AVX2 or AVX-512', () => {
    // The CPU's features from the kernel's own list (Linux x86-64), not from the code under test.
    let flags: Set<string>;
    try {
      const line = readFileSync('/proc/cpuinfo', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('flags'));
      flags = new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
    } catch {
      flags = new Set();
    }
    const core = /\(core (\w+)\)/.exec(info().blas)?.[1];
    expect(core).toBeDefined();
    if (process.env.OPENBLAS_CORETYPE) return; // the user's choice is kept
    const avx512 = ['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f));
    if (avx512 || (flags.has('avx2') && flags.has('fma'))) expect(core).not.toBe('Prescott');
    // Where OpenBLAS had to fall back and salt-transfer chose the kernels, the description says so.
    if (info().blas.includes('salt-transfer chose')) expect(core).toBe(avx512 ? 'SkylakeX' : 'Haswell');
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

describe('loading the addon', () => {
  it.runIf(process.platform === 'linux')(
    'happens when the package is imported, not inside the first call (dist/, in a fresh process)',
    () => {
      const entry = new URL('../dist/index.js', import.meta.url).href;
      const script =
        `const maps = () => require('node:fs').readFileSync('/proc/self/maps', 'utf8').includes('salt_transfer.node');` +
        `const before = maps(); import(${JSON.stringify(entry)}).then(() => console.log(JSON.stringify({ before, after: maps() })));`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ before: false, after: true });
    },
  );
});
