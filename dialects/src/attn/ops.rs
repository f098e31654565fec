//! The `attn` dialect table: attention as single ops.
//!
//! Layout: `q [B, H, N, d]`, `k [B, Hkv, M, d]`, `v [B, Hkv, M, dv]`, result `[B, H, N, dv]`.
//! `H` must be a multiple of `Hkv` (GQA/MQA): query head `h` reads KV head
//! `h / (H / Hkv)`. `scale` multiplies `q · kᵀ`. A mask broadcasts against `[B, H, N, M]`:
//! float masks are added to the scores, `i1` masks keep where true. `causal` hides key `j`
//! from query `i` when `j > i + M - N`.

crate::dialect! {
    /// Attention ops.
    name = "attn";

    /// `softmax(scale · q kᵀ + mask) v`.
    Sdpa "sdpa" (q, k, v, opt(mask)) -> (out) [Pure] { req scale: Float, req causal: Bool };
    /// SageAttention-style quantized attention (APPROX; techniques.md §1.1–1.2). K smoothing
    /// subtracts the per-head token mean of K (exact under softmax); Q smoothing subtracts
    /// the mean of Q per block of `smooth_q_block` queries (default `q_block`) and adds back
    /// `mean · kᵀ` in full precision. Q/K are quantized symmetrically to `qk` (`"i8"`, `"i4"`,
    /// `"f8"`) per group, the groups set by `granularity`: `"per-block"` (default) blocks of
    /// `q_block` queries / `k_block` keys; `"per-warp"` slabs of `warp_q` (default 32)
    /// queries / `k_block` keys; `"per-thread"` (SageAttention2) in each `warp_q` slab the 8
    /// query groups `{g, g+8, g+16, …}` and in each `k_block` block the 4 key groups
    /// `{8j+2t, 8j+2t+1}` (`warp_q`, `k_block` multiples of 8); `"per-token"` one group per
    /// query / key. P and V use `pv` (`"f16"`, `"f8"` with P scaled by 448 and V per
    /// channel, `"i8"`); `p` is `"normalized"` (default: the softmax, then quantized) or
    /// `"online"` (blocked online P̃ over `k_block` keys with a running max; the denominator
    /// sums the quantized P̃ for `"f8"`/`"i8"`, the unquantized one for `"f16"`).
    QuantizedSdpa "quantized_sdpa" (q, k, v, opt(mask)) -> (out) [Pure] {
        req scale: Float, req causal: Bool, req qk: Str, req pv: Str,
        req q_block: Int, req k_block: Int, req smooth_q: Bool, req smooth_k: Bool,
        opt granularity: Str, opt warp_q: Int, opt smooth_q_block: Int, opt p: Str
    };
    /// Block-sparse attention: `block_mask [B|1, H|1, ceil(N/block_q), ceil(M/block_k)]` (`i1`)
    /// keeps whole blocks; softmax renormalizes over kept keys; a row with none gives 0.
    /// The optional element `mask` acts as `sdpa`'s does, inside the kept blocks.
    BlockSparseSdpa "block_sparse_sdpa" (q, k, v, block_mask, opt(mask)) -> (out) [Pure] {
        req scale: Float, req causal: Bool, req block_q: Int, req block_k: Int
    };
    /// Sparse-linear attention (SLA, TRAINED): `block_mask` (integer) marks blocks critical
    /// (1), marginal (0) or negligible (-1). Critical blocks go through softmax attention,
    /// marginal ones through linear attention with `feature_map` (`"softmax"`, `"elu1"`,
    /// `"relu"`), projected by `proj_w [dv, dv]`, `proj_b [dv]`: `O = Oˢ + Oˡ·proj_wᵀ + proj_b`.
    /// A row with no marginal block has `Oˡ = 0`.
    SparseLinear "sparse_linear" (q, k, v, block_mask, proj_w, proj_b) -> (out) [Pure] {
        req scale: Float, req block_q: Int, req block_k: Int, req feature_map: Str
    };
    /// Linear attention `O_i = φ(q_i) Σ_j φ(k_j)ᵀ v_j / (φ(q_i) · Σ_j φ(k_j) + epsilon)`,
    /// prefix sums when `causal`; `feature_map` is `"elu1"`, `"relu"` or `"softmax"`.
    LinearAttention "linear_attention" (q, k, v) -> (out) [Pure] {
        req feature_map: Str, req causal: Bool, opt epsilon: Float
    };
    /// Sigmoid attention `σ(scale · q kᵀ + bias) v` (TRAINED).
    SigmoidAttention "sigmoid_attention" (q, k, v) -> (out) [Pure] {
        req scale: Float, req bias: Float, req causal: Bool
    };
}
