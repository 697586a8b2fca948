// What the calling thread was doing during the late firings of bench/event-loop-stall.mjs: reads a
// V8 CPU profile (node --cpu-prof) and the --gaps file of the same run, and prints for the latest
// firings the most frequent JavaScript stacks sampled inside each gap. Garbage-collector samples are
// named after the last JavaScript stack sampled before them in the gap (what allocated).
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --cpu-prof-interval 500 bench/event-loop-stall.mjs \
//     256000 4096 --gaps /tmp/prof/gaps.json
//   node bench/stall-stacks.mjs /tmp/prof/CPU.*.001.cpuprofile /tmp/prof/gaps.json [count]
// (the .001 profile is the calling thread's; the others are worker threads').
import { readFileSync } from 'node:fs';

const [profileFile, gapsFile, countArg] = process.argv.slice(2);
if (!profileFile || !gapsFile) {
  console.error('usage: node bench/stall-stacks.mjs <profile.cpuprofile> <gaps.json> [count]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(profileFile, 'utf8'));
const gaps = JSON.parse(readFileSync(gapsFile, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const frame = (id) => {
  const f = byId.get(id).callFrame;
  return `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
};
const stack = (id, depth = 6) => {
  const out = [];
  for (let at = id; at !== undefined && out.length < depth; at = parent.get(at)) out.push(frame(at));
  return out.join(' < ');
};
// Sample times: profile.startTime plus the running sum of timeDeltas (monotonic microseconds).
const times = [];
let t = profile.startTime;
for (const d of profile.timeDeltas) times.push((t += d));
const interval = times.length > 1 ? (times[times.length - 1] - times[0]) / (times.length - 1) / 1000 : 0;

for (const g of [...gaps].sort((a, b) => b.late - a.late).slice(0, Number(countArg ?? 10))) {
  console.log(`\n${g.late.toFixed(1)} ms late (${g.stage}); samples of ~${interval.toFixed(2)} ms:`);
  const counts = new Map();
  let before = '(nothing sampled yet)';
  for (let i = 0; i < times.length; i++) {
    if (times[i] < g.t0 || times[i] > g.t1) continue;
    const s = stack(profile.samples[i]);
    let key = s;
    if (s.startsWith('(garbage collector)')) key = `garbage collector, after: ${before}`;
    else if (!s.startsWith('(idle)') && !s.startsWith('(program)')) before = s;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  for (const [k, c] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 5))
    console.log(`  ${String(c).padStart(4)}  ${k}`);
}
