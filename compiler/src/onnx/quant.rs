//! Quantization ops of the default domain and of `com.microsoft`, mapped to the `lowbit`
//! dialect.
//!
//! - `QuantizeLinear` / `DequantizeLinear` (opsets 10–28) become `lowbit.quantize` /
//!   `lowbit.dequantize`: per-tensor (a scalar or one-element scale), per-axis (a 1-D
//!   scale, `axis`) and per-block (`axis` + `block_size`, the scale of the operand's rank);
//!   every integer storage type the dialect has, `float8e4m3fn`, `float8e5m2` and
//!   `float4e2m1`; `output_dtype`; `saturate = 1`. A float zero point that is not a
//!   constant zero (per tensor or per axis) is applied with graph ops as ONNX's formulas
//!   say: `x / scale + zp` before the quantize, `(x - zp) · scale` in f32 instead of the
//!   dequantize. `QuantizeLinear` divides `x / y_scale` with a `graph.div` in ONNX's
//!   `precision` (by default the scale's type), the scale broadcast per axis or per block,
//!   and quantizes the quotient by a unit scale: the value rounded to an integer is the one
//!   ONNX Runtime rounds, ties included (QDQ graphs produce many exact ties). A
//!   `DequantizeLinear` of an initializer keeps the initializer integer in the weight store
//!   (it is materialized, not folded); other all-constant nodes fold at import.
//! - `DynamicQuantizeLinear` is composed exactly from graph ops: `max(0, max x)` and
//!   `-min(0, min x)` by `reduce max` and `relu`, the scale `(hi + lo) / 255` (1/255 when
//!   both are 0, as ONNX says), the zero point `quantize(lo / scale)`, and
//!   `quantize(x / scale, 1, zp)`. Each division is a `graph.div` in the input's float type,
//!   so the values rounded are the f32 quotients ONNX and ONNX Runtime round.
//! - `MatMulInteger` is `lowbit.qmatmul` with unit scales and an `i32` result.
//!   `QLinearMatMul` is `qmatmul` with the scale product `a_scale · b_scale / y_scale` as its
//!   epilogue (the f32 product ONNX Runtime rounds), then `quantize` by 1 with `y_zero_point`.
//!   `MatMulIntegerToFloat` and `DynamicQuantizeMatMul` (`com.microsoft`) are `qmatmul`
//!   with the epilogue `a_scale · b_scale` and a bias `add`.
//! - `MatMulNBits` (`com.microsoft`): the bit-packed blocks of `B` (`bits` 2–8, codes packed
//!   low bit first along K within each block) are unpacked at import into an `ui4` (bits ≤ 4)
//!   or `ui8` weight `[N, K]`, its scales `[N, k_blocks]` and zero points (packed the same
//!   way; `2^(bits-1)` when absent) into weights, and the node becomes
//!   `graph.linear(A, lowbit.dequantize(q, scales, zp {axis = 1, block_size}), bias)`. A
//!   `g_idx` that is not the identity grouping makes the scales per element
//!   (`block_size = 1`). Float zero points (ONNX Runtime's unpacked form) are computed as
//!   `(q - zp) · scale` per block with graph ops on the low-bit weight.
//!
//! Unsupported attributes and types are errors that name the node, op type, domain,
//! opset and attribute, and say the nearest supported form.

use std::fmt::Display;

use lowbit_dialects::interp::Tensor;
use lowbit_dialects::ir::{Attr, Attrs, Elem, TensorType};
use lowbit_dialects::{graph, lowbit, Opcode};

use super::import::{Importer, Val};
use super::ops::{g, konst, norm_axis, scalar, N};
use super::tensor::elem_of;
use super::{OnnxError, OnnxResult};

/// Constants with more elements than this, or initializers, stay in the weight store when
/// dequantized (they are not folded to float at import).
const KEEP_LOW_BIT_MIN: usize = 64;

fn lb(op: lowbit::Op) -> Opcode {
    Opcode::Lowbit(op)
}

/// The element type of an ONNX data type code, the 4-bit codes included.
fn q_elem(code: i32) -> Option<Elem> {
    match code {
        21 => Some(Elem::UI4),
        22 => Some(Elem::I4),
        23 => Some(Elem::F4E2M1FN),
        c => elem_of(c),
    }
}

/// The ONNX spelling of a data type code, for messages.
fn onnx_type(code: i64) -> String {
    let name = match code {
        1 => "float",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        10 => "float16",
        11 => "double",
        16 => "bfloat16",
        17 => "float8e4m3fn",
        18 => "float8e4m3fnuz",
        19 => "float8e5m2",
        20 => "float8e5m2fnuz",
        21 => "uint4",
        22 => "int4",
        23 => "float4e2m1",
        24 => "float8e8m0",
        25 => "uint2",
        26 => "int2",
        _ => return format!("data type {code}"),
    };
    name.to_string()
}

/// An attribute value or type the importer does not map: names the node, op type, domain,
/// opset and attribute, and the nearest supported form.
fn unsupported_attr(
    im: &Importer,
    n: &N<'_>,
    what: impl Display,
    why: &str,
    nearest: &str,
) -> OnnxError {
    let domain = if n.node.domain.is_empty() {
        "ai.onnx"
    } else {
        n.node.domain.as_str()
    };
    let opset = im.opsets.get(domain).copied().unwrap_or(im.opset);
    n.err(format!(
        "{what} is not supported ({domain} opset {opset}): {why}; the nearest supported form is {nearest}"
    ))
}

fn is_const(v: &Val) -> bool {
    matches!(v, Val::Const(..))
}

/// `v` as a run-time value when it is an initializer or a large constant, so that ops on
/// it are emitted instead of folded (weights stay low-bit).
fn keep_low_bit(im: &mut Importer, v: Val, hint: &str) -> Val {
    match &v {
        Val::Const(t, name) if name.is_some() || t.data.len() > KEEP_LOW_BIT_MIN => {
            Val::Ir(im.materialize(&v, hint))
        }
        _ => v,
    }
}

/// The `axis` / `block_size` attributes of a (de)quantize of `data` with `scale`, by
/// ONNX's rules: a scale with one element (rank ≤ 1) is per-tensor, a positive
/// `block_size` is per-block, otherwise a 1-D scale is per-axis.
fn granularity(
    im: &Importer,
    n: &N<'_>,
    data: &TensorType,
    scale: &TensorType,
) -> OnnxResult<Attrs> {
    let block = n.int("block_size", 0);
    let mut attrs = Attrs::new();
    if block < 0 {
        return Err(unsupported_attr(
            im,
            n,
            format!("attribute 'block_size' = {block}"),
            "a block size must be positive",
            "block_size > 0 (per-block) or 0 (per-tensor / per-axis)",
        ));
    }
    if block == 0 && scale.num_elements() == 1 && scale.rank() <= 1 {
        return Ok(attrs);
    }
    let axis = n.int("axis", 1);
    let a = norm_axis(axis, data.rank())
        .ok_or_else(|| n.err(format!("axis {axis} is out of range for {data}")))?;
    attrs.set("axis", Attr::Int(a as i64));
    if block > 0 {
        attrs.set("block_size", Attr::Int(block));
    } else if scale.rank() != 1 {
        return Err(n.err(format!(
            "scale {scale} is neither per-tensor (one element) nor per-axis (1-D); set block_size for a per-block scale"
        )));
    }
    Ok(attrs)
}

/// The zero point of a (de)quantize, fitted to the dialect: dropped when it is a constant
/// zero of a float format (the dialect has no float zero points), reshaped to the scale's
/// shape when both have one element.
fn zero_point(
    im: &mut Importer,
    n: &N<'_>,
    zp: Option<Val>,
    scale: &TensorType,
) -> OnnxResult<Option<Val>> {
    let Some(zp) = zp else { return Ok(None) };
    let zt = im.ty(&zp);
    if zt.elem.is_float() {
        return match &zp {
            Val::Const(t, _) if t.data.iter().all(|&v| v == 0.0) => Ok(None),
            _ => Err(unsupported_attr(
                im,
                n,
                format!("a non-constant or non-zero {} zero point", zt.elem),
                "float formats are stored without an offset",
                "no zero point (or a constant zero one)",
            )),
        };
    }
    if zt.shape != scale.shape && zt.num_elements() == 1 && scale.num_elements() == 1 {
        return Ok(Some(n.reshape(im, &zp, scale.shape.clone())?));
    }
    Ok(Some(zp))
}

/// A float zero point that is not a constant zero, with a per-tensor or per-axis scale:
/// split off to be applied with graph ops (`x / scale + zp` before a saturating quantize,
/// `(x - zp) · scale` after widening), as ONNX's formulas say. Returns `(zp, None)`
/// otherwise.
fn split_float_zp(
    im: &Importer,
    n: &N<'_>,
    zp: Option<Val>,
    scale: &TensorType,
) -> (Option<Val>, Option<Val>) {
    match zp {
        Some(z)
            if im.ty(&z).elem.is_float()
                && scale.rank() <= 1
                && n.int("block_size", 0) == 0
                && !matches!(&z, Val::Const(t, _) if t.data.iter().all(|&v| v == 0.0)) =>
        {
            (None, Some(z))
        }
        zp => (zp, None),
    }
}

/// A per-tensor or per-axis operand `v` (a scale or zero point) cast to `elem` and shaped
/// to broadcast against `x` along the granularity `attrs` selects.
fn broadcast_operand(
    im: &mut Importer,
    n: &N<'_>,
    v: Val,
    elem: Elem,
    attrs: &Attrs,
    x: &TensorType,
) -> OnnxResult<Val> {
    let t = im.ty(&v);
    let v = if t.elem == elem {
        v
    } else {
        n.emit(
            im,
            g(graph::Op::Cast),
            &[v],
            Attrs::new(),
            Some(vec![t.with_elem(elem)]),
        )?
        .remove(0)
    };
    let shape = match attrs.int("axis") {
        Some(a) => {
            let mut s = vec![1; x.rank()];
            s[a as usize] = x.shape[a as usize];
            s
        }
        None => vec![],
    };
    if t.shape == shape {
        return Ok(v);
    }
    n.reshape(im, &v, shape)
}

/// `QuantizeLinear`.
pub(super) fn quantize_linear(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let x = n.req(im, 0)?;
    let scale = n.req(im, 1)?;
    let zp = n.input(im, 2)?;
    let st = im.ty(&scale);
    if !st.elem.is_float() {
        return Err(unsupported_attr(
            im,
            n,
            format!("y_scale of type {}", st.elem),
            "scales are float tensors",
            "a float, float16 or bfloat16 y_scale",
        ));
    }
    let xt = im.ty(&x);
    if !xt.elem.is_float() && xt.elem != Elem::I32 {
        return Err(n.err(format!("x must be float or int32, found {}", xt.elem)));
    }
    let out_code = n.int("output_dtype", 0);
    let declared =
        if out_code != 0 {
            Some(q_elem(out_code as i32).ok_or_else(|| {
                unsupported_attr(
                im,
                n,
                format!("attribute 'output_dtype' = {} ({})", out_code, onnx_type(out_code)),
                "the dialects have no such storage type",
                "int8, uint8, int16, uint16, int4, uint4, float8e4m3fn, float8e5m2 or float4e2m1",
            )
            })?)
        } else {
            None
        };
    let elem = match (&zp, declared) {
        (Some(z), d) => {
            let e = im.ty(z).elem;
            if d.is_some_and(|d| d != e) {
                return Err(n.err(format!(
                    "output_dtype {} differs from the zero point's type {e}",
                    onnx_type(out_code)
                )));
            }
            e
        }
        (None, Some(d)) => d,
        (None, None) => Elem::UI8,
    };
    if !lowbit_dialects::lowbit::infer::QUANTIZED.contains(&elem) || elem == Elem::I32 {
        return Err(unsupported_attr(
            im,
            n,
            format!("output type {elem}"),
            "it is not a quantized storage type",
            "int8, uint8, int16, uint16, int4, uint4, float8e4m3fn, float8e5m2 or float4e2m1",
        ));
    }
    if elem.is_float() && n.int("saturate", 1) == 0 {
        return Err(unsupported_attr(
            im,
            n,
            "attribute 'saturate' = 0",
            "lowbit.quantize saturates float8 overflow to the largest finite value",
            "saturate = 1 (the default)",
        ));
    }
    // ONNX divides in `precision`, by default y_scale's type.
    let precision = n.int("precision", 0);
    let p = match precision {
        0 => st.elem,
        1 | 10 | 16 => q_elem(precision as i32).expect("float codes map"),
        _ => {
            return Err(unsupported_attr(
                im,
                n,
                format!(
                    "attribute 'precision' = {} ({})",
                    precision,
                    onnx_type(precision)
                ),
                "the division x / y_scale is computed in a float type",
                "precision unset, float, float16 or bfloat16",
            ))
        }
    };
    let (zp, float_zp) = split_float_zp(im, n, zp, &st);
    let attrs = granularity(im, n, &xt, &st)?;
    let zp = zero_point(im, n, zp, &st)?;
    let cast = |im: &mut Importer, v: Val| -> OnnxResult<Val> {
        let t = im.ty(&v);
        if t.elem == p {
            return Ok(v);
        }
        let ty = t.with_elem(p);
        Ok(
            n.emit(im, g(graph::Op::Cast), &[v], Attrs::new(), Some(vec![ty]))?
                .remove(0),
        )
    };
    let x = cast(im, x)?;
    let scale = cast(im, scale)?;
    let out_ty = xt.with_elem(elem);
    // `x / y_scale` rounded in `p`, then quantized by a unit scale: the quotient that gets
    // rounded to an integer is the one ONNX Runtime rounds (ties included). A block-wise
    // scale whose axis is not a whole number of blocks is the one form divided in f64 by
    // `lowbit.quantize` itself.
    let (v, s) = match divided(im, n, x.clone(), scale.clone(), &attrs, &xt)? {
        Some(v) => {
            let v = match float_zp {
                Some(z) => {
                    let z = broadcast_operand(im, n, z, p, &attrs, &xt)?;
                    n.emit1(im, g(graph::Op::Add), &[v, z], Attrs::new())?
                }
                None => v,
            };
            let ones = vec![1.0; st.num_elements()];
            let unit = konst(Tensor::new(TensorType::new(st.shape.clone(), p), ones));
            (v, unit)
        }
        None => (x, scale),
    };
    let mut args = vec![v, s];
    args.extend(zp);
    Ok(n.emit(
        im,
        lb(lowbit::Op::Quantize),
        &args,
        attrs,
        Some(vec![out_ty]),
    )?
    .remove(0))
}

/// `x / scale` with the scale broadcast along the granularity `attrs` selects, or `None`
/// for a block-wise scale whose axis is not a whole number of blocks.
fn divided(
    im: &mut Importer,
    n: &N<'_>,
    x: Val,
    scale: Val,
    attrs: &Attrs,
    xt: &TensorType,
) -> OnnxResult<Option<Val>> {
    let div =
        |im: &mut Importer, a: Val, b: Val| n.emit1(im, g(graph::Op::Div), &[a, b], Attrs::new());
    let Some(a) = attrs.int("axis").map(|a| a as usize) else {
        return Ok(Some(div(im, x, scale)?));
    };
    let d = xt.shape[a];
    let mut bshape = vec![1; xt.rank()];
    match attrs.int("block_size") {
        None => {
            bshape[a] = d;
            let s = n.reshape(im, &scale, bshape)?;
            Ok(Some(div(im, x, s)?))
        }
        Some(b) if d % b == 0 => {
            let mut xs = xt.shape[..a].to_vec();
            xs.extend([d / b, b]);
            xs.extend_from_slice(&xt.shape[a + 1..]);
            let mut ss = xs.clone();
            ss[a + 1] = 1;
            let xb = n.reshape(im, &x, xs)?;
            let sb = n.reshape(im, &scale, ss)?;
            let v = div(im, xb, sb)?;
            Ok(Some(n.reshape(im, &v, xt.shape.clone())?))
        }
        Some(_) => Ok(None),
    }
}

/// `DequantizeLinear`.
pub(super) fn dequantize_linear(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let q = n.req(im, 0)?;
    let scale = n.req(im, 1)?;
    let zp = n.input(im, 2)?;
    let (qt, st) = (im.ty(&q), im.ty(&scale));
    if !st.elem.is_float() {
        return Err(unsupported_attr(
            im,
            n,
            format!("x_scale of type {}", st.elem),
            "scales are float tensors",
            "a float, float16 or bfloat16 x_scale",
        ));
    }
    let out_code = n.int("output_dtype", 0);
    let out = if out_code == 0 {
        st.elem
    } else {
        match q_elem(out_code as i32) {
            Some(e) if e.is_float() => e,
            _ => {
                return Err(unsupported_attr(
                    im,
                    n,
                    format!(
                        "attribute 'output_dtype' = {} ({})",
                        out_code,
                        onnx_type(out_code)
                    ),
                    "the output of a dequantization is a float type",
                    "float, float16 or bfloat16",
                ))
            }
        }
    };
    let attrs = granularity(im, n, &qt, &st)?;
    let (zp, float_zp) = split_float_zp(im, n, zp, &st);
    if let Some(z) = float_zp {
        // (x - zp) · scale in f32, as ONNX's reference computes it, then the output type.
        use graph::Op as G;
        let f = Elem::F32;
        let x = n
            .emit(
                im,
                g(G::Cast),
                &[q],
                Attrs::new(),
                Some(vec![qt.with_elem(f)]),
            )?
            .remove(0);
        let z = broadcast_operand(im, n, z, f, &attrs, &qt)?;
        let s = broadcast_operand(im, n, scale, f, &attrs, &qt)?;
        let d = n.emit1(im, g(G::Sub), &[x, z], Attrs::new())?;
        let y = n.emit1(im, g(G::Mul), &[d, s], Attrs::new())?;
        return if out == f {
            Ok(y)
        } else {
            Ok(n.emit(
                im,
                g(G::Cast),
                &[y],
                Attrs::new(),
                Some(vec![qt.with_elem(out)]),
            )?
            .remove(0))
        };
    }
    let zp = zero_point(im, n, zp, &st)?;
    let hint = n.node.input[0].clone();
    let q = if is_const(&scale) {
        keep_low_bit(im, q, &hint)
    } else {
        q
    };
    let mut args = vec![q, scale];
    args.extend(zp);
    Ok(n.emit(
        im,
        lb(lowbit::Op::Dequantize),
        &args,
        attrs,
        Some(vec![qt.with_elem(out)]),
    )?
    .remove(0))
}

/// The three outputs of `DynamicQuantizeLinear` on `x`: `(y: ui8, scale: [], zp: ui8 [])`.
fn dynamic_quantize(im: &mut Importer, n: &N<'_>, x: Val) -> OnnxResult<[Val; 3]> {
    use graph::Op as G;
    let xt = im.ty(&x);
    if !xt.elem.is_float() {
        return Err(n.err(format!("x must be a float tensor, found {xt}")));
    }
    let e = xt.elem;
    let max_all = |im: &mut Importer, v: Val| {
        let attrs = Attrs::new()
            .with("kind", Attr::Str("max".into()))
            .with("axes", Attr::Ints((0..xt.rank() as i64).collect()))
            .with("keepdims", Attr::Bool(false));
        n.emit1(im, g(G::Reduce), &[v], attrs)
    };
    let un = |im: &mut Importer, op: G, v: Val| n.emit1(im, g(op), &[v], Attrs::new());
    let bin = |im: &mut Importer, op: G, a: Val, b: Val| n.emit1(im, g(op), &[a, b], Attrs::new());
    // hi = max(0, max x); lo = -min(0, min x) = max(0, max(-x)).
    let m = max_all(im, x.clone())?;
    let hi = un(im, G::Relu, m)?;
    let neg = un(im, G::Neg, x.clone())?;
    let m = max_all(im, neg)?;
    let lo = un(im, G::Relu, m)?;
    let range = bin(im, G::Add, hi, lo.clone())?;
    // ONNX: scale = 1/255 when max == min (both 0). `zero` is 1 exactly when range == 0:
    // range · 2^149 ≥ 1 for every positive float range, so relu(1 - range · 2^100 · 2^49)
    // is 0 then (the products may saturate; 1 - a huge value stays negative).
    let big1 = bin(im, G::Mul, range.clone(), scalar(2f64.powi(100), e))?;
    let big = bin(im, G::Mul, big1, scalar(2f64.powi(49), e))?;
    let one_minus = bin(im, G::Sub, scalar(1.0, e), big)?;
    let zero = un(im, G::Relu, one_minus)?;
    let range = bin(im, G::Add, range, zero)?;
    let scale = bin(im, G::Div, range, scalar(255.0, e))?;
    let unit = scalar(1.0, e);
    let q = |im: &mut Importer, args: &[Val], shape: Vec<i64>| -> OnnxResult<Val> {
        Ok(n.emit(
            im,
            lb(lowbit::Op::Quantize),
            args,
            Attrs::new(),
            Some(vec![TensorType::new(shape, Elem::UI8)]),
        )?
        .remove(0))
    };
    // zp = saturate(round(0 - min / scale)) = saturate(round(lo / scale)).
    let zf = bin(im, G::Div, lo, scale.clone())?;
    let zp = q(im, &[zf, unit.clone()], vec![])?;
    let xs = bin(im, G::Div, x, scale.clone())?;
    let y = q(im, &[xs, unit, zp.clone()], xt.shape.clone())?;
    Ok([y, scale, zp])
}

/// `DynamicQuantizeLinear`.
pub(super) fn dynamic_quantize_linear(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let x = n.req(im, 0)?;
    Ok(dynamic_quantize(im, n, x)?.to_vec())
}

/// A per-row operand (`[M]` for a rank-2 matrix `[M, K]`) reshaped to `[M, 1]` so that it
/// broadcasts against the `[M, N]` output; others are returned as they are.
fn per_row(im: &mut Importer, n: &N<'_>, v: Val, lhs: &TensorType) -> OnnxResult<Val> {
    let t = im.ty(&v);
    if t.rank() == 1 && t.shape[0] != 1 && lhs.rank() >= 2 {
        let m = lhs.shape[lhs.rank() - 2];
        if t.shape[0] == m {
            return n.reshape(im, &v, vec![m, 1]);
        }
    }
    Ok(v)
}

/// `qmatmul(a, b, scale, 1, a_zp, b_zp)` with a declared result element type.
#[allow(clippy::too_many_arguments)]
fn qmatmul(
    im: &mut Importer,
    n: &N<'_>,
    a: Val,
    b: Val,
    scale: Val,
    a_zp: Option<Val>,
    b_zp: Option<Val>,
    out: Elem,
) -> OnnxResult<Val> {
    let (at, bt) = (im.ty(&a), im.ty(&b));
    if at.rank() < 2 || bt.rank() < 2 {
        return Err(unsupported_attr(
            im,
            n,
            format!("operands of rank {} and {}", at.rank(), bt.rank()),
            "the integer matmul takes matrices",
            "operands of rank 2 or more (Unsqueeze a vector first)",
        ));
    }
    let a_zp = a_zp.map(|z| per_row(im, n, z, &at)).transpose()?;
    let one = scalar(1.0, Elem::F32);
    let mut args = vec![a, b, scale, one];
    match (a_zp, b_zp) {
        (None, None) => {}
        (a_zp, b_zp) => {
            let zero = |e: Elem| scalar(0.0, e);
            args.push(a_zp.unwrap_or_else(|| zero(at.elem)));
            args.push(b_zp.unwrap_or_else(|| zero(bt.elem)));
        }
    }
    let shape = lowbit_dialects::infer::matmul_shape(&at.shape, &bt.shape).map_err(|m| n.err(m))?;
    Ok(n.emit(
        im,
        lb(lowbit::Op::QMatMul),
        &args,
        Attrs::new(),
        Some(vec![TensorType::new(shape, out)]),
    )?
    .remove(0))
}

/// `MatMulInteger`: an exact `i32` product.
pub(super) fn matmul_integer(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let (a, b) = (n.req(im, 0)?, n.req(im, 1)?);
    let (a_zp, b_zp) = (n.input(im, 2)?, n.input(im, 3)?);
    let one = scalar(1.0, Elem::F32);
    qmatmul(im, n, a, b, one, a_zp, b_zp, Elem::I32)
}

/// `a · b` with `graph.mul` (folded when both are constants).
fn mul(im: &mut Importer, n: &N<'_>, a: Val, b: Val) -> OnnxResult<Val> {
    n.emit1(im, g(graph::Op::Mul), &[a, b], Attrs::new())
}

/// `QLinearMatMul`.
pub(super) fn qlinear_matmul(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let get = |i| n.req(im, i);
    let (a, a_s, a_zp, b, b_s, b_zp, y_s) = (
        get(0)?,
        get(1)?,
        n.input(im, 2)?,
        get(3)?,
        get(4)?,
        n.input(im, 5)?,
        get(6)?,
    );
    let y_zp = n.input(im, 7)?;
    let at = im.ty(&a);
    if at.elem.is_float() {
        return Err(unsupported_attr(
            im,
            n,
            format!("float8 operands ({})", at.elem),
            "qmatmul accumulates integers",
            "int8 or uint8 operands",
        ));
    }
    // The epilogue ONNX Runtime applies: (a_scale · b_scale / y_scale) in the scale type.
    let a_s = per_row(im, n, a_s, &at)?;
    let ab = mul(im, n, a_s, b_s)?;
    let m = n.emit1(im, g(graph::Op::Div), &[ab, y_s], Attrs::new())?;
    let y = qmatmul(im, n, a, b, m, a_zp, b_zp, Elem::F32)?;
    let elem = y_zp.as_ref().map_or(at.elem, |z| im.ty(z).elem);
    let yt = im.ty(&y);
    let mut args = vec![y, scalar(1.0, Elem::F32)];
    if let Some(z) = y_zp {
        let zt = im.ty(&z);
        if zt.num_elements() != 1 {
            return Err(unsupported_attr(
                im,
                n,
                format!("y_zero_point of shape {zt}"),
                "the output is quantized per tensor",
                "a scalar y_zero_point",
            ));
        }
        args.push(n.reshape(im, &z, vec![])?);
    }
    Ok(n.emit(
        im,
        lb(lowbit::Op::Quantize),
        &args,
        Attrs::new(),
        Some(vec![yt.with_elem(elem)]),
    )?
    .remove(0))
}

/// `y + bias` when a bias is given.
fn add_bias(im: &mut Importer, n: &N<'_>, y: Val, bias: Option<Val>) -> OnnxResult<Val> {
    match bias {
        Some(b) => n.emit1(im, g(graph::Op::Add), &[y, b], Attrs::new()),
        None => Ok(y),
    }
}

/// `com.microsoft` `MatMulIntegerToFloat`: `qmatmul` with the epilogue `a_scale · b_scale`,
/// plus `bias`.
pub(super) fn matmul_integer_to_float(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let (a, b, a_s, b_s) = (n.req(im, 0)?, n.req(im, 1)?, n.req(im, 2)?, n.req(im, 3)?);
    let (a_zp, b_zp, bias) = (n.input(im, 4)?, n.input(im, 5)?, n.input(im, 6)?);
    let out = im.ty(&a_s).elem;
    let s = mul(im, n, a_s, b_s)?;
    let y = qmatmul(im, n, a, b, s, a_zp, b_zp, out)?;
    add_bias(im, n, y, bias)
}

/// `com.microsoft` `DynamicQuantizeMatMul`: `A` quantized as `DynamicQuantizeLinear` does,
/// then `MatMulIntegerToFloat`.
pub(super) fn dynamic_quantize_matmul(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let (a, b, b_s) = (n.req(im, 0)?, n.req(im, 1)?, n.req(im, 2)?);
    let (b_zp, bias) = (n.input(im, 3)?, n.input(im, 4)?);
    let out = im.ty(&a).elem;
    let [qa, a_s, a_zp] = dynamic_quantize(im, n, a)?;
    let s = mul(im, n, a_s, b_s)?;
    let y = qmatmul(im, n, qa, b, s, Some(a_zp), b_zp, out)?;
    add_bias(im, n, y, bias)
}

/// Unpacks `count` codes of `bits` bits from `bytes`, low bit first.
fn unpack_bits(bytes: &[f64], bits: usize, count: usize) -> Vec<f64> {
    (0..count)
        .map(|i| {
            let mut v = 0u32;
            for j in 0..bits {
                let bit = i * bits + j;
                let byte = bytes.get(bit / 8).copied().unwrap_or(0.0) as u32;
                v |= ((byte >> (bit % 8)) & 1) << j;
            }
            f64::from(v)
        })
        .collect()
}

/// `com.microsoft` `MatMulNBits`.
pub(super) fn matmul_nbits(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let a = n.req(im, 0)?;
    let at = im.ty(&a);
    let (k, nn) = (n.int("K", 0), n.int("N", 0));
    let bits = n.int("bits", 4);
    let block = n.int("block_size", 0);
    if !(2..=8).contains(&bits) {
        return Err(unsupported_attr(
            im,
            n,
            format!("attribute 'bits' = {bits}"),
            "MatMulNBits packs 2- to 8-bit codes",
            "bits between 2 and 8",
        ));
    }
    if block < 16 || block.count_ones() != 1 {
        return Err(unsupported_attr(
            im,
            n,
            format!("attribute 'block_size' = {block}"),
            "ONNX Runtime defines power-of-two blocks of 16 or more",
            "block_size 16, 32, 64, 128 or 256",
        ));
    }
    if n.int("weight_prepacked", 0) != 0 {
        return Err(unsupported_attr(
            im,
            n,
            "attribute 'weight_prepacked' != 0",
            "prepacked layouts are specific to CUDA kernels",
            "weight_prepacked = 0",
        ));
    }
    if k < 1 || nn < 1 || at.shape.last() != Some(&k) {
        return Err(n.err(format!("A {at} does not end in K = {k} (N = {nn})")));
    }
    let need_const = |i: usize| -> OnnxResult<Option<std::rc::Rc<Tensor>>> {
        match n.input(im, i)? {
            None => Ok(None),
            Some(Val::Const(t, _)) => Ok(Some(t)),
            Some(Val::Ir(_)) => Err(unsupported_attr(
                im,
                n,
                format!("a run-time input #{i}"),
                "weights, scales, zero points and g_idx are unpacked at import",
                "initializers",
            )),
        }
    };
    let bq = need_const(1)?.ok_or_else(|| n.err("input #1 (B) is missing"))?;
    let scales = need_const(2)?.ok_or_else(|| n.err("input #2 (scales) is missing"))?;
    let zps = need_const(3)?;
    let g_idx = need_const(4)?;
    let bias = n.input(im, 5)?;
    let (bits, block, k, nn) = (bits as usize, block as usize, k as usize, nn as usize);
    let kb = k.div_ceil(block);
    let blob = block * bits / 8;
    if bq.data.len() != nn * kb * blob || bq.ty.elem != Elem::UI8 {
        return Err(n.err(format!(
            "B {} must be ui8 [{nn}, {kb}, {blob}] (N, k_blocks, block_size · bits / 8)",
            bq.ty
        )));
    }
    if scales.data.len() != nn * kb || scales.ty.elem != at.elem {
        return Err(n.err(format!(
            "scales {} must hold N · k_blocks = {} values of A's type {}",
            scales.ty,
            nn * kb,
            at.elem
        )));
    }
    // Codes [N, K]: each block's blob unpacked, padding past K dropped.
    let mut q = Vec::with_capacity(nn * k);
    for row in bq.data.chunks(kb * blob) {
        let codes: Vec<f64> = row
            .chunks(blob)
            .flat_map(|b| unpack_bits(b, bits, block))
            .collect();
        q.extend_from_slice(&codes[..k]);
    }
    let qelem = if bits <= 4 { Elem::UI4 } else { Elem::UI8 };
    let qw = konst(Tensor::new(
        TensorType::new(vec![nn as i64, k as i64], qelem),
        q,
    ));
    let name = |s: &str| format!("{}.{s}", n.node.name);
    let qw = Val::Ir(im.materialize(&qw, &name("q")));
    let mut scale = scales.data.clone();
    // Zero points: packed ui8 [N, ceil(kb · bits / 8)], or unpacked floats [N, kb].
    let zp_int: Option<Vec<f64>>;
    let mut zp_float: Option<Vec<f64>> = None;
    match &zps {
        None => zp_int = Some(vec![f64::from(1u32 << (bits - 1)); nn * kb]),
        Some(z) if z.ty.elem == Elem::UI8 => {
            let row = (kb * bits).div_ceil(8);
            if z.data.len() != nn * row {
                return Err(n.err(format!(
                    "packed zero_points {} must hold N · ceil(k_blocks · bits / 8) = {} bytes",
                    z.ty,
                    nn * row
                )));
            }
            zp_int = Some(
                z.data
                    .chunks(row)
                    .flat_map(|r| unpack_bits(r, bits, kb))
                    .collect(),
            );
        }
        Some(z) if z.ty.elem == at.elem && z.data.len() == nn * kb => {
            zp_int = None;
            zp_float = Some(z.data.clone());
        }
        Some(z) => {
            return Err(n.err(format!(
                "zero_points {} must be packed ui8 or unpacked {} [N, k_blocks]",
                z.ty, at.elem
            )))
        }
    }
    let mut zp_int = zp_int;
    // g_idx: element k reads group g_idx[k]; the identity grouping k / block_size is
    // dropped, any other makes the parameters per element.
    let mut eff_block = block;
    let mut groups = kb;
    if let Some(gi) = &g_idx {
        if gi.data.len() != k {
            return Err(n.err(format!("g_idx {} must have K = {k} entries", gi.ty)));
        }
        let identity = gi
            .data
            .iter()
            .enumerate()
            .all(|(i, &v)| v as usize == i / block);
        if !identity {
            if gi.data.iter().any(|&v| v < 0.0 || v as usize >= kb) {
                return Err(n.err(format!("g_idx has an entry outside [0, {kb})")));
            }
            let expand = |p: &[f64]| -> Vec<f64> {
                p.chunks(kb)
                    .flat_map(|r| gi.data.iter().map(move |&gk| r[gk as usize]))
                    .collect()
            };
            scale = expand(&scale);
            zp_int = zp_int.map(|z| expand(&z));
            zp_float = zp_float.map(|z| expand(&z));
            eff_block = 1;
            groups = k;
        }
    }
    let pshape = vec![nn as i64, groups as i64];
    let sw = konst(Tensor::new(TensorType::new(pshape.clone(), at.elem), scale));
    let sw = Val::Ir(im.materialize(&sw, &name("scales")));
    let w = if let Some(zf) = zp_float {
        float_zp_dequantize(im, n, qw, sw, zf, nn, k, eff_block, at.elem)?
    } else {
        let zp = zp_int.expect("an integer zero point when there is no float one");
        let zw = konst(Tensor::new(TensorType::new(pshape, qelem), zp));
        let zw = Val::Ir(im.materialize(&zw, &name("zero_points")));
        let attrs = Attrs::new()
            .with("axis", Attr::Int(1))
            .with("block_size", Attr::Int(eff_block as i64));
        n.emit(
            im,
            lb(lowbit::Op::Dequantize),
            &[qw, sw, zw],
            attrs,
            Some(vec![TensorType::new(vec![nn as i64, k as i64], at.elem)]),
        )?
        .remove(0)
    };
    let mut args = vec![a, w];
    args.extend(bias);
    n.emit1(im, g(graph::Op::Linear), &args, Attrs::new())
}

/// `(q - zp) · scale` per block with float zero points, on the low-bit weight `q [N, K]`:
/// cast to float, padded to whole blocks, viewed as `[N, groups, block]`, offset and scaled
/// by `[N, groups, 1]`, viewed back and sliced to K (exact: the subtraction and the
/// product are each rounded once, as ONNX Runtime rounds them).
#[allow(clippy::too_many_arguments)]
fn float_zp_dequantize(
    im: &mut Importer,
    n: &N<'_>,
    q: Val,
    scale: Val,
    zp: Vec<f64>,
    nn: usize,
    k: usize,
    block: usize,
    elem: Elem,
) -> OnnxResult<Val> {
    use graph::Op as G;
    let groups = k.div_ceil(block);
    let (nn_i, k_i, g_i, b_i) = (nn as i64, k as i64, groups as i64, block as i64);
    let qf = n
        .emit(
            im,
            g(G::Cast),
            &[q],
            Attrs::new(),
            Some(vec![TensorType::new(vec![nn_i, k_i], elem)]),
        )?
        .remove(0);
    let padded = if groups * block > k {
        let pad = konst(Tensor::zeros(TensorType::new(
            vec![nn_i, (groups * block - k) as i64],
            elem,
        )));
        let attrs = Attrs::new().with("axis", Attr::Int(1));
        n.emit1(im, g(G::Concat), &[qf, pad], attrs)?
    } else {
        qf
    };
    let blocks = n.reshape(im, &padded, vec![nn_i, g_i, b_i])?;
    let zw = konst(Tensor::new(TensorType::new(vec![nn_i, g_i, 1], elem), zp));
    let zw = Val::Ir(im.materialize(&zw, &format!("{}.zero_points", n.node.name)));
    let centered = n.emit1(im, g(G::Sub), &[blocks, zw], Attrs::new())?;
    let s3 = n.reshape(im, &scale, vec![nn_i, g_i, 1])?;
    let w = mul(im, n, centered, s3)?;
    let flat = n.reshape(im, &w, vec![nn_i, g_i * b_i])?;
    if groups * block == k {
        return Ok(flat);
    }
    let attrs = Attrs::new()
        .with("starts", Attr::Ints(vec![0, 0]))
        .with("ends", Attr::Ints(vec![nn_i, k_i]))
        .with("steps", Attr::Ints(vec![1, 1]));
    n.emit1(im, g(G::Slice), &[flat], attrs)
}

/// The quantization summary `lowbit inspect` prints: one line per quantized tensor, saying
/// its role (weight: an initializer or constant; activation: computed at run time), its
/// storage format and bits, its granularity (per-tensor, per-axis, per-block with the block
/// size), whether it has zero points, and the node pattern that carries it. Read from the
/// protobuf alone, without importing; the lines follow node order.
pub fn summary(g: &super::proto::GraphProto) -> Vec<String> {
    use std::collections::HashMap;
    // Known tensors (initializers and Constant outputs): data type and dims.
    let mut known: HashMap<&str, (i32, &[i64])> = HashMap::new();
    for t in &g.initializer {
        known.insert(&t.name, (t.data_type, &t.dims));
    }
    for node in &g.node {
        if node.op_type == "Constant" {
            if let (Some(out), Some(t)) = (
                node.output.first(),
                node.attribute.iter().find_map(|a| a.t.as_ref()),
            ) {
                known.insert(out, (t.data_type, &t.dims));
            }
        }
    }
    let int_attr = |node: &super::proto::NodeProto, name: &str, default: i64| {
        node.attribute
            .iter()
            .find(|a| a.name == name)
            .map_or(default, |a| a.i)
    };
    fn input(node: &super::proto::NodeProto, i: usize) -> Option<&str> {
        node.input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    let dims = |d: &[i64]| {
        let s: Vec<String> = d.iter().map(i64::to_string).collect();
        format!("[{}]", s.join(", "))
    };
    let fmt = |code: i32| {
        let e = q_elem(code).map_or_else(|| onnx_type(i64::from(code)), |e| e.to_string());
        let bits = q_elem(code).map_or(0, Elem::bits);
        format!("{e} ({bits}-bit)")
    };
    // Granularity of a (de)quantize from its scale's dims.
    let gran = |node: &super::proto::NodeProto, scale: Option<&[i64]>| -> String {
        let block = int_attr(node, "block_size", 0);
        match scale {
            None => "per-tensor (run-time scale)".to_string(),
            Some(_) if block > 0 => format!(
                "per-block (axis {}, block size {block})",
                int_attr(node, "axis", 1)
            ),
            Some(s) if s.iter().product::<i64>() == 1 => "per-tensor".to_string(),
            Some(_) => format!("per-axis (axis {})", int_attr(node, "axis", 1)),
        }
    };
    let mut lines = Vec::new();
    let mut casts: HashMap<&str, &str> = HashMap::new();
    for node in &g.node {
        let op = node.op_type.as_str();
        let ms = node.domain == "com.microsoft";
        match op {
            "DequantizeLinear" | "QuantizeLinear" if !ms => {
                let (Some(x), Some(s)) = (input(node, 0), input(node, 1)) else {
                    continue;
                };
                let scale = known.get(s).map(|k| k.1);
                let zp = input(node, 2);
                let zp_desc = if zp.is_some() {
                    "zero point"
                } else {
                    "no zero point"
                };
                if op == "DequantizeLinear" {
                    let (role, ty) = match known.get(x) {
                        Some(&(code, d)) => ("weight", format!("{} {}", fmt(code), dims(d))),
                        None => ("activation", "run-time".to_string()),
                    };
                    lines.push(format!(
                        "{role} '{x}': {ty}, {}, {zp_desc} (DequantizeLinear '{}')",
                        gran(node, scale),
                        node.name
                    ));
                } else {
                    let code = zp
                        .and_then(|z| known.get(z))
                        .map(|k| k.0)
                        .or_else(|| {
                            let o = int_attr(node, "output_dtype", 0);
                            (o != 0).then_some(o as i32)
                        })
                        .unwrap_or(2);
                    let role = if known.contains_key(x) {
                        "weight"
                    } else {
                        "activation"
                    };
                    lines.push(format!(
                        "{role} '{x}': to {}, {}, {zp_desc} (QuantizeLinear '{}')",
                        fmt(code),
                        gran(node, scale),
                        node.name
                    ));
                }
            }
            "DynamicQuantizeLinear" if !ms => {
                if let Some(x) = input(node, 0) {
                    lines.push(format!(
                        "activation '{x}': to ui8 (8-bit), per-tensor, dynamic scale and zero point (DynamicQuantizeLinear '{}')",
                        node.name
                    ));
                }
            }
            "MatMulInteger"
            | "QLinearMatMul"
            | "MatMulIntegerToFloat"
            | "DynamicQuantizeMatMul" => {
                let (b, bzp) = match op {
                    "MatMulInteger" => (input(node, 1), input(node, 3)),
                    "QLinearMatMul" => (input(node, 3), input(node, 5)),
                    "MatMulIntegerToFloat" => (input(node, 1), input(node, 5)),
                    _ => (input(node, 1), input(node, 3)),
                };
                if let Some((name, &(code, d))) = b.and_then(|b| known.get_key_value(b)) {
                    let zpd = bzp.and_then(|z| known.get(z)).map(|k| k.1);
                    let granularity = match zpd {
                        Some(z) if z.iter().product::<i64>() > 1 => "per-column zero points",
                        Some(_) => "per-tensor zero point",
                        None => "no zero point",
                    };
                    lines.push(format!(
                        "weight '{name}': {} {}, {granularity} ({op} '{}')",
                        fmt(code),
                        dims(d),
                        node.name
                    ));
                }
            }
            "MatMulNBits" if ms => {
                let b = input(node, 1).unwrap_or("?");
                let zp = match input(node, 3).and_then(|z| known.get(z)) {
                    Some(&(2, _)) => "packed zero points",
                    Some(_) => "float zero points",
                    None => "no zero points (2^(bits-1))",
                };
                let g_idx = if input(node, 4).is_some() {
                    ", g_idx"
                } else {
                    ""
                };
                let bits = int_attr(node, "bits", 4);
                lines.push(format!(
                    "weight '{b}': ui{bits} packed ({bits}-bit) [{}, {}], per-block (axis 1, block size {}), {zp}{g_idx} (com.microsoft MatMulNBits '{}')",
                    int_attr(node, "N", 0),
                    int_attr(node, "K", 0),
                    int_attr(node, "block_size", 0),
                    node.name
                ));
            }
            "Cast" if !ms => {
                // `Mul(Cast(q), scale)` with q an integer weight: weight-only quantization.
                if let (Some(x), Some(out)) = (input(node, 0), node.output.first()) {
                    if let Some(&(code, _)) = known.get(x) {
                        if q_elem(code).is_some_and(|e| e.is_int() && e.bits() <= 8) {
                            casts.insert(out, x);
                        }
                    }
                }
            }
            "Mul" if !ms => {
                let (Some(a), Some(s)) = (input(node, 0), input(node, 1)) else {
                    continue;
                };
                if let (Some(q), Some(&(_, sd))) = (casts.get(a), known.get(s)) {
                    let (code, d) = known[q];
                    let granularity = if sd.iter().product::<i64>() == 1 {
                        "per-tensor".to_string()
                    } else {
                        format!("per-axis (scale {})", dims(sd))
                    };
                    lines.push(format!(
                        "weight '{q}': {} {}, {granularity}, no zero point (Mul(Cast) '{}')",
                        fmt(code),
                        dims(d),
                        node.name
                    ));
                }
            }
            _ => {}
        }
    }
    lines
}
