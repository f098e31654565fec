// RUN: lowbit opt %s --pass-pipeline='quantize-attention' --pass-stats

// Defaults: SageAttention v1 (int8 QK per block of 128 queries / 64 keys, K smoothing,
// P and V in f16).
func @f(%arg0: tensor<1x1x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.5 : f32} : tensor<1x1x4x2xf32>
  return %0
}
