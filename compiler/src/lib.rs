//! # lowbit-compiler: the edges of lowbit
//!
//! - [`cli`]: the `lowbit` command line (clap), shared by the binary and the file-test
//!   harness so that every `// RUN:` line is a real command.
//! - [`tensors`]: conversions between runtime tensors (files) and interpreter tensors,
//!   and weight loading.
//! - [`driver`]: from an optimized module to an artifact directory (`model.so`,
//!   `weights.safetensors`, `manifest.json`).
//! - [`backend`]: code generation through LLVM (inkwell).
//!
//! This is the only crate that links LLVM and MLIR.

pub mod backend;
pub mod cli;
pub mod driver;
pub mod import;
pub mod onnx;
pub mod tensors;
