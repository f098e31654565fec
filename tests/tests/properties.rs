//! Property tests for the text form.
//!
//! A generator builds random *well-typed* modules: random parameters (ranks 0–4, dims 1–5,
//! every element type), then random ops drawn from builders that each know how to make a
//! well-typed instance of one op from the op docs (broadcasting, GQA attention, every
//! quantization granularity, ...), with random attributes, locations and string contents.
//! For each module the verifier must accept it, and both text forms must round-trip
//! exactly: `parse(print(m)) == m` and `print(parse(print(m))) == print(m)`.
//!
//! The generic form must also be real MLIR: every chunk of every `tests/cases/**/*.mlir`
//! file that lowbit parses, and a sample of random modules, are printed generically with
//! locations and parsed by MLIR's own parser through melior.
//!
//! Inputs that crashed the fuzzer (`fuzz/`, target `parse`) live at the end as regression
//! cases, checked by the same function the fuzz target runs.
//!
//! The result types the builders declare are computed here, from the op docs, and not by
//! calling `lowbit_dialects::infer`: the generator is an independent oracle for inference.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use lowbit_dialects::ir::parse::parse_module;
use lowbit_dialects::ir::print::{print_module_with, PrintOptions};
use lowbit_dialects::ir::verify::verify_module;
use lowbit_dialects::ir::{Attr, Attrs, DenseAttr, Elem, Func, Loc, Module, TensorType, Value};
use lowbit_dialects::numeric::round_to;
use lowbit_dialects::{attn, graph, kernel, lowbit, rot, Opcode};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------------------
// Element type classes
// ---------------------------------------------------------------------------------------

/// Every float type.
const FLOATS: &[Elem] = &[
    Elem::F64,
    Elem::F32,
    Elem::F16,
    Elem::BF16,
    Elem::F8E4M3FN,
    Elem::F8E5M2,
    Elem::F4E2M1FN,
];
/// Float types that hold quantization scales and dequantized values.
const WIDE_FLOATS: &[Elem] = &[Elem::F64, Elem::F32, Elem::F16, Elem::BF16];
/// Types that arithmetic (`add`, `reduce sum`, ...) applies to.
const NUMERIC: &[Elem] = &[
    Elem::F64,
    Elem::F32,
    Elem::F16,
    Elem::BF16,
    Elem::F8E4M3FN,
    Elem::F8E5M2,
    Elem::F4E2M1FN,
    Elem::I64,
    Elem::I32,
    Elem::I16,
    Elem::UI16,
    Elem::I8,
    Elem::UI8,
    Elem::I4,
    Elem::UI4,
];
/// Types with a sign (`neg`, `relu`).
const SIGNED: &[Elem] = &[
    Elem::F64,
    Elem::F32,
    Elem::F16,
    Elem::BF16,
    Elem::F8E4M3FN,
    Elem::F8E5M2,
    Elem::F4E2M1FN,
    Elem::I64,
    Elem::I32,
    Elem::I16,
    Elem::I8,
    Elem::I4,
];
/// Quantized storage types: integer and float8/float4 results of `lowbit.quantize`.
const QTYPES: &[Elem] = &[
    Elem::I8,
    Elem::UI8,
    Elem::I4,
    Elem::UI4,
    Elem::I16,
    Elem::UI16,
    Elem::I32,
    Elem::F8E4M3FN,
    Elem::F8E5M2,
    Elem::F4E2M1FN,
];
/// Integer types of quantized matmul operands.
const QMM_INTS: &[Elem] = &[Elem::I8, Elem::UI8, Elem::I4, Elem::UI4];
/// 4-bit types that `lowbit.pack` packs.
const NIBBLES: &[Elem] = &[Elem::I4, Elem::UI4, Elem::F4E2M1FN];
/// Index types (`gather`, `codebook`).
const INDEX: &[Elem] = &[Elem::I64, Elem::I32, Elem::UI8, Elem::UI4, Elem::I8];
/// Mask types: float (additive) or `i1` (keep).
const MASKS: &[Elem] = &[Elem::F32, Elem::F16, Elem::BF16, Elem::F64, Elem::I1];
/// Hadamard sizes: powers of two and `12 · 2^m` (Paley, `q = 11`).
const HADAMARD_SIZES: &[i64] = &[2, 4, 8, 16, 12, 24];

// ---------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------

/// Numpy broadcasting; panics when the shapes do not broadcast (a generator bug).
fn bcast(a: &[i64], b: &[i64]) -> Vec<i64> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let da = if i + a.len() >= n {
                a[i + a.len() - n]
            } else {
                1
            };
            let db = if i + b.len() >= n {
                b[i + b.len() - n]
            } else {
                1
            };
            match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => panic!("generator bug: {a:?} and {b:?} do not broadcast"),
            }
        })
        .collect()
}

/// Normalizes an axis of rank `r`.
fn norm_axis(axis: i64, r: usize) -> usize {
    (if axis < 0 { axis + r as i64 } else { axis }) as usize
}

/// Number of elements numpy's `x[start:end:step]` takes from a dim of size `d`.
fn slice_len(d: i64, start: i64, end: i64, step: i64) -> i64 {
    let clamp = |i: i64, lo: i64, hi: i64| {
        let i = if i < 0 { i.saturating_add(d) } else { i };
        i.clamp(lo, hi)
    };
    if step > 0 {
        let (s, e) = (clamp(start, 0, d), clamp(end, 0, d));
        if s < e {
            (e - s + step - 1) / step
        } else {
            0
        }
    } else {
        let (s, e) = (clamp(start, -1, d - 1), clamp(end, -1, d - 1));
        if e < s {
            (s - e - 1) / (-step) + 1
        } else {
            0
        }
    }
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

// ---------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------

/// Builds one random function.
struct Gen {
    rng: ChaCha8Rng,
    f: Func,
}

/// A builder adds one op (and whatever leaves its operands need); `None` when it could
/// not make one this time.
type Builder = fn(&mut Gen) -> Option<()>;

/// Characters that string attributes and locations are made of: quotes, backslashes,
/// comment and brace look-alikes, control characters and multi-byte UTF-8.
const STRING_CHARS: &[char] = &[
    'a', 'b', 'z', 'Q', '0', '9', '_', '.', '-', ' ', '"', '\\', '\n', '\t', '\r', '\0', '\x01',
    '\x1b', '\x7f', '/', '{', '}', '(', ')', '[', ']', ':', '%', '@', '#', '<', '>', ',', '=', 'é',
    'ß', '→', '∑', '漢', '𝔘', '😀', '\u{feff}', '\u{200b}',
];

impl Gen {
    fn new(seed: u64, name: &str, n_params: usize) -> Gen {
        let mut g = Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            f: Func::new(name, &[]),
        };
        for _ in 0..n_params {
            let ty = g.any_type(Elem::ALL, 0, 4);
            g.param(ty);
        }
        g.f.loc = g.loc(2);
        g
    }

    fn coin(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn dim(&mut self) -> i64 {
        self.rng.gen_range(1..=5)
    }

    fn elem(&mut self, set: &[Elem]) -> Elem {
        *set.choose(&mut self.rng).expect("a non-empty set")
    }

    fn shape(&mut self, lo: usize, hi: usize) -> Vec<i64> {
        let r = self.rng.gen_range(lo..=hi);
        (0..r).map(|_| self.dim()).collect()
    }

    fn any_type(&mut self, elems: &[Elem], lo: usize, hi: usize) -> TensorType {
        let s = self.shape(lo, hi);
        TensorType::new(s, self.elem(elems))
    }

    /// An axis of rank `r` (`r > 0`), spelled negative half the time.
    fn axis(&mut self, r: usize) -> i64 {
        let a = self.rng.gen_range(0..r as i64);
        if self.coin(0.5) {
            a - r as i64
        } else {
            a
        }
    }

    fn string(&mut self) -> String {
        let n = self.rng.gen_range(0..12);
        (0..n)
            .map(|_| *STRING_CHARS.choose(&mut self.rng).expect("chars"))
            .collect()
    }

    fn loc(&mut self, depth: u32) -> Loc {
        let k = self.rng.gen_range(0..if depth == 0 { 3 } else { 5 });
        match k {
            0 => Loc::Unknown,
            1 => Loc::File {
                file: self.string(),
                line: if self.coin(0.1) {
                    u32::MAX
                } else {
                    self.rng.gen_range(0..1000)
                },
                col: self.rng.gen_range(0..200),
            },
            2 => Loc::name(self.string()),
            3 => Loc::Name {
                name: self.string(),
                child: Some(Box::new(self.loc(depth - 1))),
            },
            _ => {
                let n = self.rng.gen_range(1..=3);
                Loc::Fused((0..n).map(|_| self.loc(depth - 1)).collect())
            }
        }
    }

    /// A float attribute value: exact in `f32` (or `f64`), sometimes infinite.
    fn float_attr(&mut self) -> Attr {
        let v = match self.rng.gen_range(0..6) {
            0 => 0.125,
            1 => 1e-5,
            2 => -0.0,
            3 => f64::INFINITY,
            _ => self.rng.gen_range(-100.0f32..100.0) as f64,
        };
        if self.coin(0.8) {
            Attr::Float(v as f32 as f64, Elem::F32)
        } else {
            Attr::Float(v + self.rng.gen_range(0.0..1e-9), Elem::F64)
        }
    }

    /// An epsilon: non-negative (the norms and linear attention require it).
    fn eps_attr(&mut self) -> Attr {
        match self.float_attr() {
            Attr::Float(v, ty) if v.is_finite() => Attr::Float(v.abs(), ty),
            _ => Attr::Float(1e-6f32 as f64, Elem::F32),
        }
    }

    /// An element value exactly representable in `elem`.
    fn elem_value(&mut self, elem: Elem) -> f64 {
        if let Some((lo, hi)) = elem.int_range() {
            let (lo, hi) = (lo.max(-(1 << 53)), hi.min(1 << 53));
            return match self.rng.gen_range(0..5) {
                0 => lo as f64,
                1 => hi as f64,
                _ => self.rng.gen_range(lo.max(-20)..=hi.min(20)) as f64,
            };
        }
        let v = match self.rng.gen_range(0..10) {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2 => 1e300,
            3 => -0.0,
            4 => 2f64.powi(-20),
            _ => self.rng.gen_range(-50.0..50.0),
        };
        // Types without infinities keep their largest finite value instead.
        round_to(v, elem)
    }

    fn dense(&mut self, ty: &TensorType) -> DenseAttr {
        let n = ty.num_elements();
        let values = if n > 1 && self.coin(0.2) {
            vec![self.elem_value(ty.elem); n]
        } else {
            (0..n).map(|_| self.elem_value(ty.elem)).collect()
        };
        DenseAttr {
            ty: ty.clone(),
            values: Some(values),
        }
    }

    fn param(&mut self, ty: TensorType) -> Value {
        let i = self.f.params.len() as u32;
        let v = self.f.values.push(lowbit_dialects::ir::ValueData {
            ty,
            def: lowbit_dialects::ir::ValueDef::Param(i),
        });
        self.f.params.push(v);
        v
    }

    fn ty(&self, v: Value) -> TensorType {
        self.f.ty(v).clone()
    }

    /// Appends an op with a random location and returns its results.
    fn emit(
        &mut self,
        op: Opcode,
        args: Vec<Value>,
        attrs: Attrs,
        tys: Vec<TensorType>,
    ) -> Vec<Value> {
        let loc = self.loc(2);
        let op = self.f.append_op(op, args, attrs, tys, loc);
        self.f.ops[op].results.clone()
    }

    fn emit1(&mut self, op: Opcode, args: Vec<Value>, attrs: Attrs, ty: TensorType) -> Value {
        self.emit(op, args, attrs, vec![ty])[0]
    }

    /// A fresh value of type `ty`: a parameter, a weight or (when small) a constant.
    fn leaf(&mut self, ty: TensorType) -> Value {
        match self.rng.gen_range(0..10) {
            0..=2 => self.param(ty),
            3..=5 => self.weight(ty),
            _ if ty.num_elements() <= 32 => self.constant(ty),
            _ => self.weight(ty),
        }
    }

    fn weight(&mut self, ty: TensorType) -> Value {
        // Weights are named references: the name is never empty.
        let name = format!("w{}", self.string());
        let attrs = Attrs::new().with("name", Attr::Str(name));
        self.emit1(Opcode::Graph(graph::Op::Weight), vec![], attrs, ty)
    }

    fn constant(&mut self, ty: TensorType) -> Value {
        let d = self.dense(&ty);
        let attrs = Attrs::new().with("value", Attr::Dense(d));
        self.emit1(Opcode::Graph(graph::Op::Constant), vec![], attrs, ty)
    }

    /// An existing value satisfying `pred`, preferring recent ones.
    fn pick(&mut self, pred: impl Fn(&TensorType) -> bool) -> Option<Value> {
        let cands: Vec<Value> = self
            .f
            .values
            .keys()
            .filter(|&v| pred(self.f.ty(v)))
            .collect();
        if cands.is_empty() {
            return None;
        }
        let recent = &cands[cands.len().saturating_sub(6)..];
        let pool = if self.coin(0.6) { recent } else { &cands[..] };
        pool.choose(&mut self.rng).copied()
    }

    /// A value of exactly `ty`: an existing one sometimes, otherwise a leaf.
    fn value(&mut self, ty: TensorType) -> Value {
        if self.coin(0.4) {
            if let Some(v) = self.pick(|t| *t == ty) {
                return v;
            }
        }
        self.leaf(ty)
    }

    /// An operand satisfying `pred`: mostly an existing value (so ops chain), otherwise a
    /// leaf of the type `make` builds (which must satisfy `pred`).
    fn input(
        &mut self,
        pred: impl Fn(&TensorType) -> bool,
        make: impl FnOnce(&mut Gen) -> TensorType,
    ) -> Value {
        if self.coin(0.8) {
            if let Some(v) = self.pick(&pred) {
                return v;
            }
        }
        let ty = make(self);
        assert!(
            pred(&ty),
            "generator bug: made {ty}, which its own predicate rejects"
        );
        self.leaf(ty)
    }

    /// An operand with an element type in `elems` and a rank in `lo..=hi`.
    fn input_of(&mut self, elems: &'static [Elem], lo: usize, hi: usize) -> Value {
        self.input(
            |t| elems.contains(&t.elem) && (lo..=hi).contains(&t.rank()),
            |g| g.any_type(elems, lo, hi),
        )
    }

    /// A shape of rank `rank` that broadcasts with `s`: aligned dims are equal or 1 on
    /// either side (where `s` has 1, any size).
    fn partner(&mut self, s: &[i64], rank: usize) -> Vec<i64> {
        (0..rank)
            .map(|i| {
                let from_right = rank - i;
                if from_right <= s.len() {
                    let d = s[s.len() - from_right];
                    if d == 1 {
                        if self.coin(0.5) {
                            self.dim()
                        } else {
                            1
                        }
                    } else if self.coin(0.25) {
                        1
                    } else {
                        d
                    }
                } else {
                    self.dim()
                }
            })
            .collect()
    }

    /// A shape that broadcasts *into* `s` without growing it (each dim equal or 1, rank at
    /// most `s`'s and at least `min_rank`).
    fn sub_broadcast(&mut self, s: &[i64], min_rank: usize) -> Vec<i64> {
        let r = self.rng.gen_range(min_rank.min(s.len())..=s.len());
        s[s.len() - r..]
            .iter()
            .map(|&d| if self.coin(0.3) { 1 } else { d })
            .collect()
    }

    /// Random sizes that add up to `total` (at most `max_parts` of them).
    fn partition(&mut self, total: i64, max_parts: usize) -> Vec<i64> {
        let parts = self.rng.gen_range(1..=max_parts.min(total as usize));
        let mut cuts: Vec<i64> = (1..total).collect();
        cuts.shuffle(&mut self.rng);
        let mut cuts: Vec<i64> = cuts.into_iter().take(parts - 1).collect();
        cuts.sort();
        let mut out = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([total]) {
            out.push(c - prev);
            prev = c;
        }
        out
    }

    /// A random shape with `n` elements and rank `0..=4` (rank 0 only when `n == 1`).
    fn factor_shape(&mut self, n: i64) -> Vec<i64> {
        let mut primes = Vec::new();
        let mut m = n;
        let mut p = 2;
        while m > 1 {
            while m % p == 0 {
                primes.push(p);
                m /= p;
            }
            p += 1;
        }
        let rank = self.rng.gen_range(usize::from(n > 1)..=4);
        let mut s = vec![1; rank];
        for p in primes {
            let i = self.rng.gen_range(0..rank);
            s[i] *= p;
        }
        s
    }
}

// ---------------------------------------------------------------------------------------
// Builders: graph
// ---------------------------------------------------------------------------------------

fn g(op: graph::Op) -> Opcode {
    Opcode::Graph(op)
}

fn unary(gen: &mut Gen, op: graph::Op, elems: &'static [Elem]) -> Option<()> {
    let x = gen.input_of(elems, 0, 4);
    let ty = gen.ty(x);
    let mut attrs = Attrs::new();
    if op == graph::Op::Gelu && gen.coin(0.5) {
        let a = if gen.coin(0.5) { "none" } else { "tanh" };
        attrs.set("approximate", Attr::Str(a.into()));
    }
    gen.emit1(g(op), vec![x], attrs, ty);
    Some(())
}

fn binary(gen: &mut Gen, op: graph::Op, elems: &'static [Elem]) -> Option<()> {
    broadcast_pair(gen, op, elems, None)
}

/// A comparison: operands of any one element type, broadcast; an `i1` result.
fn compare(gen: &mut Gen, op: graph::Op) -> Option<()> {
    broadcast_pair(gen, op, Elem::ALL, Some(Elem::I1))
}

/// Two operands of one element type from `elems`, broadcast against each other in either
/// order; the result has their element type, or `result` when given.
fn broadcast_pair(
    gen: &mut Gen,
    op: graph::Op,
    elems: &'static [Elem],
    result: Option<Elem>,
) -> Option<()> {
    let x = gen.input_of(elems, 0, 4);
    let tx = gen.ty(x);
    let r = gen.rng.gen_range(0..=4);
    let s = gen.partner(&tx.shape, r);
    let y = gen.value(TensorType::new(s.clone(), tx.elem));
    let out = TensorType::new(bcast(&tx.shape, &s), result.unwrap_or(tx.elem));
    let args = if gen.coin(0.5) {
        vec![x, y]
    } else {
        vec![y, x]
    };
    gen.emit1(g(op), args, Attrs::new(), out);
    Some(())
}

fn matmul(gen: &mut Gen) -> Option<()> {
    let lhs = gen.input_of(FLOATS, 1, 4);
    let t = gen.ty(lhs);
    let k = *t.shape.last()?;
    let (rhs_shape, out) = if gen.coin(0.15) {
        // `[.., K] · [K]`: the contraction drops both.
        (vec![k], t.shape[..t.rank() - 1].to_vec())
    } else {
        let n = gen.dim();
        let batch = &t.shape[..t.rank().saturating_sub(2)];
        let r = gen.rng.gen_range(0..=2usize);
        let rb = gen.partner(batch, r);
        let mut rhs = rb.clone();
        rhs.extend([k, n]);
        let mut out = bcast(batch, &rb);
        if t.rank() >= 2 {
            out.push(t.shape[t.rank() - 2]);
        }
        out.push(n);
        (rhs, out)
    };
    let rhs = gen.value(TensorType::new(rhs_shape, t.elem));
    gen.emit1(
        g(graph::Op::MatMul),
        vec![lhs, rhs],
        Attrs::new(),
        TensorType::new(out, t.elem),
    );
    Some(())
}

fn linear(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(FLOATS, 1, 4);
    let t = gen.ty(x);
    let din = *t.shape.last()?;
    let dout = gen.dim();
    let w = gen.value(TensorType::new([dout, din], t.elem));
    let mut args = vec![x, w];
    if gen.coin(0.5) {
        args.push(gen.value(TensorType::new([dout], t.elem)));
    }
    let mut out = t.shape.clone();
    *out.last_mut()? = dout;
    gen.emit1(
        g(graph::Op::Linear),
        args,
        Attrs::new(),
        TensorType::new(out, t.elem),
    );
    Some(())
}

fn softmax(gen: &mut Gen, op: graph::Op) -> Option<()> {
    let x = gen.input_of(FLOATS, 1, 4);
    let t = gen.ty(x);
    let attrs = Attrs::new().with("axis", Attr::Int(gen.axis(t.rank())));
    gen.emit1(g(op), vec![x], attrs, t);
    Some(())
}

fn norm(gen: &mut Gen, op: graph::Op) -> Option<()> {
    let x = gen.input_of(FLOATS, 1, 4);
    let t = gen.ty(x);
    let axis = gen.axis(t.rank());
    let normalized = TensorType::new(t.shape[norm_axis(axis, t.rank())..].to_vec(), t.elem);
    let mut args = vec![x];
    if gen.coin(0.7) {
        args.push(gen.value(normalized.clone()));
        if op == graph::Op::LayerNorm && gen.coin(0.6) {
            args.push(gen.value(normalized));
        }
    }
    let eps = gen.eps_attr();
    let attrs = Attrs::new()
        .with("axis", Attr::Int(axis))
        .with("epsilon", eps);
    gen.emit1(g(op), args, attrs, t);
    Some(())
}

fn reduce(gen: &mut Gen) -> Option<()> {
    let kind = *["sum", "mean", "max"].choose(&mut gen.rng)?;
    let elems = if kind == "mean" { FLOATS } else { NUMERIC };
    let x = gen.input_of(elems, 1, 4);
    let t = gen.ty(x);
    let mut dims: Vec<usize> = (0..t.rank()).collect();
    dims.shuffle(&mut gen.rng);
    dims.truncate(gen.rng.gen_range(1..=t.rank()));
    let axes: Vec<i64> = dims
        .iter()
        .map(|&a| {
            if gen.coin(0.3) {
                a as i64 - t.rank() as i64
            } else {
                a as i64
            }
        })
        .collect();
    let keepdims = gen.coin(0.5);
    let out: Vec<i64> = (0..t.rank())
        .filter_map(|i| match (dims.contains(&i), keepdims) {
            (false, _) => Some(t.shape[i]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let attrs = Attrs::new()
        .with("kind", Attr::Str(kind.into()))
        .with("axes", Attr::Ints(axes))
        .with("keepdims", Attr::Bool(keepdims));
    gen.emit1(
        g(graph::Op::Reduce),
        vec![x],
        attrs,
        TensorType::new(out, t.elem),
    );
    Some(())
}

fn transpose(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(Elem::ALL, 1, 4);
    let t = gen.ty(x);
    let mut perm: Vec<usize> = (0..t.rank()).collect();
    perm.shuffle(&mut gen.rng);
    let out: Vec<i64> = perm.iter().map(|&p| t.shape[p]).collect();
    let perm = perm.into_iter().map(|p| p as i64).collect();
    let attrs = Attrs::new().with("perm", Attr::Ints(perm));
    gen.emit1(
        g(graph::Op::Transpose),
        vec![x],
        attrs,
        TensorType::new(out, t.elem),
    );
    Some(())
}

fn reshape(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(Elem::ALL, 0, 4);
    let t = gen.ty(x);
    let out = gen.factor_shape(t.num_elements() as i64);
    gen.emit1(
        g(graph::Op::Reshape),
        vec![x],
        Attrs::new(),
        TensorType::new(out, t.elem),
    );
    Some(())
}

fn concat(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(Elem::ALL, 1, 4);
    let t = gen.ty(x);
    let axis = gen.axis(t.rank());
    let a = norm_axis(axis, t.rank());
    let mut args = vec![x];
    for _ in 0..gen.rng.gen_range(0..=3) {
        let mut s = t.shape.clone();
        s[a] = gen.dim();
        args.push(gen.value(TensorType::new(s, t.elem)));
    }
    args.shuffle(&mut gen.rng);
    let mut out = t.shape.clone();
    out[a] = args.iter().map(|&v| gen.f.ty(v).shape[a]).sum();
    let attrs = Attrs::new().with("axis", Attr::Int(axis));
    gen.emit1(
        g(graph::Op::Concat),
        args,
        attrs,
        TensorType::new(out, t.elem),
    );
    Some(())
}

fn split(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(Elem::ALL, 1, 4);
    let t = gen.ty(x);
    let axis = gen.axis(t.rank());
    let a = norm_axis(axis, t.rank());
    let tys = gen
        .partition(t.shape[a], 4)
        .into_iter()
        .map(|n| {
            let mut s = t.shape.clone();
            s[a] = n;
            TensorType::new(s, t.elem)
        })
        .collect();
    let attrs = Attrs::new().with("axis", Attr::Int(axis));
    gen.emit(g(graph::Op::Split), vec![x], attrs, tys);
    Some(())
}

fn slice(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(Elem::ALL, 1, 4);
    let t = gen.ty(x);
    let (mut starts, mut ends, mut steps, mut out) = (vec![], vec![], vec![], vec![]);
    for &d in &t.shape {
        let (mut s, mut e, mut st, mut n) = (0, d, 1, d);
        for _ in 0..8 {
            st = *[1, 1, 2, 3, -1, -2].choose(&mut gen.rng)?;
            s = gen.rng.gen_range(-d - 2..=d + 2);
            e = match gen.rng.gen_range(0..8) {
                0 if st > 0 => i64::MAX,
                0 => i64::MIN,
                _ => gen.rng.gen_range(-d - 2..=d + 2),
            };
            n = slice_len(d, s, e, st);
            if n > 0 {
                break;
            }
        }
        if n == 0 {
            (s, e, st, n) = (0, d, 1, d);
        }
        starts.push(s);
        ends.push(e);
        steps.push(st);
        out.push(n);
    }
    let mut attrs = Attrs::new()
        .with("starts", Attr::Ints(starts))
        .with("ends", Attr::Ints(ends));
    if steps.iter().any(|&s| s != 1) || gen.coin(0.3) {
        attrs.set("steps", Attr::Ints(steps));
    }
    gen.emit1(
        g(graph::Op::Slice),
        vec![x],
        attrs,
        TensorType::new(out, t.elem),
    );
    Some(())
}

fn gather(gen: &mut Gen) -> Option<()> {
    let data = gen.input_of(Elem::ALL, 1, 4);
    let t = gen.ty(data);
    let axis = gen.axis(t.rank());
    let a = norm_axis(axis, t.rank());
    let it = gen.any_type(&[Elem::I64, Elem::I32], 0, 2);
    let idx = gen.value(it.clone());
    let mut out = t.shape[..a].to_vec();
    out.extend(&it.shape);
    out.extend(&t.shape[a + 1..]);
    let attrs = Attrs::new().with("axis", Attr::Int(axis));
    gen.emit1(
        g(graph::Op::Gather),
        vec![data, idx],
        attrs,
        TensorType::new(out, t.elem),
    );
    Some(())
}

fn select(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(Elem::ALL, 0, 4);
    let t = gen.ty(x);
    let r = gen.rng.gen_range(0..=4);
    let cs = gen.partner(&t.shape, r);
    let b = bcast(&t.shape, &cs);
    let r = gen.rng.gen_range(0..=4);
    let rs = gen.partner(&b, r);
    let out = bcast(&b, &rs);
    let cond = gen.value(TensorType::new(cs, Elem::I1));
    let other = gen.value(TensorType::new(rs, t.elem));
    let args = if gen.coin(0.5) {
        vec![cond, x, other]
    } else {
        vec![cond, other, x]
    };
    gen.emit1(
        g(graph::Op::Select),
        args,
        Attrs::new(),
        TensorType::new(out, t.elem),
    );
    Some(())
}

fn cast(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(Elem::ALL, 0, 4);
    let to = gen.elem(Elem::ALL);
    let out = gen.ty(x).with_elem(to);
    gen.emit1(g(graph::Op::Cast), vec![x], Attrs::new(), out);
    Some(())
}

fn rope(gen: &mut Gen) -> Option<()> {
    let x = gen.input(
        |t| FLOATS.contains(&t.elem) && t.rank() >= 1 && t.shape[t.rank() - 1] % 2 == 0,
        |g| {
            let mut t = g.any_type(FLOATS, 1, 4);
            *t.shape.last_mut().expect("rank >= 1") = 2 * g.rng.gen_range(1..=3);
            t
        },
    );
    let t = gen.ty(x);
    let mut half = t.shape.clone();
    *half.last_mut()? /= 2;
    let cs = gen.sub_broadcast(&half, 1);
    let mut cs_last = cs.clone();
    // The frequency dim itself does not broadcast.
    *cs_last.last_mut()? = *half.last()?;
    let cos = gen.value(TensorType::new(cs_last.clone(), t.elem));
    let sin = gen.value(TensorType::new(cs_last, t.elem));
    let attrs = Attrs::new().with("interleaved", Attr::Bool(gen.coin(0.5)));
    gen.emit1(g(graph::Op::Rope), vec![x, cos, sin], attrs, t);
    Some(())
}

fn causal_mask(gen: &mut Gen) -> Option<()> {
    let ty = gen.any_type(MASKS, 2, 4);
    gen.emit1(g(graph::Op::CausalMask), vec![], Attrs::new(), ty);
    Some(())
}

fn padding_mask(gen: &mut Gen) -> Option<()> {
    let keep = gen.input(
        |t| t.rank() == 2 && [Elem::I1, Elem::I64, Elem::I32, Elem::F32].contains(&t.elem),
        |g| g.any_type(&[Elem::I1, Elem::I64, Elem::I32, Elem::F32], 2, 2),
    );
    let t = gen.ty(keep);
    let elem = gen.elem(MASKS);
    let out = TensorType::new([t.shape[0], 1, 1, t.shape[1]], elem);
    gen.emit1(g(graph::Op::PaddingMask), vec![keep], Attrs::new(), out);
    Some(())
}

fn weight_op(gen: &mut Gen) -> Option<()> {
    let ty = gen.any_type(Elem::ALL, 0, 4);
    gen.weight(ty);
    Some(())
}

fn constant_op(gen: &mut Gen) -> Option<()> {
    let ty = gen.any_type(Elem::ALL, 0, 3);
    gen.constant(ty);
    Some(())
}

// ---------------------------------------------------------------------------------------
// Builders: lowbit
// ---------------------------------------------------------------------------------------

fn lb(op: lowbit::Op) -> Opcode {
    Opcode::Lowbit(op)
}

/// Quantization parameters for an operand of shape `s`: the attributes and the scale
/// shape, per tensor, per axis or per block.
fn granularity(gen: &mut Gen, s: &[i64]) -> (Attrs, Vec<i64>) {
    let kind = if s.is_empty() {
        0
    } else {
        gen.rng.gen_range(0..3)
    };
    match kind {
        0 => (Attrs::new(), vec![]),
        1 => {
            let axis = gen.axis(s.len());
            let d = s[norm_axis(axis, s.len())];
            (Attrs::new().with("axis", Attr::Int(axis)), vec![d])
        }
        _ => {
            let axis = gen.axis(s.len());
            let a = norm_axis(axis, s.len());
            let block = gen.rng.gen_range(1..=s[a] + 1);
            let mut scale = s.to_vec();
            scale[a] = ceil_div(s[a], block);
            let attrs = Attrs::new()
                .with("axis", Attr::Int(axis))
                .with("block_size", Attr::Int(block));
            (attrs, scale)
        }
    }
}

fn quantize(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(WIDE_FLOATS, 0, 4);
    let t = gen.ty(x);
    let (attrs, ss) = granularity(gen, &t.shape);
    let to = gen.elem(QTYPES);
    let scale = gen.value(TensorType::new(ss.clone(), t.elem));
    let mut args = vec![x, scale];
    if to.is_int() && gen.coin(0.5) {
        args.push(gen.value(TensorType::new(ss, to)));
    }
    gen.emit1(lb(lowbit::Op::Quantize), args, attrs, t.with_elem(to));
    Some(())
}

fn dequantize(gen: &mut Gen) -> Option<()> {
    let q = gen.input_of(QTYPES, 0, 4);
    let t = gen.ty(q);
    let (attrs, ss) = granularity(gen, &t.shape);
    let to = gen.elem(WIDE_FLOATS);
    let scale_ty = TensorType::new(ss.clone(), to);
    let scale = if gen.coin(0.25) {
        // Two-level: the scales are themselves dequantized from 8-bit codes.
        let code_elem = gen.elem(&[Elem::UI8, Elem::I8, Elem::F8E4M3FN]);
        let codes = gen.value(scale_ty.with_elem(code_elem));
        let (inner_attrs, inner_ss) = granularity(gen, &ss);
        let inner_scale = gen.value(TensorType::new(inner_ss, to));
        gen.emit1(
            lb(lowbit::Op::Dequantize),
            vec![codes, inner_scale],
            inner_attrs,
            scale_ty,
        )
    } else {
        gen.value(scale_ty)
    };
    let mut args = vec![q, scale];
    if t.elem.is_int() && gen.coin(0.5) {
        args.push(gen.value(TensorType::new(ss, t.elem)));
    }
    gen.emit1(lb(lowbit::Op::Dequantize), args, attrs, t.with_elem(to));
    Some(())
}

fn qmatmul(gen: &mut Gen) -> Option<()> {
    let lhs = gen.input_of(QMM_INTS, 2, 3);
    let t = gen.ty(lhs);
    let (m, k) = (t.shape[t.rank() - 2], t.shape[t.rank() - 1]);
    let n = gen.dim();
    let rhs_elem = gen.elem(QMM_INTS);
    let rhs = gen.value(TensorType::new([k, n], rhs_elem));
    let ls = if gen.coin(0.5) { vec![] } else { vec![m, 1] };
    let rs = if gen.coin(0.5) { vec![] } else { vec![n] };
    let lhs_scale = gen.value(TensorType::new(ls, Elem::F32));
    let rhs_scale = gen.value(TensorType::new(rs, Elem::F32));
    let mut args = vec![lhs, rhs, lhs_scale, rhs_scale];
    if gen.coin(0.4) {
        args.push(gen.value(TensorType::scalar(t.elem)));
        if gen.coin(0.5) {
            args.push(gen.value(TensorType::scalar(rhs_elem)));
        }
    }
    let mut out = t.shape.clone();
    *out.last_mut()? = n;
    gen.emit1(
        lb(lowbit::Op::QMatMul),
        args,
        Attrs::new(),
        TensorType::new(out, Elem::F32),
    );
    Some(())
}

fn pack(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(NIBBLES, 1, 4);
    let t = gen.ty(x);
    let mut out = t.shape.clone();
    *out.last_mut()? = ceil_div(*t.shape.last()?, 2);
    gen.emit1(
        lb(lowbit::Op::Pack),
        vec![x],
        Attrs::new(),
        TensorType::new(out, Elem::UI8),
    );
    Some(())
}

fn unpack(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(&[Elem::UI8], 1, 4);
    let t = gen.ty(x);
    let m = *t.shape.last()?;
    let mut out = t.shape.clone();
    *out.last_mut()? = 2 * m - i64::from(gen.coin(0.4));
    let elem = gen.elem(NIBBLES);
    gen.emit1(
        lb(lowbit::Op::Unpack),
        vec![x],
        Attrs::new(),
        TensorType::new(out, elem),
    );
    Some(())
}

fn codebook(gen: &mut Gen) -> Option<()> {
    let idx = gen.input_of(INDEX, 1, 3);
    let t = gen.ty(idx);
    let (k, v) = (gen.rng.gen_range(1..=16), gen.dim());
    let book_elem = gen.elem(FLOATS);
    let book = gen.value(TensorType::new([k, v], book_elem));
    let mut out = t.shape.clone();
    *out.last_mut()? *= v;
    gen.emit1(
        lb(lowbit::Op::Codebook),
        vec![idx, book],
        Attrs::new(),
        TensorType::new(out, book_elem),
    );
    Some(())
}

// ---------------------------------------------------------------------------------------
// Builders: attn, kernel, rot
// ---------------------------------------------------------------------------------------

/// Attention operands: `q [B, H, N, d]`, `k [B, Hkv, M, d]`, `v [B, Hkv, M, dv]` with
/// `H = g · Hkv` (GQA). `q` is an existing rank-4 float value when one fits.
struct Qkv {
    q: Value,
    k: Value,
    v: Value,
    b: i64,
    h: i64,
    n: i64,
    m: i64,
    dv: i64,
    elem: Elem,
}

fn qkv(gen: &mut Gen, square: bool) -> Qkv {
    let q = gen.input(
        |t| FLOATS.contains(&t.elem) && t.rank() == 4,
        |g| {
            let hkv = g.rng.gen_range(1..=3);
            let heads = hkv * g.rng.gen_range(1..=3);
            let s = vec![g.rng.gen_range(1..=2), heads, g.dim(), g.dim()];
            TensorType::new(s, g.elem(FLOATS))
        },
    );
    let t = gen.ty(q);
    let (b, h, n, d) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3]);
    let divisors: Vec<i64> = (1..=h).filter(|x| h % x == 0).collect();
    let hkv = *divisors.choose(&mut gen.rng).expect("1 divides h");
    let m = if square { n } else { gen.dim() };
    let dv = gen.dim();
    let k = gen.value(TensorType::new([b, hkv, m, d], t.elem));
    let v = gen.value(TensorType::new([b, hkv, m, dv], t.elem));
    Qkv {
        q,
        k,
        v,
        b,
        h,
        n,
        m,
        dv,
        elem: t.elem,
    }
}

impl Qkv {
    fn out(&self) -> TensorType {
        TensorType::new([self.b, self.h, self.n, self.dv], self.elem)
    }

    fn args(&self) -> Vec<Value> {
        vec![self.q, self.k, self.v]
    }

    /// Adds an optional mask that broadcasts against `[B, H, N, M]`.
    fn maybe_mask(&self, gen: &mut Gen, args: &mut Vec<Value>) {
        if gen.coin(0.5) {
            let s = gen.sub_broadcast(&[self.b, self.h, self.n, self.m], 2);
            let elem = if gen.coin(0.5) { self.elem } else { Elem::I1 };
            args.push(gen.value(TensorType::new(s, elem)));
        }
    }

    /// A block mask `[B|1, H|1, ceil(N/bq), ceil(M/bk)]` and the block sizes.
    fn block_mask(&self, gen: &mut Gen, elem: Elem) -> (Value, i64, i64) {
        let bq = gen.rng.gen_range(1..=self.n + 1);
        let bk = gen.rng.gen_range(1..=self.m + 1);
        let b = if gen.coin(0.5) { 1 } else { self.b };
        let h = if gen.coin(0.5) { 1 } else { self.h };
        let s = vec![b, h, ceil_div(self.n, bq), ceil_div(self.m, bk)];
        (gen.value(TensorType::new(s, elem)), bq, bk)
    }
}

fn sdpa(gen: &mut Gen, op: Opcode) -> Option<()> {
    let a = qkv(gen, false);
    let mut args = a.args();
    a.maybe_mask(gen, &mut args);
    let attrs = Attrs::new()
        .with("scale", gen.float_attr())
        .with("causal", Attr::Bool(gen.coin(0.5)));
    gen.emit1(op, args, attrs, a.out());
    Some(())
}

fn quantized_sdpa(gen: &mut Gen) -> Option<()> {
    let a = qkv(gen, false);
    let mut args = a.args();
    a.maybe_mask(gen, &mut args);
    let qk = *["i8", "i4", "f8"].choose(&mut gen.rng)?;
    let pv = *["f16", "f8", "i8"].choose(&mut gen.rng)?;
    let attrs = Attrs::new()
        .with("scale", gen.float_attr())
        .with("causal", Attr::Bool(gen.coin(0.5)))
        .with("qk", Attr::Str(qk.into()))
        .with("pv", Attr::Str(pv.into()))
        .with(
            "q_block",
            Attr::Int(*[1, 16, 64, 128].choose(&mut gen.rng)?),
        )
        .with(
            "k_block",
            Attr::Int(*[1, 16, 64, 128].choose(&mut gen.rng)?),
        )
        .with("smooth_q", Attr::Bool(gen.coin(0.5)))
        .with("smooth_k", Attr::Bool(gen.coin(0.5)));
    gen.emit1(Opcode::Attn(attn::Op::QuantizedSdpa), args, attrs, a.out());
    Some(())
}

fn block_sparse_sdpa(gen: &mut Gen) -> Option<()> {
    let a = qkv(gen, false);
    let (mask, bq, bk) = a.block_mask(gen, Elem::I1);
    let mut args = a.args();
    args.push(mask);
    let attrs = Attrs::new()
        .with("scale", gen.float_attr())
        .with("causal", Attr::Bool(gen.coin(0.5)))
        .with("block_q", Attr::Int(bq))
        .with("block_k", Attr::Int(bk));
    gen.emit1(
        Opcode::Attn(attn::Op::BlockSparseSdpa),
        args,
        attrs,
        a.out(),
    );
    Some(())
}

fn sparse_linear(gen: &mut Gen) -> Option<()> {
    let a = qkv(gen, false);
    let elem = gen.elem(&[Elem::I8, Elem::I32, Elem::I64]);
    let (mask, bq, bk) = a.block_mask(gen, elem);
    let w = gen.value(TensorType::new([a.dv, a.dv], a.elem));
    let bias = gen.value(TensorType::new([a.dv], a.elem));
    let mut args = a.args();
    args.extend([mask, w, bias]);
    let fm = *["softmax", "elu1", "relu"].choose(&mut gen.rng)?;
    let attrs = Attrs::new()
        .with("scale", gen.float_attr())
        .with("block_q", Attr::Int(bq))
        .with("block_k", Attr::Int(bk))
        .with("feature_map", Attr::Str(fm.into()));
    gen.emit1(Opcode::Attn(attn::Op::SparseLinear), args, attrs, a.out());
    Some(())
}

fn linear_attention(gen: &mut Gen) -> Option<()> {
    let causal = gen.coin(0.5);
    let a = qkv(gen, causal);
    let fm = *["softmax", "elu1", "relu"].choose(&mut gen.rng)?;
    let mut attrs = Attrs::new()
        .with("feature_map", Attr::Str(fm.into()))
        .with("causal", Attr::Bool(causal));
    if gen.coin(0.5) {
        attrs.set("epsilon", gen.eps_attr());
    }
    gen.emit1(
        Opcode::Attn(attn::Op::LinearAttention),
        a.args(),
        attrs,
        a.out(),
    );
    Some(())
}

fn sigmoid_attention(gen: &mut Gen) -> Option<()> {
    let a = qkv(gen, false);
    let attrs = Attrs::new()
        .with("scale", gen.float_attr())
        .with("bias", gen.float_attr())
        .with("causal", Attr::Bool(gen.coin(0.5)));
    gen.emit1(
        Opcode::Attn(attn::Op::SigmoidAttention),
        a.args(),
        attrs,
        a.out(),
    );
    Some(())
}

fn gemm(gen: &mut Gen) -> Option<()> {
    let a = gen.input_of(FLOATS, 2, 4);
    let t = gen.ty(a);
    let k = *t.shape.last()?;
    let n = gen.dim();
    let transpose_b = gen.coin(0.5);
    let b = gen.value(TensorType::new(
        if transpose_b { [n, k] } else { [k, n] },
        t.elem,
    ));
    let mut args = vec![a, b];
    if gen.coin(0.5) {
        args.push(gen.value(TensorType::new([n], t.elem)));
    }
    let epilogue = *["none", "relu", "gelu", "gelu_tanh", "silu"].choose(&mut gen.rng)?;
    let mut attrs = Attrs::new()
        .with("transpose_b", Attr::Bool(transpose_b))
        .with("epilogue", Attr::Str(epilogue.into()));
    for tile in ["tile_m", "tile_n"] {
        if gen.coin(0.4) {
            attrs.set(tile, Attr::Int(*[8, 16, 32, 64].choose(&mut gen.rng)?));
        }
    }
    let mut out = t.shape.clone();
    *out.last_mut()? = n;
    gen.emit1(
        Opcode::Kernel(kernel::Op::Gemm),
        args,
        attrs,
        TensorType::new(out, t.elem),
    );
    Some(())
}

fn add_layer_norm(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(FLOATS, 1, 4);
    let t = gen.ty(x);
    let residual = gen.value(t.clone());
    let last = TensorType::new([*t.shape.last()?], t.elem);
    let gamma = gen.value(last.clone());
    let beta = gen.value(last);
    let attrs = Attrs::new().with("epsilon", gen.eps_attr());
    gen.emit1(
        Opcode::Kernel(kernel::Op::AddLayerNorm),
        vec![x, residual, gamma, beta],
        attrs,
        t,
    );
    Some(())
}

fn hadamard(gen: &mut Gen) -> Option<()> {
    let x = gen.input(
        |t| FLOATS.contains(&t.elem) && t.shape.iter().any(|d| HADAMARD_SIZES.contains(d)),
        |g| {
            let mut t = g.any_type(FLOATS, 1, 3);
            let i = g.rng.gen_range(0..t.rank());
            t.shape[i] = *HADAMARD_SIZES.choose(&mut g.rng).expect("sizes");
            t
        },
    );
    let t = gen.ty(x);
    let axes: Vec<usize> = (0..t.rank())
        .filter(|&i| HADAMARD_SIZES.contains(&t.shape[i]))
        .collect();
    let a = *axes.choose(&mut gen.rng)? as i64;
    let axis = if gen.coin(0.5) {
        a - t.rank() as i64
    } else {
        a
    };
    let attrs = Attrs::new().with("axis", Attr::Int(axis));
    gen.emit1(Opcode::Rot(rot::Op::Hadamard), vec![x], attrs, t);
    Some(())
}

fn rotate(gen: &mut Gen) -> Option<()> {
    let x = gen.input_of(FLOATS, 1, 4);
    let t = gen.ty(x);
    let axis = gen.axis(t.rank());
    let n = t.shape[norm_axis(axis, t.rank())];
    let r = gen.value(TensorType::new([n, n], t.elem));
    let attrs = Attrs::new().with("axis", Attr::Int(axis));
    gen.emit1(Opcode::Rot(rot::Op::Rotate), vec![x, r], attrs, t);
    Some(())
}

// ---------------------------------------------------------------------------------------
// The builder table
// ---------------------------------------------------------------------------------------

/// Every op the generator builds, with its builder.
fn builders() -> Vec<(Opcode, Builder)> {
    use graph::Op as G;
    macro_rules! un {
        ($op:ident, $elems:expr) => {
            (
                g(G::$op),
                (|gen: &mut Gen| unary(gen, G::$op, $elems)) as Builder,
            )
        };
    }
    macro_rules! bin {
        ($op:ident, $elems:expr) => {
            (
                g(G::$op),
                (|gen: &mut Gen| binary(gen, G::$op, $elems)) as Builder,
            )
        };
    }
    vec![
        (g(G::Weight), weight_op as Builder),
        (g(G::Constant), constant_op),
        (g(G::MatMul), matmul),
        (g(G::Linear), linear),
        bin!(Add, NUMERIC),
        bin!(Sub, NUMERIC),
        bin!(Mul, NUMERIC),
        bin!(Div, NUMERIC),
        bin!(Pow, FLOATS),
        bin!(Maximum, NUMERIC),
        bin!(Minimum, NUMERIC),
        (g(G::Equal), |gen| compare(gen, G::Equal)),
        (g(G::Less), |gen| compare(gen, G::Less)),
        (g(G::LessEqual), |gen| compare(gen, G::LessEqual)),
        (g(G::Greater), |gen| compare(gen, G::Greater)),
        (g(G::GreaterEqual), |gen| compare(gen, G::GreaterEqual)),
        un!(Neg, SIGNED),
        un!(Exp, FLOATS),
        un!(Log, FLOATS),
        un!(Sqrt, FLOATS),
        un!(Rsqrt, FLOATS),
        un!(Tanh, FLOATS),
        un!(Erf, FLOATS),
        un!(Relu, SIGNED),
        un!(Gelu, FLOATS),
        un!(Silu, FLOATS),
        un!(Sigmoid, FLOATS),
        (g(G::Softmax), |gen| softmax(gen, G::Softmax)),
        (g(G::LogSoftmax), |gen| softmax(gen, G::LogSoftmax)),
        (g(G::LayerNorm), |gen| norm(gen, G::LayerNorm)),
        (g(G::RmsNorm), |gen| norm(gen, G::RmsNorm)),
        (g(G::Reduce), reduce),
        (g(G::Transpose), transpose),
        (g(G::Reshape), reshape),
        (g(G::Concat), concat),
        (g(G::Split), split),
        (g(G::Slice), slice),
        (g(G::Gather), gather),
        (g(G::Select), select),
        (g(G::Cast), cast),
        (g(G::Rope), rope),
        (g(G::CausalMask), causal_mask),
        (g(G::PaddingMask), padding_mask),
        (lb(lowbit::Op::Quantize), quantize),
        (lb(lowbit::Op::Dequantize), dequantize),
        (lb(lowbit::Op::QMatMul), qmatmul),
        (lb(lowbit::Op::Pack), pack),
        (lb(lowbit::Op::Unpack), unpack),
        (lb(lowbit::Op::Codebook), codebook),
        (Opcode::Attn(attn::Op::Sdpa), |gen| {
            sdpa(gen, Opcode::Attn(attn::Op::Sdpa))
        }),
        (Opcode::Attn(attn::Op::QuantizedSdpa), quantized_sdpa),
        (Opcode::Attn(attn::Op::BlockSparseSdpa), block_sparse_sdpa),
        (Opcode::Attn(attn::Op::SparseLinear), sparse_linear),
        (Opcode::Attn(attn::Op::LinearAttention), linear_attention),
        (Opcode::Attn(attn::Op::SigmoidAttention), sigmoid_attention),
        (Opcode::Rot(rot::Op::Hadamard), hadamard),
        (Opcode::Rot(rot::Op::Rotate), rotate),
        (Opcode::Kernel(kernel::Op::Gemm), gemm),
        (Opcode::Kernel(kernel::Op::Attention), |gen| {
            sdpa(gen, Opcode::Kernel(kernel::Op::Attention))
        }),
        (Opcode::Kernel(kernel::Op::AddLayerNorm), add_layer_norm),
    ]
}

/// Ops the generator does not build, each with the reason. Empty: every op is covered.
const EXCLUDED: &[(Opcode, &str)] = &[];

/// A random module of `n_funcs` functions, each with about `n_ops` generated ops (plus the
/// leaves their operands need). Functions use independent streams, so shrinking `n_ops`
/// keeps each function's prefix.
fn gen_module(seed: u64, n_ops: usize, n_funcs: usize) -> Module {
    let table = builders();
    let mut m = Module::default();
    for i in 0..n_funcs {
        let fseed = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let name = ["main", "f", "attn_block", "q.proj$1", "_x9"][i % 5];
        let mut rng = ChaCha8Rng::seed_from_u64(fseed);
        let n_params = rng.gen_range(0..=4);
        let mut gen = Gen::new(rng.gen(), &format!("{name}{i}"), n_params);
        for _ in 0..n_ops {
            let (_, build) = table.choose(&mut gen.rng).expect("builders");
            build(&mut gen);
        }
        let all: Vec<Value> = gen.f.values.keys().collect();
        let n_rets = gen.rng.gen_range(0..=3.min(all.len()));
        gen.f.rets = (0..n_rets)
            .map(|_| *all.choose(&mut gen.rng).expect("values"))
            .collect();
        gen.f.compact();
        m.funcs.push(gen.f);
    }
    m
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

const CUSTOM: PrintOptions = PrintOptions {
    generic: false,
    locs: true,
    elide: false,
};
const GENERIC: PrintOptions = PrintOptions {
    generic: true,
    locs: true,
    elide: false,
};

/// Verifies `m` and checks that both text forms round-trip exactly.
fn check_round_trip(m: &Module) -> Result<(), String> {
    if let Err(errs) = verify_module(m) {
        let errs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        return Err(format!(
            "the verifier rejects a module the generator built as well-typed:\n{}\n\n{}",
            errs.join("\n"),
            print_module_with(m, CUSTOM)
        ));
    }
    for opts in [CUSTOM, GENERIC] {
        let text = print_module_with(m, opts);
        let back = parse_module(&text, "printed.mlir", 0).map_err(|e| {
            format!(
                "printed module does not parse:\n{}\n{text}",
                e.render(&text, "printed.mlir", 0)
            )
        })?;
        if back != *m {
            let reprinted = print_module_with(&back, opts);
            return Err(format!(
                "parse(print(m)) != m (generic: {}); first difference:\n{}\n\n{text}",
                opts.generic,
                first_difference(&text, &reprinted)
            ));
        }
        let again = print_module_with(&back, opts);
        if again != text {
            return Err(format!(
                "print(parse(print(m))) != print(m):\n{text}\n---\n{again}"
            ));
        }
    }
    Ok(())
}

/// The first line where two texts differ, from each.
fn first_difference(a: &str, b: &str) -> String {
    let mut lines = a.lines().zip(b.lines());
    match lines.find(|(x, y)| x != y) {
        Some((x, y)) => format!("  printed:   {x}\n  reprinted: {y}"),
        None => "  (the texts agree; the modules differ in what printing does not show)".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random well-typed modules verify and round-trip through both text forms.
    #[test]
    fn random_modules_round_trip(seed in any::<u64>(), n_ops in 1usize..40, n_funcs in 1usize..=3) {
        let m = gen_module(seed, n_ops, n_funcs);
        if let Err(e) = check_round_trip(&m) {
            prop_assert!(false, "seed {seed}, n_ops {n_ops}, n_funcs {n_funcs}: {e}");
        }
    }
}

/// Every op is built by the generator or excluded with a reason, and every builder really
/// produces its op within a few hundred modules.
#[test]
fn generator_covers_every_op() {
    let table = builders();
    let built: BTreeSet<Opcode> = table.iter().map(|&(op, _)| op).collect();
    let excluded: BTreeSet<Opcode> = EXCLUDED.iter().map(|&(op, _)| op).collect();
    let missing: Vec<&str> = Opcode::all()
        .filter(|op| !built.contains(op) && !excluded.contains(op))
        .map(Opcode::name)
        .collect();
    assert!(
        missing.is_empty(),
        "ops neither generated nor excluded: {missing:?}"
    );
    assert!(
        built.is_disjoint(&excluded),
        "an op is both generated and excluded"
    );

    let mut seen = BTreeSet::new();
    for seed in 0..200 {
        for f in &gen_module(seed, 30, 1).funcs {
            seen.extend(f.body.iter().map(|&op| f.ops[op].opcode));
        }
    }
    let never: Vec<&str> = built.difference(&seen).map(|op| op.name()).collect();
    assert!(
        never.is_empty(),
        "builders that never produced their op: {never:?}"
    );
}

// ---------------------------------------------------------------------------------------
// MLIR's parser accepts the generic form
// ---------------------------------------------------------------------------------------

/// An MLIR context with the upstream dialects registered (`func.func`) and unregistered
/// dialects allowed, collecting diagnostics instead of printing them (as in
/// `compiler/tests/toolchain.rs`).
struct Mlir {
    context: melior::Context,
    diagnostics: Rc<RefCell<Vec<String>>>,
}

impl Mlir {
    fn new() -> Mlir {
        let registry = melior::dialect::DialectRegistry::new();
        melior::utility::register_all_dialects(&registry);
        let context = melior::Context::new();
        context.append_dialect_registry(&registry);
        context.load_all_available_dialects();
        context.set_allow_unregistered_dialects(true);
        let diagnostics = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&diagnostics);
        context.attach_diagnostic_handler(move |d| {
            let mut text = format!("{}: {}", d.location(), d);
            for i in 0..d.note_count() {
                if let Ok(note) = d.note(i) {
                    text.push_str(&format!("\n  note: {note}"));
                }
            }
            sink.borrow_mut().push(text);
            true
        });
        Mlir {
            context,
            diagnostics,
        }
    }

    /// Parses `text` with MLIR; `Err` holds MLIR's diagnostics.
    fn parse(&self, text: &str) -> Result<(), String> {
        self.diagnostics.borrow_mut().clear();
        match melior::ir::Module::parse(&self.context, text) {
            Some(_) => Ok(()),
            None => Err(self.diagnostics.borrow().join("\n")),
        }
    }
}

const MLIR_OPTS: PrintOptions = PrintOptions {
    generic: true,
    locs: true,
    elide: true,
};

fn case_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            case_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "mlir") {
            out.push(p);
        }
    }
}

/// Chunks of a case file split on lines that are exactly `// -----`, each with the number
/// of lines before it.
fn chunks(src: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let (mut cur, mut start) = (String::new(), 0u32);
    for (i, line) in src.split_inclusive('\n').enumerate() {
        if line.trim_end_matches(['\n', '\r']) == "// -----" {
            out.push((std::mem::take(&mut cur), start));
            start = i as u32 + 1;
        } else {
            cur.push_str(line);
        }
    }
    out.push((cur, start));
    out
}

#[test]
fn mlir_parses_generic_form_of_case_files() {
    let mlir = Mlir::new();
    // The harness itself: MLIR rejects what it should, and says why.
    let diag = mlir
        .parse("func.func @f(")
        .expect_err("a truncated module does not parse");
    assert!(!diag.is_empty(), "MLIR's diagnostics are captured");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    let mut files = Vec::new();
    case_files(&root, &mut files);
    files.sort();
    let (mut checked, mut failures) = (0usize, Vec::new());
    for path in &files {
        let src = std::fs::read_to_string(path).expect("case files are UTF-8");
        let name = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(path)
            .display()
            .to_string();
        for (chunk, offset) in chunks(&src) {
            let Ok(m) = parse_module(&chunk, &name, offset) else {
                continue;
            };
            let text = print_module_with(&m, MLIR_OPTS);
            checked += 1;
            if let Err(diag) = mlir.parse(&text) {
                failures.push(format!(
                    "{name} (chunk at line {}): MLIR says:\n{diag}\n{text}",
                    offset + 1
                ));
            }
        }
    }
    eprintln!(
        "MLIR parsed the generic form of {checked} chunks from {} case files",
        files.len()
    );
    assert!(
        checked > 0,
        "no case chunk parsed under {}: the test would pass vacuously",
        root.display()
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} chunks rejected by MLIR:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// A sample of random modules (and the fuzz regression inputs).
#[test]
fn mlir_parses_generic_form_of_random_modules() {
    let mlir = Mlir::new();
    let mut failures = Vec::new();
    let n = 50;
    for seed in 0..n {
        let m = gen_module(0xC0FFEE + seed, 25, 2);
        let text = print_module_with(&m, MLIR_OPTS);
        if let Err(diag) = mlir.parse(&text) {
            failures.push(format!(
                "seed {}: MLIR says:\n{diag}\n{text}",
                0xC0FFEE + seed
            ));
        }
    }
    // The regression inputs too: several were about what MLIR accepts (f16 infinities).
    for src in FUZZ_CASES {
        let Ok(m) = parse_module(src, "fuzz.mlir", 0) else {
            continue;
        };
        let text = print_module_with(&m, MLIR_OPTS);
        if let Err(diag) = mlir.parse(&text) {
            failures.push(format!("regression case: MLIR says:\n{diag}\n{text}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} modules rejected by MLIR:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Writes generated modules, printed in several ways, into `$LOWBIT_FUZZ_SEEDS` as seeds
/// for the fuzzer (`FUZZ_GEN_SEEDS=1 scripts/fuzz.sh`).
#[test]
#[ignore = "writes fuzz seeds; run by scripts/fuzz.sh"]
fn dump_fuzz_seeds() {
    let dir = PathBuf::from(std::env::var("LOWBIT_FUZZ_SEEDS").expect("LOWBIT_FUZZ_SEEDS is set"));
    std::fs::create_dir_all(&dir).expect("seed dir");
    let styles = [CUSTOM, GENERIC, PrintOptions::default(), MLIR_OPTS];
    for seed in 0..120u64 {
        let m = gen_module(seed, 1 + seed as usize % 12, 1 + seed as usize % 2);
        let opts = styles[seed as usize % styles.len()];
        let path = dir.join(format!("gen-{seed}"));
        std::fs::write(path, print_module_with(&m, opts)).expect("write seed");
    }
}

// ---------------------------------------------------------------------------------------
// Fuzzer regressions
// ---------------------------------------------------------------------------------------

/// What the `parse` fuzz target checks (`fuzz/fuzz_targets/parse.rs` runs the same steps):
/// parsing never panics and its errors render; a module that parses is verified (without
/// panicking) and, valid or not, prints in both forms and reparses to an equal module
/// (compared through `Debug`, which treats NaN payloads alike where `==` does not) that
/// prints identically.
fn fuzz_check(src: &str) {
    let m = match parse_module(src, "fuzz.mlir", 0) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.render(src, "fuzz.mlir", 0);
            return;
        }
    };
    let _ = print_module_with(&m, PrintOptions::default());
    // Verified or not, a parsed module is well-formed, so it must round-trip; the
    // verifier (and with it every dialect's inference) must not panic either.
    let _ = verify_module(&m);
    for opts in [CUSTOM, GENERIC] {
        let text = print_module_with(&m, opts);
        let back = parse_module(&text, "fuzz.mlir", 0)
            .unwrap_or_else(|e| panic!("printed module does not parse: {e}\n{text}"));
        assert_eq!(
            format!("{back:?}"),
            format!("{m:?}"),
            "round trip changed the module:\n{text}"
        );
        assert_eq!(print_module_with(&back, opts), text);
    }
}

/// Bracketed integer lists were read through `f64`, so integers past 2^53 changed value.
#[test]
fn bracket_arrays_keep_large_integers() {
    let src = "func @f(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = graph.slice %a {ends = [9223372036854775806], starts = [9007199254740993]} : tensor<2xf32>\n  return %0\n}\n";
    let m = parse_module(src, "t.mlir", 0).expect("parses");
    let f = &m.funcs[0];
    let attrs = &f.ops[f.body[0]].attrs;
    assert_eq!(attrs.ints("starts"), Some(&[9_007_199_254_740_993][..]));
    assert_eq!(attrs.ints("ends"), Some(&[9_223_372_036_854_775_806][..]));
}

#[test]
fn fuzz_regressions() {
    for (i, src) in FUZZ_CASES.iter().enumerate() {
        let r = std::panic::catch_unwind(|| fuzz_check(src));
        assert!(r.is_ok(), "fuzz regression #{i} fails: {src:?}");
    }
}

/// Inputs that once failed the `parse` fuzz target's checks (found by the fuzzer, by the
/// generator above, or by probing what the fuzzer reported near), with what was wrong.
const FUZZ_CASES: &[&str] = &[
    // Non-finite f64 elements printed as 16-digit f64 bit patterns but were read back as
    // f32 bits (0.0); f16/bf16/f8 ones printed as f32 bits, which MLIR rejects.
    "func @f() -> (tensor<2xf64>, tensor<2xf16>, tensor<2xf8E5M2>) {\n  %0 = graph.constant {value = dense<[inf, -inf]> : tensor<2xf64>} : tensor<2xf64>\n  %1 = graph.constant {value = dense<[inf, -inf]> : tensor<2xf16>} : tensor<2xf16>\n  %2 = graph.constant {value = dense<[inf, 1.0]> : tensor<2xf8E5M2>} : tensor<2xf8E5M2>\n  return %0, %1, %2\n}\n",
    "func @f() -> tensor<3xbf16> {\n  %0 = graph.constant {value = dense<[0xFF80, 0x7FC0, 0x3F80]> : tensor<3xbf16>} : tensor<3xbf16>\n  return %0\n}\n",
    // A NaN in f4E2M1FN, which has none: it printed as f32 bits, which MLIR rejects; now
    // a parse error.
    "func @f() -> tensor<2xf4E2M1FN> {\n  %0 = graph.constant {value = dense<nan> : tensor<2xf4E2M1FN>} : tensor<2xf4E2M1FN>\n  return %0\n}\n",
    // A quoted symbol name printed bare (`func @a b()`), which does not parse.
    "func @\"a b\"() {\n  return\n}\n",
    "func @\"0\\\"\"(%a: tensor<f32>) -> tensor<f32> {\n  return %a\n}\n",
    // Quoted attribute names printed bare (`{a b = 1}`, `{1a = 1}`), which do not parse
    // (MLIR rejects the second too). Unknown attributes fail verification, but modules that
    // do not verify are printed as well (diagnostics, `--verify-diagnostics`).
    "func @f(%a: tensor<2xf32>) {\n  %0 = graph.relu %a {\"a b\" = 1, \"1a\" = 2, \"\\22\" = 3, b.c$ = 4} : tensor<2xf32>\n  return\n}\n",
    // Result-group counts summed with overflow.
    "func @f() {\n  %0:18446744073709551615, %1:2 = graph.weight {name = \"w\"} : tensor<f32>\n  return\n}\n",
    // A 60-byte splat asked for 2^40 elements (8 TiB).
    "func @f() {\n  %0 = graph.constant {value = dense<1.0> : tensor<1099511627776xf32>} : tensor<1099511627776xf32>\n  return\n}\n",
];
