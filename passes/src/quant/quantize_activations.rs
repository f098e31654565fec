//! `quantize-activations{bits=8 granularity=per-token|per-tensor mode=dynamic|static}`:
//! integer activations in front of linears whose weights are already quantized
//! (techniques.md §4.2–4.3: W8A8 with per-token or per-tensor activations), APPROX.
//!
//! Only the input `x` of a `graph.linear` whose weight is a `lowbit.dequantize` of integer
//! codes is quantized, so tensors that must stay wide (additive masks, softmax inputs,
//! norm inputs, the residual stream) never are: the float `x` stays for its other users.
//! Symmetric activations, `q = clamp(round_half_even(x / scale), -2^(b-1), 2^(b-1) - 1)`,
//! `scale = max|x| / (2^(b-1) - 1)` over:
//!
//! - `granularity=per-token mode=dynamic` (default): each row (last dim), at run time, built
//!   from graph ops: `reduce max(concat(x, -x))` over the last dim, divided by `2^(b-1) - 1`,
//!   plus the smallest normal `f32` (so an all-zero row gets a non-zero scale; it changes no
//!   other scale). The quantize is per-block along the last dim with the block the whole row.
//! - `granularity=per-tensor mode=dynamic`: the same over the whole tensor.
//! - `granularity=per-tensor mode=static`: a constant from the calibration inputs
//!   (`--calibration`; an error without them). Static per-token is refused (a token's
//!   range is not known ahead of time).
//!
//! Rules:
//! - `int-linear` (APPROX, then EXACT-R): `linear(x, dequantize(q, sw[, zw]){axis=0}, b)` ->
//!   `qmatmul(quantize(x, sx), transpose(q), sx, sw[, 0, zw]) + b` when the weight is
//!   per-output-channel or per-tensor: the epilogue applies the per-token (or per-tensor)
//!   activation scale and the per-channel weight scale to the exact integer accumulator.
//! - `qdq-linear` (APPROX): `linear(x, W)` -> `linear(dequantize(quantize(x, sx), sx), W)`
//!   when the weight's scales are per group along the input dim (a scale that varies along
//!   the reduction cannot be an epilogue).
//!
//! An activation read by several quantized linears is quantized once. Stats: `qmatmul`,
//! `qdq`, `activations`, `skipped-float-weight`.

use lowbit_dialects::graph::Op as G;
use lowbit_dialects::ir::{Attr, Attrs, DenseAttr, Elem, Func, Loc, Op, TensorType, Value};
use lowbit_dialects::lowbit::Op as L;
use lowbit_dialects::Opcode;

use super::{capture, linears, round_elem, Linear};
use crate::pass::{Pass, PassEnv, PassError, PassResult, Stats};
use crate::pipeline::{PassOptions, PipelineError};

const NAME: &str = "quantize-activations";

/// Which elements share a scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// One scale per row (token).
    PerToken,
    /// One scale for the tensor.
    PerTensor,
}

/// When scales are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// At run time, from the tensor itself.
    Dynamic,
    /// Ahead of time, from calibration inputs.
    Static,
}

/// The `quantize-activations` pass.
#[derive(Debug)]
pub struct QuantizeActivations {
    /// Bits: 8 or 4.
    pub bits: u32,
    /// Scale granularity.
    pub granularity: Granularity,
    /// Dynamic or static scales.
    pub mode: Mode,
}

impl Default for QuantizeActivations {
    fn default() -> Self {
        QuantizeActivations {
            bits: 8,
            granularity: Granularity::PerToken,
            mode: Mode::Dynamic,
        }
    }
}

/// What a linear's weight allows.
#[derive(Clone, Copy, Debug)]
struct IntWeight {
    /// The dequantize op.
    dq: Op,
    /// Scales per output channel or per tensor (a `qmatmul` epilogue can apply them).
    epilogue: bool,
}

/// The quantized-weight facts of linear `l`, when its weight is a dequantize of integers.
fn int_weight(f: &Func, l: &Linear) -> Option<IntWeight> {
    let dq = f.def_op(l.w)?;
    let d = &f.ops[dq];
    if d.opcode != Opcode::Lowbit(L::Dequantize) || !f.ty(d.args[0]).elem.is_int() {
        return None;
    }
    let sshape = &f.ty(d.args[1]).shape;
    let per_tensor = d.attrs.int("axis").is_none() && sshape.iter().product::<i64>() == 1;
    let per_out =
        d.attrs.int("block_size").is_none() && matches!(d.attrs.int("axis"), Some(0) | Some(-2));
    Some(IntWeight {
        dq,
        epilogue: per_tensor || per_out,
    })
}

/// A scalar constant of `elem`.
fn scalar(f: &mut Func, before: Op, elem: Elem, v: f64, loc: &Loc) -> Value {
    let ty = TensorType::scalar(elem);
    let op = f.insert_op_before(
        before,
        Opcode::Graph(G::Constant),
        vec![],
        Attrs::new().with(
            "value",
            Attr::Dense(DenseAttr {
                ty: ty.clone(),
                values: Some(vec![round_elem(v, elem)]),
            }),
        ),
        vec![ty],
        loc.clone(),
    );
    f.result(op)
}

impl QuantizeActivations {
    fn qmax(&self) -> f64 {
        ((1u32 << (self.bits - 1)) - 1) as f64
    }

    fn elem(&self) -> Elem {
        if self.bits == 8 {
            Elem::I8
        } else {
            Elem::I4
        }
    }

    /// Inserts, before `before`, the scale of `x` (run-time ops, or the constant
    /// `static_scale`) and `quantize(x, scale)`. Returns `(q, scale)`.
    fn quantize_x(
        &self,
        f: &mut Func,
        before: Op,
        x: Value,
        static_scale: Option<f64>,
        loc: &Loc,
    ) -> (Value, Value) {
        let xty = f.ty(x).clone();
        let r = xty.rank();
        let fe = xty.elem;
        let scale = match static_scale {
            Some(s) => scalar(f, before, fe, s, loc),
            None => {
                let neg = f.insert_op_before(
                    before,
                    Opcode::Graph(G::Neg),
                    vec![x],
                    Attrs::new(),
                    vec![xty.clone()],
                    loc.clone(),
                );
                let neg = f.result(neg);
                let mut cshape = xty.shape.clone();
                cshape[r - 1] *= 2;
                let cat = f.insert_op_before(
                    before,
                    Opcode::Graph(G::Concat),
                    vec![x, neg],
                    Attrs::new().with("axis", Attr::Int(r as i64 - 1)),
                    vec![TensorType::new(cshape, fe)],
                    loc.clone(),
                );
                let cat = f.result(cat);
                let (axes, sty): (Vec<i64>, TensorType) = match self.granularity {
                    Granularity::PerToken => {
                        let mut s = xty.shape.clone();
                        s[r - 1] = 1;
                        (vec![r as i64 - 1], TensorType::new(s, fe))
                    }
                    Granularity::PerTensor => ((0..r as i64).collect(), TensorType::scalar(fe)),
                };
                let amax = f.insert_op_before(
                    before,
                    Opcode::Graph(G::Reduce),
                    vec![cat],
                    Attrs::new()
                        .with("kind", Attr::Str("max".into()))
                        .with("axes", Attr::Ints(axes))
                        .with(
                            "keepdims",
                            Attr::Bool(self.granularity == Granularity::PerToken),
                        ),
                    vec![sty.clone()],
                    loc.clone(),
                );
                let amax = f.result(amax);
                let qmax = scalar(f, before, fe, self.qmax(), loc);
                let div = f.insert_op_before(
                    before,
                    Opcode::Graph(G::Div),
                    vec![amax, qmax],
                    Attrs::new(),
                    vec![sty.clone()],
                    loc.clone(),
                );
                let div = f.result(div);
                let tiny = scalar(f, before, fe, f32::MIN_POSITIVE as f64, loc);
                let s = f.insert_op_before(
                    before,
                    Opcode::Graph(G::Add),
                    vec![div, tiny],
                    Attrs::new(),
                    vec![sty],
                    loc.clone(),
                );
                f.result(s)
            }
        };
        let mut attrs = Attrs::new();
        if self.granularity == Granularity::PerToken {
            attrs.set("axis", Attr::Int(r as i64 - 1));
            attrs.set("block_size", Attr::Int(xty.shape[r - 1].max(1)));
        }
        let q = f.insert_op_before(
            before,
            Opcode::Lowbit(L::Quantize),
            vec![x, scale],
            attrs,
            vec![xty.with_elem(self.elem())],
            loc.clone(),
        );
        (f.result(q), scale)
    }
}

impl Pass for QuantizeActivations {
    fn name(&self) -> &'static str {
        NAME
    }

    fn configure(&mut self, opts: &PassOptions) -> Result<(), PipelineError> {
        if let Some(b) = opts.usize("bits")? {
            if b != 8 && b != 4 {
                return Err(opts.invalid("bits", "8 or 4"));
            }
            self.bits = b as u32;
        }
        if let Some(g) = opts.string("granularity")? {
            self.granularity = match g {
                "per-token" => Granularity::PerToken,
                "per-tensor" => Granularity::PerTensor,
                _ => return Err(opts.invalid("granularity", "per-token or per-tensor")),
            };
        }
        if let Some(m) = opts.string("mode")? {
            self.mode = match m {
                "dynamic" => Mode::Dynamic,
                "static" => Mode::Static,
                _ => return Err(opts.invalid("mode", "dynamic or static")),
            };
        }
        if self.mode == Mode::Static && self.granularity == Granularity::PerToken {
            return Err(opts.invalid(
                "mode",
                "dynamic with granularity=per-token (static scales are per-tensor)",
            ));
        }
        Ok(())
    }

    fn run(&mut self, func: &mut Func) -> Result<PassResult, PassError> {
        self.run_with_env(func, &mut PassEnv::default())
    }

    fn run_with_env(&mut self, f: &mut Func, env: &mut PassEnv) -> Result<PassResult, PassError> {
        let mut stats =
            Stats::with_keys(&["qmatmul", "qdq", "activations", "skipped-float-weight"]);
        let mut todo: Vec<(Linear, IntWeight)> = Vec::new();
        for l in linears(f) {
            let xty = f.ty(l.x);
            match int_weight(f, &l) {
                Some(iw) if xty.elem.is_float() && xty.rank() >= 2 => todo.push((l, iw)),
                _ => stats.bump("skipped-float-weight"),
            }
        }
        if todo.is_empty() {
            return Ok(PassResult::from_stats(stats));
        }
        let mut xs: Vec<Value> = Vec::new();
        for (l, _) in &todo {
            if !xs.contains(&l.x) {
                xs.push(l.x);
            }
        }
        let statics: Vec<Option<f64>> = if self.mode == Mode::Static {
            capture(NAME, f, env, &xs)?
                .iter()
                .zip(&xs)
                .map(|(ts, &x)| {
                    let m = ts
                        .iter()
                        .flat_map(|t| t.data.iter())
                        .fold(0.0f64, |a, v| a.max(v.abs()));
                    let s = round_elem(m / self.qmax(), f.ty(x).elem);
                    Some(if s > 0.0 { s } else { 1.0 })
                })
                .collect()
        } else {
            vec![None; xs.len()]
        };
        // Quantized activations, made once per `x` right before its first quantized reader.
        let mut made: Vec<(Value, Value, Value)> = Vec::new();
        let mut dqs: Vec<Op> = Vec::new();
        for (l, iw) in todo {
            let loc = f.ops[l.op].loc.clone();
            let (xq, sx) = match made.iter().find(|m| m.0 == l.x) {
                Some(&(_, q, s)) => (q, s),
                None => {
                    let i = xs.iter().position(|&v| v == l.x).expect("collected");
                    let (q, s) = self.quantize_x(f, l.op, l.x, statics[i], &loc);
                    made.push((l.x, q, s));
                    stats.bump("activations");
                    (q, s)
                }
            };
            let yty = f.ty(f.result(l.op)).clone();
            let new_y = if iw.epilogue {
                let dargs = f.ops[iw.dq].args.clone();
                let qw = dargs[0];
                let qty = f.ty(qw).clone();
                let t = f.insert_op_before(
                    l.op,
                    Opcode::Graph(G::Transpose),
                    vec![qw],
                    Attrs::new().with("perm", Attr::Ints(vec![1, 0])),
                    vec![TensorType::new(vec![qty.shape[1], qty.shape[0]], qty.elem)],
                    loc.clone(),
                );
                let mut args = vec![xq, f.result(t), sx, dargs[1]];
                if let Some(&zw) = dargs.get(2) {
                    args.push(scalar(f, l.op, self.elem(), 0.0, &loc));
                    args.push(zw);
                }
                let mm = f.insert_op_before(
                    l.op,
                    Opcode::Lowbit(L::QMatMul),
                    args,
                    Attrs::new(),
                    vec![yty.clone()],
                    loc.clone(),
                );
                let mut y = f.result(mm);
                if let Some(b) = l.bias {
                    let add = f.insert_op_before(
                        l.op,
                        Opcode::Graph(G::Add),
                        vec![y, b],
                        Attrs::new(),
                        vec![yty],
                        loc.clone(),
                    );
                    y = f.result(add);
                }
                stats.bump("qmatmul");
                dqs.push(iw.dq);
                y
            } else {
                let xty = f.ty(l.x).clone();
                let mut attrs = Attrs::new();
                if self.granularity == Granularity::PerToken {
                    let r = xty.rank();
                    attrs.set("axis", Attr::Int(r as i64 - 1));
                    attrs.set("block_size", Attr::Int(xty.shape[r - 1].max(1)));
                }
                let dq = f.insert_op_before(
                    l.op,
                    Opcode::Lowbit(L::Dequantize),
                    vec![xq, sx],
                    attrs,
                    vec![xty],
                    loc.clone(),
                );
                let mut args = f.ops[l.op].args.clone();
                args[0] = f.result(dq);
                let lin = f.insert_op_before(
                    l.op,
                    Opcode::Graph(G::Linear),
                    args,
                    Attrs::new(),
                    vec![yty],
                    loc.clone(),
                );
                stats.bump("qdq");
                f.result(lin)
            };
            let old = f.result(l.op);
            f.replace_all_uses(old, new_y);
            f.body.retain(|&o| o != l.op);
        }
        // Weight dequantizes that only the replaced linears read are gone with them.
        let uses = f.use_counts();
        f.body
            .retain(|o| !dqs.contains(o) || uses[f.ops[*o].results[0]] > 0);
        Ok(PassResult::from_stats(stats))
    }
}
