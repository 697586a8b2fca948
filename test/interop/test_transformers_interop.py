"""transformers builds and saves a small model of each family, `salt-transfer transfer` gives it a
target PLM's vocabulary, and transformers loads, runs, generates with and re-saves the result."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import capture_warnings
from models import SOURCES, TARGETS, read_json
from oracle import shared_tokens
from realdata import REPO, llama_cpp_test_strings, real_sentences

CASES = [(s, t) for s in SOURCES for t in TARGETS]
IDS = [f"{s}-{t}" for s, t in CASES]
RESULTS = REPO / "build" / "interop-results.jsonl"


def record(**row) -> None:
    """One line per measured case into build/interop-results.jsonl (for the docs' table)."""
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")


def load_model(folder: Path, **kw):
    with capture_warnings() as cap:
        model, info = AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True, **kw)
    return model.eval(), info, cap


def load_tokenizer(folder: Path):
    with capture_warnings() as cap:
        tok = AutoTokenizer.from_pretrained(folder)
    return tok, cap


@pytest.mark.parametrize("source,target", CASES, ids=IDS)
def test_loads_without_missing_unexpected_or_mismatched_keys(transferred, target_folder, source, target):
    out = transferred(source)["out"][target]
    model, info, cap = load_model(out)
    assert info == {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": set(), "error_msgs": []}
    assert not cap, f"transformers warned while loading {out}:\n{cap!r}"
    tok, tcap = load_tokenizer(out)
    assert not tcap, f"transformers warned while loading the tokenizer of {out}:\n{tcap!r}"
    target_tok = AutoTokenizer.from_pretrained(target_folder(target))
    rows = model.get_input_embeddings().weight.shape[0]
    assert model.config.vocab_size == rows
    assert len(tok) == len(target_tok) <= rows
    if SOURCES[source].cli[:1] == ("--pad-to-multiple-of",):
        assert rows % int(SOURCES[source].cli[1]) == 0 and rows - len(tok) < int(SOURCES[source].cli[1])
    else:
        assert rows == len(tok)
    assert model.get_output_embeddings().weight.shape[0] == rows
    tied = model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert tied == SOURCES[source].tied


def _mapped_text(target_tok, shared: dict[int, int], max_tokens: int = 48) -> list[int]:
    """Target ids of real sentences whose every target token is shared, up to `max_tokens`."""
    ids: list[int] = []
    for s in real_sentences():
        enc = target_tok.encode(s, add_special_tokens=False)
        if all(i in shared for i in enc):
            ids += enc
            if len(ids) >= max_tokens:
                break
    assert len(ids) >= 8, "no real sentence whose target tokens are all shared"
    return ids[:max_tokens]


@pytest.mark.parametrize("source,target", CASES, ids=IDS)
def test_logits_on_shared_tokens_equal_the_source_models(transferred, target_folder, source, target):
    spec = SOURCES[source]
    t = transferred(source)
    src_tok = AutoTokenizer.from_pretrained(t["source"])
    tgt_tok = AutoTokenizer.from_pretrained(target_folder(target))
    shared = shared_tokens(tgt_tok, TARGETS[target].convention, src_tok, spec.convention)
    assert len(shared) > 1000, f"only {len(shared)} shared tokens"
    ids_t = _mapped_text(tgt_tok, shared)
    ids_s = [shared[i] for i in ids_t]

    src_model, _, _ = load_model(t["source"])
    out_model, _, _ = load_model(t["out"][target])
    if spec.out_dtype != spec.dtype:
        # --dtype: the new embedding and head are stored in that dtype (other tensors as in the
        # source); the source model with its embedding and head rounded the same way is the reference.
        with torch.no_grad():
            for p in {src_model.get_input_embeddings().weight, src_model.get_output_embeddings().weight}:
                p.copy_(p.to(spec.out_dtype).to(p.dtype))
    with torch.no_grad():
        ls = src_model(torch.tensor([ids_s])).logits[0].float()
        lt = out_model(torch.tensor([ids_t])).logits[0].float()
    cols_t = torch.tensor(sorted(shared))
    cols_s = torch.tensor([shared[i] for i in sorted(shared)])
    diff = (lt[:, cols_t] - ls[:, cols_s]).abs().max().item()
    scale = ls.abs().max().item()
    tol = 1e-5 * max(1.0, scale) if out_model.dtype == torch.float32 else 2e-2 * max(1.0, scale)
    record(source=source, target=target, saved=str(spec.dtype).removeprefix("torch."), written=str(spec.out_dtype).removeprefix("torch."),
           loaded=str(out_model.dtype).removeprefix("torch."), tied=spec.tied, sharded=spec.max_shard_size is not None,
           shared=len(shared), text_tokens=len(ids_t), max_abs_logit_diff=diff, logit_scale=scale, tol=tol, ok=diff <= tol)
    assert diff <= tol, f"logits over {len(shared)} shared tokens differ by {diff} (scale {scale})"
    # The comparison can fail: against the source's columns shifted by one it must see large differences.
    assert (lt[:, cols_t] - ls[:, cols_s.roll(1)]).abs().max().item() > max(10 * tol, 0.1 * scale)


@pytest.mark.parametrize("source,target", CASES, ids=IDS)
def test_special_token_ids_and_rows(transferred, target_folder, source, target):
    t = transferred(source)
    out = t["out"][target]
    tgt_tok = AutoTokenizer.from_pretrained(target_folder(target))
    src_tok = AutoTokenizer.from_pretrained(t["source"])
    cfg = read_json(out / "config.json")
    roles = ["bos", "eos", "pad"]
    for r in roles:
        assert cfg.get(f"{r}_token_id") == getattr(tgt_tok, f"{r}_token_id"), f"config.json {r}_token_id"
    gen_src = read_json(t["source"] / "generation_config.json")
    gen_out = read_json(out / "generation_config.json")
    for r in roles:
        key = f"{r}_token_id"
        if key in gen_src:
            assert key in gen_out, f"generation_config.json lost {key}"
        if key in gen_out:
            assert gen_out[key] == getattr(tgt_tok, key), f"generation_config.json {key}"
    # Rows of the roles both tokenizers have come from the source row of the same role.
    src_model, _, _ = load_model(t["source"])
    out_model, _, _ = load_model(out)
    pairs = [(r, getattr(tgt_tok, f"{r}_token_id"), getattr(src_tok, f"{r}_token_id")) for r in ["bos", "eos", "pad", "unk"]]
    pairs = [(r, a, b) for r, a, b in pairs if a is not None and b is not None]
    for r, tid, sid in pairs:
        for get in (lambda m: m.get_input_embeddings().weight, lambda m: m.get_output_embeddings().weight):
            want = get(src_model)[sid].detach().to(SOURCES[source].out_dtype).float()
            got = get(out_model)[tid].detach().float()
            assert torch.equal(got, want), f"{r}: target row {tid} is not the source's row {sid}"
    if target == "xlmr":
        assert pairs, "the XLM-R-style target and every source share at least one role"


@pytest.mark.parametrize("source,target", CASES, ids=IDS)
def test_generate_and_save_pretrained_round_trip(transferred, tmp_path, source, target):
    out = transferred(source)["out"][target]
    model, _, _ = load_model(out)
    tok, _ = load_tokenizer(out)
    enc = tok("the license is free software", return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else 0)
    assert gen.shape[1] > enc["input_ids"].shape[1]
    assert int(gen.max()) < model.config.vocab_size
    model.save_pretrained(tmp_path / "again")
    tok.save_pretrained(tmp_path / "again")
    again, info, cap = load_model(tmp_path / "again")
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set() and info["mismatched_keys"] == set()
    assert not cap, repr(cap)
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    tok2 = AutoTokenizer.from_pretrained(tmp_path / "again")
    assert tok2.encode("the license is free software") == tok.encode("the license is free software")


@pytest.mark.parametrize("source,target", CASES, ids=IDS)
def test_tokenizer_encodes_real_sentences_as_the_target(transferred, target_folder, source, target):
    out_tok, _ = load_tokenizer(transferred(source)["out"][target])
    tgt_tok = AutoTokenizer.from_pretrained(target_folder(target))
    texts = real_sentences() + llama_cpp_test_strings("llama-spm")
    assert len(texts) > 200
    for s in texts:
        assert out_tok.encode(s) == tgt_tok.encode(s), s
        assert out_tok.decode(out_tok.encode(s)) == tgt_tok.decode(tgt_tok.encode(s)), s
