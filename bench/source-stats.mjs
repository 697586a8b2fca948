// The engine's pass over the source (prepareSource: column statistics and row norms) against one
// bare pass over the same memory, in one process, interleaved. Issue 14: fewer CPU-seconds on the
// calling process while a folder transfer loads and prepares.
//
//   npx node-gyp rebuild && node bench/source-stats.mjs [rows] [cols] [--rounds N] [--other ADDON]
//     rows x cols: default 128256 x 2048 (Llama-3.2-1B's input embedding, 1 GiB as Float32)
//     --other ADDON: also time another build's addon (a salt_transfer.node) doing what its
//       prepareSource did: columnMeanStd, then rowNorms (two calls, as before 2026-12-07)
//
// Per round: `rowNorms` (one read of the matrix, summing along rows: the floor for anything that
// reads every value once and sums in float64), this build's `columnMeanStd({ norms: true })` (what
// prepareSource calls), and the other build's two calls when given. Prints each time and its ratio
// to the bare pass of the same round.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '5' }, other: { type: 'string' } },
});
const rows = Number(positionals[0] ?? 128256);
const cols = Number(positionals[1] ?? 2048);
const rounds = Number(opt.rounds);
const require = createRequire(import.meta.url);
const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const ours = require(join(root, 'build', 'Release', 'salt_transfer.node'));
const other = opt.other ? require(opt.other) : null;

// Seeded values of an embedding's scale, in shared memory as the pipelines read the source.
const data = new Float32Array(new SharedArrayBuffer(rows * cols * 4));
let s = 1;
for (let i = 0; i < data.length; i++) {
  s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
  data[i] = (s / 2 ** 31 - 0.3) * 0.04;
}
const m = { data, rows, cols };
const time = async (f) => {
  const t = performance.now();
  await f();
  return performance.now() - t;
};

console.log(`source-stats: ${rows} x ${cols} (${((rows * cols * 4) / 2 ** 30).toFixed(2)} GiB), ${rounds} rounds`);
const rowsOut = [];
for (let r = 0; r < rounds; r++) {
  const bare = await time(() => ours.rowNorms({ ...m, n: rows }));
  const fused = await time(() => ours.columnMeanStd({ ...m, norms: true }));
  const before = other
    ? await time(async () => {
        await other.columnMeanStd(m);
        await other.rowNorms({ ...m, n: rows });
      })
    : null;
  rowsOut.push({ bare, fused, before });
  console.log(
    `  round ${r + 1}: bare pass ${bare.toFixed(0)} ms | columnMeanStd + norms ${fused.toFixed(0)} ms (${(fused / bare).toFixed(2)}x)` +
      (before === null ? '' : ` | other build's two calls ${before.toFixed(0)} ms (${(before / bare).toFixed(2)}x)`),
  );
}
const best = (k) => Math.min(...rowsOut.map((x) => x[k]));
console.log(
  `best: bare ${best('bare').toFixed(0)} ms, ours ${best('fused').toFixed(0)} ms` +
    (other ? `, other ${best('before').toFixed(0)} ms` : ''),
);
