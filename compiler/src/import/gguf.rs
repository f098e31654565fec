//! GGUF files (versions 2 and 3, little-endian): a validated reader, and the `llama`
//! architecture imported through the Llama builder ([`super::llama`]).
//!
//! A file is `"GGUF" · u32 version · u64 tensor count · u64 metadata count · metadata
//! key/values · tensor infos · padding to general.alignment (default 32) · data`. A metadata
//! value is one of 13 types (integers, floats, bool, string, typed array; arrays may nest).
//! A tensor info is its name, up to four dims `ne` (fastest first, so `ne = [in, out]` is
//! PyTorch's `[out, in]`), its ggml type and its offset in the data. [`parse_gguf`] checks,
//! before anything reads tensor data: the magic and version; every count, string and array
//! length against the bytes left (so no allocation exceeds the file's size); unique keys
//! and names; the alignment (a power of two); each tensor's type is a storage format of
//! the registry ([`lowbit_dialects::formats`]) and its row length a whole number of blocks;
//! each offset aligned and each byte range inside the data, computed without overflow.
//! Every failure is one sentence.
//!
//! Import keeps the weights in their GGUF format. A block-quantized tensor `[rows, cols]`
//! is split, by the registry's unpacking, into its fields as typed tensors — a relayout of
//! the same bits, never a dequantization: `<name>:codes` (`i4` for Q4_0 as `q − 8`, `ui4`
//! for Q4_1/Q4_K, `i8` for Q8_0, and Q5_0/Q6_K as `q − 16`/`q − 32`), `<name>:scale` (f16
//! `[rows, cols/block]`), `<name>:min` (Q4_1's `m`, Q4_K's `dmin`), and the K-quants'
//! sub-block `<name>:sub_scale` / `<name>:sub_min`. The IR recombines them with
//! `lowbit.dequantize` and f32 `graph` ops in the registry's rounding order, so the
//! dequantized weights are bit-identical to gguf-py / ggml. llama.cpp's convert script
//! permutes the rows of `attn_q` / `attn_k` so that its interleaved RoPE applies; the
//! import undoes that row permutation (rows are whole blocks, so this too is a relayout)
//! and the IR uses Hugging Face's rotate-half RoPE, giving Hugging Face's KV cache layout.
//! The tokenizer metadata (`tokenizer.*`) is kept, uninterpreted, in [`GgufImport::metadata`].

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use lowbit_dialects::formats::{self, Array, Decode, Format, Role, Zero};
use lowbit_dialects::interp::Tensor;
use lowbit_dialects::ir::{Elem, TensorType};
use memmap2::Mmap;

use super::llama::{
    build, Derived, Entry, LlamaConfig, LlamaDims, LlamaImport, ModelWeights, Quant, RopeScaling,
    Source, Weighing, WeightForm,
};
use super::{ImportError, ImportResult};

/// `"GGUF"` as a little-endian u32.
const MAGIC: &[u8; 4] = b"GGUF";
/// Deepest array nesting accepted.
const MAX_DEPTH: usize = 8;
/// GGML's limit on tensor rank.
const MAX_DIMS: usize = 4;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// `UINT8`.
    U8(u8),
    /// `INT8`.
    I8(i8),
    /// `UINT16`.
    U16(u16),
    /// `INT16`.
    I16(i16),
    /// `UINT32`.
    U32(u32),
    /// `INT32`.
    I32(i32),
    /// `FLOAT32`.
    F32(f32),
    /// `BOOL`.
    Bool(bool),
    /// `STRING` (invalid UTF-8 replaced).
    Str(String),
    /// `ARRAY`, with its element type code.
    Array(u32, Vec<MetaValue>),
    /// `UINT64`.
    U64(u64),
    /// `INT64`.
    I64(i64),
    /// `FLOAT64`.
    F64(f64),
}

impl MetaValue {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short rendering: scalars in full, arrays as `[N x type]`.
    pub fn summary(&self) -> String {
        match self {
            MetaValue::Array(t, v) => format!("[{} x {}]", v.len(), type_name(*t)),
            MetaValue::Str(s) if s.chars().count() > 60 => {
                format!("{:?}...", s.chars().take(60).collect::<String>())
            }
            MetaValue::Str(s) => format!("{s:?}"),
            MetaValue::U8(v) => v.to_string(),
            MetaValue::I8(v) => v.to_string(),
            MetaValue::U16(v) => v.to_string(),
            MetaValue::I16(v) => v.to_string(),
            MetaValue::U32(v) => v.to_string(),
            MetaValue::I32(v) => v.to_string(),
            MetaValue::F32(v) => v.to_string(),
            MetaValue::Bool(v) => v.to_string(),
            MetaValue::U64(v) => v.to_string(),
            MetaValue::I64(v) => v.to_string(),
            MetaValue::F64(v) => v.to_string(),
        }
    }
}

fn type_name(t: u32) -> &'static str {
    [
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64",
        "f64",
    ]
    .get(t as usize)
    .copied()
    .unwrap_or("?")
}

/// GGML type names, for messages about types lowbit does not read.
fn ggml_name(t: u32) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "F32",
        "F16",
        "Q4_0",
        "Q4_1",
        "Q4_2",
        "Q4_3",
        "Q5_0",
        "Q5_1",
        "Q8_0",
        "Q8_1",
        "Q2_K",
        "Q3_K",
        "Q4_K",
        "Q5_K",
        "Q6_K",
        "Q8_K",
        "IQ2_XXS",
        "IQ2_XS",
        "IQ3_XXS",
        "IQ1_S",
        "IQ4_NL",
        "IQ3_S",
        "IQ2_S",
        "IQ4_XS",
        "I8",
        "I16",
        "I32",
        "I64",
        "F64",
        "IQ1_M",
        "BF16",
        "Q4_0_4_4",
        "Q4_0_4_8",
        "Q4_0_8_8",
        "TQ1_0",
        "TQ2_0",
        "IQ4_NL_4_4",
        "IQ4_NL_4_8",
        "IQ4_NL_8_8",
        "MXFP4",
    ];
    NAMES.get(t as usize).copied()
}

/// One tensor's info, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// GGML's `ne`, fastest dim first.
    pub ne: Vec<u64>,
    /// The ggml type number.
    pub ggml_type: u32,
    /// Its storage format.
    pub format: &'static Format,
    /// The bytes in the file.
    pub range: Range<usize>,
}

impl TensorInfo {
    /// The shape in PyTorch order (`ne` reversed).
    pub fn shape(&self) -> Vec<usize> {
        self.ne.iter().rev().map(|&d| d as usize).collect()
    }

    /// `[rows, cols]`: cols is `ne[0]`, rows the product of the others.
    pub fn matrix(&self) -> (usize, usize) {
        let cols = self.ne.first().copied().unwrap_or(1) as usize;
        let rows = self.ne.iter().skip(1).product::<u64>() as usize;
        (rows, cols)
    }
}

/// A parsed GGUF header.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufHeader {
    /// 2 or 3.
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, MetaValue)>,
    /// Tensors by name.
    pub tensors: BTreeMap<String, TensorInfo>,
    /// Tensor names in file order.
    pub order: Vec<String>,
    /// The data alignment.
    pub alignment: usize,
}

impl GgufHeader {
    /// The metadata value of `key`.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Reads little-endian values, refusing to read past the end.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        let left = (self.b.len() - self.pos) as u64;
        if n > left {
            return Err(format!(
                "the file ends inside {what} at byte {} ({n} bytes needed, {left} left)",
                self.pos
            ));
        }
        let s = &self.b[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn left(&self) -> u64 {
        (self.b.len() - self.pos) as u64
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.u64(what)?;
        let b = self.take(n, what)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    fn value(&mut self, t: u32, key: &str, depth: usize) -> Result<MetaValue, String> {
        let what = format!("the value of '{key}'");
        let mut fixed = |n: u64| -> Result<&'a [u8], String> { self.take(n, &what) };
        Ok(match t {
            0 => MetaValue::U8(fixed(1)?[0]),
            1 => MetaValue::I8(fixed(1)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(fixed(2)?.try_into().expect("2"))),
            3 => MetaValue::I16(i16::from_le_bytes(fixed(2)?.try_into().expect("2"))),
            4 => MetaValue::U32(u32::from_le_bytes(fixed(4)?.try_into().expect("4"))),
            5 => MetaValue::I32(i32::from_le_bytes(fixed(4)?.try_into().expect("4"))),
            6 => MetaValue::F32(f32::from_le_bytes(fixed(4)?.try_into().expect("4"))),
            7 => match fixed(1)?[0] {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => return Err(format!("metadata '{key}' has a bool of value {b}")),
            },
            8 => MetaValue::Str(self.string(&what)?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(format!(
                        "metadata '{key}' nests arrays deeper than {MAX_DEPTH}"
                    ));
                }
                let et = self.u32(&what)?;
                let n = self.u64(&what)?;
                let min = match et {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8..=12 => 8,
                    _ => return Err(format!("metadata '{key}' is an array of unknown type {et}")),
                };
                if n.checked_mul(min).is_none_or(|b| b > self.left()) {
                    return Err(format!(
                        "metadata '{key}' claims {n} array elements, more than the {} bytes left",
                        self.left()
                    ));
                }
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(et, key, depth + 1)?);
                }
                MetaValue::Array(et, v)
            }
            10 => MetaValue::U64(u64::from_le_bytes(fixed(8)?.try_into().expect("8"))),
            11 => MetaValue::I64(i64::from_le_bytes(fixed(8)?.try_into().expect("8"))),
            12 => MetaValue::F64(f64::from_le_bytes(fixed(8)?.try_into().expect("8"))),
            _ => return Err(format!("metadata '{key}' has unknown value type {t}")),
        })
    }
}

/// Parses and validates a whole GGUF file held in `bytes`.
pub fn parse_gguf(bytes: &[u8]) -> Result<GgufHeader, String> {
    let mut c = Cursor { b: bytes, pos: 0 };
    let magic = c.take(4, "the magic").map_err(|_| {
        format!(
            "the file is {} bytes, too short for a GGUF header",
            bytes.len()
        )
    })?;
    if magic != MAGIC {
        return Err(format!(
            "the file does not start with the GGUF magic (found {magic:02x?})"
        ));
    }
    let version = c.u32("the version")?;
    if !(version == 2 || version == 3) {
        return Err(format!(
            "GGUF version {version} is not supported (supported: 2, 3, little-endian)"
        ));
    }
    let n_tensors = c.u64("the tensor count")?;
    let n_kv = c.u64("the metadata count")?;
    // A key/value takes at least 12 bytes, a tensor info at least 24.
    if n_kv.checked_mul(12).is_none_or(|b| b > c.left()) {
        return Err(format!(
            "the header claims {n_kv} metadata entries, more than the file's {} bytes can hold",
            bytes.len()
        ));
    }
    if n_tensors.checked_mul(24).is_none_or(|b| b > c.left()) {
        return Err(format!(
            "the header claims {n_tensors} tensors, more than the file's {} bytes can hold",
            bytes.len()
        ));
    }
    let mut metadata: Vec<(String, MetaValue)> = Vec::with_capacity(n_kv as usize);
    let mut keys = std::collections::BTreeSet::new();
    for i in 0..n_kv {
        let key = c.string(&format!("the key of metadata entry {i}"))?;
        let t = c.u32(&format!("the type of metadata '{key}'"))?;
        let v = c.value(t, &key, 0)?;
        if !keys.insert(key.clone()) {
            return Err(format!("metadata key '{key}' appears twice"));
        }
        metadata.push((key, v));
    }
    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => 32,
        Some((_, MetaValue::U32(a))) if a.is_power_of_two() => *a as usize,
        Some((_, v)) => {
            return Err(format!(
                "general.alignment is {}, not a power of two (u32)",
                v.summary()
            ))
        }
    };
    let mut infos = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let name = c.string(&format!("the name of tensor {i}"))?;
        let nd = c.u32(&format!("the rank of tensor '{name}'"))?;
        if nd as usize > MAX_DIMS {
            return Err(format!(
                "tensor '{name}' has {nd} dims, more than GGML's {MAX_DIMS}"
            ));
        }
        let mut ne = Vec::with_capacity(nd as usize);
        for _ in 0..nd {
            ne.push(c.u64(&format!("the dims of tensor '{name}'"))?);
        }
        let t = c.u32(&format!("the type of tensor '{name}'"))?;
        let off = c.u64(&format!("the offset of tensor '{name}'"))?;
        infos.push((name, ne, t, off));
    }
    let data_start = c.pos.div_ceil(alignment).saturating_mul(alignment);
    if data_start > bytes.len() {
        return Err(format!(
            "the file ends at byte {} before its data section (byte {data_start})",
            bytes.len()
        ));
    }
    let data_len = (bytes.len() - data_start) as u64;
    let mut tensors = BTreeMap::new();
    let mut order = Vec::new();
    for (name, ne, t, off) in infos {
        let format = formats::lookup_ggml(t).ok_or_else(|| match ggml_name(t) {
            Some(n) => format!(
                "tensor '{name}' has ggml type {n} ({t}), which lowbit cannot read (supported: {})",
                supported_types()
            ),
            None => format!("tensor '{name}' has unknown ggml type {t}"),
        })?;
        // The product of the non-zero dims bounds every partial product, in any order.
        let nonzero = ne
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64);
        if nonzero.is_none() {
            return Err(format!(
                "tensor '{name}' has dims {ne:?}, too large to address"
            ));
        }
        let elems: u64 = ne.iter().product();
        let blk = format.block_elems() as u64;
        let cols = ne.first().copied().unwrap_or(1);
        if cols % blk != 0 {
            return Err(format!(
                "tensor '{name}' is {} with rows of {cols} elements, not a whole number of {blk}-element blocks",
                ggml_name(t).unwrap_or("?")
            ));
        }
        let size = (elems / blk)
            .checked_mul(format.block_bytes() as u64)
            .ok_or_else(|| format!("tensor '{name}' is too large to address"))?;
        if off % alignment as u64 != 0 {
            return Err(format!(
                "tensor '{name}' has offset {off}, not a multiple of the alignment {alignment}"
            ));
        }
        if off.checked_add(size).is_none_or(|end| end > data_len) {
            return Err(format!(
                "tensor '{name}' ({size} bytes at offset {off}) runs past the end of the data ({data_len} bytes)"
            ));
        }
        let start = data_start + off as usize;
        let info = TensorInfo {
            ne,
            ggml_type: t,
            format,
            range: start..start + size as usize,
        };
        if tensors.insert(name.clone(), info).is_some() {
            return Err(format!("tensor '{name}' appears twice"));
        }
        order.push(name);
    }
    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        order,
        alignment,
    })
}

fn supported_types() -> String {
    formats::all()
        .iter()
        .filter_map(|f| f.ggml_type)
        .filter_map(ggml_name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A memory-mapped, validated GGUF file.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    /// The header.
    pub header: GgufHeader,
}

/// Which field of a block tensor a derived tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartKind {
    /// A float tensor's values.
    Values,
    /// The codes, shifted by the format's constant zero point when it has one.
    Codes,
    /// The block scale `d`.
    Scale,
    /// The block min (`m`, `dmin`).
    Min,
    /// The sub-block scales.
    SubScale,
    /// The sub-block mins.
    SubMin,
}

impl PartKind {
    fn role(self) -> Role {
        match self {
            PartKind::Values | PartKind::Codes => Role::Code,
            PartKind::Scale => Role::Scale,
            PartKind::Min => Role::Min,
            PartKind::SubScale => Role::SubScale,
            PartKind::SubMin => Role::SubMin,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            PartKind::Values => "",
            PartKind::Codes => ":codes",
            PartKind::Scale => ":scale",
            PartKind::Min => ":min",
            PartKind::SubScale => ":sub_scale",
            PartKind::SubMin => ":sub_min",
        }
    }
}

/// A tensor derived from a GGUF tensor: one field, rows optionally permuted.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufPart {
    /// The GGUF tensor.
    pub tensor: String,
    /// The field.
    pub kind: PartKind,
    /// Output row `r` is stored row `perm[r]`.
    pub perm: Option<Vec<usize>>,
}

/// The element type a block field is stored in, and the offset subtracted from codes.
fn part_elem(f: &Format, kind: PartKind) -> Option<(Elem, i64)> {
    let field = f.data.field(kind.role())?;
    Some(match (kind, field.decode) {
        (PartKind::Values, Decode::Float(e)) => (e, 0),
        (PartKind::Codes, Decode::Uint) => match f.zero {
            Zero::Const(z) if field.bits <= 4 => (Elem::I4, z),
            Zero::Const(z) => (Elem::I8, z),
            _ if field.bits <= 4 => (Elem::UI4, 0),
            _ => (Elem::UI8, 0),
        },
        (PartKind::Codes, Decode::Int) if field.bits <= 4 => (Elem::I4, 0),
        (PartKind::Codes, Decode::Int) => (Elem::I8, 0),
        (PartKind::Scale | PartKind::Min, Decode::Float(e)) => (e, 0),
        (PartKind::SubScale | PartKind::SubMin, Decode::Uint) => (Elem::UI8, 0),
        (PartKind::SubScale | PartKind::SubMin, Decode::Int) => (Elem::I8, 0),
        _ => return None,
    })
}

/// The parts the IR reads for a block tensor `[rows, cols]` of format `f`: role name
/// (`codes`, `scale`, `min`, `sub_scale`, `sub_min`) and type.
pub fn block_parts(f: &Format, rows: usize, cols: usize) -> Vec<(&'static str, TensorType)> {
    let blk = f.block_elems();
    let sub = f.sub_block.unwrap_or(blk);
    [
        (PartKind::Codes, "codes", cols),
        (PartKind::Scale, "scale", cols / blk),
        (PartKind::Min, "min", cols / blk),
        (PartKind::SubScale, "sub_scale", cols / sub),
        (PartKind::SubMin, "sub_min", cols / sub),
    ]
    .into_iter()
    .filter_map(|(k, n, c)| {
        let (elem, _) = part_elem(f, k)?;
        Some((n, TensorType::new([rows as i64, c as i64], elem)))
    })
    .collect()
}

/// Whether lowbit lowers tensors of `f` (block formats with f16 scales, and plain floats).
fn is_lowered(f: &Format) -> bool {
    let scale_ok = f
        .data
        .field(Role::Scale)
        .is_none_or(|s| s.decode == Decode::Float(Elem::F16));
    let code_ok = f
        .data
        .field(Role::Code)
        .is_some_and(|c| !matches!(c.decode, Decode::Lut(_) | Decode::Pow2 { .. }));
    scale_ok && code_ok
}

fn gguf_err(path: &Path, message: String) -> ImportError {
    ImportError::Config {
        path: path.to_path_buf(),
        message,
    }
}

impl GgufFile {
    /// Maps and validates `path`.
    pub fn open(path: impl AsRef<Path>) -> ImportResult<GgufFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| ImportError::io(path, &e))?;
        // SAFETY: read-only map that lives as long as `self`; see `SafetensorsFile::open`.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| ImportError::io(path, &e))?;
        let header = parse_gguf(&map).map_err(|m| gguf_err(path, m))?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
            header,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw bytes of a tensor.
    pub fn bytes(&self, info: &TensorInfo) -> &[u8] {
        &self.map[info.range.clone()]
    }

    fn info(&self, name: &str) -> ImportResult<&TensorInfo> {
        self.header
            .tensors
            .get(name)
            .ok_or_else(|| ImportError::Weight {
                name: name.to_string(),
                message: format!("is not in '{}'", self.path.display()),
            })
    }

    /// A float tensor (F32, F16, BF16) in PyTorch's shape.
    pub fn tensor(&self, name: &str) -> ImportResult<Tensor> {
        self.part_tensor(&GgufPart {
            tensor: name.to_string(),
            kind: PartKind::Values,
            perm: None,
        })
    }

    /// A derived tensor: one field of a GGUF tensor as `[rows, n]`, rows permuted.
    pub fn part_tensor(&self, p: &GgufPart) -> ImportResult<Tensor> {
        let info = self.info(&p.tensor)?;
        let f = info.format;
        let werr = |m: String| ImportError::Weight {
            name: p.tensor.clone(),
            message: m,
        };
        let (elem, shift) = part_elem(f, p.kind).ok_or_else(|| {
            werr(format!(
                "has type {} with no {} field lowbit reads",
                ggml_name(info.ggml_type).unwrap_or("?"),
                p.kind.role().name()
            ))
        })?;
        let u = f
            .unpack(Array::Data, self.bytes(info))
            .map_err(|e| werr(e.to_string()))?;
        let field = f.data.field(p.kind.role()).expect("part_elem found it");
        let raw = u.get(p.kind.role()).expect("unpack yields every field");
        let (rows, cols) = info.matrix();
        let per_row = raw.len() / rows.max(1);
        let mut values: Vec<f64> = match p.kind {
            PartKind::Codes => {
                // Codes go to matrix positions through the block's element map.
                let e = f.block_elems();
                let blocks_per_row = cols / f.data.tile[1].max(1);
                let mut out = vec![0.0; rows * cols];
                for (i, &r) in raw.iter().enumerate() {
                    let (row, col) = f.data.element(blocks_per_row, i / e, i % e);
                    out[row * cols + col] = field.decode.value(r, field.bits) - shift as f64;
                }
                out
            }
            _ => raw
                .iter()
                .map(|&r| field.decode.value(r, field.bits))
                .collect(),
        };
        let width = if p.kind == PartKind::Codes {
            cols
        } else {
            per_row
        };
        if let Some(perm) = &p.perm {
            let old = std::mem::take(&mut values);
            values = perm
                .iter()
                .flat_map(|&r| old[r * width..(r + 1) * width].iter().copied())
                .collect();
        }
        let shape: Vec<i64> = if p.kind == PartKind::Values {
            info.shape().iter().map(|&d| d as i64).collect()
        } else {
            vec![rows as i64, width as i64]
        };
        Ok(Tensor::new(TensorType::new(shape, elem), values))
    }
}

/// An imported GGUF model: the Llama import and the file's metadata.
#[derive(Debug)]
pub struct GgufImport {
    /// The model.
    pub model: LlamaImport,
    /// Every metadata key/value, tokenizer included, uninterpreted.
    pub metadata: Vec<(String, MetaValue)>,
}

/// llama.cpp's inverse Q/K row permutation: Hugging Face row `h·D + half·D/2 + i` is GGUF
/// row `h·D + 2i + half` (convert_hf_to_gguf.py `permute`).
pub fn unpermute_rows(rows: usize, heads: usize) -> Vec<usize> {
    let d = rows / heads;
    (0..rows)
        .map(|r| {
            let (h, rest) = (r / d, r % d);
            let (half, i) = (rest / (d / 2), rest % (d / 2));
            h * d + 2 * i + half
        })
        .collect()
}

/// Reads the `llama` architecture's hyperparameters from GGUF metadata.
fn llama_config(g: &GgufFile) -> ImportResult<LlamaConfig> {
    let path = g.path();
    let err = |m: String| gguf_err(path, m);
    let h = &g.header;
    let arch = h
        .get("general.architecture")
        .and_then(MetaValue::as_str)
        .ok_or_else(|| err("has no general.architecture".into()))?;
    if arch != "llama" {
        return Err(err(format!(
            "general.architecture is \"{arch}\", which lowbit cannot import (supported: \"llama\")"
        )));
    }
    let size = |k: &str| -> ImportResult<usize> {
        h.get(&format!("llama.{k}"))
            .and_then(MetaValue::as_u64)
            .filter(|&v| v > 0 && v <= u32::MAX as u64)
            .map(|v| v as usize)
            .ok_or_else(|| err(format!("llama.{k} is missing or not a positive integer")))
    };
    let opt_size = |k: &str| h.get(&format!("llama.{k}")).map(|_| size(k)).transpose();
    let hidden = size("embedding_length")?;
    let heads = size("attention.head_count")?;
    let kv_heads = opt_size("attention.head_count_kv")?.unwrap_or(heads);
    let head_dim = match opt_size("attention.key_length")? {
        Some(d) => d,
        None => hidden / heads,
    };
    if head_dim * heads != hidden && opt_size("attention.key_length")?.is_none() {
        return Err(err(format!(
            "llama.embedding_length {hidden} is not a multiple of llama.attention.head_count {heads}"
        )));
    }
    if let Some(v) = opt_size("attention.value_length")? {
        if v != head_dim {
            return Err(err(format!(
                "llama.attention.value_length {v} differs from the key length {head_dim}"
            )));
        }
    }
    if heads % kv_heads != 0 || head_dim % 2 != 0 {
        return Err(err(format!(
            "llama.attention.head_count {heads} is not a multiple of head_count_kv {kv_heads}, or head size {head_dim} is odd"
        )));
    }
    if let Some(r) = opt_size("rope.dimension_count")? {
        if r != head_dim {
            return Err(err(format!(
                "llama.rope.dimension_count is {r}, not the head size {head_dim} (partial RoPE is not supported)"
            )));
        }
    }
    let num = |k: &str, default: f64| -> ImportResult<f64> {
        match h.get(&format!("llama.{k}")) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| {
                    err(format!(
                        "llama.{k} is {}, not a positive number",
                        v.summary()
                    ))
                }),
        }
    };
    let rope_scaling = match h.get("llama.rope.scaling.type").and_then(MetaValue::as_str) {
        None | Some("none") => RopeScaling::None,
        Some("linear") => RopeScaling::Linear {
            factor: num("rope.scaling.factor", 1.0)?,
        },
        Some(other) => {
            return Err(err(format!(
                "llama.rope.scaling.type is \"{other}\", which lowbit cannot import (supported: none, linear)"
            )))
        }
    };
    let embd = g.info("token_embd.weight")?;
    let vocab = match opt_size("vocab_size")? {
        Some(v) => v,
        None => embd.shape()[0],
    };
    let rope_freq_factors = match g.header.tensors.get("rope_freqs.weight") {
        None => None,
        Some(_) => Some(g.tensor("rope_freqs.weight")?.data),
    };
    if let Some(ff) = &rope_freq_factors {
        if ff.len() != head_dim / 2 || ff.iter().any(|&x| x <= 0.0 || !x.is_finite()) {
            return Err(err(format!(
                "rope_freqs.weight has {} entries (expected {} positive factors)",
                ff.len(),
                head_dim / 2
            )));
        }
    }
    Ok(LlamaConfig {
        architecture: "llama (GGUF)".to_string(),
        hidden,
        layers: size("block_count")?,
        heads,
        kv_heads,
        head_dim,
        intermediate: size("feed_forward_length")?,
        vocab,
        eps: num("attention.layer_norm_rms_epsilon", 1e-5)?,
        rope_theta: num("rope.freq_base", 10000.0)?,
        rope_scaling,
        rope_freq_factors,
        tie_embeddings: true,
        qkv_bias: false,
        o_bias: false,
        mlp_bias: false,
        max_positions: opt_size("context_length")?.unwrap_or(usize::MAX),
        sliding_window: None,
        quant: Quant::None,
    })
}

/// The GGUF name of a Hugging Face module.
fn gguf_name(module: &str) -> Option<String> {
    let fixed = match module {
        "model.embed_tokens" => Some("token_embd"),
        "model.norm" => Some("output_norm"),
        "lm_head" => Some("output"),
        _ => None,
    };
    if let Some(n) = fixed {
        return Some(format!("{n}.weight"));
    }
    let rest = module.strip_prefix("model.layers.")?;
    let (l, sub) = rest.split_once('.')?;
    let g = match sub {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "post_attention_layernorm" => "ffn_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{l}.{g}.weight"))
}

/// The weights of a GGUF file under Hugging Face module names.
struct GgufSet<'a> {
    g: &'a GgufFile,
    heads: usize,
    kv_heads: usize,
    derived: BTreeMap<String, Derived>,
}

impl Weighing for GgufSet<'_> {
    fn weigh(&mut self, module: &str, shape: &[usize], _linear: bool) -> ImportResult<WeightForm> {
        let name = gguf_name(module).ok_or_else(|| ImportError::Weight {
            name: module.to_string(),
            message: "has no GGUF counterpart".into(),
        })?;
        let info = self.g.info(&name)?;
        if info.shape() != shape {
            return Err(ImportError::Weight {
                name,
                message: format!("has shape {:?}, expected {shape:?}", info.shape()),
            });
        }
        let f = info.format;
        let tname = ggml_name(info.ggml_type).unwrap_or("?");
        if !is_lowered(f) {
            return Err(ImportError::Weight {
                name,
                message: format!("has type {tname}, which lowbit cannot lower yet"),
            });
        }
        let perm = if name.ends_with("attn_q.weight") {
            Some(unpermute_rows(shape[0], self.heads))
        } else if name.ends_with("attn_k.weight") {
            Some(unpermute_rows(shape[0], self.kv_heads))
        } else {
            None
        };
        if let Some(Decode::Float(_)) = f.data.field(Role::Code).map(|c| c.decode) {
            if f.data.fields.len() == 1 {
                self.derived.insert(
                    name.clone(),
                    Derived::Gguf(GgufPart {
                        tensor: name.clone(),
                        kind: PartKind::Values,
                        perm,
                    }),
                );
                let elem = part_elem(f, PartKind::Values).expect("float values").0;
                let ty = TensorType::new(shape.iter().map(|&d| d as i64).collect::<Vec<_>>(), elem);
                return Ok(WeightForm::Float { name, ty });
            }
        }
        let (rows, cols) = info.matrix();
        for kind in [
            PartKind::Codes,
            PartKind::Scale,
            PartKind::Min,
            PartKind::SubScale,
            PartKind::SubMin,
        ] {
            if part_elem(f, kind).is_some() {
                self.derived.insert(
                    format!("{name}{}", kind.suffix()),
                    Derived::Gguf(GgufPart {
                        tensor: name.clone(),
                        kind,
                        perm: perm.clone(),
                    }),
                );
            }
        }
        Ok(WeightForm::Block {
            format: f,
            name,
            rows,
            cols,
        })
    }

    fn present(&self, module: &str) -> bool {
        gguf_name(module).is_some_and(|n| self.g.header.tensors.contains_key(&n))
    }

    fn bias(&mut self, module: &str, _n: usize) -> ImportResult<WeightForm> {
        Err(ImportError::Weight {
            name: module.to_string(),
            message: "has a bias, which GGUF llama models do not".into(),
        })
    }

    fn loc(&self, module: &str) -> String {
        gguf_name(module)
            .map(|n| n.trim_end_matches(".weight").to_string())
            .unwrap_or_else(|| module.to_string())
    }
}

/// Imports a GGUF file of the `llama` architecture.
pub fn import_gguf(
    path: impl AsRef<Path>,
    entry: Entry,
    dims: LlamaDims,
) -> ImportResult<GgufImport> {
    let path = path.as_ref();
    let g = GgufFile::open(path)?;
    let cfg = llama_config(&g)?;
    let mut set = GgufSet {
        g: &g,
        heads: cfg.heads,
        kv_heads: cfg.kv_heads,
        derived: BTreeMap::new(),
    };
    let origin = path.display().to_string();
    let (module, inputs, outputs, forms) = build(&cfg, &mut set, entry, dims, &origin, path)?;
    let derived = set.derived;
    let metadata = g.header.metadata.clone();
    Ok(GgufImport {
        model: LlamaImport {
            module,
            inputs,
            outputs,
            weights: ModelWeights::new(Source::Gguf(g), derived),
            config: cfg,
            forms,
        },
        metadata,
    })
}
