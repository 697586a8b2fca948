/**
 * Re-tokenising target tokens with the source vocabulary, for FVT (Fast Vocabulary Transfer, Gee et al.
 * 2022: a new token's row is the mean of the source rows of the pieces the source tokenizer splits its
 * text into).
 *
 * We hold vocabularies, not full tokenizer encoders (no BPE merge ranks, no unigram scores / Viterbi),
 * so the source tokenizer's own segmentation is approximated by greedy longest-prefix matching over the
 * source vocabulary's canonical tokens (what WordPiece does). For BPE and unigram sources the pieces can
 * differ from what the real tokenizer would produce; they always concatenate to the token's bytes.
 */
import { describe, SaltRangeError, SaltTypeError } from '../errors.js';
import { KIND_CODE, Vocabulary } from './vocabulary.js';

/** For every target token, the source token ids its text splits into, CSR form (an empty list: not segmented). */
export interface Segmentation {
  /** Length |V_t| + 1; target token t owns `indices[offsets[t] .. offsets[t + 1])`. */
  offsets: Int32Array;
  /** Source token ids, in text order. */
  indices: Int32Array;
}

/** Options of {@link segmentWithVocabulary}. */
export interface SegmentOptions {
  /**
   * Per target token, a source id its segmentation must not use, or -1 (length |V_t|). Pass the
   * alignment's `sourceIdOfTarget` for evaluation: a shared token's segmentation would otherwise be the
   * token itself, which makes FVT trivially exact on held-out tokens. New tokens (-1) are unaffected,
   * and shared tokens are copied by a transfer anyway, so one segmentation serves both.
   */
  exclude?: Int32Array;
}

/** A byte trie over canonical bytes; per node the lowest source id with those bytes, per word-start flag. */
class Trie {
  /** children[node]: byte -> child node. */
  private readonly children: Map<number, number>[] = [new Map()];
  /** Source id of a word-start / continuation token ending at each node, or -1. */
  readonly start: number[] = [-1];
  readonly cont: number[] = [-1];

  insert(bytes: Uint8Array, wordStart: boolean, id: number): void {
    let node = 0;
    for (const b of bytes) {
      let next = this.children[node].get(b);
      if (next === undefined) {
        next = this.children.length;
        this.children.push(new Map());
        this.start.push(-1);
        this.cont.push(-1);
        this.children[node].set(b, next);
      }
      node = next;
    }
    const ids = wordStart ? this.start : this.cont;
    if (ids[node] < 0) ids[node] = id;
  }

  /**
   * Longest match at `bytes[from ..]` (length >= 1) among tokens of one word-start flag, skipping source
   * id `skip`; returns [id, length] or null.
   */
  longest(bytes: Uint8Array, from: number, wordStart: boolean, skip: number): [number, number] | null {
    const ids = wordStart ? this.start : this.cont;
    let node = 0,
      best: [number, number] | null = null;
    for (let p = from; p < bytes.length; p++) {
      const next = this.children[node].get(bytes[p]);
      if (next === undefined) break;
      node = next;
      const id = ids[node];
      if (id >= 0 && id !== skip) best = [id, p - from + 1];
    }
    return best;
  }
}

/**
 * Segments every target token's canonical bytes into source tokens by greedy longest-prefix match.
 *
 * - The first piece carries the target token's word-start flag: a word-start target token begins with
 *   the longest matching word-start source token; if none matches, the longest non-word-start one. A
 *   non-word-start target token begins with a non-word-start piece.
 * - Every following piece is a continuation (non-word-start) token.
 * - Where no text token matches at a position, a source byte token (`kind: 'byte'`, e.g. `<0xE2>`) of
 *   that byte is used; where there is none either, the target token is not segmented (empty list).
 * - Source tokens of kind `special` / `unused` are never pieces; target tokens of those kinds are not
 *   segmented. A target token with no bytes (a bare word-start space, "▁") is segmented only into a
 *   source token that is a bare word-start space too.
 * - When several source tokens have the same bytes and flag, the lowest id is used. Deterministic.
 *
 * @param source - the vocabulary whose tokens are the pieces (the LLM's).
 * @param target - the vocabulary whose tokens are segmented (the PLM's).
 * @param options - see {@link SegmentOptions}.
 * @returns the {@link Segmentation} (offsets of length `target.size + 1`).
 * @throws SaltTypeError `E_TYPE` when a vocabulary is not a {@link Vocabulary} or `exclude` not an Int32Array;
 *   SaltRangeError `E_SHAPE` when `exclude` has the wrong length.
 */
export function segmentWithVocabulary(
  source: Vocabulary,
  target: Vocabulary,
  options: SegmentOptions = {},
): Segmentation {
  if (!(source instanceof Vocabulary))
    throw new SaltTypeError(`source must be a Vocabulary, received ${describe(source)}`);
  if (!(target instanceof Vocabulary))
    throw new SaltTypeError(`target must be a Vocabulary, received ${describe(target)}`);
  if (typeof options !== 'object' || options === null)
    throw new SaltTypeError(`options must be an object, received ${describe(options)}`);
  const exclude = options.exclude;
  if (exclude !== undefined) {
    if (!(exclude instanceof Int32Array))
      throw new SaltTypeError(`options.exclude must be an Int32Array, received ${describe(exclude)}`);
    if (exclude.length !== target.size)
      throw new SaltRangeError(
        `options.exclude must have target.size = ${target.size} elements, received ${exclude.length}`,
        'E_SHAPE',
      );
  }
  const trie = new Trie();
  const byteId = new Int32Array(256).fill(-1);
  for (let id = 0; id < source.size; id++) {
    const k = source.kinds[id];
    if (k === KIND_CODE.special || k === KIND_CODE.unused) continue;
    const bytes = source.bytesOf(id);
    if (k === KIND_CODE.byte) {
      if (bytes.length === 1 && byteId[bytes[0]] < 0) byteId[bytes[0]] = id;
      continue;
    }
    trie.insert(bytes, source.wordStarts[id] !== 0, id);
  }
  const Vt = target.size;
  const offsets = new Int32Array(Vt + 1);
  const out: number[] = [];
  const pieces: number[] = [];
  for (let t = 0; t < Vt; t++) {
    pieces.length = 0;
    const k = target.kinds[t];
    if (k !== KIND_CODE.special && k !== KIND_CODE.unused) {
      const skip = exclude === undefined ? -1 : exclude[t];
      const bytes = target.bytesOf(t);
      const ws = target.wordStarts[t] !== 0;
      if (bytes.length === 0) {
        if (ws && trie.start[0] >= 0 && trie.start[0] !== skip) pieces.push(trie.start[0]);
      } else {
        let p = 0,
          ok = true;
        while (p < bytes.length) {
          let m = p === 0 && ws ? trie.longest(bytes, p, true, skip) : null;
          m ??= trie.longest(bytes, p, false, skip);
          if (m === null) {
            const b = byteId[bytes[p]];
            if (b < 0 || b === skip) {
              ok = false;
              break;
            }
            m = [b, 1];
          }
          pieces.push(m[0]);
          p += m[1];
        }
        if (!ok) pieces.length = 0;
      }
    }
    for (const id of pieces) out.push(id);
    offsets[t + 1] = out.length;
  }
  return { offsets, indices: Int32Array.from(out) };
}
