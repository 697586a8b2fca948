// Speed and quality of the kernel ridge transfer method at scale (see bench/README.md, "Kernel method at scale").
// node bench/kernel-scale.mjs [--only full|large|quality] [--reps 3] [--json FILE]
//   [--m 100000 --n 150000 --d 768 --hs 4096 --landmarks 4096 --k 64 --seed 1]
//   [--width 0.2 --linear 0 --lambda 0.1 | --auto] [--exact-m 8192 --heldout 2000 --nystrom 4096,2048]
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

const DIST = new URL('../dist/', import.meta.url);
const { transferEmbeddings, topkCosine, applyWeights } = await import(new URL('index.js', DIST).href);

// ---- flags
// prettier-ignore
const DEFAULTS = { only: '', reps: 3, json: '', m: 100000, n: 150000, d: 768, hs: 4096, landmarks: 4096, k: 64, seed: 1,
  width: 0.2, linear: 0, lambda: 0.1, auto: false, 'exact-m': 8192, heldout: 2000, nystrom: '4096,2048' };
const opt = { ...DEFAULTS };
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i],
    key = arg.slice(2);
  if (!arg.startsWith('--') || !(key in DEFAULTS)) throw new Error(`unknown argument ${arg}`);
  if (typeof DEFAULTS[key] === 'boolean') opt[key] = true;
  else if (process.argv[i + 1] === undefined) throw new Error(`${arg} needs a value`);
  else opt[key] = typeof DEFAULTS[key] === 'number' ? Number(process.argv[++i]) : process.argv[++i];
  if (typeof DEFAULTS[key] === 'number' && !Number.isFinite(opt[key])) throw new Error(`${arg}: not a number`);
}
if (opt.only && !['full', 'large', 'quality'].includes(opt.only)) throw new Error('--only: full, large or quality');

const t0 = performance.now();
const log = (msg) =>
  process.stderr.write(`${new Date().toISOString()} +${((performance.now() - t0) / 1000).toFixed(1)}s ${msg}\n`);
/** onProgress that logs when a stage begins, when it ends and at most every 15 s in between. */
function progress(label) {
  let stage = '',
    last = 0;
  return (s, done, total) => {
    const now = performance.now();
    if (s === stage && done !== total && now - last < 15000) return;
    log(`  ${label}: ${s} ${done}/${total}`);
    [stage, last] = [s, now];
  };
}
const ms = (x) => (x === undefined ? '' : x.toFixed(0));
const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
const gib = (floats) => `${((floats * 4) / 2 ** 30).toFixed(2)} GiB`;
const cell = (cells) => `| ${cells.join(' | ')} |`;
const fitText = (k) =>
  `${k.exact ? 'exact' : `Nystrom ${k.landmarks}`}, rank ${k.rank}, linear ${k.linear}, width ${k.width}, ` +
  `lambda ${k.lambda}${k.sample ? `, LOO sample ${k.sample}` : ''}${k.notes.length ? `; ${k.notes.join('; ')}` : ''}`;

/** The kernel method (the default) and the per-token ridge it replaced as the default. */
const names = { kernel: 'salt', old: 'salt-local' };
const fixed = opt.auto ? {} : { kernelWidth: opt.width, kernelLinear: opt.linear, lambda: opt.lambda };
/** The kernel method on synthetic rows (source row i belongs to target row i where sourceIdOfTarget says so). */
const kernelRun = (source, hs, target, d, sourceIdOfTarget, landmarks, label) =>
  transferEmbeddings({
    source: { data: source, rows: source.length / hs, cols: hs },
    target: { data: target, rows: target.length / d, cols: d },
    alignment: { sourceIdOfTarget },
    method: names.kernel,
    backend: 'cpu',
    landmarks,
    ...fixed,
    onProgress: progress(label),
  });

const out = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadavg: loadavg() };
Object.assign(out, { argv: process.argv.slice(2), options: opt, methods: names });
try {
  out.commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: new URL('..', import.meta.url) });
  out.commit = out.commit.toString().trim();
} catch {
  /* not a checkout */
}
const load = loadavg().map((v) => v.toFixed(1));
log(
  `node ${process.version}, ${cpus().length} cpus, load ${load.join(' ')}; kernel '${names.kernel}', old '${names.old}'`,
);
const tables = [];

// ---- 1. the real pair, both directions, old and kernel method interleaved
async function fullPair() {
  const { loadUseLite, loadGloveWink } = await import(new URL('data/sources.js', DIST).href);
  const tok = await import(new URL('tokenizer/index.js', DIST).href);
  log('loading USE-lite and GloVe 6B 100d');
  const use = await loadUseLite();
  const glove = await loadGloveWink();
  const uv = tok.useLiteVocabulary(use.words);
  const gv = tok.wordListVocabulary(glove.words, 'GloVe 6B');
  const U = { data: use.vectors, rows: use.words.length, cols: use.dim };
  const G = { data: glove.vectors, rows: glove.words.length, cols: glove.dim };
  const pairs = [
    { label: 'USE-lite -> GloVe', source: U, target: G, alignment: tok.alignVocabularies(uv, gv, { caseFold: true }) },
    { label: 'GloVe -> USE-lite', source: G, target: U, alignment: tok.alignVocabularies(gv, uv, { caseFold: true }) },
  ];
  const head = [`old: ${names.old}`, `kernel: ${names.kernel}`].map(
    (m) => `${m}, mean total ms of ${opt.reps} (stages)`,
  );
  tables.push(cell(['real pair', ...head, 'kernel / old', 'goal', 'kernel fit']), cell(Array(6).fill('---')));
  out.full = [];
  for (const p of pairs) {
    const shared = p.alignment.sourceIdOfTarget.reduce((s, v) => s + (v >= 0 ? 1 : 0), 0);
    log(
      `${p.label}: source ${p.source.rows} x ${p.source.cols}, target ${p.target.rows} x ${p.target.cols}, ${shared} shared`,
    );
    const res = { old: [], kernel: [] };
    for (let rep = 1; rep <= opt.reps; rep++) {
      for (const which of ['old', 'kernel']) {
        const r = await transferEmbeddings({
          source: p.source,
          target: p.target,
          alignment: { sourceIdOfTarget: p.alignment.sourceIdOfTarget },
          method: names[which],
          backend: 'cpu',
          onProgress: progress(`${p.label} ${names[which]} rep ${rep}`),
        });
        const { timings, anchors, counts, kernel, lambda } = r.report;
        res[which].push({ timings, anchors, counts, kernel, lambda: lambda?.value });
        log(`${p.label} ${names[which]} rep ${rep}: total ${ms(timings.total)} ms`);
      }
    }
    const o = mean(res.old.map((r) => r.timings.total)),
      k = mean(res.kernel.map((r) => r.timings.total));
    const stages = (rs) =>
      ['lambda', 'search', 'select', 'combine'].map((s) => `${s} ${ms(mean(rs.map((r) => r.timings[s])))}`).join(', ');
    const { anchors, counts, kernel } = res.kernel[0];
    out.full.push({
      label: p.label,
      shared,
      anchors,
      solved: counts.solved,
      oldMs: o,
      kernelMs: k,
      ratio: k / o,
      runs: res,
    });
    const label = `${p.label} (${p.target.rows.toLocaleString('en')} target rows, ${anchors.toLocaleString('en')} anchors)`;
    const times = [`${ms(o)} (${stages(res.old)})`, `${ms(k)} (${stages(res.kernel)})`];
    tables.push(cell([label, ...times, `${(k / o).toFixed(2)}x`, '<= 1.3x', fitText(kernel)]));
  }
  tables.push('');
}

// ---- synthetic data: a seeded low-rank Gaussian mixture; row i depends only on (seed, i)
// Latent z (R = 32) = one of 256 centres + spread; target row = z A + uniform noise (d wide);
// source row = tanh(z Q) + uniform noise (hs wide): a smooth nonlinear function of the target's noiseless part.
const R = 32,
  CENTRES = 256;
function rngOf(seed) {
  let a = seed >>> 0; // mulberry32
  const next = () => {
    let t = (a = (a + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return { next, gauss };
}
const rowSeed = (seed, i) => (Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0;
function synthetic(d, hs, seed) {
  const g = rngOf(seed);
  const centres = Float32Array.from({ length: CENTRES * R }, () => g.gauss());
  const A = { data: Float32Array.from({ length: R * d }, () => g.gauss() / Math.sqrt(R)), rows: R, cols: d };
  const Q = { data: Float32Array.from({ length: R * hs }, () => (1.5 * g.gauss()) / Math.sqrt(R)), rows: R, cols: hs };
  /** z M for a batch of b rows, natively: applyWeights with every row of M a neighbour of every row. */
  const times = async (z, b, M) => {
    const offsets = Int32Array.from({ length: b + 1 }, (_, i) => i * R);
    const indices = Int32Array.from({ length: b * R }, (_, i) => i % R);
    return (await applyWeights({ neighbours: { offsets, indices }, weights: z, anchorsSrc: M, n: b, backend: 'cpu' }))
      .out;
  };
  /** Rows `ids` of the target into t[to..] and, when s is given, of the source into s[so..]. */
  return async function rows(ids, t, to, s, so) {
    const b = ids.length,
      z = new Float32Array(b * R),
      gens = [];
    for (let i = 0; i < b; i++) {
      const r = rngOf(rowSeed(seed, ids[i])),
        c = Math.floor(r.next() * CENTRES);
      for (let k = 0; k < R; k++) z[i * R + k] = centres[c * R + k] + 0.6 * r.gauss();
      gens.push(r);
    }
    const zt = await times(z, b, A);
    for (let i = 0; i < b * d; i++) t[to + i] = zt[i] + 0.5 * (gens[(i / d) | 0].next() - 0.5);
    if (!s) return;
    const zs = await times(z, b, Q);
    for (let i = 0; i < b * hs; i++) s[so + i] = Math.tanh(zs[i]) + 0.2 * (gens[(i / hs) | 0].next() - 0.5);
  };
}

// ---- 2. large: the kernel method's full transfer against the bare top-K search of the same shape
async function large() {
  const { m, n, d, hs, k } = opt;
  log(
    `large: ${m} anchors + ${n} new, d ${d}, hs ${hs}; target ${gib((m + n) * d)}, source ${gib(m * hs)}, output ${gib((m + n) * hs)}`,
  );
  const rows = synthetic(d, hs, opt.seed);
  const target = new Float32Array((m + n) * d),
    source = new Float32Array(m * hs);
  for (let from = 0, batch = 1; from < m + n; batch++) {
    const to = Math.min(from + 8192, from < m ? m : m + n); // a batch never straddles the anchors' end
    const ids = Int32Array.from({ length: to - from }, (_, i) => from + i);
    await rows(ids, target, from * d, to <= m ? source : null, from * hs);
    if (batch % 8 === 0 || to === m + n) log(`  generated ${to} rows`);
    from = to;
  }
  const sourceIdOfTarget = new Int32Array(m + n).map((_, i) => (i < m ? i : -1));
  log(`large: topkCosine ${n} x ${d} queries over ${m} base rows, k ${k}`);
  const ts = performance.now();
  await topkCosine(
    { data: target.subarray(m * d), rows: n, cols: d },
    { data: target.subarray(0, m * d), rows: m, cols: d },
    k,
    { backend: 'cpu' },
  );
  const topkMs = performance.now() - ts;
  log(`large: topkCosine ${ms(topkMs)} ms`);
  log(`large: ${names.kernel}, landmarks ${opt.landmarks}, ${opt.auto ? 'LOO search' : JSON.stringify(fixed)}`);
  const { timings: t, kernel } = (await kernelRun(source, hs, target, d, sourceIdOfTarget, opt.landmarks, 'large'))
    .report;
  log(`large: total ${ms(t.total)} ms (fit ${ms(t.lambda)}, predictions ${ms(t.combine)})`);
  out.large = { m, n, d, hs, k, topkMs, timings: t, kernel, ratio: t.total / topkMs };
  const head = [
    'shape',
    `topkCosine k ${k} (ms)`,
    'kernel transfer total (ms)',
    'fit (lambda)',
    'predictions (combine)',
  ];
  tables.push(cell([...head, 'prepare', 'ratio', 'goal', 'kernel']), cell(Array(9).fill('---')));
  const times = [ms(topkMs), ms(t.total), ms(t.lambda), ms(t.combine), ms(t.prepare)];
  tables.push(
    cell([`m ${m}, n ${n}, d ${d}, hs ${hs}`, ...times, `${(t.total / topkMs).toFixed(2)}x`, '<= 2x', fitText(kernel)]),
  );
  tables.push('');
}

// ---- 3. quality at size: exact against Nystrom on a seeded subsample of the large data's anchors
async function quality() {
  const { d, hs, m } = opt,
    em = opt['exact-m'],
    h = opt.heldout,
    N = em + h;
  if (N > m) throw new Error(`--exact-m + --heldout (${N}) must be at most --m (${m})`);
  log(`quality: ${em} anchors + ${h} held out, sampled from the ${m} anchors of the large data, d ${d}, hs ${hs}`);
  const perm = new Int32Array(m).map((_, i) => i),
    g = rngOf(opt.seed + 7919);
  for (let i = 0; i < N; i++) {
    const j = i + Math.floor(g.next() * (m - i));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const target = new Float32Array(N * d),
    source = new Float32Array(N * hs);
  await synthetic(d, hs, opt.seed)(perm.subarray(0, N), target, 0, source, 0);
  // Rows em.. are shared tokens held out: marked new, built, then compared with their true source rows.
  const sourceIdOfTarget = new Int32Array(N).map((_, i) => (i < em ? i : -1));
  const res = [];
  for (const landmarks of ['all', ...opt.nystrom.split(',').map(Number)]) {
    if (landmarks !== 'all' && landmarks >= em) {
      log(`quality: landmarks ${landmarks} >= ${em} anchors (would be exact), skipped`);
      continue;
    }
    const r = await kernelRun(source, hs, target, d, sourceIdOfTarget, landmarks, `quality ${landmarks}`);
    const e = r.embeddings;
    let cos = 0;
    for (let i = em; i < N; i++) {
      let dot = 0,
        pp = 0,
        yy = 0;
      for (let j = i * hs; j < (i + 1) * hs; j++) {
        dot += e[j] * source[j];
        pp += e[j] * e[j];
        yy += source[j] * source[j];
      }
      cos += dot / Math.sqrt(pp * yy || 1);
    }
    res.push({ landmarks, meanCosine: cos / h, timings: r.report.timings, kernel: r.report.kernel });
    log(
      `quality: landmarks ${landmarks}: held-out mean cosine ${(cos / h).toFixed(4)}, total ${ms(r.report.timings.total)} ms`,
    );
  }
  out.quality = { anchors: em, heldout: h, d, hs, runs: res };
  const head = [`landmarks (${em} anchors, ${h} held out, d ${d}, hs ${hs})`, 'held-out mean cosine', 'exact - this'];
  tables.push(cell([...head, 'goal', 'total (ms)', 'fit (ms)', 'kernel']), cell(Array(7).fill('---')));
  for (const q of res) {
    const exact = q.landmarks === 'all';
    q.diffFromExact = exact ? 0 : res[0].meanCosine - q.meanCosine;
    const diff = exact ? '' : q.diffFromExact.toFixed(4);
    const times = [ms(q.timings.total), ms(q.timings.lambda)];
    tables.push(
      cell([q.landmarks, q.meanCosine.toFixed(4), diff, exact ? '' : 'abs <= 0.005', ...times, fitText(q.kernel)]),
    );
  }
  tables.push('');
}

if (!opt.only || opt.only === 'full') await fullPair();
if (!opt.only || opt.only === 'large') await large();
if (!opt.only || opt.only === 'quality') await quality();
log('done');
process.stdout.write(`${tables.join('\n')}\n`);
if (opt.json) {
  writeFileSync(opt.json, `${JSON.stringify(out, null, 2)}\n`);
  log(`wrote ${opt.json}`);
}
