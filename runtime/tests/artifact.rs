//! End-to-end artifact tests: a small C file implementing the entry ABI is
//! compiled with the system C compiler into `model.so`, next to a hand-written
//! `manifest.json` and a `weights.safetensors` written with the safetensors
//! crate, and the runtime loads and runs it. Expected outputs are computed by
//! hand, not by the code under test.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use lowbit_runtime::{random_inputs, Artifact, DType, HostTensor, RuntimeError, TensorMap};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// Several entries following `include/lowbit.h`.
const MODEL_C: &str = r#"
#include <stdint.h>
#include "lowbit.h"

/* out[i] = x[i] * w[i] + 1, 4 x f32 */
int32_t lowbit_main(const void *const *inputs, void *const *outputs, const void *const *weights) {
    const float *x = inputs[0];
    const float *w = weights[0];
    float *out = outputs[0];
    for (int i = 0; i < 4; i++) out[i] = x[i] * w[i] + 1.0f;
    return 0;
}

/* sum[r][c] = a[r][c] + b[c] * s[c];  count[0] = number of positive sums.
   a: f64 [2,3], b: i32 [3], s: i8 [3]; sum: f64 [2,3], count: i64 [1] */
int32_t lowbit_mixed(const void *const *inputs, void *const *outputs, const void *const *weights) {
    const double *a = inputs[0];
    const int32_t *b = inputs[1];
    const int8_t *s = weights[0];
    double *sum = outputs[0];
    int64_t *count = outputs[1];
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++) {
            sum[r * 3 + c] = a[r * 3 + c] + (double)(b[c] * s[c]);
            if (sum[r * 3 + c] > 0) count[0] += 1;
        }
    return 0;
}

/* out[i] = x[i] * q[i], q: i4 [3] packed low nibble first, sign-extended */
int32_t lowbit_i4(const void *const *inputs, void *const *outputs, const void *const *weights) {
    const float *x = inputs[0];
    const uint8_t *q = weights[0];
    float *out = outputs[0];
    for (int i = 0; i < 3; i++) {
        int v = (q[i / 2] >> (4 * (i % 2))) & 0xf;
        if (v >= 8) v -= 16;
        out[i] = x[i] * (float)v;
    }
    return 0;
}

/* Fails with status 7 when x[0] is negative. */
int32_t lowbit_picky(const void *const *inputs, void *const *outputs, const void *const *weights) {
    (void)weights;
    const float *x = inputs[0];
    if (x[0] < 0) return 7;
    ((float *)outputs[0])[0] = x[0];
    return 0;
}

/* Checks that every entry has the header's lowbit_entry_fn type. */
lowbit_entry_fn lowbit_entries[] = {lowbit_main, lowbit_mixed, lowbit_i4, lowbit_picky};
"#;

/// Compiles `MODEL_C` into `dir/model.so`.
fn compile_model(dir: &Path) {
    let src = dir.join("model.c");
    std::fs::write(&src, MODEL_C).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg("-o")
        .arg(dir.join("model.so"))
        .arg(&src)
        .status()
        .expect("the end-to-end tests need a C compiler named `cc` on PATH");
    assert!(status.success(), "cc failed on model.c");
}

/// A manifest for `entry` with the given tensor lists (JSON arrays as text).
fn manifest(entry: &str, inputs: &str, outputs: &str, weights: &str) -> String {
    format!(
        r#"{{
  "format_version": 1,
  "compiler_version": "0.1.0",
  "target": "x86_64-unknown-linux-gnu",
  "pipeline": "canonicalize,cse",
  "entry": "{entry}",
  "function": "main",
  "inputs": {inputs},
  "outputs": {outputs},
  "weights": {weights}
}}"#
    )
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The weights of every entry of `MODEL_C`, in one file.
fn write_weights(dir: &Path) {
    let w = f32_bytes(&[2.0, -1.0, 0.5, 4.0]);
    let s = [3u8, (-2i8) as u8, 0];
    let q = [0x79u8, 0x0f]; // i4 [-7, 7, -1]
    let views = vec![
        ("w", TensorView::new(Dtype::F32, vec![4], &w).unwrap()),
        ("s", TensorView::new(Dtype::I8, vec![3], &s).unwrap()),
        ("q", TensorView::new(Dtype::U8, vec![2], &q).unwrap()),
    ];
    safetensors::serialize_to_file(views, None, &dir.join("weights.safetensors")).unwrap();
}

const MAIN_IO: (&str, &str) = (
    r#"[{"name": "x", "dtype": "f32", "shape": [4]}]"#,
    r#"[{"name": "out", "dtype": "f32", "shape": [4]}]"#,
);

/// An artifact directory for `lowbit_main` (out = x * w + 1).
fn main_artifact() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    compile_model(dir.path());
    write_weights(dir.path());
    let w = r#"[{"name": "w", "dtype": "f32", "shape": [4]}]"#;
    std::fs::write(
        dir.path().join("manifest.json"),
        manifest("lowbit_main", MAIN_IO.0, MAIN_IO.1, w),
    )
    .unwrap();
    dir
}

fn x_input(values: &[f32]) -> TensorMap {
    BTreeMap::from([(
        "x".to_string(),
        HostTensor::from_f32([values.len()], values).unwrap(),
    )])
}

#[test]
fn runs_a_compiled_entry() {
    let dir = main_artifact();
    let artifact = Artifact::load(dir.path()).unwrap();
    assert_eq!(artifact.manifest().entry, "lowbit_main");
    assert_eq!(artifact.is_weight_mapped("w"), Some(true));
    assert_eq!(
        artifact.weight_bytes("w").unwrap(),
        f32_bytes(&[2.0, -1.0, 0.5, 4.0]).as_slice()
    );
    let out = artifact.run(&x_input(&[1.0, 2.5, -3.0, 0.25])).unwrap();
    assert_eq!(out.keys().collect::<Vec<_>>(), ["out"]);
    assert_eq!(out["out"].shape(), &[4]);
    // 1*2+1, 2.5*-1+1, -3*0.5+1, 0.25*4+1
    assert_eq!(
        out["out"].as_slice::<f32>().unwrap(),
        &[3.0, -1.5, -0.5, 2.0]
    );
    // A second run on the same artifact starts from fresh outputs.
    let out = artifact.run(&x_input(&[0.0, 0.0, 2.0, -1.0])).unwrap();
    assert_eq!(out["out"].to_f32_vec(), vec![1.0, 1.0, 2.0, -3.0]);
}

#[test]
fn runs_random_inputs_and_benchmarks() {
    let dir = main_artifact();
    let artifact = Artifact::load(dir.path()).unwrap();
    let inputs = random_inputs(artifact.manifest(), 42);
    let x = inputs["x"].to_f32_vec();
    assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
    let out = artifact.run(&inputs).unwrap()["out"].to_f32_vec();
    let w = [2.0f32, -1.0, 0.5, 4.0];
    let expected: Vec<f32> = x.iter().zip(w).map(|(x, w)| x * w + 1.0).collect();
    assert_eq!(out, expected);

    let stats = artifact.bench(&inputs, 2, 5).unwrap();
    assert_eq!(stats.iters, 5);
    assert!(stats.min <= stats.median && stats.min <= stats.mean);
    let err = artifact.bench(&inputs, 0, 0).unwrap_err();
    assert!(matches!(err, RuntimeError::NoBenchIterations), "{err}");
    let err = artifact.bench(&x_input(&[1.0]), 0, 1).unwrap_err();
    assert!(
        matches!(err, RuntimeError::InputShapeMismatch { .. }),
        "{err}"
    );
}

#[test]
fn passes_several_inputs_outputs_and_dtypes_in_manifest_order() {
    let dir = tempfile::tempdir().unwrap();
    compile_model(dir.path());
    write_weights(dir.path());
    let inputs = r#"[{"name": "a", "dtype": "f64", "shape": [2, 3]}, {"name": "b", "dtype": "i32", "shape": [3]}]"#;
    let outputs = r#"[{"name": "sum", "dtype": "f64", "shape": [2, 3]}, {"name": "count", "dtype": "i64", "shape": [1]}]"#;
    let weights = r#"[{"name": "s", "dtype": "i8", "shape": [3]}]"#;
    std::fs::write(
        dir.path().join("manifest.json"),
        manifest("lowbit_mixed", inputs, outputs, weights),
    )
    .unwrap();
    let artifact = Artifact::load(dir.path()).unwrap();
    let inputs = BTreeMap::from([
        (
            "b".to_string(),
            HostTensor::from_values([3], &[1i32, 2, 3]).unwrap(),
        ),
        (
            "a".to_string(),
            HostTensor::from_values([2, 3], &[0.5f64, 0.5, 0.5, -10.0, -10.0, 10.0]).unwrap(),
        ),
    ]);
    let out = artifact.run(&inputs).unwrap();
    // b * s = [3, -4, 0]
    assert_eq!(
        out["sum"].as_slice::<f64>().unwrap(),
        &[3.5, -3.5, 0.5, -7.0, -14.0, 10.0]
    );
    assert_eq!(out["count"].as_slice::<i64>().unwrap(), &[3]);
}

#[test]
fn reads_packed_i4_weights() {
    let dir = tempfile::tempdir().unwrap();
    compile_model(dir.path());
    write_weights(dir.path());
    let io = r#"[{"name": "x", "dtype": "f32", "shape": [3]}]"#;
    let weights = r#"[{"name": "q", "dtype": "i4", "shape": [3]}]"#;
    std::fs::write(
        dir.path().join("manifest.json"),
        manifest("lowbit_i4", io, io, weights),
    )
    .unwrap();
    let artifact = Artifact::load(dir.path()).unwrap();
    let out = artifact.run(&x_input(&[1.0, 2.0, 3.0])).unwrap();
    assert_eq!(out["x"].to_f32_vec(), vec![-7.0, 14.0, -3.0]);
}

#[test]
fn misaligned_weights_are_copied_once_and_still_correct() {
    let dir = main_artifact();
    // A hand-made file whose f32 weight starts one byte into the data section.
    let header = br#"{"pad":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"F32","shape":[4],"data_offsets":[1,17]}}"#;
    let mut header = header.to_vec();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&header);
    file.push(0xaa);
    file.extend_from_slice(&f32_bytes(&[2.0, -1.0, 0.5, 4.0]));
    std::fs::write(dir.path().join("weights.safetensors"), file).unwrap();
    let artifact = Artifact::load(dir.path()).unwrap();
    assert_eq!(artifact.is_weight_mapped("w"), Some(false));
    assert_eq!(artifact.weight_bytes("w").unwrap().as_ptr() as usize % 4, 0);
    let out = artifact.run(&x_input(&[1.0, 2.5, -3.0, 0.25])).unwrap();
    assert_eq!(out["out"].to_f32_vec(), vec![3.0, -1.5, -0.5, 2.0]);
}

#[test]
fn bad_inputs_are_errors_naming_the_input() {
    let dir = main_artifact();
    let artifact = Artifact::load(dir.path()).unwrap();

    let err = artifact.run(&x_input(&[1.0, 2.0])).unwrap_err();
    assert!(
        matches!(err, RuntimeError::InputShapeMismatch { .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "input `x` has shape [2], but the manifest expects [4]"
    );

    let ints = BTreeMap::from([(
        "x".to_string(),
        HostTensor::from_values([4], &[1i32, 2, 3, 4]).unwrap(),
    )]);
    let err = artifact.run(&ints).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input `x` has element type i32, but the manifest expects f32"
    );

    let err = artifact.run(&BTreeMap::new()).unwrap_err();
    assert_eq!(err.to_string(), "missing input `x` (expected f32 [4])");

    let mut extra = x_input(&[1.0; 4]);
    extra.insert("y".into(), HostTensor::zeros(DType::F32, [4]));
    let err = artifact.run(&extra).unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnexpectedInput { ref name, .. } if name == "y"),
        "{err}"
    );
    assert!(err.to_string().contains("`y`"), "{err}");
}

#[test]
fn a_failing_entry_is_an_error() {
    let dir = main_artifact();
    let one = r#"[{"name": "x", "dtype": "f32", "shape": [1]}]"#;
    std::fs::write(
        dir.path().join("manifest.json"),
        manifest("lowbit_picky", one, one, "[]"),
    )
    .unwrap();
    let artifact = Artifact::load(dir.path()).unwrap();
    assert_eq!(
        artifact.run(&x_input(&[2.0])).unwrap()["x"].to_f32_vec(),
        vec![2.0]
    );
    let err = artifact.run(&x_input(&[-2.0])).unwrap_err();
    assert!(
        matches!(err, RuntimeError::EntryFailed { code: 7, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "entry `lowbit_picky` returned error code 7"
    );
}

#[test]
fn weight_problems_are_load_errors() {
    let dir = main_artifact();
    let path = dir.path().join("manifest.json");
    let w2 = r#"[{"name": "w", "dtype": "f32", "shape": [4]}, {"name": "w2", "dtype": "f32", "shape": [4]}]"#;
    std::fs::write(&path, manifest("lowbit_main", MAIN_IO.0, MAIN_IO.1, w2)).unwrap();
    let err = Artifact::load(dir.path()).unwrap_err();
    assert!(
        matches!(err, RuntimeError::MissingWeight { ref name, .. } if name == "w2"),
        "{err}"
    );
    assert!(err.to_string().contains("weights.safetensors"), "{err}");

    let cases = [
        (
            r#"[{"name": "w", "dtype": "f32", "shape": [2, 2]}]"#,
            "f32 [2, 2]",
            "F32 [4]",
        ),
        (
            r#"[{"name": "w", "dtype": "i32", "shape": [4]}]"#,
            "i32 [4]",
            "F32 [4]",
        ),
        (
            r#"[{"name": "s", "dtype": "ui8", "shape": [3]}]"#,
            "ui8 [3]",
            "I8 [3]",
        ),
        (
            r#"[{"name": "q", "dtype": "i4", "shape": [5]}]"#,
            "i4 [5]",
            "U8 [2]",
        ),
    ];
    for (weights, expected, found) in cases {
        std::fs::write(
            &path,
            manifest("lowbit_main", MAIN_IO.0, MAIN_IO.1, weights),
        )
        .unwrap();
        let err = Artifact::load(dir.path()).unwrap_err();
        assert!(matches!(err, RuntimeError::WeightMismatch { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("is {found}, but the manifest expects {expected}")),
            "{msg}"
        );
    }
}

#[test]
fn missing_or_broken_artifact_files_are_load_errors() {
    let dir = main_artifact();
    let path = dir.path().join("manifest.json");
    let good = std::fs::read_to_string(&path).unwrap();

    std::fs::write(&path, good.replace("\"lowbit_main\"", "\"lowbit_nope\"")).unwrap();
    let err = Artifact::load(dir.path()).unwrap_err();
    assert!(matches!(err, RuntimeError::MissingSymbol { .. }), "{err}");
    assert!(err.to_string().contains("`lowbit_nope`"), "{err}");

    std::fs::write(
        &path,
        good.replace("\"format_version\": 1", "\"format_version\": 9"),
    )
    .unwrap();
    let err = Artifact::load(dir.path()).unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnsupportedFormatVersion { found: 9, .. }),
        "{err}"
    );

    std::fs::write(&path, &good).unwrap();
    std::fs::write(dir.path().join("weights.safetensors"), b"junk").unwrap();
    let err = Artifact::load(dir.path()).unwrap_err();
    assert!(matches!(err, RuntimeError::MalformedFile { .. }), "{err}");
    std::fs::remove_file(dir.path().join("weights.safetensors")).unwrap();
    let err = Artifact::load(dir.path()).unwrap_err();
    assert!(matches!(err, RuntimeError::Io { .. }), "{err}");
    assert!(err.to_string().contains("weights.safetensors"), "{err}");
    write_weights(dir.path());

    std::fs::write(dir.path().join("model.so"), b"not an elf file").unwrap();
    let err = Artifact::load(dir.path()).unwrap_err();
    assert!(matches!(err, RuntimeError::LoadLibrary { .. }), "{err}");
    std::fs::remove_file(dir.path().join("model.so")).unwrap();
    let err = Artifact::load(dir.path()).unwrap_err();
    assert!(
        matches!(err, RuntimeError::Io { .. }) && err.to_string().contains("model.so"),
        "{err}"
    );

    std::fs::remove_file(&path).unwrap();
    let err = Artifact::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("manifest.json"), "{err}");
    let err = Artifact::load(dir.path().join("absent")).unwrap_err();
    assert!(err.to_string().contains("absent"), "{err}");
}

#[test]
fn an_artifact_without_weights_needs_no_weights_file() {
    let dir = main_artifact();
    std::fs::remove_file(dir.path().join("weights.safetensors")).unwrap();
    let one = r#"[{"name": "x", "dtype": "f32", "shape": [1]}]"#;
    std::fs::write(
        dir.path().join("manifest.json"),
        manifest("lowbit_picky", one, one, "[]"),
    )
    .unwrap();
    let artifact = Artifact::load(dir.path()).unwrap();
    assert_eq!(
        artifact.run(&x_input(&[5.0])).unwrap()["x"].to_f32_vec(),
        vec![5.0]
    );
    assert_eq!(artifact.is_weight_mapped("w"), None);
}
