//! The buffer plan: where every value of a function lives while the entry runs.
//!
//! Parameters are the entry's `inputs[i]`; `graph.weight` results are `weights[j]`, one
//! slot per distinct weight name in order of first use; `graph.constant` results are
//! private constant globals, and stay there even when returned. Any other value the
//! function returns is computed straight into its `outputs[k]` buffer (the first return
//! slot that names it). A `graph.reshape` whose
//! result is not returned aliases its operand: row-major data does not move. Every other
//! op result gets its own slot in one arena that the entry `malloc`s once per call, as do
//! the per-op scratch buffers some kernels need (attention keeps one row of scores).
//!
//! Invariants: an op never writes a buffer it reads (results get fresh slots, outputs are
//! distinct from inputs by the ABI), so kernels need no care about overlap. Slots are not
//! reused between values whose lifetimes do not overlap yet; the arena is the sum of all
//! slots, each aligned to [`ARENA_ALIGN`] bytes. Return slots that cannot be computed in
//! place (a returned parameter, weight, constant or alias, or a value returned twice) are
//! listed in [`Plan::ret_copies`] and filled by a copy after the body.

use cranelift_entity::SecondaryMap;
use lowbit_dialects::ir::{Elem, Func, Op, TensorType, Value};
use lowbit_dialects::{attn, graph, kernel, Opcode};

/// Alignment of every arena slot, in bytes (a cache line; enough for any vector load).
pub const ARENA_ALIGN: u64 = 64;

/// Where a value's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Place {
    /// `inputs[i]`.
    Input(usize),
    /// `outputs[k]`.
    Output(usize),
    /// `weights[j]`.
    Weight(usize),
    /// Constant global number `c`.
    Constant(usize),
    /// The arena, at this byte offset.
    Arena(u64),
}

/// One weight the entry receives, in `weights` order.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightRef {
    /// The name in the weight store.
    pub name: String,
    /// Its type, as the first `graph.weight` naming it declares.
    pub ty: TensorType,
}

/// The buffer plan of one function; see the module documentation.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The place of every parameter and every result of a body op.
    pub places: SecondaryMap<Value, Option<Place>>,
    /// The weights, in the order of the entry's `weights` array.
    pub weights: Vec<WeightRef>,
    /// The `graph.constant` op behind each constant global.
    pub constants: Vec<Op>,
    /// Byte offsets of per-op scratch buffers in the arena.
    pub scratch: SecondaryMap<Op, Option<u64>>,
    /// Total arena bytes (0: the entry allocates nothing).
    pub arena_bytes: u64,
    /// Output slots filled by copying a value after the body.
    pub ret_copies: Vec<(usize, Value)>,
}

impl Plan {
    /// The place of `v`; every parameter and op result has one.
    pub fn place(&self, v: Value) -> Place {
        self.places[v].expect("the plan places every parameter and op result")
    }
}

/// Bytes one element of `elem` takes in a buffer (`i1` takes a byte).
pub fn elem_bytes(elem: Elem) -> u64 {
    u64::from(elem.bits().div_ceil(8))
}

/// Bytes a buffer of `ty` takes.
pub fn byte_size(ty: &TensorType) -> u64 {
    ty.num_elements() as u64 * elem_bytes(ty.elem)
}

/// Scratch bytes `op` needs beside its results.
fn scratch_bytes(f: &Func, op: Op) -> u64 {
    let d = &f.ops[op];
    match d.opcode {
        // One row of scores: `[M]` f32, `M` the key count (at least one, so that the
        // kernel always has a scratch buffer).
        Opcode::Attn(attn::Op::Sdpa) | Opcode::Kernel(kernel::Op::Attention) => d
            .args
            .get(1)
            .and_then(|&k| f.ty(k).shape.iter().rev().nth(1).copied())
            .map_or(4, |m| m.max(1) as u64 * 4),
        _ => 0,
    }
}

fn bump(arena: &mut u64, bytes: u64) -> u64 {
    let at = arena.next_multiple_of(ARENA_ALIGN);
    *arena = at + bytes;
    at
}

/// Plans the buffers of `f`.
pub fn plan(f: &Func) -> Plan {
    let mut places: SecondaryMap<Value, Option<Place>> = SecondaryMap::new();
    for (i, &p) in f.params.iter().enumerate() {
        places[p] = Some(Place::Input(i));
    }
    // The first return slot of each returned op result.
    let mut out_slot: SecondaryMap<Value, Option<usize>> = SecondaryMap::new();
    for (k, &r) in f.rets.iter().enumerate() {
        if f.def_op(r).is_some() && out_slot[r].is_none() {
            out_slot[r] = Some(k);
        }
    }
    let mut weights: Vec<WeightRef> = Vec::new();
    let mut constants = Vec::new();
    let mut scratch = SecondaryMap::new();
    let mut arena = 0u64;
    for &op in &f.body {
        let d = &f.ops[op];
        // Weights and constants live where they are, even when returned; a reshape
        // aliases its operand unless it is returned.
        let (fixed, alias) = match d.opcode {
            Opcode::Graph(graph::Op::Weight) => {
                let name = d.attrs.str("name").unwrap_or_default().to_string();
                let j = match weights.iter().position(|w| w.name == name) {
                    Some(j) => j,
                    None => {
                        let ty = d.results.first().map(|&r| f.ty(r).clone());
                        let ty = ty.unwrap_or_else(|| TensorType::scalar(Elem::F32));
                        weights.push(WeightRef { name, ty });
                        weights.len() - 1
                    }
                };
                (Some(Place::Weight(j)), None)
            }
            Opcode::Graph(graph::Op::Constant) => {
                constants.push(op);
                (Some(Place::Constant(constants.len() - 1)), None)
            }
            Opcode::Graph(graph::Op::Reshape) => (None, d.args.first().and_then(|&a| places[a])),
            _ => (None, None),
        };
        for &r in &d.results {
            places[r] = Some(match (fixed, out_slot[r], alias) {
                (Some(p), _, _) => p,
                (None, Some(k), _) => Place::Output(k),
                (None, None, Some(p)) => p,
                (None, None, None) => Place::Arena(bump(&mut arena, byte_size(f.ty(r)))),
            });
        }
        let s = scratch_bytes(f, op);
        if s > 0 {
            scratch[op] = Some(bump(&mut arena, s));
        }
    }
    let ret_copies = f
        .rets
        .iter()
        .enumerate()
        .filter(|&(k, &r)| places[r] != Some(Place::Output(k)))
        .map(|(k, &r)| (k, r))
        .collect();
    Plan {
        places,
        weights,
        constants,
        scratch,
        arena_bytes: arena.next_multiple_of(ARENA_ALIGN),
        ret_copies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lowbit_dialects::ir::parse::parse_module;

    fn func(src: &str) -> Func {
        parse_module(src, "t.mlir", 0).unwrap().funcs.remove(0)
    }

    #[test]
    fn places_values() {
        let f = func(
            r#"func @f(%x: tensor<2x3xf32>) -> (tensor<3x2xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
  %w = graph.weight {name = "w"} : tensor<2x3xf32>
  %w2 = graph.weight {name = "w"} : tensor<2x3xf32>
  %a = graph.add %x, %w : tensor<2x3xf32>
  %b = graph.mul %a, %w2 : tensor<2x3xf32>
  %r = graph.reshape %b : tensor<3x2xf32>
  %s = graph.reshape %a : tensor<6xf32>
  return %r, %b, %b, %w
}"#,
        );
        let p = plan(&f);
        assert_eq!(p.weights.len(), 1);
        let res = |i: usize| f.result(f.body[i]);
        assert_eq!(p.place(f.params[0]), Place::Input(0));
        assert_eq!(p.place(res(0)), Place::Weight(0));
        assert_eq!(p.place(res(1)), Place::Weight(0));
        assert_eq!(p.place(res(2)), Place::Arena(0));
        assert_eq!(p.place(res(3)), Place::Output(1));
        assert_eq!(p.place(res(4)), Place::Output(0));
        assert_eq!(
            p.place(res(5)),
            Place::Arena(0),
            "a reshape aliases its operand"
        );
        assert_eq!(
            p.ret_copies,
            vec![(2, res(3)), (3, res(0))],
            "a returned weight is copied"
        );
        assert_eq!(p.arena_bytes, 64);
    }
}
