/**
 * The in-memory transfer engine: builds the new |V_t| x h_s embedding matrix of an LLM for a target
 * vocabulary, by SALT (Semantic Aware Linear Transfer) or one of the baselines, from matrices the
 * caller already holds. See docs/transfer.md.
 */
import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { allocFloat32, allocSharedFloat32, copyRows } from '../kernels/matrixOps.js';
import { checkMatrix, type Matrix } from '../kernels/validate.js';
import { fvt } from './methods/fvt.js';
import { globalLinear } from './methods/globalLinear.js';
import { kernelRidge } from './methods/kernelRidge.js';
import { neighbourMethod } from './methods/neighbours.js';
import { checkSegmentation, type Resolved, resolveOptions, throwIfAborted } from './options.js';
import { partitionTargets } from './partition.js';
import { STREAM } from './random.js';
import { fillStatRows, gatherRowsAsync } from './rows.js';
import { checkFinite, columnMeanStd, columnMeanStdNorms, quantiles, quantilesOf, rowNorms, Yielder } from './stats.js';
import type { TransferArgs, TransferReport, TransferResult, TransferSegmentation, TransferStage } from './types.js';

export * from './types.js';
export { checkTransferOptions, checkSegmentation, throwIfAborted } from './options.js';
export { gatherRows } from './rows.js';

/**
 * Low-level SALT transfer on in-memory matrices: shared target tokens copy their source row (and head
 * row) exactly; every other target token gets a row built by `method` from the shared ("anchor")
 * tokens; tokens without an auxiliary vector get seeded N(mean, std) rows.
 *
 * Same inputs and seed give byte-identical output on the CPU backend.
 *
 * @throws SaltTypeError `E_TYPE` / SaltRangeError `E_SHAPE`, `E_ARGUMENT` for bad arguments (messages name
 *   the argument); SaltError `E_ARGUMENT` when the method needs anchors and there are none, or when
 *   method `'fvt'` has no `segmentation`; `E_NONFINITE`
 *   for NaN or Infinity in an input; `E_ABORTED` when `signal` fires; kernel errors as documented there.
 */
export async function transferEmbeddings(args: TransferArgs): Promise<TransferResult> {
  if (typeof args !== 'object' || args === null)
    throw new SaltTypeError(`transferEmbeddings expects an argument object, received ${describe(args)}`);
  return transferResolved(args, resolveOptions(args));
}

/** @internal What the engine computes from the source alone (see {@link prepareSource}). */
export interface SourcePreparation {
  stats: { mean: Float64Array; std: Float64Array };
  headStats?: { mean: Float64Array; std: Float64Array };
  sourceNorms: ReturnType<typeof quantiles>;
}

/**
 * @internal The engine's source-only preparation: the finite checks of the source and head
 * (E_NON_FINITE naming them), their column statistics and the source's row-norm quantiles, natively
 * off the calling thread. `transfer()` starts it as soon as the source is loaded (while the target
 * is still being prepared) and hands it to every target's {@link transferResolved}; the result is
 * the same as when the engine computes it itself.
 */
export async function prepareSource(source: Matrix, head?: Matrix): Promise<SourcePreparation> {
  // A row's norm (its squares summed in float64, which no float32 values can overflow) is finite
  // exactly when all its values are: the element-wise scan of the source runs only to name the first
  // bad value. The norms and the column statistics come from one pass over the source.
  const { norms, ...stats } = await columnMeanStdNorms(source);
  if (!norms.every(Number.isFinite)) await checkFinite('source', source);
  if (head) await checkFinite('sourceHead', head);
  const headStats = head ? await columnMeanStd(head) : undefined;
  const sourceNorms = await quantilesOf(norms);
  return { stats, headStats, sourceNorms };
}

/**
 * {@link transferEmbeddings} with options already resolved (by `resolveOptions`, e.g. in a folder
 * transfer's frozen plan): the options are not resolved a second time. `prepared`: {@link
 * prepareSource} of exactly `args.source` and `args.sourceHead`, already started (computed here
 * when absent). `shared`: the result's matrices in SharedArrayBuffers (see `ReadFloat32Options.shared`:
 * allocating gigabytes of them forces no garbage collection on the calling thread), for a caller
 * that gives their pages back itself once done with them (`releaseFloat32`), as `transfer()` does
 * after writing them. Internal to the package.
 * @internal
 */
export async function transferResolved(
  args: TransferArgs,
  opts: Readonly<Resolved>,
  prepared?: Promise<SourcePreparation>,
  shared = false,
): Promise<TransferResult> {
  const t0 = performance.now();
  const timings: Record<TransferStage | 'total', number> = {
    prepare: 0,
    lambda: 0,
    search: 0,
    select: 0,
    combine: 0,
    head: 0,
    fallback: 0,
    total: 0,
  };
  const { method, signal } = { ...opts, signal: args.signal };
  const progress = args.onProgress ?? (() => {});
  throwIfAborted(signal);

  // ---- validation
  const S = checkMatrix('source', args.source);
  const Pm = checkMatrix('target', args.target);
  const head = args.sourceHead === undefined ? undefined : checkMatrix('sourceHead', args.sourceHead);
  if (head && head.rows !== S.rows)
    throw new SaltRangeError(`sourceHead.rows must equal source.rows = ${S.rows}, received ${head.rows}`, 'E_SHAPE');
  const aux = args.aux === undefined ? Pm : checkMatrix('aux', args.aux);
  if (aux.rows !== Pm.rows)
    throw new SaltRangeError(`aux.rows must equal target.rows = ${Pm.rows}, received ${aux.rows}`, 'E_SHAPE');
  const Vt = Pm.rows,
    Vs = S.rows,
    hs = S.cols;
  let present: Uint8Array | undefined;
  if (args.auxPresent !== undefined) {
    if (!(args.auxPresent instanceof Uint8Array))
      throw new SaltTypeError(`auxPresent must be a Uint8Array, received ${describe(args.auxPresent)}`);
    if (args.auxPresent.length !== Vt)
      throw new SaltRangeError(
        `auxPresent must have target.rows = ${Vt} elements, received ${args.auxPresent.length}`,
        'E_SHAPE',
      );
    present = args.auxPresent;
  }
  const al = args.alignment;
  if (typeof al !== 'object' || al === null)
    throw new SaltTypeError(
      `alignment must be { sourceIdOfTarget: Int32Array, category?: Uint8Array }, received ${describe(al)}`,
    );
  const sid = al.sourceIdOfTarget;
  if (!(sid instanceof Int32Array))
    throw new SaltTypeError(`alignment.sourceIdOfTarget must be an Int32Array, received ${describe(sid)}`);
  if (sid.length !== Vt)
    throw new SaltRangeError(
      `alignment.sourceIdOfTarget must have target.rows = ${Vt} elements, received ${sid.length}`,
      'E_SHAPE',
    );
  const cat = al.category;
  if (cat !== undefined) {
    if (!(cat instanceof Uint8Array))
      throw new SaltTypeError(`alignment.category must be a Uint8Array, received ${describe(cat)}`);
    if (cat.length !== Vt)
      throw new SaltRangeError(
        `alignment.category must have target.rows = ${Vt} elements, received ${cat.length}`,
        'E_SHAPE',
      );
  }
  for (let t = 0; t < Vt; t++) {
    const s = sid[t];
    if (s < -1 || s >= Vs)
      throw new SaltRangeError(
        `alignment.sourceIdOfTarget[${t}] must be -1 or a source row in [0, ${Vs}), received ${s}`,
      );
  }
  let seg: TransferSegmentation | undefined;
  if (method === 'fvt') {
    if (args.segmentation === undefined)
      throw new SaltError(
        'E_ARGUMENT',
        'method "fvt" needs segmentation (each target token\'s source pieces; see segmentWithVocabulary)',
      );
    seg = checkSegmentation(args.segmentation, Vt, Vs);
  }
  // The scans, row copies, gathers and statistics below run natively off the calling thread; the
  // row loops in JavaScript (the mean and random rows) give the event loop a turn every few milliseconds.
  const y = new Yielder();
  const { stats, headStats, sourceNorms } = await (prepared ?? prepareSource(S, head));
  await checkFinite('target', Pm);
  if (aux !== Pm) await checkFinite('aux', aux, present);
  throwIfAborted(signal);

  // ---- partition the target vocabulary
  const { provenance, anchorTarget, anchorSource, solveIds, fallbackIds, counts } = partitionTargets({
    sid,
    cat,
    present,
    seg,
    method,
  });
  const nAnchors = anchorTarget.length,
    nSolve = solveIds.length,
    nFallback = fallbackIds.length;

  // ---- copy shared rows
  // Large outputs are freed off the calling thread once they are garbage (see allocFloat32).
  const alloc = shared ? allocSharedFloat32 : allocFloat32;
  const embeddings = alloc(Vt * hs);
  const ho = head?.cols ?? 0;
  const headOut = head ? alloc(Vt * ho) : undefined;
  // Natively, off the calling thread (checked above: every id is -1 or a source row).
  await copyRows(S, sid, embeddings);
  if (head) await copyRows(head, sid, headOut!);
  timings.prepare = performance.now() - t0;

  const report: TransferReport = {
    method,
    counts,
    anchors: nAnchors,
    rowNorms: { source: sourceNorms, new: quantiles(new Float64Array(0)) },
    timings,
  };

  // ---- the method
  if (method === 'mean' || method === 'random') {
    const tf = performance.now();
    await fillStatRows(embeddings, solveIds, stats, method, opts.seed, STREAM.rows, y);
    if (headOut) await fillStatRows(headOut, solveIds, headStats!, method, opts.seed, STREAM.headRows, y);
    timings.combine = performance.now() - tf;
    progress('combine', nSolve, nSolve);
  } else if (method === 'fvt') {
    await fvt({
      S,
      head,
      seg: seg!,
      solveIds,
      embeddings,
      headOut,
      report,
      chunkSize: opts.chunkSize,
      kernel: opts.kernel,
      progress,
      signal,
    });
    report.pieces!.unsegmented = nFallback;
  } else if (method === 'salt') {
    await kernelRidge({
      opts,
      aux,
      S,
      head,
      anchorTarget,
      anchorSource,
      solveIds,
      embeddings,
      headOut,
      report,
      progress,
      signal,
    });
  } else {
    const anchorsPlm = await gatherRowsAsync(Pm, anchorTarget);
    if (method === 'global-linear') {
      const anchorsSrc = await gatherRowsAsync(S, anchorSource);
      const anchorsHead = head ? await gatherRowsAsync(head, anchorSource) : undefined;
      await globalLinear({
        opts,
        Pm,
        anchorsPlm,
        anchorsSrc,
        anchorsHead,
        solveIds,
        embeddings,
        headOut,
        report,
        progress,
        signal,
      });
    } else {
      const anchorsAux = aux === Pm ? anchorsPlm : await gatherRowsAsync(aux, anchorTarget);
      // The anchors' LLM rows are not gathered (a copy of 100k x 4,096 rows would be 1.6 GB, twice
      // with an untied head): they are already in the new matrices, at the anchors' target ids, so
      // the kernels read them there; the neighbour lists are translated to target ids.
      await neighbourMethod({
        opts,
        Pm,
        aux,
        anchorsAux,
        anchorsPlm,
        anchorsSrc: { data: embeddings, rows: Vt, cols: hs },
        anchorTarget,
        anchorSource,
        anchorsHead: headOut ? { data: headOut, rows: Vt, cols: ho } : undefined,
        solveIds,
        embeddings,
        headOut,
        report,
        progress,
        signal,
      });
    }
  }

  // ---- fallback rows
  throwIfAborted(signal);
  const tf = performance.now();
  await fillStatRows(embeddings, fallbackIds, stats, 'random', opts.seed, STREAM.rows, y);
  if (headOut) await fillStatRows(headOut, fallbackIds, headStats!, 'random', opts.seed, STREAM.headRows, y);
  timings.fallback = performance.now() - tf;
  if (nFallback > 0) progress('fallback', nFallback, nFallback);

  const newRows = new Int32Array(nSolve + nFallback);
  newRows.set(solveIds);
  newRows.set(fallbackIds, nSolve);
  report.rowNorms.new = await quantilesOf(await rowNorms(embeddings, hs, newRows));
  timings.total = performance.now() - t0;
  return { embeddings, head: headOut, provenance, report };
}
