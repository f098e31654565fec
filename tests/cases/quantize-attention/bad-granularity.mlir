// RUN: lowbit opt %s --pass-pipeline='quantize-attention{qk=i4 granularity=per-lane}'

// The granularities are those of techniques.md §1.2; the error points at the value.
func @f(%arg0: tensor<1x1x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.5 : f32} : tensor<1x1x4x2xf32>
  return %0
}
