//! Importers: checkpoints on disk to lowbit IR.
//!
//! - [`safetensors`]: memory-mapped `.safetensors` files, single or sharded, with every
//!   header checked before a byte of tensor data is read ([`WeightStore`]).
//! - [`bert`]: a Hugging Face `BertModel` directory (`config.json` + weights), with the
//!   sentence-transformers pooling and normalize modules when `modules.json` lists them,
//!   lowered into `graph` and `attn` ops whose locations are the safetensors keys.
//!
//! Weights stay in the checkpoint: the IR refers to them by key (`graph.weight {name =
//! "<key>"}`) and [`WeightStore::weights_for`] loads exactly those a function uses.
//! Every failure is an [`ImportError`] naming the file and the tensor or config field.

pub mod bert;
pub mod gguf;
pub mod llama;
pub mod safetensors;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use bert::{import_dir, Dims, Imported};
pub use safetensors::{Dtype, Entry, SafetensorsFile, WeightStore};

/// Why an import failed.
#[derive(Debug, Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("cannot read '{path}': {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// A safetensors file or index is malformed.
    #[error("'{path}' is not a valid safetensors file: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the tensor where there is one.
        message: String,
    },
    /// A weight the model needs is absent, or has the wrong shape or dtype.
    #[error("weight '{name}': {message}")]
    Weight {
        /// The safetensors key.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A configuration file is malformed or asks for something unsupported.
    #[error("'{path}': {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Result of an import step.
pub type ImportResult<T> = Result<T, ImportError>;

impl ImportError {
    fn io(path: &Path, e: &std::io::Error) -> ImportError {
        let s = e.to_string();
        let message = match s.find(" (os error") {
            Some(i) => s[..i].to_string(),
            None => s,
        };
        ImportError::Io {
            path: path.to_path_buf(),
            message,
        }
    }
}
