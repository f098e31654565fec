//! `attn.quantized_sdpa`: a SageAttention-style emulation (APPROX; techniques.md §1.1–1.2).
//!
//! Per batch `b`, query head `h` and its KV head `g`, all in `f64`:
//!
//! 1. **K smoothing** (`smooth_k`): `K' = K - mean_tok(K)`, the mean over all `M` keys of
//!    `(b, g)`. Exact under softmax (identity I1).
//! 2. **Q smoothing** (`smooth_q`): each block of `smooth_q_block` consecutive queries
//!    (default `q_block`; the last block may be shorter) subtracts its token mean `q̄`, and
//!    `ΔS_ij = scale · q̄ · K'_j` (the unquantized smoothed keys) is added back to the scores
//!    (identity I2). The smoothing blocks are independent of the quantization groups.
//! 3. **Q/K quantization**, symmetric per group (all channels of the group's rows):
//!    `δ = max|x| / R` (`δ = 1` for an all-zero group) and `x̂ = rnd(x / δ)`: `i8` `R = 127`,
//!    round half to even, clamp to ±127; `i4` `R = 7`, clamp to ±7; `f8` `R = 448`, rounded
//!    to `f8E4M3FN`. The groups (`granularity`, techniques.md §1.2's table) of query `i`
//!    and key `j`:
//!    * `"per-block"` (default): `i / q_block`, `j / k_block`;
//!    * `"per-warp"`: `i / warp_q` (`warp_q` defaults to 32), `j / k_block`;
//!    * `"per-thread"`: `(i / warp_q, i mod 8)` — in each `warp_q` slab the rows
//!      `{g, g+8, g+16, …}` — and `(j / k_block, (j mod 8) / 2)` — in each `k_block` block
//!      the keys `{8u+2t, 8u+2t+1}`, `t = 0..3` (`warp_q`, `k_block` multiples of 8);
//!    * `"per-token"`: `i`, `j`.
//! 4. `S_ij = scale · (δ_Q(i) · δ_K(j) · Σ_c q̂_ic k̂_jc) + ΔS_ij + mask_ij`, with `causal`
//!    and the mask as in `attn.sdpa`.
//! 5. **P** by `p`. `"normalized"` (default): `P = softmax_row(S)` over the visible keys
//!    (a row with none is 0), then rounded as `pv` says: `"f16"` `P̂ = f16(P)`; `"f8"`
//!    `P̂ = e4m3(448 · P) / 448`; `"i8"` `P̂ = rnd(127 · P) / 127`. `"online"`: the keys
//!    are visited in blocks of `k_block` with a running row max `m_i` (FlashAttention);
//!    `P̃_ij = exp(S_ij - m_i)`, `m_i` the max over the blocks visited so far, is rounded to
//!    `f16(P̃)`, `e4m3(448 · P̃)` or `rnd(127 · P̃)`; the accumulator and the denominator
//!    `l_i` are rescaled by `exp(m_old - m_new)` when the max grows; `l_i` sums the rounded
//!    `P̂` for `"f8"`/`"i8"` (techniques.md §1.6 T1.3: FP8 paths) and the unrounded `P̃`
//!    for `"f16"`; `O_i = acc_i / l_i` (a row with no visible key is 0).
//! 6. **V** by `pv`: `"f16"` rounds `V` to `f16` (accumulation in `f64`); `"f8"` per
//!    channel (over the `M` tokens of `(b, g)`) `δ_V = max|V| / 448`, `V̂ = e4m3(V / δ_V)`;
//!    `"i8"` per channel `i8` symmetric (`R = 127`); `O = (P̂ V̂) · δ_V`. An all-zero channel
//!    has `δ_V = 1`.

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

/// The Q/K quantization groups of techniques.md §1.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Granularity {
    /// Consecutive blocks of `q_block` queries / `k_block` keys.
    Block,
    /// Slabs of `warp_q` queries; keys per block.
    Warp,
    /// SageAttention2's MMA-fragment groups inside the warp slabs / key blocks.
    Thread,
    /// One token per group.
    Token,
}

/// The group sizes an op's attributes give.
#[derive(Clone, Copy, Debug)]
struct Groups {
    granularity: Granularity,
    q_block: usize,
    k_block: usize,
    warp_q: usize,
}

impl Groups {
    /// The quantization group of query row `i`.
    fn q_group(&self, i: usize) -> usize {
        match self.granularity {
            Granularity::Block => i / self.q_block,
            Granularity::Warp => i / self.warp_q,
            Granularity::Thread => (i / self.warp_q) * 8 + i % 8,
            Granularity::Token => i,
        }
    }

    /// The quantization group of key row `j`.
    fn k_group(&self, j: usize) -> usize {
        match self.granularity {
            Granularity::Block | Granularity::Warp => j / self.k_block,
            Granularity::Thread => (j / self.k_block) * 4 + (j % 8) / 2,
            Granularity::Token => j,
        }
    }
}

/// Quantizes `rows` rows of width `width` symmetrically per group, row `r` in group
/// `group(r)`: the quantized values, and the scale `δ` of each row's group.
fn quantize_groups(
    x: &[f64],
    rows: usize,
    width: usize,
    group: impl Fn(usize) -> usize,
    f: Format,
) -> (Vec<f64>, Vec<f64>) {
    let ids: Vec<usize> = (0..rows).map(group).collect();
    let count = ids.iter().max().map_or(0, |&g| g + 1);
    let mut amax = vec![0.0f64; count];
    for (r, &g) in ids.iter().enumerate() {
        for v in &x[r * width..(r + 1) * width] {
            amax[g] = amax[g].max(v.abs());
        }
    }
    let delta: Vec<f64> = amax
        .iter()
        .map(|&a| if a == 0.0 { 1.0 } else { a / f.range() })
        .collect();
    let mut xq = vec![0.0; rows * width];
    let mut deltas = vec![0.0; rows];
    for (r, &g) in ids.iter().enumerate() {
        deltas[r] = delta[g];
        for i in r * width..(r + 1) * width {
            xq[i] = f.round(x[i] / delta[g]);
        }
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

/// An optional positive integer attribute, `default` when absent.
fn positive_or(cx: &EvalCx<'_>, name: &str, default: usize) -> Result<usize, String> {
    match cx.attrs.get(name) {
        None => Ok(default),
        Some(_) => positive(cx, name),
    }
}

/// An optional string attribute, `default` when absent.
fn str_or<'a>(cx: &EvalCx<'a>, name: &str, default: &'a str) -> Result<&'a str, String> {
    match cx.attrs.get(name) {
        None => Ok(default),
        Some(_) => cx.str(name),
    }
}

/// The quantization groups of the op.
fn groups(cx: &EvalCx<'_>) -> Result<Groups, String> {
    let (q_block, k_block) = (positive(cx, "q_block")?, positive(cx, "k_block")?);
    let warp_q = positive_or(cx, "warp_q", 32)?;
    let granularity = match str_or(cx, "granularity", "per-block")? {
        "per-block" => Granularity::Block,
        "per-warp" => Granularity::Warp,
        "per-thread" => Granularity::Thread,
        "per-token" => Granularity::Token,
        other => {
            return Err(format!(
                "granularity must be \"per-block\", \"per-warp\", \"per-thread\" or \"per-token\", not \"{other}\""
            ))
        }
    };
    if granularity == Granularity::Thread && (warp_q % 8 != 0 || k_block % 8 != 0) {
        return Err(format!(
            "per-thread granularity needs warp_q and k_block to be multiples of 8, found {warp_q} and {k_block}"
        ));
    }
    Ok(Groups {
        granularity,
        q_block,
        k_block,
        warp_q,
    })
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
    let groups = groups(cx)?;
    let smooth_q_block = positive_or(cx, "smooth_q_block", groups.q_block)?;
    let online = match str_or(cx, "p", "normalized")? {
        "normalized" => false,
        "online" => true,
        other => {
            return Err(format!(
                "p must be \"normalized\" or \"online\", not \"{other}\""
            ))
        }
    };
    let (smooth_q, smooth_k) = (cx.bool("smooth_q")?, cx.bool("smooth_k")?);
    let (n, m, d, dv) = (dims.n, dims.m, dims.d, dims.dv);

    let mut heads = Vec::with_capacity(dims.b * dims.hkv);
    for b in 0..dims.b {
        for g in 0..dims.hkv {
            let mut kk = dims.k(k, b, g).to_vec();
            if smooth_k {
                center_blocks(&mut kk, m, d, m.max(1));
            }
            let (kq, kdelta) = quantize_groups(&kk, m, d, |j| groups.k_group(j), qk);
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
            Some(center_blocks(&mut qq, n, d, smooth_q_block))
        } else {
            None
        };
        let (qq, qdelta) = quantize_groups(&qq, n, d, |i| groups.q_group(i), qk);
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
        if online {
            return Ok(online_pv(&s, kv, n, m, dv, groups.k_block, pv));
        }
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

/// `P̃` rounded for the P·V product (scaled by 448 for `f8`, by 127 for `i8`), and what it
/// adds to the denominator (the rounded value on the FP8/INT8 paths).
fn round_p_tilde(x: f64, pv: Option<Format>) -> (f64, f64) {
    match pv {
        None => (round_to(x, Elem::F16), x),
        Some(Format::F8) => {
            let p = round_to(x * 448.0, Elem::F8E4M3FN);
            (p, p)
        }
        Some(_) => {
            let p = round_half_even(x * 127.0);
            (p, p)
        }
    }
}

/// The blocked online softmax·V of `p = "online"` (module docs, step 5): keys in blocks of
/// `block`, a running max per row, `O = (Σ P̂ V̂ / l) · δ_V`.
fn online_pv(
    s: &[f64],
    kv: &KvHead,
    n: usize,
    m: usize,
    dv: usize,
    block: usize,
    pv: Option<Format>,
) -> Vec<f64> {
    let mut out = vec![0.0; n * dv];
    for i in 0..n {
        let row = &s[i * m..(i + 1) * m];
        let mut run_max = f64::NEG_INFINITY;
        let mut l = 0.0;
        let mut acc = vec![0.0; dv];
        let mut start = 0;
        while start < m {
            let end = (start + block).min(m);
            let new_max = row[start..end].iter().fold(run_max, |a, &x| a.max(x));
            if new_max > run_max {
                // exp(-inf) = 0: nothing accumulated before the first visible key.
                let rescale = (run_max - new_max).exp();
                l *= rescale;
                acc.iter_mut().for_each(|a| *a *= rescale);
                run_max = new_max;
            }
            if run_max == f64::NEG_INFINITY {
                start = end;
                continue;
            }
            for (j, &sij) in (start..end).zip(&row[start..end]) {
                let (ph, den) = round_p_tilde((sij - run_max).exp(), pv);
                l += den;
                let vrow = &kv.v[j * dv..(j + 1) * dv];
                for (a, &vv) in acc.iter_mut().zip(vrow) {
                    *a += ph * vv;
                }
            }
            start = end;
        }
        if l > 0.0 {
            for c in 0..dv {
                out[i * dv + c] = acc[c] / l * kv.vdelta[c];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn groups_of(n: usize, id: impl Fn(usize) -> usize) -> BTreeSet<Vec<usize>> {
        let mut by_id = std::collections::BTreeMap::<usize, Vec<usize>>::new();
        for i in 0..n {
            by_id.entry(id(i)).or_default().push(i);
        }
        by_id.into_values().collect()
    }

    fn groups(granularity: Granularity) -> Groups {
        Groups {
            granularity,
            q_block: 128,
            k_block: 64,
            warp_q: 32,
        }
    }

    /// techniques.md §1.2: per-thread Q groups are `{g, g+8, g+16, g+24}` inside each
    /// 32-row slab; K groups `{8j+2t, 8j+2t+1 : j = 0..7}` inside each 64-key block.
    #[test]
    fn per_thread_groups_are_the_mma_fragments() {
        let g = groups(Granularity::Thread);
        let mut want_q = BTreeSet::new();
        for slab in [0, 32, 64] {
            for r in 0..8 {
                want_q.insert(vec![slab + r, slab + r + 8, slab + r + 16, slab + r + 24]);
            }
        }
        assert_eq!(groups_of(96, |i| g.q_group(i)), want_q);
        let mut want_k = BTreeSet::new();
        for block in [0, 64] {
            for t in 0..4 {
                let mut keys: Vec<usize> = (0..8)
                    .flat_map(|j| [block + 8 * j + 2 * t, block + 8 * j + 2 * t + 1])
                    .collect();
                keys.sort_unstable();
                want_k.insert(keys);
            }
        }
        assert_eq!(groups_of(128, |j| g.k_group(j)), want_k);
        // A partial last slab keeps the rule on the rows it has.
        let tail = groups_of(36, |i| g.q_group(i));
        assert!(tail.contains(&vec![32]) && tail.contains(&vec![3, 11, 19, 27]));
    }

    #[test]
    fn other_granularities_are_consecutive_runs() {
        let run = |n: usize, size: usize| -> BTreeSet<Vec<usize>> {
            (0..n)
                .step_by(size)
                .map(|s| (s..(s + size).min(n)).collect())
                .collect()
        };
        let w = groups(Granularity::Warp);
        assert_eq!(groups_of(100, |i| w.q_group(i)), run(100, 32));
        assert_eq!(groups_of(100, |j| w.k_group(j)), run(100, 64));
        let b = groups(Granularity::Block);
        assert_eq!(groups_of(300, |i| b.q_group(i)), run(300, 128));
        let t = groups(Granularity::Token);
        assert_eq!(groups_of(5, |i| t.q_group(i)), run(5, 1));
        assert_eq!(groups_of(5, |j| t.k_group(j)), run(5, 1));
    }

    #[test]
    fn group_scales_come_from_the_group_max() {
        // Rows 0 and 2 in one group (max 14), row 1 alone (max 3.5): δ = max|x| / 7;
        // 1 / 2 = 0.5 rounds half to even.
        let x = [1.0, -14.0, 3.5, 0.7, 0.0, 0.0];
        let (xq, d) = quantize_groups(&x, 3, 2, |r| r % 2, Format::I4);
        assert_eq!(d, vec![2.0, 0.5, 2.0]);
        assert_eq!(xq, vec![0.0, -7.0, 7.0, 1.0, 0.0, 0.0]);
    }

    fn head(v: Vec<f64>) -> KvHead {
        KvHead {
            k: vec![],
            kq: vec![],
            kdelta: vec![],
            v,
            vdelta: vec![1.0],
        }
    }

    /// Online P̃ by hand: scores `[-1, 0]`, `V = [1, 0]`.
    #[test]
    fn online_p_rescales_and_sums_the_rounded_p() {
        let s = [-1.0, 0.0];
        let kv = head(vec![1.0, 0.0]);
        let e = std::f64::consts::E;
        // One key per block: each P̃ is exp(0) = 1 when visited (448 in e4m3, exact); the
        // first is rescaled by e^-1 when the max grows: O = e^-1 / (e^-1 + 1).
        let o = online_pv(&s, &kv, 1, 2, 1, 1, Some(Format::F8));
        assert!((o[0] - 1.0 / (1.0 + e)).abs() < 1e-15, "{o:?}");
        // One block: P̃ = [e^-1, 1]; e4m3(448/e = 164.8) = 160, e4m3(448) = 448, and the
        // denominator sums the rounded values.
        let o = online_pv(&s, &kv, 1, 2, 1, 2, Some(Format::F8));
        assert!((o[0] - 160.0 / 608.0).abs() < 1e-15, "{o:?}");
        // f16: rounded P̃ in the numerator, unrounded in the denominator.
        let o = online_pv(&s, &kv, 1, 2, 1, 2, None);
        let want = round_to((-1.0f64).exp(), Elem::F16) / (1.0 + (-1.0f64).exp());
        assert!((o[0] - want).abs() < 1e-15, "{o:?}");
        // A row that sees no key is 0; hidden keys add nothing.
        let hidden = [f64::NEG_INFINITY, f64::NEG_INFINITY];
        assert_eq!(online_pv(&hidden, &kv, 1, 2, 1, 1, Some(Format::F8)), [0.0]);
        let first_hidden = [f64::NEG_INFINITY, 3.0];
        assert_eq!(
            online_pv(&first_hidden, &head(vec![5.0, 2.0]), 1, 2, 1, 1, None),
            [2.0]
        );
    }
}
