// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=4 group=3 scheme=gptq calib-mask=2}' --weights cases/quantize-weights/weights.npz --calibration cases/quantize-weights/cal-mask.npz

// calib-mask must name a parameter of the function: @f has two (0 and 1).
func @f(%x: tensor<3x6xf32>, %m: tensor<3xi64>) -> tensor<3x2xf32> {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  return %y
}
