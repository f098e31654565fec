//! The e-graph language: one node kind per IR op, generated from the dialect tables.
//!
//! [`Node::Op`] carries the op's [`Opcode`] (every `graph`, `lowbit`, `attn`, `rot` and
//! `kernel` op, so the language mirrors the dialect tables one to one without a second
//! list to keep in sync), its attributes in a hashable, totally ordered form
//! ([`AttrKey`]: floats by their bit patterns), its declared result types and its
//! operands. Function arguments are [`Node::Arg`] leaves; weights and constants are
//! zero-operand ops (`graph.weight`, `graph.constant`). An op with several results
//! (`graph.split`) is one tuple-typed node, read through [`Node::Result`] projections.
//!
//! Rule patterns use the op names as egg operators, `(graph.transpose (graph.transpose ?x))`:
//! a pattern node has no result types and matches every op node with the same opcode and
//! arity whatever its attributes (rules check attributes in their appliers).
//! [`Language::discriminant`] is the opcode, so egg's per-operator index and its sorted
//! e-class scans stay correct.

use std::fmt;
use std::sync::Arc;

use egg::{FromOp, Id, Language};
use lowbit_dialects::ir::{Attr, Attrs, DenseAttr, Elem, TensorType};
use lowbit_dialects::Opcode;

/// An attribute value in hashable, ordered form: floats are kept by their bits, so two
/// attributes are equal exactly when they print identically.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttrVal {
    /// [`Attr::Bool`].
    Bool(bool),
    /// [`Attr::Int`].
    Int(i64),
    /// [`Attr::Float`], as `f64` bits and the MLIR float type.
    Float(u64, Elem),
    /// [`Attr::Str`].
    Str(String),
    /// [`Attr::Ints`].
    Ints(Vec<i64>),
    /// [`Attr::Floats`], as bits.
    Floats(Vec<u64>),
    /// [`Attr::Dense`]: the type and the elements as bits (`None` when elided).
    Dense(TensorType, Option<Vec<u64>>),
}

/// An op's attributes, sorted by name (the order [`Attrs`] keeps).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrKey(pub Vec<(String, AttrVal)>);

impl AttrKey {
    /// The key of `attrs`.
    pub fn from_attrs(attrs: &Attrs) -> AttrKey {
        AttrKey(
            attrs
                .iter()
                .map(|(n, a)| {
                    let v = match a {
                        Attr::Bool(b) => AttrVal::Bool(*b),
                        Attr::Int(i) => AttrVal::Int(*i),
                        Attr::Float(f, e) => AttrVal::Float(f.to_bits(), *e),
                        Attr::Str(s) => AttrVal::Str(s.clone()),
                        Attr::Ints(v) => AttrVal::Ints(v.clone()),
                        Attr::Floats(v) => AttrVal::Floats(v.iter().map(|f| f.to_bits()).collect()),
                        Attr::Dense(d) => AttrVal::Dense(
                            d.ty.clone(),
                            d.values
                                .as_ref()
                                .map(|v| v.iter().map(|f| f.to_bits()).collect()),
                        ),
                    };
                    (n.to_string(), v)
                })
                .collect(),
        )
    }

    /// The attributes back, bit for bit.
    pub fn to_attrs(&self) -> Attrs {
        let mut out = Attrs::new();
        for (n, v) in &self.0 {
            let a = match v {
                AttrVal::Bool(b) => Attr::Bool(*b),
                AttrVal::Int(i) => Attr::Int(*i),
                AttrVal::Float(f, e) => Attr::Float(f64::from_bits(*f), *e),
                AttrVal::Str(s) => Attr::Str(s.clone()),
                AttrVal::Ints(v) => Attr::Ints(v.clone()),
                AttrVal::Floats(v) => Attr::Floats(v.iter().map(|b| f64::from_bits(*b)).collect()),
                AttrVal::Dense(ty, vals) => Attr::Dense(DenseAttr {
                    ty: ty.clone(),
                    values: vals
                        .as_ref()
                        .map(|v| v.iter().map(|b| f64::from_bits(*b)).collect()),
                }),
            };
            out.set(n.clone(), a);
        }
        out
    }

    /// The integer attribute `name`.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| match v {
                AttrVal::Int(i) => Some(*i),
                _ => None,
            })
    }

    /// The integer-array attribute `name`.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| match v {
                AttrVal::Ints(i) => Some(i.as_slice()),
                _ => None,
            })
    }
}

/// An op node: opcode, attributes, declared result types, operands.
///
/// Field order matters: the derived `Ord` sorts by opcode first, which egg's sorted
/// e-class scan relies on (nodes with one discriminant are contiguous).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpNode {
    /// The op.
    pub opcode: Opcode,
    /// Its attributes (shared: constants can be large).
    pub attrs: Arc<AttrKey>,
    /// Declared result types; empty only in a rule pattern.
    pub types: Arc<[TensorType]>,
    /// Operand e-classes.
    pub children: Vec<Id>,
}

/// A node of the e-graph language.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// Function parameter `n` (its type is in the analysis).
    Arg(u32),
    /// An op.
    Op(OpNode),
    /// Result `n` of a multi-result op (`graph.split`).
    Result(u32, [Id; 1]),
}

/// What egg indexes nodes by: the variant, and for ops the opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disc {
    /// [`Node::Arg`].
    Arg,
    /// [`Node::Op`] with this opcode.
    Op(Opcode),
    /// [`Node::Result`].
    Result,
}

impl Node {
    /// An op node.
    pub fn op(opcode: Opcode, attrs: AttrKey, types: Vec<TensorType>, children: Vec<Id>) -> Node {
        Node::Op(OpNode {
            opcode,
            attrs: Arc::new(attrs),
            types: types.into(),
            children,
        })
    }

    /// The op node, if this is one.
    pub fn as_op(&self) -> Option<&OpNode> {
        match self {
            Node::Op(o) => Some(o),
            _ => None,
        }
    }

    /// True for a pattern node (an op node without result types).
    pub fn is_pattern(&self) -> bool {
        matches!(self, Node::Op(o) if o.types.is_empty())
    }
}

impl Language for Node {
    type Discriminant = Disc;

    fn discriminant(&self) -> Disc {
        match self {
            Node::Arg(_) => Disc::Arg,
            Node::Op(o) => Disc::Op(o.opcode),
            Node::Result(..) => Disc::Result,
        }
    }

    fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Node::Arg(a), Node::Arg(b)) => a == b,
            (Node::Result(a, _), Node::Result(b, _)) => a == b,
            (Node::Op(a), Node::Op(b)) => {
                a.opcode == b.opcode
                    && a.children.len() == b.children.len()
                    && (a.types.is_empty()
                        || b.types.is_empty()
                        || (a.attrs == b.attrs && a.types == b.types))
            }
            _ => false,
        }
    }

    fn children(&self) -> &[Id] {
        match self {
            Node::Arg(_) => &[],
            Node::Op(o) => &o.children,
            Node::Result(_, c) => c,
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Node::Arg(_) => &mut [],
            Node::Op(o) => &mut o.children,
            Node::Result(_, c) => c,
        }
    }
}

impl fmt::Display for Node {
    /// The operator as egg prints it: `graph.transpose{perm=array<i64: 1, 0>}`, `%arg0`,
    /// `result1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Arg(i) => write!(f, "%arg{i}"),
            Node::Result(i, _) => write!(f, "result{i}"),
            Node::Op(o) => {
                f.write_str(o.opcode.name())?;
                let attrs = o.attrs.to_attrs();
                if !attrs.is_empty() {
                    f.write_str("{")?;
                    for (i, (n, a)) in attrs.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        let mut s = String::new();
                        lowbit_dialects::ir::attrs::write_attr(&mut s, a, true)?;
                        write!(f, "{n}={s}")?;
                    }
                    f.write_str("}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromOp for Node {
    type Error = String;

    /// Pattern operators: a full op name (`graph.matmul`), `%argN`, or `resultN`.
    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, String> {
        if let Some(n) = op.strip_prefix("%arg").and_then(|n| n.parse().ok()) {
            if children.is_empty() {
                return Ok(Node::Arg(n));
            }
        }
        if let (Some(n), [c]) = (
            op.strip_prefix("result").and_then(|n| n.parse().ok()),
            children.as_slice(),
        ) {
            return Ok(Node::Result(n, [*c]));
        }
        let opcode = Opcode::from_name(op).ok_or_else(|| format!("unknown op '{op}'"))?;
        Ok(Node::Op(OpNode {
            opcode,
            attrs: Arc::new(AttrKey::default()),
            types: Arc::from(Vec::new()),
            children,
        }))
    }
}
