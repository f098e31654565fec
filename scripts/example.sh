#!/usr/bin/env bash
# The main job on the bundled example: compile examples/attention_block.mlir (one
# transformer encoder block) to a native artifact, printing the IR after each pass, run
# it natively and through the reference interpreter on the same seeded inputs, and
# compare the outputs. Set-up is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "example: building lowbit (the first build compiles melior/inkwell: several minutes)"
cargo build -q -p lowbit-compiler
lowbit=target/debug/lowbit
mkdir -p out

echo "example: lowbit compile examples/attention_block.mlir -o out/attention_block --print-ir-after-all"
$lowbit compile examples/attention_block.mlir -o out/attention_block --print-ir-after-all

echo
echo "example: lowbit run out/attention_block --random-inputs 1   (native code)"
$lowbit run out/attention_block --random-inputs 1 --output out/native.npz

echo
echo "example: lowbit run examples/attention_block.mlir --random-inputs 1   (reference interpreter)"
$lowbit run examples/attention_block.mlir --random-inputs 1 --output out/interp.npz

python3 - <<'PY'
import numpy as np
a, b = np.load("out/native.npz"), np.load("out/interp.npz")
for (ka, x), (kb, r) in zip(sorted(a.items()), sorted(b.items())):
    rel_l1 = np.abs(x - r).sum() / np.abs(r).sum()
    print(f"example: {ka} (native) vs {kb} (interpreter): relative L1 = {rel_l1:.3e}")
PY

echo
echo "example: lowbit opt examples/attention_block.mlir --diff-numerics=random:1 (per-pass error against the unoptimized block)"
$lowbit opt examples/attention_block.mlir --diff-numerics=random:1 \
    --pass-pipeline='canonicalize,cse,smooth-attention,quantize-attention{qk=i8 pv=f16},lower-to-kernel' > out/attention_block.quantized.mlir
echo "example: the quantized block is in out/attention_block.quantized.mlir"
