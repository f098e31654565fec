//! Modules and functions: ops in SSA form, stored in arenas with typed handles.
//!
//! A [`Func`] keeps storage (the op and value arenas) apart from program order (`body`, a
//! list of op handles). lowbit functions have one block: attention graphs have no control
//! flow, and the `kernel` dialect describes loops as attributes, not regions. Values are
//! defined once, by a parameter or an op result, and every use follows its definition in
//! `body` order — the parser and the verifier both enforce it.
//!
//! Mutation goes through the methods here (`create_op`, `replace_all_uses`, `remove_dead`)
//! so that the arenas and the order stay consistent. Handles of removed ops stay valid
//! indices into the arena but are no longer in `body`.

use cranelift_entity::{entity_impl, PrimaryMap};

use super::attrs::Attrs;
use super::loc::Loc;
use super::types::TensorType;
use crate::dialect::Opcode;

/// A handle to an op in a [`Func`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Op(u32);
entity_impl!(Op, "op");

/// A handle to an SSA value in a [`Func`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(u32);
entity_impl!(Value, "v");

/// What defines a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueDef {
    /// Function parameter `n`.
    Param(u32),
    /// Result `n` of an op.
    Result(Op, u32),
}

/// A value: its type and its definition.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueData {
    /// The value's type.
    pub ty: TensorType,
    /// Where it is defined.
    pub def: ValueDef,
}

/// An op: opcode, operands, results, attributes and location.
///
/// The location lives on the op, as in MLIR's `Operation`: every op has exactly one and
/// rewrites move it along with the op.
#[derive(Clone, Debug, PartialEq)]
pub struct OpData {
    /// What the op is.
    pub opcode: Opcode,
    /// Operands.
    pub args: Vec<Value>,
    /// Results.
    pub results: Vec<Value>,
    /// Attributes, sorted by name.
    pub attrs: Attrs,
    /// Where the op came from.
    pub loc: Loc,
}

/// A function.
#[derive(Clone, Debug, PartialEq)]
pub struct Func {
    /// The symbol name, without `@`.
    pub name: String,
    /// Parameters, in order.
    pub params: Vec<Value>,
    /// The op arena.
    pub ops: PrimaryMap<Op, OpData>,
    /// The value arena.
    pub values: PrimaryMap<Value, ValueData>,
    /// Program order.
    pub body: Vec<Op>,
    /// The returned values.
    pub rets: Vec<Value>,
    /// The function's location.
    pub loc: Loc,
}

/// A module: a list of functions with unique names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Module {
    /// The functions, in definition order.
    pub funcs: Vec<Func>,
}

impl Module {
    /// The function named `name`.
    pub fn func(&self, name: &str) -> Option<&Func> {
        self.funcs.iter().find(|f| f.name == name)
    }

    /// The function named `name`, mutably.
    pub fn func_mut(&mut self, name: &str) -> Option<&mut Func> {
        self.funcs.iter_mut().find(|f| f.name == name)
    }
}

impl Func {
    /// An empty function with the given parameter types and no body.
    pub fn new(name: impl Into<String>, params: &[TensorType]) -> Func {
        let mut f = Func {
            name: name.into(),
            params: Vec::new(),
            ops: PrimaryMap::new(),
            values: PrimaryMap::new(),
            body: Vec::new(),
            rets: Vec::new(),
            loc: Loc::Unknown,
        };
        for (i, ty) in params.iter().enumerate() {
            let v = f.values.push(ValueData {
                ty: ty.clone(),
                def: ValueDef::Param(i as u32),
            });
            f.params.push(v);
        }
        f
    }

    /// The type of `v`.
    pub fn ty(&self, v: Value) -> &TensorType {
        &self.values[v].ty
    }

    /// The op defining `v`, if it is an op result.
    pub fn def_op(&self, v: Value) -> Option<Op> {
        match self.values[v].def {
            ValueDef::Result(op, _) => Some(op),
            ValueDef::Param(_) => None,
        }
    }

    /// The types of the returned values.
    pub fn result_types(&self) -> Vec<TensorType> {
        self.rets.iter().map(|&v| self.ty(v).clone()).collect()
    }

    /// The types of the parameters.
    pub fn param_types(&self) -> Vec<TensorType> {
        self.params.iter().map(|&v| self.ty(v).clone()).collect()
    }

    /// Creates an op with fresh result values of `result_types`, without placing it in
    /// `body`; see [`Func::append_op`] and [`Func::insert_op`].
    pub fn create_op(
        &mut self,
        opcode: Opcode,
        args: Vec<Value>,
        attrs: Attrs,
        result_types: Vec<TensorType>,
        loc: Loc,
    ) -> Op {
        let op = self.ops.push(OpData {
            opcode,
            args,
            results: Vec::new(),
            attrs,
            loc,
        });
        let results = result_types
            .into_iter()
            .enumerate()
            .map(|(i, ty)| {
                self.values.push(ValueData {
                    ty,
                    def: ValueDef::Result(op, i as u32),
                })
            })
            .collect();
        self.ops[op].results = results;
        op
    }

    /// Creates an op at the end of `body` and returns it.
    pub fn append_op(
        &mut self,
        opcode: Opcode,
        args: Vec<Value>,
        attrs: Attrs,
        result_types: Vec<TensorType>,
        loc: Loc,
    ) -> Op {
        let op = self.create_op(opcode, args, attrs, result_types, loc);
        self.body.push(op);
        op
    }

    /// Creates an op placed in `body` right before `before`.
    pub fn insert_op_before(
        &mut self,
        before: Op,
        opcode: Opcode,
        args: Vec<Value>,
        attrs: Attrs,
        result_types: Vec<TensorType>,
        loc: Loc,
    ) -> Op {
        let op = self.create_op(opcode, args, attrs, result_types, loc);
        let at = self
            .body
            .iter()
            .position(|&o| o == before)
            .expect("insertion point is in the body");
        self.body.insert(at, op);
        op
    }

    /// The first result of `op`.
    pub fn result(&self, op: Op) -> Value {
        self.ops[op].results[0]
    }

    /// Replaces every use of `from` (operands and returns) with `to`. Returns the number of
    /// uses replaced.
    pub fn replace_all_uses(&mut self, from: Value, to: Value) -> usize {
        let mut n = 0;
        for &op in &self.body {
            for a in &mut self.ops[op].args {
                if *a == from {
                    *a = to;
                    n += 1;
                }
            }
        }
        for r in &mut self.rets {
            if *r == from {
                *r = to;
                n += 1;
            }
        }
        n
    }

    /// Use counts of every value, over the body and the returns.
    pub fn use_counts(&self) -> cranelift_entity::SecondaryMap<Value, u32> {
        let mut uses = cranelift_entity::SecondaryMap::with_default(0);
        for &op in &self.body {
            for &a in &self.ops[op].args {
                uses[a] += 1;
            }
        }
        for &r in &self.rets {
            uses[r] += 1;
        }
        uses
    }

    /// Removes pure ops whose results are all unused, repeatedly. Returns how many went.
    pub fn remove_dead(&mut self) -> usize {
        let mut uses = self.use_counts();
        let mut removed = 0;
        let mut keep = vec![true; self.body.len()];
        for (i, &op) in self.body.iter().enumerate().rev() {
            let data = &self.ops[op];
            if data.opcode.is_pure() && data.results.iter().all(|&r| uses[r] == 0) {
                keep[i] = false;
                removed += 1;
                for &a in &data.args {
                    uses[a] -= 1;
                }
            }
        }
        let mut it = keep.into_iter();
        self.body.retain(|_| it.next().expect("one flag per op"));
        removed
    }

    /// Rebuilds the arenas so that they hold only the live ops and values, numbered in
    /// program order. Handles taken before compaction are invalid afterwards.
    pub fn compact(&mut self) {
        let mut out = Func::new(self.name.clone(), &self.param_types());
        out.loc = self.loc.clone();
        let mut map = std::collections::HashMap::new();
        for (&old, &new) in self.params.iter().zip(&out.params) {
            map.insert(old, new);
        }
        for &op in &self.body {
            let d = &self.ops[op];
            let args = d.args.iter().map(|a| map[a]).collect();
            let tys = d.results.iter().map(|&r| self.ty(r).clone()).collect();
            let new = out.append_op(d.opcode, args, d.attrs.clone(), tys, d.loc.clone());
            for (&o, &n) in d.results.iter().zip(&out.ops[new].results) {
                map.insert(o, n);
            }
        }
        out.rets = self.rets.iter().map(|r| map[r]).collect();
        *self = out;
    }
}
