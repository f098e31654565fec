//! Element-type bit patterns and the published code tables.
//!
//! [`decode_bits`] reads the bits of any element type of at most 32 bits as its exact
//! value; [`encode_bits`] rounds a value with [`round_to`] (nearest, ties to even,
//! saturating) and returns its bits. The minifloats follow the OCP 8-bit and MX specs:
//! `f8E4M3FN` (bias 7, no infinities, `S.1111.111` is NaN), `f8E5M2` (bias 15, IEEE
//! infinities and NaNs), `f4E2M1FN` (bias 1, no specials).

use half::{bf16, f16};

use crate::ir::Elem;
use crate::numeric::round_to;

/// The 16 NF4 levels, as bitsandbytes publishes them (`functional.get_4bit_type('nf4')`,
/// and `dDequantizeNF4` in `csrc/kernels.cu`); code `i` decodes to `NF4[i] · absmax`.
#[allow(clippy::excessive_precision)] // the published digits, rounded to f32 as bitsandbytes does
pub const NF4: [f32; 16] = [
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
];

/// OCP FP4 E2M1: code `s.ee.m`, magnitudes `0, 0.5, 1, 1.5, 2, 3, 4, 6`; code 8 is `-0.0`.
pub const E2M1: [f32; 16] = [
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
];

/// ggml's MXFP4 table (`kvalues_mxfp4` halved): E2M1 with `+0.0` for code 8, so a GGUF
/// MXFP4 block dequantizes to exactly ggml's bits.
pub const E2M1_GGML: [f32; 16] = [
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
];

/// `(exponent bits, mantissa bits, ieee specials)` of a minifloat; `ieee` means an
/// all-ones exponent is inf/NaN, otherwise only the all-ones code (if `fn_nan`) is NaN.
fn minifloat(elem: Elem) -> Option<(u32, u32, bool, bool)> {
    match elem {
        Elem::F8E4M3FN => Some((4, 3, false, true)),
        Elem::F8E5M2 => Some((5, 2, true, false)),
        Elem::F4E2M1FN => Some((2, 1, false, false)),
        _ => None,
    }
}

/// The exact value of the bit pattern `bits` of `elem` (the low `elem.bits()` bits; higher
/// bits are ignored). Integer types read as two's complement when signed. `f64` and `i64`
/// do not fit 32 bits and give NaN.
pub fn decode_bits(elem: Elem, bits: u32) -> f64 {
    if let Some((eb, mb, ieee, fn_nan)) = minifloat(elem) {
        let width = 1 + eb + mb;
        let bits = bits & ((1 << width) - 1);
        let sign = if bits >> (eb + mb) == 1 { -1.0 } else { 1.0 };
        let e = (bits >> mb) & ((1 << eb) - 1);
        let m = bits & ((1 << mb) - 1);
        let emax = (1 << eb) - 1;
        let bias = (1i32 << (eb - 1)) - 1;
        if ieee && e == emax {
            return if m == 0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            };
        }
        if fn_nan && e == emax && m == (1 << mb) - 1 {
            return f64::NAN;
        }
        let mag = if e == 0 {
            m as f64 * 2f64.powi(1 - bias - mb as i32)
        } else {
            ((1 << mb) + m) as f64 * 2f64.powi(e as i32 - bias - mb as i32)
        };
        return sign * mag;
    }
    match elem {
        Elem::F32 => f32::from_bits(bits) as f64,
        Elem::F16 => f16::from_bits(bits as u16).to_f64(),
        Elem::BF16 => bf16::from_bits(bits as u16).to_f64(),
        Elem::I32 | Elem::I16 | Elem::I8 | Elem::I4 => {
            let sh = 32 - elem.bits();
            (((bits << sh) as i32) >> sh) as f64
        }
        Elem::UI16 | Elem::UI8 | Elem::UI4 | Elem::I1 => {
            (bits & (u32::MAX >> (32 - elem.bits()))) as f64
        }
        Elem::F64 | Elem::I64 => f64::NAN,
        Elem::F8E4M3FN | Elem::F8E5M2 | Elem::F4E2M1FN => unreachable!("minifloats handled above"),
    }
}

/// The bits of `v` rounded to `elem` ([`round_to`]: nearest, ties to even, saturating).
/// `None` where `elem` has no encoding for it (NaN in `f4E2M1FN` or an integer type) or is
/// wider than 32 bits.
pub fn encode_bits(elem: Elem, v: f64) -> Option<u32> {
    let r = round_to(v, elem);
    if let Some((eb, mb, ieee, fn_nan)) = minifloat(elem) {
        let sign = (r.is_sign_negative() as u32) << (eb + mb);
        let emax = (1u32 << eb) - 1;
        if r.is_nan() {
            return match (ieee, fn_nan) {
                (true, _) => Some((emax << mb) | 1 << (mb - 1)),
                (false, true) => Some((emax << mb) | ((1 << mb) - 1)),
                (false, false) => None,
            };
        }
        let a = r.abs();
        if a.is_infinite() {
            return Some(sign | emax << mb);
        }
        if a == 0.0 {
            return Some(sign);
        }
        let bias = (1i32 << (eb - 1)) - 1;
        let e = ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023;
        let emin = 1 - bias;
        let (field, m) = if e < emin {
            (0, a / 2f64.powi(emin - mb as i32))
        } else {
            (
                (e + bias) as u32,
                (a / 2f64.powi(e) - 1.0) * (1 << mb) as f64,
            )
        };
        return Some(sign | field << mb | m as u32);
    }
    match elem {
        Elem::F32 => Some((r as f32).to_bits()),
        Elem::F16 => Some(f16::from_f64(r).to_bits() as u32),
        Elem::BF16 => Some(bf16::from_f64(r).to_bits() as u32),
        Elem::I32 | Elem::I16 | Elem::I8 | Elem::I4 | Elem::UI16 | Elem::UI8 | Elem::UI4 => {
            (!r.is_nan()).then(|| (r as i64 as u32) & (u32::MAX >> (32 - elem.bits())))
        }
        Elem::I1 => Some(r as u32),
        Elem::F64 | Elem::I64 => None,
        Elem::F8E4M3FN | Elem::F8E5M2 | Elem::F4E2M1FN => unreachable!("minifloats handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes() {
        assert_eq!(decode_bits(Elem::F8E4M3FN, 0x7E), 448.0);
        assert_eq!(decode_bits(Elem::F8E4M3FN, 0x01), 2f64.powi(-9));
        assert_eq!(decode_bits(Elem::F8E4M3FN, 0x38), 1.0);
        assert!(decode_bits(Elem::F8E4M3FN, 0xFF).is_nan());
        assert_eq!(decode_bits(Elem::F8E5M2, 0x7B), 57344.0);
        assert_eq!(decode_bits(Elem::F8E5M2, 0xFC), f64::NEG_INFINITY);
        assert_eq!(decode_bits(Elem::F4E2M1FN, 0x7), 6.0);
        assert_eq!(decode_bits(Elem::I4, 0xF), -1.0);
        assert_eq!(encode_bits(Elem::F8E4M3FN, 1000.0), Some(0x7E));
        assert_eq!(encode_bits(Elem::F8E4M3FN, -0.0), Some(0x80));
        assert_eq!(encode_bits(Elem::F8E4M3FN, f64::NAN), Some(0x7F));
        assert_eq!(encode_bits(Elem::I4, -1.0), Some(0xF));
    }

    #[test]
    fn tables_match_the_element_type() {
        for (c, &v) in E2M1.iter().enumerate() {
            assert_eq!(
                decode_bits(Elem::F4E2M1FN, c as u32).to_bits(),
                (v as f64).to_bits()
            );
        }
    }
}
