//! `fuse-attention`: decomposed attention chains → one `attn.sdpa`.
//!
//! A direct pattern matcher over the def-use graph, anchored at each `graph.softmax`. The
//! one rule it implements, with its exactness label (techniques.md §0.1):
//!
//! | rule | `lhs -> rhs` | class |
//! |---|---|---|
//! | `fuse-sdpa` | `matmul(softmax(scale·matmul(q·a, (k·b)ᵀ) + mask), v) -> sdpa(q, k, v, mask){scale·a·b}` | EXACT-R |
//! | `unrepeat-kv` | `sdpa(q, repeat_kv(k), repeat_kv(v)) -> sdpa(q, k, v)` (GQA, `Hkv < H`) | EXACT-BIT |
//! | `causal-mask` | `sdpa(q, k, v, graph.causal_mask){causal=false} -> sdpa(q, k, v){causal=true}` | EXACT-R |
//!
//! What the chain may look like (every form exporters were seen to produce):
//!
//! - **scores**: `graph.matmul %q, %kt` where `%kt` is `[.., d, M]`: either a
//!   `graph.transpose` of some `%x` (any permutation; `k` becomes `transpose(%x, p')` with
//!   the last two entries of `p` swapped, or `%x` itself when `p'` is the identity — the
//!   BERT export's `perm = [0, 2, 3, 1]` on a `[B, N, H, d]` tensor), or any other value
//!   (a pre-transposed key; `k = transpose(%kt)` is inserted).
//! - **scaling**: `graph.mul`/`graph.div` by a splat constant (any rank, not broadcasting
//!   the other operand) on the scores before the mask is added, and on `q` or on `k` (before
//!   or after its transpose) before the matmul — exporters of
//!   `scaled_dot_product_attention` multiply `q` and `k` each by `d^-1/4`. The factors
//!   multiply into `scale`. A scale applied after the mask is added is not fused (it would
//!   scale the mask too).
//! - **mask**: one `graph.add` of a float value whose shape broadcasts to the scores
//!   without enlarging them (the importers' `graph.padding_mask`, `graph.causal_mask`, or
//!   `(1 - mask) · lowest` arithmetic). It becomes sdpa's `mask` operand unchanged; a
//!   float `graph.causal_mask` whose last two dims are exactly `[N, M]` becomes
//!   `causal = true` instead. Masked keys receive weight `exp(lowest − max) = 0` both ways.
//! - **softmax** over the last axis; its result feeds only the `graph.matmul` with `v`
//!   (as the left operand).
//! - **heads**: rank-4 `[B, H, N, d]` operands are used as they are (the transposes and
//!   reshapes that split heads stay in front of the sdpa, the ones merging heads after
//!   it); rank-2 and rank-3 chains (`[B·H, N, d]` exports) are reshaped to rank 4 by
//!   prepending unit dims, and the result reshaped back.
//! - **GQA**: when `k` and `v` are both repeats of `[B, Hkv, M, d]` tensors with the same
//!   `Hkv` — HF's `repeat_kv` (`reshape → expand → reshape`, where the importers spell
//!   `expand` as `add` of a splat zero), a `concat` of copies along a new unit axis 2, a
//!   `gather` along the head axis with indices `h / (H / Hkv)`, or a `concat` of a single
//!   head along the head axis (MQA) — the sdpa reads the unrepeated tensors. A matmul that
//!   broadcasts one KV head against `H` query heads is MQA too.
//!
//! Exactness (EXACT-R): the sdpa computes `scale · q·k` in float64 and rounds once, where
//! the chain rounds every intermediate to its element type, so float64 chains agree to
//! ~1e-15 and f32 ones to ~1e-7 (measured 1.2e-7 relative on MiniLM). One documented
//! divergence: a row whose every key is masked with `-inf` is NaN in the chain (softmax
//! of all `-inf`) and 0 in sdpa; finite masks (the importers' lowest value) agree.
//!
//! Left alone: a chain whose scores, scaled scores, masked scores or probabilities have
//! any other use (or are returned); a softmax over another axis; a scale that is not a
//! splat constant; operands of different float types; batch broadcasting in the matmuls.
//!
//! The new ops are placed right before the `p · v` matmul, at the fused location of the
//! chain's ops; the replaced ops then have no uses and are removed. Counters: `fused`,
//! `gqa` (fused with `Hkv < H`), `causal` (mask turned into `causal = true`), `masked`
//! (kept a mask operand).

use lowbit_dialects::attn::Op as A;
use lowbit_dialects::graph::Op as G;
use lowbit_dialects::ir::{Attr, Attrs, Elem, Func, Loc, Op, TensorType, Value};
use lowbit_dialects::Opcode;

use crate::pass::{Pass, PassError, PassResult, Stats};
use crate::util::{constant_of, Users};

/// The `fuse-attention` pass.
#[derive(Debug, Default)]
pub struct FuseAttention;

impl Pass for FuseAttention {
    fn name(&self) -> &'static str {
        "fuse-attention"
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        let mut stats = Stats::with_keys(&["fused", "gqa", "causal", "masked"]);
        for op in func.body.clone() {
            if func.ops[op].opcode != Opcode::Graph(G::Softmax) || !func.body.contains(&op) {
                continue;
            }
            let users = Users::of(func);
            if let Some(m) = match_at(func, &users, op) {
                stats.bump("fused");
                if m.gqa {
                    stats.bump("gqa");
                }
                if m.causal {
                    stats.bump("causal");
                }
                if m.mask.is_some() {
                    stats.bump("masked");
                }
                rewrite(func, m);
            }
        }
        if stats.any() {
            func.remove_dead();
        }
        Ok(PassResult::from_stats(stats))
    }
}

/// A data-movement step applied to an existing value to form an sdpa operand.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    /// `graph.transpose {perm}`.
    Transpose(Vec<i64>),
    /// `graph.reshape` to this type.
    Reshape(TensorType),
}

/// An sdpa operand: an existing value and the steps that turn it into the operand.
#[derive(Clone, Debug)]
struct Operand {
    value: Value,
    steps: Vec<Step>,
}

impl Operand {
    fn of(value: Value) -> Operand {
        Operand {
            value,
            steps: Vec::new(),
        }
    }
}

/// A recognized attention chain.
#[derive(Debug)]
struct Match {
    q: Operand,
    k: Operand,
    v: Operand,
    mask: Option<Value>,
    scale: f64,
    causal: bool,
    gqa: bool,
    /// The `p · v` matmul, whose result the sdpa replaces.
    pv: Op,
    /// The result type of `pv`.
    out: TensorType,
    /// The sdpa's result type (rank 4).
    sdpa_ty: TensorType,
    /// The ops the rewrite makes dead, in body order, for the fused location.
    chain: Vec<Op>,
}

/// The value of every element of constant `v`, when they are all equal and finite.
fn splat_scalar(f: &Func, v: Value) -> Option<f64> {
    let d = constant_of(f, v)?;
    let vals = d.values.as_ref()?;
    let first = *vals.first()?;
    (vals.iter().all(|&x| x == first) && first.is_finite()).then_some(first)
}

/// `x` and the factor when `v = x * c`, `c * x` or `x / c` for a splat constant `c` and
/// the result has `x`'s type.
fn peel_scale(f: &Func, v: Value) -> Option<(Value, f64, Op)> {
    let op = f.def_op(v)?;
    let d = &f.ops[op];
    let (l, r) = (*d.args.first()?, *d.args.get(1)?);
    let out = f.ty(v);
    let pick = |x: Value, c: Value, inv: bool| {
        let c = splat_scalar(f, c)?;
        if f.ty(x) != out || (inv && c == 0.0) {
            return None;
        }
        Some((x, if inv { 1.0 / c } else { c }, op))
    };
    match d.opcode {
        Opcode::Graph(G::Mul) => pick(l, r, false).or_else(|| pick(r, l, false)),
        Opcode::Graph(G::Div) => pick(l, r, true),
        _ => None,
    }
}

/// Peels every splat scaling off `v`; returns the unscaled value and the product.
fn peel_scales(f: &Func, mut v: Value) -> (Value, f64) {
    let mut scale = 1.0;
    while let Some((x, c, _)) = peel_scale(f, v) {
        scale *= c;
        v = x;
    }
    (v, scale)
}

/// The key `[.., M, d]` for a scores matmul's right operand `kt` `[.., d, M]`, and the
/// scale peeled off on the way.
fn key_of(f: &Func, kt: Value) -> (Operand, f64) {
    let (kt, s1) = peel_scales(f, kt);
    let rank = f.ty(kt).rank();
    if let Some(op) = f.def_op(kt) {
        let d = &f.ops[op];
        if d.opcode == Opcode::Graph(G::Transpose) {
            if let Some(perm) = d.attrs.ints("perm") {
                let mut p = perm.to_vec();
                p.swap(rank - 2, rank - 1);
                let (x, s2) = peel_scales(f, d.args[0]);
                let steps = if is_identity(&p) {
                    Vec::new()
                } else {
                    vec![Step::Transpose(p)]
                };
                return (Operand { value: x, steps }, s1 * s2);
            }
        }
    }
    let mut p: Vec<i64> = (0..rank as i64).collect();
    p.swap(rank - 2, rank - 1);
    (
        Operand {
            value: kt,
            steps: vec![Step::Transpose(p)],
        },
        s1,
    )
}

fn is_identity(perm: &[i64]) -> bool {
    perm.iter().enumerate().all(|(i, &p)| p == i as i64)
}

/// What the scores chain between the matmul and the softmax held.
struct Scores {
    matmul: Op,
    scale: f64,
    mask: Option<Value>,
    ops: Vec<Op>,
}

/// Walks from the softmax input `x` back to the scores matmul. Every value on the way must
/// have exactly one use (the next op of the chain).
fn scores_chain(f: &Func, users: &Users, x: Value, next: Op) -> Option<Scores> {
    let mut cur = x;
    let mut user = next;
    let mut inner = 1.0;
    let mut mask = None;
    let mut ops = Vec::new();
    let ty = f.ty(x).clone();
    loop {
        if users.single_user(cur) != Some(user) || f.ty(cur) != &ty {
            return None;
        }
        let op = f.def_op(cur)?;
        let d = &f.ops[op];
        match d.opcode {
            Opcode::Graph(G::MatMul) => {
                ops.push(op);
                return Some(Scores {
                    matmul: op,
                    scale: inner,
                    mask,
                    ops,
                });
            }
            Opcode::Graph(G::Mul | G::Div) => {
                // Walking backwards: a scale met before the mask add is applied after it,
                // and the add below refuses the chain unless those factors multiply to 1.
                let (x, c, _) = peel_scale(f, cur)?;
                inner *= c;
                ops.push(op);
                cur = x;
            }
            Opcode::Graph(G::Add) => {
                if mask.is_some() || inner != 1.0 {
                    // A second mask, or a scale applied after the mask: not fused.
                    return None;
                }
                let (l, r) = (d.args[0], d.args[1]);
                let (chain, m) = if continues(f, l) && !continues(f, r) {
                    (l, r)
                } else if continues(f, r) && !continues(f, l) {
                    (r, l)
                } else if f.ty(l) == &ty && users.single_user(l) == Some(op) {
                    (l, r)
                } else {
                    (r, l)
                };
                let mt = f.ty(m);
                if !mt.elem.is_float() || mt.elem != ty.elem || mt.rank() > 4 {
                    return None;
                }
                mask = Some(m);
                ops.push(op);
                cur = chain;
            }
            _ => return None,
        }
        user = op;
    }
}

/// True when `v` is produced by an op the scores chain can continue through.
fn continues(f: &Func, v: Value) -> bool {
    f.def_op(v)
        .is_some_and(|op| matches!(f.ops[op].opcode, Opcode::Graph(G::MatMul | G::Mul | G::Div)))
}

/// Matches the chain whose softmax is `sm`.
fn match_at(f: &Func, users: &Users, sm: Op) -> Option<Match> {
    let d = &f.ops[sm];
    let x = d.args[0];
    let p = f.result(sm);
    let rank = f.ty(x).rank();
    let axis = d.attrs.int("axis")?;
    if !(2..=4).contains(&rank) || (axis != -1 && axis != rank as i64 - 1) {
        return None;
    }
    let pv = users.single_user(p)?;
    let pvd = &f.ops[pv];
    if pvd.opcode != Opcode::Graph(G::MatMul) || pvd.args[0] != p || pvd.args[1] == p {
        return None;
    }
    let v = pvd.args[1];
    let out = f.ty(f.result(pv)).clone();
    let sc = scores_chain(f, users, x, sm)?;
    let qk = &f.ops[sc.matmul];
    let (q0, kt0) = (qk.args[0], qk.args[1]);
    let scores = f.ty(f.result(sc.matmul)).clone();
    let (qv, qs) = peel_scales(f, q0);
    let (k, ks) = key_of(f, kt0);
    let scale = sc.scale * qs * ks;
    if !scale.is_finite() {
        return None;
    }
    // Types: one float element type, rank `rank` everywhere, no batch broadcasting.
    let elem = scores.elem;
    let (qt, ktt, vt) = (f.ty(qv), f.ty(kt0), f.ty(v));
    if !elem.is_float()
        || [qt.elem, ktt.elem, vt.elem, out.elem, f.ty(p).elem]
            .iter()
            .any(|&e| e != elem)
        || [qt.rank(), ktt.rank(), vt.rank(), out.rank()]
            .iter()
            .any(|&r| r != rank)
    {
        return None;
    }
    let lead = rank - 2;
    let (n, dq) = (qt.shape[lead], qt.shape[lead + 1]);
    let (dk, m) = (ktt.shape[lead], ktt.shape[lead + 1]);
    let (mv, dv) = (vt.shape[lead], vt.shape[lead + 1]);
    if dq != dk || m != mv || scores.shape[lead..] != [n, m] || out.shape[lead..] != [n, dv] {
        return None;
    }
    // Promote to rank 4: [B, H] from the leading dims.
    let pad = |s: &[i64]| -> Vec<i64> {
        let mut full = vec![1; 4 - rank];
        full.extend_from_slice(&s[..lead]);
        full
    };
    let (qbh, kbh, vbh) = (pad(&qt.shape), pad(&ktt.shape), pad(&vt.shape));
    let (b, h) = (qbh[0], qbh[1]);
    if kbh[0] != b
        || vbh[0] != b
        || out.shape[..lead] != qt.shape[..lead]
        || scores.shape[..lead] != qt.shape[..lead]
    {
        return None;
    }
    let (mut q, mut k, mut v) = (Operand::of(qv), k, Operand::of(v));
    let promote = |o: &mut Operand, bh: &[i64], tail: [i64; 2]| {
        if rank < 4 {
            o.steps.push(Step::Reshape(TensorType::new(
                [bh[0], bh[1], tail[0], tail[1]],
                elem,
            )));
        }
    };
    promote(&mut q, &qbh, [n, dq]);
    promote(&mut k, &kbh, [m, dq]);
    promote(&mut v, &vbh, [m, dv]);
    let mut gqa = false;
    match (kbh[1], vbh[1]) {
        (hk, hv) if hk == h && hv == h => {
            if rank == 4 && k.steps.is_empty() {
                if let (Some((k2, gk)), Some((v2, gv))) =
                    (unrepeat_kv(f, k.value), unrepeat_kv(f, v.value))
                {
                    if gk == gv && gk < h {
                        (k, v, gqa) = (k2, v2, true);
                    }
                }
            }
        }
        (1, 1) => gqa = h > 1,
        _ => return None,
    }
    let mut mask = sc.mask;
    let mut causal = false;
    if let Some(mv) = mask {
        if is_causal_mask(f, mv, n, m) {
            mask = None;
            causal = true;
        }
    }
    let mut chain = vec![sm, pv];
    chain.extend(sc.ops);
    let mut keep = vec![q.value, k.value, v.value];
    keep.extend(sc.mask);
    let chain = absorbed(f, users, chain, &keep);
    Some(Match {
        q,
        k,
        v,
        mask,
        scale,
        causal,
        gqa,
        pv,
        sdpa_ty: TensorType::new([b, h, n, dv], elem),
        out,
        chain,
    })
}

/// The chain's ops plus every op that only they use (the transposes, scalings and KV
/// repeats the sdpa reads past), in body order: the ops the rewrite makes dead, whose
/// locations the sdpa fuses. `keep` are the values the sdpa reads; constants and weights
/// are not counted.
fn absorbed(f: &Func, users: &Users, chain: Vec<Op>, keep: &[Value]) -> Vec<Op> {
    let mut set: Vec<Op> = chain;
    loop {
        let mut grew = false;
        for i in 0..set.len() {
            for &a in &f.ops[set[i]].args.clone() {
                let Some(op) = f.def_op(a) else { continue };
                let d = &f.ops[op];
                if set.contains(&op)
                    || keep.contains(&a)
                    || matches!(d.opcode, Opcode::Graph(G::Constant | G::Weight))
                {
                    continue;
                }
                let only_ours = d
                    .results
                    .iter()
                    .all(|&r| users.rets[r] == 0 && users.ops[r].iter().all(|u| set.contains(u)));
                if only_ours {
                    set.push(op);
                    grew = true;
                }
            }
        }
        if !grew {
            break;
        }
    }
    set.sort_by_key(|op| f.body.iter().position(|b| b == op));
    set
}

/// True when `v` is a float `graph.causal_mask` whose last two dims are `[n, m]` (so it
/// hides exactly what `causal = true` hides).
fn is_causal_mask(f: &Func, v: Value, n: i64, m: i64) -> bool {
    let t = f.ty(v);
    let r = t.rank();
    f.def_op(v)
        .is_some_and(|op| f.ops[op].opcode == Opcode::Graph(G::CausalMask))
        && t.elem.is_float()
        && r >= 2
        && t.shape[r - 2..] == [n, m]
}

/// When `v` `[B, H, M, d]` repeats the heads of some `[B, Hkv, M, d]` tensor contiguously
/// (query head `h` reads KV head `h / (H / Hkv)`), that tensor and `Hkv`.
fn unrepeat_kv(f: &Func, v: Value) -> Option<(Operand, i64)> {
    let vt = f.ty(v);
    let [b, h, m, d] = <[i64; 4]>::try_from(vt.shape.as_slice()).ok()?;
    let op = f.def_op(v)?;
    let od = &f.ops[op];
    match od.opcode {
        // reshape([B, G, R, M, d] → [B, H, M, d]) of an expand or concat along axis 2.
        Opcode::Graph(G::Reshape) => {
            let a = od.args[0];
            let at = f.ty(a);
            let [ab, g, r, am, ad] = <[i64; 5]>::try_from(at.shape.as_slice()).ok()?;
            if ab != b || g * r != h || am != m || ad != d {
                return None;
            }
            let src = repeated_unit_axis(f, a)?;
            let want = TensorType::new([b, g, m, d], vt.elem);
            // `src` is `[B, G, 1, M, d]`; prefer the value it was reshaped from.
            if let Some(sop) = f.def_op(src) {
                let sd = &f.ops[sop];
                if sd.opcode == Opcode::Graph(G::Reshape) && f.ty(sd.args[0]) == &want {
                    return Some((Operand::of(sd.args[0]), g));
                }
            }
            Some((
                Operand {
                    value: src,
                    steps: vec![Step::Reshape(want)],
                },
                g,
            ))
        }
        // gather(k, [0, 0, 1, 1, ...], axis = 1).
        Opcode::Graph(G::Gather) => {
            let (data, idx) = (od.args[0], od.args[1]);
            let dt = f.ty(data);
            let axis = od.attrs.int("axis")?;
            if dt.rank() != 4 || (axis != 1 && axis != -3) || f.ty(idx).rank() != 1 {
                return None;
            }
            let g = dt.shape[1];
            if g == 0 || h % g != 0 || dt.shape[0] != b || dt.shape[2] != m {
                return None;
            }
            let vals = constant_of(f, idx)?.values.as_ref()?;
            let r = h / g;
            let ok = vals.len() == h as usize
                && vals.iter().enumerate().all(|(i, &x)| {
                    let x = if x < 0.0 { x + g as f64 } else { x };
                    x == (i as i64 / r) as f64
                });
            ok.then(|| (Operand::of(data), g))
        }
        // concat of one single-head tensor along the head axis (MQA).
        Opcode::Graph(G::Concat) => {
            let axis = od.attrs.int("axis")?;
            let first = *od.args.first()?;
            let one_head = f.ty(first).shape.get(1) == Some(&1);
            let all_same = od.args.iter().all(|&x| x == first);
            ((axis == 1 || axis == -3) && one_head && all_same).then(|| (Operand::of(first), 1))
        }
        _ => None,
    }
}

/// When `a` (`[B, G, R, M, d]`) broadcasts a `[B, G, 1, M, d]` value along axis 2 — an
/// `add` of a splat zero (the importers' `Expand`) or a `concat` of copies along axis 2 —
/// that value.
fn repeated_unit_axis(f: &Func, a: Value) -> Option<Value> {
    let op = f.def_op(a)?;
    let d = &f.ops[op];
    let at = f.ty(a);
    let unit = |x: Value| {
        let t = f.ty(x);
        t.rank() == 5
            && t.elem == at.elem
            && t.shape[2] == 1
            && t.shape
                .iter()
                .enumerate()
                .all(|(i, &s)| i == 2 || s == at.shape[i])
    };
    match d.opcode {
        Opcode::Graph(G::Add) => {
            let (l, r) = (d.args[0], d.args[1]);
            let zero = |c: Value| splat_scalar(f, c) == Some(0.0);
            if unit(l) && zero(r) {
                Some(l)
            } else if unit(r) && zero(l) {
                Some(r)
            } else {
                None
            }
        }
        Opcode::Graph(G::Concat) => {
            let axis = d.attrs.int("axis")?;
            let first = *d.args.first()?;
            let ok = (axis == 2 || axis == -3) && unit(first) && d.args.iter().all(|&x| x == first);
            ok.then_some(first)
        }
        _ => None,
    }
}

/// Materializes `o`'s steps before `at`; returns the operand value.
fn materialize(f: &mut Func, o: &Operand, at: Op, loc: &Loc) -> Value {
    let mut cur = o.value;
    for step in &o.steps {
        let t = f.ty(cur).clone();
        let (opcode, attrs, ty) = match step {
            Step::Transpose(p) => {
                let shape: Vec<i64> = p.iter().map(|&i| t.shape[i as usize]).collect();
                (
                    Opcode::Graph(G::Transpose),
                    Attrs::new().with("perm", Attr::Ints(p.clone())),
                    TensorType::new(shape, t.elem),
                )
            }
            Step::Reshape(ty) => (Opcode::Graph(G::Reshape), Attrs::new(), ty.clone()),
        };
        let op = f.insert_op_before(at, opcode, vec![cur], attrs, vec![ty], loc.clone());
        cur = f.result(op);
    }
    cur
}

/// The scale as an attribute: `f32` when that holds it exactly, else `f64`.
pub(crate) fn float_attr(x: f64) -> Attr {
    if (x as f32) as f64 == x {
        Attr::Float(x, Elem::F32)
    } else {
        Attr::Float(x, Elem::F64)
    }
}

fn rewrite(f: &mut Func, m: Match) {
    let loc = Loc::fuse(m.chain.iter().map(|&op| f.ops[op].loc.clone()));
    let q = materialize(f, &m.q, m.pv, &loc);
    let k = materialize(f, &m.k, m.pv, &loc);
    let v = materialize(f, &m.v, m.pv, &loc);
    let mut args = vec![q, k, v];
    args.extend(m.mask);
    let attrs = Attrs::new()
        .with("scale", float_attr(m.scale))
        .with("causal", Attr::Bool(m.causal));
    let sdpa = f.insert_op_before(
        m.pv,
        Opcode::Attn(A::Sdpa),
        args,
        attrs,
        vec![m.sdpa_ty.clone()],
        loc.clone(),
    );
    let mut out = f.result(sdpa);
    if m.sdpa_ty != m.out {
        let r = f.insert_op_before(
            m.pv,
            Opcode::Graph(G::Reshape),
            vec![out],
            Attrs::new(),
            vec![m.out.clone()],
            loc,
        );
        out = f.result(r);
    }
    let old = f.result(m.pv);
    f.replace_all_uses(old, out);
}

#[cfg(test)]
mod tests;
