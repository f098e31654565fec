//! # lowbit-passes: transformations over the lowbit IR
//!
//! A pass rewrites one function at a time ([`Pass::run`]) and reports whether it changed
//! anything, with counters ([`PassResult`]). The [`PassManager`] parses an MLIR-style
//! pipeline string (`canonicalize,cse,dce`, options in braces:
//! `canonicalize{max-fold-elements=64}`), runs each pass over every function of a module,
//! verifies the module after each pass, prints IR dumps with MLIR's banners, and collects
//! the counters for `--pass-stats`.
//!
//! ```text
//! "canonicalize,cse" ─► pipeline::parse ─► [(PassInfo, options)] ─► registry::create ─► Box<dyn Pass>
//!                                                                                        │
//! Module ─► PassManager::run: for each pass { for each func: pass.run(func) ; verify ; dump }
//! ```
//!
//! Every pass is listed once, in the [`passes!`] table below: its pipeline name
//! (kebab-case, equal to its file name in snake_case and to its test folder
//! `tests/cases/<name>/`), its type and a one-line description. Passes never print or
//! exit: they return [`PassResult`] or a [`PassError`], and the edge (the CLI) renders.
//!
//! Interpreter-checked exactness: every rewrite here is exact (`canonicalize`, `cse`, `dce`)
//! or exact up to rounding (`lower-to-kernel`'s fused epilogues), and the tests check each
//! with the reference interpreter on random inputs.

pub mod canonicalize;
pub mod cse;
pub mod dce;
pub mod egg;
pub mod fold_rotations;
pub mod fuse_attention;
pub mod fuse_qdq;
pub mod lower_to_kernel;
pub mod manager;
pub mod pass;
pub mod pipeline;
pub mod quant;
pub mod quantize_attention;
pub mod rotate;
pub mod smooth_attention;
pub mod sparsify_attention;
#[cfg(test)]
mod testing;
mod util;

pub use manager::{AfterPass, PassCx, PassManager};
pub use pass::{Pass, PassEnv, PassError, PassResult, Stats};
pub use pipeline::{PassOptions, PipelineError, PipelineErrorKind};

/// A registered pass: its pipeline name, its type's name (for IR dump banners), a one-line
/// description, and a constructor with default options.
#[derive(Clone, Copy)]
pub struct PassInfo {
    /// The pipeline name, kebab-case (`lower-to-kernel`).
    pub name: &'static str,
    /// The Rust type's name (`LowerToKernel`), shown in `IR Dump After` banners.
    pub type_name: &'static str,
    /// One line for `--help` listings.
    pub doc: &'static str,
    /// Builds the pass with its default options.
    pub create: fn() -> Box<dyn Pass>,
}

impl std::fmt::Debug for PassInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassInfo")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Declares the pass registry: `"name" => Type, "doc";`, one line per pass.
macro_rules! passes {
    ($($name:literal => $ty:ident, $doc:literal;)*) => {
        /// Every registered pass, in table order.
        pub static PASSES: &[PassInfo] = &[
            $(PassInfo {
                name: $name,
                type_name: stringify!($ty),
                doc: $doc,
                create: || Box::new(<$ty>::default()),
            },)*
        ];
    };
}

use canonicalize::Canonicalize;
use cse::Cse;
use dce::Dce;
use fold_rotations::FoldRotations;
use fuse_attention::FuseAttention;
use fuse_qdq::FuseQdq;
use lower_to_kernel::LowerToKernel;
use quant::migrate_scales::MigrateScales;
use quant::quantize_activations::QuantizeActivations;
use quant::quantize_weights::QuantizeWeights;
use quantize_attention::QuantizeAttention;
use rotate::Rotate;
use smooth_attention::SmoothAttention;
use sparsify_attention::SparsifyAttention;

passes! {
    "canonicalize"         => Canonicalize,         "fold constant subgraphs, remove identities, compose transposes and reshapes, drop dead ops";
    "cse"                  => Cse,                  "merge pure ops with equal opcodes, operands, attributes and result types";
    "dce"                  => Dce,                  "remove pure ops whose results are unused";
    "fuse-qdq"             => FuseQdq,              "fold quantize/dequantize chains into lowbit.qmatmul, drop exact Q∘DQ round trips, fold scales (e-graph, exact rules)";
    "fuse-attention"       => FuseAttention,        "fuse matmul-scale-mask-softmax-matmul chains (heads, GQA repeats) into attn.sdpa (EXACT-R)";
    "smooth-attention"     => SmoothAttention,      "exact SageAttention smoothing before attn.sdpa: K minus its token mean (R1), Q minus its block mean with the ΔS score correction (R2) (EXACT-R)";
    "quantize-attention"   => QuantizeAttention,    "attn.sdpa -> SageAttention-style attn.quantized_sdpa with a given recipe, or the cheapest meeting a cosine budget on calibration inputs (APPROX)";
    "sparsify-attention"   => SparsifyAttention,    "sdpa -> block_sparse_sdpa with a run-time block mask from pooled Q/K estimates (APPROX)";
    "rotate"               => Rotate,               "QuaRot/SpinQuant rotations as exact pairs: norm gains folded, residual stream, V/O per head, online Hadamard before down_proj, on Q/K after RoPE, or on every linear input (EXACT-R)";
    "fold-rotations"       => FoldRotations,        "fold rot.rotate/rot.hadamard into adjacent linear weights (orthogonality checked), keep the rest online (EXACT-R)";
    "migrate-scales"       => MigrateScales,        "SmoothQuant scale migration s = max|x|^a / max|w|^(1-a) into the producing norm or linear, or an explicit x/s (EXACT-R)";
    "quantize-weights"     => QuantizeWeights,      "graph.linear weights to int8/int4 per channel or per group (RTN, AWQ scales or GPTQ) behind lowbit.dequantize (APPROX)";
    "quantize-activations" => QuantizeActivations,  "int8 activations (dynamic per-token/per-tensor or static) before linears with quantized weights, as lowbit.qmatmul (APPROX)";
    "lower-to-kernel"      => LowerToKernel,        "lower linear/matmul (+activation), sdpa and add+layer_norm to kernel ops";
}

/// The registered pass named `name`.
pub fn lookup(name: &str) -> Option<&'static PassInfo> {
    PASSES.iter().find(|p| p.name == name)
}

/// The registered pass names, comma-separated, for messages.
pub fn known_passes() -> String {
    PASSES.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// A listing of every pass with its description, one per line (for `--help`).
pub fn pass_listing() -> String {
    let width = PASSES.iter().map(|p| p.name.len()).max().unwrap_or(0);
    PASSES
        .iter()
        .map(|p| format!("  {:width$}  {}\n", p.name, p.doc))
        .collect()
}
