"""llama.cpp's own converter (convert_hf_to_gguf.py of the llama.cpp inside node-llama-cpp@3.22.1)
turns the written folders into GGUF; gguf from PyPI (pinned) reads them back.

The converter imports the gguf-py of its own tree: PyPI's gguf 0.19.0 carries the same version number
but lacks what this converter uses (gguf.LazyChunkedTensor, MODEL_ARCH.DFLASH), so the pinned PyPI
package is the independent reader here. Pairs left out, because llama.cpp's converter refuses the
folder for reasons that are not the transfer's (docs/building.md, "Interop suite"): any source with the
XLM-R-style unigram target (no tokenizer.model, and its BPE pre-tokenizer hash is not in llama.cpp's
list), GPT-2 (the converter needs n_ctx, which transformers 5 no longer writes: the source folder
fails the same way) and Phi-3 (needs tokenizer.model: the source fails the same way)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from gguf import GGUFReader
from safetensors.torch import load_file as load_torch
from transformers import AutoTokenizer

from realdata import REPO, llama_cpp
from test_transformers_interop import record

CASES = [("llama", "minilm"), ("mistral", "minilm"), ("gemma3", "minilm"), ("qwen3", "minilm")]


def convert(folder, outfile) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("NO_LOCAL_GGUF", None)
    return subprocess.run(
        [sys.executable, str(llama_cpp() / "convert_hf_to_gguf.py"), str(folder), "--outfile", str(outfile), "--outtype", "f32"],
        capture_output=True, text=True, env=env, cwd=REPO,
    )


def weights(folder) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    for f in files:
        # numpy has no bfloat16: read through torch, as float32
        out.update({k: v.float().numpy() for k, v in load_torch(folder / f).items()})
    return out


def field_str(r: GGUFReader, key: str) -> str:
    f = r.fields[key]
    return bytes(f.parts[f.data[0]]).decode("utf-8")


def field_int(r: GGUFReader, key: str) -> int:
    f = r.fields[key]
    return int(f.parts[f.data[0]][0])


@pytest.mark.parametrize("source,target", CASES, ids=[f"{s}-{t}" for s, t in CASES])
def test_llama_cpp_converts_the_output(transferred, tmp_path, source, target):
    t = transferred(source)
    out = t["out"][target]
    # Control: the converter takes the source folder transformers wrote.
    ctl = convert(t["source"], tmp_path / "source.gguf")
    assert ctl.returncode == 0, ctl.stderr[-3000:]
    r = convert(out, tmp_path / "out.gguf")
    assert r.returncode == 0, r.stderr[-3000:]
    warnings = sorted({line for line in r.stderr.splitlines() if line.startswith("WARNING")})

    g = GGUFReader(tmp_path / "out.gguf")
    arch = field_str(g, "general.architecture")
    w = weights(out)
    emb_name = next(k for k in w if k.endswith("embed_tokens.weight"))
    rows = w[emb_name].shape[0]
    if f"{arch}.vocab_size" in g.fields:  # written for llama only
        assert field_int(g, f"{arch}.vocab_size") == rows
    tok = AutoTokenizer.from_pretrained(out)
    tokens = g.fields["tokenizer.ggml.tokens"]
    pieces = [bytes(tokens.parts[i]).decode("utf-8") for i in tokens.data]
    assert len(pieces) == rows
    assert pieces[: len(tok)] == tok.convert_ids_to_tokens(list(range(len(tok))))
    tensors = {x.name: x for x in g.tensors}
    assert np.array_equal(np.asarray(tensors["token_embd.weight"].data).reshape(rows, -1), w[emb_name])
    head = [k for k in w if k == "lm_head.weight"]
    if head:
        assert np.array_equal(np.asarray(tensors["output.weight"].data).reshape(rows, -1), w[head[0]])
    else:
        assert "output.weight" not in tensors or np.array_equal(np.asarray(tensors["output.weight"].data).reshape(rows, -1), w[emb_name])
    record(kind="gguf", source=source, target=target, arch=arch, tokenizer_model=field_str(g, "tokenizer.ggml.model"), rows=rows, warnings=warnings)
