// RUN: lowbit opt %s --split-input-file --pass-pipeline='canonicalize{max-fold-elements=4}'

// Results with more than max-fold-elements elements are not folded.
func @too_big() -> tensor<8xf32> {
  %0 = graph.constant {value = dense<1.0> : tensor<8xf32>} : tensor<8xf32>
  %1 = graph.neg %0 : tensor<8xf32>
  return %1
}

// -----

// Results within the limit are.
func @small_enough() -> tensor<4xf32> {
  %0 = graph.constant {value = dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>} : tensor<4xf32>
  %1 = graph.neg %0 : tensor<4xf32>
  return %1
}
