//! The `com.microsoft` domain (ONNX Runtime's contrib ops): one arm per op type, each
//! mapped to `graph`/`lowbit`/`attn` ops and located at the node name. Quantized matmuls
//! (`MatMulNBits`, `DynamicQuantizeMatMul`, `MatMulIntegerToFloat`) live in
//! [`super::quant`] beside the default domain's quantization ops.
//!
//! The forms follow ONNX Runtime's contrib operator schemas (`ContribOperators.md`):
//!
//! - norms: `SkipLayerNormalization`/`SkipSimplifiedLayerNormalization` (input + skip
//!   (+ bias), then `graph.layer_norm`/`graph.rms_norm` over the last axis; the optional
//!   `input_skip_bias_sum` output is the sum), `SimplifiedLayerNormalization` (also in the
//!   default domain, where ONNX Runtime registers it);
//! - activations: `Gelu`/`BiasGelu` (erf form), `FastGelu` (tanh form), `QuickGelu`
//!   (`x · sigmoid(alpha · x)`);
//! - `RotaryEmbedding`: `graph.gather` of the caches by position, `graph.rope` over the
//!   first `rotary_embedding_dim` channels of each head;
//! - `EmbedLayerNormalization`: gathers, sum, `graph.layer_norm`; `mask_index` is the row
//!   sum of the mask;
//! - attention (`Attention`, `QAttention`, `MultiHeadAttention`, `GroupQueryAttention`):
//!   projections and head reshapes in `graph` ops around one `attn.sdpa` (GQA heads,
//!   `causal` for `unidirectional`), past KV concatenated in front of the new keys. Masks
//!   become one additive float mask: `(1 - keep) · mask_filter_value` for raw masks, and for
//!   `[B]` end positions and run-time `seqlens_k` the exact integer form
//!   `min(relu(j + 1 - end), 1) · filter`; `attention_bias` is added to it.
//!   `QAttention`'s integer input and weight become `lowbit.dequantize` (exact per value).
//! - GroupQueryAttention's `local_window_size` becomes one more constant additive mask;
//!   `softcap`, `head_sink` and `smooth_softmax` (which `attn.sdpa` cannot express) make
//!   that attention decomposed `graph` ops ([`multi_head_with`]). Its quantized KV cache
//!   (`k_quant_type`/`v_quant_type` PER_TENSOR or PER_CHANNEL, `kv_cache_bit_width` 8 or 4)
//!   stays codes: `lowbit.quantize` of the new keys/values (4-bit ones `lowbit.pack`ed two
//!   per byte, offset by 8) concatenated after the past codes, and the attention reads the
//!   `lowbit.dequantize`d cache ([`quantized_cache`]).
//!
//! Attribute values and input forms that are not mapped (rotary inside `Attention`, shared
//! past/present buffers, packed QKV in `MultiHeadAttention` ...) are [`OnnxError::Unsupported`] errors naming
//! the attribute or input.

use lowbit_dialects::interp::Tensor;
use lowbit_dialects::ir::{Attr, Attrs, Elem, TensorType};
use lowbit_dialects::{attn, graph, lowbit, Opcode};

use super::import::{Importer, Val};
use super::ops::{g, konst, scalar, unsupported, N};
use super::{OnnxError, OnnxResult};

/// Maps one `com.microsoft` node.
pub(super) fn map_node(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    match n.node.op_type.as_str() {
        "SkipLayerNormalization" => skip_norm(im, n, false),
        "SkipSimplifiedLayerNormalization" => skip_norm(im, n, true),
        "SimplifiedLayerNormalization" => simplified_norm(im, n),
        "Gelu" | "BiasGelu" | "FastGelu" => gelu(im, n),
        "QuickGelu" => quick_gelu(im, n),
        "RotaryEmbedding" => rotary_embedding(im, n),
        "EmbedLayerNormalization" => embed_layer_norm(im, n),
        "Attention" => attention(im, n, false),
        "QAttention" => attention(im, n, true),
        "MultiHeadAttention" => multi_head_attention(im, n),
        "GroupQueryAttention" => group_query_attention(im, n),
        "MatMulNBits" => Ok(vec![super::quant::matmul_nbits(im, n)?]),
        "DynamicQuantizeMatMul" => Ok(vec![super::quant::dynamic_quantize_matmul(im, n)?]),
        "MatMulIntegerToFloat" => Ok(vec![super::quant::matmul_integer_to_float(im, n)?]),
        _ => Err(unsupported(
            im,
            n.node,
            "see the supported com.microsoft ops in compiler/src/onnx/msft.rs",
        )),
    }
}

/// An unsupported attribute value or input form of a mapped op: the op type, domain,
/// opset and node, then `what` and the nearest supported form.
pub(super) fn refuse(im: &Importer, n: &N<'_>, what: &str) -> OnnxError {
    unsupported(im, n.node, what)
}

/// Refuses attribute `name` unless it is absent or equals `ok`.
fn int_attr_is(im: &Importer, n: &N<'_>, name: &str, ok: i64, nearest: &str) -> OnnxResult<()> {
    match n.attr(name) {
        Some(a) if a.i != ok => Err(refuse(
            im,
            n,
            &format!("attribute '{name}' = {} is not supported; {nearest}", a.i),
        )),
        _ => Ok(()),
    }
}

/// Refuses optional input `i` (named `name`) when the node passes it.
fn no_input(im: &Importer, n: &N<'_>, i: usize, name: &str, nearest: &str) -> OnnxResult<()> {
    match n.node.input.get(i) {
        Some(s) if !s.is_empty() => Err(refuse(
            im,
            n,
            &format!("input #{i} '{name}' is not supported; {nearest}"),
        )),
        _ => Ok(()),
    }
}

/// The node's results in output order: `None` for an output the importer does not
/// produce, which is an error when the node names it.
pub(super) fn outputs(
    im: &Importer,
    n: &N<'_>,
    vals: Vec<Option<Val>>,
    names: &[&str],
) -> OnnxResult<Vec<Val>> {
    let first = vals[0].clone().expect("every op produces its first output");
    let mut out = Vec::new();
    for (i, v) in vals.into_iter().enumerate() {
        let wanted = n.node.output.get(i).is_some_and(|s| !s.is_empty());
        match v {
            Some(v) => out.push(v),
            None if wanted => {
                return Err(refuse(
                    im,
                    n,
                    &format!(
                        "optional output #{i} '{}' is not produced; leave it unnamed",
                        names.get(i).copied().unwrap_or("?")
                    ),
                ))
            }
            None => out.push(first.clone()),
        }
    }
    Ok(out)
}

pub(super) fn ty(im: &Importer, v: &Val) -> TensorType {
    im.ty(v)
}

pub(super) fn add(im: &mut Importer, n: &N<'_>, a: Val, b: Val) -> OnnxResult<Val> {
    n.emit1(im, g(graph::Op::Add), &[a, b], Attrs::new())
}

pub(super) fn mul(im: &mut Importer, n: &N<'_>, a: Val, b: Val) -> OnnxResult<Val> {
    n.emit1(im, g(graph::Op::Mul), &[a, b], Attrs::new())
}

pub(super) fn transpose(im: &mut Importer, n: &N<'_>, x: Val, perm: &[i64]) -> OnnxResult<Val> {
    let attrs = Attrs::new().with("perm", Attr::Ints(perm.to_vec()));
    n.emit1(im, g(graph::Op::Transpose), &[x], attrs)
}

pub(super) fn concat(im: &mut Importer, n: &N<'_>, xs: &[Val], axis: i64) -> OnnxResult<Val> {
    let attrs = Attrs::new().with("axis", Attr::Int(axis));
    n.emit1(im, g(graph::Op::Concat), xs, attrs)
}

pub(super) fn cast(im: &mut Importer, n: &N<'_>, x: Val, elem: Elem) -> OnnxResult<Val> {
    let t = ty(im, &x);
    if t.elem == elem {
        return Ok(x);
    }
    Ok(n.emit(
        im,
        g(graph::Op::Cast),
        &[x],
        Attrs::new(),
        Some(vec![t.with_elem(elem)]),
    )?
    .remove(0))
}

/// `x[..., start..end]` along the last axis.
fn slice_last(im: &mut Importer, n: &N<'_>, x: Val, start: i64, end: i64) -> OnnxResult<Val> {
    let shape = ty(im, &x).shape;
    let r = shape.len();
    let mut starts = vec![0; r];
    let mut ends = shape.clone();
    starts[r - 1] = start;
    ends[r - 1] = end;
    let attrs = Attrs::new()
        .with("starts", Attr::Ints(starts))
        .with("ends", Attr::Ints(ends));
    n.emit1(im, g(graph::Op::Slice), &[x], attrs)
}

pub(super) fn float_attr(v: f64) -> Attr {
    Attr::Float(v, Elem::F32)
}

/// `norm(x, gamma)` over the last `rank - axis` dims; a `gamma` whose shape is not those
/// dims (but broadcasts to them) multiplies the normalized value instead.
pub(super) fn norm(
    im: &mut Importer,
    n: &N<'_>,
    op: graph::Op,
    x: Val,
    (gamma, beta): (Option<Val>, Option<Val>),
    axis: i64,
    eps: f64,
) -> OnnxResult<Val> {
    let xt = ty(im, &x);
    let ax = super::ops::norm_axis(axis, xt.rank()).ok_or_else(|| n.err("axis is out of range"))?;
    let exact = |v: &Option<Val>, im: &Importer| {
        v.as_ref().is_none_or(|v| ty(im, v).shape == xt.shape[ax..])
    };
    let attrs = Attrs::new()
        .with("axis", Attr::Int(ax as i64))
        .with("epsilon", float_attr(eps));
    if exact(&gamma, im) && exact(&beta, im) {
        let mut args = vec![x];
        args.extend(gamma.clone());
        if op == graph::Op::LayerNorm {
            args.extend(beta);
        }
        return n.emit1(im, g(op), &args, attrs);
    }
    let mut y = n.emit1(im, g(op), &[x], attrs)?;
    if let Some(gm) = gamma {
        y = mul(im, n, y, gm)?;
    }
    if let Some(b) = beta {
        y = add(im, n, y, b)?;
    }
    Ok(y)
}

fn skip_norm(im: &mut Importer, n: &N<'_>, simplified: bool) -> OnnxResult<Vec<Val>> {
    let (x, skip, gamma) = (n.req(im, 0)?, n.req(im, 1)?, n.req(im, 2)?);
    let (beta, bias) = if simplified {
        (None, n.input(im, 3)?)
    } else {
        (n.input(im, 3)?, n.input(im, 4)?)
    };
    let eps = f64::from(n.float("epsilon", 1e-12));
    let mut sum = add(im, n, x, skip)?;
    if let Some(b) = bias {
        sum = add(im, n, sum, b)?;
    }
    let op = if simplified {
        graph::Op::RmsNorm
    } else {
        graph::Op::LayerNorm
    };
    let y = norm(im, n, op, sum.clone(), (Some(gamma), beta), -1, eps)?;
    outputs(
        im,
        n,
        vec![Some(y), None, None, Some(sum)],
        &["output", "mean", "inv_std_var", "input_skip_bias_sum"],
    )
}

/// `SimplifiedLayerNormalization` (RMS norm with `axis`, `epsilon`); shared with the
/// default domain, where ONNX Runtime registers it.
pub(super) fn simplified_norm(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let (x, scale) = (n.req(im, 0)?, n.req(im, 1)?);
    let eps = f64::from(n.float("epsilon", 1e-5));
    let y = norm(
        im,
        n,
        graph::Op::RmsNorm,
        x,
        (Some(scale), None),
        n.int("axis", -1),
        eps,
    )?;
    outputs(im, n, vec![Some(y), None], &["Y", "inv_std_var"])
}

fn gelu(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let mut x = n.req(im, 0)?;
    let op = n.node.op_type.as_str();
    if op == "BiasGelu" {
        let b = n.req(im, 1)?;
        x = add(im, n, x, b)?;
    } else if let (Some(b), "FastGelu") = (n.input(im, 1)?, op) {
        x = add(im, n, x, b)?;
    }
    let approx = if op == "FastGelu" { "tanh" } else { "none" };
    let attrs = Attrs::new().with("approximate", Attr::Str(approx.into()));
    Ok(vec![n.emit1(im, g(graph::Op::Gelu), &[x], attrs)?])
}

fn quick_gelu(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let x = n.req(im, 0)?;
    let alpha = f64::from(n.float("alpha", 1.702));
    let elem = ty(im, &x).elem;
    let ax = mul(im, n, x.clone(), scalar(alpha, elem))?;
    let s = n.emit1(im, g(graph::Op::Sigmoid), &[ax], Attrs::new())?;
    Ok(vec![mul(im, n, x, s)?])
}

/// Positions `offset + [0, len)` as a `[len]` (or `[B, len]` for a `[B]`-shaped offset
/// broadcast) integer tensor.
fn positions_from_offset(im: &mut Importer, n: &N<'_>, offset: Val, len: i64) -> OnnxResult<Val> {
    let elem = ty(im, &offset).elem;
    let iota = konst(Tensor::new(
        TensorType::new(vec![len], elem),
        (0..len).map(|i| i as f64).collect(),
    ));
    add(im, n, offset, iota)
}

/// Applies rotary embedding to `x [B, S, heads, head]` with `cos`/`sin` broadcasting to
/// `[B, S, 1, rot/2]`: `graph.rope` over the first `rot` channels, the rest unchanged.
fn rope_bsnh(
    im: &mut Importer,
    n: &N<'_>,
    x: Val,
    cos: Val,
    sin: Val,
    rot: i64,
    interleaved: bool,
) -> OnnxResult<Val> {
    let head = *ty(im, &x).shape.last().expect("rank 4");
    let attrs = Attrs::new().with("interleaved", Attr::Bool(interleaved));
    if rot == head {
        return n.emit1(im, g(graph::Op::Rope), &[x, cos, sin], attrs);
    }
    if rot > head || rot <= 0 || rot % 2 != 0 {
        return Err(n.err(format!(
            "rotary dimension {rot} does not fit head size {head}"
        )));
    }
    let a = slice_last(im, n, x.clone(), 0, rot)?;
    let b = slice_last(im, n, x, rot, head)?;
    let a = n.emit1(im, g(graph::Op::Rope), &[a, cos, sin], attrs)?;
    concat(im, n, &[a, b], -1)
}

/// Gathers `cache [max, rot/2]` rows at `pos` (`[S]` or `[B, S]`) and shapes the result to
/// broadcast against `[B, S, heads, rot/2]`.
fn cache_rows(im: &mut Importer, n: &N<'_>, cache: Val, pos: Val) -> OnnxResult<Val> {
    let attrs = Attrs::new().with("axis", Attr::Int(0));
    let rows = n.emit1(im, g(graph::Op::Gather), &[cache, pos], attrs)?;
    let mut shape = ty(im, &rows).shape;
    if !(2..=3).contains(&shape.len()) {
        return Err(n.err(format!(
            "caches must be [max, rot/2] and positions [S] or [B, S], which gives {shape:?}"
        )));
    }
    if shape.len() == 2 {
        shape.insert(0, 1);
    }
    shape.insert(2, 1);
    n.reshape(im, &rows, shape)
}

fn rotary_embedding(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let (x, pos, cos, sin) = (n.req(im, 0)?, n.req(im, 1)?, n.req(im, 2)?, n.req(im, 3)?);
    int_attr_is(im, n, "is_packed_batching", 0, "pass padded batches")?;
    if n.attr("scale").is_some_and(|a| a.f != 1.0) {
        return Err(refuse(
            im,
            n,
            "attribute 'scale' other than 1 is not supported; scale the input instead",
        ));
    }
    Ok(vec![rotary(im, n, x, Some(pos), cos, sin)?])
}

/// Rotary embedding of `x` (`[B, S, hidden]` split into `num_heads`, or `[B, heads, S,
/// head]`) with caches `[max, rot/2]` gathered at `pos` (`[B, S]` positions, or a one-element
/// offset), or, without `pos`, caches `[B, S, rot/2]`. Attributes `interleaved`,
/// `num_heads` and `rotary_embedding_dim` as both domains spell them.
pub(super) fn rotary(
    im: &mut Importer,
    n: &N<'_>,
    x: Val,
    pos: Option<Val>,
    cos: Val,
    sin: Val,
) -> OnnxResult<Val> {
    let interleaved = n.int("interleaved", 0) != 0;
    let xt = ty(im, &x);
    let half = *ty(im, &cos).shape.last().unwrap_or(&0);
    let rot_attr = n.int("rotary_embedding_dim", 0);
    let rot = if rot_attr > 0 { rot_attr } else { 2 * half };
    if 2 * half != rot {
        return Err(n.err(format!(
            "cos_cache holds {half} frequencies but the rotary dimension is {rot}"
        )));
    }
    // To [B, S, heads, head].
    let x4 = match xt.shape.as_slice() {
        &[b, s, hidden] => {
            let heads = match n.int("num_heads", 0) {
                0 if rot_attr == 0 && rot > 0 => hidden / rot,
                0 => return Err(n.err("needs num_heads when rotary_embedding_dim is set")),
                h => h,
            };
            if heads <= 0 || hidden % heads != 0 {
                return Err(n.err(format!(
                    "hidden size {hidden} is not a multiple of {heads} heads"
                )));
            }
            n.reshape(im, &x, vec![b, s, heads, hidden / heads])?
        }
        [_, _, _, _] => transpose(im, n, x, &[0, 2, 1, 3])?,
        _ => return Err(n.err(format!("input must have rank 3 or 4, not {}", xt.rank()))),
    };
    let s = ty(im, &x4).shape[1];
    let (cos, sin) = match pos {
        Some(pos) => {
            let pt = ty(im, &pos);
            let pos = if pt.num_elements() == 1 && pt.rank() <= 1 {
                let off = n.reshape(im, &pos, vec![1])?;
                positions_from_offset(im, n, off, s)?
            } else {
                pos
            };
            (
                cache_rows(im, n, cos, pos.clone())?,
                cache_rows(im, n, sin, pos)?,
            )
        }
        None => {
            let unsqueeze = |im: &mut Importer, c: Val| -> OnnxResult<Val> {
                let mut shape = ty(im, &c).shape;
                if shape.len() != 3 {
                    return Err(n.err(format!(
                        "without position_ids the caches must be [batch, sequence, rot/2], not {shape:?}"
                    )));
                }
                shape.insert(2, 1);
                n.reshape(im, &c, shape)
            };
            (unsqueeze(im, cos)?, unsqueeze(im, sin)?)
        }
    };
    let y = rope_bsnh(im, n, x4, cos, sin, rot, interleaved)?;
    match xt.rank() {
        3 => n.reshape(im, &y, xt.shape.clone()),
        _ => transpose(im, n, y, &[0, 2, 1, 3]),
    }
}

fn embed_layer_norm(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let ids = n.req(im, 0)?;
    let (word, pos_emb) = (n.req(im, 2)?, n.req(im, 3)?);
    let (gamma, beta) = (n.req(im, 5)?, n.req(im, 6)?);
    let eps = f64::from(n.float("epsilon", 1e-12));
    let it = ty(im, &ids);
    if it.rank() != 2 {
        return Err(n.err(format!("input_ids must have rank 2, not {}", it.rank())));
    }
    let (b, s) = (it.shape[0], it.shape[1]);
    let gather0 = Attrs::new().with("axis", Attr::Int(0));
    let mut sum = n.emit1(im, g(graph::Op::Gather), &[word, ids], gather0.clone())?;
    let pos_ids = match n.input(im, 8)? {
        Some(p) => p,
        None => konst(Tensor::new(
            TensorType::new(vec![1, s], Elem::I64),
            (0..s).map(|i| i as f64).collect(),
        )),
    };
    let p = n.emit1(
        im,
        g(graph::Op::Gather),
        &[pos_emb, pos_ids],
        gather0.clone(),
    )?;
    sum = add(im, n, sum, p)?;
    if let (Some(seg), Some(seg_emb)) = (n.input(im, 1)?, n.input(im, 4)?) {
        let e = n.emit1(im, g(graph::Op::Gather), &[seg_emb, seg], gather0)?;
        sum = add(im, n, sum, e)?;
    }
    let y = norm(
        im,
        n,
        graph::Op::LayerNorm,
        sum.clone(),
        (Some(gamma), Some(beta)),
        -1,
        eps,
    )?;
    let mask_index = match n.input(im, 7)? {
        Some(m) => {
            let elem = ty(im, &m).elem;
            let f = cast(im, n, m, Elem::F32)?;
            let attrs = Attrs::new()
                .with("kind", Attr::Str("sum".into()))
                .with("axes", Attr::Ints(vec![1]))
                .with("keepdims", Attr::Bool(false));
            let r = n.emit1(im, g(graph::Op::Reduce), &[f], attrs)?;
            Some(cast(im, n, r, elem)?)
        }
        None => Some(konst(Tensor::zeros(TensorType::new(vec![b], Elem::I32)))),
    };
    outputs(
        im,
        n,
        vec![Some(y), mask_index, Some(sum)],
        &["output", "mask_index", "embedding_sum"],
    )
}

/// `[B, S, heads·head]` to `[B, heads, S, head]`.
pub(super) fn to_heads(im: &mut Importer, n: &N<'_>, x: Val, heads: i64) -> OnnxResult<Val> {
    let t = ty(im, &x);
    if t.rank() != 3 || heads <= 0 || t.shape[2] % heads != 0 {
        return Err(n.err(format!("{t} does not split into {heads} heads")));
    }
    let (b, s, d) = (t.shape[0], t.shape[1], t.shape[2]);
    let x = n.reshape(im, &x, vec![b, s, heads, d / heads])?;
    transpose(im, n, x, &[0, 2, 1, 3])
}

/// `[B, heads, S, head]` back to `[B, S, heads·head]`.
pub(super) fn from_heads(im: &mut Importer, n: &N<'_>, x: Val) -> OnnxResult<Val> {
    let t = ty(im, &x);
    let (b, h, s, d) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3]);
    let x = transpose(im, n, x, &[0, 2, 1, 3])?;
    n.reshape(im, &x, vec![b, s, h * d])
}

/// The additive mask `min(relu(j + 1 - end[b]), 1) · filter` of shape `[B, 1, 1, T]`:
/// 0 for keys `j < end[b]`, `filter` for the others (exact on integer ends).
pub(super) fn end_mask(
    im: &mut Importer,
    n: &N<'_>,
    end: Val,
    t: i64,
    filter: f64,
) -> OnnxResult<Val> {
    use graph::Op as G;
    let b = ty(im, &end).num_elements() as i64;
    let end = cast(im, n, end, Elem::F32)?;
    let end = n.reshape(im, &end, vec![b, 1])?;
    let j1 = konst(Tensor::new(
        TensorType::new(vec![1, t], Elem::F32),
        (0..t).map(|j| (j + 1) as f64).collect(),
    ));
    let d = n.emit1(im, g(G::Sub), &[j1, end], Attrs::new())?;
    let r = n.emit1(im, g(G::Relu), &[d], Attrs::new())?;
    // min(r, 1) = 1 - relu(1 - r).
    let one = scalar(1.0, Elem::F32);
    let u = n.emit1(im, g(G::Sub), &[one.clone(), r], Attrs::new())?;
    let u = n.emit1(im, g(G::Relu), &[u], Attrs::new())?;
    let m = n.emit1(im, g(G::Sub), &[one, u], Attrs::new())?;
    let m = mul(im, n, m, scalar(filter, Elem::F32))?;
    n.reshape(im, &m, vec![b, 1, 1, t])
}

/// The additive float mask of a `mask_index`/`key_padding_mask` input against scores
/// `[B, H, S, T]`: raw `[B, T]` keep-masks, `[B, S, T]` masks, `[B]` end positions.
fn attention_mask(
    im: &mut Importer,
    n: &N<'_>,
    mask: Val,
    (b, s, t): (i64, i64, i64),
    filter: f64,
) -> OnnxResult<Val> {
    let mt = ty(im, &mask);
    if mt.rank() == 1 && mt.shape[0] == b {
        return end_mask(im, n, mask, t, filter);
    }
    let shape = match mt.shape.as_slice() {
        [mb, mt_] if *mb == b && *mt_ == t => vec![b, 1, 1, t],
        [mb, ms, mt_] if *mb == b && *ms == s && *mt_ == t => vec![b, 1, s, t],
        _ => {
            return Err(refuse(
                im,
                n,
                &format!(
                    "a mask of shape {:?} is not supported; pass a [batch] end-position mask, a [batch, {t}] or a [batch, {s}, {t}] keep-mask",
                    mt.shape
                ),
            ))
        }
    };
    // (1 - keep) · filter.
    let f = cast(im, n, mask, Elem::F32)?;
    let inv = n.emit1(
        im,
        g(graph::Op::Sub),
        &[scalar(1.0, Elem::F32), f],
        Attrs::new(),
    )?;
    let m = mul(im, n, inv, scalar(filter, Elem::F32))?;
    n.reshape(im, &m, shape)
}

/// One multi-head attention over projected `q [B, S, H·d]` (or `[B, H, S, d]`), `k [B, L, Hkv·d]`,
/// `v [B, L, Hkv·dv]` (or `k`/`v` already `[B, Hkv, L, d]`), with past keys/values
/// `[B, Hkv, P, d]` in front; returns the output `[B, S, H·dv]` and the present K and V.
pub(super) struct Heads {
    pub(super) q: Val,
    pub(super) k: Val,
    pub(super) v: Val,
    pub(super) heads: i64,
    pub(super) kv_heads: i64,
    pub(super) past: Option<(Val, Val)>,
    pub(super) scale: Option<f64>,
    pub(super) causal: bool,
    pub(super) mask: Option<Val>,
}

pub(super) fn multi_head(im: &mut Importer, n: &N<'_>, h: Heads) -> OnnxResult<(Val, Val, Val)> {
    multi_head_with(im, n, h, &Extras::default())
}

/// GroupQueryAttention's score modifiers (ONNX Runtime semantics, checked against its CPU
/// kernel by `scripts/ort_contrib_cases.py`).
#[derive(Default)]
pub(super) struct Extras {
    /// `softcap · tanh(s / softcap)` of the scaled scores, before any mask or bias (0: none).
    pub(super) softcap: f64,
    /// Per-head sink logits `[H]`: `exp(sink_h − m)` joins each row's softmax denominator,
    /// `m` the row maximum including the sink (`smooth_softmax` is a sink of zeros).
    pub(super) sink: Option<Val>,
    /// Local attention: query at absolute position `p` sees keys `p − w + 1 ..= p`.
    pub(super) window: Option<i64>,
}

/// [`multi_head`] with [`Extras`]. A window becomes a constant additive mask (the
/// attention stays one `attn.sdpa`); a softcap or a sink, which `attn.sdpa` cannot express,
/// makes the attention decomposed `graph` ops (matmul, tanh, softmax over the scores with
/// the sink as one more column).
pub(super) fn multi_head_with(
    im: &mut Importer,
    n: &N<'_>,
    mut h: Heads,
    x: &Extras,
) -> OnnxResult<(Val, Val, Val)> {
    // A `[B, H, S, d]` query keeps that layout in the output.
    let bnsh = ty(im, &h.q).rank() == 4;
    let q = if bnsh {
        h.q
    } else {
        to_heads(im, n, h.q, h.heads)?
    };
    let mut k = if ty(im, &h.k).rank() == 4 {
        h.k
    } else {
        to_heads(im, n, h.k, h.kv_heads)?
    };
    let mut v = if ty(im, &h.v).rank() == 4 {
        h.v
    } else {
        to_heads(im, n, h.v, h.kv_heads)?
    };
    if let Some((pk, pv)) = h.past {
        k = concat(im, n, &[pk, k], 2)?;
        v = concat(im, n, &[pv, v], 2)?;
    }
    let qt = ty(im, &q);
    let d = qt.shape[3];
    let scale = h.scale.unwrap_or(1.0 / (d as f64).sqrt());
    let (s, t) = (qt.shape[2], ty(im, &k).shape[2]);
    let lowest = lowest_of(n, qt.elem)?;
    // Key j is hidden from query i (absolute position t − s + i) by the window when
    // j < t − s + i − w + 1.
    if let Some(w) = x.window {
        let p = t - s;
        let m = (0..s)
            .flat_map(|i| (0..t).map(move |j| if j < p + i - w + 1 { lowest } else { 0.0 }))
            .collect();
        let m = konst(Tensor::new(TensorType::new(vec![1, 1, s, t], qt.elem), m));
        h.mask = Some(add_mask(im, n, h.mask, m)?);
    }
    let o = if x.softcap == 0.0 && x.sink.is_none() {
        let attrs = Attrs::new()
            .with("scale", float_attr(scale))
            .with("causal", Attr::Bool(h.causal));
        let mut args = vec![q, k.clone(), v.clone()];
        args.extend(h.mask);
        n.emit1(im, Opcode::Attn(attn::Op::Sdpa), &args, attrs)?
    } else {
        decomposed(
            im,
            n,
            (q, k.clone(), v.clone()),
            (scale, h.causal, h.mask),
            x,
            lowest,
        )?
    };
    let o = if bnsh { o } else { from_heads(im, n, o)? };
    Ok((o, k, v))
}

/// The lowest finite value of a float type: the additive mask of hidden keys.
fn lowest_of(n: &N<'_>, elem: Elem) -> OnnxResult<f64> {
    Ok(match elem {
        Elem::F32 => f64::from(f32::MIN),
        Elem::F64 => f64::MIN,
        Elem::F16 => -65504.0,
        Elem::BF16 => -3.3895313892515355e38,
        other => return Err(n.err(format!("attention over {other} is not supported"))),
    })
}

/// Attention as `graph` ops for `q [B, H, S, d]`, `k [B, Hkv, T, d]`, `v [B, Hkv, T, dv]`:
/// the `H / Hkv` query heads of a group are stacked to `[B, Hkv, G·S, d]` so they share
/// their KV head in plain matmuls; scores are scaled, soft-capped, masked (causal aligned
/// to the last query, plus `mask`), and the softmax runs over the keys and, with a sink,
/// one more column holding the head's sink logit, which is then sliced off.
fn decomposed(
    im: &mut Importer,
    n: &N<'_>,
    (q, k, v): (Val, Val, Val),
    (scale, causal, mask): (f64, bool, Option<Val>),
    x: &Extras,
    lowest: f64,
) -> OnnxResult<Val> {
    let (qt, kt, vt) = (ty(im, &q), ty(im, &k), ty(im, &v));
    let (b, heads, s, d) = (qt.shape[0], qt.shape[1], qt.shape[2], qt.shape[3]);
    let (kv_heads, t, dv) = (kt.shape[1], kt.shape[2], vt.shape[3]);
    let e = qt.elem;
    let groups = heads / kv_heads;
    let qg = n.reshape(im, &q, vec![b, kv_heads, groups * s, d])?;
    let kt_ = transpose(im, n, k, &[0, 1, 3, 2])?;
    let scores = n.emit1(im, g(graph::Op::MatMul), &[qg, kt_], Attrs::new())?;
    let scores = n.reshape(im, &scores, vec![b, heads, s, t])?;
    let mut scores = mul(im, n, scores, scalar(scale, e))?;
    if x.softcap != 0.0 {
        let c = x.softcap;
        let div = n.emit1(im, g(graph::Op::Div), &[scores, scalar(c, e)], Attrs::new())?;
        let th = n.emit1(im, g(graph::Op::Tanh), &[div], Attrs::new())?;
        scores = mul(im, n, th, scalar(c, e))?;
    }
    if causal {
        let p = t - s;
        let m = (0..s)
            .flat_map(|i| (0..t).map(move |j| if j > p + i { lowest } else { 0.0 }))
            .collect();
        let m = konst(Tensor::new(TensorType::new(vec![1, 1, s, t], e), m));
        scores = add(im, n, scores, m)?;
    }
    if let Some(m) = mask {
        scores = add(im, n, scores, m)?;
    }
    let softmax = Attrs::new().with("axis", Attr::Int(-1));
    let probs = match &x.sink {
        None => n.emit1(im, g(graph::Op::Softmax), &[scores], softmax)?,
        Some(sink) => {
            let st = ty(im, sink);
            if st.shape != [heads] {
                return Err(n.err(format!("head_sink {st} is not [{heads}]")));
            }
            let sink = cast(im, n, sink.clone(), e)?;
            let sink = n.reshape(im, &sink, vec![1, heads, 1, 1])?;
            let zeros = konst(Tensor::new(
                TensorType::new(vec![b, heads, s, 1], e),
                vec![0.0; (b * heads * s) as usize],
            ));
            let col = add(im, n, zeros, sink)?;
            let wide = concat(im, n, &[scores, col], 3)?;
            let p = n.emit1(im, g(graph::Op::Softmax), &[wide], softmax)?;
            slice_last(im, n, p, 0, t)?
        }
    };
    let pg = n.reshape(im, &probs, vec![b, kv_heads, groups * s, t])?;
    let o = n.emit1(im, g(graph::Op::MatMul), &[pg, v], Attrs::new())?;
    n.reshape(im, &o, vec![b, heads, s, dv])
}

/// The `scale` attribute when set and non-zero.
fn scale_attr(n: &N<'_>) -> Option<f64> {
    n.attr("scale")
        .map(|a| f64::from(a.f))
        .filter(|&s| s != 0.0)
}

/// The length of a past KV cache (`[B, Hkv, P, d]` keys and values), 0 without one.
pub(super) fn past_len(im: &Importer, n: &N<'_>, past: &Option<(Val, Val)>) -> OnnxResult<i64> {
    let Some((k, v)) = past else { return Ok(0) };
    let (kt, vt) = (ty(im, k), ty(im, v));
    if kt.rank() != 4 || vt.rank() != 4 || kt.shape[2] != vt.shape[2] {
        return Err(n.err(format!(
            "past key and value must be [batch, heads, past, head] with one past length, not {kt} and {vt}"
        )));
    }
    Ok(kt.shape[2])
}

/// Adds `b` to the optional mask `m`.
pub(super) fn add_mask(im: &mut Importer, n: &N<'_>, m: Option<Val>, b: Val) -> OnnxResult<Val> {
    match m {
        Some(m) => add(im, n, m, b),
        None => Ok(b),
    }
}

/// `lowbit.dequantize` of an integer operand with a per-tensor (or, with `axis`, per-axis)
/// scale and optional zero point; integer weights stay integer in the weight store.
fn dequant(
    im: &mut Importer,
    n: &N<'_>,
    q: Val,
    scale: Val,
    zp: Option<Val>,
    axis: i64,
    hint: &str,
) -> OnnxResult<Val> {
    let qt = ty(im, &q);
    let st = ty(im, &scale);
    let mut attrs = Attrs::new();
    let flat = |im: &mut Importer, v: Val, per_axis: bool| -> OnnxResult<Val> {
        let t = ty(im, &v);
        if per_axis {
            n.reshape(im, &v, vec![t.num_elements() as i64])
        } else {
            n.reshape(im, &v, vec![])
        }
    };
    let per_axis = st.num_elements() > 1;
    if per_axis {
        attrs.set("axis", Attr::Int(axis));
    }
    let scale = flat(im, scale, per_axis)?;
    let mut args = vec![q.clone(), scale];
    if let Some(z) = zp {
        args.push(flat(im, z, per_axis)?);
    }
    // A constant integer operand is materialized first so that it stays low-bit.
    if let Val::Const(_, _) = &q {
        args[0] = Val::Ir(im.materialize(&q, hint));
    }
    Ok(n.emit(
        im,
        Opcode::Lowbit(lowbit::Op::Dequantize),
        &args,
        attrs,
        Some(vec![qt.with_elem(st.elem)]),
    )?
    .remove(0))
}

/// `Attention` and `QAttention`: packed QKV projection, optional mask, past and
/// attention bias.
fn attention(im: &mut Importer, n: &N<'_>, quantized: bool) -> OnnxResult<Vec<Val>> {
    let heads = n.int("num_heads", 0);
    if heads <= 0 {
        return Err(n.err("needs a positive num_heads"));
    }
    int_attr_is(
        im,
        n,
        "do_rotary",
        0,
        "apply RotaryEmbedding before a MultiHeadAttention node",
    )?;
    int_attr_is(
        im,
        n,
        "past_present_share_buffer",
        0,
        "pass past and present as separate tensors",
    )?;
    let filter = f64::from(n.float("mask_filter_value", -10000.0));
    let (x, w, bias, mask_i, past_i) = if quantized {
        let (xq, wq) = (n.req(im, 0)?, n.req(im, 1)?);
        let bias = n.req(im, 2)?;
        let (xs, ws) = (n.req(im, 3)?, n.req(im, 4)?);
        let (xz, wz) = (n.input(im, 6)?, n.input(im, 7)?);
        let w_name = format!("{}.weight", n.node.name);
        let x = dequant(im, n, xq, xs, xz, 0, &format!("{}.input", n.node.name))?;
        let w = dequant(im, n, wq, ws, wz, 1, &w_name)?;
        (x, w, Some(bias), 5, 8)
    } else {
        no_input(
            im,
            n,
            6,
            "past_sequence_length",
            "pass past and present as separate tensors",
        )?;
        (n.req(im, 0)?, n.req(im, 1)?, n.input(im, 2)?, 3, 4)
    };
    let xt = ty(im, &x);
    if xt.rank() != 3 {
        return Err(n.err(format!("input must have rank 3, not {}", xt.rank())));
    }
    let (b, s) = (xt.shape[0], xt.shape[1]);
    let mut proj = n.emit1(im, g(graph::Op::MatMul), &[x, w], Attrs::new())?;
    if let Some(bias) = bias {
        proj = add(im, n, proj, bias)?;
    }
    let pt = ty(im, &proj);
    if pt.rank() != 3 {
        return Err(n.err(format!(
            "weights must be [input_hidden, q + k + v]; the projection is {pt}"
        )));
    }
    let total = pt.shape[2];
    let sizes = match n.ints("qkv_hidden_sizes") {
        Some(v) if !v.is_empty() => v,
        _ => vec![total / 3; 3],
    };
    if sizes.len() != 3 || sizes.iter().sum::<i64>() != total || sizes[0] != sizes[1] {
        return Err(n.err(format!(
            "qkv_hidden_sizes {sizes:?} do not split the {total} projected channels"
        )));
    }
    let types = sizes
        .iter()
        .map(|&d| TensorType::new(vec![b, s, d], xt.elem))
        .collect();
    let qkv = n.emit(
        im,
        g(graph::Op::Split),
        &[proj],
        Attrs::new().with("axis", Attr::Int(2)),
        Some(types),
    )?;
    let past = match n.input(im, past_i)? {
        Some(p) => {
            let pt = ty(im, &p);
            if pt.rank() != 5 || pt.shape[0] != 2 {
                return Err(n.err(format!("past must be [2, B, N, P, H], not {pt}")));
            }
            let half = TensorType::new(pt.shape[1..].to_vec(), pt.elem);
            let mut one = pt.shape.clone();
            one[0] = 1;
            let parts = n.emit(
                im,
                g(graph::Op::Split),
                &[p],
                Attrs::new().with("axis", Attr::Int(0)),
                Some(vec![TensorType::new(one.clone(), pt.elem); 2]),
            )?;
            let pk = n.reshape(im, &parts[0], half.shape.clone())?;
            let pv = n.reshape(im, &parts[1], half.shape)?;
            Some((pk, pv))
        }
        None => None,
    };
    let p_len = past_len(im, n, &past)?;
    let t = p_len + s;
    let mut mask = match n.input(im, mask_i)? {
        Some(m) => Some(attention_mask(im, n, m, (b, s, t), filter)?),
        None => None,
    };
    if !quantized {
        if let Some(ab) = n.input(im, 5)? {
            mask = Some(add_mask(im, n, mask, ab)?);
        }
    }
    let (out, k, v) = multi_head(
        im,
        n,
        Heads {
            q: qkv[0].clone(),
            k: qkv[1].clone(),
            v: qkv[2].clone(),
            heads,
            kv_heads: heads,
            past,
            scale: scale_attr(n),
            causal: n.int("unidirectional", 0) != 0,
            mask,
        },
    )?;
    let present = if n.node.output.get(1).is_some_and(|s| !s.is_empty()) {
        let kt = ty(im, &k);
        let mut one = vec![1];
        one.extend_from_slice(&kt.shape);
        let k1 = n.reshape(im, &k, one.clone())?;
        let mut vone = vec![1];
        vone.extend_from_slice(&ty(im, &v).shape);
        let v1 = n.reshape(im, &v, vone)?;
        Some(concat(im, n, &[k1, v1], 0)?)
    } else {
        None
    };
    outputs(im, n, vec![Some(out), present], &["output", "present"])
}

fn multi_head_attention(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let heads = n.int("num_heads", 0);
    if heads <= 0 {
        return Err(n.err("needs a positive num_heads"));
    }
    let filter = f64::from(n.float("mask_filter_value", -10000.0));
    no_input(
        im,
        n,
        8,
        "past_sequence_length",
        "pass past and present as separate tensors",
    )?;
    no_input(
        im,
        n,
        9,
        "cache_indirection",
        "beam search caches are not supported",
    )?;
    let q = n.req(im, 0)?;
    let qt = ty(im, &q);
    let (Some(mut k), Some(mut v)) = (n.input(im, 1)?, n.input(im, 2)?) else {
        return Err(refuse(
            im,
            n,
            "packed QKV/KV inputs are not supported; pass query, key and value as [batch, sequence, hidden] tensors",
        ));
    };
    if qt.rank() != 3 || !matches!(ty(im, &k).rank(), 3 | 4) {
        return Err(refuse(
            im,
            n,
            "packed QKV/KV inputs are not supported; pass query, key and value as [batch, sequence, hidden] tensors",
        ));
    }
    if ty(im, &v).rank() != ty(im, &k).rank() {
        return Err(n.err("key and value must have the same rank"));
    }
    let (b, s, d) = (qt.shape[0], qt.shape[1], qt.shape[2]);
    let mut q = q;
    if let Some(bias) = n.input(im, 3)? {
        if ty(im, &k).rank() == 4 {
            return Err(refuse(
                im,
                n,
                "a bias with [B, N, L, H] key/value is not supported; add the bias before",
            ));
        }
        let dk = ty(im, &k).shape[2];
        let dv = ty(im, &v).shape[2];
        let bt = ty(im, &bias);
        if bt.shape != [d + dk + dv] {
            return Err(n.err(format!("bias {bt} is not [{}]", d + dk + dv)));
        }
        let parts = n.emit(
            im,
            g(graph::Op::Split),
            &[bias],
            Attrs::new().with("axis", Attr::Int(0)),
            Some(vec![
                TensorType::new(vec![d], bt.elem),
                TensorType::new(vec![dk], bt.elem),
                TensorType::new(vec![dv], bt.elem),
            ]),
        )?;
        q = add(im, n, q, parts[0].clone())?;
        k = add(im, n, k, parts[1].clone())?;
        v = add(im, n, v, parts[2].clone())?;
    }
    let past = match (n.input(im, 6)?, n.input(im, 7)?) {
        (Some(pk), Some(pv)) => Some((pk, pv)),
        (None, None) => None,
        _ => return Err(n.err("needs both past_key and past_value, or neither")),
    };
    let kt = ty(im, &k);
    let l = if kt.rank() == 4 {
        kt.shape[2]
    } else {
        kt.shape[1]
    };
    let p_len = past_len(im, n, &past)?;
    let t = p_len + l;
    let mut mask = match n.input(im, 4)? {
        Some(m) => Some(attention_mask(im, n, m, (b, s, t), filter)?),
        None => None,
    };
    if let Some(ab) = n.input(im, 5)? {
        mask = Some(add_mask(im, n, mask, ab)?);
    }
    let (out, pk, pv) = multi_head(
        im,
        n,
        Heads {
            q,
            k,
            v,
            heads,
            kv_heads: heads,
            past,
            scale: scale_attr(n),
            causal: n.int("unidirectional", 0) != 0,
            mask,
        },
    )?;
    outputs(
        im,
        n,
        vec![Some(out), Some(pk), Some(pv), None],
        &["output", "present_key", "present_value", "qk"],
    )
}

fn group_query_attention(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let heads = n.int("num_heads", 0);
    let kv_heads = n.int("kv_num_heads", 0);
    if heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0 {
        return Err(n.err(format!(
            "num_heads {heads} must be a positive multiple of kv_num_heads {kv_heads}"
        )));
    }
    let kv_quant = kv_cache_quant(im, n)?;
    int_attr_is(im, n, "qk_output", 0, "leave output_qk unnamed (0)")?;
    let causal = n.int("causal", 1) != 0;
    let window = match n.int("local_window_size", -1) {
        -1 => None,
        w if w >= 1 && causal => Some(w),
        w if w >= 1 => {
            return Err(n.err(format!(
                "local_window_size {w} needs causal = 1 (a window is a left window of causal attention)"
            )))
        }
        w => {
            return Err(n.err(format!(
                "local_window_size {w} must be -1 (no window) or at least 1"
            )))
        }
    };
    let smooth = match n.int("smooth_softmax", -1) {
        -1 | 0 => false,
        1 => true,
        other => return Err(n.err(format!("smooth_softmax {other} must be -1, 0 or 1"))),
    };
    let softcap = n.attr("softcap").map_or(0.0, |a| f64::from(a.f));
    if !softcap.is_finite() || softcap < 0.0 {
        return Err(n.err(format!("softcap {softcap} must be 0 (none) or positive")));
    }
    int_attr_is(
        im,
        n,
        "sliding_window_cache",
        0,
        "use a full-length KV cache (0)",
    )?;
    no_input(im, n, 16, "query_seqlens", "pass unpadded query chunks")?;
    let q = n.req(im, 0)?;
    let qt = ty(im, &q);
    if qt.rank() != 3 {
        return Err(n.err(format!("query must have rank 3, not {}", qt.rank())));
    }
    let (b, s) = (qt.shape[0], qt.shape[1]);
    let (mut q, mut k, mut v) = match (n.input(im, 1)?, n.input(im, 2)?) {
        (Some(k), Some(v)) => (q, k, v),
        (None, None) => {
            let d = qt.shape[2] / (heads + 2 * kv_heads);
            if d * (heads + 2 * kv_heads) != qt.shape[2] {
                return Err(n.err(format!("packed QKV {qt} does not split into heads")));
            }
            let sizes = [heads * d, kv_heads * d, kv_heads * d];
            let parts = n.emit(
                im,
                g(graph::Op::Split),
                &[q],
                Attrs::new().with("axis", Attr::Int(2)),
                Some(
                    sizes
                        .iter()
                        .map(|&c| TensorType::new(vec![b, s, c], qt.elem))
                        .collect(),
                ),
            )?;
            (parts[0].clone(), parts[1].clone(), parts[2].clone())
        }
        _ => return Err(n.err("needs both key and value, or neither (packed QKV)")),
    };
    let mut past = match (n.input(im, 3)?, n.input(im, 4)?) {
        (Some(pk), Some(pv)) => Some((pk, pv)),
        (None, None) => None,
        _ => return Err(n.err("needs both past_key and past_value, or neither")),
    };
    let p_len = past_len(im, n, &past)?;
    let total = p_len + s;
    // seqlens_k / total_sequence_length: constants must describe `past + new` for every
    // row; a run-time seqlens_k is a right-padding mask, only without a past.
    let seqlens = n.req(im, 5)?;
    let mut mask = None;
    match &seqlens {
        Val::Const(t, _) => {
            if t.data.iter().any(|&v| v as i64 != total - 1) {
                return Err(refuse(
                    im,
                    n,
                    &format!(
                        "seqlens_k {:?} other than past + new - 1 = {} for every row is not supported; pass a past of exactly the past length",
                        t.data,
                        total - 1
                    ),
                ));
            }
        }
        Val::Ir(_) if p_len == 0 => {
            let one = scalar(1.0, Elem::F32);
            let f = cast(im, n, seqlens.clone(), Elem::F32)?;
            let end = add(im, n, f, one)?;
            mask = Some(end_mask(im, n, end, total, f64::from(f32::MIN))?);
        }
        Val::Ir(_) => {
            return Err(refuse(
                im,
                n,
                "a run-time seqlens_k with a past KV cache is not supported (the new keys' place would depend on it); bind the shapes so that seqlens_k folds to past + new - 1",
            ))
        }
    }
    if let Some(Val::Const(t, _)) = n.input(im, 6)? {
        if t.data.first().is_some_and(|&v| v as i64 != total) {
            return Err(n.err(format!(
                "total_sequence_length {} is not past + new = {total}",
                t.data[0]
            )));
        }
    }
    let d = ty(im, &q).shape[2] / heads;
    // Per-head RMS norm of Q and K (Qwen3).
    if let (Some(qw), Some(kw)) = (n.input(im, 14)?, n.input(im, 15)?) {
        let eps = f64::from(n.float("qk_norm_epsilon", 1e-6));
        let qe = n.attr("q_norm_epsilon").map_or(eps, |a| f64::from(a.f));
        let ke = n.attr("k_norm_epsilon").map_or(eps, |a| f64::from(a.f));
        let q4 = n.reshape(im, &q, vec![b, s, heads, d])?;
        let q4 = norm(im, n, graph::Op::RmsNorm, q4, (Some(qw), None), -1, qe)?;
        q = n.reshape(im, &q4, vec![b, s, heads * d])?;
        let k4 = n.reshape(im, &k, vec![b, s, kv_heads, d])?;
        let k4 = norm(im, n, graph::Op::RmsNorm, k4, (Some(kw), None), -1, ke)?;
        k = n.reshape(im, &k4, vec![b, s, kv_heads * d])?;
    }
    if n.int("do_rotary", 0) != 0 {
        let (Some(cos), Some(sin)) = (n.input(im, 7)?, n.input(im, 8)?) else {
            return Err(n.err("do_rotary needs cos_cache and sin_cache"));
        };
        let pos = match n.input(im, 9)? {
            Some(p) => p,
            None => konst(Tensor::new(
                TensorType::new(vec![s], Elem::I64),
                (0..s).map(|i| (p_len + i) as f64).collect(),
            )),
        };
        let rot = 2 * *ty(im, &cos).shape.last().unwrap_or(&0);
        let interleaved = n.int("rotary_interleaved", 0) != 0;
        let cos = cache_rows(im, n, cos, pos.clone())?;
        let sin = cache_rows(im, n, sin, pos)?;
        let q4 = n.reshape(im, &q, vec![b, s, heads, d])?;
        let q4 = rope_bsnh(im, n, q4, cos.clone(), sin.clone(), rot, interleaved)?;
        q = n.reshape(im, &q4, vec![b, s, heads * d])?;
        let k4 = n.reshape(im, &k, vec![b, s, kv_heads, d])?;
        let k4 = rope_bsnh(im, n, k4, cos, sin, rot, interleaved)?;
        k = n.reshape(im, &k4, vec![b, s, kv_heads * d])?;
    }
    if let Some(ab) = n.input(im, 10)? {
        mask = Some(add_mask(im, n, mask, ab)?);
    }
    // A quantized cache: the past codes and the new keys/values quantized with the given
    // scales make the present codes; the attention reads their dequantized values.
    let mut present_codes = None;
    if let Some((kq, vq, bits)) = kv_quant {
        let (Some(ks), Some(vs)) = (n.input(im, 12)?, n.input(im, 13)?) else {
            return Err(n.err("a quantized KV cache needs the k_scale and v_scale inputs"));
        };
        let (pk, pv) = match past.take() {
            Some((pk, pv)) => (Some(pk), Some(pv)),
            None => (None, None),
        };
        let kh = to_heads(im, n, k, kv_heads)?;
        let vh = to_heads(im, n, v, kv_heads)?;
        let (kc, kf) = quantized_cache(im, n, kh, pk, ks, kq, bits)?;
        let (vc, vf) = quantized_cache(im, n, vh, pv, vs, vq, bits)?;
        present_codes = Some((kc, vc));
        (k, v) = (kf, vf);
    }
    let sink = match n.input(im, 11)? {
        Some(sink) => Some(sink),
        None if smooth => Some(konst(Tensor::new(
            TensorType::new(vec![heads], Elem::F32),
            vec![0.0; heads as usize],
        ))),
        None => None,
    };
    let extras = Extras {
        softcap,
        sink,
        window,
    };
    let (out, pk, pv) = multi_head_with(
        im,
        n,
        Heads {
            q,
            k,
            v,
            heads,
            kv_heads,
            past,
            scale: scale_attr(n),
            causal,
            mask,
        },
        &extras,
    )?;
    let (pk, pv) = present_codes.unwrap_or((pk, pv));
    outputs(
        im,
        n,
        vec![Some(out), Some(pk), Some(pv), None],
        &["output", "present_key", "present_value", "output_qk"],
    )
}

/// How a GroupQueryAttention KV cache is quantized (`k_quant_type`, `v_quant_type`).
#[derive(Clone, Copy, PartialEq)]
enum KvQuant {
    PerTensor,
    PerChannel,
}

/// The KV cache's quantization: `None` for a float cache, else the K and V granularities
/// and `kv_cache_bit_width` (8: `int8` codes; 4: `uint8` bytes of two codes each).
fn kv_cache_quant(im: &Importer, n: &N<'_>) -> OnnxResult<Option<(KvQuant, KvQuant, i64)>> {
    let kind = |name: &str| -> OnnxResult<Option<KvQuant>> {
        match n.string(name).as_deref() {
            None | Some("NONE") => Ok(None),
            Some("PER_TENSOR") => Ok(Some(KvQuant::PerTensor)),
            Some("PER_CHANNEL") => Ok(Some(KvQuant::PerChannel)),
            Some(other) => Err(refuse(
                im,
                n,
                &format!(
                    "attribute '{name}' = '{other}' is not supported; use 'NONE', 'PER_TENSOR' or 'PER_CHANNEL'"
                ),
            )),
        }
    };
    match (kind("k_quant_type")?, kind("v_quant_type")?) {
        (None, None) => Ok(None),
        (Some(k), Some(v)) => match n.int("kv_cache_bit_width", 8) {
            bits @ (4 | 8) => Ok(Some((k, v, bits))),
            other => Err(n.err(format!("kv_cache_bit_width {other} must be 4 or 8"))),
        },
        _ => Err(refuse(
            im,
            n,
            "a quantized K cache with a float V cache (or the other way round) is not supported; quantize both or neither",
        )),
    }
}

/// One quantized cache tensor: `new [B, Hkv, S, d]` quantized with `scale` (symmetric:
/// `clamp(round_half_even(x / scale), -2^(bits-1), 2^(bits-1) - 1)`; 4-bit codes are
/// stored offset by 8, two per byte, the even element in the low nibble — ONNX Runtime's
/// layout) after the `past` codes `[B, Hkv, P, d]` (or `[B, Hkv, P, d/2]` bytes). Returns
/// the present codes and their dequantized values. Per-tensor scales have one element;
/// per-channel ones `Hkv · d` (`[Hkv, 1, d]`), one per head and channel.
fn quantized_cache(
    im: &mut Importer,
    n: &N<'_>,
    new: Val,
    past: Option<Val>,
    scale: Val,
    kind: KvQuant,
    bits: i64,
) -> OnnxResult<(Val, Val)> {
    let nt = ty(im, &new);
    let (b, h, s, d) = (nt.shape[0], nt.shape[1], nt.shape[2], nt.shape[3]);
    let p = match &past {
        Some(pc) => ty(im, pc).shape[2],
        None => 0,
    };
    let t = p + s;
    let st = ty(im, &scale);
    let scale = cast(im, n, scale, nt.elem)?;
    // Per-channel: a per-block scale along the tokens, one block holding every token.
    let (scale, scale_shape) = match kind {
        KvQuant::PerTensor if st.num_elements() == 1 => (n.reshape(im, &scale, vec![])?, vec![]),
        KvQuant::PerChannel if st.num_elements() as i64 == h * d => {
            let sc = n.reshape(im, &scale, vec![1, h, 1, d])?;
            let zeros = konst(Tensor::new(
                TensorType::new(vec![b, h, 1, d], nt.elem),
                vec![0.0; (b * h * d) as usize],
            ));
            (add(im, n, zeros, sc)?, vec![b, h, 1, d])
        }
        _ => {
            return Err(n.err(format!(
                "KV cache scale {st} does not fit the quantization ({} elements expected)",
                if kind == KvQuant::PerTensor { 1 } else { h * d }
            )))
        }
    };
    let block = |len: i64| -> Attrs {
        if scale_shape.is_empty() {
            Attrs::new()
        } else {
            Attrs::new()
                .with("axis", Attr::Int(2))
                .with("block_size", Attr::Int(len))
        }
    };
    let code_elem = if bits == 8 { Elem::I8 } else { Elem::UI4 };
    let mut qargs = vec![new, scale.clone()];
    let zp = (bits == 4).then(|| {
        let count = scale_shape.iter().product::<i64>().max(1) as usize;
        konst(Tensor::new(
            TensorType::new(scale_shape.clone(), Elem::UI4),
            vec![8.0; count],
        ))
    });
    qargs.extend(zp.clone());
    let codes = n
        .emit(
            im,
            lb(lowbit::Op::Quantize),
            &qargs,
            block(s),
            Some(vec![TensorType::new(vec![b, h, s, d], code_elem)]),
        )?
        .remove(0);
    let stored = if bits == 8 {
        codes
    } else {
        if d % 2 != 0 {
            return Err(n.err(format!("a 4-bit KV cache needs an even head size, not {d}")));
        }
        n.emit(
            im,
            lb(lowbit::Op::Pack),
            &[codes],
            Attrs::new(),
            Some(vec![TensorType::new(vec![b, h, s, d / 2], Elem::UI8)]),
        )?
        .remove(0)
    };
    let present = match past {
        Some(pc) => concat(im, n, &[pc, stored], 2)?,
        None => stored,
    };
    let all_codes = if bits == 8 {
        present.clone()
    } else {
        n.emit(
            im,
            lb(lowbit::Op::Unpack),
            std::slice::from_ref(&present),
            Attrs::new(),
            Some(vec![TensorType::new(vec![b, h, t, d], Elem::UI4)]),
        )?
        .remove(0)
    };
    let mut dargs = vec![all_codes, scale];
    dargs.extend(zp);
    let values = n
        .emit(
            im,
            lb(lowbit::Op::Dequantize),
            &dargs,
            block(t),
            Some(vec![TensorType::new(vec![b, h, t, d], nt.elem)]),
        )?
        .remove(0);
    Ok((present, values))
}

fn lb(op: lowbit::Op) -> Opcode {
    Opcode::Lowbit(op)
}
