// RUN: lowbit opt %s --split-input-file --pass-pipeline='sparsify-attention{block=4 keep=0.5}' --pass-stats --diff-numerics=random:3

// A padding mask [B, 1, 1, M] (the importers' form, here a constant hiding keys 8..15)
// stays the block_sparse_sdpa's mask operand, and the block estimate becomes
// scale · pooled-q·pooled-k plus the max of the mask over each key block (reduce max over
// the block axis): the two all-masked key blocks rank last, so with keep=0.5 (K_i = 2 of 4)
// every row keeps exactly the two visible blocks (plus the forced diagonal, whose keys the
// mask hides anyway) and the result equals dense masked attention up to float rounding —
// diff-numerics shows an error at the f32 rounding level, not an approximation.
func @padding(%q: tensor<1x2x16x8xf32>, %k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>) -> tensor<1x2x16x8xf32> {
  %m = graph.constant {value = dense<[[[[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -3.0e38, -3.0e38, -3.0e38, -3.0e38, -3.0e38, -3.0e38, -3.0e38, -3.0e38]]]]> : tensor<1x1x1x16xf32>} : tensor<1x1x1x16xf32>
  %0 = attn.sdpa %q, %k, %v, %m {causal = false, scale = 0.35355339 : f32} : tensor<1x2x16x8xf32>
  return %0
}

// -----

// An i1 keep-mask with a query axis [B, H, N, M] is pooled over query and key blocks
// (reduce max over both block axes of the kept-as-1.0 mask; a block with no kept key
// scores -max) and applied inside the kept blocks. APPROX: on random inputs and random
// masks, dropping half of the 2 × 2 blocks changes the output a lot (cosine ≈ 0.8).
func @keep_mask(%q: tensor<1x2x8x8xf32>, %m: tensor<1x2x8x8xi1>) -> tensor<1x2x8x8xf32> {
  %0 = attn.sdpa %q, %q, %q, %m {causal = false, scale = 0.35355339 : f32} : tensor<1x2x8x8xf32>
  return %0
}
