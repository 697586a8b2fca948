/**
 * The token-level preparation of a folder-level transfer: parsing the tokenizer files, aligning the
 * vocabularies and building the auxiliary space from a file. On large vocabularies this is seconds of
 * synchronous JavaScript (JSON parsing, the alignment's hash maps), so {@link openPreparer} runs it in
 * a `node:worker_threads` worker when the compiled worker script is available (dist/), and on the
 * calling thread otherwise (e.g. when lib/ is run from TypeScript sources by the tests).
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { SaltError } from '../errors.js';
import { readTokenizerInfo, type TokenizerInfo } from '../io/hfConfig.js';
import type { Matrix } from '../kernels/validate.js';
import { type AlignmentReport, type AlignOptions, alignVocabularies } from '../tokenizer/align.js';
import { loadVocabulary } from '../tokenizer/plainVocabularies.js';
import { type Segmentation, segmentWithVocabulary } from '../tokenizer/segment.js';
import { type SpecialRole, Vocabulary } from '../tokenizer/vocabulary.js';
import { type AuxInfo, loadAuxFile } from './auxSpace.js';

/** The token-level inputs of one target, ready for the engine. */
export interface PreparedTokens {
  targetVocabSize: number;
  sourceIdOfTarget: Int32Array;
  category: Uint8Array;
  report: AlignmentReport;
  /** Aux space built from a file (absent when no file was given). */
  aux?: Matrix;
  auxPresent?: Uint8Array;
  auxInfo?: AuxInfo;
  /**
   * Each target token's source pieces (method `'fvt'`), when asked for; computed with
   * `exclude: sourceIdOfTarget`, so it serves both a transfer and an evaluation.
   */
  segmentation?: Segmentation;
  /**
   * With `lookup`: the target token found for that string (its stored piece, or its text with a
   * leading space for a word start; null when absent) and both vocabularies' pieces (for `inspect`).
   */
  lookup?: { token: LookedUpToken | null; sourcePieces: PieceTable; targetPieces: PieceTable };
  /**
   * What the writer needs of a target folder's tokenizer (files, vocabulary size, special-token ids),
   * read from the same parsed files as the vocabulary (no second parse); absent for a non-folder target.
   */
  tokenizerInfo?: TokenizerInfo;
  /** Wall time (ms) of loading the target tokenizer, of the alignment (and segmentation) and of the aux file. */
  timings: { loadTarget: number; align: number; aux: number };
}

/**
 * A vocabulary's pieces packed as UTF-8 bytes with offsets: two typed arrays, which a worker
 * transfers without copying, where an array of 256k strings would be rebuilt string by string on the
 * receiving (calling) thread. Read one piece with {@link pieceAt}.
 */
export interface PieceTable {
  /** The pieces' UTF-8 bytes, one after the other. */
  bytes: Uint8Array;
  /** n + 1 offsets: piece i is bytes[offsets[i] .. offsets[i + 1]). */
  offsets: Int32Array;
}

/** Packs pieces into a {@link PieceTable}. */
export function packPieces(pieces: readonly string[]): PieceTable {
  const parts = pieces.map((p) => Buffer.from(p, 'utf8'));
  const offsets = new Int32Array(parts.length + 1);
  parts.forEach((b, i) => (offsets[i + 1] = offsets[i] + b.length));
  const bytes = new Uint8Array(offsets[parts.length]);
  parts.forEach((b, i) => bytes.set(b, offsets[i]));
  return { bytes, offsets };
}

/** Piece `id` of a {@link PieceTable}. */
export function pieceAt(table: PieceTable, id: number): string {
  return Buffer.from(
    table.bytes.buffer,
    table.bytes.byteOffset + table.offsets[id],
    table.offsets[id + 1] - table.offsets[id],
  ).toString('utf8');
}

/** A target token found by {@link PrepareOptions.lookup}. */
export interface LookedUpToken {
  id: number;
  piece: string;
  kind: string;
  wordStart: boolean;
  /** The text the token stands for (UTF-8 of its bytes). */
  text: string;
}

/** What {@link Preparer.prepare} computes besides the alignment. */
export interface PrepareOptions {
  /** Segment the target vocabulary with the source's (method `'fvt'`). */
  segment?: boolean;
  /** Find this target token and return both vocabularies' pieces (see {@link PreparedTokens.lookup}). */
  lookup?: string;
  /** @internal The target's tokens, already loaded (see {@link openPreparer}'s `preload`). */
  preloaded?: PreloadedTarget;
}

/** The id of `token` in `vocab`: by stored piece, else by text (a leading space marks a word start); -1 when absent. */
export function findToken(vocab: Vocabulary, token: string): number {
  const byPiece = vocab.pieces.indexOf(token);
  if (byPiece >= 0) return byPiece;
  const ws = token.startsWith(' ');
  const want = Buffer.from(ws ? token.slice(1) : token, 'utf8');
  for (let id = 0; id < vocab.size; id++)
    if (vocab.isWordStart(id) === ws && Buffer.compare(Buffer.from(vocab.bytesOf(id)), want) === 0) return id;
  // A word list has only word-start tokens: let "hello" find " hello" too.
  if (!ws)
    for (let id = 0; id < vocab.size; id++)
      if (vocab.isWordStart(id) && Buffer.compare(Buffer.from(vocab.bytesOf(id)), want) === 0) return id;
  return -1;
}

/** Prepares targets against one source vocabulary (loaded once). */
export interface Preparer {
  /** Where the work runs. */
  readonly thread: 'worker' | 'main';
  readonly sourceVocabSize: number;
  prepare(
    target: string,
    auxFile: string | undefined,
    align: AlignOptions,
    options?: PrepareOptions,
  ): Promise<PreparedTokens>;
  close(): Promise<void>;
}

/** A target folder's vocabulary and the writer's facts of its tokenizer, from one parse of its files. */
async function loadTargetTokens(
  target: string,
): Promise<{ vocabulary: Vocabulary; tokenizerInfo: PreparedTokens['tokenizerInfo'] }> {
  const json = new Map<string, unknown>(); // each tokenizer file parsed once, for the vocabulary and the writer's facts
  const vocabulary = await loadVocabulary(target, { json });
  const tokenizerInfo = (await stat(target)).isDirectory()
    ? { ...(await readTokenizerInfo(target, { json, withVocab: false })), vocab: null }
    : undefined;
  return { vocabulary, tokenizerInfo };
}

/** A {@link Vocabulary} as typed arrays and plain values, which a worker posts without rebuilding 150k strings on the receiving thread. */
export interface PackedVocabulary {
  name: string;
  format: Vocabulary['format'];
  convention: Vocabulary['convention'];
  /** The pieces joined, and where each ends (UTF-16 units): one string to post, sliced on arrival. */
  pieces: { text: string; ends: Int32Array };
  kinds: Uint8Array;
  wordStarts: Uint8Array;
  byteOffsets: Uint32Array;
  bytes: Uint8Array;
  roles: [SpecialRole, number][];
  addsSpacePrefix: boolean;
}

/** Packs `v` (see {@link PackedVocabulary}). */
export function packVocabulary(v: Vocabulary): PackedVocabulary {
  // Arrays that own their whole buffer (a view into a shared one, e.g. Buffer's pool, is copied), so that they can be transferred.
  const own = <T extends Uint8Array | Uint32Array>(a: T): T =>
    a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : (a.slice() as T);
  return {
    name: v.name,
    format: v.format,
    convention: v.convention,
    pieces: joinPieces(v.pieces),
    kinds: own(v.kinds),
    wordStarts: own(v.wordStarts),
    byteOffsets: own(v.byteOffsets),
    bytes: own(v.bytes),
    roles: [...v.roles],
    addsSpacePrefix: v.addsSpacePrefix,
  };
}

/** Pieces as one string and their ends (no per-piece encoding; any string, lone surrogates included, comes back as it was). */
function joinPieces(pieces: readonly string[]): PackedVocabulary['pieces'] {
  const ends = new Int32Array(pieces.length);
  let at = 0;
  for (let i = 0; i < pieces.length; i++) ends[i] = at += pieces[i].length;
  return { text: pieces.join(''), ends };
}

/** The vocabulary {@link packVocabulary} packed. */
export function unpackVocabulary(p: PackedVocabulary): Vocabulary {
  const { text, ends } = p.pieces;
  const pieces = Array.from({ length: ends.length }, (_, i) => text.slice(i === 0 ? 0 : ends[i - 1], ends[i]));
  return new Vocabulary({ ...p, pieces, roles: new Map(p.roles) });
}

/** The buffers of a {@link PackedVocabulary}, for a worker's transfer list. */
export function packedBuffers(p: PackedVocabulary): ArrayBuffer[] {
  const views = [p.pieces.ends, p.kinds, p.wordStarts, p.byteOffsets, p.bytes];
  return [...new Set(views.map((a) => a.buffer as ArrayBuffer))];
}

/** A target's tokens loaded ahead, in another worker, while the source's are (see {@link openPreparer}). */
export interface PreloadedTarget {
  vocabulary: PackedVocabulary;
  tokenizerInfo: PreparedTokens['tokenizerInfo'];
  /** Wall time of the load (ms). */
  ms: number;
}

/** Loads a target's tokens for {@link PreloadedTarget} (in the loader worker). */
export async function preloadTarget(target: string): Promise<PreloadedTarget> {
  const t = performance.now();
  const { vocabulary, tokenizerInfo } = await loadTargetTokens(target);
  return { vocabulary: packVocabulary(vocabulary), tokenizerInfo, ms: performance.now() - t };
}

/**
 * Loads the target vocabulary, aligns it with `source`, segments it with `source` when `segment` is set
 * (for method 'fvt') and reads an aux file; runs on whichever thread calls it.
 */
export async function prepareTokens(
  source: Vocabulary,
  target: string,
  auxFile: string | undefined,
  align: AlignOptions,
  options: PrepareOptions = {},
): Promise<PreparedTokens> {
  const segment = options.segment === true;
  let t = performance.now();
  const { vocabulary: tv, tokenizerInfo } = options.preloaded
    ? { vocabulary: unpackVocabulary(options.preloaded.vocabulary), tokenizerInfo: options.preloaded.tokenizerInfo }
    : await loadTargetTokens(target);
  const loadTarget = (options.preloaded?.ms ?? 0) + (performance.now() - t);
  t = performance.now();
  const a = alignVocabularies(source, tv, align);
  const segmentation = segment ? segmentWithVocabulary(source, tv, { exclude: a.sourceIdOfTarget }) : undefined;
  const alignMs = performance.now() - t;
  t = performance.now();
  const aux = auxFile === undefined ? undefined : await loadAuxFile(auxFile, tv);
  let lookup: PreparedTokens['lookup'];
  if (options.lookup !== undefined) {
    const id = findToken(tv, options.lookup);
    const token =
      id < 0
        ? null
        : {
            id,
            piece: tv.pieces[id],
            kind: tv.kindOf(id),
            wordStart: tv.isWordStart(id),
            text: Buffer.from(tv.bytesOf(id)).toString('utf8'),
          };
    lookup = { token, sourcePieces: packPieces(source.pieces), targetPieces: packPieces(tv.pieces) };
  }
  return {
    tokenizerInfo,
    lookup,
    targetVocabSize: tv.size,
    sourceIdOfTarget: a.sourceIdOfTarget,
    category: a.category,
    report: a.report,
    aux: aux?.aux,
    auxPresent: aux?.present,
    auxInfo: aux?.info,
    segmentation,
    timings: { loadTarget, align: alignMs, aux: performance.now() - t },
  };
}

/** The compiled worker script next to this module, or null when running from sources. */
function workerScript(): string | null {
  const url = new URL('./prepareWorker.js', import.meta.url);
  const file = fileURLToPath(url);
  return file.endsWith('.js') &&
    existsSync(file) &&
    existsSync(fileURLToPath(new URL('./preparer.js', import.meta.url)))
    ? file
    : null;
}

/**
 * Opens a preparer for `sourceFolder`'s vocabulary: in a worker thread when `useWorker` (default true)
 * and the compiled worker exists, else on the calling thread. With workers, the tokenizers of the
 * targets in `preload` are parsed at the same time, each in a worker of its own (their errors are
 * those of the `prepare` call for that target).
 */
export async function openPreparer(
  sourceFolder: string,
  useWorker = true,
  preload: readonly string[] = [],
): Promise<Preparer> {
  const script = useWorker ? workerScript() : null;
  if (!script) {
    const vocab = await loadVocabulary(sourceFolder);
    return {
      thread: 'main',
      sourceVocabSize: vocab.size,
      prepare: (t, a, o, opts) => prepareTokens(vocab, t, a, o, opts),
      close: async () => undefined,
    };
  }
  // The targets named in `preload` have their tokenizer files parsed at once, each in a worker of
  // its own, while this worker parses the source's: on 150k-token vocabularies each parse is most
  // of a second, and the first target's alignment waits for both.
  const loaders: Worker[] = [];
  const preloads = new Map<string, Promise<PreloadedTarget>>();
  for (const target of new Set(preload.filter((t) => typeof t === 'string' && t !== ''))) {
    const loader = new Worker(script, { workerData: { preload: target } });
    loaders.push(loader);
    const p = new Promise<PreloadedTarget>((resolve, reject) => {
      loader.once(
        'message',
        (
          m:
            | { ok: true; value: PreloadedTarget }
            | { ok: false; error: { name: string; code?: string; message: string } },
        ) => (m.ok ? resolve(m.value) : reject(revive(m.error))),
      );
      loader.once('error', reject);
      loader.once('exit', (code) =>
        reject(new SaltError('E_INTERNAL', `the tokenizer loading worker exited with code ${code}`)),
      );
    });
    p.catch(() => undefined); // taken by prepare(), or dropped
    preloads.set(target, p);
  }
  const endLoaders = () => Promise.all(loaders.map((l) => l.terminate())).then(() => undefined);
  // Not unref'd: a pending prepare() must keep the process alive; close() (always called by transfer()) ends the worker.
  let worker: Worker;
  try {
    worker = new Worker(script, { workerData: { source: sourceFolder } });
  } catch (err) {
    await endLoaders();
    throw err;
  }
  let pending: { resolve: (v: unknown) => void; reject: (e: unknown) => void } | null = null;
  let dead: unknown = null;
  const settle = (fn: (p: NonNullable<typeof pending>) => void) => {
    const p = pending;
    pending = null;
    if (p) fn(p);
  };
  worker.on(
    'message',
    (m: { ok: true; value: unknown } | { ok: false; error: { name: string; code?: string; message: string } }) => {
      if (m.ok) settle((p) => p.resolve(m.value));
      else settle((p) => p.reject(revive(m.error)));
    },
  );
  worker.on('error', (e) => {
    dead = e;
    settle((p) => p.reject(e));
  });
  worker.on('exit', (code) => {
    if (!dead) dead = new SaltError('E_INTERNAL', `the preparation worker exited with code ${code}`);
    settle((p) => p.reject(dead));
  });
  const call = <T>(msg: unknown, transfer: ArrayBuffer[] = []): Promise<T> => {
    if (dead) return Promise.reject(dead);
    return new Promise<T>((resolve, reject) => {
      pending = { resolve: resolve as (v: unknown) => void, reject };
      worker.postMessage(msg, transfer);
    });
  };
  let sourceVocabSize: number;
  try {
    sourceVocabSize = await call<number>({ op: 'source' });
  } catch (err) {
    await Promise.all([worker.terminate(), endLoaders()]);
    throw err;
  }
  return {
    thread: 'worker',
    sourceVocabSize,
    prepare: async (target, auxFile, align, options = {}) => {
      const loaded = preloads.get(target);
      preloads.delete(target);
      if (loaded === undefined) return call<PreparedTokens>({ op: 'prepare', target, auxFile, align, options });
      const preloaded = await loaded;
      return call<PreparedTokens>(
        { op: 'prepare', target, auxFile, align, options: { ...options, preloaded } },
        packedBuffers(preloaded.vocabulary),
      );
    },
    close: async () => {
      dead = dead ?? new SaltError('E_INTERNAL', 'the preparer was closed');
      await Promise.all([worker.terminate(), endLoaders()]);
    },
  };
}

/** Rebuilds a SaltError (code, message) sent from the worker. */
function revive(e: { name: string; code?: string; message: string }): Error {
  const err = new SaltError((e.code ?? 'E_INTERNAL') as SaltError['code'], e.message);
  if (e.code && e.name !== 'SaltError') Object.defineProperty(err, 'name', { value: e.name });
  return err;
}
