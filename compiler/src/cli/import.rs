//! `lowbit import`, `lowbit run` and `lowbit inspect` on checkpoints: Hugging Face
//! directories (BERT, Llama family), `.safetensors` files and GGUF files.
//!
//! `lowbit import (DIR|FILE.gguf) [-o model.mlir] [--dim batch=N --dim sequence=N
//! --dim past=T]` writes the IR (see [`crate::import`]). Llama-family models get the
//! `prefill` entry, or with `past=T` (T >= 1) the `decode` entry: S new tokens after a KV
//! cache of T. A float safetensors checkpoint's weights are not copied: the IR names them
//! by key, so the `.mlir` runs with `--weights DIR/model.safetensors`. Quantized checkpoints
//! (AWQ, GPTQ) and GGUF files have derived tensors (unpacked codes, zero points, block
//! fields); with `-o` every weight the function names goes to the sibling `.safetensors`,
//! where `lowbit run model.mlir` finds it, and a GGUF file's metadata (the tokenizer
//! included) to the sibling `.gguf-metadata.json`. A comment at the top of the output maps
//! the parameters (`arg0`, ...) and results (`out0`, ...) to their Hugging Face names.
//!
//! `lowbit run (DIR|FILE.gguf) [--dim ...] --input X.npz [--output Y.npz]` imports and runs
//! in the reference interpreter; inputs and outputs take the Hugging Face names
//! (`token_type_ids` defaults to zeros, a Llama `attention_mask` to ones).
//!
//! `lowbit inspect PATH` summarizes a checkpoint directory, `.safetensors` file, index or
//! GGUF file: architecture and dims, every tensor with its format and bits per weight,
//! total bytes, and which tensors are quantized how.
//!
//! The subcommands in `mod.rs` and `run.rs` come here by their operand; ONNX models go to
//! `onnx.rs`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use lowbit_dialects::interp::{run_func, Tensor};
use lowbit_dialects::ir::verify::verify_module;
use lowbit_dialects::ir::{Func, Module};
use lowbit_runtime::{read_tensors, write_tensors, TensorMap};
use serde_json::Value as Json;

use super::{named_outputs, write_atomic, CliResult, Failure, PrintArgs};
use crate::import::gguf::{import_gguf, GgufFile, MetaValue};
use crate::import::llama::{
    import_llama_dir, is_llama_config, Entry, LlamaConfig, LlamaDims, LlamaImport, Quant,
};
use crate::import::{import_dir, Dims, Dtype, Imported, WeightStore};
use crate::tensors::{to_host_map, to_interp};

/// Whether `p` names a GGUF file (by its extension).
pub(super) fn is_gguf(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// Whether `p` names a safetensors file or a sharded checkpoint's index.
fn is_safetensors_file(p: &Path) -> bool {
    let s = p.to_string_lossy();
    p.is_file() && (s.ends_with(".safetensors") || s.ends_with(".safetensors.index.json"))
}

/// Whether `lowbit import` reads `p` as a checkpoint: a directory, a GGUF file, or a
/// safetensors file (its directory holds the `config.json`).
pub(super) fn is_checkpoint(p: &Path) -> bool {
    p.is_dir() || is_gguf(p) || is_safetensors_file(p)
}

/// Whether `p` is a checkpoint `lowbit run` and `lowbit import` read: a directory holding
/// `config.json`, a safetensors file beside one, or a GGUF file.
pub(super) fn is_checkpoint_dir(p: &Path) -> bool {
    p.join("config.json").is_file()
        || is_gguf(p)
        || (is_safetensors_file(p) && p.parent().is_some_and(|d| d.join("config.json").is_file()))
}

/// The checkpoint directory `p` stands for: itself, or a safetensors file's directory
/// (which must hold `config.json`: the architecture comes from it).
fn checkpoint_dir(p: &Path) -> CliResult<&Path> {
    if !is_safetensors_file(p) {
        return Ok(p);
    }
    match p.parent() {
        Some(d) if d.join("config.json").is_file() => Ok(d),
        _ => Err(Failure::msg(format!(
            "'{}' has no config.json beside it; the model's architecture comes from it",
            p.display()
        ))),
    }
}

/// Whether `lowbit inspect` reads `p` as a checkpoint: a directory, a `.safetensors`
/// file, a sharded index or a GGUF file.
pub(super) fn is_checkpoint_path(p: &Path) -> bool {
    let s = p.to_string_lossy();
    p.is_dir()
        || s.ends_with(".safetensors")
        || s.ends_with(".safetensors.index.json")
        || is_gguf(p)
}

/// Parses `--dim NAME=N` flags: `batch`, `sequence`, and (Llama family) `past`, checked
/// against `--entry`: `decode` needs `past=T` (T >= 1), `prefill` takes none.
fn parse_dims(flags: &[String], entry: Option<&str>) -> CliResult<LlamaDims> {
    let mut dims = LlamaDims::default();
    for flag in flags {
        let parsed = flag
            .split_once('=')
            .and_then(|(k, v)| Some((k, v.parse::<usize>().ok()?)));
        match parsed {
            Some(("batch", n)) if n > 0 => dims.batch = n,
            Some(("sequence", n)) if n > 0 => dims.sequence = n,
            Some(("past", n)) => dims.past = n,
            _ => {
                return Err(Failure::msg(format!(
                    "--dim '{flag}' is not batch=N, sequence=N (N >= 1) or past=T"
                )))
            }
        }
    }
    match entry {
        Some("decode") if dims.past == 0 => Err(Failure::msg(
            "--entry decode reads a KV cache: give its length with --dim past=T (T >= 1)",
        )),
        Some("prefill") if dims.past > 0 => Err(Failure::msg(
            "--entry prefill starts from an empty cache; drop --dim past (or use --entry decode)",
        )),
        _ => Ok(dims),
    }
}

/// An imported checkpoint of either family.
enum Loaded {
    Bert(Box<Imported>),
    Llama(Box<LlamaImport>, Option<Vec<(String, MetaValue)>>),
}

impl Loaded {
    fn module(&self) -> &Module {
        match self {
            Loaded::Bert(m) => &m.module,
            Loaded::Llama(m, _) => &m.module,
        }
    }

    fn names(&self) -> (&[String], &[String]) {
        match self {
            Loaded::Bert(m) => (&m.inputs, &m.outputs),
            Loaded::Llama(m, _) => (&m.inputs, &m.outputs),
        }
    }

    fn weights_for(&self, f: &Func) -> CliResult<lowbit_dialects::interp::Weights> {
        match self {
            Loaded::Bert(m) => m.weights.weights_for(f),
            Loaded::Llama(m, _) => m.weights.weights_for(f),
        }
        .map_err(Failure::msg)
    }
}

fn read_config(dir: &Path) -> CliResult<Json> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::msg(format!(
            "cannot read '{}': {}",
            path.display(),
            super::io_message(&e)
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Failure::msg(format!("'{}': is not valid JSON ({e})", path.display())))
}

/// Imports and verifies a checkpoint directory or GGUF file.
fn load(path: &Path, dims: LlamaDims) -> CliResult<Loaded> {
    let path = checkpoint_dir(path)?;
    let entry = if dims.past > 0 {
        Entry::Decode
    } else {
        Entry::Prefill
    };
    let loaded = if is_gguf(path) {
        let g = import_gguf(path, entry, dims).map_err(Failure::msg)?;
        Loaded::Llama(Box::new(g.model), Some(g.metadata))
    } else if is_llama_config(&read_config(path)?) {
        Loaded::Llama(
            Box::new(import_llama_dir(path, entry, dims).map_err(Failure::msg)?),
            None,
        )
    } else {
        if dims.past > 0 {
            return Err(Failure::msg(format!(
                "--dim past applies to causal language models; '{}' is not one",
                path.display()
            )));
        }
        let d = Dims {
            batch: dims.batch,
            sequence: dims.sequence,
        };
        Loaded::Bert(Box::new(import_dir(path, d).map_err(Failure::msg)?))
    };
    if let Err(errs) = verify_module(loaded.module()) {
        let text: String = errs
            .iter()
            .map(|e| format!("error: imported IR does not verify: {e}\n"))
            .collect();
        return Err(Failure(text));
    }
    Ok(loaded)
}

/// A GGUF metadata value as JSON.
fn meta_json(v: &MetaValue) -> Json {
    match v {
        MetaValue::Str(s) => Json::String(s.clone()),
        MetaValue::Bool(b) => Json::Bool(*b),
        MetaValue::Array(_, items) => Json::Array(items.iter().map(meta_json).collect()),
        MetaValue::F32(x) => {
            serde_json::Number::from_f64(f64::from(*x)).map_or(Json::Null, Json::Number)
        }
        MetaValue::F64(x) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
        MetaValue::I8(_) | MetaValue::I16(_) | MetaValue::I32(_) | MetaValue::I64(_) => {
            let i = match *v {
                MetaValue::I8(x) => i64::from(x),
                MetaValue::I16(x) => i64::from(x),
                MetaValue::I32(x) => i64::from(x),
                MetaValue::I64(x) => x,
                _ => unreachable!("matched a signed integer"),
            };
            Json::from(i)
        }
        _ => v.as_u64().map_or(Json::Null, Json::from),
    }
}

/// `lowbit import DIR|FILE.gguf`: writes the IR (to `output` or stdout), and with `-o` the
/// derived weights and GGUF metadata beside it.
pub(super) fn import_checkpoint(
    path: &Path,
    output: Option<&Path>,
    dims: &[String],
    entry: Option<&str>,
    print: &PrintArgs,
    stdout: &mut dyn Write,
) -> CliResult<()> {
    let loaded = load(path, parse_dims(dims, entry)?)?;
    let (inputs, outputs) = loaded.names();
    let names = |kind: &str, names: &[String]| {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n} ({kind}{i})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let f = &loaded.module().funcs[0];
    let (files, derived) = match &loaded {
        Loaded::Bert(m) => (
            m.weights
                .files()
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect(),
            false,
        ),
        Loaded::Llama(m, _) => (m.weights.files(), m.weights.has_derived()),
    };
    let files = files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let where_ = match (derived, output) {
        (false, _) => format!("weights stay in {files}"),
        (true, Some(o)) => format!(
            "weights (relaid out from {files}) in '{}'",
            o.with_extension("safetensors").display()
        ),
        (true, None) => {
            format!("weights are relaid out from {files}; import with -o FILE.mlir to write them")
        }
    };
    let text = format!(
        "// Imported by lowbit import from '{}' (function @{}); {where_}.\n\
         // inputs: {}\n// outputs: {}\n{}",
        path.display(),
        f.name,
        names("arg", inputs),
        names("out", outputs),
        print.print(loaded.module())
    );
    let Some(out) = output else {
        let _ = stdout.write_all(text.as_bytes());
        return Ok(());
    };
    if derived {
        let w = loaded.weights_for(f)?;
        let map = to_host_map(w.iter().map(|(k, t)| (k.clone(), t))).map_err(Failure::msg)?;
        write_tensors(out.with_extension("safetensors"), &map).map_err(Failure::msg)?;
    }
    if let Loaded::Llama(_, Some(meta)) = &loaded {
        let obj: serde_json::Map<String, Json> = meta
            .iter()
            .map(|(k, v)| (k.clone(), meta_json(v)))
            .collect();
        let json = serde_json::to_string_pretty(&Json::Object(obj)).expect("JSON values print");
        write_atomic(&out.with_extension("gguf-metadata.json"), json.as_bytes())?;
    }
    write_atomic(out, text.as_bytes())
}

/// `lowbit run DIR|FILE.gguf`: imports and interprets; inputs and outputs are keyed by their
/// Hugging Face names (`token_type_ids` defaults to zeros, `attention_mask` of a causal LM
/// to ones).
pub(super) fn run_checkpoint(
    path: &Path,
    dims: &[String],
    entry: Option<&str>,
    input: Option<&Path>,
) -> CliResult<TensorMap> {
    let loaded = load(path, parse_dims(dims, entry)?)?;
    let f = &loaded.module().funcs[0];
    let (inputs_names, outputs_names) = loaded.names();
    let names = inputs_names.join(", ");
    let Some(input) = input else {
        return Err(Failure::msg(format!(
            "'{}' takes inputs {names}; give them with --input FILE",
            path.display()
        )));
    };
    let file = input.display().to_string();
    let mut given = read_tensors(input).map_err(Failure::msg)?;
    if let Some(extra) = given.keys().find(|k| !inputs_names.contains(k)) {
        return Err(Failure::msg(format!(
            "'{file}' has tensor '{extra}', which is not an input (the inputs are {names})"
        )));
    }
    let causal = matches!(loaded, Loaded::Llama(..));
    let mut inputs = Vec::new();
    for (name, ty) in inputs_names.iter().zip(f.param_types()) {
        let t = match given.remove(name) {
            Some(h) => to_interp(&h),
            None if name == "token_type_ids" => Tensor::zeros(ty.clone()),
            None if name == "attention_mask" && causal => {
                Tensor::new(ty.clone(), vec![1.0; ty.num_elements()])
            }
            None => {
                return Err(Failure::msg(format!(
                    "'{file}' has no tensor '{name}' (the inputs are {names})"
                )))
            }
        };
        if t.ty != ty {
            return Err(Failure::msg(format!(
                "input '{name}' in '{file}' is {} but the model expects {ty} (set --dim batch=N --dim sequence=N [--dim past=T])",
                t.ty
            )));
        }
        inputs.push(t);
    }
    let weights = loaded.weights_for(f)?;
    let outs = run_func(f, &inputs, &weights).map_err(Failure::msg)?;
    named_outputs(outputs_names, &outs)
}

/// Bits per element of a safetensors dtype.
fn dtype_bits(d: Dtype) -> usize {
    d.size() * 8
}

/// The architecture lines of a Llama-family config.
fn describe_llama(cfg: &LlamaConfig) -> String {
    let mut s = format!(
        "architecture: {}\ndims: hidden {}, layers {}, heads {} (kv {}), head_dim {}, intermediate {}, vocab {}, max positions {}\n",
        cfg.architecture,
        cfg.hidden,
        cfg.layers,
        cfg.heads,
        cfg.kv_heads,
        cfg.head_dim,
        cfg.intermediate,
        cfg.vocab,
        cfg.max_positions
    );
    s.push_str(&format!(
        "rope: theta {}, scaling {:?}; rms_norm_eps {}; tied embeddings {}\n",
        cfg.rope_theta, cfg.rope_scaling, cfg.eps, cfg.tie_embeddings
    ));
    let q = match cfg.quant {
        Quant::None => "none (float weights)".to_string(),
        Quant::Awq { group } => format!("AWQ GEMM int4 (awq_gemm_int4), group {group}"),
        Quant::Gptq { bits, group } => format!(
            "GPTQ v1 int{bits} (gptq_int{bits}), group {}",
            group.map_or("all inputs".to_string(), |g| g.to_string())
        ),
    };
    s.push_str(&format!("quantization: {q}\n"));
    s
}

/// `lowbit inspect` of a checkpoint directory, safetensors file, index or GGUF file.
pub(super) fn inspect_checkpoint(path: &Path, stdout: &mut dyn Write) -> CliResult<()> {
    let out = if is_gguf(path) {
        inspect_gguf(path)?
    } else {
        inspect_safetensors(path)?
    };
    let _ = stdout.write_all(out.as_bytes());
    Ok(())
}

fn inspect_safetensors(path: &Path) -> CliResult<String> {
    let mut out = String::new();
    let mut quant = Quant::None;
    if path.is_dir() && path.join("config.json").is_file() {
        let j = read_config(path)?;
        if is_llama_config(&j) {
            let cfg = LlamaConfig::from_hf(&path.join("config.json"), &j).map_err(Failure::msg)?;
            out.push_str(&describe_llama(&cfg));
            quant = cfg.quant;
        } else if let Some(a) = j.get("architectures").and_then(Json::as_array) {
            out.push_str(&format!(
                "architecture: {}\n",
                a.iter()
                    .filter_map(Json::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let store = WeightStore::open(path).map_err(Failure::msg)?;
    let (mut count, mut bytes, mut quantized, mut qbytes) = (0usize, 0usize, 0usize, 0usize);
    for name in store.names() {
        let e = store.entry(name).expect("names come from the store");
        let what = match (quant, name.rsplit('.').next()) {
            (Quant::Awq { .. }, Some("qweight")) => {
                "AWQ codes, 4 bits each, 8 per int32".to_string()
            }
            (Quant::Gptq { bits, .. }, Some("qweight")) => {
                format!("GPTQ codes, {bits} bits each, {} per int32", 32 / bits)
            }
            (Quant::Awq { .. }, Some("qzeros")) => "AWQ zero points, 4 bits".to_string(),
            (Quant::Gptq { bits, .. }, Some("qzeros")) => {
                format!("GPTQ zero points (stored minus one), {bits} bits")
            }
            (Quant::Awq { .. } | Quant::Gptq { .. }, Some("scales")) => {
                "group scales, 16 bits".to_string()
            }
            (Quant::Gptq { .. }, Some("g_idx")) => "GPTQ input-row group index".to_string(),
            _ => format!("{} bits", dtype_bits(e.dtype)),
        };
        if name.ends_with(".qweight") {
            quantized += 1;
        }
        if [".qweight", ".qzeros", ".scales", ".g_idx"]
            .iter()
            .any(|s| name.ends_with(s))
        {
            qbytes += e.range.len();
        }
        out.push_str(&format!(
            "{name}: {:?} {:?}, {} bytes ({what})\n",
            e.dtype,
            e.shape,
            e.range.len()
        ));
        count += 1;
        bytes += e.range.len();
    }
    out.push_str(&format!(
        "{count} tensors, {bytes} bytes in {} file(s)\n",
        store.files().len()
    ));
    if quantized > 0 {
        out.push_str(&format!(
            "quantized: {quantized} linear layers ({qbytes} bytes with scales and zeros); the rest float\n"
        ));
    }
    Ok(out)
}

fn inspect_gguf(path: &Path) -> CliResult<String> {
    let g = GgufFile::open(path).map_err(Failure::msg)?;
    let h = &g.header;
    let mut out = format!(
        "GGUF version {}, {} metadata entries, {} tensors, alignment {}\n",
        h.version,
        h.metadata.len(),
        h.tensors.len(),
        h.alignment
    );
    if let Some(a) = h.get("general.architecture").and_then(MetaValue::as_str) {
        out.push_str(&format!("architecture: {a}\n"));
    }
    for (k, v) in &h.metadata {
        out.push_str(&format!("  {k} = {}\n", v.summary()));
    }
    let mut by_format: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut bytes = 0usize;
    for name in &h.order {
        let t = &h.tensors[name];
        let f = t.format;
        let bits = f.block_bytes() as f64 * 8.0 / f.block_elems() as f64;
        out.push_str(&format!(
            "{name}: {} {:?}, {bits} bits/weight, {} bytes\n",
            f.name.to_uppercase(),
            t.shape(),
            t.range.len()
        ));
        let e = by_format.entry(f.name).or_default();
        e.0 += 1;
        e.1 += t.range.len();
        e.2 += t.shape().iter().product::<usize>();
        bytes += t.range.len();
    }
    out.push_str(&format!("{} tensors, {bytes} bytes\n", h.tensors.len()));
    for (name, (n, b, elems)) in by_format {
        let f = lowbit_dialects::formats::lookup(name).expect("registry formats");
        out.push_str(&format!(
            "{}: {n} tensors, {elems} weights, {b} bytes — {}\n",
            name.to_uppercase(),
            f.summary
        ));
    }
    Ok(out)
}
