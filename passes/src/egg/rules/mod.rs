//! Rewrite rules with names, `lhs -> rhs` docs and exactness labels, and the helpers rules
//! are written with.
//!
//! Every rule is a [`Rule`]: a kebab-case name, a one-line `lhs -> rhs` description, an
//! [`Exactness`] label (techniques.md §0.1), an egg pattern for the root op it fires on
//! (always one op over variables, `(graph.transpose ?a)`), and an applier function that
//! inspects the matched node and its operands' e-classes (attributes, types, constant
//! values from the analysis), checks the rule's guard, and returns the e-classes it built
//! that equal the matched one. The applier never unions itself; [`RuleApplier`] does, with
//! the rule's name as the justification, so egg explanations name the rule.
//!
//! [`table`] lists every rule of every set, so tests can enumerate them (every exact rule
//! has a start ⇒ goal test and an interpreter property test).
//!
//! Policy: EXACT-BIT and EXACT-R rules may run in saturation ([`crate::egg::saturate`]);
//! APPROX and TRAINED rules may not — `saturate` refuses a rule set containing one. They
//! exist in the table so their labels are enumerable, and are applied only by passes that
//! were asked for them, as one-directional lowerings outside the saturating runner.

pub mod algebra;
pub mod qdq;

use std::fmt;
use std::sync::Arc;

use egg::{Applier, Id, Pattern, PatternAst, Rewrite, Subst, Symbol};
use lowbit_dialects::graph;
use lowbit_dialects::ir::{Attr, Attrs, DenseAttr, TensorType};
use lowbit_dialects::numeric::round_to;
use lowbit_dialects::Opcode;

use super::analysis::{Graph, TypeAnalysis};
use super::lang::{AttrKey, Node, OpNode};

/// How exact a rewrite is (techniques.md §0.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exactness {
    /// Bit-identical results (data movement, re-layout, identities exact in IEEE).
    ExactBit,
    /// An identity in real arithmetic; differs only by floating-point rounding.
    ExactR,
    /// Introduces quantization or sparsification error: a guarded one-way lowering only.
    Approx,
    /// Valid only for weights fine-tuned for it: never a rewrite of an existing graph.
    Trained,
}

impl Exactness {
    /// True for the labels that may run in saturation.
    pub fn is_exact(self) -> bool {
        matches!(self, Exactness::ExactBit | Exactness::ExactR)
    }
}

impl fmt::Display for Exactness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Exactness::ExactBit => "EXACT-BIT",
            Exactness::ExactR => "EXACT-R",
            Exactness::Approx => "APPROX",
            Exactness::Trained => "TRAINED",
        })
    }
}

/// What a rule's applier does: given the e-graph, the matched e-class and the matched op
/// node (children canonical), returns the e-classes it found or built that equal it.
pub type ApplyFn = fn(&mut Graph, Id, &OpNode) -> Vec<Id>;

/// A named, labeled rewrite rule.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Kebab-case name (also the explanation justification and the stats key).
    pub name: &'static str,
    /// `lhs -> rhs`, one line.
    pub doc: &'static str,
    /// The exactness label.
    pub exactness: Exactness,
    /// The egg pattern of the root op, `(graph.matmul ?a ?b)`.
    pub lhs: &'static str,
    /// The opcodes the applier looks for among the nodes of its operands' classes (what a
    /// pattern would name below its root: `dequantize` for `matmul-dequantize`). Read by
    /// [`crate::egg::regions`] to find values no rule can look through; a rule that reads
    /// an operand's nodes must list their opcodes here, and may add nodes to its matched
    /// class only after finding such a node (otherwise it may only return an operand's
    /// class, as identities do). Region-wise saturation equals whole-function saturation
    /// under that contract.
    pub inspects: &'static [Opcode],
    /// The opcodes of the nodes the applier may add to the e-graph.
    pub builds: &'static [Opcode],
    /// The applier.
    pub apply: ApplyFn,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.name, self.exactness, self.doc)
    }
}

impl Rule {
    /// The opcodes `lhs` names: its root first, then the ones below it (none for the
    /// rules of this crate, whose patterns are one op over variables). `None` when `lhs`
    /// does not parse or has no op at its root.
    pub fn pattern_opcodes(&self) -> Option<(Opcode, Vec<Opcode>)> {
        let lhs: Pattern<Node> = self.lhs.parse().ok()?;
        let ops: Vec<Opcode> = lhs
            .ast
            .as_ref()
            .iter()
            .filter_map(|n| match n {
                egg::ENodeOrVar::ENode(Node::Op(o)) => Some(o.opcode),
                _ => None,
            })
            .collect();
        match lhs.ast.as_ref().last() {
            Some(egg::ENodeOrVar::ENode(Node::Op(o))) => {
                let root = o.opcode;
                let below = ops[..ops.len() - 1].to_vec();
                Some((root, below))
            }
            _ => None,
        }
    }

    /// The egg rewrite. Panics only if `lhs` is not a valid pattern (a bug in the table,
    /// caught by the table test).
    pub fn rewrite(&self) -> Rewrite<Node, TypeAnalysis> {
        let lhs: Pattern<Node> = self
            .lhs
            .parse()
            .unwrap_or_else(|e| panic!("rule {}: bad pattern {}: {e}", self.name, self.lhs));
        let root = lhs.ast.as_ref().last().cloned();
        let root = match root {
            Some(egg::ENodeOrVar::ENode(n)) => n,
            _ => panic!(
                "rule {}: the pattern must have an op at its root",
                self.name
            ),
        };
        Rewrite::new(
            self.name,
            lhs,
            RuleApplier {
                root,
                apply: self.apply,
            },
        )
        .unwrap_or_else(|e| panic!("rule {}: {e}", self.name))
    }
}

/// The applier behind every [`Rule`]: runs the rule's function on each node of the matched
/// class that the pattern's root matches, and unions what it returns, justified by the
/// rule's name.
pub struct RuleApplier {
    root: Node,
    apply: ApplyFn,
}

impl Applier<Node, TypeAnalysis> for RuleApplier {
    fn apply_one(
        &self,
        egraph: &mut Graph,
        eclass: Id,
        subst: &Subst,
        _searcher_ast: Option<&PatternAst<Node>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        let _ = subst;
        let nodes: Vec<OpNode> = egraph[eclass]
            .nodes
            .iter()
            .filter(|n| egg::Language::matches(&self.root, n))
            .filter_map(|n| n.as_op().cloned())
            .collect();
        let mut changed = Vec::new();
        for node in nodes {
            for id in (self.apply)(egraph, eclass, &node) {
                if egraph.union_trusted(eclass, id, rule_name) {
                    changed.push(egraph.find(eclass));
                }
            }
        }
        changed
    }
}

/// Every rule of every set, in set order: the table tests enumerate.
pub fn table() -> Vec<Rule> {
    let mut v = algebra::rules();
    v.extend(qdq::rules());
    v.extend(qdq::approx_rules());
    v
}

// ---- helpers for appliers ----

/// The single type of class `id`.
pub fn ty(eg: &Graph, id: Id) -> Option<TensorType> {
    eg[id].data.ty().cloned()
}

/// The constant elements of class `id`, when known.
pub fn konst(eg: &Graph, id: Id) -> Option<Arc<Vec<f64>>> {
    eg[id].data.konst.clone()
}

/// The op nodes with `opcode` in class `id` (cloned, children canonical).
pub fn ops_in(eg: &Graph, id: Id, opcode: Opcode) -> Vec<OpNode> {
    eg[id]
        .nodes
        .iter()
        .filter_map(|n| n.as_op())
        .filter(|o| o.opcode == opcode)
        .cloned()
        .collect()
}

/// Adds an op node.
pub fn add_op(
    eg: &mut Graph,
    opcode: Opcode,
    attrs: &Attrs,
    types: Vec<TensorType>,
    children: Vec<Id>,
) -> Id {
    eg.add(Node::op(
        opcode,
        AttrKey::from_attrs(attrs),
        types,
        children,
    ))
}

/// Adds a `graph.constant` of type `ty` with `values` (rounded to the element type).
pub fn add_constant(eg: &mut Graph, ty: TensorType, values: Vec<f64>) -> Id {
    let values = values.into_iter().map(|v| round_to(v, ty.elem)).collect();
    let attrs = Attrs::new().with(
        "value",
        Attr::Dense(DenseAttr {
            ty: ty.clone(),
            values: Some(values),
        }),
    );
    add_op(
        eg,
        Opcode::Graph(graph::Op::Constant),
        &attrs,
        vec![ty],
        vec![],
    )
}

/// The attributes of `node` as [`Attrs`].
pub fn attrs_of(node: &OpNode) -> Attrs {
    node.attrs.to_attrs()
}

/// `axis` normalized against `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}
