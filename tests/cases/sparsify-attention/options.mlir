// RUN: lowbit opt %s --pass-pipeline='sparsify-attention{keep=2}'

// keep must lie in (0, 1].
func @f(%arg0: tensor<1x1x128x8xf32>) -> tensor<1x1x128x8xf32> {
  %0 = attn.sdpa %arg0, %arg0, %arg0 {causal = false, scale = 0.25 : f32} : tensor<1x1x128x8xf32>
  return %0
}
