//! `lower-to-kernel`: rewrite graph and attention ops into the `kernel` ops the code
//! generator emits.
//!
//! Rewrites, in this order:
//!
//! 1. `graph.linear %x, %w[, %bias]` → `kernel.gemm {transpose_b = true, epilogue = "none"}`
//!    when `x` has rank ≥ 2, `w` is `[N, K]` and `bias` (if any) is `[N]`;
//!    `graph.matmul %a, %w` → `kernel.gemm {transpose_b = false, epilogue = "none"}` when `w`
//!    is a rank-2 `graph.weight` and `a` has rank ≥ 2;
//!    `attn.sdpa` → `kernel.attention` (same operands, `scale` and `causal`).
//! 2. A `kernel.gemm` with `epilogue = "none"` whose result has exactly one use, a
//!    `graph.relu`, `graph.gelu` (`approximate` `"none"` or `"tanh"`) or `graph.silu` of the
//!    same type, absorbs it as its epilogue (`"relu"`, `"gelu"`, `"gelu_tanh"`, `"silu"`).
//! 3. `graph.layer_norm(graph.add(x, r), gamma, beta)` over the last axis, where the add's
//!    result has no other use, `x`, `r` and the sum have one type, and `gamma`/`beta` are
//!    `[D]` of the same element type → `kernel.add_layer_norm %x, %r, %gamma, %beta`.
//!
//! A rewritten op keeps its result values (uses are untouched); an absorbed op is removed
//! and the survivor gets the fused location of all the ops it replaces. Anything that does
//! not match stays as it is, so the pass can run on any verified module.
//!
//! Exactness: EXACT-R — the kernel ops have the graph ops' semantics, except that a fused
//! epilogue or residual add may skip the rounding of the intermediate to its element type.

use cranelift_entity::EntitySet;
use lowbit_dialects::attn::Op as A;
use lowbit_dialects::graph::Op as G;
use lowbit_dialects::ir::{Attr, Attrs, Func, Loc, Op};
use lowbit_dialects::kernel::Op as K;
use lowbit_dialects::Opcode;

use crate::pass::{Pass, PassError, PassResult, Stats};
use crate::util::Users;

/// The `lower-to-kernel` pass.
#[derive(Debug, Default)]
pub struct LowerToKernel;

impl Pass for LowerToKernel {
    fn name(&self) -> &'static str {
        "lower-to-kernel"
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        let mut stats = Stats::with_keys(&["gemm", "epilogue", "attention", "add-layer-norm"]);
        for op in func.body.clone() {
            if let Some(kind) = lower_one(func, op) {
                stats.bump(kind);
            }
        }
        let mut dead = EntitySet::new();
        let users = Users::of(func);
        for op in func.body.clone() {
            if let Some(absorbed) = fuse_epilogue(func, &users, op) {
                dead.insert(absorbed);
                stats.bump("epilogue");
            } else if let Some(absorbed) = fuse_add_layer_norm(func, &users, op) {
                dead.insert(absorbed);
                stats.bump("add-layer-norm");
            }
        }
        func.body.retain(|&op| !dead.contains(op));
        Ok(PassResult::from_stats(stats))
    }
}

/// Step 1, in place: returns the counter to bump when `op` was rewritten.
fn lower_one(f: &mut Func, op: Op) -> Option<&'static str> {
    let d = &f.ops[op];
    let rank = |i: usize| d.args.get(i).map(|&v| f.ty(v).rank());
    match d.opcode {
        Opcode::Graph(G::Linear) => {
            let w = f.ty(*d.args.get(1)?);
            let bias_ok = d.args.get(2).is_none_or(|&b| f.ty(b).shape == [w.shape[0]]);
            if rank(0)? < 2 || w.rank() != 2 || !bias_ok {
                return None;
            }
            set_gemm(f, op, true);
            Some("gemm")
        }
        Opcode::Graph(G::MatMul) => {
            let w = *d.args.get(1)?;
            let is_weight = f
                .def_op(w)
                .is_some_and(|o| f.ops[o].opcode == Opcode::Graph(G::Weight));
            if rank(0)? < 2 || rank(1)? != 2 || !is_weight {
                return None;
            }
            set_gemm(f, op, false);
            Some("gemm")
        }
        Opcode::Attn(A::Sdpa) => {
            f.ops[op].opcode = Opcode::Kernel(K::Attention);
            Some("attention")
        }
        _ => None,
    }
}

fn set_gemm(f: &mut Func, op: Op, transpose_b: bool) {
    let d = &mut f.ops[op];
    d.opcode = Opcode::Kernel(K::Gemm);
    d.attrs = Attrs::new()
        .with("transpose_b", Attr::Bool(transpose_b))
        .with("epilogue", Attr::Str("none".into()));
}

/// Step 2: `op` is a gemm without epilogue whose only user is an activation of the same
/// type; the activation is absorbed. Returns the absorbed op.
fn fuse_epilogue(f: &mut Func, users: &Users, op: Op) -> Option<Op> {
    let d = &f.ops[op];
    if d.opcode != Opcode::Kernel(K::Gemm) || d.attrs.str("epilogue") != Some("none") {
        return None;
    }
    let out = f.result(op);
    let act = users.single_user(out)?;
    let a = &f.ops[act];
    let epilogue = match a.opcode {
        Opcode::Graph(G::Relu) => "relu",
        Opcode::Graph(G::Silu) => "silu",
        Opcode::Graph(G::Gelu) => match a.attrs.str("approximate") {
            None | Some("none") => "gelu",
            Some("tanh") => "gelu_tanh",
            Some(_) => return None,
        },
        _ => return None,
    };
    let act_out = f.result(act);
    if f.ty(act_out) != f.ty(out) {
        return None;
    }
    let loc = Loc::fuse([d.loc.clone(), a.loc.clone()]);
    let g = &mut f.ops[op];
    g.attrs.set("epilogue", Attr::Str(epilogue.into()));
    g.loc = loc;
    f.replace_all_uses(act_out, out);
    Some(act)
}

/// Step 3: `op` is a layer norm over the last axis with gamma and beta, fed by an add used
/// nowhere else; the add is absorbed. Returns the absorbed op.
fn fuse_add_layer_norm(f: &mut Func, users: &Users, op: Op) -> Option<Op> {
    let d = &f.ops[op];
    if d.opcode != Opcode::Graph(G::LayerNorm) || d.args.len() != 3 {
        return None;
    }
    let (sum, gamma, beta) = (d.args[0], d.args[1], d.args[2]);
    let ty = f.ty(sum);
    let last = ty.rank().checked_sub(1)?;
    if ty.axis(d.attrs.int("axis")?) != Some(last) {
        return None;
    }
    let norm_shape = [ty.shape[last]];
    let param_ok = |v| f.ty(v).shape == norm_shape && f.ty(v).elem == ty.elem;
    if !param_ok(gamma) || !param_ok(beta) {
        return None;
    }
    let add = f
        .def_op(sum)
        .filter(|&o| f.ops[o].opcode == Opcode::Graph(G::Add))?;
    if users.single_user(sum) != Some(op) {
        return None;
    }
    let (x, r) = (f.ops[add].args[0], f.ops[add].args[1]);
    if f.ty(x) != ty || f.ty(r) != ty {
        return None;
    }
    let epsilon = d.attrs.get("epsilon")?.clone();
    let loc = Loc::fuse([f.ops[add].loc.clone(), d.loc.clone()]);
    let ln = &mut f.ops[op];
    ln.opcode = Opcode::Kernel(K::AddLayerNorm);
    ln.args = vec![x, r, gamma, beta];
    ln.attrs = Attrs::new().with("epsilon", epsilon);
    ln.loc = loc;
    Some(add)
}

#[cfg(test)]
mod tests {
    use lowbit_dialects::ir::Loc;

    use crate::testing::{body, max_rel_l1, module, run};

    const MLP: &str = r#"
func @mlp(%x: tensor<2x3x8xf32>) -> tensor<2x3x4xf32> {
  %w = graph.weight {name = "w"} : tensor<4x8xf32>
  %b = graph.weight {name = "b"} : tensor<4xf32>
  %y = graph.linear %x, %w, %b : tensor<2x3x4xf32> loc("fc1")
  %r = graph.gelu %y {approximate = "tanh"} : tensor<2x3x4xf32> loc("act1")
  %w2 = graph.weight {name = "w2"} : tensor<4x4xf32>
  %z = graph.matmul %r, %w2 : tensor<2x3x4xf32>
  %s = graph.silu %z : tensor<2x3x4xf32>
  %w3 = graph.weight {name = "w3"} : tensor<4x4xf32>
  %t = graph.linear %s, %w3 : tensor<2x3x4xf32>
  %u = graph.relu %t : tensor<2x3x4xf32>
  %v = graph.linear %u, %w3 : tensor<2x3x4xf32>
  %g = graph.gelu %v : tensor<2x3x4xf32>
  return %g
}"#;

    #[test]
    fn gemms_absorb_activations() {
        let (m, stats) = run("lower-to-kernel", MLP);
        assert_eq!(
            body(&m),
            "%0 = graph.weight {name = \"w\"} : tensor<4x8xf32>\n\
             %1 = graph.weight {name = \"b\"} : tensor<4xf32>\n\
             %2 = kernel.gemm %arg0, %0, %1 {epilogue = \"gelu_tanh\", transpose_b = true} : tensor<2x3x4xf32>\n\
             %3 = graph.weight {name = \"w2\"} : tensor<4x4xf32>\n\
             %4 = kernel.gemm %2, %3 {epilogue = \"silu\", transpose_b = false} : tensor<2x3x4xf32>\n\
             %5 = graph.weight {name = \"w3\"} : tensor<4x4xf32>\n\
             %6 = kernel.gemm %4, %5 {epilogue = \"relu\", transpose_b = true} : tensor<2x3x4xf32>\n\
             %7 = kernel.gemm %6, %5 {epilogue = \"gelu\", transpose_b = true} : tensor<2x3x4xf32>\n\
             return %7"
        );
        assert_eq!(
            stats,
            "lower-to-kernel: gemm=4 epilogue=4 attention=0 add-layer-norm=0\n"
        );
        let f = &m.funcs[0];
        assert_eq!(
            f.ops[f.body[2]].loc,
            Loc::fuse([Loc::name("fc1"), Loc::name("act1")])
        );
        let err = max_rel_l1(&module(MLP), &m, 0..4);
        assert!(err <= 1e-6, "relative L1 {err}");
    }

    #[test]
    fn shared_intermediates_are_not_fused() {
        let src = r#"
func @f(%x: tensor<2x8xf32>, %k: tensor<8x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %w = graph.weight {name = "w"} : tensor<4x8xf32>
  %y = graph.linear %x, %w : tensor<2x4xf32>
  %r = graph.relu %y : tensor<2x4xf32>
  %z = graph.matmul %x, %k : tensor<2x4xf32>
  return %r, %y, %z
}"#;
        let (m, _) = run("lower-to-kernel", src);
        assert_eq!(
            body(&m),
            "%0 = graph.weight {name = \"w\"} : tensor<4x8xf32>\n\
             %1 = kernel.gemm %arg0, %0 {epilogue = \"none\", transpose_b = true} : tensor<2x4xf32>\n\
             %2 = graph.relu %1 : tensor<2x4xf32>\n\
             %3 = graph.matmul %arg0, %arg1 : tensor<2x4xf32>\n\
             return %2, %1, %3"
        );
        assert!(max_rel_l1(&module(src), &m, 0..3) <= 1e-6);
    }

    #[test]
    fn attention_and_add_layer_norm() {
        let src = r#"
func @block(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>, %res: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %o = attn.sdpa %q, %k, %v {scale = 0.35 : f32, causal = true} : tensor<1x2x4x8xf32>
  %s = graph.add %o, %res : tensor<1x2x4x8xf32> loc("add")
  %g = graph.weight {name = "ln.g"} : tensor<8xf32>
  %b = graph.weight {name = "ln.b"} : tensor<8xf32>
  %n = graph.layer_norm %s, %g, %b {axis = -1, epsilon = 1.0e-5 : f32} : tensor<1x2x4x8xf32> loc("ln")
  return %n
}"#;
        let (m, stats) = run("lower-to-kernel", src);
        assert_eq!(
            body(&m),
            "%0 = kernel.attention %arg0, %arg1, %arg2 {causal = true, scale = 0.35 : f32} : tensor<1x2x4x8xf32>\n\
             %1 = graph.weight {name = \"ln.g\"} : tensor<8xf32>\n\
             %2 = graph.weight {name = \"ln.b\"} : tensor<8xf32>\n\
             %3 = kernel.add_layer_norm %0, %arg3, %1, %2 {epsilon = 1.0e-5 : f32} : tensor<1x2x4x8xf32>\n\
             return %3"
        );
        assert_eq!(
            stats,
            "lower-to-kernel: gemm=0 epilogue=0 attention=1 add-layer-norm=1\n"
        );
        let f = &m.funcs[0];
        assert_eq!(
            f.ops[f.body[3]].loc,
            Loc::fuse([Loc::name("add"), Loc::name("ln")])
        );
        let err = max_rel_l1(&module(src), &m, 0..4);
        assert!(err <= 1e-6, "relative L1 {err}");
    }

    #[test]
    fn layer_norms_that_do_not_match_stay() {
        // The sum has a second use; the norm is over two axes; the norm has no beta.
        let src = r#"
func @f(%x: tensor<2x8xf32>, %y: tensor<2x8xf32>, %g: tensor<8xf32>, %g2: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>) {
  %s = graph.add %x, %y : tensor<2x8xf32>
  %n = graph.layer_norm %s, %g, %g {axis = -1, epsilon = 1.0e-5 : f32} : tensor<2x8xf32>
  %t = graph.add %x, %y : tensor<2x8xf32>
  %m = graph.layer_norm %t, %g2, %g2 {axis = 0, epsilon = 1.0e-5 : f32} : tensor<2x8xf32>
  %u = graph.add %y, %x : tensor<2x8xf32>
  %p = graph.layer_norm %u, %g {axis = 1, epsilon = 1.0e-5 : f32} : tensor<2x8xf32>
  return %n, %s, %m, %p
}"#;
        let (m, stats) = run("lower-to-kernel", src);
        assert_eq!(
            stats,
            "lower-to-kernel: gemm=0 epilogue=0 attention=0 add-layer-norm=0\n"
        );
        assert_eq!(body(&m), body(&module(src)));
    }
}
