//! Tensor files: named tensors read from and written to `.npz` or `.safetensors`.
//!
//! The format is chosen by the file extension ([`TensorFormat::from_path`]).
//! Every failure (a missing file, an unknown extension, a malformed or
//! truncated file, an element type the format cannot hold) is a
//! [`RuntimeError`] naming the path; nothing here panics on bad input.
//!
//! Writes are atomic: the data goes to a temporary file in the destination's
//! directory, which is renamed over the destination only once complete, so a
//! failed write leaves no half-written file behind.
//!
//! Element types per format:
//! * npz holds `f64 f32 f16 i64 i32 i8 ui8 i1` (numpy `<f8 <f4 <f2 <i8 <i4 |i1
//!   |u1 |b1`); big-endian and Fortran-order arrays are converted on reading.
//! * safetensors holds every [`DType`]. Packed sub-byte types (`i4`, `ui4`,
//!   `f4E2M1FN`) are stored as a flat `U8` tensor of their packed bytes, with
//!   the logical dtype and shape recorded in the header's `__metadata__` under
//!   `lowbit:<name>` as `{"dtype":"i4","shape":[..]}`. A plain `F4` tensor is
//!   read as `f4E2M1FN`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use npyz::zip::write::FileOptions;
use npyz::zip::{CompressionMethod, ZipArchive, ZipWriter};
use npyz::{Endianness, NpyFile, Order, TypeChar, TypeStr, WriterBuilder};
use safetensors::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};

use crate::error::{RuntimeError, RuntimeResult};
use crate::manifest::{DType, TensorSpec};
use crate::tensor::{AlignedBytes, HostTensor};

/// Named tensors, in name order.
pub type TensorMap = BTreeMap<String, HostTensor>;

/// A tensor file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorFormat {
    /// A numpy `.npz` archive (a zip of `.npy` files).
    Npz,
    /// A `.safetensors` file.
    Safetensors,
}

impl TensorFormat {
    /// The format named by `path`'s extension (`.npz` or `.safetensors`).
    pub fn from_path(path: &Path) -> RuntimeResult<TensorFormat> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("npz") => Ok(TensorFormat::Npz),
            Some("safetensors") => Ok(TensorFormat::Safetensors),
            _ => Err(RuntimeError::UnknownExtension {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Reads every tensor of a `.npz` or `.safetensors` file.
pub fn read_tensors(path: impl AsRef<Path>) -> RuntimeResult<TensorMap> {
    let path = path.as_ref();
    match TensorFormat::from_path(path)? {
        TensorFormat::Npz => read_npz(path),
        TensorFormat::Safetensors => read_safetensors(path),
    }
}

/// Writes `tensors` to a `.npz` or `.safetensors` file, atomically.
pub fn write_tensors(path: impl AsRef<Path>, tensors: &TensorMap) -> RuntimeResult<()> {
    let path = path.as_ref();
    match TensorFormat::from_path(path)? {
        TensorFormat::Npz => write_npz(path, tensors),
        TensorFormat::Safetensors => write_safetensors(path, tensors),
    }
}

/// Writes a file atomically: `write` fills a temporary file (given by path and
/// handle) in `path`'s directory, which is then synced and renamed to `path`.
/// On any error the temporary file is removed and `path` is left untouched.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&Path, &mut File) -> RuntimeResult<()>,
) -> RuntimeResult<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".lowbit-tmp-")
        .tempfile_in(dir)
        .map_err(|e| RuntimeError::io("create a temporary file in", dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    write(&tmp_path, tmp.as_file_mut())?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| RuntimeError::io("write", path, e))?;
    tmp.persist(path)
        .map_err(|e| RuntimeError::io("rename a temporary file to", path, e.error))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// npz

/// The numpy type string of `dtype`, or `None` when npy cannot hold it.
fn npy_type(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::F64 => "<f8",
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::I64 => "<i8",
        DType::I32 => "<i4",
        DType::I8 => "|i1",
        DType::UI8 => "|u1",
        DType::I1 => "|b1",
        DType::BF16
        | DType::F8E4M3FN
        | DType::F8E5M2
        | DType::F4E2M1FN
        | DType::I4
        | DType::UI4 => return None,
    })
}

/// The element type of a numpy type string, or `None` when unsupported.
fn dtype_of_npy(ts: &TypeStr) -> Option<DType> {
    let size = ts.size_field();
    Some(match (ts.type_char(), size) {
        (TypeChar::Float, 8) => DType::F64,
        (TypeChar::Float, 4) => DType::F32,
        (TypeChar::Float, 2) => DType::F16,
        (TypeChar::Int, 8) => DType::I64,
        (TypeChar::Int, 4) => DType::I32,
        (TypeChar::Int, 1) => DType::I8,
        (TypeChar::Uint, 1) => DType::UI8,
        (TypeChar::Bool, 1) => DType::I1,
        _ => return None,
    })
}

/// Reads every array of a `.npz` file.
pub fn read_npz(path: impl AsRef<Path>) -> RuntimeResult<TensorMap> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| RuntimeError::io("read", path, e))?;
    let mut zip = ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| RuntimeError::malformed(path, format!("not a zip archive ({e})")))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(npyz::npz::array_name_from_file_name)
        .map(str::to_string)
        .collect();
    let mut tensors = TensorMap::new();
    for name in names {
        let member = zip
            .by_name(&npyz::npz::file_name_from_array_name(&name))
            .map_err(|e| RuntimeError::malformed(path, format!("array `{name}`: {e}")))?;
        let member_size = member.size();
        let tensor = read_npy_member(path, &name, member, member_size)?;
        tensors.insert(name, tensor);
    }
    Ok(tensors)
}

/// Reads one `.npy` member of an archive, `member_size` bytes long (its header
/// included), which bounds what the header may ask to allocate.
fn read_npy_member(
    path: &Path,
    name: &str,
    member: impl Read,
    member_size: u64,
) -> RuntimeResult<HostTensor> {
    let bad = |reason: String| RuntimeError::malformed(path, format!("array `{name}`: {reason}"));
    let npy = NpyFile::new(member).map_err(|e| bad(format!("bad npy header ({e})")))?;
    let npyz::DType::Plain(ts) = npy.dtype() else {
        return Err(RuntimeError::UnsupportedDType {
            path: path.to_path_buf(),
            name: name.to_string(),
            dtype: npy.dtype().descr(),
        });
    };
    let dtype = dtype_of_npy(&ts).ok_or_else(|| RuntimeError::UnsupportedDType {
        path: path.to_path_buf(),
        name: name.to_string(),
        dtype: ts.to_string(),
    })?;
    let shape = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| bad(format!("shape {:?} is too large", npy.shape())))?;
    let byte_len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| dtype.checked_byte_size(n))
        .filter(|&b| b as u64 <= member_size)
        .ok_or_else(|| {
            bad(format!(
                "shape {shape:?} needs more data than the file holds"
            ))
        })?;
    let order = npy.order();
    let endianness = ts.endianness();
    let mut data = AlignedBytes::zeroed(byte_len);
    npy.into_inner()
        .read_exact(&mut data)
        .map_err(|e| bad(format!("data is truncated ({e})")))?;
    let elem = dtype.alignment();
    if endianness == Endianness::Big && elem > 1 {
        data.chunks_exact_mut(elem).for_each(<[u8]>::reverse);
    }
    if order == Order::Fortran && shape.len() > 1 {
        data = fortran_to_c(&data, &shape, elem);
    }
    HostTensor::from_aligned(dtype, shape, data)
}

/// Reorders column-major (Fortran) element data into row-major order.
fn fortran_to_c(src: &[u8], shape: &[usize], elem: usize) -> AlignedBytes {
    let mut out = AlignedBytes::zeroed(src.len());
    // Fortran strides, in elements: the first dimension varies fastest.
    let mut strides = vec![1usize; shape.len()];
    for i in 1..shape.len() {
        strides[i] = strides[i - 1] * shape[i - 1];
    }
    let mut index = vec![0usize; shape.len()];
    for dst in out.chunks_exact_mut(elem) {
        let offset: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        dst.copy_from_slice(&src[offset * elem..(offset + 1) * elem]);
        // Advance the row-major multi-index: the last dimension varies fastest.
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

/// Writes `tensors` to a `.npz` file (uncompressed, as `numpy.savez` does), atomically.
pub fn write_npz(path: impl AsRef<Path>, tensors: &TensorMap) -> RuntimeResult<()> {
    let path = path.as_ref();
    let mut types = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let ts: TypeStr = npy_type(t.dtype())
            .ok_or_else(|| RuntimeError::UnsupportedDType {
                path: path.to_path_buf(),
                name: name.clone(),
                dtype: format!(
                    "{} (npz holds only f64 f32 f16 i64 i32 i8 ui8 i1; use .safetensors)",
                    t.dtype()
                ),
            })?
            .parse()
            .expect("npy_type returns valid numpy type strings");
        types.push(ts);
    }
    write_atomic(path, |_, file| {
        let io_err = |e: std::io::Error| RuntimeError::io("write", path, e);
        let zip_err = |e: npyz::zip::result::ZipError| RuntimeError::io("write", path, e.into());
        let mut zip = ZipWriter::new(BufWriter::new(file));
        for ((name, t), ts) in tensors.iter().zip(types) {
            let options = FileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .large_file(t.bytes().len() as u64 >= u64::from(u32::MAX) - 4096);
            zip.start_file(npyz::npz::file_name_from_array_name(name), options)
                .map_err(zip_err)?;
            let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
            npyz::WriteOptions::new_header_only()
                .dtype(npyz::DType::Plain(ts))
                .shape(&shape)
                .writer(&mut zip)
                .write_header_only()
                .map_err(io_err)?;
            zip.write_all(t.bytes()).map_err(io_err)?;
        }
        let mut buffered = zip.finish().map_err(zip_err)?;
        buffered.flush().map_err(io_err)
    })
}

// ---------------------------------------------------------------------------
// safetensors

/// The `__metadata__` key recording a packed tensor's logical dtype and shape.
fn packed_key(name: &str) -> String {
    format!("lowbit:{name}")
}

/// The logical type of a packed tensor, as stored in `__metadata__`.
#[derive(Serialize, Deserialize)]
struct PackedInfo {
    dtype: DType,
    shape: Vec<usize>,
}

/// The safetensors dtype of a non-packed `dtype` (`None` for packed types).
pub(crate) fn safetensors_dtype(dtype: DType) -> Option<Dtype> {
    Some(match dtype {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::I8 => Dtype::I8,
        DType::UI8 => Dtype::U8,
        DType::I1 => Dtype::BOOL,
        DType::F8E4M3FN => Dtype::F8_E4M3,
        DType::F8E5M2 => Dtype::F8_E5M2,
        DType::F4E2M1FN | DType::I4 | DType::UI4 => return None,
    })
}

/// The element type a plain safetensors dtype is read as.
fn dtype_of_safetensors(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::F4 => DType::F4E2M1FN,
        Dtype::F6_E2M3 | Dtype::F6_E3M2 | Dtype::F8_E8M0 => return None,
        other => DType::ALL
            .into_iter()
            .find(|&d| safetensors_dtype(d) == Some(other))?,
    })
}

/// Whether a safetensors entry (`dtype`, `shape`, `byte_len` bytes) holds a
/// tensor of `spec`'s dtype and shape, under the conventions of this module:
/// a packed spec matches a `U8`/`I8` entry of exactly its packed byte size, or
/// (for `f4E2M1FN`) an `F4` entry of its shape.
pub(crate) fn entry_matches(
    spec: &TensorSpec,
    dtype: Dtype,
    shape: &[usize],
    byte_len: usize,
) -> bool {
    if byte_len != spec.byte_size() {
        return false;
    }
    match safetensors_dtype(spec.dtype) {
        Some(d) => d == dtype && shape == spec.shape.as_slice(),
        None => {
            matches!(dtype, Dtype::U8 | Dtype::I8)
                || (spec.dtype == DType::F4E2M1FN
                    && dtype == Dtype::F4
                    && shape == spec.shape.as_slice())
        }
    }
}

/// Reads every tensor of a `.safetensors` file (memory-mapped, then copied).
pub fn read_safetensors(path: impl AsRef<Path>) -> RuntimeResult<TensorMap> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| RuntimeError::io("read", path, e))?;
    // SAFETY: the map is read-only and dropped before returning; a file truncated
    // by another process meanwhile is outside what this function guards against.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| RuntimeError::io("map", path, e))?;
    let st = SafeTensors::deserialize(&map).map_err(|e| RuntimeError::malformed(path, e))?;
    let (_, metadata) =
        SafeTensors::read_metadata(&map).map_err(|e| RuntimeError::malformed(path, e))?;
    let extra = metadata.metadata().clone().unwrap_or_default();
    let mut tensors = TensorMap::new();
    for (name, view) in st.iter() {
        let tensor = tensor_from_view(path, name, view.dtype(), view.shape(), view.data(), &extra)?;
        tensors.insert(name.to_string(), tensor);
    }
    Ok(tensors)
}

/// Builds the host tensor of one safetensors entry.
fn tensor_from_view(
    path: &Path,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    data: &[u8],
    metadata: &HashMap<String, String>,
) -> RuntimeResult<HostTensor> {
    let bad = |reason: String| RuntimeError::malformed(path, format!("tensor `{name}`: {reason}"));
    if let Some(info) = metadata.get(&packed_key(name)) {
        let info: PackedInfo = serde_json::from_str(info)
            .map_err(|e| bad(format!("bad `{}` metadata ({e})", packed_key(name))))?;
        let spec = TensorSpec::new(name, info.dtype, info.shape);
        if !entry_matches(&spec, dtype, shape, data.len()) {
            return Err(bad(format!(
                "stored as {dtype:?} {shape:?}, which cannot hold {}",
                spec.describe()
            )));
        }
        return HostTensor::from_bytes(spec.dtype, spec.shape, data);
    }
    let ours = dtype_of_safetensors(dtype).ok_or_else(|| RuntimeError::UnsupportedDType {
        path: path.to_path_buf(),
        name: name.to_string(),
        dtype: format!("{dtype:?}"),
    })?;
    HostTensor::from_bytes(ours, shape.to_vec(), data).map_err(|e| bad(e.to_string()))
}

/// A borrowed tensor as the safetensors serializer sees it.
struct EntryView<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: &'a [u8],
}

impl View for EntryView<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Writes `tensors` to a `.safetensors` file, atomically.
pub fn write_safetensors(path: impl AsRef<Path>, tensors: &TensorMap) -> RuntimeResult<()> {
    let path = path.as_ref();
    let mut metadata = HashMap::new();
    let mut views = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let view = match safetensors_dtype(t.dtype()) {
            Some(dtype) => EntryView {
                dtype,
                shape: t.shape().to_vec(),
                data: t.bytes(),
            },
            None => {
                let info = PackedInfo {
                    dtype: t.dtype(),
                    shape: t.shape().to_vec(),
                };
                let json = serde_json::to_string(&info).expect("packed info serializes");
                metadata.insert(packed_key(name), json);
                EntryView {
                    dtype: Dtype::U8,
                    shape: vec![t.bytes().len()],
                    data: t.bytes(),
                }
            }
        };
        views.push((name.as_str(), view));
    }
    let metadata = (!metadata.is_empty()).then_some(metadata);
    write_atomic(path, |tmp_path, _| {
        safetensors::serialize_to_file(views, metadata, tmp_path)
            .map_err(|e| RuntimeError::io("write", path, std::io::Error::other(e.to_string())))
    })
}
