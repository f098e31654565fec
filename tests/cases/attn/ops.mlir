// RUN: lowbit opt %s --split-input-file

// Scaled dot-product attention: multi-head, grouped-query (GQA) and multi-query (MQA)
// heads, float and i1 masks of several ranks, causal, N != M and dv != d.
func @sdpa(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x4x4xf32>, %arg2: tensor<1x2x4x4xf32>, %arg3: tensor<1x4x2x4xf16>, %arg4: tensor<1x2x6x4xf16>, %arg5: tensor<1x2x6x2xf16>, %arg6: tensor<1x1x2x6xf16>, %arg7: tensor<4x4xi1>, %arg8: tensor<2x4x1x4xbf16>, %arg9: tensor<2x1x3x4xbf16>, %arg10: tensor<2x1x3x4xbf16>, %arg11: tensor<2x1x1x3xi1>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x4x2x2xf16>, tensor<2x4x1x4xbf16>) {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  %1 = attn.sdpa %arg0, %arg1, %arg2, %arg7 {causal = true, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  %2 = attn.sdpa %arg3, %arg4, %arg5, %arg6 {causal = true, scale = 0.5 : f32} : tensor<1x4x2x2xf16>
  %3 = attn.sdpa %arg8, %arg9, %arg10, %arg11 {causal = false, scale = 0.5 : f32} : tensor<2x4x1x4xbf16>
  return %0, %1, %2, %3
}

// -----

// SageAttention-style quantized attention with each Q·K and P·V precision.
func @quantized_sdpa(%arg0: tensor<1x2x4x4xf16>, %arg1: tensor<1x1x4x4xf16>, %arg2: tensor<1x1x4x4xf16>, %arg3: tensor<1x2x4x4xf16>) -> (tensor<1x2x4x4xf16>, tensor<1x2x4x4xf16>, tensor<1x2x4x4xf16>) {
  %0 = attn.quantized_sdpa %arg0, %arg1, %arg2 {causal = true, k_block = 4 : i64, pv = "f16", q_block = 2 : i64, qk = "i8", scale = 0.5 : f32, smooth_k = true, smooth_q = true} : tensor<1x2x4x4xf16>
  %1 = attn.quantized_sdpa %arg0, %arg1, %arg2, %arg3 {causal = false, k_block = 2 : i64, pv = "i8", q_block = 4 : i64, qk = "i4", scale = 0.5 : f32, smooth_k = true, smooth_q = false} : tensor<1x2x4x4xf16>
  %2 = attn.quantized_sdpa %arg0, %arg1, %arg2 {causal = false, k_block = 64 : i64, pv = "f8", q_block = 128 : i64, qk = "f8", scale = 0.5 : f32, smooth_k = false, smooth_q = false} : tensor<1x2x4x4xf16>
  return %0, %1, %2
}

// -----

// attn.quantized_sdpa with the optional grouping attributes: per-thread groups with a
// separate Q smoothing block and online P̃, per-warp with a 16-query slab, per-token, and
// per-block written out (the default, the same as leaving granularity out).
func @granularities(%arg0: tensor<1x2x64x8xf16>, %arg1: tensor<1x1x64x8xf16>, %arg2: tensor<1x1x64x8xf16>) -> (tensor<1x2x64x8xf16>, tensor<1x2x64x8xf16>, tensor<1x2x64x8xf16>, tensor<1x2x64x8xf16>) {
  %0 = attn.quantized_sdpa %arg0, %arg1, %arg2 {causal = true, granularity = "per-thread", k_block = 64 : i64, p = "online", pv = "f8", q_block = 128 : i64, qk = "i4", scale = 0.5 : f32, smooth_k = true, smooth_q = true, smooth_q_block = 128 : i64, warp_q = 32 : i64} : tensor<1x2x64x8xf16>
  %1 = attn.quantized_sdpa %arg0, %arg1, %arg2 {causal = false, granularity = "per-warp", k_block = 64 : i64, pv = "f16", q_block = 128 : i64, qk = "i8", scale = 0.5 : f32, smooth_k = true, smooth_q = false, warp_q = 16 : i64} : tensor<1x2x64x8xf16>
  %2 = attn.quantized_sdpa %arg0, %arg1, %arg2 {causal = false, granularity = "per-token", k_block = 64 : i64, p = "normalized", pv = "i8", q_block = 128 : i64, qk = "f8", scale = 0.5 : f32, smooth_k = false, smooth_q = true} : tensor<1x2x64x8xf16>
  %3 = attn.quantized_sdpa %arg0, %arg1, %arg2 {causal = false, granularity = "per-block", k_block = 32 : i64, pv = "f16", q_block = 16 : i64, qk = "i8", scale = 0.5 : f32, smooth_k = true, smooth_q = true, smooth_q_block = 64 : i64} : tensor<1x2x64x8xf16>
  return %0, %1, %2, %3
}

// -----

// Block-sparse attention: block masks broadcasting over batch and heads, blocks that
// do not divide the sequence lengths, and an element mask (a [B, 1, 1, M] padding mask).
func @block_sparse_sdpa(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x6x4xf32>, %arg2: tensor<1x2x6x4xf32>, %arg3: tensor<1x1x2x2xi1>, %arg4: tensor<1x2x2x6xi1>, %arg5: tensor<1x1x1x6xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %0 = attn.block_sparse_sdpa %arg0, %arg1, %arg2, %arg3 {block_k = 4 : i64, block_q = 2 : i64, causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  %1 = attn.block_sparse_sdpa %arg0, %arg1, %arg2, %arg4 {block_k = 1 : i64, block_q = 3 : i64, causal = true, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  %2 = attn.block_sparse_sdpa %arg0, %arg1, %arg2, %arg3, %arg5 {block_k = 4 : i64, block_q = 2 : i64, causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0, %1, %2
}

// -----

// Sparse-linear attention with each feature map, GQA heads and an i32 or i8 block mask.
func @sparse_linear(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x1x4x4xf32>, %arg2: tensor<1x1x4x4xf32>, %arg3: tensor<1x2x2x2xi8>, %arg4: tensor<4x4xf32>, %arg5: tensor<4xf32>, %arg6: tensor<1x1x1x1xi32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %0 = attn.sparse_linear %arg0, %arg1, %arg2, %arg3, %arg4, %arg5 {block_k = 2 : i64, block_q = 2 : i64, feature_map = "softmax", scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  %1 = attn.sparse_linear %arg0, %arg1, %arg2, %arg3, %arg4, %arg5 {block_k = 2 : i64, block_q = 2 : i64, feature_map = "elu1", scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  %2 = attn.sparse_linear %arg0, %arg1, %arg2, %arg6, %arg4, %arg5 {block_k = 4 : i64, block_q = 4 : i64, feature_map = "relu", scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0, %1, %2
}

// -----

// Linear attention with each feature map, causal or not, with and without epsilon.
func @linear_attention(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x4x4xf32>, %arg2: tensor<1x2x4x2xf32>) -> (tensor<1x2x4x2xf32>, tensor<1x2x4x2xf32>, tensor<1x2x4x2xf32>) {
  %0 = attn.linear_attention %arg0, %arg1, %arg2 {causal = false, feature_map = "elu1"} : tensor<1x2x4x2xf32>
  %1 = attn.linear_attention %arg0, %arg1, %arg2 {causal = true, epsilon = 1.0e-6 : f32, feature_map = "relu"} : tensor<1x2x4x2xf32>
  %2 = attn.linear_attention %arg0, %arg1, %arg2 {causal = true, epsilon = 0.0 : f32, feature_map = "softmax"} : tensor<1x2x4x2xf32>
  return %0, %1, %2
}

// -----

// Sigmoid attention, with MHA and GQA heads.
func @sigmoid_attention(%arg0: tensor<1x2x4x4xbf16>, %arg1: tensor<1x2x4x4xbf16>, %arg2: tensor<1x1x4x4xbf16>) -> (tensor<1x2x4x4xbf16>, tensor<1x2x4x4xbf16>) {
  %0 = attn.sigmoid_attention %arg0, %arg1, %arg1 {bias = -1.3862944 : f32, causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xbf16>
  %1 = attn.sigmoid_attention %arg0, %arg2, %arg2 {bias = 0.0 : f32, causal = true, scale = 0.5 : f32} : tensor<1x2x4x4xbf16>
  return %0, %1
}
