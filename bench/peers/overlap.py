"""Shared-token counts per tool and input, each by the tool's own matching code.

    python bench/peers/overlap.py INPUTS_JSON SPEED_OUT_DIR RESULT_JSON

- tokensurgeon: `normalized_vocabulary` of source and donor, exact matches of the normalised tokens
  (what build_embedding_matrix copies with its defaults, --prefix-match no --byte-match no).
- deepfocus: `get_overlapping_tokens` with FOCUS()'s defaults (exact_match_all=True, others False).
- ours: the alignment counts in the report of our run in SPEED_OUT_DIR (`matched` = exact + byte +
  case-folded + special roles).
For a WordPiece target (MiniLM) also: how many "##" continuation pieces each tool matched, and how many
of tokensurgeon's matches pair a BERT word (which starts a word) with a source piece that continues one.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
logging.disable(logging.WARNING)

from transformers import AutoTokenizer  # noqa: E402

from deepfocus.focus import get_overlapping_tokens  # noqa: E402
from mergekit.tokenizer.normalization import TokenMarker, normalized_vocabulary  # noqa: E402


def main(inputs_json: Path, speed_dir: Path, out_json: Path) -> None:
    res = {}
    for inp in json.loads(inputs_json.read_text()):
        src = AutoTokenizer.from_pretrained(inp["source"])
        tgt = AutoTokenizer.from_pretrained(inp["target"])
        donor = AutoTokenizer.from_pretrained(inp["donor"])
        ns, nd = normalized_vocabulary(src), normalized_vocabulary(donor)
        ts_shared = set(ns) & set(nd)
        ov, _ = get_overlapping_tokens(tgt, src, match_symbols=False, exact_match_all=True, fuzzy_match_all=False)
        ov_fuzzy, _ = get_overlapping_tokens(tgt, src, match_symbols=False, exact_match_all=True, fuzzy_match_all=True)
        e = {"targetTokens": len(tgt), "sourceTokens": len(src), "tokensurgeon": len(ts_shared), "deepfocus": len(ov), "deepfocus fuzzy_match_all": len(ov_fuzzy)}
        rep = speed_dir / f"{inp['kind']}-ours-salt" / "salt-transfer-report.json"
        if rep.exists():
            a = json.loads(rep.read_text())["alignment"]
            e["ours"] = a["matched"]
            e["ours counts"] = a["counts"]
            e["ours options"] = a["options"]
        tv = tgt.get_vocab()
        hashes = [t for t in tv if t.startswith("##")]
        if len(hashes) > 100:
            e["wordpiece ## pieces"] = len(hashes)
            e["tokensurgeon ## matched"] = sum(1 for t in ts_shared if isinstance(t, str) and t.startswith("##"))
            e["deepfocus ## matched"] = sum(1 for t in ov if t.startswith("##"))
            # tokensurgeon keeps a BERT word as a plain string (no word-start marker): it can only
            # match a source token that has no word-start marker either, i.e. one that continues a word
            e["tokensurgeon word -> continuation piece"] = sum(1 for t in ts_shared if isinstance(t, str) and not t.startswith("##") and t in ns and not isinstance(t, tuple))
            e["tokensurgeon word-start matches"] = sum(1 for t in ts_shared if isinstance(t, tuple) and t[0] == TokenMarker.WORD_START)
            e["examples"] = sorted([t for t in ts_shared if isinstance(t, str)], key=lambda t: nd[t])[:12]
        res[inp["name"]] = e
        print(inp["name"], {k: v for k, v in e.items() if k != "examples"}, file=sys.stderr, flush=True)
    out_json.write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
