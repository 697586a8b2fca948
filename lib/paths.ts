import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the installed package (the folder holding package.json), from lib/ or dist/. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
