// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=8 group=0}' --weights cases/quantize-weights/weights.npz --pass-stats --diff-numerics=random:1 -o %t/out.mlir --print-ir-after-all

// %w is read by two linears: it is quantized once ("w.qweight" i8 [2, 6], "w.scales" f32
// [2], one per output row: max|w|/127 = 4/127 and 0.6/127) and the one dequantize
// {axis = 0} feeds both. The linear with the run-time weight %r is left alone
// (skipped-not-weight=1). Expected: quantized=1 linears=2; a small error (APPROX).
func @f(%x: tensor<3x6xf32>, %r: tensor<2x6xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>) {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %b = graph.weight {name = "b"} : tensor<2xf32>
  %y1 = graph.linear %x, %w, %b : tensor<3x2xf32>
  %n = graph.neg %x : tensor<3x6xf32>
  %y2 = graph.linear %n, %w : tensor<3x2xf32>
  %y3 = graph.linear %x, %r : tensor<3x2xf32>
  return %y1, %y2, %y3
}
