// RUN: lowbit opt %s --split-input-file --pass-pipeline='smooth-attention{q=false}' --pass-stats

// Only R1: the mask operand passes through unchanged.
func @k_only(%arg0: tensor<1x1x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>, %arg3: tensor<1x1x4x4xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2, %arg3 {causal = true, scale = 0.5 : f32} : tensor<1x1x4x2xf32>
  return %0
}

