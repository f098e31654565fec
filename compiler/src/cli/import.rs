//! `lowbit import` and `lowbit inspect`: checkpoints to IR, and what a checkpoint holds.
//!
//! `lowbit import DIR -o model.mlir [--dim batch=N --dim sequence=N]` writes the IR of a
//! Hugging Face checkpoint directory (see [`crate::import`]). Weights are not copied: the
//! IR names them by safetensors key, so the `.mlir` runs with `--weights DIR/model.safetensors`
//! (`lowbit run DIR` imports and runs in one step, with the Hugging Face tensor names).
//! A comment at the top of the output maps the parameters (`arg0`, ...) and results
//! (`out0`, ...) to their Hugging Face names.
//!
//! `lowbit inspect PATH` lists the tensors of a `.safetensors` file, an index, or a
//! checkpoint directory (name, dtype, shape), after validating every header.
//!
//! `lowbit run DIR [--dim ...] --input X.npz [--output Y.npz]` imports a checkpoint
//! directory and runs it in the reference interpreter; inputs and outputs take the Hugging
//! Face names (`input_ids`, `attention_mask`, `token_type_ids` — zeros when absent;
//! `last_hidden_state`, `sentence_embedding`).
//!
//! These forms are recognised by [`dispatch`] before the main parser runs, by their
//! operand: a directory (or, for `inspect`, a `.safetensors`/`.index.json` file). Every
//! other `import`/`inspect`/`run` goes to the main parser (ONNX models, `.mlir`, artifacts).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use lowbit_dialects::interp::{run_func, Tensor};
use lowbit_dialects::ir::verify::verify_module;
use lowbit_runtime::{read_tensors, write_tensors, TensorMap};

use super::{write_atomic, CliResult, Failure, PrintArgs};
use crate::import::{import_dir, Dims, Imported, WeightStore};
use crate::tensors::{from_interp, to_interp};

/// Values printed per output before `...`.
const SHOWN: usize = 8;

#[derive(Debug, Parser)]
#[command(name = "lowbit", disable_help_subcommand = true)]
struct CheckpointCli {
    #[command(subcommand)]
    command: CheckpointCommand,
}

#[derive(Debug, Subcommand)]
enum CheckpointCommand {
    Import(ImportArgs),
    Inspect(InspectArgs),
    Run(RunDirArgs),
}

#[derive(Debug, Args)]
struct RunDirArgs {
    /// A checkpoint directory (holding config.json).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Inputs by Hugging Face name (.npz or .safetensors).
    #[arg(long = "input", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the outputs here (.npz or .safetensors).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// A static size, `batch=N` or `sequence=N` (repeatable).
    #[arg(long = "dim", value_name = "NAME=N")]
    dims: Vec<String>,
}

/// Handles `import DIR`, `inspect DIR|FILE.safetensors` and `run DIR` (a checkpoint
/// directory); `None` leaves `args` to the main parser.
pub(super) fn dispatch(
    args: &[String],
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Option<i32> {
    if !matches!(
        args.get(1).map(String::as_str),
        Some("import" | "inspect" | "run")
    ) {
        return None;
    }
    let cli = CheckpointCli::try_parse_from(args).ok()?;
    let result = match cli.command {
        CheckpointCommand::Import(a) if a.dir.is_dir() => run(a, stdout, stderr),
        CheckpointCommand::Inspect(a) if is_checkpoint_path(&a.path) => inspect(a, stdout, stderr),
        CheckpointCommand::Run(a) if a.dir.join("config.json").is_file() => run_dir(a, stdout),
        _ => return None,
    };
    Some(match result {
        Ok(()) => 0,
        Err(Failure(text)) => {
            let _ = stderr.write_all(text.as_bytes());
            1
        }
    })
}

fn is_checkpoint_path(p: &Path) -> bool {
    let s = p.to_string_lossy();
    p.is_dir() || s.ends_with(".safetensors") || s.ends_with(".safetensors.index.json")
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// A checkpoint directory: config.json, model.safetensors (or a sharded index), and
    /// for sentence-transformers modules.json and 1_Pooling/config.json.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Write the IR here instead of stdout.
    #[arg(short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
    /// A static size, `batch=N` or `sequence=N` (repeatable; default batch=1, sequence=128).
    #[arg(long = "dim", value_name = "NAME=N")]
    dims: Vec<String>,
    #[command(flatten)]
    print: PrintArgs,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// A .safetensors file, a .safetensors.index.json, or a checkpoint directory.
    #[arg(value_name = "PATH")]
    path: PathBuf,
}

/// Parses `--dim NAME=N` flags.
fn parse_dims(flags: &[String]) -> CliResult<Dims> {
    let mut dims = Dims::default();
    for flag in flags {
        let parsed = flag
            .split_once('=')
            .and_then(|(k, v)| Some((k, v.parse::<usize>().ok().filter(|&n| n > 0)?)));
        match parsed {
            Some(("batch", n)) => dims.batch = n,
            Some(("sequence", n)) => dims.sequence = n,
            _ => {
                return Err(Failure::msg(format!(
                    "--dim '{flag}' is not batch=N or sequence=N with N a positive integer"
                )))
            }
        }
    }
    Ok(dims)
}

/// Imports and verifies a checkpoint directory.
fn load(dir: &std::path::Path, dims: Dims) -> CliResult<Imported> {
    let imported = import_dir(dir, dims).map_err(Failure::msg)?;
    if let Err(errs) = verify_module(&imported.module) {
        let text: String = errs
            .iter()
            .map(|e| format!("error: imported IR does not verify: {e}\n"))
            .collect();
        return Err(Failure(text));
    }
    Ok(imported)
}

fn run(a: ImportArgs, stdout: &mut dyn Write, _stderr: &mut dyn Write) -> CliResult<()> {
    let imported = load(&a.dir, parse_dims(&a.dims)?)?;
    let names = |kind: &str, names: &[String]| {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n} ({kind}{i})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let weights = imported
        .weights
        .files()
        .iter()
        .map(|f| f.path().display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "// Imported by lowbit import from '{}'; weights stay in {weights}.\n\
         // inputs: {}\n// outputs: {}\n{}",
        a.dir.display(),
        names("arg", &imported.inputs),
        names("out", &imported.outputs),
        a.print.print(&imported.module)
    );
    match &a.output {
        Some(path) => write_atomic(path, text.as_bytes()),
        None => {
            let _ = stdout.write_all(text.as_bytes());
            Ok(())
        }
    }
}

fn inspect(a: InspectArgs, stdout: &mut dyn Write, _stderr: &mut dyn Write) -> CliResult<()> {
    let store = WeightStore::open(&a.path).map_err(Failure::msg)?;
    let mut out = String::new();
    let (mut count, mut bytes) = (0usize, 0usize);
    for name in store.names() {
        let e = store.entry(name).expect("names come from the store");
        out.push_str(&format!("{name}: {:?} {:?}\n", e.dtype, e.shape));
        count += 1;
        bytes += e.range.len();
    }
    out.push_str(&format!(
        "{count} tensors, {bytes} bytes in {} file(s)\n",
        store.files().len()
    ));
    let _ = stdout.write_all(out.as_bytes());
    Ok(())
}

fn run_dir(a: RunDirArgs, stdout: &mut dyn Write) -> CliResult<()> {
    let imported = load(&a.dir, parse_dims(&a.dims)?)?;
    let f = &imported.module.funcs[0];
    let names = imported.inputs.join(", ");
    let Some(input) = &a.input else {
        return Err(Failure::msg(format!(
            "'{}' takes inputs {names}; give them with --input FILE",
            a.dir.display()
        )));
    };
    let file = input.display().to_string();
    let mut given = read_tensors(input).map_err(Failure::msg)?;
    if let Some(extra) = given.keys().find(|k| !imported.inputs.contains(k)) {
        return Err(Failure::msg(format!(
            "'{file}' has tensor '{extra}', which is not an input (the inputs are {names})"
        )));
    }
    let mut inputs = Vec::new();
    for (name, ty) in imported.inputs.iter().zip(f.param_types()) {
        let t = match given.remove(name) {
            Some(h) => to_interp(&h),
            None if name == "token_type_ids" => Tensor::zeros(ty.clone()),
            None => {
                return Err(Failure::msg(format!(
                    "'{file}' has no tensor '{name}' (the inputs are {names})"
                )))
            }
        };
        if t.ty != ty {
            return Err(Failure::msg(format!(
                "input '{name}' in '{file}' is {} but the model expects {ty} (set --dim batch=N --dim sequence=N)",
                t.ty
            )));
        }
        inputs.push(t);
    }
    let weights = imported.weights.weights_for(f).map_err(Failure::msg)?;
    let outs = run_func(f, &inputs, &weights).map_err(Failure::msg)?;
    let mut map = TensorMap::new();
    for (name, t) in imported.outputs.iter().zip(&outs) {
        let _ = writeln!(stdout, "{}", describe(name, t));
        map.insert(name.clone(), from_interp(name, t).map_err(Failure::msg)?);
    }
    if let Some(path) = &a.output {
        write_tensors(path, &map).map_err(Failure::msg)?;
    }
    Ok(())
}

/// `name: tensor<...> = [v0, v1, ...]`.
fn describe(name: &str, t: &Tensor) -> String {
    let shown: Vec<String> = t
        .data
        .iter()
        .take(SHOWN)
        .map(|&x| (x as f32).to_string())
        .collect();
    let more = if t.data.len() > SHOWN { ", ..." } else { "" };
    format!("{name}: {} = [{}{more}]", t.ty, shown.join(", "))
}
