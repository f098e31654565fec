//! GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
//! Pre-trained Transformers", 2023): rounds a `[out, in]` weight column by column, each
//! rounding error spread over the columns not yet rounded so as to minimize the layer loss
//! `‖(Ŵ − W) Xᵀ‖²` on calibration inputs `X` (`H = XᵀX`). APPROX, like every rounding.
//!
//! The variant, in the order the steps run:
//! 1. Dead inputs (`H_ii = 0`: always zero in calibration) get `H_ii = 1` and a zero weight
//!    column.
//! 2. Act-order (optional): columns in order of decreasing `H_ii` (stable), the inputs that
//!    carry the most energy first, while the least error has accumulated.
//! 3. Damping: `H += damp · mean(diag H) · I`, then `U` = the upper Cholesky factor of `H⁻¹`
//!    (`H⁻¹ = UᵀU`).
//! 4. For each column `j` in order: when it is the first of its quantization group to come
//!    up, the group's scale and zero point are computed ([`QConfig::group_params`]) from
//!    the group's columns as they stand then (updated by the errors spread so far); the
//!    column is rounded with them, `e = (w_j − ŵ_j) / U_jj`, and `w_k −= e · U_jk` for every
//!    later column `k`.
//!
//! Groups are the storage format's contiguous groups of input channels (`c / group`), also
//! under act-order ("static groups"), so the output is an ordinary group-quantized weight
//! with no permutation index. The reference GPTQ code batches the updates 128 columns at a
//! time for speed; the result is the same up to float rounding.

use nalgebra::DMatrix;

use super::quantize_weights::{QConfig, QWeight};

/// GPTQ options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GptqOptions {
    /// Damping, as a fraction of the mean of `diag H`.
    pub damp: f64,
    /// Columns by decreasing `H_ii`.
    pub act_order: bool,
}

impl Default for GptqOptions {
    fn default() -> Self {
        GptqOptions {
            damp: 0.01,
            act_order: true,
        }
    }
}

/// Why GPTQ could not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GptqError {
    /// The calibration inputs hold NaN or infinite values.
    #[error("its calibration inputs hold NaN or infinite values")]
    NonFinite,
    /// The damped Hessian has no Cholesky factor (damp 0 with rank-deficient calibration
    /// data, or a Hessian that is not `XᵀX`).
    #[error("the damped Hessian of its calibration inputs is not positive definite (raise damp)")]
    NotPositiveDefinite,
}

/// The Hessian `XᵀX` (`inn × inn`, row-major) of `rows` rows of `x`.
pub fn hessian(x: &[f64], rows: usize, inn: usize) -> Vec<f64> {
    let m = DMatrix::from_row_slice(rows, inn, &x[..rows * inn]);
    let h = m.transpose() * &m;
    // DMatrix is column-major; H is symmetric, so its storage is also the row-major form.
    h.as_slice().to_vec()
}

/// GPTQ of `w` (`[out, in]`, row-major) under the Hessian `hess` (`[in, in]`).
pub fn gptq(
    cfg: &QConfig,
    opts: &GptqOptions,
    w: &[f64],
    out: usize,
    inn: usize,
    hess: &[f64],
) -> Result<QWeight, GptqError> {
    if hess.iter().any(|v| !v.is_finite()) {
        return Err(GptqError::NonFinite);
    }
    let g = cfg.group_len(inn);
    let groups = inn.div_ceil(g);
    let mut h = DMatrix::from_row_slice(inn, inn, hess);
    let mut w = w.to_vec();
    for i in 0..inn {
        if h[(i, i)] == 0.0 {
            h[(i, i)] = 1.0;
            for o in 0..out {
                w[o * inn + i] = 0.0;
            }
        }
    }
    let mut perm: Vec<usize> = (0..inn).collect();
    if opts.act_order {
        // Stable: equal energies keep their channel order.
        perm.sort_by(|&a, &b| h[(b, b)].total_cmp(&h[(a, a)]));
    }
    // Permuted copies: column j of `wp` is input channel perm[j].
    let mut wp = vec![0.0; out * inn];
    for o in 0..out {
        for (j, &c) in perm.iter().enumerate() {
            wp[o * inn + j] = w[o * inn + c];
        }
    }
    let mut hp = DMatrix::from_fn(inn, inn, |r, c| h[(perm[r], perm[c])]);
    let mean = (0..inn).map(|i| hp[(i, i)]).sum::<f64>() / inn as f64;
    for i in 0..inn {
        hp[(i, i)] += opts.damp * mean;
    }
    let inv = hp
        .cholesky()
        .ok_or(GptqError::NotPositiveDefinite)?
        .inverse();
    // U = Lᵀ; row j of U is column j of L, contiguous in nalgebra's column-major storage.
    let l = inv
        .cholesky()
        .ok_or(GptqError::NotPositiveDefinite)?
        .unpack();
    let u = l.as_slice();
    let urow = |j: usize| &u[j * inn..(j + 1) * inn];
    if u.iter().any(|v| !v.is_finite()) || (0..inn).any(|j| urow(j)[j] <= 0.0) {
        return Err(GptqError::NotPositiveDefinite);
    }
    let mut q = vec![0.0; out * inn];
    let mut scales = vec![0.0; out * groups];
    let mut zeros = vec![0.0; out * groups];
    let mut ready = vec![false; groups];
    let mut pos = vec![0; inn];
    for (j, &c) in perm.iter().enumerate() {
        pos[c] = j;
    }
    let mut e = vec![0.0; out];
    for j in 0..inn {
        let c = perm[j];
        let k = c / g;
        if !ready[k] {
            for o in 0..out {
                let row = &wp[o * inn..(o + 1) * inn];
                let cols = k * g..((k + 1) * g).min(inn);
                let (s, z) = cfg.group_params(cols.map(|cc| row[pos[cc]]));
                scales[o * groups + k] = s;
                zeros[o * groups + k] = z;
            }
            ready[k] = true;
        }
        let uj = urow(j);
        let d = uj[j];
        for o in 0..out {
            let (s, z) = (scales[o * groups + k], zeros[o * groups + k]);
            let v = wp[o * inn + j];
            let qc = cfg.code(v, s, z);
            q[o * inn + c] = qc;
            e[o] = (v - (qc - z) * s) / d;
        }
        for o in 0..out {
            let row = &mut wp[o * inn..(o + 1) * inn];
            let eo = e[o];
            if eo != 0.0 {
                for (r, &ujk) in row[j + 1..].iter_mut().zip(&uj[j + 1..]) {
                    *r -= eo * ujk;
                }
            }
        }
    }
    Ok(QWeight {
        q,
        scales,
        zeros: (!cfg.sym).then_some(zeros),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::super::round_elem;
    use super::*;
    use lowbit_dialects::ir::Elem;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn layer_loss(w: &[f64], wq: &[f64], x: &[f64], rows: usize, inn: usize) -> f64 {
        let out = w.len() / inn;
        let mut l = 0.0;
        for r in 0..rows {
            let xr = &x[r * inn..(r + 1) * inn];
            for o in 0..out {
                let d: f64 = (0..inn)
                    .map(|i| (w[o * inn + i] - wq[o * inn + i]) * xr[i])
                    .sum();
                l += d * d;
            }
        }
        l
    }

    /// Correlated inputs with a few loud channels, as transformer activations have.
    fn data(rows: usize, inn: usize, out: usize) -> (Vec<f64>, Vec<f64>) {
        let mut seed = 7;
        let mut x = vec![0.0; rows * inn];
        for r in 0..rows {
            let common = lcg(&mut seed);
            for i in 0..inn {
                let loud = if i % 16 == 3 { 8.0 } else { 1.0 };
                x[r * inn + i] = loud * (lcg(&mut seed) + 0.5 * common);
            }
        }
        let w = (0..out * inn).map(|_| lcg(&mut seed) * 0.1).collect();
        (x, w)
    }

    #[test]
    fn gptq_lowers_the_layer_loss_below_round_to_nearest() {
        let (rows, inn, out) = (256, 64, 24);
        let (x, w) = data(rows, inn, out);
        let h = hessian(&x, rows, inn);
        for cfg in [
            QConfig {
                bits: 4,
                group: 16,
                sym: false,
            },
            QConfig {
                bits: 4,
                group: 0,
                sym: true,
            },
        ] {
            let rtn = cfg.dequantize(&cfg.quantize(&w, out, inn), out, inn);
            for act_order in [false, true] {
                let opts = GptqOptions {
                    damp: 0.01,
                    act_order,
                };
                let qw = gptq(&cfg, &opts, &w, out, inn, &h).unwrap();
                let deq = cfg.dequantize(&qw, out, inn);
                let (lr, lg) = (
                    layer_loss(&w, &rtn, &x, rows, inn),
                    layer_loss(&w, &deq, &x, rows, inn),
                );
                eprintln!("{cfg:?} act_order {act_order}: GPTQ {lg:.3} RTN {lr:.3}");
                assert!(
                    lg < 0.8 * lr,
                    "{cfg:?} act_order {act_order}: {lg} vs RTN {lr}"
                );
                // Codes stay in range; scales are f32 values.
                let (lo, hi) = if cfg.sym { (-8.0, 7.0) } else { (0.0, 15.0) };
                assert!(qw.q.iter().all(|&c| c >= lo && c <= hi && c == c.round()));
                assert!(qw.scales.iter().all(|&s| s == round_elem(s, Elem::F32)));
            }
        }
    }

    #[test]
    fn with_a_diagonal_hessian_and_no_damping_gptq_is_round_to_nearest() {
        // U is diagonal, so no error moves to another column: every column is rounded
        // as it is, with the group parameters of the untouched weights.
        let (inn, out) = (32, 5);
        let (_, w) = data(1, inn, out);
        let h: Vec<f64> = (0..inn * inn)
            .map(|k| {
                if k / inn == k % inn {
                    1.0 + (k / inn) as f64
                } else {
                    0.0
                }
            })
            .collect();
        let cfg = QConfig {
            bits: 4,
            group: 8,
            sym: false,
        };
        let opts = GptqOptions {
            damp: 0.0,
            act_order: true,
        };
        assert_eq!(
            gptq(&cfg, &opts, &w, out, inn, &h).unwrap(),
            cfg.quantize(&w, out, inn)
        );
    }

    #[test]
    fn dead_inputs_get_zero_weights_and_bad_hessians_are_errors() {
        let (rows, inn, out) = (4, 16, 3);
        let (mut x, w) = data(rows, inn, out);
        for r in 0..rows {
            x[r * inn + 5] = 0.0;
        }
        let h = hessian(&x, rows, inn);
        let cfg = QConfig {
            bits: 4,
            group: 8,
            sym: true,
        };
        let qw = gptq(&cfg, &GptqOptions::default(), &w, out, inn, &h).unwrap();
        assert!((0..out).all(|o| qw.q[o * inn + 5] == 0.0));
        let undamped = GptqOptions {
            damp: 0.0,
            act_order: false,
        };
        let mut indefinite = h.clone();
        indefinite[2 * inn + 2] = -1.0;
        assert_eq!(
            gptq(&cfg, &undamped, &w, out, inn, &indefinite),
            Err(GptqError::NotPositiveDefinite)
        );
        let mut nan = h;
        nan[3] = f64::NAN;
        assert_eq!(
            gptq(&cfg, &GptqOptions::default(), &w, out, inn, &nan),
            Err(GptqError::NonFinite)
        );
    }
}
