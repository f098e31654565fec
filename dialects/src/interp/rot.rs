//! Reference semantics of the `rot` dialect.
//!
//! Both ops multiply every lane along `axis` by a matrix from the right:
//! `y[.., j, ..] = Σ_i x[.., i, ..] · R[i, j]`, with `R = H_n / √n` for `hadamard` and the
//! operand `r` for `rotate`. Sums run in `f64`; results round once.
//!
//! `hadamard` never builds the `n × n` matrix: with `H_n = H_K ⊗ H_{2^m}`
//! ([`crate::rot::hadamard`]), a lane read as `K` rows of `2^m` is transformed row by row
//! with the fast Walsh–Hadamard butterfly, then mixed across rows by `H_K`, then divided
//! by `√n` — `O(n (m + K))` work per lane, so hidden sizes such as 14336 stay cheap.

use super::util::{dims_str, map_lanes, shape_of};
use super::{EvalCx, EvalResult};
use crate::rot::hadamard::{base_hadamard, factorization, fwht};
use crate::rot::Op;

/// Evaluates one `rot` op.
pub fn eval(op: Op, cx: &EvalCx<'_>) -> EvalResult {
    let x = cx.arg(0)?;
    let shape = shape_of(&x.ty);
    let axis = cx.axis("axis", shape.len())?;
    let n = shape[axis];
    let data = match op {
        Op::Hadamard => {
            let none = || format!("has no Hadamard matrix of size {n} (dim {axis})");
            let (k, p) = factorization(n).ok_or_else(none)?;
            let hk = base_hadamard(k).ok_or_else(none)?;
            let norm = (n as f64).sqrt();
            map_lanes(&x.data, &shape, axis, |lane| {
                for row in lane.chunks_mut(p) {
                    fwht(row);
                }
                if k > 1 {
                    let t = lane.to_vec();
                    for c in 0..k {
                        for d in 0..p {
                            lane[c * p + d] = (0..k).map(|a| hk[a * k + c] * t[a * p + d]).sum();
                        }
                    }
                }
                for v in lane.iter_mut() {
                    *v /= norm;
                }
            })
        }
        Op::Rotate => {
            let r = cx.arg(1)?;
            if r.dims() != [n, n] {
                return Err(format!(
                    "rotation matrix has shape {} but dim {axis} of x is {n}",
                    dims_str(&r.dims())
                ));
            }
            map_lanes(&x.data, &shape, axis, |lane| {
                // out_j = Σ_i x_i · R[i, j], accumulated in order of i (as a left-to-right
                // sum per j would) but reading R row by row: a column walk of a large R
                // misses the cache on every element.
                let src = lane.to_vec();
                lane.fill(-0.0);
                for (i, v) in src.iter().enumerate() {
                    let row = &r.data[i * n..(i + 1) * n];
                    for (out, rv) in lane.iter_mut().zip(row) {
                        *out += v * rv;
                    }
                }
            })
        }
    };
    Ok(vec![cx.output(0, &shape, data)?])
}
