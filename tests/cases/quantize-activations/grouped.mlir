// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=4 group=4},quantize-activations' --weights cases/quantize-activations/weights.npz --pass-stats --diff-numerics=random:3 -o %t/out.mlir --print-ir-after=quantize-activations

// Group-wise int4 weights have scales that vary along the reduction, which a qmatmul
// epilogue cannot apply: the activation gets a quantize/dequantize pair and the linear
// keeps its dequantized weight (qdq=1). The linear whose weight %r is a run-time value is
// not a quantized matmul and its input stays float (skipped-float-weight=1).
func @f(%x: tensor<3x6xf32>, %r: tensor<2x6xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>) {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  %z = graph.linear %x, %r : tensor<3x2xf32>
  return %y, %z
}
