//! `lowbit report`: accuracy reports computed with the reference interpreter.
//!
//! * `lowbit report attention-quant [--seed N] [--tokens N] [--head-dim D]` prints the
//!   SageAttention emulation table of techniques.md §1.6 recipe T1.3: each quantized
//!   attention configuration (a real pass pipeline) on synthetic Q/K/V with and without
//!   channel outliers, against float64 attention, as cosine %, relative L1 and RMSE
//!   ([`lowbit_passes::quantize_attention::t13`] computes it).
//! * `lowbit report precision-search FILE --calibration F... [--budget C]` runs the
//!   precision search of `quantize-attention{budget=C}` on the function of `FILE` and
//!   prints, per attention op (location), the recipe kept and the cosine of every cheaper
//!   recipe it rejected — the explanation `--pass-stats` has no room for.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use lowbit_dialects::interp::Tensor;
use lowbit_passes::quantize_attention::{t13, QuantizeAttention};
use lowbit_passes::{Pass, PassEnv};

use super::diag::{render_pass_error, Source};
use super::opt::parse_chunk;
use super::run::{inputs_for, signature};
use super::{display_name, read_input, CliResult, Failure};
use crate::driver::select_func;
use crate::tensors::to_interp;

/// `lowbit report` arguments.
#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    #[command(subcommand)]
    report: Report,
}

#[derive(Debug, Subcommand)]
enum Report {
    /// The SageAttention accuracy table (techniques.md §1.6, T1.3): recipes × scenarios,
    /// cosine % / relative L1 / RMSE against float64 attention.
    AttentionQuant {
        /// Seed of the synthetic Q/K/V.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Tokens (queries = keys); T1.3 uses 2048.
        #[arg(long, default_value_t = 2048)]
        tokens: usize,
        /// Head dimension; T1.3 uses 128.
        #[arg(long, default_value_t = 128)]
        head_dim: usize,
    },
    /// The attention precision search on calibration inputs: the recipe chosen per
    /// attention op and why the cheaper ones were rejected.
    PrecisionSearch {
        /// The input IR (one function).
        #[arg(value_name = "FILE")]
        file: String,
        /// A calibration input file (`.safetensors`/`.npz`, tensors `arg0`, `arg1`, ...);
        /// repeatable.
        #[arg(long, value_name = "FILE", required = true)]
        calibration: Vec<PathBuf>,
        /// The cosine similarity each op must keep.
        #[arg(long, default_value_t = 0.999)]
        budget: f64,
        /// Queries per Q quantization block.
        #[arg(long, default_value_t = 128)]
        q_block: usize,
        /// Keys per K quantization block.
        #[arg(long, default_value_t = 64)]
        k_block: usize,
    },
}

pub(super) fn run(a: ReportArgs, stdout: &mut dyn Write, _stderr: &mut dyn Write) -> CliResult<()> {
    let text = match a.report {
        Report::AttentionQuant {
            seed,
            tokens,
            head_dim,
        } => attention_quant(seed, tokens, head_dim)?,
        Report::PrecisionSearch {
            file,
            calibration,
            budget,
            q_block,
            k_block,
        } => precision_search(&file, &calibration, budget, q_block, k_block)?,
    };
    stdout
        .write_all(text.as_bytes())
        .map_err(|e| Failure::msg(format!("cannot write the report: {e}")))
}

fn attention_quant(seed: u64, n: usize, d: usize) -> CliResult<String> {
    if n == 0 || d < 8 {
        return Err(Failure::msg(format!(
            "attention-quant needs --tokens ≥ 1 and --head-dim ≥ 8 (8 outlier channels), given {n} and {d}"
        )));
    }
    let setup = t13::Setup { n, d, seed };
    let cells = t13::table(&setup).map_err(Failure::msg)?;
    Ok(t13::render(&setup, &cells))
}

fn precision_search(
    file: &str,
    calibration: &[PathBuf],
    budget: f64,
    q_block: usize,
    k_block: usize,
) -> CliResult<String> {
    if !(budget > 0.0 && budget <= 1.0) || q_block == 0 || k_block == 0 {
        return Err(Failure::msg(format!(
            "precision-search needs 0 < --budget ≤ 1 and positive blocks, given {budget}, {q_block}, {k_block}"
        )));
    }
    let text = read_input(file)?;
    let src = Source {
        text: &text,
        file: display_name(file),
        line_offset: 0,
    };
    let module = parse_chunk(&src)?;
    let f = select_func(&module, None).map_err(|e| {
        Failure::msg(format!(
            "{}: precision-search needs one function: {e}",
            src.file
        ))
    })?;
    let manifest = signature(f)?;
    let mut sets: Vec<Vec<Tensor>> = Vec::new();
    for path in calibration {
        let given = inputs_for(Some(path), None, &manifest)?;
        sets.push(
            manifest
                .inputs
                .iter()
                .map(|s| to_interp(&given[&s.name]))
                .collect(),
        );
    }
    let mut env = PassEnv {
        calibration: sets,
        ..PassEnv::default()
    };
    let mut pass = QuantizeAttention {
        budget: Some(budget),
        ..QuantizeAttention::default()
    };
    pass.recipe.q_block = q_block;
    pass.recipe.k_block = k_block;
    let mut func = f.clone();
    let result = pass
        .run_with_env(&mut func, &mut env)
        .map_err(|e| Failure(render_pass_error(&e, &module, &src)))?;
    let mut out = format!(
        "precision search, budget cos ≥ {budget}, {} calibration set(s), recipes cheapest first\n",
        calibration.len()
    );
    if pass.decisions().is_empty() {
        out += "no attn.sdpa op to quantize\n";
    }
    for d in pass.decisions() {
        out += &format!("{d}\n");
    }
    out += &format!("stats: {}\n", result.stats);
    Ok(out)
}
