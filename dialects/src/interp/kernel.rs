//! Reference semantics of the `kernel` dialect.

use super::{EvalCx, EvalResult};
use crate::kernel::Op;

/// Evaluates one `kernel` op.
pub fn eval(op: Op, cx: &EvalCx<'_>) -> EvalResult {
    let _ = cx;
    Err(format!("has no reference semantics yet ({op:?})"))
}
