#!/usr/bin/env bash
# Side by side with the field's tools (issue 10): mergekit-tokensurgeon, deepfocus (FOCUS), wechsel.
# Prints one table (tool x method x input: wall, peak RSS, approximation step, held-out mean cosine,
# median rank, P@1); everything it writes goes to build/peers/ (git-ignored). See bench/README.md.
#   bash bench/peers/run.sh            # ~50 min on the shared 2-core machine; env PEERS_ROUNDS (2),
#                                      # PEERS_LIMIT_S (300 s per folder transfer), PEERS_SEEDS (0,1,2)
# Needs dist/ and the native addon built (npm run build) and the peer environment (setup.sh, run here).
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TQDM_DISABLE=1 TOKENIZERS_PARALLELISM=false
PY=$(bash bench/peers/setup.sh | tail -n 1)
out=build/peers
mkdir -p "$out"
say() { printf '[peers] %s %s\n' "$(date -u +%T)" "$*" >&2; }

say "inputs (USE-lite HF folder, small, real and realistic model folders)"
"$PY" test/interop/real_pair.py build/use-lite-hf > "$out/minilm-folder.txt"
"$PY" bench/peers/inputs.py "$out/inputs" --realistic > "$out/inputs.json"
say "quality: identical splits, our predictions"
node bench/peers/split.mjs "$out/split" "$(tail -n 1 "$out/minilm-folder.txt")" 1000 "${PEERS_SEEDS:-0,1,2}"
say "quality: the peers' functions on the same splits"
"$PY" bench/peers/quality.py "$out/split" "$out/quality.json"
say "speed: whole-folder transfers, interleaved"
PEERS_LIMIT_S="${PEERS_LIMIT_S:-300}" "$PY" bench/peers/speed.py "$out/inputs.json" "$out/speed" "$out/speed.json" "${PEERS_ROUNDS:-2}" 1
say "speed: our realistic transfer alone with a 900 s limit (on this machine it can pass the interleaved run's limit)"
"$PY" -c "import json,sys; json.dump(json.load(open(sys.argv[1]))[2:], open(sys.argv[2], 'w'))" "$out/inputs.json" "$out/inputs-realistic.json"
PEERS_TOOLS="ours salt" PEERS_LIMIT_S=900 "$PY" bench/peers/speed.py "$out/inputs-realistic.json" "$out/speed" "$out/speed-realistic-ours.json" 1 1
say "shared-token counts per tool"
"$PY" bench/peers/overlap.py "$out/inputs.json" "$out/speed" "$out/overlap.json"
say "outputs load in transformers; copied rows"
"$PY" bench/peers/check_outputs.py "$out/inputs.json" "$out/speed" "$out/outputs.json"
"$PY" bench/peers/table.py "$out" | tee "$out/table.md"
