//! The importer's `com.microsoft` (ONNX Runtime contrib) ops against ONNX Runtime, and the
//! external-data refusals.
//!
//! `scripts/ort_contrib_cases.py` builds one tiny model per op and attribute variant with
//! seeded random inputs and records ONNX Runtime's CPU outputs (once per test run). Each
//! case goes through `lowbit run`; every output must match: max |lowbit - ort| ≤
//! 1e-4 · max |ort|. A missing Python package fails the tests with a message naming
//! `scripts/setup.sh`.

use lowbit_tests::{lowbit, script_output_dir};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lowbit_runtime::read_tensors;
/// The directory the case script wrote (once per test binary).
fn cases() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| script_output_dir("ort_contrib_cases.py", "onnx and onnxruntime"))
}

/// Imports and interprets case `name`; every output must be within 1e-4 · max |ref| of
/// ONNX Runtime's. Returns the worst ratio `max diff / max |ref|`.
fn check(name: &str) -> f32 {
    let dir = cases().join(name);
    let model = dir.join("model.onnx");
    let out = tempfile::tempdir().unwrap();
    let got = out.path().join("got.npz");
    let (code, _, err) = lowbit(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        dir.join("inputs.npz").to_str().unwrap(),
        "--output",
        got.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "lowbit run {name} failed: {err}");
    let want = read_tensors(dir.join("outputs.npz")).expect("reference outputs");
    let got = read_tensors(&got).expect("lowbit outputs");
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{name}: output names"
    );
    let mut worst = 0f32;
    for (key, w) in &want {
        let g = &got[key];
        assert_eq!(w.shape(), g.shape(), "{name}: shape of '{key}'");
        assert_eq!(w.dtype(), g.dtype(), "{name}: dtype of '{key}'");
        let (w, g) = (w.to_f32_vec(), g.to_f32_vec());
        let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = w
            .iter()
            .zip(&g)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let ratio = diff / scale.max(f32::MIN_POSITIVE);
        eprintln!("{name}: '{key}': max abs diff {diff:e}, max |ref| {scale:e}, ratio {ratio:e}");
        assert!(
            diff <= 1e-4 * scale,
            "{name}: output '{key}' differs from ONNX Runtime by {diff} (max |ref| {scale})"
        );
        worst = worst.max(ratio);
    }
    worst
}

fn check_all(names: &[&str]) {
    for name in names {
        check(name);
    }
}

const SKIP_LAYER_NORMALIZATION: &[&str] = &["skip_layer_norm", "skip_layer_norm_broadcast_skip"];

#[test]
fn skip_layer_normalization_matches_onnxruntime() {
    check_all(SKIP_LAYER_NORMALIZATION);
}

const SKIP_SIMPLIFIED_LAYER_NORMALIZATION: &[&str] = &["skip_simplified_layer_norm"];

#[test]
fn skip_simplified_layer_normalization_matches_onnxruntime() {
    check_all(SKIP_SIMPLIFIED_LAYER_NORMALIZATION);
}

const SIMPLIFIED_LAYER_NORMALIZATION: &[&str] =
    &["simplified_layer_norm", "simplified_layer_norm_axis1"];

#[test]
fn simplified_layer_normalization_matches_onnxruntime() {
    check_all(SIMPLIFIED_LAYER_NORMALIZATION);
}

const GELU_FAMILY: &[&str] = &[
    "gelu",
    "bias_gelu",
    "fast_gelu",
    "fast_gelu_no_bias",
    "quick_gelu",
    "quick_gelu_alpha",
];

#[test]
fn gelu_family_matches_onnxruntime() {
    check_all(GELU_FAMILY);
}

const ROTARY_EMBEDDING: &[&str] = &[
    "rotary_3d",
    "rotary_3d_interleaved",
    "rotary_4d",
    "rotary_offset",
    "rotary_partial",
];

#[test]
fn rotary_embedding_matches_onnxruntime() {
    check_all(ROTARY_EMBEDDING);
}

const EMBED_LAYER_NORMALIZATION: &[&str] = &["embed_layer_norm", "embed_layer_norm_no_segment"];

#[test]
fn embed_layer_normalization_matches_onnxruntime() {
    check_all(EMBED_LAYER_NORMALIZATION);
}

const ATTENTION: &[&str] = &[
    "attention",
    "attention_raw_mask",
    "attention_end_mask",
    "attention_unidirectional",
    "attention_past",
    "attention_bias_scale",
    "attention_qkv_sizes",
];

#[test]
fn attention_matches_onnxruntime() {
    check_all(ATTENTION);
}

const QATTENTION: &[&str] = &["qattention", "qattention_per_column_mask"];

#[test]
fn qattention_matches_onnxruntime() {
    check_all(QATTENTION);
}

const MULTI_HEAD_ATTENTION: &[&str] = &[
    "mha",
    "mha_bias_mask",
    "mha_past_causal",
    "mha_attention_bias",
    "mha_bnsh_kv",
];

#[test]
fn multi_head_attention_matches_onnxruntime() {
    check_all(MULTI_HEAD_ATTENTION);
}

const GROUP_QUERY_ATTENTION: &[&str] = &[
    "gqa_prompt",
    "gqa_prompt_padded_keys",
    "gqa_decode_past",
    "gqa_rotary_past",
    "gqa_packed_rotary_interleaved",
];

#[test]
fn group_query_attention_matches_onnxruntime() {
    check_all(GROUP_QUERY_ATTENTION);
}

const GROUP_QUERY_ATTENTION_SOFTCAP_SINK_WINDOW: &[&str] = &[
    "gqa_softcap",
    "gqa_local_window",
    "gqa_head_sink",
    "gqa_smooth_softmax",
    "gqa_softcap_bias_window",
    "gqa_decode_softcap_window",
];

/// GroupQueryAttention's score modifiers: softcap and head sinks / smooth softmax (the
/// importer decomposes such an attention into graph ops), local windows (a constant mask),
/// with an attention bias, and in a decode step with a past.
#[test]
fn group_query_attention_softcap_sink_window_match_onnxruntime() {
    check_all(GROUP_QUERY_ATTENTION_SOFTCAP_SINK_WINDOW);
}

const GROUP_QUERY_ATTENTION_QUANTIZED_KV_CACHE: &[&str] = &[
    "gqa_kv8_per_tensor_1",
    "gqa_kv8_per_tensor_4",
    "gqa_kv8_per_channel_1",
    "gqa_kv8_per_channel_4",
    "gqa_kv4_per_tensor_1",
    "gqa_kv4_per_tensor_4",
    "gqa_kv4_per_channel_1",
    "gqa_kv4_per_channel_4",
];

/// GroupQueryAttention with a quantized KV cache (`k_quant_type`/`v_quant_type`
/// PER_TENSOR and PER_CHANNEL, `kv_cache_bit_width` 8 and 4): the present caches are the
/// past codes followed by the new keys/values quantized with the given scales (int8, or
/// 4-bit codes offset by 8, two per byte), equal to ONNX Runtime's codes; the attention
/// reads the dequantized cache. One decode step and a 4-token continuation each.
#[test]
fn group_query_attention_quantized_kv_cache_matches_onnxruntime() {
    check_all(GROUP_QUERY_ATTENTION_QUANTIZED_KV_CACHE);
}

/// Every case the script writes is one the tests above check, and the other way round.
#[test]
fn every_case_is_checked() {
    let mut written = BTreeSet::new();
    for entry in std::fs::read_dir(cases()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.join("outputs.npz").exists() {
            written.insert(name);
        }
    }
    let listed: BTreeSet<String> = [
        SKIP_LAYER_NORMALIZATION,
        SKIP_SIMPLIFIED_LAYER_NORMALIZATION,
        SIMPLIFIED_LAYER_NORMALIZATION,
        GELU_FAMILY,
        ROTARY_EMBEDDING,
        EMBED_LAYER_NORMALIZATION,
        ATTENTION,
        QATTENTION,
        MULTI_HEAD_ATTENTION,
        GROUP_QUERY_ATTENTION,
        GROUP_QUERY_ATTENTION_SOFTCAP_SINK_WINDOW,
        GROUP_QUERY_ATTENTION_QUANTIZED_KV_CACHE,
    ]
    .iter()
    .flat_map(|group| group.iter().map(|n| n.to_string()))
    .collect();
    assert_eq!(
        written, listed,
        "cases the script writes vs cases the tests check"
    );
}

/// `lowbit import MODEL` must fail with exactly `want` (one line) and write nothing.
fn refused(model: &Path, want: &str) {
    let out = tempfile::tempdir().unwrap();
    let mlir = out.path().join("model.mlir");
    let (code, _, err) = lowbit(&[
        "import",
        model.to_str().unwrap(),
        "-o",
        mlir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err, format!("error: {want}\n"));
    assert!(!mlir.exists(), "nothing is written on failure");
}

#[test]
fn unsupported_attribute_values_name_op_domain_opset_node_and_attribute() {
    refused(
        &cases().join("refuse_attention_do_rotary/model.onnx"),
        "unsupported op 'Attention' (domain 'com.microsoft', opset 1) at node 'att'; attribute 'do_rotary' = 1 is not supported; apply RotaryEmbedding before a MultiHeadAttention node",
    );
    refused(
        &cases().join("refuse_gqa_quantized_kv/model.onnx"),
        "unsupported op 'GroupQueryAttention' (domain 'com.microsoft', opset 1) at node 'gqa'; a quantized K cache with a float V cache (or the other way round) is not supported; quantize both or neither",
    );
    refused(
        &cases().join("refuse_mha_packed_qkv/model.onnx"),
        "unsupported op 'MultiHeadAttention' (domain 'com.microsoft', opset 1) at node 'mha'; packed QKV/KV inputs are not supported; pass query, key and value as [batch, sequence, hidden] tensors",
    );
}

#[test]
fn external_data_with_an_absolute_path_is_refused() {
    let model = cases().join("external_abs/model.onnx");
    let location = cases().join("external_abs/w.bin").canonicalize().unwrap();
    refused(
        &model,
        &format!(
            "initializer 'w' has external data '{}' that is refused: external data must be a relative path inside the model's directory",
            location.display()
        ),
    );
}

/// `..` anywhere in the location is refused even when the path comes back inside.
#[test]
fn external_data_with_a_parent_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("m");
    std::fs::create_dir(&inner).unwrap();
    let bytes = std::fs::read(cases().join("external_ok/model.onnx")).unwrap();
    // Same length as "w.bin", so the protobuf stays valid: "../m/w.bin" would not be.
    let patched = replace_once(&bytes, b"w.bin", b"./w.b");
    std::fs::write(inner.join("model.onnx"), &patched).unwrap();
    let patched = replace_once(&bytes, b"w.bin", b"../wb");
    std::fs::write(inner.join("model2.onnx"), &patched).unwrap();
    refused(
        &inner.join("model.onnx"),
        "initializer 'w' has external data './w.b' that is refused: external data must be a relative path inside the model's directory",
    );
    refused(
        &inner.join("model2.onnx"),
        "initializer 'w' has external data '../wb' that is refused: external data must be a relative path inside the model's directory",
    );
}

fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the location string is in the model");
    let mut out = bytes.to_vec();
    out[at..at + from.len()].copy_from_slice(to);
    out
}

/// An allowed external tensor at offset 8 is read from the map: `y = x + w` with
/// `w = [0, 1, ..., 5]`.
#[test]
fn external_data_at_an_offset_loads() {
    let model = cases().join("external_ok/model.onnx");
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in.npz");
    let got = dir.path().join("out.npz");
    let x: Vec<f32> = vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0];
    let mut map = lowbit_runtime::TensorMap::new();
    map.insert(
        "x".to_string(),
        lowbit_runtime::HostTensor::from_f32(vec![2, 3], &x).unwrap(),
    );
    lowbit_runtime::write_tensors(&inputs, &map).unwrap();
    let (code, _, err) = lowbit(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        inputs.to_str().unwrap(),
        "--output",
        got.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let y = read_tensors(&got).unwrap()["y"].to_f32_vec();
    assert_eq!(y, vec![10.0, 21.0, 32.0, 43.0, 54.0, 65.0]);
}

/// Inputs the `onnx_import` fuzz target found crashing, replayed through the same entry.
#[test]
fn fuzz_regressions_import_cleanly() {
    let options = lowbit_compiler::onnx::ImportOptions::default();
    let dir = Path::new("/nonexistent/lowbit-fuzz");
    for (i, bytes) in FUZZ_CASES.iter().enumerate() {
        let r = lowbit_compiler::onnx::import::import_bytes(bytes, "fuzz.onnx", dir, &options);
        if let Err(e) = r {
            assert!(!e.to_string().contains('\n'), "case {i}: {e}");
        }
    }
}

/// Crashing inputs found by `cargo fuzz run onnx_import` (none yet).
const FUZZ_CASES: &[&[u8]] = &[];
