// RUN: lowbit opt %s --pass-pipeline='migrate-scales' --weights cases/migrate-scales/explicit.npz

// migrate-scales measures activations: without --calibration it fails with one sentence
// naming the function and its parameter types.
func @f(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %g = graph.weight {name = "ln.g"} : tensor<4xf32>
  %b = graph.weight {name = "ln.b"} : tensor<4xf32>
  %h = graph.layer_norm %x, %g, %b {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x4xf32>
  %w = graph.weight {name = "o.w"} : tensor<4x4xf32>
  %o = graph.linear %h, %w : tensor<2x4xf32>
  return %o
}
