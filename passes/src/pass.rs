//! The [`Pass`] trait, what a pass returns ([`PassResult`], [`Stats`]) and how it fails
//! ([`PassError`]).
//!
//! A pass is configured once from its pipeline options, then run on each function of a
//! module in turn; it may keep state between functions (counters) but must not depend on
//! the order in which functions come. It reports whether it changed the function: the
//! manager uses that for `--print-ir-after-change`, so a pass that rewrote something must
//! say so, and one that did not must not.

use lowbit_dialects::interp::{Tensor, Weights};
use lowbit_dialects::ir::verify::VerifyError;
use lowbit_dialects::ir::{Func, Loc};
use thiserror::Error;

use crate::pipeline::{PassOptions, PipelineError};

/// A function pass.
pub trait Pass {
    /// The pipeline name (kebab-case), as in the registry.
    fn name(&self) -> &'static str;

    /// Reads the pass's options. Every option the pass knows must be queried here, even when
    /// absent: the manager reports any option given but never queried as unknown.
    fn configure(&mut self, opts: &PassOptions) -> Result<(), PipelineError> {
        let _ = opts;
        Ok(())
    }

    /// Rewrites one function.
    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError>;

    /// Rewrites one function with access to the weight store and calibration inputs. The
    /// manager calls this; the default ignores `env` and calls [`Pass::run`]. A pass that
    /// reads or rewrites weights (quantization, folding rotations or scales into them)
    /// overrides it, and its `run` reports that it needs them.
    fn run_with_env(
        &mut self,
        func: &mut Func,
        env: &mut PassEnv,
    ) -> Result<PassResult, PassError> {
        let _ = env;
        self.run(func)
    }

    /// Text lines the pass recorded for `--pass-stats` beyond its counters: why a fusion
    /// fired (egg explanations), which precision a search chose per op and why cheaper
    /// ones were rejected. The default is none.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What a pass may read and change besides the IR.
///
/// Invariants: every `graph.weight {name}` the module uses names an entry of `weights`
/// (when weights were given at all), with the op's result type; a pass that adds, replaces
/// or removes entries sets `weights_changed`, and the caller writes the store out beside
/// the IR. Weights no op names any more may stay (the writer keeps only used ones).
#[derive(Clone, Debug, Default)]
pub struct PassEnv {
    /// Weight values by name, as the interpreter holds them (f64, integer values exact).
    pub weights: Weights,
    /// Calibration inputs: each entry is a full argument list for the function being
    /// optimized. Passes use the entries whose types match the function's parameters.
    pub calibration: Vec<Vec<Tensor>>,
    /// Set by a pass that changed `weights`.
    pub weights_changed: bool,
}

impl PassEnv {
    /// The calibration sets that fit `func`'s parameter types (element type and shape).
    pub fn calibration_for(&self, func: &Func) -> Vec<&[Tensor]> {
        let params = func.param_types();
        self.calibration
            .iter()
            .filter(|set| {
                set.len() == params.len() && set.iter().zip(params.iter()).all(|(t, p)| t.ty == *p)
            })
            .map(|set| set.as_slice())
            .collect()
    }
}

/// Named counters a pass reports, in a fixed order (the order the pass declares them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats(Vec<(&'static str, u64)>);

impl Stats {
    /// Counters `keys`, all zero. Declaring them up front keeps `--pass-stats` output stable
    /// whether or not a counter fired.
    pub fn with_keys(keys: &[&'static str]) -> Stats {
        Stats(keys.iter().map(|&k| (k, 0)).collect())
    }

    /// Adds `n` to counter `key` (appending it when undeclared).
    pub fn add(&mut self, key: &'static str, n: u64) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v += n,
            None => self.0.push((key, n)),
        }
    }

    /// Adds one to counter `key`.
    pub fn bump(&mut self, key: &'static str) {
        self.add(key, 1);
    }

    /// The value of counter `key` (0 when absent).
    pub fn get(&self, key: &str) -> u64 {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, v)| *v)
    }

    /// Adds every counter of `other`.
    pub fn merge(&mut self, other: &Stats) {
        for &(k, v) in &other.0 {
            self.add(k, v);
        }
    }

    /// The counters in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().copied()
    }

    /// True when any counter is non-zero.
    pub fn any(&self) -> bool {
        self.0.iter().any(|&(_, v)| v > 0)
    }
}

impl std::fmt::Display for Stats {
    /// `folded=3 removed=2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// What one run of a pass on one function did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassResult {
    /// Whether the function changed.
    pub changed: bool,
    /// Counters.
    pub stats: Stats,
}

impl PassResult {
    /// A result whose `changed` flag is "any counter is non-zero".
    pub fn from_stats(stats: Stats) -> PassResult {
        PassResult {
            changed: stats.any(),
            stats,
        }
    }
}

/// Why a pass, or the pipeline around it, failed.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum PassError {
    /// The module did not verify after a pass (a bug in that pass).
    #[error("pass '{pass}' produced invalid IR: {}", first_error(.errors))]
    Verify {
        /// The pass that ran last.
        pass: &'static str,
        /// Every verifier error.
        errors: Vec<VerifyError>,
    },
    /// A pass could not handle an op.
    #[error("pass '{pass}' failed on '{op}' op: {message}")]
    Op {
        /// The pass.
        pass: &'static str,
        /// The op's name.
        op: &'static str,
        /// The op's location.
        loc: Loc,
        /// What went wrong.
        message: String,
    },
}

fn first_error(errors: &[VerifyError]) -> String {
    match errors {
        [] => "no error recorded".to_string(),
        [e] => e.to_string(),
        [e, rest @ ..] => format!("{e} (and {} more)", rest.len()),
    }
}
