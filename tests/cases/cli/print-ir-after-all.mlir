// RUN: lowbit opt %s --pass-pipeline=canonicalize,cse,dce --print-ir-after-all

// Every pass dumps the module to stderr under MLIR's banner, whether or not it changed it.
func @f(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = graph.constant {value = dense<2.0> : tensor<4xf32>} : tensor<4xf32>
  %1 = graph.sqrt %0 : tensor<4xf32>
  %2 = graph.mul %arg0, %1 : tensor<4xf32>
  %3 = graph.mul %arg0, %1 : tensor<4xf32>
  %4 = graph.add %2, %3 : tensor<4xf32>
  return %4
}
