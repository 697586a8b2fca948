"""Folders that transformers itself rejects get a coded error from `salt-transfer transfer` that names
the file and the field, before any work starts (no engine stage runs, no output is written)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

from conftest import run_cli


def _edit_json(path: Path, fn) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


def _drop(key):
    return lambda d: d.pop(key)


def _set(key, value):
    return lambda d: d.__setitem__(key, value)


# (id, which folder, file, edit, how transformers fails, expected code, words the message must contain)
CASES = [
    ("source-no-model-type", "source", "config.json", _drop("model_type"), "config", "E_FORMAT", ["config.json", '"model_type"']),
    ("source-tie-not-bool", "source", "config.json", _set("tie_word_embeddings", "yes"), "config", "E_FORMAT", ["config.json", '"tie_word_embeddings"', '"yes"']),
    ("source-vocab-size-mismatch", "source", "config.json", _set("vocab_size", 50000), "model", "E_NOT_FOUND", ["config.json", "vocab_size", "[50000, 64]", "transformer.wte.weight [50257, 64]"]),
    ("source-tokenizer-not-json", "source", "tokenizer.json", None, "tokenizer", "E_FORMAT", ["tokenizer.json", "not valid JSON"]),
    ("target-no-model-type", "target", "config.json", _drop("model_type"), "config", "E_FORMAT", ["config.json", '"model_type"']),
    ("target-width-mismatch", "target", "config.json", _set("hidden_size", 64), "model", "E_NOT_FOUND", ["config.json", "[7999, 64]", "roberta.embeddings.word_embeddings.weight [7999, 48]"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_refused_with_a_coded_error_before_any_work(case, source_folder, target_folder, tmp_path):
    name, which, file, edit, rejected_by, code, words = case
    src = tmp_path / "source"
    tgt = tmp_path / "target"
    shutil.copytree(source_folder("gpt2"), src)
    shutil.copytree(target_folder("xlmr"), tgt)
    bad = (src if which == "source" else tgt) / file
    if edit is None:
        bad.write_text('{"model": ')
    else:
        _edit_json(bad, edit)
    folder = bad.parent
    # transformers itself refuses the folder
    with pytest.raises(Exception):
        if rejected_by == "config":
            AutoConfig.from_pretrained(folder)
        elif rejected_by == "tokenizer":
            AutoTokenizer.from_pretrained(folder)
        else:
            (AutoModelForCausalLM if which == "source" else AutoModel).from_pretrained(folder)
    out = tmp_path / "out"
    r = run_cli("transfer", "--source", str(src), "--target", str(tgt), "--out", str(out), check=False)
    assert r.returncode == 1, r.stderr
    assert f"error [{code}]" in r.stderr, r.stderr
    msg = r.stderr[r.stderr.index(f"[{code}]"):]
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    assert str(folder) in msg or folder.name in msg
    assert "combine:" not in r.stderr and "lambda:" not in r.stderr, "the engine ran before the error"
    assert not out.exists()
