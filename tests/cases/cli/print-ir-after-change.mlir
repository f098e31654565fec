// RUN: lowbit opt %s --pass-pipeline=dce,cse,dce,canonicalize --print-ir-after-change

// Only the passes that changed something dump (here cse, then canonicalize's folding).
func @f(%arg0: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = graph.exp %arg0 : tensor<4xf32>
  %1 = graph.exp %arg0 : tensor<4xf32>
  %2 = graph.constant {value = dense<[0.0, 1.0, 4.0, 9.0]> : tensor<4xf32>} : tensor<4xf32>
  %3 = graph.sqrt %2 : tensor<4xf32>
  %4 = graph.add %1, %3 : tensor<4xf32>
  return %0, %4
}
