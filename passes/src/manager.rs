//! The pass manager: runs a parsed pipeline over a module.
//!
//! [`PassManager::parse`] turns a pipeline string into configured passes (unknown passes,
//! unknown options and bad values are [`PipelineError`]s pointing into the string).
//! [`PassManager::run`] then runs each pass over every function, in pipeline order, and
//! after each pass:
//!
//! 1. verifies the module when `verify_each` is set (the default), failing with
//!    [`PassError::Verify`] naming the pass — a pass that breaks the IR is a bug, and this
//!    is where it is caught;
//! 2. dumps the module to [`PassCx::dump`] with MLIR's banner
//!    (`// -----// IR Dump After Canonicalize (canonicalize) //----- //`) when
//!    `print_ir_after_all` is set, the pass is named in `print_ir_after`, or
//!    `print_ir_after_change` is set and the pass changed something;
//! 3. adds the pass's counters to its statistics ([`PassManager::stats_report`]).
//!
//! Invariant: the manager itself never changes the module; only passes do.

use std::io::Write;

use lowbit_dialects::ir::print::{print_module_with, PrintOptions};
use lowbit_dialects::ir::verify::verify_module;
use lowbit_dialects::ir::Module;

use crate::pass::{Pass, PassEnv, PassError, Stats};
use crate::pipeline::{self, PipelineError};
use crate::PassInfo;

/// The hook [`PassCx::after_pass`] holds.
pub type AfterPass<'a> = &'a mut dyn FnMut(&PassInfo, &Module, &PassEnv);

/// What a run sees besides the module: where IR dumps go and how modules print there.
#[derive(Default)]
pub struct PassCx<'a> {
    /// Where IR dumps go; nothing is dumped when `None`. (`mlir-opt` dumps to stderr.)
    pub dump: Option<&'a mut dyn Write>,
    /// Prints a module for a dump; the custom form without elision when `None`.
    pub printer: Option<&'a dyn Fn(&Module) -> String>,
    /// Called after each pass has run and the module verified, with the pass, the module and
    /// the pass environment (`--diff-numerics` evaluates the module here).
    pub after_pass: Option<AfterPass<'a>>,
}

impl PassCx<'_> {
    fn print(&self, m: &Module) -> String {
        match self.printer {
            Some(p) => p(m),
            None => print_module_with(
                m,
                PrintOptions {
                    elide: false,
                    ..PrintOptions::default()
                },
            ),
        }
    }
}

struct Entry {
    info: &'static PassInfo,
    pass: Box<dyn Pass>,
    options: String,
    stats: Stats,
}

/// A configured pipeline and the instrumentation around it.
pub struct PassManager {
    entries: Vec<Entry>,
    /// Verify the module after every pass (default: on).
    pub verify_each: bool,
    /// Dump the module after every pass.
    pub print_ir_after_all: bool,
    /// Dump the module after the passes with these pipeline names.
    pub print_ir_after: Vec<String>,
    /// Dump the module after a pass only when it reported a change.
    pub print_ir_after_change: bool,
    /// The weights and calibration inputs passes may use (empty unless the caller fills it).
    pub env: PassEnv,
}

impl std::fmt::Debug for PassManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassManager")
            .field("pipeline", &self.to_string())
            .finish_non_exhaustive()
    }
}

impl Default for PassManager {
    fn default() -> Self {
        PassManager {
            entries: Vec::new(),
            verify_each: true,
            print_ir_after_all: false,
            print_ir_after: Vec::new(),
            print_ir_after_change: false,
            env: PassEnv::default(),
        }
    }
}

impl PassManager {
    /// Parses a pipeline string and configures its passes.
    pub fn parse(pipeline: &str) -> Result<PassManager, PipelineError> {
        let mut pm = PassManager::default();
        for el in pipeline::parse(pipeline)? {
            let mut pass = (el.info.create)();
            pass.configure(&el.options)?;
            el.options.check_known()?;
            pm.entries.push(Entry {
                info: el.info,
                pass,
                options: el.options.to_text(),
                stats: Stats::default(),
            });
        }
        Ok(pm)
    }

    /// Appends the registered pass `info` with its default options.
    pub fn push(&mut self, info: &'static PassInfo) {
        self.entries.push(Entry {
            info,
            pass: (info.create)(),
            options: String::new(),
            stats: Stats::default(),
        });
    }

    /// True when the pipeline has no passes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pipeline's pass names, in order.
    pub fn pass_names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.info.name).collect()
    }

    /// Runs every pass over every function of `module`, in pipeline order.
    ///
    /// On error the module holds whatever the failing pass left; the error names the pass.
    pub fn run(&mut self, module: &mut Module, cx: &mut PassCx<'_>) -> Result<(), PassError> {
        for i in 0..self.entries.len() {
            let entry = &mut self.entries[i];
            let mut changed = false;
            for func in &mut module.funcs {
                let r = entry.pass.run_with_env(func, &mut self.env)?;
                changed |= r.changed;
                entry.stats.merge(&r.stats);
            }
            let info = entry.info;
            if self.verify_each {
                if let Err(errors) = verify_module(module) {
                    if self.prints_any() {
                        self.dump(cx, module, info, " Failed");
                    }
                    return Err(PassError::Verify {
                        pass: info.name,
                        errors,
                    });
                }
            }
            let wanted =
                self.print_ir_after_all || self.print_ir_after.iter().any(|n| n == info.name);
            let print = if self.print_ir_after_change {
                changed && (wanted || self.print_ir_after.is_empty())
            } else {
                wanted
            };
            if print {
                self.dump(cx, module, info, "");
            }
            if let Some(hook) = cx.after_pass.as_mut() {
                hook(info, module, &self.env);
            }
        }
        Ok(())
    }

    fn prints_any(&self) -> bool {
        self.print_ir_after_all || self.print_ir_after_change || !self.print_ir_after.is_empty()
    }

    fn dump(&self, cx: &mut PassCx<'_>, module: &Module, info: &PassInfo, suffix: &str) {
        let text = cx.print(module);
        if let Some(w) = cx.dump.as_mut() {
            // A dump that cannot be written (closed pipe) must not fail the compilation.
            let _ = write!(
                w,
                "// -----// IR Dump After {} ({}){suffix} //----- //\n{text}\n",
                info.type_name, info.name
            );
        }
    }

    /// The counters of each pipeline element, summed over every function and every run.
    pub fn stats(&self) -> Vec<(&'static str, &Stats)> {
        self.entries
            .iter()
            .map(|e| (e.info.name, &e.stats))
            .collect()
    }

    /// One line per pipeline element: `canonicalize: folded=3 simplified=0 removed=2`.
    pub fn stats_report(&self) -> String {
        self.entries
            .iter()
            .map(|e| {
                let mut s = if e.stats.iter().next().is_none() {
                    format!("{}: (no counters)\n", e.info.name)
                } else {
                    format!("{}: {}\n", e.info.name, e.stats)
                };
                for note in e.pass.notes() {
                    for line in note.lines() {
                        s.push_str("  ");
                        s.push_str(line);
                        s.push('\n');
                    }
                }
                s
            })
            .collect()
    }
}

impl std::fmt::Display for PassManager {
    /// The pipeline in canonical syntax (`canonicalize{max-fold-elements=64},cse`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}{}", e.info.name, e.options)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use lowbit_dialects::ir::{Attrs, Func, Loc, TensorType};
    use lowbit_dialects::Opcode;

    use super::*;
    use crate::pass::PassResult;
    use crate::testing::{max_rel_l1, module, run};

    /// Breaks the IR: appends a `graph.add` of two differently shaped parameters.
    #[derive(Default)]
    struct Broken;

    impl Pass for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn run(&mut self, f: &mut Func) -> Result<PassResult, PassError> {
            let (a, b) = (f.params[0], f.params[1]);
            let ty = TensorType::new([7], f.ty(a).elem);
            f.append_op(
                Opcode::Graph(lowbit_dialects::graph::Op::Add),
                vec![a, b],
                Attrs::new(),
                vec![ty],
                Loc::name("bad"),
            );
            Ok(PassResult {
                changed: true,
                stats: Stats::default(),
            })
        }
    }

    static BROKEN: PassInfo = PassInfo {
        name: "broken",
        type_name: "Broken",
        doc: "",
        create: || Box::new(Broken),
    };

    const SRC: &str = "func @f(%x: tensor<2xf32>, %y: tensor<3xf32>) -> tensor<2xf32> {\n  %a = graph.neg %x : tensor<2xf32>\n  %b = graph.neg %x : tensor<2xf32>\n  %c = graph.add %a, %b : tensor<2xf32>\n  return %c\n}\n";

    fn dumps(pm: &mut PassManager) -> String {
        let mut m = module(SRC);
        let mut out = Vec::new();
        pm.run(
            &mut m,
            &mut PassCx {
                dump: Some(&mut out),
                printer: None,
                after_pass: None,
            },
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn verify_each_names_the_pass() {
        let mut pm = PassManager::parse("cse").unwrap();
        pm.push(&BROKEN);
        let err = pm
            .run(&mut module(SRC), &mut PassCx::default())
            .unwrap_err();
        let PassError::Verify { pass, errors } = &err else {
            panic!("{err}")
        };
        assert_eq!(*pass, "broken");
        assert_eq!(errors.len(), 1);
        assert!(
            err.to_string()
                .starts_with("pass 'broken' produced invalid IR: "),
            "{err}"
        );
        pm.verify_each = false;
        pm.run(&mut module(SRC), &mut PassCx::default()).unwrap();
    }

    #[test]
    fn print_ir_after_all_and_change() {
        let mut pm = PassManager::parse("dce,cse").unwrap();
        pm.print_ir_after_all = true;
        let all = dumps(&mut pm);
        assert_eq!(all.matches("// -----// IR Dump After").count(), 2);
        assert!(
            all.starts_with("// -----// IR Dump After Dce (dce) //----- //\nfunc @f("),
            "{all}"
        );
        assert!(
            all.contains("\n}\n\n// -----// IR Dump After Cse (cse) //----- //\nfunc @f("),
            "{all}"
        );

        let mut pm = PassManager::parse("dce,cse").unwrap();
        pm.print_ir_after_change = true;
        let changed = dumps(&mut pm);
        assert_eq!(changed.matches("// -----// IR Dump After").count(), 1);
        assert!(
            changed.starts_with("// -----// IR Dump After Cse (cse) //----- //"),
            "{changed}"
        );

        let mut pm = PassManager::parse("dce,cse,dce").unwrap();
        pm.print_ir_after = vec!["dce".into()];
        assert_eq!(dumps(&mut pm).matches("IR Dump After Dce (dce)").count(), 2);
    }

    #[test]
    fn stats_accumulate_per_element() {
        let (_, stats) = run("cse,dce,canonicalize", SRC);
        assert_eq!(
            stats,
            "cse: merged=1\ndce: removed=0\ncanonicalize: folded=0 simplified=0 removed=0\n"
        );
    }

    /// Handwritten modules full of foldable, removable and duplicated work.
    const PROPERTY_MODULES: &[&str] = &[
        r#"
func @consts(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<3x2xf32>) {
  %c = graph.constant {value = dense<[[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]]> : tensor<2x3xf32>} : tensor<2x3xf32>
  %d = graph.exp %c : tensor<2x3xf32>
  %e = graph.softmax %d {axis = -1} : tensor<2x3xf32>
  %z = graph.constant {value = dense<0.0> : tensor<2x3xf32>} : tensor<2x3xf32>
  %a = graph.add %x, %z : tensor<2x3xf32>
  %m = graph.mul %a, %e : tensor<2x3xf32>
  %m2 = graph.mul %e, %a : tensor<2x3xf32>
  %s = graph.sub %m, %m2 : tensor<2x3xf32>
  %t = graph.transpose %s {perm = array<i64: 1, 0>} : tensor<3x2xf32>
  %tt = graph.transpose %t {perm = array<i64: 1, 0>} : tensor<2x3xf32>
  %r = graph.add %tt, %m : tensor<2x3xf32>
  return %r, %t
}"#,
        r#"
func @reshapes(%x: tensor<2x3x4xf32>) -> (tensor<4x6xf32>, tensor<24xf32>) {
  %a = graph.reshape %x : tensor<6x4xf32>
  %b = graph.transpose %a {perm = array<i64: 1, 0>} : tensor<4x6xf32>
  %c = graph.reshape %x : tensor<6x4xf32>
  %d = graph.reshape %c : tensor<24xf32>
  %one = graph.constant {value = dense<1.0> : tensor<f32>} : tensor<f32>
  %e = graph.div %d, %one : tensor<24xf32>
  %f = graph.tanh %e : tensor<24xf32>
  %g = graph.tanh %e : tensor<24xf32>
  %h = graph.add %f, %g : tensor<24xf32>
  %i = graph.cast %b : tensor<4x6xf32>
  return %i, %h
}"#,
        r#"
func @norms(%x: tensor<2x8xf32>, %y: tensor<2x8xf16>) -> (tensor<2x8xf32>, tensor<2x8xf16>, tensor<2xf32>) {
  %g = graph.constant {value = dense<[1.0, 2.0, 0.5, 1.0, 1.0, 1.5, 1.0, 0.75]> : tensor<8xf32>} : tensor<8xf32>
  %g2 = graph.mul %g, %g : tensor<8xf32>
  %n = graph.layer_norm %x, %g2 {axis = -1, epsilon = 1.0e-5 : f32} : tensor<2x8xf32>
  %n2 = graph.layer_norm %x, %g2 {axis = -1, epsilon = 1.0e-5 : f32} : tensor<2x8xf32>
  %s = graph.add %n, %n2 : tensor<2x8xf32>
  %c = graph.cast %s : tensor<2x8xf16>
  %h = graph.mul %c, %y : tensor<2x8xf16>
  %r = graph.reduce %s {kind = "sum", axes = array<i64: 1>, keepdims = false} : tensor<2xf32>
  return %s, %h, %r
}"#,
    ];

    #[test]
    fn canonicalize_cse_dce_preserve_outputs() {
        for src in PROPERTY_MODULES {
            let before = module(src);
            let (after, _) = run("canonicalize,cse,dce", src);
            assert!(
                after.funcs[0].body.len() < before.funcs[0].body.len(),
                "nothing simplified in {src}"
            );
            assert_eq!(max_rel_l1(&before, &after, 0..16), 0.0, "{src}");
        }
    }
}
