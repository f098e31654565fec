//! `fuse-qdq`: fold quantize/dequantize chains into quantized ops by equality saturation.
//!
//! Runs the exact QDQ rule set ([`crate::egg::rules::qdq`]) over each function with the
//! egg bridge and extracts the cheapest equal function under the static cost model:
//!
//! - `matmul(dequantize(xq), dequantize(wq))` becomes `lowbit.qmatmul` with the scales as
//!   its epilogue, when the scales allow it exactly (per-tensor or per-row of `x`,
//!   per-tensor or per-column of `w`; per-block or reduction-axis scales do not fuse);
//!   EXACT-R.
//! - `quantize(dequantize(q, s, z), s, z)` round trips that change no value become `q`
//!   (guarded, EXACT-BIT), which also merges the requantize chain
//!   `quantize(dequantize(quantize(x)))` into `quantize(x)`.
//! - a constant factor after a dequantize folds into its scale (EXACT-R); transposes and
//!   reshapes move to the integer side of a dequantize when the scale follows the data
//!   (EXACT-BIT).
//!
//! A dequantized value that has other uses stays for them; the matmul still reads the
//! integer tensor (a quarter of the bytes of its `f32` form). Only exact rules run.
//!
//! Options: `algebra` (also run [`crate::egg::rules::algebra`]), `iter-limit` (default 30),
//! `node-limit` (100000), `time-limit-ms` (10000), `explain` (keep egg's explanation of
//! every new op; read them with [`FuseQdq::explanations`]).
//!
//! Stats: one `stop_*` count per function for the reason saturation stopped, `iterations`,
//! `egraph_nodes`, each rule's applications by name, `ops_new`, `ops_removed` and
//! `qmatmul_formed`.

use std::time::Duration;

use lowbit_dialects::ir::Func;
use lowbit_dialects::{lowbit, Opcode};

use crate::egg::{optimize, rules, EggError, Limits, Report};
use crate::pass::{Pass, PassError, PassResult, Stats};
use crate::pipeline::{PassOptions, PipelineError};

/// The `fuse-qdq` pass.
#[derive(Debug, Default)]
pub struct FuseQdq {
    /// Also saturate with the algebra rules.
    pub algebra: bool,
    /// Saturation limits.
    pub limits: Limits,
    /// Record egg explanations of new ops.
    pub explain: bool,
    /// Explanations recorded so far (one paragraph per new op), when `explain` is set.
    pub explanations: Vec<String>,
}

impl FuseQdq {
    /// The rules this configuration saturates with.
    pub fn rules(&self) -> Vec<rules::Rule> {
        let mut v = rules::qdq::rules();
        if self.algebra {
            v.extend(rules::algebra::rules());
        }
        v
    }

    /// The explanations recorded by runs with `explain`, one paragraph per new op.
    pub fn explanations(&self) -> &[String] {
        &self.explanations
    }
}

impl Pass for FuseQdq {
    fn name(&self) -> &'static str {
        "fuse-qdq"
    }

    fn configure(&mut self, opts: &PassOptions) -> Result<(), PipelineError> {
        self.algebra = opts.flag("algebra")?;
        self.explain = opts.flag("explain")?;
        if let Some(n) = opts.usize("iter-limit")? {
            self.limits.iterations = n;
        }
        if let Some(n) = opts.usize("node-limit")? {
            self.limits.nodes = n;
        }
        if let Some(ms) = opts.usize("time-limit-ms")? {
            self.limits.time = Duration::from_millis(ms as u64);
        }
        Ok(())
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        let set = self.rules();
        let mut keys = Report::stat_keys(&set);
        keys.extend(["ops_new", "ops_removed", "qmatmul_formed"]);
        let mut stats = Stats::with_keys(&keys);
        let out =
            optimize(func, &set, &self.limits, self.explain).map_err(|e| to_pass_error(func, e))?;
        out.report.add_to(&mut stats);
        stats.add("ops_new", out.new_ops);
        stats.add("ops_removed", out.removed_ops);
        let qmm = |f: &Func| {
            f.body
                .iter()
                .filter(|&&op| f.ops[op].opcode == Opcode::Lowbit(lowbit::Op::QMatMul))
                .count() as u64
        };
        stats.add("qmatmul_formed", qmm(&out.func).saturating_sub(qmm(func)));
        self.explanations
            .extend(out.report.explanations.iter().cloned());
        let changed = out.changed;
        if changed {
            *func = out.func;
        }
        Ok(PassResult { changed, stats })
    }
}

fn to_pass_error(func: &Func, e: EggError) -> PassError {
    PassError::Op {
        pass: "fuse-qdq",
        op: "func.func",
        loc: func.loc.clone(),
        message: format!("in '@{}': {e}", func.name),
    }
}
