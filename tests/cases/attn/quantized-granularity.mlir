// RUN: lowbit opt %s --split-input-file

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
