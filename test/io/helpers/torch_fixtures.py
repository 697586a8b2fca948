"""Writes PyTorch checkpoints with the real torch.save / save_pretrained for test/io/torchCheckpoint.test.ts.

Usage: python torch_fixtures.py OUT_DIR

For every tensor it also writes what Python itself reports, computed here and never by the code
under test: `<file>.expected/<i>.raw` (the tensor's elements, row-major, little-endian, its own
dtype) and `<i>.f32` (the values as float32, float dtypes only), listed in `<file>.expected/manifest.json`.
"""

import json
import os
import sys
import zipfile
from collections import OrderedDict

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def expected(path, sd):
    d = path + ".expected"
    os.makedirs(d, exist_ok=True)
    manifest = []
    for i, (name, t) in enumerate(sd.items()):
        t = t.detach()
        flat = t.contiguous().reshape(-1)
        with open(os.path.join(d, f"{i}.raw"), "wb") as f:
            f.write(flat.view(torch.uint8).numpy().tobytes())
        is_float = t.dtype in (torch.float32, torch.float16, torch.bfloat16)
        if is_float:
            with open(os.path.join(d, f"{i}.f32"), "wb") as f:
                f.write(flat.float().numpy().astype("<f4").tobytes())
        manifest.append(
            {
                "name": name,
                "dtype": DTYPES[t.dtype],
                "shape": list(t.shape),
                "contiguous": t.is_contiguous(),
                "float": is_float,
                "i": i,
            }
        )
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f)


# 1. Several dtypes, a scalar and an empty tensor.
dt = OrderedDict()
dt["f32"] = torch.randn(3, 4)
dt["f16"] = torch.randn(5).half()
dt["bf16"] = torch.randn(2, 3).bfloat16()
dt["f64"] = torch.randn(3).double()
dt["i64"] = torch.arange(-3, 3)
dt["i32"] = torch.tensor([1, -2, 2**31 - 1], dtype=torch.int32)
dt["i16"] = torch.tensor([7, -8], dtype=torch.int16)
dt["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
dt["u8"] = torch.tensor([0, 255, 3], dtype=torch.uint8)
dt["bool"] = torch.tensor([True, False, True])
dt["scalar"] = torch.tensor(2.5)
dt["empty"] = torch.zeros(0, 4)
dt["f16_special"] = torch.tensor([float("inf"), -float("inf"), 0.0, -0.0, 6.1e-8, 65504.0], dtype=torch.float16)
torch.save(dt, os.path.join(out, "dtypes.bin"))
expected(os.path.join(out, "dtypes.bin"), dt)

# 2. Views: an offset view, shared storages (tied), a transposed (non-contiguous) view, a strided
#    column, an expanded (stride 0) view, a Parameter, a view of an F16 storage at an offset.
base = torch.arange(20, dtype=torch.float32) / 4
m = torch.randn(4, 5)
emb = torch.nn.Parameter(torch.randn(6, 3))
h = torch.randn(10).half()
vw = OrderedDict()
vw["base"] = base
vw["offset_view"] = base[4:10].view(2, 3)
vw["m"] = m
vw["m_t"] = m.t()
vw["m_col"] = m[:, 1]
vw["m_block"] = m[1:3, 2:5]
vw["expanded"] = torch.arange(3, dtype=torch.float32).unsqueeze(0).expand(4, 3)
vw["emb"] = emb
vw["head"] = emb
vw["h_tail"] = h[6:]
vw["h_t"] = h[:6].view(2, 3).t()
vw._metadata = OrderedDict({"": {"version": 1}})
torch.save(vw, os.path.join(out, "views.bin"))
expected(os.path.join(out, "views.bin"), vw)

# 3. Variants made from the views file: compressed, big-endian byteorder, legacy format.
with zipfile.ZipFile(os.path.join(out, "views.bin")) as src:
    items = [(i.filename, src.read(i.filename)) for i in src.infolist()]
with zipfile.ZipFile(os.path.join(out, "deflated.bin"), "w", zipfile.ZIP_DEFLATED) as dst:
    for n, b in items:
        dst.writestr(n, b)
with zipfile.ZipFile(os.path.join(out, "bigendian.bin"), "w", zipfile.ZIP_STORED) as dst:
    for n, b in items:
        dst.writestr(n, b"big" if n.endswith("/byteorder") else b)
torch.save(dt, os.path.join(out, "legacy.bin"), _use_new_zipfile_serialization=False)


# Refused shapes of content: a huge expanded (stride 0) view of one element, a non-tensor value,
# a nested state dict.
torch.save({"x": torch.zeros(1).expand(10**6)}, os.path.join(out, "expand_big.bin"))
torch.save({"w": torch.ones(1), "n": 3}, os.path.join(out, "nontensor.bin"))
torch.save({"state_dict": {"w": torch.ones(1)}}, os.path.join(out, "nested.bin"))

# 4. Malicious pickles: torch.save of objects whose reduction calls os.system / builtins.eval.
class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


marker = os.path.join(out, "PWNED")
torch.save({"w": torch.ones(2), "x": Evil(os.system, "touch " + marker)}, os.path.join(out, "evil_system.bin"))
torch.save(
    {"w": Evil(eval, "open(%r, 'w').close()" % marker)}, os.path.join(out, "evil_eval.bin")
)

# 5. A small file for the fuzzer.
small = OrderedDict()
small["a"] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
small["a_t"] = small["a"].t()
small["b"] = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
small["c"] = torch.arange(4, dtype=torch.float16)[1:]
torch.save(small, os.path.join(out, "small.bin"))

# 6. A tiny BertModel. transformers 5 no longer writes .bin weights (safe_serialization=False is
#    ignored), so the .bin folders are written the way transformers 4 wrote them: the state dict split
#    by huggingface_hub's split_torch_state_dict_into_shards, each shard written by torch.save, and
#    pytorch_model.bin.index.json with metadata.total_size and weight_map.
from huggingface_hub import split_torch_state_dict_into_shards  # noqa: E402
from transformers import BertConfig, BertModel  # noqa: E402

cfg = BertConfig(
    vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=32,
)
model = BertModel(cfg).eval()
sd = model.state_dict()
model.save_pretrained(os.path.join(out, "bert-st"))
for name, max_size in (("bert-sharded", "20KB"), ("bert-bin", "5GB")):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    cfg.save_pretrained(d)
    split = split_torch_state_dict_into_shards(sd, filename_pattern="pytorch_model{suffix}.bin", max_shard_size=max_size)
    for fname, names in split.filename_to_tensors.items():
        torch.save({n: sd[n].contiguous() for n in names}, os.path.join(d, fname))
    if split.is_sharded:
        with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
            json.dump({"metadata": split.metadata, "weight_map": split.tensor_to_filename}, f, indent=2)
expected(os.path.join(out, "bert"), sd)
print(json.dumps({"torch": torch.__version__, "files": sorted(os.listdir(out))}))

# 7. A 64-token WordPiece tokenizer for the BERT folders (the writer test).
from transformers import BertTokenizerFast  # noqa: E402

tok_dir = os.path.join(out, "bert-tok")
os.makedirs(tok_dir, exist_ok=True)
words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(c) for c in range(ord("a"), ord("a") + 26)]
words += ["##" + chr(c) for c in range(ord("a"), ord("a") + 26)] + ["the", "and", "of", "to", "in", "is", "it"]
with open(os.path.join(tok_dir, "vocab.txt"), "w") as f:
    f.write("\n".join(words[:64]) + "\n")
BertTokenizerFast(os.path.join(tok_dir, "vocab.txt")).save_pretrained(tok_dir)
