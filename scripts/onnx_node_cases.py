#!/usr/bin/env python3
"""ONNX backend node test cases for the importer (tests/tests/onnx_conformance.rs).

    python3 scripts/onnx_node_cases.py OUT_DIR

For each case of `onnx.backend.test.case.node.collect_testcases()` whose nodes are all of
op types the importer maps (compiler/src/onnx/ops.rs), writes OUT_DIR/<case>/model.onnx and
OUT_DIR/<case>/data_<i>.npz with `in_<k>` and `out_<k>` (positional, in graph order), and
OUT_DIR/<case>/ops.txt, the model's op types, one a line.
Arrays of a dtype the runtime's npz reader cannot hold but a wider one holds exactly (int4,
uint4, int16, uint16, bfloat16, float8, float4e2m1; and int2/uint2, the fnuz float8s and
float8e8m0, which lowbit has no element type for) are stored widened, and
OUT_DIR/<case>/types.txt names their real element type, `in_0 i4` (lowbit's spelling) or
`in_0 onnx:int2` (no lowbit type), one a line.
Cases are skipped (and counted) when an op is not mapped, an array has a dtype neither the
reader nor a widening holds, or a graph input/output has a symbolic dimension. Prints one summary
line. Exits with status 3 and a message naming scripts/setup.sh when a package is missing.
"""

import os
import sys
import warnings

try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from onnx.backend.test.case import node as node_cases
except ImportError as e:  # pragma: no cover
    print(f"missing Python package ({e}); run scripts/setup.sh", file=sys.stderr)
    sys.exit(3)

# The op types compiler/src/onnx/ops.rs maps (map_node).
SUPPORTED = {
    "Sqrt", "Erf", "Tanh", "Exp", "Log", "Neg", "Relu", "Sigmoid",
    "Add", "Sub", "Mul", "Div", "Pow",
    "Identity", "Dropout", "Constant", "Reciprocal", "MatMul", "Gemm",
    "Softmax", "LogSoftmax", "LayerNormalization", "Gelu",
    "ReduceMean", "ReduceSum", "ReduceMax",
    "Transpose", "Reshape", "Flatten", "Unsqueeze", "Squeeze", "Concat", "Split", "Slice",
    "Gather", "Where", "Cast", "Shape", "Size", "ConstantOfShape", "Range", "Expand",
    "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not",
    "GatherND", "IsNaN", "Max", "Min", "Clip",
    "RMSNormalization", "RotaryEmbedding", "Attention", "Trilu", "CastLike",
    "DequantizeLinear", "QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "QLinearMatMul",
}

# What the runtime's npz reader holds.
DTYPES = {np.dtype(t) for t in ("f8", "f4", "f2", "i8", "i4", "i1", "u1", "bool")}

# numpy dtype name -> (element type for types.txt, the npz dtype that holds it exactly).
WIDENED = {
    "int4": ("i4", "i1"),
    "uint4": ("ui4", "u1"),
    "int16": ("i16", "i4"),
    "uint16": ("ui16", "i4"),
    "bfloat16": ("bf16", "f4"),
    "float8_e4m3fn": ("f8E4M3FN", "f4"),
    "float8_e5m2": ("f8E5M2", "f4"),
    "float4_e2m1fn": ("f4E2M1FN", "f4"),
    "int2": ("onnx:int2", "i1"),
    "uint2": ("onnx:uint2", "u1"),
    "float8_e4m3fnuz": ("onnx:float8e4m3fnuz", "f4"),
    "float8_e5m2fnuz": ("onnx:float8e5m2fnuz", "f4"),
    "float8_e8m0fnu": ("onnx:float8e8m0", "f4"),
}


def storable(a):
    return a.dtype in DTYPES or str(a.dtype) in WIDENED


def stored(name, a, types):
    """`a` as the npz holds it; records its real type in `types` when widened."""
    a = np.asarray(a)
    if a.dtype in DTYPES:
        return a
    elem, wide = WIDENED[str(a.dtype)]
    types.append(f"{name} {elem}")
    return a.astype(np.dtype(wide))


def array(a):
    """A data-set entry as a numpy array (some are TensorProtos); TypeError for sequences,
    optionals and maps."""
    if isinstance(a, onnx.TensorProto):
        return numpy_helper.to_array(a)
    if isinstance(a, (np.ndarray, np.generic)):
        return np.asarray(a)
    raise TypeError(type(a).__name__)


def static(vi):
    t = vi.type
    if not t.HasField("tensor_type"):
        return False
    if not t.tensor_type.HasField("shape"):
        return True  # unknown rank; the data decides
    return all(d.HasField("dim_value") for d in t.tensor_type.shape.dim)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases(None)
    found = len(cases)
    written = 0
    skipped = {"op": 0, "dtype": 0, "symbolic": 0, "no-data": 0, "non-tensor": 0}
    for case in cases:
        model = case.model
        g = model.graph
        if any(n.op_type not in SUPPORTED or n.domain not in ("", "ai.onnx") for n in g.node):
            skipped["op"] += 1
            continue
        if not case.data_sets:
            skipped["no-data"] += 1
            continue
        try:
            data = [([array(a) for a in ins], [array(a) for a in outs]) for ins, outs in case.data_sets]
        except TypeError:
            skipped["non-tensor"] += 1
            continue
        arrays = [a for ins, outs in data for a in ins + outs]
        if not all(storable(a) for a in arrays):
            skipped["dtype"] += 1
            continue
        if not all(static(v) for v in list(g.input) + list(g.output)):
            skipped["symbolic"] += 1
            continue
        d = os.path.join(out, case.name)
        os.makedirs(d, exist_ok=True)
        onnx.save(model, os.path.join(d, "model.onnx"))
        with open(os.path.join(d, "ops.txt"), "w") as f:
            f.write("\n".join(sorted({n.op_type for n in g.node})) + "\n")
        types = []
        for i, (ins, outs) in enumerate(data):
            names = [f"in_{k}" for k in range(len(ins))] + [f"out_{k}" for k in range(len(outs))]
            kinds = []
            arrs = {n: stored(n, a, kinds) for n, a in zip(names, ins + outs)}
            if i == 0:
                types = kinds
            np.savez(os.path.join(d, f"data_{i}.npz"), **arrs)
        if types:
            with open(os.path.join(d, "types.txt"), "w") as f:
                f.write("\n".join(types) + "\n")
        written += 1
    why = ", ".join(f"{v} {k}" for k, v in skipped.items())
    print(f"onnx {onnx.__version__}: {found} node cases, {written} written, skipped: {why}")


if __name__ == "__main__":
    main()
