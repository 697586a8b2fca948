// Worst delay of a 10 ms timer on the calling thread during one folder-level transfer() of a
// 32,000 x 1,024 source with an untied head (F32) into a 32,000 x 32 PLM (issue 13, item 10).
// Usage: node bench/event-loop-stall.mjs <folder with tokenizer.json + tokenizer_config.json> [method]
// SALT_DIST=<another build's dist/> measures that build instead (e.g. a checkout of an older commit).
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = resolve(process.env.SALT_DIST ?? join(import.meta.dirname, '..', 'dist'));
const { transfer } = await import(pathToFileURL(join(dist, 'index.js')).href);
const { writeCheckpoint } = await import(pathToFileURL(join(dist, 'io', 'checkpoint.js')).href);
const tok = process.argv[2];
if (!tok) throw new Error('usage: node bench/event-loop-stall.mjs <tokenizer folder> [method]');
const dir = await mkdtemp(join(tmpdir(), 'salt-stall-'));
const V = 32000,
  H = 1024;
try {
  for (const d of ['src', 'plm']) {
    await mkdir(join(dir, d));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(tok, f), join(dir, d, f));
  }
  const fill = (n, k) => new Float32Array(n).map((_, i) => Math.sin(i * k) * 0.1);
  await writeFile(
    join(dir, 'src/config.json'),
    JSON.stringify({ model_type: 'llama', vocab_size: V, hidden_size: H, tie_word_embeddings: false }),
  );
  await writeCheckpoint(join(dir, 'src'), [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [V, H], data: fill(V * H, 0.37) },
    { name: 'lm_head.weight', dtype: 'F32', shape: [V, H], data: fill(V * H, 0.41) },
  ]);
  await writeFile(
    join(dir, 'plm/config.json'),
    JSON.stringify({ model_type: 'llama', vocab_size: V, hidden_size: 32, tie_word_embeddings: true }),
  );
  await writeCheckpoint(join(dir, 'plm'), [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [V, 32], data: fill(V * 32, 0.11) },
  ]);
  let worst = 0,
    last = performance.now(),
    where = '',
    stage = '';
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - last - 10 > worst) [worst, where] = [now - last - 10, stage];
    last = now;
  }, 10);
  await transfer({
    source: join(dir, 'src'),
    target: join(dir, 'plm'),
    out: join(dir, 'out'),
    method: process.argv[3] ?? 'mean',
    onProgress: (e) => (stage = e.stage),
  });
  clearInterval(timer);
  console.log(`${dist}: worst timer delay ${worst.toFixed(1)} ms (last progress stage "${where}")`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
