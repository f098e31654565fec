// RUN: lowbit opt %s --split-input-file --pass-pipeline='sparsify-attention{block=4 keep=0.5}' --pass-stats

// An sdpa over 8 queries and 8 keys in blocks of 4 (2 × 2 blocks) becomes a
// block_sparse_sdpa whose block mask is computed from block-mean-pooled q and k: rank of
// each pooled estimate in its row, keep rank < ceil(0.5 · 2) = 1, or the forced first and
// diagonal blocks.
func @dense(%arg0: tensor<1x2x8x16xf32>, %arg1: tensor<1x2x8x16xf32>, %arg2: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.25 : f32} : tensor<1x2x8x16xf32>
  return %0
}

// -----

// Causal with grouped KV heads: pooled query heads of a group share their KV head's
// pooled keys ([B, Hkv, H/Hkv, nq, d] against [B, Hkv, 1, d, nk]); only the visible
// blocks compete (the [nq, 1, nk] visibility constant), and K_i counts visible blocks.
func @causal_gqa(%arg0: tensor<1x4x8x16xf32>, %arg1: tensor<1x2x8x16xf32>, %arg2: tensor<1x2x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = true, scale = 0.25 : f32} : tensor<1x4x8x16xf32>
  return %0
}

// -----

// Left alone: a mask that broadcasts over the keys (no per-key values to pool); a
// sequence that is not a multiple of the block.
func @skipped(%arg0: tensor<1x2x8x16xf32>, %arg1: tensor<1x1x8x1xf32>, %arg2: tensor<1x2x6x16xf32>) -> (tensor<1x2x8x16xf32>, tensor<1x2x6x16xf32>) {
  %0 = attn.sdpa %arg0, %arg0, %arg0, %arg1 {causal = false, scale = 0.25 : f32} : tensor<1x2x8x16xf32>
  %1 = attn.sdpa %arg2, %arg2, %arg2 {causal = false, scale = 0.25 : f32} : tensor<1x2x6x16xf32>
  return %0, %1
}
