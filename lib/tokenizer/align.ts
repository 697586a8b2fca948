/**
 * Finding the tokens two vocabularies share (SALT step 1): for every target (PLM) token, the source (LLM)
 * token with the same canonical form, or "new".
 */
import { describe, SaltRangeError, SaltTypeError } from '../errors.js';
import { KIND_CODE, SPECIAL_ROLES, type SpecialRole, TOKEN_KINDS, type TokenKind, Vocabulary } from './vocabulary.js';

/**
 * How a target token was matched, in the order the rules are tried.
 * - `special-role`: the target token has a special role (bos, eos, ...) that the source also has.
 * - `exact`: same word-start flag and same bytes (normal / control tokens).
 * - `byte`: a byte token on either side (SentencePiece `<0xNN>`, a byte-level single byte >= 0x80)
 *   matched by its byte value to a byte token, or to a single-byte non-word-start text token.
 * - `case-folded`: same word-start flag, bytes equal after lower-casing (option `caseFold`).
 * - `word-start-ignored`: same bytes, other word-start flag (option `ignoreWordStart`).
 * - `case-folded-word-start-ignored`: both relaxations (both options).
 * - `new`: no match; SALT must initialise this row.
 */
export type MatchCategory =
  'special-role' | 'exact' | 'byte' | 'case-folded' | 'word-start-ignored' | 'case-folded-word-start-ignored' | 'new';

/** Categories in the order of their codes in {@link Alignment.category}. */
export const MATCH_CATEGORIES: readonly MatchCategory[] = [
  'special-role',
  'exact',
  'byte',
  'case-folded',
  'word-start-ignored',
  'case-folded-word-start-ignored',
  'new',
];

/** Options of {@link alignVocabularies}. */
export interface AlignOptions {
  /** Also match tokens whose bytes agree after lower-casing (`String.prototype.toLowerCase` on valid UTF-8, ASCII-only otherwise). Default false. */
  caseFold?: boolean;
  /** Also match tokens whose bytes agree but whose word-start flags differ. Default false. */
  ignoreWordStart?: boolean;
  /** Match byte tokens by byte value. Default true. */
  matchBytes?: boolean;
  /** Match special tokens by role. Default true. */
  matchSpecialByRole?: boolean;
  /** Number of samples kept per category in the report (evenly spread over target ids). Default 10. */
  samplesPerCategory?: number;
}

/** One sample pair of an {@link AlignmentReport}. */
export interface MatchSample {
  targetId: number;
  targetPiece: string;
  /** -1 for `new`. */
  sourceId: number;
  sourcePiece?: string;
}

/** Counts and samples of an alignment. */
export interface AlignmentReport {
  /** Name and size of the source vocabulary. */
  source: { name: string; size: number };
  /** Name and size of the target vocabulary. */
  target: { name: string; size: number };
  /** The options in effect (defaults filled in). */
  options: Required<Omit<AlignOptions, 'samplesPerCategory'>>;
  /** Number of target tokens per category (sums to the target size). */
  counts: Record<MatchCategory, number>;
  /** Target tokens matched by any rule (target size minus `new`). */
  matched: number;
  /** Number of distinct source ids used (several target ids may share one source id). */
  distinctSourceIds: number;
  /** Unmatched (`new`) target tokens per kind. */
  newByKind: Record<TokenKind, number>;
  /** Special roles: matched (target id -> source id) and target roles the source lacks. */
  roles: { matched: { role: SpecialRole; targetId: number; sourceId: number }[]; unmatched: SpecialRole[] };
  /** Up to `samplesPerCategory` samples per category. */
  samples: Record<MatchCategory, MatchSample[]>;
}

/** Result of {@link alignVocabularies}: the input SALT's native core consumes, plus provenance. */
export interface Alignment {
  /** For every target id: the matched source id, or -1 for a new token. */
  sourceIdOfTarget: Int32Array;
  /** For every target id: the index of its {@link MatchCategory} in {@link MATCH_CATEGORIES}. */
  category: Uint8Array;
  /** Counts and samples. */
  report: AlignmentReport;
}

const CAT = Object.fromEntries(MATCH_CATEGORIES.map((c, i) => [c, i])) as Record<MatchCategory, number>;
const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const enc = new TextEncoder();

/** Lower-cased bytes: Unicode lower-casing for valid UTF-8, ASCII-only lower-casing otherwise. */
export function lowerCaseBytes(bytes: Uint8Array): Uint8Array {
  try {
    return enc.encode(fatal.decode(bytes).toLowerCase());
  } catch {
    const out = bytes.slice();
    for (let i = 0; i < out.length; i++) if (out[i] >= 0x41 && out[i] <= 0x5a) out[i] += 0x20;
    return out;
  }
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** Adds key -> id unless the key is taken (ids are visited in increasing order, so the lowest id wins). */
function put(map: Map<string, number>, key: string, id: number): void {
  if (!map.has(key)) map.set(key, id);
}

/**
 * Aligns a target vocabulary (the PLM's, V_t) with a source vocabulary (the LLM's, V_s).
 *
 * Rules, tried in order for each target id: special role; exact canonical match (normal and control tokens);
 * byte value; then, if enabled, case-folded, word-start-ignored, and both. Special tokens without a shared
 * role and unused tokens are `new`. Resolution is deterministic: when several source ids have the same
 * key, the lowest id wins; several target ids may map to one source id.
 *
 * @param source - the LLM's vocabulary (rows are copied from it).
 * @param target - the PLM's vocabulary (the new vocabulary).
 * @throws SaltTypeError `E_TYPE` when an argument is not a {@link Vocabulary}; SaltRangeError
 *   `E_ARGUMENT` for an unknown option or a bad `samplesPerCategory`.
 */
export function alignVocabularies(source: Vocabulary, target: Vocabulary, options: AlignOptions = {}): Alignment {
  if (!(source instanceof Vocabulary))
    throw new SaltTypeError(`source must be a Vocabulary, received ${describe(source)}`);
  if (!(target instanceof Vocabulary))
    throw new SaltTypeError(`target must be a Vocabulary, received ${describe(target)}`);
  if (typeof options !== 'object' || options === null)
    throw new SaltTypeError(`options must be an object, received ${describe(options)}`);
  const known = ['caseFold', 'ignoreWordStart', 'matchBytes', 'matchSpecialByRole', 'samplesPerCategory'];
  for (const k of Object.keys(options))
    if (!known.includes(k))
      throw new SaltRangeError(
        `unknown option ${JSON.stringify(k)} of alignVocabularies; expected one of ${known.join(', ')}`,
      );
  for (const k of ['caseFold', 'ignoreWordStart', 'matchBytes', 'matchSpecialByRole'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean')
      throw new SaltTypeError(`options.${k} must be a boolean, received ${describe(options[k])}`);
  }
  const nSamples = options.samplesPerCategory ?? 10;
  if (!Number.isInteger(nSamples) || nSamples < 0)
    throw new SaltRangeError(
      `options.samplesPerCategory must be a non-negative integer, received ${describe(nSamples)}`,
    );
  const opts = {
    caseFold: options.caseFold ?? false,
    ignoreWordStart: options.ignoreWordStart ?? false,
    matchBytes: options.matchBytes ?? true,
    matchSpecialByRole: options.matchSpecialByRole ?? true,
  };

  // Index the source. Keys are the tokens' bytes as latin1 strings (one char per byte), cut from one
  // string of all of them; tokens that start a word and those that do not are kept apart.
  const exact = [new Map<string, number>(), new Map<string, number>()];
  const folded = new Map<string, number>();
  const noWs = new Map<string, number>();
  const foldedNoWs = new Map<string, number>();
  const byteTok = new Int32Array(256).fill(-1);
  const singleByteText = new Int32Array(256).fill(-1);
  const sourceText = latin1(source.bytes);
  for (let id = 0; id < source.size; id++) {
    const k = source.kinds[id];
    const from = source.byteOffsets[id];
    const to = source.byteOffsets[id + 1];
    if (k === KIND_CODE.byte) {
      if (to - from === 1 && byteTok[source.bytes[from]] < 0) byteTok[source.bytes[from]] = id;
      continue;
    }
    if (k !== KIND_CODE.normal && k !== KIND_CODE.control) continue;
    const ws = source.wordStarts[id] === 1;
    const s = sourceText.slice(from, to);
    put(exact[ws ? 1 : 0], s, id);
    if (!ws && to - from === 1 && singleByteText[source.bytes[from]] < 0) singleByteText[source.bytes[from]] = id;
    if (opts.ignoreWordStart) put(noWs, s, id);
    if (opts.caseFold) {
      const f = latin1(lowerCaseBytes(source.bytes.subarray(from, to)));
      put(folded, (ws ? '1' : '0') + f, id);
      if (opts.ignoreWordStart) put(foldedNoWs, f, id);
    }
  }
  const targetRoleOf = new Map<number, SpecialRole[]>();
  for (const role of SPECIAL_ROLES) {
    const id = target.roles.get(role);
    if (id !== undefined) targetRoleOf.set(id, [...(targetRoleOf.get(id) ?? []), role]);
  }

  const n = target.size;
  const targetText = latin1(target.bytes);
  const sourceIdOfTarget = new Int32Array(n).fill(-1);
  const category = new Uint8Array(n).fill(CAT.new);
  const rolesMatched: { role: SpecialRole; targetId: number; sourceId: number }[] = [];
  for (let id = 0; id < n; id++) {
    const roles = targetRoleOf.get(id);
    if (roles && opts.matchSpecialByRole) {
      const role = roles.find((r) => source.roles.has(r));
      if (role) {
        const sid = source.roles.get(role)!;
        sourceIdOfTarget[id] = sid;
        category[id] = CAT['special-role'];
        rolesMatched.push({ role, targetId: id, sourceId: sid });
        continue;
      }
    }
    const k = target.kinds[id];
    if (k === KIND_CODE.special || k === KIND_CODE.unused) continue;
    const from = target.byteOffsets[id];
    const to = target.byteOffsets[id + 1];
    const first = target.bytes[from]; // with to - from === 1, the token's byte
    const ws = target.wordStarts[id] === 1;
    if (k === KIND_CODE.byte) {
      if (opts.matchBytes && to - from === 1) {
        const sid = byteTok[first] >= 0 ? byteTok[first] : singleByteText[first];
        if (sid >= 0) {
          sourceIdOfTarget[id] = sid;
          category[id] = CAT.byte;
        }
      }
      continue;
    }
    const s = targetText.slice(from, to);
    let sid = exact[ws ? 1 : 0].get(s);
    let cat = CAT.exact;
    if (sid === undefined && opts.matchBytes && !ws && to - from === 1 && byteTok[first] >= 0) {
      sid = byteTok[first];
      cat = CAT.byte;
    }
    if (sid === undefined && opts.caseFold) {
      const f = latin1(lowerCaseBytes(target.bytes.subarray(from, to)));
      sid = folded.get((ws ? '1' : '0') + f);
      cat = CAT['case-folded'];
      if (sid === undefined && opts.ignoreWordStart) {
        sid = noWs.get(s);
        cat = CAT['word-start-ignored'];
        if (sid === undefined) {
          sid = foldedNoWs.get(f);
          cat = CAT['case-folded-word-start-ignored'];
        }
      }
    } else if (sid === undefined && opts.ignoreWordStart) {
      sid = noWs.get(s);
      cat = CAT['word-start-ignored'];
    }
    if (sid !== undefined) {
      sourceIdOfTarget[id] = sid;
      category[id] = cat;
    }
  }

  const counts = Object.fromEntries(MATCH_CATEGORIES.map((c) => [c, 0])) as Record<MatchCategory, number>;
  const newByKind = Object.fromEntries(TOKEN_KINDS.map((k) => [k, 0])) as Record<TokenKind, number>;
  const members: number[][] = MATCH_CATEGORIES.map(() => []);
  const used = new Uint8Array(source.size);
  let distinct = 0;
  for (let id = 0; id < n; id++) {
    const c = category[id];
    counts[MATCH_CATEGORIES[c]]++;
    members[c].push(id);
    if (c === CAT.new) newByKind[TOKEN_KINDS[target.kinds[id]]]++;
    const sid = sourceIdOfTarget[id];
    if (sid >= 0 && !used[sid]) {
      used[sid] = 1;
      distinct++;
    }
  }
  const samples = Object.fromEntries(
    MATCH_CATEGORIES.map((c, ci) => {
      const m = members[ci];
      const take = Math.min(nSamples, m.length);
      const out: MatchSample[] = [];
      for (let j = 0; j < take; j++) {
        const tid = m[Math.floor((j * m.length) / take)];
        const sid = sourceIdOfTarget[tid];
        const sample: MatchSample = { targetId: tid, targetPiece: target.pieces[tid], sourceId: sid };
        if (sid >= 0) sample.sourcePiece = source.pieces[sid];
        out.push(sample);
      }
      return [c, out];
    }),
  ) as Record<MatchCategory, MatchSample[]>;
  const unmatchedRoles = SPECIAL_ROLES.filter(
    (r) => target.roles.has(r) && category[target.roles.get(r)!] !== CAT['special-role'],
  );
  return {
    sourceIdOfTarget,
    category,
    report: {
      source: { name: source.name, size: source.size },
      target: { name: target.name, size: target.size },
      options: opts,
      counts,
      matched: n - counts.new,
      distinctSourceIds: distinct,
      newByKind,
      roles: { matched: rolesMatched, unmatched: unmatchedRoles },
      samples,
    },
  };
}

/** One line per category, for logs: `exact 12345 (e.g. "▁the" -> "Ġthe")`. */
export function formatAlignmentReport(report: AlignmentReport): string {
  const lines = [
    `source ${report.source.name} (${report.source.size} tokens) -> target ${report.target.name} (${report.target.size} tokens)`,
  ];
  for (const c of MATCH_CATEGORIES) {
    const s = report.samples[c][0];
    const eg = s
      ? s.sourcePiece !== undefined
        ? ` (e.g. ${JSON.stringify(s.targetPiece)} <- ${JSON.stringify(s.sourcePiece)})`
        : ` (e.g. ${JSON.stringify(s.targetPiece)})`
      : '';
    lines.push(`  ${c.padEnd(32)} ${String(report.counts[c]).padStart(8)}${eg}`);
  }
  lines.push(`  matched ${report.matched}, distinct source ids ${report.distinctSourceIds}`);
  return lines.join('\n');
}
