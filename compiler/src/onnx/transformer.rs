//! Default-domain transformer ops beyond the basic set: `LayerNormalization` with its
//! optional `Mean`/`InvStdDev` outputs, `RMSNormalization`, `RotaryEmbedding` and
//! `Attention` (opset 23), `Trilu` and `CastLike`, each located at the node name.
//!
//! Semantics follow the `onnx` package's reference implementations:
//!
//! - `Mean`/`InvStdDev` are `reduce mean` over the normalized dims (kept as size 1) and
//!   `1 / sqrt(mean((x - mean)²) + epsilon)`, in `float` when `stash_type` is 1;
//! - `Attention` maps to one `attn.sdpa` (GQA when `kv_num_heads` divides `q_num_heads`)
//!   with past keys/values concatenated in front. Its bias is one additive mask in the
//!   query's type: a boolean `attn_mask` becomes `0`/`-inf`, `is_causal` is the op's own
//!   `causal` flag when the key block is aligned at the past length (`j <= i + past`, the
//!   reference's offset) and an explicit `-inf` triangle otherwise; `nonpad_kv_seqlen`
//!   hides keys `j >= len[b]` (and, with `is_causal`, keys `j > i + len[b] - len_q`)
//!   exactly, by `relu` arithmetic on the integer lengths. Rows with
//!   every key hidden give 0, as the reference does;
//! - `Trilu` is a `select` against a triangle (exact for every value, `inf` included),
//!   constant for a constant `k`, computed from a run-time `k` like the lengths above.
//!
//! Sliding windows (opset 25) are masks at the same offsets as the causal frontier; a short `attn_mask` is
//! padded with hidden keys. A `softcap` (`softcap · tanh(scores / softcap)` before the
//! bias) or a named `qk_matmul_output` output makes the attention `graph` ops instead of
//! `attn.sdpa` ([`decomposed`], modes 0–3 as the reference computes them).

use lowbit_dialects::graph;
use lowbit_dialects::interp::Tensor;
use lowbit_dialects::ir::{Attr, Attrs, Elem, TensorType};

use super::import::{Importer, Val};
use super::msft::{
    add, cast, concat, from_heads, multi_head, norm, outputs, past_len, refuse, rotary, to_heads,
    transpose, ty, Heads,
};
use super::ops::{g, konst, norm_axis, scalar, N};
use super::OnnxResult;

/// The most elements a mask built at import may have.
const MAX_MASK: i64 = 1 << 26;

/// `LayerNormalization` with the optional `Mean` and `InvStdDev` outputs.
pub(super) fn layer_norm(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    use graph::Op as G;
    let x = n.req(im, 0)?;
    let (scale, bias) = (n.input(im, 1)?, n.input(im, 2)?);
    let axis = n.int("axis", -1);
    let eps = f64::from(n.float("epsilon", 1e-5));
    let y = norm(im, n, G::LayerNorm, x.clone(), (scale, bias), axis, eps)?;
    let wanted = |i: usize| n.node.output.get(i).is_some_and(|s| !s.is_empty());
    if !wanted(1) && !wanted(2) {
        return Ok(vec![y]);
    }
    let xt = ty(im, &x);
    let ax = norm_axis(axis, xt.rank()).ok_or_else(|| n.err("axis is out of range"))?;
    let stash = if n.int("stash_type", 1) == 1 {
        Elem::F32
    } else {
        xt.elem
    };
    let xs = cast(im, n, x, stash)?;
    let mean_attrs = Attrs::new()
        .with("kind", Attr::Str("mean".into()))
        .with("axes", Attr::Ints((ax as i64..xt.rank() as i64).collect()))
        .with("keepdims", Attr::Bool(true));
    let mean = n.emit1(
        im,
        g(G::Reduce),
        std::slice::from_ref(&xs),
        mean_attrs.clone(),
    )?;
    let d = n.emit1(im, g(G::Sub), &[xs, mean.clone()], Attrs::new())?;
    let sq = n.emit1(im, g(G::Mul), &[d.clone(), d], Attrs::new())?;
    let var = n.emit1(im, g(G::Reduce), &[sq], mean_attrs)?;
    let var = add(im, n, var, scalar(eps, stash))?;
    let inv = n.emit1(im, g(G::Rsqrt), &[var], Attrs::new())?;
    outputs(
        im,
        n,
        vec![Some(y), Some(mean), Some(inv)],
        &["Y", "Mean", "InvStdDev"],
    )
}

/// `RMSNormalization` (opset 23).
pub(super) fn rms_norm(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let (x, scale) = (n.req(im, 0)?, n.req(im, 1)?);
    let eps = f64::from(n.float("epsilon", 1e-5));
    let axis = n.int("axis", -1);
    Ok(vec![norm(
        im,
        n,
        graph::Op::RmsNorm,
        x,
        (Some(scale), None),
        axis,
        eps,
    )?])
}

/// `RotaryEmbedding` (opset 23): inputs `X, cos_cache, sin_cache, position_ids?`.
pub(super) fn rotary_embedding(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let (x, cos, sin) = (n.req(im, 0)?, n.req(im, 1)?, n.req(im, 2)?);
    let pos = n.input(im, 3)?;
    Ok(vec![rotary(im, n, x, pos, cos, sin)?])
}

/// `Trilu`: `select(keep, x, 0)`. `keep` is a constant triangle for a constant `k`; for a
/// run-time `k` it is computed exactly from the integer `k` with [`hidden_from`].
pub(super) fn trilu(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let x = n.req(im, 0)?;
    let upper = n.int("upper", 1) != 0;
    let xt = ty(im, &x);
    let r = xt.rank();
    if r < 2 {
        return Err(n.err(format!("input must have rank 2 or more, not {r}")));
    }
    let (rows, cols) = (xt.shape[r - 2], xt.shape[r - 1]);
    if rows.saturating_mul(cols) > MAX_MASK {
        return Err(n.err(format!("a {rows}x{cols} triangle is too large")));
    }
    // Upper keeps j - i >= k: hidden when (i - j) + k >= 1; lower keeps j - i <= k: hidden
    // when (j - i) - k >= 1.
    let sign = if upper { 1.0 } else { -1.0 };
    let keep = match n.input(im, 1)? {
        None | Some(Val::Const(..)) => {
            let k = n
                .const_ints(im, 1)?
                .and_then(|v| v.first().copied())
                .unwrap_or(0);
            let mut keep = Vec::with_capacity((rows * cols).max(0) as usize);
            for i in 0..rows {
                for j in 0..cols {
                    let d = j - i;
                    keep.push(f64::from(u8::from(if upper { d >= k } else { d <= k })));
                }
            }
            konst(Tensor::new(
                TensorType::new(vec![rows, cols], Elem::I1),
                keep,
            ))
        }
        Some(k) => {
            let mut c = Vec::with_capacity((rows * cols).max(0) as usize);
            for i in 0..rows {
                for j in 0..cols {
                    c.push(sign * (i - j) as f64);
                }
            }
            let c = Tensor::new(TensorType::new(vec![rows, cols], Elem::F32), c);
            let k = cast(im, n, k, Elem::F32)?;
            let k = n.reshape(im, &k, vec![])?;
            // hidden iff c + sign·k >= 1, i.e. c - (-sign·k) >= 1.
            let neg = n.emit1(
                im,
                g(graph::Op::Mul),
                &[k, scalar(-sign, Elem::F32)],
                Attrs::new(),
            )?;
            let hidden = hidden_from(im, n, c, neg)?;
            let keep = n.emit1(
                im,
                g(graph::Op::Sub),
                &[scalar(1.0, Elem::F32), hidden],
                Attrs::new(),
            )?;
            cast(im, n, keep, Elem::I1)?
        }
    };
    let zero = scalar(0.0, xt.elem);
    Ok(vec![n.emit1(
        im,
        g(graph::Op::Select),
        &[keep, x, zero],
        Attrs::new(),
    )?])
}

/// `min(relu(c - t), 1)` (`f32`): 1 where the integer-valued `c - t >= 1`, else 0 (exact).
/// `c` is a constant, `t` a run-time value that broadcasts against it.
fn hidden_from(im: &mut Importer, n: &N<'_>, c: Tensor, t: Val) -> OnnxResult<Val> {
    use graph::Op as G;
    let d = n.emit1(im, g(G::Sub), &[konst(c), t], Attrs::new())?;
    let r = n.emit1(im, g(G::Relu), &[d], Attrs::new())?;
    let one = scalar(1.0, Elem::F32);
    let u = n.emit1(im, g(G::Sub), &[one.clone(), r], Attrs::new())?;
    let u = n.emit1(im, g(G::Relu), &[u], Attrs::new())?;
    n.emit1(im, g(G::Sub), &[one, u], Attrs::new())
}

/// `CastLike`: a `Cast` to the element type of input 1.
pub(super) fn cast_like(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let (x, like) = (n.req(im, 0)?, n.req(im, 1)?);
    let elem = ty(im, &like).elem;
    let attrs = saturate_attr(n, elem);
    if attrs.get("saturate").is_none() || ty(im, &x).elem == elem {
        return Ok(vec![cast(im, n, x, elem)?]);
    }
    let t = ty(im, &x).with_elem(elem);
    n.emit(im, g(graph::Op::Cast), &[x], attrs, Some(vec![t]))
}

/// `graph.cast`'s attributes for ONNX `Cast`/`CastLike` to `elem`: `saturate = false` when
/// the node's `saturate` is 0 and `elem` is a float8 type (the only ones it concerns).
pub(super) fn saturate_attr(n: &N<'_>, elem: Elem) -> Attrs {
    let f8 = matches!(elem, Elem::F8E4M3FN | Elem::F8E5M2);
    if f8 && n.int("saturate", 1) == 0 {
        Attrs::new().with("saturate", Attr::Bool(false))
    } else {
        Attrs::new()
    }
}

/// A constant additive mask `[rows, cols]`: 0 where `visible(i, j)`, `-inf` elsewhere.
fn triangle(rows: i64, cols: i64, elem: Elem, visible: impl Fn(i64, i64) -> bool) -> Val {
    let mut data = Vec::with_capacity((rows * cols).max(0) as usize);
    for i in 0..rows {
        for j in 0..cols {
            data.push(if visible(i, j) {
                0.0
            } else {
                f64::NEG_INFINITY
            });
        }
    }
    konst(Tensor::new(TensorType::new(vec![rows, cols], elem), data))
}

/// `-inf` where `c - t >= 1` (integer-valued), else 0, in `elem` ([`hidden_from`]).
fn hidden_additive(im: &mut Importer, n: &N<'_>, c: Tensor, t: Val, elem: Elem) -> OnnxResult<Val> {
    let hidden = hidden_from(im, n, c, t)?;
    let keep = n.emit1(
        im,
        g(graph::Op::Sub),
        &[scalar(1.0, Elem::F32), hidden],
        Attrs::new(),
    )?;
    let keep = cast(im, n, keep, Elem::I1)?;
    additive(im, n, keep, elem)
}

/// `keep ? 0 : -inf` in `elem`, from an `i1` keep-mask.
fn additive(im: &mut Importer, n: &N<'_>, keep: Val, elem: Elem) -> OnnxResult<Val> {
    n.emit1(
        im,
        g(graph::Op::Select),
        &[keep, scalar(0.0, elem), scalar(f64::NEG_INFINITY, elem)],
        Attrs::new(),
    )
}

/// `Attention` (opsets 23 and 24).
pub(super) fn attention(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let softcap = n.attr("softcap").map_or(0.0, |a| f64::from(a.f));
    let qk_mode = n.int("qk_matmul_output_mode", 0);
    let want_qk = n.node.output.get(3).is_some_and(|o| !o.is_empty());
    if want_qk && !(0..=3).contains(&qk_mode) {
        return Err(n.err(format!(
            "qk_matmul_output_mode {qk_mode} is not one of 0, 1, 2, 3"
        )));
    }
    // A softcap or the scores output need the scores: graph ops instead of `attn.sdpa`.
    let decompose = softcap > 0.0 || want_qk;
    let (q, k, v) = (n.req(im, 0)?, n.req(im, 1)?, n.req(im, 2)?);
    let (qt, kt) = (ty(im, &q), ty(im, &k));
    let elem = qt.elem;
    let (heads, kv_heads, len_q, len_k) = match (qt.rank(), kt.rank()) {
        (3, 3) => {
            let (h, kvh) = (n.int("q_num_heads", 0), n.int("kv_num_heads", 0));
            if h <= 0 || kvh <= 0 {
                return Err(n.err("3-D inputs need q_num_heads and kv_num_heads"));
            }
            (h, kvh, qt.shape[1], kt.shape[1])
        }
        (4, 4) => (qt.shape[1], kt.shape[1], qt.shape[2], kt.shape[2]),
        _ => return Err(n.err("Q, K and V must all have rank 3 or all rank 4")),
    };
    let past = match (n.input(im, 4)?, n.input(im, 5)?) {
        (Some(pk), Some(pv)) => Some((pk, pv)),
        (None, None) => None,
        _ => return Err(n.err("needs both past_key and past_value, or neither")),
    };
    let p_len = past_len(im, n, &past)?;
    let total = p_len + len_k;
    if len_q.saturating_mul(total) > MAX_MASK {
        return Err(n.err(format!("a {len_q}x{total} attention mask is too large")));
    }
    let mut masks: Vec<Val> = Vec::new();
    if let Some(m) = n.input(im, 3)? {
        let mt = ty(im, &m);
        let last = mt.shape.last().copied().unwrap_or(0);
        let m = if mt.rank() >= 1 && last < total {
            // The reference pads a short mask with hidden keys.
            let mut pad = mt.shape.clone();
            *pad.last_mut().expect("rank >= 1") = total - last;
            let fill = if mt.elem == Elem::I1 {
                0.0
            } else {
                f64::NEG_INFINITY
            };
            let count = pad.iter().product::<i64>().max(0) as usize;
            let pad = konst(Tensor::new(
                TensorType::new(pad, mt.elem),
                vec![fill; count],
            ));
            concat(im, n, &[m, pad], -1)?
        } else {
            m
        };
        masks.push(if mt.elem == Elem::I1 {
            additive(im, n, m, elem)?
        } else {
            m
        });
    }
    let causal = n.int("is_causal", 0) != 0;
    let nonpad = n.input(im, 6)?;
    // The op's causal flag hides j > i + total - len_q; the reference's is j > i + past.
    let causal_flag = !decompose && causal && nonpad.is_none() && total - len_q == p_len;
    let (left, right) = (
        n.int("left_window_size", -1),
        n.int("right_window_size", -1),
    );
    if let Some(lens) = nonpad {
        let lens = cast(im, n, lens, Elem::F32)?;
        let b = ty(im, &lens).num_elements() as i64;
        let lens = n.reshape(im, &lens, vec![b, 1, 1, 1])?;
        // Keys j >= len[b] are hidden: j + 1 - len >= 1.
        let c = Tensor::new(
            TensorType::new(vec![1, 1, 1, total], Elem::F32),
            (0..total).map(|j| (j + 1) as f64).collect(),
        );
        masks.push(hidden_additive(im, n, c, lens.clone(), elem)?);
        // The causal and window frontiers sit at offset len[b] - len_q.
        let mut frontier = |im: &mut Importer, f: &dyn Fn(i64, i64) -> f64| -> OnnxResult<()> {
            let mut c = Vec::new();
            for i in 0..len_q {
                for j in 0..total {
                    c.push(f(i, j));
                }
            }
            let c = Tensor::new(TensorType::new(vec![1, 1, len_q, total], Elem::F32), c);
            masks.push(hidden_additive(im, n, c, lens.clone(), elem)?);
            Ok(())
        };
        // Hidden when j > i + len - len_q, i.e. j - i + len_q - len >= 1.
        if causal {
            frontier(im, &|i, j| (j - i + len_q) as f64)?;
        }
        // With diff = i + len - len_q - j: the left window hides diff > left, i.e.
        // (i - j - len_q - left) - (-len) >= 1; the right one hides -diff > right, i.e.
        // (j - i + len_q - right) - len >= 1.
        if right >= 0 {
            frontier(im, &|i, j| (j - i + len_q - right) as f64)?;
        }
        if left >= 0 {
            let neg = n.emit1(
                im,
                g(graph::Op::Neg),
                std::slice::from_ref(&lens),
                Attrs::new(),
            )?;
            let mut c = Vec::new();
            for i in 0..len_q {
                for j in 0..total {
                    c.push((i - j - len_q - left) as f64);
                }
            }
            let c = Tensor::new(TensorType::new(vec![1, 1, len_q, total], Elem::F32), c);
            masks.push(hidden_additive(im, n, c, neg, elem)?);
        }
    } else {
        if causal && !causal_flag {
            masks.push(triangle(len_q, total, elem, |i, j| j <= i + p_len));
        }
        if left >= 0 || right >= 0 {
            // A query at absolute position i + past sees keys within the window.
            masks.push(triangle(len_q, total, elem, |i, j| {
                let d = i + p_len - j;
                (left < 0 || d <= left) && (right < 0 || -d <= right)
            }));
        }
    }
    let mut mask = None;
    for m in masks {
        mask = Some(match mask {
            None => m,
            Some(acc) => add(im, n, acc, m)?,
        });
    }
    if decompose {
        let (y, pk, pv, qk) = decomposed(
            im,
            n,
            (q, k, v),
            (heads, kv_heads),
            past,
            n.attr("scale").map(|a| f64::from(a.f)),
            mask,
            softcap,
            qk_mode,
        )?;
        return outputs(
            im,
            n,
            vec![Some(y), Some(pk), Some(pv), Some(qk)],
            &["Y", "present_key", "present_value", "qk_matmul_output"],
        );
    }
    let (y, pk, pv) = multi_head(
        im,
        n,
        Heads {
            q,
            k,
            v,
            heads,
            kv_heads,
            past,
            scale: n.attr("scale").map(|a| f64::from(a.f)),
            causal: causal_flag,
            mask,
        },
    )?;
    outputs(
        im,
        n,
        vec![Some(y), Some(pk), Some(pv), None],
        &["Y", "present_key", "present_value", "qk_matmul_output"],
    )
}

/// `Attention` as `graph` ops, for a `softcap` or the `qk_matmul_output` output (the
/// reference's order): `scores = (Q · Kᵀ) · scale`, GQA heads sharing their KV head
/// (`H / Hkv` query heads stacked per KV head); `softcap · tanh(scores / softcap)`; plus the
/// additive `bias`; softmax over the keys; rows whose bias is all `-inf` (no visible key)
/// give zero probabilities, decided on the bias as the reference does. Returns `Y`, the
/// present keys and values, and the scores output of `mode`: 0 and 1 the (soft-capped)
/// scores (the reference gives mode 0 the soft-capped scores too), 2 with the bias, 3 the
/// probabilities.
#[allow(clippy::too_many_arguments)]
fn decomposed(
    im: &mut Importer,
    n: &N<'_>,
    (q, k, v): (Val, Val, Val),
    (heads, kv_heads): (i64, i64),
    past: Option<(Val, Val)>,
    scale: Option<f64>,
    bias: Option<Val>,
    softcap: f64,
    mode: i64,
) -> OnnxResult<(Val, Val, Val, Val)> {
    let three_d = ty(im, &q).rank() == 3;
    let (q, mut k, mut v) = if three_d {
        (
            to_heads(im, n, q, heads)?,
            to_heads(im, n, k, kv_heads)?,
            to_heads(im, n, v, kv_heads)?,
        )
    } else {
        (q, k, v)
    };
    if let Some((pk, pv)) = past {
        k = concat(im, n, &[pk, k], 2)?;
        v = concat(im, n, &[pv, v], 2)?;
    }
    let (qt, kt, vt) = (ty(im, &q), ty(im, &k), ty(im, &v));
    let (b, s, d) = (qt.shape[0], qt.shape[2], qt.shape[3]);
    let (t, dv) = (kt.shape[2], vt.shape[3]);
    if kv_heads <= 0 || heads % kv_heads != 0 || kt.shape[1] != kv_heads {
        return Err(n.err(format!(
            "{heads} query heads do not group over {} key/value heads",
            kt.shape[1]
        )));
    }
    let e = qt.elem;
    let groups = heads / kv_heads;
    let scale = scale.unwrap_or(1.0 / (d as f64).sqrt());
    let qg = n.reshape(im, &q, vec![b, kv_heads, groups * s, d])?;
    let k_t = transpose(im, n, k.clone(), &[0, 1, 3, 2])?;
    let scores = n.emit1(im, g(graph::Op::MatMul), &[qg, k_t], Attrs::new())?;
    let scores = n.reshape(im, &scores, vec![b, heads, s, t])?;
    let mut scores = n.emit1(
        im,
        g(graph::Op::Mul),
        &[scores, scalar(scale, e)],
        Attrs::new(),
    )?;
    if softcap > 0.0 {
        let x = n.emit1(
            im,
            g(graph::Op::Div),
            &[scores, scalar(softcap, e)],
            Attrs::new(),
        )?;
        let x = n.emit1(im, g(graph::Op::Tanh), &[x], Attrs::new())?;
        scores = n.emit1(
            im,
            g(graph::Op::Mul),
            &[x, scalar(softcap, e)],
            Attrs::new(),
        )?;
    }
    let biased = match &bias {
        Some(m) => add(im, n, scores.clone(), m.clone())?,
        None => scores.clone(),
    };
    let softmax = Attrs::new().with("axis", Attr::Int(-1));
    let mut probs = n.emit1(
        im,
        g(graph::Op::Softmax),
        std::slice::from_ref(&biased),
        softmax,
    )?;
    if let Some(m) = bias {
        // A row is visible iff max(bias) > -inf: 1 / (relu(-max) + 1) is 0 only for -inf
        // (a finite max, at most the type's largest value, gives a non-zero quotient).
        let reduce = Attrs::new()
            .with("kind", Attr::Str("max".into()))
            .with("axes", Attr::Ints(vec![-1]))
            .with("keepdims", Attr::Bool(true));
        let mx = n.emit1(im, g(graph::Op::Reduce), &[m], reduce)?;
        let neg = n.emit1(im, g(graph::Op::Neg), &[mx], Attrs::new())?;
        let r = n.emit1(im, g(graph::Op::Relu), &[neg], Attrs::new())?;
        let r = add(im, n, r, scalar(1.0, e))?;
        let inv = n.emit1(im, g(graph::Op::Div), &[scalar(1.0, e), r], Attrs::new())?;
        let visible = cast(im, n, inv, Elem::I1)?;
        probs = n.emit1(
            im,
            g(graph::Op::Select),
            &[visible, probs, scalar(0.0, e)],
            Attrs::new(),
        )?;
    }
    let qk = match mode {
        2 => biased,
        3 => probs.clone(),
        _ => scores,
    };
    let pg = n.reshape(im, &probs, vec![b, kv_heads, groups * s, t])?;
    let o = n.emit1(im, g(graph::Op::MatMul), &[pg, v.clone()], Attrs::new())?;
    let o = n.reshape(im, &o, vec![b, heads, s, dv])?;
    let y = if three_d { from_heads(im, n, o)? } else { o };
    Ok((y, k, v, qk))
}

/// `Dropout` where it is deterministic: `Y = X` and, when named, an all-true mask, as the
/// reference gives without training and, with `training_mode`, for `ratio = 0`. Training
/// with another ratio draws random masks: a constant true `training_mode` is refused then,
/// and so is a run-time one unless the ratio is a constant 0.
pub(super) fn dropout(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let x = n.req(im, 0)?;
    let ratio_zero = match n.input(im, 1)? {
        Some(Val::Const(t, _)) => t.data.len() == 1 && t.data[0] == 0.0,
        _ => false,
    };
    let training = match n.input(im, 2)? {
        None => Some(false),
        Some(Val::Const(t, _)) => Some(t.data.iter().any(|&v| v != 0.0)),
        Some(Val::Ir(_)) => None,
    };
    if !ratio_zero && training != Some(false) {
        let what = if training.is_none() {
            "a run-time training_mode"
        } else {
            "training_mode = true"
        };
        return Err(refuse(
            im,
            n,
            &format!("{what} with a ratio other than a constant 0 drops random elements; the importer maps inference (training_mode false or absent) or ratio 0"),
        ));
    }
    let shape = ty(im, &x).shape;
    let count = shape.iter().product::<i64>().max(0) as usize;
    let mask = konst(Tensor::new(
        TensorType::new(shape, Elem::I1),
        vec![1.0; count],
    ));
    outputs(im, n, vec![Some(x), Some(mask)], &["output", "mask"])
}

/// `GatherND` with run-time indices or `batch_dims > 0`: `data`'s batch dims and the `k`
/// indexed dims flattened into one axis, gathered with the linear index
/// `batch · prod(indexed dims) + Σ idx_j · stride_j` computed in `f32` (exact while the
/// flattened axis has at most 2^24 entries; a larger one is refused). A negative index
/// counts from the end: `idx + d · neg` with `neg = 1 − relu(1 − relu(−idx))` (1 exactly
/// for negative integers). Out-of-range indices are not detected (ONNX leaves them
/// undefined).
pub(super) fn gather_nd(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let (data, idx) = (n.req(im, 0)?, n.req(im, 1)?);
    let (dt, it) = (ty(im, &data), ty(im, &idx));
    let b = n.int("batch_dims", 0);
    let (r, q) = (dt.rank() as i64, it.rank() as i64);
    if q < 1 || !it.elem.is_int() {
        return Err(n.err(format!("indices {it} must be integers of rank 1 or more")));
    }
    let k = it.shape[q as usize - 1];
    if b < 0 || b >= q || b + k > r || k < 1 || dt.shape[..b as usize] != it.shape[..b as usize] {
        return Err(n.err(format!(
            "indices {it} with batch_dims {b} do not index data {dt}"
        )));
    }
    let (b, k) = (b as usize, k as usize);
    let dims = &dt.shape[b..b + k];
    let mut strides = vec![1i64; k];
    for j in (0..k - 1).rev() {
        strides[j] = strides[j + 1] * dims[j + 1];
    }
    let inner: i64 = dims.iter().product();
    let batch: i64 = dt.shape[..b].iter().product();
    if batch.saturating_mul(inner) > 1 << 24 {
        return Err(n.err(format!(
            "{} gathered rows are too many for exact f32 index arithmetic",
            batch * inner
        )));
    }
    let f = Elem::F32;
    let vec_k = |v: &[i64]| {
        konst(Tensor::new(
            TensorType::new(vec![k as i64], f),
            v.iter().map(|&x| x as f64).collect(),
        ))
    };
    let idx = cast(im, n, idx, f)?;
    let neg = n.emit1(
        im,
        g(graph::Op::Neg),
        std::slice::from_ref(&idx),
        Attrs::new(),
    )?;
    let neg = n.emit1(im, g(graph::Op::Relu), &[neg], Attrs::new())?;
    let neg = n.emit1(im, g(graph::Op::Sub), &[scalar(1.0, f), neg], Attrs::new())?;
    let neg = n.emit1(im, g(graph::Op::Relu), &[neg], Attrs::new())?;
    let neg = n.emit1(im, g(graph::Op::Sub), &[scalar(1.0, f), neg], Attrs::new())?;
    let wrap = n.emit1(im, g(graph::Op::Mul), &[neg, vec_k(dims)], Attrs::new())?;
    let idx = add(im, n, idx, wrap)?;
    let lin = n.emit1(im, g(graph::Op::Mul), &[idx, vec_k(&strides)], Attrs::new())?;
    let reduce = Attrs::new()
        .with("kind", Attr::Str("sum".into()))
        .with("axes", Attr::Ints(vec![-1]))
        .with("keepdims", Attr::Bool(false));
    let mut lin = n.emit1(im, g(graph::Op::Reduce), &[lin], reduce)?;
    if b > 0 {
        // The batch offset, broadcast over the index dims after the batch dims.
        let mut shape = it.shape[..b].to_vec();
        shape.extend(std::iter::repeat_n(1, q as usize - 1 - b));
        let offsets = (0..batch).map(|i| (i * inner) as f64).collect();
        let offsets = konst(Tensor::new(TensorType::new(shape, f), offsets));
        lin = add(im, n, lin, offsets)?;
    }
    let lin = cast(im, n, lin, Elem::I64)?;
    let mut flat_shape = vec![batch * inner];
    flat_shape.extend_from_slice(&dt.shape[b + k..]);
    let flat = n.reshape(im, &data, flat_shape)?;
    n.emit1(
        im,
        g(graph::Op::Gather),
        &[flat, lin],
        Attrs::new().with("axis", Attr::Int(0)),
    )
}
