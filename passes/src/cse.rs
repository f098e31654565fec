//! `cse`: common-subexpression elimination.
//!
//! Two pure ops are the same computation when they have the same opcode, the same operands
//! (in any order for a commutative op such as `graph.add`), equal attributes (floats
//! compared bit for bit, so `0.0` and `-0.0` differ) and the same result types. Walking the
//! body in order, each op equal to an earlier one has its results replaced by the earlier
//! op's ([`Func::replace_all_uses`]) and is removed; the first op is kept, with its
//! location. Because operands are replaced as the walk goes, chains of equal computations
//! merge in one walk.
//!
//! Never merged: impure ops, and constants whose data is elided (two elided constants of one
//! type need not hold the same data). Equal `graph.weight` ops (same name and type) merge.
//!
//! The lookup table is a `HashMap`, used only for lookups: the output depends on body order
//! alone.

use std::collections::HashMap;

use cranelift_entity::EntitySet;
use lowbit_dialects::dialect::Trait;
use lowbit_dialects::ir::{Attr, Elem, Func, Op, TensorType, Value};
use lowbit_dialects::Opcode;

use crate::pass::{Pass, PassError, PassResult, Stats};

/// The `cse` pass.
#[derive(Debug, Default)]
pub struct Cse;

impl Pass for Cse {
    fn name(&self) -> &'static str {
        "cse"
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        let mut stats = Stats::with_keys(&["merged"]);
        let mut seen: HashMap<Key, Op> = HashMap::new();
        let mut dead = EntitySet::new();
        for op in func.body.clone() {
            let Some(key) = key(func, op) else { continue };
            match seen.get(&key) {
                Some(&first) => {
                    let pairs: Vec<(Value, Value)> = func.ops[op]
                        .results
                        .iter()
                        .copied()
                        .zip(func.ops[first].results.iter().copied())
                        .collect();
                    for (from, to) in pairs {
                        func.replace_all_uses(from, to);
                    }
                    dead.insert(op);
                    stats.bump("merged");
                }
                None => {
                    seen.insert(key, op);
                }
            }
        }
        func.body.retain(|&op| !dead.contains(op));
        Ok(PassResult::from_stats(stats))
    }
}

/// What makes two ops the same computation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    opcode: Opcode,
    args: Vec<Value>,
    attrs: Vec<(String, AttrKey)>,
    results: Vec<TensorType>,
}

/// An attribute with floats as bit patterns, so that it can be hashed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum AttrKey {
    Bool(bool),
    Int(i64),
    Float(u64, Elem),
    Str(String),
    Ints(Vec<i64>),
    Floats(Vec<u64>),
    Dense(TensorType, Vec<u64>),
}

fn attr_key(a: &Attr) -> Option<AttrKey> {
    Some(match a {
        Attr::Bool(b) => AttrKey::Bool(*b),
        Attr::Int(v) => AttrKey::Int(*v),
        Attr::Float(v, e) => AttrKey::Float(v.to_bits(), *e),
        Attr::Str(s) => AttrKey::Str(s.clone()),
        Attr::Ints(v) => AttrKey::Ints(v.clone()),
        Attr::Floats(v) => AttrKey::Floats(v.iter().map(|x| x.to_bits()).collect()),
        Attr::Dense(d) => AttrKey::Dense(
            d.ty.clone(),
            d.values.as_ref()?.iter().map(|x| x.to_bits()).collect(),
        ),
    })
}

/// The key of `op`, or `None` when it must not be merged.
fn key(f: &Func, op: Op) -> Option<Key> {
    let d = &f.ops[op];
    if !d.opcode.is_pure() {
        return None;
    }
    let mut args = d.args.clone();
    if d.opcode.info().has(Trait::Commutative) {
        args.sort();
    }
    let attrs = d
        .attrs
        .iter()
        .map(|(n, a)| Some((n.to_string(), attr_key(a)?)))
        .collect::<Option<Vec<_>>>()?;
    let results = d.results.iter().map(|&r| f.ty(r).clone()).collect();
    Some(Key {
        opcode: d.opcode,
        args,
        attrs,
        results,
    })
}

#[cfg(test)]
mod tests {
    use crate::testing::{body, max_rel_l1, module, run};

    #[test]
    fn merges_equal_ops_and_chains() {
        let src = r#"
func @f(%x: tensor<4xf32>, %y: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %a = graph.add %x, %y : tensor<4xf32>
  %b = graph.add %y, %x : tensor<4xf32>
  %c = graph.exp %a : tensor<4xf32>
  %d = graph.exp %b : tensor<4xf32>
  return %c, %d
}"#;
        let (m, stats) = run("cse", src);
        assert_eq!(
            body(&m),
            "%0 = graph.add %arg0, %arg1 : tensor<4xf32>\n\
             %1 = graph.exp %0 : tensor<4xf32>\n\
             return %1, %1"
        );
        assert_eq!(stats, "cse: merged=2\n");
        assert_eq!(max_rel_l1(&module(src), &m, 0..3), 0.0);
    }

    #[test]
    fn keeps_ops_that_differ() {
        // Different attributes, operand order of a non-commutative op, result types,
        // float attributes that differ only in sign, and elided constants stay apart.
        let src = r#"
func @f(%x: tensor<2x4xf32>, %y: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<8xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<32xf32>, tensor<32xf32>) {
  %a = graph.softmax %x {axis = 0} : tensor<2x4xf32>
  %b = graph.softmax %x {axis = 1} : tensor<2x4xf32>
  %c = graph.sub %x, %y : tensor<2x4xf32>
  %d = graph.sub %y, %x : tensor<2x4xf32>
  %e = graph.reshape %x : tensor<8xf32>
  %f = graph.layer_norm %x {axis = -1, epsilon = 0.0 : f32} : tensor<2x4xf32>
  %g = graph.layer_norm %x {axis = -1, epsilon = -0.0 : f32} : tensor<2x4xf32>
  %h = graph.constant {value = dense_resource<__elided__> : tensor<32xf32>} : tensor<32xf32>
  %i = graph.constant {value = dense_resource<__elided__> : tensor<32xf32>} : tensor<32xf32>
  return %a, %b, %c, %d, %e, %f, %g, %h, %i
}"#;
        let (m, stats) = run("cse", src);
        assert_eq!(stats, "cse: merged=0\n");
        assert_eq!(body(&m), body(&module(src)));
    }

    #[test]
    fn merges_constants_and_weights() {
        let src = r#"
func @f() -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) {
  %a = graph.constant {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %b = graph.constant {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %c = graph.constant {value = dense<[1.0, 3.0]> : tensor<2xf32>} : tensor<2xf32>
  %w = graph.weight {name = "w"} : tensor<2xf32>
  %v = graph.weight {name = "w"} : tensor<2xf32>
  return %a, %b, %c, %w, %v
}"#;
        let (m, _) = run("cse", src);
        assert_eq!(
            body(&m),
            "%0 = graph.constant {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>\n\
             %1 = graph.constant {value = dense<[1.0, 3.0]> : tensor<2xf32>} : tensor<2xf32>\n\
             %2 = graph.weight {name = \"w\"} : tensor<2xf32>\n\
             return %0, %0, %1, %2, %2"
        );
    }
}
