//! Reference semantics of the `rot` dialect.

use super::{EvalCx, EvalResult};
use crate::rot::Op;

/// Evaluates one `rot` op.
pub fn eval(op: Op, cx: &EvalCx<'_>) -> EvalResult {
    let _ = cx;
    Err(format!("has no reference semantics yet ({op:?})"))
}
