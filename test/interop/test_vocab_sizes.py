"""Vocabulary sizes: added tokens past the target's base vocabulary, and a target tokenizer with more
ids than its embedding has rows. (Padding to a multiple is covered by the llama source of
test_transformers_interop.py, written with --pad-to-multiple-of 64.)"""
from __future__ import annotations

import shutil

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from conftest import capture_warnings, run_cli
from test_transformers_interop import load_model, load_tokenizer

ADDED_SPECIAL = ["<lang_de>", "<lang_fr>"]
ADDED_NORMAL = ["blorptastic"]


def _with_added_tokens(base, folder, resize: bool):
    shutil.copytree(base, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_tokens(ADDED_SPECIAL, special_tokens=True)
    tok.add_tokens(ADDED_NORMAL)
    tok.save_pretrained(folder)
    if resize:
        model = AutoModelForMaskedLM.from_pretrained(folder)
        model.resize_token_embeddings(len(tok), mean_resizing=False)
        model.save_pretrained(folder)
    return tok


def test_added_tokens_past_the_base_vocabulary(source_folder, target_folder, tmp_path):
    base = target_folder("xlmr")
    base_len = len(AutoTokenizer.from_pretrained(base))
    tgt = tmp_path / "target-added"
    tgt_tok = _with_added_tokens(base, tgt, resize=True)
    assert len(tgt_tok) == base_len + 3
    out = tmp_path / "out"
    run_cli("transfer", "--source", str(source_folder("gpt2")), "--target", str(tgt), "--out", str(out))
    model, info, cap = load_model(out)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]) and not cap, (info, cap)
    tok, tcap = load_tokenizer(out)
    assert not tcap, repr(tcap)
    assert len(tok) == model.config.vocab_size == model.get_input_embeddings().weight.shape[0] == base_len + 3
    text = "<lang_de> the blorptastic license <lang_fr>"
    ids = tok.encode(text, add_special_tokens=False)
    assert ids == tgt_tok.encode(text, add_special_tokens=False)
    added = tgt_tok.convert_tokens_to_ids(ADDED_SPECIAL + ADDED_NORMAL)
    assert sorted(added) == list(range(base_len, base_len + 3)) and set(added) <= set(ids)
    assert tok.get_added_vocab() == tgt_tok.get_added_vocab()
    assert [tok.added_tokens_decoder[i].special for i in added] == [True, True, False]
    rows = model.get_input_embeddings().weight[added]
    assert torch.isfinite(rows).all() and rows.abs().sum(1).min() > 0
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), base_len + 3) and torch.isfinite(logits).all()


def test_a_tokenizer_with_more_ids_than_embedding_rows_is_refused(source_folder, target_folder, tmp_path):
    base = target_folder("xlmr")
    rows = len(AutoTokenizer.from_pretrained(base))
    tgt = tmp_path / "target-more-ids"
    tgt_tok = _with_added_tokens(base, tgt, resize=False)
    # transformers loads such a PLM without complaint; only running it on the new ids fails.
    with capture_warnings():
        plm = AutoModelForMaskedLM.from_pretrained(tgt)
    assert plm.get_input_embeddings().weight.shape[0] == rows < len(tgt_tok)
    out = tmp_path / "out"
    r = run_cli("transfer", "--source", str(source_folder("gpt2")), "--target", str(tgt), "--out", str(out), check=False)
    assert r.returncode == 1
    assert f'error [E_SHAPE]: {tgt}: the tokenizer has {len(tgt_tok)} tokens but the input embedding "roberta.embeddings.word_embeddings.weight" has only {rows} rows' in r.stderr, r.stderr
    assert "lambda:" not in r.stderr and "combine:" not in r.stderr, "the engine ran before the error"
    assert not out.exists()
