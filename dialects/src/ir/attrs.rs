//! Op attributes: typed constants attached to an op by name.
//!
//! Attributes print in MLIR's attribute syntax (`-1 : i64`, `1.250000e-01 : f32`,
//! `array<i64: 0, 1>`, `"text"`, `dense<[1.0, 2.0]> : tensor<2xf32>`), so the generic form
//! parses with MLIR's own parser. An [`Attrs`] list is kept sorted by name: printing is
//! deterministic and lookups are binary searches.

use std::fmt;

use super::types::{Elem, TensorType};

/// A dense constant tensor: its type and its elements (row-major) as `f64`.
///
/// `f64` holds every value of every element type lowbit has exactly (integers up to 2^53).
/// `values` is `None` for an elided constant (`dense_resource<__elided__>`), which prints
/// and parses but cannot be evaluated.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseAttr {
    /// The constant's type.
    pub ty: TensorType,
    /// Row-major elements; `None` when elided.
    pub values: Option<Vec<f64>>,
}

/// One attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// `true` / `false`.
    Bool(bool),
    /// An integer, printed `-1 : i64`.
    Int(i64),
    /// A float with its MLIR type (`f32` or `f64`), printed `1.250000e-01 : f32`.
    Float(f64, Elem),
    /// A string, printed quoted.
    Str(String),
    /// A list of integers, printed `array<i64: 0, 1>`.
    Ints(Vec<i64>),
    /// A list of floats, printed `array<f64: 1.0, 2.0>`.
    Floats(Vec<f64>),
    /// A dense constant tensor.
    Dense(DenseAttr),
}

/// The kind of an attribute, as op tables declare it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    /// [`Attr::Bool`].
    Bool,
    /// [`Attr::Int`].
    Int,
    /// [`Attr::Float`].
    Float,
    /// [`Attr::Str`].
    Str,
    /// [`Attr::Ints`].
    Ints,
    /// [`Attr::Floats`].
    Floats,
    /// [`Attr::Dense`].
    Dense,
}

impl AttrKind {
    /// A lowercase name for messages.
    pub fn describe(self) -> &'static str {
        match self {
            AttrKind::Bool => "a bool",
            AttrKind::Int => "an integer",
            AttrKind::Float => "a float",
            AttrKind::Str => "a string",
            AttrKind::Ints => "an integer array",
            AttrKind::Floats => "a float array",
            AttrKind::Dense => "a dense tensor",
        }
    }
}

impl Attr {
    /// This attribute's kind.
    pub fn kind(&self) -> AttrKind {
        match self {
            Attr::Bool(_) => AttrKind::Bool,
            Attr::Int(_) => AttrKind::Int,
            Attr::Float(..) => AttrKind::Float,
            Attr::Str(_) => AttrKind::Str,
            Attr::Ints(_) => AttrKind::Ints,
            Attr::Floats(_) => AttrKind::Floats,
            Attr::Dense(_) => AttrKind::Dense,
        }
    }
}

/// Attributes of one op, sorted by name, names unique.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attrs(Vec<(String, Attr)>);

impl Attrs {
    /// No attributes.
    pub fn new() -> Self {
        Attrs(Vec::new())
    }

    /// Sets `name` to `value`, replacing an earlier value.
    pub fn set(&mut self, name: impl Into<String>, value: Attr) {
        let name = name.into();
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    /// Builder form of [`Attrs::set`].
    pub fn with(mut self, name: impl Into<String>, value: Attr) -> Self {
        self.set(name, value);
        self
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Attr> {
        let i = self
            .0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        Some(self.0.remove(i).1)
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Attr> {
        let i = self
            .0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        Some(&self.0[i].1)
    }

    /// All attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Attr)> {
        self.0.iter().map(|(n, a)| (n.as_str(), a))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An integer attribute.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            Attr::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// A float attribute (an integer attribute is accepted and converted).
    pub fn float(&self, name: &str) -> Option<f64> {
        match self.get(name)? {
            Attr::Float(v, _) => Some(*v),
            Attr::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// A bool attribute.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Attr::Bool(v) => Some(*v),
            _ => None,
        }
    }

    /// A string attribute.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Attr::Str(v) => Some(v),
            _ => None,
        }
    }

    /// An integer-array attribute.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.get(name)? {
            Attr::Ints(v) => Some(v),
            _ => None,
        }
    }

    /// A float-array attribute.
    pub fn floats(&self, name: &str) -> Option<&[f64]> {
        match self.get(name)? {
            Attr::Floats(v) => Some(v),
            _ => None,
        }
    }

    /// A dense-tensor attribute.
    pub fn dense(&self, name: &str) -> Option<&DenseAttr> {
        match self.get(name)? {
            Attr::Dense(v) => Some(v),
            _ => None,
        }
    }
}

/// Formats a float as an MLIR float literal: always with a `.` before any exponent, and
/// non-finite values as the hexadecimal bit pattern of `ty` (MLIR's own convention).
pub fn format_float(v: f64, ty: Elem) -> String {
    if !v.is_finite() {
        return match ty {
            Elem::F64 => format!("0x{:016X}", v.to_bits()),
            _ => format!("0x{:08X}", (v as f32).to_bits()),
        };
    }
    let s = if ty == Elem::F64 {
        format!("{v:?}")
    } else {
        format!("{:?}", v as f32)
    };
    match s.find('e') {
        Some(i) if !s[..i].contains('.') => format!("{}.0{}", &s[..i], &s[i..]),
        _ => s,
    }
}

/// Elements above which a dense constant prints elided (unless printing asks for all).
pub const ELIDE_LIMIT: usize = 16;

/// Writes `attr` in MLIR syntax. Large dense constants are elided when `elide` is set.
pub fn write_attr(f: &mut dyn fmt::Write, attr: &Attr, elide: bool) -> fmt::Result {
    match attr {
        Attr::Bool(b) => write!(f, "{b}"),
        Attr::Int(v) => write!(f, "{v} : i64"),
        Attr::Float(v, ty) => write!(f, "{} : {ty}", format_float(*v, *ty)),
        Attr::Str(s) => write_string(f, s),
        Attr::Ints(v) => {
            f.write_str("array<i64")?;
            for (i, x) in v.iter().enumerate() {
                write!(f, "{}{x}", if i == 0 { ": " } else { ", " })?;
            }
            f.write_str(">")
        }
        Attr::Floats(v) => {
            f.write_str("array<f64")?;
            for (i, x) in v.iter().enumerate() {
                let sep = if i == 0 { ": " } else { ", " };
                write!(f, "{sep}{}", format_float(*x, Elem::F64))?;
            }
            f.write_str(">")
        }
        Attr::Dense(d) => write_dense(f, d, elide),
    }
}

/// Writes a string literal with MLIR's escapes (`\"`, `\\`, `\n`, `\XX` hex for the rest).
pub fn write_string(f: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for b in s.bytes() {
        match b {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\t' => f.write_str("\\t")?,
            0x20..=0x7e => f.write_char(b as char)?,
            _ => write!(f, "\\{b:02X}")?,
        }
    }
    f.write_char('"')
}

fn write_elem_value(f: &mut dyn fmt::Write, v: f64, elem: Elem) -> fmt::Result {
    match elem {
        Elem::I1 => write!(f, "{}", v != 0.0),
        e if e.is_int() => write!(f, "{}", v as i64),
        Elem::F64 => f.write_str(&format_float(v, Elem::F64)),
        // Non-finite values print as the element type's bit pattern, which MLIR reads
        // (`0x7C00 : f16`); f32 bits when the type cannot encode the value.
        e if !v.is_finite() => match nonfinite_hex(v, e) {
            Some(hex) => f.write_str(&hex),
            None => f.write_str(&format_float(v, Elem::F32)),
        },
        // Narrow floats print in f32 precision; every one of their values is exact there.
        _ => f.write_str(&format_float(v, Elem::F32)),
    }
}

/// The hexadecimal bit pattern of a non-finite value in a narrow float type, when the type
/// has one.
fn nonfinite_hex(v: f64, ty: Elem) -> Option<String> {
    Some(match ty {
        Elem::F16 => format!("0x{:04X}", half::f16::from_f64(v).to_bits()),
        Elem::BF16 => format!("0x{:04X}", half::bf16::from_f64(v).to_bits()),
        Elem::F8E5M2 if v.is_nan() => "0x7E".to_string(),
        Elem::F8E5M2 if v < 0.0 => "0xFC".to_string(),
        Elem::F8E5M2 => "0x7C".to_string(),
        Elem::F8E4M3FN if v.is_nan() => "0x7F".to_string(),
        _ => return None,
    })
}

/// The value of the bit pattern `bits` of the float type `ty`, as MLIR reads a hexadecimal
/// literal of that type; `None` when `bits` is wider than the type (or `ty` is no float).
pub fn float_from_bits(bits: u64, ty: Elem) -> Option<f64> {
    let fits = |w: u32| bits < (1u64 << w);
    Some(match ty {
        Elem::F64 => f64::from_bits(bits),
        Elem::F32 if fits(32) => f32::from_bits(bits as u32) as f64,
        Elem::F16 if fits(16) => half::f16::from_bits(bits as u16).to_f64(),
        Elem::BF16 if fits(16) => half::bf16::from_bits(bits as u16).to_f64(),
        Elem::F8E4M3FN if fits(8) => minifloat_from_bits(bits, 4, 3, false),
        Elem::F8E5M2 if fits(8) => minifloat_from_bits(bits, 5, 2, true),
        Elem::F4E2M1FN if fits(4) => minifloat_from_bits(bits, 2, 1, false),
        _ => return None,
    })
}

/// Decodes an OCP minifloat with `ebits` exponent bits (bias `2^(ebits-1) - 1`) and `mbits`
/// mantissa bits. With `ieee` an all-ones exponent means infinity or NaN (E5M2); otherwise
/// there are no infinities and only the all-ones 8-bit pattern is NaN (E4M3FN; E2M1FN has
/// neither).
fn minifloat_from_bits(bits: u64, ebits: u32, mbits: u32, ieee: bool) -> f64 {
    let sign = if (bits >> (ebits + mbits)) & 1 == 1 {
        -1.0
    } else {
        1.0
    };
    let emax = (1u64 << ebits) - 1;
    let mmax = (1u64 << mbits) - 1;
    let (e, m) = ((bits >> mbits) & emax, bits & mmax);
    if ieee && e == emax {
        return if m == 0 {
            sign * f64::INFINITY
        } else {
            f64::NAN
        };
    }
    if !ieee && ebits + mbits == 7 && e == emax && m == mmax {
        return f64::NAN;
    }
    let bias = (1i32 << (ebits - 1)) - 1;
    let frac = m as f64 / (mmax + 1) as f64;
    if e == 0 {
        sign * frac * 2f64.powi(1 - bias)
    } else {
        sign * (1.0 + frac) * 2f64.powi(e as i32 - bias)
    }
}

fn write_dense(f: &mut dyn fmt::Write, d: &DenseAttr, elide: bool) -> fmt::Result {
    let values = match &d.values {
        Some(v) if !(elide && v.len() > ELIDE_LIMIT) => v,
        _ => return write!(f, "dense_resource<__elided__> : {}", d.ty),
    };
    f.write_str("dense<")?;
    let splat = values.len() > 1 && values.iter().all(|v| v.to_bits() == values[0].to_bits());
    if splat || d.ty.rank() == 0 {
        write_elem_value(f, values[0], d.ty.elem)?;
    } else {
        write_nested(f, values, &d.ty.shape, d.ty.elem)?;
    }
    write!(f, "> : {}", d.ty)
}

fn write_nested(f: &mut dyn fmt::Write, values: &[f64], shape: &[i64], elem: Elem) -> fmt::Result {
    f.write_char('[')?;
    if shape.len() == 1 {
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_elem_value(f, *v, elem)?;
        }
    } else {
        let n = shape[0].max(0) as usize;
        let stride = values.len().checked_div(n).unwrap_or(0);
        for i in 0..n {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_nested(f, &values[i * stride..(i + 1) * stride], &shape[1..], elem)?;
        }
    }
    f.write_char(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(a: &Attr) -> String {
        let mut s = String::new();
        write_attr(&mut s, a, true).unwrap();
        s
    }

    #[test]
    fn sorted_and_unique() {
        let a = Attrs::new()
            .with("b", Attr::Int(1))
            .with("a", Attr::Bool(true))
            .with("b", Attr::Int(2));
        let names: Vec<_> = a.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(a.int("b"), Some(2));
    }

    #[test]
    fn hex_bit_patterns() {
        assert_eq!(float_from_bits(0x7C00, Elem::F16), Some(f64::INFINITY));
        assert_eq!(float_from_bits(0xFF80, Elem::BF16), Some(f64::NEG_INFINITY));
        assert_eq!(float_from_bits(0x7E, Elem::F8E4M3FN), Some(448.0));
        assert!(float_from_bits(0x7F, Elem::F8E4M3FN).unwrap().is_nan());
        assert_eq!(float_from_bits(0x01, Elem::F8E4M3FN), Some(2f64.powi(-9)));
        assert_eq!(float_from_bits(0x7B, Elem::F8E5M2), Some(57344.0));
        assert_eq!(float_from_bits(0xFC, Elem::F8E5M2), Some(f64::NEG_INFINITY));
        assert_eq!(float_from_bits(0x7, Elem::F4E2M1FN), Some(6.0));
        assert_eq!(float_from_bits(0x9, Elem::F4E2M1FN), Some(-0.5));
        assert_eq!(float_from_bits(0x7F800000, Elem::F16), None);
        let d = |elem, v| DenseAttr {
            ty: TensorType::new([2], elem),
            values: Some(vec![1.0, v]),
        };
        for (elem, want) in [
            (Elem::F16, "dense<[1.0, 0xFC00]> : tensor<2xf16>"),
            (Elem::BF16, "dense<[1.0, 0xFF80]> : tensor<2xbf16>"),
            (Elem::F8E5M2, "dense<[1.0, 0xFC]> : tensor<2xf8E5M2>"),
            (Elem::F32, "dense<[1.0, 0xFF800000]> : tensor<2xf32>"),
            (
                Elem::F64,
                "dense<[1.0, 0xFFF0000000000000]> : tensor<2xf64>",
            ),
        ] {
            assert_eq!(show(&Attr::Dense(d(elem, f64::NEG_INFINITY))), want);
        }
    }

    #[test]
    fn mlir_spellings() {
        assert_eq!(show(&Attr::Float(0.125, Elem::F32)), "0.125 : f32");
        assert_eq!(show(&Attr::Float(1e-5, Elem::F32)), "1.0e-5 : f32");
        assert_eq!(
            show(&Attr::Float(f64::NEG_INFINITY, Elem::F32)),
            "0xFF800000 : f32"
        );
        assert_eq!(show(&Attr::Ints(vec![0, 2, 1])), "array<i64: 0, 2, 1>");
        assert_eq!(show(&Attr::Ints(vec![])), "array<i64>");
        assert_eq!(show(&Attr::Str("a\"b".into())), "\"a\\\"b\"");
        let d = DenseAttr {
            ty: TensorType::new([2, 2], Elem::F32),
            values: Some(vec![1.0, 2.0, 3.0, 4.5]),
        };
        assert_eq!(
            show(&Attr::Dense(d)),
            "dense<[[1.0, 2.0], [3.0, 4.5]]> : tensor<2x2xf32>"
        );
        let d = DenseAttr {
            ty: TensorType::new([3], Elem::I1),
            values: Some(vec![1.0, 1.0, 1.0]),
        };
        assert_eq!(show(&Attr::Dense(d)), "dense<true> : tensor<3xi1>");
        let d = DenseAttr {
            ty: TensorType::new([64], Elem::F32),
            values: Some(vec![0.5; 63].into_iter().chain([1.0]).collect()),
        };
        assert_eq!(
            show(&Attr::Dense(d)),
            "dense_resource<__elided__> : tensor<64xf32>"
        );
    }
}
