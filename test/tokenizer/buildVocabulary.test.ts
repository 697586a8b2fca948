import { describe, expect, it } from 'vitest';

import { SaltError, SaltRangeError, SaltTypeError } from '../../lib/errors.js';
import { buildVocabulary, canonicalizePiece, piecesVocabulary, wordListVocabulary } from '../../lib/tokenizer/index.js';

const bytes = (...b: number[]) => Uint8Array.from(b);
const utf8 = (s: string) => new TextEncoder().encode(s);

describe('canonicalizePiece (hand-derived expectations)', () => {
  it('byte-level: Ġ is the space byte, Ċ the newline byte, â the byte 0xE2', () => {
    expect(canonicalizePiece('Ġthe', 'byte-level')).toEqual({ wordStart: true, bytes: utf8('the'), isByte: false });
    expect(canonicalizePiece('Ġ', 'byte-level')).toEqual({ wordStart: true, bytes: bytes(), isByte: false });
    expect(canonicalizePiece('ĠĠ', 'byte-level')).toEqual({ wordStart: true, bytes: bytes(0x20), isByte: false });
    expect(canonicalizePiece('Ċ', 'byte-level')).toEqual({ wordStart: false, bytes: bytes(0x0a), isByte: false });
    expect(canonicalizePiece('â', 'byte-level')).toEqual({ wordStart: false, bytes: bytes(0xe2), isByte: true });
    // "é" in GPT-2's alphabet is the two bytes C3 A9
    expect(canonicalizePiece('Ã©', 'byte-level')).toEqual({
      wordStart: false,
      bytes: bytes(0xc3, 0xa9),
      isByte: false,
    });
    expect(canonicalizePiece('Ā', 'byte-level')).toEqual({ wordStart: false, bytes: bytes(0x00), isByte: false });
    // a character outside the alphabet: the piece is plain text
    expect(canonicalizePiece('<|im start|>', 'byte-level').bytes).toEqual(utf8('<|im start|>'));
  });

  it('sentencepiece: ▁ is a space and marks word starts; <0xNN> only with byte fallback', () => {
    expect(canonicalizePiece('\u2581the', 'sentencepiece')).toEqual({
      wordStart: true,
      bytes: utf8('the'),
      isByte: false,
    });
    expect(canonicalizePiece('\u2581\u2581', 'sentencepiece')).toEqual({
      wordStart: true,
      bytes: bytes(0x20),
      isByte: false,
    });
    expect(canonicalizePiece('new\u2581york', 'sentencepiece')).toEqual({
      wordStart: false,
      bytes: utf8('new york'),
      isByte: false,
    });
    expect(canonicalizePiece('<0xE2>', 'sentencepiece', { byteFallback: true })).toEqual({
      wordStart: false,
      bytes: bytes(0xe2),
      isByte: true,
    });
    expect(canonicalizePiece('<0xE2>', 'sentencepiece')).toEqual({
      wordStart: false,
      bytes: utf8('<0xE2>'),
      isByte: false,
    });
  });

  it('wordpiece and words', () => {
    expect(canonicalizePiece('##ing', 'wordpiece')).toEqual({ wordStart: false, bytes: utf8('ing'), isByte: false });
    expect(canonicalizePiece('play', 'wordpiece')).toEqual({ wordStart: true, bytes: utf8('play'), isByte: false });
    expect(canonicalizePiece('@@ing', 'wordpiece', { continuationPrefix: '@@' })).toEqual({
      wordStart: false,
      bytes: utf8('ing'),
      isByte: false,
    });
    expect(canonicalizePiece('New York', 'words')).toEqual({ wordStart: true, bytes: utf8('New York'), isByte: false });
    expect(() => canonicalizePiece('x', 'bpe' as never)).toThrow(SaltRangeError);
  });
});

describe('buildVocabulary kinds and Vocabulary accessors', () => {
  const v = piecesVocabulary(['<s>', 'Ā', 'ĠHello', '<unused3>', 'Ċ', 'â', '[PAD7]'], {
    convention: 'byte-level',
    specialIds: [0],
    name: 'tiny',
  });

  it('assigns kinds: special, control, normal, unused, byte', () => {
    expect([...Array(v.size).keys()].map((i) => v.kindOf(i))).toEqual([
      'special',
      'control',
      'normal',
      'unused',
      'normal',
      'byte',
      'unused',
    ]);
    expect(v.summary()).toEqual({ size: 7, wordStarts: 1, normal: 2, special: 1, byte: 1, control: 1, unused: 2 });
    expect(v.token(0)).toEqual({
      id: 0,
      piece: '<s>',
      kind: 'special',
      wordStart: false,
      bytes: utf8('<s>'),
      role: 'bos',
    });
  });

  it('decode joins word-start spaces and bytes, skipping special tokens unless asked', () => {
    expect(Buffer.from(v.decode([0, 2, 4, 2])).toString('latin1')).toBe(' Hello\n Hello');
    expect(Buffer.from(v.decode([0, 2], true)).toString()).toBe('<s> Hello');
  });

  it('rejects bad ids, pieces and roles with exact codes', () => {
    expect(() => v.kindOf(7)).toThrow(SaltRangeError);
    expect(() => v.kindOf(7)).toThrow(
      expect.objectContaining({
        code: 'E_ARGUMENT',
        message: 'token id must be an integer in [0, 7) for vocabulary tiny, received 7',
      }),
    );
    expect(() => v.bytesOf(1.5)).toThrow(expect.objectContaining({ code: 'E_ARGUMENT' }));
    expect(() =>
      buildVocabulary({ name: 'x', format: 'pieces', convention: 'words', pieces: ['a', 3 as never] }),
    ).toThrow(SaltTypeError);
    expect(() =>
      buildVocabulary({ name: 'x', format: 'pieces', convention: 'words', pieces: ['a'], roles: { eos: 5 } }),
    ).toThrow(SaltError);
    expect(() =>
      buildVocabulary({ name: 'x', format: 'pieces', convention: 'words', pieces: ['a'], roles: { eos: 5 } }),
    ).toThrow(
      expect.objectContaining({
        code: 'E_FORMAT',
        message: 'vocabulary x: eos token id must be in [0, 1), received 5',
      }),
    );
    expect(() =>
      buildVocabulary({
        name: 'x',
        format: 'pieces',
        convention: 'words',
        pieces: ['a'],
        roles: { begin: 0 } as never,
      }),
    ).toThrow(expect.objectContaining({ code: 'E_ARGUMENT' }));
    expect(() => wordListVocabulary(['a', 'b', 'a'], 'w')).toThrow(
      expect.objectContaining({ code: 'E_FORMAT', message: 'w: duplicate word "a" on lines 1 and 3' }),
    );
  });
});

describe('role inference by name ignores Object.prototype members (R4)', () => {
  it('special tokens named constructor / toString / __proto__ / hasOwnProperty get no role', () => {
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', '</s>'];
    const v = piecesVocabulary(names, { convention: 'byte-level', specialIds: [0, 1, 2, 3, 4, 5], name: 'proto' });
    expect(Object.fromEntries(v.roles)).toEqual({ eos: 5 });
    for (let id = 0; id < 5; id++) expect(v.roleOf(id)).toBeUndefined();
  });
});
