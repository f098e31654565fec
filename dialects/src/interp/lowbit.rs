//! Reference semantics of the `lowbit` dialect.
//!
//! - `quantize` / `dequantize` are ONNX `QuantizeLinear` / `DequantizeLinear`: an integer
//!   result is `round_half_even(x / scale) + zero_point`, saturated; a float8/float4 result is
//!   `x / scale` rounded to nearest-even in that format and saturated ([`round_to`]); a
//!   zero point (absent means 0) is added after rounding. `dequantize` is
//!   `(q - zero_point) · scale`. The granularity follows the table: a rank-0 (or `[1]`)
//!   scale without `block_size` is per-tensor, `axis` alone per-axis, `axis` with
//!   `block_size` per-block (element `i` along `axis` reads scale `i / block_size`).
//! - `qmatmul` accumulates `Σ_k (lhs - lhs_zero)(rhs - rhs_zero)` exactly (the products of
//!   ≤ 32-bit integers over the small reductions lowbit interprets stay below 2^53), then
//!   multiplies by `lhs_scale` and then `rhs_scale`. Scales and zero points broadcast
//!   against the output `[..., M, N]` (per-tensor, per-row `[..., M, 1]`, per-column `[N]`),
//!   so output element `(i, j)` uses the zero points broadcast to `(i, j)`.
//! - `pack` / `unpack` store element `2i` in the low nibble of byte `i` and `2i + 1` in the
//!   high nibble (0 when `n` is odd). `i4` nibbles are two's complement, `ui4` plain,
//!   `f4E2M1FN` the OCP encoding: sign bit 3, exponent bits 2–1, mantissa bit 0, magnitudes
//!   `0, 0.5, 1, 1.5, 2, 3, 4, 6` for codes 0–7 (`-0.0` packs to 8).
//! - `codebook` replaces each index by its codebook row; an index outside `[0, K)` is an
//!   error.

use super::util::{broadcast_index, broadcast_shapes, dims_str, numel, strides, unravel};
use super::{EvalCx, EvalResult, Tensor};
use crate::ir::Elem;
use crate::lowbit::Op;
use crate::numeric::{round_half_even, round_to};

/// Evaluates one `lowbit` op.
pub fn eval(op: Op, cx: &EvalCx<'_>) -> EvalResult {
    let t = match op {
        Op::Quantize => {
            let elem = cx.result(0)?.elem;
            linear_quant(cx, |x, scale, zp| {
                let v = x / scale;
                let v = if elem.is_float() {
                    round_to(v, elem)
                } else {
                    round_half_even(v)
                };
                v + zp
            })?
        }
        Op::Dequantize => linear_quant(cx, |q, scale, zp| (q - zp) * scale)?,
        Op::QMatMul => qmatmul(cx)?,
        Op::Pack => pack(cx)?,
        Op::Unpack => unpack(cx)?,
        Op::Codebook => codebook(cx)?,
    };
    Ok(vec![t])
}

/// `quantize` / `dequantize`: `f(value, scale, zero_point)` per element, each element
/// reading the scale (and zero point) of its group.
fn linear_quant(cx: &EvalCx<'_>, f: impl Fn(f64, f64, f64) -> f64) -> Result<Tensor, String> {
    let x = cx.arg(0)?;
    let scale = cx.arg(1)?;
    let zp = cx.opt_arg(2);
    if let Some(z) = zp {
        if z.dims() != scale.dims() {
            return Err(format!(
                "zero_point shape {} differs from scale shape {}",
                dims_str(&z.dims()),
                dims_str(&scale.dims())
            ));
        }
    }
    let shape = x.dims();
    let group = group_map(cx, &shape, &scale.dims())?;
    let data = x
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let g = group(i);
            f(v, scale.data[g], zp.map_or(0.0, |z| z.data[g]))
        })
        .collect();
    cx.output(0, &shape, data)
}

/// The map from an element's flat index in `shape` to its scale's flat index.
fn group_map(
    cx: &EvalCx<'_>,
    shape: &[usize],
    sshape: &[usize],
) -> Result<Box<dyn Fn(usize) -> usize>, String> {
    let block = match cx.attrs.int("block_size") {
        Some(b) if b <= 0 => return Err(format!("block_size must be positive, found {b}")),
        b => b.map(|b| b as usize),
    };
    let axis = match cx.attrs.int("axis") {
        Some(_) => Some(cx.axis("axis", shape.len())?),
        None => None,
    };
    let bad = |what: &str, want: &[usize]| {
        Err(format!(
            "{what} scale must have shape {}, found {}",
            dims_str(want),
            dims_str(sshape)
        ))
    };
    match (axis, block) {
        (_, None) if numel(sshape) == 1 && sshape.len() <= 1 => Ok(Box::new(|_| 0)),
        (None, None) => bad("per-tensor", &[]),
        (None, Some(_)) => Err("block_size requires axis".to_string()),
        (Some(a), None) => {
            if sshape != [shape[a]] {
                return bad("per-axis", &[shape[a]]);
            }
            let st = strides(shape);
            let (stride, len) = (st[a], shape[a]);
            Ok(Box::new(move |i| (i / stride) % len))
        }
        (Some(a), Some(b)) => {
            let mut want = shape.to_vec();
            want[a] = shape[a].div_ceil(b);
            if sshape != want {
                return bad("per-block", &want);
            }
            let shape = shape.to_vec();
            let sst = strides(&want);
            Ok(Box::new(move |i| {
                let mut idx = unravel(i, &shape);
                idx[a] /= b;
                idx.iter().zip(&sst).map(|(x, s)| x * s).sum()
            }))
        }
    }
}

/// An operand broadcast to the output: output flat index `o` reads `data[index[o]]`.
struct Spread<'t> {
    index: Vec<usize>,
    data: &'t [f64],
}

impl Spread<'_> {
    fn at(&self, o: usize) -> f64 {
        self.data[self.index[o]]
    }
}

fn qmatmul(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (a, b) = (cx.arg(0)?, cx.arg(1)?);
    let (sa, sb) = (a.dims(), b.dims());
    if sa.len() < 2 || sb.len() < 2 {
        return Err(format!(
            "operands must have rank 2 or more, found {} and {}",
            dims_str(&sa),
            dims_str(&sb)
        ));
    }
    let (ra, rb) = (sa.len(), sb.len());
    let (m, k, n) = (sa[ra - 2], sa[ra - 1], sb[rb - 1]);
    if sb[rb - 2] != k {
        return Err(format!("inner dimensions differ: {k} vs {}", sb[rb - 2]));
    }
    let batch = broadcast_shapes(&sa[..ra - 2], &sb[..rb - 2])?;
    let ia = broadcast_index(&sa[..ra - 2], &batch)?;
    let ib = broadcast_index(&sb[..rb - 2], &batch)?;
    let mut shape = batch;
    shape.extend([m, n]);
    // Scales and zero points, each broadcast to the output.
    let param = |i: usize| -> Result<Option<Spread<'_>>, String> {
        cx.opt_arg(i)
            .map(|t| {
                Ok(Spread {
                    index: broadcast_index(&t.dims(), &shape)?,
                    data: &t.data,
                })
            })
            .transpose()
    };
    let (ls, rs) = (
        param(2)?.ok_or("needs lhs_scale")?,
        param(3)?.ok_or("needs rhs_scale")?,
    );
    let (lz, rz) = (param(4)?, param(5)?);
    let at = |p: &Option<Spread<'_>>, o: usize| p.as_ref().map_or(0.0, |p| p.at(o));
    let mut data = Vec::with_capacity(numel(&shape));
    for (bi, (&pa, &pb)) in ia.iter().zip(&ib).enumerate() {
        let (ma, mb) = (
            &a.data[pa * m * k..(pa + 1) * m * k],
            &b.data[pb * k * n..(pb + 1) * k * n],
        );
        for i in 0..m {
            for j in 0..n {
                let o = (bi * m + i) * n + j;
                let (za, zb) = (at(&lz, o), at(&rz, o));
                let acc: f64 = (0..k)
                    .map(|p| (ma[i * k + p] - za) * (mb[p * n + j] - zb))
                    .sum();
                data.push(acc * ls.at(o) * rs.at(o));
            }
        }
    }
    cx.output(0, &shape, data)
}

/// E2M1 magnitudes by code (the low three bits of a nibble).
const E2M1: [f64; 8] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];

/// The nibble holding `v`, a value already of the 4-bit type `elem`.
fn encode(v: f64, elem: Elem) -> Result<u8, String> {
    match elem {
        Elem::I4 | Elem::UI4 => Ok((v as i64 & 0xF) as u8),
        Elem::F4E2M1FN => {
            let code = E2M1
                .iter()
                .position(|&m| m == v.abs())
                .ok_or_else(|| format!("{v} is not an f4E2M1FN value"))?;
            Ok(code as u8 | if v.is_sign_negative() { 8 } else { 0 })
        }
        other => Err(format!(
            "cannot pack element type {other}; expected i4, ui4 or f4E2M1FN"
        )),
    }
}

/// The value of nibble `b` in the 4-bit type `elem`.
fn decode(b: u8, elem: Elem) -> Result<f64, String> {
    match elem {
        Elem::I4 => Ok(if b >= 8 { b as f64 - 16.0 } else { b as f64 }),
        Elem::UI4 => Ok(b as f64),
        Elem::F4E2M1FN => {
            let m = E2M1[(b & 7) as usize];
            Ok(if b & 8 != 0 { -m } else { m })
        }
        other => Err(format!(
            "cannot unpack into element type {other}; expected i4, ui4 or f4E2M1FN"
        )),
    }
}

fn pack(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let x = cx.arg(0)?;
    let mut shape = x.dims();
    let n = *shape.last().ok_or("pack needs rank 1 or more")?;
    let m = n.div_ceil(2);
    *shape.last_mut().expect("rank checked") = m;
    let mut data = Vec::with_capacity(numel(&shape));
    for row in x.data.chunks(n.max(1)).take(numel(&shape) / m.max(1)) {
        for i in 0..m {
            let lo = encode(row[2 * i], x.ty.elem)?;
            let hi = match row.get(2 * i + 1) {
                Some(&v) => encode(v, x.ty.elem)?,
                None => 0,
            };
            data.push((lo | hi << 4) as f64);
        }
    }
    cx.output(0, &shape, data)
}

fn unpack(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let x = cx.arg(0)?;
    let ty = cx.result(0)?;
    let m = *x.dims().last().ok_or("unpack needs rank 1 or more")?;
    let mut shape = x.dims();
    let n = *ty
        .shape
        .last()
        .ok_or("unpack needs a result of rank 1 or more")? as usize;
    if n != 2 * m && n + 1 != 2 * m {
        return Err(format!("cannot unpack {m} bytes into {n} elements"));
    }
    *shape.last_mut().expect("rank checked") = n;
    let mut data = Vec::with_capacity(numel(&shape));
    for row in x.data.chunks(m.max(1)).take(numel(&shape) / n.max(1)) {
        for p in 0..n {
            let byte = row[p / 2];
            if !(0.0..=255.0).contains(&byte) {
                return Err(format!("{byte} is not a ui8 value"));
            }
            let nib = if p % 2 == 0 {
                byte as u8 & 0xF
            } else {
                byte as u8 >> 4
            };
            data.push(decode(nib, ty.elem)?);
        }
    }
    cx.output(0, &shape, data)
}

fn codebook(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (idx, book) = (cx.arg(0)?, cx.arg(1)?);
    let bd = book.dims();
    if bd.len() != 2 {
        return Err(format!("codebook must be [K, v], found {}", dims_str(&bd)));
    }
    let (kk, v) = (bd[0], bd[1]);
    let mut shape = idx.dims();
    let last = shape.last_mut().ok_or("indices need rank 1 or more")?;
    *last *= v;
    let mut data = Vec::with_capacity(numel(&shape));
    for &i in &idx.data {
        if i < 0.0 || i >= kk as f64 {
            return Err(format!(
                "index {i} is out of range for a codebook of {kk} entries"
            ));
        }
        let r = i as usize;
        data.extend_from_slice(&book.data[r * v..(r + 1) * v]);
    }
    cx.output(0, &shape, data)
}
