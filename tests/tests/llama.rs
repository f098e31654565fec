//! Llama-family checkpoints (Llama, Mistral, Qwen2; fp32, AWQ int4, GPTQ int4/int8) against
//! a numpy reference.
//!
//! `scripts/llama_reference.py` writes tiny random checkpoints (hidden 64, 2 layers, vocab
//! 128, GQA) once per test run, packing AWQ and GPTQ weights with its own numpy code, and
//! computes the architecture's forward pass in float64 from the weights it wrote (for the
//! quantized cases, from its own dequantization `(q - z) · s`). The tests import each
//! checkpoint, run the reference interpreter and compare: logits and present keys/values
//! within 1e-4 relative (max abs error over max abs reference), every dequantized int4/int8
//! weight bit for bit, and prefill(S) + decode steps against prefill(S + k) within 1e-5.

use lowbit_tests::{lowbit, script_output_dir};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lowbit_compiler::import::llama::{import_llama_dir, Entry, LlamaDims, LlamaImport};
use lowbit_compiler::tensors::to_interp;
use lowbit_dialects::interp::{run_func, Tensor};
use lowbit_dialects::ir::verify::verify_module;
use lowbit_runtime::{read_tensors, TensorMap};

const CASES: &[&str] = &[
    "llama", "llama3", "linear", "qwen2", "mistral", "awq", "gptq", "gptq8",
];
/// The checkpoints, written once per test binary run.
fn cases_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| script_output_dir("llama_reference.py", "numpy"))
}

fn reference(case: &str) -> TensorMap {
    read_tensors(cases_dir().join(case).join("reference.npz")).expect("reference.npz reads")
}

fn import(case: &str, entry: Entry, batch: usize, sequence: usize, past: usize) -> LlamaImport {
    let dims = LlamaDims {
        batch,
        sequence,
        past,
    };
    let m = import_llama_dir(cases_dir().join(case), entry, dims)
        .unwrap_or_else(|e| panic!("{case}: import fails: {e}"));
    verify_module(&m.module).unwrap_or_else(|e| panic!("{case}: IR does not verify: {e:?}"));
    m
}

/// Runs the imported function on named inputs (`attention_mask` defaults to ones);
/// returns the outputs by name.
fn run(m: &LlamaImport, inputs: &[(&str, Tensor)]) -> Vec<(String, Tensor)> {
    let f = &m.module.funcs[0];
    let args: Vec<Tensor> = m
        .inputs
        .iter()
        .zip(f.param_types())
        .map(|(n, ty)| match inputs.iter().find(|(k, _)| k == n) {
            Some((_, t)) => t.clone(),
            None if n == "attention_mask" => Tensor::new(ty.clone(), vec![1.0; ty.num_elements()]),
            None => panic!("no input {n}"),
        })
        .collect();
    let w = m.weights.weights_for(f).expect("weights load");
    let outs = run_func(f, &args, &w).expect("interpreter runs");
    m.outputs.iter().cloned().zip(outs).collect()
}

fn get<'a>(outs: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &outs.iter().find(|(n, _)| n == name).expect("output").1
}

/// max |got - want| / max |want|.
fn rel(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    num / want.iter().map(|b| b.abs()).fold(0.0, f64::max)
}

/// Columns `[from, to)` of axis `axis` of a tensor.
fn slice(t: &Tensor, axis: usize, from: usize, to: usize) -> Tensor {
    let dims: Vec<usize> = t.ty.shape.iter().map(|&d| d as usize).collect();
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    let mut data = Vec::new();
    for o in 0..outer {
        for i in from..to {
            let at = (o * dims[axis] + i) * inner;
            data.extend_from_slice(&t.data[at..at + inner]);
        }
    }
    let mut shape = t.ty.shape.clone();
    shape[axis] = (to - from) as i64;
    Tensor::new(lowbit_dialects::ir::TensorType::new(shape, t.ty.elem), data)
}

#[test]
fn prefill_matches_numpy_reference() {
    for case in CASES {
        let r = reference(case);
        let m = import(case, Entry::Prefill, 2, 7, 0);
        assert_eq!(m.inputs, ["input_ids", "attention_mask"]);
        let outs = run(
            &m,
            &[
                ("input_ids", to_interp(&r["input_ids"])),
                ("attention_mask", to_interp(&r["attention_mask"])),
            ],
        );
        let mut worst: f64 = 0.0;
        for (name, got) in &outs {
            let want = to_interp(&r[name.as_str()]);
            assert_eq!(got.ty.shape, want.ty.shape, "{case} {name}");
            let e = rel(&got.data, &want.data);
            assert!(e <= 1e-4, "{case} {name}: relative error {e:.3e} > 1e-4");
            worst = worst.max(e);
        }
        eprintln!(
            "{case}: logits and {} present tensors, max relative error {worst:.3e}",
            outs.len() - 1
        );
    }
}

#[test]
fn quantized_weights_dequantize_bit_exactly() {
    for case in ["awq", "gptq", "gptq8"] {
        let r = reference(case);
        let m = import(case, Entry::Prefill, 1, 1, 0);
        let mut checked = 0;
        let mut elements = 0;
        for (key, want) in &r {
            let Some(module) = key.strip_prefix("dequant.") else {
                continue;
            };
            let f = m.dequantize_func(module).expect("a quantized weight");
            let w = m.weights.weights_for(&f).expect("weights load");
            let got = &run_func(&f, &[], &w).expect("dequantize runs")[0];
            let want = to_interp(want);
            assert_eq!(got.ty, want.ty, "{case} {module}");
            let differ = got
                .data
                .iter()
                .zip(&want.data)
                .filter(|(a, b)| (**a as f32).to_bits() != (**b as f32).to_bits())
                .count();
            assert_eq!(differ, 0, "{case} {module}: {differ} elements differ");
            checked += 1;
            elements += got.data.len();
        }
        assert_eq!(checked, 14, "{case}: 7 linears in each of 2 layers");
        eprintln!("{case}: {checked} weights, {elements} elements bit-identical");
        // The codes stay 4 or 8 bits wide in the weight store.
        let f = m.dequantize_func("model.layers.0.mlp.up_proj").unwrap();
        let w = m.weights.weights_for(&f).unwrap();
        let codes = w
            .iter()
            .find(|(k, _)| k.ends_with(".qweight:codes"))
            .expect("codes");
        let want = if case == "gptq8" { "ui8" } else { "ui4" };
        assert_eq!(codes.1.ty.elem.name(), want, "{case}");
    }
}

#[test]
fn decode_steps_continue_prefill() {
    for case in ["llama", "llama3", "qwen2", "mistral", "awq", "gptq"] {
        let r = reference(case);
        let ids = to_interp(&r["input_ids"]);
        let ones = |n: usize| {
            Tensor::new(
                lowbit_dialects::ir::TensorType::new([2, n as i64], lowbit_dialects::ir::Elem::I64),
                vec![1.0; 2 * n],
            )
        };
        let full = import(case, Entry::Prefill, 2, 7, 0);
        let full_out = run(
            &full,
            &[("input_ids", ids.clone()), ("attention_mask", ones(7))],
        );
        let full_logits = get(&full_out, "logits");
        let pre = import(case, Entry::Prefill, 2, 5, 0);
        let mut out = run(
            &pre,
            &[
                ("input_ids", slice(&ids, 1, 0, 5)),
                ("attention_mask", ones(5)),
            ],
        );
        let mut worst: f64 = 0.0;
        for t in 5..7 {
            let dec = import(case, Entry::Decode, 2, 1, t);
            let mut inputs: Vec<(String, Tensor)> = vec![
                ("input_ids".into(), slice(&ids, 1, t, t + 1)),
                ("attention_mask".into(), ones(t + 1)),
            ];
            for (name, v) in &out {
                if let Some(rest) = name.strip_prefix("present.") {
                    inputs.push((format!("past_key_values.{rest}"), v.clone()));
                }
            }
            let named: Vec<(&str, Tensor)> = inputs
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            out = run(&dec, &named);
            let got = get(&out, "logits");
            let want = slice(full_logits, 1, t, t + 1);
            let e = rel(&got.data, &want.data);
            assert!(e <= 1e-5, "{case} decode at T={t}: relative error {e:.3e}");
            worst = worst.max(e);
            let k = get(&out, "present.1.key");
            assert_eq!(k.ty.shape[2], (t + 1) as i64);
        }
        // The cache after two steps equals the longer prefill's.
        let e = rel(
            &get(&out, "present.1.value").data,
            &get(&full_out, "present.1.value").data,
        );
        assert!(e <= 1e-5, "{case}: cache after decode differs by {e:.3e}");
        eprintln!(
            "{case}: prefill(5) + 2 decode steps vs prefill(7): max relative error {worst:.3e}"
        );
    }
}

// ---------------------------------------------------------------- config errors

/// Writes the `llama` case's `config.json` with `extra` fields appended (later keys win)
/// and `remove` taken out, beside its weights in a fresh directory; imports it and returns
/// the error message.
fn config_error(extra: &str, remove: &str) -> String {
    let src = cases_dir().join("llama");
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(src.join("config.json")).unwrap();
    let text = text.replace(remove, "");
    let end = text.rfind('}').expect("a JSON object");
    let text = if extra.is_empty() {
        text
    } else {
        format!("{}, {extra}}}", &text[..end])
    };
    std::fs::write(dir.path().join("config.json"), text).unwrap();
    std::fs::copy(
        src.join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    match import_llama_dir(dir.path(), Entry::Prefill, LlamaDims::default()) {
        Ok(_) => panic!("the import should fail ({extra} {remove})"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsupported_configs_name_the_field() {
    let cases = [
        (
            r#""architectures": ["GPTNeoXForCausalLM"]"#,
            "",
            "architectures names \"GPTNeoXForCausalLM\", which lowbit cannot import",
        ),
        (
            r#""rope_scaling": {"rope_type": "yarn", "factor": 4.0}"#,
            "",
            "rope_scaling type \"yarn\" is not supported",
        ),
        (r#""hidden_act": "gelu""#, "", "hidden_act is \"gelu\""),
        (
            r#""partial_rotary_factor": 0.5"#,
            "",
            "partial_rotary_factor is 0.5",
        ),
        (
            r#""quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 32, "version": "gemv"}"#,
            "",
            "quantization_config.version is \"gemv\"",
        ),
        (
            r#""quantization_config": {"quant_method": "gptq", "bits": 3, "group_size": 32}"#,
            "",
            "quantization_config.bits is Some(3)",
        ),
        (
            r#""num_key_value_heads": 3"#,
            "",
            "num_attention_heads 4 is not a multiple of num_key_value_heads 3",
        ),
        ("", "\"hidden_size\": 64,", "hidden_size is missing"),
    ];
    for (extra, remove, want) in cases {
        let got = config_error(extra, remove);
        assert!(got.contains(want), "expected '{want}' in: {got}");
    }
    // A Mistral window shorter than the sequence changes attention: refused.
    let e = import_llama_dir(
        cases_dir().join("mistral"),
        Entry::Prefill,
        LlamaDims {
            batch: 1,
            sequence: 17,
            past: 0,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("sliding_window 16 is shorter than past + sequence = 17"),
        "{e}"
    );
    let e = import_llama_dir(
        cases_dir().join("llama"),
        Entry::Decode,
        LlamaDims::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("the decode entry needs a cache"), "{e}");
}

// ---------------------------------------------------------------- GGUF

use lowbit_compiler::import::gguf::{import_gguf, parse_gguf, GgufImport, MetaValue};

const GGUF_TYPES: &[&str] = &["q4_0", "q4_1", "q8_0", "q4_k", "q6_k"];
fn gguf_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| script_output_dir("gguf_cases.py", "numpy and gguf"))
}

fn import_g(path: &Path, entry: Entry, sequence: usize, past: usize) -> GgufImport {
    let g = import_gguf(
        path,
        entry,
        LlamaDims {
            batch: 2,
            sequence,
            past,
        },
    )
    .unwrap_or_else(|e| panic!("{}: import fails: {e}", path.display()));
    verify_module(&g.model.module).expect("IR verifies");
    g
}

#[test]
fn gguf_weights_dequantize_like_gguf_py_and_logits_match() {
    for t in GGUF_TYPES {
        let path = gguf_dir().join(format!("llama_{t}.gguf"));
        let r = read_tensors(gguf_dir().join(format!("llama_{t}.npz"))).unwrap();
        let g = import_g(&path, Entry::Prefill, 6, 0);
        let m = &g.model;
        // Every quantized weight, bit for bit against gguf.quants.dequantize.
        let (mut weights, mut elements) = (0, 0);
        for (key, want) in &r {
            let Some(module) = key.strip_prefix("hf.") else {
                continue;
            };
            let f = m.dequantize_func(module).expect("a weight of the model");
            let w = m.weights.weights_for(&f).unwrap();
            let got = &run_func(&f, &[], &w).expect("dequantize runs")[0];
            let want = to_interp(want);
            assert_eq!(got.ty, want.ty, "{t} {module}");
            let differ = got
                .data
                .iter()
                .zip(&want.data)
                .filter(|(a, b)| (**a as f32).to_bits() != (**b as f32).to_bits())
                .count();
            assert_eq!(differ, 0, "{t} {module}: {differ} elements differ");
            weights += 1;
            elements += got.data.len();
        }
        assert!(weights >= 15, "{t}: {weights} weights checked");
        // Codes stay low-bit in the weight store.
        let f = m.dequantize_func("model.layers.0.mlp.up_proj").unwrap();
        let w = m.weights.weights_for(&f).unwrap();
        let codes = &w["blk.0.ffn_up.weight:codes"];
        let want_elem = match *t {
            "q4_0" => "i4",
            "q4_1" | "q4_k" => "ui4",
            _ => "i8",
        };
        assert_eq!(codes.ty.elem.name(), want_elem, "{t}");
        // Logits and the cache against the numpy reference over the dequantized weights.
        let ids = to_interp(&r["input_ids"]);
        let outs = run(&g.model, &[("input_ids", ids)]);
        let mut worst: f64 = 0.0;
        for (name, got) in &outs {
            let e = rel(&got.data, &to_interp(&r[name.as_str()]).data);
            assert!(e <= 1e-4, "{t} {name}: relative error {e:.3e}");
            worst = worst.max(e);
        }
        eprintln!(
            "{t}: {weights} weights ({elements} elements) bit-identical to gguf-py; logits/cache max relative error {worst:.3e}"
        );
    }
}

#[test]
fn gguf_decode_continues_prefill_and_metadata_is_kept() {
    let path = gguf_dir().join("llama_q4_k.gguf");
    let r = read_tensors(gguf_dir().join("llama_q4_k.npz")).unwrap();
    let ids = to_interp(&r["input_ids"]);
    let full = import_g(&path, Entry::Prefill, 6, 0);
    let full_out = run(&full.model, &[("input_ids", ids.clone())]);
    let pre = import_g(&path, Entry::Prefill, 5, 0);
    let out = run(&pre.model, &[("input_ids", slice(&ids, 1, 0, 5))]);
    let dec = import_g(&path, Entry::Decode, 1, 5);
    let mut inputs: Vec<(String, Tensor)> = vec![("input_ids".into(), slice(&ids, 1, 5, 6))];
    for (name, v) in &out {
        if let Some(rest) = name.strip_prefix("present.") {
            inputs.push((format!("past_key_values.{rest}"), v.clone()));
        }
    }
    inputs.push((
        "attention_mask".into(),
        Tensor::new(
            lowbit_dialects::ir::TensorType::new([2, 6], lowbit_dialects::ir::Elem::I64),
            vec![1.0; 12],
        ),
    ));
    let named: Vec<(&str, Tensor)> = inputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let got = run(&dec.model, &named);
    let e = rel(
        &get(&got, "logits").data,
        &slice(get(&full_out, "logits"), 1, 5, 6).data,
    );
    assert!(e <= 1e-5, "GGUF decode: relative error {e:.3e}");
    let meta = |k: &str| dec.metadata.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    match meta("tokenizer.ggml.tokens") {
        Some(MetaValue::Array(8, toks)) => {
            assert_eq!(toks.len(), 64);
            assert_eq!(toks[3], MetaValue::Str("<t3>".into()));
        }
        other => panic!("tokens: {other:?}"),
    }
    assert_eq!(
        meta("tokenizer.ggml.model"),
        Some(&MetaValue::Str("llama".into()))
    );
}

#[test]
fn gguf_metadata_value_types_and_version_2() {
    let bytes = std::fs::read(gguf_dir().join("metadata.gguf")).unwrap();
    let h = parse_gguf(&bytes).expect("parses");
    assert_eq!(h.version, 3);
    let want = [
        ("t.u8", MetaValue::U8(200)),
        ("t.i8", MetaValue::I8(-100)),
        ("t.u16", MetaValue::U16(60000)),
        ("t.i16", MetaValue::I16(-30000)),
        ("t.u32", MetaValue::U32(4_000_000_000)),
        ("t.i32", MetaValue::I32(-2_000_000_000)),
        ("t.f32", MetaValue::F32(0.5)),
        ("t.bool", MetaValue::Bool(true)),
        ("t.str", MetaValue::Str("héllo".into())),
        ("t.u64", MetaValue::U64(1 << 63)),
        ("t.i64", MetaValue::I64(-(1 << 62))),
        ("t.f64", MetaValue::F64(-0.25)),
    ];
    for (k, v) in want {
        assert_eq!(h.get(k), Some(&v), "{k}");
    }
    assert!(matches!(h.get("t.arr"), Some(MetaValue::Array(_, a)) if a.len() == 3));
    match h.get("t.nested") {
        Some(MetaValue::Array(9, outer)) => {
            assert_eq!(
                outer[0],
                MetaValue::Array(
                    8,
                    vec![MetaValue::Str("a".into()), MetaValue::Str("b".into())]
                )
            );
        }
        other => panic!("nested: {other:?}"),
    }
    let x = &h.tensors["x"];
    assert_eq!(x.shape(), [2, 32]);
    // Version 2 has the same little-endian layout.
    let mut v2 = bytes.clone();
    v2[4] = 2;
    assert_eq!(parse_gguf(&v2).expect("v2 parses").version, 2);
}

/// A minimal GGUF with one tensor `w` of `ne = [32, 2]`, type `ty`, offset 0, and `data`
/// bytes of data.
fn tiny_gguf(ty: u32, n_tensors: u64, data: usize) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(n_tensors.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.push(b'w');
    b.extend(2u32.to_le_bytes());
    b.extend(32u64.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend(ty.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.resize(b.len().div_ceil(32) * 32 + data, 0);
    b
}

#[test]
fn malformed_gguf_is_refused_in_one_sentence() {
    assert!(parse_gguf(&tiny_gguf(0, 1, 256)).is_ok());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"GGML\x03\0\0\0".to_vec(),
            "does not start with the GGUF magic",
        ),
        (tiny_gguf(99, 1, 256), "tensor 'w' has unknown ggml type 99"),
        (
            tiny_gguf(13, 1, 256),
            "tensor 'w' has ggml type Q5_K (13), which lowbit cannot read",
        ),
        (tiny_gguf(0, 1, 100), "runs past the end of the data"),
        (
            tiny_gguf(0, 1 << 60, 256),
            "claims 1152921504606846976 tensors",
        ),
        (b"GG".to_vec(), "too short for a GGUF header"),
        (
            {
                let mut b = tiny_gguf(0, 1, 256);
                b[4] = 1;
                b
            },
            "GGUF version 1 is not supported",
        ),
        (
            {
                // A metadata string whose length is absurd.
                let mut b = b"GGUF".to_vec();
                b.extend(3u32.to_le_bytes());
                b.extend(0u64.to_le_bytes());
                b.extend(1u64.to_le_bytes());
                b.extend(u64::MAX.to_le_bytes());
                b.extend([0u8; 16]);
                b
            },
            "the file ends inside the key of metadata entry 0",
        ),
    ];
    // Found by the `gguf` fuzz target: a zero dim hid an overflowing product of the others.
    let mut zero_dim = tiny_gguf(0, 1, 256);
    let at = 4 + 4 + 8 + 8 + 8 + 1;
    zero_dim.splice(at..at + 4 + 16, {
        let mut v = 4u32.to_le_bytes().to_vec();
        for d in [32u64, 0, 1 << 40, 1 << 40] {
            v.extend(d.to_le_bytes());
        }
        v
    });
    let mut cases = cases;
    cases.push((
        zero_dim,
        "has dims [32, 0, 1099511627776, 1099511627776], too large to address",
    ));
    for (bytes, want) in cases {
        let e = parse_gguf(&bytes).expect_err(want);
        assert!(e.contains(want), "expected '{want}' in: {e}");
        assert!(!e.contains('\n'), "one sentence: {e}");
    }
    // A real file cut in half, through the importer: names the file.
    let full = std::fs::read(gguf_dir().join("llama_q8_0.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let e = import_gguf(&cut, Entry::Prefill, LlamaDims::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cut.gguf") && e.contains("runs past the end of the data"),
        "{e}"
    );
    // Every prefix of the header is refused without a panic.
    for n in (0..2048).step_by(7) {
        assert!(parse_gguf(&full[..n]).is_err(), "prefix {n}");
    }
}

// ---------------------------------------------------------------- CLI

#[test]
fn cli_import_run_and_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    // `lowbit run DIR` with Hugging Face names; attention_mask defaults to ones.
    let r = reference("awq");
    let mut inputs = TensorMap::new();
    inputs.insert("input_ids".into(), r["input_ids"].clone());
    let npz = tmp.path().join("in.npz");
    lowbit_runtime::write_tensors(&npz, &inputs).unwrap();
    let out_npz = tmp.path().join("out.npz");
    let dir = cases_dir().join("awq");
    let d = dir.to_str().unwrap();
    let (code, _, err) = lowbit(&[
        "run",
        d,
        "--dim",
        "batch=2",
        "--dim",
        "sequence=7",
        "--input",
        npz.to_str().unwrap(),
        "--output",
        out_npz.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let got = read_tensors(&out_npz).unwrap();
    let e = rel(
        &to_interp(&got["logits"]).data,
        &to_interp(&r["logits"]).data,
    );
    assert!(e <= 1e-4, "lowbit run: {e:.3e}");
    // `lowbit import -o` writes the IR and the relaid-out weights; `lowbit run` on the .mlir
    // gives the same logits (out0).
    let mlir = tmp.path().join("awq.mlir");
    let (code, _, err) = lowbit(&[
        "import",
        d,
        "-o",
        mlir.to_str().unwrap(),
        "--dim",
        "batch=2",
        "--dim",
        "sequence=7",
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&mlir).unwrap();
    assert!(text.contains("lowbit.dequantize"), "{}", &text[..400]);
    assert!(text.contains("// inputs: input_ids (arg0), attention_mask (arg1)"));
    let mut args = TensorMap::new();
    args.insert("arg0".into(), r["input_ids"].clone());
    args.insert("arg1".into(), r["attention_mask"].clone());
    let args_npz = tmp.path().join("args.npz");
    lowbit_runtime::write_tensors(&args_npz, &args).unwrap();
    let out2 = tmp.path().join("out2.npz");
    let (code, _, err) = lowbit(&[
        "run",
        mlir.to_str().unwrap(),
        "--input",
        args_npz.to_str().unwrap(),
        "--output",
        out2.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let got2 = read_tensors(&out2).unwrap();
    assert_eq!(
        got2["out0"], got["logits"],
        "the .mlir run equals the direct run"
    );
    // A GGUF file: import (metadata beside it), inspect.
    let gg = gguf_dir().join("llama_q4_k.gguf");
    let gmlir = tmp.path().join("g.mlir");
    let (code, _, err) = lowbit(&[
        "import",
        gg.to_str().unwrap(),
        "-o",
        gmlir.to_str().unwrap(),
        "--dim",
        "sequence=4",
    ]);
    assert_eq!(code, 0, "{err}");
    let meta = std::fs::read_to_string(tmp.path().join("g.gguf-metadata.json")).unwrap();
    assert!(
        meta.contains("\"tokenizer.ggml.model\": \"llama\""),
        "{meta}"
    );
    let (code, out, err) = lowbit(&["inspect", gg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("architecture: llama"), "{out}");
    assert!(
        out.contains("blk.0.attn_q.weight: Q4_K [256, 256], 4.5 bits/weight, 36864 bytes"),
        "{out}"
    );
    assert!(out.contains("Q4_K: 16 tensors"), "{out}");
    let (code, out, err) = lowbit(&["inspect", d]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("architecture: LlamaForCausalLM"), "{out}");
    assert!(
        out.contains("quantization: AWQ GEMM int4 (awq_gemm_int4), group 32"),
        "{out}"
    );
    assert!(out.contains("quantized: 14 linear layers"), "{out}");
    // A decode entry through --dim past.
    let (code, out, err) = lowbit(&["import", d, "--dim", "sequence=1", "--dim", "past=3"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(function @decode)"), "{}", &out[..300]);
    assert!(
        out.contains("past_key_values.1.value (arg5)"),
        "{}",
        &out[..400]
    );
    // --entry names the function; it must agree with --dim past.
    let (code, out_entry, err) = lowbit(&[
        "import",
        d,
        "--entry",
        "decode",
        "--dim",
        "sequence=1",
        "--dim",
        "past=3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out_entry, out,
        "--entry decode builds the same IR as --dim past alone"
    );
    let (code, _, err) = lowbit(&["import", d, "--entry", "decode", "--dim", "sequence=1"]);
    assert_eq!(code, 1);
    assert!(err.contains("--entry decode reads a KV cache"), "{err}");
    let (code, _, err) = lowbit(&["import", d, "--entry", "prefill", "--dim", "past=2"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--entry prefill starts from an empty cache"),
        "{err}"
    );
    let (code, out_prefill, err) =
        lowbit(&["import", d, "--entry", "prefill", "--dim", "sequence=4"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out_prefill.contains("(function @prefill)"),
        "{}",
        &out_prefill[..300]
    );
    // Errors are one sentence.
    let bad = tmp.path().join("bad.gguf");
    std::fs::write(&bad, b"not a gguf file at all").unwrap();
    let (code, _, err) = lowbit(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: '") && err.contains("GGUF magic") && err.lines().count() == 1,
        "{err}"
    );
}
