#!/usr/bin/env python3
"""Inputs and an independent numpy emulation of quantized all-MiniLM-L6-v2, for
tests/tests/quantized_minilm.rs.

Usage: minilm_quant_reference.py MODEL_DIR OUT.npz [--seq S] [--batch B] [--cal N]

Tokenizes the evaluation sentences (EVAL, B of them) and the first N calibration sentences
(CAL, different ones, in sets of B) with MODEL_DIR/tokenizer.json, each padded/truncated to S
tokens, and writes to OUT.npz:

- input_ids, attention_mask, token_type_ids: int64 [B, S], the evaluation batch;
- cal_input_ids, cal_attention_mask, cal_token_type_ids: int64 [n·B, S], the calibration
  sets one after the other;
- fp64: the float64 sentence embeddings [B, 384] (bert_reference.py's model);
- w8a8: the embeddings with SmoothQuant (alpha 0.5, max |x| per input channel over the
  calibration sets, max |w| over the linears sharing the input, the inverse scale applied to
  the activation) + int8 symmetric per-output-channel weights (scale = max|w|/127) + int8
  dynamic per-token symmetric activations (scale = max|x|/127), every linear quantized;
- w4: weight-only int4 asymmetric per group of 128 input channels (AWQ's
  pseudo_quantize_tensor: scale = (max-min)/15, zero = clamp(-round(min/scale), 0, 15));
- w4_gptq: the same format, codes by GPTQ with act-order and damping 0.01, H = XᵀX over
  the calibration tokens of each linear's input (padding tokens left out, as the pass's
  calib-mask=1 does), the group parameters from the partly updated weights (the blocked numpy GPTQ of
  minilm_int4_experiment.py, written from the paper);
- w4_gptq_had: w4_gptq on Hadamard-rotated inputs: x -> x·H/√n, W -> W·H/√n (H the
  order-n Hadamard matrix rot.hadamard means), then GPTQ of W·H/√n.

Written from the formulas of techniques.md §4.1–4.2, not from lowbit's code. numpy rounds
half to even, as lowbit.quantize; scales are rounded to float32 before use, as lowbit stores
them.
"""

import json
import math
import os
import sys

# One BLAS thread: the test machines are small and shared; threads only contend.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import bert_reference as br  # noqa: E402

EVAL = [
    "The quick brown fox jumps over the lazy dog.",
    "A compiler turns programs into machine code.",
    "Sentence embeddings map text to vectors.",
    "It is raining in Paris today, so bring an umbrella!",
]

CAL = [
    "Machine learning models need careful evaluation before deployment.",
    "The weather was cold and windy for the whole week in the mountains.",
    "She played the piano at the concert last night and everyone applauded.",
    "Stock markets fell sharply after the central bank announcement.",
    "Photosynthesis converts light into chemical energy inside plant cells.",
    "He forgot his keys at the office again and had to call a locksmith.",
    "The museum opened a new exhibition about ancient Egyptian pottery.",
    "Our team won the football match after a penalty shootout.",
    "Please remember to water the tomatoes while I am away on holiday.",
    "The recipe calls for two cups of flour, sugar and three eggs.",
    "Electric cars are becoming cheaper as battery prices drop.",
    "The library will be closed on Monday for maintenance work.",
    "A small boat drifted slowly across the calm lake at sunrise.",
    "Researchers discovered a new species of frog in the rainforest.",
    "The train to Berlin was delayed by almost two hours yesterday.",
    "Children learn languages faster than most adults do.",
]

LINEARS = ["attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense"]


def f32(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def q_weight(w, bits, group, sym):
    """Fake-quantized [out, in] weight."""
    o, i = w.shape
    g = i if group <= 0 else group
    wr = w.reshape(o, i // g, g)
    if sym:
        qmax = 2 ** (bits - 1) - 1
        s = f32(np.abs(wr).max(-1, keepdims=True) / qmax)
        s[s == 0] = 1.0
        q = np.clip(np.round(wr / s), -qmax - 1, qmax)
        return (q * s).reshape(o, i)
    qmax = 2 ** bits - 1
    mx, mn = wr.max(-1, keepdims=True), wr.min(-1, keepdims=True)
    s = f32(np.maximum(mx - mn, 1e-5) / qmax)
    z = np.clip(-np.round(mn / s), 0, qmax)
    q = np.clip(np.round(wr / s) + z, 0, qmax)
    return ((q - z) * s).reshape(o, i)


def q_tokens(x):
    s = f32(np.abs(x).max(-1, keepdims=True) / 127 + np.finfo(np.float32).tiny)
    return np.clip(np.round(x / s), -128, 127) * s


def bert(w, ids, mask, types, lin):
    """bert_reference.bert with every linear replaced by lin(x, prefix), then pooling."""
    eps = 1e-12
    bsz, s = ids.shape
    h, nh = 384, 12
    d = h // nh
    x = w["embeddings.word_embeddings.weight"][ids]
    x = x + w["embeddings.position_embeddings.weight"][np.arange(s)]
    x = x + w["embeddings.token_type_embeddings.weight"][types]
    x = br.layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    am = np.where(mask != 0, 0.0, float(np.finfo(np.float32).min))[:, None, None, :]
    for i in range(6):
        p = f"encoder.layer.{i}."

        def heads(t):
            return t.reshape(bsz, s, nh, d).transpose(0, 2, 1, 3)

        q = heads(lin(x, p + "attention.self.query"))
        k = heads(lin(x, p + "attention.self.key"))
        v = heads(lin(x, p + "attention.self.value"))
        sc = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + am
        sc = sc - sc.max(-1, keepdims=True)
        pr = np.exp(sc)
        pr = pr / pr.sum(-1, keepdims=True)
        o = (pr @ v).transpose(0, 2, 1, 3).reshape(bsz, s, h)
        o = lin(o, p + "attention.output.dense")
        x = br.layer_norm(o + x, w[p + "attention.output.LayerNorm.weight"],
                          w[p + "attention.output.LayerNorm.bias"], eps)
        a = lin(x, p + "intermediate.dense")
        a = 0.5 * a * (1.0 + br._erf(a / math.sqrt(2.0)))
        o = lin(a, p + "output.dense")
        x = br.layer_norm(o + x, w[p + "output.LayerNorm.weight"],
                          w[p + "output.LayerNorm.bias"], eps)
    m = mask[:, :, None].astype(np.float64)
    e = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def main():
    args = sys.argv[1:]
    opts = {"--seq": 16, "--batch": 4, "--cal": len(CAL)}
    for k in list(opts):
        if k in args:
            i = args.index(k)
            opts[k] = int(args[i + 1])
            del args[i: i + 2]
    model_dir, out = args
    seq, batch = opts["--seq"], opts["--batch"]
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.enable_truncation(max_length=seq)
    tok.enable_padding(length=seq)

    def encode(sentences):
        enc = tok.encode_batch(sentences)
        return tuple(np.array([getattr(e, a) for e in enc], dtype=np.int64)
                     for a in ("ids", "attention_mask", "type_ids"))

    ev = encode(EVAL[:batch])
    n_cal = min(opts["--cal"], len(CAL)) // batch * batch
    cal = encode(CAL[:n_cal])
    w = {k: v.astype(np.float64) for k, v in
         br.load_safetensors(f"{model_dir}/model.safetensors").items()}

    def plain(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    fp64 = bert(w, *ev, plain)

    # Calibration: max |x| per input channel of every linear, over every calibration set;
    # and the rows themselves (every token, padding included) for GPTQ's Hessians.
    amax, rows, cur_mask = {}, {}, [None]

    def record(x, p):
        m = np.abs(x).reshape(-1, x.shape[-1]).max(0)
        amax[p] = np.maximum(amax.get(p, 0), m)
        rows.setdefault(p, []).append(x.reshape(-1, x.shape[-1])[cur_mask[0].reshape(-1) != 0])
        return plain(x, p)

    for b in range(0, n_cal, batch):
        cur_mask[0] = cal[1][b: b + batch]
        bert(w, *(c[b: b + batch] for c in cal), record)
    smooth, qw = {}, {}
    for i in range(6):
        p = f"encoder.layer.{i}."
        # The linears sharing an input: q/k/v; each other linear alone.
        for grp in (LINEARS[:3], LINEARS[3:4], LINEARS[4:5], LINEARS[5:6]):
            names = [p + n for n in grp]
            wm = np.max([np.abs(w[n + ".weight"]).max(0) for n in names], 0)
            s = np.maximum(amax[names[0]] ** 0.5 / np.maximum(wm, 1e-5) ** 0.5, 1e-5)
            for n in names:
                smooth[n] = s
                qw[n] = q_weight(f32(w[n + ".weight"] * s), 8, 0, True)

    def w8a8(x, p):
        xs = f32(x * f32(1.0 / smooth[p]))
        return q_tokens(xs) @ qw[p].T + w[p + ".bias"]

    w8 = bert(w, *ev, w8a8)
    q4 = {p: q_weight(w[p + ".weight"], 4, 128, False) for p in amax}
    w4 = bert(w, *ev, lambda x, p: x @ q4[p].T + w[p + ".bias"])
    import minilm_int4_experiment as ex  # noqa: E402 (GPTQ, Hadamard matrices)
    xs = {p: np.concatenate(r) for p, r in rows.items()}
    rot = {n: ex.hadamard(n) / math.sqrt(n) for n in (384, 1536)}
    gp, gh = {}, {}
    for p, x in xs.items():
        gp[p] = ex.gptq(w[p + ".weight"], x.T @ x, act_order=True, damp=0.01)
        r = rot[x.shape[1]]
        gh[p] = ex.gptq(w[p + ".weight"] @ r, (x @ r).T @ (x @ r), act_order=True, damp=0.01)
    w4g = bert(w, *ev, lambda x, p: x @ gp[p].T + w[p + ".bias"])
    w4gh = bert(w, *ev, lambda x, p: (x @ rot[x.shape[-1]]) @ gh[p].T + w[p + ".bias"])
    np.savez(out, input_ids=ev[0], attention_mask=ev[1], token_type_ids=ev[2],
             cal_input_ids=cal[0], cal_attention_mask=cal[1], cal_token_type_ids=cal[2],
             fp64=fp64, w8a8=w8, w4=w4, w4_gptq=w4g, w4_gptq_had=w4gh)
    for name, e in (("w8a8", w8), ("w4", w4), ("w4_gptq", w4g), ("w4_gptq_had", w4gh)):
        print(name, "cosine vs fp64:", " ".join(f"{c:.6f}" for c in (e * fp64).sum(1)))


if __name__ == "__main__":
    main()
