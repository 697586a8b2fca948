/**
 * `salt-transfer inspect <token>`: what the transfer does with one target token: its canonical form,
 * the source token it shares, or its neighbours (sparsemax weights and, for the salt methods, the
 * regression coefficients) and the row the engine builds for it.
 */
import { describe, SaltError, SaltTypeError } from '../errors.js';
import { type Backend, solveNeighbourhoods, sparsemax, topkCosine } from '../kernels/kernels.js';
import { type AlignOptions, MATCH_CATEGORIES, type MatchCategory } from '../tokenizer/align.js';
import { DEFAULT_K } from '../transfer/options.js';
import { anchorTokens } from '../transfer/partition.js';
import { gatherRows, gatherRowsAsync } from '../transfer/rows.js';
import { transferEmbeddings, type TransferMethod } from '../transfer/transferEmbeddings.js';
import { type AuxSpec, openSource, prepareTarget } from './load.js';
import { pieceAt } from './preparer.js';

/** Arguments of {@link inspectToken}. */
export interface InspectArgs {
  source: string;
  target: string;
  aux?: AuxSpec;
  /** The target token: its stored piece (e.g. "Ġhello", "▁hello", "##ing"), or its text with a leading space for a word start (" hello"). */
  token: string;
  /** `'salt-local'` (default), `'salt-paper'`, `'salt-ridge'` or `'focus'`: the neighbour methods (the default transfer method `'salt'` fits one regression over all anchors and has no per-token neighbourhood to show). */
  method?: TransferMethod;
  K?: number;
  lambda?: 'auto' | number;
  align?: AlignOptions;
  backend?: Backend;
  threads?: number;
}

/** A neighbour of an inspected token. */
export interface InspectNeighbour {
  targetId: number;
  sourceId: number;
  piece: string;
  cosine: number;
  /** Sparsemax weight. */
  weight: number;
  /** Regression coefficient (salt methods; the weight for focus). */
  coefficient: number;
}

/** Result of {@link inspectToken}. */
export interface InspectResult {
  token: { id: number; piece: string; kind: string; wordStart: boolean; text: string };
  status: 'copied' | 'special' | 'solved' | 'fallback';
  /** For shared tokens: the source token copied and the match category. */
  shared?: { sourceId: number; piece: string; category: MatchCategory };
  method?: TransferMethod;
  lambda?: number;
  neighbours?: InspectNeighbour[];
  /** Relative residual ||c A - x|| / ||x|| (salt methods). */
  residual?: number;
  /** Largest |difference| between the row recomputed here and the row the engine builds (0 expected). */
  maxAbsDiffToEngine?: number;
  /** A human-readable summary. */
  text: string;
}

const INSPECTABLE: readonly TransferMethod[] = ['salt-local', 'salt-paper', 'salt-ridge', 'focus'];

/** Inspects one target token (see the module comment). */
export async function inspectToken(args: InspectArgs): Promise<InspectResult> {
  if (typeof args?.token !== 'string' || args.token === '')
    throw new SaltTypeError(`token must be a non-empty string, received ${describe(args?.token)}`);
  const method = args.method ?? 'salt-local';
  if (!INSPECTABLE.includes(method))
    throw new SaltError(
      'E_ARGUMENT',
      `inspect supports the methods ${INSPECTABLE.join(', ')}, received ${describe(method)}`,
    );
  const kernel = { backend: args.backend, threads: args.threads };
  // The same preparation as transfer and evaluate (a worker thread when installed), with the token looked up there.
  const opened = await openSource(args.source, true, undefined, undefined, [args.target]);
  const { src, preparer } = opened;
  try {
    const pair = await prepareTarget(preparer, args.target, args.aux, args.align ?? {}, () => undefined, {
      lookup: args.token,
    });
    const { token: found, sourcePieces, targetPieces } = pair.lookup!;
    if (!found)
      throw new SaltError(
        'E_NOT_FOUND',
        `token ${JSON.stringify(args.token)} is not in the target vocabulary of ${JSON.stringify(args.target)} (give its stored piece, e.g. "Ġword" or "▁word", or " word" for a word start)`,
      );
    const { id, text } = found;
    const token = { id, piece: found.piece, kind: found.kind, wordStart: found.wordStart, text };
    const head = `target token ${id} ${JSON.stringify(token.piece)}: kind ${token.kind}, word start ${token.wordStart}, text ${JSON.stringify(text)}`;
    const { sourceIdOfTarget, category } = pair.alignment;
    const sid = sourceIdOfTarget[id];
    if (sid >= 0) {
      const cat = MATCH_CATEGORIES[category[id]];
      const shared = { sourceId: sid, piece: pieceAt(sourcePieces, sid), category: cat };
      return {
        token,
        status: cat === 'special-role' ? 'special' : 'copied',
        shared,
        text: `${head}\nshared (${cat}): copies source token ${sid} ${JSON.stringify(shared.piece)} exactly`,
      };
    }
    const present = pair.auxPresent;
    if (present && !present[id])
      return { token, status: 'fallback', text: `${head}\nno auxiliary vector: seeded N(mean, std) row` };
    // The engine on a sub-problem: the anchors (same order as in the full transfer) and this token.
    const anchorIds = Array.from(anchorTokens(sourceIdOfTarget, category, present));
    if (!anchorIds.length)
      throw new SaltError(
        'E_ARGUMENT',
        `no shared tokens with an aux vector between ${JSON.stringify(args.source)} and ${JSON.stringify(args.target)}: nothing to inspect`,
      );
    const subIds = Int32Array.from([...anchorIds, id]);
    const aux = pair.aux ?? pair.target;
    const sub = await transferEmbeddings({
      source: src.embeddings,
      target: await gatherRowsAsync(pair.target, subIds),
      aux: pair.aux ? await gatherRowsAsync(pair.aux, subIds) : undefined,
      alignment: {
        sourceIdOfTarget: Int32Array.from(subIds, (t) => sourceIdOfTarget[t]),
        category: Uint8Array.from(subIds, (t) => category[t]),
      },
      method,
      K: args.K,
      lambda: method === 'focus' ? undefined : args.lambda,
      ...kernel,
    });
    const hs = src.embeddings.cols;
    const engineRow = sub.embeddings.subarray(anchorIds.length * hs, anchorIds.length * hs + hs);
    const anchorsAux = await gatherRowsAsync(aux, Int32Array.from(anchorIds));
    const K = Math.min(args.K ?? DEFAULT_K, anchorIds.length);
    const top = await topkCosine(gatherRows(aux, Int32Array.of(id)), anchorsAux, K, kernel);
    const sm = await sparsemax({ data: top.scores, rows: 1, cols: K }, kernel);
    const k = sm.support[0];
    const nbr = { offsets: Int32Array.of(0, k), indices: top.indices.slice(0, k) };
    const weights = sm.weights.slice(0, k);
    let coefficients: Float32Array = weights;
    let residual: number | undefined;
    let row: Float32Array;
    const anchorsSrc = await gatherRowsAsync(
      src.embeddings,
      Int32Array.from(anchorIds, (t) => sourceIdOfTarget[t]),
    );
    const lambda = sub.report.lambda?.value;
    if (method === 'focus') {
      row = new Float32Array(hs);
      for (let j = 0; j < k; j++)
        for (let c = 0; c < hs; c++) row[c] += weights[j] * anchorsSrc.data[nbr.indices[j] * hs + c];
    } else {
      const res = await solveNeighbourhoods({
        neighbours: nbr,
        queries: gatherRows(pair.target, Int32Array.of(id)),
        anchorsPlm: await gatherRowsAsync(pair.target, Int32Array.from(anchorIds)),
        anchorsSrc,
        lambda: lambda ?? 0,
        prior: method === 'salt-local' ? weights : undefined,
        returnCoefficients: true,
        ...kernel,
      });
      coefficients = res.coefficients!;
      residual = res.residual[0];
      row = res.out;
    }
    let diff = 0;
    for (let c = 0; c < hs; c++) diff = Math.max(diff, Math.abs(row[c] - engineRow[c]));
    const neighbours: InspectNeighbour[] = [];
    for (let j = 0; j < k; j++) {
      const t = anchorIds[nbr.indices[j]];
      neighbours.push({
        targetId: t,
        sourceId: sourceIdOfTarget[t],
        piece: pieceAt(targetPieces, t),
        cosine: top.scores[j],
        weight: weights[j],
        coefficient: coefficients[j],
      });
    }
    const lines = [
      head,
      `new token: method ${method}${lambda !== undefined ? `, lambda ${lambda}${sub.report.lambda?.auto ? ' (auto)' : ''}` : ''}; ${k} neighbours (sparsemax support of the top ${K} of ${anchorIds.length} anchors)` +
        (residual !== undefined ? `; relative residual ${residual.toFixed(3)}` : ''),
      `  ${'piece'.padEnd(20)} ${'cosine'.padStart(7)} ${'weight'.padStart(7)} ${'coef'.padStart(8)}`,
      ...neighbours.map(
        (n) =>
          `  ${JSON.stringify(n.piece).padEnd(20)} ${n.cosine.toFixed(3).padStart(7)} ${n.weight.toFixed(3).padStart(7)} ${n.coefficient.toFixed(4).padStart(8)}`,
      ),
      `row recomputed here vs the engine's row: max |diff| ${diff.toExponential(2)}`,
    ];
    return {
      token,
      status: 'solved',
      method,
      lambda,
      neighbours,
      residual,
      maxAbsDiffToEngine: diff,
      text: lines.join('\n'),
    };
  } finally {
    await opened.close();
  }
}
