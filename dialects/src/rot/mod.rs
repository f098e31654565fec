//! The `rot` dialect.

pub mod hadamard;
pub mod infer;
mod ops;
pub use ops::*;
