//! The `graph` dialect table: framework-level tensor ops, as importers produce them.
//!
//! Static shapes; binary elementwise ops broadcast like numpy. Axes may be negative
//! (counted from the end). Ops whose result shape cannot be derived from operands and
//! attributes alone (`reshape`, `cast`, `split`, `weight`, masks) take it from the declared
//! result type, and the verifier checks it is consistent.

crate::dialect! {
    /// Framework-level tensor graph ops.
    name = "graph";

    /// A named reference into the weight store; the data lives outside the IR.
    /// Example: `%0 = graph.weight {name = "layers.0.wq"} : tensor<64x64xf32>`
    Weight "weight" () -> (out) [Pure] { req name: Str };
    /// A dense constant. Large ones print elided.
    Constant "constant" () -> (out) [Pure] { req value: Dense };
    /// `out = lhs · rhs` over the last two dims; leading dims broadcast; rank-1 operands
    /// are promoted as numpy does.
    MatMul "matmul" (lhs, rhs) -> (out) [Pure] {};
    /// `y = x · wᵀ + bias`, with `w` stored `[out, in]` as PyTorch does.
    Linear "linear" (x, w, opt(bias)) -> (y) [Pure] {};
    /// `lhs + rhs`.
    Add "add" (lhs, rhs) -> (out) [Pure, Elementwise, Commutative] {};
    /// `lhs - rhs`.
    Sub "sub" (lhs, rhs) -> (out) [Pure, Elementwise] {};
    /// `lhs * rhs`.
    Mul "mul" (lhs, rhs) -> (out) [Pure, Elementwise, Commutative] {};
    /// `lhs / rhs` (integers: truncating toward zero).
    Div "div" (lhs, rhs) -> (out) [Pure, Elementwise] {};
    /// `lhs ^ rhs`. The exponent may have another numeric element type than the base (as
    /// ONNX `Pow`); the result has the base's.
    Pow "pow" (lhs, rhs) -> (out) [Pure, Elementwise] {};
    /// The larger of `lhs` and `rhs`; NaN if either is NaN (numpy `maximum`).
    Maximum "maximum" (lhs, rhs) -> (out) [Pure, Elementwise, Commutative] {};
    /// The smaller of `lhs` and `rhs`; NaN if either is NaN (numpy `minimum`).
    Minimum "minimum" (lhs, rhs) -> (out) [Pure, Elementwise, Commutative] {};
    /// `lhs == rhs` as `i1`, broadcasting; operands of one element type, compared as IEEE
    /// values (NaN equals nothing, `-0 == 0`).
    Equal "equal" (lhs, rhs) -> (out) [Pure, Elementwise, Commutative] {};
    /// `lhs < rhs` as `i1` (IEEE: false when either is NaN), broadcasting.
    Less "less" (lhs, rhs) -> (out) [Pure, Elementwise] {};
    /// `lhs <= rhs` as `i1` (IEEE: false when either is NaN), broadcasting.
    LessEqual "less_equal" (lhs, rhs) -> (out) [Pure, Elementwise] {};
    /// `lhs > rhs` as `i1` (IEEE: false when either is NaN), broadcasting.
    Greater "greater" (lhs, rhs) -> (out) [Pure, Elementwise] {};
    /// `lhs >= rhs` as `i1` (IEEE: false when either is NaN), broadcasting.
    GreaterEqual "greater_equal" (lhs, rhs) -> (out) [Pure, Elementwise] {};
    /// `-x`.
    Neg "neg" (x) -> (y) [Pure, Elementwise] {};
    /// `e^x`.
    Exp "exp" (x) -> (y) [Pure, Elementwise] {};
    /// Natural logarithm.
    Log "log" (x) -> (y) [Pure, Elementwise] {};
    /// Square root.
    Sqrt "sqrt" (x) -> (y) [Pure, Elementwise] {};
    /// `1 / sqrt(x)`.
    Rsqrt "rsqrt" (x) -> (y) [Pure, Elementwise] {};
    /// Hyperbolic tangent.
    Tanh "tanh" (x) -> (y) [Pure, Elementwise] {};
    /// The error function.
    Erf "erf" (x) -> (y) [Pure, Elementwise] {};
    /// `max(x, 0)`.
    Relu "relu" (x) -> (y) [Pure, Elementwise] {};
    /// GELU; `approximate` is `"none"` (erf form, the default) or `"tanh"`.
    Gelu "gelu" (x) -> (y) [Pure, Elementwise] { opt approximate: Str };
    /// `x · sigmoid(x)`.
    Silu "silu" (x) -> (y) [Pure, Elementwise] {};
    /// `1 / (1 + e^-x)`.
    Sigmoid "sigmoid" (x) -> (y) [Pure, Elementwise] {};
    /// Softmax along `axis`, stable (max subtracted first).
    Softmax "softmax" (x) -> (y) [Pure] { req axis: Int };
    /// Log-softmax along `axis`.
    LogSoftmax "log_softmax" (x) -> (y) [Pure] { req axis: Int };
    /// Layer normalization over the dims from `axis` to the end (ONNX
    /// LayerNormalization); `gamma`/`beta` have the normalized shape.
    LayerNorm "layer_norm" (x, opt(gamma), opt(beta)) -> (y) [Pure] { req axis: Int, req epsilon: Float };
    /// RMS normalization over the dims from `axis` to the end: `x / sqrt(mean(x²) + eps) · gamma`.
    RmsNorm "rms_norm" (x, opt(gamma)) -> (y) [Pure] { req axis: Int, req epsilon: Float };
    /// Reduction over `axes`; `kind` is `"sum"`, `"mean"` or `"max"`.
    Reduce "reduce" (x) -> (y) [Pure] { req kind: Str, req axes: Ints, req keepdims: Bool };
    /// Permutes dims: result dim `i` is operand dim `perm[i]`.
    Transpose "transpose" (x) -> (y) [Pure] { req perm: Ints };
    /// Reinterprets the row-major elements with the result type's shape.
    Reshape "reshape" (x) -> (y) [Pure] {};
    /// Concatenates along `axis`.
    Concat "concat" (var(inputs)) -> (y) [Pure] { req axis: Int };
    /// Splits along `axis` into the result types' sizes.
    Split "split" (x) -> (var(outs)) [Pure] { req axis: Int };
    /// Strided slice, numpy semantics: `starts`/`ends`/`steps` give one entry per dim;
    /// negative indices count from the end and are clamped.
    Slice "slice" (x) -> (y) [Pure] { req starts: Ints, req ends: Ints, opt steps: Ints };
    /// Gathers along `axis` with integer `indices` (negative ones count from the end);
    /// the result shape is `data[:axis] + indices + data[axis+1:]` (embedding lookup).
    Gather "gather" (data, indices) -> (y) [Pure] { req axis: Int };
    /// `cond ? lhs : rhs`, broadcasting; `cond` is `i1`.
    Select "select" (cond, lhs, rhs) -> (y) [Pure, Elementwise] {};
    /// Converts to the result element type: floats round to nearest even; float to integer
    /// truncates toward zero and saturates. `saturate = false` (ONNX `Cast`'s
    /// `saturate = 0`) makes float8 overflow NaN (`f8E4M3FN`) or `±inf` (`f8E5M2`).
    Cast "cast" (x) -> (y) [Pure, Elementwise] { opt saturate: Bool };
    /// Rotary position embedding over the last dim. `cos`/`sin` hold `d/2` frequencies and
    /// broadcast against `x[..., :d/2]`; `interleaved` pairs `(2i, 2i+1)`, otherwise
    /// `(i, i + d/2)` (rotate-half).
    Rope "rope" (x, cos, sin) -> (y) [Pure] { req interleaved: Bool };
    /// A causal mask of the result shape `[..., N, M]`: key `j` is visible to query `i`
    /// when `j <= i + M - N`. Float results are additive (0, or the type's lowest finite
    /// value); `i1` results are true where visible.
    CausalMask "causal_mask" () -> (mask) [Pure] {};
    /// An additive mask `[B, 1, 1, S]` from a `[B, S]` keep-mask (non-zero = keep): 0 where
    /// kept, the result type's lowest finite value elsewhere; `i1` results are the keep-mask.
    PaddingMask "padding_mask" (keep) -> (mask) [Pure] {};
}
