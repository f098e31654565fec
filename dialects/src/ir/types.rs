//! Element and tensor types.
//!
//! Every SSA value in lowbit is a statically shaped tensor (`tensor<1x8x64xf16>`, or the
//! rank-0 `tensor<f32>` for scalars). Element types are plain data ([`Elem`]), spelled as
//! MLIR's builtin types so that the generic text form stays real MLIR. Quantization
//! parameters are never part of a type: scales and zero points are operands.

use std::fmt;

/// An element type. The spellings are MLIR's builtin ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Elem {
    /// IEEE binary64.
    F64,
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
    /// 8-bit float, 4 exponent bits, 3 mantissa bits, finite only (OCP E4M3, max 448).
    F8E4M3FN,
    /// 8-bit float, 5 exponent bits, 2 mantissa bits (OCP E5M2, max 57344, has inf/NaN).
    F8E5M2,
    /// 4-bit float, 2 exponent bits, 1 mantissa bit, finite only (max 6).
    F4E2M1FN,
    /// Signed 64-bit integer (indices, shapes).
    I64,
    /// Signed 32-bit integer (accumulators).
    I32,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    UI16,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer.
    UI8,
    /// Signed 4-bit integer, range [-8, 7].
    I4,
    /// Unsigned 4-bit integer, range [0, 15].
    UI4,
    /// Boolean (masks).
    I1,
}

impl Elem {
    /// Every element type, in a fixed order (for property tests and tables).
    pub const ALL: &'static [Elem] = &[
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
        Elem::I1,
    ];

    /// The MLIR spelling (`f32`, `f8E4M3FN`, `ui4`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Elem::F64 => "f64",
            Elem::F32 => "f32",
            Elem::F16 => "f16",
            Elem::BF16 => "bf16",
            Elem::F8E4M3FN => "f8E4M3FN",
            Elem::F8E5M2 => "f8E5M2",
            Elem::F4E2M1FN => "f4E2M1FN",
            Elem::I64 => "i64",
            Elem::I32 => "i32",
            Elem::I16 => "i16",
            Elem::UI16 => "ui16",
            Elem::I8 => "i8",
            Elem::UI8 => "ui8",
            Elem::I4 => "i4",
            Elem::UI4 => "ui4",
            Elem::I1 => "i1",
        }
    }

    /// Parses an MLIR spelling; `None` when it names no element type lowbit knows.
    pub fn from_name(s: &str) -> Option<Elem> {
        Elem::ALL.iter().copied().find(|e| e.name() == s)
    }

    /// Storage width in bits.
    pub fn bits(self) -> u32 {
        match self {
            Elem::F64 | Elem::I64 => 64,
            Elem::F32 | Elem::I32 => 32,
            Elem::F16 | Elem::BF16 | Elem::I16 | Elem::UI16 => 16,
            Elem::F8E4M3FN | Elem::F8E5M2 | Elem::I8 | Elem::UI8 => 8,
            Elem::F4E2M1FN | Elem::I4 | Elem::UI4 => 4,
            Elem::I1 => 1,
        }
    }

    /// True for the floating-point types.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Elem::F64
                | Elem::F32
                | Elem::F16
                | Elem::BF16
                | Elem::F8E4M3FN
                | Elem::F8E5M2
                | Elem::F4E2M1FN
        )
    }

    /// True for the integer types, `i1` included.
    pub fn is_int(self) -> bool {
        !self.is_float()
    }

    /// True for signed integers.
    pub fn is_signed_int(self) -> bool {
        matches!(
            self,
            Elem::I64 | Elem::I32 | Elem::I16 | Elem::I8 | Elem::I4
        )
    }

    /// The inclusive value range of an integer type, `None` for floats.
    pub fn int_range(self) -> Option<(i64, i64)> {
        Some(match self {
            Elem::I64 => (i64::MIN, i64::MAX),
            Elem::I32 => (i32::MIN as i64, i32::MAX as i64),
            Elem::I16 => (i16::MIN as i64, i16::MAX as i64),
            Elem::UI16 => (0, u16::MAX as i64),
            Elem::I8 => (-128, 127),
            Elem::UI8 => (0, 255),
            Elem::I4 => (-8, 7),
            Elem::UI4 => (0, 15),
            Elem::I1 => (0, 1),
            _ => return None,
        })
    }
}

impl fmt::Display for Elem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A statically shaped tensor type. Rank 0 is a scalar.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorType {
    /// Dimensions, outermost first. All are non-negative: lowbit compiles ahead of time.
    pub shape: Vec<i64>,
    /// Element type.
    pub elem: Elem,
}

impl TensorType {
    /// A tensor type of the given shape and element type.
    pub fn new(shape: impl Into<Vec<i64>>, elem: Elem) -> Self {
        TensorType {
            shape: shape.into(),
            elem,
        }
    }

    /// A rank-0 tensor type.
    pub fn scalar(elem: Elem) -> Self {
        TensorType {
            shape: vec![],
            elem,
        }
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements (the product of the dimensions; 1 for a scalar).
    pub fn num_elements(&self) -> usize {
        self.shape.iter().map(|&d| d.max(0) as usize).product()
    }

    /// The same shape with another element type.
    pub fn with_elem(&self, elem: Elem) -> Self {
        TensorType {
            shape: self.shape.clone(),
            elem,
        }
    }

    /// Normalizes a possibly negative axis against this rank; `None` when out of range.
    pub fn axis(&self, axis: i64) -> Option<usize> {
        let r = self.rank() as i64;
        let a = if axis < 0 { axis + r } else { axis };
        (0..r).contains(&a).then_some(a as usize)
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor<")?;
        for d in &self.shape {
            write!(f, "{d}x")?;
        }
        write!(f, "{}>", self.elem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for &e in Elem::ALL {
            assert_eq!(Elem::from_name(e.name()), Some(e));
        }
        assert_eq!(Elem::from_name("f7"), None);
    }

    #[test]
    fn display() {
        assert_eq!(
            TensorType::new([1, 8, 64], Elem::F16).to_string(),
            "tensor<1x8x64xf16>"
        );
        assert_eq!(TensorType::scalar(Elem::F32).to_string(), "tensor<f32>");
    }

    #[test]
    fn axes() {
        let t = TensorType::new([2, 3, 4], Elem::F32);
        assert_eq!(t.axis(-1), Some(2));
        assert_eq!(t.axis(3), None);
        assert_eq!(t.axis(-4), None);
        assert_eq!(t.num_elements(), 24);
    }
}
