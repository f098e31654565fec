//! The `rot` dialect table: orthogonal rotations (QuaRot / SpinQuant / RSQ).

crate::dialect! {
    /// Rotation ops.
    name = "rot";

    /// Normalized Walsh–Hadamard transform along `axis`: `y = x · H_n / sqrt(n)` where `n` is
    /// `2^m` (Sylvester) or `K · 2^m` with `H_K` from the Paley construction.
    Hadamard "hadamard" (x) -> (y) [Pure] { req axis: Int };
    /// Rotation by a matrix operand along `axis`: `y[.., j, ..] = Σ_i x[.., i, ..] · r[i, j]`.
    Rotate "rotate" (x, r) -> (y) [Pure] { req axis: Int };
}
