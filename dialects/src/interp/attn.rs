//! Reference semantics of the `attn` dialect.
//!
//! Layout (see `attn/ops.rs`): `q [B, H, N, d]`, `k [B, Hkv, M, d]`, `v [B, Hkv, M, dv]`,
//! result `[B, H, N, dv]`; query head `h` reads KV head `h / (H / Hkv)`. Everything is
//! computed in `f64` per `(batch, query head)` and rounded once to the result type. Choices
//! the table leaves open, fixed here:
//!
//! - a key is *hidden* from a query when `causal` hides it (`j > i + M - N`), when an `i1`
//!   mask is false there, when a float mask (or the score) is `-inf` there, or, for the
//!   block ops, when its block is not selected. Softmax runs over the visible keys only;
//!   **a row with every key hidden outputs 0** (not NaN), for every softmax-based op.
//!   A float mask of finite values (such as the lowest finite value) is only added.
//! - `sparse_linear`: block `(i / block_q, j / block_k)` of `block_mask` is critical (1),
//!   marginal (0) or negligible (-1); other values are an error. There is no causal
//!   masking. `Oˢ` is softmax attention over the critical keys; `Oˡ_i = φ(q_i) H / (φ(q_i) · Z)`
//!   with `H = Σ φ(k_j)ᵀ v_j`, `Z = Σ φ(k_j)` over the marginal keys of the query's block
//!   (`φ` row-wise on unscaled `q` and `k`); `O = Oˢ + Oˡ·proj_wᵀ + proj_b`. A row with no
//!   critical key has `Oˢ = 0`; a row with no marginal key, or whose denominator
//!   `φ(q_i) · Z` is 0 (possible with `relu`), has `Oˡ = 0`.
//! - `linear_attention` uses the same feature maps; with `causal` query `i` sees the keys
//!   `j ≤ i + M - N` (prefix sums). A row whose denominator `φ(q_i) · Σ φ(k_j) + epsilon`
//!   is 0 (no visible key and `epsilon = 0`, or `relu` features) outputs 0.
//! - `sigmoid_attention` weighs each visible key by `σ(scale · q·k + bias)`; hidden keys
//!   weigh 0, and there is no normalization.
//! - feature maps: `softmax` over the head dim, `elu1(x) = x + 1` for `x > 0` and `e^x`
//!   otherwise, `relu(x) = max(x, 0)`.
//!
//! `quantized_sdpa` (APPROX) lives in [`quant`].

mod quant;

use super::util::{dims_str, softmax_lane};
use super::{EvalCx, EvalResult, Tensor};
use crate::attn::Op;

/// Evaluates one `attn` op.
pub fn eval(op: Op, cx: &EvalCx<'_>) -> EvalResult {
    let t = match op {
        Op::Sdpa => sdpa(cx)?,
        Op::QuantizedSdpa => quant::quantized_sdpa(cx)?,
        Op::BlockSparseSdpa => block_sparse_sdpa(cx)?,
        Op::SparseLinear => sparse_linear(cx)?,
        Op::LinearAttention => linear_attention(cx)?,
        Op::SigmoidAttention => sigmoid_attention(cx)?,
    };
    Ok(vec![t])
}

/// The dims of an attention problem.
#[derive(Clone, Copy, Debug)]
pub(super) struct Dims {
    pub b: usize,
    pub h: usize,
    pub hkv: usize,
    pub n: usize,
    pub m: usize,
    pub d: usize,
    pub dv: usize,
}

impl Dims {
    /// Checks `q`, `k`, `v` against the dialect's layout.
    pub fn of(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Dims, String> {
        let (sq, sk, sv) = (q.dims(), k.dims(), v.dims());
        if sq.len() != 4 || sk.len() != 4 || sv.len() != 4 {
            return Err(format!(
                "q, k, v must have rank 4, found {}, {}, {}",
                dims_str(&sq),
                dims_str(&sk),
                dims_str(&sv)
            ));
        }
        let ok = sq[0] == sk[0]
            && sk[0] == sv[0]
            && sq[3] == sk[3]
            && sk[1] == sv[1]
            && sk[2] == sv[2]
            && sk[1] > 0
            && sq[1] % sk[1] == 0;
        if !ok {
            return Err(format!(
                "q {}, k {}, v {} do not form [B, H, N, d], [B, Hkv, M, d], [B, Hkv, M, dv] with Hkv dividing H",
                dims_str(&sq),
                dims_str(&sk),
                dims_str(&sv)
            ));
        }
        Ok(Dims {
            b: sq[0],
            h: sq[1],
            hkv: sk[1],
            n: sq[2],
            m: sk[2],
            d: sq[3],
            dv: sv[3],
        })
    }

    /// The KV head query head `h` reads.
    pub fn kv_head(&self, h: usize) -> usize {
        h / (self.h / self.hkv)
    }

    /// The `N × d` query rows of `(b, h)`.
    pub fn q<'t>(&self, q: &'t Tensor, b: usize, h: usize) -> &'t [f64] {
        let len = self.n * self.d;
        let at = (b * self.h + h) * len;
        &q.data[at..at + len]
    }

    /// The `M × d` key rows of `(b, g)`.
    pub fn k<'t>(&self, k: &'t Tensor, b: usize, g: usize) -> &'t [f64] {
        let len = self.m * self.d;
        let at = (b * self.hkv + g) * len;
        &k.data[at..at + len]
    }

    /// The `M × dv` value rows of `(b, g)`.
    pub fn v<'t>(&self, v: &'t Tensor, b: usize, g: usize) -> &'t [f64] {
        let len = self.m * self.dv;
        let at = (b * self.hkv + g) * len;
        &v.data[at..at + len]
    }

    /// Whether `causal` hides key `j` from query `i` (`j > i + M - N`).
    pub fn causal_hides(&self, i: usize, j: usize) -> bool {
        j + self.n > i + self.m
    }

    /// The result shape `[B, H, N, dv]`.
    pub fn out_shape(&self) -> [usize; 4] {
        [self.b, self.h, self.n, self.dv]
    }

    /// Concatenates `f(b, h, g)` (each `N × dv`) over `(b, h)` into the result data.
    pub fn per_head(
        &self,
        mut f: impl FnMut(usize, usize, usize) -> Result<Vec<f64>, String>,
    ) -> Result<Vec<f64>, String> {
        let mut out = Vec::with_capacity(self.b * self.h * self.n * self.dv);
        for b in 0..self.b {
            for h in 0..self.h {
                let o = f(b, h, self.kv_head(h))?;
                debug_assert_eq!(o.len(), self.n * self.dv);
                out.extend(o);
            }
        }
        Ok(out)
    }
}

/// An optional `mask` operand broadcast to `[B, H, N, M]`.
pub(super) struct Mask<'t> {
    /// Flat mask index of each score position; empty when there is no mask.
    index: Vec<usize>,
    data: &'t [f64],
    /// Float masks add; `i1` masks keep where true.
    additive: bool,
}

impl<'t> Mask<'t> {
    pub fn new(mask: Option<&'t Tensor>, dims: &Dims) -> Result<Mask<'t>, String> {
        let Some(mask) = mask else {
            return Ok(Mask {
                index: Vec::new(),
                data: &[],
                additive: true,
            });
        };
        let to = [dims.b, dims.h, dims.n, dims.m];
        let index =
            super::util::broadcast_index(&mask.dims(), &to).map_err(|e| format!("mask: {e}"))?;
        Ok(Mask {
            index,
            data: &mask.data,
            additive: mask.ty.elem.is_float(),
        })
    }

    /// Applies the mask and causality to the `N × M` scores of `(b, h)`: hidden entries
    /// become `-inf`, float mask values are added.
    pub fn apply(&self, s: &mut [f64], dims: &Dims, b: usize, h: usize, causal: bool) {
        let base = (b * dims.h + h) * dims.n * dims.m;
        for i in 0..dims.n {
            for j in 0..dims.m {
                let at = i * dims.m + j;
                if causal && dims.causal_hides(i, j) {
                    s[at] = f64::NEG_INFINITY;
                    continue;
                }
                if let Some(&mi) = self.index.get(base + at) {
                    let mv = self.data[mi];
                    if self.additive {
                        s[at] += mv;
                    } else if mv == 0.0 {
                        s[at] = f64::NEG_INFINITY;
                    }
                }
            }
        }
    }
}

/// `scale · q_i · k_j` for the `N × M` block of `(b, h)` reading KV head `g`.
pub(super) fn scores(
    q: &Tensor,
    k: &Tensor,
    dims: &Dims,
    b: usize,
    h: usize,
    g: usize,
    scale: f64,
) -> Vec<f64> {
    let (qs, ks) = (dims.q(q, b, h), dims.k(k, b, g));
    let d = dims.d;
    let mut s = Vec::with_capacity(dims.n * dims.m);
    for i in 0..dims.n {
        for j in 0..dims.m {
            s.push(scale * dot(&qs[i * d..(i + 1) * d], &ks[j * d..(j + 1) * d]));
        }
    }
    s
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Softmax of each row (`m` wide) in place; `-inf` entries are hidden and a row with every
/// entry hidden becomes all zeros.
pub(super) fn softmax_rows(s: &mut [f64], m: usize) {
    if m == 0 {
        return;
    }
    for row in s.chunks_mut(m) {
        if row.iter().all(|&x| x == f64::NEG_INFINITY) {
            row.fill(0.0);
        } else {
            softmax_lane(row);
        }
    }
}

/// `p · v` for an `n × m` weight block and `m × dv` values, accumulated in key order.
pub(super) fn weighted_sum(p: &[f64], v: &[f64], n: usize, m: usize, dv: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * dv];
    for i in 0..n {
        for c in 0..dv {
            out[i * dv + c] = (0..m).map(|j| p[i * m + j] * v[j * dv + c]).sum();
        }
    }
    out
}

/// `attn.sdpa`, also `kernel.attention`.
pub(super) fn sdpa(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (q, k, v) = (cx.arg(0)?, cx.arg(1)?, cx.arg(2)?);
    let dims = Dims::of(q, k, v)?;
    let mask = Mask::new(cx.opt_arg(3), &dims)?;
    let (scale, causal) = (cx.float("scale")?, cx.bool("causal")?);
    let data = dims.per_head(|b, h, g| {
        let mut s = scores(q, k, &dims, b, h, g, scale);
        mask.apply(&mut s, &dims, b, h, causal);
        softmax_rows(&mut s, dims.m);
        Ok(weighted_sum(&s, dims.v(v, b, g), dims.n, dims.m, dims.dv))
    })?;
    cx.output(0, &dims.out_shape(), data)
}

/// A `[B|1, H|1, ceil(N/block_q), ceil(M/block_k)]` block mask with its block sizes.
struct Blocks<'t> {
    mask: &'t Tensor,
    /// The mask's dims `[B|1, H|1, nq, nk]`.
    shape: [usize; 4],
    bq: usize,
    bk: usize,
}

impl<'t> Blocks<'t> {
    fn new(cx: &EvalCx<'t>, mask: &'t Tensor, dims: &Dims) -> Result<Blocks<'t>, String> {
        let (bq, bk) = (cx.int("block_q")?, cx.int("block_k")?);
        if bq <= 0 || bk <= 0 {
            return Err(format!("block sizes must be positive, found {bq} and {bk}"));
        }
        let (bq, bk) = (bq as usize, bk as usize);
        let s = mask.dims();
        let want = [dims.b, dims.h, dims.n.div_ceil(bq), dims.m.div_ceil(bk)];
        let ok = s.len() == 4
            && (s[0] == want[0] || s[0] == 1)
            && (s[1] == want[1] || s[1] == 1)
            && s[2] == want[2]
            && s[3] == want[3];
        if !ok {
            return Err(format!(
                "block_mask shape {} does not match [{}|1, {}|1, {}, {}]",
                dims_str(&s),
                want[0],
                want[1],
                want[2],
                want[3]
            ));
        }
        let shape = [s[0], s[1], s[2], s[3]];
        Ok(Blocks {
            mask,
            shape,
            bq,
            bk,
        })
    }

    /// The mask value of the block holding score `(i, j)` of `(b, h)`.
    fn at(&self, b: usize, h: usize, i: usize, j: usize) -> f64 {
        let [sb, sh, nq, nk] = self.shape;
        let (b, h) = (if sb == 1 { 0 } else { b }, if sh == 1 { 0 } else { h });
        self.mask.data[((b * sh + h) * nq + i / self.bq) * nk + j / self.bk]
    }
}

fn block_sparse_sdpa(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (q, k, v) = (cx.arg(0)?, cx.arg(1)?, cx.arg(2)?);
    let dims = Dims::of(q, k, v)?;
    let blocks = Blocks::new(cx, cx.arg(3)?, &dims)?;
    let mask = Mask::new(cx.opt_arg(4), &dims)?;
    let (scale, causal) = (cx.float("scale")?, cx.bool("causal")?);
    let data = dims.per_head(|b, h, g| {
        let mut s = scores(q, k, &dims, b, h, g, scale);
        mask.apply(&mut s, &dims, b, h, causal);
        for i in 0..dims.n {
            for j in 0..dims.m {
                if blocks.at(b, h, i, j) == 0.0 {
                    s[i * dims.m + j] = f64::NEG_INFINITY;
                }
            }
        }
        softmax_rows(&mut s, dims.m);
        Ok(weighted_sum(&s, dims.v(v, b, g), dims.n, dims.m, dims.dv))
    })?;
    cx.output(0, &dims.out_shape(), data)
}

/// A feature map applied to one row.
type FeatureMap = fn(&[f64]) -> Vec<f64>;

fn feature_map(name: &str) -> Result<FeatureMap, String> {
    match name {
        "softmax" => Ok(|x| {
            let mut y = x.to_vec();
            softmax_lane(&mut y);
            y
        }),
        "elu1" => Ok(|x| {
            x.iter()
                .map(|&v| if v > 0.0 { v + 1.0 } else { v.exp() })
                .collect()
        }),
        "relu" => Ok(|x| x.iter().map(|&v| v.max(0.0)).collect()),
        other => Err(format!(
            "feature_map must be \"softmax\", \"elu1\" or \"relu\", not \"{other}\""
        )),
    }
}

/// `φ` of each of the `rows` rows of `x`, each `width` wide.
fn features(phi: FeatureMap, x: &[f64], rows: usize, width: usize) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|i| phi(&x[i * width..(i + 1) * width]))
        .collect()
}

/// Linear-attention state: `H = Σ φ(k_j)ᵀ v_j` (`d × dv`) and `Z = Σ φ(k_j)`.
struct LinearState {
    h: Vec<f64>,
    z: Vec<f64>,
    dv: usize,
}

impl LinearState {
    fn new(d: usize, dv: usize) -> LinearState {
        LinearState {
            h: vec![0.0; d * dv],
            z: vec![0.0; d],
            dv,
        }
    }

    fn add(&mut self, phi_k: &[f64], v: &[f64]) {
        for (e, &f) in phi_k.iter().enumerate() {
            self.z[e] += f;
            for (c, &x) in v.iter().enumerate() {
                self.h[e * self.dv + c] += f * x;
            }
        }
    }

    /// `φ(q) H / (φ(q) · Z + eps)`, or zeros when the denominator is 0.
    fn read(&self, phi_q: &[f64], eps: f64) -> Vec<f64> {
        let den = dot(phi_q, &self.z) + eps;
        if den == 0.0 {
            return vec![0.0; self.dv];
        }
        (0..self.dv)
            .map(|c| {
                phi_q
                    .iter()
                    .enumerate()
                    .map(|(e, &f)| f * self.h[e * self.dv + c])
                    .sum::<f64>()
                    / den
            })
            .collect()
    }
}

fn sparse_linear(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (q, k, v) = (cx.arg(0)?, cx.arg(1)?, cx.arg(2)?);
    let dims = Dims::of(q, k, v)?;
    let blocks = Blocks::new(cx, cx.arg(3)?, &dims)?;
    if let Some(bad) = blocks
        .mask
        .data
        .iter()
        .find(|&&x| !(x == -1.0 || x == 0.0 || x == 1.0))
    {
        return Err(format!("block_mask values must be 1, 0 or -1, found {bad}"));
    }
    let (w, bias) = (cx.arg(4)?, cx.arg(5)?);
    let dv = dims.dv;
    if w.dims() != [dv, dv] || bias.dims() != [dv] {
        return Err(format!(
            "proj_w {} and proj_b {} must be [dv, dv] and [dv] with dv = {dv}",
            dims_str(&w.dims()),
            dims_str(&bias.dims())
        ));
    }
    let scale = cx.float("scale")?;
    let phi = feature_map(cx.str("feature_map")?)?;
    let (n, m, d) = (dims.n, dims.m, dims.d);
    let data = dims.per_head(|b, h, g| {
        // Sparse branch: softmax over the critical keys.
        let mut s = scores(q, k, &dims, b, h, g, scale);
        for i in 0..n {
            for j in 0..m {
                if blocks.at(b, h, i, j) != 1.0 {
                    s[i * m + j] = f64::NEG_INFINITY;
                }
            }
        }
        softmax_rows(&mut s, m);
        let vs = dims.v(v, b, g);
        let mut out = weighted_sum(&s, vs, n, m, dv);
        // Linear branch: per query block, over its marginal key blocks.
        let phi_q = features(phi, dims.q(q, b, h), n, d);
        let phi_k = features(phi, dims.k(k, b, g), m, d);
        for qb in 0..n.div_ceil(blocks.bq) {
            let rows = qb * blocks.bq..((qb + 1) * blocks.bq).min(n);
            let mut state = LinearState::new(d, dv);
            let mut any = false;
            for j in 0..m {
                if blocks.at(b, h, rows.start, j) == 0.0 {
                    state.add(&phi_k[j], &vs[j * dv..(j + 1) * dv]);
                    any = true;
                }
            }
            for i in rows {
                let ol = if any {
                    state.read(&phi_q[i], 0.0)
                } else {
                    vec![0.0; dv]
                };
                for c in 0..dv {
                    let proj: f64 = (0..dv).map(|e| ol[e] * w.data[c * dv + e]).sum();
                    out[i * dv + c] += proj + bias.data[c];
                }
            }
        }
        Ok(out)
    })?;
    cx.output(0, &dims.out_shape(), data)
}

fn linear_attention(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (q, k, v) = (cx.arg(0)?, cx.arg(1)?, cx.arg(2)?);
    let dims = Dims::of(q, k, v)?;
    let phi = feature_map(cx.str("feature_map")?)?;
    let causal = cx.bool("causal")?;
    let eps = cx.attrs.float("epsilon").unwrap_or(0.0);
    let (n, m, d, dv) = (dims.n, dims.m, dims.d, dims.dv);
    let data = dims.per_head(|b, h, g| {
        let phi_q = features(phi, dims.q(q, b, h), n, d);
        let phi_k = features(phi, dims.k(k, b, g), m, d);
        let vs = dims.v(v, b, g);
        let mut state = LinearState::new(d, dv);
        let mut added = 0;
        let mut out = Vec::with_capacity(n * dv);
        for (i, fq) in phi_q.iter().enumerate() {
            // Keys visible to row i: all, or the prefix j ≤ i + M - N.
            let visible = if causal {
                (i + m + 1).saturating_sub(n).min(m)
            } else {
                m
            };
            while added < visible {
                state.add(&phi_k[added], &vs[added * dv..(added + 1) * dv]);
                added += 1;
            }
            out.extend(state.read(fq, eps));
        }
        Ok(out)
    })?;
    cx.output(0, &dims.out_shape(), data)
}

fn sigmoid_attention(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (q, k, v) = (cx.arg(0)?, cx.arg(1)?, cx.arg(2)?);
    let dims = Dims::of(q, k, v)?;
    let (scale, bias, causal) = (cx.float("scale")?, cx.float("bias")?, cx.bool("causal")?);
    let data = dims.per_head(|b, h, g| {
        let mut s = scores(q, k, &dims, b, h, g, scale);
        for i in 0..dims.n {
            for j in 0..dims.m {
                let at = i * dims.m + j;
                s[at] = if causal && dims.causal_hides(i, j) {
                    0.0
                } else {
                    1.0 / (1.0 + (-(s[at] + bias)).exp())
                };
            }
        }
        Ok(weighted_sum(&s, dims.v(v, b, g), dims.n, dims.m, dims.dv))
    })?;
    cx.output(0, &dims.out_shape(), data)
}
