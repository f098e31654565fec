//! Type inference for the `graph` dialect.
//!
//! One arm per op of the table. Ops whose result follows from the operands (matmul,
//! elementwise, reductions, slicing, ...) compute it; ops whose result shape is chosen by the
//! producer (`weight`, `constant`, `reshape`, `split`, `cast`, `causal_mask`) check the
//! declared type for consistency and return it.

use super::Op;
use crate::infer::{
    broadcast, check_broadcasts_to, dims, elem_is, float, float_or_i1, integer, matmul_shape,
    non_negative, one_of, rank_at_least, rank_is, same_elem, shape_is, InferCx, InferResult,
};
use crate::ir::{Elem, TensorType};

/// Infers the result types of a `graph` op.
pub fn infer(op: Op, cx: &InferCx<'_>) -> InferResult {
    match op {
        Op::Weight => weight(cx),
        Op::Constant => constant(cx),
        Op::MatMul => matmul(cx),
        Op::Linear => linear(cx),
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Maximum | Op::Minimum => binary(cx),
        Op::Pow => pow(cx),
        Op::Equal | Op::Less | Op::LessEqual | Op::Greater | Op::GreaterEqual => compare(cx),
        Op::Neg | Op::Relu => numeric_unary(cx),
        Op::Exp | Op::Log | Op::Sqrt | Op::Rsqrt | Op::Tanh | Op::Erf | Op::Silu | Op::Sigmoid => {
            float_unary(cx)
        }
        Op::Gelu => {
            one_of(cx.attrs, "approximate", Some("none"), &["none", "tanh"])?;
            float_unary(cx)
        }
        Op::Softmax | Op::LogSoftmax => softmax(cx),
        Op::LayerNorm => norm(cx, &["gamma", "beta"]),
        Op::RmsNorm => norm(cx, &["gamma"]),
        Op::Reduce => reduce(cx),
        Op::Transpose => transpose(cx),
        Op::Reshape => reshape(cx),
        Op::Concat => concat(cx),
        Op::Split => split(cx),
        Op::Slice => slice(cx),
        Op::Gather => gather(cx),
        Op::Select => select(cx),
        Op::Cast => cast(cx),
        Op::Rope => rope(cx),
        Op::CausalMask => causal_mask(cx),
        Op::PaddingMask => padding_mask(cx),
    }
}

fn weight(cx: &InferCx<'_>) -> InferResult {
    if cx.attrs.str("name").unwrap_or_default().is_empty() {
        return Err("attribute 'name' must not be empty".to_string());
    }
    Ok(cx.declared())
}

fn constant(cx: &InferCx<'_>) -> InferResult {
    let value = cx
        .attrs
        .dense("value")
        .expect("verified: 'value' is a dense attribute");
    let declared = cx.result(0);
    if &value.ty != declared {
        return Err(format!(
            "value type {} does not match the result type {declared}",
            value.ty
        ));
    }
    Ok(cx.declared())
}

fn matmul(cx: &InferCx<'_>) -> InferResult {
    let (a, b) = (cx.arg("lhs"), cx.arg("rhs"));
    rank_at_least("lhs", a, 1)?;
    rank_at_least("rhs", b, 1)?;
    same_elem("lhs and rhs", a.elem, b.elem)?;
    Ok(vec![TensorType::new(
        matmul_shape(&a.shape, &b.shape)?,
        a.elem,
    )])
}

fn linear(cx: &InferCx<'_>) -> InferResult {
    let (x, w) = (cx.arg("x"), cx.arg("w"));
    rank_at_least("x", x, 1)?;
    rank_is("w", w, 2, "[out, in]")?;
    same_elem("x and w", x.elem, w.elem)?;
    let (out_features, in_features) = (w.shape[0], w.shape[1]);
    let x_in = x.shape[x.rank() - 1];
    if x_in != in_features {
        return Err(format!(
            "input features differ: x has {x_in}, w has {in_features}"
        ));
    }
    if let Some(bias) = cx.operand("bias") {
        same_elem("x and bias", x.elem, bias.elem)?;
        shape_is("bias", bias, &[out_features], "[out]")?;
    }
    let mut shape = x.shape.clone();
    *shape.last_mut().expect("rank checked") = out_features;
    Ok(vec![TensorType::new(shape, x.elem)])
}

fn binary(cx: &InferCx<'_>) -> InferResult {
    let (a, b) = (cx.arg("lhs"), cx.arg("rhs"));
    same_elem("lhs and rhs", a.elem, b.elem)?;
    Ok(vec![TensorType::new(
        broadcast(&a.shape, &b.shape)?,
        a.elem,
    )])
}

/// `pow`: the exponent may have another numeric element type; the result has the base's.
fn pow(cx: &InferCx<'_>) -> InferResult {
    let (a, b) = (cx.arg("lhs"), cx.arg("rhs"));
    if a.elem != b.elem {
        for (name, t) in [("lhs", a), ("rhs", b)] {
            if t.elem == Elem::I1 {
                return Err(format!(
                    "{name} must have a numeric element type when lhs and rhs differ, found i1"
                ));
            }
        }
    }
    Ok(vec![TensorType::new(
        broadcast(&a.shape, &b.shape)?,
        a.elem,
    )])
}

/// Comparisons: operands of one element type, broadcast; an `i1` result.
fn compare(cx: &InferCx<'_>) -> InferResult {
    let (a, b) = (cx.arg("lhs"), cx.arg("rhs"));
    same_elem("lhs and rhs", a.elem, b.elem)?;
    Ok(vec![TensorType::new(
        broadcast(&a.shape, &b.shape)?,
        Elem::I1,
    )])
}

fn numeric_unary(cx: &InferCx<'_>) -> InferResult {
    let x = cx.arg("x");
    if x.elem == Elem::I1 {
        return Err("x must have a numeric element type, found i1".to_string());
    }
    Ok(vec![x.clone()])
}

fn float_unary(cx: &InferCx<'_>) -> InferResult {
    let x = cx.arg("x");
    float("x", x)?;
    Ok(vec![x.clone()])
}

fn softmax(cx: &InferCx<'_>) -> InferResult {
    let x = cx.arg("x");
    cx.axis("axis", x)?;
    float("x", x)?;
    Ok(vec![x.clone()])
}

/// `layer_norm` and `rms_norm`: normalized over the dims from `axis` on, with affine
/// parameters of exactly that shape.
fn norm(cx: &InferCx<'_>, params: &[&str]) -> InferResult {
    let x = cx.arg("x");
    let axis = cx.axis("axis", x)?;
    float("x", x)?;
    non_negative(cx.attrs, "epsilon")?;
    for &name in params {
        if let Some(p) = cx.operand(name) {
            same_elem(&format!("x and {name}"), x.elem, p.elem)?;
            shape_is(
                name,
                p,
                &x.shape[axis..],
                &format!("the dims of x from axis {axis}"),
            )?;
        }
    }
    Ok(vec![x.clone()])
}

fn reduce(cx: &InferCx<'_>) -> InferResult {
    let x = cx.arg("x");
    one_of(cx.attrs, "kind", None, &["sum", "mean", "max"])?;
    let axes = cx
        .attrs
        .ints("axes")
        .expect("verified: 'axes' is an integer array");
    let keepdims = cx
        .attrs
        .bool("keepdims")
        .expect("verified: 'keepdims' is a bool");
    let mut reduced = vec![false; x.rank()];
    for &a in axes {
        let i = x
            .axis(a)
            .ok_or_else(|| format!("axes entry {a} is out of range for rank {}", x.rank()))?;
        if std::mem::replace(&mut reduced[i], true) {
            return Err(format!("dim {i} appears more than once in axes"));
        }
    }
    let mut shape = Vec::new();
    for (&d, &r) in x.shape.iter().zip(&reduced) {
        if !r {
            shape.push(d);
        } else if keepdims {
            shape.push(1);
        }
    }
    Ok(vec![TensorType::new(shape, x.elem)])
}

fn transpose(cx: &InferCx<'_>) -> InferResult {
    let x = cx.arg("x");
    let perm = cx
        .attrs
        .ints("perm")
        .expect("verified: 'perm' is an integer array");
    if perm.len() != x.rank() {
        return Err(format!(
            "perm must have {} entries (one per dim of x), found {}",
            x.rank(),
            perm.len()
        ));
    }
    let mut seen = vec![false; x.rank()];
    let mut shape = Vec::with_capacity(x.rank());
    for &p in perm {
        let fresh = usize::try_from(p)
            .ok()
            .filter(|&i| i < x.rank())
            .is_some_and(|i| !std::mem::replace(&mut seen[i], true));
        if !fresh {
            let list: Vec<String> = perm.iter().map(|p| p.to_string()).collect();
            return Err(format!(
                "perm [{}] is not a permutation of 0..{}",
                list.join(", "),
                x.rank()
            ));
        }
        shape.push(x.shape[p as usize]);
    }
    Ok(vec![TensorType::new(shape, x.elem)])
}

fn reshape(cx: &InferCx<'_>) -> InferResult {
    let (x, y) = (cx.arg("x"), cx.result(0));
    same_elem("x and result", x.elem, y.elem)?;
    if x.num_elements() != y.num_elements() {
        return Err(format!(
            "element counts differ: x has {}, the result has {}",
            x.num_elements(),
            y.num_elements()
        ));
    }
    Ok(cx.declared())
}

fn concat(cx: &InferCx<'_>) -> InferResult {
    let first = cx.args[0];
    let axis = cx.axis("axis", first)?;
    let mut shape = first.shape.clone();
    for (i, t) in cx.args.iter().enumerate().skip(1) {
        same_elem(&format!("input #0 and input #{i}"), first.elem, t.elem)?;
        if t.rank() != first.rank() {
            return Err(format!(
                "input #{i} has rank {}, expected {} (the rank of input #0)",
                t.rank(),
                first.rank()
            ));
        }
        for (d, (&got, &want)) in t.shape.iter().zip(&first.shape).enumerate() {
            if d != axis && got != want {
                return Err(format!(
                    "input #{i} has size {got} in dim {d}, expected {want} (dims other than the axis must agree)"
                ));
            }
        }
        shape[axis] = shape[axis]
            .checked_add(t.shape[axis])
            .ok_or_else(|| format!("result size along axis {axis} overflows"))?;
    }
    Ok(vec![TensorType::new(shape, first.elem)])
}

fn split(cx: &InferCx<'_>) -> InferResult {
    let x = cx.arg("x");
    let axis = cx.axis("axis", x)?;
    let mut total: i64 = 0;
    for (i, r) in cx.results.iter().enumerate() {
        same_elem(&format!("x and result #{i}"), x.elem, r.elem)?;
        if r.rank() != x.rank() {
            return Err(format!(
                "result #{i} has rank {}, expected {} (the rank of x)",
                r.rank(),
                x.rank()
            ));
        }
        for (d, (&got, &want)) in r.shape.iter().zip(&x.shape).enumerate() {
            if d != axis && got != want {
                return Err(format!(
                    "result #{i} has size {got} in dim {d}, expected {want} (dims other than the axis must match x)"
                ));
            }
        }
        total = total.saturating_add(r.shape[axis]);
    }
    if total != x.shape[axis] {
        return Err(format!(
            "result sizes along axis {axis} sum to {total}, expected {}",
            x.shape[axis]
        ));
    }
    Ok(cx.declared())
}

fn slice(cx: &InferCx<'_>) -> InferResult {
    let x = cx.arg("x");
    let starts = cx
        .attrs
        .ints("starts")
        .expect("verified: 'starts' is an integer array");
    let ends = cx
        .attrs
        .ints("ends")
        .expect("verified: 'ends' is an integer array");
    let ones = vec![1; x.rank()];
    let steps = cx.attrs.ints("steps").unwrap_or(&ones);
    for (name, v) in [("starts", starts), ("ends", ends), ("steps", steps)] {
        if v.len() != x.rank() {
            return Err(format!(
                "{name} must have {} entries (one per dim of x), found {}",
                x.rank(),
                v.len()
            ));
        }
    }
    if let Some(d) = steps.iter().position(|&s| s == 0) {
        return Err(format!("step for dim {d} must not be zero"));
    }
    let shape = (0..x.rank())
        .map(|d| slice_len(x.shape[d], starts[d], ends[d], steps[d]))
        .collect::<Vec<_>>();
    Ok(vec![TensorType::new(shape, x.elem)])
}

/// The length of `range(n)[start:end:step]` in Python: negative bounds count from the end,
/// then clamp to `[0, n]` (positive step) or `[-1, n - 1]` (negative step).
pub fn slice_len(n: i64, start: i64, end: i64, step: i64) -> i64 {
    let (n, start, end, step) = (n as i128, start as i128, end as i128, step as i128);
    let norm = |v: i128, lo: i128, hi: i128| (if v < 0 { v + n } else { v }).clamp(lo, hi);
    let len = if step > 0 {
        let (s, e) = (norm(start, 0, n), norm(end, 0, n));
        if e > s {
            (e - s + step - 1) / step
        } else {
            0
        }
    } else {
        let (s, e) = (norm(start, -1, n - 1), norm(end, -1, n - 1));
        if s > e {
            (s - e - step - 1) / -step
        } else {
            0
        }
    };
    len as i64
}

fn gather(cx: &InferCx<'_>) -> InferResult {
    let (data, indices) = (cx.arg("data"), cx.arg("indices"));
    integer("indices", indices)?;
    let axis = cx.axis("axis", data)?;
    let mut shape = data.shape[..axis].to_vec();
    shape.extend_from_slice(&indices.shape);
    shape.extend_from_slice(&data.shape[axis + 1..]);
    Ok(vec![TensorType::new(shape, data.elem)])
}

fn select(cx: &InferCx<'_>) -> InferResult {
    let (c, a, b) = (cx.arg("cond"), cx.arg("lhs"), cx.arg("rhs"));
    elem_is("cond", c, Elem::I1)?;
    same_elem("lhs and rhs", a.elem, b.elem)?;
    let shape = broadcast(&broadcast(&c.shape, &a.shape)?, &b.shape)?;
    Ok(vec![TensorType::new(shape, a.elem)])
}

fn cast(cx: &InferCx<'_>) -> InferResult {
    let (x, y) = (cx.arg("x"), cx.result(0));
    if x.shape != y.shape {
        return Err(format!(
            "x and result shapes differ: {} vs {}",
            dims(&x.shape),
            dims(&y.shape)
        ));
    }
    Ok(cx.declared())
}

fn rope(cx: &InferCx<'_>) -> InferResult {
    let x = cx.arg("x");
    float("x", x)?;
    rank_at_least("x", x, 1)?;
    let d = x.shape[x.rank() - 1];
    if d % 2 != 0 {
        return Err(format!("last dim of x must be even, found {d}"));
    }
    let mut half = x.shape.clone();
    *half.last_mut().expect("rank checked") = d / 2;
    for name in ["cos", "sin"] {
        let t = cx.arg(name);
        float(name, t)?;
        check_broadcasts_to(name, t, &half, "x's shape with the last dim halved")?;
    }
    Ok(vec![x.clone()])
}

fn causal_mask(cx: &InferCx<'_>) -> InferResult {
    let y = cx.result(0);
    rank_at_least("result", y, 2)?;
    float_or_i1("result", y)?;
    Ok(cx.declared())
}

fn padding_mask(cx: &InferCx<'_>) -> InferResult {
    let keep = cx.arg("keep");
    rank_is("keep", keep, 2, "[B, S]")?;
    let y = cx.result(0);
    float_or_i1("result", y)?;
    let (b, s) = (keep.shape[0], keep.shape[1]);
    Ok(vec![TensorType::new([b, 1, 1, s], y.elem)])
}

#[cfg(test)]
mod tests {
    use super::slice_len;

    #[test]
    fn slice_lengths_follow_python() {
        // Each case is `len(range(n)[start:end:step])` as Python computes it.
        let cases = [
            (5, 0, 5, 1, 5),
            (5, 1, 4, 2, 2),
            (5, -2, 5, 1, 2),
            (5, -1, i64::MIN, -1, 5),
            (5, 4, -6, -1, 5),
            (5, 1, 3, -1, 0),
            (5, 10, 20, 1, 0),
            (5, -10, 2, 1, 2),
            (5, 4, 0, -2, 2),
            (0, 0, 1, 1, 0),
            (0, -1, i64::MIN, -1, 0),
            (7, 0, i64::MAX, 3, 3),
        ];
        for (n, s, e, st, want) in cases {
            assert_eq!(slice_len(n, s, e, st), want, "range({n})[{s}:{e}:{st}]");
        }
    }
}
