//! `dce`: dead-code elimination.
//!
//! Removes every pure op whose results are all unused, repeatedly, so that whole dead chains
//! go in one run ([`Func::remove_dead`]). Ops with side effects would stay; every op lowbit
//! has today is pure. Returned values and parameters are never removed.

use lowbit_dialects::ir::Func;

use crate::pass::{Pass, PassError, PassResult, Stats};

/// The `dce` pass.
#[derive(Debug, Default)]
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        let mut stats = Stats::with_keys(&["removed"]);
        stats.add("removed", func.remove_dead() as u64);
        Ok(PassResult::from_stats(stats))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{body, run};

    #[test]
    fn removes_dead_chains_only() {
        let src = r#"
func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %a = graph.exp %x : tensor<4xf32>
  %b = graph.neg %a : tensor<4xf32>
  %c = graph.relu %x : tensor<4xf32>
  return %c
}"#;
        let (m, stats) = run("dce", src);
        assert_eq!(body(&m), "%0 = graph.relu %arg0 : tensor<4xf32>\nreturn %0");
        assert_eq!(stats, "dce: removed=2\n");
        let (_, stats) = run("dce,dce", src);
        assert_eq!(stats, "dce: removed=2\ndce: removed=0\n");
    }
}
