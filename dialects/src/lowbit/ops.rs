//! The `lowbit` dialect table: quantization as explicit, data-carrying ops.
//!
//! Scales and zero points are tensor operands; the granularity follows from their shape and
//! two attributes: no `axis` and rank-0 scales is per-tensor; `axis` alone is per-axis (scale
//! shape `[dim(axis)]`); `axis` and `block_size` is per-block (scale shape equal to the
//! operand's, except `ceil(dim(axis) / block_size)` along `axis`), as ONNX defines them.
//! A two-level scale is a `dequantize` of the scale tensor feeding another.

crate::dialect! {
    /// Quantization ops.
    name = "lowbit";

    /// `y = saturate(round_half_even(x / scale) + zero_point)` into the integer result type;
    /// for a float8/float4 result type, `y = saturate(round(x / scale))` in that format.
    Quantize "quantize" (x, scale, opt(zero_point)) -> (y) [Pure] { opt axis: Int, opt block_size: Int };
    /// `y = (q - zero_point) · scale`, in the float result type.
    Dequantize "dequantize" (q, scale, opt(zero_point)) -> (y) [Pure] { opt axis: Int, opt block_size: Int };
    /// Integer matmul with an exact integer accumulator and a scale epilogue:
    /// `out = (Σ_k (lhs - lhs_zero)(rhs - rhs_zero)) · lhs_scale · rhs_scale`, the scales
    /// broadcasting against the output (per-tensor, per-row `[..., M, 1]`, per-column `[N]`).
    QMatMul "qmatmul" (lhs, rhs, lhs_scale, rhs_scale, opt(lhs_zero), opt(rhs_zero)) -> (out) [Pure] {};
    /// Packs a 4-bit tensor `[..., n]` into `ui8 [..., ceil(n/2)]`, element `2i` in the low nibble.
    Pack "pack" (x) -> (y) [Pure] {};
    /// Unpacks `ui8 [..., m]` into the 4-bit result type `[..., n]` with `n` in `{2m - 1, 2m}`.
    Unpack "unpack" (x) -> (y) [Pure] {};
    /// Vector-quantization lookup: `indices [..., n]` into `codebook [K, v]` gives
    /// `[..., n · v]`, each index replaced by its codebook row.
    Codebook "codebook" (indices, codebook) -> (y) [Pure] {};
}
