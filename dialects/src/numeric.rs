//! Exact value conversions into every element type.
//!
//! The interpreter computes in `f64` and stores every value rounded to its element type, so
//! an `f16` tensor holds exactly the values an `f16` buffer could. These functions are that
//! rounding: floats round to nearest, ties to even, and saturate to the largest finite value
//! (ONNX's `saturate=1`; `f8E5M2` keeps infinities); integers round half to even and clamp.

use half::{bf16, f16};

use crate::ir::Elem;

/// A small IEEE-like float format: exponent and mantissa bits, and its largest finite value.
struct Minifloat {
    mbits: i32,
    emin: i32,
    max: f64,
    has_inf: bool,
}

fn minifloat(elem: Elem) -> Option<Minifloat> {
    Some(match elem {
        Elem::F8E4M3FN => Minifloat {
            mbits: 3,
            emin: -6,
            max: 448.0,
            has_inf: false,
        },
        Elem::F8E5M2 => Minifloat {
            mbits: 2,
            emin: -14,
            max: 57344.0,
            has_inf: true,
        },
        Elem::F4E2M1FN => Minifloat {
            mbits: 1,
            emin: 0,
            max: 6.0,
            has_inf: false,
        },
        Elem::F16 => Minifloat {
            mbits: 10,
            emin: -14,
            max: f16::MAX.to_f64(),
            has_inf: true,
        },
        Elem::BF16 => Minifloat {
            mbits: 7,
            emin: -126,
            max: bf16::MAX.to_f64(),
            has_inf: true,
        },
        _ => return None,
    })
}

/// Rounds to nearest, ties to even (the IEEE default; `f64::round` ties away from zero).
pub fn round_half_even(v: f64) -> f64 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - v.signum()
    } else {
        r
    }
}

fn round_minifloat(v: f64, m: &Minifloat) -> f64 {
    if v.is_nan() {
        return v;
    }
    let a = v.abs();
    if a.is_infinite() {
        return if m.has_inf { v } else { m.max.copysign(v) };
    }
    if a == 0.0 {
        return v;
    }
    // The binary exponent of `a`, read from its bits (`log2` can round up just below a
    // power of two). `a` is a normal f64 here or below every format's `emin` anyway.
    let e = (((a.to_bits() >> 52) & 0x7ff) as i32 - 1023).max(m.emin);
    let step = 2f64.powi(e - m.mbits);
    let q = round_half_even(a / step) * step;
    q.min(m.max).copysign(v)
}

/// Rounds `v` to the nearest value of the float type `elem` (ties to even, saturating),
/// or rounds half to even and clamps for an integer type. `i1` maps non-zero to 1.
pub fn round_to(v: f64, elem: Elem) -> f64 {
    match elem {
        Elem::F64 => v,
        Elem::F32 => {
            let f = v as f32;
            if f.is_infinite() && v.is_finite() {
                f32::MAX.copysign(f) as f64
            } else {
                f as f64
            }
        }
        // Rounded from f64 directly: going through f32 (as `half`'s conversions do) rounds
        // twice and misses ties.
        Elem::F16 | Elem::BF16 | Elem::F8E4M3FN | Elem::F8E5M2 | Elem::F4E2M1FN => {
            round_minifloat(v, &minifloat(elem).expect("a minifloat type"))
        }
        Elem::I1 => {
            if v != 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Elem::I64
        | Elem::I32
        | Elem::I16
        | Elem::UI16
        | Elem::I8
        | Elem::UI8
        | Elem::I4
        | Elem::UI4 => {
            let (lo, hi) = elem.int_range().expect("an integer type");
            if v.is_nan() {
                return 0.0;
            }
            round_half_even(v).clamp(lo as f64, hi as f64)
        }
    }
}

/// Converts `v` as a cast does (ONNX `Cast` with `saturate = 1`, its default): like
/// [`round_to`], except that
/// - float-to-integer conversion truncates toward zero (C and ONNX semantics) before
///   clamping;
/// - `f8E5M2` saturates infinities too (`±inf → ±57344`: the "Inf" row of the ONNX `Cast`
///   table for float8 with `saturate`; `round_to` keeps them, as an `f8E5M2` buffer can);
/// - `f4E2M1FN`, which has no NaN encoding, maps NaN to a zero with the NaN's sign flipped
///   (what the ONNX reference, `ml_dtypes`' `float4_e2m1fn`, gives: NaN → `-0`).
pub fn cast_to(v: f64, elem: Elem) -> f64 {
    match elem {
        Elem::F8E5M2 if v.is_infinite() => 57344f64.copysign(v),
        Elem::F4E2M1FN if v.is_nan() => 0f64.copysign(-v),
        _ if elem.is_int() && elem != Elem::I1 => round_to(v.trunc(), elem),
        _ => round_to(v, elem),
    }
}

/// Converts `v` as ONNX `Cast` with `saturate = 0` does: for `f8E4M3FN` a value whose
/// rounding (nearest, ties to even, unclamped) exceeds 448, or an infinity, is NaN; for
/// `f8E5M2` it is `±inf`. Every other type converts as [`cast_to`] (`saturate` only
/// concerns the float8 types).
pub fn cast_to_unsaturated(v: f64, elem: Elem) -> f64 {
    let Some(m) = minifloat(elem).filter(|_| matches!(elem, Elem::F8E4M3FN | Elem::F8E5M2)) else {
        return cast_to(v, elem);
    };
    if v.is_nan() {
        return v;
    }
    let over = if m.has_inf {
        f64::INFINITY.copysign(v)
    } else {
        f64::NAN
    };
    let a = v.abs();
    if a.is_infinite() {
        return over;
    }
    if a == 0.0 {
        return v;
    }
    let e = (((a.to_bits() >> 52) & 0x7ff) as i32 - 1023).max(m.emin);
    let step = 2f64.powi(e - m.mbits);
    let q = round_half_even(a / step) * step;
    if q > m.max {
        over
    } else {
        q.copysign(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e4m3_values() {
        // Independently known points of the OCP E4M3FN grid.
        assert_eq!(round_to(448.0, Elem::F8E4M3FN), 448.0);
        assert_eq!(round_to(1000.0, Elem::F8E4M3FN), 448.0);
        assert_eq!(round_to(-1000.0, Elem::F8E4M3FN), -448.0);
        assert_eq!(round_to(0.3, Elem::F8E4M3FN), 0.3125); // step 2^-5 in [0.25, 0.5)
        assert_eq!(round_to(2f64.powi(-9), Elem::F8E4M3FN), 2f64.powi(-9)); // smallest subnormal
        assert_eq!(round_to(2f64.powi(-11), Elem::F8E4M3FN), 0.0); // ties to even: 0.25 step
        assert_eq!(round_to(17.0, Elem::F8E4M3FN), 16.0); // step 2 in [16, 32): tie to even
        assert_eq!(round_to(19.0, Elem::F8E4M3FN), 20.0);
    }

    #[test]
    fn e5m2_and_e2m1_values() {
        assert_eq!(round_to(1e6, Elem::F8E5M2), 57344.0);
        assert_eq!(round_to(f64::INFINITY, Elem::F8E5M2), f64::INFINITY);
        assert_eq!(round_to(0.1, Elem::F8E5M2), 0.09375);
        let grid = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];
        for (x, want) in [
            (0.2, 0.0),
            (0.3, 0.5),
            (1.25, 1.0),
            (1.75, 2.0),
            (2.5, 2.0),
            (3.5, 4.0),
            (5.0, 4.0),
            (5.1, 6.0),
            (9.0, 6.0),
        ] {
            let got = round_to(x, Elem::F4E2M1FN);
            assert!(grid.contains(&got));
            assert_eq!(got, want, "e2m1({x})");
        }
    }

    #[test]
    fn onnx_cast_specials() {
        // Expected values from the ONNX reference (onnx 1.23.2):
        //   from onnx.reference.ops.op_cast import cast_to
        //   cast_to(np.array([inf, -inf, 1e6, -1e6, 57344, 61439, 61440, nan], np.float32),
        //           TensorProto.FLOAT8E5M2, True)
        //   -> [57344, -57344, 57344, -57344, 57344, 57344, 57344, nan]
        //   cast_to(np.array([nan, -nan, inf, -inf, 7, 5, -0.0], np.float32),
        //           TensorProto.FLOAT4E2M1, True)
        //   -> [-0, 0, 6, -6, 6, 4, -0] (bits 8 0 7 15 7 6 8)
        let e5 = [
            (f64::INFINITY, 57344.0),
            (f64::NEG_INFINITY, -57344.0),
            (1e6, 57344.0),
            (-1e6, -57344.0),
            (57344.0, 57344.0),
            (61439.0, 57344.0),
            (61440.0, 57344.0),
        ];
        for (x, want) in e5 {
            assert_eq!(cast_to(x, Elem::F8E5M2), want, "e5m2({x})");
        }
        assert!(cast_to(f64::NAN, Elem::F8E5M2).is_nan());
        // The storage rounding keeps an infinity (an f8E5M2 buffer can hold it).
        assert_eq!(round_to(f64::INFINITY, Elem::F8E5M2), f64::INFINITY);
        let e2 = [
            (f64::NAN, -0.0),
            (-f64::NAN, 0.0),
            (f64::INFINITY, 6.0),
            (f64::NEG_INFINITY, -6.0),
            (7.0, 6.0),
            (5.0, 4.0),
            (-0.0, -0.0),
        ];
        for (x, want) in e2 {
            let got = cast_to(x, Elem::F4E2M1FN);
            assert_eq!(got, want, "e2m1({x})");
            assert_eq!(
                got.is_sign_negative(),
                want.is_sign_negative(),
                "sign of e2m1({x})"
            );
        }
    }

    #[test]
    fn onnx_cast_unsaturated() {
        // Expected values from the ONNX reference (onnx 1.23.2):
        //   cast_to(np.array([inf, -inf, 1e6, -1e6, 57344, 61439, 61440, nan], np.float32),
        //           TensorProto.FLOAT8E5M2, False)
        //   -> [inf, -inf, inf, -inf, 57344, 57344, inf, nan]
        //   cast_to(np.array([inf, -inf, 1e6, 448, 464, 465, -465, 0.3], np.float32),
        //           TensorProto.FLOAT8E4M3FN, False)
        //   -> [nan, nan, nan, 448, 448, nan, nan, 0.3125]
        let inf = f64::INFINITY;
        let e5 = [
            (inf, inf),
            (-inf, -inf),
            (1e6, inf),
            (-1e6, -inf),
            (57344.0, 57344.0),
            (61439.0, 57344.0),
            (61440.0, inf),
        ];
        for (x, want) in e5 {
            assert_eq!(cast_to_unsaturated(x, Elem::F8E5M2), want, "e5m2({x})");
        }
        assert!(cast_to_unsaturated(f64::NAN, Elem::F8E5M2).is_nan());
        for x in [inf, -inf, 1e6, 465.0, -465.0] {
            assert!(cast_to_unsaturated(x, Elem::F8E4M3FN).is_nan(), "e4m3({x})");
        }
        for (x, want) in [(448.0, 448.0), (464.0, 448.0), (0.3, 0.3125)] {
            assert_eq!(cast_to_unsaturated(x, Elem::F8E4M3FN), want, "e4m3({x})");
        }
        // Other types ignore `saturate`.
        assert_eq!(cast_to_unsaturated(-2.7, Elem::I8), -2.0);
        assert_eq!(cast_to_unsaturated(7.0, Elem::F4E2M1FN), 6.0);
    }

    #[test]
    fn ints_and_halves() {
        assert_eq!(round_to(2.5, Elem::I8), 2.0);
        assert_eq!(round_to(-2.5, Elem::I8), -2.0);
        assert_eq!(round_to(3.5, Elem::I8), 4.0);
        assert_eq!(round_to(200.0, Elem::I8), 127.0);
        assert_eq!(round_to(-9.0, Elem::I4), -8.0);
        assert_eq!(round_to(-1.0, Elem::UI4), 0.0);
        assert_eq!(cast_to(-2.7, Elem::I32), -2.0);
        assert_eq!(round_to(65520.0, Elem::F16), 65504.0);
        assert_eq!(round_to(1.0 + 2f64.powi(-11), Elem::F16), 1.0);
        // Just above the tie: rounding through f32 first would land on the tie and go to
        // even (1.0); the correct result is the next f16.
        assert_eq!(
            round_to(1.0 + 2f64.powi(-11) + 2f64.powi(-40), Elem::F16),
            1.0 + 2f64.powi(-10)
        );
        assert_eq!(
            round_to(1.0 + 2f64.powi(-8) + 2f64.powi(-40), Elem::BF16),
            1.0 + 2f64.powi(-7)
        );
        // Subnormals: the smallest f16 subnormal is 2^-24; half of it ties to even (0).
        assert_eq!(round_to(2f64.powi(-25), Elem::F16), 0.0);
        assert_eq!(round_to(3.0 * 2f64.powi(-25), Elem::F16), 2f64.powi(-23));
        // Just below a power of two rounds up to it, not to a coarser grid.
        assert_eq!(round_to(2.0 - 2f64.powi(-30), Elem::F16), 2.0);
        assert_eq!(round_to(f64::INFINITY, Elem::F16), f64::INFINITY);
        assert!(round_to(f64::NAN, Elem::BF16).is_nan());
        assert_eq!(round_to(0.1, Elem::F32), 0.1f32 as f64);
    }
}
