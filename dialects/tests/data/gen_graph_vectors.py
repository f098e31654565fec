#!/usr/bin/env python3
"""Writes the `graph` dialect's interpreter test vectors, independently of the Rust code.

    python3 dialects/tests/data/gen_graph_vectors.py

regenerates `dialects/tests/data/interp/graph_<op>.json`, one file per op of
`dialects/src/graph/ops.rs`, byte for byte the same on every run (seeded generators, no
dict-order or float-formatting dependence). Needs numpy only.

Each file is a JSON list of cases:

    {"name": ..., "mlir": <a module with one function>,
     "inputs": [[flat row-major values], ...],          # one per parameter
     "weights": {"w": {"data": [...]}},                  # optional; "shape"/"elem" override
     "outputs": [[...], ...], "atol": ..., "rtol": ...}  # or "error": [substrings]

Shapes and element types come from the function signature (and the `graph.weight` ops).
Non-finite values are the strings "nan", "inf" and "-inf" (JSON has no spelling for them).

The reference follows the interpreter's contract, not its code: inputs are values of their
element type (f32 inputs rounded with np.float32, f16 with np.float16), each op computes in
float64, and every op result is rounded once to its element type, saturating to the largest
finite value for floats and rounding half to even then clamping for integers.
"""

import json
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "interp")

INT_RANGE = {
    "i64": (-(2**63), 2**63 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "ui16": (0, 2**16 - 1),
    "i8": (-128, 127),
    "ui8": (0, 255),
    "i4": (-8, 7),
    "ui4": (0, 15),
}
F32_MAX = float(np.finfo(np.float32).max)
F16_MAX = 65504.0
BF16_MAX = float.fromhex("0x1.fep127")
LOWEST = {"f32": -F32_MAX, "f16": -F16_MAX, "bf16": -BF16_MAX}

F32_TOL = dict(atol=1e-6, rtol=1e-6)
F16_TOL = dict(atol=1e-3, rtol=2e-3)
EXACT = dict(atol=0.0, rtol=0.0)


def tol_for(dt):
    if dt in INT_RANGE or dt == "i1":
        return EXACT
    return F16_TOL if dt in ("f16", "bf16") else F32_TOL


def _bf16(x):
    """Round float64 to bfloat16, nearest even (normal numbers and zero only)."""
    out = np.empty_like(x)
    for i, v in np.ndenumerate(x):
        if not math.isfinite(v) or v == 0.0:
            out[i] = v
            continue
        m, e = math.frexp(v)  # v = m * 2^e, 0.5 <= |m| < 1
        assert e - 1 >= -126, "bf16 subnormals are not used in these vectors"
        out[i] = float(np.rint(m * 256.0)) / 256.0 * 2.0**e  # 8 significant bits
        if abs(out[i]) > BF16_MAX:
            out[i] = math.copysign(BF16_MAX, v)
    return out


def rnd(x, dt):
    """Rounds to the element type `dt`, as the interpreter stores values."""
    x = np.asarray(x, dtype=np.float64)
    if dt == "f64":
        return x.copy()
    if dt in ("f32", "f16"):
        npt, mx = (np.float32, F32_MAX) if dt == "f32" else (np.float16, F16_MAX)
        with np.errstate(over="ignore"):
            y = x.astype(npt).astype(np.float64)
        sat = np.isinf(y) & np.isfinite(x)
        return np.where(sat, np.copysign(mx, x), y)
    if dt == "bf16":
        return _bf16(x)
    if dt == "i1":
        return (x != 0).astype(np.float64)
    lo, hi = INT_RANGE[dt]
    y = np.clip(np.rint(np.nan_to_num(x, nan=0.0)), lo, hi)
    return np.where(np.isnan(x), 0.0, y)


def cast(x, dt):
    """`graph.cast`: float to integer truncates toward zero, then saturates."""
    x = np.asarray(x, dtype=np.float64)
    if dt in INT_RANGE:
        return rnd(np.trunc(np.nan_to_num(x, nan=0.0, posinf=np.inf, neginf=-np.inf)), dt)
    return rnd(x, dt)


# ----------------------------------------------------------------------------- text


class Raw(str):
    """An attribute value written as is."""


def fmt_attr(v):
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v} : i64"
    if isinstance(v, float):
        return f"{v!r} : f32"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "array<i64" + (": " + ", ".join(str(int(i)) for i in v) if v else "") + ">"
    raise TypeError(v)


def attrs_str(attrs):
    if not attrs:
        return ""
    return " {" + ", ".join(f"{k} = {fmt_attr(v)}" for k, v in sorted(attrs.items())) + "}"


def ty(shape, dt):
    return "tensor<" + "".join(f"{d}x" for d in shape) + dt + ">"


def func(params, lines, rets):
    """A module of one function `@f`. `params` and `rets` are tensor type strings; `lines`
    are op lines; the function returns `rets` from the values named in `ret_vals`."""
    ps = ", ".join(f"%arg{i}: {t}" for i, t in enumerate(params))
    res = rets[0][1] if len(rets) == 1 else "(" + ", ".join(t for _, t in rets) + ")"
    body = "".join(f"  {line}\n" for line in lines)
    return f"func @f({ps}) -> {res} {{\n{body}  return {', '.join(v for v, _ in rets)}\n}}\n"


def single(op, params, results, attrs=None):
    """A function applying one `graph.<op>` to all its parameters."""
    args = ", ".join(f"%arg{i}" for i in range(len(params)))
    args = " " + args if args else ""
    if len(results) == 1:
        lhs, rets = "%0", [("%0", results[0])]
    else:
        lhs = f"%0:{len(results)}"
        rets = [(f"%0#{i}", t) for i, t in enumerate(results)]
    line = f"{lhs} = graph.{op}{args}{attrs_str(attrs)} : {', '.join(results)}"
    return func(params, [line], rets)


def jval(v, integer):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if integer:
        return int(v)
    return v


def flat(a, dt=None):
    integer = dt is not None and (dt in INT_RANGE or dt == "i1")
    return [jval(v, integer) for v in np.asarray(a, dtype=np.float64).ravel()]


class File:
    def __init__(self, op):
        self.op = op
        self.cases = []

    def add(self, name, mlir, inputs, outputs, tol, weights=None):
        """`inputs`/`outputs` are lists of (array, dtype)."""
        c = {"name": f"{self.op}_{name}", "mlir": mlir, "inputs": [flat(a, d) for a, d in inputs]}
        if weights:
            c["weights"] = weights
        c["outputs"] = [flat(a, d) for a, d in outputs]
        c["atol"], c["rtol"] = tol["atol"], tol["rtol"]
        self.cases.append(c)

    def error(self, name, mlir, inputs, substrings, weights=None):
        c = {"name": f"{self.op}_{name}", "mlir": mlir, "inputs": [flat(a, d) for a, d in inputs]}
        if weights is not None:
            c["weights"] = weights
        c["error"] = substrings
        self.cases.append(c)

    def write(self):
        text = "[\n" + ",\n".join(json.dumps(c, separators=(", ", ": "), allow_nan=False) for c in self.cases) + "\n]\n"
        with open(os.path.join(OUT, f"graph_{self.op}.json"), "w") as f:
            f.write(text)


def seeded(op):
    # A stable per-op seed (Python's str hash is randomized, so derive it by hand).
    return np.random.default_rng(sum((i + 1) * ord(c) for i, c in enumerate(op)))


def randn(rng, shape, dt, scale=1.0):
    return rnd(rng.standard_normal(shape) * scale, dt)


def randi(rng, shape, dt, lo=-9, hi=10):
    return rnd(rng.integers(lo, hi, size=shape).astype(np.float64), dt)


# ----------------------------------------------------------------------------- generic shapes


def elementwise_unary(f, op, fn, cases, attrs=None):
    """`cases`: list of (name, x array, dtype)."""
    for name, x, dt in cases:
        y = rnd(fn(x), dt)
        f.add(name, single(op, [ty(x.shape, dt)], [ty(x.shape, dt)], attrs), [(x, dt)], [(y, dt)], tol_for(dt))


def binary_file(op, fn, int_cases=()):
    f = File(op)
    rng = seeded(op)
    shapes = [("same_f32", (2, 3), (2, 3), "f32"), ("broadcast_f32", (2, 1, 3), (4, 1), "f32"),
              ("scalar_lhs_f32", (), (3,), "f32"), ("rank3_vs_row_f16", (2, 2, 4), (4,), "f16")]
    for name, sa, sb, dt in shapes:
        a, b = randn(rng, sa, dt), randn(rng, sb, dt)
        if op == "pow":
            a = rnd(np.abs(a) + 0.25, dt)
        if op == "div":
            b = rnd(np.where(np.abs(b) < 0.1, 0.5, b), dt)
        out_shape = np.broadcast_shapes(sa, sb)
        y = rnd(fn(a, b, dt), dt)
        f.add(name, single(op, [ty(sa, dt), ty(sb, dt)], [ty(out_shape, dt)]), [(a, dt), (b, dt)], [(y, dt)], tol_for(dt))
    for name, a, b, dt in int_cases:
        out_shape = np.broadcast_shapes(a.shape, b.shape)
        y = rnd(fn(a, b, dt), dt)
        f.add(name, single(op, [ty(a.shape, dt), ty(b.shape, dt)], [ty(out_shape, dt)]), [(a, dt), (b, dt)], [(y, dt)], EXACT)
    return f


# ----------------------------------------------------------------------------- ops


def gen_weight():
    f = File("weight")
    rng = seeded("weight")
    w = randn(rng, (2, 3), "f32")
    mlir = func([], ['%0 = graph.weight {name = "w"} : tensor<2x3xf32>'], [("%0", "tensor<2x3xf32>")])
    f.add("alone_f32", mlir, [], [(w, "f32")], F32_TOL, weights={"w": {"data": flat(w)}})
    # Used by another op: x · w, where w is [3, 4].
    x, w = randn(rng, (2, 3), "f32"), randn(rng, (3, 4), "f32")
    mlir = func(["tensor<2x3xf32>"], ['%0 = graph.weight {name = "layers.0.w"} : tensor<3x4xf32>',
                                      "%1 = graph.matmul %arg0, %0 : tensor<2x4xf32>"], [("%1", "tensor<2x4xf32>")])
    f.add("into_matmul_f32", mlir, [(x, "f32")], [(rnd(x @ w, "f32"), "f32")], F32_TOL,
          weights={"layers.0.w": {"data": flat(w)}})
    w16 = randn(rng, (4,), "f16")
    mlir = func([], ['%0 = graph.weight {name = "h"} : tensor<4xf16>'], [("%0", "tensor<4xf16>")])
    f.add("alone_f16", mlir, [], [(w16, "f16")], F16_TOL, weights={"h": {"data": flat(w16)}})
    wi = randi(rng, (5,), "i8", -128, 128)
    mlir = func([], ['%0 = graph.weight {name = "q"} : tensor<5xi8>'], [("%0", "tensor<5xi8>")])
    f.add("alone_i8", mlir, [], [(wi, "i8")], EXACT, weights={"q": {"data": flat(wi, "i8")}})
    mlir = func([], ['%0 = graph.weight {name = "w"} : tensor<2x3xf32>'], [("%0", "tensor<2x3xf32>")])
    f.error("missing", mlir, [], ["weight 'w' has no data"], weights={})
    f.error("shape_mismatch", mlir, [], ["tensor<3x2xf32>", "tensor<2x3xf32>"],
            weights={"w": {"data": flat(np.zeros(6)), "shape": [3, 2]}})
    f.error("elem_mismatch", mlir, [], ["tensor<2x3xf16>", "tensor<2x3xf32>"],
            weights={"w": {"data": flat(np.zeros(6)), "elem": "f16"}})
    return f


def gen_constant():
    f = File("constant")
    mlir = func([], ["%0 = graph.constant {value = dense<[[1.5, -2.0], [0.25, 3.0]]> : tensor<2x2xf32>} : tensor<2x2xf32>"],
                [("%0", "tensor<2x2xf32>")])
    f.add("dense_f32", mlir, [], [(np.array([1.5, -2.0, 0.25, 3.0]), "f32")], F32_TOL)
    mlir = func([], ["%0 = graph.constant {value = dense<7> : tensor<3xi32>} : tensor<3xi32>"], [("%0", "tensor<3xi32>")])
    f.add("splat_i32", mlir, [], [(np.array([7, 7, 7]), "i32")], EXACT)
    mlir = func([], ["%0 = graph.constant {value = dense<[0.1, 0.2, 0.3]> : tensor<3xf16>} : tensor<3xf16>"],
                [("%0", "tensor<3xf16>")])
    f.add("dense_f16_rounded", mlir, [], [(rnd([0.1, 0.2, 0.3], "f16"), "f16")], EXACT)
    mlir = func([], ["%0 = graph.constant {value = dense<2.5> : tensor<f32>} : tensor<f32>"], [("%0", "tensor<f32>")])
    f.add("scalar_f32", mlir, [], [(np.array(2.5), "f32")], EXACT)
    x = rnd([0.5, -1.25, 3.0], "f32")
    mlir = func(["tensor<3xf32>"], ["%0 = graph.constant {value = dense<[1.0, 2.0, -4.0]> : tensor<3xf32>} : tensor<3xf32>",
                                    "%1 = graph.add %arg0, %0 : tensor<3xf32>"], [("%1", "tensor<3xf32>")])
    f.add("into_add_f32", mlir, [(x, "f32")], [(rnd(x + np.array([1.0, 2.0, -4.0]), "f32"), "f32")], F32_TOL)
    mlir = func([], ["%0 = graph.constant {value = dense_resource<__elided__> : tensor<4x8xf32>} : tensor<4x8xf32>"],
                [("%0", "tensor<4x8xf32>")])
    f.error("elided", mlir, [], ["constant is elided; its values are not available"])
    return f


def gen_matmul():
    f = File("matmul")
    rng = seeded("matmul")
    for name, sa, sb, dt in [("2d_f32", (3, 4), (4, 5), "f32"), ("rank1_lhs_f32", (4,), (4, 3), "f32"),
                             ("rank1_rhs_f32", (3, 4), (4,), "f32"), ("rank1_both_f32", (5,), (5,), "f32"),
                             ("batched_broadcast_f32", (2, 1, 3, 4), (3, 4, 2), "f32"),
                             ("rank1_lhs_batched_rhs_f32", (4,), (2, 4, 3), "f32"),
                             ("batched_lhs_rank1_rhs_f32", (2, 3, 4), (4,), "f32"),
                             ("2d_f16", (2, 3), (3, 2), "f16")]:
        a, b = randn(rng, sa, dt), randn(rng, sb, dt)
        y = rnd(np.matmul(a, b), dt)
        f.add(name, single("matmul", [ty(sa, dt), ty(sb, dt)], [ty(y.shape, dt)]), [(a, dt), (b, dt)], [(y, dt)], tol_for(dt))
    for dt in ["i32", "i64"]:
        a, b = randi(rng, (2, 3), dt), randi(rng, (3, 2), dt)
        y = rnd(a @ b, dt)
        f.add(f"2d_{dt}", single("matmul", [ty((2, 3), dt), ty((3, 2), dt)], [ty((2, 2), dt)]), [(a, dt), (b, dt)], [(y, dt)], EXACT)
    return f


def gen_linear():
    f = File("linear")
    rng = seeded("linear")
    for name, sx, out, bias, dt in [("bias_rank3_f32", (2, 3, 4), 5, True, "f32"), ("no_bias_f32", (3, 4), 2, False, "f32"),
                                    ("rank1_x_bias_f32", (4,), 3, True, "f32"), ("bias_f16", (2, 4), 3, True, "f16")]:
        x, w = randn(rng, sx, dt), randn(rng, (out, sx[-1]), dt)
        params, inputs = [ty(sx, dt), ty(w.shape, dt)], [(x, dt), (w, dt)]
        y = x @ w.T
        if bias:
            b = randn(rng, (out,), dt)
            params.append(ty(b.shape, dt))
            inputs.append((b, dt))
            y = y + b
        y = rnd(y, dt)
        f.add(name, single("linear", params, [ty(y.shape, dt)]), inputs, [(y, dt)], tol_for(dt))
    return f


def int_pair(rng, dt, sa, sb, lo=-9, hi=10):
    return randi(rng, sa, dt, lo, hi), randi(rng, sb, dt, lo, hi)


def gen_binaries():
    files = []
    rng = np.random.default_rng(7)
    a8, b8 = np.array([100.0, -100.0, 50.0, -3.0]), np.array([100.0, -100.0, 20.0, 4.0])
    files.append(binary_file("add", lambda a, b, dt: a + b, [
        ("i32_broadcast", *int_pair(rng, "i32", (2, 3), (3,)), "i32"),
        ("i8_saturates", a8, b8, "i8")]))
    files.append(binary_file("sub", lambda a, b, dt: a - b, [
        ("i64", *int_pair(rng, "i64", (2, 3), (2, 3)), "i64"),
        ("ui8_clamps_at_zero", np.array([5.0, 3.0, 200.0]), np.array([7.0, 3.0, 1.0]), "ui8")]))
    files.append(binary_file("mul", lambda a, b, dt: a * b, [
        ("i32", *int_pair(rng, "i32", (4, 1), (1, 3)), "i32")]))

    def div(a, b, dt):
        if dt in INT_RANGE:
            return np.trunc(a / b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return a / b

    f = binary_file("div", div, [
        ("i32_truncates", np.array([7.0, -7.0, 7.0, -7.0, 0.0, 9.0]), np.array([2.0, 2.0, -2.0, -2.0, 3.0, 3.0]), "i32")])
    a, b = np.array([1.0, -1.0, 0.0, 2.5]), np.array([0.0, 0.0, 0.0, -0.5])
    f.add("by_zero_f32", single("div", [ty((4,), "f32")] * 2, [ty((4,), "f32")]), [(a, "f32"), (b, "f32")],
          [(div(a, b, "f32"), "f32")], F32_TOL)
    f.error("by_zero_i32", single("div", [ty((3,), "i32")] * 2, [ty((3,), "i32")]),
            [(np.array([4.0, 5.0, 6.0]), "i32"), (np.array([2.0, 0.0, 1.0]), "i32")], ["division by zero"])
    files.append(f)

    def pw(a, b, dt):
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.power(a, b)
        return np.trunc(r) if dt in INT_RANGE else r

    f = binary_file("pow", pw, [
        ("i32_nonneg_exp", np.array([2.0, -3.0, 5.0, 0.0, 7.0, -1.0]), np.array([10.0, 3.0, 0.0, 2.0, 1.0, 5.0]), "i32"),
        # Integer pow truncates toward zero, as C's (int)pow(x, y): 2^-1 = 0.
        ("i32_negative_exp_truncates", np.array([2.0, 1.0, -1.0, 4.0]), np.array([-1.0, -3.0, -3.0, -2.0]), "i32")])
    a = rnd([-2.0, -2.0, 0.0, 0.0, 4.0, -8.0], "f32")
    b = rnd([3.0, 0.5, 0.0, -1.0, -0.5, 1.0 / 3.0], "f32")
    f.add("edge_f32", single("pow", [ty((6,), "f32")] * 2, [ty((6,), "f32")]), [(a, "f32"), (b, "f32")],
          [(rnd(pw(a, b, "f32"), "f32"), "f32")], F32_TOL)
    # The exponent may have another element type; the result has the base's (integer
    # results truncate, as ONNX Runtime's Pow on int32 base and float exponent).
    a, b = np.array([1.0, 2.0, 3.0, -2.0]), rnd([4.0, 0.5, -1.0, 3.0], "f32")
    f.add("i32_base_f32_exp", single("pow", [ty((4,), "i32"), ty((4,), "f32")], [ty((4,), "i32")]),
          [(a, "i32"), (b, "f32")], [(rnd(np.trunc(np.power(a, b)), "i32"), "i32")], EXACT)
    a, b = rnd([1.5, -2.0, 0.25], "f32"), np.array([2.0, 3.0, -2.0])
    f.add("f32_base_i64_exp", single("pow", [ty((3,), "f32"), ty((3,), "i64")], [ty((3,), "f32")]),
          [(a, "f32"), (b, "i64")], [(rnd(np.power(a, b), "f32"), "f32")], F32_TOL)
    f.error("zero_negative_exp_i32", single("pow", [ty((2,), "i32")] * 2, [ty((2,), "i32")]),
            [(np.array([0.0, 2.0]), "i32"), (np.array([-1.0, 2.0]), "i32")], ["negative power"])
    files.append(f)
    return files


def gen_max_min():
    files = []
    nan, inf = np.nan, np.inf
    for op, fn in [("maximum", np.maximum), ("minimum", np.minimum)]:
        f = binary_file(op, lambda a, b, dt, fn=fn: fn(a, b), [
            ("i8_broadcast", *int_pair(np.random.default_rng(11), "i8", (4, 1), (1, 3), -128, 128), "i8"),
            ("ui16", np.array([0.0, 65535.0, 7.0]), np.array([65535.0, 0.0, 7.0]), "ui16"),
            ("i64", np.array([-(2.0**40), 3.0, -1.0]), np.array([5.0, 2.0**40, -1.0]), "i64")])
        # numpy maximum/minimum propagate NaN from either side.
        a = np.array([nan, 1.0, nan, -inf, inf, -0.5])
        b = np.array([1.0, nan, nan, 2.0, 3.0, -inf])
        f.add("nan_inf_f32", single(op, [ty((6,), "f32")] * 2, [ty((6,), "f32")]), [(a, "f32"), (b, "f32")],
              [(fn(a, b), "f32")], F32_TOL)
        files.append(f)
    return files


def gen_compares():
    files = []
    nan, inf = np.nan, np.inf
    rng = np.random.default_rng(13)
    for op, fn in [("equal", np.equal), ("less", np.less), ("less_equal", np.less_equal),
                   ("greater", np.greater), ("greater_equal", np.greater_equal)]:
        f = File(op)
        # Small integers make ties likely, so equality is exercised on every type.
        cases = [("same_f32", (2, 3), (2, 3), "f32"), ("broadcast_f16", (2, 1, 3), (4, 1), "f16"),
                 ("scalar_lhs_i32", (), (5,), "i32"), ("ui8", (2, 4), (4,), "ui8"), ("i1", (2, 2), (2, 1), "i1")]
        for name, sa, sb, dt in cases:
            lo, hi = (0, 2) if dt == "i1" else ((0, 4) if dt == "ui8" else (-3, 4))
            a, b = rnd(rng.integers(lo, hi, size=sa), dt), rnd(rng.integers(lo, hi, size=sb), dt)
            if dt in ("f32", "f16"):
                a = rnd(a * 0.5, dt)
                b = rnd(b * 0.5, dt)
            y = fn(a, b).astype(np.float64)
            f.add(name, single(op, [ty(sa, dt), ty(sb, dt)], [ty(y.shape, "i1")]), [(a, dt), (b, dt)], [(y, "i1")], EXACT)
        # IEEE: NaN compares false (equal too), -0 equals 0, infinities order.
        a = np.array([nan, nan, 1.0, -0.0, -inf, inf, 2.0])
        b = np.array([nan, 1.0, nan, 0.0, -inf, 1.0, 2.0])
        with np.errstate(invalid="ignore"):
            y = fn(a, b).astype(np.float64)
        f.add("ieee_f32", single(op, [ty((7,), "f32")] * 2, [ty((7,), "i1")]), [(a, "f32"), (b, "f32")], [(y, "i1")], EXACT)
        files.append(f)
    return files


def gen_unaries():
    files = []
    erf = np.vectorize(math.erf, otypes=[np.float64])

    def gelu_erf(x):
        with np.errstate(invalid="ignore"):  # gelu(-inf) = -inf * 0 = NaN, by the formula
            return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))

    def gelu_tanh(x):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))

    def sigmoid(x):
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-x))

    def log(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    def sqrt(x):
        with np.errstate(invalid="ignore"):
            return np.sqrt(x)

    def rsqrt(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 / np.sqrt(x)

    def exp(x):
        with np.errstate(over="ignore"):
            return np.exp(x)

    specs = [
        ("neg", lambda x: -x, "signed", [("i32", randi), ("ui8", None)]),
        ("exp", exp, "any", [("edge", [-np.inf, -100.0, 0.0, 1.0, 88.0, 89.0, 100.0, np.nan])]),
        ("log", log, "positive", [("edge", [0.0, -1.0, 1.0, np.inf, 1e-30, np.nan])]),
        ("sqrt", sqrt, "positive", [("edge", [0.0, -0.0, -4.0, 4.0, np.inf, 2.0])]),
        ("rsqrt", rsqrt, "positive", [("edge", [0.0, 4.0, np.inf, -1.0, 0.25])]),
        ("tanh", np.tanh, "any", [("edge", [-np.inf, -20.0, -0.5, 0.0, 1e-8, 20.0, np.inf])]),
        ("erf", erf, "any", [("edge", [-np.inf, -6.0, -1e-9, 0.0, 0.5, 3.0, np.inf])]),
        ("relu", lambda x: np.where(x < 0, 0.0, x), "any", [("i32", randi), ("edge", [-np.inf, -0.0, 0.0, np.inf, np.nan])]),
        ("silu", lambda x: x * sigmoid(x), "any", [("edge", [-1000.0, -20.0, 0.0, 20.0, 1000.0])]),
        ("sigmoid", sigmoid, "any", [("edge", [-np.inf, -1000.0, -30.0, 0.0, 30.0, np.inf])]),
    ]
    for op, fn, domain, extra in specs:
        f = File(op)
        rng = seeded(op)
        cases = []
        for name, shape, dt in [("f32", (2, 3, 4), "f32"), ("scalar_f32", (), "f32"), ("f16", (3, 5), "f16")]:
            scale = 4.0 if op in ("tanh", "erf", "sigmoid", "silu") else 2.0
            x = rng.standard_normal(shape) * scale
            if domain == "positive":
                x = np.abs(x) + 0.01
            cases.append((name, rnd(x, dt), dt))
        for name, spec in extra:
            if name in INT_RANGE:
                x = randi(rng, (2, 4), name) if spec is not None else rnd([0.0, 3.0, 200.0], name)
                cases.append((name, x, name))
            else:
                cases.append((f"{name}_f32", rnd(np.array(spec, dtype=np.float64), "f32"), "f32"))
        elementwise_unary(f, op, fn, cases)
        files.append(f)

    f = File("gelu")
    rng = seeded("gelu")
    x = rnd(rng.standard_normal((4, 6)) * 3.0, "f32")
    edge = rnd([-np.inf, -10.0, -1.0, 0.0, 1.0, 10.0, np.inf], "f32")
    elementwise_unary(f, "gelu", gelu_erf, [("default_f32", x, "f32"), ("default_edge_f32", edge, "f32")])
    elementwise_unary(f, "gelu", gelu_erf, [("none_f32", x, "f32")], {"approximate": "none"})
    elementwise_unary(f, "gelu", gelu_tanh, [("tanh_f32", x, "f32")], {"approximate": "tanh"})
    x16 = rnd(rng.standard_normal((8,)) * 3.0, "f16")
    elementwise_unary(f, "gelu", gelu_erf, [("default_f16", x16, "f16")])
    elementwise_unary(f, "gelu", gelu_tanh, [("tanh_f16", x16, "f16")], {"approximate": "tanh"})
    files.append(f)
    return files


def softmax_ref(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = np.exp(x - m)
        return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax_ref(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def gen_softmaxes():
    files = []
    for op, ref in [("softmax", softmax_ref), ("log_softmax", log_softmax_ref)]:
        f = File(op)
        rng = seeded(op)
        for name, shape, axis, dt in [("axis1_f32", (2, 3), 1, "f32"), ("axis_neg1_f32", (2, 3, 4), -1, "f32"),
                                      ("axis0_f32", (3, 4), 0, "f32"), ("axis_neg2_f32", (2, 3, 4), -2, "f32"),
                                      ("axis1_f16", (2, 5), 1, "f16")]:
            x = randn(rng, shape, dt, 2.0)
            f.add(name, single(op, [ty(shape, dt)], [ty(shape, dt)], {"axis": axis}), [(x, dt)],
                  [(rnd(ref(x, axis), dt), dt)], tol_for(dt))
        x = rnd([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]], "f32")
        f.add("large_f32", single(op, [ty((2, 3), "f32")], [ty((2, 3), "f32")], {"axis": -1}), [(x, "f32")],
              [(rnd(ref(x, -1), "f32"), "f32")], F32_TOL)
        # -inf entries (masked keys); the last row is fully masked, which gives NaN.
        x = np.array([[0.5, -np.inf, 1.5, -np.inf], [-np.inf, 2.0, -np.inf, -np.inf], [-np.inf] * 4])
        x = rnd(x, "f32")
        f.add("neg_inf_f32", single(op, [ty((3, 4), "f32")], [ty((3, 4), "f32")], {"axis": 1}), [(x, "f32")],
              [(rnd(ref(x, 1), "f32"), "f32")], F32_TOL)
        files.append(f)
    # A chain: the intermediate rounds to f32 before the softmax reads it.
    f = files[0]
    rng = np.random.default_rng(11)
    q, k = randn(rng, (3, 4), "f32"), randn(rng, (4, 5), "f32")
    s = rnd(q @ k, "f32")
    mlir = func([ty((3, 4), "f32"), ty((4, 5), "f32")],
                ["%0 = graph.matmul %arg0, %arg1 : tensor<3x5xf32>", "%1 = graph.softmax %0 {axis = -1 : i64} : tensor<3x5xf32>"],
                [("%1", "tensor<3x5xf32>"), ("%0", "tensor<3x5xf32>")])
    f.add("after_matmul_two_results_f32", mlir, [(q, "f32"), (k, "f32")],
          [(rnd(softmax_ref(s, -1), "f32"), "f32"), (s, "f32")], F32_TOL)
    return files


def gen_norms():
    files = []
    f = File("layer_norm")
    rng = seeded("layer_norm")

    def ln(x, axis, eps, g=None, b=None):
        axes = tuple(range(axis % x.ndim, x.ndim))
        m = x.mean(axis=axes, keepdims=True)
        v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
        y = (x - m) / np.sqrt(v + eps)
        if g is not None:
            y = y * g
        if b is not None:
            y = y + b
        return y

    for name, shape, axis, aff, eps, dt in [("gamma_beta_last_f32", (2, 3, 4), -1, 2, 1e-5, "f32"),
                                            ("gamma_beta_axis1_f32", (2, 3, 4), 1, 2, 1e-5, "f32"),
                                            ("plain_f32", (3, 5), -1, 0, 1e-5, "f32"),
                                            ("gamma_only_f32", (4, 6), 1, 1, 0.0009765625, "f32"),
                                            ("whole_tensor_axis0_f32", (2, 3), 0, 0, 1e-5, "f32"),
                                            ("gamma_beta_f16", (2, 8), -1, 2, 1e-5, "f16")]:
        x = randn(rng, shape, dt, 3.0)
        x = rnd(x + 1.5, dt)
        nshape = shape[axis % len(shape):]
        g = randn(rng, nshape, dt) if aff >= 1 else None
        b = randn(rng, nshape, dt) if aff >= 2 else None
        params = [ty(shape, dt)] + [ty(nshape, dt)] * aff
        inputs = [(x, dt)] + [(t, dt) for t in (g, b)[:aff]]
        y = rnd(ln(x, axis, eps, g, b), dt)
        f.add(name, single("layer_norm", params, [ty(shape, dt)], {"axis": axis, "epsilon": eps}), inputs, [(y, dt)], tol_for(dt))
    files.append(f)

    f = File("rms_norm")
    rng = seeded("rms_norm")

    def rms(x, axis, eps, g=None):
        axes = tuple(range(axis % x.ndim, x.ndim))
        y = x / np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)
        return y * g if g is not None else y

    for name, shape, axis, has_g, eps, dt in [("gamma_last_f32", (2, 3, 4), -1, True, 1e-6, "f32"),
                                              ("plain_f32", (3, 5), 1, False, 1e-5, "f32"),
                                              ("gamma_axis1_f32", (2, 3, 4), 1, True, 1e-5, "f32"),
                                              ("zeros_f32", (2, 4), -1, False, 0.0009765625, "f32"),
                                              ("gamma_f16", (2, 8), -1, True, 1e-5, "f16")]:
        x = randn(rng, shape, dt, 2.0) if name != "zeros_f32" else np.zeros(shape)
        nshape = shape[axis % len(shape):]
        g = randn(rng, nshape, dt) if has_g else None
        params = [ty(shape, dt)] + ([ty(nshape, dt)] if has_g else [])
        inputs = [(x, dt)] + ([(g, dt)] if has_g else [])
        y = rnd(rms(x, axis, eps, g), dt)
        f.add(name, single("rms_norm", params, [ty(shape, dt)], {"axis": axis, "epsilon": eps}), inputs, [(y, dt)], tol_for(dt))
    files.append(f)
    return files


def gen_reduce():
    f = File("reduce")
    rng = seeded("reduce")
    fns = {"sum": np.sum, "mean": np.mean, "max": np.max}
    for name, kind, shape, axes, keep, dt in [("sum_axis1", "sum", (2, 3, 4), [1], False, "f32"),
                                              ("mean_axes0_2_keepdims", "mean", (2, 3, 4), [0, 2], True, "f32"),
                                              ("max_neg_axis", "max", (2, 3, 4), [-1], False, "f32"),
                                              ("sum_all_to_scalar", "sum", (3, 4), [0, 1], False, "f32"),
                                              ("mean_all_keepdims", "mean", (3, 4), [1, -2], True, "f32"),
                                              ("max_f16", "max", (4, 5), [0], True, "f16"),
                                              ("sum_i32", "sum", (3, 5), [-1], False, "i32"),
                                              ("max_i64_keepdims", "max", (3, 5), [0], True, "i64"),
                                              ("sum_empty_axes_is_identity", "sum", (2, 3), [], False, "f32")]:
        x = randi(rng, shape, dt, -50, 50) if dt in INT_RANGE else randn(rng, shape, dt, 2.0)
        y = rnd(fns[kind](x, axis=tuple(axes), keepdims=keep), dt)
        attrs = {"kind": kind, "axes": axes, "keepdims": keep}
        f.add(f"{name}_{dt}", single("reduce", [ty(shape, dt)], [ty(y.shape, dt)], attrs), [(x, dt)], [(y, dt)], tol_for(dt))
    x = rnd([[1.0, np.nan, 3.0], [-np.inf, 2.0, 0.5]], "f32")
    for kind in ["max", "sum"]:
        y = rnd(fns[kind](x, axis=(1,)), "f32")
        f.add(f"{kind}_nan_inf_f32", single("reduce", [ty((2, 3), "f32")], [ty((2,), "f32")],
                                            {"kind": kind, "axes": [1], "keepdims": False}), [(x, "f32")], [(y, "f32")], F32_TOL)
    return f


def gen_shapes():
    files = []
    f = File("transpose")
    rng = seeded("transpose")
    for name, shape, perm, dt in [("3d_f32", (2, 3, 4), [2, 0, 1], "f32"), ("2d_f32", (3, 5), [1, 0], "f32"),
                                  ("identity_i32", (2, 3), [0, 1], "i32"), ("4d_f16", (1, 2, 3, 4), [0, 2, 1, 3], "f16")]:
        x = randi(rng, shape, dt) if dt in INT_RANGE else randn(rng, shape, dt)
        y = np.transpose(x, perm)
        f.add(name, single("transpose", [ty(shape, dt)], [ty(y.shape, dt)], {"perm": perm}), [(x, dt)], [(y, dt)], tol_for(dt))
    files.append(f)

    f = File("reshape")
    rng = seeded("reshape")
    for name, shape, to, dt in [("3d_to_2d_f32", (2, 3, 4), (4, 6), "f32"), ("flatten_f32", (2, 3, 4), (24,), "f32"),
                                ("to_scalar_i32", (1,), (), "i32"), ("from_scalar_f16", (), (1, 1), "f16"),
                                ("unsqueeze_i64", (3, 2), (3, 1, 2), "i64")]:
        x = randi(rng, shape, dt) if dt in INT_RANGE else randn(rng, shape, dt)
        f.add(name, single("reshape", [ty(shape, dt)], [ty(to, dt)]), [(x, dt)], [(x.reshape(to), dt)], tol_for(dt))
    files.append(f)

    f = File("concat")
    rng = seeded("concat")
    for name, shapes, axis, dt in [("axis0_f32", [(2, 3), (1, 3)], 0, "f32"), ("axis_neg1_three_f32", [(2, 1), (2, 3), (2, 2)], -1, "f32"),
                                   ("axis1_3d_i32", [(2, 2, 2), (2, 1, 2)], 1, "i32"), ("single_f16", [(3,)], 0, "f16")]:
        xs = [randi(rng, s, dt) if dt in INT_RANGE else randn(rng, s, dt) for s in shapes]
        y = np.concatenate(xs, axis=axis)
        f.add(name, single("concat", [ty(s, dt) for s in shapes], [ty(y.shape, dt)], {"axis": axis}), [(x, dt) for x in xs],
              [(y, dt)], tol_for(dt))
    files.append(f)

    f = File("split")
    rng = seeded("split")
    for name, shape, sizes, axis, dt in [("axis1_f32", (2, 6), [2, 4], 1, "f32"), ("axis_neg1_three_f32", (3, 2, 5), [1, 3, 1], -1, "f32"),
                                         ("axis0_i64", (4, 3), [3, 1], 0, "i64"), ("one_piece_f16", (2, 3), [2], 0, "f16")]:
        x = randi(rng, shape, dt) if dt in INT_RANGE else randn(rng, shape, dt)
        ys = np.split(x, np.cumsum(sizes)[:-1], axis=axis)
        f.add(name, single("split", [ty(shape, dt)], [ty(y.shape, dt) for y in ys], {"axis": axis}), [(x, dt)],
              [(y, dt) for y in ys], tol_for(dt))
    files.append(f)

    f = File("slice")
    rng = seeded("slice")
    i64min = -(2**63)
    for name, shape, starts, ends, steps, dt in [
            ("basic_f32", (4, 5), [1, 0], [3, 5], None, "f32"),
            ("negative_indices_f32", (4, 5), [-3, -4], [-1, -1], None, "f32"),
            ("negative_step_reverse_f32", (6,), [5], [i64min], [-1], "f32"),
            ("negative_step_2_f32", (3, 7), [0, -1], [3, 0], [1, -2], "f32"),
            ("step2_clamped_i32", (4, 6), [0, 1], [100, 1000], [2, 2], "i32"),
            ("start_clamped_negative_step_f32", (5,), [100], [-100], [-2], "f32"),
            ("empty_f32", (4, 5), [3, 0], [1, 5], [1, 1], "f32"),
            ("3d_f16", (2, 3, 4), [0, 1, -2], [2, 3, 4], [1, 1, 1], "f16")]:
        x = randi(rng, shape, dt) if dt in INT_RANGE else randn(rng, shape, dt)
        sl = tuple(slice(s, e, st) for s, e, st in zip(starts, ends, steps or [1] * len(starts)))
        y = x[sl]
        attrs = {"starts": starts, "ends": ends}
        if steps is not None:
            attrs["steps"] = steps
        f.add(name, single("slice", [ty(shape, dt)], [ty(y.shape, dt)], attrs), [(x, dt)], [(y, dt)], tol_for(dt))
    files.append(f)
    return files


def gen_gather():
    f = File("gather")
    rng = seeded("gather")
    for name, shape, ind, axis, idt, dt in [("embedding_axis0_f32", (5, 3), [[2, 0], [4, 2]], 0, "i64", "f32"),
                                            ("negative_index_axis1_f32", (2, 4, 3), [-1, 1, -4], 1, "i32", "f32"),
                                            ("scalar_index_f32", (4, 3), 2, 0, "i64", "f32"),
                                            ("axis_neg1_i32", (3, 4), [[0, 3, -2]], -1, "i64", "i32"),
                                            ("repeat_f16", (3, 2), [1, 1, 1, 0], 0, "i32", "f16")]:
        x = randi(rng, shape, dt) if dt in INT_RANGE else randn(rng, shape, dt)
        idx = np.array(ind, dtype=np.float64)
        y = np.take(x, idx.astype(np.int64), axis=axis)
        f.add(name, single("gather", [ty(shape, dt), ty(idx.shape, idt)], [ty(y.shape, dt)], {"axis": axis}),
              [(x, dt), (idx, idt)], [(y, dt)], tol_for(dt))
    x = randn(rng, (4, 3), "f32")
    for name, bad in [("out_of_range", 4), ("negative_out_of_range", -5)]:
        f.error(name, single("gather", [ty((4, 3), "f32"), ty((2,), "i64")], [ty((2, 3), "f32")], {"axis": 0}),
                [(x, "f32"), (np.array([0.0, bad]), "i64")], [f"index {bad}", "out of range"])
    return f


def gen_select():
    f = File("select")
    rng = seeded("select")
    for name, sc, sa, sb, dt in [("same_f32", (2, 3), (2, 3), (2, 3), "f32"), ("broadcast_f32", (3,), (2, 1), (), "f32"),
                                 ("i32", (2, 2), (2, 2), (1, 2), "i32"), ("cond_rank3_f16", (2, 1, 4), (4,), (2, 3, 1), "f16")]:
        c = rnd(rng.integers(0, 2, size=sc), "i1")
        a = randi(rng, sa, dt) if dt in INT_RANGE else randn(rng, sa, dt)
        b = randi(rng, sb, dt) if dt in INT_RANGE else randn(rng, sb, dt)
        y = np.where(c != 0, a, b)
        f.add(name, single("select", [ty(sc, "i1"), ty(sa, dt), ty(sb, dt)], [ty(y.shape, dt)]), [(c, "i1"), (a, dt), (b, dt)],
              [(y, dt)], tol_for(dt))
    return f


def gen_cast():
    f = File("cast")
    rng = seeded("cast")
    edge = [-3.7, -2.5, -0.5, 0.5, 2.5, 3.7, 3e9, -3e9, np.nan, np.inf, -np.inf, 0.0]
    for name, x, src, dst in [
            ("f32_to_i32_truncates_saturates", edge, "f32", "i32"),
            ("f32_to_i8", [-200.0, -128.9, -1.5, 1.5, 127.9, 300.0], "f32", "i8"),
            ("f32_to_ui8", [-5.0, -0.9, 0.9, 254.9, 256.0, 1000.0], "f32", "ui8"),
            ("f32_to_f16_rounds_saturates", [0.1, 1.0 + 2**-11, 1.0 + 3 * 2**-11, 65519.0, 70000.0, -1e10, 1e-8, np.inf], "f32", "f16"),
            ("f32_to_bf16", [0.1, 1.0 + 2**-8, 1.0 + 3 * 2**-8, 3.14159, -1e10, 65504.0], "f32", "bf16"),
            ("f16_to_f32", rng.standard_normal(6) * 10, "f16", "f32"),
            ("i32_to_f32", [16777217.0, -7.0, 0.0, 2**31 - 1], "i32", "f32"),
            ("i32_to_i8_saturates", [300.0, -300.0, 5.0, -128.0], "i32", "i8"),
            ("f32_to_i1", [0.0, -0.0, 0.5, -3.0, np.nan], "f32", "i1"),
            ("i1_to_f32", [1.0, 0.0, 1.0], "i1", "f32"),
            ("f16_to_i64", [-2.5, 1000.5, -0.75, 7.0], "f16", "i64"),
            ("f32_to_f32_2d", rng.standard_normal((2, 3)), "f32", "f32")]:
        x = rnd(np.array(x, dtype=np.float64), src)
        y = cast(x, dst)
        f.add(name, single("cast", [ty(x.shape, src)], [ty(x.shape, dst)]), [(x, src)], [(y, dst)], EXACT)
    return f


def gen_rope():
    f = File("rope")
    rng = seeded("rope")

    def freqs(pos, half, base=10000.0):
        inv = base ** (-np.arange(half) / half)
        ang = np.outer(np.arange(pos), inv)
        return np.cos(ang), np.sin(ang)

    def ref(x, c, s, interleaved):
        d = x.shape[-1]
        half = d // 2
        y = np.empty_like(x)
        c = np.broadcast_to(c, x.shape[:-1] + (half,))
        s = np.broadcast_to(s, x.shape[:-1] + (half,))
        if interleaved:
            a, b = x[..., 0::2], x[..., 1::2]
            y[..., 0::2], y[..., 1::2] = a * c - b * s, b * c + a * s
        else:
            a, b = x[..., :half], x[..., half:]
            y[..., :half], y[..., half:] = a * c - b * s, b * c + a * s
        return y

    for name, xshape, cshape, inter, dt in [("rotate_half_f32", (2, 3, 8), (3, 4), False, "f32"),
                                            ("interleaved_f32", (2, 3, 8), (3, 4), True, "f32"),
                                            ("heads_rotate_half_f32", (2, 2, 3, 4), (1, 3, 2), False, "f32"),
                                            ("heads_interleaved_f32", (1, 2, 4, 6), (4, 3), True, "f32"),
                                            ("rotate_half_f16", (3, 8), (3, 4), False, "f16"),
                                            ("interleaved_f16", (3, 8), (3, 4), True, "f16")]:
        x = randn(rng, xshape, dt)
        c, s = freqs(cshape[-2], cshape[-1])
        c, s = rnd(c.reshape(cshape), dt), rnd(s.reshape(cshape), dt)
        y = rnd(ref(x, c, s, inter), dt)
        f.add(name, single("rope", [ty(xshape, dt), ty(cshape, dt), ty(cshape, dt)], [ty(xshape, dt)], {"interleaved": inter}),
              [(x, dt), (c, dt), (s, dt)], [(y, dt)], tol_for(dt))
    return f


def gen_masks():
    files = []
    f = File("causal_mask")
    for name, shape, dt in [("square_f32", (4, 4), "f32"), ("more_keys_f32", (1, 3, 5), "f32"), ("more_queries_f32", (5, 3), "f32"),
                            ("square_i1", (4, 4), "i1"), ("batched_f16", (2, 3, 3), "f16"), ("square_bf16", (3, 3), "bf16")]:
        n, m = shape[-2], shape[-1]
        vis = np.arange(m)[None, :] <= np.arange(n)[:, None] + m - n
        vis = np.broadcast_to(vis, shape)
        y = vis.astype(np.float64) if dt == "i1" else np.where(vis, 0.0, LOWEST[dt])
        f.add(name, single("causal_mask", [], [ty(shape, dt)]), [], [(y, dt)], EXACT)
    files.append(f)

    f = File("padding_mask")
    for name, keep, kdt, dt in [("i1_to_f32", [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "i1", "f32"),
                                ("i64_to_f16", [[2, 0, -1], [0, 0, 5]], "i64", "f16"),
                                ("i1_to_i1", [[1, 0], [0, 1], [1, 1]], "i1", "i1"),
                                ("f32_to_bf16", [[0.5, 0.0, 1.0, 0.0]], "f32", "bf16")]:
        keep = np.array(keep, dtype=np.float64)
        b, s = keep.shape
        y = (keep != 0).astype(np.float64) if dt == "i1" else np.where(keep != 0, 0.0, LOWEST[dt])
        y = y.reshape(b, 1, 1, s)
        f.add(name, single("padding_mask", [ty(keep.shape, kdt)], [ty(y.shape, dt)]), [(keep, kdt)], [(y, dt)], EXACT)
    files.append(f)
    return files


def main():
    os.makedirs(OUT, exist_ok=True)
    files = [gen_weight(), gen_constant(), gen_matmul(), gen_linear(), *gen_binaries(), *gen_max_min(), *gen_compares(), *gen_unaries(),
             *gen_softmaxes(), *gen_norms(), gen_reduce(), *gen_shapes(), gen_gather(), gen_select(), gen_cast(),
             gen_rope(), *gen_masks()]
    total = 0
    for f in files:
        for c in f.cases:
            for t in c.get("inputs", []) + c.get("outputs", []):
                assert len(t) <= 64, f"{c['name']}: a tensor of {len(t)} elements"
        f.write()
        total += len(f.cases)
    print(f"wrote {len(files)} files, {total} cases to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
