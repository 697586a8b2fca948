#!/usr/bin/env bash
# cuda-compile-check.sh — compile and link the CUDA plugin (native/cuda) on a machine without a GPU,
# so the CUDA code cannot rot unseen.
#
# Toolchain: always the pinned CUDA 13.0 toolchain from NVIDIA's PyPI wheels (nvcc, runtime, cuBLAS,
# cuSOLVER and CCCL of one release), installed on first use by scripts/cuda-toolchain.sh into
# ~/.cache/salt-transfer/cuda-13.0-venv and reused afterwards. A system nvcc (/usr/local/cuda, CUDACXX)
# is deliberately not used, so every machine checks with the same compiler and headers. Builds into
# build-cuda-check/ only: the result is NEVER shipped or loaded (it is not placed next to the addon).
# It also builds and runs three host tests of the code the kernels share with the host (no GPU
# needed): the eigen-solver of native/cuda/jacobi.h against LAPACK and the CPU backend, the top-k row
# selection of native/cuda/select.h against a plain sort, and the row sparsemax of
# native/cuda/sparsemax_row.h against the CPU backend.
#
# Prints one closing line: "cuda-compile-check: PASS (...)" (exit 0, naming the toolchain),
# "cuda-compile-check: FAIL: ..." (exit 1), or "cuda-compile-check: SKIP (...)" (exit 77) in one case
# only: no Python 3 able to create a virtual environment with pip, outside CI. With CI set (and not
# "false" or "0") that case is a FAIL too, so the check can never skip silently in CI.
# Env: SALT_CUDA_CHECK_ARCHS (default "90-real;75-virtual"), SALT_CUDA_CHECK_JOBS (default 2), and
# those of scripts/cuda-toolchain.sh.
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

command -v cmake >/dev/null || fail "cmake not found"

SALT_CUDA_ROOT="" SALT_CUDA_LINKS="" SALT_CUDA_TOOLCHAIN=""
toolchain="$(bash scripts/cuda-toolchain.sh 2>>"$LOG")"
trc=$?
if [[ $trc -eq 77 ]]; then
  why="$(grep '^cuda-toolchain: ' "$LOG" | tail -n 1 | sed 's/^cuda-toolchain: //')"
  if [[ -n "${CI:-}" && "${CI:-}" != "false" && "${CI:-}" != "0" ]]; then
    fail "no CUDA toolchain in CI: $why"
  fi
  # Nothing to check with: scripts/test-all.mjs counts exit 77 as skipped (never in CI, see above).
  reported=1
  echo "cuda-compile-check: SKIP ($why)"
  exit 77
fi
[[ $trc -eq 0 ]] || { tail -n 20 "$LOG" >&2; fail "could not install the CUDA toolchain from PyPI (scripts/cuda-toolchain.sh exited $trc, see $LOG)"; }
while IFS='=' read -r key value; do
  case "$key" in SALT_CUDA_ROOT | SALT_CUDA_LINKS | SALT_CUDA_TOOLCHAIN) printf -v "$key" '%s' "$value" ;; esac
done <<<"$toolchain"
NVCC="$SALT_CUDA_ROOT/bin/nvcc"
[[ -x "$NVCC" && -d "$SALT_CUDA_LINKS" ]] || fail "scripts/cuda-toolchain.sh reported no usable toolkit ($toolchain)"

# A build folder configured with another compiler is configured afresh (CMake cannot switch compilers
# in an existing cache); the log, with the toolchain's lines, is kept.
if [[ -f "$BUILD/CMakeCache.txt" ]] && ! grep -qxF "CMAKE_CUDA_COMPILER:STRING=$NVCC" "$BUILD/CMakeCache.txt" \
  && ! grep -qxF "CMAKE_CUDA_COMPILER:FILEPATH=$NVCC" "$BUILD/CMakeCache.txt"; then
  rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"
fi

echo "cuda-compile-check: $SALT_CUDA_TOOLCHAIN" >&2
# CUDA_CUDART: CMake 3.25's FindCUDAToolkit looks for an unversioned libcudart.so, which the wheel does
# not ship (it has libcudart.so.13 and libcudart_static.a); naming the file skips that search, and
# CUDA::cudart_static (what the plugin links) is then found in the same folder.
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSALT_BUILD_TESTS=OFF -DSALT_CUDA=ON -DSALT_CUDA_REQUIRED=ON \
  -DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$SALT_CUDA_ROOT" "-DSALT_CUDA_ARCHITECTURES=$ARCHS" \
  "-DCMAKE_CUDA_ARCHITECTURES=$ARCHS" -DSALT_CUDA_EXTRA_INCLUDE= -DSALT_CUDA_EXTRA_LIBDIR="$SALT_CUDA_LINKS" \
  -DCUDA_CUDART="$SALT_CUDA_ROOT/lib/libcudart.so.13" -DSALT_CUDA_OUTPUT_DIR="$BUILD/plugin" >>"$LOG" 2>&1; then
  tail -n 30 "$LOG" >&2
  fail "cmake configuration failed (see $LOG)"
fi
if ! cmake --build "$BUILD" --target salt_cuda salt_cuda_host_test salt_cuda_select_test salt_cuda_sparsemax_test -j "$JOBS" >>"$LOG" 2>&1; then
  grep -E "error|Error" "$LOG" | head -n 40 >&2
  fail "compiling or linking salt_cuda failed (see $LOG)"
fi
# The benchmark's SGEMM-only helper, so it cannot rot either (same toolkit, same cuBLAS).
if ! "$NVCC" -O2 -std=c++17 --generate-code=arch=compute_90,code=sm_90 bench/sgemm-only.cu -L"$SALT_CUDA_LINKS" -lcublas \
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
echo "cuda-compile-check: PASS (salt_cuda.so for $ARCHS compiled and linked in $((end - start))s with $SALT_CUDA_TOOLCHAIN; needs: $needed; host tests: ${summaries}compile check only, never ship this build)"
