// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=8 group=0},quantize-activations{granularity=per-tensor mode=static}' --weights cases/quantize-activations/weights.npz --calibration cases/quantize-activations/cal.npz --pass-stats --diff-numerics=cases/quantize-activations/cal.npz -o %t/out.mlir --print-ir-after=quantize-activations

// Static per-tensor scale from the calibration set: max|x| = 6, scale = 6/127 as a
// constant; qmatmul(quantize(x, 6/127), transpose(wq), 6/127, sw). Expected: qmatmul=1.
func @f(%x: tensor<3x6xf32>, %m: tensor<3x3xf32>) -> tensor<3x2xf32> {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  return %y
}
