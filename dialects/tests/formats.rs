//! Checks the storage-format registry (`lowbit_dialects::formats`) against independent
//! references: gguf-py's own quantize/dequantize for GGUF, numpy packings of AWQ and
//! GPTQ, bitsandbytes' NF4 table, and a Python FP8 decoder. The vectors are
//! `tests/data/formats/*.json`, written by `tests/data/gen_format_vectors.py`.
//!
//! Dequantized values must equal the reference bit for bit (a NaN matches any NaN), and
//! unpacking then packing every stored array must give back the same bytes.

use std::path::PathBuf;

use lowbit_dialects::formats::{
    self, decode_bits, encode_bits, Array, Decode, Family, Format, FormatError, Min, Role, Scale,
    Stored, Zero, NF4,
};
use lowbit_dialects::ir::Elem;
use lowbit_dialects::numeric::round_to;
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    cases: Vec<Case>,
    #[serde(default)]
    table: Option<Vec<u32>>,
    #[serde(default)]
    e4m3: Option<Vec<u32>>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    format: String,
    shape: Vec<usize>,
    data: String,
    scales: Option<String>,
    zeros: Option<String>,
    g_idx: Option<Vec<i32>>,
    group: Option<usize>,
    expected: String,
    #[serde(default)]
    same_as: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

struct Bytes {
    data: Vec<u8>,
    scales: Option<Vec<u8>>,
    zeros: Option<Vec<u8>>,
}

impl Case {
    fn format(&self) -> &'static Format {
        formats::lookup(&self.format)
            .unwrap_or_else(|| panic!("{}: no format {}", self.name, self.format))
    }

    fn bytes(&self) -> Bytes {
        Bytes {
            data: hex(&self.data),
            scales: self.scales.as_deref().map(hex),
            zeros: self.zeros.as_deref().map(hex),
        }
    }

    fn stored<'a>(&'a self, b: &'a Bytes) -> Stored<'a> {
        Stored {
            data: &b.data,
            scales: b.scales.as_deref(),
            zeros: b.zeros.as_deref(),
            g_idx: self.g_idx.as_deref(),
            group: self.group,
        }
    }

    fn expected(&self) -> Vec<u32> {
        hex(&self.expected)
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// Dequantizes bit-exactly and round-trips every array through unpack/pack.
    fn check(&self) -> Vec<f32> {
        let f = self.format();
        let b = self.bytes();
        let got = f
            .dequantize(&self.shape, &self.stored(&b))
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        assert_bits(&self.name, &got, &self.expected());
        let lens = f.byte_lengths(&self.shape, self.group).unwrap();
        assert_eq!(lens[0], b.data.len(), "{}: data length", self.name);
        for (array, bytes, len) in [
            (Array::Data, Some(&b.data), lens[0]),
            (Array::Scales, b.scales.as_ref(), lens[1]),
            (Array::Zeros, b.zeros.as_ref(), lens[2]),
        ] {
            let Some(bytes) = bytes else { continue };
            assert_eq!(len, bytes.len(), "{}: {array:?} length", self.name);
            let u = f.unpack(array, bytes).unwrap();
            let again = f.pack(array, &u).unwrap();
            assert!(
                again == *bytes,
                "{}: pack(unpack({array:?})) differs",
                self.name
            );
        }
        got
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn assert_bits(name: &str, got: &[f32], want: &[u32]) {
    assert_eq!(got.len(), want.len(), "{name}: element count");
    for (i, (g, &w)) in got.iter().zip(want).enumerate() {
        let wf = f32::from_bits(w);
        let ok = if wf.is_nan() {
            g.is_nan()
        } else {
            g.to_bits() == w
        };
        assert!(
            ok,
            "{name}[{i}]: got {g:e} ({:#010x}), want {wf:e} ({w:#010x})",
            g.to_bits()
        );
    }
}

fn load(file: &str) -> File {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/formats")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn arrays(f: &Format) -> Vec<Array> {
    [Array::Data, Array::Scales, Array::Zeros]
        .into_iter()
        .filter(|&a| f.packing(a).is_some())
        .collect()
}

#[test]
fn registry_is_well_formed() {
    let all = formats::all();
    let names = [
        "f32",
        "f16",
        "bf16",
        "q8_0",
        "q4_0",
        "q4_1",
        "q5_0",
        "q4_k",
        "q6_k",
        "mxfp4",
        "nf4",
        "fp8_e4m3",
        "fp8_e4m3_channel",
        "fp8_e4m3_block128",
        "awq_gemm_int4",
        "gptq_int4",
        "gptq_int8",
    ];
    assert_eq!(all.iter().map(|f| f.name).collect::<Vec<_>>(), names);
    for f in all {
        for a in arrays(f) {
            let p = f.packing(a).unwrap();
            p.check()
                .unwrap_or_else(|e| panic!("{} {a:?}: {e}", f.name));
        }
        assert_eq!(formats::lookup(&f.name.to_uppercase()), Some(f));
        if let Some(t) = f.ggml_type {
            assert_eq!(formats::lookup_ggml(t), Some(f));
        }
        assert_eq!(
            f.family == Family::Gguf,
            f.ggml_type.is_some(),
            "{}",
            f.name
        );
        let has = |r: Role| f.data.field(r).is_some();
        assert_eq!(
            matches!(f.scale, Scale::Inline),
            has(Role::Scale),
            "{}",
            f.name
        );
        assert_eq!(f.min != Min::None, has(Role::Min), "{}", f.name);
        assert_eq!(f.sub_block.is_some(), has(Role::SubScale), "{}", f.name);
        for r in [Role::SubScale, Role::SubMin] {
            if let (Some(field), Some(sub)) = (f.data.field(r), f.sub_block) {
                assert_eq!(field.count * sub, f.block_elems(), "{} {r:?}", f.name);
            }
        }
    }
    let gguf = |n: &str| {
        let f = formats::lookup(n).unwrap();
        (f.block_elems(), f.block_bytes())
    };
    // ggml's GGML_QUANT_SIZES.
    assert_eq!(gguf("q8_0"), (32, 34));
    assert_eq!(gguf("q4_0"), (32, 18));
    assert_eq!(gguf("q4_1"), (32, 20));
    assert_eq!(gguf("q5_0"), (32, 22));
    assert_eq!(gguf("q4_k"), (256, 144));
    assert_eq!(gguf("q6_k"), (256, 210));
    assert_eq!(gguf("mxfp4"), (32, 17));
    assert_eq!(formats::lookup("nf4").map(|f| f.block_elems()), Some(64));
    assert!(formats::lookup("q3_k").is_none());
    assert_eq!(
        formats::get("int3"),
        Err(FormatError::Unknown("int3".into()))
    );
}

#[test]
fn gguf_matches_gguf_py() {
    let file = load("gguf.json");
    for c in &file.cases {
        let got = c.check();
        if c.name == "q4_0_spec_block" {
            // techniques.md 4.4: the extreme -1.0 maps to q = 0 exactly; +1.0 clips to 0.875.
            assert_eq!((got[0], got[1]), (-1.0, 0.875));
        }
    }
    for f in formats::all().iter().filter(|f| f.family == Family::Gguf) {
        let n = file.cases.iter().filter(|c| c.format == f.name).count();
        assert!(n >= 2, "{} has {n} gguf-py cases", f.name);
    }
}

#[test]
fn awq_gptq_match_numpy() {
    let file = load("awq_gptq.json");
    for c in &file.cases {
        c.check();
    }
    // AWQ's nibble order, read back from the description: nibble i holds column ORDER[i].
    let awq = formats::lookup("awq_gemm_int4").unwrap();
    let word = awq
        .pack_matrix(Array::Data, 1, 8, &[0, 1, 2, 3, 4, 5, 6, 7])
        .unwrap();
    let word = u32::from_le_bytes(word.try_into().unwrap());
    let order: Vec<u32> = (0..8).map(|i| (word >> (4 * i)) & 0xF).collect();
    assert_eq!(order, [0, 2, 4, 6, 1, 3, 5, 7]);

    // GPTQ symmetric zeros: every qzeros word is 0x77777777 (zero 8 stored as 7).
    let sym = file
        .cases
        .iter()
        .find(|c| c.name == "gptq_int4_sym")
        .unwrap();
    assert!(hex(sym.zeros.as_ref().unwrap())
        .chunks(4)
        .all(|w| w == [0x77; 4]));

    // Repacking AWQ as GPTQ (unpack, un-permute, zero − 1, pack along the input) is exact.
    for c in file.cases.iter().filter(|c| c.same_as.is_some()) {
        let a = file
            .cases
            .iter()
            .find(|a| Some(&a.name) == c.same_as.as_ref())
            .unwrap();
        let (gptq, ab) = (c.format(), a.bytes());
        let (n_in, n_out) = (a.shape[0], a.shape[1]);
        let groups = n_in / a.group.unwrap();
        let q = awq
            .unpack_matrix(Array::Data, n_in, n_out, &ab.data)
            .unwrap();
        let z = awq
            .unpack_matrix(Array::Zeros, groups, n_out, ab.zeros.as_ref().unwrap())
            .unwrap();
        let Zero::Tensor { offset, .. } = gptq.zero else {
            panic!("gptq has zero tensors")
        };
        let stored: Vec<u32> = z
            .iter()
            .map(|&z| (z as i64 - offset).rem_euclid(16) as u32)
            .collect();
        let cb = c.bytes();
        assert_eq!(
            gptq.pack_matrix(Array::Data, n_in, n_out, &q).unwrap(),
            cb.data
        );
        assert_eq!(
            gptq.pack_matrix(Array::Zeros, groups, n_out, &stored)
                .unwrap(),
            cb.zeros.unwrap()
        );
        assert!(
            z.contains(&0),
            "the conversion case exercises a zero point of 0 (stored as 15)"
        );
    }
    assert!(
        file.cases.iter().any(|c| c.g_idx.is_some()),
        "an act-order case"
    );
}

#[test]
fn nf4_matches_bitsandbytes() {
    let file = load("nf4.json");
    let table = file.table.expect("nf4.json has the table");
    assert_eq!(NF4.map(f32::to_bits).to_vec(), table);
    for c in &file.cases {
        c.check();
    }
}

#[test]
fn fp8_e4m3_decode_and_scales() {
    let file = load("fp8.json");
    let want = file.e4m3.expect("fp8.json has the 256 decodes");
    let decoded: Vec<f32> = (0..256)
        .map(|c| decode_bits(Elem::F8E4M3FN, c) as f32)
        .collect();
    assert_bits("e4m3 decode", &decoded, &want);
    let table = Decode::Float(Elem::F8E4M3FN).table(8).unwrap();
    assert_bits("e4m3 table", &table, &want);
    for elem in [Elem::F8E4M3FN, Elem::F8E5M2, Elem::F4E2M1FN] {
        for code in 0..1u32 << elem.bits() {
            let v = decode_bits(elem, code);
            if v.is_nan() {
                continue;
            }
            // Every decoded value is a point of the grid numeric::round_to rounds to.
            assert_eq!(
                round_to(v, elem).to_bits(),
                v.to_bits(),
                "{elem:?} code {code:#x}"
            );
            assert_eq!(encode_bits(elem, v), Some(code), "{elem:?} code {code:#x}");
        }
    }
    assert_eq!(decoded.iter().filter(|v| v.is_nan()).count(), 2);
    for c in &file.cases {
        c.check();
    }
}

/// A small deterministic generator (xorshift), so the crate needs no rand dependency.
struct Rng(u64);

impl Rng {
    fn byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }
}

#[test]
fn pack_inverts_unpack_on_random_bytes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for f in formats::all() {
        for a in arrays(f) {
            let p = f.packing(a).unwrap();
            for blocks in [0, 1, 3] {
                let bytes: Vec<u8> = (0..blocks * p.bytes).map(|_| rng.byte()).collect();
                let u = f.unpack(a, &bytes).unwrap();
                assert_eq!(u.blocks, blocks);
                assert_eq!(f.pack(a, &u).unwrap(), bytes, "{} {a:?}", f.name);
            }
        }
    }
}

#[test]
fn bad_inputs_are_errors() {
    let q4 = formats::lookup("q4_0").unwrap();
    let err = q4.dequantize(&[32], &Stored::new(&[0; 17])).unwrap_err();
    assert_eq!(err.to_string(), "'q4_0' data has 17 bytes, expected 18");
    let err = q4.dequantize(&[2, 48], &Stored::new(&[0; 54])).unwrap_err();
    assert!(
        matches!(err, FormatError::Shape { tile_cols: 32, .. }),
        "{err}"
    );
    assert!(q4.unpack(Array::Data, &[0; 19]).is_err());
    assert!(q4.unpack(Array::Scales, &[]).is_err());
    let mut u = q4.unpack(Array::Data, &[0; 18]).unwrap();
    u.fields[1].values[0] = 16;
    let err = q4.pack(Array::Data, &u).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'q4_0' data code value 16 does not fit in 4 bits"
    );
    u.fields.pop();
    assert!(matches!(
        q4.pack(Array::Data, &u),
        Err(FormatError::Count { got: 0, .. })
    ));
    let huge = q4.dequantize(&[usize::MAX, 64], &Stored::new(&[]));
    assert!(matches!(huge, Err(FormatError::TooLarge { .. })));

    let gptq = formats::lookup("gptq_int4").unwrap();
    let (qw, qz, sc) = ([0u8; 8 * 8 * 4], [0u8; 2 * 4], [0u8; 2 * 8 * 2]);
    let full = Stored::new(&qw).scales(&sc).zeros(&qz).group(32);
    assert!(gptq.dequantize(&[64, 8], &full).is_ok());
    let no_group = Stored {
        group: None,
        ..full
    };
    assert_eq!(
        gptq.dequantize(&[64, 8], &no_group),
        Err(FormatError::GroupSize {
            format: "gptq_int4"
        })
    );
    let no_zeros = Stored {
        zeros: None,
        ..full
    };
    assert_eq!(
        gptq.dequantize(&[64, 8], &no_zeros)
            .unwrap_err()
            .to_string(),
        "'gptq_int4' needs the qzeros array"
    );
    let short = Stored {
        scales: Some(&sc[1..]),
        ..full
    };
    assert!(matches!(
        gptq.dequantize(&[64, 8], &short),
        Err(FormatError::ByteLength {
            tensor: "scales",
            ..
        })
    ));
    let g = [0i32; 63];
    assert!(matches!(
        gptq.dequantize(&[64, 8], &full.g_idx(&g)),
        Err(FormatError::GIdxLength { .. })
    ));
    let mut g = [1i32; 64];
    g[5] = 2;
    let err = gptq.dequantize(&[64, 8], &full.g_idx(&g)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'gptq_int4' g_idx[5] = 2 is outside [0, 2)"
    );
    g[5] = -1;
    assert!(gptq.dequantize(&[64, 8], &full.g_idx(&g)).is_err());
    let awq = formats::lookup("awq_gemm_int4").unwrap();
    let err = awq.dequantize(&[8, 64], &full.g_idx(&[0; 8])).unwrap_err();
    assert!(matches!(err, FormatError::Unsupported { .. }), "{err}");
}

/// Whatever the shape and byte lengths, dequantize answers without panicking.
#[test]
fn no_panics_on_arbitrary_sizes() {
    let buf = vec![0x5Au8; 4096];
    for f in formats::all() {
        for shape in [
            &[][..],
            &[0],
            &[1],
            &[7, 3],
            &[8, 8],
            &[64, 64],
            &[2, 256],
            &[0, 5],
        ] {
            for len in [0, 1, 17, 34, 256, 1024, 4096] {
                for group in [None, Some(0), Some(3), Some(32)] {
                    let st = Stored {
                        data: &buf[..len],
                        scales: Some(&buf[..len / 2]),
                        zeros: Some(&buf[..len / 8]),
                        g_idx: None,
                        group,
                    };
                    let _ = f.dequantize(shape, &st);
                    let _ = f.byte_lengths(shape, group);
                    let _ = f.unpack_matrix(Array::Data, shape.len(), len, &buf[..len]);
                }
            }
        }
    }
}
