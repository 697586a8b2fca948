import { describe, expect, it } from 'vitest';

import { SaltError } from '../../lib/errors.js';
import { parseModelConfig } from '../../lib/io/hfConfig.js';

// Regression (interop suite, issue 9): config.json files that transformers refuses to load were
// accepted, and the transfer wrote a folder transformers could not load either.
describe('parseModelConfig refuses what transformers refuses', () => {
  it('a config.json without model_type (AutoConfig: "Should have a `model_type` key")', () => {
    expect(() => parseModelConfig({ vocab_size: 10, hidden_size: 4 }, 'm/config.json')).toThrow(
      new SaltError(
        'E_FORMAT',
        'm/config.json: expected a non-empty string "model_type" (transformers chooses the model class by it), received nothing (the value is missing)',
      ),
    );
    expect(() => parseModelConfig({ model_type: '', vocab_size: 10, hidden_size: 4 })).toThrow(/"model_type"/);
    expect(() => parseModelConfig({ model_type: 7, vocab_size: 10, hidden_size: 4 })).toThrow(
      expect.objectContaining({ code: 'E_FORMAT' }),
    );
    // A nested text_config's model_type does not replace the top level's.
    expect(() =>
      parseModelConfig({ text_config: { model_type: 'gemma3_text', vocab_size: 10, hidden_size: 4 } }),
    ).toThrow(/"model_type"/);
  });
  it('a tie_word_embeddings that is not a boolean (transformers validates the field as bool)', () => {
    expect(() =>
      parseModelConfig({ model_type: 'gpt2', vocab_size: 10, n_embd: 4, tie_word_embeddings: 'yes' }, 'g/config.json'),
    ).toThrow(
      new SaltError('E_FORMAT', 'g/config.json: expected "tie_word_embeddings" to be true or false, received "yes"'),
    );
    expect(() =>
      parseModelConfig({
        model_type: 'gemma3',
        text_config: { model_type: 'gemma3_text', vocab_size: 10, hidden_size: 4, tie_word_embeddings: 1 },
      }),
    ).toThrow(/"tie_word_embeddings" \(in text_config\) to be true or false, received 1/);
  });
  it('still accepts what transformers accepts: booleans, null, absent', () => {
    for (const tie of [true, false, null, undefined])
      expect(
        parseModelConfig({ model_type: 'llama', vocab_size: 10, hidden_size: 4, tie_word_embeddings: tie }).vocabSize,
      ).toBe(10);
  });
});
