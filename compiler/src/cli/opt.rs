//! `lowbit opt`: parse, verify, run a pipeline, print.
//!
//! With `--split-input-file` the input is cut at lines that are exactly `// -----` and each
//! chunk is processed on its own (locations and messages keep the line numbers of the whole
//! file); outputs are joined with `// -----`. A chunk that fails prints its errors and no
//! output, the others still run, and the exit code is 1.
//!
//! With `--verify-diagnostics` every chunk is expected to fail (to parse, to verify, or in
//! the pipeline): the rendered errors go to stdout, joined with `// -----`, and the exit
//! code is 0 when every chunk failed, 1 naming the chunks that did not.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use lowbit_dialects::interp::{Tensor, Weights};
use lowbit_dialects::ir::parse::parse_module;
use lowbit_dialects::ir::verify::verify_module;
use lowbit_dialects::ir::{Attr, Module};
use lowbit_dialects::{graph, Opcode};
use lowbit_passes::{PassCx, PassEnv, PassManager};

use super::compile::weights_for;
use super::numerics::DiffInputs;
use super::run::{inputs_for, signature};
use crate::driver::select_func;
use crate::tensors::to_interp;

use super::diag::{render_pass_error, render_verify_errors, Source};
use super::{
    display_name, pass_manager, read_input, write_atomic, CliResult, Failure, PipelineArgs,
    PrintArgs,
};

#[derive(Debug, Args)]
pub(super) struct OptArgs {
    /// The input IR (`-` for stdin).
    #[arg(value_name = "FILE")]
    file: String,
    /// Write the output here instead of stdout.
    #[arg(short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
    /// Process each `// -----`-separated chunk of the input on its own.
    #[arg(long)]
    split_input_file: bool,
    /// Expect every chunk to fail; print the diagnostics to stdout.
    #[arg(long)]
    verify_diagnostics: bool,
    /// Weights the passes may read and rewrite (.safetensors or .npz; default: the input's
    /// sibling `.safetensors` when there is one). When a pass changes them, they are written
    /// beside the output (`-o model.mlir` writes `model.safetensors`).
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Calibration inputs (`arg0`, `arg1`, ... in a .npz or .safetensors file) for passes
    /// that measure activations; repeatable, one argument set per file.
    #[arg(long, value_name = "FILE")]
    calibration: Vec<PathBuf>,
    /// Run the interpreter before the pipeline and after every pass on these inputs (a
    /// .npz/.safetensors file with `arg0`, ... or `random:SEED`) and print each pass's
    /// max abs error, relative L1 and cosine similarity against the unoptimized graph.
    #[arg(long, value_name = "INPUTS")]
    diff_numerics: Option<String>,
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    print: PrintArgs,
}

/// One chunk of a split input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The chunk's text.
    pub text: &'a str,
    /// Lines of the file before it.
    pub line_offset: u32,
}

/// Splits `src` at lines that are exactly `// -----` (the separator lines belong to no
/// chunk). A file without separators is one chunk.
pub fn split_input_file(src: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let (mut start, mut start_line, mut pos) = (0usize, 0u32, 0usize);
    for (i, line) in src.split_inclusive('\n').enumerate() {
        if line.trim_end_matches(['\n', '\r']) == "// -----" {
            chunks.push(Chunk {
                text: &src[start..pos],
                line_offset: start_line,
            });
            start = pos + line.len();
            start_line = i as u32 + 1;
        }
        pos += line.len();
    }
    chunks.push(Chunk {
        text: &src[start..],
        line_offset: start_line,
    });
    chunks
}

pub(super) fn run(a: OptArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> CliResult<()> {
    let mut pm = pass_manager(&a.pipeline, "")?;
    let src = read_input(&a.file)?;
    pm.env.weights = weights_for(&a.file, a.weights.as_deref())?;
    let file = display_name(&a.file);
    let chunks = if a.split_input_file {
        split_input_file(&src)
    } else {
        vec![Chunk {
            text: &src,
            line_offset: 0,
        }]
    };
    let mut outputs = Vec::with_capacity(chunks.len());
    let mut failed = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let source = Source {
            text: chunk.text,
            file,
            line_offset: chunk.line_offset,
        };
        match process(&source, &mut pm, &a, stderr) {
            // Under --verify-diagnostics stdout holds diagnostics only.
            Ok(_) if a.verify_diagnostics => outputs.push(String::new()),
            Ok(text) => outputs.push(text),
            Err(Failure(text)) => {
                failed.push(i);
                if a.verify_diagnostics {
                    outputs.push(text);
                } else {
                    let _ = stderr.write_all(text.as_bytes());
                    outputs.push(String::new());
                }
            }
        }
    }
    if a.pipeline.pass_stats {
        let _ = stderr.write_all(pm.stats_report().as_bytes());
    }
    let text = outputs.join("// -----\n");
    if a.verify_diagnostics {
        let _ = stdout.write_all(text.as_bytes());
        let verified: Vec<String> = (0..chunks.len())
            .filter(|i| !failed.contains(i))
            .map(|i| format!("{} (line {})", i + 1, chunks[i].line_offset + 1))
            .collect();
        if !verified.is_empty() {
            return Err(Failure::msg(format!(
                "--verify-diagnostics expects every chunk of '{file}' to fail, but chunk {} verified",
                verified.join(", ")
            )));
        }
        return Ok(());
    }
    if !failed.is_empty() {
        // Errors are printed; with -o nothing is written, on stdout the good chunks show.
        if a.output.is_none() {
            let _ = stdout.write_all(text.as_bytes());
        }
        return Err(Failure(String::new()));
    }
    if pm.env.weights_changed {
        let Some(path) = &a.output else {
            return Err(Failure::msg(
                "the pipeline changed the weights; give -o FILE so that they can be written beside the IR",
            ));
        };
        write_weights(&path.with_extension("safetensors"), &pm.env.weights)?;
    }
    match &a.output {
        Some(path) => write_atomic(path, text.as_bytes()),
        None => {
            let _ = stdout.write_all(text.as_bytes());
            Ok(())
        }
    }
}

/// The names of the weights `module` uses.
fn used_weights(module: &Module) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for f in &module.funcs {
        for &op in &f.body {
            let d = &f.ops[op];
            if d.opcode == Opcode::Graph(graph::Op::Weight) {
                if let Some(Attr::Str(n)) = d.attrs.get("name") {
                    names.insert(n.clone());
                }
            }
        }
    }
    names
}

/// Writes `weights` to `path` (safetensors), atomically.
fn write_weights(path: &Path, weights: &Weights) -> CliResult<()> {
    let host = crate::tensors::to_host_map(weights.iter().map(|(k, t)| (k.clone(), t)))
        .map_err(Failure::msg)?;
    // The temporary keeps the `.safetensors` extension: the writer picks the format by it.
    let tmp = path.with_extension("tmp.safetensors");
    lowbit_runtime::write_tensors(&tmp, &host).map_err(Failure::msg)?;
    std::fs::rename(&tmp, path)
        .map_err(|e| Failure::msg(format!("cannot write '{}': {e}", path.display())))
}

/// Parses, verifies and transforms one chunk; returns its printed output.
fn process(
    src: &Source<'_>,
    pm: &mut PassManager,
    a: &OptArgs,
    dump: &mut dyn Write,
) -> CliResult<String> {
    let print = &a.print;
    let mut module = parse_chunk(src)?;
    if !a.calibration.is_empty() {
        pm.env.calibration = calibration_sets(&a.calibration, &module)?;
    }
    let mut diff = match &a.diff_numerics {
        Some(spec) => Some(DiffInputs::prepare(spec, &module, &pm.env.weights)?),
        None => None,
    };
    let printer = |m: &Module| print.print(m);
    let mut hook = |info: &lowbit_passes::PassInfo, m: &Module, env: &PassEnv| {
        if let Some(d) = diff.as_mut() {
            d.after_pass(info.name, m, &env.weights);
        }
    };
    let mut cx = PassCx {
        dump: Some(&mut *dump),
        printer: Some(&printer),
        after_pass: Some(&mut hook),
    };
    let result = pm.run(&mut module, &mut cx);
    if let Some(d) = &diff {
        let _ = dump.write_all(d.table().as_bytes());
    }
    result.map_err(|e| Failure(render_pass_error(&e, &module, src)))?;
    if pm.env.weights_changed {
        let used = used_weights(&module);
        pm.env.weights.retain(|k, _| used.contains(k));
    }
    Ok(print.print(&module))
}

/// Each calibration file as an argument list for `module`'s function.
fn calibration_sets(files: &[PathBuf], module: &Module) -> CliResult<Vec<Vec<Tensor>>> {
    let f = select_func(module, None).map_err(|e| {
        Failure::msg(format!(
            "--calibration needs one function to calibrate: {e}"
        ))
    })?;
    let manifest = signature(f)?;
    files
        .iter()
        .map(|path| {
            let given = inputs_for(Some(path), None, &manifest)?;
            Ok(manifest
                .inputs
                .iter()
                .map(|s| to_interp(&given[&s.name]))
                .collect())
        })
        .collect()
}

/// Parses and verifies one chunk, rendering any error.
pub(super) fn parse_chunk(src: &Source<'_>) -> CliResult<Module> {
    let module = parse_module(src.text, src.file, src.line_offset)
        .map_err(|e| Failure(e.render(src.text, src.file, src.line_offset)))?;
    verify_module(&module)
        .map_err(|errs| Failure(render_verify_errors(&errs, &module, src, "")))?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_line_numbers() {
        let src = "a\n// -----\nb\nc\n// -----\n\nd";
        let chunks = split_input_file(src);
        assert_eq!(
            chunks,
            [
                Chunk {
                    text: "a\n",
                    line_offset: 0
                },
                Chunk {
                    text: "b\nc\n",
                    line_offset: 2
                },
                Chunk {
                    text: "\nd",
                    line_offset: 5
                },
            ]
        );
        assert_eq!(
            split_input_file("x"),
            [Chunk {
                text: "x",
                line_offset: 0
            }]
        );
        assert_eq!(split_input_file("// ------\n").len(), 1);
    }
}
