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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use lowbit_compiler::import::llama::{import_llama_dir, Entry, LlamaDims, LlamaImport};
use lowbit_compiler::tensors::to_interp;
use lowbit_dialects::interp::{run_func, Tensor};
use lowbit_dialects::ir::verify::verify_module;
use lowbit_runtime::{read_tensors, TensorMap};

const CASES: &[&str] = &[
    "llama", "llama3", "linear", "qwen2", "mistral", "awq", "gptq", "gptq8",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The checkpoints, written once per test binary run.
fn cases_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = repo_root().join("scripts/llama_reference.py");
        let out = Command::new("python3")
            .arg(&script)
            .arg(dir.path())
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{} failed (it needs numpy; run scripts/setup.sh): {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
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

/// Runs the imported function on named inputs; returns the outputs by name.
fn run(m: &LlamaImport, inputs: &[(&str, Tensor)]) -> Vec<(String, Tensor)> {
    let f = &m.module.funcs[0];
    let args: Vec<Tensor> = m
        .inputs
        .iter()
        .map(|n| {
            inputs
                .iter()
                .find(|(k, _)| k == n)
                .unwrap_or_else(|| panic!("no input {n}"))
                .1
                .clone()
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
