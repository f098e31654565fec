// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=8 group=0},quantize-activations{granularity=per-tensor mode=static}' --weights cases/quantize-activations/weights.npz

// Static scales come from calibration inputs: without --calibration the pass fails.
func @f(%x: tensor<3x6xf32>, %m: tensor<3x3xf32>) -> tensor<3x2xf32> {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  return %y
}
