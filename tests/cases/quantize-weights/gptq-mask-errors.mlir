// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=4 group=3 scheme=gptq calib-mask=1}' --weights cases/quantize-weights/weights.npz --calibration cases/quantize-weights/cal-mask-none.npz

// A mask that leaves no calibration row: GPTQ has nothing to minimize over, and the pass
// fails at the weight rather than zeroing it (a zero Hessian marks every input dead).
func @f(%x: tensor<3x6xf32>, %m: tensor<3xi64>) -> tensor<3x2xf32> {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  return %y
}
