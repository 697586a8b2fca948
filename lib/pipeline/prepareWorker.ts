/**
 * Worker thread of {@link openPreparer} (lib/pipeline/preparer.ts): loads the source vocabulary once, then
 * answers one `prepare` message at a time; typed arrays are transferred, not copied.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { binding } from '../kernels/native.js';
import type { AlignOptions } from '../tokenizer/align.js';
import { loadVocabulary } from '../tokenizer/plainVocabularies.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import { packedBuffers, preloadTarget, type PrepareOptions, prepareTokens } from './preparer.js';

// The tokenizer work yields the cores to the calling application's threads (its event loop, V8's
// collector helpers) on a busy machine: the worker's own thread at a lower priority.
try {
  binding().lowerThreadPriority();
} catch {
  // no addon: the tokenizer loaders work without it
}

const port = parentPort!;
let source: Vocabulary | null = null;

// A loader (see openPreparer's `preload`): parses one target's tokenizer files, posts them and ends.
const preload = (workerData as { preload?: string }).preload;
if (typeof preload === 'string') {
  preloadTarget(preload).then(
    (value) => {
      port.postMessage({ ok: true, value }, packedBuffers(value.vocabulary));
      port.close();
    },
    (err: unknown) => {
      const e = err as { name?: string; code?: string; message?: string };
      port.postMessage({
        ok: false,
        error: { name: e?.name ?? 'Error', code: e?.code, message: e?.message ?? String(err) },
      });
      port.close();
    },
  );
}

port.on(
  'message',
  async (
    m:
      | { op: 'source' }
      | { op: 'prepare'; target: string; auxFile?: string; align: AlignOptions; options: PrepareOptions },
  ) => {
    try {
      if (m.op === 'source') {
        source = await loadVocabulary((workerData as { source: string }).source);
        port.postMessage({ ok: true, value: source.size });
        return;
      }
      const r = await prepareTokens(source!, m.target, m.auxFile, m.align, m.options);
      const list: ArrayBuffer[] = [r.sourceIdOfTarget.buffer as ArrayBuffer, r.category.buffer as ArrayBuffer];
      if (r.aux) list.push(r.aux.data.buffer as ArrayBuffer);
      if (r.auxPresent) list.push(r.auxPresent.buffer as ArrayBuffer);
      if (r.lookup)
        for (const t of [r.lookup.sourcePieces, r.lookup.targetPieces])
          list.push(t.bytes.buffer as ArrayBuffer, t.offsets.buffer as ArrayBuffer);
      if (r.segmentation)
        list.push(r.segmentation.offsets.buffer as ArrayBuffer, r.segmentation.indices.buffer as ArrayBuffer);
      port.postMessage({ ok: true, value: r }, list);
    } catch (err) {
      const e = err as { name?: string; code?: string; message?: string };
      port.postMessage({
        ok: false,
        error: { name: e?.name ?? 'Error', code: e?.code, message: e?.message ?? String(err) },
      });
    }
  },
);
