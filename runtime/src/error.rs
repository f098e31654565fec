//! The runtime's one error type, [`RuntimeError`], and its [`RuntimeResult`] alias.
//!
//! Every fallible operation of the crate (reading a manifest, loading an artifact,
//! reading or writing a tensor file, running an entry point) returns a
//! `RuntimeError`; nothing in the crate panics on bad input. Each variant renders
//! as one lowercase sentence without a trailing period (the MLIR message style
//! used across lowbit) that names the file, tensor or symbol concerned, and
//! states both sides of a mismatch.

use std::path::PathBuf;

/// Shorthand for `Result<T, RuntimeError>`.
pub type RuntimeResult<T> = Result<T, RuntimeError>;

/// Everything that can go wrong while loading, running or doing tensor I/O.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file or directory could not be read, created, renamed or written.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done: "read", "write", "create", "rename to", ...
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A tensor file name ends in neither `.npz` nor `.safetensors`.
    #[error(
        "cannot tell the tensor file format of `{}`: expected a `.npz` or `.safetensors` extension",
        path.display()
    )]
    UnknownExtension {
        /// The offending path.
        path: PathBuf,
    },

    /// A tensor file (npz or safetensors) could not be parsed.
    #[error("malformed tensor file `{}`: {reason}", path.display())]
    MalformedFile {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A tensor in a file uses an element type the runtime does not handle, or a
    /// tensor's element type cannot be stored in the requested file format.
    #[error("tensor `{name}` in `{}` has unsupported element type {dtype}", path.display())]
    UnsupportedDType {
        /// The file concerned.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The element type, spelled as the file format spells it.
        dtype: String,
    },

    /// A dtype string is not one of the spellings listed in [`crate::DType`].
    #[error("unknown element type `{spelling}`")]
    UnknownDType {
        /// The string that failed to parse.
        spelling: String,
    },

    /// `manifest.json` names a format version this runtime does not read.
    #[error(
        "manifest `{}` has format_version {found}, but this runtime reads only version {supported}",
        path.display()
    )]
    UnsupportedFormatVersion {
        /// The manifest file.
        path: PathBuf,
        /// The version found in the file.
        found: u64,
        /// The version this runtime reads.
        supported: u32,
    },

    /// `manifest.json` is not valid JSON, lacks a field, or is inconsistent.
    #[error("invalid manifest `{}`: {reason}", path.display())]
    InvalidManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The byte length of a tensor's data does not match its dtype and shape.
    #[error(
        "tensor of type {dtype} and shape {shape:?} needs {expected} bytes of data, got {found}"
    )]
    DataSize {
        /// The tensor's element type.
        dtype: crate::DType,
        /// The tensor's shape.
        shape: Vec<usize>,
        /// Bytes the dtype and shape call for.
        expected: usize,
        /// Bytes supplied.
        found: usize,
    },

    /// A weight named by the manifest is absent from `weights.safetensors`.
    #[error("weight `{name}` named in the manifest is missing from `{}`", path.display())]
    MissingWeight {
        /// The weight's name.
        name: String,
        /// The weights file.
        path: PathBuf,
    },

    /// A weight in `weights.safetensors` has another dtype or shape than the manifest says.
    #[error("weight `{name}` in `{}` is {found}, but the manifest expects {expected}", path.display())]
    WeightMismatch {
        /// The weight's name.
        name: String,
        /// The weights file.
        path: PathBuf,
        /// The manifest's dtype and shape, e.g. `f32 [32, 32]`.
        expected: String,
        /// The file's dtype and shape, e.g. `F16 [32]`.
        found: String,
    },

    /// `model.so` could not be loaded.
    #[error("cannot load shared object `{}`: {source}", path.display())]
    LoadLibrary {
        /// The shared object.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: libloading::Error,
    },

    /// The entry symbol named by the manifest is not exported by `model.so`.
    #[error("shared object `{}` does not export entry symbol `{symbol}`: {source}", path.display())]
    MissingSymbol {
        /// The shared object.
        path: PathBuf,
        /// The symbol looked for.
        symbol: String,
        /// The loader's error.
        #[source]
        source: libloading::Error,
    },

    /// An input the manifest declares was not supplied.
    #[error("missing input `{name}` (expected {dtype} {shape:?})")]
    MissingInput {
        /// The input's name.
        name: String,
        /// Its dtype per the manifest.
        dtype: crate::DType,
        /// Its shape per the manifest.
        shape: Vec<usize>,
    },

    /// A supplied input is not declared by the manifest.
    #[error("unexpected input `{name}`: the manifest declares only {declared:?}")]
    UnexpectedInput {
        /// The supplied name.
        name: String,
        /// The input names the manifest declares.
        declared: Vec<String>,
    },

    /// A supplied input has another element type than the manifest declares.
    #[error("input `{name}` has element type {found}, but the manifest expects {expected}")]
    InputDTypeMismatch {
        /// The input's name.
        name: String,
        /// The manifest's dtype.
        expected: crate::DType,
        /// The supplied dtype.
        found: crate::DType,
    },

    /// A supplied input has another shape than the manifest declares.
    #[error("input `{name}` has shape {found:?}, but the manifest expects {expected:?}")]
    InputShapeMismatch {
        /// The input's name.
        name: String,
        /// The manifest's shape.
        expected: Vec<usize>,
        /// The supplied shape.
        found: Vec<usize>,
    },

    /// The compiled entry point returned a non-zero status.
    #[error("entry `{entry}` returned error code {code}")]
    EntryFailed {
        /// The entry symbol.
        entry: String,
        /// The non-zero status it returned.
        code: i32,
    },

    /// A benchmark was asked for zero timed iterations.
    #[error("benchmark needs at least one timed iteration, got 0")]
    NoBenchIterations,
}

impl RuntimeError {
    /// Builds an [`RuntimeError::Io`] for `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        RuntimeError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Builds a [`RuntimeError::MalformedFile`] for `path`.
    pub(crate) fn malformed(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        RuntimeError::MalformedFile {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
