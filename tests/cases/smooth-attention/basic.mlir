// RUN: lowbit opt %s --split-input-file --pass-pipeline='smooth-attention{q-block=2}' --pass-stats

// K smoothing (R1): k minus its token mean. Q smoothing (R2): q minus the mean of each
// 2-query block, and ΔS = scale · q̄ · k'ᵀ added back as the additive mask.
func @plain(%arg0: tensor<1x1x4x2xf32>, %arg1: tensor<1x1x3x2xf32>, %arg2: tensor<1x1x3x2xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.5 : f32} : tensor<1x1x4x2xf32>
  return %0
}

// -----

// Causal, grouped KV heads (2 query heads per KV head: q̄ is reshaped to
// [B, Hkv, 2·N, d] for the ΔS matmul) and an i1 mask: hidden keys stay -inf through
// select(mask, ΔS, -inf); causal stays on the op.
func @causal_gqa_i1(%arg0: tensor<1x2x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>, %arg3: tensor<1x1x4x4xi1>) -> tensor<1x2x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2, %arg3 {causal = true, scale = 0.5 : f32} : tensor<1x2x4x2xf32>
  return %0
}

// -----

// A float padding mask of another float type is cast, then ΔS is added.
func @float_mask(%arg0: tensor<1x1x2x2xf32>, %arg1: tensor<1x1x2x2xf32>, %arg2: tensor<1x1x2x2xf32>, %arg3: tensor<1x1x1x2xf16>) -> tensor<1x1x2x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2, %arg3 {causal = false, scale = 0.5 : f32} : tensor<1x1x2x2xf32>
  return %0
}

// -----

// Nothing to do without attention.
func @none(%arg0: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %0 = graph.softmax %arg0 {axis = -1} : tensor<2x2xf32>
  return %0
}
