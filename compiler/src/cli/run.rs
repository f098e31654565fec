//! `lowbit run`: evaluate a `.mlir` function in the reference interpreter, or run a compiled
//! artifact directory natively, and print (and optionally save) its outputs.
//!
//! Tensors are named: for a `.mlir` function the inputs are `arg0, arg1, ...` (its
//! parameters, as the printer names them) and the outputs `out0, out1, ...` (its returned
//! values) — the names `lowbit compile` puts in the manifest; for an artifact, the
//! manifest's names. Inputs come from `--input FILE` (`.npz` or `.safetensors`) or
//! `--random-inputs SEED` (the runtime's deterministic generator, for either kind).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use lowbit_dialects::interp::{run_func, InterpError, Tensor};
use lowbit_dialects::ir::Func;
use lowbit_runtime::{
    random_inputs, read_tensors, write_tensors, Artifact, HostTensor, Manifest, TensorMap,
    TensorSpec,
};

use super::compile::weights_for;
use super::diag::{render_interp_error, Source};
use super::{
    display_name, load_and_run_pipeline, no_weights_note, pass_manager, CliResult, Failure,
    PipelineArgs, PrintArgs,
};
use crate::driver::select_func;
use crate::tensors::{dtype_of, from_interp, to_interp, type_of};

/// Values printed per output before `...`.
const SHOWN: usize = 8;

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// A `.mlir` file, `.onnx` model or checkpoint directory (interpreted), or an artifact
    /// directory (run natively).
    #[arg(value_name = "FILE.mlir|MODEL.onnx|DIR")]
    input: String,
    /// Binds a symbolic input dimension of a `.onnx` model (`--dim batch=1`), or a
    /// checkpoint's `batch=N` / `sequence=N`.
    #[arg(long = "dim", value_name = "NAME=SIZE")]
    dims: Vec<String>,
    /// `.onnx` input only: assume run-time tensors hold no NaN (`IsNaN` reads false).
    #[arg(long)]
    assume_no_nan: bool,
    /// Inputs by name (.npz or .safetensors).
    #[arg(long = "input", value_name = "FILE", conflicts_with = "random_inputs")]
    inputs: Option<PathBuf>,
    /// Causal language models: the function to build, `prefill` (default) or `decode`
    /// (needs `--dim past=T`).
    #[arg(long, value_name = "ENTRY", value_parser = ["prefill", "decode"])]
    entry: Option<String>,
    /// Generate deterministic random inputs from this seed.
    #[arg(long, value_name = "SEED")]
    random_inputs: Option<u64>,
    /// Write the outputs here (.npz or .safetensors).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Weights for `graph.weight` (.mlir input only; default: a sibling
    /// `<stem>.safetensors` when it exists).
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// The function to run (.mlir input only; default: the only one, or `main`).
    #[arg(long, value_name = "NAME")]
    func: Option<String>,
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    print: PrintArgs,
}

pub(super) fn run(a: RunArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> CliResult<()> {
    if a.entry.is_some() && !super::import::is_checkpoint_dir(Path::new(&a.input)) {
        return Err(Failure::msg(format!(
            "--entry applies to causal language model checkpoints; '{}' is not one",
            a.input
        )));
    }
    let outputs = if super::import::is_checkpoint_dir(Path::new(&a.input)) {
        refuse_mlir_flags(&a, "a checkpoint")?;
        super::import::run_checkpoint(
            Path::new(&a.input),
            &a.dims,
            a.entry.as_deref(),
            a.inputs.as_deref(),
        )?
    } else if Path::new(&a.input).is_dir() {
        run_artifact(&a)?
    } else if super::onnx::is_onnx(&a.input) {
        refuse_mlir_flags(&a, "an ONNX model")?;
        super::onnx::run_onnx(&a.input, &a.dims, a.assume_no_nan, a.inputs.as_deref())?
    } else {
        run_mlir(&a, stderr)?
    };
    for (name, t) in &outputs {
        let _ = writeln!(stdout, "{}", describe(name, t));
    }
    if let Some(path) = &a.output {
        write_tensors(path, &outputs).map_err(Failure::msg)?;
    }
    Ok(())
}

/// Flags that only a `.mlir` input uses are an error for an imported model, rather than
/// silently ignored: a pipeline runs on IR (`lowbit import` first, then `lowbit run` on it).
fn refuse_mlir_flags(a: &RunArgs, what: &str) -> CliResult<()> {
    let given = [
        (a.weights.is_some(), "--weights"),
        (a.func.is_some(), "--func"),
        (a.pipeline.pass_pipeline.is_some(), "--pass-pipeline"),
    ];
    match given.iter().find(|(g, _)| *g) {
        Some((_, flag)) => Err(Failure::msg(format!(
            "{flag} applies to .mlir input only; '{}' is {what}: import it with 'lowbit import' first",
            a.input
        ))),
        None => Ok(()),
    }
}

fn run_artifact(a: &RunArgs) -> CliResult<TensorMap> {
    let ignored = [
        (a.weights.is_some(), "--weights"),
        (a.func.is_some(), "--func"),
        (a.pipeline.pass_pipeline.is_some(), "--pass-pipeline"),
    ];
    if let Some((_, flag)) = ignored.iter().find(|(given, _)| *given) {
        return Err(Failure::msg(format!(
            "{flag} applies to .mlir input only; '{}' is an artifact directory",
            a.input
        )));
    }
    let artifact = Artifact::load(&a.input).map_err(Failure::msg)?;
    let inputs = inputs_for(a.inputs.as_deref(), a.random_inputs, artifact.manifest())?;
    artifact.run(&inputs).map_err(Failure::msg)
}

fn run_mlir(a: &RunArgs, stderr: &mut dyn Write) -> CliResult<TensorMap> {
    let mut pm = pass_manager(&a.pipeline, "")?;
    // The passes see the weights (splat weights fold, weight quantization rewrites them),
    // and the interpreter runs on what the pipeline leaves in the store.
    pm.env.weights = weights_for(&a.input, a.weights.as_deref())?;
    let (module, text) = load_and_run_pipeline(&a.input, &mut pm, &a.pipeline, &a.print, stderr)?;
    let src = Source {
        text: &text,
        file: display_name(&a.input),
        line_offset: 0,
    };
    let weights = std::mem::take(&mut pm.env.weights);
    let f = select_func(&module, a.func.as_deref()).map_err(Failure::msg)?;
    let manifest = signature(f)?;
    let given = inputs_for(a.inputs.as_deref(), a.random_inputs, &manifest)?;
    let inputs: Vec<Tensor> = manifest
        .inputs
        .iter()
        .map(|s| to_interp(&given[&s.name]))
        .collect();
    let outs = run_func(f, &inputs, &weights).map_err(|e| {
        let mut text = render_interp_error(&e, &src);
        let weight_missing = matches!(
            &e,
            InterpError::Op {
                op: "graph.weight",
                ..
            }
        );
        if weight_missing && weights.is_empty() && a.weights.is_none() {
            text.push_str(&no_weights_note(&a.input));
        }
        Failure(text)
    })?;
    outs.iter()
        .enumerate()
        .map(|(k, t)| {
            let name = format!("out{k}");
            let h = from_interp(&name, t).map_err(Failure::msg)?;
            Ok((name, h))
        })
        .collect()
}

/// A manifest describing `f`'s inputs (`arg<i>`) and outputs (`out<k>`), so that inputs are
/// checked and generated the same way for a function and for an artifact.
pub(super) fn signature(f: &Func) -> CliResult<Manifest> {
    let spec = |name: String, ty: &lowbit_dialects::ir::TensorType| {
        let dtype = dtype_of(ty.elem).ok_or_else(|| {
            Failure::msg(format!(
                "'{name}' of '@{}' has type {ty}, which tensor files cannot hold",
                f.name
            ))
        })?;
        Ok(TensorSpec::new(
            name,
            dtype,
            ty.shape.iter().map(|&d| d as usize).collect::<Vec<_>>(),
        ))
    };
    let inputs = f
        .param_types()
        .iter()
        .enumerate()
        .map(|(i, t)| spec(format!("arg{i}"), t))
        .collect::<CliResult<_>>()?;
    let outputs = f
        .result_types()
        .iter()
        .enumerate()
        .map(|(k, t)| spec(format!("out{k}"), t))
        .collect::<CliResult<_>>()?;
    Ok(Manifest {
        format_version: lowbit_runtime::FORMAT_VERSION,
        compiler_version: env!("CARGO_PKG_VERSION").to_string(),
        target: "interpreter".to_string(),
        pipeline: String::new(),
        entry: f.name.clone(),
        function: f.name.clone(),
        inputs,
        outputs,
        weights: Vec::new(),
    })
}

/// The inputs `manifest` asks for, from `--input` or `--random-inputs`, checked by name,
/// type and shape.
pub(super) fn inputs_for(
    inputs: Option<&Path>,
    random: Option<u64>,
    manifest: &Manifest,
) -> CliResult<TensorMap> {
    let names = || {
        manifest
            .inputs
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let given = match (inputs, random) {
        (Some(path), _) => read_tensors(path).map_err(Failure::msg)?,
        (None, Some(seed)) => return Ok(random_inputs(manifest, seed)),
        (None, None) if manifest.inputs.is_empty() => return Ok(TensorMap::new()),
        (None, None) => {
            return Err(Failure::msg(format!(
                "'@{}' takes inputs {}; give them with --input FILE or --random-inputs SEED",
                manifest.function,
                names()
            )))
        }
    };
    let file = inputs.map(|p| p.display().to_string()).unwrap_or_default();
    for spec in &manifest.inputs {
        let Some(t) = given.get(&spec.name) else {
            return Err(Failure::msg(format!(
                "'{file}' has no tensor '{}' (the inputs are {})",
                spec.name,
                names()
            )));
        };
        if t.dtype() != spec.dtype || t.shape() != spec.shape.as_slice() {
            return Err(Failure::msg(format!(
                "input '{}' in '{file}' is {} but '@{}' expects {}",
                spec.name,
                shown_type(t),
                manifest.function,
                spec_type(spec)
            )));
        }
    }
    if let Some(extra) = given
        .keys()
        .find(|k| !manifest.inputs.iter().any(|s| &s.name == *k))
    {
        return Err(Failure::msg(format!(
            "'{file}' has tensor '{extra}', which is not an input (the inputs are {})",
            names()
        )));
    }
    Ok(given)
}

fn shown_type(t: &HostTensor) -> String {
    type_of(t).to_string()
}

fn spec_type(s: &TensorSpec) -> String {
    let mut out = String::from("tensor<");
    for d in &s.shape {
        out.push_str(&format!("{d}x"));
    }
    out.push_str(&format!("{}>", s.dtype));
    out
}

/// `out0: tensor<2x3xf32> = [0.5, -1, ...] min=-1 max=2 mean=0.25`.
fn describe(name: &str, t: &HostTensor) -> String {
    let v = t.to_f32_vec();
    let shown: Vec<String> = v.iter().take(SHOWN).map(|x| x.to_string()).collect();
    let more = if v.len() > SHOWN { ", ..." } else { "" };
    let mut line = format!("{name}: {} = [{}{more}]", shown_type(t), shown.join(", "));
    if !v.is_empty() {
        let min = v.iter().copied().fold(f32::INFINITY, f32::min);
        let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        line.push_str(&format!(" min={min} max={max} mean={}", mean as f32));
    }
    line
}
