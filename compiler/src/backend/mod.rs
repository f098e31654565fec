//! Code generation backends.
//!
//! - [`plan`]: where every value of a function lives at run time (an entry argument, a
//!   weight, an output buffer, a slot of the per-call arena, a constant global, or an alias
//!   of another value). Pure Rust, no LLVM.
//! - [`llvm`]: the x86-64 code generator (inkwell). It lowers one function of `graph`,
//!   `attn` and `kernel` ops to straightforward loop nests over `f32` buffers in one
//!   exported C entry point, runs LLVM's verifier and `default<O2>` pipeline, and emits an
//!   object file (plus textual IR and assembly on request). [`llvm::link_shared`] turns the
//!   object into `model.so`.
//!
//! The entry ABI is the runtime's (`runtime/include/lowbit.h`):
//! `int32_t entry(const void *const *inputs, void *const *outputs, const void *const *weights)`,
//! pointers in manifest order. The entry returns 0 on success and 1 when it cannot allocate
//! its intermediate buffers.
//!
//! Errors are [`BackendError`]s: one sentence each, naming the op and its location when
//! they are about an op. Nothing here panics on IR it does not support.

mod cg;
pub mod llvm;
mod lower;
mod lower_nn;
pub mod plan;

use lowbit_dialects::ir::Loc;
use thiserror::Error;

/// What the target is called in messages.
pub const TARGET_NAME: &str = "x86-64";

/// Why code generation failed.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum BackendError {
    /// An op the code generator cannot (yet) lower, or lowers only for some operands.
    #[error("'{op}' op {message} at {loc}")]
    Op {
        /// The op's full name (`graph.matmul`).
        op: &'static str,
        /// Its location.
        loc: Loc,
        /// What is wrong, without the op prefix.
        message: String,
    },
    /// Something about the function as a whole (its signature, its returns).
    #[error("function '@{func}' {message}")]
    Func {
        /// The function's name.
        func: String,
        /// What is wrong.
        message: String,
    },
    /// LLVM rejected what it was given; a bug in the code generator.
    #[error("LLVM {stage} failed: {message}")]
    Llvm {
        /// What was being done (`module verification`, `object emission`, ...).
        stage: &'static str,
        /// LLVM's message.
        message: String,
    },
    /// The system linker failed.
    #[error("linking `{output}` with `{command}` failed: {message}")]
    Link {
        /// The library being linked.
        output: String,
        /// The command line run.
        command: String,
        /// The linker's output or the reason it could not start.
        message: String,
    },
}

/// Shorthand for `Result<T, BackendError>`.
pub type BackendResult<T> = Result<T, BackendError>;

impl From<inkwell::builder::BuilderError> for BackendError {
    fn from(e: inkwell::builder::BuilderError) -> Self {
        BackendError::Llvm {
            stage: "instruction building",
            message: e.to_string(),
        }
    }
}
