// RUN: lowbit opt %s --split-input-file --pass-pipeline=cse

// Equal ops merge into the first; merging an op makes its users equal too, so whole
// chains merge in one run. Operands of a commutative op match in either order.
func @chains(%arg0: tensor<4xf32>, %arg1: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = graph.add %arg0, %arg1 : tensor<4xf32>
  %1 = graph.add %arg1, %arg0 : tensor<4xf32>
  %2 = graph.exp %0 : tensor<4xf32>
  %3 = graph.exp %1 : tensor<4xf32>
  return %2, %3
}

// -----

// Equal constants and equal weight references merge.
func @constants_and_weights() -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2x2xf16>, tensor<2x2xf16>) {
  %0 = graph.constant {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %1 = graph.constant {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %2 = graph.constant {value = dense<[1.0, 3.0]> : tensor<2xf32>} : tensor<2xf32>
  %3 = graph.weight {name = "layers.0.w"} : tensor<2x2xf16>
  %4 = graph.weight {name = "layers.0.w"} : tensor<2x2xf16>
  return %0, %1, %2, %3, %4
}

// -----

// Kernel and attention ops merge like any pure op.
func @attention(%arg0: tensor<1x2x4x8xf32>, %arg1: tensor<1x2x4x8xf32>) -> (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) {
  %0 = attn.sdpa %arg0, %arg1, %arg1 {causal = true, scale = 0.35 : f32} : tensor<1x2x4x8xf32>
  %1 = attn.sdpa %arg0, %arg1, %arg1 {causal = true, scale = 0.35 : f32} : tensor<1x2x4x8xf32>
  return %0, %1
}
