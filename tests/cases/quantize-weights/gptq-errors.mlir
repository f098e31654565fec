// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=4 group=4 scheme=gptq damp=-1}' --weights cases/quantize-weights/weights.npz

// GPTQ's damping must be a non-negative number: the pipeline is refused before anything runs.
func @f(%x: tensor<3x6xf32>) -> tensor<3x2xf32> {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  return %y
}
