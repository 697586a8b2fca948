// Real-pair evaluation (docs/transfer.md): USE-lite (source) -> GloVe 6B 100d (target and aux space),
// 1,000 held-out shared words x seeds 0, 1, 2, every method with its defaults. Prints the table of
// docs/transfer.md.
//
//   npx tsc -p tsconfig.build.json && node bench/transfer-eval.mjs [holdout] [seeds, e.g. 0,1,2]
import { loadGloveWink, loadUseLite } from '../dist/data/index.js';
import { alignVocabularies, evaluateTransfer, formatEvaluation, wordListVocabulary } from '../dist/index.js';
import { useLiteVocabulary } from '../dist/tokenizer/index.js';

const holdout = Number(process.argv[2] ?? 1000);
const seeds = (process.argv[3] ?? '0,1,2').split(',').map(Number);
const use = await loadUseLite();
const glove = await loadGloveWink();
const useVocab = useLiteVocabulary(use.words);
const alignment = alignVocabularies(useVocab, wordListVocabulary(glove.words, 'GloVe 6B'), { caseFold: true });
const t = performance.now();
const res = await evaluateTransfer({
  source: { data: use.vectors, rows: use.words.length, cols: use.dim },
  target: { data: glove.vectors, rows: glove.words.length, cols: glove.dim },
  alignment,
  holdout,
  seeds,
});
console.log(
  `${alignment.report.matched} shared words; ${res.seeds[0].heldOut} held out, ${res.seeds[0].anchors} anchors; seeds ${seeds.join(', ')}; ranks among ${res.sourceRows} source rows\n`,
);
console.log(formatEvaluation(res));
console.log('\nper seed, mean cosine:');
for (const s of res.seeds)
  console.log(`  seed ${s.seed}: ${res.labels.map((l) => `${l} ${s.methods[l].meanCosine.toFixed(4)}`).join(', ')}`);
console.log(`\n${((performance.now() - t) / 1000).toFixed(1)} s`);
