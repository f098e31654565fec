//! lowbit runtime: loads a compiled artifact and runs it.
//!
//! `lowbit compile MODEL -o DIR` writes an artifact directory holding
//! `model.so` (one C entry point per compiled function), `weights.safetensors`
//! (the weights, already quantized and packed for the kernels) and
//! `manifest.json` (format version, entry symbol, and the name, dtype and shape
//! of every input, output and weight). This crate needs nothing else: it stands
//! alone in the workspace, depends on no other lowbit crate and never links
//! LLVM.
//!
//! ```text
//! manifest.json ──► Manifest ─────────────┐
//! weights.safetensors ──► mmap (no copy) ─┼─► Artifact::load ──► Artifact::run / bench
//! model.so ──► dlopen + entry symbol ─────┘          ▲               │
//!                             .npz / .safetensors ──► io ◄── HostTensor outputs
//! ```
//!
//! * [`manifest`]: [`Manifest`], [`TensorSpec`] and the element types [`DType`].
//! * [`tensor`]: [`HostTensor`], an 8-byte-aligned host buffer, and [`random_inputs`].
//! * [`io`]: reading and writing named tensors as `.npz` or `.safetensors`, atomically.
//! * [`artifact`]: [`Artifact`] — load, check inputs, call the entry.
//! * [`bench`](mod@bench): [`BenchStats`] and [`Artifact::bench`].
//! * [`error`]: [`RuntimeError`], the one error type.
//!
//! The C ABI of an entry point and the manifest format are documented in
//! `include/lowbit.h`:
//! `int32_t ENTRY(const void *const *inputs, void *const *outputs, const void *const *weights);`

#![deny(missing_docs)]

pub mod artifact;
pub mod bench;
pub mod error;
pub mod io;
pub mod manifest;
pub mod tensor;

pub use artifact::{Artifact, EntryFn, LIBRARY_FILE, MANIFEST_FILE, WEIGHTS_FILE};
pub use bench::BenchStats;
pub use error::{RuntimeError, RuntimeResult};
pub use io::{read_tensors, write_tensors, TensorFormat, TensorMap};
pub use manifest::{DType, Manifest, TensorSpec, FORMAT_VERSION};
pub use tensor::{random_inputs, AlignedBytes, Element, HostTensor};
