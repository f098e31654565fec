//! `quantize-attention{qk=i8|i4|f8 pv=f16|f8|i8 granularity=per-block|per-warp|per-thread|per-token
//! q-block=128 k-block=64 warp-q=32 smooth-q=false smooth-q-block=Q smooth-k=true
//! p=normalized|online}` and its precision search `quantize-attention{budget=0.999}`:
//! SageAttention-style quantized attention (techniques.md §1.2, §1.5, R5).
//!
//! | rule | `lhs -> rhs` | class |
//! |---|---|---|
//! | `quantize-sdpa` | `sdpa(q, k, v, mask){scale, causal} -> quantized_sdpa(q, k, v, mask){scale, causal, qk, pv, q_block, k_block, smooth_q, smooth_k[, granularity, warp_q, smooth_q_block, p]}` | APPROX |
//!
//! APPROX: a one-directional lowering that runs only when this pass is in the pipeline.
//! What `attn.quantized_sdpa` computes is fixed by the interpreter
//! (`dialects/src/interp/attn/quant.rs`): K smoothing over all keys, Q smoothing per
//! `smooth-q-block` queries (default: `q-block`), symmetric Q/K quantization per group —
//! `granularity` (techniques.md §1.2): `per-block` (default; `q-block` queries / `k-block`
//! keys), `per-warp` (`warp-q` queries / `k-block` keys), `per-thread` (SageAttention2's
//! MMA-fragment groups: rows `{g, g+8, g+16, g+24}` of each `warp-q` slab, keys
//! `{8j+2t, 8j+2t+1}` of each `k-block` block; `warp-q` and `k-block` multiples of 8) or
//! `per-token` — then P and V by `pv`, P as the `normalized` softmax (default) or the
//! blocked `online` P̃ over `k-block` keys. Options at their defaults add no attribute, so a
//! per-block recipe prints as before; `warp_q` is written for the warp granularities.
//!
//! **Fixed mode** (no `budget`): every `attn.sdpa` becomes one `attn.quantized_sdpa` with
//! the options' recipe. Defaults: `qk=i8 pv=f16 q-block=128 k-block=64 smooth-k=true
//! smooth-q=false` (SageAttention v1).
//!
//! **Search mode** (`budget=C`, `0 < C ≤ 1`): for each `attn.sdpa` (one decision per op —
//! all heads of the op share it; head-group granularity is not offered because the op has
//! one recipe for all its heads), the function is evaluated with the interpreter up to the
//! op's operands on every calibration set that fits the function (`lowbit opt
//! --calibration FILE`), and the [`SEARCH_RECIPES`] are tried from cheapest to dearest; the
//! first whose output cosine similarity against the full-precision `attn.sdpa` is at least
//! `C` on *every* calibration set (the minimum is compared) is kept. When none meets the
//! budget the op stays `attn.sdpa` (`kept-full`). The decision for each op (location,
//! chosen recipe, each rejected recipe with its cosine) is kept in
//! [`QuantizeAttention::decisions`] and counted in the stats (`chose-<recipe>`,
//! `rejected-<recipe>`). Without calibration inputs the pass fails with an error that
//! names `--calibration`. The grouping options apply to the search recipes too; `qk`,
//! `pv`, `smooth-q` and `smooth-k` are chosen by the search and may not be given with
//! `budget`.
//!
//! A Q smoothing block of one query (`q-block=1` without `smooth-q-block`, or
//! `smooth-q-block=1`) is refused together with Q smoothing (`smooth-q`, or the search,
//! whose INT4 recipes smooth Q): it would cancel Q and leave it unquantized. Per-token INT4
//! with Q smoothing is `quantize-attention{qk=i4 granularity=per-token smooth-q=true}` (Q
//! smoothed per `q-block` = 128 queries, as SageAttention2), or `q-block=1 k-block=1
//! smooth-q=true smooth-q-block=128`. `warp-q` is refused unless `granularity` is
//! `per-warp` or `per-thread`; `smooth-q-block` unless Q is smoothed. The grouping options
//! (`granularity`, blocks, `warp-q`, `smooth-q-block`, `p`) apply to the search recipes
//! too.
//!
//! Counters: `quantized`, `searched`, `kept-full`, then `chose-*`/`rejected-*` per search
//! recipe.

pub mod t13;

use lowbit_dialects::attn::Op as A;
use lowbit_dialects::interp::{eval_op, run_func, EvalCx, Tensor};
use lowbit_dialects::ir::{Attr, Attrs, Func, Op, TensorType};
use lowbit_dialects::Opcode;

use crate::pass::{Pass, PassEnv, PassError, PassResult, Stats};
use crate::pipeline::{PassOptions, PipelineError};
use crate::smooth_attention::bool_option;

const PASS: &str = "quantize-attention";

/// One quantized-attention recipe: the attributes of an `attn.quantized_sdpa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recipe {
    /// Q/K format: `"i8"`, `"i4"` or `"f8"`.
    pub qk: &'static str,
    /// P/V format: `"f16"`, `"f8"` or `"i8"`.
    pub pv: &'static str,
    /// Queries per Q quantization (and Q smoothing) block.
    pub q_block: usize,
    /// Keys per K quantization block.
    pub k_block: usize,
    /// Q block-mean smoothing with the ΔS correction.
    pub smooth_q: bool,
    /// Queries per Q smoothing block; `None`: `q_block` (the op's default).
    pub smooth_q_block: Option<usize>,
    /// Q/K quantization groups: `"per-block"`, `"per-warp"`, `"per-thread"`, `"per-token"`.
    pub granularity: &'static str,
    /// Queries per warp slab (per-warp and per-thread groups).
    pub warp_q: usize,
    /// P as `"normalized"` softmax or blocked `"online"` P̃.
    pub p: &'static str,
    /// K token-mean smoothing.
    pub smooth_k: bool,
}

impl Recipe {
    /// The attributes of the `attn.quantized_sdpa` (without `scale` and `causal`).
    pub fn attrs(&self, base: Attrs) -> Attrs {
        let mut attrs = base
            .with("qk", Attr::Str(self.qk.into()))
            .with("pv", Attr::Str(self.pv.into()))
            .with("q_block", Attr::Int(self.q_block as i64))
            .with("k_block", Attr::Int(self.k_block as i64))
            .with("smooth_q", Attr::Bool(self.smooth_q))
            .with("smooth_k", Attr::Bool(self.smooth_k));
        // The op's defaults are left out, so per-block recipes print as they always did.
        if let Some(b) = self.smooth_q_block {
            attrs = attrs.with("smooth_q_block", Attr::Int(b as i64));
        }
        if self.granularity != "per-block" {
            attrs = attrs.with("granularity", Attr::Str(self.granularity.into()));
        }
        if self.warp_based() {
            attrs = attrs.with("warp_q", Attr::Int(self.warp_q as i64));
        }
        if self.p != "normalized" {
            attrs = attrs.with("p", Attr::Str(self.p.into()));
        }
        attrs
    }

    /// Whether the Q groups are warp slabs (`warp_q` applies).
    fn warp_based(&self) -> bool {
        matches!(self.granularity, "per-warp" | "per-thread")
    }

    /// The queries per Q smoothing block the op uses.
    pub fn q_smoothing_block(&self) -> usize {
        self.smooth_q_block.unwrap_or(self.q_block)
    }
}

impl std::fmt::Display for Recipe {
    /// `qk=i4 pv=f8 q-block=128 k-block=64 smooth-q smooth-k`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "qk={} pv={} q-block={} k-block={}",
            self.qk, self.pv, self.q_block, self.k_block
        )?;
        if self.granularity != "per-block" {
            write!(f, " granularity={}", self.granularity)?;
        }
        if self.warp_based() {
            write!(f, " warp-q={}", self.warp_q)?;
        }
        if self.p != "normalized" {
            write!(f, " p={}", self.p)?;
        }
        if self.smooth_q {
            f.write_str(" smooth-q")?;
            if let Some(b) = self.smooth_q_block {
                write!(f, " smooth-q-block={b}")?;
            }
        }
        if self.smooth_k {
            f.write_str(" smooth-k")?;
        }
        Ok(())
    }
}

/// The search's recipes, cheapest first (QK bits, then PV bits), with their counter names.
/// INT4 QK needs Q smoothing to be usable (techniques.md §1.6 invariant b); every recipe
/// smooths K (it never hurts, invariant a). Block sizes are replaced by the options'.
pub const SEARCH_RECIPES: [(Recipe, &str, &str); 4] = [
    (recipe("i4", "f8", true), "chose-i4-f8", "rejected-i4-f8"),
    (recipe("i4", "f16", true), "chose-i4-f16", "rejected-i4-f16"),
    (recipe("i8", "f8", false), "chose-i8-f8", "rejected-i8-f8"),
    (
        recipe("i8", "f16", false),
        "chose-i8-f16",
        "rejected-i8-f16",
    ),
];

const fn recipe(qk: &'static str, pv: &'static str, smooth_q: bool) -> Recipe {
    Recipe {
        qk,
        pv,
        q_block: 128,
        k_block: 64,
        smooth_q,
        smooth_q_block: None,
        granularity: "per-block",
        warp_q: 32,
        p: "normalized",
        smooth_k: true,
    }
}

/// What the search decided for one `attn.sdpa`.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The function.
    pub func: String,
    /// The op's location, printed (`loc(...)`).
    pub loc: String,
    /// The recipe kept; `None` when no recipe met the budget.
    pub chosen: Option<Recipe>,
    /// Every recipe tried, in order, with its minimum cosine over the calibration sets.
    pub tried: Vec<(Recipe, f64)>,
    /// The budget.
    pub budget: f64,
}

impl std::fmt::Display for Decision {
    /// `@f loc(...): qk=i8 pv=f16 ... (cos 0.99990); rejected: qk=i4 ... cos 0.97 < 0.999`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@{} {}: ", self.func, self.loc)?;
        let chosen_cos = self
            .chosen
            .and_then(|c| self.tried.iter().find(|t| t.0 == c).map(|t| t.1));
        match (self.chosen, chosen_cos) {
            (Some(r), Some(c)) => write!(f, "{r} (cos {c:.6})")?,
            _ => write!(
                f,
                "kept full precision (no recipe reaches cos {})",
                self.budget
            )?,
        }
        let rejected: Vec<String> = self
            .tried
            .iter()
            .filter(|t| Some(t.0) != self.chosen)
            .map(|(r, c)| format!("{r}: cos {c:.6} < {}", self.budget))
            .collect();
        if !rejected.is_empty() {
            write!(f, "; rejected: {}", rejected.join("; "))?;
        }
        Ok(())
    }
}

/// The `quantize-attention` pass.
#[derive(Debug)]
pub struct QuantizeAttention {
    /// The recipe of fixed mode; its blocks also apply to the search.
    pub recipe: Recipe,
    /// Search mode's cosine budget.
    pub budget: Option<f64>,
    /// The search's decisions so far, one per searched op, in program order.
    pub decisions: Vec<Decision>,
}

impl Default for QuantizeAttention {
    fn default() -> Self {
        QuantizeAttention {
            recipe: recipe("i8", "f16", false),
            budget: None,
            decisions: Vec::new(),
        }
    }
}

impl QuantizeAttention {
    /// The search's decisions, one per searched op (render with `Display`).
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    fn stats() -> Stats {
        let mut keys = vec!["quantized", "searched", "kept-full"];
        for (_, chose, rejected) in SEARCH_RECIPES {
            keys.push(chose);
            keys.push(rejected);
        }
        Stats::with_keys(&keys)
    }
}

fn one_of(
    opts: &PassOptions,
    key: &'static str,
    allowed: &[&'static str],
    expected: &'static str,
) -> Result<Option<&'static str>, PipelineError> {
    match opts.string(key)? {
        None => Ok(None),
        Some(v) => match allowed.iter().find(|&&a| a == v) {
            Some(&a) => Ok(Some(a)),
            None => Err(opts.invalid(key, expected)),
        },
    }
}

impl Pass for QuantizeAttention {
    fn name(&self) -> &'static str {
        PASS
    }

    fn notes(&self) -> Vec<String> {
        self.decisions.iter().map(|d| d.to_string()).collect()
    }

    fn configure(&mut self, opts: &PassOptions) -> Result<(), PipelineError> {
        let qk = one_of(opts, "qk", &["i8", "i4", "f8"], "i8, i4 or f8")?;
        let pv = one_of(opts, "pv", &["f16", "f8", "i8"], "f16, f8 or i8")?;
        let given_smooth_q = !matches!(opts.string("smooth-q"), Ok(None));
        let given_smooth_k = !matches!(opts.string("smooth-k"), Ok(None));
        self.recipe.smooth_q = bool_option(opts, "smooth-q", false)?;
        self.recipe.smooth_k = bool_option(opts, "smooth-k", true)?;
        for (key, slot) in [
            ("q-block", &mut self.recipe.q_block),
            ("k-block", &mut self.recipe.k_block),
        ] {
            if let Some(b) = opts.usize(key)? {
                if b == 0 {
                    return Err(opts.invalid(key, "a positive integer"));
                }
                *slot = b;
            }
        }
        if let Some(s) = opts.string("budget")? {
            match s.parse::<f64>() {
                Ok(x) if x > 0.0 && x <= 1.0 => self.budget = Some(x),
                _ => return Err(opts.invalid("budget", "a cosine similarity in (0, 1]")),
            }
            if qk.is_some() || pv.is_some() || given_smooth_q || given_smooth_k {
                return Err(opts.invalid(
                    "budget",
                    "no qk, pv, smooth-q or smooth-k beside it (the search chooses them)",
                ));
            }
        }
        let granularity = one_of(
            opts,
            "granularity",
            &["per-block", "per-warp", "per-thread", "per-token"],
            "per-block, per-warp, per-thread or per-token",
        )?;
        if let Some(g) = granularity {
            self.recipe.granularity = g;
        }
        let p = one_of(opts, "p", &["normalized", "online"], "normalized or online")?;
        if let Some(p) = p {
            self.recipe.p = p;
        }
        if let Some(w) = opts.usize("warp-q")? {
            if !self.recipe.warp_based() {
                return Err(opts.invalid(
                    "warp-q",
                    "granularity=per-warp or granularity=per-thread beside it (the other granularities have no warp slab)",
                ));
            }
            if w == 0 || (self.recipe.granularity == "per-thread" && !w.is_multiple_of(8)) {
                return Err(opts.invalid(
                    "warp-q",
                    "a positive integer (a multiple of 8 with granularity=per-thread)",
                ));
            }
            self.recipe.warp_q = w;
        }
        if self.recipe.granularity == "per-thread" && !self.recipe.k_block.is_multiple_of(8) {
            return Err(opts.invalid(
                "k-block",
                "a multiple of 8 with granularity=per-thread (4 key groups per 8 keys)",
            ));
        }
        if let Some(b) = opts.usize("smooth-q-block")? {
            if b == 0 {
                return Err(opts.invalid("smooth-q-block", "a positive integer"));
            }
            if !self.recipe.smooth_q && self.budget.is_none() {
                return Err(opts.invalid("smooth-q-block", "smooth-q=true (or budget) beside it"));
            }
            self.recipe.smooth_q_block = Some(b);
        }
        // A one-query smoothing block cancels Q: the centered Q is zero and Q would not be
        // quantized at all (the search's INT4 recipes smooth Q).
        if self.recipe.q_smoothing_block() == 1 && (self.recipe.smooth_q || self.budget.is_some()) {
            let key = if self.recipe.smooth_q_block.is_some() {
                "smooth-q-block"
            } else {
                "q-block"
            };
            return Err(opts.invalid(key, "a Q smoothing block of at least 2 (one-query blocks cancel Q; for per-token Q with Q smoothing use granularity=per-token, which smooths per q-block, or smooth-q-block=N)"));
        }
        if let Some(qk) = qk {
            self.recipe.qk = qk;
        }
        if let Some(pv) = pv {
            self.recipe.pv = pv;
        }
        Ok(())
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        self.run_with_env(func, &mut PassEnv::default())
    }

    fn run_with_env(
        &mut self,
        func: &mut Func,
        env: &mut PassEnv,
    ) -> Result<PassResult, PassError> {
        let mut stats = Self::stats();
        let sdpas: Vec<Op> = func
            .body
            .iter()
            .copied()
            .filter(|&op| func.ops[op].opcode == Opcode::Attn(A::Sdpa))
            .collect();
        let Some(budget) = self.budget else {
            for op in sdpas {
                lower(func, op, &self.recipe);
                stats.bump("quantized");
            }
            return Ok(result(stats));
        };
        if sdpas.is_empty() {
            return Ok(result(stats));
        }
        let sets: Vec<Vec<Tensor>> = env
            .calibration_for(func)
            .into_iter()
            .map(<[Tensor]>::to_vec)
            .collect();
        if sets.is_empty() {
            let d = &func.ops[sdpas[0]];
            return Err(PassError::Op {
                pass: PASS,
                op: d.opcode.name(),
                loc: d.loc.clone(),
                message: format!(
                    "the precision search (budget={budget}) needs calibration inputs for @{}: pass them with --calibration FILE",
                    func.name
                ),
            });
        }
        // Decide every op on the unchanged function first, so that each decision sees
        // full-precision inputs, then rewrite.
        let mut chosen = Vec::new();
        for &op in &sdpas {
            let decision = self.search(func, op, &sets, env, budget)?;
            stats.bump("searched");
            for (r, _) in &decision.tried {
                let entry = SEARCH_RECIPES
                    .iter()
                    .find(|e| e.0.qk == r.qk && e.0.pv == r.pv);
                if let Some((_, chose, rejected)) = entry {
                    stats.bump(if Some(*r) == decision.chosen {
                        chose
                    } else {
                        rejected
                    });
                }
            }
            chosen.push(decision.chosen);
            self.decisions.push(decision);
        }
        for (op, r) in sdpas.into_iter().zip(chosen) {
            match r {
                Some(r) => {
                    lower(func, op, &r);
                    stats.bump("quantized");
                }
                None => stats.bump("kept-full"),
            }
        }
        Ok(result(stats))
    }
}

/// Changed exactly when some op was quantized (a search may only count `kept-full`).
fn result(stats: Stats) -> PassResult {
    PassResult {
        changed: stats.get("quantized") > 0,
        stats,
    }
}

impl QuantizeAttention {
    /// Tries the search recipes on `op` over the calibration `sets`.
    fn search(
        &self,
        func: &Func,
        op: Op,
        sets: &[Vec<Tensor>],
        env: &PassEnv,
        budget: f64,
    ) -> Result<Decision, PassError> {
        let d = &func.ops[op];
        let fail = |message: String| PassError::Op {
            pass: PASS,
            op: d.opcode.name(),
            loc: d.loc.clone(),
            message,
        };
        // The function cut just before `op`, returning its operands.
        let mut prefix = func.clone();
        let at = prefix
            .body
            .iter()
            .position(|&o| o == op)
            .expect("op is in the body");
        prefix.body.truncate(at);
        prefix.rets = d.args.clone();
        let out_ty = func.ty(func.result(op)).clone();
        let mut operands = Vec::new();
        let mut references = Vec::new();
        for set in sets {
            let args = run_func(&prefix, set, &env.weights)
                .map_err(|e| fail(format!("evaluating the calibration inputs failed: {e}")))?;
            let reference = eval(A::Sdpa, &args, &d.attrs, &out_ty, env).map_err(&fail)?;
            operands.push(args);
            references.push(reference);
        }
        let mut tried = Vec::new();
        let mut chosen = None;
        for (base, _, _) in SEARCH_RECIPES {
            let r = Recipe {
                q_block: self.recipe.q_block,
                k_block: self.recipe.k_block,
                smooth_q_block: self.recipe.smooth_q_block.filter(|_| base.smooth_q),
                granularity: self.recipe.granularity,
                warp_q: self.recipe.warp_q,
                p: self.recipe.p,
                ..base
            };
            let mut worst = f64::INFINITY;
            for (args, reference) in operands.iter().zip(&references) {
                let out = eval(
                    A::QuantizedSdpa,
                    args,
                    &r.attrs(d.attrs.clone()),
                    &out_ty,
                    env,
                )
                .map_err(&fail)?;
                worst = worst.min(Metrics::of(&out.data, &reference.data).cosine);
            }
            tried.push((r, worst));
            if worst >= budget {
                chosen = Some(r);
                break;
            }
        }
        Ok(Decision {
            func: func.name.clone(),
            loc: d.loc.to_string(),
            chosen,
            tried,
            budget,
        })
    }
}

/// Evaluates one attention op on concrete operands.
fn eval(
    op: A,
    args: &[Tensor],
    attrs: &Attrs,
    out: &TensorType,
    env: &PassEnv,
) -> Result<Tensor, String> {
    let refs: Vec<&Tensor> = args.iter().collect();
    let cx = EvalCx {
        args: &refs,
        attrs,
        results: &[out],
        weights: &env.weights,
    };
    let mut v = eval_op(Opcode::Attn(op), &cx)?;
    Ok(v.remove(0))
}

/// Replaces the sdpa `op` by an `attn.quantized_sdpa` with recipe `r`, same operands.
fn lower(f: &mut Func, op: Op, r: &Recipe) {
    let d = f.ops[op].clone();
    let base = Attrs::new()
        .with(
            "scale",
            d.attrs
                .get("scale")
                .cloned()
                .expect("verified: sdpa has a scale"),
        )
        .with(
            "causal",
            d.attrs
                .get("causal")
                .cloned()
                .expect("verified: sdpa has causal"),
        );
    let out_ty = f.ty(f.result(op)).clone();
    let new = f.insert_op_before(
        op,
        Opcode::Attn(A::QuantizedSdpa),
        d.args.clone(),
        r.attrs(base),
        vec![out_ty],
        d.loc,
    );
    let (old, new) = (f.result(op), f.result(new));
    f.replace_all_uses(old, new);
    f.body.retain(|&o| o != op);
}

/// The error metrics of techniques.md §0.3, of a candidate `x` against a reference `r`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// `<x, r> / (‖x‖ ‖r‖)` over the flattened tensors (1 when both are zero).
    pub cosine: f64,
    /// `Σ|x − r| / Σ|r|`.
    pub rel_l1: f64,
    /// `sqrt(mean((x − r)²))`.
    pub rmse: f64,
}

impl Metrics {
    /// The metrics of `x` against `r` (same length).
    pub fn of(x: &[f64], r: &[f64]) -> Metrics {
        assert_eq!(x.len(), r.len(), "metrics need tensors of one size");
        let (mut xr, mut xx, mut rr, mut l1, mut ra, mut sq) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for (&a, &b) in x.iter().zip(r) {
            xr += a * b;
            xx += a * a;
            rr += b * b;
            l1 += (a - b).abs();
            ra += b.abs();
            sq += (a - b) * (a - b);
        }
        let cosine = if xx == 0.0 && rr == 0.0 {
            1.0
        } else {
            xr / (xx.sqrt() * rr.sqrt())
        };
        Metrics {
            cosine,
            rel_l1: if ra == 0.0 { l1 } else { l1 / ra },
            rmse: (sq / x.len().max(1) as f64).sqrt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use lowbit_dialects::interp::{run_func, Tensor};
    use lowbit_dialects::ir::{Func, Module};

    use super::*;
    use crate::testing::{body, module, run, Rng};

    /// Two attention "layers" behind a prefix op, `f32`, N = M = 32, d = 16.
    const TWO_LAYERS: &str = "func @f(%q: tensor<1x2x32x16xf32>, %k: tensor<1x2x32x16xf32>, %v: tensor<1x2x32x16xf32>) -> tensor<1x2x32x16xf32> {\n  %q2 = graph.mul %q, %q : tensor<1x2x32x16xf32>\n  %a = attn.sdpa %q2, %k, %v {causal = true, scale = 0.25 : f32} : tensor<1x2x32x16xf32> loc(\"layer0\")\n  %b = attn.sdpa %a, %k, %v {causal = false, scale = 0.25 : f32} : tensor<1x2x32x16xf32> loc(\"layer1\")\n  return %b\n}\n";

    fn calibration(f: &Func, seeds: std::ops::Range<u64>) -> Vec<Vec<Tensor>> {
        seeds
            .map(|s| {
                let mut rng = Rng(s);
                f.param_types().iter().map(|t| rng.tensor(t)).collect()
            })
            .collect()
    }

    fn search(budget: f64, m: &Module) -> (Func, QuantizeAttention, PassResult) {
        let mut f = m.funcs[0].clone();
        let mut env = PassEnv {
            calibration: calibration(&f, 0..2),
            ..PassEnv::default()
        };
        let mut p = QuantizeAttention {
            budget: Some(budget),
            ..QuantizeAttention::default()
        };
        let r = p.run_with_env(&mut f, &mut env).unwrap();
        (f, p, r)
    }

    #[test]
    fn fixed_mode_lowers_every_sdpa() {
        let (m, report) = run(
            "quantize-attention{qk=i4 pv=f8 q-block=16 k-block=8 smooth-q=true}",
            TWO_LAYERS,
        );
        assert!(
            report.contains("quantized=2 searched=0 kept-full=0"),
            "{report}"
        );
        let b = body(&m);
        assert_eq!(b.matches("attn.quantized_sdpa").count(), 2, "{b}");
        assert!(b.contains("causal = true, k_block = 8 : i64, pv = \"f8\", q_block = 16 : i64, qk = \"i4\", scale = 0.25 : f32, smooth_k = true, smooth_q = true"), "{b}");
        // Per-thread groups with the separate Q smoothing block and online P̃.
        let (m, _) = run(
            "quantize-attention{qk=i4 pv=f8 granularity=per-thread k-block=16 smooth-q=true smooth-q-block=16 p=online}",
            TWO_LAYERS,
        );
        assert!(body(&m).contains("causal = true, granularity = \"per-thread\", k_block = 16 : i64, p = \"online\", pv = \"f8\", q_block = 128 : i64, qk = \"i4\", scale = 0.25 : f32, smooth_k = true, smooth_q = true, smooth_q_block = 16 : i64, warp_q = 32 : i64"), "{}", body(&m));
        let (m, _) = run("quantize-attention", TWO_LAYERS);
        assert!(
            body(&m).contains("k_block = 64 : i64, pv = \"f16\", q_block = 128 : i64, qk = \"i8\""),
            "{}",
            body(&m)
        );
    }

    /// The lowered function computes `attn.quantized_sdpa`: close to the original at INT8
    /// (cosine ≥ 0.999 on random inputs) but not equal (it is APPROX).
    #[test]
    fn lowered_int8_is_close_not_equal() {
        let before = module(TWO_LAYERS);
        let (after, _) = run("quantize-attention", TWO_LAYERS);
        for set in calibration(&before.funcs[0], 10..13) {
            let w = Default::default();
            let a = run_func(&before.funcs[0], &set, &w).unwrap();
            let b = run_func(&after.funcs[0], &set, &w).unwrap();
            let m = Metrics::of(&b[0].data, &a[0].data);
            assert!(m.cosine >= 0.999 && m.rel_l1 > 0.0, "{m:?}");
        }
    }

    /// The search keeps the first recipe (cheapest first) whose worst cosine meets the
    /// budget, and records the cosines of the cheaper ones it rejected.
    #[test]
    fn search_keeps_the_cheapest_recipe_meeting_the_budget() {
        let m = module(TWO_LAYERS);
        // Budget 1 is met by no recipe: every recipe is tried and the ops stay sdpa.
        let (f, p, r) = search(1.0, &m);
        assert_eq!(f, m.funcs[0]);
        assert!(!r.changed);
        assert_eq!(r.stats.get("kept-full"), 2);
        assert_eq!(p.decisions.len(), 2);
        let tried = p.decisions[0].tried.clone();
        assert_eq!(tried.len(), 4);
        let order: Vec<_> = tried
            .iter()
            .map(|(r, _)| (r.qk, r.pv, r.smooth_q, r.smooth_k))
            .collect();
        assert_eq!(
            order,
            [
                ("i4", "f8", true, true),
                ("i4", "f16", true, true),
                ("i8", "f8", false, true),
                ("i8", "f16", false, true)
            ]
        );
        assert!(tried.iter().all(|&(_, c)| c < 1.0 && c > 0.9), "{tried:?}");
        // The cheapest recipe under a budget it meets.
        let (_, p, r) = search(0.5, &m);
        assert_eq!(r.stats.get("chose-i4-f8"), 2);
        assert_eq!(p.decisions[0].tried.len(), 1);
        // A budget between the best recipe and every cheaper one picks the best.
        let best = (0..4)
            .max_by(|&a, &b| tried[a].1.total_cmp(&tried[b].1))
            .unwrap();
        assert!(
            best > 0,
            "on these inputs a dearer recipe is the most accurate: {tried:?}"
        );
        {
            let cheaper = tried[..best].iter().map(|t| t.1).fold(0.0, f64::max);
            let budget = (cheaper + tried[best].1) / 2.0;
            let (f, p, _) = search(budget, &m);
            let d = &p.decisions[0];
            assert_eq!(d.chosen, Some(tried[best].0));
            assert_eq!(d.tried.len(), best + 1);
            assert!(d.tried[..best].iter().all(|t| t.1 < budget));
            let text = d.to_string();
            assert!(text.starts_with("@f loc(\"layer0\"): qk="), "{text}");
            assert!(text.contains("rejected: qk=i4 pv=f8"), "{text}");
            assert!(f
                .body
                .iter()
                .any(|&o| f.ops[o].opcode == Opcode::Attn(A::QuantizedSdpa)));
        }
    }

    #[test]
    fn search_without_calibration_names_the_option() {
        let src = TWO_LAYERS;
        let mut m = module(src);
        let mut pm = crate::PassManager::parse("quantize-attention{budget=0.999}").unwrap();
        let e = pm.run(&mut m, &mut crate::PassCx::default()).unwrap_err();
        assert!(e.to_string().contains("--calibration"), "{e}");
        // A function without attention needs no calibration.
        let plain = "func @g(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = graph.neg %a : tensor<2xf32>\n  return %0\n}\n";
        let (out, report) = run("quantize-attention{budget=0.999}", plain);
        assert_eq!(out, module(plain));
        assert!(report.contains("searched=0"), "{report}");
    }

    #[test]
    fn option_errors() {
        for bad in [
            "quantize-attention{qk=i3}",
            "quantize-attention{pv=bf16}",
            "quantize-attention{q-block=0}",
            "quantize-attention{budget=1.5}",
            "quantize-attention{budget=0}",
            "quantize-attention{budget=0.99 qk=i8}",
            "quantize-attention{smooth-k=maybe}",
            "quantize-attention{q-block=1 smooth-q=true}",
            "quantize-attention{q-block=1 budget=0.99}",
            "quantize-attention{block=64}",
            "quantize-attention{granularity=per-lane}",
            "quantize-attention{warp-q=16}",
            "quantize-attention{granularity=per-token warp-q=16}",
            "quantize-attention{granularity=per-thread warp-q=12}",
            "quantize-attention{granularity=per-warp warp-q=0}",
            "quantize-attention{granularity=per-thread k-block=12}",
            "quantize-attention{smooth-q-block=128}",
            "quantize-attention{smooth-q=true smooth-q-block=0}",
            "quantize-attention{smooth-q=true smooth-q-block=1}",
            "quantize-attention{p=lazy}",
        ] {
            assert!(crate::PassManager::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "quantize-attention{budget=0.99 q-block=64 k-block=32}",
            "quantize-attention{budget=0.99 granularity=per-thread smooth-q-block=64}",
            "quantize-attention{q-block=1 smooth-q=true smooth-q-block=128}",
            "quantize-attention{granularity=per-token smooth-q=true}",
            "quantize-attention{granularity=per-warp warp-q=16 k-block=12 p=online}",
        ] {
            assert!(crate::PassManager::parse(good).is_ok(), "{good}");
        }
        // The error names the option and what it accepts.
        let e = crate::PassManager::parse("quantize-attention{granularity=per-lane}")
            .unwrap_err()
            .render();
        assert!(
            e.contains("'granularity'")
                && e.contains("per-block, per-warp, per-thread or per-token"),
            "{e}"
        );
    }

    #[test]
    fn metrics_follow_the_definitions() {
        let m = Metrics::of(&[1.0, 2.0, 2.0], &[1.0, 2.0, 3.0]);
        let cos = (1.0 + 4.0 + 6.0) / (3.0f64 * 14f64.sqrt());
        assert!((m.cosine - cos).abs() < 1e-15);
        assert!((m.rel_l1 - 1.0 / 6.0).abs() < 1e-15);
        assert!((m.rmse - (1.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(Metrics::of(&[0.0], &[0.0]).cosine, 1.0);
    }
}
