import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the installed package (the folder holding package.json), from lib/ or dist/. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Default cache folder of the real data: $SALT_CACHE_DIR, else `salt-transfer/data` in the user's
 * cache folder ($XDG_CACHE_HOME, else ~/.cache), so that every checkout on a machine (CI's fresh
 * clones included) shares one download.
 */
export function cacheDir(): string {
  if (process.env.SALT_CACHE_DIR) return resolve(process.env.SALT_CACHE_DIR);
  return join(
    process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache'),
    'salt-transfer',
    'data',
  );
}
