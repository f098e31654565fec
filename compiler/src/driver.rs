//! From an optimized module to an artifact directory.
//!
//! [`compile_to_dir`] compiles one function of a module (already run through the pass
//! pipeline by the caller) for the host and writes the artifact the runtime loads:
//!
//! | file | what |
//! | --- | --- |
//! | `model.so` | the shared object with the entry point `lowbit_<function>` |
//! | `weights.safetensors` | every weight the function names with `graph.weight`, `f32` |
//! | `manifest.json` | the runtime's [`Manifest`]: format version 1, this compiler's version, the target triple, the pipeline, the entry symbol, the function, and the inputs, outputs and weights in the order the entry takes them |
//! | `model.ll`, `model.s`, `model.o` | optimized LLVM IR, assembly and the object, when asked for with [`Emit`] |
//!
//! Names in the manifest: input `i` is `arg<i>` (as the printer names `%arg<i>`), output
//! `k` is `out<k>` (the `k`-th value of `return`), and each weight keeps its store name,
//! in order of first use in the function.
//!
//! Nothing half-written is left behind: everything is written into a fresh temporary
//! directory beside `out_dir` and renamed into place at the end. An existing `out_dir` is
//! replaced only when the compilation succeeded; on any error it is untouched and the
//! temporary directory is removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lowbit_dialects::interp::Weights;
use lowbit_dialects::ir::verify::{verify_func, VerifyError};
use lowbit_dialects::ir::{Elem, Func, Loc, Module, TensorType};
use lowbit_dialects::{graph, Opcode};
use lowbit_runtime::{Manifest, RuntimeError, TensorMap, TensorSpec, FORMAT_VERSION};
use thiserror::Error;

use crate::backend::llvm::{self, CodegenOptions};
use crate::backend::BackendError;
use crate::tensors::{dtype_of, from_interp, TensorError};

/// An extra file to write beside the artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Emit {
    /// `model.ll`: the optimized LLVM IR.
    Llvm,
    /// `model.s`: the assembly.
    Asm,
    /// `model.o`: the object `model.so` is linked from.
    Obj,
}

impl Emit {
    /// The file name this emits.
    pub fn file_name(self) -> &'static str {
        match self {
            Emit::Llvm => "model.ll",
            Emit::Asm => "model.s",
            Emit::Obj => "model.o",
        }
    }
}

/// What to compile and what to write.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// The function to compile; `None` picks the only function, or `main`.
    pub func: Option<String>,
    /// Extra files to write.
    pub emit: Vec<Emit>,
    /// The pass pipeline the module went through, recorded in the manifest.
    pub pipeline: String,
}

/// What [`compile_to_dir`] wrote.
#[derive(Clone, Debug)]
pub struct CompileReport {
    /// Every file written, under `out_dir`, in the order written.
    pub files: Vec<PathBuf>,
    /// The manifest written.
    pub manifest: Manifest,
    /// The target CPU the code was tuned for.
    pub cpu: String,
    /// Bytes of the per-call arena for intermediates (0: the entry allocates nothing).
    pub arena_bytes: u64,
    /// Time spent generating and optimizing code and emitting the object.
    pub codegen_time: Duration,
    /// Time spent linking `model.so`.
    pub link_time: Duration,
    /// Wall time of the whole call.
    pub total_time: Duration,
}

/// Why compiling to a directory failed. Each renders as one sentence.
#[derive(Debug, Error)]
pub enum DriverError {
    /// `--func` names no function of the module.
    #[error("module has no function '@{name}' (it has {})", list(.available))]
    NoSuchFunction {
        /// The name asked for.
        name: String,
        /// The functions there are.
        available: Vec<String>,
    },
    /// No function was named and the choice is ambiguous (or the module is empty).
    #[error("module has {} functions and none is named 'main': choose one of {}", .available.len(), list(.available))]
    AmbiguousFunction {
        /// The functions there are.
        available: Vec<String>,
    },
    /// The function does not verify.
    #[error("{first}{}", more(.rest))]
    Invalid {
        /// The first error.
        first: VerifyError,
        /// How many more there are.
        rest: usize,
    },
    /// The code generator or linker failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A `graph.weight` names a weight the store does not hold.
    #[error("'graph.weight' op names \"{name}\", which is not among the weights given at {loc}")]
    MissingWeight {
        /// The weight's name.
        name: String,
        /// The op's location.
        loc: Loc,
    },
    /// A weight's stored type differs from the type the IR declares.
    #[error("'graph.weight' op declares \"{name}\" as {declared}, but the weights given hold {found} at {loc}")]
    WeightType {
        /// The weight's name.
        name: String,
        /// The type in the IR.
        declared: Box<TensorType>,
        /// The type in the store.
        found: Box<TensorType>,
        /// The op's location.
        loc: Loc,
    },
    /// A type cannot appear in a manifest.
    #[error("{what} has element type {elem}, which artifacts cannot hold yet")]
    ElementType {
        /// The input, output or weight concerned.
        what: String,
        /// Its element type.
        elem: Elem,
    },
    /// A file system operation failed.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the weights or the manifest failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A weight cannot be stored in a tensor file.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    names
        .iter()
        .map(|n| format!("'@{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn more(rest: &usize) -> String {
    match rest {
        0 => String::new(),
        1 => " (and 1 more error)".to_string(),
        n => format!(" (and {n} more errors)"),
    }
}

fn io_err<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl FnOnce(std::io::Error) -> DriverError + 'p {
    move |source| DriverError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The function `opts.func` names, or the only one, or `main`.
pub fn select_func<'m>(module: &'m Module, name: Option<&str>) -> Result<&'m Func, DriverError> {
    let available = || module.funcs.iter().map(|f| f.name.clone()).collect();
    match name {
        Some(n) => module.func(n).ok_or_else(|| DriverError::NoSuchFunction {
            name: n.to_string(),
            available: available(),
        }),
        None if module.funcs.len() == 1 => Ok(&module.funcs[0]),
        None => module
            .func("main")
            .ok_or_else(|| DriverError::AmbiguousFunction {
                available: available(),
            }),
    }
}

/// The entry symbol of function `name`: `lowbit_` and the name, with every character
/// that cannot appear in a C identifier replaced by `_`.
pub fn entry_symbol(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("lowbit_{clean}")
}

fn spec(what: String, name: String, ty: &TensorType) -> Result<TensorSpec, DriverError> {
    let dtype = dtype_of(ty.elem).ok_or(DriverError::ElementType {
        what,
        elem: ty.elem,
    })?;
    let shape = ty
        .shape
        .iter()
        .map(|&d| d.max(0) as usize)
        .collect::<Vec<_>>();
    Ok(TensorSpec::new(name, dtype, shape))
}

/// Checks every `graph.weight` of `f` against the store, before any slow work.
fn check_weights(f: &Func, weights: &Weights) -> Result<(), DriverError> {
    for &op in &f.body {
        let d = &f.ops[op];
        if d.opcode != Opcode::Graph(graph::Op::Weight) {
            continue;
        }
        let name = d.attrs.str("name").unwrap_or_default().to_string();
        let declared = f.ty(f.result(op));
        match weights.get(&name) {
            None => {
                return Err(DriverError::MissingWeight {
                    name,
                    loc: d.loc.clone(),
                })
            }
            Some(t) if &t.ty != declared => {
                return Err(DriverError::WeightType {
                    name,
                    declared: Box::new(declared.clone()),
                    found: Box::new(t.ty.clone()),
                    loc: d.loc.clone(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Compiles one function of `module` into the artifact directory `out_dir`; see the
/// module documentation.
pub fn compile_to_dir(
    module: &Module,
    weights: &Weights,
    opts: &CompileOptions,
    out_dir: &Path,
) -> Result<CompileReport, DriverError> {
    let start = Instant::now();
    let f = select_func(module, opts.func.as_deref())?;
    let mut errs = verify_func(f).into_iter();
    if let Some(first) = errs.next() {
        return Err(DriverError::Invalid {
            first,
            rest: errs.count(),
        });
    }
    check_weights(f, weights)?;
    let entry = entry_symbol(&f.name);
    let emits = |e| opts.emit.contains(&e);
    let compiled = llvm::compile(
        f,
        &CodegenOptions {
            entry: entry.clone(),
            emit_llvm: emits(Emit::Llvm),
            emit_asm: emits(Emit::Asm),
        },
    )?;
    let codegen_time = start.elapsed();

    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        compiler_version: env!("CARGO_PKG_VERSION").to_string(),
        target: compiled.triple.clone(),
        pipeline: opts.pipeline.clone(),
        entry,
        function: f.name.clone(),
        inputs: f
            .params
            .iter()
            .enumerate()
            .map(|(i, &p)| spec(format!("input #{i}"), format!("arg{i}"), f.ty(p)))
            .collect::<Result<_, _>>()?,
        outputs: f
            .rets
            .iter()
            .enumerate()
            .map(|(k, &r)| spec(format!("output #{k}"), format!("out{k}"), f.ty(r)))
            .collect::<Result<_, _>>()?,
        weights: compiled
            .plan
            .weights
            .iter()
            .map(|w| spec(format!("weight \"{}\"", w.name), w.name.clone(), &w.ty))
            .collect::<Result<_, _>>()?,
    };
    let mut store = TensorMap::new();
    for w in &compiled.plan.weights {
        let t = weights
            .get(&w.name)
            .expect("check_weights found every weight");
        store.insert(w.name.clone(), from_interp(&w.name, t)?);
    }

    // Write everything into a temporary directory beside `out_dir`.
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_err("create", &parent))?;
    let stem = out_dir
        .file_name()
        .map_or("artifact".into(), |n| n.to_string_lossy().into_owned());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{stem}.tmp-"))
        .tempdir_in(&parent)
        .map_err(io_err("create a temporary directory in", &parent))?;
    let mut names: Vec<&'static str> = Vec::new();
    let mut write = |name: &'static str, bytes: &[u8]| -> Result<(), DriverError> {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).map_err(io_err("write", &path))?;
        names.push(name);
        Ok(())
    };
    if let Some(ir) = &compiled.llvm_ir {
        write(Emit::Llvm.file_name(), ir.as_bytes())?;
    }
    if let Some(asm) = &compiled.asm {
        write(Emit::Asm.file_name(), asm.as_bytes())?;
    }
    write(Emit::Obj.file_name(), &compiled.object)?;
    let link_start = Instant::now();
    let object = tmp.path().join(Emit::Obj.file_name());
    llvm::link_shared(&object, &tmp.path().join(lowbit_runtime::LIBRARY_FILE))?;
    let link_time = link_start.elapsed();
    names.push(lowbit_runtime::LIBRARY_FILE);
    if !emits(Emit::Obj) {
        std::fs::remove_file(&object).map_err(io_err("remove", &object))?;
        names.retain(|&n| n != Emit::Obj.file_name());
    }
    lowbit_runtime::write_tensors(tmp.path().join(lowbit_runtime::WEIGHTS_FILE), &store)?;
    names.push(lowbit_runtime::WEIGHTS_FILE);
    std::fs::write(
        tmp.path().join(lowbit_runtime::MANIFEST_FILE),
        manifest.to_json(),
    )
    .map_err(io_err(
        "write",
        &tmp.path().join(lowbit_runtime::MANIFEST_FILE),
    ))?;
    names.push(lowbit_runtime::MANIFEST_FILE);

    // Temporary files and directories are private (0600/0700); an artifact is not.
    make_readable(tmp.path(), true)?;
    make_readable(&tmp.path().join(lowbit_runtime::WEIGHTS_FILE), false)?;
    commit(tmp, out_dir, &parent, &stem)?;
    Ok(CompileReport {
        files: names.iter().map(|n| out_dir.join(n)).collect(),
        manifest,
        cpu: compiled.cpu,
        arena_bytes: compiled.plan.arena_bytes,
        codegen_time,
        link_time,
        total_time: start.elapsed(),
    })
}

/// Gives `path` the permissions a plain `mkdir` / file write would (`0755` / `0644`).
#[cfg(unix)]
fn make_readable(path: &Path, dir: bool) -> Result<(), DriverError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if dir { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err("set the permissions of", path))
}

#[cfg(not(unix))]
fn make_readable(_: &Path, _: bool) -> Result<(), DriverError> {
    Ok(())
}

/// Renames the finished temporary directory to `out_dir`, replacing an existing one:
/// the old directory is moved aside first and removed once the new one is in place
/// (restored if that rename fails).
fn commit(
    tmp: tempfile::TempDir,
    out_dir: &Path,
    parent: &Path,
    stem: &str,
) -> Result<(), DriverError> {
    let meta = std::fs::symlink_metadata(out_dir);
    let old = match meta {
        Ok(m) if m.is_dir() => {
            let aside = tempfile::Builder::new()
                .prefix(&format!(".{stem}.old-"))
                .tempdir_in(parent)
                .map_err(io_err("create a temporary directory in", parent))?;
            let aside_path = aside.path().join("old");
            std::fs::rename(out_dir, &aside_path).map_err(io_err("move aside", out_dir))?;
            Some((aside, aside_path))
        }
        Ok(_) => {
            return Err(DriverError::Io {
                action: "replace",
                path: out_dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "it exists and is not a directory",
                ),
            })
        }
        Err(_) => None,
    };
    if let Err(e) = std::fs::rename(tmp.path(), out_dir) {
        if let Some((_, aside_path)) = &old {
            let _ = std::fs::rename(aside_path, out_dir);
        }
        return Err(io_err("create", out_dir)(e));
    }
    // The directory now lives at `out_dir`; do not let the guard delete it.
    let _ = tmp.keep();
    drop(old); // removes the previous artifact
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_symbols_are_c_identifiers() {
        assert_eq!(entry_symbol("main"), "lowbit_main");
        assert_eq!(entry_symbol("block.0-a"), "lowbit_block_0_a");
        assert!(llvm::is_c_identifier(&entry_symbol("x y")));
    }
}
