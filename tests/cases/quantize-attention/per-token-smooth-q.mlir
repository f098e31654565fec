// RUN: lowbit opt %s --pass-pipeline='quantize-attention{qk=i4 pv=f8 granularity=per-token smooth-q=true}'

// Per-token INT4 with Q+K smoothing in one op: Q is smoothed per q-block (128 queries)
// while each token is its own quantization group (no smooth-attention pass needed).
func @f(%arg0: tensor<1x1x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.5 : f32} : tensor<1x1x4x2xf32>
  return %0
}
