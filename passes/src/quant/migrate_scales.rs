//! `migrate-scales{alpha=0.5 explicit=false}`: SmoothQuant scale migration (techniques.md
//! §4.2, rewrite R10), EXACT-R.
//!
//! Rule `migrate-into-producer` (EXACT-R): `linear_i(P(z), W_i) -> linear_i(P'(z), W_i·diag(s))`
//! where `P'` is the producer with its output channels divided by `s`: a `layer_norm`'s
//! gamma and beta (`rms_norm`: gamma), or a `linear`'s weight rows and bias. It applies to
//! an activation `x` only when every use of `x` is a linear that can absorb `s` (its weight
//! is a `graph.weight` used by nothing else), and the producer's parameters are weights used
//! by nothing else.
//!
//! Rule `migrate-explicit` (EXACT-R, only with `explicit=true`): where the producer cannot
//! absorb `1/s` (a residual stream also reads `x`, a GELU produced it),
//! `linear_i(x, W_i) -> linear_i(x · (1/s), W_i·diag(s))` with `1/s` a new weight vector; the
//! multiply is what a quantizing kernel fuses into its input (AWQ's `ScaledActivation`).
//!
//! The migration strength per input channel `j` is
//! `s_j = max(max_t |X_tj|^α / max(max_i,o |W_i[o, j]|, 1e-5)^(1-α), 1e-5)` over the
//! calibration inputs and all the consuming linears, as in `smoothquant/smooth.py`.
//!
//! Needs weights (`--weights`) and calibration inputs (`--calibration`); missing ones are
//! errors that name the weight or the function. New weight entries are `NAME.smooth` (the
//! old entries stay for other readers). Stats: `groups`, `folded-norm`, `folded-linear`,
//! `explicit`, `skipped-other-users`, `skipped-producer`.

use lowbit_dialects::graph::Op as G;
use lowbit_dialects::ir::{Attrs, Func, Loc, Value};
use lowbit_dialects::Opcode;

use super::{
    capture, channel_absmax, divide_rows, exclusive_weight, linears, replace_weight, stored,
    tensor, Linear,
};
use crate::pass::{Pass, PassEnv, PassError, PassResult, Stats};
use crate::pipeline::{PassOptions, PipelineError};

const NAME: &str = "migrate-scales";

/// The `migrate-scales` pass.
#[derive(Debug)]
pub struct MigrateScales {
    /// Migration strength α in [0, 1].
    pub alpha: f64,
    /// Insert an explicit `x · (1/s)` where no producer can absorb it.
    pub explicit: bool,
}

impl Default for MigrateScales {
    fn default() -> Self {
        MigrateScales {
            alpha: 0.5,
            explicit: false,
        }
    }
}

/// An activation and the linears reading it that can absorb a per-input-channel scale.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    /// The activation.
    pub x: Value,
    /// Linears reading `x` whose weight is used by nothing else, in body order.
    pub linears: Vec<Linear>,
    /// Every use of `x` is one of `linears` (and `x` is not returned).
    pub only_linears: bool,
}

/// The groups of `f`: one per activation read by at least one absorbing linear.
pub(crate) fn groups(f: &Func) -> Vec<Group> {
    let uses = f.use_counts();
    let mut out: Vec<Group> = Vec::new();
    for l in linears(f) {
        if l.x == l.w || !exclusive_weight(f, &uses, l.w) || f.ty(l.w).rank() != 2 {
            continue;
        }
        match out.iter_mut().find(|g| g.x == l.x) {
            Some(g) => g.linears.push(l),
            None => out.push(Group {
                x: l.x,
                linears: vec![l],
                only_linears: false,
            }),
        }
    }
    for g in &mut out {
        g.only_linears = uses[g.x] as usize == g.linears.len();
    }
    out
}

/// How a group's `1/s` was placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placed {
    /// Into a norm's gamma (and beta).
    Norm,
    /// Into a producing linear's rows (and bias).
    Linear,
    /// As an explicit multiply.
    Explicit,
}

/// Where the producer of `g.x` can absorb `1/s`: the weight values to divide by `s`.
fn producer_params(f: &Func, g: &Group) -> Option<(Placed, Vec<Value>)> {
    if !g.only_linears {
        return None;
    }
    let uses = f.use_counts();
    let op = f.def_op(g.x)?;
    let d = &f.ops[op];
    let (kind, params) = match d.opcode {
        Opcode::Graph(G::LayerNorm) | Opcode::Graph(G::RmsNorm) => {
            // gamma required: without it there is nothing to divide.
            if d.args.len() < 2 {
                return None;
            }
            (Placed::Norm, d.args[1..].to_vec())
        }
        Opcode::Graph(G::Linear) => (Placed::Linear, d.args[1..].to_vec()),
        _ => return None,
    };
    let d_out = *f.ty(g.x).shape.last()?;
    let fits = params
        .iter()
        .all(|&p| exclusive_weight(f, &uses, p) && f.ty(p).shape.first() == Some(&d_out));
    // A norm normalizing over more than the last dim has gamma of rank > 1: not handled.
    let norm_ok = kind != Placed::Norm || params.iter().all(|&p| f.ty(p).rank() == 1);
    (fits && norm_ok).then_some((kind, params))
}

/// Migrates `s` (one factor per input channel of `g`'s linears) into the linears' weight
/// columns and `1/s` into the producer (or an explicit multiply when `explicit`). Returns
/// where `1/s` went, or `None` when the group was left alone.
pub(crate) fn migrate(
    pass: &'static str,
    f: &mut Func,
    env: &mut PassEnv,
    g: &Group,
    s: &[f64],
    explicit: bool,
) -> Result<Option<Placed>, PassError> {
    let placed = match producer_params(f, g) {
        Some((kind, params)) => {
            for p in params {
                let t = divide_rows(stored(pass, f, &env.weights, p)?, s);
                replace_weight(f, env, p, ".smooth", t);
            }
            kind
        }
        None if explicit => {
            let first = g.linears[0].op;
            let xty = f.ty(g.x).clone();
            let inv: Vec<f64> = s.iter().map(|v| 1.0 / v).collect();
            let base = format!(
                "{}.smooth_inv",
                super::weight_name(f, g.linears[0].w).expect("absorbing linears read weights")
            );
            let loc = Loc::fuse(g.linears.iter().map(|l| f.ops[l.op].loc.clone()));
            let inv_v = super::add_weight(
                f,
                env,
                first,
                &base,
                tensor(&[s.len()], xty.elem, inv),
                loc.clone(),
            );
            let mul = f.insert_op_before(
                first,
                Opcode::Graph(G::Mul),
                vec![g.x, inv_v],
                Attrs::new(),
                vec![xty],
                loc,
            );
            let xs = f.result(mul);
            for l in &g.linears {
                f.ops[l.op].args[0] = xs;
            }
            Placed::Explicit
        }
        None => return Ok(None),
    };
    for l in &g.linears {
        let t = super::scale_columns(stored(pass, f, &env.weights, l.w)?, s);
        replace_weight(f, env, l.w, ".smooth", t);
    }
    Ok(Some(placed))
}

impl Pass for MigrateScales {
    fn name(&self) -> &'static str {
        NAME
    }

    fn configure(&mut self, opts: &PassOptions) -> Result<(), PipelineError> {
        if let Some(a) = opts.string("alpha")? {
            match a.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => self.alpha = x,
                _ => return Err(opts.invalid("alpha", "a number in [0, 1]")),
            }
        }
        self.explicit = opts.flag("explicit")?;
        Ok(())
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        self.run_with_env(func, &mut PassEnv::default())
    }

    fn run_with_env(&mut self, f: &mut Func, env: &mut PassEnv) -> Result<PassResult, PassError> {
        let mut stats = Stats::with_keys(&[
            "groups",
            "folded-norm",
            "folded-linear",
            "explicit",
            "skipped-other-users",
            "skipped-producer",
        ]);
        let todo: Vec<Group> = groups(f)
            .into_iter()
            .filter(|g| {
                let ok = self.explicit || producer_params(f, g).is_some();
                if !ok {
                    stats.bump(if g.only_linears {
                        "skipped-producer"
                    } else {
                        "skipped-other-users"
                    });
                }
                ok
            })
            .collect();
        if todo.is_empty() {
            return Ok(PassResult::from_stats(stats));
        }
        // Weights first: a missing weight is reported before calibration runs.
        let mut wmax = Vec::with_capacity(todo.len());
        for g in &todo {
            let d = *f.ty(g.x).shape.last().unwrap_or(&1) as usize;
            let mut m = vec![0.0f64; d];
            for l in &g.linears {
                let w = stored(NAME, f, &env.weights, l.w)?;
                for row in w.data.chunks(d) {
                    for (a, &v) in m.iter_mut().zip(row) {
                        *a = a.max(v.abs());
                    }
                }
            }
            wmax.push(m);
        }
        let xs: Vec<Value> = todo.iter().map(|g| g.x).collect();
        let acts = capture(NAME, f, env, &xs)?;
        for ((g, wm), act) in todo.iter().zip(&wmax).zip(&acts) {
            let am = channel_absmax(act);
            let s: Vec<f64> = am
                .iter()
                .zip(wm)
                .map(|(&a, &w)| (a.powf(self.alpha) / w.max(1e-5).powf(1.0 - self.alpha)).max(1e-5))
                .collect();
            stats.bump("groups");
            match migrate(NAME, f, env, g, &s, self.explicit)? {
                Some(Placed::Norm) => stats.bump("folded-norm"),
                Some(Placed::Linear) => stats.bump("folded-linear"),
                Some(Placed::Explicit) => stats.bump("explicit"),
                // An earlier migration in this function took the producer's weights.
                None => stats.bump("skipped-producer"),
            }
        }
        Ok(PassResult::from_stats(stats))
    }
}
