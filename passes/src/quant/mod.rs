//! Weight and activation quantization of `graph.linear`, and the exact scale migration that
//! prepares it (techniques.md §4: AWQ, SmoothQuant).
//!
//! Three passes share the helpers here:
//!
//! - [`migrate_scales`] (`migrate-scales{alpha=0.5}`): SmoothQuant scale migration, EXACT-R.
//! - [`quantize_weights`] (`quantize-weights{bits group scheme sym}`): RTN, AWQ or GPTQ weight
//!   quantization into `graph.weight` integers + scales feeding `lowbit.dequantize`, APPROX;
//!   `scheme=gptq` rounds with [`gptq`] (GPTQ, error feedback under calibration Hessians).
//! - [`quantize_activations`] (`quantize-activations{bits granularity mode}`): int8 (or int4)
//!   activations in front of linears with quantized weights, as `lowbit.qmatmul`, APPROX.
//!
//! The weight store ([`PassEnv::weights`]) is never edited in place: a pass that changes a
//! weight writes a new entry (`NAME.smooth`, `NAME.qweight`, ...) and points the
//! `graph.weight` op at it, so a weight another function still reads keeps its value.
//!
//! Linear weights are `[out, in]` (PyTorch's layout, `graph.linear`'s `w`); input channel
//! `j` of a linear is column `j` of its weight and the last dim of its `x`.

pub mod gptq;
pub mod migrate_scales;
pub mod quantize_activations;
pub mod quantize_weights;

use lowbit_dialects::graph::Op as G;
use lowbit_dialects::interp::{run_func, Tensor, Weights};
use lowbit_dialects::ir::{Attr, Attrs, Elem, Func, Loc, Op, TensorType, Value};
use lowbit_dialects::numeric::round_to;
use lowbit_dialects::Opcode;

use crate::pass::{PassEnv, PassError};

/// The name of the `graph.weight` defining `v`.
pub(crate) fn weight_name(f: &Func, v: Value) -> Option<&str> {
    let op = f.def_op(v)?;
    let d = &f.ops[op];
    if d.opcode != Opcode::Graph(G::Weight) {
        return None;
    }
    d.attrs.str("name")
}

/// A `graph.linear` op with its operands.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Linear {
    pub op: Op,
    pub x: Value,
    pub w: Value,
    pub bias: Option<Value>,
}

/// The `graph.linear` ops of `f`, in body order.
pub(crate) fn linears(f: &Func) -> Vec<Linear> {
    f.body
        .iter()
        .filter(|&&op| f.ops[op].opcode == Opcode::Graph(G::Linear))
        .map(|&op| {
            let a = &f.ops[op].args;
            Linear {
                op,
                x: a[0],
                w: a[1],
                bias: a.get(2).copied(),
            }
        })
        .collect()
}

/// The stored value of weight `name`, or the error a user sees when it is missing.
pub(crate) fn stored<'w>(
    pass: &'static str,
    f: &Func,
    weights: &'w Weights,
    v: Value,
) -> Result<&'w Tensor, PassError> {
    let name = weight_name(f, v).expect("caller checked v is a graph.weight");
    let op = f.def_op(v).expect("a weight is an op result");
    let t = weights.get(name).ok_or_else(|| PassError::Op {
        pass,
        op: "graph.weight",
        loc: f.ops[op].loc.clone(),
        message: if weights.is_empty() {
            format!(
                "needs the value of weight '{name}', but no weights were given (pass --weights)"
            )
        } else {
            format!("weight '{name}' is not in the weight store")
        },
    })?;
    if &t.ty != f.ty(v) {
        return Err(PassError::Op {
            pass,
            op: "graph.weight",
            loc: f.ops[op].loc.clone(),
            message: format!(
                "weight '{name}' is stored as {} but the IR declares {}",
                t.ty,
                f.ty(v)
            ),
        });
    }
    Ok(t)
}

/// A name not yet used in `weights`: `base`, else `base.1`, `base.2`, ...
pub(crate) fn fresh_name(weights: &Weights, base: &str) -> String {
    if !weights.contains_key(base) {
        return base.to_string();
    }
    (1..)
        .map(|i| format!("{base}.{i}"))
        .find(|n| !weights.contains_key(n))
        .expect("some suffix is free")
}

/// Stores `t` under a fresh name derived from `base` and inserts a `graph.weight` reading
/// it right before `before`. Returns the new value.
pub(crate) fn add_weight(
    f: &mut Func,
    env: &mut PassEnv,
    before: Op,
    base: &str,
    t: Tensor,
    loc: Loc,
) -> Value {
    let name = fresh_name(&env.weights, base);
    let ty = t.ty.clone();
    env.weights.insert(name.clone(), t);
    env.weights_changed = true;
    let op = f.insert_op_before(
        before,
        Opcode::Graph(G::Weight),
        vec![],
        Attrs::new().with("name", Attr::Str(name)),
        vec![ty],
        loc,
    );
    f.result(op)
}

/// Points the `graph.weight` op defining `v` at a new entry holding `t` (named from the
/// old name + `suffix`); the old entry stays for other readers.
pub(crate) fn replace_weight(f: &mut Func, env: &mut PassEnv, v: Value, suffix: &str, t: Tensor) {
    let op = f.def_op(v).expect("a weight is an op result");
    let old = weight_name(f, v).expect("v is a graph.weight").to_string();
    let base = if old.ends_with(suffix) {
        old
    } else {
        format!("{old}{suffix}")
    };
    let name = fresh_name(&env.weights, &base);
    debug_assert_eq!(&t.ty, f.ty(v));
    env.weights.insert(name.clone(), t);
    env.weights_changed = true;
    f.ops[op].attrs.set("name", Attr::Str(name));
}

/// True when `v` is a `graph.weight` result with exactly one use, and no other
/// `graph.weight` op of `f` reads the same name (so rewriting it affects nothing else).
pub(crate) fn exclusive_weight(
    f: &Func,
    uses: &cranelift_entity::SecondaryMap<Value, u32>,
    v: Value,
) -> bool {
    let Some(name) = weight_name(f, v) else {
        return false;
    };
    if uses[v] != 1 {
        return false;
    }
    let same = f
        .body
        .iter()
        .filter(|&&op| {
            let d = &f.ops[op];
            d.opcode == Opcode::Graph(G::Weight) && d.attrs.str("name") == Some(name)
        })
        .count();
    same == 1
}

/// Runs `f` on every calibration set of `env` that fits it and returns, for each value of
/// `values`, its tensors (one per set). Fails when no set fits.
pub(crate) fn capture(
    pass: &'static str,
    f: &Func,
    env: &PassEnv,
    values: &[Value],
) -> Result<Vec<Vec<Tensor>>, PassError> {
    let sets = env.calibration_for(f);
    if sets.is_empty() {
        let params: Vec<String> = f.param_types().iter().map(|t| t.to_string()).collect();
        return Err(PassError::Op {
            pass,
            op: "func",
            loc: f.loc.clone(),
            message: format!(
                "needs calibration inputs (--calibration) for @{} with parameter types ({}); {}",
                f.name,
                params.join(", "),
                if env.calibration.is_empty() {
                    "none were given".to_string()
                } else {
                    format!("none of the {} given sets fits", env.calibration.len())
                }
            ),
        });
    }
    let mut probe = f.clone();
    probe.rets = values.to_vec();
    let mut out = vec![Vec::with_capacity(sets.len()); values.len()];
    for set in sets {
        let outs = run_func(&probe, set, &env.weights).map_err(|e| PassError::Op {
            pass,
            op: "func",
            loc: f.loc.clone(),
            message: format!("calibration run failed: {e}"),
        })?;
        for (slot, t) in out.iter_mut().zip(outs) {
            slot.push(t);
        }
    }
    Ok(out)
}

/// Max |x| per channel (last dim) over every row of every tensor.
pub(crate) fn channel_absmax(ts: &[Tensor]) -> Vec<f64> {
    let d = ts[0].dims().last().copied().unwrap_or(1).max(1);
    let mut m = vec![0.0f64; d];
    for t in ts {
        for row in t.data.chunks(d) {
            for (a, &x) in m.iter_mut().zip(row) {
                *a = a.max(x.abs());
            }
        }
    }
    m
}

/// The rows (last dim = channels) of every tensor, at most `limit` of them, taken evenly.
pub(crate) fn sample_rows(ts: &[Tensor], limit: usize) -> (Vec<f64>, usize) {
    let d = ts[0].dims().last().copied().unwrap_or(1).max(1);
    let rows: Vec<&[f64]> = ts.iter().flat_map(|t| t.data.chunks(d)).collect();
    let n = rows.len();
    let take = n.min(limit.max(1));
    let mut out = Vec::with_capacity(take * d);
    for i in 0..take {
        out.extend_from_slice(rows[i * n / take]);
    }
    (out, take)
}

/// A tensor of `elem` with the given shape, rounding each value to `elem`.
pub(crate) fn tensor(shape: &[usize], elem: Elem, data: Vec<f64>) -> Tensor {
    Tensor::new(
        TensorType::new(shape.iter().map(|&d| d as i64).collect::<Vec<_>>(), elem),
        data,
    )
}

/// Rounds `v` to `elem` (f32 scales are stored and used rounded).
pub(crate) fn round_elem(v: f64, elem: Elem) -> f64 {
    round_to(v, elem)
}
/// Columns `j` of `w` (`[out, in]`) multiplied by `s[j]`.
pub(crate) fn scale_columns(w: &Tensor, s: &[f64]) -> Tensor {
    let n = s.len();
    let data = w
        .data
        .iter()
        .enumerate()
        .map(|(i, &x)| x * s[i % n])
        .collect();
    Tensor::new(w.ty.clone(), data)
}

/// Rows `j` of `w` (`[out, ...]`, or a vector) divided by `s[j]`.
pub(crate) fn divide_rows(w: &Tensor, s: &[f64]) -> Tensor {
    let per = w.data.len() / s.len();
    let data = w
        .data
        .iter()
        .enumerate()
        .map(|(i, &x)| x / s[i / per])
        .collect();
    Tensor::new(w.ty.clone(), data)
}

#[cfg(test)]
mod tests;
