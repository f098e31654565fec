//! The `graph` dialect.

pub mod infer;
mod ops;
pub use ops::*;
