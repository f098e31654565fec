//! ONNX tensor data: element types, and the values of a `TensorProto` from `raw_data`, the
//! typed repeated fields, or an external file. `int4`, `uint4` and `float4e2m1` are packed
//! two values a byte, the first in the low nibble (an odd count leaves the last high nibble
//! unused), in `raw_data` and in `int32_data` alike (one byte in each entry), as the ONNX IR
//! says; they become `i4`, `ui4` and `f4E2M1FN`.
//!
//! External data is confined to the model's directory: a `location` that is absolute,
//! contains `..`, or resolves (through symlinks) outside the directory is refused, and the
//! `offset`/`length` range must lie inside the file. External files are memory-mapped and
//! decoded from the map, not read into a buffer first.

use std::path::Path;

use lowbit_dialects::interp::Tensor;
use lowbit_dialects::ir::{Elem, TensorType};

use super::proto::TensorProto;
use super::{OnnxError, OnnxResult};

/// The lowbit element type of an ONNX `TensorProto.DataType` code.
pub fn elem_of(code: i32) -> Option<Elem> {
    Some(match code {
        1 => Elem::F32,
        2 => Elem::UI8,
        3 => Elem::I8,
        4 => Elem::UI16,
        5 => Elem::I16,
        6 => Elem::I32,
        7 => Elem::I64,
        9 => Elem::I1,
        10 => Elem::F16,
        11 => Elem::F64,
        16 => Elem::BF16,
        17 => Elem::F8E4M3FN,
        19 => Elem::F8E5M2,
        21 => Elem::UI4,
        22 => Elem::I4,
        23 => Elem::F4E2M1FN,
        _ => return None,
    })
}

/// The ONNX name of a `DataType` code, for messages.
pub fn type_name(code: i32) -> String {
    let name = match code {
        8 => "string",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        18 => "float8e4m3fnuz (the dialects have no such element type)",
        20 => "float8e5m2fnuz (the dialects have no such element type)",
        24 => "float8e8m0 (the dialects have no such element type)",
        25 => "uint2 (the dialects have no such element type)",
        26 => "int2 (the dialects have no such element type)",
        27 => "float6e2m3 (the dialects have no such element type)",
        28 => "float6e3m2 (the dialects have no such element type)",
        _ => return format!("data type {code}"),
    };
    name.to_string()
}

/// Decodes `t` (its data inline or under `dir` when external) into an interpreter tensor.
pub fn decode(t: &TensorProto, dir: &Path) -> OnnxResult<Tensor> {
    let bad = |message: String| OnnxError::Model(format!("tensor '{}' {message}", t.name));
    let elem = elem_of(t.data_type).ok_or_else(|| {
        bad(format!(
            "has unsupported element type {}",
            type_name(t.data_type)
        ))
    })?;
    if t.dims.iter().any(|&d| d < 0) {
        return Err(bad(format!("has a negative dimension in {:?}", t.dims)));
    }
    let ty = TensorType::new(t.dims.clone(), elem);
    let n = t
        .dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
        .ok_or_else(|| bad("is too large".to_string()))?;
    let data = if t.data_location == 1 {
        let (map, range) = map_external(t, dir)?;
        let bytes = map.as_ref().map_or(&[][..], |m| &m[range]);
        from_raw(bytes, elem, n).map_err(bad)?
    } else if !t.raw_data.is_empty() || n == 0 {
        from_raw(&t.raw_data, elem, n).map_err(bad)?
    } else {
        typed(t, elem, n).map_err(bad)?
    };
    if data.len() != n {
        return Err(bad(format!(
            "holds {} values but its shape {:?} needs {n}",
            data.len(),
            t.dims
        )));
    }
    Ok(Tensor::new(ty, data))
}

/// The values of the typed repeated fields (`float_data`, `int32_data`, ...). 4-bit types
/// are packed in `int32_data` as in `raw_data`: two values in the low byte of each entry,
/// the first in the low nibble.
fn typed(t: &TensorProto, elem: Elem, n: usize) -> Result<Vec<f64>, String> {
    if elem.bits() == 4 {
        let bytes: Vec<u8> = t.int32_data.iter().map(|&v| v as u8).collect();
        return from_raw(&bytes, elem, n);
    }
    Ok(match elem {
        Elem::F32 => t.float_data.iter().map(|&v| f64::from(v)).collect(),
        Elem::F64 => t.double_data.clone(),
        Elem::I64 => t.int64_data.iter().map(|&v| v as f64).collect(),
        Elem::F16 => t
            .int32_data
            .iter()
            .map(|&v| f64::from(half::f16::from_bits(v as u16)))
            .collect(),
        Elem::BF16 => t
            .int32_data
            .iter()
            .map(|&v| f64::from(half::bf16::from_bits(v as u16)))
            .collect(),
        Elem::I16 => t.int32_data.iter().map(|&v| f64::from(v as i16)).collect(),
        Elem::UI16 => t.int32_data.iter().map(|&v| f64::from(v as u16)).collect(),
        Elem::I8 => t.int32_data.iter().map(|&v| f64::from(v as i8)).collect(),
        Elem::UI8 => t.int32_data.iter().map(|&v| f64::from(v as u8)).collect(),
        Elem::F8E4M3FN | Elem::F8E5M2 => t
            .int32_data
            .iter()
            .map(|&v| minifloat(v as u8, elem))
            .collect(),
        _ if !t.uint64_data.is_empty() => t.uint64_data.iter().map(|&v| v as f64).collect(),
        _ => t.int32_data.iter().map(|&v| f64::from(v)).collect(),
    })
}

/// The value of an 8- or 4-bit float code.
fn minifloat(bits: u8, elem: Elem) -> f64 {
    lowbit_dialects::ir::attrs::float_from_bits(u64::from(bits), elem).unwrap_or(f64::NAN)
}

/// The value of a 4-bit code of `elem` (`i4` two's complement, `ui4`, `f4E2M1FN`).
fn nibble(code: u8, elem: Elem) -> f64 {
    match elem {
        Elem::I4 => f64::from(((code << 4) as i8) >> 4),
        Elem::UI4 => f64::from(code),
        _ => minifloat(code, elem),
    }
}

/// Little-endian raw bytes into values. 4-bit types are packed two to a byte, the first
/// value in the low nibble; an odd count leaves the last high nibble unused (ONNX IR).
fn from_raw(bytes: &[u8], elem: Elem, n: usize) -> Result<Vec<f64>, String> {
    if elem.bits() == 4 {
        let need = n.div_ceil(2);
        if bytes.len() != need {
            return Err(format!(
                "has {} bytes of data but {n} packed 4-bit elements need {need}",
                bytes.len()
            ));
        }
        return Ok(bytes
            .iter()
            .flat_map(|&b| [nibble(b & 0xF, elem), nibble(b >> 4, elem)])
            .take(n)
            .collect());
    }
    let width = match elem {
        Elem::F64 | Elem::I64 => 8,
        Elem::F32 | Elem::I32 => 4,
        Elem::F16 | Elem::BF16 | Elem::I16 | Elem::UI16 => 2,
        _ => 1,
    };
    let need = n.checked_mul(width).ok_or("is too large")?;
    if bytes.len() != need {
        return Err(format!(
            "has {} bytes of data but {n} elements need {need}",
            bytes.len()
        ));
    }
    let c = bytes.chunks_exact(width);
    Ok(match elem {
        Elem::F64 => c
            .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")))
            .collect(),
        Elem::I64 => c
            .map(|b| i64::from_le_bytes(b.try_into().expect("8-byte chunk")) as f64)
            .collect(),
        Elem::F32 => c
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4-byte chunk"))))
            .collect(),
        Elem::I32 => c
            .map(|b| f64::from(i32::from_le_bytes(b.try_into().expect("4-byte chunk"))))
            .collect(),
        Elem::F16 => c
            .map(|b| f64::from(half::f16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Elem::BF16 => c
            .map(|b| f64::from(half::bf16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Elem::I16 => c
            .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Elem::UI16 => c
            .map(|b| f64::from(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Elem::I8 => bytes.iter().map(|&b| f64::from(b as i8)).collect(),
        Elem::I1 => bytes.iter().map(|&b| f64::from(u8::from(b != 0))).collect(),
        Elem::F8E4M3FN | Elem::F8E5M2 => bytes.iter().map(|&b| minifloat(b, elem)).collect(),
        _ => bytes.iter().map(|&b| f64::from(b)).collect(),
    })
}

/// Memory-maps the file of an external-data tensor, refusing paths that leave `dir`, and
/// returns the map (`None` for an empty file, which cannot be mapped) with the tensor's byte
/// range in it. The values are decoded straight from the map; the file is never read into
/// a buffer.
fn map_external(
    t: &TensorProto,
    dir: &Path,
) -> OnnxResult<(Option<memmap2::Mmap>, std::ops::Range<usize>)> {
    let entry = |key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    };
    let location = entry("location").unwrap_or_default().to_string();
    let fail = |message: String| OnnxError::ExternalData {
        tensor: t.name.clone(),
        location: location.clone(),
        message,
    };
    let rel = Path::new(&location);
    if location.is_empty() {
        return Err(fail("has no location".to_string()));
    }
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(fail(
            "is refused: external data must be a relative path inside the model's directory"
                .to_string(),
        ));
    }
    let base = dir
        .canonicalize()
        .map_err(|e| fail(format!("cannot be resolved: {e}")))?;
    let path = base
        .join(rel)
        .canonicalize()
        .map_err(|e| fail(format!("cannot be opened: {}", super::io_message(&e))))?;
    if !path.starts_with(&base) {
        return Err(fail(
            "is refused: it resolves (through a symlink) outside the model's directory".to_string(),
        ));
    }
    let file = std::fs::File::open(&path)
        .map_err(|e| fail(format!("cannot be read: {}", super::io_message(&e))))?;
    let size = file
        .metadata()
        .map_err(|e| fail(format!("cannot be read: {}", super::io_message(&e))))?
        .len();
    let size = usize::try_from(size).map_err(|_| fail("is too large".to_string()))?;
    let map = if size == 0 {
        None
    } else {
        // SAFETY: a read-only map, dropped as soon as this tensor is decoded. As with every
        // mapped model file (gguf.rs maps the same way), the file must not be truncated by
        // another process meanwhile; that would fault the reads.
        Some(
            unsafe { memmap2::Mmap::map(&file) }
                .map_err(|e| fail(format!("cannot be mapped: {}", super::io_message(&e))))?,
        )
    };
    let num = |key: &str| -> OnnxResult<Option<usize>> {
        entry(key)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| fail(format!("has a {key} '{v}' that is not a number")))
            })
            .transpose()
    };
    let offset = num("offset")?.unwrap_or(0);
    let end = match num("length")? {
        Some(len) => offset.checked_add(len),
        None => Some(size),
    };
    match end {
        Some(end) if offset <= end && end <= size => Ok((map, offset..end)),
        _ => Err(fail(format!(
            "asks for bytes beyond the end of the file ({size} bytes)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(code: i32, dims: Vec<i64>, raw: Vec<u8>, int32: Vec<i32>) -> TensorProto {
        TensorProto {
            name: "t".into(),
            data_type: code,
            dims,
            raw_data: raw,
            int32_data: int32,
            ..Default::default()
        }
    }

    /// int4 [1, -2, 7, -8, 3]: codes 1, 0xE, 7, 8, 3, two a byte, the first in the low
    /// nibble; the fifth value's byte has an unused high nibble.
    #[test]
    fn int4_values_are_unpacked_low_nibble_first_with_an_odd_count() {
        let want = vec![1.0, -2.0, 7.0, -8.0, 3.0];
        let raw = tensor(22, vec![5], vec![0xE1, 0x87, 0x03], vec![]);
        let t = decode(&raw, Path::new(".")).unwrap();
        assert_eq!(t.ty, TensorType::new(vec![5], Elem::I4));
        assert_eq!(t.data, want);
        let typed = tensor(22, vec![5], vec![], vec![0xE1, 0x87, 0x03]);
        assert_eq!(decode(&typed, Path::new(".")).unwrap().data, want);
        // The same bytes as uint4: 1, 14, 7, 8, 3.
        let u = tensor(21, vec![5], vec![0xE1, 0x87, 0x03], vec![]);
        let t = decode(&u, Path::new(".")).unwrap();
        assert_eq!(t.ty.elem, Elem::UI4);
        assert_eq!(t.data, vec![1.0, 14.0, 7.0, 8.0, 3.0]);
    }

    /// float4e2m1 codes 0x1 (0.5), 0x7 (6), 0xA (-1), 0xF (-6).
    #[test]
    fn float4_values_are_decoded() {
        let t = tensor(23, vec![2, 2], vec![0x71, 0xFA], vec![]);
        assert_eq!(
            decode(&t, Path::new(".")).unwrap().data,
            vec![0.5, 6.0, -1.0, -6.0]
        );
    }

    #[test]
    fn a_wrong_packed_length_is_an_error() {
        let t = tensor(22, vec![5], vec![0xE1, 0x87], vec![]);
        let e = decode(&t, Path::new(".")).unwrap_err().to_string();
        assert_eq!(
            e,
            "tensor 't' has 2 bytes of data but 5 packed 4-bit elements need 3"
        );
    }

    /// int32_data holds 16-bit values sign-extended or as their bit pattern, and float8
    /// values as their codes.
    #[test]
    fn int32_data_of_narrow_types() {
        let t = tensor(5, vec![2], vec![], vec![-2, 0xFFFE]);
        assert_eq!(decode(&t, Path::new(".")).unwrap().data, vec![-2.0, -2.0]);
        let t = tensor(17, vec![2], vec![], vec![0x38, 0xC0]);
        assert_eq!(decode(&t, Path::new(".")).unwrap().data, vec![1.0, -2.0]);
    }
}
