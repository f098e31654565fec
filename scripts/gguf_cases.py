#!/usr/bin/env python3
"""Tiny random llama GGUF files written with the `gguf` package, and a numpy reference.

    python3 scripts/gguf_cases.py OUT_DIR

For each of Q4_0, Q4_1, Q8_0, Q4_K, Q6_K writes OUT_DIR/llama_<type>.gguf (hidden 256, 2
layers, 4 heads, 2 KV heads, vocab 64; every matrix in that type, norms in F32; the Q8_0
file has no output.weight, so the embedding is tied; the Q6_K file has a rope_freqs.weight
of per-frequency divisors, as llama3 conversions write) and OUT_DIR/llama_<type>.npz with

    input_ids [B, S], logits [B, S, V], present.N.key/value [B, Hkv, S, D]
        a float64 forward pass (scripts/llama_reference.py) over the dequantized weights;
    gguf.<tensor> [rows, cols] float32
        gguf.quants.dequantize of every quantized tensor, as stored;
    hf.<module> [rows, cols] float32
        the same in Hugging Face layout: attn_q / attn_k rows un-permuted.

Q4_0, Q4_1 and Q8_0 weights are quantized from random floats by gguf.quants.quantize;
gguf-py cannot quantize K-quants, so Q4_K and Q6_K blocks are random bytes with small f16
super-block scales. The attn_q / attn_k permutation is convert_hf_to_gguf.py's `permute`;
the script checks that llama.cpp's interleaved RoPE on the permuted projections gives the
same attention scores as rotate-half RoPE on the un-permuted ones.

Also writes the metadata fixture OUT_DIR/metadata.gguf: one key of every value type, nested
arrays, and one F16 tensor.
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402

B, S = 2, 6
CFG = {
    "hidden_size": 256, "intermediate_size": 256, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
    "vocab_size": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "max_position_embeddings": 64,
}


def permute(w, n_head, n_head_kv=None):
    """convert_hf_to_gguf.py LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute(w, n_head):
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def random_kquant(rng, rows, cols, qtype):
    bsz, tsz = gguf.GGML_QUANT_SIZES[qtype]
    nb = cols // bsz
    blocks = rng.integers(0, 256, size=(rows, nb, tsz), dtype=np.uint8)
    if qtype == T.Q4_K:
        d = (rng.uniform(0.5, 1.0, (rows, nb)) * 2e-3).astype(np.float16)
        dmin = (rng.uniform(0.5, 1.0, (rows, nb)) * 1e-3).astype(np.float16)
        blocks[:, :, 0:2] = d.view(np.uint8).reshape(rows, nb, 2)
        blocks[:, :, 2:4] = dmin.view(np.uint8).reshape(rows, nb, 2)
    else:  # Q6_K: d is the last two bytes
        d = (rng.uniform(0.5, 1.0, (rows, nb)) * 1e-4).astype(np.float16)
        blocks[:, :, tsz - 2:tsz] = d.view(np.uint8).reshape(rows, nb, 2)
    return blocks.reshape(rows, nb * tsz)


def quantized(rng, rows, cols, qtype, scale):
    if qtype in (T.Q4_K, T.Q6_K):
        return random_kquant(rng, rows, cols, qtype)
    w = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
    return gguf.quants.quantize(w, qtype)


def rope_interleaved(x, inv):
    """llama.cpp's normal RoPE: pairs (2i, 2i+1) rotate by position * inv[i]."""
    s = x.shape[-2]
    ang = np.arange(s)[:, None] * inv[None, :]
    c, sn = np.cos(ang), np.sin(ang)
    out = x.copy()
    out[..., 0::2] = x[..., 0::2] * c - x[..., 1::2] * sn
    out[..., 1::2] = x[..., 1::2] * c + x[..., 0::2] * sn
    return out


def check_permutation(rng, W_gguf_q, W_gguf_k, nh, nkv, d):
    """Interleaved RoPE on the GGUF layout == rotate-half on the un-permuted layout."""
    x = rng.standard_normal((S, W_gguf_q.shape[1]))
    inv = ref.inv_freq(CFG)
    ang = np.arange(S)[:, None] * inv[None, :]
    cos = np.cos(np.concatenate([ang, ang], -1))
    sin = np.sin(np.concatenate([ang, ang], -1))

    def heads(y, n):
        return y.reshape(S, n, d).transpose(1, 0, 2)
    qg = rope_interleaved(heads(x @ W_gguf_q.T, nh), inv)
    kg = rope_interleaved(heads(x @ W_gguf_k.T, nkv), inv)
    qh = heads(x @ unpermute(W_gguf_q, nh).T, nh)
    kh = heads(x @ unpermute(W_gguf_k, nkv).T, nkv)
    qh = qh * cos + ref.rotate_half(qh) * sin
    kh = kh * cos + ref.rotate_half(kh) * sin
    rep = nh // nkv
    sg = qg @ np.repeat(kg, rep, 0).transpose(0, 2, 1)
    sh = qh @ np.repeat(kh, rep, 0).transpose(0, 2, 1)
    err = np.abs(sg - sh).max() / np.abs(sh).max()
    assert err < 1e-12, f"un-permutation does not match llama.cpp's RoPE: {err}"


def make(out_dir, qtype, seed):
    rng = np.random.default_rng(seed)
    h, inter, v = CFG["hidden_size"], CFG["intermediate_size"], CFG["vocab_size"]
    nh, nkv, d = CFG["num_attention_heads"], CFG["num_key_value_heads"], CFG["head_dim"]
    tied = qtype == T.Q8_0
    path = os.path.join(out_dir, f"llama_{qtype.name.lower()}.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(CFG["max_position_embeddings"])
    w.add_embedding_length(h)
    w.add_block_count(CFG["num_hidden_layers"])
    w.add_feed_forward_length(inter)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_layer_norm_rms_eps(CFG["rms_norm_eps"])
    w.add_rope_freq_base(CFG["rope_theta"])
    w.add_rope_dimension_count(d)
    w.add_vocab_size(v)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"<t{i}>" for i in range(v)])
    w.add_token_scores([float(-i) for i in range(v)])
    w.add_token_types([1] * v)
    out, W = {}, {}
    cfg = dict(CFG)
    if qtype == T.Q6_K:
        factors = rng.uniform(1.0, 4.0, d // 2).astype(np.float32)
        w.add_tensor("rope_freqs.weight", factors)
        cfg["rope_freq_factors"] = factors.astype(np.float64)

    def matrix(gname, hfname, rows, cols, scale, perm_heads=None):
        q = quantized(rng, rows, cols, qtype, scale)
        w.add_tensor(gname, q, raw_dtype=qtype)
        dq = gguf.quants.dequantize(q, qtype).astype(np.float32)
        assert dq.shape == (rows, cols)
        out["gguf." + gname] = dq
        hf = unpermute(dq, perm_heads) if perm_heads else dq
        out["hf." + hfname] = np.ascontiguousarray(hf)
        W[hfname] = hf.astype(np.float64)
        return dq

    def norm(gname, hfname):
        g = (1.0 + 0.1 * rng.standard_normal(h)).astype(np.float32)
        w.add_tensor(gname, g)
        W[hfname] = g.astype(np.float64)

    matrix("token_embd.weight", "model.embed_tokens", v, h, 1.0)
    for l in range(CFG["num_hidden_layers"]):
        m, b = f"model.layers.{l}", f"blk.{l}"
        norm(f"{b}.attn_norm.weight", f"{m}.input_layernorm")
        qg = matrix(f"{b}.attn_q.weight", f"{m}.self_attn.q_proj", nh * d, h, h ** -0.5, nh)
        kg = matrix(f"{b}.attn_k.weight", f"{m}.self_attn.k_proj", nkv * d, h, h ** -0.5, nkv)
        check_permutation(rng, qg.astype(np.float64), kg.astype(np.float64), nh, nkv, d)
        matrix(f"{b}.attn_v.weight", f"{m}.self_attn.v_proj", nkv * d, h, h ** -0.5)
        matrix(f"{b}.attn_output.weight", f"{m}.self_attn.o_proj", h, nh * d, h ** -0.5)
        norm(f"{b}.ffn_norm.weight", f"{m}.post_attention_layernorm")
        matrix(f"{b}.ffn_gate.weight", f"{m}.mlp.gate_proj", inter, h, h ** -0.5)
        matrix(f"{b}.ffn_up.weight", f"{m}.mlp.up_proj", inter, h, h ** -0.5)
        matrix(f"{b}.ffn_down.weight", f"{m}.mlp.down_proj", h, inter, inter ** -0.5)
    norm("output_norm.weight", "model.norm")
    if not tied:
        matrix("output.weight", "lm_head", v, h, h ** -0.5)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # A sanity check of the permutation helper against convert's own direction.
    x = rng.standard_normal((nh * d, 3))
    assert np.array_equal(unpermute(permute(x, nh), nh), x)
    ids = rng.integers(0, v, size=(B, S))
    logits, presents = ref.forward(cfg, W, ids, np.ones((B, S), np.int64))
    out.update(presents)
    out["input_ids"] = ids.astype(np.int64)
    out["logits"] = logits
    np.savez(os.path.join(out_dir, f"llama_{qtype.name.lower()}.npz"), **out)


def metadata_fixture(out_dir):
    w = gguf.GGUFWriter(os.path.join(out_dir, "metadata.gguf"), "test")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.5)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo")
    w.add_uint64("t.u64", 2 ** 63)
    w.add_int64("t.i64", -(2 ** 62))
    w.add_float64("t.f64", -0.25)
    w.add_array("t.arr", [1, 2, 3])
    w.add_array("t.nested", [["a", "b"], ["c"]])
    w.add_tensor("x", np.arange(64, dtype=np.float16).reshape(2, 32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for i, qtype in enumerate([T.Q4_0, T.Q4_1, T.Q8_0, T.Q4_K, T.Q6_K]):
        make(out_dir, qtype, 200 + i)
    metadata_fixture(out_dir)


if __name__ == "__main__":
    main()
