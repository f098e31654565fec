//! The `kernel` dialect table: fused kernels the code generators emit directly.
//!
//! Produced by `lower-to-kernel` from `graph`/`attn` ops; each op is one loop nest in the
//! generated code. Schedule attributes (tiles) are hints the code generator may honour.

crate::dialect! {
    /// Fused kernels.
    name = "kernel";

    /// `out = epilogue(a · b + bias)` with `a [..., M, K]`, `b [K, N]` (or `[N, K]` when
    /// `transpose_b`), `bias [N]`; `epilogue` is `"none"`, `"relu"`, `"gelu"`, `"gelu_tanh"`
    /// or `"silu"`.
    Gemm "gemm" (a, b, opt(bias)) -> (out) [Pure] {
        req transpose_b: Bool, req epilogue: Str, opt tile_m: Int, opt tile_n: Int
    };
    /// Attention with the `attn.sdpa` semantics, one query row at a time with a streaming
    /// softmax.
    Attention "attention" (q, k, v, opt(mask)) -> (out) [Pure] { req scale: Float, req causal: Bool };
    /// `layer_norm(x + residual)` over the last dim.
    AddLayerNorm "add_layer_norm" (x, residual, gamma, beta) -> (y) [Pure] { req epsilon: Float };
}
