"""deepfocus (FOCUS's official code) as a folder transfer, for the timing of bench/peers/speed.py.

    python bench/peers/focus_folder.py SOURCE_FOLDER TARGET_FOLDER OUT_FOLDER

deepfocus has no command line; its entry point FOCUS() first loads or trains a fastText model of the
target language (downloaded or trained on a corpus: neither is possible offline here). This script runs
the rest of FOCUS() with deepfocus's own functions, with the target PLM's input embeddings as the
auxiliary space (what tokensurgeon and salt-transfer use by default):
get_overlapping_tokens (FOCUS's defaults: exact_match_all=True, match_symbols=False,
fuzzy_match_all=False) -> is_very_rare_token on a dict-like aux model -> copy overlapping rows ->
N(mean, std) rows for tokens without an aux vector (none here) -> focus_additional_token_initialization.
The time of those steps (the approximation step alone) goes to $PEERS_STEP_FILE as JSON.
An untied output head is transferred by the same call on the head (deepfocus's README does this for
output embeddings). Then the model is resized, saved with save_pretrained, and the target tokenizer saved.
"""
from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from deepfocus.focus import focus_additional_token_initialization, get_overlapping_tokens, is_very_rare_token  # noqa: E402

torch.set_num_threads(int(os.environ.get("PEERS_THREADS", "2")))


class PlmAux:
    """The target PLM's input embeddings, looked up by token string, in the interface deepfocus reads
    from a fastText model (`token in model`, `model[token]`)."""

    def __init__(self, tokenizer, embeddings):
        self.vocab = tokenizer.get_vocab()
        self.rows = embeddings.numpy()

    def __contains__(self, token):
        return token in self.vocab and self.vocab[token] < len(self.rows)

    def __getitem__(self, token):
        return self.rows[self.vocab[token]]


@torch.no_grad()
def focus_matrix(source_rows, overlapping, new_tokens, aux, n_target, seed=42):
    """FOCUS() steps 3-6 (deepfocus/focus.py), for one matrix."""
    overlapping = {k: v for k, v in overlapping.items()}
    new = dict(new_tokens)
    random_init = []
    for token, info in sorted(overlapping.items(), key=lambda x: x[1].target.id):
        info.source_embedding = source_rows[info.source[0].id]
        if is_very_rare_token(token, aux):
            info.use_for_focus = False
        else:
            info.use_for_focus = True
            info.auxiliary_embedding = aux[token]
    for token, info in sorted(new.items(), key=lambda x: x[1].target.id):
        if is_very_rare_token(info.target.native_form, aux):
            random_init.append(info)
            del new[token]
        else:
            info.auxiliary_embedding = aux[token]
    out = torch.zeros((n_target, source_rows.shape[1]))
    for info in overlapping.values():
        out[info.target.id] = info.source_embedding
    gen = torch.Generator().manual_seed(seed)
    mean, std = source_rows.mean(0), source_rows.std(0)
    for info in random_init:
        out[info.target.id] = torch.normal(mean, std, generator=gen)
    use = {k: v for k, v in sorted(overlapping.items(), key=lambda x: x[1].target.id) if v.use_for_focus}
    return focus_additional_token_initialization(use, new, out, device="cpu")


def main(src: str, tgt: str, out: str) -> None:
    src_tok = AutoTokenizer.from_pretrained(src)
    tgt_tok = AutoTokenizer.from_pretrained(tgt)
    model = AutoModelForCausalLM.from_pretrained(src, dtype="auto")
    plm = AutoModel.from_pretrained(tgt)
    aux = PlmAux(tgt_tok, plm.get_input_embeddings().weight.detach().float())
    del plm
    overlapping, new_tokens = get_overlapping_tokens(tgt_tok, src_tok, match_symbols=False, exact_match_all=True, fuzzy_match_all=False)
    print(f"deepfocus overlap: {len(overlapping)} of {len(tgt_tok)} target tokens", file=sys.stderr)
    n = len(tgt_tok)
    emb = model.get_input_embeddings().weight.detach().float()
    t0 = time.perf_counter()
    new_emb = focus_matrix(emb, overlapping, new_tokens, aux, n)
    tied = model.config.tie_word_embeddings
    head = None if tied else model.get_output_embeddings().weight.detach().float()
    new_head = None if head is None else focus_matrix(head, overlapping, new_tokens, aux, n)
    step = time.perf_counter() - t0
    if os.environ.get("PEERS_STEP_FILE"):
        with open(os.environ["PEERS_STEP_FILE"], "w") as f:
            json.dump({"step_s": step, "overlap": len(overlapping)}, f)
    dtype = model.get_input_embeddings().weight.dtype
    model.resize_token_embeddings(n)
    model.get_input_embeddings().weight.data.copy_(new_emb.to(dtype))
    if new_head is not None:
        model.get_output_embeddings().weight.data.copy_(new_head.to(dtype))
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(model.config, key, getattr(tgt_tok, key, None))
    model.save_pretrained(out)
    tgt_tok.save_pretrained(out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
