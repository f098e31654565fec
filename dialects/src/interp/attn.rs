//! Reference semantics of the `attn` dialect.

use super::{EvalCx, EvalResult};
use crate::attn::Op;

/// Evaluates one `attn` op.
pub fn eval(op: Op, cx: &EvalCx<'_>) -> EvalResult {
    let _ = cx;
    Err(format!("has no reference semantics yet ({op:?})"))
}
