#!/usr/bin/env python3
"""Importer cases beyond the onnx package's node tests (tests/tests/onnx_conformance.rs).

    python3 scripts/onnx_extra_cases.py OUT_DIR

Writes cases in the layout of scripts/onnx_node_cases.py (OUT_DIR/<case>/model.onnx,
data_0.npz with `in_<k>`/`out_<k>`, types.txt for widened arrays, ops.txt), the expected
outputs from onnx's ReferenceEvaluator for the int4 cases and from ONNX Runtime (CPU) for the
old-opset ones (ReferenceEvaluator computes Softmax-11 as Softmax-13), each checked against
a numpy formula where the case is about a data layout or an old opset's meaning:

  int4_blocked_dq_*     DequantizeLinear of an int4/uint4 initializer with an odd element
                        count (15 values, blocked along axis 1 with block 2: the last block
                        is short), zero point int4/uint4 (9 values), raw_data or int32_data
                        packing, then MatMul with a run-time input;
  int4_quantize_*       QuantizeLinear of a run-time input to int4/uint4, blocked and per axis;
  opset11_softmax_axis1 Softmax-11 of a rank-3 input at axis 1 (coerced to 2-D);
  opset11_logsoftmax    LogSoftmax-11, default axis (1) of a rank-3 input;
  opset10_clip          Clip-6 with min/max attributes;
  opset11_reducesum     ReduceSum-11 with an axes attribute;
  opset11_squeeze_split Squeeze/Unsqueeze/Split-11 with axes/split attributes;
  opset12_dequantize    DequantizeLinear-10 per tensor and QuantizeLinear-10 to uint8;
  opset7_mixed          an opset-7 model (below MIN_OPSET; every op's form there is its
                        opset-10 form): Add-7 broadcasting, Softmax-1 coerced to 2-D, Clip-6
                        attributes, ReduceSum-1 axes attribute;
  gathernd_runtime      GatherND with run-time indices (negative ones included) and
                        batch_dims = 1, vs ONNX Runtime.

and OUT_DIR/refused/opset6_add.onnx, an opset-6 Add (Add-6 has the legacy `broadcast`
attribute, another form than Add-7's), and
OUT_DIR/refused/opset10_clip_inputs.onnx, a Clip with bound inputs at opset 10 (Clip-6 takes
attributes).
Exits with status 3 and a message naming scripts/setup.sh when a package is missing.
"""

import os
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator
except ImportError as e:  # pragma: no cover
    print(f"missing Python package ({e}); run scripts/setup.sh", file=sys.stderr)
    sys.exit(3)

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, inits=(), opset=21):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10 if opset >= 21 else 7
    onnx.checker.check_model(m)
    return m


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def write(out, name, m, ins, runtime=False):
    """Writes case `name`: the model, the inputs and ReferenceEvaluator's (or, with
    `runtime`, ONNX Runtime's) outputs."""
    feeds = {i.name: a for i, a in zip(m.graph.input, ins)}
    if runtime:
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        outs = sess.run(None, feeds)
    else:
        outs = ReferenceEvaluator(m).run(None, feeds)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    arrs = {}
    lines = []
    for prefix, arrays in (("in", ins), ("out", outs)):
        for k, a in enumerate(arrays):
            a = np.asarray(a)
            key = f"{prefix}_{k}"
            if str(a.dtype) in ("int4", "uint4"):
                lines.append(f"{key} {'i4' if str(a.dtype) == 'int4' else 'ui4'}")
                a = a.astype(np.int8 if str(a.dtype) == "int4" else np.uint8)
            arrs[key] = a
    np.savez(os.path.join(d, "data_0.npz"), **arrs)
    if lines:
        with open(os.path.join(d, "types.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(d, "ops.txt"), "w") as f:
        f.write("\n".join(sorted({n.op_type for n in m.graph.node})) + "\n")
    return outs


def int4_tensor(name, values, signed, raw):
    """An int4/uint4 initializer; `raw` packs it into raw_data, else into int32_data (both
    two values a byte, the first in the low nibble, as the ONNX IR says)."""
    elem = TensorProto.INT4 if signed else TensorProto.UINT4
    t = helper.make_tensor(name, elem, values.shape, values.flatten().tolist(), raw=False)
    flat = [int(v) & 0xF for v in values.flatten()]
    if len(flat) % 2:
        flat.append(0)
    packed = [lo | (hi << 4) for lo, hi in zip(flat[0::2], flat[1::2])]
    if raw:
        t = helper.make_tensor(name, elem, values.shape, bytes(packed), raw=True)
    else:
        assert list(t.int32_data) == packed, (list(t.int32_data), packed)
    back = numpy_helper.to_array(t).astype(np.int64)
    assert (back == values).all(), (back, values)
    return t


def int4_blocked(out, rng):
    for signed in (True, False):
        for raw in (True, False):
            lo, hi = (-8, 7) if signed else (0, 15)
            w = rng.integers(lo, hi + 1, size=(3, 5))  # 15 values: odd
            zp = rng.integers(lo, hi + 1, size=(3, 3))  # 9 values: odd
            scale = rng.uniform(0.01, 0.2, size=(3, 3)).astype(np.float32)
            inits = [
                int4_tensor("w", w, signed, raw),
                int4_tensor("w_zp", zp, signed, raw),
                numpy_helper.from_array(scale, "w_scale"),
            ]
            nodes = [
                helper.make_node(
                    "DequantizeLinear", ["w", "w_scale", "w_zp"], ["wf"], name="dq",
                    axis=1, block_size=2,
                ),
                helper.make_node("MatMul", ["a", "wf"], ["y"], name="mm"),
            ]
            m = model(nodes, [vi("a", F, [2, 3])], [vi("y", F, [2, 5])], inits)
            a = rng.standard_normal((2, 3)).astype(np.float32)
            (y,) = write(out, f"int4_blocked_dq_{'int4' if signed else 'uint4'}_{'raw' if raw else 'int32data'}", m, [a])
            # The layout itself, against numpy: element j of row i uses block j // 2.
            blk = np.repeat(np.arange(3), 2)[:5]
            wf = (w - zp[:, blk]) * scale[:, blk]
            np.testing.assert_allclose(y, a @ wf.astype(np.float32), rtol=1e-5, atol=1e-6)


def int4_quantize(out, rng):
    for signed in (True, False):
        elem = TensorProto.INT4 if signed else TensorProto.UINT4
        lo, hi = (-8, 7) if signed else (0, 15)
        x = (rng.standard_normal((3, 7)) * 0.8).astype(np.float32)
        for mode in ("blocked", "axis"):
            if mode == "blocked":
                shape, attrs = [3, 4], dict(axis=1, block_size=2)
            else:
                shape, attrs = [3], dict(axis=0)
            scale = rng.uniform(0.05, 0.3, size=shape).astype(np.float32)
            zp = rng.integers(lo, hi + 1, size=shape)
            inits = [
                numpy_helper.from_array(scale, "s"),
                int4_tensor("zp", zp, signed, raw=True),
            ]
            node = helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["y"], name="q", **attrs)
            m = model([node], [vi("x", F, [3, 7])], [vi("y", elem, [3, 7])], inits)
            write(out, f"int4_quantize_{mode}_{'int4' if signed else 'uint4'}", m, [x])


def softmax_2d(x, axis, log):
    """Softmax-1/11: the input coerced to 2-D at `axis`."""
    n = int(np.prod(x.shape[:axis]))
    x2 = x.reshape(n, -1).astype(np.float64)
    e = np.exp(x2 - x2.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    return (np.log(y) if log else y).reshape(x.shape)


def old_opsets(out, rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    node = helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)
    m = model([node], [vi("x", F, [2, 3, 4])], [vi("y", F, [2, 3, 4])], opset=11)
    (y,) = write(out, "opset11_softmax_axis1", m, [x], runtime=True)
    np.testing.assert_allclose(y, softmax_2d(x, 1, False), rtol=1e-5, atol=1e-7)
    per_axis = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert not np.allclose(y, per_axis), "the coerced softmax must differ from the per-axis one"

    node = helper.make_node("LogSoftmax", ["x"], ["y"], name="lsm")
    m = model([node], [vi("x", F, [2, 3, 4])], [vi("y", F, [2, 3, 4])], opset=11)
    (y,) = write(out, "opset11_logsoftmax", m, [x], runtime=True)
    np.testing.assert_allclose(y, softmax_2d(x, 1, True), rtol=1e-5, atol=1e-6)

    node = helper.make_node("Clip", ["x"], ["y"], name="clip", min=-0.5, max=0.75)
    m = model([node], [vi("x", F, [2, 3, 4])], [vi("y", F, [2, 3, 4])], opset=10)
    (y,) = write(out, "opset10_clip", m, [x], runtime=True)
    np.testing.assert_array_equal(y, np.clip(x, -0.5, 0.75))

    node = helper.make_node("ReduceSum", ["x"], ["y"], name="rs", axes=[0, 2], keepdims=0)
    m = model([node], [vi("x", F, [2, 3, 4])], [vi("y", F, [3])], opset=11)
    (y,) = write(out, "opset11_reducesum", m, [x], runtime=True)
    np.testing.assert_allclose(y, x.sum(axis=(0, 2)), rtol=1e-5)

    nodes = [
        helper.make_node("Unsqueeze", ["x"], ["u"], name="unsq", axes=[0, 3]),
        helper.make_node("Squeeze", ["u"], ["s"], name="sq", axes=[0]),
        helper.make_node("Split", ["s"], ["a", "b"], name="split", axis=1, split=[1, 2]),
    ]
    m = model(
        nodes,
        [vi("x", F, [2, 3, 4])],
        [vi("a", F, [2, 1, 1, 4]), vi("b", F, [2, 2, 1, 4])],
        opset=11,
    )
    a, b = write(out, "opset11_squeeze_split", m, [x], runtime=True)
    np.testing.assert_array_equal(a[:, :, 0], x[:, :1])
    np.testing.assert_array_equal(b[:, :, 0], x[:, 1:])

    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q"),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq"),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "s"),
        numpy_helper.from_array(np.array(117, np.uint8), "z"),
    ]
    m = model(nodes, [vi("x", F, [2, 3, 4])], [vi("y", F, [2, 3, 4])], inits, opset=12)
    write(out, "opset12_dequantize", m, [x], runtime=True)

    bias = rng.standard_normal(4).astype(np.float32)
    nodes = [
        helper.make_node("Add", ["x", "bias"], ["a"], name="add"),
        helper.make_node("Softmax", ["a"], ["s"], name="sm"),
        helper.make_node("Clip", ["s"], ["c"], name="clip", min=0.05, max=0.2),
        helper.make_node("ReduceSum", ["c"], ["y"], name="rs", axes=[1], keepdims=0),
    ]
    inits = [numpy_helper.from_array(bias, "bias")]
    m = model(nodes, [vi("x", F, [2, 3, 4])], [vi("y", F, [2, 4])], inits, opset=7)
    (y,) = write(out, "opset7_mixed", m, [x], runtime=True)
    want = np.clip(softmax_2d(x + bias, 1, False), 0.05, 0.2).sum(axis=1)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def gathernd_runtime(out, rng):
    data = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    # Index tuples into data[b] of length 2 (dims 3, 4), negative ones counting from the end.
    idx = np.array(
        [[[0, 1], [-1, -4], [2, 3]], [[-3, 0], [1, -1], [0, 0]]], dtype=np.int64
    )
    node = helper.make_node("GatherND", ["data", "idx"], ["y"], name="gnd", batch_dims=1)
    m = model(
        [node],
        [vi("data", F, [2, 3, 4, 5]), vi("idx", TensorProto.INT64, [2, 3, 2])],
        [vi("y", F, [2, 3, 5])],
        opset=13,
    )
    (y,) = write(out, "gathernd_runtime", m, [data, idx], runtime=True)
    want = np.stack([np.stack([data[b][tuple(t)] for t in idx[b]]) for b in range(2)])
    np.testing.assert_array_equal(y, want)


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(11)
    int4_blocked(out, rng)
    int4_quantize(out, rng)
    old_opsets(out, rng)
    gathernd_runtime(out, rng)
    d = os.path.join(out, "refused")
    os.makedirs(d, exist_ok=True)
    node = helper.make_node("Add", ["x", "x"], ["y"], name="add6", broadcast=0)
    g = helper.make_graph([node], "g", [vi("x", F, [2, 3])], [vi("y", F, [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 6)])
    m.ir_version = 3
    onnx.save(m, os.path.join(d, "opset6_add.onnx"))
    # Clip-6 takes min/max as attributes: a Clip node with bound inputs in an opset-10 model.
    node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip_inputs")
    inits = [
        numpy_helper.from_array(np.array(-1.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(1.0, np.float32), "hi"),
    ]
    g = helper.make_graph([node], "g", [vi("x", F, [2, 3])], [vi("y", F, [2, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 10)])
    m.ir_version = 5
    onnx.save(m, os.path.join(d, "opset10_clip_inputs.onnx"))
    print(f"wrote {len(os.listdir(out)) - 1} cases and 2 refused models to {out}")


if __name__ == "__main__":
    main()
