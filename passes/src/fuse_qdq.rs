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
//! Identical blocks are saturated once: each function is cut into regions at values no
//! rule can look through, each distinct region is saturated and extracted once, and the
//! result is reused for every region with the same structure
//! ([`crate::egg::regions`]). `reuse=false` saturates each function whole instead (the
//! same result; for comparing and debugging).
//!
//! Options: `algebra` (also run [`crate::egg::rules::algebra`]), `iter-limit` (default 30),
//! `node-limit` (100000), `time-limit-ms` (10000; all three per distinct region),
//! `explain` (keep egg's explanation of every new op; read them with
//! [`FuseQdq::explanations`]; saturates whole functions), `reuse` (default true).
//!
//! Stats: one `stop_*` count per function for the reason saturation stopped (the first
//! region that did not saturate decides), `iterations` and `egraph_nodes` (summed over
//! the distinct regions), each rule's applications by name (counted in every region that
//! reuses them), `regions`, `regions_saturated` and `regions_reused`, `ops_new`,
//! `ops_removed` and `qmatmul_formed`.

use std::time::Duration;

use lowbit_dialects::ir::Func;
use lowbit_dialects::{lowbit, Opcode};

use crate::egg::regions::{optimize_regions, RegionCount};
use crate::egg::{optimize, rules, EggError, Limits, Report};
use crate::pass::{Pass, PassError, PassResult, Stats};
use crate::pipeline::{PassOptions, PipelineError};

/// The `fuse-qdq` pass.
#[derive(Debug)]
pub struct FuseQdq {
    /// Also saturate with the algebra rules.
    pub algebra: bool,
    /// Saturation limits.
    pub limits: Limits,
    /// Record egg explanations of new ops.
    pub explain: bool,
    /// Explanations recorded so far (one paragraph per new op), when `explain` is set.
    pub explanations: Vec<String>,
    /// Saturate each distinct region once and reuse it (default); `false` saturates
    /// each function whole.
    pub reuse: bool,
}

impl Default for FuseQdq {
    fn default() -> Self {
        FuseQdq {
            algebra: false,
            limits: Limits::default(),
            explain: false,
            explanations: Vec::new(),
            reuse: true,
        }
    }
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

    fn notes(&self) -> Vec<String> {
        self.explanations.clone()
    }

    fn configure(&mut self, opts: &PassOptions) -> Result<(), PipelineError> {
        self.algebra = opts.flag("algebra")?;
        self.explain = opts.flag("explain")?;
        self.reuse = match opts.string("reuse") {
            Ok(None) => true,
            Ok(Some("true" | "1")) => true,
            Ok(Some("false" | "0")) => false,
            Ok(Some(_)) => return Err(opts.invalid("reuse", "true or false")),
            // `reuse` without a value.
            Err(_) => opts.flag("reuse")?,
        };
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
        keys.extend([
            "regions",
            "regions_saturated",
            "regions_reused",
            "ops_new",
            "ops_removed",
            "qmatmul_formed",
        ]);
        let mut stats = Stats::with_keys(&keys);
        let (out, count) = if self.reuse && !self.explain {
            optimize_regions(func, &set, &self.limits)
        } else {
            optimize(func, &set, &self.limits, self.explain).map(|o| {
                let one = RegionCount {
                    regions: 1,
                    saturated: 1,
                    reused: 0,
                };
                (o, one)
            })
        }
        .map_err(|e| to_pass_error(func, e))?;
        out.report.add_to(&mut stats);
        stats.add("regions", count.regions);
        stats.add("regions_saturated", count.saturated);
        stats.add("regions_reused", count.reused);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{body, max_rel_l1, module, run};

    const MATMUL: &str = "func @f(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>) -> tensor<4x5xf64> {
        %0 = graph.constant {value = dense<[0.5, 0.25, 0.125, 3.0]> : tensor<4xf64>} : tensor<4xf64>
        %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf64>} : tensor<5xf64>
        %2 = lowbit.dequantize %arg0, %0 {axis = 0 : i64} : tensor<4x8xf64>
        %3 = lowbit.dequantize %arg1, %1 {axis = 1 : i64} : tensor<8x5xf64>
        %4 = graph.matmul %2, %3 : tensor<4x5xf64>
        return %4
      }";

    #[test]
    fn fuses_and_reports() {
        let (m, stats) = run("fuse-qdq", MATMUL);
        assert!(
            body(&m).contains("lowbit.qmatmul %arg0, %arg1, %1, %2"),
            "{}",
            body(&m)
        );
        assert!(stats.contains("stop_saturated=1"), "{stats}");
        assert!(stats.contains("matmul-dequantize=1"), "{stats}");
        assert!(stats.contains("qmatmul_formed=1"), "{stats}");
        assert!(max_rel_l1(&module(MATMUL), &m, 0..10) <= 1e-12);
    }

    #[test]
    fn limits_are_options_and_the_stop_reason_is_a_stat() {
        let (_, stats) = run("fuse-qdq{iter-limit=1}", MATMUL);
        assert!(stats.contains("stop_iteration_limit=1"), "{stats}");
        let (_, stats) = run("fuse-qdq{node-limit=1}", MATMUL);
        assert!(stats.contains("stop_node_limit=1"), "{stats}");
        let (_, stats) = run("fuse-qdq{time-limit-ms=60000 algebra}", MATMUL);
        assert!(stats.contains("stop_saturated=1"), "{stats}");
        assert!(stats.contains("transpose-transpose=0"), "{stats}");
    }

    #[test]
    fn explain_records_why_the_fusion_fired() {
        let mut pass = FuseQdq::default();
        let opts = crate::pipeline::parse("fuse-qdq{explain}")
            .unwrap()
            .remove(0)
            .options;
        pass.configure(&opts).unwrap();
        let mut m = module(MATMUL);
        let r = pass.run(&mut m.funcs[0]).unwrap();
        assert!(r.changed);
        let e = pass.explanations();
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("Rewrite=> matmul-dequantize"), "{}", e[0]);
    }
}
