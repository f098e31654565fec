//! Type inference for the `rot` dialect.
//!
//! Rotations keep their operand's type. `hadamard` additionally needs a size for which
//! lowbit can build a Hadamard matrix; which sizes those are is defined once, in
//! [`crate::rot::hadamard`], and read here so that the verifier accepts exactly what the
//! interpreter and the code generators can evaluate: `n = K · 2^m` with `K = 1` or a Paley
//! order (`q + 1` for a prime power `q ≡ 3 mod 4`, `2(q + 1)` for `q ≡ 1 mod 4`), e.g.
//! 12, 20, 28, 36, 44, 52, 60, ... and, through the power of two, 24, 40, 1536 = 12·128.
//! Sizes with no Hadamard matrix at all (10, 18) and orders no Paley construction gives
//! (92) are rejected. `rotate` needs a square matrix of the rotated dim's size.

use super::hadamard::is_supported;
use super::Op;
use crate::infer::{float, same_elem, shape_is, InferCx, InferResult};

/// Infers the result types of a `rot` op.
pub fn infer(op: Op, cx: &InferCx<'_>) -> InferResult {
    match op {
        Op::Hadamard => {
            let x = cx.arg("x");
            let axis = cx.axis("axis", x)?;
            float("x", x)?;
            let n = x.shape[axis];
            if !usize::try_from(n).is_ok_and(is_supported) {
                return Err(format!(
                    "hadamard size {n} is not 2^m or K·2^m for a supported K (1 or a Paley order: 12, 20, 28, 36, 44, 52, 60, ...)"
                ));
            }
            Ok(vec![x.clone()])
        }
        Op::Rotate => {
            let (x, r) = (cx.arg("x"), cx.arg("r"));
            let axis = cx.axis("axis", x)?;
            float("x", x)?;
            same_elem("x and r", x.elem, r.elem)?;
            let n = x.shape[axis];
            shape_is("r", r, &[n, n], &format!("[n, n] with n = dim {axis} of x"))?;
            Ok(vec![x.clone()])
        }
    }
}
