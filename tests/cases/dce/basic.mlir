// RUN: lowbit opt %s --split-input-file --pass-pipeline=dce --pass-stats

// Unused ops go, whole chains at once; returned values and parameters stay.
func @dead_chain(%arg0: tensor<4xf32>, %arg1: tensor<4xf32>) -> tensor<4xf32> {
  %0 = graph.exp %arg0 : tensor<4xf32>
  %1 = graph.neg %0 : tensor<4xf32>
  %2 = graph.weight {name = "unused"} : tensor<4xf32>
  %3 = graph.add %1, %2 : tensor<4xf32>
  %4 = graph.relu %arg0 : tensor<4xf32>
  return %4
}

// -----

// One result of a multi-result op is used: the op stays.
func @partly_used(%arg0: tensor<4xf32>) -> tensor<2xf32> {
  %0, %1 = graph.split %arg0 {axis = 0 : i64} : tensor<2xf32>, tensor<2xf32>
  return %1
}

// -----

// Nothing to remove.
func @all_live(%arg0: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = graph.exp %arg0 : tensor<4xf32>
  return %0, %arg0
}
