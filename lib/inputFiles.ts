/**
 * Reading input files safely: only regular files are opened for reading (a FIFO, socket or device
 * named like a model file would block the process forever or read without end), text must be valid
 * UTF-8 (never silently turned into U+FFFD), and JSON is refused past a nesting depth that would
 * exhaust the stack of code walking it. Every failure is a SaltError naming the file.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, constants, fstatSync, openSync, type Stats } from 'node:fs';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';

import { SaltError, SaltRangeError } from './errors.js';

/** Deepest nesting of arrays/objects accepted in a JSON input file (real configs and tokenizers stay below 10). */
export const MAX_JSON_DEPTH = 256;

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** A file-system error as a SaltError: E_NOT_FOUND for ENOENT (and ENOTDIR: a path component is a file), else E_IO. */
export function fsError(err: unknown, what: string): SaltError {
  if (err instanceof SaltError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e?.code === 'ENOENT' || e?.code === 'ENOTDIR' ? 'E_NOT_FOUND' : 'E_IO';
  const why =
    e?.code === 'ELOOP'
      ? 'a symbolic link loop (ELOOP)'
      : e?.code === 'EACCES'
        ? 'permission denied (EACCES)'
        : (e?.message ?? String(err));
  return new SaltError(code, `${what}: ${why}`, { cause: err });
}

function notRegular(path: string, st: Stats, what: string): SaltError {
  return new SaltError('E_IO', `${what} ${JSON.stringify(path)} is ${kindOf(st)}, expected a regular file`);
}

/**
 * Opens an existing regular file for reading. The open is non-blocking, so a FIFO is refused
 * instead of waiting for a writer; the type is checked on the opened descriptor (no race with a
 * rename in between).
 */
export async function openRegularFile(path: string, what = 'file'): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw fsError(err, `cannot open ${what} ${JSON.stringify(path)}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(path, st, what);
    return fh;
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw fsError(err, `cannot inspect ${what} ${JSON.stringify(path)}`);
  }
}

/** Synchronous {@link openRegularFile}: a file descriptor the caller closes. */
export function openRegularFileSync(path: string, what = 'file'): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw fsError(err, `cannot open ${what} ${JSON.stringify(path)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(path, st, what);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw fsError(err, `cannot inspect ${what} ${JSON.stringify(path)}`);
  }
}

/** The bytes of a regular file (see {@link openRegularFile}). */
export async function readRegularFile(path: string, what = 'file'): Promise<Buffer> {
  const fh = await openRegularFile(path, what);
  try {
    return await fh.readFile();
  } catch (err) {
    throw fsError(err, `cannot read ${what} ${JSON.stringify(path)}`);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Byte offset of the first invalid UTF-8 sequence in `b`, or -1. */
export function invalidUtf8Offset(b: Uint8Array): number {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let len: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) [len, min] = [2, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [len, min] = [3, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [len, min] = [4, 0x10000];
    else return i;
    if (i + len > n) return i;
    let cp = c & (0xff >> (len + 1));
    for (let k = 1; k < len; k++) {
      const d = b[i + k];
      if ((d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return -1;
}

/** Checks that bytes are UTF-8: E_FORMAT naming the file and the byte offset of the first invalid sequence. */
export function checkUtf8(b: Uint8Array, path: string, what = 'file'): void {
  // Node's native check first (tens of times faster on a 10 MB tokenizer.json); the offset is looked for only in a bad file.
  const bad = isUtf8(b) ? -1 : invalidUtf8Offset(b);
  if (bad >= 0)
    throw new SaltError(
      'E_FORMAT',
      `${what} ${JSON.stringify(path)} is not valid UTF-8: invalid byte sequence at byte offset ${bad}`,
    );
}

/** Decodes UTF-8 strictly (see {@link checkUtf8}); a leading byte-order mark is dropped. */
export function decodeUtf8(b: Uint8Array, path: string, what = 'file'): string {
  checkUtf8(b, path, what);
  const text = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** The text of a regular file, strictly UTF-8 (a leading byte-order mark is dropped). */
export async function readUtf8File(path: string, what = 'file'): Promise<string> {
  return decodeUtf8(await readRegularFile(path, what), path, what);
}

/** Deepest array/object nesting of JSON text (strings skipped); stops counting past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/** Parses JSON text of a file: E_FORMAT when invalid or nested deeper than {@link MAX_JSON_DEPTH}. */
export function parseJsonText(text: string, path: string, what = 'file'): unknown {
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new SaltError(
      'E_FORMAT',
      `${what} ${JSON.stringify(path)} nests arrays/objects deeper than ${MAX_JSON_DEPTH} levels; refusing it`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SaltError('E_FORMAT', `${what} ${JSON.stringify(path)} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Reads a JSON file: a regular file, strict UTF-8, bounded nesting (see {@link parseJsonText}). */
export async function readJsonFile(path: string, what = 'file'): Promise<unknown> {
  return parseJsonText(await readUtf8File(path, what), path, what);
}

/**
 * {@link readJsonFile} through a cache of parsed files (path -> value): a preparation that reads the
 * same tokenizer files for two purposes (the vocabulary, and the facts the writer needs) parses
 * each file once. Without a cache, a plain read.
 */
export async function readJsonCached(
  path: string,
  cache: Map<string, unknown> | undefined,
  what = 'file',
): Promise<unknown> {
  if (!cache) return readJsonFile(path, what);
  if (!cache.has(path)) cache.set(path, await readJsonFile(path, what));
  return cache.get(path);
}

/**
 * Whether an optional input file is there: false only when nothing exists at `path` (ENOENT).
 * Anything else that is not a regular file (a symlink loop, a FIFO, a folder, an unreadable parent)
 * is an error, never taken as absent.
 */
export async function optionalFile(path: string, what = 'file'): Promise<boolean> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fsError(err, `cannot inspect ${what} ${JSON.stringify(path)}`);
  }
  if (!st.isFile()) throw notRegular(path, st, what);
  return true;
}

/**
 * Checks that `path` is a folder that can be listed: E_NOT_FOUND when missing, E_ARGUMENT when it is
 * a file ("must be a folder"), E_IO when it cannot be read (e.g. EACCES). Returns its entries.
 */
export async function readableFolder(path: string, what: string): Promise<string[]> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT')
      throw new SaltError('E_NOT_FOUND', `${what} ${JSON.stringify(path)} does not exist`, { cause: err });
    throw fsError(err, `cannot inspect ${what} ${JSON.stringify(path)}`);
  }
  if (!st.isDirectory())
    throw new SaltRangeError(
      `${what} ${JSON.stringify(path)} must be a folder, but it is ${st.isFile() ? 'a file' : kindOf(st)}`,
      'E_ARGUMENT',
    );
  try {
    return await readdir(path);
  } catch (err) {
    throw fsError(err, `cannot read ${what} folder ${JSON.stringify(path)}`);
  }
}
