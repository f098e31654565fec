// RUN: lowbit opt %s --split-input-file --pass-pipeline=lower-to-kernel

// attn.sdpa becomes kernel.attention with the same operands and attributes, with or
// without a mask, with grouped KV heads.
func @sdpa(%arg0: tensor<1x4x8x16xf32>, %arg1: tensor<1x2x8x16xf32>, %arg2: tensor<1x2x8x16xf32>, %arg3: tensor<1x1x8x8xf32>) -> (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = true, scale = 0.25 : f32} : tensor<1x4x8x16xf32>
  %1 = attn.sdpa %arg0, %arg1, %arg2, %arg3 {causal = false, scale = 0.25 : f32} : tensor<1x4x8x16xf32>
  return %0, %1
}
