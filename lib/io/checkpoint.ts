/**
 * Checkpoints made of one safetensors file or of several shards listed in a
 * `model.safetensors.index.json` (the Hugging Face layout), for reading and writing. PyTorch
 * checkpoints (`pytorch_model.bin`, or shards listed in `pytorch_model.bin.index.json`) are read
 * through the same class, by {@link TorchFile}, without executing code.
 */
import { readdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { describe, SaltError, SaltRangeError, SaltTypeError } from '../errors.js';
import { readJsonFile } from '../inputFiles.js';
import { ioError, pathExists, writeBytesAtomic } from './atomic.js';
import {
  checkTensorSpecs,
  type ReadFloat32Options,
  SafetensorsFile,
  type TensorInfo,
  type TensorReader,
  type TensorToWrite,
  writeSafetensors,
} from './safetensors.js';
import { TorchFile } from './torchCheckpoint.js';

/** Name of the Hugging Face index file of a sharded safetensors checkpoint. */
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';
/** Name of a single-file Hugging Face safetensors checkpoint. */
export const SAFETENSORS_SINGLE = 'model.safetensors';
/** Name of the Hugging Face index file of a sharded PyTorch checkpoint. */
export const PYTORCH_INDEX = 'pytorch_model.bin.index.json';
/** Name of a single-file Hugging Face PyTorch checkpoint. */
export const PYTORCH_SINGLE = 'pytorch_model.bin';

/** PyTorch files of a training folder that hold no model weights (never taken as the weights). */
const NOT_WEIGHTS = /^(training_args\.bin|optimizer\.pt|scheduler\.pt|rng_state.*\.pth|scaler\.pt)$/;

/** True for a PyTorch weights file name (`.bin`, `.pt`, `.pth`). */
function isTorchName(name: string): boolean {
  return /\.(bin|pt|pth)$/.test(name);
}

/** A tensor of a checkpoint together with the file it lives in. */
export interface CheckpointTensorInfo extends TensorInfo {
  /** File name of the shard, relative to the checkpoint folder. */
  readonly file: string;
}

/** Checks that a shard name from an index file is a plain file name inside the folder. */
function checkShardName(name: unknown, indexPath: string): string {
  if (
    typeof name !== 'string' ||
    name === '' ||
    name === '.' ||
    name === '..' ||
    name.includes('/') ||
    name.includes('\\') ||
    name.includes('\0')
  ) {
    throw new SaltError(
      'E_FORMAT',
      `${indexPath}: weight_map values must be plain file names in the same folder, received ${describe(name)}`,
    );
  }
  return name;
}

/**
 * A model's weights: a single safetensors file or a sharded set, or the same in PyTorch's format
 * (read by `TorchFile`; see the `format` field). Tensor lookups go to the right shard; reads are
 * positioned reads, never whole files.
 */
export class SafetensorsCheckpoint implements TensorReader {
  /** Folder holding the files. */
  readonly folder: string;
  /** Format of the files: `'safetensors'`, or `'pytorch'` for `torch.save` zip files. */
  readonly format: 'safetensors' | 'pytorch';
  /** Shard file names (relative to {@link folder}) in order. */
  readonly files: readonly string[];
  /** The index's `metadata` object (sharded checkpoints) or the single file's `__metadata__`. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** File name of the index the checkpoint was opened from (relative to {@link folder}), or null for a single file. */
  readonly indexFile: string | null;
  readonly #shards: Map<string, SafetensorsFile | TorchFile>;
  readonly #where: Map<string, string>;

  private constructor(
    folder: string,
    files: string[],
    shards: Map<string, SafetensorsFile | TorchFile>,
    where: Map<string, string>,
    metadata: Record<string, unknown>,
    indexFile: string | null,
  ) {
    this.folder = folder;
    this.indexFile = indexFile;
    this.format = [...shards.values()].every((s) => s instanceof TorchFile) ? 'pytorch' : 'safetensors';
    this.files = Object.freeze(files);
    this.#shards = shards;
    this.#where = where;
    this.metadata = Object.freeze(metadata);
  }

  /**
   * Opens the weights of a folder: `model.safetensors.index.json` (sharded) if present, else
   * `model.safetensors`, else the folder's only `*.safetensors` file. Without safetensors files, the
   * PyTorch weights: `pytorch_model.bin.index.json` (sharded), else `pytorch_model.bin`, else the
   * folder's only `*.bin` / `*.pt` / `*.pth` file (training_args.bin, optimizer.pt, scheduler.pt,
   * rng_state*.pth and scaler.pt are not weights). A path to a `.safetensors`, `.bin`, `.pt` or
   * `.pth` file or to an index `.json` file is accepted too. No weights give E_NOT_FOUND.
   */
  static async open(path: string): Promise<SafetensorsCheckpoint> {
    if (typeof path !== 'string') throw new SaltTypeError(`path must be a string, received ${describe(path)}`);
    if (path.endsWith('.json')) return SafetensorsCheckpoint.openIndex(path);
    if (path.endsWith('.safetensors') || isTorchName(path))
      return SafetensorsCheckpoint.openFiles(join(path, '..'), [basename(path)]);
    let entries: string[];
    try {
      entries = await readdir(path);
    } catch (err) {
      throw ioError(err, `could not list model folder ${JSON.stringify(path)}`);
    }
    if (entries.includes(SAFETENSORS_INDEX)) return SafetensorsCheckpoint.openIndex(join(path, SAFETENSORS_INDEX));
    if (entries.includes(SAFETENSORS_SINGLE)) return SafetensorsCheckpoint.openFiles(path, [SAFETENSORS_SINGLE]);
    const st = entries.filter((e) => e.endsWith('.safetensors') && !e.startsWith('.'));
    if (st.length === 1) return SafetensorsCheckpoint.openFiles(path, st);
    if (st.length > 1) {
      throw new SaltError(
        'E_FORMAT',
        `${JSON.stringify(path)} has ${st.length} .safetensors files (${st.slice(0, 5).join(', ')}${st.length > 5 ? ', ...' : ''}) but no ${SAFETENSORS_INDEX} saying which tensors they hold`,
      );
    }
    if (entries.includes(PYTORCH_INDEX)) return SafetensorsCheckpoint.openIndex(join(path, PYTORCH_INDEX));
    if (entries.includes(PYTORCH_SINGLE)) return SafetensorsCheckpoint.openFiles(path, [PYTORCH_SINGLE]);
    const pt = entries.filter((e) => isTorchName(e) && !e.startsWith('.') && !NOT_WEIGHTS.test(e));
    if (pt.length === 1) return SafetensorsCheckpoint.openFiles(path, pt);
    if (pt.length > 1) {
      throw new SaltError(
        'E_FORMAT',
        `${JSON.stringify(path)} has ${pt.length} PyTorch files (${pt.slice(0, 5).join(', ')}${pt.length > 5 ? ', ...' : ''}) but no ${PYTORCH_INDEX} saying which tensors they hold`,
      );
    }
    throw new SaltError(
      'E_NOT_FOUND',
      `${JSON.stringify(path)} has no weights: expected ${SAFETENSORS_SINGLE}, ${SAFETENSORS_INDEX}, ${PYTORCH_SINGLE} or ${PYTORCH_INDEX}`,
    );
  }

  private static async openIndex(indexPath: string): Promise<SafetensorsCheckpoint> {
    const idx = await readJsonFile(indexPath, 'checkpoint index');
    const map = (idx as { weight_map?: unknown } | null)?.weight_map;
    if (idx === null || typeof idx !== 'object' || map === null || typeof map !== 'object' || Array.isArray(map)) {
      throw new SaltError(
        'E_FORMAT',
        `${indexPath}: expected an object with a "weight_map" object, received ${describe(map)}`,
      );
    }
    const folder = join(indexPath, '..');
    const where = new Map<string, string>();
    const files: string[] = [];
    for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
      const f = checkShardName(file, indexPath);
      where.set(name, f);
      if (!files.includes(f)) files.push(f);
    }
    if (!files.length) throw new SaltError('E_FORMAT', `${indexPath}: weight_map is empty`);
    const meta = (idx as { metadata?: unknown }).metadata;
    const cp = await SafetensorsCheckpoint.openFiles(
      folder,
      files,
      where,
      meta && typeof meta === 'object' ? (meta as Record<string, unknown>) : {},
      basename(indexPath),
    );
    return cp;
  }

  private static async openFiles(
    folder: string,
    files: string[],
    index?: Map<string, string>,
    metadata?: Record<string, unknown>,
    indexFile: string | null = null,
  ): Promise<SafetensorsCheckpoint> {
    const shards = new Map<string, SafetensorsFile | TorchFile>();
    try {
      for (const f of files)
        shards.set(f, await (isTorchName(f) ? TorchFile.open(join(folder, f)) : SafetensorsFile.open(join(folder, f))));
      const where = new Map<string, string>();
      if (index) {
        for (const [name, f] of index) {
          if (!shards.get(f)!.has(name))
            throw new SaltError(
              'E_FORMAT',
              `${join(folder, files.some(isTorchName) ? PYTORCH_INDEX : SAFETENSORS_INDEX)} maps tensor ${JSON.stringify(name)} to ${f}, which has no such tensor`,
            );
          where.set(name, f);
        }
      } else {
        for (const [f, s] of shards) for (const name of s.names()) where.set(name, f);
      }
      return new SafetensorsCheckpoint(
        folder,
        files,
        shards,
        where,
        metadata ?? { ...shards.get(files[0])!.metadata },
        indexFile,
      );
    } catch (err) {
      for (const s of shards.values()) await s.close();
      throw err;
    }
  }

  names(): string[] {
    return [...this.#where.keys()];
  }

  has(name: string): boolean {
    return this.#where.has(name);
  }

  /** The shard file holding a tensor. */
  fileOf(name: string): string {
    const f = this.#where.get(name);
    if (f === undefined)
      throw new SaltError('E_NOT_FOUND', `${this.folder}: checkpoint has no tensor named ${JSON.stringify(name)}`);
    return f;
  }

  /** The `__metadata__` of one shard file (`{ format: 'pt' }`-like; empty for PyTorch files, which have none). */
  fileMetadata(file: string): Readonly<Record<string, string>> {
    const s = this.#shards.get(file);
    if (s === undefined)
      throw new SaltError('E_NOT_FOUND', `${this.folder}: checkpoint has no file ${JSON.stringify(file)}`);
    return s instanceof SafetensorsFile ? s.metadata : {};
  }

  /**
   * Size in bytes that the shard file had when it was opened and validated (header plus data area),
   * or null for a PyTorch file.
   */
  fileByteLength(file: string): number | null {
    const s = this.#shards.get(file);
    if (s === undefined)
      throw new SaltError('E_NOT_FOUND', `${this.folder}: checkpoint has no file ${JSON.stringify(file)}`);
    return s instanceof SafetensorsFile ? s.fileSize : null;
  }

  info(name: string): CheckpointTensorInfo {
    const file = this.fileOf(name);
    return { ...this.#shards.get(file)!.info(name), file };
  }

  /** Header entries of all tensors. */
  tensors(): CheckpointTensorInfo[] {
    return this.names().map((n) => this.info(n));
  }

  readBytes(name: string): Promise<Buffer> {
    return this.#shards.get(this.fileOf(name))!.readBytes(name);
  }

  streamBytes(name: string, chunkBytes?: number): AsyncGenerator<Buffer> {
    return this.#shards.get(this.fileOf(name))!.streamBytes(name, chunkBytes);
  }

  readFloat32(name: string, options?: ReadFloat32Options): Promise<Float32Array> {
    return this.#shards.get(this.fileOf(name))!.readFloat32(name, options);
  }

  async close(): Promise<void> {
    for (const s of this.#shards.values()) await s.close();
  }
}

/** Options of {@link writeCheckpoint}. */
export interface WriteCheckpointOptions {
  /** Largest shard in bytes (tensor data); above it the checkpoint is split. Default 5 GB (Hugging Face's default). */
  maxShardBytes?: number;
  /** `__metadata__` of every shard (e.g. `{ format: 'pt' }`, which Hugging Face writes). */
  metadata?: Record<string, string>;
  /** File name stem: "model" gives model.safetensors or model-00001-of-0000N.safetensors. */
  stem?: string;
}

/** Result of {@link writeCheckpoint}. */
export interface WrittenCheckpoint {
  /** Files written, relative to the folder (shards, then the index when sharded). */
  files: string[];
  /** Total bytes of tensor data. */
  totalSize: number;
}

/**
 * Writes tensors as a Hugging Face safetensors checkpoint into `folder` (created if missing; it must
 * not already contain the files, E_EXISTS): one `model.safetensors` when the data fits in `maxShardBytes`, else
 * shards `model-0000i-of-0000N.safetensors` (tensors packed greedily in the given order; a tensor
 * larger than the limit gets a shard of its own) plus `model.safetensors.index.json`. All tensor
 * specs are validated before the first byte is written (names unique across shards). Every file is
 * written atomically; when a later shard fails, shards already written are removed.
 */
export async function writeCheckpoint(
  folder: string,
  tensors: readonly TensorToWrite[],
  options: WriteCheckpointOptions = {},
): Promise<WrittenCheckpoint> {
  const limit = options.maxShardBytes ?? 5_000_000_000;
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new SaltRangeError(`maxShardBytes must be a positive integer, received ${describe(limit)}`, 'E_ARGUMENT');
  const stem = options.stem ?? 'model';
  if (!/^[A-Za-z0-9_.-]+$/.test(stem))
    throw new SaltRangeError(`stem must be a plain file name stem, received ${describe(stem)}`, 'E_ARGUMENT');
  // Validate every tensor once, across all shards (unique names, shapes, data lengths), before
  // anything is written.
  const sizes = checkTensorSpecs(tensors);
  const groups: TensorToWrite[][] = [];
  let cur: TensorToWrite[] = [];
  let curBytes = 0;
  let totalSize = 0;
  for (const [i, t] of tensors.entries()) {
    const b = sizes[i];
    totalSize += b;
    if (cur.length && curBytes + b > limit) {
      groups.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(t);
    curBytes += b;
  }
  if (cur.length || !groups.length) groups.push(cur);
  const n = groups.length;
  const names =
    n === 1
      ? [`${stem}.safetensors`]
      : groups.map((_, i) => `${stem}-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`);
  const indexName = `${stem}.safetensors.index.json`;
  for (const f of n === 1 ? names : [...names, indexName]) {
    if (await pathExists(join(folder, f)))
      throw new SaltError('E_EXISTS', `refusing to overwrite ${JSON.stringify(join(folder, f))}`);
  }
  const written: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      await writeSafetensors(join(folder, names[i]), groups[i], { metadata: options.metadata });
      written.push(names[i]);
    }
    if (n > 1) {
      const weightMap: Record<string, string> = Object.create(null); // "__proto__" is a tensor name like any other
      groups.forEach((g, i) => g.forEach((t) => (weightMap[t.name] = names[i])));
      await writeBytesAtomic(
        join(folder, indexName),
        JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n',
      );
      written.push(indexName);
    }
  } catch (err) {
    for (const f of written) await rm(join(folder, f), { force: true }).catch(() => undefined);
    throw err;
  }
  return { files: written, totalSize };
}

/** @internal Renames, wrapping errors. */
export async function renamePath(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    throw ioError(err, `could not rename ${JSON.stringify(from)} to ${JSON.stringify(to)}`);
  }
}
