"""Every tool's output folder loads in transformers; row-for-row agreement on copied tokens.

    python bench/peers/check_outputs.py INPUTS_JSON SPEED_OUT_DIR RESULT_JSON

For each output of speed.py's last round: AutoTokenizer + AutoModelForCausalLM.from_pretrained (as
the interop suite loads ours), one forward pass on a real sentence (finite logits, vocabulary-sized),
then, tool by tool, which target rows are exact copies of a source row (bit-equal, compared in the
stored dtype) and, against our output, on how many of the target tokens that both copied they copied
the same source row.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "test" / "interop"))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from realdata import real_sentences  # noqa: E402

torch.set_num_threads(2)


def rows_of(folder: str):
    m = AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
    e = m.get_input_embeddings().weight.detach()
    return m, e


def copies(out_rows: torch.Tensor, index: dict, n: int) -> dict[int, int]:
    """target id -> source id for rows that are bit-equal to a source row (the first such source row)."""
    b = out_rows[:n].contiguous().view(torch.int16 if out_rows.dtype in (torch.bfloat16, torch.float16) else torch.int32).numpy()
    return {t: index[b[t].tobytes()] for t in range(n) if b[t].tobytes() in index}


def main(inputs_json: Path, speed_dir: Path, out_json: Path) -> None:
    res = {}
    sentence = real_sentences(3)[2]
    for inp in json.loads(inputs_json.read_text()):
        _, src = rows_of(inp["source"])
        sb = src.contiguous().view(torch.int16 if src.dtype in (torch.bfloat16, torch.float16) else torch.int32).numpy()
        index = {}
        for s in range(len(sb) - 1, -1, -1):  # first source row wins
            index[sb[s].tobytes()] = s
        mean_row = src.float().mean(0)
        per_tool = {}
        ours_copies = None
        for folder in sorted(speed_dir.glob(f"{inp['kind']}-*")):
            if not folder.is_dir() or not (folder / "config.json").exists():
                continue
            tool = folder.name[len(inp["kind"]) + 1:]
            e = {"loads": False}
            try:
                tok = AutoTokenizer.from_pretrained(folder)
                model, out = rows_of(str(folder))
                ids = tok(sentence, return_tensors="pt")
                with torch.no_grad():
                    logits = model(**ids).logits
                e.update(loads=True, tokenizer=len(tok), rows=int(out.shape[0]), logitsFinite=bool(torch.isfinite(logits).all()),
                         logitsVocab=int(logits.shape[-1]), dtype=str(out.dtype).replace("torch.", ""))
                c = copies(out, index, min(len(tok), out.shape[0]))
                e["copiedRows"] = len(c)
                zero = (out[: len(tok)].float().abs().sum(1) == 0).sum().item()
                e["zeroRows"] = int(zero)
                if tool == "ours-salt":
                    ours_copies = c
                per_tool[tool] = (e, c)
            except Exception as err:  # a failure to load is a result
                e["error"] = f"{type(err).__name__}: {err}"[:300]
                per_tool[tool] = (e, {})
        if ours_copies is not None:
            for tool, (e, c) in per_tool.items():
                both = set(c) & set(ours_copies)
                e["copiedByBoth"] = len(both)
                e["sameSourceRow"] = sum(1 for t in both if c[t] == ours_copies[t])
                e["copiedOnlyByThisTool"] = len(set(c) - set(ours_copies))
                e["copiedOnlyByOurs"] = len(set(ours_copies) - set(c))
        res[inp["name"]] = {k: v[0] for k, v in per_tool.items()}
        print(inp["name"], json.dumps(res[inp["name"]]), file=sys.stderr, flush=True)
        del mean_row
    out_json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
