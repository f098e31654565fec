// RUN: lowbit opt %s --pass-pipeline='quantize-attention{qk=i8 pv=f8 granularity=per-warp warp-q=16}'

// Per-warp INT8 (Hopper's WARP_Q = 16): Q groups of 16 queries, K per 64-key block.
func @f(%arg0: tensor<1x1x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.5 : f32} : tensor<1x1x4x2xf32>
  return %0
}
