// RUN: lowbit opt %s --split-input-file --pass-pipeline=lower-to-kernel --print-locs

// linear → gemm with transpose_b; matmul by a 2-D weight → gemm; each absorbs the
// activation that is its only user, at the fused location of both.
func @mlp(%arg0: tensor<2x3x8xf32>) -> tensor<2x3x4xf32> {
  %0 = graph.weight {name = "fc1.weight"} : tensor<4x8xf32> loc("fc1.weight")
  %1 = graph.weight {name = "fc1.bias"} : tensor<4xf32> loc("fc1.bias")
  %2 = graph.linear %arg0, %0, %1 : tensor<2x3x4xf32> loc("fc1")
  %3 = graph.gelu %2 {approximate = "tanh"} : tensor<2x3x4xf32> loc("act1")
  %4 = graph.weight {name = "fc2"} : tensor<4x4xf32> loc("fc2.weight")
  %5 = graph.matmul %3, %4 : tensor<2x3x4xf32> loc("fc2")
  %6 = graph.silu %5 : tensor<2x3x4xf32> loc("act2")
  %7 = graph.linear %6, %4 : tensor<2x3x4xf32> loc("fc3")
  return %7
}

// -----

// Each activation kind maps to its epilogue.
func @epilogues(%arg0: tensor<4x8xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>) {
  %0 = graph.weight {name = "w"} : tensor<4x8xf32> loc("w")
  %1 = graph.linear %arg0, %0 : tensor<4x4xf32> loc("a")
  %2 = graph.relu %1 : tensor<4x4xf32> loc("relu")
  %3 = graph.linear %arg0, %0 : tensor<4x4xf32> loc("b")
  %4 = graph.gelu %3 : tensor<4x4xf32> loc("gelu")
  %5 = graph.linear %arg0, %0 : tensor<4x4xf32> loc("c")
  %6 = graph.gelu %5 {approximate = "none"} : tensor<4x4xf32> loc("gelu_none")
  return %2, %4, %6
}

// -----

// No fusion when the gemm's result has another use (here: it is also returned).
func @shared_result(%arg0: tensor<2x8xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %0 = graph.weight {name = "w"} : tensor<4x8xf32> loc("w")
  %1 = graph.linear %arg0, %0 : tensor<2x4xf32> loc("fc")
  %2 = graph.relu %1 : tensor<2x4xf32> loc("relu")
  return %2, %1
}

// -----

// Not lowered: a matmul whose rhs is not a weight, a matmul by a rank-1 weight, a
// linear on a vector.
func @not_lowered(%arg0: tensor<2x8xf32>, %arg1: tensor<8x4xf32>, %arg2: tensor<8xf32>) -> (tensor<2x4xf32>, tensor<2xf32>, tensor<4xf32>) {
  %0 = graph.matmul %arg0, %arg1 : tensor<2x4xf32> loc("mm")
  %1 = graph.weight {name = "v"} : tensor<8xf32> loc("v")
  %2 = graph.matmul %arg0, %1 : tensor<2xf32> loc("mv")
  %3 = graph.weight {name = "w"} : tensor<4x8xf32> loc("w")
  %4 = graph.linear %arg2, %3 : tensor<4xf32> loc("vec")
  return %0, %2, %4
}
