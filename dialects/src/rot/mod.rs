//! The `rot` dialect.

pub mod infer;
mod ops;
pub use ops::*;
