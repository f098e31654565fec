//! The ONNX importer: a `.onnx` model (opset 10 or later of the default domain) into one
//! `graph`/`lowbit` function plus a weight store.
//!
//! - [`proto`]: the protobuf messages (prost), decoded from the file in one step;
//! - [`tensor`]: initializer and constant data (`raw_data`, typed fields, external files
//!   confined to the model's directory);
//! - [`import`]: the driver: inputs with symbolic dims bound from `--dim`, a walk over the
//!   nodes in order that folds every node whose inputs are all constants (shape subgraphs:
//!   `Shape`, `Gather`, `Concat`, `Range`, `ConstantOfShape`, ... vanish at import), and
//!   emission of the rest;
//! - [`ops`]: the node-by-node mapping to ops, each located at the ONNX node name.
//!
//! Every failure is an [`OnnxError`] whose message is one sentence; nothing here panics on a
//! malformed file.

pub mod import;
mod msft;
pub mod ops;
pub mod proto;
pub mod quant;
pub mod schema_floors;
pub mod tensor;
mod transformer;

use std::collections::BTreeMap;

use thiserror::Error;

pub use import::{import_model, Imported};

/// Symbolic dimension bindings (`--dim batch=1`), by name.
pub type DimBindings = BTreeMap<String, i64>;

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Sizes of symbolic input dimensions.
    pub dims: DimBindings,
    /// Assume run-time float tensors hold no NaN, so that `IsNaN` of one is `false`
    /// everywhere (`--assume-no-nan`). Exporters guard softmax outputs of fully masked
    /// rows with `Where(IsNaN(x), 0, x)`; without this option the guard is imported as it
    /// is (`x != x` through `graph.equal`), which keeps `fuse-attention` from fusing it.
    pub assume_no_nan: bool,
}

/// Why an import failed; each message is one sentence.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// The file cannot be read.
    #[error("cannot read '{path}': {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS message.
        message: String,
    },
    /// The file is not a valid ONNX model (bad protobuf, truncated, inconsistent).
    #[error("'{path}' is not a valid ONNX model: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// An op the importer does not map.
    #[error(
        "unsupported op '{op_type}' (domain '{domain}', opset {opset}) at node '{node}'; {hint}"
    )]
    Unsupported {
        /// The ONNX op type.
        op_type: String,
        /// Its domain (`ai.onnx` for the default one).
        domain: String,
        /// The opset version the model imports for that domain.
        opset: i64,
        /// The node name.
        node: String,
        /// The nearest supported form.
        hint: String,
    },
    /// A graph input has a symbolic dimension with no `--dim` binding.
    #[error(
        "input '{input}' has symbolic dimension '{dim}', which is not bound; pass --dim {dim}=N"
    )]
    UnboundDim {
        /// The input.
        input: String,
        /// The dimension's name.
        dim: String,
    },
    /// An external-data reference is refused or unreadable.
    #[error("initializer '{tensor}' has external data '{location}' that {message}")]
    ExternalData {
        /// The tensor.
        tensor: String,
        /// The `location` entry.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A node could not be imported (bad attributes, shapes, types).
    #[error("node '{node}' ({op_type}): {message}")]
    Node {
        /// The node name.
        node: String,
        /// The op type.
        op_type: String,
        /// What is wrong.
        message: String,
    },
    /// Something about the model as a whole (opsets, inputs, outputs).
    #[error("{0}")]
    Model(String),
}

/// Importer results.
pub type OnnxResult<T> = Result<T, OnnxError>;

/// Parses `name=N` (a `--dim` flag) into a binding.
pub fn parse_dim(text: &str) -> Result<(String, i64), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--dim '{text}' is not NAME=SIZE"))?;
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| format!("--dim '{text}' has a size that is not an integer"))?;
    if n < 1 || name.trim().is_empty() {
        return Err(format!(
            "--dim '{text}' needs a name and a size of at least 1"
        ));
    }
    Ok((name.trim().to_string(), n))
}

/// An I/O error's message without Rust's ` (os error N)` suffix.
pub(crate) fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
