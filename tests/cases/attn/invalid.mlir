// RUN: lowbit opt %s --split-input-file --verify-diagnostics

// The declared result shape differs from the inferred [B, H, N, dv].
func @result_type(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x4x8xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sdpa %arg0, %arg0, %arg1 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Queries are [B, H, N, d].
func @q_rank(%arg0: tensor<2x4x4xf32>, %arg1: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg1 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Attention computes in floats.
func @q_elem(%arg0: tensor<1x2x4x4xi8>) -> tensor<1x2x4x4xi8> {
  %0 = attn.sdpa %arg0, %arg0, %arg0 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xi8>
  return %0
}

// -----

// q, k and v share an element type.
func @kv_elem(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg1 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// q and k share a batch size.
func @batch(%arg0: tensor<2x2x4x4xf32>, %arg1: tensor<1x2x4x4xf32>) -> tensor<2x2x4x4xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg1 {causal = false, scale = 0.5 : f32} : tensor<2x2x4x4xf32>
  return %0
}

// -----

// q and k share a head dim.
func @head_dim(%arg0: tensor<1x2x4x8xf32>, %arg1: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg1 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// k and v share a batch size.
func @kv_batch(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<2x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sdpa %arg0, %arg0, %arg1 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// k and v have the same number of heads.
func @kv_heads(%arg0: tensor<1x4x4x4xf32>, %arg1: tensor<1x2x4x4xf32>, %arg2: tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.5 : f32} : tensor<1x4x4x4xf32>
  return %0
}

// -----

// k and v have the same sequence length.
func @kv_len(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x6x4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg0 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Query heads are a multiple of key/value heads.
func @gqa(%arg0: tensor<1x6x2x4xf32>, %arg1: tensor<1x4x2x4xf32>) -> tensor<1x6x2x4xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg1 {causal = false, scale = 0.5 : f32} : tensor<1x6x2x4xf32>
  return %0
}

// -----

// Masks are additive floats or i1.
func @mask_elem(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<4x4xi32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sdpa %arg0, %arg0, %arg0, %arg1 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Masks broadcast to the scores [B, H, N, M].
func @mask_shape(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x3x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sdpa %arg0, %arg0, %arg0, %arg1 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Quantized Q·K runs in i8, i4 or f8.
func @qk_format(%arg0: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  %0 = attn.quantized_sdpa %arg0, %arg0, %arg0 {causal = false, k_block = 4 : i64, pv = "f16", q_block = 4 : i64, qk = "i2", scale = 0.5 : f32, smooth_k = true, smooth_q = true} : tensor<1x2x4x4xf16>
  return %0
}

// -----

// Quantized P·V runs in f16, f8 or i8.
func @pv_format(%arg0: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  %0 = attn.quantized_sdpa %arg0, %arg0, %arg0 {causal = false, k_block = 4 : i64, pv = "bf16", q_block = 4 : i64, qk = "i8", scale = 0.5 : f32, smooth_k = true, smooth_q = true} : tensor<1x2x4x4xf16>
  return %0
}

// -----

// Quantization blocks hold at least one token.
func @q_block(%arg0: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  %0 = attn.quantized_sdpa %arg0, %arg0, %arg0 {causal = false, k_block = 4 : i64, pv = "f16", q_block = 0 : i64, qk = "i8", scale = 0.5 : f32, smooth_k = true, smooth_q = true} : tensor<1x2x4x4xf16>
  return %0
}

// -----

// The Q/K quantization granularities are those of techniques.md §1.2.
func @granularity(%arg0: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  %0 = attn.quantized_sdpa %arg0, %arg0, %arg0 {causal = false, granularity = "per-lane", k_block = 64 : i64, pv = "f8", q_block = 128 : i64, qk = "i4", scale = 0.5 : f32, smooth_k = true, smooth_q = true} : tensor<1x2x4x4xf16>
  return %0
}

// -----

// Per-thread groups follow 8-row MMA fragments: warp_q is a multiple of 8.
func @per_thread_warp_q(%arg0: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  %0 = attn.quantized_sdpa %arg0, %arg0, %arg0 {causal = false, granularity = "per-thread", k_block = 64 : i64, pv = "f8", q_block = 128 : i64, qk = "i4", scale = 0.5 : f32, smooth_k = true, smooth_q = true, warp_q = 12 : i64} : tensor<1x2x4x4xf16>
  return %0
}

// -----

// ... and k_block too (4 key groups of 2 per 8 keys).
func @per_thread_k_block(%arg0: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  %0 = attn.quantized_sdpa %arg0, %arg0, %arg0 {causal = false, granularity = "per-thread", k_block = 4 : i64, pv = "f8", q_block = 128 : i64, qk = "i4", scale = 0.5 : f32, smooth_k = true, smooth_q = true} : tensor<1x2x4x4xf16>
  return %0
}

// -----

// warp_q only means something for the warp-based granularities.
func @warp_q_per_block(%arg0: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  %0 = attn.quantized_sdpa %arg0, %arg0, %arg0 {causal = false, k_block = 64 : i64, pv = "f8", q_block = 128 : i64, qk = "i4", scale = 0.5 : f32, smooth_k = true, smooth_q = true, warp_q = 32 : i64} : tensor<1x2x4x4xf16>
  return %0
}

// -----

// Q smoothing blocks hold at least one query.
func @smooth_q_block(%arg0: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  %0 = attn.quantized_sdpa %arg0, %arg0, %arg0 {causal = false, k_block = 64 : i64, pv = "f8", q_block = 128 : i64, qk = "i4", scale = 0.5 : f32, smooth_k = true, smooth_q = true, smooth_q_block = 0 : i64} : tensor<1x2x4x4xf16>
  return %0
}

// -----

// P is the normalized softmax or the online P̃.
func @p_mode(%arg0: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  %0 = attn.quantized_sdpa %arg0, %arg0, %arg0 {causal = false, k_block = 64 : i64, p = "lazy", pv = "f8", q_block = 128 : i64, qk = "i4", scale = 0.5 : f32, smooth_k = true, smooth_q = true} : tensor<1x2x4x4xf16>
  return %0
}

// -----

// Attribute kinds are checked: granularity is a string.
func @granularity_kind(%arg0: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  %0 = attn.quantized_sdpa %arg0, %arg0, %arg0 {causal = false, granularity = 8 : i64, k_block = 64 : i64, pv = "f8", q_block = 128 : i64, qk = "i4", scale = 0.5 : f32, smooth_k = true, smooth_q = true} : tensor<1x2x4x4xf16>
  return %0
}

// -----

// Block-sparse block masks are i1.
func @block_mask_elem(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x1x2x2xi8>) -> tensor<1x2x4x4xf32> {
  %0 = attn.block_sparse_sdpa %arg0, %arg0, %arg0, %arg1 {block_k = 2 : i64, block_q = 2 : i64, causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Block masks are rank 4.
func @block_mask_rank(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<2x2xi1>) -> tensor<1x2x4x4xf32> {
  %0 = attn.block_sparse_sdpa %arg0, %arg0, %arg0, %arg1 {block_k = 2 : i64, block_q = 2 : i64, causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Block masks have one entry per (query block, key block).
func @block_mask_shape(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x2x2xi1>) -> tensor<1x2x4x4xf32> {
  %0 = attn.block_sparse_sdpa %arg0, %arg0, %arg0, %arg1 {block_k = 2 : i64, block_q = 4 : i64, causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// A block-sparse element mask broadcasts to the scores [B, H, N, M].
func @block_sparse_mask_shape(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x2x2xi1>, %arg2: tensor<1x1x1x3xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.block_sparse_sdpa %arg0, %arg0, %arg0, %arg1, %arg2 {block_k = 2 : i64, block_q = 2 : i64, causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Block sizes are positive.
func @block_size(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x2x2xi1>) -> tensor<1x2x4x4xf32> {
  %0 = attn.block_sparse_sdpa %arg0, %arg0, %arg0, %arg1 {block_k = -2 : i64, block_q = 2 : i64, causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Sparse-linear block masks hold -1, 0 or 1, so they are signed integers.
func @sla_mask_elem(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x2x2xui8>, %arg2: tensor<4x4xf32>, %arg3: tensor<4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sparse_linear %arg0, %arg0, %arg0, %arg1, %arg2, %arg3 {block_k = 2 : i64, block_q = 2 : i64, feature_map = "softmax", scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// The linear branch's projection is [dv, dv].
func @sla_proj(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x2x2xi8>, %arg2: tensor<4x2xf32>, %arg3: tensor<4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sparse_linear %arg0, %arg0, %arg0, %arg1, %arg2, %arg3 {block_k = 2 : i64, block_q = 2 : i64, feature_map = "softmax", scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// The projection shares the queries' element type.
func @sla_proj_elem(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x2x2xi8>, %arg2: tensor<4x4xf16>, %arg3: tensor<4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sparse_linear %arg0, %arg0, %arg0, %arg1, %arg2, %arg3 {block_k = 2 : i64, block_q = 2 : i64, feature_map = "softmax", scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Sparse-linear feature maps are "softmax", "elu1" or "relu".
func @sla_feature_map(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<1x2x2x2xi8>, %arg2: tensor<4x4xf32>, %arg3: tensor<4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sparse_linear %arg0, %arg0, %arg0, %arg1, %arg2, %arg3 {block_k = 2 : i64, block_q = 2 : i64, feature_map = "exp", scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Linear-attention feature maps are "elu1", "relu" or "softmax".
func @linear_feature_map(%arg0: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.linear_attention %arg0, %arg0, %arg0 {causal = false, feature_map = "cos"} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Linear-attention epsilon is non-negative.
func @linear_epsilon(%arg0: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.linear_attention %arg0, %arg0, %arg0 {causal = false, epsilon = -1.0 : f32, feature_map = "elu1"} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// Sigmoid attention takes no mask operand.
func @sigmoid_mask(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<4x4xf32>) -> tensor<1x2x4x4xf32> {
  %0 = attn.sigmoid_attention %arg0, %arg0, %arg0, %arg1 {bias = 0.0 : f32, causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}
