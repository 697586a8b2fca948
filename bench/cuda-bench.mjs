#!/usr/bin/env node
// cuda-bench.mjs — benchmark of the CUDA backend on the shapes of issue 6 (needs a GPU; written and
// syntax-checked on a machine without one, never run there).
//
//   npm run build && cmake -S . -B build-native -DSALT_BUILD_TESTS=OFF && cmake --build build-native --target salt_cuda
//   node bench/cuda-bench.mjs [--shape glove|gemma|all] [--backend cuda|cpu] [--repeats 3]
//                             [--tile-rows 16384] [--precision fp32|tf32] [--peak-tflops X] [--no-sgemm]
//
// Shapes (synthetic data, seeded; values uniform in [-1, 1)):
//   glove: 336,562 new tokens, 4,917 shared anchors, auxiliary/PLM width 100, source width 256, K = 64
//          (the real USE-lite -> GloVe pair's sizes).
//   gemma: source vocabulary 256,000 x 2,304 (Gemma-2B), target 250,000 tokens with 768-wide PLM rows,
//          60,000 shared -> 190,000 new tokens; the PLM rows are the auxiliary space; K = 64. Only the
//          60,000 shared source rows are materialised (the others never enter a kernel).
// For each shape it times one SALT step as the kernels run it: topkCosine (K candidates) ->
// sparsemax -> solveNeighbourhoods on the support (lambda = 0, then lambda = 10 with the sparsemax
// weights as prior), reporting wall time per kernel as seen from JavaScript (transfers included).
// It also times the top-k score GEMMs alone (bench/sgemm-only.cu, same shape and tile rows, built
// with nvcc on first use) to report the top-k/SGEMM ratio and the achieved TFLOP/s against peak.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { info, solveNeighbourhoods, sparsemax, topkCosine } from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const o = {
    shape: 'all',
    backend: 'cuda',
    repeats: 3,
    tileRows: 16384,
    precision: 'fp32',
    peakTflops: 0,
    sgemm: true,
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--shape') o.shape = next();
    else if (a === '--backend') o.backend = next();
    else if (a === '--repeats') o.repeats = Number(next());
    else if (a === '--tile-rows') o.tileRows = Number(next());
    else if (a === '--precision') o.precision = next();
    else if (a === '--peak-tflops') o.peakTflops = Number(next());
    else if (a === '--no-sgemm') o.sgemm = false;
    else throw new Error(`unknown option ${a}`);
  }
  if (!['glove', 'gemma', 'all'].includes(o.shape))
    throw new Error(`--shape must be glove, gemma or all, got ${o.shape}`);
  if (!['cuda', 'cpu'].includes(o.backend)) throw new Error(`--backend must be cuda or cpu, got ${o.backend}`);
  if (!['fp32', 'tf32'].includes(o.precision)) throw new Error(`--precision must be fp32 or tf32, got ${o.precision}`);
  if (!(Number.isInteger(o.repeats) && o.repeats >= 1)) throw new Error('--repeats must be an integer >= 1');
  if (!(Number.isInteger(o.tileRows) && o.tileRows >= 1)) throw new Error('--tile-rows must be an integer >= 1');
  return o;
}

/** xorshift32 fill with uniform values in [-1, 1): fast enough for billions of values. */
function randomFill(n, seed) {
  const a = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; ++i) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    a[i] = x / 2147483648 - 1;
  }
  return a;
}

const SHAPES = {
  glove: { name: 'GloVe-scale', n: 336_562, m: 4_917, ht: 100, hs: 256, K: 64 },
  gemma: { name: 'Gemma-scale', n: 250_000 - 60_000, m: 60_000, ht: 768, hs: 2_304, K: 64, sourceVocab: 256_000 },
};

/** FP32 / TF32 (dense) peak TFLOP/s by device name; --peak-tflops overrides. */
function peakFor(deviceName, precision) {
  const table = [
    [/H200/i, 67, 495],
    [/H100.*PCIe/i, 51, 378],
    [/H100/i, 67, 495],
    [/A100/i, 19.5, 156],
    [/L40S/i, 91.6, 183],
    [/L4\b/i, 30.3, 60],
  ];
  for (const [re, fp32, tf32] of table) if (re.test(deviceName)) return precision === 'tf32' ? tf32 : fp32;
  return 0;
}

async function timed(label, repeats, fn) {
  let best = Infinity,
    result;
  for (let r = 0; r < repeats; ++r) {
    const t0 = performance.now();
    result = await fn();
    best = Math.min(best, (performance.now() - t0) / 1e3);
  }
  console.log(`  ${label.padEnd(34)} ${best.toFixed(3)} s (best of ${repeats})`);
  return { seconds: best, result };
}

function sgemmOnly(shape, o) {
  const exe = join(root, 'build-bench', 'sgemm-only');
  if (!existsSync(exe)) {
    mkdirSync(dirname(exe), { recursive: true });
    const nvcc = process.env.CUDACXX || (existsSync('/usr/local/cuda/bin/nvcc') ? '/usr/local/cuda/bin/nvcc' : 'nvcc');
    execFileSync(nvcc, ['-O2', '-std=c++17', join(root, 'bench', 'sgemm-only.cu'), '-lcublas', '-o', exe], {
      stdio: 'inherit',
    });
  }
  const out = execFileSync(exe, [shape.n, shape.m, shape.ht, o.tileRows, o.precision, o.repeats].map(String), {
    encoding: 'utf8',
  });
  const r = JSON.parse(out.trim().split('\n').pop());
  if (r.error) throw new Error(`sgemm-only: ${r.error}`);
  return r;
}

async function runShape(shape, o, device) {
  const { n, m, ht, hs, K } = shape;
  console.log(
    `\n${shape.name}: n = ${n.toLocaleString()} new tokens, m = ${m.toLocaleString()} anchors, ` +
      `ht = ${ht}, hs = ${hs}, K = ${K}${shape.sourceVocab ? `, source vocabulary ${shape.sourceVocab.toLocaleString()}` : ''}`,
  );
  const t0 = performance.now();
  const queries = { data: randomFill(n * ht, 1), rows: n, cols: ht };
  const anchorsPlm = { data: randomFill(m * ht, 2), rows: m, cols: ht };
  const anchorsSrc = { data: randomFill(m * hs, 3), rows: m, cols: hs };
  console.log(`  synthetic data                     ${((performance.now() - t0) / 1e3).toFixed(1)} s`);

  const opts = { backend: o.backend, tileRows: o.tileRows, precision: o.precision };
  const topk = await timed(`topkCosine (K = ${K}, ${o.precision})`, o.repeats, () =>
    topkCosine(queries, anchorsPlm, K, opts),
  );
  const sm = await timed('sparsemax', o.repeats, () =>
    sparsemax({ data: topk.result.scores, rows: n, cols: K }, { backend: o.backend }),
  );

  // CSR of each token's sparsemax support (a prefix of its candidates) and the weights as prior.
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < n; ++i) offsets[i + 1] = offsets[i] + sm.result.support[i];
  const nnz = offsets[n];
  const indices = new Int32Array(nnz),
    prior = new Float32Array(nnz);
  let hitK = 0;
  for (let i = 0; i < n; ++i) {
    const s = sm.result.support[i];
    if (s === K) ++hitK;
    indices.set(topk.result.indices.subarray(i * K, i * K + s), offsets[i]);
    prior.set(sm.result.weights.subarray(i * K, i * K + s), offsets[i]);
  }
  console.log(`  support: mean ${(nnz / n).toFixed(1)}, hit K in ${hitK.toLocaleString()} rows`);
  const neighbours = { offsets, indices };
  const paper = await timed('solveNeighbourhoods (lambda = 0)', o.repeats, () =>
    solveNeighbourhoods({ neighbours, queries, anchorsPlm, anchorsSrc, lambda: 0, backend: o.backend }),
  );
  const ridge = await timed('solveNeighbourhoods (lambda = 10, w)', o.repeats, () =>
    solveNeighbourhoods({ neighbours, queries, anchorsPlm, anchorsSrc, lambda: 10, prior, backend: o.backend }),
  );
  const step = topk.seconds + sm.seconds + paper.seconds;
  console.log(`  SALT step kernel time (top-k + sparsemax + solve, lambda = 0): ${step.toFixed(3)} s`);

  const flops = 2 * n * m * ht;
  const row = {
    shape: shape.name,
    backend: o.backend,
    topk: topk.seconds,
    sparsemax: sm.seconds,
    solve0: paper.seconds,
    solveRidge: ridge.seconds,
    step,
    topkTflops: flops / topk.seconds / 1e12,
  };
  if (o.backend === 'cuda' && o.sgemm) {
    try {
      const g = sgemmOnly(shape, o);
      const peak = o.peakTflops || peakFor(device, o.precision);
      row.sgemm = g.seconds;
      row.sgemmTflops = g.tflops;
      row.ratio = topk.seconds / g.seconds;
      console.log(`  SGEMM only (same shape and tiles)  ${g.seconds.toFixed(3)} s, ${g.tflops.toFixed(1)} TFLOP/s`);
      console.log(
        `  top-k / SGEMM time ratio           ${row.ratio.toFixed(2)}; top-k achieves ${row.topkTflops.toFixed(1)} TFLOP/s` +
          (peak
            ? ` = ${((100 * row.topkTflops) / peak).toFixed(1)}% of the ${peak} TFLOP/s ${o.precision} peak`
            : ' (peak unknown: pass --peak-tflops)'),
      );
    } catch (err) {
      console.log(`  SGEMM only: skipped (${err.message})`);
    }
  }
  return row;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const i = info();
  if (o.backend === 'cuda' && !i.backends.includes('cuda')) {
    console.error(`cuda-bench: the CUDA backend is not available: ${i.cuda.reason}`);
    process.exit(1);
  }
  let device = 'cpu';
  if (o.backend === 'cuda') {
    const d = JSON.parse(i.cuda.description);
    const dev = d.devices.find((x) => x.index === d.device) ?? d.devices[0];
    device = dev.name;
    console.log(
      `device: ${dev.name} (${(dev.memoryBytes / 2 ** 30).toFixed(0)} GiB, cc ${dev.computeCapability}), ` +
        `CUDA ${d.cudaRuntime}, cuBLAS ${d.cublas}, cuSOLVER ${d.cusolver}`,
    );
  } else {
    console.log(`backend cpu: ${i.threads} threads, ${i.blas}`);
  }
  const names = o.shape === 'all' ? ['glove', 'gemma'] : [o.shape];
  const rows = [];
  for (const name of names) rows.push(await runShape(SHAPES[name], o, device));
  console.log(`\n${JSON.stringify({ device, precision: o.precision, tileRows: o.tileRows, results: rows })}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
