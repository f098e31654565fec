// RUN: lowbit opt %s --pass-pipeline=fold-rotations --pass-stats --diff-numerics=random:4

// %w is read by two linears, only the first behind a rotation: the fold gives that linear a
// new constant W·Rᵀ and leaves %w for the second. %l (with a bias) is rotated after the
// linear: the fold rewrites its weight to Rᵀ·W and its bias to c·R. R = H₂/√2 here, so
// W·Rᵀ has rows [(1+2)/√2, (1-2)/√2] and so on. Exact up to f32 rounding.
func @f(%x: tensor<3x2xf32>, %y: tensor<3x2xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>) {
  %w = graph.constant {value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %r = graph.constant {value = dense<[[0.70710677, 0.70710677], [0.70710677, -0.70710677]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %xr = rot.rotate %x, %r {axis = -1 : i64} : tensor<3x2xf32>
  %a = graph.linear %xr, %w : tensor<3x2xf32>
  %b = graph.linear %y, %w : tensor<3x2xf32>
  %c = graph.constant {value = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<2xf32>
  %l = graph.linear %y, %w, %c : tensor<3x2xf32>
  %lr = rot.rotate %l, %r {axis = -1 : i64} : tensor<3x2xf32>
  return %a, %b, %lr
}
