//! `attn.quantized_sdpa`: a SageAttention-style emulation (APPROX; techniques.md §1.1–1.2).
//!
//! Per batch `b`, query head `h` and its KV head `g`, all in `f64`:
//!
//! 1. **K smoothing** (`smooth_k`): `K' = K - mean_tok(K)`, the mean over all `M` keys of
//!    `(b, g)`. Exact under softmax (identity I1).
//! 2. **Q smoothing** (`smooth_q`): each block of `q_block` consecutive queries (the last
//!    one may be shorter) subtracts its token mean `q̄`, and `ΔS_ij = scale · q̄ · K'_j` (the
//!    unquantized smoothed keys) is added back to the scores (identity I2).
//! 3. **Q/K quantization**, symmetric per block of `q_block` queries / `k_block` keys (all
//!    channels of the block): `δ = max|x| / R` (`δ = 1` for an all-zero block) and
//!    `x̂ = rnd(x / δ)`: `i8` `R = 127`, round half to even, clamp to ±127; `i4` `R = 7`,
//!    clamp to ±7; `f8` `R = 448`, rounded to `f8E4M3FN`.
//! 4. `S_ij = scale · (δ_Q(i) · δ_K(j) · Σ_c q̂_ic k̂_jc) + ΔS_ij + mask_ij`, with `causal`
//!    and the mask as in `attn.sdpa`; `P = softmax_row(S)` over the visible keys (a row
//!    with none is 0).
//! 5. **P·V** by `pv`: `"f16"` rounds `P` and `V` to `f16` and accumulates in `f64`;
//!    `"f8"` uses `P̃ = e4m3(448 · P) / 448` and `V` per channel (over the `M` tokens of
//!    `(b, g)`) `δ_V = max|V| / 448`, `V̂ = e4m3(V / δ_V)`, `O = (P̃ V̂) · δ_V`; `"i8"` uses
//!    `P̂ = rnd(127 · P) / 127` and `V` per channel `i8` symmetric (`R = 127`),
//!    `O = (P̂ V̂) · δ_V`. An all-zero channel has `δ_V = 1`.

use super::{dot, softmax_rows, Dims, Mask};
use crate::interp::{EvalCx, Tensor};
use crate::ir::Elem;
use crate::numeric::{round_half_even, round_to};

/// The Q/K (and V) quantized formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    I8,
    I4,
    F8,
}

impl Format {
    /// The largest representable magnitude, which `max|x|` maps to.
    fn range(self) -> f64 {
        match self {
            Format::I8 => 127.0,
            Format::I4 => 7.0,
            Format::F8 => 448.0,
        }
    }

    /// Rounds a value already divided by its scale onto the format's grid.
    fn round(self, v: f64) -> f64 {
        match self {
            Format::I8 | Format::I4 => {
                let r = self.range();
                round_half_even(v).clamp(-r, r)
            }
            Format::F8 => round_to(v, Elem::F8E4M3FN),
        }
    }
}

/// Quantizes `rows` rows of width `width` symmetrically per block of `block` rows: the
/// quantized values, and the scale `δ` of each row's block.
fn quantize_blocks(
    x: &[f64],
    rows: usize,
    width: usize,
    block: usize,
    f: Format,
) -> (Vec<f64>, Vec<f64>) {
    let mut xq = vec![0.0; rows * width];
    let mut deltas = vec![0.0; rows];
    let mut start = 0;
    while start < rows {
        let end = (start + block).min(rows);
        let span = start * width..end * width;
        let amax = x[span.clone()].iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let delta = if amax == 0.0 { 1.0 } else { amax / f.range() };
        for i in span {
            xq[i] = f.round(x[i] / delta);
        }
        deltas[start..end].fill(delta);
        start = end;
    }
    (xq, deltas)
}

/// Subtracts from each block of `block` rows its column means; returns the means per row.
fn center_blocks(x: &mut [f64], rows: usize, width: usize, block: usize) -> Vec<Vec<f64>> {
    let mut means = Vec::with_capacity(rows);
    let mut start = 0;
    while start < rows {
        let end = (start + block).min(rows);
        let mut mean = vec![0.0; width];
        for r in start..end {
            for (c, m) in mean.iter_mut().enumerate() {
                *m += x[r * width + c];
            }
        }
        for m in &mut mean {
            *m /= (end - start) as f64;
        }
        for r in start..end {
            for (c, m) in mean.iter().enumerate() {
                x[r * width + c] -= m;
            }
            means.push(mean.clone());
        }
        start = end;
    }
    means
}

/// The per-KV-head state: smoothed keys, their quantization, and the prepared values.
struct KvHead {
    /// `K'` (`M × d`), unquantized.
    k: Vec<f64>,
    kq: Vec<f64>,
    kdelta: Vec<f64>,
    /// `V` as the P·V product reads it (`M × dv`): rounded to f16, or quantized.
    v: Vec<f64>,
    /// The per-channel scale of `v` (1 for `"f16"`).
    vdelta: Vec<f64>,
}

fn pv_format(pv: &str) -> Result<Option<Format>, String> {
    match pv {
        "f16" => Ok(None),
        "f8" => Ok(Some(Format::F8)),
        "i8" => Ok(Some(Format::I8)),
        other => Err(format!(
            "pv must be \"f16\", \"f8\" or \"i8\", not \"{other}\""
        )),
    }
}

fn positive(cx: &EvalCx<'_>, name: &str) -> Result<usize, String> {
    let v = cx.int(name)?;
    if v <= 0 {
        return Err(format!("{name} must be positive, found {v}"));
    }
    Ok(v as usize)
}

/// Evaluates `attn.quantized_sdpa`.
pub(in crate::interp) fn quantized_sdpa(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (q, k, v) = (cx.arg(0)?, cx.arg(1)?, cx.arg(2)?);
    let dims = Dims::of(q, k, v)?;
    let mask = Mask::new(cx.opt_arg(3), &dims)?;
    let (scale, causal) = (cx.float("scale")?, cx.bool("causal")?);
    let qk = match cx.str("qk")? {
        "i8" => Format::I8,
        "i4" => Format::I4,
        "f8" => Format::F8,
        other => {
            return Err(format!(
                "qk must be \"i8\", \"i4\" or \"f8\", not \"{other}\""
            ))
        }
    };
    let pv = pv_format(cx.str("pv")?)?;
    let (q_block, k_block) = (positive(cx, "q_block")?, positive(cx, "k_block")?);
    let (smooth_q, smooth_k) = (cx.bool("smooth_q")?, cx.bool("smooth_k")?);
    let (n, m, d, dv) = (dims.n, dims.m, dims.d, dims.dv);

    let mut heads = Vec::with_capacity(dims.b * dims.hkv);
    for b in 0..dims.b {
        for g in 0..dims.hkv {
            let mut kk = dims.k(k, b, g).to_vec();
            if smooth_k {
                center_blocks(&mut kk, m, d, m.max(1));
            }
            let (kq, kdelta) = quantize_blocks(&kk, m, d, k_block, qk);
            let (vv, vdelta) = prepare_v(dims.v(v, b, g), m, dv, pv);
            heads.push(KvHead {
                k: kk,
                kq,
                kdelta,
                v: vv,
                vdelta,
            });
        }
    }

    let data = dims.per_head(|b, h, g| {
        let kv = &heads[b * dims.hkv + g];
        let mut qq = dims.q(q, b, h).to_vec();
        let qmeans = if smooth_q {
            Some(center_blocks(&mut qq, n, d, q_block))
        } else {
            None
        };
        let (qq, qdelta) = quantize_blocks(&qq, n, d, q_block, qk);
        let mut s = vec![0.0; n * m];
        for i in 0..n {
            for j in 0..m {
                let raw = dot(&qq[i * d..(i + 1) * d], &kv.kq[j * d..(j + 1) * d]);
                let mut sij = scale * (qdelta[i] * kv.kdelta[j] * raw);
                if let Some(means) = &qmeans {
                    sij += scale * dot(&means[i], &kv.k[j * d..(j + 1) * d]);
                }
                s[i * m + j] = sij;
            }
        }
        mask.apply(&mut s, &dims, b, h, causal);
        softmax_rows(&mut s, m);
        Ok(pv_product(&s, kv, n, m, dv, pv))
    })?;
    cx.output(0, &dims.out_shape(), data)
}

/// `V` as the P·V product reads it, and its per-channel scales.
fn prepare_v(v: &[f64], m: usize, dv: usize, pv: Option<Format>) -> (Vec<f64>, Vec<f64>) {
    let Some(f) = pv else {
        return (
            v.iter().map(|&x| round_to(x, Elem::F16)).collect(),
            vec![1.0; dv],
        );
    };
    let mut delta = vec![1.0; dv];
    for (c, dl) in delta.iter_mut().enumerate() {
        let amax = (0..m).fold(0.0f64, |a, j| a.max(v[j * dv + c].abs()));
        if amax != 0.0 {
            *dl = amax / f.range();
        }
    }
    let vq = (0..m * dv).map(|i| f.round(v[i] / delta[i % dv])).collect();
    (vq, delta)
}

/// `O = (P̂ V̂) · δ_V` with `P̂` rounded as `pv` says.
fn pv_product(
    p: &[f64],
    kv: &KvHead,
    n: usize,
    m: usize,
    dv: usize,
    pv: Option<Format>,
) -> Vec<f64> {
    let ph: Vec<f64> = match pv {
        None => p.iter().map(|&x| round_to(x, Elem::F16)).collect(),
        Some(Format::F8) => p
            .iter()
            .map(|&x| round_to(x * 448.0, Elem::F8E4M3FN) / 448.0)
            .collect(),
        Some(_) => p
            .iter()
            .map(|&x| round_half_even(x * 127.0) / 127.0)
            .collect(),
    };
    let mut out = vec![0.0; n * dv];
    for i in 0..n {
        for c in 0..dv {
            let acc: f64 = (0..m).map(|j| ph[i * m + j] * kv.v[j * dv + c]).sum();
            out[i * dv + c] = acc * kv.vdelta[c];
        }
    }
    out
}
