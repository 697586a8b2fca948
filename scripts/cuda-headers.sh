#!/usr/bin/env bash
# cuda-headers.sh — fetch cuBLAS/cuSOLVER headers (and link stubs) for the CUDA compile check.
#
# Downloads Debian bookworm's non-free `nvidia-cuda-dev` .deb (CUDA 11.8, ~774 MB) with a private apt
# configuration — the system's sources, package lists, cache and dpkg state are never touched and
# nothing is installed — unpacks it with `dpkg -x` into a cache outside the repository, and prints the
# include folder on stdout (the only thing printed on stdout). Repeated runs reuse the cache.
#
# What it yields is for compile/link checks only: a plugin linked against it needs libcublas.so.11 and
# must never be shipped or loaded.
#
#   Usage: scripts/cuda-headers.sh            # prints e.g. ~/.cache/salt-transfer/cuda-dev/root/usr/include
#          (the link stubs are in <that folder>/../lib/x86_64-linux-gnu/stubs)
#   Env:   SALT_CUDA_DEV_CACHE  cache folder  (default ${XDG_CACHE_HOME:-$HOME/.cache}/salt-transfer/cuda-dev)
#          SALT_DEBIAN_MIRROR   mirror URL    (default http://deb.debian.org/debian)
set -euo pipefail

CACHE="${SALT_CUDA_DEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salt-transfer/cuda-dev}"
MIRROR="${SALT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ROOT="$CACHE/root"
INC="$ROOT/usr/include"
STAMP="$CACHE/.complete"

log() { printf 'cuda-headers: %s\n' "$*" >&2; }

if [[ -f "$STAMP" && -f "$INC/cublas_v2.h" && -f "$INC/cusolverDn.h" ]]; then
  log "cached: $(cat "$STAMP")"
  printf '%s\n' "$INC"
  exit 0
fi

for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { log "FAIL: '$tool' not found (needs a Debian/Ubuntu host)"; exit 2; }
done

mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/sources.d" "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/deb"

cat >"$WORK/sources.d/bookworm-nonfree.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: bookworm
Components: non-free
Architectures: amd64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

# Every path apt would write to points into $WORK; the system's sources.list(.d) are not read.
APT_OPTS=(
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=$WORK/sources.d"
  -o "Dir::State::Lists=$WORK/lists"
  -o "Dir::Cache=$WORK/cache"
  -o "Dir::Cache::pkgcache=$WORK/cache/pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=$WORK/cache/srcpkgcache.bin"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures::=amd64"
  -o "Acquire::Languages=none"
  -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
  -o "APT::Sandbox::User=$(id -un)"
  -o "Debug::NoLocking=1"
)

start=$(date +%s)
log "fetching the bookworm non-free package index (private apt state in $WORK)"
apt-get "${APT_OPTS[@]}" -qq update >&2
log "downloading nvidia-cuda-dev (~774 MB; only once per cache)"
( cd "$WORK/deb" && apt-get "${APT_OPTS[@]}" -q download nvidia-cuda-dev >&2 )
deb="$(ls "$WORK"/deb/nvidia-cuda-dev_*.deb 2>/dev/null | head -n1)"
[[ -n "$deb" ]] || { log "FAIL: apt-get download produced no nvidia-cuda-dev .deb"; exit 3; }
mid=$(date +%s)

log "unpacking $(basename "$deb") with dpkg -x (not installed)"
rm -rf "$ROOT"
dpkg -x "$deb" "$ROOT"
[[ -f "$INC/cublas_v2.h" && -f "$INC/cusolverDn.h" ]] || {
  log "FAIL: cublas_v2.h / cusolverDn.h missing after unpacking $(basename "$deb")"; exit 4; }
# Keep only what a compile + link check needs: the headers and the link stubs (~16 MB instead of
# ~2.7 GB of static libraries, debugger and docs).
find "$ROOT" -name '*.a' -delete
rm -rf "$ROOT/usr/share" "$ROOT/usr/lib/x86_64-linux-gnu/cuda-gdb"
end=$(date +%s)

printf '%s download %ss unpack %ss %s\n' "$(basename "$deb")" "$((mid - start))" "$((end - mid))" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STAMP"
log "done: $(cat "$STAMP")"
printf '%s\n' "$INC"
