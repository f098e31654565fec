// RUN: lowbit opt %s --pass-pipeline='canonicalize{max-fold-elements=2},cse,canonicalize{ max-fold-elements=8 },dce' --pass-stats

// Passes may repeat with different options; statistics are per pipeline element.
func @f(%arg0: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = graph.constant {value = dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>} : tensor<4xf32>
  %1 = graph.exp %0 : tensor<4xf32>
  %2 = graph.exp %0 : tensor<4xf32>
  %3 = graph.add %arg0, %1 : tensor<4xf32>
  %4 = graph.add %arg0, %2 : tensor<4xf32>
  return %3, %4
}
