// RUN: lowbit opt %s --pass-pipeline='smooth-attention{q-block=2},quantize-attention{qk=i4 pv=f8 q-block=1 k-block=1 smooth-k=false}'

// SageAttention2 with per-token INT4: the exact graph smoothing (ΔS as the mask), then
// per-token quantization of the centered q and k.
func @f(%arg0: tensor<1x1x4x2xf32>, %arg1: tensor<1x1x4x2xf32>, %arg2: tensor<1x1x4x2xf32>) -> tensor<1x1x4x2xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = true, scale = 0.5 : f32} : tensor<1x1x4x2xf32>
  return %0
}
