//! The typed e-class analysis: every e-class knows its result types and, for small
//! constants, its value.
//!
//! [`TypeAnalysis::make`] computes a node's types with the dialects' own inference
//! ([`lowbit_dialects::infer::infer`]) from its operands' types, its attributes and its
//! declared result types, so a rule that builds an ill-typed node is caught where it adds
//! it. [`TypeAnalysis::merge`] checks that two merged e-classes agree on their types (and
//! their constant values): a rule that equates a `2x3` tensor with a `3x2` one is unsound.
//! egg's `merge` cannot return an error, so the disagreement is recorded in
//! [`TypeAnalysis::errors`] and [`crate::egg::saturate`] turns the first one into a
//! [`crate::PassError`] after the run — a loud failure, never a silent pick of one side.
//!
//! Constant values ([`TensorInfo::konst`]) come from `graph.constant` nodes (any size;
//! the data is shared, not copied per use) and from evaluating ops whose operands are all
//! constants with the reference interpreter when the result has at most
//! [`FOLD_LIMIT`] elements. Rules read them in their guards (a scale's range, a splat 1).

use std::sync::Arc;

use egg::{Analysis, DidMerge, EGraph, Id};
use lowbit_dialects::graph;
use lowbit_dialects::infer::{infer, InferCx};
use lowbit_dialects::interp::{eval_op, EvalCx, Tensor, Weights};
use lowbit_dialects::ir::TensorType;
use lowbit_dialects::Opcode;

use super::lang::{AttrVal, Node};

/// Largest result (in elements) that the analysis evaluates to learn a constant.
pub const FOLD_LIMIT: usize = 64;

/// What an e-class is known to be.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// Result types: one for a value, several for a multi-result op's tuple class.
    pub types: Vec<TensorType>,
    /// The elements (row-major, rounded to the element type) when known.
    pub konst: Option<Arc<Vec<f64>>>,
}

impl TensorInfo {
    /// The type of a single-valued class.
    pub fn ty(&self) -> Option<&TensorType> {
        match self.types.as_slice() {
            [t] => Some(t),
            _ => None,
        }
    }

    /// True when the value is known and every element equals `x`.
    pub fn is_splat(&self, x: f64) -> bool {
        self.konst
            .as_ref()
            .is_some_and(|v| !v.is_empty() && v.iter().all(|&e| e == x))
    }
}

/// A failure the analysis detected while rules ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisError {
    /// One sentence, MLIR style.
    pub message: String,
}

/// The analysis: parameter types of the function being optimized, and the errors seen.
#[derive(Clone, Debug, Default)]
pub struct TypeAnalysis {
    /// Types of the function's parameters, for [`Node::Arg`] leaves.
    pub params: Vec<TensorType>,
    /// Type errors and unsound merges, in the order they happened.
    pub errors: Vec<AnalysisError>,
}

impl TypeAnalysis {
    /// An analysis for a function with these parameter types.
    pub fn new(params: Vec<TensorType>) -> TypeAnalysis {
        TypeAnalysis {
            params,
            errors: Vec::new(),
        }
    }
}

/// The e-graph type used throughout the bridge.
pub type Graph = EGraph<Node, TypeAnalysis>;

fn types_str(t: &[TensorType]) -> String {
    t.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Analysis<Node> for TypeAnalysis {
    type Data = TensorInfo;

    fn make(egraph: &mut Graph, enode: &Node, _id: Id) -> TensorInfo {
        match enode {
            Node::Arg(i) => match egraph.analysis.params.get(*i as usize) {
                Some(t) => TensorInfo {
                    types: vec![t.clone()],
                    konst: None,
                },
                None => {
                    let message = format!("argument %arg{i} does not exist");
                    egraph.analysis.errors.push(AnalysisError { message });
                    TensorInfo {
                        types: vec![],
                        konst: None,
                    }
                }
            },
            Node::Result(i, [c]) => {
                let t = egraph[*c].data.types.get(*i as usize).cloned();
                match t {
                    Some(t) => TensorInfo {
                        types: vec![t],
                        konst: None,
                    },
                    None => {
                        let message = format!("result #{i} of a tuple class does not exist");
                        egraph.analysis.errors.push(AnalysisError { message });
                        TensorInfo {
                            types: vec![],
                            konst: None,
                        }
                    }
                }
            }
            Node::Op(o) => {
                let declared: Vec<TensorType> = o.types.to_vec();
                let args: Vec<TensorType> = o
                    .children
                    .iter()
                    .map(|&c| egraph[c].data.ty().cloned())
                    .collect::<Option<_>>()
                    .unwrap_or_default();
                if args.len() != o.children.len() {
                    let message = format!("'{}' op has an operand that is not one value", o.opcode);
                    egraph.analysis.errors.push(AnalysisError { message });
                    return TensorInfo {
                        types: declared,
                        konst: None,
                    };
                }
                let attrs = o.attrs.to_attrs();
                let arg_refs: Vec<&TensorType> = args.iter().collect();
                let res_refs: Vec<&TensorType> = declared.iter().collect();
                let cx = InferCx {
                    opcode: o.opcode,
                    args: &arg_refs,
                    attrs: &attrs,
                    results: &res_refs,
                };
                match infer(&cx) {
                    Ok(t) if t == declared => {}
                    Ok(t) => {
                        let message = format!(
                            "'{}' op declares result types ({}) but its operands give ({})",
                            o.opcode,
                            types_str(&declared),
                            types_str(&t)
                        );
                        egraph.analysis.errors.push(AnalysisError { message });
                    }
                    Err(e) => {
                        let message = format!("'{}' op {e}", o.opcode);
                        egraph.analysis.errors.push(AnalysisError { message });
                    }
                }
                let konst = konst_of(egraph, o, &args, &declared);
                TensorInfo {
                    types: declared,
                    konst,
                }
            }
        }
    }

    fn merge(&mut self, a: &mut TensorInfo, b: TensorInfo) -> DidMerge {
        if a.types != b.types {
            self.errors.push(AnalysisError {
                message: format!(
                    "a rewrite merged values of different types: ({}) vs ({})",
                    types_str(&a.types),
                    types_str(&b.types)
                ),
            });
            return DidMerge(false, true);
        }
        match (&a.konst, b.konst) {
            (None, None) => DidMerge(false, false),
            (None, Some(k)) => {
                a.konst = Some(k);
                DidMerge(true, false)
            }
            (Some(_), None) => DidMerge(false, true),
            (Some(x), Some(y)) => {
                let same = x.len() == y.len()
                    && x.iter()
                        .zip(y.iter())
                        .all(|(p, q)| p.to_bits() == q.to_bits());
                if !same {
                    self.errors.push(AnalysisError {
                        message: format!(
                            "a rewrite merged two different constants of type {}",
                            types_str(&a.types)
                        ),
                    });
                }
                DidMerge(false, false)
            }
        }
    }
}

/// The constant value of an op node: a `graph.constant`'s data, or the interpreter's
/// result when every operand is known and the result is small.
fn konst_of(
    egraph: &Graph,
    o: &super::lang::OpNode,
    args: &[TensorType],
    declared: &[TensorType],
) -> Option<Arc<Vec<f64>>> {
    if o.opcode == Opcode::Graph(graph::Op::Constant) {
        return o.attrs.0.iter().find_map(|(n, v)| match (n.as_str(), v) {
            ("value", AttrVal::Dense(_, Some(bits))) => {
                Some(Arc::new(bits.iter().map(|b| f64::from_bits(*b)).collect()))
            }
            _ => None,
        });
    }
    if o.children.is_empty()
        || o.opcode == Opcode::Graph(graph::Op::Weight)
        || !o.opcode.is_pure()
        || declared.len() != 1
        || declared[0].num_elements() > FOLD_LIMIT
    {
        return None;
    }
    let tensors: Vec<Tensor> = o
        .children
        .iter()
        .zip(args)
        .map(|(&c, t)| {
            let k = egraph[c].data.konst.as_ref()?;
            (k.len() == t.num_elements()).then(|| Tensor::new(t.clone(), k.to_vec()))
        })
        .collect::<Option<_>>()?;
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let results: Vec<&TensorType> = declared.iter().collect();
    let attrs = o.attrs.to_attrs();
    let weights = Weights::new();
    let cx = EvalCx {
        args: &refs,
        attrs: &attrs,
        results: &results,
        weights: &weights,
    };
    let mut out = eval_op(o.opcode, &cx).ok()?;
    (out.len() == 1).then(|| Arc::new(out.remove(0).data))
}
