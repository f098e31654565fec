// RUN: lowbit opt %s --pass-pipeline=fold-rotations --pass-stats

// Rotations that must stay online. Expected: nothing changes; kept-rotate=1 (a rotation of
// a parameter that feeds a non-linear op), skipped-not-orthogonal=1 (a matrix that is not
// orthogonal is not folded), kept-hadamard=1 (after the SiLU product, nothing upstream can
// absorb it; the linear after it is the other half of the pair and must not absorb it).
func @f(%x: tensor<3x2xf32>, %m: tensor<3x4xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>) {
  %r = graph.constant {value = dense<[[0.70710677, 0.70710677], [0.70710677, -0.70710677]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %xr = rot.rotate %x, %r {axis = -1 : i64} : tensor<3x2xf32>
  %e = graph.exp %xr : tensor<3x2xf32>
  %n = graph.constant {value = dense<[[1.0, 1.0], [0.0, 1.0]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %w = graph.constant {value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %xn = rot.rotate %x, %n {axis = -1 : i64} : tensor<3x2xf32>
  %a = graph.linear %xn, %w : tensor<3x2xf32>
  %s = graph.silu %m : tensor<3x4xf32>
  %p = graph.mul %s, %m : tensor<3x4xf32>
  %h = rot.hadamard %p {axis = -1 : i64} : tensor<3x4xf32>
  %wd = graph.constant {value = dense<[[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]> : tensor<2x4xf32>} : tensor<2x4xf32>
  %d = graph.linear %h, %wd : tensor<3x2xf32>
  return %e, %a, %d
}
