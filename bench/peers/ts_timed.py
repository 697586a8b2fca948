"""mergekit-tokensurgeon's own command line, with a timer around its approximation step.

    python bench/peers/ts_timed.py MODEL DONOR OUT [tokensurgeon options]

Runs `mergekit.scripts.tokensurgeon.main` exactly as the `mergekit-tokensurgeon` console script does;
the only addition is a wrapper that sums the wall time of `compute_new_embeddings` (every batch of new
tokens, input embedding and LM head) and writes it, in seconds, as JSON to $PEERS_STEP_FILE at exit.
"""
import atexit
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import mergekit.scripts.tokensurgeon as ts  # noqa: E402

spent = [0.0]
_inner = ts.compute_new_embeddings


def timed(*a, **k):
    t0 = time.perf_counter()
    try:
        return _inner(*a, **k)
    finally:
        spent[0] += time.perf_counter() - t0


ts.compute_new_embeddings = timed


@atexit.register
def _write():
    path = os.environ.get("PEERS_STEP_FILE")
    if path:
        with open(path, "w") as f:
            json.dump({"step_s": spent[0]}, f)


if __name__ == "__main__":
    ts.main()
