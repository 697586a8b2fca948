#!/usr/bin/env bash
# Every method x every real pair `evaluate` knows x seeds 0, 1, 2 (1,000 held out): the tables of
# docs/transfer.md ("The default, measured"). USE-lite -> GloVe both ways through the engine
# (bench/transfer-eval.mjs), USE-lite -> all-MiniLM-L6-v2 through the CLI on the Hugging Face
# folders the interop suite builds (needs its Python environment: bash scripts/setup.sh).
#   bash bench/real-pairs.sh [OUT_DIR]      # about 10 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/real-pairs}
mkdir -p "$out"
py=${SALT_INTEROP_PY:-$HOME/.cache/salt-transfer/interop-venv/bin/python}
npx tsc -p tsconfig.build.json
node bench/transfer-eval.mjs 1000 0,1,2 | tee "$out/use-glove.md"
node bench/transfer-eval.mjs 1000 0,1,2 --reverse | tee "$out/glove-use.md"
minilm=$("$py" test/interop/real_pair.py "$out/use-lite-hf" | tail -1)
node dist/cli.js evaluate --source "$out/use-lite-hf" --target "$minilm" --case-fold --holdout 1000 --seeds 0,1,2 \
  --out "$out/use-minilm" | tee "$out/use-minilm.md"
