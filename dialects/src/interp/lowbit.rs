//! Reference semantics of the `lowbit` dialect.

use super::{EvalCx, EvalResult};
use crate::lowbit::Op;

/// Evaluates one `lowbit` op.
pub fn eval(op: Op, cx: &EvalCx<'_>) -> EvalResult {
    let _ = cx;
    Err(format!("has no reference semantics yet ({op:?})"))
}
