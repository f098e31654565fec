// RUN: lowbit opt %s --split-input-file --pass-pipeline=canonicalize

// A chain of ops on constants folds into one constant; the op reading an argument stays.
func @fold_chain(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  %0 = graph.constant {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %1 = graph.constant {value = dense<3.0> : tensor<2xf32>} : tensor<2xf32>
  %2 = graph.add %0, %1 : tensor<2xf32>
  %3 = graph.neg %2 : tensor<2xf32>
  %4 = graph.mul %arg0, %3 : tensor<2xf32>
  return %4
}

// -----

// Any op the interpreter evaluates folds: layout ops, reductions, softmax, casts, multi-result split.
func @fold_many() -> (tensor<3x2xf32>, tensor<2xf32>, tensor<2x3xf32>, tensor<2x3xf16>, tensor<1x3xi32>, tensor<1x3xi32>) {
  %0 = graph.constant {value = dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>} : tensor<2x3xf32>
  %1 = graph.transpose %0 {perm = array<i64: 1, 0>} : tensor<3x2xf32>
  %2 = graph.reduce %0 {axes = array<i64: 1>, keepdims = false, kind = "sum"} : tensor<2xf32>
  %3 = graph.softmax %0 {axis = 0 : i64} : tensor<2x3xf32>
  %4 = graph.cast %3 : tensor<2x3xf16>
  %5 = graph.cast %0 : tensor<2x3xi32>
  %6, %7 = graph.split %5 {axis = 0 : i64} : tensor<1x3xi32>, tensor<1x3xi32>
  return %1, %2, %3, %4, %6, %7
}

// -----

// A weight is never folded, nor anything computed from it; an elided constant is not
// folded either (its data is not in the IR).
func @no_fold_weights(%arg0: tensor<4xf32>) -> (tensor<4xf32>, tensor<32xf32>) {
  %0 = graph.weight {name = "w"} : tensor<4xf32>
  %1 = graph.neg %0 : tensor<4xf32>
  %2 = graph.constant {value = dense_resource<__elided__> : tensor<32xf32>} : tensor<32xf32>
  %3 = graph.exp %2 : tensor<32xf32>
  return %1, %3
}

// -----

// A zero-operand op such as causal_mask is left alone: folding it would only
// materialize the mask.
func @no_fold_masks() -> tensor<4x4xf32> {
  %0 = graph.causal_mask : tensor<4x4xf32>
  return %0
}
