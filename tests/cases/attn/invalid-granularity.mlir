// RUN: lowbit opt %s --split-input-file --verify-diagnostics

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
