//! `quantize-weights{bits=8|4 group=128 scheme=rtn|awq|gptq sym=true|false awq-tokens=256
//! damp=0.01 act-order=true calib-mask=N}`: weight quantization of `graph.linear` (techniques.md §4.1,
//! §4.4; rewrite R11), APPROX.
//!
//! Rule `quantize-linear-weight` (APPROX): a `graph.weight W [out, in]` whose every use is the
//! weight operand of a `graph.linear` becomes
//! `lowbit.dequantize(graph.weight NAME.qweight, graph.weight NAME.scales[, graph.weight NAME.qzeros])`
//! feeding the same linears (a weight shared by several linears is quantized once).
//!
//! Storage (the logical, unpacked tensors; the safetensors writer packs 4-bit ones two per
//! byte, element `2i` in the low nibble):
//! - `group=0` (or `-1`): per output channel, `axis = 0`, scales `[out]`;
//! - `group=g`: per group of `g` input channels, `axis = 1, block_size = g`, scales
//!   `[out, ceil(in/g)]`. This is AutoAWQ's / GPTQ's grouping (§4.4) in `graph.linear`'s
//!   `[out, in]` orientation: their `scales [in/g, out]` is this tensor transposed.
//! - `sym=true`: `qweight` is `i8`/`i4`, `scale = max|w| / (2^(b-1) - 1)`,
//!   `q = clamp(round(w / scale), -2^(b-1), 2^(b-1) - 1)`, no zero points (Q8_0-style).
//! - `sym=false`: `qweight` is `ui8`/`ui4`, AWQ's `pseudo_quantize_tensor`:
//!   `scale = max(max - min, 1e-5) / (2^b - 1)`, `zero = clamp(-round(min / scale), 0, 2^b - 1)`,
//!   `q = clamp(round(w / scale) + zero, 0, 2^b - 1)`, `w ≈ (q - zero) · scale`; zeros stored
//!   as-is (AutoAWQ's convention, no GPTQ `-1` offset), in `qweight`'s element type.
//!
//! Scales are `f32`; each is rounded to `f32` before the weights are divided by it, so that
//! `lowbit.dequantize` reproduces exactly the values this pass chose. Rounding is half to
//! even, as `lowbit.quantize`.
//!
//! `scheme=awq` (APPROX): before rounding, for every activation read by linears that can
//! absorb a per-input-channel scale, search `s = mean_t|x|^α` (normalized by
//! `sqrt(max s · min s)`) over `α ∈ {0, 0.05, …, 0.95}` minimizing
//! `Σ_linears ‖x Wᵀ − (x / s) Q(W diag(s))ᵀ‖²` on up to `awq-tokens` calibration rows, then
//! migrate it exactly (EXACT-R, as `migrate-scales`: into the producing norm or linear, else
//! an explicit `x · (1/s)`). AWQ's clip search is not done. Needs `--calibration`.
//!
//! `scheme=gptq` (APPROX): the codes, scales and zero points of [`super::gptq`] (same storage
//! format): every calibration row of the weight's inputs (over all the linears that share the
//! weight) goes into `H = XᵀX`; `damp` is GPTQ's damping fraction, `act-order` its column
//! order. `calib-mask=N` names a parameter holding a token mask (an attention mask
//! `[batch, seq]`): calibration rows of an input with one row per mask element are left out
//! where the mask is 0 (padding tokens), other inputs keep every row (`gptq-unmasked`
//! counts those). Pair it with `rotate{where=linears}` + `fold-rotations` for GPTQ on
//! Hadamard-rotated inputs (QuIP#/QuaRot incoherence processing). Needs `--calibration`.
//!
//! Stats: `quantized`, `linears`, `awq-scaled`, `awq-identity`, `skipped-other-use`,
//! `skipped-not-weight`, `skipped-rank`; with `scheme=gptq` also `gptq-rows` (calibration rows
//! per Hessian, the largest).

use lowbit_dialects::graph::Op as G;
use lowbit_dialects::interp::Tensor;
use lowbit_dialects::ir::{Attr, Attrs, Elem, Func, Value};
use lowbit_dialects::lowbit::Op as L;
use lowbit_dialects::numeric::round_half_even;
use lowbit_dialects::Opcode;

use super::gptq::{gptq, hessian, GptqOptions};
use super::migrate_scales::{groups, migrate};
use super::{add_weight, capture, round_elem, sample_rows, stored, tensor, weight_name};
use crate::pass::{Pass, PassEnv, PassError, PassResult, Stats};
use crate::pipeline::{PassOptions, PipelineError};
use crate::util::Users;

const NAME: &str = "quantize-weights";

/// How weights are rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Round to nearest.
    Rtn,
    /// Activation-aware per-input-channel scales, then round to nearest.
    Awq,
    /// GPTQ: column by column, errors spread over the columns not yet rounded.
    Gptq,
}

/// The `quantize-weights` pass.
#[derive(Debug)]
pub struct QuantizeWeights {
    /// Bits per weight: 8 or 4.
    pub bits: u32,
    /// Input channels per group; 0 is per output channel.
    pub group: usize,
    /// Symmetric (no zero points) or asymmetric.
    pub sym: bool,
    /// Rounding scheme.
    pub scheme: Scheme,
    /// Calibration rows the AWQ search uses per activation.
    pub awq_tokens: usize,
    /// GPTQ's damping and column order.
    pub gptq: GptqOptions,
    /// The parameter holding a token mask for GPTQ's calibration rows.
    pub calib_mask: Option<usize>,
}

impl Default for QuantizeWeights {
    fn default() -> Self {
        QuantizeWeights {
            bits: 8,
            group: 128,
            sym: true,
            scheme: Scheme::Rtn,
            awq_tokens: 256,
            gptq: GptqOptions::default(),
            calib_mask: None,
        }
    }
}

/// A quantizer configuration: bits, group size (0 = whole row), symmetry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QConfig {
    /// Bits per value: 8 or 4.
    pub bits: u32,
    /// Values per group along the input dim; 0 is the whole row.
    pub group: usize,
    /// Symmetric.
    pub sym: bool,
}

/// Quantized `[out, in]` weight: integer codes, scales and zero points, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct QWeight {
    /// Codes `[out, in]`, in the range of [`QConfig::elem`].
    pub q: Vec<f64>,
    /// Scales `[out, groups]` (f32 values).
    pub scales: Vec<f64>,
    /// Zero points `[out, groups]` when asymmetric.
    pub zeros: Option<Vec<f64>>,
    /// Groups per row.
    pub groups: usize,
}

impl QConfig {
    /// The codes' element type.
    pub fn elem(&self) -> Elem {
        match (self.bits, self.sym) {
            (8, true) => Elem::I8,
            (8, false) => Elem::UI8,
            (_, true) => Elem::I4,
            (_, false) => Elem::UI4,
        }
    }

    /// Input channels per group for rows of `inn` values.
    pub fn group_len(&self, inn: usize) -> usize {
        if self.group == 0 {
            inn.max(1)
        } else {
            self.group
        }
    }

    /// Scale and zero point (0 when symmetric) of one group's values: symmetric
    /// `max|w| / (2^(b-1) - 1)` (1 for an all-zero group); asymmetric AWQ's
    /// `max(max - min, 1e-5) / (2^b - 1)` and `clamp(-round(min / scale), 0, 2^b - 1)`.
    /// The scale is rounded to f32.
    pub fn group_params(&self, vals: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
        if self.sym {
            let amax = vals.fold(0.0f64, |m, v| m.max(v.abs()));
            let s = round_elem(amax / self.qmax(), Elem::F32);
            (if s > 0.0 { s } else { 1.0 }, 0.0)
        } else {
            let mx = vals.clone().fold(f64::NEG_INFINITY, f64::max);
            let mn = vals.fold(f64::INFINITY, f64::min);
            let s = round_elem((mx - mn).max(1e-5) / self.qmax(), Elem::F32);
            (s, (-round_half_even(mn / s)).clamp(0.0, self.qmax()))
        }
    }

    /// The code of `v` under scale `s` and zero point `z` (half to even, clamped).
    pub fn code(&self, v: f64, s: f64, z: f64) -> f64 {
        if self.sym {
            round_half_even(v / s).clamp(-self.qmax() - 1.0, self.qmax())
        } else {
            (round_half_even(v / s) + z).clamp(0.0, self.qmax())
        }
    }

    /// The largest code: `2^(b-1) - 1` symmetric, `2^b - 1` asymmetric.
    fn qmax(&self) -> f64 {
        let b = if self.sym { self.bits - 1 } else { self.bits };
        ((1u32 << b) - 1) as f64
    }

    /// Quantizes `w` (`[out, in]`, row-major).
    pub fn quantize(&self, w: &[f64], out: usize, inn: usize) -> QWeight {
        let g = self.group_len(inn);
        let groups = inn.div_ceil(g);
        let mut q = vec![0.0; out * inn];
        let mut scales = Vec::with_capacity(out * groups);
        let mut zeros = Vec::with_capacity(if self.sym { 0 } else { out * groups });
        for o in 0..out {
            for k in 0..groups {
                let range = o * inn + k * g..o * inn + ((k + 1) * g).min(inn);
                let vals = &w[range.clone()];
                let (s, z) = self.group_params(vals.iter().copied());
                for (dst, &v) in q[range].iter_mut().zip(vals) {
                    *dst = self.code(v, s, z);
                }
                scales.push(s);
                if !self.sym {
                    zeros.push(z);
                }
            }
        }
        QWeight {
            q,
            scales,
            zeros: (!self.sym).then_some(zeros),
            groups,
        }
    }

    /// `(q - zero) · scale`, `[out, in]`.
    pub fn dequantize(&self, qw: &QWeight, out: usize, inn: usize) -> Vec<f64> {
        let g = self.group_len(inn);
        let mut w = Vec::with_capacity(out * inn);
        for o in 0..out {
            for i in 0..inn {
                let k = o * qw.groups + i / g;
                let z = qw.zeros.as_ref().map_or(0.0, |z| z[k]);
                w.push((qw.q[o * inn + i] - z) * qw.scales[k]);
            }
        }
        w
    }
}

/// The AWQ objective of scale `s` for one group: `Σ ‖x (W − Q(W diag s) diag(1/s))ᵀ‖²`
/// over `x` (`rows × in`) and the weights.
fn awq_error(cfg: &QConfig, x: &[f64], rows: usize, ws: &[&Tensor], s: &[f64]) -> f64 {
    let inn = s.len();
    let mut err = 0.0;
    for w in ws {
        let out = w.data.len() / inn;
        let scaled: Vec<f64> = w
            .data
            .iter()
            .enumerate()
            .map(|(i, v)| v * s[i % inn])
            .collect();
        let qw = cfg.quantize(&scaled, out, inn);
        let dq = cfg.dequantize(&qw, out, inn);
        let e: Vec<f64> = w
            .data
            .iter()
            .zip(&dq)
            .enumerate()
            .map(|(i, (a, b))| a - b / s[i % inn])
            .collect();
        for r in 0..rows {
            let xr = &x[r * inn..(r + 1) * inn];
            for erow in e.chunks(inn) {
                let d: f64 = xr.iter().zip(erow).map(|(a, b)| a * b).sum();
                err += d * d;
            }
        }
    }
    err
}

/// AWQ's scale search for one activation sample (`rows × in`) and its linears' weights.
/// Returns `None` when α = 0 (no scaling) is best.
fn awq_search(cfg: &QConfig, x: &[f64], rows: usize, ws: &[&Tensor]) -> Option<Vec<f64>> {
    let inn = ws[0].ty.shape[1] as usize;
    let mut mean = vec![0.0f64; inn];
    for r in x.chunks(inn) {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v.abs() / rows as f64;
        }
    }
    let mut best: Option<(f64, Vec<f64>)> = None;
    for step in 0..20 {
        let alpha = step as f64 / 20.0;
        let mut s: Vec<f64> = mean.iter().map(|m| m.max(1e-4).powf(alpha)).collect();
        let (mx, mn) = s
            .iter()
            .fold((0.0f64, f64::INFINITY), |(a, b), &v| (a.max(v), b.min(v)));
        let norm = (mx * mn).sqrt();
        s.iter_mut().for_each(|v| *v /= norm);
        let e = awq_error(cfg, x, rows, ws, &s);
        // Strictly better only: ties keep the smaller α (α = 0 first).
        if best.as_ref().is_none_or(|(b, _)| e < *b) {
            best = Some((e, if step == 0 { Vec::new() } else { s }));
        }
    }
    best.and_then(|(_, s)| (!s.is_empty()).then_some(s))
}

impl Pass for QuantizeWeights {
    fn name(&self) -> &'static str {
        NAME
    }

    fn configure(&mut self, opts: &PassOptions) -> Result<(), PipelineError> {
        if let Some(b) = opts.usize("bits")? {
            if b != 8 && b != 4 {
                return Err(opts.invalid("bits", "8 or 4"));
            }
            self.bits = b as u32;
        }
        if let Some(g) = opts.string("group")? {
            self.group = match g.parse::<i64>() {
                Ok(-1) | Ok(0) => 0,
                Ok(n) if n > 0 => n as usize,
                _ => return Err(opts.invalid("group", "a positive integer, 0 or -1")),
            };
        }
        if let Some(s) = opts.string("sym")? {
            self.sym = match s {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(opts.invalid("sym", "true or false")),
            };
        }
        if let Some(s) = opts.string("scheme")? {
            self.scheme = match s {
                "rtn" => Scheme::Rtn,
                "awq" => Scheme::Awq,
                "gptq" => Scheme::Gptq,
                _ => return Err(opts.invalid("scheme", "rtn, awq or gptq")),
            };
        }
        if let Some(n) = opts.usize("awq-tokens")? {
            if n == 0 {
                return Err(opts.invalid("awq-tokens", "a positive integer"));
            }
            self.awq_tokens = n;
        }
        if let Some(d) = opts.string("damp")? {
            self.gptq.damp = match d.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => v,
                _ => return Err(opts.invalid("damp", "a non-negative number")),
            };
        }
        self.calib_mask = opts.usize("calib-mask")?.or(self.calib_mask);
        if let Some(s) = opts.string("act-order")? {
            self.gptq.act_order = match s {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(opts.invalid("act-order", "true or false")),
            };
        }
        Ok(())
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        self.run_with_env(func, &mut PassEnv::default())
    }

    fn run_with_env(&mut self, f: &mut Func, env: &mut PassEnv) -> Result<PassResult, PassError> {
        let mut stats = Stats::with_keys(&[
            "quantized",
            "linears",
            "awq-scaled",
            "awq-identity",
            "skipped-other-use",
            "skipped-not-weight",
            "skipped-rank",
        ]);
        let cfg = QConfig {
            bits: self.bits,
            group: self.group,
            sym: self.sym,
        };
        if self.scheme == Scheme::Awq {
            self.awq(f, env, &cfg, &mut stats)?;
        }
        let users = Users::of(f);
        let mut seen: Vec<Value> = Vec::new();
        let mut todo: Vec<Value> = Vec::new();
        for l in super::linears(f) {
            if seen.contains(&l.w) {
                continue;
            }
            seen.push(l.w);
            if weight_name(f, l.w).is_none() {
                stats.bump("skipped-not-weight");
                continue;
            }
            if f.ty(l.w).rank() != 2 || !f.ty(l.w).elem.is_float() {
                stats.bump("skipped-rank");
                continue;
            }
            let only_w = users.rets[l.w] == 0
                && users.ops[l.w].iter().all(|&u| {
                    let d = &f.ops[u];
                    d.opcode == Opcode::Graph(G::Linear)
                        && d.args[1] == l.w
                        && d.args[0] != l.w
                        && d.args.get(2) != Some(&l.w)
                });
            if !only_w {
                stats.bump("skipped-other-use");
                continue;
            }
            todo.push(l.w);
        }
        let hessians = if self.scheme == Scheme::Gptq {
            self.hessians(f, env, &todo, &mut stats)?
        } else {
            Vec::new()
        };
        for (i, w) in todo.into_iter().enumerate() {
            stats.add("linears", users.ops[w].len() as u64);
            let t = stored(NAME, f, &env.weights, w)?;
            let (out, inn) = (t.ty.shape[0] as usize, t.ty.shape[1] as usize);
            let qw = match hessians.get(i) {
                Some(h) => gptq(&cfg, &self.gptq, &t.data, out, inn, h).map_err(|e| {
                    let op = f.def_op(w).expect("weights are op results");
                    PassError::Op {
                        pass: NAME,
                        op: "graph.weight",
                        loc: f.ops[op].loc.clone(),
                        message: format!(
                            "GPTQ of weight {}: {e}",
                            weight_name(f, w).expect("checked")
                        ),
                    }
                })?,
                None => cfg.quantize(&t.data, out, inn),
            };
            self.quantize_one(f, env, &cfg, w, qw)?;
            stats.bump("quantized");
        }
        Ok(PassResult::from_stats(stats))
    }
}

impl QuantizeWeights {
    /// GPTQ's Hessian `XᵀX` of each weight in `ws`, over the calibration inputs of every
    /// linear that reads it (one calibration run for all).
    fn hessians(
        &self,
        f: &Func,
        env: &PassEnv,
        ws: &[Value],
        stats: &mut Stats,
    ) -> Result<Vec<Vec<f64>>, PassError> {
        let lins: Vec<(usize, Value)> = super::linears(f)
            .into_iter()
            .filter_map(|l| ws.iter().position(|&w| w == l.w).map(|i| (i, l.x)))
            .collect();
        let xs: Vec<Value> = lins.iter().map(|&(_, x)| x).collect();
        let masks: Vec<&Tensor> = match self.calib_mask {
            None => Vec::new(),
            Some(k) if k >= f.params.len() => {
                return Err(PassError::Op {
                    pass: NAME,
                    op: "func",
                    loc: f.loc.clone(),
                    message: format!(
                        "calib-mask={k} names no parameter: @{} has {}",
                        f.name,
                        f.params.len()
                    ),
                })
            }
            Some(k) => env.calibration_for(f).iter().map(|set| &set[k]).collect(),
        };
        let acts = capture(NAME, f, env, &xs)?;
        let mut hs: Vec<Vec<f64>> = ws
            .iter()
            .map(|&w| {
                let inn = f.ty(w).shape[1] as usize;
                vec![0.0; inn * inn]
            })
            .collect();
        let mut rows_max = 0u64;
        let mut rows = vec![0u64; ws.len()];
        for (&(i, _), act) in lins.iter().zip(&acts) {
            let inn = f.ty(ws[i]).shape[1] as usize;
            let masked = !masks.is_empty()
                && act
                    .iter()
                    .zip(&masks)
                    .all(|(a, m)| a.data.len() == m.data.len() * inn);
            if !masks.is_empty() && !masked {
                stats.bump("gptq-unmasked");
            }
            let (x, n) = if masked {
                let mut x = Vec::new();
                for (a, m) in act.iter().zip(&masks) {
                    for (row, &keep) in a.data.chunks(inn).zip(&m.data) {
                        if keep != 0.0 {
                            x.extend_from_slice(row);
                        }
                    }
                }
                let n = x.len() / inn;
                (x, n)
            } else {
                sample_rows(act, usize::MAX)
            };
            let h = hessian(&x, n, inn);
            hs[i].iter_mut().zip(h).for_each(|(a, b)| *a += b);
            rows[i] += n as u64;
            rows_max = rows_max.max(rows[i]);
        }
        if let Some(i) = rows.iter().position(|&r| r == 0) {
            let op = f.def_op(ws[i]).expect("weights are op results");
            return Err(PassError::Op {
                pass: NAME,
                op: "graph.weight",
                loc: f.ops[op].loc.clone(),
                message: format!(
                    "GPTQ of weight {} has no calibration rows (every token masked out)",
                    weight_name(f, ws[i]).unwrap_or("?")
                ),
            });
        }
        stats.add("gptq-rows", rows_max);
        Ok(hs)
    }

    /// Replaces weight `w` by `dequantize(qweight, scales[, qzeros])` with the codes `qw`.
    fn quantize_one(
        &self,
        f: &mut Func,
        env: &mut PassEnv,
        cfg: &QConfig,
        w: Value,
        qw: QWeight,
    ) -> Result<(), PassError> {
        // The caller read the stored tensor (whose type `stored` checked against `w`'s).
        let wty = f.ty(w).clone();
        let (out, inn) = (wty.shape[0] as usize, wty.shape[1] as usize);
        let wop = f.def_op(w).expect("weights are op results");
        let name = weight_name(f, w).expect("checked").to_string();
        let loc = f.ops[wop].loc.clone();
        let sshape: Vec<usize> = if cfg.group == 0 {
            vec![out]
        } else {
            vec![out, qw.groups]
        };
        let q = add_weight(
            f,
            env,
            wop,
            &format!("{name}.qweight"),
            tensor(&[out, inn], cfg.elem(), qw.q),
            loc.clone(),
        );
        let s = add_weight(
            f,
            env,
            wop,
            &format!("{name}.scales"),
            tensor(&sshape, Elem::F32, qw.scales),
            loc.clone(),
        );
        let mut args = vec![q, s];
        if let Some(z) = qw.zeros {
            args.push(add_weight(
                f,
                env,
                wop,
                &format!("{name}.qzeros"),
                tensor(&sshape, cfg.elem(), z),
                loc.clone(),
            ));
        }
        let mut attrs = Attrs::new();
        if cfg.group == 0 {
            attrs.set("axis", Attr::Int(0));
        } else {
            attrs.set("axis", Attr::Int(1));
            attrs.set("block_size", Attr::Int(cfg.group as i64));
        }
        let dq = f.insert_op_before(
            wop,
            Opcode::Lowbit(L::Dequantize),
            args,
            attrs,
            vec![wty],
            loc,
        );
        let dv = f.result(dq);
        f.replace_all_uses(w, dv);
        f.body.retain(|&o| o != wop);
        Ok(())
    }

    /// AWQ: searches and migrates a scale for every activation feeding absorbing linears.
    fn awq(
        &self,
        f: &mut Func,
        env: &mut PassEnv,
        cfg: &QConfig,
        stats: &mut Stats,
    ) -> Result<(), PassError> {
        let gs = groups(f);
        if gs.is_empty() {
            return Ok(());
        }
        for g in &gs {
            for l in &g.linears {
                stored(NAME, f, &env.weights, l.w)?;
            }
        }
        let xs: Vec<Value> = gs.iter().map(|g| g.x).collect();
        let acts = capture(NAME, f, env, &xs)?;
        let mut plans = Vec::new();
        for (g, act) in gs.iter().zip(&acts) {
            let (x, rows) = sample_rows(act, self.awq_tokens);
            let ws: Vec<&Tensor> = g
                .linears
                .iter()
                .map(|l| stored(NAME, f, &env.weights, l.w))
                .collect::<Result<_, _>>()?;
            plans.push(awq_search(cfg, &x, rows, &ws));
        }
        for (g, s) in gs.iter().zip(plans) {
            match s {
                Some(s) => {
                    migrate(NAME, f, env, g, &s, true)?;
                    stats.bump("awq-scaled");
                }
                None => stats.bump("awq-identity"),
            }
        }
        Ok(())
    }
}
