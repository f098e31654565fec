//! Tensor conversions between files and the interpreter, and weight loading.
//!
//! Files hold [`HostTensor`]s (bytes plus a [`DType`]); the interpreter computes on
//! [`Tensor`]s (`f64` elements already rounded to an [`Elem`]). Every element type both
//! sides know converts exactly in both directions: f32, f64, f16, bf16, f8E4M3FN, f8E5M2,
//! the integers, `i1`, and the packed 4-bit types (`i4`, `ui4`, `f4E2M1FN`, two per byte,
//! low nibble first, as the runtime stores them). `i16`/`ui16` have no file dtype and are
//! an error. Weights for `graph.weight` load from a `.safetensors` or `.npz` file.

use std::path::Path;

use half::{bf16, f16};
use lowbit_dialects::interp::{Tensor, Weights};
use lowbit_dialects::ir::{Elem, TensorType};
use lowbit_runtime::{read_tensors, DType, HostTensor, RuntimeError, TensorMap};
use thiserror::Error;

/// Why a tensor could not be converted or loaded.
#[derive(Debug, Error)]
pub enum TensorError {
    /// Reading or writing the file failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The element type has no counterpart on the other side.
    #[error("tensor '{name}' has element type {elem}, which tensor files cannot hold")]
    Unsupported {
        /// The tensor's name.
        name: String,
        /// The element type.
        elem: String,
    },
    /// A value cannot be stored in the target element type.
    #[error("tensor '{name}' holds {value}, which is not a {elem} value")]
    NotRepresentable {
        /// The tensor's name.
        name: String,
        /// The value.
        value: f64,
        /// The element type.
        elem: DType,
    },
}

/// The interpreter element type of a file dtype.
pub fn elem_of(d: DType) -> Elem {
    match d {
        DType::F32 => Elem::F32,
        DType::F64 => Elem::F64,
        DType::F16 => Elem::F16,
        DType::BF16 => Elem::BF16,
        DType::I64 => Elem::I64,
        DType::I32 => Elem::I32,
        DType::I8 => Elem::I8,
        DType::UI8 => Elem::UI8,
        DType::I1 => Elem::I1,
        DType::F8E4M3FN => Elem::F8E4M3FN,
        DType::F8E5M2 => Elem::F8E5M2,
        DType::F4E2M1FN => Elem::F4E2M1FN,
        DType::I4 => Elem::I4,
        DType::UI4 => Elem::UI4,
    }
}

/// The file dtype of an interpreter element type, if files can hold it.
pub fn dtype_of(e: Elem) -> Option<DType> {
    Some(match e {
        Elem::F32 => DType::F32,
        Elem::F64 => DType::F64,
        Elem::F16 => DType::F16,
        Elem::BF16 => DType::BF16,
        Elem::I64 => DType::I64,
        Elem::I32 => DType::I32,
        Elem::I8 => DType::I8,
        Elem::UI8 => DType::UI8,
        Elem::I1 => DType::I1,
        Elem::F8E4M3FN => DType::F8E4M3FN,
        Elem::F8E5M2 => DType::F8E5M2,
        Elem::F4E2M1FN => DType::F4E2M1FN,
        Elem::I4 => DType::I4,
        Elem::UI4 => DType::UI4,
        Elem::I16 | Elem::UI16 => return None,
    })
}

/// The tensor type of a host tensor (`tensor<2x3xf32>`).
pub fn type_of(t: &HostTensor) -> TensorType {
    TensorType::new(
        t.shape().iter().map(|&d| d as i64).collect::<Vec<_>>(),
        elem_of(t.dtype()),
    )
}

fn chunks<const N: usize>(b: &[u8], f: impl Fn([u8; N]) -> f64) -> Vec<f64> {
    b.chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
        .collect()
}

/// A host tensor as an interpreter tensor (exact for every dtype).
pub fn to_interp(t: &HostTensor) -> Tensor {
    let b = t.bytes();
    let data: Vec<f64> = match t.dtype() {
        DType::F64 => chunks(b, f64::from_le_bytes),
        DType::I64 => chunks(b, |c| i64::from_le_bytes(c) as f64),
        DType::I32 => chunks(b, |c| i32::from_le_bytes(c) as f64),
        DType::F16 => chunks(b, |c| f16::from_le_bytes(c).to_f64()),
        DType::BF16 => chunks(b, |c| bf16::from_le_bytes(c).to_f64()),
        // Every value of the remaining types is an f32 exactly.
        _ => t.to_f32_vec().into_iter().map(f64::from).collect(),
    };
    Tensor::new(type_of(t), data)
}

/// An interpreter tensor as a host tensor named `name` (for messages).
pub fn from_interp(name: &str, t: &Tensor) -> Result<HostTensor, TensorError> {
    let Some(dtype) = dtype_of(t.ty.elem) else {
        return Err(TensorError::Unsupported {
            name: name.to_string(),
            elem: t.ty.elem.to_string(),
        });
    };
    let shape: Vec<usize> = t.ty.shape.iter().map(|&d| d as usize).collect();
    let d = &t.data;
    let bytes: Vec<u8> = match dtype {
        DType::F32 => d.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect(),
        DType::F64 => d.iter().flat_map(|&v| v.to_le_bytes()).collect(),
        DType::F16 => d
            .iter()
            .flat_map(|&v| f16::from_f64(v).to_le_bytes())
            .collect(),
        DType::BF16 => d
            .iter()
            .flat_map(|&v| bf16::from_f64(v).to_le_bytes())
            .collect(),
        DType::I64 => d.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect(),
        DType::I32 => d.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect(),
        DType::I8 => d.iter().map(|&v| v as i8 as u8).collect(),
        DType::UI8 => d.iter().map(|&v| v as u8).collect(),
        DType::I1 => d.iter().map(|&v| u8::from(v != 0.0)).collect(),
        DType::F8E4M3FN | DType::F8E5M2 => encode(name, dtype, d, 8)?,
        DType::F4E2M1FN | DType::I4 | DType::UI4 => {
            let codes = encode(name, dtype, d, 4)?;
            let mut packed = vec![0u8; codes.len().div_ceil(2)];
            for (i, c) in codes.into_iter().enumerate() {
                packed[i / 2] |= c << (4 * (i % 2));
            }
            packed
        }
    };
    Ok(HostTensor::from_bytes(dtype, shape, &bytes)?)
}

/// The `bits`-wide codes of `values` in `dtype`, found by decoding every code once.
fn encode(name: &str, dtype: DType, values: &[f64], bits: u32) -> Result<Vec<u8>, TensorError> {
    let table: Vec<f32> = (0..1u16 << bits)
        .map(|c| {
            let probe =
                HostTensor::from_bytes(dtype, [1], &[c as u8]).expect("one code fits one byte");
            probe.to_f32_vec()[0]
        })
        .collect();
    values
        .iter()
        .map(|&v| {
            let hit = if v.is_nan() {
                table.iter().position(|t| t.is_nan())
            } else {
                // Prefer +0 over -0 only when the value is +0: compare bit patterns first.
                table
                    .iter()
                    .position(|&t| (t as f64).to_bits() == v.to_bits())
                    .or_else(|| table.iter().position(|&t| t as f64 == v))
            };
            hit.map(|c| c as u8).ok_or(TensorError::NotRepresentable {
                name: name.to_string(),
                value: v,
                elem: dtype,
            })
        })
        .collect()
}

/// Loads every tensor of a `.safetensors` or `.npz` file as interpreter weights.
pub fn load_weights(path: &Path) -> Result<Weights, TensorError> {
    Ok(read_tensors(path)?
        .iter()
        .map(|(k, t)| (k.clone(), to_interp(t)))
        .collect())
}

/// Interpreter tensors as host tensors, keyed by name.
pub fn to_host_map<'a>(
    tensors: impl IntoIterator<Item = (String, &'a Tensor)>,
) -> Result<TensorMap, TensorError> {
    tensors
        .into_iter()
        .map(|(k, t)| Ok((k.clone(), from_interp(&k, t)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips() {
        for dtype in DType::ALL {
            let elem = elem_of(dtype);
            let vals: Vec<f64> = match elem {
                Elem::I1 => vec![0.0, 1.0, 1.0],
                Elem::UI4 | Elem::UI8 => vec![0.0, 3.0, 15.0],
                Elem::I4 => vec![-8.0, 0.0, 7.0],
                Elem::F4E2M1FN => vec![-6.0, 0.5, 1.5],
                _ => vec![-1.5, 0.0, 3.0],
            };
            let t = Tensor::new(TensorType::new([3], elem), vals);
            let h = from_interp("t", &t).unwrap();
            assert_eq!(h.dtype(), dtype);
            assert_eq!(to_interp(&h), t, "{dtype}");
        }
        let t = Tensor::new(TensorType::new([1], Elem::I16), vec![1.0]);
        assert!(from_interp("t", &t).is_err());
    }
}
