#!/usr/bin/env node
// `npm test`: builds and runs the C++ core's tests (each check counted; the AddressSanitizer/UBSan
// rerun of the same checks counted as one test), the CUDA compile check (one test; skipped without
// nvcc), the vitest suites and the interop suite (test/interop/, pytest in the Python environment of
// scripts/python-env.sh: transformers and llama.cpp's converter read what salt-transfer writes; each
// pytest test counted); prints one closing line `N passed, N failed[, N skipped]` summing all of them.
// Exit code 0 only if nothing failed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let passed = 0,
  failed = 0,
  skipped = 0;

function run(cmd, args, opts = {}) {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, {
    cwd: root,
    stdio: opts.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
  });
  if (opts.capture) process.stdout.write(r.stdout ?? '');
  return r;
}

// A build step or a check without its own test count: a failure counts as one failed test,
// success adds nothing (only real checks count as passed).
function step(name, ok) {
  if (!ok) {
    failed++;
    console.log(`FAILED: ${name}`);
  }
}

// Builds and runs the core's test program. The optimised run counts its checks
// ("core_tests: N passed, M failed"); the sanitizer run repeats the same checks, so it counts as one
// test: passed when every check passed and AddressSanitizer/UBSan reported nothing (exit 0).
function coreTests(label, dir, env) {
  const flags =
    label === 'asan' ? ['-DSALT_SANITIZE=ON', '-DCMAKE_BUILD_TYPE=Debug'] : ['-DCMAKE_BUILD_TYPE=RelWithDebInfo'];
  const cfg = run('cmake', ['-S', '.', '-B', dir, ...flags]);
  if (cfg.status !== 0) return step(`cmake configure (${label})`, false);
  const b = run('cmake', ['--build', dir, '-j', '2', '--target', 'core_tests']);
  if (b.status !== 0) return step(`cmake build (${label})`, false);
  const r = run(join(dir, 'core_tests'), [], { capture: true, env });
  const m = /core_tests: (\d+) passed, (\d+) failed/.exec(r.stdout ?? '');
  if (label === 'asan') {
    if (r.status === 0 && m && Number(m[2]) === 0) passed++;
    else step(`core_tests under AddressSanitizer/UBSan exited with ${r.status ?? r.signal}`, false);
    return;
  }
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
  if (!m || r.status !== 0) step(`core_tests (${label}) exited with ${r.status ?? r.signal}`, false);
}

coreTests('release', 'build-native', {});
coreTests('asan', 'build-native-asan', {
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0',
  UBSAN_OPTIONS: 'print_stacktrace=1',
});

if (existsSync(join(root, 'scripts/cuda-compile-check.sh'))) {
  const r = run('bash', ['scripts/cuda-compile-check.sh']);
  if (r.status === 0)
    passed++; // the compile-and-link check of the CUDA plugin is a test of its own
  else if (r.status === 77)
    skipped++; // no nvcc on this machine
  else step('CUDA compile check', false);
}

// The README and packaging tests run the built package: compile the TypeScript first.
step('TypeScript build', run('npx', ['tsc', '-p', 'tsconfig.build.json']).status === 0);

// Conventions, enforced by tools; each is one test: the type check of lib/, test/ and bench/, ESLint,
// Prettier and clang-format (native code).
function check(name, cmd, args) {
  if (run(cmd, args).status === 0) passed++;
  else step(name, false);
}
check('type check (tsc --noEmit over lib/ and test/)', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
check('ESLint', 'npx', ['eslint', '.']);
check('Prettier', 'npx', ['prettier', '--check', '.']);
check('clang-format', 'bash', ['scripts/clang-format-check.sh']);

const report = join(root, 'build', 'vitest-results.json');
rmSync(report, { force: true });
const v = run('npx', ['vitest', 'run']);
if (existsSync(report)) {
  const j = JSON.parse(readFileSync(report, 'utf8'));
  passed += j.numPassedTests;
  failed += j.numFailedTests;
  skipped += j.numPendingTests + (j.numTodoTests ?? 0);
  if (v.status !== 0 && j.numFailedTests === 0) step('vitest (suite failed to load)', false);
} else {
  step('vitest produced no report', false);
}

// The interop suite: pytest with the environment scripts/setup.sh creates (scripts/python-env.sh);
// counts come from its JUnit XML. A missing environment is a failure, never a silent skip.
const pyEnv =
  process.env.SALT_PYTHON_ENV ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'salt-transfer', 'interop-venv');
const python = join(pyEnv, 'bin', 'python');
if (!existsSync(python)) {
  step(`interop suite: no Python test environment at ${pyEnv} (created by bash scripts/setup.sh)`, false);
} else {
  const junit = join(root, 'build', 'interop-junit.xml');
  rmSync(junit, { force: true });
  const r = run(python, ['-m', 'pytest', 'test/interop', '-p', 'no:cacheprovider', '-rfEs', `--junitxml=${junit}`], {
    env: { HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', PYTHONDONTWRITEBYTECODE: '1' },
  });
  const head = existsSync(junit) ? /<testsuite\b[^>]*>/.exec(readFileSync(junit, 'utf8'))?.[0] : undefined;
  if (head) {
    const attr = (name) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(head)?.[1] ?? 0);
    const bad = attr('failures') + attr('errors');
    passed += attr('tests') - bad - attr('skipped');
    failed += bad;
    skipped += attr('skipped');
    if (r.status !== 0 && bad === 0) step(`interop suite: pytest exited with ${r.status ?? r.signal}`, false);
  } else {
    step(`interop suite: pytest wrote no report (exit ${r.status ?? r.signal})`, false);
  }
}

console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 ? 0 : 1);
