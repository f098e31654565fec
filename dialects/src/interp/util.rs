//! Shared helpers for the reference semantics: shapes and strides, numpy broadcasting,
//! lanes along an axis, batched matmul, softmax, transposes, reductions, attribute and
//! operand access on [`EvalCx`], and checked construction of result tensors.
//!
//! Everything works on row-major `f64` buffers with `usize` shapes. Functions whose outcome
//! depends on the program (shapes, attributes, indices) return `Err(String)` messages in the
//! verifier's style (lowercase, no trailing period, both sides stated), never panic; the
//! interpreter prefixes them with the op name and location.

use super::{EvalCx, Tensor};
use crate::ir::{Attr, Elem, TensorType};

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The number of elements of a shape (1 for rank 0).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// `[2, 3]` as `2x3` (rank 0 as `scalar`), for messages.
pub fn dims_str(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "scalar".to_string();
    }
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// A shape as `usize`s from a [`TensorType`].
pub fn shape_of(ty: &TensorType) -> Vec<usize> {
    ty.shape.iter().map(|&d| d.max(0) as usize).collect()
}

/// Normalizes a possibly negative axis against `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} is out of range for rank {rank}"))
    }
}

/// Multi-index of flat position `flat` in `shape`.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for i in (0..shape.len()).rev() {
        if shape[i] > 0 {
            idx[i] = flat % shape[i];
            flat /= shape[i];
        }
    }
    idx
}

/// Numpy broadcasting of two shapes ([`crate::infer::broadcast`] on `usize` dims).
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let wide = |s: &[usize]| s.iter().map(|&d| d as i64).collect::<Vec<_>>();
    let out = crate::infer::broadcast(&wide(a), &wide(b))?;
    Ok(out.into_iter().map(|d| d as usize).collect())
}

/// For each flat index of `to`, the flat index of `from` that numpy broadcasting reads
/// (`from` broadcasts one-directionally to `to`).
pub fn broadcast_index(from: &[usize], to: &[usize]) -> Result<Vec<usize>, String> {
    let bad = || {
        format!(
            "shape {} does not broadcast to {}",
            dims_str(from),
            dims_str(to)
        )
    };
    if from.len() > to.len() {
        return Err(bad());
    }
    let off = to.len() - from.len();
    // Stride of each `to` dim in `from`, 0 where `from` is broadcast.
    let fs = strides(from);
    let mut st = vec![0; to.len()];
    for (i, &d) in from.iter().enumerate() {
        if d == to[off + i] {
            st[off + i] = fs[i];
        } else if d != 1 {
            return Err(bad());
        }
    }
    let n = numel(to);
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; to.len()];
    let mut pos = 0usize;
    for _ in 0..n {
        out.push(pos);
        // Increment the multi-index, updating `pos` incrementally.
        for d in (0..to.len()).rev() {
            idx[d] += 1;
            pos += st[d];
            if idx[d] < to[d] {
                break;
            }
            pos -= st[d] * idx[d];
            idx[d] = 0;
        }
    }
    Ok(out)
}

/// `data` of shape `from` broadcast to `to`.
pub fn broadcast_to(data: &[f64], from: &[usize], to: &[usize]) -> Result<Vec<f64>, String> {
    Ok(broadcast_index(from, to)?
        .into_iter()
        .map(|i| data[i])
        .collect())
}

/// Elementwise `f(a, b)` with numpy broadcasting; returns the result shape and data.
pub fn zip_broadcast(
    a: &Tensor,
    b: &Tensor,
    mut f: impl FnMut(f64, f64) -> Result<f64, String>,
) -> Result<(Vec<usize>, Vec<f64>), String> {
    let (sa, sb) = (a.dims(), b.dims());
    let shape = broadcast_shapes(&sa, &sb)?;
    let ia = broadcast_index(&sa, &shape)?;
    let ib = broadcast_index(&sb, &shape)?;
    let data = ia
        .into_iter()
        .zip(ib)
        .map(|(i, j)| f(a.data[i], b.data[j]))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((shape, data))
}

/// The lanes along `axis`: the flat offset of each lane's first element, the distance
/// between consecutive elements of a lane, and the lane length (`shape[axis]`).
pub fn lanes(shape: &[usize], axis: usize) -> (Vec<usize>, usize, usize) {
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let mut starts = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            starts.push(o * len * inner + i);
        }
    }
    (starts, inner, len)
}

/// Applies `f` to every lane along `axis` (each copied out contiguously, rewritten in
/// place), returning the new buffer.
pub fn map_lanes(
    data: &[f64],
    shape: &[usize],
    axis: usize,
    mut f: impl FnMut(&mut [f64]),
) -> Vec<f64> {
    let mut out = data.to_vec();
    let (starts, stride, len) = lanes(shape, axis);
    let mut lane = vec![0.0; len];
    for s in starts {
        for (k, v) in lane.iter_mut().enumerate() {
            *v = out[s + k * stride];
        }
        f(&mut lane);
        for (k, v) in lane.iter().enumerate() {
            out[s + k * stride] = *v;
        }
    }
    out
}

/// Numerically stable softmax of one lane, in place (`exp(x - max) / sum`). A lane of all
/// `-inf` becomes NaN, as in numpy and PyTorch.
pub fn softmax_lane(lane: &mut [f64]) {
    let m = lane.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in lane.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    for v in lane.iter_mut() {
        *v /= sum;
    }
}

/// Log-softmax of one lane, in place (`x - max - ln(sum(exp(x - max)))`).
pub fn log_softmax_lane(lane: &mut [f64]) {
    let m = lane.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = lane.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
    for v in lane.iter_mut() {
        *v = *v - m - lse;
    }
}

/// Softmax along `axis` of a row-major buffer.
pub fn softmax(data: &[f64], shape: &[usize], axis: usize) -> Vec<f64> {
    map_lanes(data, shape, axis, softmax_lane)
}

/// Permutes dims: result dim `i` is input dim `perm[i]`. Returns the result shape and data.
pub fn transpose(
    data: &[f64],
    shape: &[usize],
    perm: &[usize],
) -> Result<(Vec<usize>, Vec<f64>), String> {
    let mut seen = vec![false; shape.len()];
    let valid = perm.len() == shape.len()
        && perm
            .iter()
            .all(|&p| p < shape.len() && !std::mem::replace(&mut seen[p], true));
    if !valid {
        return Err(format!(
            "{perm:?} is not a permutation of {} dims",
            shape.len()
        ));
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let st = strides(shape);
    let pst: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
    let n = numel(&out_shape);
    let mut out = Vec::with_capacity(n);
    for flat in 0..n {
        let idx = unravel(flat, &out_shape);
        out.push(data[idx.iter().zip(&pst).map(|(i, s)| i * s).sum::<usize>()]);
    }
    Ok((out_shape, out))
}

/// Swaps the last two dims (rank ≥ 2).
pub fn transpose_last2(data: &[f64], shape: &[usize]) -> Result<(Vec<usize>, Vec<f64>), String> {
    let r = shape.len();
    if r < 2 {
        return Err(format!(
            "cannot swap the last two dims of a rank-{r} tensor"
        ));
    }
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    transpose(data, shape, &perm)
}

/// `[m, k] · [k, n]` on row-major buffers, accumulating in `f64` in index order.
pub fn matmul_2d(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0;
            for p in 0..k {
                acc += a[i * k + p] * b[p * n + j];
            }
            out[i * n + j] = acc;
        }
    }
    out
}

/// Numpy `matmul`: the last two dims multiply, leading dims broadcast, and a rank-1 operand
/// is promoted (`[k]` → `[1, k]` on the left, `[k, 1]` on the right) and the promoted dim
/// dropped from the result. Returns the result shape and data.
pub fn matmul(
    a: &[f64],
    sa: &[usize],
    b: &[f64],
    sb: &[usize],
) -> Result<(Vec<usize>, Vec<f64>), String> {
    if sa.is_empty() || sb.is_empty() {
        return Err("matmul operands must have rank 1 or more".to_string());
    }
    let sa2: Vec<usize> = if sa.len() == 1 {
        vec![1, sa[0]]
    } else {
        sa.to_vec()
    };
    let sb2: Vec<usize> = if sb.len() == 1 {
        vec![sb[0], 1]
    } else {
        sb.to_vec()
    };
    let (ra, rb) = (sa2.len(), sb2.len());
    let (m, k) = (sa2[ra - 2], sa2[ra - 1]);
    let (k2, n) = (sb2[rb - 2], sb2[rb - 1]);
    if k != k2 {
        return Err(format!("inner dimensions differ: {k} vs {k2}"));
    }
    let (ba, bb) = (&sa2[..ra - 2], &sb2[..rb - 2]);
    let batch = broadcast_shapes(ba, bb)?;
    let ia = broadcast_index(ba, &batch)?;
    let ib = broadcast_index(bb, &batch)?;
    let mut data = Vec::with_capacity(numel(&batch) * m * n);
    for (&i, &j) in ia.iter().zip(&ib) {
        let pa = &a[i * m * k..(i + 1) * m * k];
        let pb = &b[j * k * n..(j + 1) * k * n];
        data.extend(matmul_2d(pa, pb, m, k, n));
    }
    let mut shape = batch;
    if sa.len() > 1 {
        shape.push(m);
    }
    if sb.len() > 1 {
        shape.push(n);
    }
    Ok((shape, data))
}

/// Folds the dims marked in `reduced` with `f` from `init`. The result keeps every dim
/// (reduced ones have size 1), in row-major order.
pub fn reduce(
    data: &[f64],
    shape: &[usize],
    reduced: &[bool],
    init: f64,
    f: impl Fn(f64, f64) -> f64,
) -> Vec<f64> {
    let out_shape: Vec<usize> = shape
        .iter()
        .zip(reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let ost = strides(&out_shape);
    let mut out = vec![init; numel(&out_shape)];
    for (flat, &v) in data.iter().enumerate() {
        let idx = unravel(flat, shape);
        let o: usize = idx
            .iter()
            .zip(&ost)
            .zip(reduced)
            .map(|((i, s), &r)| if r { 0 } else { i * s })
            .sum();
        out[o] = f(out[o], v);
    }
    out
}

/// The lowest finite value of `elem` (the additive-mask fill): `-f32::MAX` for `f32`,
/// `-65504` for `f16`, the minimum for integers (`0` for `i1`).
pub fn lowest_finite(elem: Elem) -> f64 {
    match elem {
        Elem::F64 => f64::MIN,
        Elem::F32 => f32::MIN as f64,
        Elem::F16 => half::f16::MIN.to_f64(),
        Elem::BF16 => half::bf16::MIN.to_f64(),
        Elem::F8E4M3FN => -448.0,
        Elem::F8E5M2 => -57344.0,
        Elem::F4E2M1FN => -6.0,
        e => e.int_range().expect("non-float types are integers").0 as f64,
    }
}

/// Builds a result tensor of type `ty` from data of shape `shape`, rounding to the element
/// type; an error (not a panic) when the computed shape differs from the declared one.
pub fn tensor(ty: &TensorType, shape: &[usize], data: Vec<f64>) -> Result<Tensor, String> {
    if shape_of(ty) != shape {
        return Err(format!(
            "computes a {} result but declares {ty}",
            dims_str(shape)
        ));
    }
    debug_assert_eq!(data.len(), numel(shape), "data matches its shape");
    Ok(Tensor::new(ty.clone(), data))
}

impl<'a> EvalCx<'a> {
    /// Operand `i`, or an error when it is missing.
    pub fn arg(&self, i: usize) -> Result<&'a Tensor, String> {
        self.args
            .get(i)
            .copied()
            .ok_or_else(|| format!("needs operand #{i}, has {} operand(s)", self.args.len()))
    }

    /// Operand `i` when present (optional operands fill in order after the required ones).
    pub fn opt_arg(&self, i: usize) -> Option<&'a Tensor> {
        self.args.get(i).copied()
    }

    /// Declared result type `i`.
    pub fn result(&self, i: usize) -> Result<&'a TensorType, String> {
        self.results
            .get(i)
            .copied()
            .ok_or_else(|| format!("needs result #{i}, has {} result(s)", self.results.len()))
    }

    /// Builds result `i` from computed `shape` and `data`; see [`tensor`].
    pub fn output(&self, i: usize, shape: &[usize], data: Vec<f64>) -> Result<Tensor, String> {
        tensor(self.result(i)?, shape, data)
    }

    fn attr(&self, name: &str) -> Result<&'a Attr, String> {
        self.attrs
            .get(name)
            .ok_or_else(|| format!("needs attribute '{name}'"))
    }

    /// A required integer attribute.
    pub fn int(&self, name: &str) -> Result<i64, String> {
        match self.attr(name)? {
            Attr::Int(v) => Ok(*v),
            _ => Err(format!("attribute '{name}' must be an integer")),
        }
    }

    /// A required float attribute (an integer one is converted).
    pub fn float(&self, name: &str) -> Result<f64, String> {
        self.attrs
            .float(name)
            .ok_or_else(|| match self.attrs.get(name) {
                None => format!("needs attribute '{name}'"),
                Some(_) => format!("attribute '{name}' must be a float"),
            })
    }

    /// A required bool attribute.
    pub fn bool(&self, name: &str) -> Result<bool, String> {
        match self.attr(name)? {
            Attr::Bool(v) => Ok(*v),
            _ => Err(format!("attribute '{name}' must be a bool")),
        }
    }

    /// A required string attribute.
    pub fn str(&self, name: &str) -> Result<&'a str, String> {
        match self.attr(name)? {
            Attr::Str(v) => Ok(v),
            _ => Err(format!("attribute '{name}' must be a string")),
        }
    }

    /// A required integer-array attribute.
    pub fn ints(&self, name: &str) -> Result<&'a [i64], String> {
        match self.attr(name)? {
            Attr::Ints(v) => Ok(v),
            _ => Err(format!("attribute '{name}' must be an integer array")),
        }
    }

    /// A required float-array attribute (an integer array is converted).
    pub fn floats(&self, name: &str) -> Result<Vec<f64>, String> {
        match self.attr(name)? {
            Attr::Floats(v) => Ok(v.clone()),
            Attr::Ints(v) => Ok(v.iter().map(|&x| x as f64).collect()),
            _ => Err(format!("attribute '{name}' must be a float array")),
        }
    }

    /// The integer attribute `name` as an axis of a rank-`rank` tensor.
    pub fn axis(&self, name: &str, rank: usize) -> Result<usize, String> {
        let a = self.int(name)?;
        norm_axis(a, rank).map_err(|_| format!("{name} {a} is out of range for rank {rank}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_maps() {
        assert_eq!(broadcast_shapes(&[2, 1, 3], &[4, 1]).unwrap(), [2, 4, 3]);
        assert!(broadcast_shapes(&[2, 3], &[4]).is_err());
        assert_eq!(broadcast_index(&[3], &[2, 3]).unwrap(), [0, 1, 2, 0, 1, 2]);
        assert_eq!(
            broadcast_index(&[2, 1], &[2, 3]).unwrap(),
            [0, 0, 0, 1, 1, 1]
        );
        assert_eq!(broadcast_index(&[], &[2]).unwrap(), [0, 0]);
        assert!(broadcast_index(&[2, 3], &[3]).is_err());
    }

    #[test]
    fn matmul_promotes_rank1() {
        let (s, d) = matmul(&[1.0, 2.0], &[2], &[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
        assert_eq!((s, d), (vec![2], vec![7.0, 10.0]));
        let (s, d) = matmul(&[1.0, 2.0], &[2], &[3.0, 4.0], &[2]).unwrap();
        assert_eq!((s, d), (vec![], vec![11.0]));
        assert!(matmul(&[1.0; 3], &[3], &[1.0; 2], &[2]).is_err());
    }

    #[test]
    fn lanes_and_reduce() {
        assert_eq!(lanes(&[2, 3], 0), (vec![0, 1, 2], 3, 2));
        let r = reduce(
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            &[2, 3],
            &[false, true],
            0.0,
            |a, b| a + b,
        );
        assert_eq!(r, [6.0, 15.0]);
        let (s, t) = transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], &[1, 0]).unwrap();
        assert_eq!((s, t), (vec![3, 2], vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
        assert_eq!(lowest_finite(Elem::F16), -65504.0);
    }
}
