#!/usr/bin/env bash
# Kernel benchmarks of issue 2 (see bench/README.md). Builds bench/kernels_bench.cpp with CMake and
# runs every shape; ratios are taken within one process (topk vs bare SGEMM) or back to back.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench --target kernels_bench -j 2 >/dev/null
B=build-bench/kernels_bench
PY=${PYTHON:-python3}
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== topkCosine vs bare SGEMM of the same shape (same process, best of 3, interleaved)"
$B topk 336562 4917 100 64 3
$B topk 50000 30000 768 64 3
echo "== solveNeighbourhoods, ht=768 -> hs=2304, m=30000 anchors"
for k in 20 64; do
  n=$(( k == 20 ? 20000 : 6000 ))
  nr=$(( k == 20 ? 2000 : 600 ))
  for lam in 1 0; do
    $B solve $n 30000 $k 768 2304 $lam 2
    $PY bench/solve_reference.py $nr 30000 $k 768 2304 $lam per-token
    $PY bench/solve_reference.py $n 30000 $k 768 2304 $lam batched
  done
done
