//! Lowering of the compute kernels: matrix products (`graph.matmul`, `graph.linear`,
//! `kernel.gemm` with its epilogues), softmax and log-softmax, normalizations
//! (`graph.layer_norm`, `graph.rms_norm`, `kernel.add_layer_norm`), reductions, and
//! attention (`attn.sdpa`, `kernel.attention`).
//!
//! Straightforward loop nests, `f32` throughout, correct before fast: a matrix product is
//! `m, n, k` loops with a scalar accumulator, attention keeps one row of scores in the
//! op's scratch buffer (see `plan`) and does a three-pass softmax per query row. Shapes
//! are checked here rather than trusted, so malformed IR becomes an error, not a crash.

use inkwell::values::{FloatValue, IntValue, PointerValue};
use inkwell::{FloatPredicate, IntPredicate};
use lowbit_dialects::ir::Elem;

use super::cg::Cg;
use super::lower::{broadcast_strides, row_major, Activation, Buf, OpCx};
use super::BackendResult;

/// One batched matrix product `out = act(a · b + bias)`; all strides in elements.
struct Gemm {
    /// Batch dims of the result, and the batch strides of `a`, `b` and `out` (0 where
    /// an operand broadcasts).
    batch: Vec<u64>,
    a_batch: Vec<i64>,
    b_batch: Vec<i64>,
    o_batch: Vec<i64>,
    m: u64,
    n: u64,
    k: u64,
    /// `a[m, k]` strides.
    a_mk: (i64, i64),
    /// `b[k, n]` strides (swapped for a transposed `b`).
    b_kn: (i64, i64),
    /// `out[m, n]` strides.
    o_mn: (i64, i64),
    act: Activation,
}

fn emit_gemm<'ctx>(
    cg: &Cg<'_, 'ctx>,
    g: &Gemm,
    a: PointerValue<'ctx>,
    b: PointerValue<'ctx>,
    bias: Option<PointerValue<'ctx>>,
    out: PointerValue<'ctx>,
) -> BackendResult<()> {
    cg.nest(&g.batch, &mut |bi| {
        let a0 = cg.offset(0, bi, &g.a_batch)?;
        let b0 = cg.offset(0, bi, &g.b_batch)?;
        let o0 = cg.offset(0, bi, &g.o_batch)?;
        cg.for_range(g.m, &mut |i| {
            let ai = cg.add(a0, cg.mul(i, g.a_mk.0)?)?;
            let oi = cg.add(o0, cg.mul(i, g.o_mn.0)?)?;
            cg.for_range(g.n, &mut |j| {
                let bj = cg.add(b0, cg.mul(j, g.b_kn.1)?)?;
                let acc = cg.var(cg.f32(0.0))?;
                cg.for_range(g.k, &mut |p| {
                    let x = cg.load(a, cg.add(ai, cg.mul(p, g.a_mk.1)?)?)?;
                    let y = cg.load(b, cg.add(bj, cg.mul(p, g.b_kn.0)?)?)?;
                    cg.update(acc, |s| cg.fadd(s, cg.fmul(x, y)?))
                })?;
                let mut v = cg.get(acc)?;
                if let Some(bias) = bias {
                    v = cg.fadd(v, cg.load(bias, j)?)?;
                }
                let v = g.act.apply(cg, v)?;
                cg.store(out, cg.add(oi, cg.mul(j, g.o_mn.1)?)?, v)
            })
        })
    })
}

/// Checks a bias operand: `[n]` (or any shape of `n` elements).
fn check_bias(cx: &OpCx<'_, '_, '_>, bias: Option<&Buf<'_>>, n: u64) -> BackendResult<()> {
    match bias {
        Some(b) if b.len() != n => Err(cx.err(format!("bias {} does not have {n} elements", b.ty))),
        _ => Ok(()),
    }
}

/// `graph.matmul`: numpy `matmul`, batch dims broadcast, rank-1 operands promoted.
pub(crate) fn matmul(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let (a, b, out) = (cx.required("lhs")?, cx.required("rhs")?, cx.out()?);
    let (sa, sb) = (&a.ty.shape, &b.ty.shape);
    if sa.is_empty() || sb.is_empty() {
        return Err(cx.err("operands must have rank 1 or more"));
    }
    // Promote rank-1 operands: `[k]` is `[1, k]` on the left, `[k, 1]` on the right.
    let pa: Vec<i64> = if sa.len() == 1 {
        vec![1, sa[0]]
    } else {
        sa.clone()
    };
    let pb: Vec<i64> = if sb.len() == 1 {
        vec![sb[0], 1]
    } else {
        sb.clone()
    };
    let (m, k) = (pa[pa.len() - 2], pa[pa.len() - 1]);
    let (k2, n) = (pb[pb.len() - 2], pb[pb.len() - 1]);
    if k != k2 {
        return Err(cx.err(format!("inner dimensions differ: {k} vs {k2}")));
    }
    let ba = &pa[..pa.len() - 2];
    let bb = &pb[..pb.len() - 2];
    let batch = lowbit_dialects::infer::broadcast(ba, bb).map_err(|e| cx.err(e))?;
    let full: Vec<i64> = batch.iter().copied().chain([m, n]).collect();
    if full.iter().product::<i64>() != out.len() as i64 {
        return Err(cx.err(format!(
            "result {} does not hold a {}x{} product per batch",
            out.ty, m, n
        )));
    }
    let a_batch = broadcast_strides(ba, &batch).map_err(|e| cx.err(e))?;
    let b_batch = broadcast_strides(bb, &batch).map_err(|e| cx.err(e))?;
    let a_batch = a_batch.iter().map(|s| s * m * k).collect();
    let b_batch = b_batch.iter().map(|s| s * k * n).collect();
    let o_batch = row_major(&full)[..batch.len()].to_vec();
    let g = Gemm {
        batch: batch.iter().map(|&d| d as u64).collect(),
        a_batch,
        b_batch,
        o_batch,
        m: m as u64,
        n: n as u64,
        k: k as u64,
        a_mk: (k, 1),
        b_kn: (n, 1),
        o_mn: (n, 1),
        act: Activation::Identity,
    };
    emit_gemm(cx.cg, &g, a.ptr, b.ptr, None, out.ptr)
}

/// A 2-D product over the rows of `a [..., K]` with `b` `[K, N]` (or `[N, K]`).
fn rows_gemm<'ctx>(
    cx: &OpCx<'_, '_, 'ctx>,
    a: &Buf<'ctx>,
    b: &Buf<'ctx>,
    bias: Option<&Buf<'ctx>>,
    transpose_b: bool,
    act: Activation,
) -> BackendResult<()> {
    let out = cx.out()?;
    let (sa, sb) = (&a.ty.shape, &b.ty.shape);
    if sa.is_empty() || sb.len() != 2 {
        return Err(cx.err(format!(
            "expects a [..., K] operand and a 2-D weight, got {} and {}",
            a.ty, b.ty
        )));
    }
    let k = sa[sa.len() - 1];
    let (kb, n) = if transpose_b {
        (sb[1], sb[0])
    } else {
        (sb[0], sb[1])
    };
    if k != kb {
        return Err(cx.err(format!("inner dimensions differ: {k} vs {kb}")));
    }
    let m = a.len() as i64 / k.max(1);
    if out.len() as i64 != m * n {
        return Err(cx.err(format!("result {} does not hold a {m}x{n} product", out.ty)));
    }
    check_bias(cx, bias, n as u64)?;
    let g = Gemm {
        batch: vec![],
        a_batch: vec![],
        b_batch: vec![],
        o_batch: vec![],
        m: m as u64,
        n: n as u64,
        k: k as u64,
        a_mk: (k, 1),
        b_kn: if transpose_b { (1, k) } else { (n, 1) },
        o_mn: (n, 1),
        act,
    };
    emit_gemm(cx.cg, &g, a.ptr, b.ptr, bias.map(|b| b.ptr), out.ptr)
}

/// `graph.linear`: `y = x · wᵀ + bias`.
pub(crate) fn linear(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let (x, w) = (cx.required("x")?, cx.required("w")?);
    rows_gemm(cx, x, w, cx.operand("bias"), true, Activation::Identity)
}

/// `kernel.gemm`: `out = epilogue(a · b + bias)`.
pub(crate) fn gemm(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let act = match cx.str("epilogue")?.as_str() {
        "none" => Activation::Identity,
        "relu" => Activation::Relu,
        "gelu" => Activation::GeluErf,
        "gelu_tanh" => Activation::GeluTanh,
        "silu" => Activation::Silu,
        other => return Err(cx.err(format!("unknown epilogue \"{other}\""))),
    };
    let (a, b) = (cx.required("a")?, cx.required("b")?);
    rows_gemm(cx, a, b, cx.operand("bias"), cx.bool("transpose_b")?, act)
}

/// The view `[outer, len, inner]` of a shape around `axis`.
fn around(shape: &[i64], axis: usize) -> (u64, u64, u64) {
    let p = |s: &[i64]| s.iter().product::<i64>().max(0) as u64;
    (
        p(&shape[..axis]),
        shape[axis].max(0) as u64,
        p(&shape[axis + 1..]),
    )
}

/// `graph.softmax` / `graph.log_softmax` along any axis, max subtracted first.
pub(crate) fn softmax(cx: &OpCx<'_, '_, '_>, log: bool) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let cg = cx.cg;
    let (x, out) = (cx.required("x")?, cx.out()?);
    if x.ty.shape != out.ty.shape {
        return Err(cx.err(format!("result {} differs from operand {}", out.ty, x.ty)));
    }
    let axis = cx.axis("axis", cx.int("axis")?, x.ty.rank())?;
    let (outer, len, inner) = around(&x.ty.shape, axis);
    let step = inner as i64;
    cg.nest(&[outer, inner], &mut |oi| {
        let base = cg.offset(0, oi, &[(len * inner) as i64, 1])?;
        let off = |j| cg.add(base, cg.mul(j, step)?);
        let mx = cg.var(cg.f32(f64::NEG_INFINITY))?;
        cg.for_range(len, &mut |j| {
            let v = cg.load(x.ptr, off(j)?)?;
            cg.update(mx, |m| cg.fmax(m, v))
        })?;
        let mx = cg.get(mx)?;
        let sum = cg.var(cg.f32(0.0))?;
        cg.for_range(len, &mut |j| {
            let e = cg.exp(cg.fsub(cg.load(x.ptr, off(j)?)?, mx)?)?;
            if !log {
                cg.store(out.ptr, off(j)?, e)?;
            }
            cg.update(sum, |s| cg.fadd(s, e))
        })?;
        let sum = cg.get(sum)?;
        let lse = if log {
            Some(cg.fadd(mx, cg.call("llvm.log.f32", &[sum])?)?)
        } else {
            None
        };
        cg.for_range(len, &mut |j| {
            let o = off(j)?;
            let v = match lse {
                Some(lse) => cg.fsub(cg.load(x.ptr, o)?, lse)?,
                None => cg.fdiv(cg.load(out.ptr, o)?, sum)?,
            };
            cg.store(out.ptr, o, v)
        })
    })
}

/// Normalizes `rows` rows of `n` contiguous elements of `src` into `out`:
/// `(x - mean) · (1 / sqrt(var + eps)) · gamma + beta`, or with `rms`,
/// `x · (1 / sqrt(mean(x²) + eps)) · gamma`.
#[allow(clippy::too_many_arguments)]
fn normalize_rows<'ctx>(
    cg: &Cg<'_, 'ctx>,
    src: PointerValue<'ctx>,
    out: PointerValue<'ctx>,
    rows: u64,
    n: u64,
    eps: f64,
    rms: bool,
    gamma: Option<PointerValue<'ctx>>,
    beta: Option<PointerValue<'ctx>>,
) -> BackendResult<()> {
    let count = cg.f32(n as f64);
    cg.for_range(rows, &mut |r| {
        let base = cg.mul(r, n as i64)?;
        let at = |j: IntValue<'ctx>| cg.add(base, j);
        let mean = if rms {
            cg.f32(0.0)
        } else {
            let s = cg.var(cg.f32(0.0))?;
            cg.for_range(n, &mut |j| {
                let v = cg.load(src, at(j)?)?;
                cg.update(s, |s| cg.fadd(s, v))
            })?;
            cg.fdiv(cg.get(s)?, count)?
        };
        let ss = cg.var(cg.f32(0.0))?;
        cg.for_range(n, &mut |j| {
            let d = cg.fsub(cg.load(src, at(j)?)?, mean)?;
            cg.update(ss, |s| cg.fadd(s, cg.fmul(d, d)?))
        })?;
        let var = cg.fdiv(cg.get(ss)?, count)?;
        let inv = cg.fdiv(cg.f32(1.0), cg.sqrt(cg.fadd(var, cg.f32(eps))?)?)?;
        cg.for_range(n, &mut |j| {
            let mut y = cg.fmul(cg.fsub(cg.load(src, at(j)?)?, mean)?, inv)?;
            if let Some(g) = gamma {
                y = cg.fmul(y, cg.load(g, j)?)?;
            }
            if let Some(b) = beta {
                y = cg.fadd(y, cg.load(b, j)?)?;
            }
            cg.store(out, at(j)?, y)
        })
    })
}

/// The rows and row length of normalizing `x` over the dims from `axis` on, with
/// `gamma`/`beta` checked to have one element per row element.
fn norm_shape(
    cx: &OpCx<'_, '_, '_>,
    axis: usize,
    params: &[Option<&Buf<'_>>],
) -> BackendResult<(u64, u64)> {
    let x = cx.required("x")?;
    if cx.out()?.ty.shape != x.ty.shape {
        return Err(cx.err(format!(
            "result {} differs from operand {}",
            cx.out()?.ty,
            x.ty
        )));
    }
    let n = x.ty.shape[axis..].iter().product::<i64>().max(0) as u64;
    for p in params.iter().flatten() {
        if p.len() != n {
            return Err(cx.err(format!(
                "{} does not match the normalized shape {:?}",
                p.ty,
                &x.ty.shape[axis..]
            )));
        }
    }
    Ok((x.len() / n.max(1), n))
}

/// `graph.layer_norm` over the dims from `axis` on.
pub(crate) fn layer_norm(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let x = cx.required("x")?;
    let axis = cx.axis("axis", cx.int("axis")?, x.ty.rank())?;
    let (gamma, beta) = (cx.operand("gamma"), cx.operand("beta"));
    let (rows, n) = norm_shape(cx, axis, &[gamma, beta])?;
    let eps = cx.float("epsilon")?;
    normalize_rows(
        cx.cg,
        x.ptr,
        cx.out()?.ptr,
        rows,
        n,
        eps,
        false,
        gamma.map(|g| g.ptr),
        beta.map(|b| b.ptr),
    )
}

/// `graph.rms_norm` over the dims from `axis` on.
pub(crate) fn rms_norm(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let x = cx.required("x")?;
    let axis = cx.axis("axis", cx.int("axis")?, x.ty.rank())?;
    let gamma = cx.operand("gamma");
    let (rows, n) = norm_shape(cx, axis, &[gamma])?;
    let eps = cx.float("epsilon")?;
    normalize_rows(
        cx.cg,
        x.ptr,
        cx.out()?.ptr,
        rows,
        n,
        eps,
        true,
        gamma.map(|g| g.ptr),
        None,
    )
}

/// `kernel.add_layer_norm`: `layer_norm(x + residual)` over the last dim. The sum is
/// written to the result first and normalized in place.
pub(crate) fn add_layer_norm(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let cg = cx.cg;
    let (x, res, out) = (cx.required("x")?, cx.required("residual")?, cx.out()?);
    if res.ty.shape != x.ty.shape || x.ty.rank() == 0 {
        return Err(cx.err(format!("residual {} differs from operand {}", res.ty, x.ty)));
    }
    let (gamma, beta) = (cx.required("gamma")?, cx.required("beta")?);
    let (rows, n) = norm_shape(cx, x.ty.rank() - 1, &[Some(gamma), Some(beta)])?;
    cg.for_range(x.len(), &mut |i| {
        let s = cg.fadd(cg.load(x.ptr, i)?, cg.load(res.ptr, i)?)?;
        cg.store(out.ptr, i, s)
    })?;
    let eps = cx.float("epsilon")?;
    normalize_rows(
        cg,
        out.ptr,
        out.ptr,
        rows,
        n,
        eps,
        false,
        Some(gamma.ptr),
        Some(beta.ptr),
    )
}

/// `graph.reduce`: sum, mean or max over `axes`.
pub(crate) fn reduce(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let cg = cx.cg;
    let (x, out) = (cx.required("x")?, cx.out()?);
    let kind = cx.str("kind")?;
    let init = match kind.as_str() {
        "sum" | "mean" => 0.0,
        "max" => f64::NEG_INFINITY,
        other => return Err(cx.err(format!("unknown reduction kind \"{other}\""))),
    };
    let mut reduced = vec![false; x.ty.rank()];
    for a in cx.ints("axes")? {
        reduced[cx.axis("axes", a, x.ty.rank())?] = true;
    }
    let kept: Vec<i64> = (0..x.ty.rank())
        .map(|i| if reduced[i] { 1 } else { x.ty.shape[i] })
        .collect();
    if kept.iter().product::<i64>() != out.len() as i64 {
        return Err(cx.err(format!(
            "result {} does not match reducing {} over {reduced:?}",
            out.ty, x.ty
        )));
    }
    let mut ostrides = row_major(&kept);
    for (s, &r) in ostrides.iter_mut().zip(&reduced) {
        if r {
            *s = 0;
        }
    }
    cg.for_range(out.len(), &mut |i| cg.store(out.ptr, i, cg.f32(init)))?;
    let xstrides = row_major(&x.ty.shape);
    cg.nest(&x.dims(), &mut |idx| {
        let o = cg.offset(0, idx, &ostrides)?;
        let v = cg.load(x.ptr, cg.offset(0, idx, &xstrides)?)?;
        let acc = cg.load(out.ptr, o)?;
        // `llvm.maximum` propagates NaN, as the interpreter's max does.
        let r = if kind == "max" {
            cg.call("llvm.maximum.f32", &[acc, v])?
        } else {
            cg.fadd(acc, v)?
        };
        cg.store(out.ptr, o, r)
    })?;
    if kind == "mean" {
        let count = cg.f32((x.len() / out.len().max(1)) as f64);
        cg.for_range(out.len(), &mut |i| {
            cg.store(out.ptr, i, cg.fdiv(cg.load(out.ptr, i)?, count)?)
        })?;
    }
    Ok(())
}

/// `attn.sdpa` / `kernel.attention`: `softmax(scale · q kᵀ + mask) v` with GQA, an
/// optional float (additive) or `i1` (keep) mask, and causal masking.
pub(crate) fn attention(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&["mask"])?;
    let cg = cx.cg;
    let (q, k, v, out) = (
        cx.required("q")?,
        cx.required("k")?,
        cx.required("v")?,
        cx.out()?,
    );
    let mask = cx.operand("mask");
    let (sq, sk, sv) = (&q.ty.shape, &k.ty.shape, &v.ty.shape);
    if sq.len() != 4 || sk.len() != 4 || sv.len() != 4 {
        return Err(cx.err(format!(
            "expects rank-4 q, k, v, got {}, {}, {}",
            q.ty, k.ty, v.ty
        )));
    }
    let [b, h, n, d] = [sq[0], sq[1], sq[2], sq[3]];
    let [hk, m, dv] = [sk[1], sk[2], sv[3]];
    if sk[0] != b || sv[0] != b || sv[1] != hk || sk[3] != d || sv[2] != m || hk == 0 || h % hk != 0
    {
        return Err(cx.err(format!(
            "q {}, k {}, v {} do not form an attention",
            q.ty, k.ty, v.ty
        )));
    }
    if out.ty.shape != [b, h, n, dv] {
        return Err(cx.err(format!("result {} is not [{b}, {h}, {n}, {dv}]", out.ty)));
    }
    let mstrides = match mask {
        Some(mk) => Some(
            broadcast_strides(&mk.ty.shape, &[b, h, n, m])
                .map_err(|e| cx.err(format!("mask: {e}")))?,
        ),
        None => None,
    };
    let scores = cx.scratch.ok_or_else(|| cx.err("has no scratch buffer"))?;
    let scale = cg.f32(cx.float("scale")?);
    let causal = cx.bool("causal")?;
    let g = h / hk;
    let neg_inf = cg.f32(f64::NEG_INFINITY);
    cg.nest(&[b as u64, hk as u64, g as u64, n as u64], &mut |ix| {
        let (bi, kh, gi, i) = (ix[0], ix[1], ix[2], ix[3]);
        let hi = cg.add(cg.mul(kh, g)?, gi)?;
        let q0 = cg.offset(0, &[bi, hi, i], &[h * n * d, n * d, d])?;
        let k0 = cg.offset(0, &[bi, kh], &[hk * m * d, m * d])?;
        let v0 = cg.offset(0, &[bi, kh], &[hk * m * dv, m * dv])?;
        let o0 = cg.offset(0, &[bi, hi, i], &[h * n * dv, n * dv, dv])?;
        let mx = cg.var(neg_inf)?;
        cg.for_range(m as u64, &mut |j| {
            let dot = cg.var(cg.f32(0.0))?;
            let kj = cg.add(k0, cg.mul(j, d)?)?;
            cg.for_range(d as u64, &mut |c| {
                let x = cg.load(q.ptr, cg.add(q0, c)?)?;
                let y = cg.load(k.ptr, cg.add(kj, c)?)?;
                cg.update(dot, |s| cg.fadd(s, cg.fmul(x, y)?))
            })?;
            let mut s = cg.fmul(cg.get(dot)?, scale)?;
            if let (Some(mk), Some(ms)) = (mask, &mstrides) {
                let off = cg.offset(0, &[bi, hi, i, j], ms)?;
                s = if mk.ty.elem == Elem::I1 {
                    cg.select(cg.load_bool(mk.ptr, off)?, s, neg_inf)?
                } else {
                    cg.fadd(s, cg.load(mk.ptr, off)?)?
                };
            }
            if causal {
                // Key j is hidden from query i when j > i + M - N.
                let limit = cg.add(i, cg.i64(m - n))?;
                let hidden = cg.b.build_int_compare(IntPredicate::SGT, j, limit, "")?;
                s = cg.select(hidden, neg_inf, s)?;
            }
            cg.store(scores, j, s)?;
            cg.update(mx, |x| cg.fmax(x, s))
        })?;
        softmax_row(cg, scores, m as u64, cg.get(mx)?, |sum| {
            cg.for_range(dv as u64, &mut |c| {
                let acc = cg.var(cg.f32(0.0))?;
                cg.for_range(m as u64, &mut |j| {
                    let p = cg.load(scores, j)?;
                    let y = cg.load(v.ptr, cg.add(cg.add(v0, cg.mul(j, dv)?)?, c)?)?;
                    cg.update(acc, |s| cg.fadd(s, cg.fmul(p, y)?))
                })?;
                // A row with every key hidden has sum 0 and outputs 0.
                let zero = cg.f32(0.0);
                let o = cg.select_cmp(
                    FloatPredicate::OEQ,
                    sum,
                    zero,
                    zero,
                    cg.fdiv(cg.get(acc)?, sum)?,
                )?;
                cg.store(out.ptr, cg.add(o0, c)?, o)
            })
        })
    })
}

/// Turns the `len` scores at `row` into `e^(s - max)` in place and calls `then` with
/// their sum. A row whose every score is `-inf` (every key hidden) has max `-inf`: it is
/// shifted by 0 instead, so its weights are all 0 and the sum is 0 (the caller outputs 0
/// for it, as the interpreter does).
fn softmax_row<'ctx>(
    cg: &Cg<'_, 'ctx>,
    row: PointerValue<'ctx>,
    len: u64,
    max: FloatValue<'ctx>,
    then: impl FnOnce(FloatValue<'ctx>) -> BackendResult<()>,
) -> BackendResult<()> {
    let neg_inf = cg.f32(f64::NEG_INFINITY);
    let shift = cg.select_cmp(FloatPredicate::OEQ, max, neg_inf, cg.f32(0.0), max)?;
    let sum = cg.var(cg.f32(0.0))?;
    cg.for_range(len, &mut |j| {
        let e = cg.exp(cg.fsub(cg.load(row, j)?, shift)?)?;
        cg.store(row, j, e)?;
        cg.update(sum, |s| cg.fadd(s, e))
    })?;
    then(cg.get(sum)?)
}
