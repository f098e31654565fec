//! `rotate{kind=hadamard where="residual,attn-v,ffn-down,kv,linears" seed=N}`: QuaRot/SpinQuant-style
//! orthogonal rotations inserted as exact pairs (techniques.md §3.1–§3.3, R7, R8, R9).
//!
//! Every rewrite keeps the function's value in real arithmetic (EXACT-R); a later
//! `fold-rotations` moves the matrix halves into the adjacent weights, and quantizers
//! inserted after that see the rotated, outlier-free activations.
//!
//! | rule | `lhs -> rhs` | class |
//! |---|---|---|
//! | `fold-norm-gain` (R7; `where=gains` alone) | `linear(rms_norm(x, γ), W) -> linear(rms_norm(x), W·diag(γ))` | EXACT-R |
//! | `rotate-residual` (R8) | stream `s -> s·R` at its root; `linear(rms_norm(s), W) -> linear(rotate(rms_norm(s·R), Rᵀ), W)`; `add(s, linear(a, W)) -> add(s·R, rotate(linear(a, W), R))`; `return s -> return rotate(s·R, Rᵀ)` | EXACT-R |
//! | `rotate-attn-v` (R8) | `sdpa(q, k, v) -> rotate(sdpa(q, k, rotate(v, R₂)), R₂ᵀ)` (head dim) | EXACT-R |
//! | `rotate-ffn-down` (R8) | `linear(m, W) -> linear(rotate(hadamard(m), Hᵀ), W)`, `m` an activation product | EXACT-R |
//! | `rotate-kv` (R8, R9) | `sdpa(q, k, v) -> sdpa(hadamard(q), hadamard(k), v)` (after RoPE) | EXACT-R |
//! | `rotate-linear-inputs` (`where=linears`, not in the default set) | `linear(x, W) -> linear(rotate(hadamard(x), Hᵀ), W)` for every linear | EXACT-R |
//!
//! `where=linears` is incoherence processing for weight-only quantization (QuIP#, QuaRot's
//! online Hadamard): after `fold-rotations` every linear reads `hadamard(x)` with the weight
//! `W·H`, whose groups have no outlier columns; it works on any architecture (LayerNorm
//! included) at the cost of one online transform per linear input (`cse` merges those of
//! linears sharing an input).
//!
//! Why each is exact (R orthogonal, `R·Rᵀ = I`): `rms(x·R) = rms(x)` so a weightless RMSNorm
//! commutes with `R`; additions are linear; `(q H)(k H)ᵀ = q kᵀ`; `P (v R) = (P v) R`
//! because softmax mixes tokens, not channels. The gain of an RMSNorm does not commute with
//! `R`, so `rotate-residual` first folds every gain on the stream into the linears that read
//! the norm (`fold-norm-gain`, which needs the norm output to feed only linears).
//!
//! **Residual stream.** A root is a value (a parameter, or an op result not itself on a
//! stream) that feeds both an `rms_norm` over its last axis and an `add`; the stream grows
//! through `add(s, t)` where `t` is the single-use output of a `linear`. Every use of a stream
//! value must be such a norm (whose output feeds only linears, as `x`), such an add, or a
//! return; anything else fails the pass — in particular a `layer_norm`, which subtracts the
//! mean (multiplies by `I - 11ᵀ/d`) and does not commute with `R` (techniques.md §3.1). The
//! remedy (a zero-mean stream: mean-baked writers, then LayerNorm == RMSNorm) is not done here.
//!
//! **Matrices.** `kind=hadamard`: `R = diag(s)·H_n/√n` with `H_n` the Hadamard matrix of
//! [`lowbit_dialects::rot::hadamard`] and `s` random signs drawn from `seed` (all `+1`
//! without a seed) for the residual and attn-v rotations; the online transforms
//! (`rot.hadamard`) are plain `H_n/√n` and their inverse halves store `(H_n/√n)ᵀ`. Matrices go
//! into the weight store as `rot.<point>.<i>.r` / `.rt` (`graph.weight`) when the function
//! reads weights, else into `graph.constant`s. A function that reads weights while no
//! weights were given is an error (norm gains and matrices have nowhere to go).
//!
//! Counters: `gains-folded`, `residual-streams`, `residual-rotations` (rotate ops inserted on
//! the stream), `attn-v`, `ffn-down`, `kv` (rewritten ops; `linears` too, listed only when
//! that point was asked for), `orth-err-max-e18` (the largest
//! `max|RᵀR − I|` of the matrices built, times 10¹⁸, rounded up).

use lowbit_dialects::attn::Op as A;
use lowbit_dialects::graph::Op as G;
use lowbit_dialects::interp::Tensor;
use lowbit_dialects::ir::{Attr, Attrs, DenseAttr, Elem, Func, Loc, Op, TensorType, Value};
use lowbit_dialects::rot::hadamard::hadamard_matrix;
use lowbit_dialects::rot::Op as R;
use lowbit_dialects::Opcode;

use crate::pass::{Pass, PassEnv, PassError, PassResult, Stats};
use crate::pipeline::{PassOptions, PipelineError};
use crate::util::Users;

/// Which rotation points `rotate` rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Points {
    /// Only fold the RMSNorm gains of residual streams into the linears reading them (R7);
    /// implied by `residual`.
    pub gains: bool,
    /// The residual stream (R1), with the norm gains folded first.
    pub residual: bool,
    /// V and the attention output, per head (R2).
    pub attn_v: bool,
    /// The down-projection input, online (R4).
    pub ffn_down: bool,
    /// Q and K after RoPE, online (R3).
    pub kv: bool,
    /// Every linear's input, online (not in [`Points::ALL`]).
    pub linears: bool,
}

impl Points {
    /// Every point.
    pub const ALL: Points = Points {
        gains: true,
        residual: true,
        attn_v: true,
        ffn_down: true,
        kv: true,
        linears: false,
    };

    /// Parses `gains,residual,attn-v,ffn-down,kv,linears` (any subset, any order).
    pub fn parse(s: &str) -> Option<Points> {
        let mut p = Points {
            gains: false,
            residual: false,
            attn_v: false,
            ffn_down: false,
            kv: false,
            linears: false,
        };
        for w in s.split(',').map(str::trim) {
            match w {
                "gains" => p.gains = true,
                "residual" => p.residual = true,
                "attn-v" => p.attn_v = true,
                "ffn-down" => p.ffn_down = true,
                "kv" => p.kv = true,
                "linears" => p.linears = true,
                _ => return None,
            }
        }
        Some(p)
    }

    fn need_store(self) -> bool {
        self.gains || self.residual || self.attn_v || self.ffn_down || self.linears
    }
}

/// The `rotate` pass.
#[derive(Debug)]
pub struct Rotate {
    /// Where to rotate.
    pub points: Points,
    /// Seed of the random signs of the residual and attn-v rotations (`None`: no signs).
    pub seed: Option<u64>,
}

impl Default for Rotate {
    fn default() -> Self {
        Rotate {
            points: Points::ALL,
            seed: None,
        }
    }
}

impl Pass for Rotate {
    fn name(&self) -> &'static str {
        "rotate"
    }

    fn configure(&mut self, opts: &PassOptions) -> Result<(), PipelineError> {
        if let Some(k) = opts.string("kind")? {
            if k != "hadamard" {
                return Err(opts.invalid("kind", "hadamard"));
            }
        }
        if let Some(w) = opts.string("where")? {
            self.points = Points::parse(w).ok_or_else(|| {
                opts.invalid(
                    "where",
                    "a comma-separated subset of gains, residual, attn-v, ffn-down, kv, linears (quoted)",
                )
            })?;
        }
        if let Some(s) = opts.usize("seed")? {
            self.seed = Some(s as u64);
        }
        Ok(())
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        self.run_with_env(func, &mut PassEnv::default())
    }

    fn run_with_env(&mut self, f: &mut Func, env: &mut PassEnv) -> Result<PassResult, PassError> {
        let mut stats = Stats::with_keys(&[
            "gains-folded",
            "residual-streams",
            "residual-rotations",
            "attn-v",
            "ffn-down",
            "kv",
            "orth-err-max-e18",
        ]);
        if self.points.linears {
            stats.add("linears", 0);
        }
        let store = Store::for_func(f, env, "rotate", self.points.need_store())?;
        let mut signs = SplitMix(self.seed.unwrap_or(0));
        let mut orth = 0.0f64;
        let mut cx = Cx {
            f,
            env,
            store,
            stats: &mut stats,
            signs: self.seed.map(|_| &mut signs),
            orth: &mut orth,
        };
        if self.points.residual || self.points.gains {
            cx.residual(self.points.residual)?;
        }
        if self.points.attn_v {
            cx.attn_v()?;
        }
        if self.points.ffn_down {
            cx.online_inputs(false)?;
        }
        if self.points.kv {
            cx.kv()?;
        }
        if self.points.linears {
            cx.online_inputs(true)?;
        }
        let changed = [
            "gains-folded",
            "residual-rotations",
            "attn-v",
            "ffn-down",
            "kv",
            "linears",
        ]
        .iter()
        .any(|k| stats.get(k) > 0);
        stats.add("orth-err-max-e18", e18(orth));
        Ok(PassResult { changed, stats })
    }
}

/// `x · 10¹⁸`, rounded up, as a counter.
pub(crate) fn e18(x: f64) -> u64 {
    (x * 1e18).ceil().min(u64::MAX as f64) as u64
}
/// SplitMix64, for the random signs.
struct SplitMix(u64);

impl SplitMix {
    fn sign(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        if (z ^ (z >> 31)) & 1 == 0 {
            1.0
        } else {
            -1.0
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tensors behind values, and new ones: shared with `fold-rotations`.

/// Where a weight-like tensor lives.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Src {
    /// `graph.weight {name}`.
    Weight(String),
    /// `graph.constant`.
    Constant,
}

/// Where new tensors go: the weight store (named `graph.weight`s) or `graph.constant`s.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Store {
    pub(crate) weights: bool,
}

impl Store {
    /// The store for `f`: weights when `f` reads any. A function that reads weights when no
    /// weights were given fails when `need` says the pass will write or read some.
    pub(crate) fn for_func(
        f: &Func,
        env: &PassEnv,
        pass: &'static str,
        need: bool,
    ) -> Result<Store, PassError> {
        let first = f
            .body
            .iter()
            .copied()
            .find(|&op| f.ops[op].opcode == Opcode::Graph(G::Weight));
        if let Some(op) = first {
            if need && env.weights.is_empty() {
                return Err(PassError::Op {
                    pass,
                    op: "graph.weight",
                    loc: f.ops[op].loc.clone(),
                    message: format!(
                        "no weights were given, but '@{}' reads weights that {pass} must read \
                         and rewrite; pass them with --weights FILE",
                        f.name
                    ),
                });
            }
        }
        Ok(Store {
            weights: first.is_some(),
        })
    }
}

/// The data of the weight or constant defining `v` (with `transpose {perm=[1,0]}` seen
/// through when `see_transpose`), and where it lives. `Ok(None)`: not a weight-like value.
pub(crate) fn tensor_of(
    f: &Func,
    v: Value,
    env: &PassEnv,
    see_transpose: bool,
    pass: &'static str,
) -> Result<Option<(Vec<f64>, Src)>, PassError> {
    let Some(op) = f.def_op(v) else {
        return Ok(None);
    };
    let d = &f.ops[op];
    match d.opcode {
        Opcode::Graph(G::Weight) => {
            let name = d.attrs.str("name").unwrap_or_default().to_string();
            match env.weights.get(&name) {
                Some(t) if t.ty.num_elements() == f.ty(v).num_elements() => {
                    Ok(Some((t.data.clone(), Src::Weight(name))))
                }
                Some(t) => Err(PassError::Op {
                    pass,
                    op: "graph.weight",
                    loc: d.loc.clone(),
                    message: format!(
                        "weight '{name}' has type {} in the store but {} in the IR",
                        t.ty,
                        f.ty(v)
                    ),
                }),
                None if env.weights.is_empty() => Ok(None),
                None => Err(PassError::Op {
                    pass,
                    op: "graph.weight",
                    loc: d.loc.clone(),
                    message: format!("weight '{name}' is not in the weight store"),
                }),
            }
        }
        Opcode::Graph(G::Constant) => Ok(d
            .attrs
            .dense("value")
            .and_then(|c| c.values.clone())
            .map(|vals| (vals, Src::Constant))),
        Opcode::Graph(G::Transpose)
            if see_transpose && d.attrs.ints("perm") == Some(&[1, 0][..]) =>
        {
            let Some((data, src)) = tensor_of(f, d.args[0], env, false, pass)? else {
                return Ok(None);
            };
            let s = &f.ty(d.args[0]).shape;
            let (r, c) = (s[0] as usize, s[1] as usize);
            let mut t = vec![0.0; r * c];
            for i in 0..r {
                for j in 0..c {
                    t[j * r + i] = data[i * c + j];
                }
            }
            Ok(Some((t, src)))
        }
        _ => Ok(None),
    }
}

/// A name not yet in the store: `base`, else `base.1`, `base.2`, ...
pub(crate) fn unique_name(env: &PassEnv, base: &str) -> String {
    if !env.weights.contains_key(base) {
        return base.to_string();
    }
    (1..)
        .map(|i| format!("{base}.{i}"))
        .find(|n| !env.weights.contains_key(n))
        .expect("an unused name exists")
}

/// Creates, right before `before` and with its location, a `graph.weight` (a new store entry named after `base`)
/// or a `graph.constant` holding `data` with type `ty`; returns its value.
pub(crate) fn emit_tensor(
    f: &mut Func,
    env: &mut PassEnv,
    as_weight: bool,
    before: Op,
    base: &str,
    ty: &TensorType,
    data: Vec<f64>,
) -> Value {
    let loc = f.ops[before].loc.clone();
    let t = Tensor::new(ty.clone(), data);
    let attrs = if as_weight {
        let name = unique_name(env, base);
        env.weights.insert(name.clone(), t);
        env.weights_changed = true;
        Attrs::new().with("name", Attr::Str(name))
    } else {
        Attrs::new().with(
            "value",
            Attr::Dense(DenseAttr {
                ty: ty.clone(),
                values: Some(t.data),
            }),
        )
    };
    let opcode = Opcode::Graph(if as_weight { G::Weight } else { G::Constant });
    let op = f.insert_op_before(before, opcode, vec![], attrs, vec![ty.clone()], loc);
    f.result(op)
}

/// Creates `op` right after `after` in the body.
pub(crate) fn insert_after(
    f: &mut Func,
    after: Op,
    opcode: Opcode,
    args: Vec<Value>,
    attrs: Attrs,
    ty: TensorType,
    loc: Loc,
) -> Op {
    let op = f.create_op(opcode, args, attrs, vec![ty], loc);
    let at = f
        .body
        .iter()
        .position(|&o| o == after)
        .expect("anchor is in the body");
    f.body.insert(at + 1, op);
    op
}

/// `max |MᵀM − I|` of the `n × n` row-major `m`.
pub fn orthogonality_error(m: &[f64], n: usize) -> f64 {
    let a = nalgebra::DMatrix::from_row_slice(n, n, &m[..n * n]);
    let g = a.transpose() * &a;
    let mut worst: f64 = 0.0;
    for ((i, j), v) in g.iter().enumerate().map(|(k, v)| ((k % n, k / n), v)) {
        let e = (v - if i == j { 1.0 } else { 0.0 }).abs();
        if e.is_nan() {
            // f64::max would drop it: a NaN matrix is not orthogonal.
            return f64::NAN;
        }
        worst = worst.max(e);
    }
    worst
}

/// The normalized Hadamard matrix `H_n/√n` (row-major), `None` when unsupported.
pub fn normalized_hadamard(n: usize) -> Option<Vec<f64>> {
    let s = (n as f64).sqrt();
    hadamard_matrix(n).map(|h| h.into_iter().map(|x| x / s).collect())
}

/// The transpose of the `n × n` row-major `m`.
pub(crate) fn transpose(m: &[f64], n: usize) -> Vec<f64> {
    let mut t = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            t[j * n + i] = m[i * n + j];
        }
    }
    t
}

fn rot_attrs(axis: i64) -> Attrs {
    Attrs::new().with("axis", Attr::Int(axis))
}

/// Whether the `rot` op `op` acts on the last axis of its operand.
pub(crate) fn is_last_axis(f: &Func, op: Op) -> bool {
    let d = &f.ops[op];
    let rank = f.ty(d.args[0]).rank() as i64;
    matches!(d.attrs.int("axis"), Some(a) if a == -1 || a == rank - 1)
}

fn err(f: &Func, op: Op, message: String) -> PassError {
    PassError::Op {
        pass: "rotate",
        op: f.ops[op].opcode.name(),
        loc: f.ops[op].loc.clone(),
        message,
    }
}

/// What a residual stream rewrite touches, found before anything changes.
#[derive(Default)]
struct Stream {
    root: Option<Value>,
    values: Vec<Value>,
    /// Norms with a gain still to fold.
    gains: Vec<Op>,
    /// Linears reading a norm of the stream.
    readers: Vec<Op>,
    /// Residual adds and the linear output each adds.
    writers: Vec<(Op, Value)>,
    /// Stream values returned.
    rets: Vec<Value>,
}

struct Cx<'a> {
    f: &'a mut Func,
    env: &'a mut PassEnv,
    store: Store,
    stats: &'a mut Stats,
    signs: Option<&'a mut SplitMix>,
    orth: &'a mut f64,
}

impl Cx<'_> {
    /// A new `n × n` matrix value of element type `elem` before `before`; checks it is
    /// orthogonal.
    fn matrix(&mut self, before: Op, base: &str, n: usize, m: Vec<f64>, elem: Elem) -> Value {
        let e = orthogonality_error(&m, n);
        debug_assert!(e < 1e-9, "a built rotation is orthogonal ({e})");
        *self.orth = self.orth.max(e);
        let ty = TensorType::new(vec![n as i64, n as i64], elem);
        emit_tensor(self.f, self.env, self.store.weights, before, base, &ty, m)
    }

    /// `diag(s)·H_n/√n`, signs from the seed (none without one).
    fn signed_hadamard(&mut self, n: usize) -> Option<Vec<f64>> {
        let mut h = normalized_hadamard(n)?;
        if let Some(rng) = self.signs.as_deref_mut() {
            for i in 0..n {
                let s = rng.sign();
                for x in &mut h[i * n..(i + 1) * n] {
                    *x *= s;
                }
            }
        }
        Some(h)
    }

    /// Folds the gains of every residual stream, and rotates it when `rotate`.
    fn residual(&mut self, rotate: bool) -> Result<(), PassError> {
        let mut done: Vec<Value> = Vec::new();
        let mut index = 0;
        loop {
            let stream = self.find_stream(&done)?;
            let Some(root) = stream.root else {
                return Ok(());
            };
            done.extend(&stream.values);
            self.fold_gains(&stream)?;
            if rotate {
                let rotated = self.rotate_stream(&stream, root, index)?;
                done.push(rotated);
            }
            index += 1;
        }
    }

    /// The first residual stream whose values are not in `done`.
    fn find_stream(&self, done: &[Value]) -> Result<Stream, PassError> {
        let f = &*self.f;
        let users = Users::of(f);
        let mut candidates: Vec<Value> = f.params.clone();
        for &op in &f.body {
            candidates.extend(f.ops[op].results.iter().copied());
        }
        let is_norm = |op: Op, v: Value| {
            let d = &f.ops[op];
            matches!(
                d.opcode,
                Opcode::Graph(G::RmsNorm) | Opcode::Graph(G::LayerNorm)
            ) && d.args[0] == v
        };
        let root = candidates.into_iter().find(|&v| {
            !done.contains(&v)
                && f.ty(v).rank() >= 1
                && users.ops[v].iter().any(|&u| is_norm(u, v))
                && users.ops[v]
                    .iter()
                    .any(|&u| f.ops[u].opcode == Opcode::Graph(G::Add))
        });
        let Some(root) = root else {
            return Ok(Stream::default());
        };
        let mut s = Stream {
            root: Some(root),
            values: vec![root],
            ..Stream::default()
        };
        let width = f.ty(root).shape.last().copied();
        let mut i = 0;
        while i < s.values.len() {
            let v = s.values[i];
            i += 1;
            if users.rets[v] > 0 {
                s.rets.push(v);
            }
            for &u in &users.ops[v] {
                let d = &f.ops[u];
                match d.opcode {
                    Opcode::Graph(G::LayerNorm) => {
                        return Err(err(
                            f,
                            u,
                            "normalizes the residual stream, and LayerNorm subtracts the mean, \
                             which does not commute with a rotation (techniques.md §3.1); a \
                             zero-mean stream (mean baked into the writers) would make it an \
                             RMSNorm, which this pass does not do"
                                .to_string(),
                        ))
                    }
                    Opcode::Graph(G::RmsNorm) if d.args[0] == v => {
                        let rank = f.ty(v).rank() as i64;
                        if !matches!(d.attrs.int("axis"), Some(a) if a == -1 || a == rank - 1) {
                            return Err(err(
                                f,
                                u,
                                "normalizes more than the last axis of the residual stream"
                                    .to_string(),
                            ));
                        }
                        let h = f.result(u);
                        if users.rets[h] > 0 {
                            return Err(err(
                                f,
                                u,
                                "output is returned; a rotated residual norm must feed only \
                                 linears (R7, R8)"
                                    .to_string(),
                            ));
                        }
                        for &r in &users.ops[h] {
                            let rd = &f.ops[r];
                            if rd.opcode != Opcode::Graph(G::Linear) || rd.args[0] != h {
                                return Err(err(
                                    f,
                                    u,
                                    format!(
                                        "output feeds '{}', not only the input of linears: \
                                         the gain fold and the rotation need that (R7, R8)",
                                        rd.opcode.name()
                                    ),
                                ));
                            }
                            if rd.args[1..].contains(&h) {
                                return Err(err(
                                    f,
                                    r,
                                    "reads the norm output as a weight".to_string(),
                                ));
                            }
                            s.readers.push(r);
                        }
                        if d.args.len() > 1 {
                            s.gains.push(u);
                        }
                    }
                    Opcode::Graph(G::Add) => {
                        let other = if d.args[0] == v { d.args[1] } else { d.args[0] };
                        let lin = f
                            .def_op(other)
                            .filter(|&o| f.ops[o].opcode == Opcode::Graph(G::Linear));
                        let ok = lin.is_some()
                            && users.single_user(other) == Some(u)
                            && f.ty(other) == f.ty(f.result(u))
                            && f.ty(v) == f.ty(f.result(u))
                            && f.ty(other).shape.last().copied() == width;
                        if !ok {
                            return Err(err(
                                f,
                                u,
                                "adds to the residual stream a value that is not the single-use \
                                 output of a linear of the same type; the residual rotation \
                                 cannot rotate it"
                                    .to_string(),
                            ));
                        }
                        s.writers.push((u, other));
                        let out = f.result(u);
                        if !s.values.contains(&out) {
                            s.values.push(out);
                        }
                    }
                    _ => {
                        return Err(err(
                            f,
                            u,
                            "reads the residual stream, and only weightless rms_norm, add and \
                             return commute with the rotation"
                                .to_string(),
                        ))
                    }
                }
            }
        }
        Ok(s)
    }

    /// `fold-norm-gain`: `linear(rms_norm(x, γ), W) -> linear(rms_norm(x), W·diag(γ))`.
    fn fold_gains(&mut self, s: &Stream) -> Result<(), PassError> {
        for &norm in &s.gains {
            let gamma = self.f.ops[norm].args[1];
            let Some((g, _)) = tensor_of(self.f, gamma, self.env, false, "rotate")? else {
                return Err(err(
                    self.f,
                    norm,
                    "has a gain that is not a weight or constant; it cannot be folded (R7)"
                        .to_string(),
                ));
            };
            let h = self.f.result(norm);
            let users = Users::of(self.f);
            // Check every reader first so that a failure changes nothing.
            let mut plans = Vec::new();
            for &lin in &users.ops[h] {
                let w = self.f.ops[lin].args[1];
                let shape = self.f.ty(w).shape.clone();
                match tensor_of(self.f, w, self.env, false, "rotate")? {
                    Some((data, src)) if shape.len() == 2 && shape[1] as usize == g.len() => {
                        plans.push((lin, w, data, src))
                    }
                    _ => {
                        return Err(err(
                            self.f,
                            lin,
                            "has a weight that is not a 2-D graph.weight or graph.constant \
                             [out, in]; the norm gain cannot be folded into it (R7)"
                                .to_string(),
                        ))
                    }
                }
            }
            for (lin, w, mut data, src) in plans {
                let n = g.len();
                for row in data.chunks_mut(n) {
                    for (x, gi) in row.iter_mut().zip(&g) {
                        *x *= gi;
                    }
                }
                let ty = self.f.ty(w).clone();
                let base = match &src {
                    Src::Weight(name) => format!("{name}.gain"),
                    Src::Constant => String::new(),
                };
                let as_weight = matches!(src, Src::Weight(_));
                let nw = emit_tensor(self.f, self.env, as_weight, lin, &base, &ty, data);
                self.f.ops[lin].args[1] = nw;
                drop_if_dead(self.f, w);
                self.stats.bump("gains-folded");
            }
            self.f.ops[norm].args.truncate(1);
            drop_if_dead(self.f, gamma);
        }
        Ok(())
    }

    /// `rotate-residual` on the stream `s`; returns the rotated root.
    fn rotate_stream(&mut self, s: &Stream, root: Value, index: usize) -> Result<Value, PassError> {
        let ty = self.f.ty(root).clone();
        let n = *ty.shape.last().expect("rank >= 1") as usize;
        let anchor = self.f.body[0];
        let Some(r) = self.signed_hadamard(n) else {
            return Err(err(
                self.f,
                s.readers.first().copied().unwrap_or(anchor),
                format!(
                    "needs a Hadamard matrix of the model width {n}, which lowbit cannot build"
                ),
            ));
        };
        let rt = transpose(&r, n);
        let rv = self.matrix(anchor, &format!("rot.residual.{index}.r"), n, r, ty.elem);
        let anchor = self.f.body[1];
        let rtv = self.matrix(anchor, &format!("rot.residual.{index}.rt"), n, rt, ty.elem);
        let rotate = Opcode::Rot(R::Rotate);
        // The root, rotated once where it is defined.
        let root_rot = match self.f.def_op(root) {
            Some(def) => {
                let loc = self.f.ops[def].loc.clone();
                insert_after(
                    self.f,
                    def,
                    rotate,
                    vec![root, rv],
                    rot_attrs(-1),
                    ty.clone(),
                    loc,
                )
            }
            None => {
                let loc = self.f.loc.clone();
                self.f.insert_op_before(
                    self.f.body[2],
                    rotate,
                    vec![root, rv],
                    rot_attrs(-1),
                    vec![ty.clone()],
                    loc,
                )
            }
        };
        let rr = self.f.result(root_rot);
        self.f.replace_all_uses(root, rr);
        self.f.ops[root_rot].args[0] = root;
        self.stats.bump("residual-streams");
        for &lin in &s.readers {
            let h = self.f.ops[lin].args[0];
            let hty = self.f.ty(h).clone();
            let loc = self.f.ops[lin].loc.clone();
            let t =
                self.f
                    .insert_op_before(lin, rotate, vec![h, rtv], rot_attrs(-1), vec![hty], loc);
            self.f.ops[lin].args[0] = self.f.result(t);
            self.stats.bump("residual-rotations");
        }
        for &(add, t) in &s.writers {
            let loc = self.f.ops[add].loc.clone();
            let tty = self.f.ty(t).clone();
            let tr =
                self.f
                    .insert_op_before(add, rotate, vec![t, rv], rot_attrs(-1), vec![tty], loc);
            let trv = self.f.result(tr);
            for a in &mut self.f.ops[add].args {
                if *a == t {
                    *a = trv;
                }
            }
            self.stats.bump("residual-rotations");
        }
        for &v in &s.rets {
            let vty = self.f.ty(v).clone();
            let loc = self.f.loc.clone();
            let out = self
                .f
                .append_op(rotate, vec![v, rtv], rot_attrs(-1), vec![vty], loc);
            let ov = self.f.result(out);
            for r in &mut self.f.rets {
                if *r == v {
                    *r = ov;
                }
            }
            self.stats.bump("residual-rotations");
        }
        Ok(rr)
    }

    /// `rotate-attn-v`: `sdpa(q, k, v) -> rotate(sdpa(q, k, rotate(v, R₂)), R₂ᵀ)`.
    fn attn_v(&mut self) -> Result<(), PassError> {
        let sdpas: Vec<Op> = self
            .f
            .body
            .iter()
            .copied()
            .filter(|&op| self.f.ops[op].opcode == Opcode::Attn(A::Sdpa))
            .collect();
        for (i, op) in sdpas.into_iter().enumerate() {
            let v = self.f.ops[op].args[2];
            let vty = self.f.ty(v).clone();
            let n = *vty.shape.last().expect("sdpa operands have rank 4") as usize;
            let Some(r) = self.signed_hadamard(n) else {
                return Err(err(
                    self.f,
                    op,
                    format!("has value head dim {n}, which has no Hadamard matrix here"),
                ));
            };
            let rt = transpose(&r, n);
            let rv = self.matrix(op, &format!("rot.attn_v.{i}.r"), n, r, vty.elem);
            let rtv = self.matrix(op, &format!("rot.attn_v.{i}.rt"), n, rt, vty.elem);
            let loc = self.f.ops[op].loc.clone();
            let rotate = Opcode::Rot(R::Rotate);
            let vr = self.f.insert_op_before(
                op,
                rotate,
                vec![v, rv],
                rot_attrs(-1),
                vec![vty],
                loc.clone(),
            );
            self.f.ops[op].args[2] = self.f.result(vr);
            let out = self.f.result(op);
            let oty = self.f.ty(out).clone();
            let back = insert_after(self.f, op, rotate, vec![out, rtv], rot_attrs(-1), oty, loc);
            let bv = self.f.result(back);
            self.f.replace_all_uses(out, bv);
            self.f.ops[back].args[0] = out;
            self.stats.bump("attn-v");
        }
        Ok(())
    }

    /// `rotate-ffn-down` (`all = false`): `linear(m, W) -> linear(rotate(hadamard(m), Hᵀ), W)`
    /// for `m` the output of an elementwise product or activation (nothing upstream can
    /// absorb `H`); `rotate-linear-inputs` (`all = true`): the same for every linear whose
    /// input is not already such a `rotate`.
    fn online_inputs(&mut self, all: bool) -> Result<(), PassError> {
        let (point, counter) = if all {
            ("linear_in", "linears")
        } else {
            ("ffn_down", "ffn-down")
        };
        let lins: Vec<Op> = self
            .f
            .body
            .iter()
            .copied()
            .filter(|&op| {
                let d = &self.f.ops[op];
                if d.opcode != Opcode::Graph(G::Linear) {
                    return false;
                }
                let producer = self.f.def_op(d.args[0]).map(|p| self.f.ops[p].opcode);
                if all {
                    producer != Some(Opcode::Rot(R::Rotate))
                } else {
                    matches!(
                        producer,
                        Some(Opcode::Graph(G::Mul | G::Silu | G::Gelu | G::Relu))
                    )
                }
            })
            .collect();
        for (i, lin) in lins.into_iter().enumerate() {
            let m = self.f.ops[lin].args[0];
            let mty = self.f.ty(m).clone();
            let n = *mty.shape.last().expect("linear input has rank >= 1") as usize;
            let Some(h) = normalized_hadamard(n) else {
                return Err(err(
                    self.f,
                    lin,
                    format!("has input width {n}, which has no Hadamard matrix here"),
                ));
            };
            let ht = self.matrix(
                lin,
                &format!("rot.{point}.{i}.ht"),
                n,
                transpose(&h, n),
                mty.elem,
            );
            let loc = self.f.ops[lin].loc.clone();
            let hm = self.f.insert_op_before(
                lin,
                Opcode::Rot(R::Hadamard),
                vec![m],
                rot_attrs(-1),
                vec![mty.clone()],
                loc.clone(),
            );
            let hv = self.f.result(hm);
            let t = self.f.insert_op_before(
                lin,
                Opcode::Rot(R::Rotate),
                vec![hv, ht],
                rot_attrs(-1),
                vec![mty],
                loc,
            );
            self.f.ops[lin].args[0] = self.f.result(t);
            self.stats.bump(counter);
        }
        Ok(())
    }

    /// `rotate-kv`: `sdpa(q, k, v) -> sdpa(hadamard(q), hadamard(k), v)`.
    fn kv(&mut self) -> Result<(), PassError> {
        let sdpas: Vec<Op> = self
            .f
            .body
            .iter()
            .copied()
            .filter(|&op| self.f.ops[op].opcode == Opcode::Attn(A::Sdpa))
            .collect();
        for op in sdpas {
            let n = *self
                .f
                .ty(self.f.ops[op].args[0])
                .shape
                .last()
                .expect("rank 4") as usize;
            if normalized_hadamard(n).is_none() {
                return Err(err(
                    self.f,
                    op,
                    format!("has head dim {n}, which has no Hadamard matrix here"),
                ));
            }
            let loc = self.f.ops[op].loc.clone();
            for a in 0..2 {
                let x = self.f.ops[op].args[a];
                let ty = self.f.ty(x).clone();
                let h = self.f.insert_op_before(
                    op,
                    Opcode::Rot(R::Hadamard),
                    vec![x],
                    rot_attrs(-1),
                    vec![ty],
                    loc.clone(),
                );
                self.f.ops[op].args[a] = self.f.result(h);
            }
            self.stats.bump("kv");
        }
        Ok(())
    }
}

/// Removes the weight or constant op defining `v` when nothing uses `v` any more.
pub(crate) fn drop_if_dead(f: &mut Func, v: Value) {
    let Some(op) = f.def_op(v) else { return };
    if !matches!(
        f.ops[op].opcode,
        Opcode::Graph(G::Weight) | Opcode::Graph(G::Constant) | Opcode::Graph(G::Transpose)
    ) {
        return;
    }
    if f.use_counts()[v] == 0 {
        let arg = f.ops[op].args.first().copied();
        f.body.retain(|&o| o != op);
        if let Some(a) = arg {
            drop_if_dead(f, a);
        }
    }
}

/// A Llama-style block in IR text with random weights, shared by the tests of `rotate` and
/// `fold-rotations`.
#[cfg(test)]
pub(crate) mod block {
    use lowbit_dialects::interp::{run_func, Tensor, Weights};
    use lowbit_dialects::ir::{Elem, Func, Module, TensorType};

    use crate::pass::{Pass, PassEnv};
    use crate::testing::{module, Rng};

    /// Sizes: tokens, width, query heads, KV heads, head dim, FFN width.
    #[derive(Clone, Copy, Debug)]
    pub struct Dims {
        pub t: usize,
        pub d: usize,
        pub h: usize,
        pub hkv: usize,
        pub dh: usize,
        pub ff: usize,
    }

    pub const SMALL: Dims = Dims {
        t: 6,
        d: 16,
        h: 2,
        hkv: 1,
        dh: 8,
        ff: 32,
    };

    /// Non-power-of-two sizes (Paley Hadamard factors: 24 = 12·2, 12, 40 = 20·2).
    pub const PALEY: Dims = Dims {
        t: 5,
        d: 24,
        h: 2,
        hkv: 1,
        dh: 12,
        ff: 40,
    };

    /// RMSNorm(γ) → q/k/v → RoPE(q, k) → sdpa (GQA) → o_proj → add; RMSNorm(γ) → gate/up →
    /// SiLU·up → down → add. Weights are `graph.weight`s stored `[out, in]`, all f64.
    pub fn ir(dm: Dims) -> String {
        let Dims {
            t,
            d,
            h,
            hkv,
            dh,
            ff,
        } = dm;
        let (hd, kd, half) = (h * dh, hkv * dh, dh / 2);
        let ty = |s: &[usize]| {
            let dims: Vec<String> = s.iter().map(|x| x.to_string()).collect();
            format!("tensor<{}xf64>", dims.join("x"))
        };
        let x = ty(&[1, t, d]);
        let scale = 1.0 / (dh as f64).sqrt();
        format!(
            r#"func @block(%x: {x}, %cos: {cs}, %sin: {cs}) -> {x} {{
  %g1 = graph.weight {{name = "attn_norm"}} : {vd}
  %wq = graph.weight {{name = "wq"}} : {wq}
  %wk = graph.weight {{name = "wk"}} : {wk}
  %wv = graph.weight {{name = "wv"}} : {wk}
  %wo = graph.weight {{name = "wo"}} : {wo}
  %g2 = graph.weight {{name = "ffn_norm"}} : {vd}
  %wg = graph.weight {{name = "w_gate"}} : {wg}
  %wu = graph.weight {{name = "w_up"}} : {wg}
  %wd = graph.weight {{name = "w_down"}} : {wd}
  %h = graph.rms_norm %x, %g1 {{axis = -1 : i64, epsilon = 1.0e-6 : f64}} : {x}
  %q = graph.linear %h, %wq : {tq}
  %k = graph.linear %h, %wk : {tk}
  %v = graph.linear %h, %wv : {tk}
  %q1 = graph.reshape %q : {q1}
  %q2 = graph.transpose %q1 {{perm = array<i64: 0, 2, 1, 3>}} : {q2}
  %q3 = graph.rope %q2, %cos, %sin {{interleaved = false}} : {q2}
  %k1 = graph.reshape %k : {k1}
  %k2 = graph.transpose %k1 {{perm = array<i64: 0, 2, 1, 3>}} : {k2}
  %k3 = graph.rope %k2, %cos, %sin {{interleaved = false}} : {k2}
  %v1 = graph.reshape %v : {k1}
  %v2 = graph.transpose %v1 {{perm = array<i64: 0, 2, 1, 3>}} : {k2}
  %a = attn.sdpa %q3, %k3, %v2 {{causal = true, scale = {scale:e} : f64}} : {q2}
  %a1 = graph.transpose %a {{perm = array<i64: 0, 2, 1, 3>}} : {q1}
  %a2 = graph.reshape %a1 : {tq}
  %o = graph.linear %a2, %wo : {x}
  %r1 = graph.add %x, %o : {x}
  %h2 = graph.rms_norm %r1, %g2 {{axis = -1 : i64, epsilon = 1.0e-6 : f64}} : {x}
  %gt = graph.linear %h2, %wg : {tf}
  %up = graph.linear %h2, %wu : {tf}
  %s = graph.silu %gt : {tf}
  %m = graph.mul %s, %up : {tf}
  %dn = graph.linear %m, %wd : {x}
  %r2 = graph.add %r1, %dn : {x}
  return %r2
}}
"#,
            cs = ty(&[t, half]),
            vd = ty(&[d]),
            wq = ty(&[hd, d]),
            wk = ty(&[kd, d]),
            wo = ty(&[d, hd]),
            wg = ty(&[ff, d]),
            wd = ty(&[d, ff]),
            tq = ty(&[1, t, hd]),
            tk = ty(&[1, t, kd]),
            q1 = ty(&[1, t, h, dh]),
            q2 = ty(&[1, h, t, dh]),
            k1 = ty(&[1, t, hkv, dh]),
            k2 = ty(&[1, hkv, t, dh]),
            tf = ty(&[1, t, ff]),
        )
    }

    /// Where the outliers are: residual channels of `x` scaled by 50, one channel of V per
    /// KV head and channels of `up` scaled by 50 (through the rows of `wv` and `w_up`).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Outliers {
        pub residual: &'static [usize],
        pub v: &'static [usize],
        pub up: &'static [usize],
    }

    /// Weights (gains in [0.5, 1.5), linears uniform scaled by `1/√in`) and inputs (`x`
    /// standard-ish, RoPE tables of real angles) for `dm`, from `seed`.
    pub fn data(dm: Dims, seed: u64, out: Outliers) -> (Weights, Vec<Tensor>) {
        let mut rng = Rng(seed);
        let mut w = Weights::new();
        let mut mat = |rng: &mut Rng, name: &str, rows: usize, cols: usize, hot: &[usize]| {
            let s = (3.0 / cols as f64).sqrt();
            let mut data: Vec<f64> = (0..rows * cols).map(|_| s * rng.unit()).collect();
            for &r in hot {
                for x in &mut data[r * cols..(r + 1) * cols] {
                    *x *= 50.0;
                }
            }
            let ty = TensorType::new(vec![rows as i64, cols as i64], Elem::F64);
            w.insert(name.to_string(), Tensor::new(ty, data));
        };
        let (hd, kd) = (dm.h * dm.dh, dm.hkv * dm.dh);
        let vhot: Vec<usize> = (0..dm.hkv)
            .flat_map(|g| out.v.iter().map(move |&c| g * dm.dh + c))
            .collect();
        mat(&mut rng, "wq", hd, dm.d, &[]);
        mat(&mut rng, "wk", kd, dm.d, &[]);
        mat(&mut rng, "wv", kd, dm.d, &vhot);
        mat(&mut rng, "wo", dm.d, hd, &[]);
        mat(&mut rng, "w_gate", dm.ff, dm.d, &[]);
        mat(&mut rng, "w_up", dm.ff, dm.d, out.up);
        mat(&mut rng, "w_down", dm.d, dm.ff, &[]);
        for name in ["attn_norm", "ffn_norm"] {
            let g: Vec<f64> = (0..dm.d).map(|_| 1.0 + 0.5 * rng.unit()).collect();
            w.insert(
                name.to_string(),
                Tensor::new(TensorType::new(vec![dm.d as i64], Elem::F64), g),
            );
        }
        let mut x: Vec<f64> = (0..dm.t * dm.d).map(|_| 1.7 * rng.unit()).collect();
        for row in x.chunks_mut(dm.d) {
            for &c in out.residual {
                row[c] *= 50.0;
            }
        }
        let half = dm.dh / 2;
        let (mut cos, mut sin) = (Vec::new(), Vec::new());
        for p in 0..dm.t {
            for i in 0..half {
                let theta = p as f64 * 10000f64.powf(-(2.0 * i as f64) / dm.dh as f64);
                cos.push(theta.cos());
                sin.push(theta.sin());
            }
        }
        let t2 = TensorType::new(vec![dm.t as i64, half as i64], Elem::F64);
        let inputs = vec![
            Tensor::new(
                TensorType::new(vec![1, dm.t as i64, dm.d as i64], Elem::F64),
                x,
            ),
            Tensor::new(t2.clone(), cos),
            Tensor::new(t2, sin),
        ];
        (w, inputs)
    }

    /// Runs the pass `name{options}` on the only function of `m` with `env`.
    pub fn apply(
        m: &mut Module,
        env: &mut PassEnv,
        name: &str,
        options: &str,
    ) -> Result<crate::PassResult, crate::PassError> {
        let mut pass = configured(name, options).expect("options parse");
        let f: &mut Func = &mut m.funcs[0];
        let r = pass.run_with_env(f, env)?;
        lowbit_dialects::ir::verify::verify_module(m).expect("the result verifies");
        Ok(r)
    }

    /// The pass `name` configured with `options` (pipeline syntax, without braces).
    pub fn configured(name: &str, options: &str) -> Result<Box<dyn Pass>, crate::PipelineError> {
        let text = if options.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{options}}}")
        };
        let el = crate::pipeline::parse(&text)?.pop().expect("one element");
        let mut pass = (el.info.create)();
        pass.configure(&el.options)?;
        el.options.check_known()?;
        Ok(pass)
    }

    /// `max|a − b| / max|b|` over the outputs of `before` and `after`.
    pub fn rel_diff(
        before: &Module,
        wb: &Weights,
        after: &Module,
        wa: &Weights,
        inputs: &[Tensor],
    ) -> f64 {
        let ob = run_func(&before.funcs[0], inputs, wb).expect("before runs");
        let oa = run_func(&after.funcs[0], inputs, wa).expect("after runs");
        let mut worst: f64 = 0.0;
        for (b, a) in ob.iter().zip(&oa) {
            let scale = b.data.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let diff = b
                .data
                .iter()
                .zip(&a.data)
                .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
            worst = worst.max(diff / scale);
        }
        worst
    }

    /// The block of `dm` parsed.
    pub fn parsed(dm: Dims) -> Module {
        module(&ir(dm))
    }
}

#[cfg(test)]
mod tests {
    use super::block::{self, Outliers, PALEY, SMALL};
    use super::*;
    use crate::testing::print;

    /// `rotate{where=<point>}` on the block, for three seeds and both size sets: the function
    /// is unchanged to 1e-9 relative (float64, interpreter), and `counter` fired.
    fn exact(point: &str, counter: &str) {
        for dm in [SMALL, PALEY] {
            for seed in 0..3 {
                let before = block::parsed(dm);
                let (w, inputs) = block::data(dm, seed, Outliers::default());
                let mut after = before.clone();
                let mut env = PassEnv {
                    weights: w.clone(),
                    ..PassEnv::default()
                };
                let opts = format!("where={point} seed={seed}");
                let r = block::apply(&mut after, &mut env, "rotate", &opts).unwrap();
                assert!(
                    r.changed && r.stats.get(counter) > 0,
                    "{point}: {}",
                    r.stats
                );
                assert!(r.stats.get("orth-err-max-e18") < 1_000_000_000_000);
                let rel = block::rel_diff(&before, &w, &after, &env.weights, &inputs);
                assert!(rel <= 1e-9, "{point} {dm:?} seed {seed}: {rel:e}");
            }
        }
    }

    #[test]
    fn fold_norm_gain_is_exact() {
        exact("gains", "gains-folded");
        let mut m = block::parsed(SMALL);
        let (w, _) = block::data(SMALL, 0, Outliers::default());
        let mut env = PassEnv {
            weights: w,
            ..PassEnv::default()
        };
        let r = block::apply(&mut m, &mut env, "rotate", "where=gains").unwrap();
        assert_eq!(r.stats.get("gains-folded"), 5, "q, k, v, gate, up");
        let text = print(&m);
        assert!(!text.contains("%g1") || !text.contains("graph.rms_norm %x, %"));
        assert!(env.weights.contains_key("wq.gain") && env.weights_changed);
        // wq.gain = wq · diag(attn_norm), entry by entry.
        let (wq, g, wg) = (
            &env.weights["wq"],
            &env.weights["attn_norm"],
            &env.weights["wq.gain"],
        );
        for (i, (a, b)) in wq.data.iter().zip(&wg.data).enumerate() {
            assert_eq!(a * g.data[i % SMALL.d], *b);
        }
    }

    #[test]
    fn rotate_residual_is_exact() {
        exact("residual", "residual-rotations");
    }

    #[test]
    fn rotate_attn_v_is_exact() {
        exact("attn-v", "attn-v");
    }

    #[test]
    fn rotate_ffn_down_is_exact() {
        exact("ffn-down", "ffn-down");
    }

    #[test]
    fn rotate_linear_inputs_is_exact() {
        exact("linears", "linears");
    }

    #[test]
    fn rotate_kv_is_exact() {
        exact("kv", "kv");
    }

    #[test]
    fn rotate_all_is_exact() {
        exact("\"residual,attn-v,ffn-down,kv\"", "kv");
    }

    /// Layer 2's SSA names get an `l2_` prefix (its input `%x` becomes layer 1's `%r2`), its
    /// weight names an `l2.` prefix.
    fn second_layer(line: &str) -> String {
        let mut out = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '%' {
                let mut id = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_alphanumeric() || **d == '_') {
                    id.push(d);
                    chars.next();
                }
                match id.as_str() {
                    "x" => out.push_str("r2"),
                    "cos" | "sin" => out.push_str(&id),
                    _ => out.push_str(&format!("l2_{id}")),
                }
            }
        }
        out.replace("name = \"", "name = \"l2.")
    }

    #[test]
    fn two_layers_share_one_residual_rotation() {
        let one = block::ir(SMALL);
        let lines: Vec<&str> = one.lines().collect();
        let body = &lines[1..lines.len() - 2];
        let mut text = vec![lines[0].to_string()];
        text.extend(body.iter().map(|l| l.to_string()));
        text.extend(body.iter().map(|l| second_layer(l)));
        text.push("  return %l2_r2".to_string());
        text.push("}".to_string());
        let before = crate::testing::module(&text.join("\n"));
        let (mut w, inputs) = block::data(SMALL, 1, Outliers::default());
        let (w2, _) = block::data(SMALL, 2, Outliers::default());
        w.extend(w2.into_iter().map(|(k, v)| (format!("l2.{k}"), v)));
        let mut after = before.clone();
        let mut env = PassEnv {
            weights: w.clone(),
            ..PassEnv::default()
        };
        let r = block::apply(&mut after, &mut env, "rotate", "seed=5").unwrap();
        let s = &r.stats;
        assert_eq!(s.get("residual-streams"), 1, "{s}");
        // 10 readers, 4 writers, 1 return.
        assert_eq!(s.get("residual-rotations"), 15, "{s}");
        assert_eq!(s.get("gains-folded"), 10, "{s}");
        assert_eq!((s.get("attn-v"), s.get("ffn-down"), s.get("kv")), (2, 2, 2));
        let rel = block::rel_diff(&before, &w, &after, &env.weights, &inputs);
        assert!(rel <= 1e-9, "{rel:e}");
        let f = block::apply(&mut after, &mut env, "fold-rotations", "").unwrap();
        let fs = &f.stats;
        let folded = fs.get("folded-into-consumer") + fs.get("folded-into-producer");
        assert_eq!((folded, fs.get("kept-rotate")), (20, 2), "{fs}");
        let rel = block::rel_diff(&before, &w, &after, &env.weights, &inputs);
        assert!(rel <= 1e-9, "{rel:e}");
    }

    #[test]
    fn built_rotations_are_orthogonal() {
        for n in [2, 4, 8, 12, 16, 20, 24, 40, 64, 128] {
            let h = normalized_hadamard(n).unwrap();
            assert!(orthogonality_error(&h, n) < 1e-12, "{n}");
        }
        // The check is not vacuous: a scaled matrix fails it.
        let mut h = normalized_hadamard(8).unwrap();
        h[0] *= 1.001;
        assert!(orthogonality_error(&h, 8) > 1e-4);
    }

    #[test]
    fn layer_norm_stream_is_refused() {
        let src = block::ir(SMALL).replace(
            "graph.rms_norm %x, %g1 {axis = -1 : i64, epsilon = 1.0e-6 : f64}",
            "graph.layer_norm %x, %g1 {axis = -1 : i64, epsilon = 1.0e-6 : f64}",
        );
        let mut m = crate::testing::module(&src);
        let (w, _) = block::data(SMALL, 0, Outliers::default());
        let mut env = PassEnv {
            weights: w,
            ..PassEnv::default()
        };
        let before = m.clone();
        let e = block::apply(&mut m, &mut env, "rotate", "where=residual").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("graph.layer_norm") && text.contains("mean"),
            "{text}"
        );
        assert_eq!(m, before, "a refused rotation changes nothing");
    }

    #[test]
    fn missing_weights_are_an_error() {
        let mut m = block::parsed(SMALL);
        let mut env = PassEnv::default();
        let e = block::apply(&mut m, &mut env, "rotate", "").unwrap_err();
        assert!(e.to_string().contains("no weights were given"), "{e}");
        // kv needs no weights: the online Hadamards on Q and K are all it inserts.
        let r = block::apply(&mut m, &mut env, "rotate", "where=kv").unwrap();
        assert_eq!(r.stats.get("kv"), 1);
    }

    #[test]
    fn bad_options_are_rejected() {
        for opts in [
            "kind=random",
            "where=attention",
            "where=\"kv,bogus\"",
            "seed=x",
        ] {
            assert!(block::configured("rotate", opts).is_err(), "{opts}");
        }
        assert!(block::configured("rotate", "kind=hadamard where=\"kv,residual\" seed=3").is_ok());
    }
}
