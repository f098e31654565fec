//! Bit-level packing: where each field value of a block sits, and moving between bytes
//! and field values.
//!
//! A block is a little-endian bit string: bit `b` is bit `b % 8` (LSB first) of byte
//! `b / 8`, so bit `32·w + i` is bit `i` of the little-endian int32 word `w`. A [`Part`]
//! places bits `[shift, shift + bits)` of some values of a field at `at + layout(i)`,
//! where the layout is a shape/stride pair over the value index `i` (first coordinate
//! fastest). [`Packing::check`] proves a description covers every bit of its block
//! exactly once and every bit of every value exactly once, which makes unpacking and
//! packing exact inverses.

use super::{Decode, FormatError, FormatResult, Role};

/// A run of a field's bits inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Part {
    /// The first field value this part holds bits of; it covers `shape.product()` values.
    pub first: usize,
    /// Bits per value in this part.
    pub bits: u32,
    /// Where these bits go in the value: bits `[shift, shift + bits)`.
    pub shift: u32,
    /// Bit offset of value `first` in the block.
    pub at: i64,
    /// Shape of the value index, first coordinate fastest.
    pub shape: &'static [usize],
    /// Bit stride of each coordinate (may be negative: bitsandbytes puts the first of two
    /// values in the high nibble).
    pub stride: &'static [i64],
}

impl Part {
    /// Values this part covers.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the part covers no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bit offset in the block of the part's `i`-th value.
    pub fn offset(&self, i: usize) -> i64 {
        let mut rest = i;
        let mut at = self.at;
        for (&n, &s) in self.shape.iter().zip(self.stride) {
            at += (rest % n) as i64 * s;
            rest /= n;
        }
        at
    }
}

/// One field of a block: `count` values of `bits` bits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field {
    /// What the values are.
    pub role: Role,
    /// How a value's bits become a number.
    pub decode: Decode,
    /// Bits per value.
    pub bits: u32,
    /// Values per block.
    pub count: usize,
    /// Where the bits sit.
    pub parts: &'static [Part],
}

/// How one stored array is laid out: tiles of the logical matrix, each `bytes` long.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Packing {
    /// The array's name in checkpoints and messages (`qweight`, `scales`, `blocks`).
    pub tensor: &'static str,
    /// Block shape `[rows, cols]` in logical elements. Blocks are stored in row-major block
    /// order, and a block's elements are numbered row-major.
    pub tile: [usize; 2],
    /// Bytes per block.
    pub bytes: usize,
    /// The fields of a block.
    pub fields: &'static [Field],
}

/// The integer values of one field, over all blocks (block-major).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldValues {
    /// The field.
    pub role: Role,
    /// `count · blocks` raw values.
    pub values: Vec<u32>,
}

/// Every field of whole blocks of an array, as raw integers (what [`Format::unpack`] gives
/// and [`Format::pack`] takes).
///
/// [`Format::unpack`]: super::Format::unpack
/// [`Format::pack`]: super::Format::pack
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpacked {
    /// Number of blocks.
    pub blocks: usize,
    /// One entry per field, in the packing's field order.
    pub fields: Vec<FieldValues>,
}

impl Unpacked {
    /// The values of the field with this role.
    pub fn get(&self, role: Role) -> Option<&[u32]> {
        self.fields
            .iter()
            .find(|f| f.role == role)
            .map(|f| f.values.as_slice())
    }
}

fn read_bits(block: &[u8], at: usize, bits: u32) -> u32 {
    let first = at / 8;
    let sh = at % 8;
    let n = (sh + bits as usize).div_ceil(8);
    let word = block[first..first + n]
        .iter()
        .rev()
        .fold(0u64, |w, &b| (w << 8) | b as u64);
    ((word >> sh) & ((1u64 << bits) - 1)) as u32
}

fn write_bits(block: &mut [u8], at: usize, bits: u32, value: u32) {
    for k in 0..bits as usize {
        let b = at + k;
        let bit = ((value >> k) & 1) as u8;
        block[b / 8] = (block[b / 8] & !(1 << (b % 8))) | (bit << (b % 8));
    }
}

fn mask(bits: u32) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}

impl Packing {
    /// Elements per block.
    pub fn elems(&self) -> usize {
        self.tile[0] * self.tile[1]
    }

    /// The field with this role.
    pub fn field(&self, role: Role) -> Option<&Field> {
        self.fields.iter().find(|f| f.role == role)
    }

    /// Checks the description: counts match, parts stay inside the block and inside their
    /// values, and every bit of the block and of every value is covered exactly once.
    pub fn check(&self) -> Result<(), String> {
        let nbits = self.bytes * 8;
        let mut block = vec![0u8; nbits];
        for f in self.fields {
            if f.bits == 0 || f.bits > 32 {
                return Err(format!("{} field has {} bits", f.role.name(), f.bits));
            }
            let mut value_bits = vec![0u8; f.count * f.bits as usize];
            for p in f.parts {
                if p.shape.len() != p.stride.len() || p.first + p.len() > f.count {
                    return Err(format!(
                        "{} part {p:?} does not fit the field",
                        f.role.name()
                    ));
                }
                if p.shift + p.bits > f.bits {
                    return Err(format!(
                        "{} part {p:?} exceeds the value width",
                        f.role.name()
                    ));
                }
                for i in 0..p.len() {
                    let at = p.offset(i);
                    if at < 0 || at as usize + p.bits as usize > nbits {
                        return Err(format!("{} part {p:?} leaves the block", f.role.name()));
                    }
                    for k in 0..p.bits as usize {
                        block[at as usize + k] += 1;
                        value_bits[(p.first + i) * f.bits as usize + p.shift as usize + k] += 1;
                    }
                }
            }
            if let Some(i) = value_bits.iter().position(|&c| c != 1) {
                return Err(format!(
                    "{} value {} bit {} is covered {} times",
                    f.role.name(),
                    i / f.bits as usize,
                    i % f.bits as usize,
                    value_bits[i]
                ));
            }
        }
        if let Some(b) = block.iter().position(|&c| c != 1) {
            return Err(format!("block bit {b} is covered {} times", block[b]));
        }
        match self.field(Role::Code) {
            Some(c) if c.count == self.elems() => Ok(()),
            Some(c) => Err(format!("{} codes for {} elements", c.count, self.elems())),
            None => Err("no code field".to_string()),
        }
    }

    /// Bytes an array of this logical `[rows, cols]` matrix occupies.
    pub(super) fn byte_len(
        &self,
        format: &'static str,
        shape: &[usize],
        rows: usize,
        cols: usize,
    ) -> FormatResult<usize> {
        let [tr, tc] = self.tile;
        if rows.checked_rem(tr) != Some(0) || cols.checked_rem(tc) != Some(0) {
            return Err(FormatError::Shape {
                format,
                tensor: self.tensor,
                shape: shape.to_vec(),
                tile_rows: tr,
                tile_cols: tc,
            });
        }
        ((rows / tr) * (cols / tc))
            .checked_mul(self.bytes)
            .ok_or_else(|| FormatError::TooLarge {
                format,
                shape: shape.to_vec(),
            })
    }

    fn expect_len(&self, format: &'static str, got: usize, want: usize) -> FormatResult<()> {
        if got == want {
            Ok(())
        } else {
            Err(FormatError::ByteLength {
                format,
                tensor: self.tensor,
                got,
                want,
            })
        }
    }

    /// Unpacks whole blocks.
    pub(super) fn unpack(&self, format: &'static str, bytes: &[u8]) -> FormatResult<Unpacked> {
        let blocks = bytes.len() / self.bytes;
        self.expect_len(format, bytes.len(), blocks * self.bytes)?;
        let mut fields: Vec<FieldValues> = self
            .fields
            .iter()
            .map(|f| FieldValues {
                role: f.role,
                values: vec![0; f.count * blocks],
            })
            .collect();
        for (b, block) in bytes.chunks_exact(self.bytes).enumerate() {
            for (f, out) in self.fields.iter().zip(&mut fields) {
                let vals = &mut out.values[b * f.count..(b + 1) * f.count];
                for p in f.parts {
                    for i in 0..p.len() {
                        let raw = read_bits(block, p.offset(i) as usize, p.bits);
                        vals[p.first + i] |= raw << p.shift;
                    }
                }
            }
        }
        Ok(Unpacked { blocks, fields })
    }

    /// Packs field values into blocks: the inverse of [`Packing::unpack`].
    pub(super) fn pack(&self, format: &'static str, u: &Unpacked) -> FormatResult<Vec<u8>> {
        let len = u.blocks.checked_mul(self.bytes);
        let len = len.ok_or(FormatError::TooLarge {
            format,
            shape: vec![u.blocks],
        })?;
        let mut out = vec![0u8; len];
        for f in self.fields {
            let want = f.count * u.blocks;
            let vals = u.get(f.role).ok_or(FormatError::Count {
                format,
                tensor: self.tensor,
                role: f.role.name(),
                got: 0,
                want,
            })?;
            if vals.len() != want {
                return Err(FormatError::Count {
                    format,
                    tensor: self.tensor,
                    role: f.role.name(),
                    got: vals.len(),
                    want,
                });
            }
            if let Some(&v) = vals.iter().find(|&&v| v & !mask(f.bits) != 0) {
                return Err(FormatError::Value {
                    format,
                    tensor: self.tensor,
                    role: f.role.name(),
                    value: v,
                    bits: f.bits,
                });
            }
            for (b, block) in out.chunks_exact_mut(self.bytes).enumerate() {
                let vals = &vals[b * f.count..(b + 1) * f.count];
                for p in f.parts {
                    for i in 0..p.len() {
                        let v = (vals[p.first + i] >> p.shift) & mask(p.bits);
                        write_bits(block, p.offset(i) as usize, p.bits, v);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The `(row, col)` in the matrix of element `k` of block `b`, for a matrix of
    /// `blocks_per_row` blocks per row.
    pub fn element(&self, blocks_per_row: usize, b: usize, k: usize) -> (usize, usize) {
        let [tr, tc] = self.tile;
        let (br, bc) = (b / blocks_per_row, b % blocks_per_row);
        (br * tr + k / tc, bc * tc + k % tc)
    }

    /// The codes of a code-only packing as a row-major `[rows, cols]` matrix.
    pub(super) fn unpack_matrix(
        &self,
        format: &'static str,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> FormatResult<Vec<u32>> {
        let want = self.byte_len(format, &[rows, cols], rows, cols)?;
        self.expect_len(format, bytes.len(), want)?;
        let code = self.code_only(format)?;
        let u = self.unpack(format, bytes)?;
        let codes = u.get(Role::Code).expect("a code-only packing has codes");
        let per_row = cols / self.tile[1];
        let mut out = vec![0u32; rows * cols];
        for (b, block) in codes.chunks_exact(code.count).enumerate() {
            for (k, &v) in block.iter().enumerate() {
                let (r, c) = self.element(per_row, b, k);
                out[r * cols + c] = v;
            }
        }
        Ok(out)
    }

    /// Packs a row-major `[rows, cols]` matrix of codes with a code-only packing.
    pub(super) fn pack_matrix(
        &self,
        format: &'static str,
        rows: usize,
        cols: usize,
        values: &[u32],
    ) -> FormatResult<Vec<u8>> {
        let want = self.byte_len(format, &[rows, cols], rows, cols)? / self.bytes;
        let code = self.code_only(format)?;
        if values.len() != rows * cols {
            return Err(FormatError::Count {
                format,
                tensor: self.tensor,
                role: Role::Code.name(),
                got: values.len(),
                want: rows * cols,
            });
        }
        let per_row = cols / self.tile[1];
        let mut codes = vec![0u32; want * code.count];
        for (b, block) in codes.chunks_exact_mut(code.count).enumerate() {
            for (k, v) in block.iter_mut().enumerate() {
                let (r, c) = self.element(per_row, b, k);
                *v = values[r * cols + c];
            }
        }
        let u = Unpacked {
            blocks: want,
            fields: vec![FieldValues {
                role: Role::Code,
                values: codes,
            }],
        };
        self.pack(format, &u)
    }

    fn code_only(&self, format: &'static str) -> FormatResult<&Field> {
        match self.fields {
            [f] if f.role == Role::Code && f.count == self.elems() => Ok(f),
            _ => Err(FormatError::Unsupported {
                format,
                what: "code-only layout for this array (it has inline fields)",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_cross_bytes() {
        let mut b = [0u8; 4];
        write_bits(&mut b, 6, 6, 0b101101);
        assert_eq!(b, [0b0100_0000, 0b0000_1011, 0, 0]);
        assert_eq!(read_bits(&b, 6, 6), 0b101101);
        write_bits(&mut b, 0, 32, 0xDEAD_BEEF);
        assert_eq!(u32::from_le_bytes(b), 0xDEAD_BEEF);
        assert_eq!(read_bits(&b, 0, 32), 0xDEAD_BEEF);
        assert_eq!(read_bits(&b, 4, 8), 0xEE);
    }

    #[test]
    fn layout_offsets() {
        // AWQ: column e of a word sits at nibble 4·(e % 2) + e / 2.
        let p = Part {
            first: 0,
            bits: 4,
            shift: 0,
            at: 0,
            shape: &[2, 4],
            stride: &[16, 4],
        };
        let nibbles: Vec<i64> = (0..8).map(|e| p.offset(e) / 4).collect();
        assert_eq!(nibbles, [0, 4, 1, 5, 2, 6, 3, 7]);
    }
}
