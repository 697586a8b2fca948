"""Whole-folder transfer time and peak RSS of every tool, interleaved in one run, best of N.

    python bench/peers/speed.py INPUTS_JSON OUT_DIR RESULT_JSON [rounds] [realistic rounds]

Each run is one fresh process doing the whole job: load the source and target folders, transfer,
write the output folder. Wall time is measured around the process; peak RSS is the process's
ru_maxrss from wait4 (its own and its waited-for children's). The approximation step alone comes
from each tool: our report's `timings.engine` (engine total: validation, LOO for lambda, top-K
search, selection, solves, head), tokensurgeon's `compute_new_embeddings` summed (ts_timed.py) and
FOCUS steps 3-6 (focus_folder.py). Order per round: for each input, every tool once; rounds repeat.
A run past its time limit is killed and recorded as such.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent
HERE = Path(__file__).parent


def tools(inp: dict, out: Path) -> dict[str, list[str]]:
    py = str(VENV / "python")
    s, t, d = inp["source"], inp["target"], inp["donor"]
    return {
        # MiniLM is uncased: --case-fold, as in docs/transfer.md's evaluation of this pair
        "ours salt": ["node", str(REPO / "dist" / "cli.js"), "transfer", "--source", s, "--target", t, "--out", str(out), "--overwrite",
                      *(["--case-fold"] if inp["kind"] == "real" else [])],
        "tokensurgeon omp": [py, str(HERE / "ts_timed.py"), s, d, str(out)],
        "tokensurgeon least_squares": [py, str(HERE / "ts_timed.py"), s, d, str(out), "-a", "common_interpolation", "-w", "least_squares"],
        "deepfocus FOCUS": [py, str(HERE / "focus_folder.py"), s, t, str(out)],
    }


# Runs that cannot finish on this machine; the reason is measured and written down in bench/README.md.
SKIP = {
    ("realistic", "tokensurgeon omp"): "OMP does 64 products of (512 x anchors x 768) per 512 new tokens, 64x the work of the least_squares run, which did not finish in 300 s",
    ("realistic", "deepfocus FOCUS"): "deepfocus's dense new x anchors float32 similarity matrix is 206,916 x 43,134 x 4 B = 36 GB (24 GB machine)",
}


def run_once(cmd: list[str], out: Path, limit: float) -> dict:
    step_file = out.parent / (out.name + ".step.json")
    step_file.unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TQDM_DISABLE="1", TOKENIZERS_PARALLELISM="false", PEERS_STEP_FILE=str(step_file))
    log = open(out.parent / (out.name + ".log"), "w")
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    killed = False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > limit:
            os.killpg(p.pid, signal.SIGKILL)
            killed = True
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    log.close()
    res = {"wall_s": wall, "peak_rss_mib": ru.ru_maxrss / 1024, "rc": os.waitstatus_to_exitcode(status), "killed": killed}
    if step_file.exists():
        res.update(json.loads(step_file.read_text()))
    rep = out / "salt-transfer-report.json"
    if rep.exists():
        r = json.loads(rep.read_text())
        res["step_s"] = r["timings"]["engine"] / 1000
        res["matched"] = r["alignment"]["matched"]
    return res


def main(inputs_json: Path, out_dir: Path, result_json: Path, rounds: int, realistic_rounds: int) -> None:
    inputs = json.loads(inputs_json.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {"rounds": rounds, "realistic_rounds": realistic_rounds, "runs": {}, "skipped": {}}
    limit = float(os.environ.get("PEERS_LIMIT_S", "900"))
    for r in range(max(rounds, realistic_rounds)):
        for inp in inputs:
            if r >= (realistic_rounds if inp["kind"] == "realistic" else rounds):
                continue
            only = os.environ.get("PEERS_TOOLS")  # e.g. "ours salt": a rerun of one tool
            for name, cmd in tools(inp, out_dir / "x").items():
                if only and name not in only.split(","):
                    continue
                key = f"{inp['kind']}|{name}"
                if any(x["killed"] for x in results["runs"].get(key, [])):
                    continue  # killed at the limit in an earlier round: another try tells nothing new
                if (inp["kind"], name) in SKIP:
                    results["skipped"][key] = SKIP[(inp["kind"], name)]
                    continue
                out = out_dir / f"{inp['kind']}-{name.replace(' ', '-')}"
                cmd = tools(inp, out)[name]
                res = run_once(cmd, out, limit)
                results["runs"].setdefault(key, []).append(res)
                print(f"round {r} {key}: {res['wall_s']:.1f} s, {res['peak_rss_mib']:.0f} MiB, rc {res['rc']}{' KILLED' if res['killed'] else ''}, step {res.get('step_s', float('nan')):.1f} s", file=sys.stderr, flush=True)
                result_json.write_text(json.dumps(results, indent=1))
    results["inputs"] = inputs
    result_json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(Path(a[0]), Path(a[1]), Path(a[2]), int(a[3]) if len(a) > 3 else 3, int(a[4]) if len(a) > 4 else 1)
