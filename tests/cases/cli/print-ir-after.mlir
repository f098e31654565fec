// RUN: lowbit opt %s --pass-pipeline=cse,canonicalize,lower-to-kernel --print-ir-after=cse --print-ir-after=lower-to-kernel

// Dumps only after the named passes.
func @f(%arg0: tensor<2x8xf32>) -> tensor<2x4xf32> {
  %0 = graph.weight {name = "w"} : tensor<4x8xf32>
  %1 = graph.weight {name = "w"} : tensor<4x8xf32>
  %2 = graph.linear %arg0, %0 : tensor<2x4xf32>
  %3 = graph.linear %arg0, %1 : tensor<2x4xf32>
  %4 = graph.add %2, %3 : tensor<2x4xf32>
  %5 = graph.relu %4 : tensor<2x4xf32>
  return %5
}
