#!/usr/bin/env python3
"""Reference test vectors for `lowbit_dialects::formats` (low-bit storage formats).

Writes `formats/<family>.json` next to this file. Each file is {"cases": [...]} and every
case is

    {"name", "format", "shape": [...], "data": hex, "scales": hex | null,
     "zeros": hex | null, "g_idx": [...] | null, "group": n | null, "expected": hex}

with every array as its raw little-endian bytes in hex, and "expected" the dequantized
values as little-endian float32 bit patterns (compared bit for bit; a NaN matches a NaN).

The references are independent of the Rust code:

* GGUF (gguf.json): the `gguf` PyPI package (gguf-py, llama.cpp's own Python port of
  ggml-quants.c). Seeded random floats are quantized with `gguf.quants.quantize`, and
  random raw blocks (finite scales, every code) are built where gguf cannot quantize a
  K-type; expected values always come from `gguf.quants.dequantize`.
* AWQ / GPTQ (awq_gptq.json): the packing written out below in numpy after AutoAWQ
  (`order_map = [0, 2, 4, 6, 1, 3, 5, 7]`) and AutoGPTQ (sequential along the input,
  zeros stored minus one); the expected values are the exact products (q - z) * s.
* NF4 (nf4.json): the bitsandbytes table as literals, nearest-level quantization, the
  first code of a pair in the high nibble, expected NF4[q] * absmax in float32.
* FP8 E4M3FN (fp8.json): a decoder of all 256 codes written from the OCP spec, and
  scaled tensors (per tensor, per channel, 128x128 blocks) with expected e4m3(q) * s.

Deterministic (fixed seeds): `pip install gguf numpy; python3 gen_format_vectors.py`.
"""

import json
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "formats")


def hexf32(a):
    return np.ascontiguousarray(a, dtype="<f4").tobytes().hex()


def case(name, fmt, shape, data, expected, scales=None, zeros=None, g_idx=None, group=None, **extra):
    c = {
        "name": name,
        "format": fmt,
        "shape": list(shape),
        "data": bytes(data).hex(),
        "scales": None if scales is None else bytes(scales).hex(),
        "zeros": None if zeros is None else bytes(zeros).hex(),
        "g_idx": None if g_idx is None else [int(g) for g in g_idx],
        "group": group,
        "expected": hexf32(expected),
    }
    c.update(extra)
    return c


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=0, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: {len(obj['cases'])} cases, {os.path.getsize(path)} bytes")


# --------------------------------------------------------------------------------------
# GGUF, through gguf-py.
# --------------------------------------------------------------------------------------

# (gguf type, lowbit name, rows, cols)
GGUF_TYPES = [
    (T.F32, "f32", 4, 32),
    (T.F16, "f16", 4, 32),
    (T.BF16, "bf16", 4, 32),
    (T.Q8_0, "q8_0", 4, 64),
    (T.Q4_0, "q4_0", 4, 64),
    (T.Q4_1, "q4_1", 4, 64),
    (T.Q5_0, "q5_0", 4, 64),
    (T.Q4_K, "q4_k", 2, 256),
    (T.Q6_K, "q6_k", 2, 256),
    (T.MXFP4, "mxfp4", 4, 64),
]


def random_f16(rng, n, scale):
    """Finite, non-zero float16 bit patterns of random sign and magnitude."""
    v = (rng.standard_normal(n) * scale).astype(np.float16)
    v[v == 0] = np.float16(scale)
    return v.view(np.uint8).reshape(n, 2)


def raw_blocks(rng, qtype, n_blocks):
    """Random valid blocks: random bytes, with every float16 scale field set finite."""
    _, size = quants.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    f16_fields = {
        T.Q8_0: [0], T.Q4_0: [0], T.Q5_0: [0], T.Q4_1: [0, 2],
        T.Q4_K: [0, 2], T.Q6_K: [208],
    }.get(qtype, [])
    for off in f16_fields:
        b[:, off:off + 2] = random_f16(rng, n_blocks, 0.01)
    return b


def specials(dtype, n):
    """Finite randoms plus the special values of a float type, as bits."""
    rng = np.random.default_rng(7)
    v = rng.standard_normal(n).astype(np.float32)
    sp = [np.inf, -np.inf, -0.0, 0.0, np.nan, 1e-40, -3e-39, 65504.0, 6e-8, -6.1e-5, 3.0e38]
    v[: len(sp)] = np.array(sp, dtype=np.float32)
    if dtype == np.float32:
        return v
    if dtype == np.float16:
        with np.errstate(over="ignore"):
            return v.astype(np.float16)  # 3e38 -> inf
    return quants.quantize(v, T.BF16)  # bf16 bits, rounded by gguf-py


def gguf_cases():
    cases = []
    for i, (qtype, name, rows, cols) in enumerate(GGUF_TYPES):
        rng = np.random.default_rng(1000 + i)
        x = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 4.0, (rows, 1))).astype(np.float32)
        block, _ = quants.GGML_QUANT_SIZES[qtype]
        try:
            q = quants.quantize(x, qtype)
            label, how = "quantized", "seeded random floats quantized by gguf-py"
        except NotImplementedError:
            q = raw_blocks(rng, qtype, rows * cols // block).reshape(rows, -1)
            label, how = "raw_blocks_2", "random raw blocks (gguf-py cannot quantize this type)"
        q = np.ascontiguousarray(q).view(np.uint8)
        y = quants.dequantize(q, qtype).astype(np.float32)
        cases.append(case(f"{name}_{label}", name, (rows, cols), q.tobytes(), y, note=how))
        if qtype in (T.F32, T.F16, T.BF16):
            dt = {T.F32: np.float32, T.F16: np.float16, T.BF16: None}[qtype]
            raw = specials(dt, rows * cols)
            raw = np.ascontiguousarray(raw).view(np.uint8)
            y = quants.dequantize(raw.reshape(rows, -1), qtype).astype(np.float32)
            cases.append(case(f"{name}_specials", name, (rows, cols), raw.tobytes(), y))
        else:
            raw = raw_blocks(rng, qtype, rows * cols // block)
            y = quants.dequantize(raw.reshape(rows, -1), qtype).astype(np.float32)
            cases.append(case(f"{name}_raw_blocks", name, (rows, cols), raw.tobytes(), y))
    # techniques.md 4.4: a Q4_0 block whose largest magnitude is -1.0 has d = 0.125;
    # -1.0 -> q = 0 -> -1.0 exactly, +1.0 -> q = 15 -> 0.875.
    x = np.linspace(-0.9, 0.9, 32).astype(np.float32)
    x[0], x[1] = -1.0, 1.0
    q = quants.quantize(x.reshape(1, 32), T.Q4_0)
    y = quants.dequantize(q, T.Q4_0).astype(np.float32)
    assert y[0, 0] == -1.0 and y[0, 1] == 0.875
    cases.append(case("q4_0_spec_block", "q4_0", (32,), q.tobytes(), y))
    return cases


# --------------------------------------------------------------------------------------
# AWQ / GPTQ, packed here in numpy.
# --------------------------------------------------------------------------------------

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def asym_quant(w, groups_of_rows, n_groups, bits):
    """AWQ's pseudo_quantize_tensor per (group, column): returns q [in, out], z, s (f16) [groups, out]."""
    qmax = 2**bits - 1
    z = np.zeros((n_groups, w.shape[1]), dtype=np.int64)
    s = np.zeros((n_groups, w.shape[1]), dtype=np.float16)
    for g in range(n_groups):
        rows = w[groups_of_rows == g]
        mx, mn = rows.max(axis=0), rows.min(axis=0)
        scale = np.maximum((mx - mn) / qmax, 1e-5)
        z[g] = np.clip(-np.round(mn / scale), 0, qmax)
        s[g] = scale.astype(np.float16)
    sf = s.astype(np.float64)[groups_of_rows]
    q = np.clip(np.round(w / sf) + z[groups_of_rows], 0, qmax).astype(np.int64)
    return q, z, s


def weights(rng, n_in, n_out):
    w = rng.standard_normal((n_in, n_out)) * 0.05
    w[:, 1] = np.abs(w[:, 1]) + 0.01  # an all-positive column: zero point 0 (GPTQ stores -1)
    w[:, 2] = -np.abs(w[:, 2]) - 0.01  # all negative: zero point 15
    return w


def pack_awq(q):
    n_in, n_out = q.shape
    out = np.zeros((n_in, n_out // 8), dtype=np.uint32)
    for col in range(n_out // 8):
        for i in range(8):
            out[:, col] |= q[:, col * 8 + AWQ_ORDER[i]].astype(np.uint32) << np.uint32(4 * i)
    return out


def pack_gptq_rows(q, bits):
    """qweight: rows packed along the input, row j of a word at bits * j."""
    per = 32 // bits
    out = np.zeros((q.shape[0] // per, q.shape[1]), dtype=np.uint32)
    for r in range(out.shape[0]):
        for j in range(per):
            out[r] |= q[r * per + j].astype(np.uint32) << np.uint32(bits * j)
    return out


def pack_gptq_zeros(z, bits):
    """qzeros: (zero - 1) mod 2^bits, packed along the output, sequentially."""
    per = 32 // bits
    stored = (z - 1) & (2**bits - 1)
    out = np.zeros((z.shape[0], z.shape[1] // per), dtype=np.uint32)
    for c in range(out.shape[1]):
        for j in range(per):
            out[:, c] |= stored[:, c * per + j].astype(np.uint32) << np.uint32(bits * j)
    return out


def exact(q, z, s, g_of_row):
    """(q - z) * s, exact in float64 and representable in float32."""
    y = (q - z[g_of_row]).astype(np.float64) * s.astype(np.float64)[g_of_row]
    assert np.array_equal(y.astype(np.float32).astype(np.float64), y)
    return y.astype(np.float32)


def le32(a):
    return a.astype("<u4").tobytes()


def awq_gptq_cases():
    cases = []
    for group, n_in, n_out in [(32, 64, 16), (64, 128, 8), (128, 256, 8)]:
        rng = np.random.default_rng(group)
        g_of_row = np.arange(n_in) // group
        q, z, s = asym_quant(weights(rng, n_in, n_out), g_of_row, n_in // group, 4)
        y = exact(q, z, s, g_of_row)
        cases.append(case(f"awq_g{group}", "awq_gemm_int4", (n_in, n_out), le32(pack_awq(q)), y,
                          scales=s.astype("<f2").tobytes(), zeros=le32(pack_awq(z)), group=group))
        if group == 32:
            # The same quantized tensor in GPTQ's layout: converting one to the other is exact.
            cases.append(case("gptq_int4_from_awq_g32", "gptq_int4", (n_in, n_out),
                              le32(pack_gptq_rows(q, 4)), y, scales=s.astype("<f2").tobytes(),
                              zeros=le32(pack_gptq_zeros(z, 4)), group=group, same_as="awq_g32"))

    # GPTQ act-order: groups of `group` rows in a random permutation (g_idx[perm[i]] = i // group).
    for bits, fmt, n_in, n_out, group in [(4, "gptq_int4", 128, 16, 32), (8, "gptq_int8", 64, 8, 16)]:
        rng = np.random.default_rng(100 + bits)
        perm = rng.permutation(n_in)
        g_idx = np.empty(n_in, dtype=np.int64)
        g_idx[perm] = np.arange(n_in) // group
        q, z, s = asym_quant(weights(rng, n_in, n_out), g_idx, n_in // group, bits)
        y = exact(q, z, s, g_idx)
        cases.append(case(f"{fmt}_act_order_g{group}", fmt, (n_in, n_out), le32(pack_gptq_rows(q, bits)), y,
                          scales=s.astype("<f2").tobytes(), zeros=le32(pack_gptq_zeros(z, bits)),
                          g_idx=g_idx, group=group))

    # GPTQ symmetric: zero 8 stored as 7 -> every qzeros word is 0x77777777.
    rng = np.random.default_rng(5)
    n_in, n_out, group = 64, 8, 64
    w = rng.standard_normal((n_in, n_out)) * 0.05
    s = (np.abs(w).max(axis=0, keepdims=True) / 7).astype(np.float16)
    z = np.full((1, n_out), 8, dtype=np.int64)
    q = np.clip(np.round(w / s.astype(np.float64)) + 8, 0, 15).astype(np.int64)
    g_of_row = np.zeros(n_in, dtype=np.int64)
    qz = pack_gptq_zeros(z, 4)
    assert (qz == 0x77777777).all()
    cases.append(case("gptq_int4_sym", "gptq_int4", (n_in, n_out), le32(pack_gptq_rows(q, 4)),
                      exact(q, z, s, g_of_row), scales=s.astype("<f2").tobytes(), zeros=le32(qz), group=group))
    return cases


# --------------------------------------------------------------------------------------
# NF4 (bitsandbytes).
# --------------------------------------------------------------------------------------

# bitsandbytes `functional.get_4bit_type('nf4')` (also `dDequantizeNF4` in csrc/kernels.cu),
# the published literals, rounded to float32 as bitsandbytes stores them.
NF4 = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
], dtype=np.float32)


def nf4_cases():
    cases = []
    for name, shape in [("nf4_4x64", (4, 64)), ("nf4_flat_3x128", (3, 128)), ("nf4_2x96", (2, 96))]:
        rng = np.random.default_rng(sum(shape))
        x = (rng.standard_normal(shape) * rng.uniform(0.001, 30.0)).astype(np.float32).reshape(-1, 64)
        absmax = np.abs(x).max(axis=1).astype(np.float32)
        codes = np.abs(x[:, :, None] / absmax[:, None, None] - NF4[None, None, :]).argmin(axis=2)
        flat = codes.reshape(-1)
        packed = ((flat[0::2] << 4) | flat[1::2]).astype(np.uint8)
        y = (NF4[codes] * absmax[:, None]).astype(np.float32)  # one float32 multiply
        cases.append(case(name, "nf4", shape, packed.tobytes(), y.reshape(shape),
                          scales=absmax.astype("<f4").tobytes()))
    return {"table": [int(b) for b in NF4.view(np.uint32)], "cases": cases}


# --------------------------------------------------------------------------------------
# FP8 E4M3FN.
# --------------------------------------------------------------------------------------


def e4m3fn(code):
    """OCP E4M3FN: sign, 4 exponent bits (bias 7), 3 mantissa bits; S.1111.111 is NaN."""
    sign = -1.0 if code & 0x80 else 1.0
    e, m = (code >> 3) & 0xF, code & 0x7
    if e == 0xF and m == 0x7:
        return float("nan")
    if e == 0:
        return sign * m * 2.0**-9
    return sign * (1 + m / 8) * 2.0 ** (e - 7)


E4M3 = np.array([e4m3fn(c) for c in range(256)], dtype=np.float32)


def fp8_cases():
    cases = []
    rng = np.random.default_rng(8)

    def codes(shape):
        c = rng.integers(0, 256, size=shape, dtype=np.uint8)
        c[(c & 0x7F) == 0x7F] = 0x3C  # keep NaN codes out of the scaled tensors
        return c

    c = codes((8, 16))
    s = np.array([rng.uniform(1e-4, 2.0)], dtype=np.float32)
    cases.append(case("fp8_per_tensor", "fp8_e4m3", c.shape, c.tobytes(), E4M3[c] * s[0],
                      scales=s.astype("<f4").tobytes()))
    c = codes((6, 10))
    s = rng.uniform(1e-4, 2.0, size=6).astype(np.float32)
    cases.append(case("fp8_per_channel", "fp8_e4m3_channel", c.shape, c.tobytes(), E4M3[c] * s[:, None],
                      scales=s.astype("<f4").tobytes()))
    for shape in [(130, 3), (3, 130)]:
        c = codes(shape)
        grid = (-(-shape[0] // 128), -(-shape[1] // 128))
        s = rng.uniform(1e-4, 2.0, size=grid).astype(np.float32)
        full = s[np.arange(shape[0])[:, None] // 128, np.arange(shape[1])[None, :] // 128]
        cases.append(case(f"fp8_block128_{shape[0]}x{shape[1]}", "fp8_e4m3_block128", shape, c.tobytes(),
                          E4M3[c] * full, scales=s.astype("<f4").tobytes()))
    return {"e4m3": [int(b) for b in E4M3.view(np.uint32)], "cases": cases}


if __name__ == "__main__":
    write("gguf.json", {"cases": gguf_cases()})
    write("awq_gptq.json", {"cases": awq_gptq_cases()})
    write("nf4.json", nf4_cases())
    write("fp8.json", fp8_cases())
