// Packaging: an `npm pack` tarball installs into an empty folder and loads, without a prebuild
// (built from source by the install script) and with one (made by `npm run prebuilds`, loaded
// without compiling, depending only on libgomp, libstdc++, libgcc and glibc <= 2.34).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const sh = (cmd: string, args: string[], cwd: string): string =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });

let work: string;

function packInto(dir: string, from: string, extra: string[] = []): string {
  const out = sh('npm', ['pack', '--pack-destination', dir, '--silent', ...extra], from)
    .trim()
    .split('\n')
    .pop()!;
  return join(dir, out);
}

/** Installs a tarball into an empty project and reports what loaded and whether it computes. */
function installAndLoad(tgz: string, name: string): { addon: string; indices: number[]; pkgDir: string } {
  const dir = join(work, name);
  sh('mkdir', ['-p', dir], work);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true, type: 'module' }));
  sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel', 'error', tgz], dir);
  const script =
    "import('salt-transfer').then(async (m) => { const i = m.info();" +
    ' const b = { data: new Float32Array([1, 0, 0, 1, 1, 1]), rows: 3, cols: 2 };' +
    ' const r = await m.topkCosine({ data: new Float32Array([1, 0.1]), rows: 1, cols: 2 }, b, 3);' +
    ' console.log(JSON.stringify({ addon: i.addon, indices: Array.from(r.indices) })); })';
  const out = JSON.parse(sh('node', ['-e', script], dir).trim().split('\n').pop()!);
  return { ...out, pkgDir: join(dir, 'node_modules', 'salt-transfer') };
}

describe('npm pack tarball', () => {
  let plain: string, staged: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'salt-install-'));
    // Tarball without prebuilds: pack the repo, then strip any prebuilds a developer made locally.
    const first = packInto(work, root);
    staged = join(work, 'staged');
    sh('mkdir', ['-p', staged], work);
    sh('tar', ['-xzf', first, '-C', staged, '--strip-components=1'], work);
    rmSync(join(staged, 'prebuilds'), { recursive: true, force: true });
    rmSync(first);
    symlinkSync(join(root, 'node_modules'), join(staged, 'node_modules'));
    plain = packInto(work, staged, ['--ignore-scripts']);
  }, 600_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('installs from source when no prebuild exists', () => {
    const r = installAndLoad(plain, 'source');
    expect(r.addon).toBe(join(r.pkgDir, 'build', 'Release', 'salt_transfer.node'));
    expect(r.indices).toEqual([0, 2, 1]);
  }, 600_000);

  it('installs a prebuild without compiling; the prebuild needs only libgomp, libstdc++ and glibc >= 2.34', () => {
    sh('npm', ['run', 'prebuilds', '--silent'], staged);
    const dir = join(staged, 'prebuilds', `linux-${process.arch}`);
    const files = readdirSync(dir).filter((f) => f.endsWith('.node'));
    expect(files.length).toBe(1);
    const binary = join(dir, files[0]!);
    const needed = [...sh('readelf', ['-d', binary], work).matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)].map(
      (m) => m[1],
    );
    for (const lib of needed)
      expect(lib).toMatch(/^(libgomp\.so\.1|libstdc\+\+\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libc\.so\.6|ld-linux.*)$/);
    const glibc = [...sh('objdump', ['-T', binary], work).matchAll(/GLIBC_2\.(\d+)/g)].map((m) => Number(m[1]));
    expect(Math.max(...glibc)).toBeLessThanOrEqual(34);
    rmSync(join(staged, 'build'), { recursive: true, force: true });
    const tgz = packInto(join(work), staged, ['--ignore-scripts']);
    const r = installAndLoad(tgz, 'prebuilt');
    expect(r.addon).toBe(join(r.pkgDir, 'prebuilds', `linux-${process.arch}`, files[0]!));
    expect(existsSync(join(r.pkgDir, 'build'))).toBe(false); // nothing was compiled
    expect(r.indices).toEqual([0, 2, 1]);
  }, 600_000);
});
