/**
 * Helpers for atomic output: everything is written under a temporary name in the target folder and
 * moved into place when complete (a hard link for files that must not replace anything, else a
 * rename), so a reader never sees a half-written file or folder and nothing is replaced without
 * `overwrite`. Temporary names carry a hash of the host name and the process id, so that the
 * leftovers of a killed run can be told apart and removed by a later run ({@link cleanStaleTemps}).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type FileHandle,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';

import { SaltError, SaltRangeError } from '../errors.js';

/** The report `transfer()` and `writeTransferredModel` write into every output folder: it marks a folder salt-transfer wrote. */
export const REPORT_FILE = 'salt-transfer-report.json';
/** The report of `salt-transfer demo`: it marks the demo's output folder. */
export const DEMO_MARKER = 'demo-report.json';
/** Files whose presence marks a folder as salt-transfer's own output, which `overwrite` may replace. */
const OUTPUT_MARKERS = [REPORT_FILE, DEMO_MARKER];

const HOST = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
/** `.<name>.tmp-<host>-<pid>-<random>` with an optional `.old` (a replaced folder on its way out). */
const TEMP_NAME = /^\..*\.tmp-([0-9a-f]{8})-(\d+)-[0-9a-f]{8}(?:\.old)?$/s;
/** Longest file name most file systems take (NAME_MAX), in bytes. */
const NAME_MAX = 255;

/** The longest prefix of `s` whose UTF-8 encoding fits in `bytes` (whole code points only). */
function truncateUtf8(s: string, bytes: number): string {
  let used = 0;
  let out = '';
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (used + n > bytes) break;
    used += n;
    out += ch;
  }
  return out;
}

/**
 * A temporary name next to `target` (same folder, so the final rename stays on one file system). It
 * fits in NAME_MAX bytes even with `.old` appended, whatever the length of `target`'s name (the name
 * part is shortened; the host/pid/random suffix keeps it unique).
 */
export function tempNameFor(target: string): string {
  const suffix = `.tmp-${HOST}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const name = truncateUtf8(basename(target), NAME_MAX - 1 - suffix.length - '.old'.length);
  return join(dirname(target), `.${name}${suffix}`);
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Removes the temporary files and folders that runs on this host left in `folder` when they were
 * killed (their process no longer exists). Entries of live processes and of other hosts (a shared
 * file system) are left alone. Best effort: returns the names removed.
 */
export async function cleanStaleTemps(folder: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || m[1] !== HOST || processAlive(Number(m[2]))) continue;
    try {
      await rm(join(folder, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // not ours to insist on
    }
  }
  return removed;
}

/**
 * Creates `folder` and its missing parents; returns a function that removes the folders this call
 * created, deepest first, as long as they are empty (so a failed write leaves no new empty parents).
 */
export async function createFolders(folder: string): Promise<() => Promise<void>> {
  const target = resolve(folder);
  let first: string | undefined;
  try {
    first = await mkdir(target, { recursive: true });
  } catch (err) {
    throw ioError(err, `could not create folder ${JSON.stringify(target)}`);
  }
  return async () => {
    if (first === undefined) return;
    for (let d = target; ; d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty (or gone): stop there
      }
      if (d === first || dirname(d) === d) return;
    }
  };
}

/**
 * What replacing `target` with `overwrite` would delete, checked before anything is written: nothing
 * (absent), an empty folder, or a folder salt-transfer wrote (it holds one of the output markers).
 * Anything else (a file, a symbolic link, a folder without a marker) is refused with E_EXISTS, so
 * `overwrite` can never delete a user's own files.
 */
export async function checkReplaceable(target: string, overwrite: boolean): Promise<'absent' | 'empty' | 'ours'> {
  let st;
  try {
    st = await lstat(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw ioError(err, `could not inspect ${JSON.stringify(target)}`);
  }
  if (!overwrite)
    throw new SaltError(
      'E_EXISTS',
      `output folder ${JSON.stringify(target)} already exists (pass overwrite: true, or --overwrite, to replace a folder salt-transfer wrote)`,
    );
  const what = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? null : 'a file';
  if (what)
    throw new SaltError(
      'E_EXISTS',
      `refusing to replace ${JSON.stringify(target)}: it is ${what}, and overwrite only replaces folders salt-transfer wrote`,
    );
  let entries: string[];
  try {
    entries = await readdir(target);
  } catch (err) {
    throw ioError(err, `could not list ${JSON.stringify(target)}`);
  }
  if (entries.length === 0) return 'empty';
  for (const m of OUTPUT_MARKERS) {
    if (!entries.includes(m)) continue;
    try {
      if ((await lstat(join(target, m))).isFile()) return 'ours';
    } catch {
      // fall through to the refusal
    }
  }
  throw new SaltError(
    'E_EXISTS',
    `refusing to replace ${JSON.stringify(target)}: it is not empty and holds no ${OUTPUT_MARKERS.join(' or ')}, so salt-transfer did not write it (overwrite only replaces folders salt-transfer wrote; remove it yourself or choose another output folder)`,
  );
}

/** `p` with every existing part's symbolic links resolved (the missing tail appended as given). */
async function realpathLoose(p: string): Promise<string> {
  const abs = resolve(p);
  const tail: string[] = [];
  for (let d = abs; ; d = dirname(d)) {
    try {
      return join(await realpath(d), ...tail.reverse());
    } catch (err) {
      const c = (err as NodeJS.ErrnoException).code;
      if ((c !== 'ENOENT' && c !== 'ENOTDIR') || dirname(d) === d) return abs;
      tail.push(basename(d));
    }
  }
}

function within(child: string, parent: string): boolean {
  return child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

/**
 * Refuses an output folder that is, contains, or lies inside one of the inputs (symbolic links
 * resolved): writing it, and above all replacing it with `overwrite`, would destroy an input or the
 * files beside it. E_ARGUMENT naming both paths.
 */
export async function checkOutputPlacement(
  out: string,
  inputs: ReadonlyArray<{ path: string; what: string }>,
): Promise<void> {
  const o = await realpathLoose(out);
  for (const { path, what } of inputs) {
    const i = await realpathLoose(path);
    const q = `output folder ${JSON.stringify(out)}`;
    if (o === i)
      throw new SaltRangeError(
        `${q} is the ${what} ${JSON.stringify(path)}; choose a new folder for the output`,
        'E_ARGUMENT',
      );
    if (within(i, o))
      throw new SaltRangeError(
        `${q} contains the ${what} ${JSON.stringify(path)}; writing there could replace the input, choose a folder outside it`,
        'E_ARGUMENT',
      );
    if (within(o, i))
      throw new SaltRangeError(
        `${q} lies inside the ${what} ${JSON.stringify(path)}; choose a folder outside the inputs`,
        'E_ARGUMENT',
      );
  }
}

/** True when something (file, folder or link) exists at `p`. */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(err, `could not inspect ${JSON.stringify(p)}`);
  }
}

/** Wraps a Node file-system error into a SaltError with code E_IO (or E_NOT_FOUND for ENOENT). */
export function ioError(err: unknown, what: string): SaltError {
  if (err instanceof SaltError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e?.code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO';
  return new SaltError(code, `${what}: ${e?.message ?? String(err)}`, { cause: err });
}

/** Error codes of platforms / file systems that cannot fsync a folder or make hard links. */
const NOT_SUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EBADF']);

/**
 * Flushes a folder's entries (after a rename into it) so the new name survives a power cut.
 * Best effort where the platform cannot open or fsync folders (Windows, some network file systems).
 */
export async function syncFolder(folder: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(folder, 'r');
  } catch (err) {
    if (NOT_SUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) return;
    throw ioError(err, `could not open folder ${JSON.stringify(folder)} to flush it`);
  }
  try {
    await fh.sync();
  } catch (err) {
    if (!NOT_SUPPORTED.has((err as NodeJS.ErrnoException).code ?? ''))
      throw ioError(err, `could not flush folder ${JSON.stringify(folder)}`);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function existsError(target: string): SaltError {
  return new SaltError(
    'E_EXISTS',
    `refusing to overwrite existing file ${JSON.stringify(target)} (pass overwrite: true to replace it)`,
  );
}

/**
 * Moves the complete temporary file `tmp` to `target`. With `overwrite` a plain rename (replaces
 * atomically). Without it, `link(tmp, target)` then `unlink(tmp)`: the link fails with EEXIST if
 * anything appeared at `target` in the meantime, so an existing file is never replaced (no
 * check-then-act window). On file systems without hard links it falls back to a check followed by
 * a rename.
 */
async function publishFile(tmp: string, target: string, overwrite: boolean): Promise<void> {
  if (overwrite) {
    try {
      await rename(tmp, target);
    } catch (err) {
      throw ioError(err, `could not rename ${JSON.stringify(tmp)} to ${JSON.stringify(target)}`);
    }
    return;
  }
  try {
    await link(tmp, target);
  } catch (err) {
    const c = (err as NodeJS.ErrnoException).code ?? '';
    if (c === 'EEXIST') throw existsError(target);
    if (!NOT_SUPPORTED.has(c)) throw ioError(err, `could not link ${JSON.stringify(tmp)} to ${JSON.stringify(target)}`);
    // No hard links here: check, then rename (a file created between the two would be replaced).
    if (await pathExists(target)) throw existsError(target);
    try {
      await rename(tmp, target);
    } catch (err2) {
      throw ioError(err2, `could not rename ${JSON.stringify(tmp)} to ${JSON.stringify(target)}`);
    }
    return;
  }
  await unlink(tmp).catch(() => undefined); // the data is safely at `target`; a leftover name is harmless
}

/**
 * Writes a file atomically: `fill` receives a handle to a fresh temporary file in the target's folder;
 * when it resolves the file is flushed, closed and moved to `target`, and the folder is flushed. On
 * any failure the temporary file is removed and the error re-thrown. Never replaces an existing
 * `target` unless `overwrite` is true (E_EXISTS, also when the target appears during the write).
 * `sync: false` skips both flushes: only for files inside a temporary folder that the caller
 * flushes ({@link syncFile}, {@link syncFolder}) before publishing it.
 */
export async function writeFileAtomic(
  target: string,
  fill: (fh: FileHandle) => Promise<void>,
  options: { overwrite?: boolean; sync?: boolean } = {},
): Promise<void> {
  const overwrite = options.overwrite === true;
  const sync = options.sync !== false;
  // Early answer for the common case; the final link is what guarantees it.
  if (!overwrite && (await pathExists(target))) throw existsError(target);
  try {
    await mkdir(dirname(target), { recursive: true });
  } catch (err) {
    throw ioError(err, `could not create folder ${JSON.stringify(dirname(target))}`);
  }
  const tmp = tempNameFor(target);
  let fh: FileHandle | undefined;
  try {
    try {
      fh = await open(tmp, 'wx');
    } catch (err) {
      throw ioError(err, `could not create ${JSON.stringify(tmp)}`);
    }
    await fill(fh);
    if (sync) {
      try {
        await fh.datasync();
      } catch (err) {
        throw ioError(err, `could not flush ${JSON.stringify(tmp)}`);
      }
    }
    try {
      await fh.close();
    } catch (err) {
      throw ioError(err, `could not close ${JSON.stringify(tmp)}`);
    } finally {
      fh = undefined;
    }
    await publishFile(tmp, target, overwrite);
  } catch (err) {
    if (fh) await fh.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  if (sync) await syncFolder(dirname(target));
}

/**
 * Flushes a file's data to the disk (`fdatasync`), for files written with `sync: false` whose
 * flush was deferred so that the disk writes back several files while the next one is produced.
 */
export async function syncFile(path: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r+');
  } catch (err) {
    throw ioError(err, `could not open ${JSON.stringify(path)} to flush it`);
  }
  try {
    await fh.datasync();
  } catch (err) {
    throw ioError(err, `could not flush ${JSON.stringify(path)}`);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * Renames the complete folder `tmp` to `target`. Without `overwrite`, relies on rename's refusal
 * to replace a non-empty folder or a file (E_EXISTS, `tmp` left for the caller to remove); an
 * empty folder at `target` is replaced, as nothing is lost. With `overwrite`, an existing `target`
 * must pass {@link checkReplaceable} (empty, or written by salt-transfer); it is moved aside, `tmp`
 * renamed in and the old folder deleted (restored if the rename fails).
 *
 * With a `signal`, the publication is cancellable up to its end: an abort seen before the rename
 * throws E_ABORTED; one that arrived while the renames and the flush were in flight is undone
 * (the new folder goes back to `tmp`, the old one is restored) and throws E_ABORTED too.
 */
export async function publishFolder(
  tmp: string,
  target: string,
  overwrite: boolean,
  signal?: AbortSignal,
): Promise<void> {
  const aborted = () => new SaltError('E_ABORTED', 'aborted before the output folder was published');
  if (signal?.aborted) throw aborted();
  let trash: string | undefined;
  try {
    await rename(tmp, target);
  } catch (err) {
    const c = (err as NodeJS.ErrnoException).code ?? '';
    if (c !== 'ENOTEMPTY' && c !== 'EEXIST' && c !== 'ENOTDIR' && c !== 'EISDIR')
      throw ioError(err, `could not rename ${JSON.stringify(tmp)} to ${JSON.stringify(target)}`);
    if (!overwrite)
      throw new SaltError(
        'E_EXISTS',
        `output folder ${JSON.stringify(target)} already exists (pass overwrite: true to replace it)`,
      );
    await checkReplaceable(target, true);
    trash = tempNameFor(target) + '.old';
    try {
      await rename(target, trash);
    } catch (err2) {
      throw ioError(err2, `could not move the old ${JSON.stringify(target)} aside`);
    }
    try {
      await rename(tmp, target);
    } catch (err2) {
      await rename(trash, target).catch(() => undefined);
      throw ioError(err2, `could not rename ${JSON.stringify(tmp)} to ${JSON.stringify(target)}`);
    }
  }
  await syncFolder(dirname(target));
  if (signal?.aborted) {
    // The interrupt arrived while publishing: take the new folder back and restore the old one.
    await rename(target, tmp).catch(() => undefined);
    if (trash !== undefined) await rename(trash, target).catch(() => undefined);
    throw aborted();
  }
  if (trash !== undefined) await rm(trash, { recursive: true, force: true }).catch(() => undefined);
}

/** Writes `data` to `target` atomically (see {@link writeFileAtomic}). */
export async function writeBytesAtomic(
  target: string,
  data: Uint8Array | string,
  options: { overwrite?: boolean; sync?: boolean } = {},
): Promise<void> {
  await writeFileAtomic(
    target,
    async (fh) => {
      try {
        await fh.writeFile(data);
      } catch (err) {
        throw ioError(err, `could not write ${JSON.stringify(target)}`);
      }
    },
    options,
  );
}

/** Size in bytes of the file at `p` (E_NOT_FOUND when missing). */
export async function fileSize(p: string): Promise<number> {
  try {
    return (await stat(p)).size;
  } catch (err) {
    throw ioError(err, `could not stat ${JSON.stringify(p)}`);
  }
}
