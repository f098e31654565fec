// RUN: lowbit opt %s --split-input-file --pass-pipeline=fuse-attention --pass-stats

// The scores have another use (returned): nothing is fused.
func @scores_used(%arg0: tensor<1x2x8x16xf32>, %arg1: tensor<1x2x16x8xf32>, %arg2: tensor<1x2x8x16xf32>) -> (tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>) {
  %0 = graph.matmul %arg0, %arg1 : tensor<1x2x8x8xf32>
  %1 = graph.softmax %0 {axis = -1 : i64} : tensor<1x2x8x8xf32>
  %2 = graph.matmul %1, %arg2 : tensor<1x2x8x16xf32>
  return %2, %0
}

// -----

// The probabilities have another use.
func @probs_used(%arg0: tensor<1x2x8x16xf32>, %arg1: tensor<1x2x16x8xf32>, %arg2: tensor<1x2x8x16xf32>) -> (tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>) {
  %0 = graph.matmul %arg0, %arg1 : tensor<1x2x8x8xf32>
  %1 = graph.softmax %0 {axis = -1 : i64} : tensor<1x2x8x8xf32>
  %2 = graph.matmul %1, %arg2 : tensor<1x2x8x16xf32>
  %3 = graph.log %1 : tensor<1x2x8x8xf32>
  return %2, %3
}

// -----

// Softmax over the query axis, not the key axis.
func @query_axis(%arg0: tensor<1x2x8x16xf32>, %arg1: tensor<1x2x16x8xf32>, %arg2: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<1x2x8x8xf32>
  %1 = graph.softmax %0 {axis = 2 : i64} : tensor<1x2x8x8xf32>
  %2 = graph.matmul %1, %arg2 : tensor<1x2x8x16xf32>
  return %2
}

// -----

// The scale is a run-time value, not a constant.
func @runtime_scale(%arg0: tensor<1x2x8x16xf32>, %arg1: tensor<1x2x16x8xf32>, %arg2: tensor<1x2x8x16xf32>, %arg3: tensor<f32>) -> tensor<1x2x8x16xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<1x2x8x8xf32>
  %1 = graph.mul %0, %arg3 : tensor<1x2x8x8xf32>
  %2 = graph.softmax %1 {axis = -1 : i64} : tensor<1x2x8x8xf32>
  %3 = graph.matmul %2, %arg2 : tensor<1x2x8x16xf32>
  return %3
}

// -----

// The scale comes after the mask add (it would scale the mask too).
func @scale_after_mask(%arg0: tensor<1x2x8x16xf32>, %arg1: tensor<1x2x16x8xf32>, %arg2: tensor<1x2x8x16xf32>, %arg3: tensor<1x1x1x8xf32>) -> tensor<1x2x8x16xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<1x2x8x8xf32>
  %1 = graph.add %0, %arg3 : tensor<1x2x8x8xf32>
  %2 = graph.constant {value = dense<0.25> : tensor<f32>} : tensor<f32>
  %3 = graph.mul %1, %2 : tensor<1x2x8x8xf32>
  %4 = graph.softmax %3 {axis = -1 : i64} : tensor<1x2x8x8xf32>
  %5 = graph.matmul %4, %arg2 : tensor<1x2x8x16xf32>
  return %5
}

// -----

// The probabilities are the right operand of the second matmul (v · p is not attention).
func @probs_on_the_right(%arg0: tensor<1x2x8x16xf32>, %arg1: tensor<1x2x16x8xf32>, %arg2: tensor<1x2x16x8xf32>) -> tensor<1x2x16x8xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<1x2x8x8xf32>
  %1 = graph.softmax %0 {axis = -1 : i64} : tensor<1x2x8x8xf32>
  %2 = graph.matmul %arg2, %1 : tensor<1x2x16x8xf32>
  return %2
}
