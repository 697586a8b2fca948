// Full-pair transfer demo (docs/transfer.md): USE-lite (source, 8,000 x 256) -> GloVe 6B 100d
// (target and aux space, 341,479 words), aligned with case folding (4,917 shared words), every one of
// the 336,562 new words transferred. Prints wall time per stage, peak RSS and the report summary.
//
//   npx tsc -p tsconfig.build.json && node bench/transfer-demo.mjs [method] [--threads N] [--sgemm]
//
// The bare SGEMM of the top-K search shape cannot be measured from JavaScript (the addon exposes no
// GEMM). With --sgemm the demo runs build-bench/kernels_bench (C++, `bash bench/run.sh` builds it)
// for the same shape (336,562 x 4,917 x 100, k 64) and prints its topkCosine vs bare SGEMM line.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadGloveWink, loadUseLite } from '../dist/data/index.js';
import { alignVocabularies, info, transferEmbeddings, wordListVocabulary } from '../dist/index.js';
import { useLiteVocabulary } from '../dist/tokenizer/index.js';

const argv = process.argv.slice(2);
const method = argv.find((a) => !a.startsWith('--') && !/^\d+$/.test(a)) ?? 'salt';
const ti = argv.indexOf('--threads');
const threads = ti >= 0 ? Number(argv[ti + 1]) : 0;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const ms = (t) => `${(t / 1000).toFixed(2)} s`;
const mb = (kb) => `${(kb / 1024).toFixed(0)} MiB`;
const i = info();
console.log(
  `salt-transfer ${i.version}; backends ${i.backends.join(', ')}; BLAS ${i.blas}; ${i.threads} threads; load ${(
    await import('node:os')
  )
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')}`,
);

let t = performance.now();
const use = await loadUseLite();
const glove = await loadGloveWink();
const tLoad = performance.now() - t;
t = performance.now();
const useVocab = useLiteVocabulary(use.words);
const alignment = alignVocabularies(useVocab, wordListVocabulary(glove.words, 'GloVe 6B'), { caseFold: true });
const tAlign = performance.now() - t;
console.log(
  `load (vector cache) ${ms(tLoad)}; alignment ${ms(tAlign)}: ${alignment.report.matched} shared, ${alignment.report.counts.new} new`,
);

const rssBefore = process.resourceUsage().maxRSS;
t = performance.now();
const res = await transferEmbeddings({
  method,
  source: { data: use.vectors, rows: use.words.length, cols: use.dim },
  target: { data: glove.vectors, rows: glove.words.length, cols: glove.dim },
  alignment,
  threads,
  onProgress: (stage, done, total) => {
    if (stage === 'combine' && done === total) process.stdout.write(`  ${stage} ${done}/${total}\n`);
  },
});
const wall = performance.now() - t;
const r = res.report;
console.log(`\ntransferEmbeddings method=${method} threads=${threads || 'all'}: ${ms(wall)} wall`);
for (const [stage, v] of Object.entries(r.timings)) console.log(`  ${stage.padEnd(9)} ${ms(v)}`);
console.log(`counts ${JSON.stringify(r.counts)}; anchors ${r.anchors}; K ${r.K ?? '-'}`);
if (r.lambda)
  console.log(
    `lambda ${r.lambda.value}${r.lambda.auto ? ` (LOO on ${r.lambda.sample} anchors; grid ${r.lambda.grid.join(',')}; scores ${r.lambda.scores.map((s) => s.toFixed(4)).join(',')})` : ''}`,
  );
if (r.support)
  console.log(
    `support mean ${r.support.mean.toFixed(2)}, hit K ${r.support.hitK}, max ${r.support.histogram.findLastIndex((c) => c > 0)}`,
  );
if (r.residual)
  console.log(
    `residual p50 ${r.residual.p50.toFixed(3)} p95 ${r.residual.p95.toFixed(3)}; coefNorm p50 ${r.coefNorm.p50.toFixed(3)}`,
  );
console.log(`row norms: source p50 ${r.rowNorms.source.p50.toFixed(3)}, new p50 ${r.rowNorms.new.p50.toFixed(3)}`);
console.log(
  `peak RSS ${mb(process.resourceUsage().maxRSS)} (after loading and aligning: ${mb(rssBefore)}); output ${(res.embeddings.byteLength / 2 ** 20).toFixed(0)} MiB`,
);

if (argv.includes('--sgemm')) {
  const bin = join(root, 'build-bench', 'kernels_bench');
  if (!existsSync(bin))
    console.log('\nbare SGEMM: build-bench/kernels_bench not built (run `bash bench/run.sh` once); skipped');
  else {
    console.log('\nbare SGEMM of the top-K search shape (C++ bench, same machine, random data of the same shape):');
    console.log(
      execFileSync(
        bin,
        ['topk', String(alignment.report.counts.new), String(r.anchors), String(glove.dim), String(r.K ?? 64), '1'],
        { encoding: 'utf8' },
      ).trim(),
    );
  }
}
