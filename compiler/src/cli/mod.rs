//! The `lowbit` command line: `opt`, `compile`, `run`, `import` and `inspect`.
//!
//! One clap definition serves the binary (`main.rs`) and the file-test harness, which runs
//! each case's `// RUN:` line in-process through [`main_with_args`], so every RUN line is a
//! real command. Subcommands live in sibling files; [`diag`] renders every error the way a
//! user sees it (`file:line:col: error: ...`, the source line and a caret).
//!
//! Conventions (those of `mlir-opt`): results go to stdout or `-o FILE`; IR dumps
//! (`--print-ir-after-*`), pass statistics and errors go to stderr. A failure prints one
//! sentence per error with its location and exits with 1 (clap's usage errors exit with
//! 2); an output file is written through a temporary file and a rename, so it is either
//! complete or untouched.

mod compile;
pub mod diag;
mod import;
mod numerics;
mod onnx;
mod opt;
mod report;
mod run;

use std::io::{Read, Write};
use std::path::Path;

use clap::{Args, Parser, Subcommand, ValueEnum};
use lowbit_dialects::ir::print::{print_module_with, PrintOptions};
use lowbit_dialects::ir::Module;
use lowbit_passes::PassManager;

pub use opt::{split_input_file, Chunk};

/// The pipeline `lowbit compile` runs when none is given.
pub const DEFAULT_COMPILE_PIPELINE: &str = "canonicalize,cse,dce,lower-to-kernel";

#[derive(Debug, Parser)]
#[command(
    name = "lowbit",
    version,
    about = "Ahead-of-time compiler for low-bit attention graphs",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse, verify and transform IR; print the result.
    #[command(after_help = passes_help())]
    Opt(opt::OptArgs),
    /// Compile a function into an artifact directory (model.so, weights, manifest).
    #[command(after_help = passes_help())]
    Compile(compile::CompileArgs),
    /// Run a .mlir function, an ONNX model or a checkpoint in the reference interpreter, or
    /// a compiled artifact natively.
    ///
    /// For a .mlir file, inputs are named after the parameters (`arg0`, `arg1`, ...) and
    /// outputs after the returned values (`out0`, `out1`, ...); for an artifact directory,
    /// by the names in its manifest; for ONNX models and checkpoints, by the model's own
    /// input and output names.
    Run(run::RunArgs),
    /// Import a model into IR: an ONNX file (weights to the sibling `.safetensors`) or a
    /// checkpoint directory (config.json + safetensors; weights stay in the checkpoint).
    Import(onnx::ImportArgs),
    /// Summarize a model: for ONNX its opsets, inputs, outputs and op histogram; for a
    /// checkpoint or safetensors file its tensors.
    Inspect(onnx::InspectArgs),
    /// Accuracy reports: `attention-quant` (the SageAttention T1.3 table) and
    /// `precision-search` (the attention precision chosen per op on calibration inputs).
    Report(report::ReportArgs),
}

fn passes_help() -> String {
    format!("Passes:\n{}", lowbit_passes::pass_listing())
}

/// Pipeline and IR-dump options shared by `opt`, `compile` and `run`.
#[derive(Debug, Args)]
struct PipelineArgs {
    /// The pass pipeline, e.g. `canonicalize,cse` or `canonicalize{max-fold-elements=64}`.
    #[arg(long = "pass-pipeline", value_name = "PIPELINE")]
    pass_pipeline: Option<String>,
    /// Print the IR after every pass (to stderr).
    #[arg(long)]
    print_ir_after_all: bool,
    /// Print the IR after each pass with this name (repeatable).
    #[arg(long, value_name = "PASS")]
    print_ir_after: Vec<String>,
    /// Print the IR after a pass only when the pass changed it.
    #[arg(long)]
    print_ir_after_change: bool,
    /// Print each pass's counters (to stderr) when the pipeline has run.
    #[arg(long)]
    pass_stats: bool,
    /// Verify the IR after each pass.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    verify_each: bool,
}

/// How IR prints (the output and the dumps).
#[derive(Debug, Args, Clone, Copy)]
struct PrintArgs {
    /// Print MLIR's generic form.
    #[arg(long)]
    print_generic: bool,
    /// Print op locations.
    #[arg(long)]
    print_locs: bool,
    /// Elide dense constants with more than N elements (16 when N is omitted).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "16")]
    mlir_elide_elementsattrs_if_larger: Option<usize>,
}

impl PrintArgs {
    fn print(&self, m: &Module) -> String {
        let opts = PrintOptions {
            generic: self.print_generic,
            locs: self.print_locs,
            elide: false,
        };
        match self.mlir_elide_elementsattrs_if_larger {
            None => print_module_with(m, opts),
            Some(limit) => print_module_with(&elide_constants(m, limit), opts),
        }
    }
}

/// A copy of `m` whose dense attributes with more than `limit` elements are elided.
fn elide_constants(m: &Module, limit: usize) -> Module {
    let mut m = m.clone();
    for f in &mut m.funcs {
        for op in f.body.clone() {
            let attrs = &mut f.ops[op].attrs;
            let names: Vec<String> = attrs.iter().map(|(n, _)| n.to_string()).collect();
            for n in names {
                if let Some(lowbit_dialects::ir::Attr::Dense(d)) = attrs.get(&n) {
                    if d.values.as_ref().is_some_and(|v| v.len() > limit) {
                        let mut d = d.clone();
                        d.values = None;
                        attrs.set(n, lowbit_dialects::ir::Attr::Dense(d));
                    }
                }
            }
        }
    }
    m
}

/// `--emit` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EmitArg {
    /// Optimized LLVM IR (`model.ll`).
    Llvm,
    /// Assembly (`model.s`).
    Asm,
    /// The object file (`model.o`).
    Obj,
}

/// A failure already rendered for the user (one or more lines, each ending in `\n`).
#[derive(Debug)]
struct Failure(String);

impl Failure {
    /// `error: <message>`.
    fn msg(message: impl std::fmt::Display) -> Failure {
        Failure(format!("error: {message}\n"))
    }
}

type CliResult<T> = Result<T, Failure>;

/// Runs the `lowbit` command line with `args` (the program name first), writing to the
/// given streams, and returns the process exit code: 0 on success, 1 on failure, 2 on a
/// usage error.
pub fn main_with_args(args: &[String], stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = stderr.write_all(text.as_bytes());
                2
            } else {
                let _ = stdout.write_all(text.as_bytes());
                0
            };
        }
    };
    let result = match cli.command {
        Command::Opt(a) => opt::run(a, stdout, stderr),
        Command::Compile(a) => compile::run(a, stdout, stderr),
        Command::Run(a) => run::run(a, stdout, stderr),
        Command::Import(a) if import::is_checkpoint(Path::new(&a.model)) => {
            import::import_checkpoint(
                Path::new(&a.model),
                a.output.as_deref(),
                &a.dims,
                a.entry.as_deref(),
                &a.print,
                stdout,
            )
        }
        Command::Import(a) => onnx::run_import(a, stdout, stderr),
        Command::Inspect(a) if import::is_checkpoint_path(Path::new(&a.model)) => {
            import::inspect_checkpoint(Path::new(&a.model), stdout)
        }
        Command::Inspect(a) => onnx::run_inspect(a, stdout, stderr),
        Command::Report(a) => report::run(a, stdout, stderr),
    };
    match result {
        Ok(()) => 0,
        Err(Failure(text)) => {
            let _ = stderr.write_all(text.as_bytes());
            1
        }
    }
}

/// Builds the pass manager from the pipeline flags (`default` when none is given).
/// Reads and parses the IR file `file`, then runs `pm` over it, dumping IR and statistics
/// to `stderr` as `pipeline` asks. Returns the module and the source text, which later
/// errors are rendered against.
fn load_and_run_pipeline(
    file: &str,
    pm: &mut PassManager,
    pipeline: &PipelineArgs,
    print: &PrintArgs,
    stderr: &mut dyn Write,
) -> CliResult<(Module, String)> {
    let text = read_input(file)?;
    let src = diag::Source {
        text: &text,
        file: display_name(file),
        line_offset: 0,
    };
    let mut module = opt::parse_chunk(&src)?;
    let printer = |m: &Module| print.print(m);
    let result = pm.run(
        &mut module,
        &mut lowbit_passes::PassCx {
            dump: Some(&mut *stderr),
            printer: Some(&printer),
            after_pass: None,
        },
    );
    if pipeline.pass_stats {
        let _ = stderr.write_all(pm.stats_report().as_bytes());
    }
    result.map_err(|e| Failure(diag::render_pass_error(&e, &module, &src)))?;
    Ok((module, text))
}

/// Interpreter outputs keyed by the model's output names, as files hold them.
fn named_outputs(
    names: &[String],
    outs: &[lowbit_dialects::interp::Tensor],
) -> CliResult<lowbit_runtime::TensorMap> {
    names
        .iter()
        .zip(outs)
        .map(|(name, t)| {
            let host = crate::tensors::from_interp(name, t).map_err(Failure::msg)?;
            Ok((name.clone(), host))
        })
        .collect()
}

/// The note added when a `graph.weight` has no data because no weights were given.
fn no_weights_note(file: &str) -> String {
    let sibling = Path::new(file).with_extension("safetensors");
    format!(
        "note: no weights were given; pass --weights FILE, or put them in '{}'\n",
        sibling.display()
    )
}

fn pass_manager(p: &PipelineArgs, default: &str) -> CliResult<PassManager> {
    let text = p.pass_pipeline.as_deref().unwrap_or(default);
    let mut pm = PassManager::parse(text).map_err(|e| Failure(e.render()))?;
    for name in &p.print_ir_after {
        if lowbit_passes::lookup(name).is_none() {
            return Err(Failure::msg(format!(
                "--print-ir-after names unknown pass '{name}'; known passes: {}",
                lowbit_passes::known_passes()
            )));
        }
    }
    pm.verify_each = p.verify_each;
    pm.print_ir_after_all = p.print_ir_after_all;
    pm.print_ir_after = p.print_ir_after.clone();
    pm.print_ir_after_change = p.print_ir_after_change;
    Ok(pm)
}

/// Reads the input file (`-` is stdin). Returns the text.
fn read_input(path: &str) -> CliResult<String> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::msg(format!("cannot read standard input: {}", io_message(&e))))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Failure::msg(format!("cannot read '{path}': {}", io_message(&e))))
}

/// The name an input is shown under in messages and locations.
fn display_name(path: &str) -> &str {
    if path == "-" {
        "<stdin>"
    } else {
        path
    }
}

/// An I/O error's message without Rust's ` (os error N)` suffix.
fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Writes `text` to `path` atomically: a temporary file in the same directory, renamed
/// over `path` once complete.
fn write_atomic(path: &Path, text: &[u8]) -> CliResult<()> {
    let fail = |e: std::io::Error| {
        Failure::msg(format!(
            "cannot write '{}': {}",
            path.display(),
            io_message(&e)
        ))
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".lowbit-tmp-")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(text).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
