//! The registry: every storage format lowbit reads, as one table of [`Format`] values.
//!
//! Bit offsets are in bits from the start of a block (see `bits.rs`). Sources: gguf-py
//! `gguf/quants.py` and ggml `ggml-quants.c` (GGUF), bitsandbytes `csrc/kernels.cu`
//! (NF4), AutoAWQ `awq/modules/linear/gemm.py` (AWQ), AutoGPTQ
//! `qlinear_cuda_old.py` (GPTQ), DeepSeek-V3 `inference/kernel.py` and
//! compressed-tensors (FP8).

use super::{
    Decode, Family, Field, Format, Group, Min, Packing, Part, Role, Scale, Side, View, Zero,
    E2M1_GGML, NF4,
};
use crate::ir::Elem;

const F16: Decode = Decode::Float(Elem::F16);
const F32: Decode = Decode::Float(Elem::F32);

/// Bits `[shift, shift + bits)` of values `first..` at `at + Σ coord·stride`.
const fn part(
    first: usize,
    bits: u32,
    shift: u32,
    at: i64,
    shape: &'static [usize],
    stride: &'static [i64],
) -> Part {
    Part {
        first,
        bits,
        shift,
        at,
        shape,
        stride,
    }
}

const fn field(
    role: Role,
    decode: Decode,
    bits: u32,
    count: usize,
    parts: &'static [Part],
) -> Field {
    Field {
        role,
        decode,
        bits,
        count,
        parts,
    }
}

/// One value of `bits` bits at bit `at`.
const fn scalar(at: i64, bits: u32) -> Part {
    part(0, bits, 0, at, &[1], &[0])
}

/// A plain array of one element type, one value per block.
const fn plain(tensor: &'static str, bytes: usize, fields: &'static [Field]) -> Packing {
    Packing {
        tensor,
        tile: [1, 1],
        bytes,
        fields,
    }
}

const PLAIN_F32: &[Field] = &[field(Role::Code, F32, 32, 1, &[scalar(0, 32)])];
const PLAIN_F16: &[Field] = &[field(Role::Code, F16, 16, 1, &[scalar(0, 16)])];
const PLAIN_BF16: &[Field] = &[field(
    Role::Code,
    Decode::Float(Elem::BF16),
    16,
    1,
    &[scalar(0, 16)],
)];
const PLAIN_E4M3: &[Field] = &[field(
    Role::Code,
    Decode::Float(Elem::F8E4M3FN),
    8,
    1,
    &[scalar(0, 8)],
)];

/// A side array of f16 scales (AWQ/GPTQ `scales`), one per (row group, column).
const SCALES_F16_BY_GROUP: Side = Side {
    packing: plain("scales", 2, PLAIN_F16),
    rows: Group::Config,
    cols: Group::Each,
};

/// AWQ's int32 word: nibble `i` holds column `8·w + [0, 2, 4, 6, 1, 3, 5, 7][i]`, i.e.
/// column `e` sits at nibble `4·(e % 2) + e / 2`.
const AWQ_WORD: &[Field] = &[field(
    Role::Code,
    Decode::Uint,
    4,
    8,
    &[part(0, 4, 0, 0, &[2, 4], &[16, 4])],
)];

/// GPTQ's int32 word, sequential: value `j` at bits `bits·j`.
const GPTQ4_WORD: &[Field] = &[field(
    Role::Code,
    Decode::Uint,
    4,
    8,
    &[part(0, 4, 0, 0, &[8], &[4])],
)];
const GPTQ8_WORD: &[Field] = &[field(
    Role::Code,
    Decode::Uint,
    8,
    4,
    &[part(0, 8, 0, 0, &[4], &[8])],
)];

/// GGML's 32-element nibble layout: byte `j` holds element `j` (low) and `j + 16` (high).
const SPLIT_NIBBLES: &[usize] = &[16, 2];
const SPLIT_STRIDE: &[i64] = &[8, 4];

const fn gguf(
    name: &'static str,
    ggml_type: u32,
    summary: &'static str,
    tile: usize,
    bytes: usize,
    fields: &'static [Field],
) -> Format {
    Format {
        name,
        family: Family::Gguf,
        ggml_type: Some(ggml_type),
        summary,
        view: View::Rows,
        data: Packing {
            tensor: "data",
            tile: [1, tile],
            bytes,
            fields,
        },
        scale: Scale::None,
        zero: Zero::None,
        min: Min::None,
        sub_block: None,
        g_idx: false,
    }
}

const fn fp8(
    name: &'static str,
    summary: &'static str,
    tensor: &'static str,
    rows: Group,
    cols: Group,
) -> Format {
    Format {
        name,
        family: Family::Fp8,
        ggml_type: None,
        summary,
        view: View::Rows,
        data: plain("weight", 1, PLAIN_E4M3),
        scale: Scale::Tensor(Side {
            packing: plain(tensor, 4, PLAIN_F32),
            rows,
            cols,
        }),
        zero: Zero::None,
        min: Min::None,
        sub_block: None,
        g_idx: false,
    }
}

const fn gptq(
    name: &'static str,
    summary: &'static str,
    pack: usize,
    word: &'static [Field],
) -> Format {
    Format {
        name,
        family: Family::Gptq,
        ggml_type: None,
        summary,
        view: View::Rows,
        data: Packing {
            tensor: "qweight",
            tile: [pack, 1],
            bytes: 4,
            fields: word,
        },
        scale: Scale::Tensor(SCALES_F16_BY_GROUP),
        zero: Zero::Tensor {
            side: Side {
                packing: Packing {
                    tensor: "qzeros",
                    tile: [1, pack],
                    bytes: 4,
                    fields: word,
                },
                rows: Group::Config,
                cols: Group::Each,
            },
            offset: 1,
        },
        min: Min::None,
        sub_block: None,
        g_idx: true,
    }
}

#[rustfmt::skip]
pub(super) static ALL: &[Format] = &[
    gguf("f32", 0, "GGUF F32: little-endian binary32", 1, 4, PLAIN_F32),
    gguf("f16", 1, "GGUF F16: little-endian binary16", 1, 2, PLAIN_F16),
    gguf("bf16", 30, "GGUF BF16: the high half of a binary32", 1, 2, PLAIN_BF16),
    Format {
        scale: Scale::Inline,
        ..gguf("q8_0", 8, "GGUF Q8_0: {f16 d; i8 qs[32]}, x = d·q", 32, 34, &[
            field(Role::Scale, F16, 16, 1, &[scalar(0, 16)]),
            field(Role::Code, Decode::Int, 8, 32, &[part(0, 8, 0, 16, &[32], &[8])]),
        ])
    },
    Format {
        scale: Scale::Inline,
        zero: Zero::Const(8),
        ..gguf("q4_0", 2, "GGUF Q4_0: {f16 d; u8 qs[16]}, split nibbles, x = d·(q − 8)", 32, 18, &[
            field(Role::Scale, F16, 16, 1, &[scalar(0, 16)]),
            field(Role::Code, Decode::Uint, 4, 32, &[part(0, 4, 0, 16, SPLIT_NIBBLES, SPLIT_STRIDE)]),
        ])
    },
    Format {
        scale: Scale::Inline,
        min: Min::Add,
        ..gguf("q4_1", 3, "GGUF Q4_1: {f16 d; f16 m; u8 qs[16]}, split nibbles, x = d·q + m", 32, 20, &[
            field(Role::Scale, F16, 16, 1, &[scalar(0, 16)]),
            field(Role::Min, F16, 16, 1, &[scalar(16, 16)]),
            field(Role::Code, Decode::Uint, 4, 32, &[part(0, 4, 0, 32, SPLIT_NIBBLES, SPLIT_STRIDE)]),
        ])
    },
    Format {
        scale: Scale::Inline,
        zero: Zero::Const(16),
        ..gguf("q5_0", 6, "GGUF Q5_0: {f16 d; u32 qh; u8 qs[16]}, bit 4 of element j is bit j of qh, x = d·(q − 16)", 32, 22, &[
            field(Role::Scale, F16, 16, 1, &[scalar(0, 16)]),
            field(Role::Code, Decode::Uint, 5, 32, &[
                part(0, 4, 0, 48, SPLIT_NIBBLES, SPLIT_STRIDE),
                part(0, 1, 4, 16, &[32], &[1]),
            ]),
        ])
    },
    // Super-block of 256 = 8 sub-blocks of 32. The 12 scale bytes hold 8 six-bit scales and
    // 8 six-bit mins: sub-block j < 4 in the low 6 bits of bytes j (scale) and j + 4 (min);
    // j ≥ 4 in the nibbles of byte j + 4 (low: scale, high: min) with the top 2 bits in
    // bits 6–7 of bytes j − 4 (scale) and j (min). Codes: 4 chunks of 64 elements in 32
    // bytes, element 64c + l in the low nibble of byte 32c + l, 64c + 32 + l in the high.
    Format {
        scale: Scale::Inline,
        min: Min::Sub,
        sub_block: Some(32),
        ..gguf("q4_k", 12, "GGUF Q4_K: {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}, x = (d·sc)·q − dmin·m", 256, 144, &[
            field(Role::Scale, F16, 16, 1, &[scalar(0, 16)]),
            field(Role::Min, F16, 16, 1, &[scalar(16, 16)]),
            field(Role::SubScale, Decode::Uint, 6, 8, &[
                part(0, 6, 0, 32, &[4], &[8]),
                part(4, 4, 0, 96, &[4], &[8]),
                part(4, 2, 4, 38, &[4], &[8]),
            ]),
            field(Role::SubMin, Decode::Uint, 6, 8, &[
                part(0, 6, 0, 64, &[4], &[8]),
                part(4, 4, 0, 100, &[4], &[8]),
                part(4, 2, 4, 70, &[4], &[8]),
            ]),
            field(Role::Code, Decode::Uint, 4, 256, &[part(0, 4, 0, 128, &[32, 2, 4], &[8, 4, 256])]),
        ])
    },
    // Super-block of 256 = 16 sub-blocks of 16 with i8 scales. Element 128n + 32k + l
    // (k = k0 + 2·k1) has its low 4 bits in nibble k1 of ql[64n + 32·k0 + l] and its high
    // 2 bits at bit 2k of qh[32n + l].
    Format {
        scale: Scale::Inline,
        zero: Zero::Const(32),
        sub_block: Some(16),
        ..gguf("q6_k", 14, "GGUF Q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}, x = (d·sc)·(q − 32)", 256, 210, &[
            field(Role::Code, Decode::Uint, 6, 256, &[
                part(0, 4, 0, 0, &[32, 2, 2, 2], &[8, 256, 4, 512]),
                part(0, 2, 4, 1024, &[32, 4, 2], &[8, 2, 256]),
            ]),
            field(Role::SubScale, Decode::Int, 8, 16, &[part(0, 8, 0, 1536, &[16], &[8])]),
            field(Role::Scale, F16, 16, 1, &[scalar(1664, 16)]),
        ])
    },
    Format {
        scale: Scale::Inline,
        ..gguf("mxfp4", 39, "GGUF MXFP4: {e8m0 e; u8 qs[16]}, split nibbles, x = 2^(e − 127)·e2m1(q)", 32, 17, &[
            field(Role::Scale, Decode::Pow2 { bias: 127 }, 8, 1, &[scalar(0, 8)]),
            field(Role::Code, Decode::Lut(&E2M1_GGML), 4, 32, &[part(0, 4, 0, 8, SPLIT_NIBBLES, SPLIT_STRIDE)]),
        ])
    },
    // bitsandbytes packs the flattened tensor two codes a byte, the first in the high nibble;
    // one f32 absmax per 64 elements (not double-quantized).
    Format {
        name: "nf4",
        family: Family::BitsAndBytes,
        ggml_type: None,
        summary: "bitsandbytes NF4: 4-bit codes (first of a pair in the high nibble), f32 absmax per 64, x = NF4[q]·absmax",
        view: View::Flat,
        data: Packing {
            tensor: "weight",
            tile: [1, 64],
            bytes: 32,
            fields: &[field(Role::Code, Decode::Lut(&NF4), 4, 64, &[part(0, 4, 0, 4, &[2, 32], &[-4, 8])])],
        },
        scale: Scale::Tensor(Side {
            packing: plain("absmax", 4, PLAIN_F32),
            rows: Group::Whole,
            cols: Group::Fixed(64),
        }),
        zero: Zero::None,
        min: Min::None,
        sub_block: None,
        g_idx: false,
    },
    fp8("fp8_e4m3", "FP8 E4M3FN with one f32 scale for the tensor, x = e4m3(q)·s", "weight_scale", Group::Whole, Group::Whole),
    fp8("fp8_e4m3_channel", "FP8 E4M3FN weight [out, in] with one f32 scale per output row", "weight_scale", Group::Each, Group::Whole),
    fp8("fp8_e4m3_block128", "FP8 E4M3FN weight [out, in] with f32 scales per 128x128 block (DeepSeek-V3 weight_scale_inv)", "weight_scale_inv", Group::Fixed(128), Group::Fixed(128)),
    Format {
        name: "awq_gemm_int4",
        family: Family::Awq,
        ggml_type: None,
        summary: "AutoAWQ GEMM: qweight i32 [in, out/8] (nibble order 0 2 4 6 1 3 5 7), qzeros i32 [in/g, out/8], scales f16 [in/g, out], x = (q − z)·s",
        view: View::Rows,
        data: Packing { tensor: "qweight", tile: [1, 8], bytes: 4, fields: AWQ_WORD },
        scale: Scale::Tensor(SCALES_F16_BY_GROUP),
        zero: Zero::Tensor {
            side: Side {
                packing: Packing { tensor: "qzeros", tile: [1, 8], bytes: 4, fields: AWQ_WORD },
                rows: Group::Config,
                cols: Group::Each,
            },
            offset: 0,
        },
        min: Min::None,
        sub_block: None,
        g_idx: false,
    },
    gptq("gptq_int4", "GPTQ v1: qweight i32 [in/8, out] packed along input, qzeros i32 [groups, out/8] storing z − 1, scales f16 [groups, out], g_idx, x = (q − z)·s", 8, GPTQ4_WORD),
    gptq("gptq_int8", "GPTQ v1: qweight i32 [in/4, out] packed along input, qzeros i32 [groups, out/4] storing z − 1, scales f16 [groups, out], g_idx, x = (q − z)·s", 4, GPTQ8_WORD),
];
