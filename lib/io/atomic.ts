/**
 * Helpers for atomic output: everything is written under a temporary name in the target folder and
 * moved into place when complete (a hard link for files that must not replace anything, else a
 * rename), so a reader never sees a half-written file or folder and nothing is replaced without
 * `overwrite`.
 */
import { randomBytes } from 'node:crypto';
import { link, open, rename, rm, stat, lstat, mkdir, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SaltError } from '../errors.js';

/** A temporary name next to `target` (same folder, so the final rename stays on one file system). */
export function tempNameFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
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
    if (!NOT_SUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw ioError(err, `could not flush folder ${JSON.stringify(folder)}`);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function existsError(target: string): SaltError {
  return new SaltError('E_EXISTS', `refusing to overwrite existing file ${JSON.stringify(target)} (pass overwrite: true to replace it)`);
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
 */
export async function writeFileAtomic(
  target: string,
  fill: (fh: FileHandle) => Promise<void>,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  const overwrite = options.overwrite === true;
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
    try {
      await fh.datasync();
    } catch (err) {
      throw ioError(err, `could not flush ${JSON.stringify(tmp)}`);
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
  await syncFolder(dirname(target));
}

/**
 * Renames the complete folder `tmp` to `target`. Without `overwrite`, relies on rename's refusal
 * to replace a non-empty folder or a file (E_EXISTS, `tmp` left for the caller to remove); an
 * empty folder at `target` is replaced, as nothing is lost. With `overwrite`, an existing
 * `target` is moved aside, `tmp` renamed in and the old folder deleted (restored if the rename fails).
 */
export async function publishFolder(tmp: string, target: string, overwrite: boolean): Promise<void> {
  try {
    await rename(tmp, target);
  } catch (err) {
    const c = (err as NodeJS.ErrnoException).code ?? '';
    if (c !== 'ENOTEMPTY' && c !== 'EEXIST' && c !== 'ENOTDIR' && c !== 'EISDIR') throw ioError(err, `could not rename ${JSON.stringify(tmp)} to ${JSON.stringify(target)}`);
    if (!overwrite) throw new SaltError('E_EXISTS', `output folder ${JSON.stringify(target)} already exists (pass overwrite: true to replace it)`);
    const trash = tempNameFor(target) + '.old';
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
    await rm(trash, { recursive: true, force: true }).catch(() => undefined);
  }
  await syncFolder(dirname(target));
}

/** Writes `data` to `target` atomically (see {@link writeFileAtomic}). */
export async function writeBytesAtomic(target: string, data: Uint8Array | string, options: { overwrite?: boolean } = {}): Promise<void> {
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
