//! `lowbit compile`: parse, verify, run the pipeline (by default
//! [`super::DEFAULT_COMPILE_PIPELINE`]), load the weights and write an artifact directory
//! through [`crate::driver::compile_to_dir`].

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use lowbit_dialects::interp::Weights;

use super::diag::Source;
use super::{
    display_name, load_and_run_pipeline, no_weights_note, pass_manager, CliResult, EmitArg,
    Failure, PipelineArgs, PrintArgs,
};
use crate::driver::{compile_to_dir, CompileOptions, DriverError, Emit};
use crate::tensors::load_weights;

#[derive(Debug, Args)]
pub(super) struct CompileArgs {
    /// The input IR (`-` for stdin).
    #[arg(value_name = "FILE")]
    file: String,
    /// The artifact directory to write (replaced only on success).
    #[arg(short = 'o', value_name = "DIR", required = true)]
    output: PathBuf,
    /// The function to compile (default: the only one, or `main`).
    #[arg(long, value_name = "NAME")]
    func: Option<String>,
    /// Also write LLVM IR, assembly or the object file (repeatable, or comma-separated).
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    emit: Vec<EmitArg>,
    /// Weights for `graph.weight` (.safetensors or .npz; default: a sibling
    /// `<stem>.safetensors` when it exists).
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    print: PrintArgs,
}

pub(super) fn run(a: CompileArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> CliResult<()> {
    let mut pm = pass_manager(&a.pipeline, super::DEFAULT_COMPILE_PIPELINE)?;
    let (module, text) = load_and_run_pipeline(&a.file, &mut pm, &a.pipeline, &a.print, stderr)?;
    let src = Source {
        text: &text,
        file: display_name(&a.file),
        line_offset: 0,
    };
    let weights = weights_for(&a.file, a.weights.as_deref())?;
    let emit = a
        .emit
        .iter()
        .map(|e| match e {
            EmitArg::Llvm => Emit::Llvm,
            EmitArg::Asm => Emit::Asm,
            EmitArg::Obj => Emit::Obj,
        })
        .collect();
    let opts = CompileOptions {
        func: a.func.clone(),
        emit,
        pipeline: pm.to_string(),
    };
    let report = compile_to_dir(&module, &weights, &opts, &a.output).map_err(|e| {
        let mut text = render_driver_error(&e, &src);
        if matches!(e, DriverError::MissingWeight { .. })
            && weights.is_empty()
            && a.weights.is_none()
        {
            text.push_str(&no_weights_note(&a.file));
        }
        Failure(text)
    })?;
    for f in &report.files {
        let _ = writeln!(stdout, "wrote {}", f.display());
    }
    Ok(())
}

/// Renders a driver error; one about a `graph.weight` op shows its source line.
fn render_driver_error(e: &DriverError, src: &Source<'_>) -> String {
    let message = e.to_string();
    match e {
        DriverError::MissingWeight { loc, .. } | DriverError::WeightType { loc, .. } => {
            let short = message
                .strip_suffix(&format!(" at {loc}"))
                .unwrap_or(&message);
            src.render_at(loc, Some("graph.weight"), short)
        }
        _ => format!("error: {message}\n"),
    }
}

/// The weights for IR file `file`: `--weights`, else a sibling `<stem>.safetensors` when it
/// exists, else none.
pub(super) fn weights_for(file: &str, given: Option<&Path>) -> CliResult<Weights> {
    let sibling = Path::new(file).with_extension("safetensors");
    let path = match given {
        Some(p) => p.to_path_buf(),
        None if file != "-" && sibling.is_file() => sibling,
        None => return Ok(Weights::new()),
    };
    load_weights(&path).map_err(Failure::msg)
}
