//! `smooth-attention{q=true k=true q-block=128}`: SageAttention's exact smoothing of Q and
//! K (techniques.md §1.1 I1/I2, §7 R1/R2), written out as explicit `graph` ops in front of
//! an `attn.sdpa`, so that a later `quantize-attention` quantizes only the centered parts.
//!
//! | rule | `lhs -> rhs` | class |
//! |---|---|---|
//! | `smooth-k` (R1) | `sdpa(q, k, v, mask) -> sdpa(q, k - mean_tok(k), v, mask)` | EXACT-R |
//! | `smooth-q` (R2) | `sdpa(q, k, v, mask) -> sdpa(q - q̄_blk, k, v, mask ⊕ scale · q̄_blk · kᵀ)` | EXACT-R |
//!
//! * **smooth-k**: `c = mean_tok(k)` per batch and KV head (`reduce mean` over the token
//!   axis, kept). `q · c` is one number per query row, and softmax ignores a per-row
//!   constant, so the result is unchanged for every mask and with `causal` (every key a row
//!   sees had the same `c` subtracted). With GQA, `c` belongs to the KV head and so to all
//!   its query heads. The log-sum-exp would change by `scale · q · c`, but `attn.sdpa` does
//!   not return it.
//! * **smooth-q**: each block of `q-block` consecutive queries (all of them when `N` is
//!   smaller) subtracts its token mean `q̄_blk`; the scores lose `scale · q̄_blk · k_jᵀ`, which
//!   is not constant along a row, so it is added back as an additive mask term
//!   `ΔS [B, H, N, M]` (computed in the function's float type — use `f32` or wider, R2's
//!   guard). The mask combines as `mask ⊕ ΔS`: a float mask adds (`-inf` stays `-inf`), an
//!   `i1` mask becomes `select(mask, ΔS, -inf)`, and `causal` stays on the op, which hides
//!   the same keys before the mask is looked at. The `k` in `ΔS` is the smoothed `k` when
//!   both rules run (the cross term `q̄ · c` is a per-row constant, R1 again).
//!   `q̄_blk` per token is formed as `q - (q - q̄_blk)`: exact up to rounding.
//!
//! Both rules are exact up to floating-point rounding: the tests evaluate every case before
//! and after with the interpreter in `f64` and require relative L1 ≤ 1e-9.
//!
//! Not rewritten (counted): an sdpa whose query count `N` is larger than `q-block` and
//! not a multiple of it gets K smoothing only (`q-skipped-ragged`). Ops other than
//! `attn.sdpa` are left alone; an sdpa that already went through this pass is smoothed
//! again (still exact; the second `ΔS` is rounding noise).
//!
//! Counters: `smoothed` (sdpa ops rewritten), `smooth-k`, `smooth-q`, `q-skipped-ragged`.

use lowbit_dialects::attn::Op as A;
use lowbit_dialects::graph::Op as G;
use lowbit_dialects::ir::{Attr, Attrs, DenseAttr, Elem, Func, Loc, Op, TensorType, Value};
use lowbit_dialects::Opcode;

use crate::pass::{Pass, PassError, PassResult, Stats};
use crate::pipeline::{PassOptions, PipelineError};

/// Default Q smoothing block (SageAttention3's reference code groups 128 tokens).
pub const DEFAULT_Q_BLOCK: usize = 128;

/// The `smooth-attention` pass.
#[derive(Debug)]
pub struct SmoothAttention {
    /// Apply R2 (Q block-mean smoothing with the ΔS correction).
    pub q: bool,
    /// Apply R1 (K token-mean smoothing).
    pub k: bool,
    /// Queries per Q smoothing block.
    pub q_block: usize,
}

impl Default for SmoothAttention {
    fn default() -> Self {
        SmoothAttention {
            q: true,
            k: true,
            q_block: DEFAULT_Q_BLOCK,
        }
    }
}

/// A boolean option whose absence means `default` (`flag` alone reads absence as false).
pub(crate) fn bool_option(
    opts: &PassOptions,
    key: &'static str,
    default: bool,
) -> Result<bool, PipelineError> {
    let v = opts.flag(key)?;
    Ok(match opts.string(key) {
        Ok(None) => default,
        _ => v,
    })
}
impl Pass for SmoothAttention {
    fn name(&self) -> &'static str {
        "smooth-attention"
    }

    fn configure(&mut self, opts: &PassOptions) -> Result<(), PipelineError> {
        self.q = bool_option(opts, "q", true)?;
        self.k = bool_option(opts, "k", true)?;
        if let Some(b) = opts.usize("q-block")? {
            if b == 0 {
                return Err(opts.invalid("q-block", "a positive integer"));
            }
            self.q_block = b;
        }
        Ok(())
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        let mut stats = Stats::with_keys(&["smoothed", "smooth-k", "smooth-q", "q-skipped-ragged"]);
        for op in func.body.clone() {
            if func.ops[op].opcode != Opcode::Attn(A::Sdpa) {
                continue;
            }
            let n = func.ty(func.ops[op].args[0]).shape[2] as usize;
            let q_block = self.q_block.min(n.max(1));
            let do_q = self.q && n > 0 && n.is_multiple_of(q_block);
            if self.q && !do_q {
                stats.bump("q-skipped-ragged");
            }
            if !do_q && !self.k {
                continue;
            }
            smooth(func, op, self.k, do_q.then_some(q_block));
            stats.bump("smoothed");
            if self.k {
                stats.bump("smooth-k");
            }
            if do_q {
                stats.bump("smooth-q");
            }
        }
        Ok(PassResult {
            changed: stats.get("smoothed") > 0,
            stats,
        })
    }
}

/// Inserts `graph` ops before `at`, all at one location.
pub(crate) struct Builder<'f> {
    pub f: &'f mut Func,
    pub at: Op,
    pub loc: Loc,
}

impl Builder<'_> {
    pub fn op(&mut self, opcode: G, args: Vec<Value>, attrs: Attrs, ty: TensorType) -> Value {
        let op = self.f.insert_op_before(
            self.at,
            Opcode::Graph(opcode),
            args,
            attrs,
            vec![ty],
            self.loc.clone(),
        );
        self.f.result(op)
    }

    pub fn reshape(&mut self, x: Value, shape: &[usize]) -> Value {
        let elem = self.f.ty(x).elem;
        self.op(G::Reshape, vec![x], Attrs::new(), tensor(shape, elem))
    }

    pub fn constant(&mut self, shape: &[usize], elem: Elem, values: Vec<f64>) -> Value {
        let ty = tensor(shape, elem);
        let value = DenseAttr {
            ty: ty.clone(),
            values: Some(values),
        };
        self.op(
            G::Constant,
            vec![],
            Attrs::new().with("value", Attr::Dense(value)),
            ty,
        )
    }

    /// The mean over `axis`, kept as a size-1 dim.
    pub fn mean_keep(&mut self, x: Value, axis: usize) -> Value {
        let ty = self.f.ty(x).clone();
        let mut shape: Vec<usize> = ty.shape.iter().map(|&d| d as usize).collect();
        shape[axis] = 1;
        let attrs = Attrs::new()
            .with("kind", Attr::Str("mean".into()))
            .with("axes", Attr::Ints(vec![axis as i64]))
            .with("keepdims", Attr::Bool(true));
        self.op(G::Reduce, vec![x], attrs, tensor(&shape, ty.elem))
    }

    /// A broadcasting binary op whose result has `shape` and `l`'s element type.
    pub fn binary(&mut self, opcode: G, l: Value, r: Value, shape: &[usize]) -> Value {
        let elem = self.f.ty(l).elem;
        self.op(opcode, vec![l, r], Attrs::new(), tensor(shape, elem))
    }

    pub fn transpose_last(&mut self, x: Value) -> Value {
        let ty = self.f.ty(x).clone();
        let mut shape: Vec<usize> = ty.shape.iter().map(|&d| d as usize).collect();
        let r = shape.len();
        shape.swap(r - 1, r - 2);
        let mut perm: Vec<i64> = (0..r as i64).collect();
        perm.swap(r - 1, r - 2);
        self.op(
            G::Transpose,
            vec![x],
            Attrs::new().with("perm", Attr::Ints(perm)),
            tensor(&shape, ty.elem),
        )
    }

    pub fn cast(&mut self, x: Value, elem: Elem) -> Value {
        let ty = self.f.ty(x).with_elem(elem);
        self.op(G::Cast, vec![x], Attrs::new(), ty)
    }
}

pub(crate) fn tensor(shape: &[usize], elem: Elem) -> TensorType {
    TensorType::new(shape.iter().map(|&d| d as i64).collect::<Vec<_>>(), elem)
}

/// Rewrites the sdpa `op`: K smoothing when `k`, Q smoothing over blocks of `q_block`
/// queries (which divides `N`) when given.
fn smooth(f: &mut Func, op: Op, k_smooth: bool, q_block: Option<usize>) {
    let d = f.ops[op].clone();
    let (q, k, v) = (d.args[0], d.args[1], d.args[2]);
    let mask = d.args.get(3).copied();
    let (qt, kt) = (f.ty(q).clone(), f.ty(k).clone());
    let dim = |t: &TensorType, i: usize| t.shape[i] as usize;
    let (b, h, n, dd) = (dim(&qt, 0), dim(&qt, 1), dim(&qt, 2), dim(&qt, 3));
    let (g, m) = (dim(&kt, 1), dim(&kt, 2));
    let e = qt.elem;
    let scale = d.attrs.float("scale").expect("verified: sdpa has a scale");
    let mut bl = Builder {
        f,
        at: op,
        loc: d.loc.clone(),
    };
    // R1: k' = k - mean_tok(k) per (batch, KV head).
    let k2 = if k_smooth {
        let c = bl.mean_keep(k, 2);
        bl.binary(G::Sub, k, c, &[b, g, m, dd])
    } else {
        k
    };
    let mut args = vec![q, k2, v];
    if let Some(qb) = q_block {
        // R2: q = qc + q̄ with qc centered per block; ΔS = scale · q̄ · k'ᵀ.
        let nb = n / qb;
        let q5 = bl.reshape(q, &[b, h, nb, qb, dd]);
        let mean = bl.mean_keep(q5, 3);
        let qc5 = bl.binary(G::Sub, q5, mean, &[b, h, nb, qb, dd]);
        let qc = bl.reshape(qc5, &[b, h, n, dd]);
        let qbar = bl.binary(G::Sub, q, qc, &[b, h, n, dd]);
        let k2t = bl.transpose_last(k2);
        let s = if g == h {
            bl.binary(G::MatMul, qbar, k2t, &[b, h, n, m])
        } else {
            let r = h / g;
            let qbar4 = bl.reshape(qbar, &[b, g, r * n, dd]);
            let s4 = bl.binary(G::MatMul, qbar4, k2t, &[b, g, r * n, m]);
            bl.reshape(s4, &[b, h, n, m])
        };
        let sc = bl.constant(&[], e, vec![scale]);
        let ds = bl.binary(G::Mul, s, sc, &[b, h, n, m]);
        let new_mask = match mask {
            None => ds,
            Some(mk) => {
                let mt = bl.f.ty(mk).clone();
                if mt.elem == Elem::I1 {
                    let ninf = bl.constant(&[], e, vec![f64::NEG_INFINITY]);
                    bl.op(
                        G::Select,
                        vec![mk, ds, ninf],
                        Attrs::new(),
                        tensor(&[b, h, n, m], e),
                    )
                } else {
                    let mk = if mt.elem == e { mk } else { bl.cast(mk, e) };
                    bl.binary(G::Add, mk, ds, &[b, h, n, m])
                }
            }
        };
        args[0] = qc;
        args.push(new_mask);
    } else if let Some(mk) = mask {
        args.push(mk);
    }
    let out_ty = f.ty(f.result(op)).clone();
    let new = f.insert_op_before(
        op,
        Opcode::Attn(A::Sdpa),
        args,
        d.attrs.clone(),
        vec![out_ty],
        d.loc.clone(),
    );
    let (old, new) = (f.result(op), f.result(new));
    f.replace_all_uses(old, new);
    f.body.retain(|&o| o != op);
}

#[cfg(test)]
mod tests {
    use lowbit_dialects::interp::{run_func, Tensor};
    use lowbit_dialects::ir::Module;

    use crate::testing::{module, run, Rng};

    /// An sdpa with `q [b, h, n, d]`, `k/v [b, g, m, d]`, an optional mask of `mask` type,
    /// all `f64`.
    fn sdpa(q: [i64; 4], g: i64, m: i64, causal: bool, mask: Option<&str>) -> String {
        let [b, h, n, d] = q;
        let (mp, ma) = match mask {
            Some(t) => (format!(", %mask: tensor<{t}>"), ", %mask".to_string()),
            None => (String::new(), String::new()),
        };
        format!(
            "func @f(%q: tensor<{b}x{h}x{n}x{d}xf64>, %k: tensor<{b}x{g}x{m}x{d}xf64>, %v: tensor<{b}x{g}x{m}x{d}xf64>{mp}) -> tensor<{b}x{h}x{n}x{d}xf64> {{\n  %o = attn.sdpa %q, %k, %v{ma} {{causal = {causal}, scale = 0.35 : f32}} : tensor<{b}x{h}x{n}x{d}xf64>\n  return %o\n}}\n"
        )
    }

    /// Random inputs with channel outliers (constant over tokens) in q and k, so that the
    /// means are far from zero and smoothing changes the operands a lot.
    fn inputs(m: &Module, seed: u64) -> Vec<Tensor> {
        let mut rng = Rng(seed);
        let f = &m.funcs[0];
        f.param_types()
            .iter()
            .enumerate()
            .map(|(i, ty)| {
                let mut t = rng.tensor(ty);
                if i < 2 && ty.shape.len() == 4 {
                    let d = ty.shape[3] as usize;
                    let shift: Vec<f64> = (0..d).map(|_| 6.0 * rng.unit()).collect();
                    for (j, x) in t.data.iter_mut().enumerate() {
                        *x += shift[j % d];
                    }
                }
                t
            })
            .collect()
    }

    /// Relative L1 between the outputs of `before` and `after` on three input sets.
    fn rel_l1(before: &Module, after: &Module) -> f64 {
        let mut worst: f64 = 0.0;
        for seed in 1..4 {
            let x = inputs(before, seed);
            let w = Default::default();
            let ob = run_func(&before.funcs[0], &x, &w).unwrap();
            let oa = run_func(&after.funcs[0], &x, &w).unwrap();
            let diff: f64 = ob[0]
                .data
                .iter()
                .zip(&oa[0].data)
                .map(|(a, b)| (a - b).abs())
                .sum();
            let norm: f64 = ob[0].data.iter().map(|a| a.abs()).sum();
            assert!(oa[0].data.iter().all(|x| x.is_finite()));
            worst = worst.max(diff / norm.max(f64::MIN_POSITIVE));
        }
        worst
    }

    fn check(pipeline: &str, src: &str, stats: &str) {
        let before = module(src);
        let (after, report) = run(pipeline, src);
        assert!(report.contains(stats), "{report}");
        let err = rel_l1(&before, &after);
        assert!(err <= 1e-9, "{pipeline}: relative L1 {err:e} on\n{src}");
    }

    /// EXACT-R property test of R1 and R2, alone and together, over plain, causal (N = M
    /// and N < M), GQA, MQA, float-mask and i1-mask problems.
    #[test]
    fn smoothing_is_exact_in_f64() {
        let cases = [
            sdpa([1, 2, 8, 4], 2, 8, false, None),
            sdpa([2, 2, 8, 4], 2, 8, true, None),
            sdpa([1, 2, 4, 3], 1, 12, true, None),
            sdpa([1, 4, 8, 4], 2, 6, false, None),
            sdpa([1, 4, 8, 4], 2, 8, true, None),
            sdpa([1, 2, 8, 4], 2, 8, false, Some("1x1x8x8xf64")),
            sdpa([2, 2, 8, 4], 2, 8, true, Some("2x1x1x8xf32")),
            sdpa([1, 2, 8, 4], 2, 8, false, Some("1x2x8x8xi1")),
            sdpa([1, 4, 8, 4], 1, 8, true, Some("8x8xi1")),
        ];
        for src in &cases {
            check("smooth-attention{q=false}", src, "smooth-k=1 smooth-q=0");
            check(
                "smooth-attention{k=false q-block=4}",
                src,
                "smooth-k=0 smooth-q=1",
            );
            check("smooth-attention{q-block=2}", src, "smooth-k=1 smooth-q=1");
            check("smooth-attention", src, "smoothed=1");
        }
    }

    /// With masks that hide every key of some rows (random i1 masks, -inf float masks), the
    /// hidden rows stay hidden: outputs agree, no NaN.
    #[test]
    fn fully_masked_rows_stay_zero() {
        let src = sdpa([1, 1, 4, 2], 1, 4, false, Some("1x1x4x4xi1"));
        let before = module(&src);
        let (after, _) = run("smooth-attention{q-block=2}", &src);
        let mut x = inputs(&before, 7);
        x[3].data = vec![
            0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0,
        ];
        let w = Default::default();
        let ob = run_func(&before.funcs[0], &x, &w).unwrap();
        let oa = run_func(&after.funcs[0], &x, &w).unwrap();
        assert_eq!(&oa[0].data[0..2], &[0.0, 0.0]);
        for (a, b) in ob[0].data.iter().zip(&oa[0].data) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }

    /// Smoothing actually centers: after R1 the keys fed to the sdpa have zero token mean,
    /// and after R2 each query block has zero mean (the quantizers see only these).
    #[test]
    fn operands_are_centered() {
        let src = sdpa([1, 2, 8, 4], 2, 8, false, None);
        let (mut after, _) = run("smooth-attention{q-block=4}", &src);
        let f = &mut after.funcs[0];
        let sd = *f.body.last().unwrap();
        let (qc, kc) = (f.ops[sd].args[0], f.ops[sd].args[1]);
        f.rets = vec![qc, kc];
        let x = inputs(&module(&src), 3);
        let out = run_func(f, &x, &Default::default()).unwrap();
        let (q, k) = (&out[0].data, &out[1].data);
        for head in 0..2 {
            for c in 0..4 {
                let km: f64 = (0..8).map(|t| k[head * 32 + t * 4 + c]).sum();
                assert!(km.abs() < 1e-12, "{km}");
                for blk in 0..2 {
                    let qm: f64 = (0..4).map(|t| q[head * 32 + (blk * 4 + t) * 4 + c]).sum();
                    assert!(qm.abs() < 1e-12, "{qm}");
                }
            }
        }
    }

    #[test]
    fn ragged_and_absent_cases() {
        // N = 6 with q-block 4: only K smoothing, counted.
        let src = sdpa([1, 1, 6, 2], 1, 6, true, None);
        let (_, report) = run("smooth-attention{q-block=4}", &src);
        assert!(
            report.contains("smoothed=1 smooth-k=1 smooth-q=0 q-skipped-ragged=1"),
            "{report}"
        );
        check("smooth-attention{q-block=4}", &src, "smoothed=1");
        // Nothing to do without K smoothing.
        let (_, report) = run("smooth-attention{q-block=4 k=false}", &src);
        assert!(report.contains("smoothed=0"), "{report}");
        // No sdpa: unchanged.
        let plain = "func @f(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = graph.neg %a : tensor<2xf32>\n  return %0\n}\n";
        let (m, report) = run("smooth-attention", plain);
        assert_eq!(m, module(plain));
        assert!(report.contains("smoothed=0"), "{report}");
    }

    #[test]
    fn option_errors() {
        for bad in [
            "smooth-attention{q-block=0}",
            "smooth-attention{q=maybe}",
            "smooth-attention{block=4}",
        ] {
            assert!(crate::PassManager::parse(bad).is_err(), "{bad}");
        }
    }
}
