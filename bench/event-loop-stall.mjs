// Event-loop stall of the calling thread during transfer(), evaluateModels() and inspectToken()
// (issue 14, part 3): a 10 ms interval timer runs on the calling thread the whole time; every time
// it fires, its lateness (the gap since the last firing minus 10 ms) is charged to each stage that
// was active during the gap. Prints per stage the worst and the 99th-percentile lateness.
//
// The source and target folders are synthetic, written into a temporary folder that is removed at
// the end: a source of <rows> x <cols> in BF16 with an untied head (two matrices), a WordLevel
// tokenizer of <rows> tokens, and a PLM of <target rows> x <target cols> whose first half of the
// tokens are shared with the source (the anchors) and whose other half are new.
//
//   npx tsc -p tsconfig.build.json && node bench/event-loop-stall.mjs [rows] [cols] [options]
//     --target-rows N   (default 32000)   --target-cols N (default 64)
//     --method M        (default salt; any transfer method)
//     --skip transfer,evaluate,inspect   (stages to leave out)
//     --gaps FILE       (writes the firings later than 25 ms as JSON, with monotonic microsecond times
//                        that match a --cpu-prof profile: see bench/stall-stacks.mjs)
//   SALT_DIST=<another build's dist/> measures that build instead.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'target-rows': { type: 'string', default: '32000' },
    'target-cols': { type: 'string', default: '64' },
    method: { type: 'string', default: 'salt' },
    skip: { type: 'string', default: '' },
    gaps: { type: 'string' },
  },
});
const V = Number(positionals[0] ?? 32000),
  H = Number(positionals[1] ?? 1024),
  Vt = Number(opt['target-rows']),
  Ht = Number(opt['target-cols']);
const skip = new Set(opt.skip.split(',').filter(Boolean));
const dist = resolve(process.env.SALT_DIST ?? join(import.meta.dirname, '..', 'dist'));
const { transfer, evaluateModels, inspectToken } = await import(pathToFileURL(join(dist, 'index.js')).href);
const { writeCheckpoint } = await import(pathToFileURL(join(dist, 'io', 'checkpoint.js')).href);

// ---- synthetic folders
/** A WordLevel tokenizer.json: "<unk>" then the given words. */
function tokenizerJson(words) {
  const vocab = { '<unk>': 0 };
  words.forEach((w, i) => (vocab[w] = i + 1));
  return JSON.stringify({
    version: '1.0',
    added_tokens: [
      { id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  });
}

/** BF16 rows of pseudo-random values in [-0.1, 0.1), streamed in 8 MiB chunks (never the whole matrix in memory). */
function bf16Rows(rows, cols, seed) {
  const base = new Uint16Array(1 << 22);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < base.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    f[0] = ((x >>> 0) / 2 ** 32 - 0.5) * 0.2;
    base[i] = u[0] >>> 16;
  }
  return function* () {
    const total = rows * cols;
    for (let done = 0, c = 0; done < total; done += base.length, c++) {
      const n = Math.min(base.length, total - done);
      const out = new Uint16Array(n);
      const shift = (c * 7919) % base.length; // each chunk a different rotation of the base values
      const first = base.subarray(shift, shift + n);
      out.set(first);
      if (first.length < n) out.set(base.subarray(0, n - first.length), first.length);
      yield new Uint8Array(out.buffer);
    }
  };
}

async function modelFolder(dir, { vocab, rows, cols, head, words, seed }) {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'tokenizer.json'), tokenizerJson(words));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ unk_token: '<unk>' }));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({ model_type: 'llama', vocab_size: vocab, hidden_size: cols, tie_word_embeddings: !head }),
  );
  const tensors = [
    { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [rows, cols], data: bf16Rows(rows, cols, seed) },
  ];
  if (head)
    tensors.push({ name: 'lm_head.weight', dtype: 'BF16', shape: [rows, cols], data: bf16Rows(rows, cols, seed + 1) });
  await writeCheckpoint(dir, tensors, { maxShardBytes: 2 ** 40 });
}

// ---- the control: the same 10 ms timer in another process at real-time priority
// It runs ahead of every thread of this process (SCHED_FIFO), so it is late only when the machine
// itself does not run (a virtual machine paused by its host) or the kernel holds the CPU: a firing of
// the calling thread is charged to the machine for as long as the control was late in the same span.
// Without `chrt` or the right to use it, the control runs at normal priority and says so.
const CONTROL = `
const gaps = [];
let last = process.hrtime.bigint();
const t = setInterval(() => {
  const now = process.hrtime.bigint();
  const late = Number(now - last) / 1e6 - 10;
  if (late > 1) gaps.push([Number(last / 1000n), Number(now / 1000n), late]);
  last = now;
}, 10);
process.stdin.on('data', () => { clearInterval(t); process.stdout.write(JSON.stringify(gaps)); process.exit(0); });
process.stdout.write('ready\\n');
`;
function startControl() {
  const rt = process.platform === 'linux' && spawnSync('chrt', ['-f', '50', 'true']).status === 0;
  const child = rt
    ? spawn('chrt', ['-f', '50', process.execPath, '-e', CONTROL], { stdio: ['pipe', 'pipe', 'inherit'] })
    : spawn(process.execPath, ['-e', CONTROL], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise((res, rej) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.startsWith('ready\n')) res();
    });
    child.once('error', rej);
  });
  const exited = new Promise((res) => child.once('exit', res));
  let stopped;
  return {
    priority: rt ? 'real-time (chrt -f 50)' : 'normal priority (chrt unavailable)',
    ready,
    /** Stops it (once; later calls give the same answer); its late firings as [t0, t1, late] with t0, t1 in monotonic microseconds. */
    stop: () =>
      (stopped ??= (async () => {
        child.stdin.end('stop\n');
        await exited;
        return JSON.parse(out.slice('ready\n'.length));
      })()),
  };
}
const control = startControl();
await control.ready;

// ---- the timer and the stage log
const stages = []; // { name, t } in order: a stage lasts until the next one begins
const gaps = []; // { t0, t1, late }
let stage = 'idle';
const enter = (name) => {
  if (name === stage) return;
  stage = name;
  stages.push({ name, t: performance.now() });
};
// The calling thread's time on a CPU and waiting for one (Linux schedstat, ns): a late firing
// whose gap held little CPU time for this thread was the machine's load (waiting for a core), not
// work on this thread. Absent elsewhere: then only the lateness is printed.
const readSched = (() => {
  try {
    readFileSync('/proc/thread-self/schedstat', 'utf8');
    return () => readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
  } catch {
    return null;
  }
})();
let last = performance.now();
let lastSched = readSched?.();
// With --gaps: the late firings, timed with the monotonic clock V8's CPU profiles use (microseconds).
let lastHr = process.hrtime.bigint();
const lateGaps = [];
const timer = setInterval(() => {
  const now = performance.now();
  const sched = readSched?.();
  const hrNow = process.hrtime.bigint();
  gaps.push({
    t0: last,
    t1: now,
    hr0: Number(lastHr / 1000n),
    hr1: Number(hrNow / 1000n),
    late: Math.max(0, now - last - 10),
    cpu: sched ? (sched[0] - lastSched[0]) / 1e6 : NaN,
    wait: sched ? (sched[1] - lastSched[1]) / 1e6 : NaN,
  });
  if (opt.gaps && now - last - 10 > 25)
    lateGaps.push({ t0: Number(lastHr / 1000n), t1: Number(hrNow / 1000n), late: now - last - 10, stage });
  lastHr = hrNow;
  last = now;
  lastSched = sched;
}, 10);

/** Nearest-rank 99th percentile and maximum of the values. */
function p99max(values) {
  const s = Float64Array.from(values).sort();
  return s.length ? [s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)], s[s.length - 1]] : [NaN, NaN];
}

/** Each firing's lateness less the control's worst lateness in a span overlapping its gap (>= 0). */
function chargeControl(controlGaps) {
  const sorted = [...controlGaps].sort((a, b) => a[0] - b[0]);
  for (const g of gaps) {
    let machine = 0;
    for (const [c0, c1, late] of sorted) {
      if (c0 >= g.hr1) break;
      if (c1 > g.hr0) machine = Math.max(machine, late);
    }
    g.machine = machine;
    g.own = Math.max(0, g.late - machine);
  }
}

function report(title, controlNote) {
  const per = new Map();
  const now = performance.now();
  for (let i = 0; i < stages.length; i++) {
    const s = stages[i];
    const end = i + 1 < stages.length ? stages[i + 1].t : Infinity;
    if (s.name === 'idle') continue;
    const entry = per.get(s.name) ?? { gaps: [], ms: 0 };
    entry.ms += Math.min(end, now) - s.t;
    for (const g of gaps) if (g.t1 > s.t && g.t0 < end) entry.gaps.push(g);
    per.set(s.name, entry);
  }
  const f = (v) => (Number.isNaN(v) ? '–' : v.toFixed(1));
  console.log(
    `\n${title}\n| stage | wall (s) | firings | worst delay (ms) | p99 delay (ms) | worst delay less the control's (ms) | p99 of it (ms) | worst thread CPU in a gap (ms) | its wait for a CPU (ms) |\n|---|---|---|---|---|---|---|---|---|`,
  );
  for (const [name, { gaps: list, ms }] of per) {
    const [p99, worst] = p99max(list.map((g) => g.late));
    const [own99, ownWorst] = p99max(list.map((g) => g.own));
    const busiest = list.reduce((a, g) => (g.cpu > (a?.cpu ?? -1) ? g : a), undefined);
    console.log(
      `| ${name} | ${(ms / 1000).toFixed(1)} | ${list.length} | ${f(worst)} | ${f(p99)} | ${f(ownWorst)} | ${f(own99)} | ${f(busiest?.cpu ?? NaN)} | ${f(busiest?.wait ?? NaN)} |`,
    );
  }
  const at = (t) => stages.findLast((x) => x.t <= t)?.name ?? 'idle';
  console.log(
    '\nthe five latest firings: where the gap began -> where it ended: lateness = thread on a CPU + waiting for a CPU + neither (blocked or sleeping)',
  );
  for (const g of [...gaps].sort((a, b) => b.late - a.late).slice(0, 5))
    console.log(
      `  ${at(g.t0)} -> ${at(g.t1)}: ${f(g.late)} ms = ${f(g.cpu)} + ${f(g.wait)} + ${f(g.t1 - g.t0 - g.cpu - g.wait)} (gap ${f(g.t1 - g.t0)} ms); the control was ${f(g.machine)} ms late in it`,
    );
  const [p99, worst] = p99max(gaps.map((g) => g.late));
  const [own99, ownWorst] = p99max(gaps.map((g) => g.own));
  const [cpu99, cpuMax] = p99max(gaps.map((g) => g.cpu));
  console.log(
    `all: ${gaps.length} firings, worst delay ${f(worst)} ms, p99 ${f(p99)} ms; less the control's lateness: worst ${f(ownWorst)} ms, p99 ${f(own99)} ms; calling thread's CPU time per gap: worst ${f(cpuMax)} ms, p99 ${f(cpu99)} ms`,
  );
  console.log(controlNote);
}

const dir = await mkdtemp(join(tmpdir(), 'salt-stall-'));
try {
  const t0 = performance.now();
  const shared = Math.floor(Vt / 2);
  const srcWords = Array.from({ length: V - 1 }, (_, i) => `w${i}`);
  const tgtWords = Array.from({ length: Vt - 1 }, (_, i) =>
    i < shared ? `w${i * Math.max(1, Math.floor((V - 1) / shared))}` : `new${i}`,
  );
  await modelFolder(join(dir, 'src'), { vocab: V, rows: V, cols: H, head: true, words: srcWords, seed: 11 });
  await modelFolder(join(dir, 'plm'), { vocab: Vt, rows: Vt, cols: Ht, head: false, words: tgtWords, seed: 23 });
  const build = (performance.now() - t0) / 1000;
  stages.length = 0;
  gaps.length = 0;
  lateGaps.length = 0;
  last = performance.now();
  console.log(
    `${new Date().toISOString()} node ${process.version}, ${dist}\nsource ${V} x ${H} BF16 + untied head, PLM ${Vt} x ${Ht} (${shared} shared), method ${opt.method}; folders written in ${build.toFixed(1)} s`,
  );
  if (!skip.has('transfer')) {
    enter('transfer: started');
    const [r] = await transfer({
      source: join(dir, 'src'),
      target: join(dir, 'plm'),
      out: join(dir, 'out'),
      method: opt.method,
      onProgress: (e) =>
        enter(`transfer: ${e.stage} ${e.done === 0 ? 'begun' : e.done === e.total ? 'done' : 'going'}`),
    });
    enter('idle');
    console.log(
      `transfer: ${r.transfer.counts.copied} copied, ${r.transfer.counts.solved} solved, ${(r.timings.total / 1000).toFixed(1)} s`,
    );
    await rm(join(dir, 'out'), { recursive: true, force: true });
  }
  if (!skip.has('evaluate')) {
    const methods = [opt.method, 'mean'];
    enter(`evaluate: load, align, ${methods[0]}`);
    const r = await evaluateModels({
      source: join(dir, 'src'),
      target: join(dir, 'plm'),
      methods,
      seeds: [0],
      holdout: 0.1,
      ranks: false, // the exact ranks cost a full sort of |V_s| scores per held-out token (minutes at 256k)
      onProgress: (done) => enter(`evaluate: ${methods[done] ?? 'finish'}`),
    });
    enter('idle');
    console.log(`evaluate: ${r.result.seeds[0].heldOut} held out, ${(r.timings.evaluate / 1000).toFixed(1)} s`);
  }
  if (!skip.has('inspect')) {
    enter('inspect');
    const r = await inspectToken({
      source: join(dir, 'src'),
      target: join(dir, 'plm'),
      token: `new${Vt - 2}`,
      // inspect shows a per-token neighbourhood: the default kernel method 'salt' has none.
      method: 'salt-local',
    });
    enter('idle');
    console.log(`inspect: ${r.status}, ${r.neighbours?.length ?? 0} neighbours`);
  }
  clearInterval(timer);
  if (opt.gaps) await writeFile(opt.gaps, JSON.stringify(lateGaps));
  const controlGaps = await control.stop();
  chargeControl(controlGaps);
  const [c99, cWorst] = p99max(controlGaps.map((c) => c[2]));
  report(
    `Lateness of a 10 ms timer on the calling thread, per stage (a gap counts for every stage it overlaps)`,
    `control (the same timer in another process, ${control.priority}): ${controlGaps.length} firings more than 1 ms late over the run, worst ${cWorst?.toFixed(1) ?? '–'} ms, their p99 ${c99?.toFixed(1) ?? '–'} ms`,
  );
} finally {
  clearInterval(timer);
  await control.stop().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
