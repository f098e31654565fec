//! Type inference for the `lowbit` dialect.
//!
//! Quantization parameters are operands, so most of the checking here is about them: the
//! scale (and zero point) shapes must match the granularity the `axis` / `block_size`
//! attributes select (see the table's module docs), and the quantized side must use one of
//! the storage element types in [`QUANTIZED`].

use super::Op;
use crate::infer::{
    ceil_div, check_broadcasts_to, dims, elem_is, float, integer, matmul_shape, positive,
    rank_at_least, rank_is, shape_is, InferCx, InferResult,
};
use crate::ir::{Elem, TensorType};

/// The element types a tensor may be quantized to.
pub const QUANTIZED: &[Elem] = &[
    Elem::I4,
    Elem::UI4,
    Elem::I8,
    Elem::UI8,
    Elem::I16,
    Elem::UI16,
    Elem::I32,
    Elem::F8E4M3FN,
    Elem::F8E5M2,
    Elem::F4E2M1FN,
];

/// The 4-bit element types `pack` and `unpack` handle.
pub const FOUR_BIT: &[Elem] = &[Elem::I4, Elem::UI4, Elem::F4E2M1FN];

/// Infers the result types of a `lowbit` op.
pub fn infer(op: Op, cx: &InferCx<'_>) -> InferResult {
    match op {
        Op::Quantize => {
            let x = cx.arg("x");
            float("x", x)?;
            let y = cx.result(0);
            elem_in("result", y, QUANTIZED, "a quantized")?;
            granularity(cx, x, "x", y.elem, "the result's")?;
            Ok(vec![x.with_elem(y.elem)])
        }
        Op::Dequantize => {
            let q = cx.arg("q");
            elem_in("q", q, QUANTIZED, "a quantized")?;
            let y = cx.result(0);
            float("result", y)?;
            granularity(cx, q, "q", q.elem, "q's")?;
            Ok(vec![q.with_elem(y.elem)])
        }
        Op::QMatMul => qmatmul(cx),
        Op::Pack => {
            let x = cx.arg("x");
            elem_in("x", x, FOUR_BIT, "a 4-bit")?;
            rank_at_least("x", x, 1)?;
            let mut shape = x.shape.clone();
            let last = shape.last_mut().expect("rank checked");
            *last = ceil_div(*last, 2);
            Ok(vec![TensorType::new(shape, Elem::UI8)])
        }
        Op::Unpack => {
            let x = cx.arg("x");
            elem_is("x", x, Elem::UI8)?;
            rank_at_least("x", x, 1)?;
            let y = cx.result(0);
            elem_in("result", y, FOUR_BIT, "a 4-bit")?;
            rank_at_least("result", y, 1)?;
            let m = x.shape[x.rank() - 1];
            let n = y.shape[y.rank() - 1];
            // In i128: a dim may be up to `i64::MAX`, so `2m` need not fit in an i64.
            let twice = 2 * i128::from(m);
            if i128::from(n) != twice && i128::from(n) != twice - 1 {
                return Err(format!(
                    "result last dim {n} is neither {twice} nor {} (twice x's last dim {m}, or one less)",
                    twice - 1
                ));
            }
            let mut shape = x.shape.clone();
            *shape.last_mut().expect("rank checked") = n;
            Ok(vec![TensorType::new(shape, y.elem)])
        }
        Op::Codebook => {
            let idx = cx.arg("indices");
            integer("indices", idx)?;
            rank_at_least("indices", idx, 1)?;
            let book = cx.arg("codebook");
            float("codebook", book)?;
            rank_is("codebook", book, 2, "[K, v]")?;
            let mut shape = idx.shape.clone();
            let last = shape.last_mut().expect("rank checked");
            let (n, v) = (*last, book.shape[1]);
            *last = n
                .checked_mul(v)
                .ok_or_else(|| format!("result dim {n}·{v} overflows"))?;
            Ok(vec![TensorType::new(shape, book.elem)])
        }
    }
}

/// Requires `ty`'s element type to be one of `set`; `kind` names the set (`"a 4-bit"`).
fn elem_in(what: &str, ty: &TensorType, set: &[Elem], kind: &str) -> Result<(), String> {
    if set.contains(&ty.elem) {
        return Ok(());
    }
    let names: Vec<&str> = set.iter().map(|e| e.name()).collect();
    Err(format!(
        "{what} must have {kind} element type ({}), found {}",
        names.join(", "),
        ty.elem
    ))
}

/// Checks `scale` and `zero_point` against the granularity of a (de)quantize of `data`
/// (named `data_name`), whose quantized element type is `q_elem` (described as `q_desc`).
fn granularity(
    cx: &InferCx<'_>,
    data: &TensorType,
    data_name: &str,
    q_elem: Elem,
    q_desc: &str,
) -> Result<(), String> {
    let scale = cx.arg("scale");
    float("scale", scale)?;
    match (cx.attrs.int("axis"), positive(cx.attrs, "block_size")?) {
        (None, Some(_)) => return Err("block_size requires axis".to_string()),
        (None, None) => {
            if !(scale.shape.is_empty() || scale.shape == [1]) {
                return Err(format!(
                    "per-tensor scale must be a scalar or have shape 1, found {}",
                    dims(&scale.shape)
                ));
            }
        }
        (Some(_), None) => {
            let a = cx.axis("axis", data)?;
            shape_is(
                "per-axis scale",
                scale,
                &[data.shape[a]],
                &format!("dim {a} of {data_name}"),
            )?;
        }
        (Some(_), Some(block)) => {
            let a = cx.axis("axis", data)?;
            let mut want = data.shape.clone();
            want[a] = ceil_div(want[a], block);
            let why = format!(
                "{data_name}'s shape with dim {a} divided by block_size {block}, rounded up"
            );
            shape_is("per-block scale", scale, &want, &why)?;
        }
    }
    if let Some(zp) = cx.operand("zero_point") {
        if q_elem.is_float() {
            return Err(format!(
                "zero_point is not allowed with the float format {q_elem}"
            ));
        }
        if zp.elem != q_elem {
            return Err(format!(
                "zero_point must have {q_desc} element type {q_elem}, found {}",
                zp.elem
            ));
        }
        if zp.shape != scale.shape {
            return Err(format!(
                "zero_point and scale shapes differ: {} vs {}",
                dims(&zp.shape),
                dims(&scale.shape)
            ));
        }
    }
    Ok(())
}

fn qmatmul(cx: &InferCx<'_>) -> InferResult {
    let (a, b) = (cx.arg("lhs"), cx.arg("rhs"));
    integer("lhs", a)?;
    integer("rhs", b)?;
    rank_at_least("lhs", a, 2)?;
    rank_at_least("rhs", b, 2)?;
    let shape = matmul_shape(&a.shape, &b.shape)?;
    for name in ["lhs_scale", "rhs_scale"] {
        let s = cx.arg(name);
        float(name, s)?;
        check_broadcasts_to(name, s, &shape, "the output")?;
    }
    for (name, of, operand) in [("lhs_zero", "lhs", a), ("rhs_zero", "rhs", b)] {
        if let Some(z) = cx.operand(name) {
            if z.elem != operand.elem {
                return Err(format!(
                    "{name} must have {of}'s element type {}, found {}",
                    operand.elem, z.elem
                ));
            }
            check_broadcasts_to(name, z, &shape, "the output")?;
        }
    }
    let y = cx.result(0);
    if !(y.elem.is_float() || y.elem == Elem::I32) {
        return Err(format!(
            "result must have a float or i32 element type, found {}",
            y.elem
        ));
    }
    Ok(vec![TensorType::new(shape, y.elem)])
}
