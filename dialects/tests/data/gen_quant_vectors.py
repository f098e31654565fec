#!/usr/bin/env python3
"""Reference test vectors for the `lowbit`, `attn`, `rot` and `kernel` dialects.

Writes `interp/<dialect>_<op>.json` next to this file: a JSON list of cases, each

    {"name", "mlir", "inputs": [[flat row-major], ...], "weights": {},
     "outputs": [[flat row-major], ...], "atol", "rtol"}

The expected outputs are computed here with numpy in float64, independently of the Rust
interpreter (quantizers, float8/float4 rounding, Hadamard matrices and every attention
variant are re-implemented below), then rounded to the result element type. A case passes
when every element satisfies |got - want| <= atol + rtol * |want|.

Deterministic (fixed seeds) and re-runnable: `python3 gen_quant_vectors.py`. numpy only.
"""

import json
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "interp")

# Tolerances: quantization ops are exact; float results computed in f64 and rounded once
# may differ by one ulp of the result type.
EXACT = dict(atol=0.0, rtol=0.0)
F32_TOL = dict(atol=1e-6, rtol=1e-6)
F16_TOL = dict(atol=1e-3, rtol=1e-3)

# --------------------------------------------------------------------------------------
# Element types: ranges and rounding, written independently of lowbit's numeric.rs.
# --------------------------------------------------------------------------------------

INT_RANGE = {
    "i32": (-(2**31), 2**31 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i8": (-128, 127),
    "ui8": (0, 255),
    "i4": (-8, 7),
    "ui4": (0, 15),
    "i1": (0, 1),
}


def minifloat_table(ebits, mbits, bias, finite_only):
    """All non-negative finite values of a small float format, indexed by code."""
    vals = []
    for code in range(1 << (ebits + mbits)):
        e, m = code >> mbits, code & ((1 << mbits) - 1)
        if finite_only and e == (1 << ebits) - 1 and m == (1 << mbits) - 1:
            break  # E4M3FN: S.1111.111 is NaN, and it is the last code
        if not finite_only and e == (1 << ebits) - 1:
            break  # E5M2: exponent all ones is inf/NaN
        if e == 0:
            vals.append(m / (1 << mbits) * 2.0 ** (1 - bias))
        else:
            vals.append((1 + m / (1 << mbits)) * 2.0 ** (e - bias))
    return np.array(vals)


E4M3 = minifloat_table(4, 3, 7, True)  # 0 .. 448, 127 codes
E5M2 = minifloat_table(5, 2, 15, False)  # 0 .. 57344
E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])
assert E4M3[-1] == 448.0 and len(E4M3) == 127
assert E5M2[-1] == 57344.0


def round_table(x, table):
    """Nearest value of `table` (ascending, by code) to each |x|; ties pick the even code;
    beyond the largest value saturate; the sign is kept."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    hi = np.clip(np.searchsorted(table, a), 1, len(table) - 1)
    lo = hi - 1
    dlo, dhi = a - table[lo], table[hi] - a
    pick = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    r = np.where(a >= table[-1], table[-1], table[pick])
    return np.where(np.signbit(x), -r, r)


def round_to(x, elem):
    x = np.asarray(x, dtype=np.float64)
    if elem == "f64":
        return x
    if elem == "f32":
        return x.astype(np.float32).astype(np.float64)
    if elem == "f16":
        return x.astype(np.float16).astype(np.float64)
    if elem == "f8E4M3FN":
        return round_table(x, E4M3)
    if elem == "f8E5M2":
        return round_table(x, E5M2)
    if elem == "f4E2M1FN":
        return round_table(x, E2M1)
    lo, hi = INT_RANGE[elem]
    return np.clip(np.rint(x), lo, hi)


def is_float(elem):
    return elem.startswith("f")


# --------------------------------------------------------------------------------------
# MLIR text and case records.
# --------------------------------------------------------------------------------------


def ty(shape, elem):
    return "tensor<" + "".join(f"{d}x" for d in shape) + elem + ">"


def func(params, results, body):
    """`params`/`results`: lists of (shape, elem); `body`: op lines using %argN / %N."""
    args = ", ".join(f"%arg{i}: {ty(*p)}" for i, p in enumerate(params))
    rets = [ty(*r) for r in results]
    ret_ty = rets[0] if len(rets) == 1 else "(" + ", ".join(rets) + ")"
    lines = [f"func @f({args}) -> {ret_ty} {{"]
    lines += ["  " + b for b in body]
    n = len(results)
    first = sum(1 for b in body if b.startswith("%")) - 1  # one result per op line here
    names = [f"%{first - n + 1 + i}" for i in range(n)] if n > 1 else [f"%{first}"]
    lines.append("  return " + ", ".join(names))
    return "\n".join(lines) + "\n}\n"


def flat(a):
    a = np.asarray(a, dtype=np.float64).ravel()
    out = []
    for v in a:
        fv = float(v)
        if not math.isfinite(fv):
            out.append("nan" if math.isnan(fv) else ("inf" if fv > 0 else "-inf"))
            continue
        out.append(int(fv) if fv.is_integer() and not (fv == 0 and math.copysign(1, fv) < 0) else fv)
    return out


def case(name, params, results, body, inputs, outputs, tol):
    for (shape, elem), x in zip(params + results, list(inputs) + list(outputs)):
        x = np.asarray(x)
        assert x.shape == tuple(shape), (name, x.shape, shape)
        assert np.array_equal(round_to(x, elem), x, equal_nan=True), (name, elem, "not representable")
    return {
        "name": name,
        "mlir": func(params, results, body),
        "inputs": [flat(x) for x in inputs],
        "weights": {},
        "outputs": [flat(x) for x in outputs],
        "atol": tol["atol"],
        "rtol": tol["rtol"],
    }


def error_case(name, params, results, body, inputs, error):
    """A case whose evaluation must fail with a message containing every string of `error`."""
    for (shape, elem), x in zip(params, inputs):
        x = np.asarray(x)
        assert x.shape == tuple(shape) and np.array_equal(round_to(x, elem), x), name
    return {
        "name": name,
        "mlir": func(params, results, body),
        "inputs": [flat(x) for x in inputs],
        "weights": {},
        "error": error,
    }


def attrs(**kw):
    parts = []
    for k, v in kw.items():
        if isinstance(v, bool):
            parts.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, int):
            parts.append(f"{k} = {v} : i64")
        elif isinstance(v, float):
            assert float(np.float32(v)) == v, f"{k} = {v} is not an f32 value"
            parts.append(f"{k} = {v!r} : f32")
        elif isinstance(v, str):
            parts.append(f'{k} = "{v}"')
        else:
            raise TypeError(v)
    return "{" + ", ".join(parts) + "}"


def f32_rand(rng, shape, scale=1.0):
    return round_to(rng.standard_normal(shape) * scale, "f32")


def write(name, cases):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{name}.json")
    with open(path, "w") as f:
        json.dump(cases, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"{path}: {len(cases)} cases")


# --------------------------------------------------------------------------------------
# lowbit
# --------------------------------------------------------------------------------------


def group_param(p, shape, axis, block):
    """Scale (or zero point) `p` expanded to `shape` for the given granularity."""
    p = np.asarray(p, dtype=np.float64)
    if axis is None:
        return np.broadcast_to(p.reshape(()), shape) if p.size == 1 else None
    axis %= len(shape)
    if block is None:
        if p.ndim == 0:
            return np.broadcast_to(p, shape)
        bshape = [1] * len(shape)
        bshape[axis] = shape[axis]
        return np.broadcast_to(p.reshape(bshape), shape)
    rep = np.repeat(p, block, axis=axis)
    return np.take(rep, np.arange(shape[axis]), axis=axis)


def quantize_ref(x, scale, zp, elem, axis=None, block=None):
    s = group_param(scale, x.shape, axis, block)
    z = 0.0 if zp is None else group_param(zp, x.shape, axis, block)
    v = x / s
    if is_float(elem):
        return round_to(round_to(v, elem) + z, elem)
    return round_to(np.rint(v) + z, elem)


def dequantize_ref(q, scale, zp, out_elem, axis=None, block=None):
    s = group_param(scale, q.shape, axis, block)
    z = 0.0 if zp is None else group_param(zp, q.shape, axis, block)
    return round_to((q - z) * s, out_elem)


def qattrs(axis, block):
    kw = {}
    if axis is not None:
        kw["axis"] = axis
    if block is not None:
        kw["block_size"] = block
    return (" " + attrs(**kw)) if kw else ""


def rand_int(rng, shape, elem, lo=None, hi=None):
    a, b = INT_RANGE[elem]
    lo = a if lo is None else lo
    hi = b if hi is None else hi
    return rng.integers(lo, hi + 1, size=shape).astype(np.float64)


def rand_scale(rng, shape):
    return round_to(rng.uniform(0.05, 0.6, size=shape), "f32")


def lowbit_quantize():
    rng = np.random.default_rng(101)
    cases = []

    def add(name, x, elem, scale, zp, axis=None, block=None, x_elem="f32"):
        x = round_to(x, x_elem)
        y = quantize_ref(x, scale, zp, elem, axis, block)
        params = [(x.shape, x_elem), (np.shape(scale), "f32")]
        inputs = [x, scale]
        args = "%arg0, %arg1"
        if zp is not None:
            params.append((np.shape(zp), elem))
            inputs.append(zp)
            args += ", %arg2"
        body = [f"%0 = lowbit.quantize {args}{qattrs(axis, block)} : {ty(x.shape, elem)}"]
        cases.append(case(name, params, [(x.shape, elem)], body, inputs, [y], EXACT))

    # Per-tensor i8 with a zero point: exact half-way ties (x / 0.5 = k + 0.5) round to
    # even, and large values saturate both ways.
    ties = np.array([0.25, 0.75, -0.25, -0.75, 1.25, -1.25, 2.25, 0.0])
    x = np.concatenate([ties, [100.0, -100.0, 63.0, -64.5, 3.1, -2.9, 0.6, -0.1]]).reshape(2, 8)
    add("quantize_per_tensor_i8_ties_saturation", x, "i8", np.array(0.5), np.array(-3.0))
    # Per-tensor ui8 without a zero point: negatives saturate to 0.
    add("quantize_per_tensor_ui8_no_zp", rng.standard_normal((3, 5)) * 20, "ui8", np.array(0.25), None)
    # Per-axis, axis 0 and axis -1, with zero points.
    add("quantize_per_axis0_i8", rng.standard_normal((4, 6)) * 3, "i8",
        rand_scale(rng, (4,)), rand_int(rng, (4,), "i8", -10, 10), axis=0)
    add("quantize_per_axis_neg1_ui8", rng.standard_normal((2, 3, 4)) * 5, "ui8",
        rand_scale(rng, (4,)) / 4, rand_int(rng, (4,), "ui8", 100, 150), axis=-1)
    # Per-block i4 along axis 1 (block 4) with zero points, and a partial edge block.
    add("quantize_per_block_i4", rng.standard_normal((2, 8)) * 2, "i4",
        rand_scale(rng, (2, 2)), rand_int(rng, (2, 2), "i4", -2, 2), axis=1, block=4)
    add("quantize_per_block_ui4_partial_edge", rng.standard_normal((3, 6)) * 2, "ui4",
        rand_scale(rng, (3, 2)), rand_int(rng, (3, 2), "ui4", 6, 9), axis=1, block=4)
    add("quantize_per_block_axis0_i8_partial", rng.standard_normal((5, 3)) * 40, "i8",
        rand_scale(rng, (2, 3)) / 2, None, axis=0, block=3)
    # Float formats: zero point absent; saturation at the format's maximum.
    x = rng.standard_normal((3, 8)) * 50
    x[0, 0], x[0, 1], x[1, 2] = 10000.0, -10000.0, 1e-6
    add("quantize_per_tensor_f8e4m3", x, "f8E4M3FN", np.array(0.375), None)
    add("quantize_per_axis_f8e5m2", rng.standard_normal((2, 8)) * 1000, "f8E5M2",
        rand_scale(rng, (2,)), None, axis=0)
    x = rng.standard_normal((2, 8)) * 3
    x[1, 7] = 50.0
    add("quantize_per_block_f4e2m1", x, "f4E2M1FN", rand_scale(rng, (2, 4)), None, axis=1, block=2)
    # f16 input.
    add("quantize_f16_input_i8", rng.standard_normal((4, 4)) * 4, "i8", rand_scale(rng, (4,)),
        rand_int(rng, (4,), "i8", -5, 5), axis=1, x_elem="f16")
    return cases


def lowbit_dequantize():
    rng = np.random.default_rng(102)
    cases = []

    def add(name, q, q_elem, scale, zp, out="f32", axis=None, block=None, s_elem="f32"):
        y = dequantize_ref(q, scale, zp, out, axis, block)
        params = [(q.shape, q_elem), (np.shape(scale), s_elem)]
        inputs = [q, scale]
        args = "%arg0, %arg1"
        if zp is not None:
            params.append((np.shape(zp), q_elem))
            inputs.append(zp)
            args += ", %arg2"
        body = [f"%0 = lowbit.dequantize {args}{qattrs(axis, block)} : {ty(q.shape, out)}"]
        cases.append(case(name, params, [(q.shape, out)], body, inputs, [y], EXACT))

    add("dequantize_per_tensor_i8", rand_int(rng, (3, 5), "i8"), "i8", np.array(0.0625),
        np.array(-7.0))
    add("dequantize_per_axis_ui8", rand_int(rng, (2, 6), "ui8"), "ui8", rand_scale(rng, (6,)),
        rand_int(rng, (6,), "ui8"), axis=1)
    add("dequantize_per_block", rand_int(rng, (2, 8), "i4"), "i4", rand_scale(rng, (2, 2)), None,
        axis=1, block=4)
    add("dequantize_per_block_zp_partial_edge", rand_int(rng, (5, 2), "ui4"), "ui4",
        rand_scale(rng, (2, 2)), rand_int(rng, (2, 2), "ui4"), axis=0, block=3)
    q = round_to(rng.standard_normal((2, 6)) * 100, "f8E4M3FN")
    add("dequantize_per_axis_f8e4m3", q, "f8E4M3FN", rand_scale(rng, (2,)), None, axis=0)
    q = round_to(rng.standard_normal((2, 8)) * 3, "f4E2M1FN")
    add("dequantize_per_block_f4e2m1_mxfp4_like", q, "f4E2M1FN", np.array([[0.5, 2.0], [0.25, 4.0]]),
        None, axis=1, block=4)
    add("dequantize_to_f16", rand_int(rng, (2, 4), "i8"), "i8",
        round_to(rand_scale(rng, (4,)) * 100, "f32"), None,
        out="f16", axis=-1)
    q = round_to(rng.standard_normal((2, 8)) * 10000, "f8E5M2")
    add("dequantize_per_tensor_f8e5m2_f16_scale", q, "f8E5M2", round_to(np.array(0.3), "f16"), None,
        s_elem="f16")

    # Two-level: a ui8 per-tensor dequantize produces the per-block scales of an i4 tensor.
    q = rand_int(rng, (2, 8), "i4")
    qs = rand_int(rng, (2, 2), "ui8", 1, 255)
    s2 = np.array(0.0078125)
    scales = dequantize_ref(qs, s2, None, "f32")
    y = dequantize_ref(q, scales, None, "f32", axis=1, block=4)
    params = [((2, 8), "i4"), ((2, 2), "ui8"), ((), "f32")]
    body = [
        "%0 = lowbit.dequantize %arg1, %arg2 : tensor<2x2xf32>",
        "%1 = lowbit.dequantize %arg0, %0 {axis = 1 : i64, block_size = 4 : i64} : tensor<2x8xf32>",
    ]
    cases.append(case("dequantize_two_level", params, [((2, 8), "f32")], body, [q, qs, s2], [y], EXACT))
    return cases


def lowbit_qmatmul():
    rng = np.random.default_rng(103)
    cases = []

    def add(name, a, ae, b, be, ls, rs, lz=None, rz=None, out="f32"):
        a_i = a.astype(np.int64) - (0 if lz is None else np.asarray(lz, dtype=np.int64))
        b_i = b.astype(np.int64) - (0 if rz is None else np.asarray(rz, dtype=np.int64))
        acc = np.matmul(a_i, b_i).astype(np.float64)  # exact integer accumulation
        y = round_to(acc * ls * rs, out)
        params = [(a.shape, ae), (b.shape, be), (np.shape(ls), "f32"), (np.shape(rs), "f32")]
        inputs = [a, b, ls, rs]
        if lz is not None:
            params.append((np.shape(lz), ae))
            inputs.append(lz)
        if rz is not None:
            params.append((np.shape(rz), be))
            inputs.append(rz)
        args = ", ".join(f"%arg{i}" for i in range(len(params)))
        body = [f"%0 = lowbit.qmatmul {args} : {ty(y.shape, out)}"]
        cases.append(case(name, params, [(y.shape, out)], body, inputs, [y], EXACT))

    add("qmatmul_per_tensor", rand_int(rng, (3, 4), "i8"), "i8", rand_int(rng, (4, 2), "i8"), "i8",
        np.array(0.01171875), np.array(0.5))
    # Per-row lhs scale/zero [M, 1], per-column rhs scale/zero [N], batched lhs.
    add("qmatmul_per_row_per_col_zero_points_batched", rand_int(rng, (2, 3, 4), "i8"), "i8",
        rand_int(rng, (4, 2), "i8"), "i8", rand_scale(rng, (3, 1)), rand_scale(rng, (2,)),
        lz=rand_int(rng, (3, 1), "i8", -4, 4), rz=rand_int(rng, (2,), "i8", -4, 4))
    # ui8 activations with a scalar zero point times i4 weights, both operands batched.
    add("qmatmul_ui8_i4_batched", rand_int(rng, (2, 2, 5), "ui8"), "ui8",
        rand_int(rng, (2, 5, 3), "i4"), "i4", np.array(0.015625), rand_scale(rng, (1, 1, 3)),
        lz=np.array(128.0))
    # i32 result (the integer accumulator, unit scales).
    add("qmatmul_i32_result", rand_int(rng, (2, 8), "i8"), "i8", rand_int(rng, (8, 3), "i8"), "i8",
        np.array(1.0), np.array(1.0), out="i32")
    return cases


def nibble(v, elem):
    if elem in ("i4", "ui4"):
        return int(v) & 0xF
    code = int(np.flatnonzero(E2M1 == abs(v))[0])
    return code | (8 if math.copysign(1.0, v) < 0 else 0)


def unnibble(n, elem):
    if elem == "i4":
        return n - 16 if n >= 8 else n
    if elem == "ui4":
        return n
    m = E2M1[n & 7]
    return -m if n & 8 else m


def pack_ref(x, elem):
    n = x.shape[-1]
    m = (n + 1) // 2
    rows = x.reshape(-1, n)
    out = np.zeros((rows.shape[0], m))
    for r, row in enumerate(rows):
        for i in range(m):
            lo = nibble(row[2 * i], elem)
            hi = nibble(row[2 * i + 1], elem) if 2 * i + 1 < n else 0
            out[r, i] = lo + 16 * hi
    return out.reshape(x.shape[:-1] + (m,))


def unpack_ref(x, n, elem):
    m = x.shape[-1]
    rows = x.reshape(-1, m)
    out = np.zeros((rows.shape[0], n))
    for r, row in enumerate(rows):
        for p in range(n):
            byte = int(row[p // 2])
            out[r, p] = unnibble((byte >> 4) if p % 2 else (byte & 0xF), elem)
    return out.reshape(x.shape[:-1] + (n,))


def lowbit_pack():
    rng = np.random.default_rng(104)
    cases = []
    for name, x, elem in [
        ("pack_i4_odd", rand_int(rng, (2, 5), "i4"), "i4"),
        ("pack_ui4_even", rand_int(rng, (4,), "ui4"), "ui4"),
        ("pack_f4e2m1_signed_zero", np.array([[0.5, -0.0, 6.0, -6.0, 1.5, -3.0, 0.0],
                                              [-0.5, 4.0, -1.0, 2.0, 3.0, -4.0, 1.0]]), "f4E2M1FN"),
        ("pack_i4_rank3_odd", rand_int(rng, (2, 2, 3), "i4"), "i4"),
    ]:
        y = pack_ref(x, elem)
        body = [f"%0 = lowbit.pack %arg0 : {ty(y.shape, 'ui8')}"]
        cases.append(case(name, [(x.shape, elem)], [(y.shape, "ui8")], body, [x], [y], EXACT))
    return cases


def lowbit_unpack():
    rng = np.random.default_rng(105)
    cases = []
    for name, shape, n, elem in [
        ("unpack_i4_odd", (2, 3), 5, "i4"),
        ("unpack_ui4_even", (3,), 6, "ui4"),
        ("unpack_f4e2m1", (2, 2), 4, "f4E2M1FN"),
        ("unpack_f4e2m1_odd", (1, 4), 7, "f4E2M1FN"),
        ("unpack_i4_rank3_even", (2, 2, 2), 4, "i4"),
    ]:
        x = rand_int(rng, shape, "ui8")
        y = unpack_ref(x, n, elem)
        body = [f"%0 = lowbit.unpack %arg0 : {ty(y.shape, elem)}"]
        cases.append(case(name, [(shape, "ui8")], [(y.shape, elem)], body, [x], [y], EXACT))
    # pack(unpack(x)) is the identity on even-length bytes.
    x = rand_int(rng, (2, 3), "ui8")
    body = ["%0 = lowbit.unpack %arg0 : tensor<2x6xi4>", "%1 = lowbit.pack %0 : tensor<2x3xui8>"]
    cases.append(case("unpack_pack_round_trip", [((2, 3), "ui8")], [((2, 3), "ui8")], body, [x], [x], EXACT))
    return cases


def lowbit_codebook():
    rng = np.random.default_rng(106)
    cases = []
    for name, ishape, ie, k, v, be in [
        ("codebook_i32_indices", (2, 3), "i32", 4, 2, "f32"),
        ("codebook_ui8_indices_f16", (5,), "ui8", 3, 3, "f16"),
        ("codebook_rank3", (2, 2, 2), "i8", 5, 4, "f32"),
    ]:
        idx = rng.integers(0, k, size=ishape).astype(np.float64)
        book = round_to(rng.standard_normal((k, v)), be)
        y = book[idx.astype(int)].reshape(ishape[:-1] + (ishape[-1] * v,))
        body = [f"%0 = lowbit.codebook %arg0, %arg1 : {ty(y.shape, be)}"]
        cases.append(case(name, [(ishape, ie), ((k, v), be)], [(y.shape, be)], body, [idx, book], [y], EXACT))
    # Indices outside [0, K) are input errors, not panics.
    for name, bad in [("codebook_index_out_of_range", 4.0), ("codebook_negative_index", -1.0)]:
        idx = np.array([0.0, bad, 1.0])
        book = f32_rand(rng, (4, 2))
        body = ["%0 = lowbit.codebook %arg0, %arg1 : tensor<6xf32>"]
        cases.append(error_case(name, [((3,), "i32"), ((4, 2), "f32")], [((6,), "f32")], body,
                                [idx, book], ["lowbit.codebook", "out of range"]))
    return cases


# --------------------------------------------------------------------------------------
# attn
# --------------------------------------------------------------------------------------


def expand_kv(x, h):
    """[B, Hkv, M, *] -> [B, H, M, *]: query head h reads KV head h // (H / Hkv)."""
    return np.repeat(x, h // x.shape[1], axis=1)


def causal_hidden(n, m):
    i = np.arange(n)[:, None]
    j = np.arange(m)[None, :]
    return j > i + m - n


def masked_softmax(s, hidden):
    """Softmax over the last axis ignoring `hidden`; rows with nothing visible are 0."""
    s = np.where(hidden, -np.inf, s)
    mx = s.max(axis=-1, keepdims=True)
    empty = np.isneginf(mx)
    e = np.exp(s - np.where(empty, 0.0, mx))
    tot = e.sum(axis=-1, keepdims=True)
    return np.where(empty, 0.0, e / np.where(empty, 1.0, tot))


def hidden_of(shape, causal, mask, mask_elem):
    """The hidden-key mask and additive bias for scores of `shape` [B, H, N, M]."""
    hidden = np.zeros(shape, dtype=bool)
    bias = np.zeros(shape)
    if causal:
        hidden |= causal_hidden(shape[2], shape[3])
    if mask is not None:
        mb = np.broadcast_to(mask, shape)
        if mask_elem == "i1":
            hidden |= mb == 0
        else:
            bias = bias + mb
            hidden |= np.isneginf(mb)
    return hidden, bias


def sdpa_ref(q, k, v, scale, causal, mask=None, mask_elem="f32"):
    h = q.shape[1]
    kk, vv = expand_kv(k, h), expand_kv(v, h)
    s = scale * np.einsum("bhnd,bhmd->bhnm", q, kk)
    hidden, bias = hidden_of(s.shape, causal, mask, mask_elem)
    p = masked_softmax(s + bias, hidden)
    return np.einsum("bhnm,bhmc->bhnc", p, vv)


def qkv_rand(rng, b, h, hkv, n, m, d, dv, scale=1.0):
    return (f32_rand(rng, (b, h, n, d), scale), f32_rand(rng, (b, hkv, m, d), scale),
            f32_rand(rng, (b, hkv, m, dv)))


def attn_case(name, op, q, k, v, extra, kw, y, tol=F32_TOL, elem="f32", extra_elems=()):
    params = [(q.shape, elem), (k.shape, elem), (v.shape, elem)]
    params += [(e.shape, ee) for e, ee in zip(extra, extra_elems)]
    args = ", ".join(f"%arg{i}" for i in range(len(params)))
    body = [f"%0 = {op} {args} {attrs(**kw)} : {ty(y.shape, elem)}"]
    y = round_to(y, elem)
    return case(name, params, [(y.shape, elem)], body, [q, k, v] + list(extra), [y], tol)


def attn_sdpa():
    rng = np.random.default_rng(201)
    cases = []
    q, k, v = qkv_rand(rng, 1, 2, 2, 3, 3, 4, 4)
    cases.append(attn_case("sdpa_basic", "attn.sdpa", q, k, v, [], dict(causal=False, scale=0.5),
                           sdpa_ref(q, k, v, 0.5, False)))
    q, k, v = qkv_rand(rng, 2, 4, 2, 2, 3, 2, 3)
    cases.append(attn_case("sdpa_gqa", "attn.sdpa", q, k, v, [], dict(causal=False, scale=0.375),
                           sdpa_ref(q, k, v, 0.375, False)))
    q, k, v = qkv_rand(rng, 1, 4, 1, 2, 3, 4, 2)
    cases.append(attn_case("sdpa_mqa_causal", "attn.sdpa", q, k, v, [], dict(causal=True, scale=0.5),
                           sdpa_ref(q, k, v, 0.5, True)))
    q, k, v = qkv_rand(rng, 1, 2, 1, 2, 5, 4, 3)
    cases.append(attn_case("sdpa_causal_n_lt_m", "attn.sdpa", q, k, v, [], dict(causal=True, scale=0.5),
                           sdpa_ref(q, k, v, 0.5, True)))
    # N > M: the first N - M query rows see no key at all and output 0.
    q, k, v = qkv_rand(rng, 1, 2, 2, 5, 3, 4, 3)
    y = sdpa_ref(q, k, v, 0.5, True)
    assert np.all(y[:, :, :2] == 0)
    cases.append(attn_case("sdpa_causal_n_gt_m_empty_rows", "attn.sdpa", q, k, v, [],
                           dict(causal=True, scale=0.5), y))
    # Float mask [1, 1, N, M] with -inf entries, one row entirely -inf.
    q, k, v = qkv_rand(rng, 2, 2, 2, 3, 4, 4, 2)
    mask = f32_rand(rng, (1, 1, 3, 4))
    mask[0, 0, 0, 1] = -np.inf
    mask[0, 0, 2, :] = -np.inf
    y = sdpa_ref(q, k, v, 0.25, False, mask)
    cases.append(attn_case("sdpa_float_mask_fully_masked_row", "attn.sdpa", q, k, v, [mask],
                           dict(causal=False, scale=0.25), y, extra_elems=["f32"]))
    # Float mask with the lowest finite value (added, not hidden) plus causal.
    q, k, v = qkv_rand(rng, 1, 2, 2, 4, 4, 2, 2)
    mask = np.zeros((1, 1, 1, 4))
    mask[..., 3] = float(np.finfo(np.float32).min)
    cases.append(attn_case("sdpa_padding_lowest_finite_causal", "attn.sdpa", q, k, v, [mask],
                           dict(causal=True, scale=0.5), sdpa_ref(q, k, v, 0.5, True, mask),
                           extra_elems=["f32"]))
    # i1 padding mask [B, 1, 1, M].
    q, k, v = qkv_rand(rng, 2, 2, 1, 3, 5, 4, 2)
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], dtype=np.float64).reshape(2, 1, 1, 5)
    cases.append(attn_case("sdpa_i1_padding_mask_gqa", "attn.sdpa", q, k, v, [mask],
                           dict(causal=False, scale=0.5), sdpa_ref(q, k, v, 0.5, False, mask, "i1"),
                           extra_elems=["i1"]))
    # Full i1 mask [B, H, N, M] with a fully masked row, combined with causal.
    q, k, v = qkv_rand(rng, 1, 2, 2, 3, 3, 4, 4)
    mask = (rng.random((1, 2, 3, 3)) < 0.7).astype(np.float64)
    mask[0, 1, 2, :] = 0
    mask[0, 0, 0, 0] = 1
    y = sdpa_ref(q, k, v, 0.5, True, mask, "i1")
    assert np.all(y[0, 1, 2] == 0)
    cases.append(attn_case("sdpa_i1_mask_causal_fully_masked_row", "attn.sdpa", q, k, v, [mask],
                           dict(causal=True, scale=0.5), y, extra_elems=["i1"]))
    # f16 operands and result.
    q, k, v = [round_to(t, "f16") for t in qkv_rand(rng, 1, 2, 1, 3, 4, 4, 4)]
    cases.append(attn_case("sdpa_f16", "attn.sdpa", q, k, v, [], dict(causal=False, scale=0.5),
                           sdpa_ref(q, k, v, 0.5, False), tol=F16_TOL, elem="f16"))
    return cases


# -- quantized attention ---------------------------------------------------------------

QK_RANGE = {"i8": 127.0, "i4": 7.0, "f8": 448.0}


def qk_round(v, fmt):
    if fmt == "f8":
        return round_to(v, "f8E4M3FN")
    r = QK_RANGE[fmt]
    return np.clip(np.rint(v), -r, r)


def seq_mean(x):
    """Column means of the rows of x, summed in row order (matches a sequential loop)."""
    acc = np.zeros(x.shape[1:])
    for row in x:
        acc = acc + row
    return acc / x.shape[0]


def quant_rows(x, block, fmt):
    """Symmetric per-block quantization of the rows of x: (quantized values, δ per row)."""
    xq = np.zeros_like(x)
    dl = np.zeros(x.shape[0])
    for s in range(0, x.shape[0], block):
        blk = x[s:s + block]
        amax = np.abs(blk).max()
        delta = 1.0 if amax == 0 else amax / QK_RANGE[fmt]
        xq[s:s + block] = qk_round(blk / delta, fmt)
        dl[s:s + block] = delta
    return xq, dl


def quantized_sdpa_ref(q, k, v, scale, causal, qk, pv, qb, kb, smooth_q, smooth_k,
                       mask=None, mask_elem="f32"):
    bsz, h, n, d = q.shape
    hkv, m, dv = k.shape[1], k.shape[2], v.shape[3]
    grp = h // hkv
    out = np.zeros((bsz, h, n, dv))
    hidden, bias = hidden_of((bsz, h, n, m), causal, mask, mask_elem)
    for b in range(bsz):
        for hh in range(h):
            g = hh // grp
            kk = k[b, g].copy()
            if smooth_k:
                kk = kk - seq_mean(kk)
            kq, kd = quant_rows(kk, kb, qk)
            qq = q[b, hh].copy()
            ds = np.zeros((n, m))
            if smooth_q:
                for s in range(0, n, qb):
                    mean = seq_mean(qq[s:s + qb])
                    qq[s:s + qb] = qq[s:s + qb] - mean
                    ds[s:s + qb] = scale * (kk @ mean)[None, :]
            qqq, qd = quant_rows(qq, qb, qk)
            sc = scale * ((qd[:, None] * kd[None, :]) * (qqq @ kq.T)) + ds
            p = masked_softmax(sc + bias[b, hh], hidden[b, hh])
            vv = v[b, g]
            if pv == "f16":
                o = round_to(p, "f16") @ round_to(vv, "f16")
            else:
                rng_v = 448.0 if pv == "f8" else 127.0
                amax = np.abs(vv).max(axis=0)
                dv_ = np.where(amax == 0, 1.0, amax / rng_v)
                if pv == "f8":
                    pt = round_to(p * 448.0, "f8E4M3FN") / 448.0
                    vh = round_to(vv / dv_, "f8E4M3FN")
                else:
                    pt = np.rint(p * 127.0) / 127.0
                    vh = np.clip(np.rint(vv / dv_), -127, 127)
                o = (pt @ vh) * dv_
            out[b, hh] = o
    return out


def attn_quantized_sdpa():
    rng = np.random.default_rng(202)
    cases = []

    def add(name, q, k, v, causal, qk, pv, qb, kb, sq, sk, mask=None, mask_elem="f32"):
        kw = dict(causal=causal, k_block=kb, pv=pv, q_block=qb, qk=qk, scale=0.5,
                  smooth_k=sk, smooth_q=sq)
        y = quantized_sdpa_ref(q, k, v, 0.5, causal, qk, pv, qb, kb, sq, sk, mask, mask_elem)
        extra = [] if mask is None else [mask]
        cases.append(attn_case(name, "attn.quantized_sdpa", q, k, v, extra, kw, y,
                               extra_elems=[mask_elem]))

    def biased(b, h, hkv, n, m, d, dv):
        q, k, v = qkv_rand(rng, b, h, hkv, n, m, d, dv)
        # A per-channel bias on K (what K smoothing removes) and on Q.
        k = round_to(k + np.array([3.0, -2.0, 0.5, 1.0][:d]), "f32")
        q = round_to(q + np.array([1.0, 0.0, -1.5, 0.25][:d]), "f32")
        return q, k, v

    q, k, v = biased(1, 2, 2, 4, 4, 4, 4)
    add("quantized_sdpa_i8_f16_smooth_k", q, k, v, False, "i8", "f16", 2, 2, False, True)
    q, k, v = biased(1, 2, 1, 4, 5, 4, 3)
    add("quantized_sdpa_i4_f8_smooth_qk_gqa_causal_partial_blocks", q, k, v, True, "i4", "f8", 3, 3,
        True, True)
    q, k, v = biased(2, 1, 1, 3, 4, 4, 2)
    mask = f32_rand(rng, (1, 1, 3, 4))
    add("quantized_sdpa_f8_i8_smooth_q_float_mask", q, k, v, False, "f8", "i8", 2, 4, True, False,
        mask)
    q, k, v = qkv_rand(rng, 1, 2, 2, 4, 4, 4, 2)
    q[0, 0, :2] = 0.0  # an all-zero Q block: δ = 1
    v[0, 1, :, 1] = 0.0  # an all-zero V channel
    add("quantized_sdpa_i8_i8_zero_blocks", q, k, v, False, "i8", "i8", 2, 2, False, False)
    q, k, v = biased(1, 2, 2, 3, 3, 4, 2)
    mask = np.ones((1, 2, 3, 3))
    mask[0, 0, 1, :] = 0
    add("quantized_sdpa_i8_f8_i1_mask_fully_masked_row", q, k, v, False, "i8", "f8", 1, 2, True, True,
        mask, "i1")
    q, k, v = biased(1, 1, 1, 4, 2, 4, 3)
    add("quantized_sdpa_f8_f16_causal_n_gt_m", q, k, v, True, "f8", "f16", 4, 1, True, True)
    return cases


# -- block-sparse and sparse-linear -------------------------------------------------------


def expand_blocks(bm, bq, bk, n, m):
    return np.repeat(np.repeat(bm, bq, axis=2), bk, axis=3)[:, :, :n, :m]


def block_sparse_ref(q, k, v, bm, scale, causal, bq, bk):
    h, n, m = q.shape[1], q.shape[2], k.shape[2]
    kk, vv = expand_kv(k, h), expand_kv(v, h)
    s = scale * np.einsum("bhnd,bhmd->bhnm", q, kk)
    hidden = np.broadcast_to(expand_blocks(bm, bq, bk, n, m) == 0, s.shape).copy()
    if causal:
        hidden |= causal_hidden(n, m)
    p = masked_softmax(s, hidden)
    return np.einsum("bhnm,bhmc->bhnc", p, vv)


def attn_block_sparse_sdpa():
    rng = np.random.default_rng(203)
    cases = []

    def add(name, q, k, v, bm, causal, bq, bk, scale=0.5):
        y = block_sparse_ref(q, k, v, bm, scale, causal, bq, bk)
        kw = dict(block_k=bk, block_q=bq, causal=causal, scale=scale)
        cases.append(attn_case(name, "attn.block_sparse_sdpa", q, k, v, [bm], kw, y,
                               extra_elems=["i1"]))
        return y

    # Partially filled edge blocks (N = 5, block_q = 2; M = 6, block_k = 4); the middle query
    # block keeps nothing and outputs 0.
    q, k, v = qkv_rand(rng, 1, 2, 2, 5, 6, 4, 3)
    bm = np.array([[1, 0], [0, 0], [1, 1]], dtype=np.float64).reshape(1, 1, 3, 2)
    y = add("block_sparse_edge_blocks_empty_row_block", q, k, v, bm, False, 2, 4)
    assert np.all(y[:, :, 2:4] == 0)
    # Per-head masks, GQA, causal with N < M.
    q, k, v = qkv_rand(rng, 1, 2, 1, 4, 6, 2, 2)
    bm = np.array([[[1, 1, 0], [0, 1, 1]], [[1, 0, 1], [1, 1, 1]]], dtype=np.float64).reshape(1, 2, 2, 3)
    add("block_sparse_per_head_gqa_causal", q, k, v, bm, True, 2, 2)
    # Per-batch mask broadcast over heads; all kept equals sdpa.
    q, k, v = qkv_rand(rng, 2, 2, 2, 3, 4, 4, 2)
    bm = np.ones((2, 1, 2, 2))
    y = add("block_sparse_all_kept_equals_sdpa", q, k, v, bm, False, 2, 3, 0.375)
    assert np.allclose(y, sdpa_ref(q, k, v, 0.375, False), rtol=1e-12, atol=1e-12)
    return cases


def phi_ref(x, fmap):
    if fmap == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if fmap == "elu1":
        return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))
    if fmap == "relu":
        return np.maximum(x, 0.0)
    raise ValueError(fmap)


def ratio_or_zero(num, den):
    """num / den per row, 0 where den == 0."""
    safe = np.where(den == 0, 1.0, den)
    return np.where(den == 0, 0.0, num / safe)


def sparse_linear_ref(q, k, v, bm, w, bias, scale, bq, bk, fmap):
    h, n, m = q.shape[1], q.shape[2], k.shape[2]
    kk, vv = expand_kv(k, h), expand_kv(v, h)
    full = np.broadcast_to(expand_blocks(bm, bq, bk, n, m), (q.shape[0], h, n, m))
    s = scale * np.einsum("bhnd,bhmd->bhnm", q, kk)
    o_s = np.einsum("bhnm,bhmc->bhnc", masked_softmax(s, full != 1), vv)
    # Linear branch in the (φQ φKᵀ) V association (the Rust side uses φQ (φKᵀ V)).
    a = np.einsum("bhnd,bhmd->bhnm", phi_ref(q, fmap), phi_ref(kk, fmap)) * (full == 0)
    o_l = ratio_or_zero(np.einsum("bhnm,bhmc->bhnc", a, vv), a.sum(axis=-1, keepdims=True))
    return o_s + o_l @ w.T + bias


def attn_sparse_linear():
    rng = np.random.default_rng(204)
    cases = []

    def add(name, q, k, v, bm, w, b, bq, bk, fmap, scale=0.5, mask_elem="i8", want=None):
        y = sparse_linear_ref(q, k, v, bm, w, b, scale, bq, bk, fmap)
        if want is not None:
            y = want
        kw = dict(block_k=bk, block_q=bq, feature_map=fmap, scale=scale)
        cases.append(attn_case(name, "attn.sparse_linear", q, k, v, [bm, w, b], kw, y,
                               extra_elems=[mask_elem, "f32", "f32"]))

    dv = 3
    q, k, v = qkv_rand(rng, 1, 2, 2, 6, 6, 4, dv)
    # Query block 0: critical + marginal + negligible; block 1: no marginal block (Oˡ = 0);
    # block 2: no critical block (Oˢ = 0).
    bm = np.array([[1, 0, -1], [1, -1, 1], [0, -1, 0]], dtype=np.float64).reshape(1, 1, 3, 3)
    add("sparse_linear_softmax_three_classes", q, k, v, bm, f32_rand(rng, (dv, dv)),
        f32_rand(rng, (dv,)), 2, 2, "softmax")
    # elu1, GQA, per-head masks, partial edge blocks (N = 5, M = 5, blocks of 2 and 3).
    q, k, v = qkv_rand(rng, 1, 2, 1, 5, 5, 4, 2)
    bm = np.array([[[1, 0], [0, 1], [-1, 0]], [[0, 0], [1, 1], [1, -1]]], dtype=np.float64)
    add("sparse_linear_elu1_gqa_edge_blocks", q, k, v, bm.reshape(1, 2, 3, 2),
        f32_rand(rng, (2, 2)), f32_rand(rng, (2,)), 2, 3, "elu1", mask_elem="i32")
    # relu, with a query row whose features are all zero (zero denominator: Oˡ = 0).
    q, k, v = qkv_rand(rng, 2, 1, 1, 4, 4, 4, 2)
    q[0, 0, 1] = -np.abs(q[0, 0, 1])
    bm = np.array([[[[0, 1], [0, 0]]], [[[1, 0], [-1, 0]]]], dtype=np.float64)
    add("sparse_linear_relu_zero_denominator", q, k, v, bm, f32_rand(rng, (2, 2)),
        f32_rand(rng, (2,)), 2, 2, "relu")
    # techniques.md §2.5: every block critical and proj = 0 is exactly softmax attention.
    q, k, v = qkv_rand(rng, 1, 2, 1, 4, 6, 4, 3)
    want = sdpa_ref(q, k, v, 0.5, False)
    bm = np.ones((1, 1, 2, 3))
    got = sparse_linear_ref(q, k, v, bm, np.zeros((3, 3)), np.zeros(3), 0.5, 2, 2, "softmax")
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)
    add("sparse_linear_all_critical_zero_proj_equals_sdpa", q, k, v, bm, np.zeros((3, 3)),
        np.zeros(3), 2, 2, "softmax", want=want)
    # A block_mask value other than 1, 0, -1 is an input error.
    q, k, v = qkv_rand(rng, 1, 1, 1, 2, 2, 2, 2)
    bm = np.array([[[[2.0]]]])
    params = [((1, 1, 2, 2), "f32")] * 3 + [((1, 1, 1, 1), "i8"), ((2, 2), "f32"), ((2,), "f32")]
    kw = attrs(block_k=2, block_q=2, feature_map="elu1", scale=0.5)
    body = [f"%0 = attn.sparse_linear %arg0, %arg1, %arg2, %arg3, %arg4, %arg5 {kw} : tensor<1x1x2x2xf32>"]
    cases.append(error_case("sparse_linear_invalid_block_mask_value", params, [((1, 1, 2, 2), "f32")],
                            body, [q, k, v, bm, np.eye(2), np.zeros(2)],
                            ["block_mask values must be 1, 0 or -1", "found 2"]))
    return cases


# -- linear and sigmoid attention -------------------------------------------------------


def linear_attention_ref(q, k, v, fmap, causal, eps):
    h, n, m = q.shape[1], q.shape[2], k.shape[2]
    kk, vv = expand_kv(k, h), expand_kv(v, h)
    a = np.einsum("bhnd,bhmd->bhnm", phi_ref(q, fmap), phi_ref(kk, fmap))
    if causal:
        a = a * ~causal_hidden(n, m)
    return ratio_or_zero(np.einsum("bhnm,bhmc->bhnc", a, vv), a.sum(axis=-1, keepdims=True) + eps)


def attn_linear_attention():
    rng = np.random.default_rng(205)
    cases = []

    def add(name, q, k, v, fmap, causal, eps=None):
        y = linear_attention_ref(q, k, v, fmap, causal, 0.0 if eps is None else eps)
        kw = dict(causal=causal)
        if eps is not None:
            kw["epsilon"] = eps
        kw["feature_map"] = fmap
        cases.append(attn_case(name, "attn.linear_attention", q, k, v, [], kw, y))

    add("linear_attention_elu1", *qkv_rand(rng, 1, 2, 2, 3, 4, 4, 3), "elu1", False)
    add("linear_attention_relu_causal_eps", *qkv_rand(rng, 1, 2, 2, 4, 4, 4, 2), "relu", True,
        0.0009765625)
    add("linear_attention_softmax_causal_gqa_n_lt_m", *qkv_rand(rng, 1, 2, 1, 3, 5, 4, 2),
        "softmax", True)
    q, k, v = qkv_rand(rng, 1, 1, 1, 4, 2, 4, 3)
    y = linear_attention_ref(q, k, v, "elu1", True, 0.0)
    assert np.all(y[:, :, :2] == 0)
    add("linear_attention_elu1_causal_n_gt_m_empty_rows", q, k, v, "elu1", True)
    add("linear_attention_relu", *qkv_rand(rng, 2, 2, 1, 3, 3, 2, 2), "relu", False)
    return cases


def sigmoid_attention_ref(q, k, v, scale, bias, causal):
    h, n, m = q.shape[1], q.shape[2], k.shape[2]
    kk, vv = expand_kv(k, h), expand_kv(v, h)
    s = scale * np.einsum("bhnd,bhmd->bhnm", q, kk) + bias
    w = 1.0 / (1.0 + np.exp(-s))
    if causal:
        w = w * ~causal_hidden(n, m)
    return np.einsum("bhnm,bhmc->bhnc", w, vv)


def attn_sigmoid_attention():
    rng = np.random.default_rng(206)
    cases = []
    for name, dims, causal, scale, bias in [
        ("sigmoid_attention_basic", (1, 2, 2, 3, 4, 4, 3), False, 0.5, -1.25),
        ("sigmoid_attention_causal_gqa_n_lt_m", (1, 4, 2, 2, 4, 2, 2), True, 0.375, -1.0),
        ("sigmoid_attention_causal_n_gt_m", (2, 1, 1, 4, 3, 2, 2), True, 0.5, 0.0),
    ]:
        q, k, v = qkv_rand(rng, *dims)
        y = sigmoid_attention_ref(q, k, v, scale, bias, causal)
        kw = dict(bias=bias, causal=causal, scale=scale)
        cases.append(attn_case(name, "attn.sigmoid_attention", q, k, v, [], kw, y))
    return cases


# --------------------------------------------------------------------------------------
# rot: Hadamard matrices, built here from the definitions in rot/hadamard.rs' docs.
# --------------------------------------------------------------------------------------


def prime_power(q):
    if q < 2:
        return None
    p = next(d for d in range(2, q + 1) if q % d == 0)
    e, r = 0, q
    while r % p == 0:
        r //= p
        e += 1
    return (p, e) if r == 1 else None


def poly_mod(f, g, p):
    """Remainder of f by monic g over GF(p), coefficient lists lowest degree first."""
    f = list(f)
    while len(f) >= len(g):
        c = f[-1] % p
        if c:
            shift = len(f) - len(g)
            for i, gi in enumerate(g):
                f[shift + i] = (f[shift + i] - c * gi) % p
        f.pop()
    return f


class GF:
    """GF(p^e): element a = Σ c_i p^i is Σ c_i t^i mod the smallest-coded monic irreducible."""

    def __init__(self, q):
        self.p, self.e = prime_power(q)
        self.q = q
        p, e = self.p, self.e
        for code in range(q):
            low = self.digits(code)
            f = low + [1]
            reducible = False
            for deg in range(1, e // 2 + 1):
                for gcode in range(p ** deg):
                    g = [(gcode // p ** i) % p for i in range(deg)] + [1]
                    if not any(poly_mod(f, g, p)):
                        reducible = True
            if not reducible:
                self.mod = f
                break

    def digits(self, a):
        return [(a // self.p ** i) % self.p for i in range(self.e)]

    def undigits(self, d):
        return sum(c * self.p ** i for i, c in enumerate(d))

    def sub(self, a, b):
        return self.undigits([(x - y) % self.p for x, y in zip(self.digits(a), self.digits(b))])

    def mul(self, a, b):
        da, db = self.digits(a), self.digits(b)
        prod = [0] * (2 * self.e)
        for i, x in enumerate(da):
            for j, y in enumerate(db):
                prod[i + j] = (prod[i + j] + x * y) % self.p
        r = poly_mod(prod, self.mod, self.p)
        return self.undigits(r + [0] * (self.e - len(r)))

    def chi(self, x):
        if x == 0:
            return 0
        r = 1
        for _ in range((self.q - 1) // 2):
            r = self.mul(r, x)
        return 1 if r == 1 else -1


def jacobsthal(q):
    f = GF(q)
    return np.array([[f.chi(f.sub(a, b)) for b in range(q)] for a in range(q)], dtype=np.float64)


def paley_base(k):
    if k == 1:
        return np.ones((1, 1))
    q = k - 1
    if q % 4 == 3 and prime_power(q):
        s = np.zeros((k, k))
        s[0, 1:] = 1
        s[1:, 0] = -1
        s[1:, 1:] = jacobsthal(q)
        return np.eye(k) + s
    if k % 2 == 0 and (k // 2 - 1) % 4 == 1 and prime_power(k // 2 - 1):
        q = k // 2 - 1
        c = np.zeros((q + 1, q + 1))
        c[0, 1:] = 1
        c[1:, 0] = 1
        c[1:, 1:] = jacobsthal(q)
        return np.kron(c, [[1, 1], [1, -1]]) + np.kron(np.eye(q + 1), [[1, -1], [-1, -1]])
    return None


def hadamard(n):
    """Smallest K with n = K · 2^m and a construction for K; H_K ⊗ Sylvester(2^m)."""
    m = (n & -n).bit_length() - 1
    for mm in range(m, -1, -1):
        base = paley_base(n >> mm)
        if base is not None:
            syl = np.ones((1, 1))
            for _ in range(mm):
                syl = np.kron(syl, [[1, 1], [1, -1]])
            h = np.kron(base, syl)
            assert np.array_equal(h @ h.T, n * np.eye(n)), n
            return h
    raise ValueError(f"no Hadamard matrix of order {n}")


def rot_hadamard():
    rng = np.random.default_rng(301)
    cases = []
    for name, shape, axis in [
        ("hadamard_8_last_axis", (3, 8), -1),
        ("hadamard_12_axis0", (12, 3), 0),
        ("hadamard_16_middle_axis", (2, 16, 2), 1),
        ("hadamard_24_axis0", (24, 2), 0),
        ("hadamard_40_last_axis", (2, 40), 1),
        ("hadamard_20_paley1", (1, 20), -1),
        ("hadamard_28_paley1_gf27", (28, 2), 0),
        ("hadamard_36_paley2", (2, 36), 1),
        ("hadamard_1", (3, 1), 1),
    ]:
        x = f32_rand(rng, shape)
        n = shape[axis]
        h = hadamard(n)
        y = np.moveaxis(np.moveaxis(x, axis, -1) @ h / math.sqrt(n), -1, axis)
        y = round_to(y, "f32")
        body = [f"%0 = rot.hadamard %arg0 {attrs(axis=axis)} : {ty(shape, 'f32')}"]
        cases.append(case(name, [(shape, "f32")], [(shape, "f32")], body, [x], [y], F32_TOL))
    # Hadamard twice is the identity (H symmetric for Sylvester sizes).
    x = f32_rand(rng, (2, 8))
    body = ["%0 = rot.hadamard %arg0 {axis = 1 : i64} : tensor<2x8xf32>",
            "%1 = rot.hadamard %0 {axis = 1 : i64} : tensor<2x8xf32>"]
    h = hadamard(8) / math.sqrt(8)
    y = round_to(round_to(x @ h, "f32") @ h, "f32")
    cases.append(case("hadamard_8_twice", [((2, 8), "f32")], [((2, 8), "f32")], body, [x], [y], F32_TOL))
    return cases


def rot_rotate():
    rng = np.random.default_rng(302)
    cases = []
    for name, shape, axis in [
        ("rotate_last_axis", (3, 4), 1),
        ("rotate_axis0", (4, 2), 0),
        ("rotate_middle_axis_f16", (2, 3, 2), 1),
    ]:
        n = shape[axis]
        elem = "f16" if "f16" in name else "f32"
        qm, _ = np.linalg.qr(rng.standard_normal((n, n)))
        r = round_to(qm, elem)
        x = round_to(rng.standard_normal(shape), elem)
        y = round_to(np.moveaxis(np.moveaxis(x, axis, -1) @ r, -1, axis), elem)
        body = [f"%0 = rot.rotate %arg0, %arg1 {attrs(axis=axis)} : {ty(shape, elem)}"]
        tol = F16_TOL if elem == "f16" else F32_TOL
        cases.append(case(name, [(shape, elem), ((n, n), elem)], [(shape, elem)], body, [x, r], [y], tol))
    return cases


# --------------------------------------------------------------------------------------
# kernel
# --------------------------------------------------------------------------------------

ERF = np.vectorize(math.erf)


def epilogue_ref(x, name):
    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "gelu":
        return 0.5 * x * (1.0 + ERF(x / math.sqrt(2.0)))
    if name == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    raise ValueError(name)


def kernel_gemm():
    rng = np.random.default_rng(401)
    cases = []
    for name, ashape, n, tb, bias, epi in [
        ("gemm_none_bias", (3, 4), 5, False, True, "none"),
        ("gemm_relu_transpose_b", (4, 3), 2, True, True, "relu"),
        ("gemm_gelu_batched", (2, 3, 4), 3, False, True, "gelu"),
        ("gemm_gelu_tanh_no_bias", (3, 5), 4, True, False, "gelu_tanh"),
        ("gemm_silu_batched_transpose_b", (2, 2, 4), 3, True, True, "silu"),
    ]:
        kdim = ashape[-1]
        a = f32_rand(rng, ashape)
        b = f32_rand(rng, (n, kdim) if tb else (kdim, n))
        params = [(ashape, "f32"), (b.shape, "f32")]
        inputs = [a, b]
        acc = a @ (b.T if tb else b)
        if bias:
            bv = f32_rand(rng, (n,))
            params.append(((n,), "f32"))
            inputs.append(bv)
            acc = acc + bv
        y = round_to(epilogue_ref(acc, epi), "f32")
        args = ", ".join(f"%arg{i}" for i in range(len(params)))
        kw = attrs(epilogue=epi, transpose_b=tb)
        if name == "gemm_none_bias":
            kw = attrs(epilogue=epi, tile_m=2, tile_n=4, transpose_b=tb)
        body = [f"%0 = kernel.gemm {args} {kw} : {ty(y.shape, 'f32')}"]
        cases.append(case(name, params, [(y.shape, "f32")], body, inputs, [y], F32_TOL))
    return cases


def kernel_attention():
    rng = np.random.default_rng(402)
    cases = []
    q, k, v = qkv_rand(rng, 1, 2, 1, 3, 4, 4, 2)
    cases.append(attn_case("attention_gqa_causal", "kernel.attention", q, k, v, [],
                           dict(causal=True, scale=0.5), sdpa_ref(q, k, v, 0.5, True)))
    q, k, v = qkv_rand(rng, 2, 2, 2, 2, 3, 2, 3)
    mask = f32_rand(rng, (2, 1, 2, 3))
    mask[1, 0, 0, :] = -np.inf
    cases.append(attn_case("attention_float_mask_fully_masked_row", "kernel.attention", q, k, v,
                           [mask], dict(causal=False, scale=0.375),
                           sdpa_ref(q, k, v, 0.375, False, mask), extra_elems=["f32"]))
    q, k, v = qkv_rand(rng, 1, 1, 1, 3, 3, 4, 4)
    mask = np.array([1, 0, 1], dtype=np.float64).reshape(1, 1, 1, 3)
    cases.append(attn_case("attention_i1_mask", "kernel.attention", q, k, v, [mask],
                           dict(causal=False, scale=0.5), sdpa_ref(q, k, v, 0.5, False, mask, "i1"),
                           extra_elems=["i1"]))
    return cases


def kernel_add_layer_norm():
    rng = np.random.default_rng(403)
    cases = []
    for name, shape, eps in [
        ("add_layer_norm_2d", (3, 8), 0.0009765625),
        ("add_layer_norm_3d_offset", (2, 2, 5), 0.0),
    ]:
        x = f32_rand(rng, shape, 2.0)
        if name.endswith("offset"):
            x = round_to(x + 10.0, "f32")
        r = f32_rand(rng, shape)
        g = f32_rand(rng, shape[-1:])
        b = f32_rand(rng, shape[-1:])
        s = x + r
        mean = s.mean(axis=-1, keepdims=True)
        var = ((s - mean) ** 2).mean(axis=-1, keepdims=True)
        y = round_to((s - mean) / np.sqrt(var + eps) * g + b, "f32")
        params = [(shape, "f32"), (shape, "f32"), (shape[-1:], "f32"), (shape[-1:], "f32")]
        body = ["%0 = kernel.add_layer_norm %arg0, %arg1, %arg2, %arg3 "
                f"{attrs(epsilon=eps)} : {ty(shape, 'f32')}"]
        cases.append(case(name, params, [(shape, "f32")], body, [x, r, g, b], [y], F32_TOL))
    return cases


GENERATORS = {
    "lowbit_quantize": lowbit_quantize,
    "lowbit_dequantize": lowbit_dequantize,
    "lowbit_qmatmul": lowbit_qmatmul,
    "lowbit_pack": lowbit_pack,
    "lowbit_unpack": lowbit_unpack,
    "lowbit_codebook": lowbit_codebook,
    "attn_sdpa": attn_sdpa,
    "attn_quantized_sdpa": attn_quantized_sdpa,
    "attn_block_sparse_sdpa": attn_block_sparse_sdpa,
    "attn_sparse_linear": attn_sparse_linear,
    "attn_linear_attention": attn_linear_attention,
    "attn_sigmoid_attention": attn_sigmoid_attention,
    "rot_hadamard": rot_hadamard,
    "rot_rotate": rot_rotate,
    "kernel_gemm": kernel_gemm,
    "kernel_attention": kernel_attention,
    "kernel_add_layer_norm": kernel_add_layer_norm,
}


def self_checks():
    """Spot checks of the independent rounding helpers against known values."""
    assert round_to(0.3, "f8E4M3FN") == 0.3125
    assert round_to(17.0, "f8E4M3FN") == 16.0 and round_to(19.0, "f8E4M3FN") == 20.0
    assert round_to(2.0 ** -11, "f8E4M3FN") == 0.0 and round_to(2.0 ** -9, "f8E4M3FN") == 2.0 ** -9
    assert round_to(1000.0, "f8E4M3FN") == 448.0 and round_to(-1e9, "f8E4M3FN") == -448.0
    assert round_to(0.1, "f8E5M2") == 0.09375 and round_to(1e6, "f8E5M2") == 57344.0
    for x, want in [(0.25, 0.0), (0.3, 0.5), (1.25, 1.0), (1.75, 2.0), (2.5, 2.0), (5.0, 4.0), (9.0, 6.0)]:
        assert round_to(x, "f4E2M1FN") == want, x
    assert round_to(2.5, "i8") == 2.0 and round_to(-2.5, "i8") == -2.0 and round_to(200, "i8") == 127
    assert pack_ref(np.array([-1.0, 2.0, 7.0]), "i4").tolist() == [0x2F, 0x07]
    assert unpack_ref(np.array([0x2F, 0x07], dtype=np.float64), 3, "i4").tolist() == [-1, 2, 7]
    # Paley I, q = 3 (the example in rot/hadamard.rs).
    assert paley_base(4).tolist() == [[1, 1, 1, 1], [-1, 1, -1, 1], [-1, 1, 1, -1], [-1, -1, 1, 1]]
    for n in (12, 20, 28, 36, 40, 52, 60):
        hadamard(n)


def main():
    self_checks()
    for name, gen in GENERATORS.items():
        write(name, gen())


if __name__ == "__main__":
    main()
