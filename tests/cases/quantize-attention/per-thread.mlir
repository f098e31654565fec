// RUN: lowbit opt %s --pass-pipeline='quantize-attention{qk=i4 pv=f8 granularity=per-thread smooth-q=true smooth-q-block=128 p=online}'

// SageAttention2-4b: INT4 Q/K in per-thread groups (8 query groups per 32-query warp
// slab, 4 key groups per 64-key block), Q smoothed per 128 queries independently of the
// groups, blocked online P̃ in e4m3. The op records the granularity, the warp slab and the
// smoothing block; q_block stays the default.
func @f(%arg0: tensor<1x1x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = true, scale = 0.5 : f32} : tensor<1x1x4x2xf32>
  return %0
}
