import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeCheckpoint } from '../../lib/io/checkpoint.js';
import { writeTransferredModel } from '../../lib/io/writeModel.js';
import { tempFolder } from './helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(async () => cleanup());

// Regression (interop suite, issue 9): the output of a BERT target kept the target's
// tokenizer_config.json, whose model_input_names include token_type_ids; transformers'
// `model.generate(**tokenizer(text, return_tensors="pt"))` then passed token_type_ids to the causal LM,
// which rejected them ("The following `model_kwargs` are not used by the model: ['token_type_ids']").
describe('writeTransferredModel: tokenizer_config.json of the written model', () => {
  it('keeps the target tokenizer config but lists only the inputs of a causal LM', async () => {
    const src = join(dir, 'llm');
    await mkdir(src);
    await writeFile(
      join(src, 'config.json'),
      JSON.stringify({ model_type: 'llama', vocab_size: 3, hidden_size: 2, tie_word_embeddings: true }),
    );
    await writeCheckpoint(src, [
      { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [3, 2], data: new Float32Array(6) },
    ]);
    const tok = join(dir, 'bert-tok');
    await mkdir(tok);
    await writeFile(join(tok, 'vocab.txt'), '[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n');
    const tc = {
      tokenizer_class: 'BertTokenizer',
      do_lower_case: true,
      unk_token: '[UNK]',
      model_input_names: ['input_ids', 'token_type_ids', 'attention_mask'],
    };
    await writeFile(join(tok, 'tokenizer_config.json'), JSON.stringify(tc));
    const out = join(dir, 'out');
    const rep = await writeTransferredModel({
      source: src,
      output: out,
      tokenizer: tok,
      inputEmbedding: new Float32Array(10),
    });
    expect(rep.otherFiles).toContain('tokenizer_config.json');
    expect(JSON.parse(await readFile(join(out, 'tokenizer_config.json'), 'utf8'))).toEqual({
      ...tc,
      model_input_names: ['input_ids', 'attention_mask'],
    });
    expect(await readFile(join(out, 'vocab.txt'), 'utf8')).toBe('[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n');
  });
});
