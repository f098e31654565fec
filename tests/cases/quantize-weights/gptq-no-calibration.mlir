// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=4 group=4 scheme=gptq}' --weights cases/quantize-weights/weights.npz

// GPTQ builds its Hessians from calibration activations: without --calibration it fails,
// naming the function and its parameter types.
func @f(%x: tensor<3x6xf32>) -> tensor<3x2xf32> {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  return %y
}
