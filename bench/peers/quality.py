"""Held-out reconstruction on identical splits: our methods against the peers' own library functions.

    python bench/peers/quality.py SPLIT_DIR OUT_JSON        (SPLIT_DIR written by bench/peers/split.mjs)

Every tool gets exactly the same inputs per pair and seed: the anchors (their target-PLM rows, which
are also the aux space, and their true source rows) and the held-out shared tokens (their target-PLM
rows only). The peers' functions are called directly, the way their own entry points call them:

- deepfocus 1.0.1 (FOCUS): `focus_additional_token_initialization(overlapping, new, target_embeddings)`,
  the step FOCUS() runs after loading its fastText aux model; here OverlappingToken.auxiliary_embedding
  is the anchor's PLM row and source_embedding its true source row, NewToken.auxiliary_embedding the
  held-out token's PLM row.
- mergekit 0.1.5 tokensurgeon: `compute_new_embeddings(orig_embed, donor_embed, orig_vocab, donor_vocab,
  target_tokens, ...)` with orig = the source matrix, donor = the PLM rows, the anchors as the only shared
  vocabulary and the held-out tokens as targets, in batches of 512 (the CLI's default --batch-size);
  `omp` (k 64, the CLI default method) and `common_interpolation` with `least_squares` weights (k 64,
  Euclidean distance: the CLI default metric), plus the same with `--cosine-similarity` to explain
  differences.
- wechsel 0.0.4: `create_target_embeddings(source_subword_embeddings, target_subword_embeddings,
  source_tokenizer, target_tokenizer, source_matrix, neighbors=10, temperature=0.1)` with the anchors
  as the "source vocabulary" (PLM rows as their aligned subword embeddings, true rows as source_matrix)
  and the held-out tokens as the target vocabulary; the tokenizers are minimal stand-ins exposing only
  what the function reads (vocab, convert_ids_to_tokens, special_tokens_map, len).

Our predictions come from split.mjs (transferEmbeddings on the same sub-problem). One metric code
scores all: mean cosine with the true row, rank of the true row among all source rows by cosine
(1 = best, ties to the lower row index, as our evaluate), its median, and P@1 = share of rank 1.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("PEERS_THREADS", "2")))
logging.disable(logging.WARNING)


def load_pair(d: Path):
    man = json.loads((d / "manifest.json").read_text())
    S = np.fromfile(d / "source.f32", dtype=np.float32).reshape(man["sourceRows"], man["hs"])
    T = np.fromfile(d / "target.f32", dtype=np.float32).reshape(man["targetRows"], man["ht"])
    return man, S, T


def score(pred: np.ndarray, S: np.ndarray, true_ids: np.ndarray) -> dict:
    p = pred.astype(np.float64)
    s = S.astype(np.float64)
    pn = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-30)
    sn = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-30)
    sims = pn @ sn.T
    t = sims[np.arange(len(true_ids)), true_ids]
    idx = np.arange(S.shape[0])[None, :]
    ranks = 1 + (sims > t[:, None]).sum(1) + ((sims == t[:, None]) & (idx < true_ids[:, None])).sum(1)
    return {"meanCosine": float(t.mean()), "medianRank": float(np.median(ranks)), "p1": float((ranks == 1).mean()), "ranks": ranks}


# ---- the peers ----------------------------------------------------------------------------------

def deepfocus_focus(A_aux, A_src, H_aux):
    from deepfocus.focus import focus_additional_token_initialization
    from deepfocus.vocab_helper import NewToken, OverlappingToken, TokenClass

    def tc(i, name):
        return TokenClass(native_form=name, id=i, canonical_form=name, fuzzy_form=name, uncased_form=name, no_whitespace_form=name, is_beginning_of_word=True)

    overlapping = {}
    for i in range(len(A_aux)):
        c = tc(i, f"a{i}")
        overlapping[c.native_form] = OverlappingToken(source=[c], target=c, source_embedding=torch.from_numpy(A_src[i]), auxiliary_embedding=A_aux[i])
    new = {}
    for j in range(len(H_aux)):
        c = tc(j, f"h{j}")
        new[c.native_form] = NewToken(target=c, auxiliary_embedding=H_aux[j])
    out = torch.zeros((len(H_aux), A_src.shape[1]))
    out = focus_additional_token_initialization(overlapping, new, out, device="cpu")
    return out.numpy()


def tokensurgeon(S, A_sid, T, A_rows, H_rows, method: str, cosine: bool = False, k: int = 64, batch: int = 512):
    from mergekit.scripts.tokensurgeon import ApproximationMethod, TokenSurgeonOptions, compute_new_embeddings
    from mergekit.tokensurgeon import WeightingScheme

    opts = TokenSurgeonOptions(
        model="source", donor="donor", out_path="-", k=k, cosine_similarity=cosine,
        method=ApproximationMethod("omp" if method == "omp" else "common_interpolation"),
        weight_scheme=WeightingScheme.LEAST_SQUARES if method == "least_squares" else WeightingScheme.DISTANCE_PROPORTIONAL,
    )
    orig_vocab = {f"a{i}": int(s) for i, s in enumerate(A_sid)}
    donor_vocab = {f"a{i}": int(r) for i, r in enumerate(A_rows)}
    donor_vocab.update({f"h{j}": int(r) for j, r in enumerate(H_rows)})
    targets = [f"h{j}" for j in range(len(H_rows))]
    orig, donor = torch.from_numpy(S), torch.from_numpy(T)
    parts = [
        compute_new_embeddings(orig, donor, orig_vocab, donor_vocab, targets[b:b + batch], False, None, None, opts)
        for b in range(0, len(targets), batch)
    ]
    return torch.cat(parts).numpy()


class _Vocab:
    """What wechsel.create_target_embeddings reads from a tokenizer, and nothing else."""

    def __init__(self, prefix: str, n: int):
        self.names = [f"{prefix}{i}" for i in range(n)]
        self.vocab = {t: i for i, t in enumerate(self.names)}
        self.special_tokens_map = {}

    def __len__(self):
        return len(self.names)

    def convert_ids_to_tokens(self, ids):
        if isinstance(ids, (int, np.integer)):
            return self.names[int(ids)]
        return [self.names[int(i)] for i in ids]


def wechsel_peer(A_aux, A_src, H_aux):
    import wechsel

    out, _, _ = wechsel.create_target_embeddings(A_aux, H_aux, _Vocab("a", len(A_aux)), _Vocab("h", len(H_aux)), A_src, neighbors=10, temperature=0.1, verbose=False)
    return out


PEERS = {
    "deepfocus FOCUS": lambda c: deepfocus_focus(c.A_aux, c.A_src, c.H_aux),
    "tokensurgeon omp": lambda c: tokensurgeon(c.S, c.A_sid, c.T, c.A_rows, c.H_rows, "omp"),
    "tokensurgeon least_squares": lambda c: tokensurgeon(c.S, c.A_sid, c.T, c.A_rows, c.H_rows, "least_squares"),
    "tokensurgeon least_squares --cosine-similarity": lambda c: tokensurgeon(c.S, c.A_sid, c.T, c.A_rows, c.H_rows, "least_squares", cosine=True),
    "wechsel": lambda c: wechsel_peer(c.A_aux, c.A_src, c.H_aux),
}


def main(split_dir: Path, out_json: Path) -> None:
    results = {}
    for pd in sorted(p for p in split_dir.iterdir() if (p / "manifest.json").exists()):
        man, S, T = load_pair(pd)
        rows = {}
        for seed in man["seeds"]:
            info = json.loads((pd / f"seed{seed}.json").read_text())
            c = SimpleNamespace(S=S, T=T, A_sid=np.array(info["anchorSources"]), A_rows=np.array(info["anchorRows"]), H_rows=np.array(info["heldRows"]))
            c.A_aux = np.ascontiguousarray(T[c.A_rows])
            c.A_src = np.ascontiguousarray(S[c.A_sid])
            c.H_aux = np.ascontiguousarray(T[c.H_rows])
            true = np.array(info["heldSources"])
            tools = {}
            for m in man["methods"]:
                pred = np.fromfile(pd / f"pred-{m}-seed{seed}.f32", dtype=np.float32).reshape(len(true), man["hs"])
                r = score(pred, S, true)
                check = info["ours"][m]["evaluateMeanCosine"]
                if abs(r["meanCosine"] - check) > 1e-4:
                    raise AssertionError(f"{pd.name} seed {seed} {m}: bench mean cosine {r['meanCosine']:.5f} but evaluateTransfer {check:.5f}: not the same sub-problem")
                tools[f"ours {m}"] = (r, info["ours"][m]["ms"], pred)
            for name, fn in PEERS.items():
                t0 = time.perf_counter()
                pred = np.asarray(fn(c), dtype=np.float32)
                ms = (time.perf_counter() - t0) * 1000
                tools[name] = (score(pred, S, true), ms, pred)
                print(f"{pd.name} seed {seed} {name}: {tools[name][0]['meanCosine']:.4f} ({ms / 1000:.1f} s)", file=sys.stderr, flush=True)
            # agreement of same-method pairs, row by row
            def agree(a, b):
                pa, pb = tools[a][2].astype(np.float64), tools[b][2].astype(np.float64)
                cos = (pa * pb).sum(1) / np.maximum(np.linalg.norm(pa, axis=1) * np.linalg.norm(pb, axis=1), 1e-30)
                return {"meanRowCosine": float(cos.mean()), "minRowCosine": float(cos.min()), "maxAbsDiff": float(np.abs(pa - pb).max())}
            pairs_ = {"focus": ("ours focus", "deepfocus FOCUS"), "wechsel": ("ours wechsel", "wechsel"),
                      "knn-lstsq vs ls euclidean": ("ours knn-lstsq", "tokensurgeon least_squares"),
                      "knn-lstsq vs ls cosine": ("ours knn-lstsq", "tokensurgeon least_squares --cosine-similarity")}
            for name, (r, ms, _) in tools.items():
                e = rows.setdefault(name, {"meanCosine": [], "medianRank": [], "p1": [], "ms": []})
                e["meanCosine"].append(r["meanCosine"]); e["medianRank"].append(r["medianRank"]); e["p1"].append(r["p1"]); e["ms"].append(ms)
            ag = rows.setdefault("_agreement", {})
            for k, (a, b) in pairs_.items():
                ag.setdefault(k, []).append(agree(a, b))
            rows.setdefault("_lambda", {}).setdefault(str(seed), {m: info["ours"][m]["lambda"] for m in man["methods"]})
            rows.setdefault("_hitK", {}).setdefault(str(seed), {m: info["ours"][m]["hitK"] for m in man["methods"]})
        results[man["pair"]] = {"manifest": {k: man[k] for k in ("sourceRows", "hs", "ht", "shared", "alignment", "seeds")},
                                "heldOut": len(true), "anchors": len(info["anchors"]), "tools": rows}
    out_json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
