//! Exact tensor algebra: identities and compositions of data movement.
//!
//! | rule | lhs -> rhs | label |
//! |---|---|---|
//! | `transpose-transpose` | `transpose(transpose(x, p1), p2) -> transpose(x, p1∘p2)` (or `x` when the composition is the identity) | EXACT-BIT |
//! | `transpose-identity` | `transpose(x, [0, 1, ..]) -> x` | EXACT-BIT |
//! | `reshape-reshape` | `reshape(reshape(x)) -> reshape(x)` (or `x` when the type comes back) | EXACT-BIT |
//! | `reshape-identity` | `reshape(x) : type(x) -> x` | EXACT-BIT |
//! | `mul-one` | `x * splat(1) -> x` (either side; no broadcast, no conversion) | EXACT-BIT |
//! | `div-one` | `x / splat(1) -> x` (no broadcast, no conversion) | EXACT-BIT |
//! | `add-zero` | `x + splat(0) -> x` (either side; `-0 + 0` is `+0`, an equal value) | EXACT-R |

use egg::Id;
use lowbit_dialects::graph::Op as G;
use lowbit_dialects::ir::Attr;
use lowbit_dialects::Opcode;

use super::{add_op, attrs_of, ops_in, ty, Exactness, Rule};
use crate::egg::analysis::Graph;
use crate::egg::lang::OpNode;

const fn g(op: G) -> Opcode {
    Opcode::Graph(op)
}

/// The algebra rule set (all exact).
#[rustfmt::skip]
pub fn rules() -> Vec<Rule> {
    vec![
        Rule { name: "transpose-transpose", doc: "transpose(transpose(x, p1), p2) -> transpose(x, p1∘p2)", exactness: Exactness::ExactBit, lhs: "(graph.transpose ?a)", inspects: &[Opcode::Graph(G::Transpose)], builds: &[Opcode::Graph(G::Transpose)], apply: transpose_transpose },
        Rule { name: "transpose-identity", doc: "transpose(x, identity) -> x", exactness: Exactness::ExactBit, lhs: "(graph.transpose ?a)", inspects: &[], builds: &[], apply: transpose_identity },
        Rule { name: "reshape-reshape", doc: "reshape(reshape(x)) -> reshape(x)", exactness: Exactness::ExactBit, lhs: "(graph.reshape ?a)", inspects: &[Opcode::Graph(G::Reshape)], builds: &[Opcode::Graph(G::Reshape)], apply: reshape_reshape },
        Rule { name: "reshape-identity", doc: "reshape(x) : type(x) -> x", exactness: Exactness::ExactBit, lhs: "(graph.reshape ?a)", inspects: &[], builds: &[], apply: reshape_identity },
        Rule { name: "mul-one", doc: "x * splat(1) -> x", exactness: Exactness::ExactBit, lhs: "(graph.mul ?a ?b)", inspects: &[], builds: &[], apply: mul_one },
        Rule { name: "div-one", doc: "x / splat(1) -> x", exactness: Exactness::ExactBit, lhs: "(graph.div ?a ?b)", inspects: &[], builds: &[], apply: div_one },
        Rule { name: "add-zero", doc: "x + splat(0) -> x", exactness: Exactness::ExactR, lhs: "(graph.add ?a ?b)", inspects: &[], builds: &[], apply: add_zero },
    ]
}

/// A permutation normalized against its own length; `None` when it is not one.
fn perm_of(node: &OpNode) -> Option<Vec<usize>> {
    let p = node.attrs.ints("perm")?;
    let n = p.len();
    let v: Vec<usize> = p
        .iter()
        .map(|&x| super::norm_axis(x, n))
        .collect::<Option<_>>()?;
    let mut seen = vec![false; n];
    for &x in &v {
        if std::mem::replace(&mut seen[x], true) {
            return None;
        }
    }
    Some(v)
}

fn transpose_transpose(eg: &mut Graph, _c: Id, outer: &OpNode) -> Vec<Id> {
    let Some(p2) = perm_of(outer) else {
        return vec![];
    };
    let mut out = Vec::new();
    for inner in ops_in(eg, outer.children[0], g(G::Transpose)) {
        let Some(p1) = perm_of(&inner) else { continue };
        if p1.len() != p2.len() {
            continue;
        }
        // y = transpose(x, p1): y dim i is x dim p1[i]; z = transpose(y, p2): z dim i is
        // y dim p2[i] = x dim p1[p2[i]].
        let q: Vec<i64> = p2.iter().map(|&i| p1[i] as i64).collect();
        let x = inner.children[0];
        if q.iter().enumerate().all(|(i, &v)| v == i as i64) {
            out.push(x);
        } else {
            let attrs = attrs_of(outer).with("perm", Attr::Ints(q));
            out.push(add_op(
                eg,
                g(G::Transpose),
                &attrs,
                outer.types.to_vec(),
                vec![x],
            ));
        }
    }
    out
}

fn transpose_identity(_eg: &mut Graph, _c: Id, node: &OpNode) -> Vec<Id> {
    match perm_of(node) {
        Some(p) if p.iter().enumerate().all(|(i, &v)| v == i) => vec![node.children[0]],
        _ => vec![],
    }
}

fn reshape_reshape(eg: &mut Graph, _c: Id, outer: &OpNode) -> Vec<Id> {
    let mut out = Vec::new();
    for inner in ops_in(eg, outer.children[0], g(G::Reshape)) {
        let x = inner.children[0];
        if ty(eg, x).as_ref() == outer.types.first() {
            out.push(x);
        } else {
            out.push(add_op(
                eg,
                g(G::Reshape),
                &attrs_of(outer),
                outer.types.to_vec(),
                vec![x],
            ));
        }
    }
    out
}

fn reshape_identity(eg: &mut Graph, _c: Id, node: &OpNode) -> Vec<Id> {
    let x = node.children[0];
    if ty(eg, x).as_ref() == node.types.first() {
        vec![x]
    } else {
        vec![]
    }
}

/// `x` when `node` is `x ∘ splat(k)` (or `splat(k) ∘ x` when `commutes`) with the result of
/// `x`'s exact type.
fn identity_operand(eg: &Graph, node: &OpNode, k: f64, commutes: bool) -> Vec<Id> {
    let (a, b) = (node.children[0], node.children[1]);
    let res = node.types.first();
    let mut out = Vec::new();
    let mut try_side = |x: Id, c: Id| {
        if eg[c].data.is_splat(k) && ty(eg, x).as_ref() == res {
            out.push(x);
        }
    };
    try_side(a, b);
    if commutes {
        try_side(b, a);
    }
    out
}

fn mul_one(eg: &mut Graph, _c: Id, node: &OpNode) -> Vec<Id> {
    identity_operand(eg, node, 1.0, true)
}

fn div_one(eg: &mut Graph, _c: Id, node: &OpNode) -> Vec<Id> {
    identity_operand(eg, node, 1.0, false)
}

fn add_zero(eg: &mut Graph, _c: Id, node: &OpNode) -> Vec<Id> {
    identity_operand(eg, node, 0.0, true)
}
