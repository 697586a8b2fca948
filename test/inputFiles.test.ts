// decodeUtf8 (lib/inputFiles.ts): strict UTF-8 (RFC 3629) with the offset of the first bad sequence.
// Node's native isUtf8 answers for valid text and the JavaScript scan finds the offset; both must
// agree on what is invalid, so every kind of bad sequence is checked here.
import { describe, expect, it } from 'vitest';

import { decodeUtf8 } from '../lib/inputFiles.js';

const bytes = (...parts: Array<string | number[]>) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

describe('decodeUtf8', () => {
  it('decodes valid text of 1- to 4-byte characters and drops a leading byte-order mark', () => {
    expect(decodeUtf8(bytes('a\u00e9\u20ac\u{1f600}z'), 'f')).toBe('a\u00e9\u20ac\u{1f600}z');
    expect(decodeUtf8(bytes([0xef, 0xbb, 0xbf], 'x'), 'f')).toBe('x');
    expect(decodeUtf8(bytes([0xf4, 0x8f, 0xbf, 0xbf]), 'f')).toBe('\u{10ffff}');
    expect(decodeUtf8(new Uint8Array(0), 'f')).toBe('');
  });

  // [bytes after a 3-byte valid prefix "ab\u00e9" (4 bytes), what]
  const bad: Array<[number[], string]> = [
    [[0x80], 'a lone continuation byte'],
    [[0xc0, 0xaf], 'an overlong 2-byte form'],
    [[0xc1, 0xbf], 'an overlong 2-byte form (C1)'],
    [[0xe0, 0x80, 0xaf], 'an overlong 3-byte form'],
    [[0xf0, 0x80, 0x80, 0xaf], 'an overlong 4-byte form'],
    [[0xed, 0xa0, 0x80], 'a UTF-16 surrogate'],
    [[0xf4, 0x90, 0x80, 0x80], 'a code point above U+10FFFF'],
    [[0xf5, 0x80, 0x80, 0x80], 'a lead byte above F4'],
    [[0xe2, 0x82], 'a truncated sequence at the end'],
    [[0xe2, 0x28, 0xa1], 'a sequence cut by an ASCII byte'],
    [[0xff], 'the byte FF'],
  ];
  for (const [seq, what] of bad) {
    it(`refuses ${what} with its byte offset`, () => {
      const b = bytes('ab\u00e9', seq, 'tail');
      expect(() => decodeUtf8(b, '/x/tokenizer.json', 'tokenizer file')).toThrow(
        expect.objectContaining({
          code: 'E_FORMAT',
          message: 'tokenizer file "/x/tokenizer.json" is not valid UTF-8: invalid byte sequence at byte offset 4',
        }),
      );
    });
  }
});
