//! Shape and type inference, dispatched per dialect.
//!
//! Each dialect's `infer.rs` matches every op of its table exhaustively and returns the
//! result types the op must have, or a message (without the `'op' op` prefix, which the
//! verifier adds). Ops whose result type is not a function of the operands (`reshape`,
//! `cast`, `weight`, ...) check the declared type for consistency and return it.
//!
//! The helpers here keep messages uniform across dialects: MLIR style, lowercase, both
//! sides stated (`x must have a float element type, found i8`, `inner dimensions differ:
//! 64 vs 128`), operands and attributes by their table names, shapes as `2x3` (`scalar`
//! for rank 0).

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

    /// The required operand in slot `name`.
    ///
    /// The verifier checks operand counts before inference, so required slots are filled.
    pub fn arg(&self, name: &str) -> &'a TensorType {
        self.operand(name)
            .expect("verified: required operands are present")
    }

    /// The declared type of result `i`.
    pub fn result(&self, i: usize) -> &'a TensorType {
        self.results[i]
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
        ty.axis(a)
            .ok_or_else(|| format!("{name} {a} is out of range for rank {}", ty.rank()))
    }
}

/// Numpy broadcasting of two shapes.
pub fn broadcast(a: &[i64], b: &[i64]) -> Result<Vec<i64>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            (x, y) => {
                return Err(format!(
                    "shapes {} and {} do not broadcast: {x} vs {y}",
                    dims(a),
                    dims(b)
                ))
            }
        };
    }
    Ok(out)
}

/// Whether `from` broadcasts one-directionally to exactly `to` (numpy rules: `from` has
/// at most `to`'s rank and each of its trailing-aligned dims is 1 or equal).
pub fn broadcasts_to(from: &[i64], to: &[i64]) -> bool {
    from.len() <= to.len()
        && from
            .iter()
            .rev()
            .zip(to.iter().rev())
            .all(|(&f, &t)| f == 1 || f == t)
}

/// Requires `ty` (named `what`) to broadcast to exactly `to`; `to_what` says where that
/// shape comes from (`"the output"`, `"[B, H, N, M]"`).
pub fn check_broadcasts_to(
    what: &str,
    ty: &TensorType,
    to: &[i64],
    to_what: &str,
) -> Result<(), String> {
    if broadcasts_to(&ty.shape, to) {
        Ok(())
    } else {
        Err(format!(
            "{what} shape {} does not broadcast to {} ({to_what})",
            dims(&ty.shape),
            dims(to)
        ))
    }
}

/// `[1, 2, 3]` as `1x2x3`, and `[]` as `scalar`, for messages.
pub fn dims(s: &[i64]) -> String {
    if s.is_empty() {
        return "scalar".to_string();
    }
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Checks that two element types are equal; `what` names both sides (`"lhs and rhs"`).
pub fn same_elem(what: &str, a: Elem, b: Elem) -> Result<(), String> {
    if a == b {
        Ok(())
    } else {
        Err(format!("{what} element types differ: {a} vs {b}"))
    }
}

/// Requires a floating-point element type.
pub fn float(what: &str, ty: &TensorType) -> Result<(), String> {
    if ty.elem.is_float() {
        Ok(())
    } else {
        Err(format!(
            "{what} must have a float element type, found {}",
            ty.elem
        ))
    }
}

/// Requires an integer element type other than `i1` (indices, quantized integers).
pub fn integer(what: &str, ty: &TensorType) -> Result<(), String> {
    if ty.elem.is_int() && ty.elem != Elem::I1 {
        Ok(())
    } else {
        Err(format!(
            "{what} must have an integer element type, found {}",
            ty.elem
        ))
    }
}

/// Requires a float or `i1` element type (masks).
pub fn float_or_i1(what: &str, ty: &TensorType) -> Result<(), String> {
    if ty.elem.is_float() || ty.elem == Elem::I1 {
        Ok(())
    } else {
        Err(format!(
            "{what} must have a float or i1 element type, found {}",
            ty.elem
        ))
    }
}

/// Requires exactly the element type `elem`.
pub fn elem_is(what: &str, ty: &TensorType, elem: Elem) -> Result<(), String> {
    if ty.elem == elem {
        Ok(())
    } else {
        Err(format!(
            "{what} must have element type {elem}, found {}",
            ty.elem
        ))
    }
}

/// Requires a rank of at least `n`.
pub fn rank_at_least(what: &str, ty: &TensorType, n: usize) -> Result<(), String> {
    if ty.rank() >= n {
        Ok(())
    } else {
        Err(format!(
            "{what} must have rank at least {n}, found rank {}",
            ty.rank()
        ))
    }
}

/// Requires rank `n`; `layout` describes the expected dims (`"[B, H, N, d]"`).
pub fn rank_is(what: &str, ty: &TensorType, n: usize, layout: &str) -> Result<(), String> {
    if ty.rank() == n {
        Ok(())
    } else {
        Err(format!(
            "{what} must have rank {n} ({layout}), found rank {}",
            ty.rank()
        ))
    }
}

/// Requires exactly the shape `shape`; `why` says where it comes from.
pub fn shape_is(what: &str, ty: &TensorType, shape: &[i64], why: &str) -> Result<(), String> {
    if ty.shape == shape {
        Ok(())
    } else {
        Err(format!(
            "{what} must have shape {} ({why}), found {}",
            dims(shape),
            dims(&ty.shape)
        ))
    }
}

/// Requires a string attribute (or its default when absent) to be one of `allowed`.
pub fn one_of<'s>(
    attrs: &'s Attrs,
    name: &str,
    default: Option<&'static str>,
    allowed: &[&str],
) -> Result<&'s str, String> {
    let v = match (attrs.str(name), default) {
        (Some(v), _) => v,
        (None, Some(d)) => d,
        (None, None) => "",
    };
    if allowed.contains(&v) {
        return Ok(v);
    }
    let quoted: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
    let list = match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    };
    Err(format!(
        "{name} must be {list}, found \"{}\"",
        v.escape_default()
    ))
}

/// Requires an integer attribute, when present, to be positive; returns it.
pub fn positive(attrs: &Attrs, name: &str) -> Result<Option<i64>, String> {
    match attrs.int(name) {
        Some(v) if v <= 0 => Err(format!("{name} must be positive, found {v}")),
        v => Ok(v),
    }
}

/// Requires a float attribute, when present, to be non-negative (and not NaN).
pub fn non_negative(attrs: &Attrs, name: &str) -> Result<(), String> {
    match attrs.float(name) {
        Some(v) if v.is_nan() || v < 0.0 => Err(format!(
            "{name} must be non-negative, found {}",
            crate::ir::attrs::format_float(v, Elem::F64)
        )),
        _ => Ok(()),
    }
}

/// `ceil(n / d)` for a positive `d`.
pub fn ceil_div(n: i64, d: i64) -> i64 {
    n / d + i64::from(n % d != 0)
}

/// The result shape of a numpy matmul of `a` and `b` (both rank ≥ 1): rank-1 operands are
/// promoted (a leading or trailing 1, dropped again from the result), leading batch dims
/// broadcast, and the inner dims must agree.
pub fn matmul_shape(a: &[i64], b: &[i64]) -> Result<Vec<i64>, String> {
    let ka = a[a.len() - 1];
    let kb = if b.len() == 1 { b[0] } else { b[b.len() - 2] };
    if ka != kb {
        return Err(format!("inner dimensions differ: {ka} vs {kb}"));
    }
    let batch_a = &a[..a.len().saturating_sub(2)];
    let batch_b = &b[..b.len().saturating_sub(2)];
    let mut out = broadcast(batch_a, batch_b).map_err(|e| format!("batch {e}"))?;
    if a.len() >= 2 {
        out.push(a[a.len() - 2]);
    }
    if b.len() >= 2 {
        out.push(b[b.len() - 1]);
    }
    Ok(out)
}
