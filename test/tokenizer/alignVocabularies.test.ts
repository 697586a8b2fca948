import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Tokenizer, WordPiece, wordPieceDecoder } from 'tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';

import { fetchNpmPackage } from '../../lib/data/npmFetch.js';
import { SaltRangeError, SaltTypeError } from '../../lib/errors.js';
import {
  alignVocabularies,
  formatAlignmentReport,
  loadGgufVocabulary,
  loadHfTokenizerFolder,
  loadVocabTxt,
  MATCH_CATEGORIES,
  piecesVocabulary,
  useLiteVocabulary,
  type Vocabulary,
  wordListVocabulary,
} from '../../lib/tokenizer/index.js';
import { gloveWords, lenmlModels, llamaCppModels, useLitePieces } from './realData.js';

const cat = (name: (typeof MATCH_CATEGORIES)[number]) => MATCH_CATEGORIES.indexOf(name);

describe('alignVocabularies on small hand-made vocabularies', () => {
  // source: an LLM with SentencePiece spelling and byte fallback
  const src = piecesVocabulary(
    [
      '<unk>',
      '<s>',
      '</s>',
      '<0xE2>',
      '<0x41>',
      '\u2581Hello',
      'ing',
      '\u2581the',
      '\u2581The',
      'A',
      '\u2581world',
      '<unused0>',
    ],
    {
      convention: 'sentencepiece',
      byteFallback: true,
      specialIds: [0, 1, 2],
      name: 'src',
    },
  );
  // target: a byte-level BPE PLM. "â" is the byte-level spelling of byte 0xE2, "Ġ" of the space.
  const tgt = piecesVocabulary(
    ['<|endoftext|>', 'ĠHello', 'ing', 'Ġhello', 'â', 'ĠTHE', 'world', 'Ġworld', 'Ġunknown', '<unused0>', 'A', 'Ġthe'],
    {
      convention: 'byte-level',
      specialIds: [0],
      name: 'tgt',
    },
  );

  it('default: exact canonical matches, byte tokens by value, special by role, the rest new', () => {
    const a = alignVocabularies(src, tgt);
    // hand-derived expectations, target id by target id
    expect(Array.from(a.sourceIdOfTarget)).toEqual([2, 5, 6, -1, 3, -1, -1, 10, -1, -1, 9, 7]);
    expect(Array.from(a.category).map((c) => MATCH_CATEGORIES[c])).toEqual([
      'special-role', // <|endoftext|> is eos by name, like </s>
      'exact',
      'exact',
      'new',
      'byte',
      'new',
      'new',
      'exact',
      'new',
      'new', // placeholders are never matched
      'exact',
      'exact',
    ]);
    expect(a.report.counts).toEqual({
      'special-role': 1,
      exact: 5,
      byte: 1,
      'case-folded': 0,
      'word-start-ignored': 0,
      'case-folded-word-start-ignored': 0,
      new: 5,
    });
    expect(a.report.matched).toBe(7);
    expect(a.report.newByKind).toEqual({ normal: 4, special: 0, byte: 0, control: 0, unused: 1 });
    expect(a.report.roles.matched).toEqual([{ role: 'eos', targetId: 0, sourceId: 2 }]);
    expect(formatAlignmentReport(a.report)).toContain('exact');
  });

  it('caseFold and ignoreWordStart add separately reported matches; lowest source id wins', () => {
    const a = alignVocabularies(src, tgt, { caseFold: true, ignoreWordStart: true });
    expect(a.sourceIdOfTarget[3]).toBe(5); // Ġhello -> ▁Hello (case-folded)
    expect(a.category[3]).toBe(cat('case-folded'));
    expect(a.sourceIdOfTarget[5]).toBe(7); // ĠTHE -> ▁the (id 7) rather than ▁The (id 8)
    expect(a.category[5]).toBe(cat('case-folded'));
    expect(a.sourceIdOfTarget[6]).toBe(10); // world -> ▁world, word start ignored
    expect(a.category[6]).toBe(cat('word-start-ignored'));
    expect(a.report.counts['case-folded']).toBe(2);
    expect(a.report.counts['word-start-ignored']).toBe(1);
    expect(a.report.distinctSourceIds).toBe(7); // ▁Hello, ▁the and ▁world each serve two target ids
    const only = alignVocabularies(src, tgt, { ignoreWordStart: true });
    expect(only.category[3]).toBe(cat('new'));
    expect(only.category[6]).toBe(cat('word-start-ignored'));
  });

  it('a SentencePiece byte token matches a single-byte text token when the source has no byte token', () => {
    const words = piecesVocabulary(['A', 'x'], { convention: 'byte-level' });
    const a = alignVocabularies(words, src);
    expect(a.sourceIdOfTarget[4]).toBe(0); // <0x41> -> "A"
    expect(a.category[4]).toBe(cat('byte'));
    expect(alignVocabularies(words, src, { matchBytes: false }).category[4]).toBe(cat('new'));
  });

  it('is deterministic', () => {
    const a = alignVocabularies(src, tgt, { caseFold: true });
    const b = alignVocabularies(src, tgt, { caseFold: true });
    expect(a.sourceIdOfTarget).toEqual(b.sourceIdOfTarget);
    expect(a.report).toEqual(b.report);
  });

  it('rejects bad arguments with exact classes and codes', () => {
    expect(() => alignVocabularies({} as never, tgt)).toThrow(SaltTypeError);
    expect(() => alignVocabularies({} as never, tgt)).toThrow(
      expect.objectContaining({ code: 'E_TYPE', message: 'source must be a Vocabulary, received object {}' }),
    );
    expect(() => alignVocabularies(src, tgt, { casefold: true } as never)).toThrow(SaltRangeError);
    expect(() => alignVocabularies(src, tgt, { casefold: true } as never)).toThrow(
      expect.objectContaining({ code: 'E_ARGUMENT', message: expect.stringContaining('unknown option "casefold"') }),
    );
    expect(() => alignVocabularies(src, tgt, { caseFold: 'yes' } as never)).toThrow(
      expect.objectContaining({ code: 'E_TYPE' }),
    );
    expect(() => alignVocabularies(src, tgt, { samplesPerCategory: -1 })).toThrow(
      expect.objectContaining({ code: 'E_ARGUMENT' }),
    );
  });
});

type Counts = Record<(typeof MATCH_CATEGORIES)[number], number>;

/**
 * Independent oracle for the text-matching categories (exact, byte for text tokens, case-folded,
 * word-start-ignored, case-folded-word-start-ignored, new). It works on the strings that reference decoders
 * produce for each token after a fixed anchor, where a word start shows as one leading space, and applies
 * the documented rules to those strings with plain Sets:
 * - exact: the target text is a source text;
 * - byte: a one-character ASCII text without leading space, and the source has a `<0xNN>` byte piece of that
 *   value (`sourceByteValues`);
 * - case-folded: `toLowerCase()` of the target text is `toLowerCase()` of a source text;
 * - word-start-ignored: the text without its leading space (if any) equals a source text without its leading
 *   space; case-folded-word-start-ignored: the same after `toLowerCase()`.
 * Population: target ids of kind normal/control whose text is valid UTF-8 (no U+FFFD) and that have no
 * special role; source texts likewise (`textSet`). Returns the oracle's counts over that population and a
 * function giving ours over the same ids. Tokens outside it (special, unused, byte kind, invalid-UTF-8
 * fragments) are not covered: their counts are regression pins.
 */
function categoryOracle(
  target: Vocabulary,
  targetText: (string | null)[],
  sourceTexts: Set<string>,
  opts: { caseFold?: boolean; ignoreWordStart?: boolean; sourceByteValues?: Set<number> } = {},
): { oracle: Counts; population: number; ours: (a: ReturnType<typeof alignVocabularies>) => Counts } {
  const bare = (t: string) => (t.startsWith(' ') ? t.slice(1) : t);
  const lower = new Set([...sourceTexts].map((t) => t.toLowerCase()));
  const noWs = new Set([...sourceTexts].map(bare));
  const lowerNoWs = new Set([...sourceTexts].map((t) => bare(t).toLowerCase()));
  const roleIds = new Set(target.roles.values());
  const population: number[] = [];
  for (let id = 0; id < target.size; id++) {
    const k = target.kindOf(id);
    const t = targetText[id];
    if ((k === 'normal' || k === 'control') && !roleIds.has(id) && t !== null && !t.includes('\uFFFD'))
      population.push(id);
  }
  const zero = (): Counts => Object.fromEntries(MATCH_CATEGORIES.map((c) => [c, 0])) as Counts;
  const oracle = zero();
  for (const id of population) {
    const t = targetText[id]!;
    let c: (typeof MATCH_CATEGORIES)[number] = 'new';
    if (sourceTexts.has(t)) c = 'exact';
    else if (t.length === 1 && t.charCodeAt(0) < 0x80 && t !== ' ' && opts.sourceByteValues?.has(t.charCodeAt(0)))
      c = 'byte';
    else if (opts.caseFold && lower.has(t.toLowerCase())) c = 'case-folded';
    else if (opts.ignoreWordStart && noWs.has(bare(t))) c = 'word-start-ignored';
    else if (opts.caseFold && opts.ignoreWordStart && lowerNoWs.has(bare(t).toLowerCase()))
      c = 'case-folded-word-start-ignored';
    oracle[c]++;
  }
  return {
    oracle,
    population: population.length,
    ours: (a) => {
      const out = zero();
      for (const id of population) out[MATCH_CATEGORIES[a.category[id]]]++;
      return out;
    },
  };
}

/** Byte values of a source's `<0xNN>` byte-fallback pieces, from the reference library's id -> token table. */
function byteFallbackValues(tok: Tokenizer, size: number): Set<number> {
  const out = new Set<number>();
  for (let id = 0; id < size; id++) {
    const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(tok.idToToken(id) ?? '');
    if (m) out.add(parseInt(m[1], 16));
  }
  return out;
}

async function hfTexts(v: Vocabulary, folder: string): Promise<string[]> {
  const tok = Tokenizer.fromFile(join(folder, 'tokenizer.json'));
  const anchor = v.pieces.indexOf('a');
  const out: string[] = [];
  for (let s = 0; s < v.size; s += 20000) {
    const ids: number[][] = [];
    for (let i = s; i < Math.min(v.size, s + 20000); i++) ids.push([anchor, i]);
    for (const t of await tok.decodeBatch(ids, false)) out.push(t.slice(1));
  }
  return out;
}

function textSet(v: Vocabulary, texts: (string | null)[]): Set<string> {
  const s = new Set<string>();
  for (let id = 0; id < v.size; id++) {
    const k = v.kindOf(id);
    if ((k === 'normal' || k === 'control') && texts[id] !== null && !texts[id]!.includes('\uFFFD')) s.add(texts[id]!);
  }
  return s;
}

/** GPT-2's byte -> printable character table (bytes_to_unicode of openai/gpt-2 encoder.py), inverted. */
function byteLevelCharToByte(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [String.fromCharCode(cs[i]), b]));
}

const BOTH = { caseFold: true, ignoreWordStart: true } as const;

// The `expect(...report.counts).toEqual({...})` lines below are REGRESSION PINS: the numbers are
// alignVocabularies' own output, recorded so that changes show up. What is independently checked is said
// next to each: categoryOracle (reference-decoder texts, see above) for every text token with valid UTF-8,
// a byte-level table for byte tokens, and the config files for special roles.
describe('shared-token counts of real pairs (pinned; oracle-checked where stated; see docs/tokenizers.md)', () => {
  let models: string;
  beforeAll(async () => {
    models = await llamaCppModels();
  });

  it('Llama-3 (source) -> Qwen3 (target)', async () => {
    const l3dir = await lenmlModels('llama3');
    const q3dir = await lenmlModels('qwen3');
    const l3 = await loadHfTokenizerFolder(l3dir);
    const q3 = await loadHfTokenizerFolder(q3dir);
    const a = alignVocabularies(l3, q3);
    const b = alignVocabularies(l3, q3, BOTH);
    // regression pins
    expect(a.report.counts).toEqual({
      'special-role': 1,
      exact: 109438,
      byte: 128,
      'case-folded': 0,
      'word-start-ignored': 0,
      'case-folded-word-start-ignored': 0,
      new: 42102,
    });
    expect(b.report.counts).toEqual({
      'special-role': 1,
      exact: 109438,
      byte: 128,
      'case-folded': 335,
      'word-start-ignored': 746,
      'case-folded-word-start-ignored': 29,
      new: 40992,
    });
    // oracle: text categories over the valid-UTF-8 text tokens, both option sets
    const q3Texts = await hfTexts(q3, q3dir);
    const l3Set = textSet(l3, await hfTexts(l3, l3dir));
    const o = categoryOracle(q3, q3Texts, l3Set);
    expect(o.ours(a)).toEqual(o.oracle);
    expect(o.oracle.exact).toBeGreaterThan(100000);
    const ob = categoryOracle(q3, q3Texts, l3Set, BOTH);
    expect(ob.ours(b)).toEqual(ob.oracle);
    // oracle for the byte count: Qwen3 pieces that are one byte-level character standing for a byte >= 0x80
    // (not valid UTF-8 alone), which Llama-3 has as the same piece
    const q3tok = Tokenizer.fromFile(join(q3dir, 'tokenizer.json'));
    const l3tok = Tokenizer.fromFile(join(l3dir, 'tokenizer.json'));
    const c2b = byteLevelCharToByte();
    let bytePairs = 0;
    for (let id = 0; id < q3.size; id++) {
      const p = q3tok.idToToken(id);
      if (p !== null && p.length === 1 && (c2b.get(p) ?? 0) >= 0x80 && l3tok.tokenToId(p) !== null) bytePairs++;
    }
    expect(bytePairs).toBe(128);
    expect(a.report.counts.byte).toBe(bytePairs);
    // special role: Qwen3's tokenizer_config.json names eos <|im_end|> and pad <|endoftext|>; Llama-3's names
    // bos and eos, no pad: the only shared role of a Qwen3 token is eos (hand-checked against the files)
    const q3cfg = JSON.parse(await readFile(join(q3dir, 'tokenizer_config.json'), 'utf8'));
    const l3cfg = JSON.parse(await readFile(join(l3dir, 'tokenizer_config.json'), 'utf8'));
    expect([q3cfg.eos_token, q3cfg.pad_token, q3cfg.bos_token, l3cfg.pad_token]).toEqual([
      '<|im_end|>',
      '<|endoftext|>',
      null,
      undefined,
    ]);
    expect(a.report.roles.matched).toEqual([
      { role: 'eos', targetId: q3tok.tokenToId('<|im_end|>'), sourceId: l3tok.tokenToId(l3cfg.eos_token) },
    ]);
  });

  it('Gemma-3 (source) -> XLM-R 250k (target)', async () => {
    const g3dir = await lenmlModels('gemma3');
    const g3 = await loadHfTokenizerFolder(g3dir);
    const xl = loadGgufVocabulary(join(models, 'ggml-vocab-nomic-bert-moe.gguf'));
    const a = alignVocabularies(g3, xl);
    const b = alignVocabularies(g3, xl, BOTH);
    // regression pins
    expect(a.report.counts).toEqual({
      'special-role': 4,
      exact: 101311,
      byte: 0,
      'case-folded': 0,
      'word-start-ignored': 0,
      'case-folded-word-start-ignored': 0,
      new: 148733,
    });
    expect(b.report.counts).toEqual({
      'special-role': 4,
      exact: 101311,
      byte: 0,
      'case-folded': 6115,
      'word-start-ignored': 5877,
      'case-folded-word-start-ignored': 811,
      new: 135930,
    });
    expect(a.report.roles.matched.map((r) => r.role).sort()).toEqual(['bos', 'eos', 'pad', 'unk']);
    // oracle. XLM-R side: SentencePiece text is the piece with "▁" read as a space (no byte pieces in this
    // model); Gemma-3's <0xNN> byte-fallback pieces give the byte rule's source values.
    const xlTexts = xl.pieces.map((p) => p.replaceAll('\u2581', ' '));
    const g3Set = textSet(g3, await hfTexts(g3, g3dir));
    const byteValues = byteFallbackValues(Tokenizer.fromFile(join(g3dir, 'tokenizer.json')), g3.size);
    expect(byteValues.size).toBe(256);
    const o = categoryOracle(xl, xlTexts, g3Set, { sourceByteValues: byteValues });
    expect(o.ours(a)).toEqual(o.oracle);
    const ob = categoryOracle(xl, xlTexts, g3Set, { ...BOTH, sourceByteValues: byteValues });
    expect(ob.ours(b)).toEqual(ob.oracle);
  });

  it('GPT-2 (source) -> BERT uncased WordPiece (target)', async () => {
    const gp = loadGgufVocabulary(join(models, 'ggml-vocab-gpt-2.gguf'));
    const bb = loadGgufVocabulary(join(models, 'ggml-vocab-bert-bge.gguf'));
    const a = alignVocabularies(gp, bb);
    const b = alignVocabularies(gp, bb, BOTH);
    // regression pins
    expect(a.report.counts).toEqual({
      'special-role': 0,
      exact: 18161,
      byte: 0,
      'case-folded': 0,
      'word-start-ignored': 0,
      'case-folded-word-start-ignored': 0,
      new: 12361,
    });
    expect(b.report.counts).toEqual({
      'special-role': 0,
      exact: 18161,
      byte: 0,
      'case-folded': 3091,
      'word-start-ignored': 466,
      'case-folded-word-start-ignored': 172,
      new: 8632,
    });
    // oracle texts: gpt-3-encoder's decoder for GPT-2, HF's WordPiece decoder over the original vocab.txt for BERT
    const enc = createRequire(import.meta.url)(join(await fetchNpmPackage('gpt-3-encoder', '1.1.4'), 'Encoder.js')) as {
      decode(ids: number[]): string;
    };
    const gpTexts = gp.pieces.map((_, id) => enc.decode([64, id]).slice(1));
    const dir = await mkdtemp(join(tmpdir(), 'salt-align-'));
    const vocabTxt = join(dir, 'vocab.txt');
    await writeFile(
      vocabTxt,
      bb.pieces.map((p) => (/^\[.*\]$/.test(p) ? p : p.startsWith('\u2581') ? p.slice(1) : '##' + p)).join('\n') + '\n',
    );
    const bert = await loadVocabTxt(vocabTxt);
    const tok = new Tokenizer(await WordPiece.fromFile(vocabTxt, { unkToken: '[UNK]' }));
    tok.setDecoder(wordPieceDecoder('##', false));
    const anchor = bert.pieces.indexOf('a');
    const bbTexts = (
      await tok.decodeBatch(
        bert.pieces.map((_, id) => [anchor, id]),
        false,
      )
    ).map((t) => t.slice(1));
    const gpSet = textSet(gp, gpTexts);
    const o = categoryOracle(bb, bbTexts, gpSet);
    expect(o.ours(a)).toEqual(o.oracle);
    const ob = categoryOracle(bb, bbTexts, gpSet, BOTH);
    expect(ob.ours(b)).toEqual(ob.oracle);
    expect(alignVocabularies(gp, bert).report.counts).toEqual(a.report.counts);
    // special role: GPT-2's only roles are bos/eos (<|endoftext|>); BERT has pad/unk/cls/sep/mask and no bos/eos
    expect(Object.fromEntries(bb.roles)).toEqual({ pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 });
  });

  it('USE-lite (source) -> GloVe 6B words (target): 4,917 shared words with case folding (docs/data.md)', async () => {
    const pieces = await useLitePieces();
    const words = await gloveWords();
    expect(pieces.length).toBe(8000);
    expect(words.length).toBe(341479);
    const use = useLiteVocabulary(pieces);
    const glove = wordListVocabulary(words, 'GloVe 6B');
    const exact = alignVocabularies(use, glove);
    const folded = alignVocabularies(use, glove, { caseFold: true });
    const both = alignVocabularies(use, glove, BOTH);
    // regression pins
    expect(exact.report.counts.exact).toBe(4338);
    expect(exact.report.matched).toBe(4338);
    expect(folded.report.counts).toEqual({
      'special-role': 0,
      exact: 4338,
      byte: 0,
      'case-folded': 579,
      'word-start-ignored': 0,
      'case-folded-word-start-ignored': 0,
      new: 336562,
    });
    expect(both.report.counts).toEqual({
      'special-role': 0,
      exact: 4338,
      byte: 0,
      'case-folded': 579,
      'word-start-ignored': 569,
      'case-folded-word-start-ignored': 14,
      new: 335979,
    });
    expect(both.report.matched).toBe(5500);
    // independent count, the rule of docs/data.md: USE piece "▁w" matches GloVe word w.toLowerCase()
    const gset = new Set(words);
    const shared = new Set(
      pieces
        .filter((p) => p.startsWith('\u2581') && p.length > 1 && gset.has(p.slice(1).toLowerCase()))
        .map((p) => p.slice(1).toLowerCase()),
    );
    expect(shared.size).toBe(4917);
    expect(folded.report.matched).toBe(shared.size);
    // oracle over every option set: USE text = piece with "▁" read as a space; a GloVe word is a word start
    const useSet = textSet(
      use,
      pieces.map((p) => p.replaceAll('\u2581', ' ')),
    );
    const gloveTexts = words.map((w) => ' ' + w);
    for (const [opts, res] of [
      [{}, exact],
      [{ caseFold: true }, folded],
      [BOTH, both],
    ] as const) {
      const o = categoryOracle(glove, gloveTexts, useSet, opts);
      expect(o.population).toBe(341479 - words.filter((w) => w.includes('\uFFFD')).length);
      expect(o.ours(res), JSON.stringify(opts)).toEqual(o.oracle);
    }
    // roles swapped (GloVe as source): every USE piece finds its lower-cased word; 5,855 pieces, 4,917 words
    const swapped = alignVocabularies(glove, use, { caseFold: true });
    expect(swapped.report.matched).toBe(5855);
    expect(swapped.report.distinctSourceIds).toBe(4917);
  });
});
