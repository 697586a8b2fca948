"""Prints bench/peers/run.sh's table from the JSON files of one run.

    python bench/peers/table.py RESULTS_DIR
"""
from __future__ import annotations

import json
import statistics as st
import sys
from pathlib import Path

# (tool, method) per row label: speed rows use speed.py's names, quality rows quality.py's
SPEED_TOOLS = {
    "ours salt": ("salt-transfer", "salt (default)"),
    "tokensurgeon omp": ("mergekit-tokensurgeon", "omp (default), k 64"),
    "tokensurgeon least_squares": ("mergekit-tokensurgeon", "common_interpolation least_squares, k 64, Euclidean"),
    "deepfocus FOCUS": ("deepfocus", "FOCUS (aux: PLM embeddings)"),
}
QUALITY_TOOLS = {
    "ours salt": ("salt-transfer", "salt (default)"),
    "ours salt-paper": ("salt-transfer", "salt-paper"),
    "ours focus": ("salt-transfer", "focus"),
    "ours global-linear": ("salt-transfer", "global-linear"),
    "ours wechsel": ("salt-transfer", "wechsel"),
    "ours knn-lstsq": ("salt-transfer", "salt-ridge topk 64, lambda 0 (= k-NN least squares)"),
    "deepfocus FOCUS": ("deepfocus", "FOCUS"),
    "tokensurgeon omp": ("mergekit-tokensurgeon", "omp (default), k 64"),
    "tokensurgeon least_squares": ("mergekit-tokensurgeon", "common_interpolation least_squares, k 64, Euclidean"),
    "tokensurgeon least_squares --cosine-similarity": ("mergekit-tokensurgeon", "the same with --cosine-similarity"),
    "wechsel": ("wechsel", "create_target_embeddings, k 10, T 0.1"),
}
PAIR_NAMES = {"use-glove": "real: USE-lite -> GloVe", "use-minilm": "real: USE-lite -> MiniLM"}


def fmt(x, d=1):
    return "–" if x is None else f"{x:.{d}f}"


def main(d: Path) -> None:
    q = json.loads((d / "quality.json").read_text()) if (d / "quality.json").exists() else {}
    s = json.loads((d / "speed.json").read_text()) if (d / "speed.json").exists() else {"runs": {}, "skipped": {}, "inputs": []}
    names = {i["kind"]: i["name"] for i in s.get("inputs", [])}
    # our realistic transfer rerun alone with a longer limit (run.sh), when the interleaved one was killed
    rerun = d / "speed-realistic-ours.json"
    if rerun.exists():
        for k, v in json.loads(rerun.read_text())["runs"].items():
            s["runs"][k] = [dict(x, rerun=True) for x in v] + s["runs"].get(k, [])
    print("| tool | method | input | wall (s) | peak RSS (MiB) | approx. step (s) | held-out mean cos | median rank | P@1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in ("small", "real", "realistic"):
        for key, (tool, method) in SPEED_TOOLS.items():
            k = f"{kind}|{key}"
            runs = s["runs"].get(k, [])
            ok = [r for r in runs if r["rc"] == 0 and not r["killed"]]
            inp = names.get(kind, kind)
            if k in s["skipped"]:
                print(f"| {tool} | {method} | {inp} | not run: {s['skipped'][k]} | | | | | |")
            elif ok:
                best = min(ok, key=lambda r: r["wall_s"])
                killed = [x["wall_s"] for x in runs if x["killed"]]
                if not best.get("rerun"):
                    note = f"best of {len(ok)}"
                elif killed:
                    note = f"alone, after the interleaved run was killed at {max(killed):.0f} s"
                else:
                    note = f"best of {len(ok)}: interleaved and alone"
                print(f"| {tool} | {method} | {inp} | {best['wall_s']:.1f} ({note}) | {best['peak_rss_mib']:.0f} | {fmt(best.get('step_s'))} | | | |")
            elif runs:
                r = runs[0]
                why = f"killed at {r['wall_s']:.0f} s limit" if r["killed"] else f"failed, exit {r['rc']}"
                print(f"| {tool} | {method} | {inp} | {why} | {r['peak_rss_mib']:.0f} | | | | |")
    for pair, v in q.items():
        for key, (tool, method) in QUALITY_TOOLS.items():
            e = v["tools"].get(key)
            if not e:
                continue
            print(f"| {tool} | {method} | {PAIR_NAMES.get(pair, pair)} ({v['heldOut']} held out x {len(e['meanCosine'])} seeds, {v['anchors']} anchors) | | | "
                  f"{st.mean(e['ms']) / 1000:.2f} | {st.mean(e['meanCosine']):.3f} | {st.mean(e['medianRank']):.1f} | {st.mean(e['p1']):.3f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
