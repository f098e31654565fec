//! Quantize/dequantize rules: what `fuse-qdq` saturates with.
//!
//! | rule | lhs -> rhs | label |
//! |---|---|---|
//! | `matmul-dequantize` | `matmul(dequantize(xq, sx, zx), dequantize(wq, sw, zw)) -> qmatmul(xq, wq, sx', sw, zx', zw)` when `sx`/`zx` are per-tensor or per-row of `x` (axis `rank-2`, reshaped to `[M, 1]`, or one block spanning `K`, as per-token quantization writes it) and `sw`/`zw` per-tensor or per-column of `w` (axis `rank-1`, or one block spanning `K`) | EXACT-R |
//! | `linear-dequantize`, `linear-bias-dequantize` | `linear(dequantize(xq, sx, zx), dequantize(wq, sw, zw), b) -> qmatmul(xq, transpose(wq), sx', sw', zx', zw') + b` for `w` `[out, in]` with per-tensor or per-output-row scales (or one block spanning `in`); the bias add rounds separately | EXACT-R |
//! | `dequantize-scale-fold` | `dequantize(q, s, z) * splat(c) -> dequantize(q, s·c, z)` (either side; `s` constant) | EXACT-R |
//! | `qmatmul-scale-fold` | `qmatmul(xq, wq, sx, sw, ..) * splat(c) -> qmatmul(xq, wq, sx, sw·c, ..)` (either side; `sw` constant) | EXACT-R |
//! | `quantize-dequantize` | `quantize(dequantize(q, s), s) -> q` (same scale class, no zero point, same granularity, same type) | EXACT-BIT (guarded) |
//! | `quantize-dequantize-zp` | `quantize(dequantize(q, s, z), s, z) -> q` (same, with a zero point) | EXACT-BIT (guarded) |
//! | `transpose-dequantize` | `transpose(dequantize(q, s, z), p) -> dequantize(transpose(q, p), s, z)` (per-tensor, or per-axis with the axis permuted) | EXACT-BIT |
//! | `reshape-dequantize` | `reshape(dequantize(q, s, z)) -> dequantize(reshape(q), s, z)` (per-tensor) | EXACT-BIT |
//! | `dequantize-quantize-elide` | `dequantize(quantize(x, s), s) -> x` (drops the quantization error; never saturated) | APPROX |
//!
//! Why each is exact:
//!
//! - `matmul-dequantize`: `Σ_k (x_ik - zx_i)·sx_i · (w_kj - zw_j)·sw_j =
//!   sx_i·sw_j · Σ_k (x_ik - zx_i)(w_kj - zw_j)` in real arithmetic; the integer sum is exact
//!   in `qmatmul`, the unfused graph rounds each dequantized element and the float sum.
//!   The scales must be constant along `k`, which is why per-column scales of `x`, per-row
//!   scales of `w` and per-block scales do not fuse.
//! - `dequantize-scale-fold`: `((q - z)·s)·c = (q - z)·(s·c)` in real arithmetic.
//! - `quantize-dequantize`: `y = fl_F((q - z)·s)` has relative error at most `u_F`, so
//!   `y / s = (q - z)(1 + ε)` with `|ε| ≤ u_F (1 + 2⁻⁵²)`; the guard requires
//!   `R·u_F ≤ 1/4` where `R = max - min` of the integer type (so `|q - z| ≤ R`), every scale
//!   finite, at least `F`'s smallest normal in magnitude and with `R·|s|` below `F`'s largest
//!   finite value. Then `round_half_even(y / s) = q - z` exactly, `+ z` gives `q` back with no
//!   saturation: bit-identical. (i8/ui8 through f16: `255·2⁻¹¹ ≈ 0.12`; i8 through bf16:
//!   `255·2⁻⁸ ≈ 1` — refused.) Applied to `q = quantize(x)` it merges the requantize chain
//!   `quantize(dequantize(quantize(x)))` into `quantize(x)`.
//! - `transpose-`/`reshape-dequantize`: dequantization is elementwise with the scale chosen
//!   by the element's index along `axis`; moving data before or after it gives the same
//!   elements when the scale follows the data (per-tensor, or the axis permuted).

use egg::Id;
use lowbit_dialects::graph::Op as G;
use lowbit_dialects::infer::{infer, InferCx};
use lowbit_dialects::ir::{Attr, Attrs, Elem, TensorType};
use lowbit_dialects::lowbit::Op as L;
use lowbit_dialects::Opcode;

use super::{add_constant, add_op, attrs_of, konst, norm_axis, ops_in, ty, Exactness, Rule};
use crate::egg::analysis::Graph;
use crate::egg::lang::OpNode;

const fn g(op: G) -> Opcode {
    Opcode::Graph(op)
}
const fn l(op: L) -> Opcode {
    Opcode::Lowbit(op)
}

/// The exact QDQ rule set.
#[rustfmt::skip]
pub fn rules() -> Vec<Rule> {
    vec![
        Rule { name: "matmul-dequantize", doc: "matmul(dequantize(xq, sx, zx), dequantize(wq, sw, zw)) -> qmatmul(xq, wq, sx, sw, zx, zw)", exactness: Exactness::ExactR, lhs: "(graph.matmul ?x ?w)", inspects: &[Opcode::Lowbit(L::Dequantize)], builds: &[Opcode::Graph(G::Reshape), Opcode::Graph(G::Constant), Opcode::Lowbit(L::QMatMul)], apply: matmul_dequantize },
        Rule { name: "linear-dequantize", doc: "linear(dequantize(xq, sx, zx), dequantize(wq, sw, zw), b) -> qmatmul(xq, transpose(wq), sx, sw, zx, zw) + b", exactness: Exactness::ExactR, lhs: "(graph.linear ?x ?w)", inspects: &[Opcode::Lowbit(L::Dequantize)], builds: &[Opcode::Graph(G::Reshape), Opcode::Graph(G::Constant), Opcode::Lowbit(L::QMatMul), Opcode::Graph(G::Transpose), Opcode::Graph(G::Add)], apply: linear_dequantize },
        Rule { name: "linear-bias-dequantize", doc: "linear(dequantize(xq, sx, zx), dequantize(wq, sw, zw), b) -> qmatmul(xq, transpose(wq), sx, sw, zx, zw) + b", exactness: Exactness::ExactR, lhs: "(graph.linear ?x ?w ?b)", inspects: &[Opcode::Lowbit(L::Dequantize)], builds: &[Opcode::Graph(G::Reshape), Opcode::Graph(G::Constant), Opcode::Lowbit(L::QMatMul), Opcode::Graph(G::Transpose), Opcode::Graph(G::Add)], apply: linear_dequantize },
        Rule { name: "dequantize-scale-fold", doc: "dequantize(q, s, z) * splat(c) -> dequantize(q, s*c, z)", exactness: Exactness::ExactR, lhs: "(graph.mul ?a ?b)", inspects: &[Opcode::Lowbit(L::Dequantize)], builds: &[Opcode::Graph(G::Constant), Opcode::Lowbit(L::Dequantize)], apply: dequantize_scale_fold },
        Rule { name: "qmatmul-scale-fold", doc: "qmatmul(xq, wq, sx, sw, ..) * splat(c) -> qmatmul(xq, wq, sx, sw*c, ..)", exactness: Exactness::ExactR, lhs: "(graph.mul ?a ?b)", inspects: &[Opcode::Lowbit(L::QMatMul)], builds: &[Opcode::Graph(G::Constant), Opcode::Lowbit(L::QMatMul)], apply: qmatmul_scale_fold },
        Rule { name: "quantize-dequantize", doc: "quantize(dequantize(q, s), s) -> q", exactness: Exactness::ExactBit, lhs: "(lowbit.quantize ?x ?s)", inspects: &[Opcode::Lowbit(L::Dequantize)], builds: &[], apply: quantize_dequantize },
        Rule { name: "quantize-dequantize-zp", doc: "quantize(dequantize(q, s, z), s, z) -> q", exactness: Exactness::ExactBit, lhs: "(lowbit.quantize ?x ?s ?z)", inspects: &[Opcode::Lowbit(L::Dequantize)], builds: &[], apply: quantize_dequantize },
        Rule { name: "transpose-dequantize", doc: "transpose(dequantize(q, s, z), p) -> dequantize(transpose(q, p), s, z)", exactness: Exactness::ExactBit, lhs: "(graph.transpose ?a)", inspects: &[Opcode::Lowbit(L::Dequantize)], builds: &[Opcode::Graph(G::Transpose), Opcode::Lowbit(L::Dequantize)], apply: transpose_dequantize },
        Rule { name: "reshape-dequantize", doc: "reshape(dequantize(q, s, z)) -> dequantize(reshape(q), s, z)", exactness: Exactness::ExactBit, lhs: "(graph.reshape ?a)", inspects: &[Opcode::Lowbit(L::Dequantize)], builds: &[Opcode::Graph(G::Reshape), Opcode::Lowbit(L::Dequantize)], apply: reshape_dequantize },
    ]
}

/// Approximate QDQ rules: enumerable, never saturated.
#[rustfmt::skip]
pub fn approx_rules() -> Vec<Rule> {
    vec![
        Rule { name: "dequantize-quantize-elide", doc: "dequantize(quantize(x, s), s) -> x", exactness: Exactness::Approx, lhs: "(lowbit.dequantize ?q ?s)", inspects: &[Opcode::Lowbit(L::Quantize)], builds: &[], apply: dequantize_quantize_elide },
    ]
}

/// Adds an op only when the dialect's inference gives exactly `types` for it.
fn add_checked(
    eg: &mut Graph,
    opcode: Opcode,
    attrs: &Attrs,
    types: Vec<TensorType>,
    children: Vec<Id>,
) -> Option<Id> {
    let args: Vec<TensorType> = children.iter().map(|&c| ty(eg, c)).collect::<Option<_>>()?;
    let arg_refs: Vec<&TensorType> = args.iter().collect();
    let res_refs: Vec<&TensorType> = types.iter().collect();
    let cx = InferCx {
        opcode,
        args: &arg_refs,
        attrs,
        results: &res_refs,
    };
    match infer(&cx) {
        Ok(t) if t == types => Some(add_op(eg, opcode, attrs, types, children)),
        _ => None,
    }
}

fn is_int(e: Elem) -> bool {
    e.int_range().is_some() && e != Elem::I1
}

/// Where a dequantize's scale may vary for its side of an integer matmul, and how its
/// scale must be shaped to broadcast against the `qmatmul` output.
struct Side {
    /// The axis the scale may vary along (`M` of `x`, `N` of `w`).
    keep: usize,
    /// The reduction axis (`K`); a per-block scale along it fuses only with one block.
    k: usize,
    /// Reshape a per-axis scale to this shape (`[M, 1]` for `x`).
    per_axis: Option<Vec<i64>>,
    /// Reshape a one-block scale (the operand's shape with `K` set to 1) to this shape.
    per_block: Option<Vec<i64>>,
}

/// A dequantize's scale and zero point as `qmatmul` operands for one side: per-tensor
/// ones as they are; per-axis ones only along `side.keep`; per-block ones only along
/// `side.k` with a single block covering all of `K`; reshaped as `side` says. `None` when
/// the scale varies along `K`, which no epilogue can undo.
fn side_params(
    eg: &mut Graph,
    dq: &OpNode,
    q: &TensorType,
    side: &Side,
) -> Option<(Id, Option<Id>)> {
    let s = dq.children[1];
    let z = dq.children.get(2).copied();
    let target = match (dq.attrs.int("axis"), dq.attrs.int("block_size")) {
        (None, None) => return Some((s, z)),
        (None, Some(_)) => return None,
        (Some(a), None) => {
            if norm_axis(a, q.rank())? != side.keep {
                return None;
            }
            side.per_axis.clone()
        }
        (Some(a), Some(b)) => {
            if norm_axis(a, q.rank())? != side.k || b < q.shape[side.k] {
                return None;
            }
            side.per_block.clone()
        }
    };
    let Some(to) = target else {
        return Some((s, z));
    };
    let mut reshape = |v: Id| -> Option<Id> {
        let t = ty(eg, v)?;
        let to = TensorType::new(to.clone(), t.elem);
        add_checked(eg, g(G::Reshape), &Attrs::new(), vec![to], vec![v])
    };
    let s = reshape(s)?;
    let z = match z {
        Some(z) => Some(reshape(z)?),
        None => None,
    };
    Some((s, z))
}

fn matmul_dequantize(eg: &mut Graph, _c: Id, mm: &OpNode) -> Vec<Id> {
    let mut out = Vec::new();
    for dx in ops_in(eg, mm.children[0], l(L::Dequantize)) {
        for dw in ops_in(eg, mm.children[1], l(L::Dequantize)) {
            if let Some(id) = fuse_matmul(eg, mm, &dx, &dw) {
                out.push(id);
            }
        }
    }
    out
}

/// The `x` side of an integer matmul: `[..., M, K]`.
fn x_side(eg: &mut Graph, dx: &OpNode) -> Option<(Id, TensorType, Id, Option<Id>)> {
    let xq = dx.children[0];
    let xt = ty(eg, xq)?;
    if !is_int(xt.elem) || xt.rank() < 2 {
        return None;
    }
    let r = xt.rank();
    let side = Side {
        keep: r - 2,
        k: r - 1,
        per_axis: Some(vec![xt.shape[r - 2], 1]),
        per_block: None,
    };
    let (s, z) = side_params(eg, dx, &xt, &side)?;
    Some((xq, xt, s, z))
}

/// `qmatmul(xq, wq, sx, sw, zx, zw)` with the optional zero points filled in order (a
/// missing `zx` before a present `zw` is a zero constant).
fn build_qmatmul(
    eg: &mut Graph,
    types: Vec<TensorType>,
    (xq, xt, sx, zx): (Id, TensorType, Id, Option<Id>),
    (wq, sw, zw): (Id, Id, Option<Id>),
) -> Option<Id> {
    let mut children = vec![xq, wq, sx, sw];
    if zx.is_some() || zw.is_some() {
        let zx = match zx {
            Some(z) => z,
            None => add_constant(eg, TensorType::scalar(xt.elem), vec![0.0]),
        };
        children.push(zx);
        if let Some(zw) = zw {
            children.push(zw);
        }
    }
    add_checked(eg, l(L::QMatMul), &Attrs::new(), types, children)
}

fn fuse_matmul(eg: &mut Graph, mm: &OpNode, dx: &OpNode, dw: &OpNode) -> Option<Id> {
    let wq = dw.children[0];
    let wt = ty(eg, wq)?;
    if !is_int(wt.elem) || wt.rank() < 2 {
        return None;
    }
    let x = x_side(eg, dx)?;
    let r = wt.rank();
    let side = Side {
        keep: r - 1,
        k: r - 2,
        per_axis: None,
        per_block: None,
    };
    let (sw, zw) = side_params(eg, dw, &wt, &side)?;
    build_qmatmul(eg, mm.types.to_vec(), x, (wq, sw, zw))
}

fn linear_dequantize(eg: &mut Graph, _c: Id, lin: &OpNode) -> Vec<Id> {
    let mut out = Vec::new();
    for dx in ops_in(eg, lin.children[0], l(L::Dequantize)) {
        for dw in ops_in(eg, lin.children[1], l(L::Dequantize)) {
            if let Some(id) = fuse_linear(eg, lin, &dx, &dw) {
                out.push(id);
            }
        }
    }
    out
}

fn fuse_linear(eg: &mut Graph, lin: &OpNode, dx: &OpNode, dw: &OpNode) -> Option<Id> {
    let wq = dw.children[0];
    let wt = ty(eg, wq)?;
    if !is_int(wt.elem) || wt.rank() != 2 {
        return None;
    }
    let (n, k) = (wt.shape[0], wt.shape[1]);
    let x = x_side(eg, dx)?;
    // w is [out, in]: per-row scales (axis 0) are per-column of wᵀ; one block along `in`
    // gives [out, 1], reshaped to [out].
    let side = Side {
        keep: 0,
        k: 1,
        per_axis: None,
        per_block: Some(vec![n]),
    };
    let (sw, zw) = side_params(eg, dw, &wt, &side)?;
    let perm = Attrs::new().with("perm", Attr::Ints(vec![1, 0]));
    let wtq = add_checked(
        eg,
        g(G::Transpose),
        &perm,
        vec![TensorType::new([k, n], wt.elem)],
        vec![wq],
    )?;
    let y = build_qmatmul(eg, lin.types.to_vec(), x, (wtq, sw, zw))?;
    match lin.children.get(2) {
        None => Some(y),
        Some(&b) => add_checked(eg, g(G::Add), &Attrs::new(), lin.types.to_vec(), vec![y, b]),
    }
}

fn dequantize_scale_fold(eg: &mut Graph, _c: Id, mul: &OpNode) -> Vec<Id> {
    let res = mul.types[0].clone();
    let mut out = Vec::new();
    for (d, c) in [
        (mul.children[0], mul.children[1]),
        (mul.children[1], mul.children[0]),
    ] {
        let (Some(ct), Some(k)) = (ty(eg, c), konst(eg, c)) else {
            continue;
        };
        let Some(&factor) = k.first() else { continue };
        if ct.elem != res.elem
            || !k.iter().all(|&v| v == factor)
            || !factor.is_finite()
            || factor == 0.0
        {
            continue;
        }
        if ty(eg, d).as_ref() != Some(&res) {
            continue;
        }
        for dq in ops_in(eg, d, l(L::Dequantize)) {
            let s = dq.children[1];
            let (Some(st), Some(sv)) = (ty(eg, s), konst(eg, s)) else {
                continue;
            };
            let folded: Vec<f64> = sv.iter().map(|v| v * factor).collect();
            if folded.iter().any(|v| !v.is_finite() || *v == 0.0) {
                continue;
            }
            let s2 = add_constant(eg, st, folded);
            let mut children = dq.children.clone();
            children[1] = s2;
            if let Some(id) = add_checked(
                eg,
                l(L::Dequantize),
                &attrs_of(&dq),
                dq.types.to_vec(),
                children,
            ) {
                out.push(id);
            }
        }
    }
    out
}

fn qmatmul_scale_fold(eg: &mut Graph, _c: Id, mul: &OpNode) -> Vec<Id> {
    let res = mul.types[0].clone();
    let mut out = Vec::new();
    for (d, c) in [
        (mul.children[0], mul.children[1]),
        (mul.children[1], mul.children[0]),
    ] {
        let Some(factor) = splat_factor(eg, c, &res) else {
            continue;
        };
        if ty(eg, d).as_ref() != Some(&res) {
            continue;
        }
        for qm in ops_in(eg, d, l(L::QMatMul)) {
            let s = qm.children[3];
            let (Some(st), Some(sv)) = (ty(eg, s), konst(eg, s)) else {
                continue;
            };
            let folded: Vec<f64> = sv.iter().map(|v| v * factor).collect();
            if folded.iter().any(|v| !v.is_finite() || *v == 0.0) {
                continue;
            }
            let s2 = add_constant(eg, st, folded);
            let mut children = qm.children.clone();
            children[3] = s2;
            if let Some(id) = add_checked(
                eg,
                l(L::QMatMul),
                &attrs_of(&qm),
                qm.types.to_vec(),
                children,
            ) {
                out.push(id);
            }
        }
    }
    out
}

/// The factor of a splat constant `c` of `res`'s element type: finite and non-zero.
fn splat_factor(eg: &Graph, c: Id, res: &TensorType) -> Option<f64> {
    let (ct, k) = (ty(eg, c)?, konst(eg, c)?);
    let &factor = k.first()?;
    (ct.elem == res.elem && k.iter().all(|&v| v == factor) && factor.is_finite() && factor != 0.0)
        .then_some(factor)
}

/// Unit roundoff, smallest normal and largest finite value of the float types a
/// round trip may pass through.
fn float_limits(e: Elem) -> Option<(f64, f64, f64)> {
    Some(match e {
        Elem::F64 => (2f64.powi(-53), f64::MIN_POSITIVE, f64::MAX),
        Elem::F32 => (2f64.powi(-24), f32::MIN_POSITIVE as f64, f32::MAX as f64),
        Elem::F16 => (2f64.powi(-11), 2f64.powi(-14), 65504.0),
        Elem::BF16 => (
            2f64.powi(-8),
            f32::MIN_POSITIVE as f64,
            3.3895313892515355e38,
        ),
        _ => return None,
    })
}

/// The guard of `quantize-dequantize` (see the module docs).
pub fn roundtrip_is_exact(q: Elem, through: Elem, scales: &[f64]) -> bool {
    let (Some((lo, hi)), Some((u, min_normal, max))) = (q.int_range(), float_limits(through))
    else {
        return false;
    };
    if q == Elem::I1 || q == Elem::I64 {
        return false;
    }
    let r = (hi - lo) as f64;
    r * u <= 0.25
        && !scales.is_empty()
        && scales
            .iter()
            .all(|s| s.is_finite() && s.abs() >= min_normal && s.abs() * r <= max)
}

fn quantize_dequantize(eg: &mut Graph, _c: Id, qn: &OpNode) -> Vec<Id> {
    let mut out = Vec::new();
    for dq in ops_in(eg, qn.children[0], l(L::Dequantize)) {
        let q = dq.children[0];
        let same = dq.children[1..] == qn.children[1..] && dq.attrs == qn.attrs;
        let Some(qt) = ty(eg, q) else { continue };
        if !same || Some(&qt) != qn.types.first() {
            continue;
        }
        let Some(s) = konst(eg, dq.children[1]) else {
            continue;
        };
        if roundtrip_is_exact(qt.elem, dq.types[0].elem, &s) {
            out.push(q);
        }
    }
    out
}

fn transpose_dequantize(eg: &mut Graph, _c: Id, tr: &OpNode) -> Vec<Id> {
    let Some(perm) = tr.attrs.ints("perm").map(|p| p.to_vec()) else {
        return vec![];
    };
    let mut out = Vec::new();
    for dq in ops_in(eg, tr.children[0], l(L::Dequantize)) {
        if dq.attrs.int("block_size").is_some() {
            continue;
        }
        let q = dq.children[0];
        let Some(qt) = ty(eg, q) else { continue };
        let mut attrs = attrs_of(&dq);
        if let Some(axis) = dq.attrs.int("axis") {
            let Some(a) = norm_axis(axis, qt.rank()) else {
                continue;
            };
            let Some(pos) = perm
                .iter()
                .position(|&p| norm_axis(p, qt.rank()) == Some(a))
            else {
                continue;
            };
            attrs.set("axis", Attr::Int(pos as i64));
        }
        let t_ty = tr.types[0].with_elem(qt.elem);
        let Some(tq) = add_checked(eg, g(G::Transpose), &attrs_of(tr), vec![t_ty], vec![q]) else {
            continue;
        };
        let mut children = dq.children.clone();
        children[0] = tq;
        if let Some(id) = add_checked(eg, l(L::Dequantize), &attrs, tr.types.to_vec(), children) {
            out.push(id);
        }
    }
    out
}

fn reshape_dequantize(eg: &mut Graph, _c: Id, rs: &OpNode) -> Vec<Id> {
    let mut out = Vec::new();
    for dq in ops_in(eg, rs.children[0], l(L::Dequantize)) {
        if dq.attrs.int("axis").is_some() || dq.attrs.int("block_size").is_some() {
            continue;
        }
        let q = dq.children[0];
        let Some(qt) = ty(eg, q) else { continue };
        let r_ty = rs.types[0].with_elem(qt.elem);
        let Some(rq) = add_checked(eg, g(G::Reshape), &attrs_of(rs), vec![r_ty], vec![q]) else {
            continue;
        };
        let mut children = dq.children.clone();
        children[0] = rq;
        if let Some(id) = add_checked(
            eg,
            l(L::Dequantize),
            &attrs_of(&dq),
            rs.types.to_vec(),
            children,
        ) {
            out.push(id);
        }
    }
    out
}

fn dequantize_quantize_elide(eg: &mut Graph, _c: Id, dq: &OpNode) -> Vec<Id> {
    let mut out = Vec::new();
    for qn in ops_in(eg, dq.children[0], l(L::Quantize)) {
        let x = qn.children[0];
        if qn.children[1..] == dq.children[1..]
            && qn.attrs == dq.attrs
            && ty(eg, x).as_ref() == dq.types.first()
        {
            out.push(x);
        }
    }
    out
}
