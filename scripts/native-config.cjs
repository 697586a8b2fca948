#!/usr/bin/env node
// Single source of truth for the native build, read by binding.gyp (node-gyp) and CMakeLists.txt:
//   node scripts/native-config.cjs sources   -> core + binding sources, relative to the package root
//   node scripts/native-config.cjs libs      -> link arguments: FAISS and OpenBLAS (OpenMP build), both static
//     (the two gfortran run-time symbols OpenBLAS's LAPACK needs are in native/core/src/fortran_runtime.c)
// The core's own list lives in native/core/sources.txt; CMake reads that file directly.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const multiarch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch] || `${process.arch}-linux-gnu`;
const libdirs = [`/usr/lib/${multiarch}`, '/usr/lib64', '/usr/lib', '/usr/local/lib'];

function find(names) {
  for (const dir of libdirs)
    for (const n of names) {
      const p = path.join(dir, n);
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
  args.push('-lgomp', '-lpthread', '-lm', '-ldl');
  return { args, missing };
}

const what = process.argv[2];
if (what === 'sources') {
  const core = fs.readFileSync(path.join(root, 'native/core/sources.txt'), 'utf8').split(/\s+/).filter(Boolean);
  const out = core.map((f) => `native/core/src/${f}`).concat(['native/binding/addon.cpp']);
  process.stdout.write(out.join(' ') + '\n');
} else if (what === 'libs') {
  const { args, missing } = libs();
  if (missing.length) {
    process.stderr.write(
      'salt-transfer: cannot build the native addon; missing system packages:\n  ' +
        missing.join('\n  ') +
        '\nOn Debian/Ubuntu: sudo apt-get install -y libfaiss-dev libopenblas-openmp-dev (or run scripts/setup.sh)\n',
    );
    process.exit(1);
  }
  process.stdout.write(args.join(' ') + '\n');
} else {
  process.stderr.write('usage: native-config.cjs sources|libs\n');
  process.exit(2);
}
