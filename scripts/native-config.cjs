#!/usr/bin/env node
// Single source of truth for the native build, read by binding.gyp (node-gyp) and CMakeLists.txt:
//   node scripts/native-config.cjs sources   -> core + binding sources, relative to the package root
//   node scripts/native-config.cjs libs      -> link arguments for FAISS + OpenBLAS (OpenMP) + Fortran
//   node scripts/native-config.cjs check     -> exits 1 with install instructions if a library is missing
// The core's own list lives in native/core/sources.txt; CMake reads that file directly.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const multiarch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch] || `${process.arch}-linux-gnu`;
const libdirs = [`/usr/lib/${multiarch}`, '/usr/lib64', '/usr/lib', '/usr/local/lib'];
const staticRuntime = process.env.SALT_STATIC_RUNTIME === '1';

function find(names) {
  for (const dir of libdirs) for (const n of names) {
    const p = path.join(dir, n);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function gccFile(name) {
  // Static Fortran runtime pieces live in GCC's private folder.
  const base = `/usr/lib/gcc/${multiarch}`;
  if (!fs.existsSync(base)) return null;
  for (const v of fs.readdirSync(base).sort((a, b) => Number(b) - Number(a))) {
    const p = path.join(base, v, name);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function libs() {
  const faiss = find(['libfaiss.a']);
  const blas = find(['openblas-openmp/libopenblas.a']);
  const missing = [];
  if (!faiss) missing.push('libfaiss-dev (FAISS static library)');
  if (!blas) missing.push('libopenblas-openmp-dev (OpenBLAS built with OpenMP)');
  const args = [];
  if (faiss) args.push(faiss);
  if (blas) args.push(blas);
  if (staticRuntime) {
    const gf = gccFile('libgfortran.a');
    const qm = gccFile('libquadmath.a');
    if (!gf) missing.push('libgfortran-12-dev (static Fortran runtime, needed only for prebuilds)');
    if (gf) args.push(gf);
    if (qm) args.push(qm);
  } else {
    const gf = find(['libgfortran.so', 'libgfortran.so.5']);
    if (!gf) missing.push('libgfortran5');
    else args.push(gf);
  }
  args.push('-lgomp', '-lpthread', '-lm', '-ldl');
  return { args, missing };
}

const what = process.argv[2];
if (what === 'sources') {
  const core = fs.readFileSync(path.join(root, 'native/core/sources.txt'), 'utf8').split(/\s+/).filter(Boolean);
  const out = core.map((f) => `native/core/src/${f}`).concat(['native/binding/addon.cpp']);
  process.stdout.write(out.join(' ') + '\n');
} else if (what === 'libs') {
  process.stdout.write(libs().args.join(' ') + '\n');
} else if (what === 'check') {
  const { missing } = libs();
  if (missing.length) {
    process.stderr.write(
      'salt-transfer: cannot build the native addon; missing system packages:\n  ' + missing.join('\n  ') +
        '\nOn Debian/Ubuntu: sudo apt-get install -y libfaiss-dev libopenblas-openmp-dev\n');
    process.exit(1);
  }
} else {
  process.stderr.write('usage: native-config.cjs sources|libs|check\n');
  process.exit(2);
}
