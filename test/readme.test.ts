// The README's code must run as written (against the built package, imported by its name).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

describe('README', () => {
  it('the "Use" snippet runs and prints a finite transfer', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const use = readme.slice(readme.indexOf('## Use'));
    const snippet = /```js\n([\s\S]*?)```/.exec(use)?.[1];
    expect(snippet).toBeDefined();
    mkdirSync(join(root, 'build'), { recursive: true });
    const file = join(root, 'build', 'readme-snippet.mjs'); // inside the package: 'salt-transfer' resolves to itself
    writeFileSync(file, snippet!);
    const out = execFileSync(process.execPath, [file], { cwd: root, encoding: 'utf8' });
    expect(out).toMatch(
      /^\[ 'cpu'(, 'cuda')? \] \[ 0, 2, 1 \] \[ [\d.e-]+, [\d.e-]+, [\d.e-]+ \] \[ [-\d.e]+, [-\d.e]+, [-\d.e]+ \] [\d.e-]+\n$/,
    );
    expect(out).not.toMatch(/NaN|Infinity/);
  });
});
