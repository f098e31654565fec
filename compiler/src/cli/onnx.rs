//! `lowbit import MODEL.onnx`, `lowbit inspect MODEL.onnx`, and the `.onnx` branch of
//! `lowbit run`.
//!
//! `import` writes the IR to `-o FILE.mlir` and the weights its `graph.weight` ops name to
//! the sibling `FILE.safetensors`, where `lowbit run FILE.mlir` looks for them. `run` on a
//! `.onnx` file imports it and evaluates it in the reference interpreter; its inputs are
//! keyed by the ONNX graph input names and its outputs by the ONNX graph output names.
//! Symbolic input dims are bound with `--dim NAME=SIZE` (repeatable).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use lowbit_dialects::interp::{run_func, Tensor};
use lowbit_runtime::{read_tensors, write_tensors, TensorMap};
use prost::Message;

use super::{named_outputs, write_atomic, CliResult, Failure, PrintArgs};
use crate::onnx::proto::ModelProto;
use crate::onnx::{import_model, parse_dim, DimBindings, ImportOptions, Imported};
use crate::tensors::{to_host_map, to_interp};

/// Whether `path` names an ONNX model (by its extension).
pub(super) fn is_onnx(path: &str) -> bool {
    Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

#[derive(Debug, Args)]
pub(super) struct ImportArgs {
    /// An ONNX model (`.onnx`), or a checkpoint directory (config.json + safetensors).
    #[arg(value_name = "MODEL.onnx|DIR")]
    pub(super) model: String,
    /// Where to write the IR. For ONNX (required) the weights go to the sibling
    /// `.safetensors` file; a checkpoint's weights stay where they are (default: stdout).
    #[arg(short = 'o', value_name = "FILE.mlir")]
    pub(super) output: Option<PathBuf>,
    /// ONNX: binds a symbolic input dimension, e.g. `--dim batch=1`; checkpoints:
    /// `--dim batch=N`, `--dim sequence=N` (default 1 and 128). Repeatable.
    #[arg(long = "dim", value_name = "NAME=SIZE")]
    pub(super) dims: Vec<String>,
    /// ONNX only: assume run-time tensors hold no NaN (`IsNaN` of one is false everywhere).
    #[arg(long)]
    pub(super) assume_no_nan: bool,
    /// Causal language models: the function to build, `prefill` (default) or `decode`
    /// (needs `--dim past=T`).
    #[arg(long, value_name = "ENTRY", value_parser = ["prefill", "decode"])]
    pub(super) entry: Option<String>,
    #[command(flatten)]
    pub(super) print: PrintArgs,
}

#[derive(Debug, Args)]
pub(super) struct InspectArgs {
    /// An ONNX model, a checkpoint directory, a `.safetensors` file or a sharded index.
    #[arg(value_name = "MODEL.onnx|DIR|FILE.safetensors")]
    pub(super) model: String,
}

/// `--dim` flags as bindings.
pub(super) fn dim_bindings(flags: &[String]) -> CliResult<DimBindings> {
    flags
        .iter()
        .map(|s| parse_dim(s).map_err(Failure::msg))
        .collect()
}

fn import(path: &str, dims: &[String], assume_no_nan: bool) -> CliResult<Imported> {
    if !is_onnx(path) {
        return Err(Failure::msg(format!(
            "'{path}' is not an ONNX model (expected a .onnx file)"
        )));
    }
    let options = ImportOptions {
        dims: dim_bindings(dims)?,
        assume_no_nan,
    };
    import_model(Path::new(path), &options).map_err(Failure::msg)
}

pub(super) fn run_import(
    a: ImportArgs,
    _stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> CliResult<()> {
    if a.entry.is_some() {
        return Err(Failure::msg(
            "--entry applies to causal language model checkpoints, not to ONNX models",
        ));
    }
    let Some(output) = &a.output else {
        return Err(Failure::msg(format!(
            "importing '{}' needs -o FILE.mlir (its weights go to the sibling .safetensors)",
            a.model
        )));
    };
    let imported = import(&a.model, &a.dims, a.assume_no_nan)?;
    let text = a.print.print(&imported.module);
    let weights =
        to_host_map(imported.weights.iter().map(|(k, t)| (k.clone(), t))).map_err(Failure::msg)?;
    let weights_path = output.with_extension("safetensors");
    write_tensors(&weights_path, &weights).map_err(Failure::msg)?;
    write_atomic(output, text.as_bytes())?;
    let _ = writeln!(
        stderr,
        "imported '{}': {} ops, {} weights in '{}'; inputs {}; outputs {}",
        a.model,
        imported.module.funcs[0].body.len(),
        weights.len(),
        weights_path.display(),
        imported.inputs.join(", "),
        imported.outputs.join(", ")
    );
    Ok(())
}

/// `lowbit run MODEL.onnx`: import, then interpret with inputs keyed by ONNX input names.
pub(super) fn run_onnx(
    path: &str,
    dims: &[String],
    assume_no_nan: bool,
    inputs: Option<&Path>,
) -> CliResult<TensorMap> {
    let imported = import(path, dims, assume_no_nan)?;
    let f = &imported.module.funcs[0];
    let Some(file) = inputs else {
        return Err(Failure::msg(format!(
            "'{path}' takes inputs {}; give them with --input FILE (keyed by those names)",
            imported.inputs.join(", ")
        )));
    };
    let given = read_tensors(file).map_err(Failure::msg)?;
    let mut args = Vec::new();
    for (name, ty) in imported.inputs.iter().zip(f.param_types()) {
        let t: Tensor = given.get(name).map(to_interp).ok_or_else(|| {
            Failure::msg(format!(
                "'{}' has no tensor '{name}' (the inputs are {})",
                file.display(),
                imported.inputs.join(", ")
            ))
        })?;
        if t.ty != ty {
            return Err(Failure::msg(format!(
                "input '{name}' in '{}' is {} but the model (with its --dim bindings) expects {ty}",
                file.display(),
                t.ty
            )));
        }
        args.push(t);
    }
    let outs = run_func(f, &args, &imported.weights).map_err(Failure::msg)?;
    named_outputs(&imported.outputs, &outs)
}

pub(super) fn run_inspect(
    a: InspectArgs,
    stdout: &mut dyn Write,
    _stderr: &mut dyn Write,
) -> CliResult<()> {
    let bytes = std::fs::read(&a.model).map_err(|e| {
        Failure::msg(format!(
            "cannot read '{}': {}",
            a.model,
            super::io_message(&e)
        ))
    })?;
    let model = ModelProto::decode(bytes.as_slice()).map_err(|e| {
        Failure::msg(format!(
            "'{}' is not a valid ONNX model: the protobuf does not decode ({e}); the file may be truncated",
            a.model
        ))
    })?;
    let mut out = String::new();
    out.push_str(&format!(
        "model: {} (ir_version {}, producer {} {})\n",
        a.model, model.ir_version, model.producer_name, model.producer_version
    ));
    for o in &model.opset_import {
        let d = if o.domain.is_empty() {
            "ai.onnx"
        } else {
            &o.domain
        };
        out.push_str(&format!("opset: {d} {}\n", o.version));
    }
    let Some(g) = &model.graph else {
        out.push_str("graph: none\n");
        let _ = stdout.write_all(out.as_bytes());
        return Ok(());
    };
    let value_info = |v: &crate::onnx::proto::ValueInfoProto| {
        let tt = v.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
        let elem = tt.map_or("?".to_string(), |t| {
            crate::onnx::tensor::elem_of(t.elem_type).map_or_else(
                || crate::onnx::tensor::type_name(t.elem_type),
                |e| e.to_string(),
            )
        });
        let dims: Vec<String> = tt
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match (&d.dim_param, d.dim_value) {
                        (Some(p), _) if !p.is_empty() => p.clone(),
                        (_, Some(n)) => n.to_string(),
                        _ => "?".to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        format!("{} [{}] {elem}", v.name, dims.join(", "))
    };
    let inits: std::collections::BTreeSet<&str> =
        g.initializer.iter().map(|t| t.name.as_str()).collect();
    for i in g.input.iter().filter(|i| !inits.contains(i.name.as_str())) {
        out.push_str(&format!("input: {}\n", value_info(i)));
    }
    for o in &g.output {
        out.push_str(&format!("output: {}\n", value_info(o)));
    }
    let bytes: usize = g.initializer.iter().map(|t| t.raw_data.len()).sum();
    out.push_str(&format!(
        "initializers: {} ({} bytes inline raw data)\n",
        g.initializer.len(),
        bytes
    ));
    let mut hist: BTreeMap<String, usize> = BTreeMap::new();
    for n in &g.node {
        let d = if n.domain.is_empty() { "" } else { &n.domain };
        let key = if d.is_empty() {
            n.op_type.clone()
        } else {
            format!("{d}.{}", n.op_type)
        };
        *hist.entry(key).or_default() += 1;
    }
    out.push_str(&format!("nodes: {}\n", g.node.len()));
    for (op, count) in hist {
        out.push_str(&format!("  {op}: {count}\n"));
    }
    let quant = crate::onnx::quant::summary(g);
    if quant.is_empty() {
        out.push_str("quantization: none\n");
    } else {
        out.push_str(&format!("quantization: {} tensors\n", quant.len()));
        for line in quant {
            out.push_str(&format!("  {line}\n"));
        }
    }
    let _ = stdout.write_all(out.as_bytes());
    Ok(())
}
