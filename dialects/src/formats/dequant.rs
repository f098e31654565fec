//! Dequantization: one routine for every format, driven by its description.
//!
//! Each element is `x = s · (v − z)`, then `x + m` (Q4_1) or `x − dmin · submin` (K-quants),
//! where `s` is the block or side scale times the sub-block scale. Every operand is an f32
//! value (an E8M0 scale may be `2^128`), each step is computed in f64 and rounded to f32:
//! a product of two f32 values is exact in f64, and a sum of two rounded once more to f32
//! is correctly rounded (53 ≥ 2·24 + 2), so each step equals the f32 operation of the
//! reference implementations, in their order.

use super::{
    Array, Decode, Format, FormatError, FormatResult, Group, Min, Role, Scale, Side, Stored, Zero,
};
use crate::ir::Elem;

fn f32r(x: f64) -> f64 {
    x as f32 as f64
}

/// A side array decoded over its grid, with the group sizes that index it.
struct SideValues {
    values: Vec<f64>,
    cols: usize,
    group: [usize; 2],
}

impl SideValues {
    fn read(
        f: &Format,
        side: &Side,
        (rows, cols): (usize, usize),
        st: &Stored<'_>,
        bytes: Option<&[u8]>,
        array: Array,
        zero_offset: Option<i64>,
    ) -> FormatResult<SideValues> {
        let ([nr, nc], group) = f.side_grid(side, rows, cols, st)?;
        let bytes = bytes.ok_or(FormatError::Missing {
            format: f.name,
            tensor: side.packing.tensor,
        })?;
        let raw = f.unpack_matrix(array, nr, nc, bytes)?;
        let code = side
            .packing
            .field(Role::Code)
            .expect("a side array has codes");
        let values = raw
            .iter()
            .map(|&r| match zero_offset {
                Some(off) => (r as i64 + off).rem_euclid(1i64 << code.bits) as f64,
                None => code.decode.value(r, code.bits),
            })
            .collect();
        Ok(SideValues {
            values,
            cols: nc,
            group,
        })
    }

    /// The entry for matrix element `(r, c)`; `row_group` replaces `r / group` (g_idx).
    fn at(&self, r: usize, c: usize, row_group: Option<&[usize]>) -> f64 {
        let gr = row_group.map_or(r / self.group[0], |g| g[r]);
        self.values[gr * self.cols + c / self.group[1]]
    }
}

/// GPTQ's `g_idx`, checked: the group of every row, each below the number of row groups.
fn row_groups(
    f: &Format,
    rows: usize,
    cols: usize,
    st: &Stored<'_>,
) -> FormatResult<Option<Vec<usize>>> {
    let Some(g_idx) = st.g_idx else {
        return Ok(None);
    };
    let side = match &f.scale {
        Scale::Tensor(side) if f.g_idx && side.rows == Group::Config => side,
        _ => {
            return Err(FormatError::Unsupported {
                format: f.name,
                what: "g_idx (act-order) input",
            })
        }
    };
    if g_idx.len() != rows {
        return Err(FormatError::GIdxLength {
            format: f.name,
            got: g_idx.len(),
            want: rows,
        });
    }
    let ([groups, _], _) = f.side_grid(side, rows, cols, st)?;
    g_idx
        .iter()
        .enumerate()
        .map(|(index, &g)| match usize::try_from(g) {
            Ok(g) if g < groups => Ok(g),
            _ => Err(FormatError::GIdx {
                format: f.name,
                index,
                value: g as i64,
                groups,
            }),
        })
        .collect::<FormatResult<Vec<_>>>()
        .map(Some)
}

/// A plain float array read without arithmetic, keeping NaN payloads as the reference does.
fn passthrough(f: &Format) -> Option<Elem> {
    let code = f.data.field(Role::Code)?;
    match (code.decode, f.scale, f.zero, f.min) {
        (Decode::Float(e @ (Elem::F32 | Elem::BF16)), Scale::None, Zero::None, Min::None) => {
            Some(e)
        }
        _ => None,
    }
}

pub(super) fn dequantize(f: &Format, shape: &[usize], st: &Stored<'_>) -> FormatResult<Vec<f32>> {
    let (rows, cols) = f.matrix(shape)?;
    let want = f.data.byte_len(f.name, shape, rows, cols)?;
    if st.data.len() != want {
        return Err(FormatError::ByteLength {
            format: f.name,
            tensor: f.data.tensor,
            got: st.data.len(),
            want,
        });
    }
    let u = f.data.unpack(f.name, st.data)?;
    let code = f.data.field(Role::Code).expect("every format has codes");
    let codes = u.get(Role::Code).expect("every format has codes");
    if let Some(elem) = passthrough(f) {
        return Ok(codes
            .iter()
            .map(|&c| match elem {
                Elem::BF16 => f32::from_bits(c << 16),
                _ => f32::from_bits(c),
            })
            .collect());
    }
    let groups = row_groups(f, rows, cols, st)?;
    let groups = groups.as_deref();
    let scales = match &f.scale {
        Scale::Tensor(side) => Some(SideValues::read(
            f,
            side,
            (rows, cols),
            st,
            st.scales,
            Array::Scales,
            None,
        )?),
        Scale::None | Scale::Inline => None,
    };
    let zeros = match &f.zero {
        Zero::Tensor { side, offset } => Some(SideValues::read(
            f,
            side,
            (rows, cols),
            st,
            st.zeros,
            Array::Zeros,
            Some(*offset),
        )?),
        Zero::None | Zero::Const(_) => None,
    };

    // Per-block inline values, decoded.
    let inline = |role: Role| -> Option<Vec<f64>> {
        let field = f.data.field(role)?;
        let raw = u.get(role)?;
        Some(
            raw.iter()
                .map(|&r| field.decode.value(r, field.bits))
                .collect(),
        )
    };
    let d = inline(Role::Scale);
    let m = inline(Role::Min);
    let sub_scale = inline(Role::SubScale);
    let sub_min = inline(Role::SubMin);
    let sub = f.sub_block.unwrap_or(usize::MAX);
    let per_sub = f.data.elems().div_ceil(sub);

    let e = f.data.elems();
    let per_row = cols / f.data.tile[1].max(1);
    let mut out = vec![0f32; rows * cols];
    for b in 0..u.blocks {
        for k in 0..e {
            let (r, c) = f.data.element(per_row, b, k);
            let v = code.decode.value(codes[b * e + k], code.bits);
            let s = match (&f.scale, &scales, &d) {
                (Scale::Inline, _, Some(d)) => Some(d[b]),
                (Scale::Tensor(_), Some(s), _) => Some(s.at(r, c, groups)),
                _ => None,
            };
            let s = match (s, &sub_scale) {
                (Some(s), Some(sc)) => Some(f32r(s * sc[b * per_sub + k / sub])),
                (s, _) => s,
            };
            let v = match (&f.zero, &zeros) {
                (Zero::Const(z), _) => v - *z as f64,
                (Zero::Tensor { .. }, Some(z)) => v - z.at(r, c, groups),
                _ => v,
            };
            let mut x = match s {
                Some(s) => f32r(s * v),
                None => f32r(v),
            };
            match (f.min, &m) {
                (Min::Add, Some(m)) => x = f32r(x + m[b]),
                (Min::Sub, Some(m)) => {
                    let mt = match &sub_min {
                        Some(sm) => f32r(m[b] * sm[b * per_sub + k / sub]),
                        None => m[b],
                    };
                    x = f32r(x - mt);
                }
                _ => {}
            }
            out[r * cols + c] = x as f32;
        }
    }
    Ok(out)
}
