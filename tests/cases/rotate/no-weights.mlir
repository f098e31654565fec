// RUN: lowbit opt %s --pass-pipeline=rotate

// The function reads weights, but none were given (no --weights, no sibling .safetensors).
// Expected: a clear error at the first graph.weight saying to pass --weights.
func @f(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %g = graph.weight {name = "norm"} : tensor<8xf32>
  %w = graph.weight {name = "w"} : tensor<8x8xf32>
  %h = graph.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<2x8xf32>
  %y = graph.linear %h, %w : tensor<2x8xf32>
  %r = graph.add %x, %y : tensor<2x8xf32>
  return %r
}
