/**
 * The package's own threads yield to the application's (Linux): the kernels' OpenMP worker threads
 * and a thread that calls lowerThreadPriority() (the tokenizer workers) run at nice 10, the calling
 * thread keeps its priority.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { rowNorms } from '../lib/kernels/matrixOps.js';
import { addonPath } from '../lib/kernels/native.js';

/** Nice value in a /proc stat line (its 19th field). */
function niceOf(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** Nice value of each thread of this process. */
function niceByThread(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    out.set(Number(tid), niceOf(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')));
  }
  return out;
}

describe.runIf(process.platform === 'linux')('thread priority', () => {
  it('a kernel leaves the calling thread as it was and runs its OpenMP workers at nice 10', async () => {
    const before = niceByThread();
    const self = niceOf(readFileSync('/proc/thread-self/stat', 'utf8'));
    const rows = 4096;
    await rowNorms({ data: new Float32Array(rows * 512).fill(1), rows, cols: 512 });
    const after = niceByThread();
    expect(niceOf(readFileSync('/proc/thread-self/stat', 'utf8'))).toBe(self); // the calling thread
    const lowered = [...after].filter(([tid, nice]) => nice === 10 && before.get(tid) !== 10);
    const known = [...after].filter(([tid]) => before.has(tid) && before.get(tid) === 10);
    // With one core OpenMP has no worker thread to lower.
    if (availableParallelism() > 1) expect(lowered.length + known.length).toBeGreaterThan(0);
  });

  it('lowerThreadPriority() lowers only the thread that calls it', async () => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      const fs = require('node:fs');
      const nice = () => { const s = fs.readFileSync('/proc/thread-self/stat', 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]); };
      const before = nice();
      require(${JSON.stringify(addonPath())}).lowerThreadPriority();
      parentPort.postMessage([before, nice()]);`;
    const self = niceOf(readFileSync('/proc/thread-self/stat', 'utf8'));
    const w = new Worker(code, { eval: true });
    const [before, after] = await new Promise<[number, number]>((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
    });
    await w.terminate();
    expect(after).toBe(Math.max(before, 10));
    expect(niceOf(readFileSync('/proc/thread-self/stat', 'utf8'))).toBe(self);
  });
});
