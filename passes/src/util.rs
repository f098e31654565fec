//! Small queries over a function that several passes share: the constant behind a value,
//! and the users of every value.

use cranelift_entity::SecondaryMap;
use lowbit_dialects::graph;
use lowbit_dialects::ir::{DenseAttr, Func, Op, Value};
use lowbit_dialects::Opcode;

/// The `graph.constant` defining `v`, with its (non-elided) data.
pub fn constant_of(f: &Func, v: Value) -> Option<&DenseAttr> {
    let op = f.def_op(v)?;
    let d = &f.ops[op];
    if d.opcode != Opcode::Graph(graph::Op::Constant) {
        return None;
    }
    let dense = d.attrs.dense("value")?;
    dense.values.as_ref()?;
    Some(dense)
}

/// True when `v` is a constant whose every element equals `x` (an elided constant never is).
pub fn is_splat(f: &Func, v: Value, x: f64) -> bool {
    constant_of(f, v)
        .and_then(|d| d.values.as_ref())
        .is_some_and(|vals| vals.iter().all(|&e| e == x))
}

/// The ops of the body using each value, in body order (an op using a value twice is listed
/// twice), and how many times each value is returned.
pub struct Users {
    /// Users per value.
    pub ops: SecondaryMap<Value, Vec<Op>>,
    /// Returns per value.
    pub rets: SecondaryMap<Value, u32>,
}

impl Users {
    /// Computes the users of every value of `f`.
    pub fn of(f: &Func) -> Users {
        let mut ops: SecondaryMap<Value, Vec<Op>> = SecondaryMap::new();
        let mut rets: SecondaryMap<Value, u32> = SecondaryMap::with_default(0);
        for &op in &f.body {
            for &a in &f.ops[op].args {
                ops[a].push(op);
            }
        }
        for &r in &f.rets {
            rets[r] += 1;
        }
        Users { ops, rets }
    }

    /// The single op using `v`, when `v` has exactly one use and it is not a return.
    pub fn single_user(&self, v: Value) -> Option<Op> {
        match (self.ops[v].as_slice(), self.rets[v]) {
            ([op], 0) => Some(*op),
            _ => None,
        }
    }
}
