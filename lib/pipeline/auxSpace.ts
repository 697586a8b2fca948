/**
 * Auxiliary similarity spaces read from files, aligned with a target vocabulary: fastText `.bin`
 * (vectors composed from character n-grams) or text vectors (`.vec`, GloVe `.txt`) looked up by the
 * token's string.
 */
import { extname } from 'node:path';

import { SaltError } from '../errors.js';
import { pathExists } from '../io/atomic.js';
import { FastTextModel } from '../io/fasttext.js';
import { readTextVectors } from '../io/vectors.js';
import type { Matrix } from '../kernels/validate.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';

/** Which aux space a transfer used and how many target tokens have a vector in it. */
export interface AuxInfo {
  kind: 'target-embeddings' | 'fasttext-bin' | 'text-vectors' | 'matrix';
  path?: string;
  present: number;
}

/** The token's string for an auxiliary lookup: its bytes as UTF-8 (word-start space left out), or null for special/unused tokens and empty strings. */
export function auxString(vocab: Vocabulary, id: number): string | null {
  const kind = vocab.kindOf(id);
  if (kind === 'special' || kind === 'unused') return null;
  const s = Buffer.from(vocab.bytesOf(id)).toString('utf8');
  return s === '' ? null : s;
}

/** Counts the non-zero entries. */
export function countPresent(a: Uint8Array): number {
  let c = 0;
  for (const v of a) c += v ? 1 : 0;
  return c;
}

/**
 * Reads an aux file for every token of `vocab`: `.bin` (and `.ftz`, which fastText's reader rejects as quantized) as fastText (a token whose composed vector is
 * zero, e.g. no n-gram known, counts as absent), anything else as text vectors (exact string lookup).
 * Special and unused tokens never have a vector.
 */
export async function loadAuxFile(
  path: string,
  vocab: Vocabulary,
): Promise<{ aux: Matrix; present: Uint8Array; info: AuxInfo }> {
  if (!(await pathExists(path))) throw new SaltError('E_NOT_FOUND', `aux file ${JSON.stringify(path)} does not exist`);
  const n = vocab.size;
  const present = new Uint8Array(n);
  const ext = extname(path).toLowerCase();
  if (ext === '.bin' || ext === '.ftz') {
    const ft = FastTextModel.open(path);
    try {
      const d = ft.dim;
      const data = new Float32Array(n * d);
      for (let t = 0; t < n; t++) {
        const s = auxString(vocab, t);
        if (s === null) continue;
        const row = data.subarray(t * d, t * d + d);
        ft.wordVector(s, row);
        let nz = false;
        for (let j = 0; j < d; j++) if (row[j] !== 0) nz = true;
        present[t] = nz ? 1 : 0;
      }
      return {
        aux: { data, rows: n, cols: d },
        present,
        info: { kind: 'fasttext-bin', path, present: countPresent(present) },
      };
    } finally {
      ft.close();
    }
  }
  const table = await readTextVectors(path);
  const index = new Map<string, number>();
  table.words.forEach((w, i) => {
    if (!index.has(w)) index.set(w, i);
  });
  const d = table.dim;
  const data = new Float32Array(n * d);
  for (let t = 0; t < n; t++) {
    const s = auxString(vocab, t);
    const r = s === null ? undefined : index.get(s);
    if (r === undefined) continue;
    data.set(table.vectors.subarray(r * d, r * d + d), t * d);
    present[t] = 1;
  }
  return {
    aux: { data, rows: n, cols: d },
    present,
    info: { kind: 'text-vectors', path, present: countPresent(present) },
  };
}
