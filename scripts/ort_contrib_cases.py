#!/usr/bin/env python3
"""ONNX Runtime reference cases for the com.microsoft (contrib) ops the importer maps
(compiler/src/onnx/msft.rs), checked by tests/tests/onnx_contrib.rs.

    python3 scripts/ort_contrib_cases.py OUT_DIR

For each case, one tiny model built with onnx.helper (one node, seeded random inputs):
  OUT_DIR/<case>/model.onnx, inputs.npz (keyed by graph input name) and outputs.npz
  (ONNX Runtime's CPU outputs, keyed by graph output name).
Also writes the external-data models the refusal tests use:
  OUT_DIR/external_abs/model.onnx  location is an absolute path (to an existing file)
  OUT_DIR/external_ok/model.onnx   location 'w.bin' with offset 8 (allowed), and w.bin
  OUT_DIR/refuse_<what>/model.onnx one-node models with attribute values the importer refuses
Prints one line per case. Exits with status 3 and a message naming scripts/setup.sh when a
package is missing.
"""

import os
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
except ImportError as e:  # pragma: no cover
    print(f"missing Python package ({e}); run scripts/setup.sh", file=sys.stderr)
    sys.exit(3)

F = TensorProto.FLOAT
NP_TO_ONNX = {
    np.dtype("float32"): TensorProto.FLOAT,
    np.dtype("int64"): TensorProto.INT64,
    np.dtype("int32"): TensorProto.INT32,
    np.dtype("int8"): TensorProto.INT8,
    np.dtype("uint8"): TensorProto.UINT8,
}


# An output spelled "name:int32" (or :int8, :uint8) has that type; the others are float.
OUT_TYPES = {"int32": TensorProto.INT32, "int8": TensorProto.INT8, "uint8": TensorProto.UINT8}


def case(out, name, op, inputs, outputs, consts=None, domain="com.microsoft", opset=17, **attrs):
    """One node `op` on run-time `inputs` (name -> array; None for an omitted optional
    input) and initializers `consts`; `outputs` lists output names ('' for unnamed)."""
    consts = consts or {}
    rng_inputs = {k: v for k, v in inputs.items() if v is not None}
    order = list(inputs.keys())
    node_inputs = []
    for k in order:
        node_inputs.append("" if inputs[k] is None and k not in consts else k)
    # Initializers may sit anywhere in the input order: `inputs` holds None for them.
    node = helper.make_node(
        op, node_inputs, [o.split(":")[0] for o in outputs], name=f"{name}_node", domain=domain, **attrs
    )
    vis = [
        helper.make_tensor_value_info(k, NP_TO_ONNX[v.dtype], list(v.shape))
        for k, v in rng_inputs.items()
    ]
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in consts.items()]
    outs = [
        helper.make_tensor_value_info(o.split(":")[0], OUT_TYPES[o.split(":")[1]] if ":" in o else F, None)
        for o in outputs
        if o
    ]
    outputs = [o.split(":")[0] for o in outputs]
    g = helper.make_graph([node], name, vis, outs, initializer=inits)
    imports = [helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    m = helper.make_model(g, opset_imports=imports)
    m.ir_version = 8
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o for o in outputs if o]
    res = sess.run(names, rng_inputs)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    np.savez(os.path.join(d, "inputs.npz"), **rng_inputs)
    np.savez(os.path.join(d, "outputs.npz"), **dict(zip(names, res)))
    print(name, " ".join(f"{k}{list(v.shape)}" for k, v in zip(names, res)))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(11)

    def r(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    B, S, H = 2, 4, 8
    x, skip = r(B, S, H), r(B, S, H)
    gamma, beta, bias = r(H), r(H), r(H)
    # Norms.
    case(out, "skip_layer_norm", "SkipLayerNormalization",
         {"x": x, "skip": skip, "gamma": gamma, "beta": beta, "bias": bias},
         ["y", "", "", "sum"], epsilon=1e-5)
    case(out, "skip_layer_norm_broadcast_skip", "SkipLayerNormalization",
         {"x": x, "skip": r(1, S, H), "gamma": gamma}, ["y"])
    case(out, "skip_simplified_layer_norm", "SkipSimplifiedLayerNormalization",
         {"x": x, "skip": skip, "gamma": gamma, "bias": bias}, ["y", "", "", "sum"], epsilon=1e-6)
    case(out, "simplified_layer_norm", "SimplifiedLayerNormalization",
         {"x": x, "scale": gamma}, ["y"], domain="", epsilon=1e-6)
    case(out, "simplified_layer_norm_axis1", "SimplifiedLayerNormalization",
         {"x": x, "scale": r(S, H)}, ["y"], domain="", axis=1)
    # Activations.
    a = r(B, S, H, scale=2.0)
    case(out, "gelu", "Gelu", {"x": a}, ["y"])
    case(out, "bias_gelu", "BiasGelu", {"x": a, "b": bias}, ["y"])
    case(out, "fast_gelu", "FastGelu", {"x": a, "b": bias}, ["y"])
    case(out, "fast_gelu_no_bias", "FastGelu", {"x": a}, ["y"])
    case(out, "quick_gelu", "QuickGelu", {"x": a}, ["y"])
    case(out, "quick_gelu_alpha", "QuickGelu", {"x": a}, ["y"], alpha=1.25)

    # RotaryEmbedding: hidden 16 = 2 heads of 8.
    hid, heads, hd, max_pos = 16, 2, 8, 32
    theta = rng.uniform(0, 6.3, size=(max_pos, hd // 2)).astype(np.float32)
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    pos = rng.integers(0, max_pos, size=(B, S), dtype=np.int64)
    xr = r(B, S, hid)
    case(out, "rotary_3d", "RotaryEmbedding",
         {"x": xr, "pos": pos, "cos": cos, "sin": sin}, ["y"])
    case(out, "rotary_3d_interleaved", "RotaryEmbedding",
         {"x": xr, "pos": pos, "cos": cos, "sin": sin}, ["y"], interleaved=1)
    case(out, "rotary_4d", "RotaryEmbedding",
         {"x": r(B, heads, S, hd), "pos": pos, "cos": cos, "sin": sin}, ["y"])
    case(out, "rotary_offset", "RotaryEmbedding",
         {"x": xr, "pos": np.array([5], dtype=np.int64), "cos": cos, "sin": sin}, ["y"])
    theta2 = theta[:, :2]
    case(out, "rotary_partial", "RotaryEmbedding",
         {"x": xr, "pos": pos, "cos": np.cos(theta2).astype(np.float32),
          "sin": np.sin(theta2).astype(np.float32)},
         ["y"], num_heads=heads, rotary_embedding_dim=4)

    # EmbedLayerNormalization.
    vocab, seg_n = 30, 2
    ids = rng.integers(0, vocab, size=(B, 5), dtype=np.int32)
    seg = rng.integers(0, seg_n, size=(B, 5), dtype=np.int32)
    mask = np.ones((B, 5), dtype=np.int32)
    mask[1, 3:] = 0
    emb = {"word": r(vocab, H), "posemb": r(16, H), "segemb": r(seg_n, H),
           "g": gamma, "b": beta}
    case(out, "embed_layer_norm", "EmbedLayerNormalization",
         {"ids": ids, "seg": seg, "word": None, "posemb": None, "segemb": None,
          "g": None, "b": None, "mask": mask},
         ["y", "mask_index:int32", "emb_sum"], consts=emb, epsilon=1e-5)
    emb2 = {k: v for k, v in emb.items() if k != "segemb"}
    case(out, "embed_layer_norm_no_segment", "EmbedLayerNormalization",
         {"ids": ids, "seg": None, "word": None, "posemb": None, "segemb": None,
          "g": None, "b": None},
         ["y", "mask_index:int32"], consts=emb2)

    # Attention: input 16 -> 2 heads of 8.
    xa = r(B, S, hid)
    w, bw = r(hid, 3 * hid, scale=0.3), r(3 * hid, scale=0.1)
    raw = np.ones((B, S), dtype=np.int32)
    raw[1, 2:] = 0
    case(out, "attention", "Attention", {"x": xa, "w": w, "bias": bw}, ["y"], num_heads=heads)
    case(out, "attention_raw_mask", "Attention",
         {"x": xa, "w": w, "bias": bw, "mask": raw}, ["y"], num_heads=heads)
    case(out, "attention_end_mask", "Attention",
         {"x": xa, "w": w, "bias": bw, "mask": np.array([4, 3], dtype=np.int32)}, ["y"],
         num_heads=heads)
    case(out, "attention_unidirectional", "Attention",
         {"x": xa, "w": w, "bias": bw}, ["y"], num_heads=heads, unidirectional=1)
    P = 3
    past = r(2, B, heads, P, hd)
    case(out, "attention_past", "Attention",
         {"x": xa, "w": w, "bias": bw, "mask": None, "past": past}, ["y", "present"],
         num_heads=heads, unidirectional=1)
    case(out, "attention_bias_scale", "Attention",
         {"x": xa, "w": w, "bias": bw, "mask": None, "past": None, "ab": r(1, heads, S, S)},
         ["y"], num_heads=heads, scale=0.2)
    wv = r(hid, 2 * hid + 8, scale=0.3)
    case(out, "attention_qkv_sizes", "Attention",
         {"x": xa, "w": wv, "bias": r(2 * hid + 8, scale=0.1)}, ["y"], num_heads=heads,
         qkv_hidden_sizes=[hid, hid, 8])

    # QAttention: uint8 input, int8 weights (per tensor and per column).
    xq = rng.integers(0, 255, size=(B, S, hid), dtype=np.uint8)
    # 7-bit weights: ONNX Runtime's u8s8 kernels without VNNI add pairs of u8·s8 products
    # in saturating int16 (what quantize_dynamic's reduce_range avoids), 255·63·2 < 2^15.
    wq = rng.integers(-63, 64, size=(hid, 3 * hid), dtype=np.int8)
    qc = {"wq": wq, "bq": bw, "xs": np.array(0.02, np.float32), "ws": np.array(0.01, np.float32),
          "xz": np.array(128, np.uint8)}
    case(out, "qattention", "QAttention",
         {"xq": xq, "wq": None, "bq": None, "xs": None, "ws": None, "mask": None, "xz": None},
         ["y"], consts=qc, num_heads=heads)
    qc2 = dict(qc, ws=rng.uniform(0.005, 0.02, size=(3 * hid,)).astype(np.float32))
    case(out, "qattention_per_column_mask", "QAttention",
         {"xq": xq, "wq": None, "bq": None, "xs": None, "ws": None,
          "mask": np.array([4, 2], dtype=np.int32), "xz": None},
         ["y"], consts=qc2, num_heads=heads)

    # MultiHeadAttention.
    L = 6
    q3, k3, v3 = r(B, S, hid), r(B, L, hid), r(B, L, hid)
    case(out, "mha", "MultiHeadAttention", {"q": q3, "k": k3, "v": v3}, ["y"], num_heads=heads)
    kpm = np.ones((B, L), dtype=np.int32)
    kpm[0, 4:] = 0
    case(out, "mha_bias_mask", "MultiHeadAttention",
         {"q": q3, "k": k3, "v": v3, "bias": r(3 * hid), "kpm": kpm}, ["y"], num_heads=heads)
    qs, ks, vs = r(B, S, hid), r(B, S, hid), r(B, S, hid)
    case(out, "mha_past_causal", "MultiHeadAttention",
         {"q": qs, "k": ks, "v": vs, "bias": None, "kpm": None, "ab": None,
          "pk": r(B, heads, P, hd), "pv": r(B, heads, P, hd)},
         ["y", "present_k", "present_v"], num_heads=heads, unidirectional=1)
    case(out, "mha_attention_bias", "MultiHeadAttention",
         {"q": q3, "k": k3, "v": v3, "bias": None, "kpm": None, "ab": r(B, 1, S, L)},
         ["y"], num_heads=heads, scale=0.3)
    case(out, "mha_bnsh_kv", "MultiHeadAttention",
         {"q": q3, "k": r(B, heads, L, hd), "v": r(B, heads, L, hd)}, ["y"], num_heads=heads)

    # GroupQueryAttention: 4 query heads, 2 KV heads of 8.
    gh, gkv = 4, 2
    qg, kg, vg = r(B, S, gh * hd), r(B, S, gkv * hd), r(B, S, gkv * hd)
    sl = np.full((B,), S - 1, dtype=np.int32)
    tot = np.array(S, dtype=np.int32)
    case(out, "gqa_prompt", "GroupQueryAttention",
         {"q": qg, "k": kg, "v": vg, "pk": None, "pv": None, "seqlens_k": sl, "total": tot},
         ["y", "present_k", "present_v"], num_heads=gh, kv_num_heads=gkv)
    sl_pad = np.array([S - 1, S - 2], dtype=np.int32)
    case(out, "gqa_prompt_padded_keys", "GroupQueryAttention",
         {"q": qg, "k": kg, "v": vg, "pk": None, "pv": None, "seqlens_k": sl_pad, "total": tot},
         ["y"], num_heads=gh, kv_num_heads=gkv)
    Pg = 5
    pc = {"seqlens_k": np.full((B,), Pg + 1 - 1, dtype=np.int32),
          "total": np.array(Pg + 1, dtype=np.int32)}
    case(out, "gqa_decode_past", "GroupQueryAttention",
         {"q": r(B, 1, gh * hd), "k": r(B, 1, gkv * hd), "v": r(B, 1, gkv * hd),
          "pk": r(B, gkv, Pg, hd), "pv": r(B, gkv, Pg, hd), "seqlens_k": None, "total": None},
         ["y", "present_k", "present_v"], consts=pc, num_heads=gh, kv_num_heads=gkv)
    # Rotary inside GQA needs a head size that is a multiple of 16.
    hr = 16
    th = rng.uniform(0, 6.3, size=(max_pos, hr // 2)).astype(np.float32)
    gcos, gsin = np.cos(th).astype(np.float32), np.sin(th).astype(np.float32)
    qr, kr, vr = r(B, S, gh * hr), r(B, S, gkv * hr), r(B, S, gkv * hr)
    # A multi-token step with a past needs batch 1.
    pc2 = {"seqlens_k": np.full((1,), Pg + S - 1, dtype=np.int32),
           "total": np.array(Pg + S, dtype=np.int32), "cos": gcos, "sin": gsin}
    case(out, "gqa_rotary_past", "GroupQueryAttention",
         {"q": qr[:1], "k": kr[:1], "v": vr[:1], "pk": r(1, gkv, Pg, hr), "pv": r(1, gkv, Pg, hr),
          "seqlens_k": None, "total": None, "cos": None, "sin": None},
         ["y", "present_k", "present_v"], consts=pc2, num_heads=gh, kv_num_heads=gkv,
         do_rotary=1)
    pc3 = {"cos": gcos, "sin": gsin}
    case(out, "gqa_packed_rotary_interleaved", "GroupQueryAttention",
         {"q": np.concatenate([qr, kr, vr], axis=2), "k": None, "v": None, "pk": None,
          "pv": None, "seqlens_k": sl, "total": tot, "cos": None, "sin": None},
         ["y"], consts=pc3, num_heads=gh, kv_num_heads=gkv, do_rotary=1,
         rotary_interleaved=1, scale=0.25)
    # Score modifiers: softcap (decomposed attention), local window (a mask), head sinks
    # and smooth softmax (one more softmax column), with GQA 4:2 and a causal prompt; one
    # decode step with a past and both softcap and window; attention_bias with softcap
    # (the cap comes first). Scores are scaled up so the cap and the sinks matter.
    qs, ks, vs = 3 * r(B, S, gh * hd), 3 * r(B, S, gkv * hd), r(B, S, gkv * hd)
    base = {"q": qs, "k": ks, "v": vs, "pk": None, "pv": None, "seqlens_k": sl, "total": tot}
    case(out, "gqa_softcap", "GroupQueryAttention", base, ["y"],
         num_heads=gh, kv_num_heads=gkv, softcap=1.5)
    case(out, "gqa_local_window", "GroupQueryAttention", base, ["y", "present_k", "present_v"],
         num_heads=gh, kv_num_heads=gkv, local_window_size=2)
    sink = rng.uniform(-1.0, 3.0, size=(gh,)).astype(np.float32)
    case(out, "gqa_head_sink", "GroupQueryAttention",
         {**base, "cos": None, "sin": None, "pos": None, "bias": None, "sink": None}, ["y"],
         consts={"sink": sink}, num_heads=gh, kv_num_heads=gkv)
    case(out, "gqa_smooth_softmax", "GroupQueryAttention", base, ["y"],
         num_heads=gh, kv_num_heads=gkv, smooth_softmax=1)
    bias = 2 * r(1, 1, S, S)
    case(out, "gqa_softcap_bias_window", "GroupQueryAttention",
         {**base, "cos": None, "sin": None, "pos": None, "bias": bias}, ["y"],
         num_heads=gh, kv_num_heads=gkv, softcap=2.0, local_window_size=3)
    case(out, "gqa_decode_softcap_window", "GroupQueryAttention",
         {"q": 3 * r(B, 1, gh * hd), "k": 3 * r(B, 1, gkv * hd), "v": r(B, 1, gkv * hd),
          "pk": 3 * r(B, gkv, Pg, hd), "pv": r(B, gkv, Pg, hd), "seqlens_k": None, "total": None},
         ["y", "present_k", "present_v"], consts=pc, num_heads=gh, kv_num_heads=gkv,
         softcap=1.5, local_window_size=3, smooth_softmax=1)
    # Quantized KV cache (int8 per-tensor and per-channel, int4 per-tensor and per-channel in
    # bytes of two codes): a decode step of 1 token and a prompt continuation of S tokens
    # after a past of Pg codes; the present caches are codes, compared exactly.
    kq_scale = np.array([0.05], np.float32)
    vq_scale = np.array([0.02], np.float32)
    kc_scale = rng.uniform(0.02, 0.06, size=(gkv, 1, hd)).astype(np.float32)
    vc_scale = rng.uniform(0.01, 0.03, size=(gkv, 1, hd)).astype(np.float32)
    for bits, kind, ks, vs in ((8, "PER_TENSOR", kq_scale, vq_scale),
                               (8, "PER_CHANNEL", kc_scale, vc_scale),
                               (4, "PER_TENSOR", 6 * kq_scale, 6 * vq_scale),
                               (4, "PER_CHANNEL", 6 * kc_scale, 6 * vc_scale)):
        if bits == 8:
            pk = rng.integers(-127, 128, size=(1, gkv, Pg, hd)).astype(np.int8)
            pv = rng.integers(-127, 128, size=(1, gkv, Pg, hd)).astype(np.int8)
            t = "int8"
        else:
            pk = rng.integers(0, 256, size=(1, gkv, Pg, hd // 2)).astype(np.uint8)
            pv = rng.integers(0, 256, size=(1, gkv, Pg, hd // 2)).astype(np.uint8)
            t = "uint8"
        for steps in (1, S):
            consts = {"seqlens_k": np.full((1,), Pg + steps - 1, dtype=np.int32),
                      "total": np.array(Pg + steps, dtype=np.int32), "ks": ks, "vs": vs}
            case(out, f"gqa_kv{bits}_{kind.lower()}_{steps}", "GroupQueryAttention",
                 {"q": r(1, steps, gh * hd), "k": 2 * r(1, steps, gkv * hd),
                  "v": r(1, steps, gkv * hd), "pk": pk, "pv": pv, "seqlens_k": None,
                  "total": None, "cos": None, "sin": None, "pos": None, "bias": None,
                  "sink": None, "ks": None, "vs": None},
                 ["y", f"present_k:{t}", f"present_v:{t}"], consts=consts, num_heads=gh,
                 kv_num_heads=gkv, k_quant_type=kind, v_quant_type=kind, kv_cache_bit_width=bits)

    external(out)
    refusals(out)


def refusals(out):
    """One-node models with attribute values the importer refuses (no reference outputs):
    OUT_DIR/refuse_<what>/model.onnx."""
    x = helper.make_tensor_value_info("x", F, [1, 4, 16])
    y = helper.make_tensor_value_info("y", F, None)
    w = onnx.numpy_helper.from_array(np.zeros((16, 48), np.float32), "w")
    kv = helper.make_tensor_value_info("kv", F, [1, 4, 16])
    forms = {
        "attention_do_rotary": (
            helper.make_node("Attention", ["x", "w"], ["y"], name="att", domain="com.microsoft",
                             num_heads=2, do_rotary=1), [x], [w]),
        "gqa_quantized_kv": (
            helper.make_node("GroupQueryAttention", ["x", "kv", "kv", "", "", "sl", "tot"], ["y"],
                             name="gqa", domain="com.microsoft", num_heads=2, kv_num_heads=2,
                             k_quant_type="PER_CHANNEL", kv_cache_bit_width=8),
            [x, kv], [onnx.numpy_helper.from_array(np.array([3], np.int32), "sl"),
                      onnx.numpy_helper.from_array(np.array(4, np.int32), "tot")]),
        "mha_packed_qkv": (
            helper.make_node("MultiHeadAttention", ["x"], ["y"], name="mha",
                             domain="com.microsoft", num_heads=2), [x], []),
    }
    for what, (node, inputs, inits) in forms.items():
        d = os.path.join(out, f"refuse_{what}")
        os.makedirs(d, exist_ok=True)
        g = helper.make_graph([node], what, inputs, [y], initializer=inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid("com.microsoft", 1)])
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(m.SerializeToString())


def external(out):
    """External-data models for the refusal tests."""
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = helper.make_tensor_value_info("x", F, [2, 3])
    y = helper.make_tensor_value_info("y", F, [2, 3])
    for sub in ("external_abs", "external_ok"):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        data = os.path.join(d, "w.bin")
        with open(data, "wb") as f:
            f.write(b"\0" * 8 + w.tobytes())
        t = TensorProto()
        t.name = "w"
        t.data_type = F
        t.dims.extend([2, 3])
        t.data_location = TensorProto.EXTERNAL
        location = os.path.abspath(data) if sub == "external_abs" else "w.bin"
        for k, v in (("location", location), ("offset", "8"), ("length", "24")):
            e = t.external_data.add()
            e.key, e.value = k, v
        node = helper.make_node("Add", ["x", "w"], ["y"], name="add_w")
        g = helper.make_graph([node], sub, [x], [y], initializer=[t])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(m.SerializeToString())


if __name__ == "__main__":
    main()
