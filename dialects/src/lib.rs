//! # lowbit-dialects: the IR core of lowbit
//!
//! lowbit compiles low-bit attention graphs ahead of time. This crate holds everything the
//! rest of the compiler shares:
//!
//! - [`ir`]: modules, functions and ops in SSA form ([`ir::Func`] stores ops and values in
//!   arenas with typed handles, [`ir::Op`] and [`ir::Value`]); element and tensor types;
//!   attributes; MLIR-style locations; the text printer ([`ir::print`]) and parser
//!   ([`ir::parse`]) for the custom and the generic form; the verifier ([`ir::verify`]).
//! - [`dialect`]: the `dialect!` table macro and [`dialect::Opcode`], joining the dialects
//!   [`graph`] (framework-level tensor ops), [`lowbit`] (quantization), [`attn`] (attention),
//!   [`rot`] (rotations) and [`kernel`] (fused kernels for code generation).
//! - [`infer`]: per-op type inference, which the verifier checks declared types against.
//! - [`interp`]: the reference interpreter, the numerical oracle for every other part.
//!
//! Nothing here links LLVM or MLIR.

#![deny(missing_docs)]

pub mod attn;
pub mod dialect;
pub mod formats;
pub mod graph;
pub mod infer;
pub mod interp;
pub mod ir;
pub mod kernel;
pub mod lowbit;
pub mod numeric;
pub mod rot;

pub use dialect::Opcode;
