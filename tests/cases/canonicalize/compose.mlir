// RUN: lowbit opt %s --split-input-file --pass-pipeline=canonicalize --print-locs

// transpose(transpose(x)) becomes one transpose at the fused location of both.
func @transposes(%arg0: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %0 = graph.transpose %arg0 {perm = array<i64: 1, 0, 2>} : tensor<3x2x4xf32> loc("t1")
  %1 = graph.transpose %0 {perm = array<i64: 2, 1, 0>} : tensor<4x2x3xf32> loc("t2")
  return %1
}

// -----

// Transposes that cancel disappear; the inner one stays while it has another use.
func @cancelling(%arg0: tensor<2x3xf32>) -> (tensor<3x2xf32>, tensor<2x3xf32>) {
  %0 = graph.transpose %arg0 {perm = array<i64: 1, 0>} : tensor<3x2xf32> loc("t1")
  %1 = graph.transpose %0 {perm = array<i64: 1, 0>} : tensor<2x3xf32> loc("t2")
  %2 = graph.relu %1 : tensor<2x3xf32> loc("relu")
  return %0, %2
}

// -----

// reshape(reshape(x)) becomes one reshape, or nothing when it restores x's type.
func @reshapes(%arg0: tensor<2x3x4xf32>) -> (tensor<24xf32>, tensor<2x3x4xf32>) {
  %0 = graph.reshape %arg0 : tensor<6x4xf32> loc("r1")
  %1 = graph.reshape %0 : tensor<24xf32> loc("r2")
  %2 = graph.reshape %arg0 : tensor<4x6xf32> loc("r3")
  %3 = graph.reshape %2 : tensor<2x3x4xf32> loc("r4")
  return %1, %3
}

// -----

// A folded constant keeps the location of the op it replaces.
func @folded_location() -> tensor<2xf32> {
  %0 = graph.constant {value = dense<[1.0, 4.0]> : tensor<2xf32>} : tensor<2xf32> loc("c")
  %1 = graph.sqrt %0 : tensor<2xf32> loc("sqrt")
  return %1
}
