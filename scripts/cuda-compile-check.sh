#!/usr/bin/env bash
# cuda-compile-check.sh — compile and link the CUDA plugin (native/cuda) on a machine without a GPU,
# so the CUDA code cannot rot unseen.
#
# Uses nvcc from the machine (CUDA 13 at /usr/local/cuda, or $CUDACXX) and the cuBLAS/cuSOLVER headers
# and link stubs fetched by scripts/cuda-headers.sh (cached outside the repository). Builds into
# build-cuda-check/ only: the result links against CUDA 11.8's libcublas.so.11 stubs and is NEVER
# shipped or loaded (it is not placed next to the addon). It also builds and runs three host tests of
# the code the kernels share with the host (no GPU needed): the eigen-solver of native/cuda/jacobi.h
# against LAPACK and the CPU backend, the top-k row selection of native/cuda/select.h against a plain
# sort, and the row sparsemax of native/cuda/sparsemax_row.h against the CPU backend.
#
# Prints one closing line: "cuda-compile-check: PASS (...)" (exit 0), "cuda-compile-check: SKIP (...)"
# when no nvcc exists (exit 77), or "cuda-compile-check: FAIL: ..." (exit 1). Env: SALT_CUDA_CHECK_ARCHS (default "90-real;75-virtual"), SALT_CUDA_CHECK_JOBS (default 2).
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
BUILD="$ROOT/build-cuda-check"
LOG="$BUILD/check.log"
ARCHS="${SALT_CUDA_CHECK_ARCHS:-90-real;75-virtual}"
JOBS="${SALT_CUDA_CHECK_JOBS:-2}"
start=$(date +%s)

reported=0
fail() {
  reported=1
  echo "cuda-compile-check: FAIL: $*"
  exit 1
}
# Whatever goes wrong, the closing line says FAIL.
trap 'rc=$?; if [[ $reported -eq 0 && $rc -ne 0 ]]; then echo "cuda-compile-check: FAIL: unexpected error (exit $rc), see $LOG"; fi' EXIT

mkdir -p "$BUILD"
: >"$LOG"

NVCC="${CUDACXX:-}"
if [[ -z "$NVCC" ]]; then
  if command -v nvcc >/dev/null; then NVCC="$(command -v nvcc)"; elif [[ -x /usr/local/cuda/bin/nvcc ]]; then NVCC=/usr/local/cuda/bin/nvcc; fi
fi
if [[ -z "$NVCC" ]]; then
  # Nothing to check with: not a failure of the project (scripts/test-all.mjs counts it as skipped).
  reported=1
  echo "cuda-compile-check: SKIP (nvcc not found; set CUDACXX or install the CUDA toolkit to compile-check the plugin)"
  exit 77
fi
command -v cmake >/dev/null || fail "cmake not found"

INC="$(bash scripts/cuda-headers.sh 2>>"$LOG")" || { tail -n 20 "$LOG" >&2; fail "could not obtain cuBLAS/cuSOLVER headers (see $LOG)"; }
STUBS="$(cd "$INC/../lib/x86_64-linux-gnu/stubs" 2>/dev/null && pwd)" || fail "link stubs missing next to $INC"

echo "cuda-compile-check: nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), headers $INC" >&2
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSALT_BUILD_TESTS=OFF -DSALT_CUDA=ON -DSALT_CUDA_REQUIRED=ON \
  -DCMAKE_CUDA_COMPILER="$NVCC" "-DSALT_CUDA_ARCHITECTURES=$ARCHS" "-DCMAKE_CUDA_ARCHITECTURES=$ARCHS" \
  -DSALT_CUDA_EXTRA_INCLUDE="$INC" -DSALT_CUDA_EXTRA_LIBDIR="$STUBS" -DSALT_CUDA_OUTPUT_DIR="$BUILD/plugin" >>"$LOG" 2>&1; then
  tail -n 30 "$LOG" >&2
  fail "cmake configuration failed (see $LOG)"
fi
if ! cmake --build "$BUILD" --target salt_cuda salt_cuda_host_test salt_cuda_select_test salt_cuda_sparsemax_test -j "$JOBS" >>"$LOG" 2>&1; then
  grep -E "error|Error" "$LOG" | head -n 40 >&2
  fail "compiling or linking salt_cuda failed (see $LOG)"
fi
# The benchmark's SGEMM-only helper, so it cannot rot either (same headers, linked against the stubs).
if ! "$NVCC" -O2 -std=c++17 --generate-code=arch=compute_90,code=sm_90 -isystem "$INC" bench/sgemm-only.cu -L"$STUBS" -lcublas \
  -o "$BUILD/sgemm-only" >>"$LOG" 2>&1; then
  grep -E "error" "$LOG" | head -n 20 >&2
  fail "compiling bench/sgemm-only.cu failed (see $LOG)"
fi
# Device code run on the host: jacobi.h against LAPACK and the CPU backend, select.h against a sort,
# sparsemax_row.h against the CPU backend.
summaries=""
for t in salt_cuda_host_test salt_cuda_select_test salt_cuda_sparsemax_test; do
  if ! out=$("$BUILD/$t" 2>&1); then
    echo "$out" | tail -n 20 >&2
    fail "host test $t failed: $(echo "$out" | tail -n 1)"
  fi
  echo "$out" >>"$LOG"
  summaries="$summaries$(echo "$out" | tail -n 1); "
done
SO="$BUILD/plugin/salt_cuda.so"
[[ -f "$SO" ]] || fail "$SO was not produced"
nm -D --defined-only "$SO" | grep -q ' T salt_plugin_entry$' || fail "$SO does not export salt_plugin_entry"
exported=$(nm -D --defined-only "$SO" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -v -E '^(salt_plugin_entry|_init|_fini)$' || true)
[[ -z "$exported" ]] || fail "$SO exports more than salt_plugin_entry: $(echo "$exported" | head -n 5 | tr '\n' ' ')"
if readelf -d "$SO" | grep -q -E 'R(UN)?PATH'; then fail "$SO carries an RPATH/RUNPATH"; fi
needed=$(readelf -d "$SO" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
end=$(date +%s)
echo "cuda-compile-check: PASS (salt_cuda.so for $ARCHS compiled and linked in $((end - start))s; needs: $needed; host tests: ${summaries}compile check only, never ship this build)"
