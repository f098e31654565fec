// RUN: lowbit opt %s --split-input-file --pass-pipeline=cse

// Different attributes: nothing merges.
func @attributes(%arg0: tensor<2x4xf32>, %arg1: tensor<1x2x4x8xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) {
  %0 = graph.softmax %arg0 {axis = 0 : i64} : tensor<2x4xf32>
  %1 = graph.softmax %arg0 {axis = 1 : i64} : tensor<2x4xf32>
  %2 = attn.sdpa %arg1, %arg1, %arg1 {causal = true, scale = 0.35 : f32} : tensor<1x2x4x8xf32>
  %3 = attn.sdpa %arg1, %arg1, %arg1 {causal = false, scale = 0.35 : f32} : tensor<1x2x4x8xf32>
  return %0, %1, %2, %3
}

// -----

// Floats are compared bit for bit: 0.0 and -0.0 differ.
func @signed_zero(%arg0: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %0 = graph.layer_norm %arg0 {axis = -1 : i64, epsilon = 0.0 : f32} : tensor<2x4xf32>
  %1 = graph.layer_norm %arg0 {axis = -1 : i64, epsilon = -0.0 : f32} : tensor<2x4xf32>
  return %0, %1
}

// -----

// Operand order matters for an op that is not commutative.
func @operand_order(%arg0: tensor<4xf32>, %arg1: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = graph.sub %arg0, %arg1 : tensor<4xf32>
  %1 = graph.sub %arg1, %arg0 : tensor<4xf32>
  return %0, %1
}

// -----

// Same operand and attributes, different result types.
func @result_types(%arg0: tensor<4xf32>) -> (tensor<4xf16>, tensor<4xbf16>, tensor<2x2xf32>, tensor<4x1xf32>) {
  %0 = graph.cast %arg0 : tensor<4xf16>
  %1 = graph.cast %arg0 : tensor<4xbf16>
  %2 = graph.reshape %arg0 : tensor<2x2xf32>
  %3 = graph.reshape %arg0 : tensor<4x1xf32>
  return %0, %1, %2, %3
}

// -----

// Elided constants hold unknown data: two of one type are not known to be equal.
func @elided() -> (tensor<32xf32>, tensor<32xf32>) {
  %0 = graph.constant {value = dense_resource<__elided__> : tensor<32xf32>} : tensor<32xf32>
  %1 = graph.constant {value = dense_resource<__elided__> : tensor<32xf32>} : tensor<32xf32>
  return %0, %1
}
