// RUN: lowbit opt %s --pass-pipeline='smooth-attention' --pass-stats

// The default q-block (128) does not divide N = 200: Q smoothing is skipped (counted),
// K smoothing still applies.
func @ragged(%arg0: tensor<1x1x200x2xf32>, %arg1: tensor<1x1x8x2xf32>, %arg2: tensor<1x1x8x2xf32>) -> tensor<1x1x200x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.5 : f32} : tensor<1x1x200x2xf32>
  return %0
}
