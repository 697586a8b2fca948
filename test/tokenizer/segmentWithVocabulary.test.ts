// segmentWithVocabulary: greedy longest-prefix segmentation on hand-made vocabularies; every expected
// list below was worked out by hand from the rules in lib/tokenizer/segment.ts's doc comment.
import { describe, expect, it } from 'vitest';

import { SaltRangeError, SaltTypeError } from '../../lib/errors.js';
import { type Segmentation, segmentWithVocabulary } from '../../lib/tokenizer/index.js';
import { piecesVocabulary, wordListVocabulary } from '../../lib/tokenizer/plainVocabularies.js';

const lists = (s: Segmentation): number[][] =>
  Array.from({ length: s.offsets.length - 1 }, (_, t) =>
    Array.from(s.indices.subarray(s.offsets[t], s.offsets[t + 1])),
  );

// SentencePiece-style source with byte fallback.
const spmSource = piecesVocabulary(
  [
    '<unk>', // 0 special
    '\u2581the', // 1
    '\u2581th', // 2
    'e', // 3
    're', // 4
    '\u2581', // 5 (a bare word-start space)
    'er', // 6
    'the', // 7
    '<0xC3>', // 8 byte
    '<0xA9>', // 9 byte
    'c', // 10
    'af', // 11
    '\u2581c', // 12
    'a', // 13
    'f', // 14
    'r', // 15
    't', // 16
    'h', // 17
  ],
  { convention: 'sentencepiece', byteFallback: true, specialIds: [0], roles: { unk: 0 } },
);

const spmTarget = piecesVocabulary(
  [
    '<s>', // 0 special: not segmented
    '\u2581there', // 1
    'there', // 2
    '\u2581café', // 3
    '\u2581rath', // 4
    '\u2581xyz', // 5
    '\u2581', // 6
    '<0xC3>', // 7 byte
    'caféc', // 8
    '\u2581the', // 9
  ],
  { convention: 'sentencepiece', byteFallback: true, specialIds: [0], roles: { bos: 0 } },
);

describe('segmentWithVocabulary: SentencePiece-style vocabularies', () => {
  it('greedy longest match; word-start first piece, continuation pieces after; byte fallback; unsegmentable -> empty', () => {
    const s = segmentWithVocabulary(spmSource, spmTarget);
    expect(s.offsets.length).toBe(spmTarget.size + 1);
    expect(lists(s)).toEqual([
      [], // special
      [1, 4], // "▁the" + "re"
      [7, 4], // non-word-start: "the" + "re" (not "▁the")
      [12, 11, 8, 9], // "▁c" + "af" + <0xC3> <0xA9> (é has no text piece)
      [15, 13, 16, 17], // no word-start piece starts "rath": falls back to "r", then "a", "t", "h"
      [], // "x" has no piece and no byte piece
      [5], // the bare word-start space
      [8], // a byte token: its byte
      [10, 11, 8, 9, 10], // "c" "af" é "c"
      [1], // "▁the" is itself
    ]);
  });

  it('exclude: the excluded source id is never a piece (the next-longest match is used)', () => {
    const exclude = new Int32Array(spmTarget.size).fill(-1);
    exclude[1] = 1; // "▁there" may not use "▁the": "▁th" + "er" + "e"
    exclude[2] = 7; // "there" may not use "the": "t" "h" "er" "e"
    exclude[9] = 1; // "▁the" may not be itself: "▁th" + "e"
    exclude[7] = 8; // the byte token may not be its own byte: nothing else covers 0xC3
    exclude[6] = 5; // the bare space: nothing else
    const s = lists(segmentWithVocabulary(spmSource, spmTarget, { exclude }));
    expect(s[1]).toEqual([2, 6, 3]);
    expect(s[2]).toEqual([16, 17, 6, 3]);
    expect(s[9]).toEqual([2, 3]);
    expect(s[7]).toEqual([]);
    expect(s[6]).toEqual([]);
    // untouched tokens keep their segmentation
    expect(s[3]).toEqual([12, 11, 8, 9]);
  });

  it('is deterministic and concatenates to the token bytes', () => {
    const a = segmentWithVocabulary(spmSource, spmTarget);
    const b = segmentWithVocabulary(spmSource, spmTarget);
    expect(Buffer.from(a.indices.buffer).equals(Buffer.from(b.indices.buffer))).toBe(true);
    for (const [t, ids] of lists(a).entries()) {
      if (ids.length === 0) continue;
      const joined = Buffer.concat(ids.map((id) => Buffer.from(spmSource.bytesOf(id))));
      expect(joined.equals(Buffer.from(spmTarget.bytesOf(t))), `token ${t}`).toBe(true);
    }
  });

  it('rejects bad arguments', () => {
    expect(() => segmentWithVocabulary({} as never, spmTarget)).toThrow(SaltTypeError);
    expect(() => segmentWithVocabulary(spmSource, spmTarget, { exclude: [1] as never })).toThrow(SaltTypeError);
    expect(() => segmentWithVocabulary(spmSource, spmTarget, { exclude: new Int32Array(3) })).toThrow(
      new SaltRangeError(`options.exclude must have target.size = ${spmTarget.size} elements, received 3`, 'E_SHAPE'),
    );
  });
});

describe('segmentWithVocabulary: WordPiece-style source, word-list target', () => {
  const wp = piecesVocabulary(['[UNK]', 'un', '##aff', '##able', 'aff', '##a', '##ble', 'able'], {
    convention: 'wordpiece',
    specialIds: [0],
  });
  const words = wordListVocabulary(['unaffable', 'affable', 'able', 'unable', 'xable', '[UNK]']);

  it('word-start first piece, ## continuations; a special source token is never a piece', () => {
    expect(lists(segmentWithVocabulary(wp, words))).toEqual([
      [1, 2, 3], // un ##aff ##able
      [4, 3], // aff ##able
      [7], // able
      [1, 3], // un ##able
      [], // no piece for "x"
      [], // "[UNK]" as a word: the source's [UNK] is special, not text
    ]);
  });

  it('a word-start token whose own piece is excluded falls back to a continuation piece', () => {
    const exclude = Int32Array.from([-1, -1, 7, -1, -1, -1]);
    expect(lists(segmentWithVocabulary(wp, words, { exclude }))[2]).toEqual([3]); // "##able"
  });
});
