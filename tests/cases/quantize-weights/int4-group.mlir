// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=4 group=4 sym=false}' --weights cases/quantize-weights/weights.npz --pass-stats --diff-numerics=random:1 -o %t/out.mlir --print-ir-after-all

// AWQ-style asymmetric uint4 in groups of 4 input channels over 6 inputs: two groups per
// row (the second partial), "w.qweight" ui4 [2, 6], "w.scales" f32 [2, 2], "w.qzeros" ui4
// [2, 2], dequantize {axis = 1, block_size = 4}. The bias "b" (rank 1, not a linear weight
// operand) stays float. Expected: quantized=1 linears=1.
func @f(%x: tensor<3x6xf32>) -> tensor<3x2xf32> {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %b = graph.weight {name = "b"} : tensor<2xf32>
  %y = graph.linear %x, %w, %b : tensor<3x2xf32>
  return %y
}
