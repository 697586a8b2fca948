#!/usr/bin/env bash
# Checks (or with --fix, applies) the native code style of .clang-format on every C/C++/CUDA file
# under native/. Exit 0 when every file is formatted. Needs clang-format (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
  echo "clang-format-check: clang-format is not installed (Debian: apt-get install clang-format)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files native | grep -E '\.(h|hpp|c|cc|cpp|cu|cuh)$')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run --Werror "${files[@]}"
  echo "clang-format-check: ${#files[@]} files formatted"
fi
