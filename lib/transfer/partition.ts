/**
 * The partition of a target vocabulary: which tokens copy a source row, which are anchors, which
 * get a row from the method, and which fall back to a random row. The anchor rule lives here only;
 * the engine, the evaluation and `inspect` all take it from this module.
 */
import { SaltError } from '../errors.js';
import { MATCH_CATEGORIES } from '../tokenizer/align.js';
import type { TransferMethod, TransferSegmentation } from './types.js';

/** Category code of a special token matched by role (`alignVocabularies`). */
export const SPECIAL_ROLE = MATCH_CATEGORIES.indexOf('special-role');

/** Provenance codes of {@link TransferResult.provenance} (names in `PROVENANCE`). */
export const P = { copied: 0, special: 1, solved: 2, fallback: 3 } as const;

/**
 * The anchor rule: a target token is an anchor when it is shared with the source (it has a source
 * id), is not a special token matched by role, and has a vector in the aux space.
 */
export function isAnchor(t: number, sid: Int32Array, cat?: Uint8Array, present?: Uint8Array): boolean {
  return sid[t] >= 0 && (cat === undefined || cat[t] !== SPECIAL_ROLE) && (present === undefined || present[t] !== 0);
}

/** The anchors of a target vocabulary (see {@link isAnchor}), in id order. */
export function anchorTokens(sid: Int32Array, cat?: Uint8Array, present?: Uint8Array): Int32Array {
  const out: number[] = [];
  for (let t = 0; t < sid.length; t++) if (isAnchor(t, sid, cat, present)) out.push(t);
  return Int32Array.from(out);
}

/** A target vocabulary split by provenance. */
export interface Partition {
  /** Provenance code per target token ({@link P}). */
  provenance: Uint8Array;
  /** Anchor target ids and their source ids (same order). */
  anchorTarget: Int32Array;
  anchorSource: Int32Array;
  /** Tokens the method builds, and tokens that get a seeded random row. */
  solveIds: Int32Array;
  fallbackIds: Int32Array;
  /** Counts per provenance. */
  counts: { copied: number; special: number; solved: number; fallback: number };
}

/**
 * Splits the target vocabulary: shared tokens copy (special ones by role); the others are solved
 * when the method can build them (an aux vector, or pieces for `'fvt'`; always for `'mean'` and
 * `'random'`), else they fall back. E_ARGUMENT when the method needs anchors and there are none.
 */
export function partitionTargets(args: {
  sid: Int32Array;
  cat?: Uint8Array;
  present?: Uint8Array;
  seg?: TransferSegmentation;
  method: TransferMethod;
}): Partition {
  const { sid, cat, present, seg, method } = args;
  const Vt = sid.length;
  const provenance = new Uint8Array(Vt);
  const counts = { copied: 0, special: 0, solved: 0, fallback: 0 };
  let nAnchors = 0;
  for (let t = 0; t < Vt; t++) {
    const has = present === undefined || present[t] !== 0;
    if (sid[t] >= 0) {
      const special = cat !== undefined && cat[t] === SPECIAL_ROLE;
      provenance[t] = special ? P.special : P.copied;
      if (special) counts.special++;
      else counts.copied++;
      if (isAnchor(t, sid, cat, present)) nAnchors++;
    } else if (seg ? seg.offsets[t + 1] > seg.offsets[t] : has || method === 'random' || method === 'mean') {
      provenance[t] = P.solved;
      counts.solved++;
    } else {
      provenance[t] = P.fallback;
      counts.fallback++;
    }
  }
  const anchorTarget = new Int32Array(nAnchors);
  const anchorSource = new Int32Array(nAnchors);
  const solveIds = new Int32Array(counts.solved);
  const fallbackIds = new Int32Array(counts.fallback);
  let a = 0,
    s = 0,
    f = 0;
  for (let t = 0; t < Vt; t++) {
    if (provenance[t] === P.copied && isAnchor(t, sid, cat, present)) {
      anchorTarget[a] = t;
      anchorSource[a++] = sid[t];
    } else if (provenance[t] === P.solved) solveIds[s++] = t;
    else if (provenance[t] === P.fallback) fallbackIds[f++] = t;
  }
  const needsAnchors = method !== 'mean' && method !== 'random' && method !== 'fvt';
  if (needsAnchors && nAnchors === 0) {
    throw new SaltError(
      'E_ARGUMENT',
      `method ${JSON.stringify(method)} needs shared tokens with an aux vector as anchors, but alignment.sourceIdOfTarget shares none (0 of ${Vt} target tokens usable)`,
    );
  }
  return { provenance, anchorTarget, anchorSource, solveIds, fallbackIds, counts };
}
