/**
 * packVocabulary / unpackVocabulary: a target's vocabulary parsed in the loader worker and posted to
 * the preparation worker comes back exactly as it was (structured clone in between, as postMessage does).
 */
import { describe, expect, it } from 'vitest';

import { packVocabulary, unpackVocabulary } from '../../lib/pipeline/preparer.js';
import { loadHfTokenizerFolder } from '../../lib/tokenizer/hfTokenizer.js';
import { buildVocabulary, type Vocabulary } from '../../lib/tokenizer/vocabulary.js';
import { lenmlModels } from '../tokenizer/realData.js';

function expectSameVocabulary(a: Vocabulary, b: Vocabulary, label: string): void {
  expect(a.pieces.length, label).toBe(b.pieces.length);
  const wrong = a.pieces.findIndex((p, i) => p !== b.pieces[i]);
  expect(wrong < 0 ? null : [wrong, a.pieces[wrong], b.pieces[wrong]], label).toBeNull();
  for (const k of ['kinds', 'wordStarts', 'byteOffsets', 'bytes'] as const)
    expect(
      Buffer.compare(
        Buffer.from(a[k].buffer, a[k].byteOffset, a[k].byteLength),
        Buffer.from(b[k].buffer, b[k].byteOffset, b[k].byteLength),
      ),
      `${label} ${k}`,
    ).toBe(0);
  expect([...a.roles], label).toEqual([...b.roles]);
  expect([a.name, a.format, a.convention, a.addsSpacePrefix], label).toEqual([
    b.name,
    b.format,
    b.convention,
    b.addsSpacePrefix,
  ]);
}

describe('packVocabulary', () => {
  it('real vocabularies come back unchanged through a structured clone', async () => {
    for (const name of ['llama3', 'qwen3', 'gemma3']) {
      const v = await loadHfTokenizerFolder(await lenmlModels(name));
      expectSameVocabulary(unpackVocabulary(structuredClone(packVocabulary(v))), v, name);
    }
  });

  it('any piece comes back as it was: empty, astral, and a lone surrogate (which UTF-8 cannot carry)', () => {
    const v = buildVocabulary({
      name: 'edge',
      format: 'pieces',
      convention: 'words',
      pieces: ['', 'a', '\u{1F600}', 'x\ud800y', '\udc00', 'é'],
      roles: { unk: 1 },
    });
    expectSameVocabulary(unpackVocabulary(structuredClone(packVocabulary(v))), v, 'edge');
  });
});
