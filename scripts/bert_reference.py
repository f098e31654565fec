#!/usr/bin/env python3
"""Reference BERT sentence embeddings in numpy float64, for tests/tests/import.rs.

Usage: bert_reference.py MODEL_DIR OUT.npz [--seq S]

Tokenizes a few fixed sentences with MODEL_DIR/tokenizer.json (the `tokenizers` package),
padding or truncating each to S tokens, and computes, from MODEL_DIR/model.safetensors
alone (the header is parsed here with numpy; no torch, no transformers): BertModel's
last_hidden_state (erf GELU, additive padding mask equal to float32's lowest value, as
lowbit's graph.padding_mask), masked mean pooling and L2 normalization. Writes
input_ids, attention_mask, token_type_ids (int64 [B, S]), last_hidden_state and
sentence_embedding (float64) to OUT.npz.
"""

import json
import math
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A compiler turns programs into machine code.",
    "Sentence embeddings map text to vectors.",
    "It is raining in Paris today, so bring an umbrella!",
]

DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8"}


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    return out


_erf = np.vectorize(math.erf)


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def bert(w, cfg, ids, mask, types):
    f = lambda k: w[k].astype(np.float64)  # noqa: E731
    lin = lambda x, m: x @ f(m + ".weight").T + f(m + ".bias")  # noqa: E731
    eps = cfg.get("layer_norm_eps", 1e-12)
    bsz, s = ids.shape
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d = h // nh
    x = f("embeddings.word_embeddings.weight")[ids]
    x = x + f("embeddings.position_embeddings.weight")[np.arange(s)]
    x = x + f("embeddings.token_type_embeddings.weight")[types]
    x = layer_norm(x, f("embeddings.LayerNorm.weight"), f("embeddings.LayerNorm.bias"), eps)
    add_mask = np.where(mask != 0, 0.0, float(np.finfo(np.float32).min))[:, None, None, :]
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        heads = lambda t: t.reshape(bsz, s, nh, d).transpose(0, 2, 1, 3)  # noqa: E731
        q = heads(lin(x, p + "attention.self.query"))
        k = heads(lin(x, p + "attention.self.key"))
        v = heads(lin(x, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + add_mask
        scores = scores - scores.max(-1, keepdims=True)
        pr = np.exp(scores)
        pr = pr / pr.sum(-1, keepdims=True)
        o = (pr @ v).transpose(0, 2, 1, 3).reshape(bsz, s, h)
        o = lin(o, p + "attention.output.dense")
        x = layer_norm(o + x, f(p + "attention.output.LayerNorm.weight"),
                       f(p + "attention.output.LayerNorm.bias"), eps)
        a = lin(x, p + "intermediate.dense")
        a = 0.5 * a * (1.0 + _erf(a / math.sqrt(2.0)))
        o = lin(a, p + "output.dense")
        x = layer_norm(o + x, f(p + "output.LayerNorm.weight"), f(p + "output.LayerNorm.bias"), eps)
    return x


def main():
    args = sys.argv[1:]
    seq = 16
    if "--seq" in args:
        i = args.index("--seq")
        seq = int(args[i + 1])
        del args[i : i + 2]
    model_dir, out = args
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.enable_truncation(max_length=seq)
    tok.enable_padding(length=seq)
    enc = tok.encode_batch(SENTENCES)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    types = np.array([e.type_ids for e in enc], dtype=np.int64)
    with open(f"{model_dir}/config.json") as fh:
        cfg = json.load(fh)
    w = load_safetensors(f"{model_dir}/model.safetensors")
    hidden = bert(w, cfg, ids, mask, types)
    m = mask[:, :, None].astype(np.float64)
    emb = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    np.savez(out, input_ids=ids, attention_mask=mask, token_type_ids=types,
             last_hidden_state=hidden, sentence_embedding=emb)


if __name__ == "__main__":
    main()
