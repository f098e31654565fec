#!/usr/bin/env python3
"""Writes examples/attention_block.safetensors, the weights of examples/attention_block.mlir.

Deterministic (seeded), so re-running it reproduces the committed file byte for byte.
Projections are drawn from N(0, 0.1) (queries, keys, values: enough to make attention
non-uniform) or N(0, 0.05) (output projection, MLP), biases from N(0, 0.02), layer-norm
gammas near 1 and betas near 0. Everything is float32, shapes as PyTorch stores them
(`[out, in]` for linear weights).

Needs numpy and the `safetensors` package: pip install numpy safetensors
Usage: python3 scripts/gen_example.py [OUTPUT]
"""

import pathlib
import sys

import numpy as np
from safetensors.numpy import save_file

HIDDEN = 64
MLP = 256
SEED = 20240601


def main() -> None:
    root = pathlib.Path(__file__).resolve().parent.parent
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "examples" / "attention_block.safetensors"
    rng = np.random.default_rng(SEED)

    def normal(shape, std):
        return rng.normal(0.0, std, size=shape).astype(np.float32)

    tensors = {}
    for name, std in (("q", 0.1), ("k", 0.1), ("v", 0.1), ("o", 0.05)):
        tensors[f"attn.{name}.weight"] = normal((HIDDEN, HIDDEN), std)
        tensors[f"attn.{name}.bias"] = normal((HIDDEN,), 0.02)
    tensors["ln1.weight"] = 1.0 + normal((HIDDEN,), 0.05)
    tensors["ln1.bias"] = normal((HIDDEN,), 0.02)
    tensors["mlp.fc1.weight"] = normal((MLP, HIDDEN), 0.05)
    tensors["mlp.fc1.bias"] = normal((MLP,), 0.02)
    tensors["mlp.fc2.weight"] = normal((HIDDEN, MLP), 0.05)
    tensors["mlp.fc2.bias"] = normal((HIDDEN,), 0.02)
    tensors["ln2.weight"] = 1.0 + normal((HIDDEN,), 0.05)
    tensors["ln2.bias"] = normal((HIDDEN,), 0.02)

    save_file(tensors, str(out), metadata={"generator": "scripts/gen_example.py", "seed": str(SEED)})
    total = sum(t.nbytes for t in tensors.values())
    print(f"wrote {out} ({len(tensors)} tensors, {total} bytes of data)")


if __name__ == "__main__":
    main()
