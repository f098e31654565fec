// RUN: lowbit opt %s --pass-pipeline='rotate{where=kv}' --pass-stats --diff-numerics=random:2

// Q and K rotated by an online Hadamard after RoPE (R3; (QH)(KH)ᵀ = QKᵀ), GQA with two
// query heads per KV head. No weights are needed. Expected: one rot.hadamard on each of the
// two rope outputs feeding the sdpa, V untouched; zero error up to f32 rounding.
func @attn(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>, %cos: tensor<8x8xf32>, %sin: tensor<8x8xf32>) -> tensor<1x4x8x16xf32> {
  %qr = graph.rope %q, %cos, %sin {interleaved = false} : tensor<1x4x8x16xf32>
  %kr = graph.rope %k, %cos, %sin {interleaved = false} : tensor<1x2x8x16xf32>
  %o = attn.sdpa %qr, %kr, %v {causal = true, scale = 0.25 : f32} : tensor<1x4x8x16xf32>
  return %o
}
