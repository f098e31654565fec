// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=4 group=3 sym=false scheme=gptq act-order=false calib-mask=1}' --weights cases/quantize-weights/weights.npz --calibration cases/quantize-weights/cal-mask.npz --pass-stats -o %t/out.mlir

// calib-mask=1: parameter 1 is a token mask with one element per row of %x ([1, 0, 1]), so
// GPTQ's Hessian leaves the masked (padding) row out. Expected: gptq-rows=2 (of 3), no
// gptq-unmasked counter (every quantized linear's input has one row per mask element).
func @f(%x: tensor<3x6xf32>, %m: tensor<3xi64>) -> tensor<3x2xf32> {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  return %y
}
