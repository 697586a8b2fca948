#!/usr/bin/env bash
# cuda-toolchain.sh — install (once) the CUDA toolchain of the CUDA compile check: nvcc, the CUDA
# runtime, cuBLAS, cuSOLVER and CCCL of ONE CUDA release (13.0 Update 2), as NVIDIA's wheels from PyPI,
# into a Python virtual environment cached outside the repository. No system CUDA, no root, no apt.
#
# Why CUDA 13.0 and not 12.9: the CUDA 12 wheel `nvidia-cuda-nvcc-cu12` (12.9.86 and every 12.x) holds
# only ptxas, libnvvm, libdevice and the crt/ headers: no `nvcc` driver, cicc, cudafe++, fatbinary or
# nvlink, so it cannot compile a .cu file. The CUDA 13 wheels (`nvidia-cuda-nvcc`, `nvidia-nvvm`,
# `nvidia-cuda-crt`) are a complete compiler. All packages below are the versions that NVIDIA's
# `cuda-toolkit==13.0.2` meta-package pins; they unpack into one CUDA-like folder,
# <site-packages>/nvidia/cu13/{bin,include,lib,nvvm}. Installed with --no-deps: cuSOLVER's runtime
# dependencies (cuSPARSE, nvJitLink) are not needed to compile and link.
#
# Two symlinks complete the layout: the wheels ship libcublas.so.13 / libcusolver.so.12 without the
# unversioned names a linker's -l looks for (made in <venv>/salt-links), and nvcc.profile passes
# -L<root>/lib64 for libcudart_static.a / libcudadevrt.a, where the wheels have lib/ (so <root>/lib64
# -> lib, the one file added inside site-packages).
#
# Prints on stdout, and only there, three lines:
#   SALT_CUDA_ROOT=<toolkit folder>        (bin/nvcc, include/, lib/)
#   SALT_CUDA_LINKS=<folder with libcublas.so, libcusolver.so>
#   SALT_CUDA_TOOLCHAIN=<one-line description for logs>
# Progress goes to stderr. Exit 0 when ready; 77 when this machine has no Python 3 able to create a
# virtual environment with pip (the only case the compile check may report as a skip, and never in
# CI); anything else non-zero on a failed download or a broken install.
#
#   Env: SALT_CUDA_TOOLCHAIN_DIR  venv folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/salt-transfer/cuda-13.0-venv)
#        SALT_PYTHON              Python used to create the venv (default python3)
set -euo pipefail

PINS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cublas==13.1.0.3
  nvidia-cusolver==12.0.4.66
)
PIN_TEXT="${PINS[*]}"
VENV="${SALT_CUDA_TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/salt-transfer/cuda-13.0-venv}"
PY="${SALT_PYTHON:-python3}"
STAMP="$VENV/salt-toolchain.stamp"
LINKS="$VENV/salt-links"

log() { printf 'cuda-toolchain: %s\n' "$*" >&2; }

# The toolkit folder of an installed venv (python3.X varies with the interpreter).
toolkit_root() {
  local d
  for d in "$VENV"/lib/python3*/site-packages/nvidia/cu13; do
    [[ -x "$d/bin/nvcc" ]] && { printf '%s\n' "$d"; return 0; }
  done
  return 1
}

# Everything the compile check uses must be there, not only the stamp.
complete() {
  local root
  [[ -f "$STAMP" ]] || return 1
  [[ "$(head -n 1 "$STAMP")" == "$PIN_TEXT" ]] || return 1
  root="$(toolkit_root)" || return 1
  [[ -x "$root/nvvm/bin/cicc" && -x "$root/bin/ptxas" && -f "$root/include/crt/host_config.h" \
    && -f "$root/include/cuda_runtime.h" && -f "$root/include/cublas_v2.h" && -f "$root/include/cusolverDn.h" \
    && -d "$root/include/cccl/cub" && -f "$root/lib64/libcudart_static.a" && -f "$root/lib/libcudart.so.13" \
    && -e "$LINKS/libcublas.so" && -e "$LINKS/libcusolver.so" ]]
}

report() {
  local root
  root="$(toolkit_root)"
  printf 'SALT_CUDA_ROOT=%s\n' "$root"
  printf 'SALT_CUDA_LINKS=%s\n' "$LINKS"
  printf 'SALT_CUDA_TOOLCHAIN=nvcc %s from PyPI wheels (CUDA 13.0.2 set: cuBLAS 13.1.0.3, cuSOLVER 12.0.4.66) in %s\n' \
    "$("$root/bin/nvcc" --version | sed -n 's/.*release [0-9.]*, V\([0-9.]*\).*/\1/p')" "$VENV"
}

if complete; then
  log "cached: $(sed -n 2p "$STAMP")"
  report
  exit 0
fi

# One installer at a time per cache (two test runs may start together).
mkdir -p "$(dirname "$VENV")"
if command -v flock >/dev/null; then
  exec 9>"$VENV.lock"
  flock 9
  if complete; then report; exit 0; fi
fi

if ! command -v "$PY" >/dev/null; then
  log "no '$PY' on PATH: the CUDA toolchain is installed from PyPI into a Python virtual environment"
  exit 77
fi
start=$(date +%s)
probe="$(mktemp -d)"
if ! "$PY" -m venv "$probe/v" >/dev/null 2>&1 || ! "$probe/v/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$probe"
  log "'$PY' cannot create a virtual environment with pip (Debian: apt-get install python3-venv)"
  exit 77
fi
rm -rf "$probe"

log "installing ${PIN_TEXT} into $VENV (695 MiB of wheels, 1.1 GB installed; once per machine)"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
# --no-cache-dir: the wheels are kept once, installed, not a second time in pip's cache.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps \
  --only-binary=:all: "${PINS[@]}" >&2
root="$(toolkit_root)" || { log "FAIL: no nvidia/cu13/bin/nvcc in $VENV after the install"; exit 3; }

# nvcc.profile adds -L<root>/lib64 for libcudart_static.a / libcudadevrt.a, the wheels use lib/.
[[ -e "$root/lib64" ]] || ln -s lib "$root/lib64"
mkdir -p "$LINKS"
ln -sfn "$root/lib/libcublas.so.13" "$LINKS/libcublas.so"
ln -sfn "$root/lib/libcusolver.so.12" "$LINKS/libcusolver.so"
end=$(date +%s)

size="$(du -sm "$VENV" | cut -f1)"
{
  printf '%s\n' "$PIN_TEXT"
  printf 'installed in %ss, %s MB, %s\n' "$((end - start))" "$size" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
complete || { log "FAIL: the install in $VENV is incomplete (nvcc, cicc, ptxas, headers or libraries missing)"; exit 4; }
log "done: $(sed -n 2p "$STAMP")"
report
