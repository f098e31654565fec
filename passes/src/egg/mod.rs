//! The egg bridge: equality saturation over lowbit functions.
//!
//! ```text
//! Func ──bridge::load──► e-graph (lang::Node, analysis::TypeAnalysis)
//!                          │ saturate(rules, Limits)   — exact rules only; bounded; stop reason
//!                          ▼
//!        bridge::extract (cost::node_cost, deterministic) ──► Func (locations kept / fused)
//! ```
//!
//! - [`lang`]: the language. One [`lang::Node::Op`] per IR op carrying its opcode (so every
//!   op of the `graph`, `lowbit`, `attn`, `rot` and `kernel` dialect tables is in the
//!   language by construction), its attributes ([`lang::AttrKey`], hashable), its declared
//!   result types and its operands; arguments are leaves, weights and constants are
//!   zero-operand ops.
//! - [`analysis`]: types (via the dialects' own inference) and small constant values per
//!   e-class; a merge of two classes that disagree on type is recorded and turned into an
//!   error by [`saturate`] — it fails loudly, it never picks a side.
//! - [`cost`]: the static cost model (bytes moved by bit width, FLOPs, kernel launches).
//! - [`bridge`]: IR → e-graph → IR, deterministic, with locations.
//! - [`rules`]: named rules with `lhs -> rhs` docs and exactness labels, in sets
//!   ([`rules::algebra`], [`rules::qdq`]); [`rules::table`] enumerates all of them.
//!
//! # Using it from a pass
//!
//! ```
//! use lowbit_dialects::ir::parse::parse_module;
//! use lowbit_passes::egg::{optimize, rules, Limits};
//!
//! let src = "func @f(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
//!   %0 = graph.transpose %arg0 {perm = array<i64: 1, 0>} : tensor<3x2xf32>
//!   %1 = graph.transpose %0 {perm = array<i64: 1, 0>} : tensor<2x3xf32>
//!   return %1
//! }";
//! let mut m = parse_module(src, "f.mlir", 0).unwrap();
//! let set: Vec<rules::Rule> = rules::algebra::rules();
//! let out = optimize(&m.funcs[0], &set, &Limits::default(), false).unwrap();
//! assert!(out.changed);
//! assert!(out.func.body.is_empty()); // transpose∘transpose by the inverse is the argument
//! assert_eq!(out.report.stop, lowbit_passes::egg::Stop::Saturated);
//! m.funcs[0] = out.func;
//! ```
//!
//! A pass picks its rule sets, calls [`optimize`] on each function, and copies
//! [`Report::add_to`] into its [`crate::Stats`] so `--pass-stats` shows the stop reason.
//!
//! # Determinism
//!
//! Loading adds nodes in body order, egg's tables use a fixed hasher, rules are applied in
//! table order, and extraction breaks cost ties by node order and emits ops in original
//! order: the same input gives the same output byte for byte, as long as the *time* limit
//! is not what stopped the run (iteration and node limits are deterministic; the time
//! limit is a safety net, and the stats say when it fired).
//!
//! # Identical blocks
//!
//! [`regions::optimize_regions`] cuts a function at values no rule can look through
//! (a block's output after its layer norm), saturates each distinct region once and
//! reuses the result for every region with the same structure: a stack of identical
//! transformer blocks costs about one block per distinct block, plus stitching.
//! `fuse-qdq` uses it unless asked for `reuse=false`.

pub mod analysis;
pub mod bridge;
pub mod cost;
pub mod examples;
pub mod lang;
pub mod regions;
pub mod rules;

use std::time::Duration;

use egg::{Runner, StopReason};
use thiserror::Error;

use lowbit_dialects::ir::Func;

use self::rules::Rule;
use crate::pass::Stats;

/// Explicit saturation limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Iterations (rule application rounds).
    pub iterations: usize,
    /// E-nodes in the e-graph.
    pub nodes: usize,
    /// Wall-clock time.
    pub time: Duration,
}

impl Default for Limits {
    /// 30 iterations, 100 000 nodes, 10 s.
    fn default() -> Self {
        Limits {
            iterations: 30,
            nodes: 100_000,
            time: Duration::from_secs(10),
        }
    }
}

/// Why saturation stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// No rule changed the e-graph in the last iteration.
    Saturated,
    /// The iteration limit was reached.
    IterationLimit,
    /// The node limit was reached.
    NodeLimit,
    /// The time limit was reached (the result may then differ between machines).
    TimeLimit,
    /// Something else (egg's message).
    Other(String),
}

impl Stop {
    /// The stats counter that records this stop reason.
    pub fn key(&self) -> &'static str {
        match self {
            Stop::Saturated => "stop_saturated",
            Stop::IterationLimit => "stop_iteration_limit",
            Stop::NodeLimit => "stop_node_limit",
            Stop::TimeLimit => "stop_time_limit",
            Stop::Other(_) => "stop_other",
        }
    }
}

/// What a saturation run did.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Why it stopped.
    pub stop: Stop,
    /// Iterations run.
    pub iterations: usize,
    /// E-nodes at the end.
    pub nodes: usize,
    /// E-classes at the end.
    pub classes: usize,
    /// How many times each rule fired (unions it made), in rule-set order.
    pub applied: Vec<(&'static str, u64)>,
    /// Explanations of the new ops, when asked for (one paragraph per op).
    pub explanations: Vec<String>,
}

impl Report {
    /// The stats keys a pass should declare, for `rules`, in a stable order.
    pub fn stat_keys(rules: &[Rule]) -> Vec<&'static str> {
        let mut keys = vec![
            "stop_saturated",
            "stop_iteration_limit",
            "stop_node_limit",
            "stop_time_limit",
            "stop_other",
            "iterations",
            "egraph_nodes",
        ];
        keys.extend(rules.iter().map(|r| r.name));
        keys
    }

    /// Adds this run to `stats`: one count for the stop reason, the iterations, the final
    /// node count, and each rule's applications under its name.
    pub fn add_to(&self, stats: &mut Stats) {
        stats.bump(self.stop.key());
        stats.add("iterations", self.iterations as u64);
        stats.add("egraph_nodes", self.nodes as u64);
        for &(name, n) in &self.applied {
            stats.add(name, n);
        }
    }
}

/// Why the bridge failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EggError {
    /// An approximate rule was given to the saturating runner.
    #[error(
        "rule '{name}' is {label} and may not run in saturation; apply it as a one-way lowering"
    )]
    NotExact {
        /// The rule.
        name: &'static str,
        /// Its label.
        label: rules::Exactness,
    },
    /// The analysis found an ill-typed node or an unsound merge.
    #[error("{0}")]
    Analysis(String),
}

/// Runs `rules` to saturation (or a limit) on `loaded`'s e-graph.
///
/// Refuses any rule that is not EXACT-BIT or EXACT-R, before running anything. After the
/// run, the first error the analysis recorded (an unsound merge or an ill-typed node a rule
/// built) is returned as [`EggError::Analysis`].
pub fn saturate(
    loaded: bridge::Loaded,
    rules: &[Rule],
    limits: &Limits,
) -> Result<(bridge::Loaded, Report), EggError> {
    let rewrites = exact_rewrites(rules)?;
    saturate_with(loaded, rules, &rewrites, limits)
}

/// The egg rewrites of `rules`, refusing any rule that is not EXACT-BIT or EXACT-R (the
/// saturating runner's precondition, checked before anything runs).
pub(crate) fn exact_rewrites(
    rules: &[Rule],
) -> Result<Vec<egg::Rewrite<lang::Node, analysis::TypeAnalysis>>, EggError> {
    for r in rules {
        if !r.exactness.is_exact() {
            return Err(EggError::NotExact {
                name: r.name,
                label: r.exactness,
            });
        }
    }
    Ok(rules.iter().map(Rule::rewrite).collect())
}

/// [`saturate`] with the rules' rewrites built already (`rewrites[i]` is
/// `rules[i].rewrite()`; [`regions`] builds them once for all its regions). The rules
/// must have been checked exact.
pub(crate) fn saturate_with(
    loaded: bridge::Loaded,
    rules: &[Rule],
    rewrites: &[egg::Rewrite<lang::Node, analysis::TypeAnalysis>],
    limits: &Limits,
) -> Result<(bridge::Loaded, Report), EggError> {
    let bridge::Loaded {
        egraph,
        roots,
        originals,
    } = loaded;
    if let Some(e) = egraph.analysis.errors.first() {
        return Err(EggError::Analysis(e.message.clone()));
    }
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_iter_limit(limits.iterations)
        .with_node_limit(limits.nodes)
        .with_time_limit(limits.time)
        .run(rewrites);
    let stop = match &runner.stop_reason {
        Some(StopReason::Saturated) => Stop::Saturated,
        Some(StopReason::IterationLimit(_)) => Stop::IterationLimit,
        Some(StopReason::NodeLimit(_)) => Stop::NodeLimit,
        Some(StopReason::TimeLimit(_)) => Stop::TimeLimit,
        Some(StopReason::Other(s)) => Stop::Other(s.clone()),
        None => Stop::Other("no stop reason".to_string()),
    };
    let applied = rules
        .iter()
        .map(|r| {
            let n: usize = runner
                .iterations
                .iter()
                .filter_map(|it| it.applied.get(&egg::Symbol::from(r.name)))
                .sum();
            (r.name, n as u64)
        })
        .collect();
    let egraph = runner.egraph;
    if let Some(e) = egraph.analysis.errors.first() {
        return Err(EggError::Analysis(e.message.clone()));
    }
    let report = Report {
        stop,
        iterations: runner.iterations.len(),
        nodes: egraph.total_number_of_nodes(),
        classes: egraph.number_of_classes(),
        applied,
        explanations: Vec::new(),
    };
    Ok((
        bridge::Loaded {
            egraph,
            roots,
            originals,
        },
        report,
    ))
}

/// The result of [`optimize`].
pub struct Optimized {
    /// The optimized function (the original, untouched, when nothing changed).
    pub func: Func,
    /// Whether it changed.
    pub changed: bool,
    /// New ops in `func`.
    pub new_ops: u64,
    /// Original ops no longer in `func`.
    pub removed_ops: u64,
    /// The saturation report.
    pub report: Report,
}

/// Largest term (in nodes, counted as a tree) an explanation is printed for.
pub const EXPLAIN_TERM_LIMIT: usize = 400;

/// Loads `func`, saturates with `rules` under `limits`, extracts the cheapest equal
/// function. With `explain`, egg explanations of every new op that replaced an original
/// one are in [`Report::explanations`].
pub fn optimize(
    func: &Func,
    rules: &[Rule],
    limits: &Limits,
    explain: bool,
) -> Result<Optimized, EggError> {
    let loaded = bridge::load(func, explain);
    let (mut loaded, mut report) = saturate(loaded, rules, limits)?;
    let ex = bridge::extract(&loaded, func);
    if explain {
        for &(op, orig) in &ex.replaced {
            report
                .explanations
                .push(explain_op(&mut loaded, &ex.func, op, orig));
        }
    }
    if !ex.changed {
        return Ok(Optimized {
            func: func.clone(),
            changed: false,
            new_ops: 0,
            removed_ops: 0,
            report,
        });
    }
    Ok(Optimized {
        func: ex.func,
        changed: true,
        new_ops: ex.new_ops,
        removed_ops: ex.removed_ops,
        report,
    })
}

/// Tree size of the term behind uncanonical id `id`, stopping at `limit`.
fn term_size(eg: &analysis::Graph, id: egg::Id, limit: usize) -> usize {
    let mut n = 0;
    let mut stack = vec![id];
    while let Some(i) = stack.pop() {
        n += 1;
        if n > limit {
            return n;
        }
        stack.extend(egg::Language::children(eg.id_to_node(i)).iter().copied());
    }
    n
}

/// One explanation paragraph: why new op `op` (of the extracted `f`) equals original
/// op `orig`.
fn explain_op(
    loaded: &mut bridge::Loaded,
    f: &Func,
    op: lowbit_dialects::ir::Op,
    orig: egg::Id,
) -> String {
    let d = &f.ops[op];
    let head = format!("{} at {}:", d.opcode, d.loc);
    let eg = &mut loaded.egraph;
    let best = bridge::best_nodes(eg);
    let class = eg.find(orig);
    let node = best[&class].1.clone();
    let new = eg.add_uncanonical(node);
    let size = term_size(eg, orig, EXPLAIN_TERM_LIMIT).max(term_size(eg, new, EXPLAIN_TERM_LIMIT));
    if size > EXPLAIN_TERM_LIMIT {
        return format!("{head} term larger than {EXPLAIN_TERM_LIMIT} nodes; explanation omitted");
    }
    let mut ex = eg.explain_id_equivalence(orig, new);
    let steps: Vec<String> = ex.get_flat_strings();
    format!("{head}\n  {}", steps.join("\n  "))
}

#[cfg(test)]
mod tests;
