// RUN: lowbit opt %s --pass-pipeline=fold-rotations

// Rotations next to weights, but no weights were given. Expected: a clear error at the
// first graph.weight saying to pass --weights.
func @f(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %r = graph.weight {name = "rot.residual.0.rt"} : tensor<8x8xf32>
  %w = graph.weight {name = "w"} : tensor<8x8xf32>
  %xr = rot.rotate %x, %r {axis = -1 : i64} : tensor<2x8xf32>
  %y = graph.linear %xr, %w : tensor<2x8xf32>
  return %y
}
