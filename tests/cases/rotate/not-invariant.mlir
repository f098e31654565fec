// RUN: lowbit opt %s --split-input-file --pass-pipeline='rotate{where=residual}'

// Residual streams the rotation cannot pass through; each chunk is refused with an error
// naming the op, and nothing is rewritten.

// The stream is scaled channel-wise (diag(c) does not commute with R).
func @scaled(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %w = graph.constant {value = dense<[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]> : tensor<4x4xf32>} : tensor<4x4xf32>
  %c = graph.constant {value = dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>} : tensor<4xf32>
  %h = graph.rms_norm %x {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<2x4xf32>
  %y = graph.linear %h, %w : tensor<2x4xf32>
  %r = graph.add %x, %y : tensor<2x4xf32>
  %s = graph.mul %r, %c : tensor<2x4xf32>
  return %s
}

// -----

// The norm output is returned as well as read by a linear.
func @norm_returned(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %w = graph.constant {value = dense<[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]> : tensor<4x4xf32>} : tensor<4x4xf32>
  %h = graph.rms_norm %x {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<2x4xf32>
  %y = graph.linear %h, %w : tensor<2x4xf32>
  %r = graph.add %x, %y : tensor<2x4xf32>
  return %r, %h
}

// -----

// The residual add adds a value that no linear produced.
func @foreign_add(%x: tensor<2x4xf32>, %z: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %h = graph.rms_norm %x {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<2x4xf32>
  %r = graph.add %x, %z : tensor<2x4xf32>
  return %r
}
