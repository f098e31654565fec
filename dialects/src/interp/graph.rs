//! Reference semantics of the `graph` dialect.
//!
//! One exhaustive match over [`Op`]; the semantics are those documented in the op table
//! (`graph/ops.rs`). Every op computes in `f64` from operands already rounded to their
//! element types and rounds its results once, to the declared result types. Choices the
//! table leaves open, fixed here:
//!
//! - `maximum`/`minimum` propagate NaN (numpy); comparisons are IEEE (NaN compares false);
//! - integer `div` truncates toward zero and rejects a zero divisor; integer `pow`
//!   truncates toward zero too (`2 ^ -1 = 0`, as C's `(int)pow`) and rejects `0 ^ negative`;
//! - `reduce` with an empty `axes` reduces nothing (numpy's `axis=()`); integer `mean`
//!   rounds the `f64` mean to the result type like any other result; `max` propagates NaN;
//! - a softmax lane of all `-inf` is NaN (numpy, PyTorch);
//! - `slice` follows Python's `slice.indices`: clamped bounds, any non-zero step;
//! - `layer_norm`/`rms_norm` broadcast `gamma`/`beta` to the normalized shape;
//! - masks fill with [`lowest_finite`] of the result type (`i1` results: 1 visible, 0 not).
//!
//! Anything that depends on inputs or attributes is an `Err` message, never a panic.

use super::util::{
    broadcast_index, broadcast_shapes, dims_str, log_softmax_lane, lowest_finite, map_lanes,
    matmul, norm_axis, numel, reduce, shape_of, softmax_lane, strides, transpose, transpose_last2,
    unravel, zip_broadcast,
};
use super::{EvalCx, EvalResult, Tensor};
use crate::graph::Op;
use crate::ir::{Attr, Elem};
use crate::numeric::cast_to;

/// Evaluates one `graph` op.
pub fn eval(op: Op, cx: &EvalCx<'_>) -> EvalResult {
    let t = match op {
        Op::Weight => weight(cx)?,
        Op::Constant => constant(cx)?,
        Op::MatMul => {
            let (a, b) = (cx.arg(0)?, cx.arg(1)?);
            let (shape, data) = matmul(&a.data, &a.dims(), &b.data, &b.dims())?;
            cx.output(0, &shape, data)?
        }
        Op::Linear => linear(cx)?,
        Op::Add => binary(cx, |a, b| Ok(a + b))?,
        Op::Sub => binary(cx, |a, b| Ok(a - b))?,
        Op::Mul => binary(cx, |a, b| Ok(a * b))?,
        Op::Div => {
            if cx.result(0)?.elem.is_int() {
                binary(cx, |a, b| {
                    if b == 0.0 {
                        Err(format!("integer division by zero ({a} / 0)"))
                    } else {
                        Ok((a / b).trunc())
                    }
                })?
            } else {
                binary(cx, |a, b| Ok(a / b))?
            }
        }
        Op::Pow => {
            if cx.result(0)?.elem.is_int() {
                binary(cx, |a, b| {
                    if a == 0.0 && b < 0.0 {
                        Err(format!("integer zero raised to the negative power {b}"))
                    } else {
                        Ok(a.powf(b).trunc())
                    }
                })?
            } else {
                binary(cx, |a, b| Ok(a.powf(b)))?
            }
        }
        Op::Maximum => binary(cx, |a, b| Ok(nan_or(a, b, f64::max)))?,
        Op::Minimum => binary(cx, |a, b| Ok(nan_or(a, b, f64::min)))?,
        Op::Equal => compare(cx, |a, b| a == b)?,
        Op::Less => compare(cx, |a, b| a < b)?,
        Op::LessEqual => compare(cx, |a, b| a <= b)?,
        Op::Greater => compare(cx, |a, b| a > b)?,
        Op::GreaterEqual => compare(cx, |a, b| a >= b)?,
        Op::Neg => unary(cx, |x| -x)?,
        Op::Exp => unary(cx, f64::exp)?,
        Op::Log => unary(cx, f64::ln)?,
        Op::Sqrt => unary(cx, f64::sqrt)?,
        Op::Rsqrt => unary(cx, |x| 1.0 / x.sqrt())?,
        Op::Tanh => unary(cx, f64::tanh)?,
        Op::Erf => unary(cx, libm::erf)?,
        Op::Relu => unary(cx, |x| if x < 0.0 { 0.0 } else { x })?,
        Op::Gelu => gelu(cx)?,
        Op::Silu => unary(cx, |x| x * sigmoid(x))?,
        Op::Sigmoid => unary(cx, sigmoid)?,
        Op::Softmax => along_axis(cx, softmax_lane)?,
        Op::LogSoftmax => along_axis(cx, log_softmax_lane)?,
        Op::LayerNorm => layer_norm(cx)?,
        Op::RmsNorm => rms_norm(cx)?,
        Op::Reduce => reduce_op(cx)?,
        Op::Transpose => {
            let x = cx.arg(0)?;
            let perm = cx.ints("perm")?;
            let perm = perm
                .iter()
                .map(|&p| {
                    usize::try_from(p).map_err(|_| format!("perm {perm:?} has a negative entry"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (shape, data) = transpose(&x.data, &x.dims(), &perm)?;
            cx.output(0, &shape, data)?
        }
        Op::Reshape => {
            let (x, ty) = (cx.arg(0)?, cx.result(0)?);
            if x.data.len() != ty.num_elements() {
                return Err(format!(
                    "cannot reshape {} elements into {ty}",
                    x.data.len()
                ));
            }
            Tensor::new(ty.clone(), x.data.clone())
        }
        Op::Concat => concat(cx)?,
        Op::Split => return split(cx),
        Op::Slice => slice(cx)?,
        Op::Gather => gather(cx)?,
        Op::Select => select(cx)?,
        Op::Cast => {
            let (x, e) = (cx.arg(0)?, cx.result(0)?.elem);
            let convert = if cx.bool("saturate").unwrap_or(true) {
                cast_to
            } else {
                crate::numeric::cast_to_unsaturated
            };
            cx.output(
                0,
                &x.dims(),
                x.data.iter().map(|&v| convert(v, e)).collect(),
            )?
        }
        Op::Rope => rope(cx)?,
        Op::CausalMask => causal_mask(cx)?,
        Op::PaddingMask => padding_mask(cx)?,
    };
    Ok(vec![t])
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn unary(cx: &EvalCx<'_>, f: impl Fn(f64) -> f64) -> Result<Tensor, String> {
    let x = cx.arg(0)?;
    cx.output(0, &x.dims(), x.data.iter().map(|&v| f(v)).collect())
}

fn binary(
    cx: &EvalCx<'_>,
    f: impl FnMut(f64, f64) -> Result<f64, String>,
) -> Result<Tensor, String> {
    let (shape, data) = zip_broadcast(cx.arg(0)?, cx.arg(1)?, f)?;
    cx.output(0, &shape, data)
}

/// `f(a, b)`, or NaN when either is NaN (`f64::max`/`min` would return the other).
fn nan_or(a: f64, b: f64, f: fn(f64, f64) -> f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        f(a, b)
    }
}

/// A comparison as `i1` (1 or 0); `f64` comparisons are IEEE's (false on NaN but `!=`).
fn compare(cx: &EvalCx<'_>, f: impl Fn(f64, f64) -> bool) -> Result<Tensor, String> {
    binary(cx, |a, b| Ok(f64::from(u8::from(f(a, b)))))
}

fn along_axis(cx: &EvalCx<'_>, f: fn(&mut [f64])) -> Result<Tensor, String> {
    let x = cx.arg(0)?;
    let shape = x.dims();
    let axis = cx.axis("axis", shape.len())?;
    cx.output(0, &shape, map_lanes(&x.data, &shape, axis, f))
}

fn weight(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let name = cx.str("name")?;
    let ty = cx.result(0)?;
    let w = cx
        .weights
        .get(name)
        .ok_or_else(|| format!("weight '{name}' has no data"))?;
    if &w.ty != ty || w.data.len() != ty.num_elements() {
        return Err(format!(
            "weight '{name}' is {} in the weight store but the op declares {ty}",
            w.ty
        ));
    }
    Ok(Tensor::new(ty.clone(), w.data.clone()))
}

fn constant(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let ty = cx.result(0)?;
    let d = cx
        .attrs
        .dense("value")
        .ok_or("needs a dense attribute 'value'")?;
    let values = d
        .values
        .as_ref()
        .ok_or("constant is elided; its values are not available")?;
    if d.ty.shape != ty.shape || values.len() != ty.num_elements() {
        return Err(format!("value is {} but the op declares {ty}", d.ty));
    }
    Ok(Tensor::new(ty.clone(), values.clone()))
}

fn linear(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (x, w) = (cx.arg(0)?, cx.arg(1)?);
    let (wt_shape, wt) = transpose_last2(&w.data, &w.dims())?;
    let (shape, mut data) = matmul(&x.data, &x.dims(), &wt, &wt_shape)?;
    if let Some(b) = cx.opt_arg(2) {
        let idx = broadcast_index(&b.dims(), &shape).map_err(|_| {
            format!(
                "bias {} does not broadcast to the output {}",
                dims_str(&b.dims()),
                dims_str(&shape)
            )
        })?;
        for (v, i) in data.iter_mut().zip(idx) {
            *v += b.data[i];
        }
    }
    cx.output(0, &shape, data)
}

fn gelu(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let approximate = match cx.attrs.get("approximate") {
        None => "none",
        Some(Attr::Str(s)) => s.as_str(),
        Some(_) => return Err("attribute 'approximate' must be a string".to_string()),
    };
    match approximate {
        "none" => unary(cx, |x| {
            0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
        }),
        "tanh" => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            unary(cx, |x| {
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            })
        }
        other => Err(format!(
            "approximate must be \"none\" or \"tanh\", not \"{other}\""
        )),
    }
}

/// Normalizes each contiguous block of the dims from `axis` on: `(x - center) /
/// sqrt(ms + eps) · gamma + beta`, where `stat(block)` gives `(center, ms)`.
fn normalize(cx: &EvalCx<'_>, stat: impl Fn(&[f64]) -> (f64, f64)) -> Result<Tensor, String> {
    let x = cx.arg(0)?;
    let shape = x.dims();
    let axis = cx.axis("axis", shape.len())?;
    let eps = cx.float("epsilon")?;
    let norm_shape = &shape[axis..];
    let n = numel(norm_shape);
    let affine = |i: usize| -> Result<Option<(&Tensor, Vec<usize>)>, String> {
        cx.opt_arg(i)
            .map(|t| {
                broadcast_index(&t.dims(), norm_shape)
                    .map(|idx| (t, idx))
                    .map_err(|_| {
                        let what = if i == 1 { "gamma" } else { "beta" };
                        format!(
                            "{what} {} does not broadcast to the normalized shape {}",
                            dims_str(&t.dims()),
                            dims_str(norm_shape)
                        )
                    })
            })
            .transpose()
    };
    let (gamma, beta) = (affine(1)?, affine(2)?);
    let mut out = Vec::with_capacity(x.data.len());
    for block in x.data.chunks(n.max(1)) {
        let (center, ms) = stat(block);
        let inv = 1.0 / (ms + eps).sqrt();
        for (k, &v) in block.iter().enumerate() {
            let mut y = (v - center) * inv;
            if let Some((g, idx)) = &gamma {
                y *= g.data[idx[k]];
            }
            if let Some((b, idx)) = &beta {
                y += b.data[idx[k]];
            }
            out.push(y);
        }
    }
    cx.output(0, &shape, out)
}

fn layer_norm(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    normalize(cx, |b| {
        let n = b.len() as f64;
        let mean = b.iter().sum::<f64>() / n;
        let var = b.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        (mean, var)
    })
}

fn rms_norm(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    if cx.args.len() > 2 {
        return Err(format!("takes at most 2 operands, has {}", cx.args.len()));
    }
    normalize(cx, |b| {
        (0.0, b.iter().map(|v| v * v).sum::<f64>() / b.len() as f64)
    })
}

fn reduce_op(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let x = cx.arg(0)?;
    let shape = x.dims();
    let kind = cx.str("kind")?;
    let keepdims = cx.bool("keepdims")?;
    let mut reduced = vec![false; shape.len()];
    for &a in cx.ints("axes")? {
        let ax = norm_axis(a, shape.len())?;
        if std::mem::replace(&mut reduced[ax], true) {
            return Err(format!("axis {a} is reduced twice"));
        }
    }
    let count: usize = shape
        .iter()
        .zip(&reduced)
        .filter(|(_, &r)| r)
        .map(|(&d, _)| d)
        .product();
    let data = match kind {
        "sum" => reduce(&x.data, &shape, &reduced, 0.0, |a, b| a + b),
        "mean" => {
            let s = reduce(&x.data, &shape, &reduced, 0.0, |a, b| a + b);
            s.into_iter().map(|v| v / count as f64).collect()
        }
        "max" => {
            if count == 0 {
                return Err("max over an empty set of elements".to_string());
            }
            let nan_max = |a: f64, b: f64| {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.max(b)
                }
            };
            reduce(&x.data, &shape, &reduced, f64::NEG_INFINITY, nan_max)
        }
        other => {
            return Err(format!(
                "kind must be \"sum\", \"mean\" or \"max\", not \"{other}\""
            ))
        }
    };
    let out_shape: Vec<usize> = shape
        .iter()
        .zip(&reduced)
        .filter_map(|(&d, &r)| match (r, keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    cx.output(0, &out_shape, data)
}

fn concat(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let first = cx.arg(0)?;
    let rank = first.ty.rank();
    let axis = cx.axis("axis", rank)?;
    let mut shape = first.dims();
    shape[axis] = 0;
    for (i, t) in cx.args.iter().enumerate() {
        let d = t.dims();
        let same = d.len() == rank
            && d.iter()
                .enumerate()
                .all(|(k, &v)| k == axis || v == shape[k]);
        if !same {
            return Err(format!(
                "operand #{i} is {} but operand #0 is {}",
                dims_str(&d),
                dims_str(&first.dims())
            ));
        }
        shape[axis] += d[axis];
    }
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut data = Vec::with_capacity(numel(&shape));
    for o in 0..outer {
        for t in cx.args {
            let chunk = t.ty.shape[axis] as usize * inner;
            data.extend_from_slice(&t.data[o * chunk..(o + 1) * chunk]);
        }
    }
    cx.output(0, &shape, data)
}

fn split(cx: &EvalCx<'_>) -> EvalResult {
    let x = cx.arg(0)?;
    let shape = x.dims();
    let axis = cx.axis("axis", shape.len())?;
    let mut total = 0;
    for (i, ty) in cx.results.iter().enumerate() {
        let d = shape_of(ty);
        let same = d.len() == shape.len()
            && d.iter()
                .enumerate()
                .all(|(k, &v)| k == axis || v == shape[k]);
        if !same {
            return Err(format!(
                "result #{i} is {ty}, which does not fit a split of {} along axis {axis}",
                dims_str(&shape)
            ));
        }
        total += d[axis];
    }
    if total != shape[axis] {
        return Err(format!(
            "the results' sizes along axis {axis} add up to {total}, but the operand has {}",
            shape[axis]
        ));
    }
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let row = shape[axis] * inner;
    let mut start = 0;
    let mut outs = Vec::with_capacity(cx.results.len());
    for ty in cx.results {
        let chunk = ty.shape[axis] as usize * inner;
        let mut data = Vec::with_capacity(outer * chunk);
        for o in 0..outer {
            data.extend_from_slice(&x.data[o * row + start..o * row + start + chunk]);
        }
        start += chunk;
        outs.push(Tensor::new((*ty).clone(), data));
    }
    Ok(outs)
}

/// Python's `slice(start, stop, step).indices(n)`, expanded to the selected indices.
fn slice_indices(start: i64, stop: i64, step: i64, n: usize) -> Vec<usize> {
    let n = n as i128;
    let (start, stop, step) = (start as i128, stop as i128, step as i128);
    let (lower, upper) = if step > 0 { (0, n) } else { (-1, n - 1) };
    let clamp = |v: i128| {
        let v = if v < 0 { v + n } else { v };
        v.clamp(lower, upper)
    };
    let (mut i, stop) = (clamp(start), clamp(stop));
    let mut out = Vec::new();
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        out.push(i as usize);
        i += step;
    }
    out
}

fn slice(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let x = cx.arg(0)?;
    let shape = x.dims();
    let (starts, ends) = (cx.ints("starts")?, cx.ints("ends")?);
    let steps = match cx.attrs.get("steps") {
        None => vec![1; shape.len()],
        Some(_) => cx.ints("steps")?.to_vec(),
    };
    let r = shape.len();
    if starts.len() != r || ends.len() != r || steps.len() != r {
        return Err(format!(
            "starts, ends and steps have {}, {} and {} entries, not one per dim of rank {}",
            starts.len(),
            ends.len(),
            steps.len(),
            shape.len()
        ));
    }
    let mut picks = Vec::with_capacity(shape.len());
    for (d, &n) in shape.iter().enumerate() {
        if steps[d] == 0 {
            return Err(format!("step of dim {d} is 0"));
        }
        picks.push(slice_indices(starts[d], ends[d], steps[d], n));
    }
    let out_shape: Vec<usize> = picks.iter().map(Vec::len).collect();
    let st = strides(&shape);
    let data = (0..numel(&out_shape))
        .map(|flat| {
            let idx = unravel(flat, &out_shape);
            x.data[idx
                .iter()
                .enumerate()
                .map(|(d, &i)| picks[d][i] * st[d])
                .sum::<usize>()]
        })
        .collect();
    cx.output(0, &out_shape, data)
}

fn gather(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (x, ind) = (cx.arg(0)?, cx.arg(1)?);
    let shape = x.dims();
    let axis = cx.axis("axis", shape.len())?;
    let n = shape[axis];
    let idx = ind
        .data
        .iter()
        .map(|&v| {
            if v.fract() != 0.0 || !v.is_finite() {
                return Err(format!("index {v} is not an integer"));
            }
            let i = if v < 0.0 { v + n as f64 } else { v };
            if i < 0.0 || i >= n as f64 {
                return Err(format!(
                    "index {v} is out of range for axis {axis} of size {n}"
                ));
            }
            Ok(i as usize)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut data = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in &idx {
            let s = (o * n + i) * inner;
            data.extend_from_slice(&x.data[s..s + inner]);
        }
    }
    let out_shape: Vec<usize> = shape[..axis]
        .iter()
        .chain(&ind.dims())
        .chain(&shape[axis + 1..])
        .copied()
        .collect();
    cx.output(0, &out_shape, data)
}

fn select(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (c, a, b) = (cx.arg(0)?, cx.arg(1)?, cx.arg(2)?);
    let shape = broadcast_shapes(&broadcast_shapes(&c.dims(), &a.dims())?, &b.dims())?;
    let ic = broadcast_index(&c.dims(), &shape)?;
    let ia = broadcast_index(&a.dims(), &shape)?;
    let ib = broadcast_index(&b.dims(), &shape)?;
    let data = (0..ic.len())
        .map(|k| {
            if c.data[ic[k]] != 0.0 {
                a.data[ia[k]]
            } else {
                b.data[ib[k]]
            }
        })
        .collect();
    cx.output(0, &shape, data)
}

fn rope(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (x, cos, sin) = (cx.arg(0)?, cx.arg(1)?, cx.arg(2)?);
    let interleaved = cx.bool("interleaved")?;
    let shape = x.dims();
    let d = *shape.last().ok_or("x must have rank 1 or more")?;
    if d % 2 != 0 {
        return Err(format!("the last dim of x must be even, not {d}"));
    }
    let half = d / 2;
    let mut half_shape = shape.clone();
    *half_shape.last_mut().expect("rank >= 1") = half;
    let bad = |what: &str, t: &Tensor| {
        format!(
            "{what} {} does not broadcast to x[..., :d/2] {}",
            dims_str(&t.dims()),
            dims_str(&half_shape)
        )
    };
    let ic = broadcast_index(&cos.dims(), &half_shape).map_err(|_| bad("cos", cos))?;
    let is = broadcast_index(&sin.dims(), &half_shape).map_err(|_| bad("sin", sin))?;
    let mut out = vec![0.0; x.data.len()];
    for k in 0..ic.len() {
        let (row, i) = (k / half, k % half);
        let (c, s) = (cos.data[ic[k]], sin.data[is[k]]);
        let (p, q) = if interleaved {
            (row * d + 2 * i, row * d + 2 * i + 1)
        } else {
            (row * d + i, row * d + i + half)
        };
        let (a, b) = (x.data[p], x.data[q]);
        out[p] = a * c - b * s;
        out[q] = b * c + a * s;
    }
    cx.output(0, &shape, out)
}

/// The mask value: `i1` results hold visibility, others are additive.
fn mask_value(elem: Elem, visible: bool) -> f64 {
    match (elem, visible) {
        (Elem::I1, v) => f64::from(u8::from(v)),
        (_, true) => 0.0,
        (e, false) => lowest_finite(e),
    }
}

fn causal_mask(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let ty = cx.result(0)?;
    let shape = shape_of(ty);
    let r = shape.len();
    if r < 2 {
        return Err(format!("the result must have rank 2 or more, not {r}"));
    }
    let (n, m) = (shape[r - 2], shape[r - 1]);
    let data = (0..numel(&shape))
        .map(|flat| {
            let (i, j) = ((flat / m) % n, flat % m);
            mask_value(ty.elem, j + n <= i + m)
        })
        .collect();
    cx.output(0, &shape, data)
}

fn padding_mask(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (keep, ty) = (cx.arg(0)?, cx.result(0)?);
    let kd = keep.dims();
    let [b, s] = kd[..] else {
        return Err(format!("keep must be [B, S], not {}", dims_str(&kd)));
    };
    let data = keep
        .data
        .iter()
        .map(|&v| mask_value(ty.elem, v != 0.0))
        .collect();
    cx.output(0, &[b, 1, 1, s], data)
}
