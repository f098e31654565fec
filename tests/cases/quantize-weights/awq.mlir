// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=4 group=4 sym=false scheme=awq}' --weights cases/quantize-weights/weights.npz --calibration cases/quantize-weights/cal.npz --pass-stats --diff-numerics=cases/quantize-weights/cal.npz -o %t/out.mlir --print-ir-after-all

// AWQ on a linear whose input has no producer that could absorb 1/s: the scale goes to an
// explicit multiply by "w.smooth_inv" (AWQ's ScaledActivation) and the weight's columns are
// scaled before rounding ("w.smooth", then "w.smooth.qweight"...). %r's linear is left alone.
// Expected: awq-scaled=1 (or awq-identity=1 when α = 0 wins on these inputs), quantized=1.
func @f(%x: tensor<3x6xf32>, %r: tensor<2x6xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>) {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  %z = graph.linear %x, %r : tensor<3x2xf32>
  return %y, %z
}
