// RUN: lowbit opt %s --pass-pipeline='quantize-attention{granularity=per-thread warp-q=12}'

// Per-thread groups follow 8-row MMA fragments: the warp slab is a multiple of 8.
func @f(%arg0: tensor<1x1x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.5 : f32} : tensor<1x1x4x2xf32>
  return %0
}
