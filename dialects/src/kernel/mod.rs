//! The `kernel` dialect.

pub mod infer;
mod ops;
pub use ops::*;
