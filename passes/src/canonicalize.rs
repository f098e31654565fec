//! `canonicalize`: constant folding, identity removal, transpose/reshape composition, then
//! dead-op removal.
//!
//! Rewrites, in body order, repeated until nothing changes (at most [`MAX_SWEEPS`] sweeps):
//!
//! - **fold** — a pure op with at least one operand, all of them `graph.constant` with known
//!   data, and every result of at most `max-fold-elements` elements (default 4096) is
//!   evaluated by the reference interpreter ([`lowbit_dialects::interp::eval_op`]) and
//!   replaced by `graph.constant`s holding the results, at the op's location. `graph.weight`
//!   is never folded (its data is not in the IR), nor is an op reading an elided constant,
//!   and an op the interpreter cannot evaluate is left as it is.
//! - **splat weights** — when the weights are at hand (`lowbit opt --weights`, or a model
//!   read by an importer), a `graph.weight` whose every element is the same value becomes a
//!   splat `graph.constant` of its type (at most [`MAX_SPLAT_WEIGHT_ELEMENTS`] elements).
//!   Exporters store scalars and folded masks as initializers (the torch dynamo export of
//!   MiniLM scales Q and K by a 0-d initializer and guards the probabilities with
//!   `where(isnan(..))` of a folded all-false initializer); as constants, the identities
//!   below and `fuse-attention` can see through them. Exact: the constant holds the very
//!   value the weight store does.
//! - **identities** — `x + 0`, `0 + x`, `x - 0`, `x * 1`, `1 * x`, `x / 1` (a splat constant)
//!   become `x` when the result type equals `x`'s type (no broadcasting, no conversion);
//!   `transpose` by the identity permutation, `reshape` and `cast` to `x`'s own type become
//!   `x`; `select(c, a, b)` with a splat constant condition becomes `a` (all true) or `b`
//!   (all false) when that operand already has the result's type.
//! - **composition** — `transpose(transpose(x, p1), p2)` becomes `transpose(x, p1∘p2)` and
//!   `reshape(reshape(x))` becomes `reshape(x)`, at the fused location of both ops (the
//!   inner op stays while it has other uses).
//! - **dead ops** — finally, pure ops whose results are unused are removed.
//!
//! Exactness: folding is exact by construction (the interpreter is the semantics). The
//! identities are exact, except that `x + 0` turns a `-0` result into `+0` — equal values.
//!
//! Options: `max-fold-elements=N`.

use cranelift_entity::EntitySet;
use lowbit_dialects::graph::Op as G;
use lowbit_dialects::interp::{eval_op, EvalCx, Tensor, Weights};
use lowbit_dialects::ir::{Attr, Attrs, DenseAttr, Func, Loc, Op, Value};
use lowbit_dialects::Opcode;

use crate::pass::{Pass, PassEnv, PassError, PassResult, Stats};
use crate::pipeline::{PassOptions, PipelineError};
use crate::util::{constant_of, is_splat};

/// Sweeps over the body before giving up on reaching a fixed point.
pub const MAX_SWEEPS: usize = 16;

/// Splat weights up to this many elements become constants (the constant's row-major data
/// is held in memory in full; the text form prints one value).
pub const MAX_SPLAT_WEIGHT_ELEMENTS: usize = 1 << 22;

/// Default for `max-fold-elements`.
pub const DEFAULT_MAX_FOLD_ELEMENTS: usize = 4096;

/// The `canonicalize` pass.
#[derive(Debug)]
pub struct Canonicalize {
    /// Results larger than this many elements are not folded.
    pub max_fold_elements: usize,
}

impl Default for Canonicalize {
    fn default() -> Self {
        Canonicalize {
            max_fold_elements: DEFAULT_MAX_FOLD_ELEMENTS,
        }
    }
}

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }

    fn configure(&mut self, opts: &PassOptions) -> Result<(), PipelineError> {
        if let Some(n) = opts.usize("max-fold-elements")? {
            self.max_fold_elements = n;
        }
        Ok(())
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        self.run_with_env(func, &mut PassEnv::default())
    }

    fn run_with_env(
        &mut self,
        func: &mut Func,
        env: &mut PassEnv,
    ) -> Result<PassResult, PassError> {
        let mut stats = Stats::with_keys(&["folded", "simplified", "removed"]);
        // Listed only when weights were at hand and some were splat, so runs without
        // weights keep their counter line.
        let splat = fold_splat_weights(func, &env.weights);
        if splat > 0 {
            stats.add("splat-weights", splat);
        }
        for _ in 0..MAX_SWEEPS {
            if !self.sweep(func, &mut stats) {
                break;
            }
        }
        stats.add("removed", func.remove_dead() as u64);
        Ok(PassResult::from_stats(stats))
    }
}

impl Canonicalize {
    /// One pass over the body; true when anything changed.
    fn sweep(&self, f: &mut Func, stats: &mut Stats) -> bool {
        let mut dead = EntitySet::new();
        let mut changed = false;
        for op in f.body.clone() {
            if self.fold(f, op) {
                stats.bump("folded");
                dead.insert(op);
                changed = true;
            } else if let Some(replacement) = simplify(f, op) {
                stats.bump("simplified");
                changed = true;
                if let Some(v) = replacement {
                    let old = f.result(op);
                    f.replace_all_uses(old, v);
                    dead.insert(op);
                }
            }
        }
        f.body.retain(|&op| !dead.contains(op));
        changed
    }

    /// Folds `op` into constants when its operands are all known; true when it did (the op
    /// is then unused and must leave the body).
    fn fold(&self, f: &mut Func, op: Op) -> bool {
        let d = &f.ops[op];
        if matches!(d.opcode, Opcode::Graph(G::Constant | G::Weight))
            || !d.opcode.is_pure()
            || d.args.is_empty()
        {
            return false;
        }
        if d.results
            .iter()
            .any(|&r| f.ty(r).num_elements() > self.max_fold_elements)
        {
            return false;
        }
        let mut args = Vec::with_capacity(d.args.len());
        for &a in &d.args {
            match constant_of(f, a) {
                Some(DenseAttr {
                    values: Some(v), ..
                }) if v.len() == f.ty(a).num_elements() => {
                    args.push(Tensor::new(f.ty(a).clone(), v.clone()));
                }
                _ => return false,
            }
        }
        let arg_refs: Vec<&Tensor> = args.iter().collect();
        let results: Vec<_> = d.results.iter().map(|&r| f.ty(r)).collect();
        let weights = Weights::new();
        let cx = EvalCx {
            args: &arg_refs,
            attrs: &d.attrs,
            results: &results,
            weights: &weights,
        };
        let Ok(outs) = eval_op(d.opcode, &cx) else {
            return false;
        };
        if outs.len() != d.results.len() || outs.iter().zip(&results).any(|(t, ty)| &t.ty != *ty) {
            return false;
        }
        let (loc, old_results) = (d.loc.clone(), d.results.clone());
        for (old, t) in old_results.into_iter().zip(outs) {
            let value = DenseAttr {
                ty: t.ty.clone(),
                values: Some(t.data),
            };
            let attrs = Attrs::new().with("value", Attr::Dense(value));
            let c = f.insert_op_before(
                op,
                Opcode::Graph(G::Constant),
                vec![],
                attrs,
                vec![t.ty],
                loc.clone(),
            );
            let new = f.result(c);
            f.replace_all_uses(old, new);
        }
        true
    }
}

/// Replaces each `graph.weight` whose stored value is one repeated element (and whose type
/// matches the store) by a splat `graph.constant` at the same location; returns how many.
fn fold_splat_weights(f: &mut Func, weights: &Weights) -> u64 {
    let mut n = 0;
    for op in f.body.clone() {
        let d = &f.ops[op];
        if d.opcode != Opcode::Graph(G::Weight) {
            continue;
        }
        let out = f.result(op);
        let ty = f.ty(out).clone();
        let Some(t) = d.attrs.str("name").and_then(|name| weights.get(name)) else {
            continue;
        };
        let splat = t
            .data
            .first()
            .is_some_and(|&x| t.data.iter().all(|&e| e.to_bits() == x.to_bits()));
        if t.ty != ty || !splat || t.data.len() > MAX_SPLAT_WEIGHT_ELEMENTS {
            continue;
        }
        let value = DenseAttr {
            ty: ty.clone(),
            values: Some(t.data.clone()),
        };
        let loc = d.loc.clone();
        let attrs = Attrs::new().with("value", Attr::Dense(value));
        let c = f.insert_op_before(op, Opcode::Graph(G::Constant), vec![], attrs, vec![ty], loc);
        let new = f.result(c);
        f.replace_all_uses(out, new);
        f.body.retain(|&o| o != op);
        n += 1;
    }
    n
}

/// Applies one identity or composition to `op`. `None`: nothing applies. `Some(Some(v))`:
/// the op's result equals `v` (the caller replaces its uses and drops it). `Some(None)`: the
/// op was rewritten in place.
fn simplify(f: &mut Func, op: Op) -> Option<Option<Value>> {
    let d = &f.ops[op];
    let Opcode::Graph(g) = d.opcode else {
        return None;
    };
    let out = *d.results.first()?;
    let same = |v: Value| f.ty(v) == f.ty(out);
    let arg = |i: usize| d.args.get(i).copied();
    let pick = |v: Option<Value>| v.filter(|&v| same(v)).map(Some);
    match g {
        G::Add => {
            let (l, r) = (arg(0)?, arg(1)?);
            if is_splat(f, r, 0.0) && same(l) {
                pick(Some(l))
            } else if is_splat(f, l, 0.0) && same(r) {
                pick(Some(r))
            } else {
                None
            }
        }
        G::Sub => {
            let (l, r) = (arg(0)?, arg(1)?);
            pick(Some(l).filter(|_| is_splat(f, r, 0.0)))
        }
        G::Mul => {
            let (l, r) = (arg(0)?, arg(1)?);
            if is_splat(f, r, 1.0) && same(l) {
                pick(Some(l))
            } else if is_splat(f, l, 1.0) && same(r) {
                pick(Some(r))
            } else {
                None
            }
        }
        G::Div => {
            let (l, r) = (arg(0)?, arg(1)?);
            pick(Some(l).filter(|_| is_splat(f, r, 1.0)))
        }
        G::Cast => pick(arg(0)),
        G::Select => {
            let c = constant_of(f, arg(0)?)?.values.as_ref()?;
            if c.is_empty() {
                None
            } else if c.iter().all(|&e| e != 0.0) {
                pick(arg(1))
            } else if c.iter().all(|&e| e == 0.0) {
                pick(arg(2))
            } else {
                None
            }
        }
        G::Transpose => {
            let x = arg(0)?;
            let perm = d.attrs.ints("perm")?.to_vec();
            if is_identity(&perm) {
                return pick(Some(x));
            }
            compose_transpose(f, op, x, &perm)
        }
        G::Reshape => {
            let x = arg(0)?;
            if same(x) {
                return Some(Some(x));
            }
            compose_reshape(f, op, x)
        }
        _ => None,
    }
}

fn is_identity(perm: &[i64]) -> bool {
    perm.iter().enumerate().all(|(i, &p)| p == i as i64)
}

/// `transpose(transpose(x, inner), outer)` → `transpose(x, c)` with `c[i] = inner[outer[i]]`.
fn compose_transpose(f: &mut Func, op: Op, y: Value, outer: &[i64]) -> Option<Option<Value>> {
    let inner_op = f
        .def_op(y)
        .filter(|&o| f.ops[o].opcode == Opcode::Graph(G::Transpose))?;
    let inner = f.ops[inner_op].attrs.ints("perm")?;
    let x = *f.ops[inner_op].args.first()?;
    let n = inner.len();
    if outer.len() != n || outer.iter().chain(inner).any(|&p| p < 0 || p as usize >= n) {
        return None;
    }
    let composed: Vec<i64> = outer.iter().map(|&p| inner[p as usize]).collect();
    let out = f.result(op);
    if is_identity(&composed) && f.ty(x) == f.ty(out) {
        return Some(Some(x));
    }
    let loc = Loc::fuse([f.ops[inner_op].loc.clone(), f.ops[op].loc.clone()]);
    let d = &mut f.ops[op];
    d.args[0] = x;
    d.attrs.set("perm", Attr::Ints(composed));
    d.loc = loc;
    Some(None)
}

/// `reshape(reshape(x))` → `reshape(x)` (or `x` when the types agree).
fn compose_reshape(f: &mut Func, op: Op, y: Value) -> Option<Option<Value>> {
    let inner_op = f
        .def_op(y)
        .filter(|&o| f.ops[o].opcode == Opcode::Graph(G::Reshape))?;
    let x = *f.ops[inner_op].args.first()?;
    if f.ty(x) == f.ty(f.result(op)) {
        return Some(Some(x));
    }
    let loc = Loc::fuse([f.ops[inner_op].loc.clone(), f.ops[op].loc.clone()]);
    let d = &mut f.ops[op];
    d.args[0] = x;
    d.loc = loc;
    Some(None)
}

#[cfg(test)]
mod tests {
    use crate::testing::{body, max_rel_l1, module, run};

    #[test]
    fn folds_constant_chains() {
        let src = r#"
func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %a = graph.constant {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %b = graph.constant {value = dense<3.0> : tensor<2xf32>} : tensor<2xf32>
  %c = graph.add %a, %b : tensor<2xf32>
  %d = graph.neg %c : tensor<2xf32>
  %e = graph.mul %x, %d : tensor<2xf32>
  return %e
}"#;
        let (m, stats) = run("canonicalize", src);
        assert_eq!(
            body(&m),
            "%0 = graph.constant {value = dense<[-4.0, -5.0]> : tensor<2xf32>} : tensor<2xf32>\n\
             %1 = graph.mul %arg0, %0 : tensor<2xf32>\n\
             return %1"
        );
        assert_eq!(stats, "canonicalize: folded=2 simplified=0 removed=3\n");
        assert_eq!(max_rel_l1(&module(src), &m, 0..4), 0.0);
    }

    #[test]
    fn folded_constant_keeps_the_location() {
        let src = "func @f() -> tensor<2xf32> {\n  %a = graph.constant {value = dense<[1.0, 4.0]> : tensor<2xf32>} : tensor<2xf32>\n  %b = graph.sqrt %a : tensor<2xf32> loc(\"node.sqrt\")\n  return %b\n}\n";
        let (m, _) = run("canonicalize", src);
        let f = &m.funcs[0];
        assert_eq!(f.body.len(), 1);
        assert_eq!(
            f.ops[f.body[0]].loc,
            lowbit_dialects::ir::Loc::name("node.sqrt")
        );
    }

    /// Splat weights become constants when the weights are at hand, and the folded
    /// `select` and `mul` identities then remove the NaN guard and the unit scale: the
    /// shape of the dynamo export's attention (a 0-d scale initializer, `where(isnan(p), 0,
    /// p)` with a folded all-false initializer). The non-splat weight stays. Checked by
    /// evaluating both functions on the same inputs with the interpreter.
    #[test]
    fn splat_weights_become_constants() {
        use lowbit_dialects::interp::{run_func, Tensor, Weights};
        use lowbit_dialects::ir::{Elem, TensorType};
        let src = r#"
func @f(%p: tensor<2x4xf32>) -> (tensor<2x4xf32>) {
  %s = graph.weight {name = "one"} : tensor<f32>
  %nan = graph.weight {name = "isnan"} : tensor<2x4xi1>
  %z = graph.weight {name = "zero"} : tensor<f32>
  %w = graph.weight {name = "w"} : tensor<4xf32>
  %a = graph.mul %p, %s : tensor<2x4xf32>
  %b = graph.select %nan, %z, %a : tensor<2x4xf32>
  %c = graph.add %b, %w : tensor<2x4xf32>
  return %c
}"#;
        let mut weights = Weights::new();
        weights.insert(
            "one".into(),
            Tensor::new(TensorType::new([], Elem::F32), vec![1.0]),
        );
        weights.insert(
            "isnan".into(),
            Tensor::new(TensorType::new([2, 4], Elem::I1), vec![0.0; 8]),
        );
        weights.insert(
            "zero".into(),
            Tensor::new(TensorType::new([], Elem::F32), vec![0.0]),
        );
        weights.insert(
            "w".into(),
            Tensor::new(TensorType::new([4], Elem::F32), vec![1.0, -2.0, 3.5, 0.25]),
        );
        let before = module(src);
        let mut m = module(src);
        let mut pm = crate::PassManager::parse("canonicalize").unwrap();
        pm.env.weights = weights.clone();
        pm.run(&mut m, &mut crate::PassCx::default()).unwrap();
        assert_eq!(
            body(&m),
            "%0 = graph.weight {name = \"w\"} : tensor<4xf32>\n\
             %1 = graph.add %arg0, %0 : tensor<2x4xf32>\n\
             return %1"
        );
        assert!(
            pm.stats_report().contains("splat-weights=3"),
            "{}",
            pm.stats_report()
        );
        let x = Tensor::new(
            TensorType::new([2, 4], Elem::F32),
            (0..8).map(|i| f64::from(i) - 3.25).collect(),
        );
        let run = |m: &lowbit_dialects::ir::Module| {
            run_func(&m.funcs[0], std::slice::from_ref(&x), &weights).unwrap()
        };
        assert_eq!(run(&before), run(&m));
    }

    #[test]
    fn never_folds_weights_or_large_results() {
        let src = r#"
func @f() -> (tensor<2xf32>, tensor<8xf32>) {
  %w = graph.weight {name = "w"} : tensor<2xf32>
  %a = graph.neg %w : tensor<2xf32>
  %c = graph.constant {value = dense<1.0> : tensor<8xf32>} : tensor<8xf32>
  %d = graph.neg %c : tensor<8xf32>
  return %a, %d
}"#;
        let (m, _) = run("canonicalize{max-fold-elements=4}", src);
        assert_eq!(
            body(&m),
            "%0 = graph.weight {name = \"w\"} : tensor<2xf32>\n\
             %1 = graph.neg %0 : tensor<2xf32>\n\
             %2 = graph.constant {value = dense<1.0> : tensor<8xf32>} : tensor<8xf32>\n\
             %3 = graph.neg %2 : tensor<8xf32>\n\
             return %1, %3"
        );
        let (m, _) = run("canonicalize", src);
        assert!(
            body(&m).contains("dense<-1.0> : tensor<8xf32>"),
            "{}",
            body(&m)
        );
    }

    #[test]
    fn removes_identities() {
        let src = r#"
func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %z = graph.constant {value = dense<0.0> : tensor<2x3xf32>} : tensor<2x3xf32>
  %one = graph.constant {value = dense<1.0> : tensor<f32>} : tensor<f32>
  %a = graph.add %x, %z : tensor<2x3xf32>
  %b = graph.add %z, %a : tensor<2x3xf32>
  %c = graph.sub %b, %z : tensor<2x3xf32>
  %d = graph.mul %one, %c : tensor<2x3xf32>
  %e = graph.div %d, %one : tensor<2x3xf32>
  %f = graph.transpose %e {perm = array<i64: 0, 1>} : tensor<2x3xf32>
  %g = graph.reshape %f : tensor<2x3xf32>
  %h = graph.cast %g : tensor<2x3xf32>
  return %h
}"#;
        let (m, stats) = run("canonicalize", src);
        assert_eq!(body(&m), "return %arg0");
        assert_eq!(stats, "canonicalize: folded=0 simplified=8 removed=2\n");
    }

    #[test]
    fn keeps_identities_that_change_the_type() {
        // `x + 0` broadcasts x to 2x3 and `0 - x` is not `x`: neither is an identity.
        let src = r#"
func @f(%x: tensor<3xf32>) -> (tensor<2x3xf32>, tensor<3xf32>, tensor<3xf16>) {
  %z = graph.constant {value = dense<0.0> : tensor<2x3xf32>} : tensor<2x3xf32>
  %z1 = graph.constant {value = dense<0.0> : tensor<3xf32>} : tensor<3xf32>
  %a = graph.add %x, %z : tensor<2x3xf32>
  %b = graph.sub %z1, %x : tensor<3xf32>
  %c = graph.cast %x : tensor<3xf16>
  return %a, %b, %c
}"#;
        let (m, stats) = run("canonicalize", src);
        assert_eq!(stats, "canonicalize: folded=0 simplified=0 removed=0\n");
        assert_eq!(body(&m), body(&module(src)));
    }

    #[test]
    fn composes_transposes_and_reshapes() {
        let src = r#"
func @f(%x: tensor<2x3x4xf32>) -> (tensor<4x2x3xf32>, tensor<2x3x4xf32>, tensor<24xf32>) {
  %a = graph.transpose %x {perm = array<i64: 1, 0, 2>} : tensor<3x2x4xf32>
  %b = graph.transpose %a {perm = array<i64: 2, 1, 0>} : tensor<4x2x3xf32>
  %c = graph.transpose %x {perm = array<i64: 1, 2, 0>} : tensor<3x4x2xf32>
  %d = graph.transpose %c {perm = array<i64: 2, 0, 1>} : tensor<2x3x4xf32>
  %e = graph.reshape %x : tensor<6x4xf32>
  %f = graph.reshape %e : tensor<24xf32>
  return %b, %d, %f
}"#;
        let (m, stats) = run("canonicalize", src);
        assert_eq!(
            body(&m),
            "%0 = graph.transpose %arg0 {perm = array<i64: 2, 0, 1>} : tensor<4x2x3xf32>\n\
             %1 = graph.reshape %arg0 : tensor<24xf32>\n\
             return %0, %arg0, %1"
        );
        assert_eq!(stats, "canonicalize: folded=0 simplified=3 removed=3\n");
        assert_eq!(max_rel_l1(&module(src), &m, 0..4), 0.0);
    }

    #[test]
    fn composition_keeps_a_shared_inner_op() {
        let src = r#"
func @f(%x: tensor<2x3xf32>) -> (tensor<3x2xf32>, tensor<2x3xf32>) {
  %a = graph.transpose %x {perm = array<i64: 1, 0>} : tensor<3x2xf32>
  %b = graph.transpose %a {perm = array<i64: 1, 0>} : tensor<2x3xf32>
  %c = graph.relu %b : tensor<2x3xf32>
  return %a, %c
}"#;
        let (m, _) = run("canonicalize", src);
        assert_eq!(
            body(&m),
            "%0 = graph.transpose %arg0 {perm = array<i64: 1, 0>} : tensor<3x2xf32>\n\
             %1 = graph.relu %arg0 : tensor<2x3xf32>\n\
             return %0, %1"
        );
    }
}
