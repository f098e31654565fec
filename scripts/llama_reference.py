#!/usr/bin/env python3
"""Tiny random Llama-family checkpoints and a numpy float64 reference of their forward pass.

    python3 scripts/llama_reference.py OUT_DIR

writes one directory per case under OUT_DIR (config.json, model.safetensors written here
byte by byte, and reference.npz):

    llama      LlamaForCausalLM, fp32, GQA (4 heads, 2 KV heads), untied lm_head
    llama3     LlamaForCausalLM with rope_scaling llama3 and tied embeddings
    linear     LlamaForCausalLM with rope_scaling linear, attention_bias and mlp_bias
    qwen2      Qwen2ForCausalLM (q/k/v biases), tied embeddings, rope_theta 1e6
    mistral    MistralForCausalLM with an explicit head_dim != hidden/heads, sliding_window
    awq        LlamaForCausalLM, AutoAWQ GEMM int4 (group 32), f16 embeddings and norms
    gptq       LlamaForCausalLM, AutoGPTQ int4, act-order (desc_act, permuted g_idx), asym
    gptq8      LlamaForCausalLM, AutoGPTQ int8, group 32, no act-order

reference.npz holds input_ids and attention_mask [B, S], the reference logits [B, S, V] and
present.N.key / present.N.value [B, Hkv, S, D] of a prefill over all S tokens, and for the
quantized cases dequant.<module> [in, out] float32: the weight as (q - z) * s in float32.

The AWQ and GPTQ packings are written here from the formats' definitions (AutoAWQ
`awq/utils/packing_utils.py` order [0, 2, 4, 6, 1, 3, 5, 7] along the output dim; AutoGPTQ
sequential packing along the input dim, zero points stored minus one), independently of
lowbit's storage-format registry.
"""
import json
import os
import sys

import numpy as np

B, S = 2, 7
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def write_safetensors(path, tensors):
    """Writes {name: np.ndarray} as a safetensors file."""
    names = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int32"): "I32"}
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        b = a.tobytes()
        header[name] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- reference forward pass

def inv_freq(cfg):
    d = cfg["head_dim"]
    theta = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    if "rope_freq_factors" in cfg:  # GGUF rope_freqs.weight: per-frequency divisors
        inv = inv / np.asarray(cfg["rope_freq_factors"], np.float64)
    rs = cfg.get("rope_scaling")
    if rs is None:
        return inv
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        return inv / rs["factor"]
    assert kind == "llama3"
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wl, high_wl = old / low, old / high
    wavelen = 2 * np.pi / inv
    out = np.where(wavelen > low_wl, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wavelen < high_wl) & ~(wavelen > low_wl)
    return np.where(medium, smoothed, out)


def rms_norm(x, g, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def forward(cfg, W, ids, mask):
    """Hugging Face's LlamaForCausalLM forward in float64; W maps module -> [out, in]."""
    nh, nkv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    b, s = ids.shape
    x = W["model.embed_tokens"][ids]
    pos = np.arange(s, dtype=np.float64)
    ang = pos[:, None] * inv_freq(cfg)[None, :]
    cos = np.cos(np.concatenate([ang, ang], -1))
    sin = np.sin(np.concatenate([ang, ang], -1))
    lowest = float(np.finfo(np.float32).min)
    pad = np.where(mask[:, None, None, :] != 0, 0.0, lowest)
    causal = np.triu(np.full((s, s), -np.inf), 1)
    presents = {}

    def lin(name, v):
        y = v @ W[name].T
        if name + ".bias" in W:
            y = y + W[name + ".bias"]
        return y

    for l in range(cfg["num_hidden_layers"]):
        m = f"model.layers.{l}"
        a = rms_norm(x, W[f"{m}.input_layernorm"], eps)
        q = lin(f"{m}.self_attn.q_proj", a).reshape(b, s, nh, d).transpose(0, 2, 1, 3)
        k = lin(f"{m}.self_attn.k_proj", a).reshape(b, s, nkv, d).transpose(0, 2, 1, 3)
        v = lin(f"{m}.self_attn.v_proj", a).reshape(b, s, nkv, d).transpose(0, 2, 1, 3)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        presents[f"present.{l}.key"] = k
        presents[f"present.{l}.value"] = v
        rep = nh // nkv
        kr, vr = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        sc = q @ kr.transpose(0, 1, 3, 2) / np.sqrt(d) + causal + pad
        sc = sc - sc.max(-1, keepdims=True)
        p = np.exp(sc)
        p /= p.sum(-1, keepdims=True)
        o = (p @ vr).transpose(0, 2, 1, 3).reshape(b, s, nh * d)
        x = x + lin(f"{m}.self_attn.o_proj", o)
        a = rms_norm(x, W[f"{m}.post_attention_layernorm"], eps)
        g = lin(f"{m}.mlp.gate_proj", a)
        u = lin(f"{m}.mlp.up_proj", a)
        x = x + lin(f"{m}.mlp.down_proj", g / (1 + np.exp(-g)) * u)
    x = rms_norm(x, W["model.norm"], eps)
    head = W["lm_head"] if "lm_head" in W else W["model.embed_tokens"]
    return x @ head.T, presents


# ---------------------------------------------------------------- quantized packings

def awq_pack(q):
    """[rows, cols] 4-bit codes -> int32 [rows, cols/8] in AutoAWQ's nibble order."""
    rows, cols = q.shape
    out = np.zeros((rows, cols // 8), dtype=np.uint32)
    for c in range(cols // 8):
        for i in range(8):
            out[:, c] |= q[:, 8 * c + AWQ_ORDER[i]].astype(np.uint32) << np.uint32(4 * i)
    return out.view(np.int32)


def gptq_pack_rows(q, bits):
    """[rows, cols] codes -> int32 [rows*bits/32, cols], row j of a word at bits*j."""
    per = 32 // bits
    rows, cols = q.shape
    out = np.zeros((rows // per, cols), dtype=np.uint32)
    for r in range(rows // per):
        for j in range(per):
            out[r] |= q[per * r + j].astype(np.uint32) << np.uint32(bits * j)
    return out.view(np.int32)


def gptq_pack_cols(z, bits):
    """[rows, cols] codes -> int32 [rows, cols*bits/32], column j of a word at bits*j."""
    return np.ascontiguousarray(gptq_pack_rows(np.ascontiguousarray(z.T), bits).view(np.uint32).T).view(np.int32)


def quantize_groups(wt, groups_of_rows, bits, rng):
    """Asymmetric min/max quantization of wt [in, out] per group of input rows.

    Returns codes [in, out], f16 scales [G, out], zeros [G, out]."""
    qmax = (1 << bits) - 1
    n_in, n_out = wt.shape
    G = len(groups_of_rows)
    scales = np.zeros((G, n_out), np.float16)
    zeros = np.zeros((G, n_out), np.int64)
    q = np.zeros((n_in, n_out), np.int64)
    for g, rows in enumerate(groups_of_rows):
        w = wt[rows]
        lo, hi = np.minimum(w.min(0), 0), np.maximum(w.max(0), 0)
        s = ((hi - lo) / qmax).astype(np.float16)
        s = np.where(s == 0, np.float16(1e-3), s)
        z = np.clip(np.round(-lo / s.astype(np.float64)), 0, qmax).astype(np.int64)
        scales[g], zeros[g] = s, z
        q[rows] = np.clip(np.round(w / s.astype(np.float64)) + z, 0, qmax)
    return q, scales, zeros


def dequant(q, scales, zeros, g_idx):
    return ((q - zeros[g_idx]).astype(np.float32) * scales[g_idx].astype(np.float32)).astype(np.float32)


# ---------------------------------------------------------------- cases

BASE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 128,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 64,
    "hidden_act": "silu",
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
}

CASES = {
    "llama": dict(arch="LlamaForCausalLM", model_type="llama"),
    "llama3": dict(
        arch="LlamaForCausalLM", model_type="llama", tie_word_embeddings=True,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
    ),
    "linear": dict(
        arch="LlamaForCausalLM", model_type="llama", attention_bias=True, mlp_bias=True,
        rope_scaling={"type": "linear", "factor": 2.0},
    ),
    "qwen2": dict(
        arch="Qwen2ForCausalLM", model_type="qwen2", tie_word_embeddings=True,
        rope_theta=1000000.0, use_sliding_window=False, sliding_window=32,
    ),
    "mistral": dict(
        arch="MistralForCausalLM", model_type="mistral", head_dim=32, sliding_window=16,
        num_key_value_heads=1,
    ),
    "awq": dict(arch="LlamaForCausalLM", model_type="llama", quant="awq"),
    "gptq": dict(arch="LlamaForCausalLM", model_type="llama", quant="gptq"),
    "gptq8": dict(arch="LlamaForCausalLM", model_type="llama", quant="gptq8"),
}


def make_case(name, spec, out_dir, seed):
    rng = np.random.default_rng(seed)
    spec = dict(spec)
    arch, model_type = spec.pop("arch"), spec.pop("model_type")
    quant = spec.pop("quant", None)
    cfg = dict(BASE, architectures=[arch], model_type=model_type, **spec)
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or h // nh
    float_dtype = np.float16 if quant else np.float32
    tensors, W, deq = {}, {}, {}

    def put(module, shape, scale, suffix=".weight"):
        a = (rng.standard_normal(shape) * scale).astype(float_dtype)
        tensors[module + suffix] = a
        W[module + (suffix if suffix != ".weight" else "")] = a.astype(np.float64)

    put("model.embed_tokens", (v, h), 1.0)
    for l in range(cfg["num_hidden_layers"]):
        m = f"model.layers.{l}"
        put(f"{m}.input_layernorm", (h,), 0.1)
        W[f"{m}.input_layernorm"] += 1.0
        tensors[f"{m}.input_layernorm.weight"] = W[f"{m}.input_layernorm"].astype(float_dtype)
        W[f"{m}.input_layernorm"] = tensors[f"{m}.input_layernorm.weight"].astype(np.float64)
        put(f"{m}.post_attention_layernorm", (h,), 0.1)
        W[f"{m}.post_attention_layernorm"] += 1.0
        tensors[f"{m}.post_attention_layernorm.weight"] = W[f"{m}.post_attention_layernorm"].astype(float_dtype)
        W[f"{m}.post_attention_layernorm"] = tensors[f"{m}.post_attention_layernorm.weight"].astype(np.float64)
        lins = [
            ("self_attn.q_proj", nh * d, h, model_type == "qwen2" or cfg.get("attention_bias")),
            ("self_attn.k_proj", nkv * d, h, model_type == "qwen2" or cfg.get("attention_bias")),
            ("self_attn.v_proj", nkv * d, h, model_type == "qwen2" or cfg.get("attention_bias")),
            ("self_attn.o_proj", h, nh * d, cfg.get("attention_bias")),
            ("mlp.gate_proj", inter, h, cfg.get("mlp_bias")),
            ("mlp.up_proj", inter, h, cfg.get("mlp_bias")),
            ("mlp.down_proj", h, inter, cfg.get("mlp_bias")),
        ]
        for lin, n_out, n_in, bias in lins:
            mod = f"{m}.{lin}"
            w = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
            if bias:
                put(mod, (n_out,), 0.1, ".bias")
            if quant is None:
                tensors[mod + ".weight"] = w.astype(np.float32)
                W[mod] = w.astype(np.float32).astype(np.float64)
                continue
            wt = w.T  # [in, out]
            group = 32
            if quant == "awq":
                rows = [np.arange(g, g + group) for g in range(0, n_in, group)]
                q, s, z = quantize_groups(wt, rows, 4, rng)
                g_idx = np.arange(n_in) // group
                tensors[mod + ".qweight"] = awq_pack(q)
                tensors[mod + ".qzeros"] = awq_pack(z)
            else:
                bits = 8 if quant == "gptq8" else 4
                if quant == "gptq":  # act-order: groups follow a permutation of the inputs
                    perm = rng.permutation(n_in)
                else:
                    perm = np.arange(n_in)
                g_idx = np.zeros(n_in, np.int64)
                g_idx[perm] = np.arange(n_in) // group
                rows = [perm[g:g + group] for g in range(0, n_in, group)]
                q, s, z = quantize_groups(wt, rows, bits, rng)
                tensors[mod + ".qweight"] = gptq_pack_rows(q, bits)
                tensors[mod + ".qzeros"] = gptq_pack_cols((z - 1) & ((1 << bits) - 1), bits)
                tensors[mod + ".g_idx"] = g_idx.astype(np.int32)
            tensors[mod + ".scales"] = s
            dq = dequant(q, s, z, g_idx)
            deq["dequant." + mod] = dq
            W[mod] = dq.T.astype(np.float64)
    put("model.norm", (h,), 0.1)
    W["model.norm"] += 1.0
    tensors["model.norm.weight"] = W["model.norm"].astype(float_dtype)
    W["model.norm"] = tensors["model.norm.weight"].astype(np.float64)
    if not cfg["tie_word_embeddings"]:
        put("lm_head", (v, h), 1.0 / np.sqrt(h))
    if quant == "awq":
        cfg["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 32,
                                      "zero_point": True, "version": "gemm"}
    elif quant:
        cfg["quantization_config"] = {"quant_method": "gptq", "bits": 8 if quant == "gptq8" else 4,
                                      "group_size": 32, "desc_act": quant == "gptq",
                                      "sym": False, "checkpoint_format": "gptq"}
    cfg["head_dim"] = d
    case_dir = os.path.join(out_dir, name)
    os.makedirs(case_dir, exist_ok=True)
    with open(os.path.join(case_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    write_safetensors(os.path.join(case_dir, "model.safetensors"), tensors)
    ids = rng.integers(0, v, size=(B, S))
    mask = np.ones((B, S), np.int64)
    logits, presents = forward(cfg, W, ids, mask)
    out = {"input_ids": ids.astype(np.int64), "attention_mask": mask, "logits": logits}
    out.update(presents)
    out.update(deq)
    np.savez(os.path.join(case_dir, "reference.npz"), **out)


def main():
    out_dir = sys.argv[1]
    for i, (name, spec) in enumerate(CASES.items()):
        make_case(name, spec, out_dir, seed=100 + i)


if __name__ == "__main__":
    main()
