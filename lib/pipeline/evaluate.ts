/** {@link evaluateModels}: the evaluation of methods on two model folders. */
import { describe, SaltTypeError } from '../errors.js';
import type { AlignmentReport, AlignOptions } from '../tokenizer/align.js';
import { type EvaluateArgs, evaluateTransfer, type EvaluationResult } from '../transfer/evaluateTransfer.js';
import { type AuxSpec, openSource, prepareTarget } from './load.js';

/** Arguments of {@link evaluateModels}. */
export interface EvaluateModelsArgs extends Omit<
  EvaluateArgs,
  'source' | 'target' | 'aux' | 'auxPresent' | 'alignment' | 'segmentation'
> {
  source: string;
  target: string;
  aux?: AuxSpec;
  align?: AlignOptions;
  /** Parse tokenizers and align in a worker thread when available (default true), as in {@link transfer}. */
  worker?: boolean;
}

/** {@link evaluateTransfer} on two model folders (source LLM, target PLM) and an optional aux space; tokenizers are parsed and aligned as in {@link transfer}. */
export async function evaluateModels(args: EvaluateModelsArgs): Promise<{
  result: EvaluationResult;
  alignment: Omit<AlignmentReport, 'samples'>;
  prepareThread: 'worker' | 'main';
  timings: { prepare: number; evaluate: number };
}> {
  if (args === null || typeof args !== 'object')
    throw new SaltTypeError(`evaluateModels() takes an options object, received ${describe(args)}`);
  const { source, target, aux, align, worker, ...rest } = args;
  const t0 = performance.now();
  const opened = await openSource(source, worker !== false, undefined, undefined, [target]);
  const { src, preparer } = opened;
  try {
    // The segmentation (method 'fvt', in the default list too) is computed only when fvt is evaluated.
    const fvt =
      rest.methods === undefined || rest.methods.some((m) => (typeof m === 'string' ? m : m?.method) === 'fvt');
    const pair = await prepareTarget(preparer, target, aux, align ?? {}, () => undefined, { segment: fvt });
    const t1 = performance.now();
    const result = await evaluateTransfer({
      ...rest,
      source: src.embeddings,
      target: pair.target,
      aux: pair.aux,
      auxPresent: pair.auxPresent,
      alignment: pair.alignment,
      segmentation: pair.segmentation,
    });
    const { samples: _s, ...alignment } = pair.alignment.report;
    void _s;
    return {
      result,
      alignment,
      prepareThread: preparer.thread,
      timings: { prepare: t1 - t0, evaluate: performance.now() - t1 },
    };
  } finally {
    await opened.close();
  }
}
