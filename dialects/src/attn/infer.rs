//! Type inference for the `attn` dialect.
//!
//! Every attention op shares the layout of the table's module docs, checked once by
//! [`qkv`]: `q [B, H, N, d]`, `k [B, Hkv, M, d]`, `v [B, Hkv, M, dv]` with `H` a multiple of
//! `Hkv`, giving `[B, H, N, dv]` in `q`'s element type. The ops then add their own operands
//! (masks, block masks, projections) and attribute ranges.

use super::Op;
use crate::infer::{
    ceil_div, check_broadcasts_to, dims, float, float_or_i1, non_negative, one_of, positive,
    rank_is, same_elem, shape_is, InferCx, InferResult,
};
use crate::ir::{Elem, TensorType};

/// The dims of a checked attention problem.
#[derive(Clone, Copy, Debug)]
pub struct Qkv {
    /// Batch size `B`.
    pub b: i64,
    /// Query heads `H`.
    pub h: i64,
    /// Key/value heads `Hkv` (divides `H`).
    pub hkv: i64,
    /// Query length `N`.
    pub n: i64,
    /// Key length `M`.
    pub m: i64,
    /// Query/key head dim `d`.
    pub d: i64,
    /// Value head dim `dv`.
    pub dv: i64,
    /// The element type of `q`, `k`, `v` and the result.
    pub elem: Elem,
}

impl Qkv {
    /// The result type `[B, H, N, dv]`.
    pub fn out(&self) -> TensorType {
        TensorType::new([self.b, self.h, self.n, self.dv], self.elem)
    }

    /// The score shape `[B, H, N, M]` masks broadcast to.
    pub fn scores(&self) -> [i64; 4] {
        [self.b, self.h, self.n, self.m]
    }
}

/// Infers the result types of an `attn` op.
pub fn infer(op: Op, cx: &InferCx<'_>) -> InferResult {
    match op {
        Op::Sdpa => sdpa(cx),
        Op::QuantizedSdpa => {
            one_of(cx.attrs, "qk", None, &["i8", "i4", "f8"])?;
            one_of(cx.attrs, "pv", None, &["f16", "f8", "i8"])?;
            positive(cx.attrs, "q_block")?;
            let k_block = positive(cx.attrs, "k_block")?;
            positive(cx.attrs, "smooth_q_block")?;
            one_of(cx.attrs, "p", Some("normalized"), &["normalized", "online"])?;
            granularity(cx, k_block)?;
            sdpa(cx)
        }
        Op::BlockSparseSdpa => {
            let s = qkv(cx)?;
            let bm = cx.arg("block_mask");
            if bm.elem != Elem::I1 {
                return Err(format!(
                    "block_mask must have element type i1, found {}",
                    bm.elem
                ));
            }
            block_mask(cx, &s)?;
            if let Some(mask) = cx.operand("mask") {
                float_or_i1("mask", mask)?;
                check_broadcasts_to("mask", mask, &s.scores(), "[B, H, N, M]")?;
            }
            Ok(vec![s.out()])
        }
        Op::SparseLinear => {
            one_of(cx.attrs, "feature_map", None, &["softmax", "elu1", "relu"])?;
            let s = qkv(cx)?;
            let bm = cx.arg("block_mask");
            if !bm.elem.is_signed_int() {
                return Err(format!(
                    "block_mask must have a signed integer element type, found {}",
                    bm.elem
                ));
            }
            block_mask(cx, &s)?;
            let (w, b) = (cx.arg("proj_w"), cx.arg("proj_b"));
            same_elem("q and proj_w", s.elem, w.elem)?;
            same_elem("q and proj_b", s.elem, b.elem)?;
            shape_is("proj_w", w, &[s.dv, s.dv], "[dv, dv]")?;
            shape_is("proj_b", b, &[s.dv], "[dv]")?;
            Ok(vec![s.out()])
        }
        Op::LinearAttention => {
            one_of(cx.attrs, "feature_map", None, &["elu1", "relu", "softmax"])?;
            non_negative(cx.attrs, "epsilon")?;
            Ok(vec![qkv(cx)?.out()])
        }
        Op::SigmoidAttention => Ok(vec![qkv(cx)?.out()]),
    }
}

/// The Q/K quantization groups of `attn.quantized_sdpa`: `granularity`, and `warp_q`,
/// which only the warp-based granularities read; per-thread groups follow the MMA
/// fragments, so `warp_q` and `k_block` are multiples of 8 there.
fn granularity(cx: &InferCx<'_>, k_block: Option<i64>) -> Result<(), String> {
    let g = one_of(
        cx.attrs,
        "granularity",
        Some("per-block"),
        &["per-block", "per-warp", "per-thread", "per-token"],
    )?;
    let warp_q = positive(cx.attrs, "warp_q")?;
    if warp_q.is_some() && !matches!(g, "per-warp" | "per-thread") {
        return Err(format!(
            "warp_q applies to the per-warp and per-thread granularities, not \"{g}\""
        ));
    }
    if g == "per-thread" {
        let w = warp_q.unwrap_or(32);
        if w % 8 != 0 {
            return Err(format!(
                "per-thread granularity needs warp_q to be a multiple of 8 (8-row MMA fragments), found {w}"
            ));
        }
        if let Some(kb) = k_block.filter(|kb| kb % 8 != 0) {
            return Err(format!(
                "per-thread granularity needs k_block to be a multiple of 8 (8-key MMA fragments), found {kb}"
            ));
        }
    }
    Ok(())
}

/// `attn.sdpa` (and `kernel.attention`): [`qkv`] plus the optional `mask`.
pub fn sdpa(cx: &InferCx<'_>) -> InferResult {
    let s = qkv(cx)?;
    if let Some(mask) = cx.operand("mask") {
        float_or_i1("mask", mask)?;
        check_broadcasts_to("mask", mask, &s.scores(), "[B, H, N, M]")?;
    }
    Ok(vec![s.out()])
}

/// Checks the `q`, `k`, `v` operands of an attention op.
pub fn qkv(cx: &InferCx<'_>) -> Result<Qkv, String> {
    let (q, k, v) = (cx.arg("q"), cx.arg("k"), cx.arg("v"));
    rank_is("q", q, 4, "[B, H, N, d]")?;
    rank_is("k", k, 4, "[B, Hkv, M, d]")?;
    rank_is("v", v, 4, "[B, Hkv, M, dv]")?;
    float("q", q)?;
    same_elem("q and k", q.elem, k.elem)?;
    same_elem("q and v", q.elem, v.elem)?;
    let pairs = [
        ("q and k batch sizes", q.shape[0], k.shape[0]),
        ("q and k head dims", q.shape[3], k.shape[3]),
        ("k and v batch sizes", k.shape[0], v.shape[0]),
        ("k and v head counts", k.shape[1], v.shape[1]),
        ("k and v sequence lengths", k.shape[2], v.shape[2]),
    ];
    for (what, a, b) in pairs {
        if a != b {
            return Err(format!("{what} differ: {a} vs {b}"));
        }
    }
    let (h, hkv) = (q.shape[1], k.shape[1]);
    if hkv == 0 || h % hkv != 0 {
        return Err(format!(
            "query heads {h} are not a multiple of key/value heads {hkv}"
        ));
    }
    Ok(Qkv {
        b: q.shape[0],
        h,
        hkv,
        n: q.shape[2],
        m: k.shape[2],
        d: q.shape[3],
        dv: v.shape[3],
        elem: q.elem,
    })
}

/// Checks the shape of `block_mask` against `block_q` / `block_k`:
/// `[B|1, H|1, ceil(N/block_q), ceil(M/block_k)]`.
fn block_mask(cx: &InferCx<'_>, s: &Qkv) -> Result<(), String> {
    let bq = positive(cx.attrs, "block_q")?.expect("verified: 'block_q' is required");
    let bk = positive(cx.attrs, "block_k")?.expect("verified: 'block_k' is required");
    let bm = cx.arg("block_mask");
    let layout = "[B|1, H|1, ceil(N/block_q), ceil(M/block_k)]";
    rank_is("block_mask", bm, 4, layout)?;
    let (nb, mb) = (ceil_div(s.n, bq), ceil_div(s.m, bk));
    let fits = |got: i64, want: i64| got == want || got == 1;
    let got = &bm.shape;
    if !(fits(got[0], s.b) && fits(got[1], s.h) && got[2] == nb && got[3] == mb) {
        let or_one = |d: i64| {
            if d == 1 {
                "1".to_string()
            } else {
                format!("{d}|1")
            }
        };
        return Err(format!(
            "block_mask shape {} does not match {layout} = [{}, {}, {nb}, {mb}]",
            dims(got),
            or_one(s.b),
            or_one(s.h)
        ));
    }
    Ok(())
}
