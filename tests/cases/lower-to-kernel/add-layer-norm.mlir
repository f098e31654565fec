// RUN: lowbit opt %s --split-input-file --pass-pipeline=lower-to-kernel --print-locs

// A residual add feeding a layer norm over the last axis becomes one kernel.
func @residual(%arg0: tensor<2x4x8xf32>, %arg1: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
  %0 = graph.add %arg0, %arg1 : tensor<2x4x8xf32> loc("residual")
  %1 = graph.weight {name = "ln.weight"} : tensor<8xf32> loc("ln.weight")
  %2 = graph.weight {name = "ln.bias"} : tensor<8xf32> loc("ln.bias")
  %3 = graph.layer_norm %0, %1, %2 {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x4x8xf32> loc("ln")
  return %3
}

// -----

// Left alone: the sum has another use; the norm covers two axes; the norm has no beta;
// the add broadcasts.
func @not_fused(%arg0: tensor<2x8xf32>, %arg1: tensor<2x8xf32>, %arg2: tensor<8xf32>, %arg3: tensor<2x8xf32>, %arg4: tensor<8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>) {
  %0 = graph.add %arg0, %arg1 : tensor<2x8xf32> loc("sum0")
  %1 = graph.layer_norm %0, %arg2, %arg2 {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x8xf32> loc("ln0")
  %2 = graph.add %arg0, %arg1 : tensor<2x8xf32> loc("sum1")
  %3 = graph.layer_norm %2, %arg3, %arg3 {axis = 0 : i64, epsilon = 1.0e-5 : f32} : tensor<2x8xf32> loc("ln1")
  %4 = graph.add %arg1, %arg0 : tensor<2x8xf32> loc("sum2")
  %5 = graph.layer_norm %4, %arg2 {axis = 1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x8xf32> loc("ln2")
  %6 = graph.add %arg0, %arg4 : tensor<2x8xf32> loc("sum3")
  %7 = graph.layer_norm %6, %arg2, %arg2 {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x8xf32> loc("ln3")
  return %1, %0, %3, %5, %7
}
