/**
 * Helpers for atomic output: everything is written under a temporary name in the target folder and
 * renamed into place when complete, so a reader never sees a half-written file or folder.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat, lstat, mkdir } from 'node:fs/promises';
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

/**
 * Writes a file atomically: `fill` receives a handle to a fresh temporary file in the target's folder;
 * when it resolves the file is flushed, closed and renamed to `target`. On any failure the
 * temporary file is removed and the error re-thrown. Refuses to replace an existing `target`
 * unless `overwrite` is true (E_EXISTS).
 */
export async function writeFileAtomic(
  target: string,
  fill: (fh: FileHandle) => Promise<void>,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  if (!options.overwrite && (await pathExists(target))) {
    throw new SaltError('E_EXISTS', `refusing to overwrite existing file ${JSON.stringify(target)} (pass overwrite: true to replace it)`);
  }
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
    await fh.close();
    fh = undefined;
    try {
      await rename(tmp, target);
    } catch (err) {
      throw ioError(err, `could not rename ${JSON.stringify(tmp)} to ${JSON.stringify(target)}`);
    }
  } catch (err) {
    if (fh) await fh.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
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
