// RUN: lowbit opt %s --pass-pipeline='quantize-attention{warp-q=16}'

// warp-q only applies to the per-warp and per-thread granularities.
func @f(%arg0: tensor<1x1x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.5 : f32} : tensor<1x1x4x2xf32>
  return %0
}
