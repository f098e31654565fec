// RUN: lowbit opt %s --split-input-file --pass-pipeline='quantize-attention{qk=i4 pv=f8 q-block=2 k-block=2 smooth-q=true}' --pass-stats

// Every attn.sdpa becomes an attn.quantized_sdpa with the recipe; operands, scale,
// causal and the mask are kept.
func @masked_causal(%arg0: tensor<1x2x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>, %arg3: tensor<1x1x1x4xf32>) -> tensor<1x2x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2, %arg3 {causal = true, scale = 0.5 : f32} : tensor<1x2x4x2xf32>
  return %0
}

// -----

// Nothing to do without attention; other attention ops are left alone.
func @none(%arg0: tensor<1x1x4x2xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.linear_attention %arg0, %arg0, %arg0 {causal = false, feature_map = "elu1"} : tensor<1x1x4x2xf32>
  return %0
}
