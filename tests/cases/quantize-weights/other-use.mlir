// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=8 group=0}' --weights cases/quantize-weights/weights.npz --pass-stats

// %w is a linear's weight but also read by a matmul: quantizing it would change the matmul
// too, so it stays (skipped-other-use=1). Expected: the IR unchanged.
func @f(%x: tensor<3x6xf32>, %z: tensor<6x2xf32>) -> (tensor<3x2xf32>, tensor<2x2xf32>) {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  %m = graph.matmul %w, %z : tensor<2x2xf32>
  return %y, %m
}
