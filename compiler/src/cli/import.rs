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
//! The subcommands in `mod.rs` and `run.rs` come here by their operand: a checkpoint
//! directory (holding `config.json`), or for `inspect` a `.safetensors`/`.index.json`
//! file; ONNX models go to `onnx.rs`.

use std::io::Write;
use std::path::Path;

use lowbit_dialects::interp::{run_func, Tensor};
use lowbit_dialects::ir::verify::verify_module;
use lowbit_runtime::{read_tensors, TensorMap};

use super::{named_outputs, write_atomic, CliResult, Failure, PrintArgs};
use crate::import::{import_dir, Dims, Imported, WeightStore};
use crate::tensors::to_interp;

/// Whether `p` is a checkpoint directory (it holds `config.json`).
pub(super) fn is_checkpoint_dir(p: &Path) -> bool {
    p.join("config.json").is_file()
}

/// Whether `lowbit inspect` reads `p` as a checkpoint: a directory, a `.safetensors`
/// file or a sharded index.
pub(super) fn is_checkpoint_path(p: &Path) -> bool {
    let s = p.to_string_lossy();
    p.is_dir() || s.ends_with(".safetensors") || s.ends_with(".safetensors.index.json")
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

/// `lowbit import DIR`: writes the IR (to `output` or stdout); weights stay in the checkpoint.
pub(super) fn import_checkpoint(
    dir: &Path,
    output: Option<&Path>,
    dims: &[String],
    print: &PrintArgs,
    stdout: &mut dyn Write,
) -> CliResult<()> {
    let imported = load(dir, parse_dims(dims)?)?;
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
        dir.display(),
        names("arg", &imported.inputs),
        names("out", &imported.outputs),
        print.print(&imported.module)
    );
    match output {
        Some(path) => write_atomic(path, text.as_bytes()),
        None => {
            let _ = stdout.write_all(text.as_bytes());
            Ok(())
        }
    }
}

/// `lowbit inspect` of a checkpoint: every tensor with its dtype and shape, and totals.
pub(super) fn inspect_checkpoint(path: &Path, stdout: &mut dyn Write) -> CliResult<()> {
    let store = WeightStore::open(path).map_err(Failure::msg)?;
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

/// `lowbit run DIR`: imports the checkpoint and interprets it; inputs and outputs are keyed
/// by their Hugging Face names (`token_type_ids` defaults to zeros).
pub(super) fn run_checkpoint(
    dir: &Path,
    dims: &[String],
    input: Option<&Path>,
) -> CliResult<TensorMap> {
    let imported = load(dir, parse_dims(dims)?)?;
    let f = &imported.module.funcs[0];
    let names = imported.inputs.join(", ");
    let Some(input) = input else {
        return Err(Failure::msg(format!(
            "'{}' takes inputs {names}; give them with --input FILE",
            dir.display()
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
    named_outputs(&imported.outputs, &outs)
}
