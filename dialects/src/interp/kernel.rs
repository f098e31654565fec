//! Reference semantics of the `kernel` dialect.
//!
//! Each kernel is the composition it fuses, computed in `f64` with one rounding of the
//! result (a fused kernel rounds nothing in between):
//!
//! - `gemm`: `epilogue(a · b + bias)` with `b` read as `[N, K]` when `transpose_b`;
//!   `relu(x) = max(x, 0)`, `gelu(x) = x/2 · (1 + erf(x/√2))`,
//!   `gelu_tanh(x) = x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`, `silu(x) = x · σ(x)`,
//!   the same formulas as `graph.gelu` / `graph.silu`.
//! - `attention`: exactly `attn.sdpa`.
//! - `add_layer_norm`: `s = x + residual`, then `(s - mean) / sqrt(var + epsilon) · gamma +
//!   beta` over the last dim, `var` the population variance.

use super::util::{matmul, shape_of, transpose_last2};
use super::{EvalCx, EvalResult, Tensor};
use crate::kernel::Op;

/// Evaluates one `kernel` op.
pub fn eval(op: Op, cx: &EvalCx<'_>) -> EvalResult {
    let t = match op {
        Op::Gemm => gemm(cx)?,
        Op::Attention => super::attn::sdpa(cx)?,
        Op::AddLayerNorm => add_layer_norm(cx)?,
    };
    Ok(vec![t])
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn epilogue(name: &str) -> Result<fn(f64) -> f64, String> {
    Ok(match name {
        "none" => |x| x,
        "relu" => |x| if x < 0.0 { 0.0 } else { x },
        "gelu" => |x| 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        "gelu_tanh" => |x| {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        },
        "silu" => |x| x * sigmoid(x),
        other => {
            return Err(format!(
                "epilogue must be \"none\", \"relu\", \"gelu\", \"gelu_tanh\" or \"silu\", not \"{other}\""
            ))
        }
    })
}

fn gemm(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (a, b) = (cx.arg(0)?, cx.arg(1)?);
    let f = epilogue(cx.str("epilogue")?)?;
    let (bs, bd) = if cx.bool("transpose_b")? {
        transpose_last2(&b.data, &b.dims())?
    } else {
        (b.dims(), b.data.clone())
    };
    if a.dims().len() < 2 || bs.len() != 2 {
        return Err(format!(
            "a must have rank 2 or more and b rank 2, found {} and {}",
            a.ty, b.ty
        ));
    }
    let (shape, mut data) = matmul(&a.data, &a.dims(), &bd, &bs)?;
    let n = bs[1];
    if let Some(bias) = cx.opt_arg(2) {
        if bias.dims() != [n] {
            return Err(format!("bias {} must be [N] with N = {n}", bias.ty));
        }
        for (i, x) in data.iter_mut().enumerate() {
            *x += bias.data[i % n];
        }
    }
    for x in &mut data {
        *x = f(*x);
    }
    cx.output(0, &shape, data)
}

fn add_layer_norm(cx: &EvalCx<'_>) -> Result<Tensor, String> {
    let (x, r, gamma, beta) = (cx.arg(0)?, cx.arg(1)?, cx.arg(2)?, cx.arg(3)?);
    let eps = cx.float("epsilon")?;
    let shape = shape_of(&x.ty);
    if r.dims() != shape {
        return Err(format!(
            "x and residual shapes differ: {} vs {}",
            x.ty, r.ty
        ));
    }
    let d = *shape.last().ok_or("x must have rank 1 or more")?;
    if gamma.dims() != [d] || beta.dims() != [d] {
        return Err(format!(
            "gamma {} and beta {} must be [{d}]",
            gamma.ty, beta.ty
        ));
    }
    let mut data = Vec::with_capacity(x.data.len());
    if d > 0 {
        for (xr, rr) in x.data.chunks(d).zip(r.data.chunks(d)) {
            let s: Vec<f64> = xr.iter().zip(rr).map(|(a, b)| a + b).collect();
            let mean = s.iter().sum::<f64>() / d as f64;
            let var = s.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
            let sigma = (var + eps).sqrt();
            data.extend(
                s.iter()
                    .enumerate()
                    .map(|(c, v)| (v - mean) / sigma * gamma.data[c] + beta.data[c]),
            );
        }
    }
    cx.output(0, &shape, data)
}
