//! Memory-mapped safetensors checkpoints, validated before use.
//!
//! A file is `u64 header length (little endian) · JSON header · data`. The header maps each
//! tensor name to `{dtype, shape, data_offsets: [begin, end]}`, offsets relative to the start
//! of the data. [`SafetensorsFile::open`] maps the file and checks, before anything else
//! reads it: the header length is at most [`MAX_HEADER_BYTES`] and inside the file; the
//! header is a JSON object; every dtype is known; `end - begin` equals the element count
//! times the dtype's size (computed without overflow); every range lies inside the data;
//! no two ranges overlap. After that, reading a tensor cannot go out of bounds.
//!
//! A [`WeightStore`] is one file or a sharded checkpoint (`model.safetensors.index.json`,
//! whose `weight_map` names each tensor's shard). It hands out interpreter [`Tensor`]s,
//! converting every supported dtype to `f64` values exactly.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use lowbit_dialects::dialect::Opcode;
use lowbit_dialects::interp::{Tensor, Weights};
use lowbit_dialects::ir::{Elem, Func, TensorType};
use memmap2::Mmap;
use serde_json::Value as Json;

use super::{ImportError, ImportResult};

/// The largest header accepted (the reference implementation's limit).
pub const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

/// A safetensors element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// `BOOL`.
    Bool,
    /// `U8`.
    U8,
    /// `I8`.
    I8,
    /// `I16`.
    I16,
    /// `I32`.
    I32,
    /// `I64`.
    I64,
    /// `F16`.
    F16,
    /// `BF16`.
    BF16,
    /// `F32`.
    F32,
    /// `F64`.
    F64,
    /// `F8_E4M3`.
    F8E4M3,
    /// `F8_E5M2`.
    F8E5M2,
}

impl Dtype {
    fn from_name(s: &str) -> Option<Dtype> {
        Some(match s {
            "BOOL" => Dtype::Bool,
            "U8" => Dtype::U8,
            "I8" => Dtype::I8,
            "I16" => Dtype::I16,
            "I32" => Dtype::I32,
            "I64" => Dtype::I64,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "F32" => Dtype::F32,
            "F64" => Dtype::F64,
            "F8_E4M3" => Dtype::F8E4M3,
            "F8_E5M2" => Dtype::F8E5M2,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 | Dtype::F8E4M3 | Dtype::F8E5M2 => 1,
            Dtype::I16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }

    /// The interpreter's element type.
    pub fn elem(self) -> Elem {
        match self {
            Dtype::Bool => Elem::I1,
            Dtype::U8 => Elem::UI8,
            Dtype::I8 => Elem::I8,
            Dtype::I16 => Elem::I16,
            Dtype::I32 => Elem::I32,
            Dtype::I64 => Elem::I64,
            Dtype::F16 => Elem::F16,
            Dtype::BF16 => Elem::BF16,
            Dtype::F32 => Elem::F32,
            Dtype::F64 => Elem::F64,
            Dtype::F8E4M3 => Elem::F8E4M3FN,
            Dtype::F8E5M2 => Elem::F8E5M2,
        }
    }

    /// Decodes one little-endian element.
    fn decode(self, b: &[u8]) -> f64 {
        let arr = |n: usize| -> [u8; 8] {
            let mut a = [0u8; 8];
            a[..n].copy_from_slice(&b[..n]);
            a
        };
        match self {
            Dtype::Bool => f64::from(u8::from(b[0] != 0)),
            Dtype::U8 => f64::from(b[0]),
            Dtype::I8 => f64::from(b[0] as i8),
            Dtype::I16 => f64::from(i16::from_le_bytes([b[0], b[1]])),
            Dtype::I32 => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Dtype::I64 => i64::from_le_bytes(arr(8)) as f64,
            Dtype::F16 => f16::from_le_bytes([b[0], b[1]]).to_f64(),
            Dtype::BF16 => bf16::from_le_bytes([b[0], b[1]]).to_f64(),
            Dtype::F32 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Dtype::F64 => f64::from_le_bytes(arr(8)),
            Dtype::F8E4M3 => {
                lowbit_dialects::ir::attrs::float_from_bits(u64::from(b[0]), Elem::F8E4M3FN)
                    .unwrap_or(f64::NAN)
            }
            Dtype::F8E5M2 => {
                lowbit_dialects::ir::attrs::float_from_bits(u64::from(b[0]), Elem::F8E5M2)
                    .unwrap_or(f64::NAN)
            }
        }
    }
}

/// One tensor's header entry, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte range in the file (not relative to the data section).
    pub range: Range<usize>,
}

impl Entry {
    /// The interpreter type of the tensor.
    pub fn tensor_type(&self) -> TensorType {
        TensorType::new(
            self.shape.iter().map(|&d| d as i64).collect::<Vec<_>>(),
            self.dtype.elem(),
        )
    }
}

/// One memory-mapped, validated safetensors file.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    map: Mmap,
    entries: BTreeMap<String, Entry>,
}

impl SafetensorsFile {
    /// Maps and validates `path`.
    pub fn open(path: impl AsRef<Path>) -> ImportResult<SafetensorsFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| ImportError::io(path, &e))?;
        // SAFETY: the map is read-only and lives as long as `self`. A checkpoint modified
        // by another process while mapped is outside what any reader can defend against.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| ImportError::io(path, &e))?;
        let entries = parse_header(&map).map_err(|message| ImportError::Safetensors {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            map,
            entries,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensors, by name.
    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    /// The raw little-endian bytes of a validated entry.
    pub fn bytes(&self, e: &Entry) -> &[u8] {
        &self.map[e.range.clone()]
    }
}

/// Parses and validates a whole file's header; returns the entries with file offsets.
fn parse_header(bytes: &[u8]) -> Result<BTreeMap<String, Entry>, String> {
    let len = bytes.len() as u64;
    let Some(prefix) = bytes.get(..8) else {
        return Err(format!(
            "the file is {len} bytes, shorter than the 8-byte header length"
        ));
    };
    let n = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
    if n > MAX_HEADER_BYTES {
        return Err(format!(
            "the header length {n} exceeds the limit of {MAX_HEADER_BYTES} bytes"
        ));
    }
    if 8 + n > len {
        return Err(format!(
            "the header length {n} runs past the end of the file ({len} bytes)"
        ));
    }
    let data_start = 8 + n as usize;
    let data_len = bytes.len() - data_start;
    let header: Json = serde_json::from_slice(&bytes[8..data_start])
        .map_err(|e| format!("the header is not valid JSON ({e})"))?;
    let Json::Object(obj) = header else {
        return Err("the header is not a JSON object".to_string());
    };
    let mut entries = BTreeMap::new();
    for (name, v) in obj {
        if name == "__metadata__" {
            continue;
        }
        let e = parse_entry(&v, data_len).map_err(|m| format!("tensor '{name}' {m}"))?;
        entries.insert(
            name,
            Entry {
                range: e.range.start + data_start..e.range.end + data_start,
                ..e
            },
        );
    }
    // Empty tensors occupy no bytes and overlap nothing. Among the others, sorted by start,
    // each must begin at or after the furthest end seen so far.
    let mut ranges: Vec<(&String, &Range<usize>)> = entries
        .iter()
        .filter(|(_, e)| !e.range.is_empty())
        .map(|(n, e)| (n, &e.range))
        .collect();
    ranges.sort_by_key(|(n, r)| (r.start, r.end, *n));
    let mut furthest: Option<(&String, &Range<usize>)> = None;
    for (b, rb) in ranges {
        if let Some((a, ra)) = furthest {
            if rb.start < ra.end {
                return Err(format!(
                    "tensors '{a}' and '{b}' overlap (bytes {}..{} and {}..{} of the data)",
                    ra.start - data_start,
                    ra.end - data_start,
                    rb.start - data_start,
                    rb.end - data_start
                ));
            }
        }
        if furthest.is_none_or(|(_, ra)| rb.end > ra.end) {
            furthest = Some((b, rb));
        }
    }
    Ok(entries)
}

/// One header entry, offsets relative to the data section.
fn parse_entry(v: &Json, data_len: usize) -> Result<Entry, String> {
    let obj = v.as_object().ok_or("is not a JSON object")?;
    let dtype_name = obj
        .get("dtype")
        .and_then(Json::as_str)
        .ok_or("has no string 'dtype'")?;
    let dtype =
        Dtype::from_name(dtype_name).ok_or_else(|| format!("has unknown dtype '{dtype_name}'"))?;
    let shape = obj
        .get("shape")
        .and_then(Json::as_array)
        .ok_or("has no 'shape' array")?
        .iter()
        .map(|d| {
            d.as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| format!("has a shape entry {d} that is not a size"))
        })
        .collect::<Result<Vec<usize>, String>>()?;
    let offsets = obj
        .get("data_offsets")
        .and_then(Json::as_array)
        .filter(|a| a.len() == 2)
        .ok_or("has no 'data_offsets' pair")?;
    let off = |i: usize| {
        offsets[i]
            .as_u64()
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(|| format!("has a data offset {} that is not a size", offsets[i]))
    };
    let (begin, end) = (off(0)?, off(1)?);
    if begin > end {
        return Err(format!(
            "has data offsets [{begin}, {end}] that run backwards"
        ));
    }
    if end > data_len {
        return Err(format!(
            "has data offsets [{begin}, {end}] past the end of the data ({data_len} bytes)"
        ));
    }
    let want = shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("has a shape {shape:?} too large to address"))?;
    if want != end - begin {
        return Err(format!(
            "is {dtype_name} {shape:?} ({want} bytes) but its data offsets span {} bytes",
            end - begin
        ));
    }
    Ok(Entry {
        dtype,
        shape,
        range: begin..end,
    })
}

/// The weights of a checkpoint: one safetensors file or the shards of an index.
#[derive(Debug)]
pub struct WeightStore {
    files: Vec<SafetensorsFile>,
    /// Which file holds each tensor.
    index: BTreeMap<String, usize>,
}

impl WeightStore {
    /// Opens a `.safetensors` file, a `.safetensors.index.json`, or a directory holding
    /// `model.safetensors` or `model.safetensors.index.json`.
    pub fn open(path: impl AsRef<Path>) -> ImportResult<WeightStore> {
        let path = path.as_ref();
        if path.is_dir() {
            let single = path.join("model.safetensors");
            let sharded = path.join("model.safetensors.index.json");
            return if single.is_file() {
                WeightStore::open(single)
            } else if sharded.is_file() {
                WeightStore::open(sharded)
            } else {
                Err(ImportError::Io {
                    path: path.to_path_buf(),
                    message: "holds neither model.safetensors nor model.safetensors.index.json"
                        .to_string(),
                })
            };
        }
        if path.to_string_lossy().ends_with(".index.json") {
            return WeightStore::open_sharded(path);
        }
        let file = SafetensorsFile::open(path)?;
        let index = file.entries.keys().map(|k| (k.clone(), 0)).collect();
        Ok(WeightStore {
            files: vec![file],
            index,
        })
    }

    fn open_sharded(path: &Path) -> ImportResult<WeightStore> {
        let bad = |message: String| ImportError::Safetensors {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| ImportError::io(path, &e))?;
        let json: Json = serde_json::from_str(&text)
            .map_err(|e| bad(format!("the index is not valid JSON ({e})")))?;
        let map = json
            .get("weight_map")
            .and_then(Json::as_object)
            .ok_or_else(|| bad("the index has no 'weight_map' object".to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut shards: BTreeMap<String, usize> = BTreeMap::new();
        let mut files = Vec::new();
        let mut index = BTreeMap::new();
        for (name, shard) in map {
            let shard = shard
                .as_str()
                .filter(|s| !s.contains('/') && !s.contains('\\') && !s.starts_with('.'))
                .ok_or_else(|| {
                    bad(format!(
                        "tensor '{name}' names no plain shard file ({shard})"
                    ))
                })?;
            let i = match shards.get(shard) {
                Some(&i) => i,
                None => {
                    files.push(SafetensorsFile::open(dir.join(shard))?);
                    shards.insert(shard.to_string(), files.len() - 1);
                    files.len() - 1
                }
            };
            if !files[i].entries.contains_key(name) {
                return Err(bad(format!(
                    "tensor '{name}' is mapped to '{shard}', which does not hold it"
                )));
            }
            index.insert(name.clone(), i);
        }
        Ok(WeightStore { files, index })
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// The header entry of `name`, if present.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.index.get(name).map(|&i| &self.files[i].entries[name])
    }

    /// The files, in the order they were opened.
    pub fn files(&self) -> &[SafetensorsFile] {
        &self.files
    }

    /// Loads `name` as an interpreter tensor (values exact in `f64`).
    pub fn tensor(&self, name: &str) -> ImportResult<Tensor> {
        let &i = self.index.get(name).ok_or_else(|| ImportError::Weight {
            name: name.to_string(),
            message: "is not in the checkpoint".to_string(),
        })?;
        let file = &self.files[i];
        let e = &file.entries[name];
        let size = e.dtype.size();
        let data = file
            .bytes(e)
            .chunks_exact(size)
            .map(|b| e.dtype.decode(b))
            .collect();
        Ok(Tensor::new(e.tensor_type(), data))
    }

    /// Loads every weight `f` refers to through `graph.weight`.
    pub fn weights_for(&self, f: &Func) -> ImportResult<Weights> {
        let mut out = Weights::new();
        for &op in &f.body {
            let d = &f.ops[op];
            if d.opcode != Opcode::Graph(lowbit_dialects::graph::Op::Weight) {
                continue;
            }
            if let Some(name) = d.attrs.str("name") {
                if !out.contains_key(name) {
                    out.insert(name.to_string(), self.tensor(name)?);
                }
            }
        }
        Ok(out)
    }
}
