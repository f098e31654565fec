//! Low-bit storage formats, described once, as data.
//!
//! A checkpoint stores a quantized weight as one or more byte arrays: GGUF packs codes and
//! scales together in fixed-size blocks; AWQ and GPTQ keep int32-packed codes, a scale
//! tensor and an int32-packed zero-point tensor apart; bitsandbytes NF4 keeps 4-bit codes
//! and one `absmax` per block of 64. Every such format is a [`Format`] value in one table
//! ([`all`]), and one generic routine reads them all: [`Format::unpack`] /
//! [`Format::pack`] move between bytes and integer fields, [`Format::dequantize`] gives the
//! values. The importer, the interpreter and both code generators read the same table.
//!
//! The model, from the bytes up:
//!
//! - A stored array is a [`Packing`]: the logical matrix is cut into `tile` blocks, each
//!   block occupies `bytes` bytes, blocks follow each other in row-major block order, and
//!   the elements of a block are numbered row-major inside the tile.
//! - A block holds [`Field`]s by [`Role`]: the codes, and for self-contained formats the
//!   block scale, the min, the sub-block scales and mins. A field is `count` values of
//!   `bits` bits; its bits sit in the block as one or more [`Part`]s. A part maps value `i`
//!   to a bit offset with a shape/stride layout (CuTe style), so GGML's split nibbles,
//!   AWQ's interleaved nibble order `[0, 2, 4, 6, 1, 3, 5, 7]`, the 6-bit K-quant
//!   sub-scales and Q6_K's two-plane codes are all data. Bits are numbered LSB-first within
//!   bytes and bytes are little-endian, so a bit offset into a little-endian int32 word is
//!   the same as into its bytes.
//! - A [`Decode`] turns a field's raw bits into a number: an unsigned or two's complement
//!   integer, the bits of an element type (f16, bf16, f8E4M3FN, ...), a power of two
//!   (E8M0), or a lookup table (NF4, E2M1).
//! - Scales and zero points that live outside the block are a [`Side`] array with its own
//!   packing and a [`Group`] map from matrix element to side element (group size along an
//!   axis, a fixed tile, the whole tensor, or GPTQ's `g_idx`).
//!
//! Dequantization is `x = s · (v − z) + m` with the roles that are present: `s` the scale
//! (times the sub-block scale), `v` the decoded code, `z` a symmetric offset or a stored
//! zero point, `m` the min (added, or for K-quants `dmin · submin` subtracted). Every
//! product and sum is rounded to f32 in the order the format's reference implementation
//! uses (gguf-py / ggml, bitsandbytes), so the result is bit-identical to it. For AWQ and
//! GPTQ the result is the exact value `(q − z) · s`, which is representable in f32; their
//! PyTorch references compute in f16, i.e. `round_to(x, F16)` of this value.
//!
//! Invariants, checked by [`Packing::check`] for every registered format: every bit of a
//! block belongs to exactly one field value, so `pack(unpack(b)) == b` for every byte
//! string `b` of whole blocks.

mod bits;
mod dequant;
mod float;
mod table;

use thiserror::Error;

pub use bits::{Field, FieldValues, Packing, Part, Unpacked};
pub use float::{decode_bits, encode_bits, E2M1, E2M1_GGML, NF4};

use crate::ir::Elem;

/// A result whose error is a [`FormatError`].
pub type FormatResult<T> = Result<T, FormatError>;

/// Why a storage-format operation failed. Messages name the format and the array.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    /// No registered format has this name.
    #[error("unknown storage format '{0}'")]
    Unknown(String),
    /// An array's byte length does not match the shape.
    #[error("'{format}' {tensor} has {got} bytes, expected {want}")]
    ByteLength {
        /// The format.
        format: &'static str,
        /// The array (`qweight`, `scales`, ...).
        tensor: &'static str,
        /// Bytes given.
        got: usize,
        /// Bytes the shape needs.
        want: usize,
    },
    /// The shape is not a whole number of blocks, or is too large to address.
    #[error("'{format}' {tensor} shape {shape:?} is not a whole number of {tile_rows}x{tile_cols} blocks")]
    Shape {
        /// The format.
        format: &'static str,
        /// The array.
        tensor: &'static str,
        /// The logical shape given.
        shape: Vec<usize>,
        /// Block rows.
        tile_rows: usize,
        /// Block columns.
        tile_cols: usize,
    },
    /// The shape's element or byte count overflows `usize`.
    #[error("'{format}' shape {shape:?} is too large")]
    TooLarge {
        /// The format.
        format: &'static str,
        /// The logical shape given.
        shape: Vec<usize>,
    },
    /// A separate array the format needs was not given.
    #[error("'{format}' needs the {tensor} array")]
    Missing {
        /// The format.
        format: &'static str,
        /// The array.
        tensor: &'static str,
    },
    /// The format has no such array, or does not take this input.
    #[error("'{format}' has no {what}")]
    Unsupported {
        /// The format.
        format: &'static str,
        /// What was asked for.
        what: &'static str,
    },
    /// The group size is missing or zero.
    #[error("'{format}' needs a group size > 0 (from the checkpoint's quantization config)")]
    GroupSize {
        /// The format.
        format: &'static str,
    },
    /// `g_idx` has the wrong length.
    #[error("'{format}' g_idx has {got} entries, expected {want}")]
    GIdxLength {
        /// The format.
        format: &'static str,
        /// Entries given.
        got: usize,
        /// Input rows.
        want: usize,
    },
    /// A `g_idx` entry names a group that has no scales.
    #[error("'{format}' g_idx[{index}] = {value} is outside [0, {groups})")]
    GIdx {
        /// The format.
        format: &'static str,
        /// The row.
        index: usize,
        /// Its group.
        value: i64,
        /// Groups in the scale tensor.
        groups: usize,
    },
    /// A value to pack does not fit its field.
    #[error("'{format}' {tensor} {role} value {value} does not fit in {bits} bits")]
    Value {
        /// The format.
        format: &'static str,
        /// The array.
        tensor: &'static str,
        /// The field.
        role: &'static str,
        /// The value.
        value: u32,
        /// The field's width.
        bits: u32,
    },
    /// Unpacked values do not match the packing (a field is missing or has the wrong count).
    #[error("'{format}' {tensor} {role} has {got} values, expected {want}")]
    Count {
        /// The format.
        format: &'static str,
        /// The array.
        tensor: &'static str,
        /// The field.
        role: &'static str,
        /// Values given.
        got: usize,
        /// Values the block count needs.
        want: usize,
    },
}

/// Where a format comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// llama.cpp / GGUF tensor types (`ggml_type`).
    Gguf,
    /// bitsandbytes 4-bit (`Linear4bit`).
    BitsAndBytes,
    /// FP8 checkpoints (compressed-tensors, FBGEMM, DeepSeek-V3 block scales).
    Fp8,
    /// AutoAWQ `GEMM` layout.
    Awq,
    /// AutoGPTQ / GPTQModel `gptq` (v1) layout.
    Gptq,
}

/// What a field of a block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The quantized values (one per element), or a side array's values.
    Code,
    /// The block scale (`d`).
    Scale,
    /// The block min (`m` of Q4_1, `dmin` of Q4_K).
    Min,
    /// One scale per sub-block, multiplied into the block scale.
    SubScale,
    /// One min per sub-block, multiplied into the block min.
    SubMin,
}

impl Role {
    /// The role's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Code => "code",
            Role::Scale => "scale",
            Role::Min => "min",
            Role::SubScale => "sub-scale",
            Role::SubMin => "sub-min",
        }
    }
}

/// How a field's raw bits become a number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decode {
    /// Unsigned integer.
    Uint,
    /// Two's complement integer of the field's width.
    Int,
    /// The bits of a float element type (`f32`, `f16`, `bf16`, `f8E4M3FN`, ...).
    Float(Elem),
    /// `2^(bits − bias)`: an exponent-only scale (OCP E8M0 with bias 127). Code 255 is
    /// `2^128`, as ggml reads it, not NaN.
    Pow2 {
        /// The exponent bias.
        bias: i32,
    },
    /// Index into a table of values.
    Lut(&'static [f32]),
}

impl Decode {
    /// The number a raw field value stands for, exactly (as `f64`; every value of every
    /// decode is also an `f32` value, except `Pow2` codes above 254).
    pub fn value(self, raw: u32, bits: u32) -> f64 {
        match self {
            Decode::Uint => raw as f64,
            Decode::Int => {
                let sh = 32 - bits.clamp(1, 32);
                (((raw << sh) as i32) >> sh) as f64
            }
            Decode::Float(elem) => decode_bits(elem, raw),
            Decode::Pow2 { bias } => 2f64.powi(raw as i32 - bias),
            Decode::Lut(table) => table.get(raw as usize).map_or(f64::NAN, |&v| v as f64),
        }
    }

    /// The decode as a lookup table over all `2^bits` codes, for codes up to 8 bits wide
    /// (a code generator's view of an FP8 or NF4 decode).
    pub fn table(self, bits: u32) -> Option<Vec<f32>> {
        (bits <= 8).then(|| {
            (0..1u32 << bits)
                .map(|c| self.value(c, bits) as f32)
                .collect()
        })
    }
}

/// A format's stored arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Array {
    /// The codes (and, for block formats, the inline scales and mins).
    Data,
    /// A separate scale tensor.
    Scales,
    /// A separate zero-point tensor.
    Zeros,
}

/// How matrix elements map to the entries of a side array, along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// One entry per index (group size 1).
    Each,
    /// One entry per `n` consecutive indices; the last group may be partial.
    Fixed(usize),
    /// One entry per `group` consecutive indices, `group` read from the checkpoint's
    /// quantization config ([`Stored::group`]).
    Config,
    /// One entry for the whole axis.
    Whole,
}

/// A separately stored array of scales or zero points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Side {
    /// How its values are stored, over its own grid of `[row groups, column groups]`.
    pub packing: Packing,
    /// Row grouping of the matrix.
    pub rows: Group,
    /// Column grouping of the matrix.
    pub cols: Group,
}

/// Where the scale comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// No scale: the decoded code is the value.
    None,
    /// The [`Role::Scale`] field of each block.
    Inline,
    /// A side array.
    Tensor(Side),
}

/// The zero point subtracted from the decoded code before scaling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Zero {
    /// None.
    None,
    /// A fixed offset: GGML's symmetric formats store `q + 8` (Q4_0), `q + 16` (Q5_0), `q + 32` (Q6_K).
    Const(i64),
    /// A side array of stored integers; the zero point is `(stored + offset) mod 2^bits`
    /// (GPTQ v1 stores `zero − 1`: offset 1, wrapping as AutoGPTQ masks it; AWQ: offset 0).
    Tensor {
        /// The stored zero points.
        side: Side,
        /// Added to the stored value.
        offset: i64,
    },
}

/// The min term of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Min {
    /// None.
    None,
    /// `x = s·q + m` (Q4_1).
    Add,
    /// `x = (d·sc)·q − dmin·m` (K-quants with mins).
    Sub,
}

/// How the logical shape is viewed as the matrix the packing tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    /// `[product of leading dims, last dim]`: blocks run along the last axis (GGUF rows;
    /// AWQ/GPTQ `[in_features, out_features]`).
    Rows,
    /// `[1, number of elements]`: blocks run over the flattened tensor (bitsandbytes).
    Flat,
}

/// One low-bit storage format, as data. See the module docs for the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Format {
    /// Registry name, lowercase (`q4_k`, `awq_gemm_int4`); [`lookup`] ignores case.
    pub name: &'static str,
    /// Where the format comes from.
    pub family: Family,
    /// GGML's `ggml_type` number, for GGUF formats.
    pub ggml_type: Option<u32>,
    /// One line on the format and its reference implementation.
    pub summary: &'static str,
    /// How the logical shape is viewed as a matrix.
    pub view: View,
    /// The main array: codes and inline fields.
    pub data: Packing,
    /// Where the scale comes from.
    pub scale: Scale,
    /// The zero point.
    pub zero: Zero,
    /// The min term.
    pub min: Min,
    /// Elements per sub-block, for the [`Role::SubScale`] / [`Role::SubMin`] fields.
    pub sub_block: Option<usize>,
    /// Whether a `g_idx` array (GPTQ act-order) may replace the row grouping.
    pub g_idx: bool,
}

/// The stored arrays of one quantized tensor, as raw little-endian bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stored<'a> {
    /// The main array (`qweight`, GGUF block data, bitsandbytes `weight`).
    pub data: &'a [u8],
    /// The separate scale tensor (`scales`, `absmax`, `weight_scale_inv`), if the format has one.
    pub scales: Option<&'a [u8]>,
    /// The separate zero-point tensor (`qzeros`), if the format has one.
    pub zeros: Option<&'a [u8]>,
    /// GPTQ's `g_idx`: the group of every input row (act-order checkpoints).
    pub g_idx: Option<&'a [i32]>,
    /// The group size from the quantization config, for [`Group::Config`] groupings. GPTQ's
    /// per-channel `group_size = -1` is `in_features` here.
    pub group: Option<usize>,
}

impl<'a> Stored<'a> {
    /// Just the main array.
    pub fn new(data: &'a [u8]) -> Self {
        Stored {
            data,
            ..Stored::default()
        }
    }

    /// With a scale tensor.
    pub fn scales(mut self, scales: &'a [u8]) -> Self {
        self.scales = Some(scales);
        self
    }

    /// With a zero-point tensor.
    pub fn zeros(mut self, zeros: &'a [u8]) -> Self {
        self.zeros = Some(zeros);
        self
    }

    /// With a group size.
    pub fn group(mut self, group: usize) -> Self {
        self.group = Some(group);
        self
    }

    /// With GPTQ's `g_idx`.
    pub fn g_idx(mut self, g_idx: &'a [i32]) -> Self {
        self.g_idx = Some(g_idx);
        self
    }
}

/// Every registered format, in a fixed order.
pub fn all() -> &'static [Format] {
    table::ALL
}

/// The format with this name, ignoring ASCII case (`Q4_K` finds `q4_k`).
pub fn lookup(name: &str) -> Option<&'static Format> {
    all().iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// Like [`lookup`], as a [`FormatError::Unknown`] when there is none.
pub fn get(name: &str) -> FormatResult<&'static Format> {
    lookup(name).ok_or_else(|| FormatError::Unknown(name.to_string()))
}

/// The GGUF format with this `ggml_type` number.
pub fn lookup_ggml(ggml_type: u32) -> Option<&'static Format> {
    all().iter().find(|f| f.ggml_type == Some(ggml_type))
}

impl Format {
    /// The packing of one of the format's arrays, if it has it.
    pub fn packing(&self, array: Array) -> Option<&Packing> {
        match (array, &self.scale, &self.zero) {
            (Array::Data, _, _) => Some(&self.data),
            (Array::Scales, Scale::Tensor(side), _) => Some(&side.packing),
            (Array::Zeros, _, Zero::Tensor { side, .. }) => Some(&side.packing),
            (Array::Scales, Scale::None | Scale::Inline, _)
            | (Array::Zeros, _, Zero::None | Zero::Const(_)) => None,
        }
    }

    fn packing_or_err(&self, array: Array) -> FormatResult<&Packing> {
        self.packing(array).ok_or(FormatError::Unsupported {
            format: self.name,
            what: match array {
                Array::Data => "data array",
                Array::Scales => "scale tensor",
                Array::Zeros => "zero-point tensor",
            },
        })
    }

    /// Elements per block of the main array.
    pub fn block_elems(&self) -> usize {
        self.data.elems()
    }

    /// Bytes per block of the main array.
    pub fn block_bytes(&self) -> usize {
        self.data.bytes
    }

    /// Splits whole blocks of `array` into their fields' integer values.
    pub fn unpack(&self, array: Array, bytes: &[u8]) -> FormatResult<Unpacked> {
        self.packing_or_err(array)?.unpack(self.name, bytes)
    }

    /// Writes unpacked fields back to bytes: the inverse of [`Format::unpack`].
    pub fn pack(&self, array: Array, unpacked: &Unpacked) -> FormatResult<Vec<u8>> {
        self.packing_or_err(array)?.pack(self.name, unpacked)
    }

    /// The codes of a code-only array (AWQ/GPTQ `qweight`/`qzeros`, a scale tensor's raw
    /// bits) as a `[rows, cols]` row-major matrix of raw values.
    pub fn unpack_matrix(
        &self,
        array: Array,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> FormatResult<Vec<u32>> {
        self.packing_or_err(array)?
            .unpack_matrix(self.name, rows, cols, bytes)
    }

    /// Packs a `[rows, cols]` row-major matrix of raw values into a code-only array.
    pub fn pack_matrix(
        &self,
        array: Array,
        rows: usize,
        cols: usize,
        values: &[u32],
    ) -> FormatResult<Vec<u8>> {
        self.packing_or_err(array)?
            .pack_matrix(self.name, rows, cols, values)
    }

    /// The logical shape as the `[rows, cols]` matrix the packing tiles.
    pub fn matrix(&self, shape: &[usize]) -> FormatResult<(usize, usize)> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let n = n.ok_or_else(|| FormatError::TooLarge {
            format: self.name,
            shape: shape.to_vec(),
        })?;
        Ok(match (self.view, shape.last()) {
            (View::Flat, _) | (View::Rows, None) => (1, n),
            (View::Rows, Some(&0)) => (0, 0),
            (View::Rows, Some(&last)) => (n / last, last),
        })
    }

    /// The group size a [`Group`] stands for along an axis of length `len`.
    fn group_size(&self, g: Group, len: usize, st: &Stored<'_>) -> FormatResult<usize> {
        match g {
            Group::Each => Ok(1),
            Group::Fixed(n) => Ok(n),
            Group::Whole => Ok(len.max(1)),
            Group::Config => match st.group {
                Some(g) if g > 0 => Ok(g),
                _ => Err(FormatError::GroupSize { format: self.name }),
            },
        }
    }

    /// The grid `[row groups, column groups]` of a side array for a `[rows, cols]` matrix,
    /// with the group sizes.
    fn side_grid(
        &self,
        side: &Side,
        rows: usize,
        cols: usize,
        st: &Stored<'_>,
    ) -> FormatResult<([usize; 2], [usize; 2])> {
        let gr = self.group_size(side.rows, rows, st)?;
        let gc = self.group_size(side.cols, cols, st)?;
        Ok(([rows.div_ceil(gr), cols.div_ceil(gc)], [gr, gc]))
    }

    /// The byte lengths `[data, scales, zeros]` the arrays of a tensor of this shape need
    /// (0 for arrays the format does not have).
    pub fn byte_lengths(&self, shape: &[usize], group: Option<usize>) -> FormatResult<[usize; 3]> {
        let (rows, cols) = self.matrix(shape)?;
        let st = Stored {
            group,
            ..Stored::default()
        };
        let data = self.data.byte_len(self.name, shape, rows, cols)?;
        let mut out = [data, 0, 0];
        for (slot, array) in [(1, Array::Scales), (2, Array::Zeros)] {
            let side = match (array, &self.scale, &self.zero) {
                (Array::Scales, Scale::Tensor(side), _) => side,
                (Array::Zeros, _, Zero::Tensor { side, .. }) => side,
                _ => continue,
            };
            let ([r, c], _) = self.side_grid(side, rows, cols, &st)?;
            out[slot] = side.packing.byte_len(self.name, &[r, c], r, c)?;
        }
        Ok(out)
    }

    /// Dequantizes a tensor of logical `shape` (AWQ/GPTQ: `[in_features, out_features]`),
    /// bit-exactly as the format's reference does, to row-major f32 values.
    pub fn dequantize(&self, shape: &[usize], stored: &Stored<'_>) -> FormatResult<Vec<f32>> {
        dequant::dequantize(self, shape, stored)
    }
}
