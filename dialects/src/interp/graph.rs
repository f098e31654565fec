//! Reference semantics of the `graph` dialect.

use super::{EvalCx, EvalResult};
use crate::graph::Op;

/// Evaluates one `graph` op.
pub fn eval(op: Op, cx: &EvalCx<'_>) -> EvalResult {
    let _ = cx;
    Err(format!("has no reference semantics yet ({op:?})"))
}
