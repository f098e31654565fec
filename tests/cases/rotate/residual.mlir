// RUN: lowbit opt %s --pass-pipeline='rotate{where=residual}' --pass-stats --diff-numerics=random:1

// The residual rewrite alone on a minimal stream: %x -> rms_norm(γ) -> linear -> add.
// Expected: γ folded into the linear's weight (a new constant W·diag(γ) = columns scaled by
// 1, 2, 0.5, 1), the norm without gain; %x rotated by R = H₄/2 (no seed: no sign flips),
// Rᵀ before the linear, R after it, Rᵀ on the returned sum. Exact: zero error in the table.
func @f(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %g = graph.constant {value = dense<[1.0, 2.0, 0.5, 1.0]> : tensor<4xf32>} : tensor<4xf32>
  %w = graph.constant {value = dense<[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]]> : tensor<4x4xf32>} : tensor<4x4xf32>
  %h = graph.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<2x4xf32>
  %y = graph.linear %h, %w : tensor<2x4xf32>
  %r = graph.add %x, %y : tensor<2x4xf32>
  return %r
}
