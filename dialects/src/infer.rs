//! Shape and type inference, dispatched per dialect.
//!
//! Each dialect's `infer.rs` matches every op of its table exhaustively and returns the
//! result types the op must have, or a message (without the `'op' op` prefix, which the
//! verifier adds). Ops whose result type is not a function of the operands (`reshape`,
//! `cast`, `weight`, ...) check the declared type for consistency and return it.

use crate::dialect::Opcode;
use crate::ir::{Attrs, Elem, TensorType};

/// What inference sees of one op.
pub struct InferCx<'a> {
    /// The op.
    pub opcode: Opcode,
    /// Operand types.
    pub args: &'a [&'a TensorType],
    /// Attributes (required ones are present and of the right kind: the verifier checked).
    pub attrs: &'a Attrs,
    /// Declared result types.
    pub results: &'a [&'a TensorType],
}

/// Inference result: the result types, or what is wrong.
pub type InferResult = Result<Vec<TensorType>, String>;

/// Infers the result types of one op.
pub fn infer(cx: &InferCx<'_>) -> InferResult {
    match cx.opcode {
        Opcode::Graph(op) => crate::graph::infer::infer(op, cx),
        Opcode::Lowbit(op) => crate::lowbit::infer::infer(op, cx),
        Opcode::Attn(op) => crate::attn::infer::infer(op, cx),
        Opcode::Rot(op) => crate::rot::infer::infer(op, cx),
        Opcode::Kernel(op) => crate::kernel::infer::infer(op, cx),
    }
}

impl<'a> InferCx<'a> {
    /// The operand in slot `name`, if present.
    pub fn operand(&self, name: &str) -> Option<&'a TensorType> {
        let i = self.opcode.info().operand_index(name, self.args.len())?;
        Some(self.args[i])
    }

    /// The declared result types, cloned.
    pub fn declared(&self) -> Vec<TensorType> {
        self.results.iter().map(|&t| t.clone()).collect()
    }

    /// A required integer attribute.
    pub fn int(&self, name: &str) -> i64 {
        self.attrs.int(name).unwrap_or(0)
    }

    /// Normalizes the integer attribute `name` as an axis of `ty`.
    pub fn axis(&self, name: &str, ty: &TensorType) -> Result<usize, String> {
        let a = self.int(name);
        ty.axis(a).ok_or_else(|| format!("{name} {a} is out of range for rank {}", ty.rank()))
    }
}

/// Numpy broadcasting of two shapes.
pub fn broadcast(a: &[i64], b: &[i64]) -> Result<Vec<i64>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            (x, y) => {
                return Err(format!(
                    "operand shapes [{}] and [{}] do not broadcast: {x} vs {y}",
                    dims(a),
                    dims(b)
                ))
            }
        };
    }
    Ok(out)
}

/// `[1, 2, 3]` as `1x2x3` for messages.
pub fn dims(s: &[i64]) -> String {
    s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// Checks that two element types are equal.
pub fn same_elem(what: &str, a: Elem, b: Elem) -> Result<(), String> {
    if a == b {
        Ok(())
    } else {
        Err(format!("{what} element types differ: {a} vs {b}"))
    }
}
