// Real-pair evaluation (docs/transfer.md): USE-lite (source) -> GloVe 6B 100d (target and aux space),
// 1,000 held-out shared words x seeds 0, 1, 2, every method with its defaults. Prints the table of
// docs/transfer.md. `--reverse` swaps the roles (GloVe as the source, ranks among its 341,479 rows).
// The third real pair (USE-lite -> all-MiniLM-L6-v2) runs through the CLI: bench/real-pairs.sh.
//
//   npx tsc -p tsconfig.build.json && node bench/transfer-eval.mjs [holdout] [seeds, e.g. 0,1,2] [--reverse]
import { loadGloveWink, loadUseLite } from '../dist/data/index.js';
import { alignVocabularies, evaluateTransfer, formatEvaluation, wordListVocabulary } from '../dist/index.js';
import { useLiteVocabulary } from '../dist/tokenizer/index.js';

const argv = process.argv.slice(2).filter((a) => a !== '--reverse');
const reverse = process.argv.includes('--reverse');
const holdout = Number(argv[0] ?? 1000);
const seeds = (argv[1] ?? '0,1,2').split(',').map(Number);
const use = await loadUseLite();
const glove = await loadGloveWink();
const useVocab = useLiteVocabulary(use.words);
const gloveVocab = wordListVocabulary(glove.words, 'GloVe 6B');
const useM = { data: use.vectors, rows: use.words.length, cols: use.dim };
const gloveM = { data: glove.vectors, rows: glove.words.length, cols: glove.dim };
const alignment = reverse
  ? alignVocabularies(gloveVocab, useVocab, { caseFold: true })
  : alignVocabularies(useVocab, gloveVocab, { caseFold: true });
const t = performance.now();
const res = await evaluateTransfer({
  source: reverse ? gloveM : useM,
  target: reverse ? useM : gloveM,
  alignment,
  holdout,
  seeds,
  onProgress: (done, total, seed, label) => console.error(`${done}/${total} seed ${seed} ${label}`),
});
console.log(
  `${reverse ? 'GloVe -> USE-lite' : 'USE-lite -> GloVe'}: ${alignment.report.matched} shared; ${res.seeds[0].heldOut} held out, ${res.seeds[0].anchors} anchors; seeds ${seeds.join(', ')}; ranks among ${res.sourceRows} source rows\n`,
);
console.log(formatEvaluation(res));
console.log('\nper seed, mean cosine:');
for (const s of res.seeds)
  console.log(`  seed ${s.seed}: ${res.labels.map((l) => `${l} ${s.methods[l].meanCosine.toFixed(4)}`).join(', ')}`);
console.log(`\n${((performance.now() - t) / 1000).toFixed(1)} s`);
