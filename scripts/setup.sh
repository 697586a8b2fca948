#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for salt-transfer: the system packages the native build
# needs (only those missing), the npm dependencies, the native addon and the TypeScript build.
# Needs Node.js >= 20 with npm. Uses sudo for apt-get when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "Node.js >= 20 with npm is required (https://nodejs.org/en/download); it was not found on PATH." >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  say "Node.js >= 20 is required, found $(node --version)." >&2
  exit 1
fi

# System packages: compiler toolchain, CMake (native tests), binutils (readelf/objdump, packaging
# test), git (offline clone of a data bundle in the tokenizer tests), fasttext (reference vectors
# in the fastText tests), FAISS (static library), OpenBLAS built with OpenMP (linked statically) and
# python3-venv (the interop suite's Python environment; the CUDA compile check's nvcc from PyPI).
packages=(build-essential python3 python3-venv make cmake tar git binutils fasttext clang-format libfaiss-dev libopenblas-openmp-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing system packages ${missing[*]}, and apt-get is not available: install them with your package manager." >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  say "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "system packages present: ${packages[*]}"
fi

# npm dependencies; the install script builds the addon from source unless a loadable prebuild
# for this platform exists, and `prepare` compiles the TypeScript into dist/.
say "installing npm dependencies and building the native addon"
npm install --no-audit --no-fund
node -e "import('./dist/index.js').then(m => { const i = m.info(); console.log('[setup] salt-transfer ' + i.version + ' ready: backends ' + i.backends.join(', ') + ', addon ' + i.addon); })"

# The Python environment of the interop suite (tests only: transformers and llama.cpp's converter read
# what salt-transfer writes). Pinned packages in ~/.cache/salt-transfer/interop-venv; skipped in well
# under a second when that environment is already there (scripts/python-env.sh).
say "checking the Python test environment"
bash scripts/python-env.sh >/dev/null
