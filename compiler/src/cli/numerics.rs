//! `lowbit opt --diff-numerics=INPUTS`: the reference interpreter runs the function before
//! the pipeline and after every pass on the same inputs, and a table shows, per pass, how
//! far the outputs moved from the unoptimized graph's (techniques.md §0.3 metrics: max abs
//! error, relative L1 `Σ|x − r| / Σ|r|`, cosine similarity of the flattened outputs).
//!
//! `INPUTS` is a `.npz`/`.safetensors` file with tensors `arg0`, `arg1`, ... or
//! `random:SEED` for deterministic random inputs (the same generator as `lowbit run
//! --random-inputs`). The function is the module's only one, or `@main`.
//!
//! Invariant: the table has one row per pass, in pipeline order, after a `(input)` row
//! that compares the reference with itself; a pass that changes the function's results'
//! types or count gets a row saying so instead of numbers.

use std::path::Path;

use lowbit_dialects::interp::{run_func, Tensor, Weights};
use lowbit_dialects::ir::Module;

use super::run::{inputs_for, signature};
use super::{CliResult, Failure};
use crate::driver::select_func;
use crate::tensors::to_interp;

/// What `--diff-numerics` evaluates on.
#[derive(Clone, Debug)]
pub(super) struct DiffInputs {
    /// The function's arguments, in order.
    args: Vec<Tensor>,
    /// The function's name.
    func: String,
    /// The reference outputs (the module before the pipeline).
    reference: Vec<Tensor>,
    /// One line per pass.
    rows: Vec<String>,
}

/// The metrics of `got` against `reference`, over all outputs flattened together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// max |x − r|.
    pub max_abs: f64,
    /// Σ|x − r| / Σ|r| (0 when both are all zeros).
    pub rel_l1: f64,
    /// ⟨x, r⟩ / (‖x‖ ‖r‖) (1 when both are all zeros).
    pub cosine: f64,
}

/// Compares two lists of tensors element by element (same shapes required).
pub fn metrics(got: &[Tensor], reference: &[Tensor]) -> Metrics {
    let (mut max_abs, mut l1, mut l1_ref) = (0f64, 0f64, 0f64);
    let (mut dot, mut nx, mut nr) = (0f64, 0f64, 0f64);
    for (x, r) in got.iter().zip(reference) {
        for (&a, &b) in x.data.iter().zip(&r.data) {
            let d = (a - b).abs();
            max_abs = if d.is_nan() { f64::NAN } else { max_abs.max(d) };
            l1 += d;
            l1_ref += b.abs();
            dot += a * b;
            nx += a * a;
            nr += b * b;
        }
    }
    let rel_l1 = if l1_ref == 0.0 {
        if l1 == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        l1 / l1_ref
    };
    let cosine = if nx == 0.0 && nr == 0.0 {
        1.0
    } else {
        dot / (nx.sqrt() * nr.sqrt())
    };
    Metrics {
        max_abs,
        rel_l1,
        cosine,
    }
}

impl DiffInputs {
    /// Reads or generates the inputs for `module`'s function and evaluates the reference.
    pub(super) fn prepare(spec: &str, module: &Module, weights: &Weights) -> CliResult<Self> {
        let f = select_func(module, None).map_err(|e| {
            Failure::msg(format!(
                "--diff-numerics needs one function to evaluate: {e}"
            ))
        })?;
        let manifest = signature(f)?;
        let given = match spec.strip_prefix("random:") {
            Some(seed) => {
                let seed: u64 = seed.parse().map_err(|_| {
                    Failure::msg(format!(
                        "--diff-numerics=random:SEED needs an integer seed, got '{seed}'"
                    ))
                })?;
                inputs_for(None, Some(seed), &manifest)?
            }
            None => inputs_for(Some(Path::new(spec)), None, &manifest)?,
        };
        let args: Vec<Tensor> = manifest
            .inputs
            .iter()
            .map(|s| to_interp(&given[&s.name]))
            .collect();
        let reference = run_func(f, &args, weights).map_err(|e| {
            Failure::msg(format!(
                "--diff-numerics: the unoptimized '@{}' cannot be evaluated: {e}",
                f.name
            ))
        })?;
        let mut me = DiffInputs {
            args,
            func: f.name.clone(),
            reference,
            rows: Vec::new(),
        };
        let elems: usize = me.reference.iter().map(|t| t.data.len()).sum();
        me.rows.push(format!(
            "// diff-numerics of '@{}' on {} ({} output{}, {elems} elements) against the unoptimized graph",
            me.func,
            if spec.starts_with("random:") {
                spec.to_string()
            } else {
                format!("'{spec}'")
            },
            me.reference.len(),
            if me.reference.len() == 1 { "" } else { "s" },
        ));
        me.rows.push(format!(
            "{:<24} {:>12} {:>12} {:>12}",
            "pass", "max-abs", "rel-l1", "cosine"
        ));
        let m = metrics(&me.reference, &me.reference);
        me.push_row("(input)", m);
        Ok(me)
    }

    fn push_row(&mut self, pass: &str, m: Metrics) {
        self.rows.push(format!(
            "{:<24} {:>12.3e} {:>12.3e} {:>12.8}",
            pass, m.max_abs, m.rel_l1, m.cosine
        ));
    }

    /// Evaluates `module` after pass `pass` and adds its row.
    pub(super) fn after_pass(&mut self, pass: &str, module: &Module, weights: &Weights) {
        let Some(f) = module.func(&self.func) else {
            self.rows
                .push(format!("{pass:<24} (function '@{}' is gone)", self.func));
            return;
        };
        let same_types = f.result_types().len() == self.reference.len()
            && f.result_types()
                .iter()
                .zip(&self.reference)
                .all(|(t, r)| t.shape == r.ty.shape);
        if !same_types {
            self.rows
                .push(format!("{pass:<24} (the function's results changed shape)"));
            return;
        }
        match run_func(f, &self.args, weights) {
            Ok(outs) => {
                let m = metrics(&outs, &self.reference);
                self.push_row(pass, m);
            }
            Err(e) => self.rows.push(format!("{pass:<24} (cannot evaluate: {e})")),
        }
    }

    /// The table, one line per row.
    pub(super) fn table(&self) -> String {
        let mut s = self.rows.join("\n");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lowbit_dialects::ir::{Elem, TensorType};

    fn t(v: &[f64]) -> Tensor {
        Tensor::new(TensorType::new([v.len() as i64], Elem::F32), v.to_vec())
    }

    #[test]
    fn metrics_follow_the_definitions() {
        // x = (1, 2), r = (1, 1): max 1, L1 1/2, cos = 3 / (sqrt 5 · sqrt 2).
        let m = metrics(&[t(&[1.0, 2.0])], &[t(&[1.0, 1.0])]);
        assert_eq!(m.max_abs, 1.0);
        assert_eq!(m.rel_l1, 0.5);
        assert!((m.cosine - 3.0 / (5f64.sqrt() * 2f64.sqrt())).abs() < 1e-15);
        let same = metrics(&[t(&[0.0, 0.0])], &[t(&[0.0, 0.0])]);
        assert_eq!((same.max_abs, same.rel_l1, same.cosine), (0.0, 0.0, 1.0));
        let off = metrics(&[t(&[1.0])], &[t(&[0.0])]);
        assert_eq!(off.rel_l1, f64::INFINITY);
        let opposite = metrics(&[t(&[1.0, -2.0])], &[t(&[-1.0, 2.0])]);
        assert!((opposite.cosine + 1.0).abs() < 1e-15);
    }
}
