//! Tests of `migrate-scales`, `quantize-weights` and `quantize-activations`: exactness of the
//! migration in float64, the quantizers against hand-computed codes, the IR they build
//! against an independent fake-quantized evaluation, and the errors users see.

use lowbit_dialects::interp::{run_func, Tensor, Weights};
use lowbit_dialects::ir::{Elem, Module, TensorType};
use lowbit_dialects::numeric::round_to;

use super::quantize_weights::QConfig;
use crate::testing::{body, module, random_weights, Rng};
use crate::{PassCx, PassManager};

/// Runs `pipeline` with `weights` and `calibration`; returns the module, the weights after
/// and the stats report.
fn run_env(
    pipeline: &str,
    src: &str,
    weights: &Weights,
    calibration: Vec<Vec<Tensor>>,
) -> Result<(Module, Weights, String), String> {
    let mut m = module(src);
    let mut pm = PassManager::parse(pipeline).map_err(|e| e.render())?;
    pm.env.weights = weights.clone();
    pm.env.calibration = calibration;
    pm.run(&mut m, &mut PassCx::default())
        .map_err(|e| e.to_string())?;
    Ok((m, pm.env.weights.clone(), pm.stats_report()))
}

fn inputs(m: &Module, rng: &mut Rng) -> Vec<Tensor> {
    m.funcs[0]
        .param_types()
        .iter()
        .map(|t| rng.tensor(t))
        .collect()
}

/// Largest |a - b| / max|a| over every output.
fn rel_err(a: &[Tensor], b: &[Tensor]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let scale = x
                .data
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()))
                .max(1e-300);
            x.data
                .iter()
                .zip(&y.data)
                .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()))
                / scale
        })
        .fold(0.0, f64::max)
}

/// A float64 block: layer norm feeding q/k (only linears), a GELU feeding a linear, a
/// linear feeding a linear, and a layer norm that also feeds a residual add.
const BLOCK: &str = r#"
func @f(%x: tensor<2x3x8xf64>) -> (tensor<2x3x8xf64>, tensor<2x3x8xf64>) {
  %g = graph.weight {name = "ln.g"} : tensor<8xf64>
  %b = graph.weight {name = "ln.b"} : tensor<8xf64>
  %h = graph.layer_norm %x, %g, %b {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x3x8xf64>
  %wq = graph.weight {name = "q.w"} : tensor<8x8xf64>
  %bq = graph.weight {name = "q.b"} : tensor<8xf64>
  %q = graph.linear %h, %wq, %bq : tensor<2x3x8xf64>
  %wk = graph.weight {name = "k.w"} : tensor<8x8xf64>
  %k = graph.linear %h, %wk : tensor<2x3x8xf64>
  %up = graph.weight {name = "up.w"} : tensor<16x8xf64>
  %upb = graph.weight {name = "up.b"} : tensor<16xf64>
  %u = graph.linear %q, %up, %upb : tensor<2x3x16xf64>
  %a = graph.gelu %u : tensor<2x3x16xf64>
  %dw = graph.weight {name = "down.w"} : tensor<8x16xf64>
  %d = graph.linear %a, %dw : tensor<2x3x8xf64>
  %g2 = graph.weight {name = "ln2.g"} : tensor<8xf64>
  %h2 = graph.layer_norm %d, %g2 {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x3x8xf64>
  %ow = graph.weight {name = "o.w"} : tensor<8x8xf64>
  %o = graph.linear %h2, %ow : tensor<2x3x8xf64>
  %r = graph.add %o, %h2 : tensor<2x3x8xf64>
  %s = graph.add %k, %x : tensor<2x3x8xf64>
  return %r, %s
}
"#;

/// Random weights plus calibration sets whose channels have very different ranges.
fn block_env(seed: u64) -> (Weights, Vec<Vec<Tensor>>) {
    let m = module(BLOCK);
    let mut rng = Rng(seed);
    let w = random_weights(&m, &mut rng);
    let cal = (0..3)
        .map(|_| {
            let mut t = rng.tensor(&TensorType::new(vec![2, 3, 8], Elem::F64));
            for (i, v) in t.data.iter_mut().enumerate() {
                *v *= 1.0 + 10.0 * (i % 8 == 5) as u8 as f64;
            }
            vec![t]
        })
        .collect();
    (w, cal)
}

#[test]
fn migrate_scales_is_exact_in_float64() {
    for seed in 0..4 {
        let (w, cal) = block_env(seed);
        for pipeline in [
            "migrate-scales",
            "migrate-scales{alpha=0.8 explicit=true}",
            "migrate-scales{alpha=0}",
        ] {
            let (after, wa, stats) = run_env(pipeline, BLOCK, &w, cal.clone()).unwrap();
            let before = module(BLOCK);
            let mut rng = Rng(100 + seed);
            for _ in 0..3 {
                let x = inputs(&before, &mut rng);
                let ob = run_func(&before.funcs[0], &x, &w).unwrap();
                let oa = run_func(&after.funcs[0], &x, &wa).unwrap();
                let e = rel_err(&ob, &oa);
                assert!(e <= 1e-9, "{pipeline}: relative error {e:e}\n{stats}");
            }
        }
    }
}

#[test]
fn migrate_scales_places_scales_where_they_fit() {
    let (w, cal) = block_env(7);
    let (m, _, stats) = run_env("migrate-scales", BLOCK, &w, cal.clone()).unwrap();
    // ln -> q, k: no (k's output is fine, but ln's output only feeds q and k: folded);
    // q -> up: folded into q's rows; gelu -> down: no producer; ln2 -> o and the residual.
    assert!(
        stats.contains("groups=2 folded-norm=1 folded-linear=1 explicit=0 skipped-other-users=1 skipped-producer=1"),
        "{stats}"
    );
    let text = body(&m);
    assert!(
        text.contains("graph.weight {name = \"ln.g.smooth\"}"),
        "{text}"
    );
    // q.w is scaled twice (columns as a consumer of ln, rows as the producer for up).
    assert!(
        text.contains("graph.weight {name = \"q.w.smooth.1\"}"),
        "{text}"
    );
    assert!(!text.contains("graph.mul"), "{text}");
    let (m, _, stats) = run_env("migrate-scales{explicit=true}", BLOCK, &w, cal).unwrap();
    assert!(
        stats.contains("groups=4 folded-norm=1 folded-linear=1 explicit=2"),
        "{stats}"
    );
    assert_eq!(body(&m).matches("graph.mul").count(), 2);
}

#[test]
fn migrate_scales_uses_the_smoothquant_formula() {
    // max|w| per column = [1, 4] over both linears; α = 0.5:
    // s_j = sqrt(max|x_j|) / sqrt(max|w_j|).
    let src = r#"
func @f(%x: tensor<2x2xf64>) -> (tensor<2x2xf64>, tensor<2x2xf64>) {
  %g = graph.weight {name = "g"} : tensor<2xf64>
  %h = graph.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<2x2xf64>
  %w1 = graph.weight {name = "w1"} : tensor<2x2xf64>
  %w2 = graph.weight {name = "w2"} : tensor<2x2xf64>
  %a = graph.linear %h, %w1 : tensor<2x2xf64>
  %b = graph.linear %h, %w2 : tensor<2x2xf64>
  return %a, %b
}
"#;
    let t = |shape: Vec<i64>, v: Vec<f64>| Tensor::new(TensorType::new(shape, Elem::F64), v);
    let mut w = Weights::new();
    w.insert("g".into(), t(vec![2], vec![1.0, 1.0]));
    w.insert("w1".into(), t(vec![2, 2], vec![1.0, 2.0, 0.5, -4.0]));
    w.insert("w2".into(), t(vec![2, 2], vec![-0.25, 1.0, 0.0, 3.0]));
    // Each calibration set holds one row twice; the norm output's max |x| per channel is
    // computed here from the rms_norm formula.
    let rows = [[1.9, -0.2], [-1.0, 1.3], [0.5, 0.5]];
    let cal: Vec<Vec<Tensor>> = rows
        .iter()
        .map(|r| vec![t(vec![2, 2], vec![r[0], r[1], r[0], r[1]])])
        .collect();
    let mut amax = [0.0f64; 2];
    for r in rows {
        let ms = (r[0] * r[0] + r[1] * r[1]) / 2.0;
        for j in 0..2 {
            amax[j] = amax[j].max((r[j] / (ms + 1e-6f32 as f64).sqrt()).abs());
        }
    }
    let wmax = [1.0f64, 4.0];
    let s: Vec<f64> = (0..2).map(|j| amax[j].sqrt() / wmax[j].sqrt()).collect();
    let (_, wa, _) = run_env("migrate-scales", src, &w, cal).unwrap();
    let g = &wa["g.smooth"].data;
    let w1 = &wa["w1.smooth"].data;
    for j in 0..2 {
        assert!((g[j] - 1.0 / s[j]).abs() < 1e-12, "gamma {g:?} vs 1/{s:?}");
        assert!((w1[j] - w["w1"].data[j] * s[j]).abs() < 1e-12);
        assert!((w1[2 + j] - w["w1"].data[2 + j] * s[j]).abs() < 1e-12);
    }
    // The original entries stay for other readers.
    assert_eq!(wa["g"], w["g"]);
}

#[test]
fn migrate_scales_leaves_shared_weights_and_reports_missing_inputs() {
    let shared = r#"
func @f(%x: tensor<2x4xf64>, %y: tensor<2x4xf64>) -> (tensor<2x4xf64>, tensor<2x4xf64>) {
  %g = graph.weight {name = "g"} : tensor<4xf64>
  %h = graph.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<2x4xf64>
  %w = graph.weight {name = "w"} : tensor<4x4xf64>
  %a = graph.linear %h, %w : tensor<2x4xf64>
  %b = graph.linear %y, %w : tensor<2x4xf64>
  return %a, %b
}
"#;
    let m = module(shared);
    let w = random_weights(&m, &mut Rng(1));
    let cal = vec![inputs(&m, &mut Rng(2))];
    let (after, _, stats) =
        run_env("migrate-scales{explicit=true}", shared, &w, cal.clone()).unwrap();
    assert!(stats.contains("groups=0"), "{stats}");
    assert_eq!(body(&after), body(&m));

    let err = run_env("migrate-scales", BLOCK, &block_env(0).0, vec![]).unwrap_err();
    assert!(
        err.contains("needs calibration inputs (--calibration) for @f"),
        "{err}"
    );
    assert!(err.contains("none were given"), "{err}");
    let err = run_env("migrate-scales", BLOCK, &Weights::new(), block_env(0).1).unwrap_err();
    assert!(
        err.contains("no weights were given (pass --weights)"),
        "{err}"
    );
    let err = run_env("migrate-scales{alpha=2}", BLOCK, &Weights::new(), vec![]).unwrap_err();
    assert!(
        err.contains("expects a number in [0, 1], found '2'"),
        "{err}"
    );
}

#[test]
fn quantizer_codes_match_hand_computed_ones() {
    // Symmetric int8, one row: scale = 1/127 (as f32); -0.5/scale = -63.5 -> -64 (half to
    // even), 0.25/scale = 31.75 -> 32.
    let c = QConfig {
        bits: 8,
        group: 0,
        sym: true,
    };
    let q = c.quantize(&[1.0, -0.5, 0.25, 0.0], 1, 4);
    assert_eq!(q.scales, vec![round_to(1.0 / 127.0, Elem::F32)]);
    assert_eq!(q.q, vec![127.0, -64.0, 32.0, 0.0]);
    assert!(q.zeros.is_none());
    // Asymmetric uint4 (AWQ): max - min = 3, scale = 0.2 (f32), zero = -round(-1/0.2) = 5;
    // codes round(w/scale) + 5 = [0, 5, 7 (2.4999… -> 2), 15].
    let c = QConfig {
        bits: 4,
        group: 0,
        sym: false,
    };
    let q = c.quantize(&[-1.0, 0.0, 0.5, 2.0], 1, 4);
    assert_eq!(q.scales, vec![round_to(0.2, Elem::F32)]);
    assert_eq!(q.zeros, Some(vec![5.0]));
    assert_eq!(q.q, vec![0.0, 5.0, 7.0, 15.0]);
    // Groups of 4 over 6 inputs: two groups, the second partial; an all-zero group gets
    // scale 1 (symmetric int4: max 7).
    let c = QConfig {
        bits: 4,
        group: 4,
        sym: true,
    };
    let q = c.quantize(&[7.0, -7.0, 3.5, 0.0, 0.0, 0.0], 1, 6);
    assert_eq!(q.groups, 2);
    assert_eq!(q.scales, vec![1.0, 1.0]);
    assert_eq!(q.q, vec![7.0, -7.0, 4.0, 0.0, 0.0, 0.0]);
    assert_eq!(c.dequantize(&q, 1, 6), vec![7.0, -7.0, 4.0, 0.0, 0.0, 0.0]);
}

/// Two linears sharing one weight, one with a non-weight rhs, one on a 4-wide input.
const LINEARS: &str = r#"
func @f(%x: tensor<3x8xf64>, %r: tensor<4x8xf64>) -> (tensor<3x4xf64>, tensor<3x4xf64>, tensor<3x4xf64>) {
  %w = graph.weight {name = "w"} : tensor<4x8xf64>
  %b = graph.weight {name = "b"} : tensor<4xf64>
  %y1 = graph.linear %x, %w, %b : tensor<3x4xf64>
  %n = graph.neg %x : tensor<3x8xf64>
  %y2 = graph.linear %n, %w : tensor<3x4xf64>
  %y3 = graph.linear %x, %r : tensor<3x4xf64>
  return %y1, %y2, %y3
}
"#;

#[test]
fn quantize_weights_builds_dequantize_with_the_chosen_values() {
    let m = module(LINEARS);
    let w = random_weights(&m, &mut Rng(3));
    for (pipeline, cfg) in [
        (
            "quantize-weights{bits=8 group=0}",
            QConfig {
                bits: 8,
                group: 0,
                sym: true,
            },
        ),
        (
            "quantize-weights{bits=4 group=4 sym=false}",
            QConfig {
                bits: 4,
                group: 4,
                sym: false,
            },
        ),
        (
            "quantize-weights{bits=4 group=3 sym=true}",
            QConfig {
                bits: 4,
                group: 3,
                sym: true,
            },
        ),
    ] {
        let (after, wa, stats) = run_env(pipeline, LINEARS, &w, vec![]).unwrap();
        assert!(
            stats.contains("quantized=1 linears=2"),
            "{pipeline}: {stats}"
        );
        assert!(
            stats.contains("skipped-not-weight=1"),
            "{pipeline}: {stats}"
        );
        let text = body(&after);
        assert_eq!(text.matches("lowbit.dequantize").count(), 1, "{text}");
        assert!(!text.contains("{name = \"w\"}"), "{text}");
        // Independent evaluation: the original graph with W replaced by the fake-quantized
        // weight that QConfig computes.
        let mut fake = w.clone();
        let wt = &w["w"];
        let dq = cfg.dequantize(&cfg.quantize(&wt.data, 4, 8), 4, 8);
        fake.insert("w".into(), Tensor::new(wt.ty.clone(), dq));
        let x = inputs(&m, &mut Rng(9));
        let want = run_func(&m.funcs[0], &x, &fake).unwrap();
        let got = run_func(&after.funcs[0], &x, &wa).unwrap();
        assert!(rel_err(&want, &got) < 1e-12, "{pipeline}");
        // And it is close to the float model (8 bits: ~1%; 4 bits: ~20%).
        let exact = run_func(&m.funcs[0], &x, &w).unwrap();
        let bound = if cfg.bits == 8 { 0.02 } else { 0.4 };
        assert!(
            rel_err(&exact, &got) < bound,
            "{pipeline}: {}",
            rel_err(&exact, &got)
        );
        let q = &wa["w.qweight"];
        let (lo, hi) = q.ty.elem.int_range().unwrap();
        assert!(q.data.iter().all(|&v| v >= lo as f64 && v <= hi as f64));
    }
}

#[test]
fn quantize_weights_reports_missing_weights_and_bad_options() {
    let err = run_env("quantize-weights", LINEARS, &Weights::new(), vec![]).unwrap_err();
    assert!(
        err.contains("needs the value of weight 'w', but no weights were given"),
        "{err}"
    );
    let err = run_env("quantize-weights{bits=3}", LINEARS, &Weights::new(), vec![]).unwrap_err();
    assert!(err.contains("expects 8 or 4, found '3'"), "{err}");
    let err = run_env(
        "quantize-weights{scheme=awq}",
        BLOCK,
        &block_env(0).0,
        vec![],
    )
    .unwrap_err();
    assert!(err.contains("needs calibration inputs"), "{err}");
}

#[test]
fn awq_scales_are_migrated_exactly_and_reduce_the_error() {
    // Inputs with two loud channels: AWQ protects them and beats round-to-nearest.
    let src = r#"
func @f(%x: tensor<16x32xf64>) -> tensor<16x8xf64> {
  %g = graph.weight {name = "g"} : tensor<32xf64>
  %h = graph.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<16x32xf64>
  %w = graph.weight {name = "w"} : tensor<8x32xf64>
  %y = graph.linear %h, %w : tensor<16x8xf64>
  return %y
}
"#;
    let m = module(src);
    let mut rng = Rng(11);
    let mut w = random_weights(&m, &mut rng);
    w.get_mut("g")
        .unwrap()
        .data
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| {
            *v = if i % 16 == 3 { 20.0 } else { 1.0 + 0.1 * *v };
        });
    let cal: Vec<Vec<Tensor>> = (0..4).map(|_| inputs(&m, &mut rng)).collect();
    let x: Vec<Tensor> = inputs(&m, &mut rng);
    let exact = run_func(&m.funcs[0], &x, &w).unwrap();
    let err = |pipeline: &str| {
        let (after, wa, stats) = run_env(pipeline, src, &w, cal.clone()).unwrap();
        let got = run_func(&after.funcs[0], &x, &wa).unwrap();
        (rel_err(&exact, &got), stats)
    };
    let (rtn, _) = err("quantize-weights{bits=4 group=16 sym=false}");
    let (awq, stats) = err("quantize-weights{bits=4 group=16 sym=false scheme=awq}");
    assert!(stats.contains("awq-scaled=1"), "{stats}");
    assert!(awq < rtn, "AWQ {awq} vs RTN {rtn}");
}

#[test]
fn quantize_activations_matches_an_independent_int8_evaluation() {
    let m = module(LINEARS);
    let w = random_weights(&m, &mut Rng(5));
    let x = inputs(&m, &mut Rng(6));
    let (after, wa, stats) = run_env(
        "quantize-weights{bits=8 group=0},quantize-activations",
        LINEARS,
        &w,
        vec![],
    )
    .unwrap();
    assert!(
        stats.contains("qmatmul=2 qdq=0 activations=2 skipped-float-weight=1"),
        "{stats}"
    );
    let text = body(&after);
    assert_eq!(text.matches("lowbit.qmatmul").count(), 2, "{text}");
    assert!(
        !text.contains("lowbit.dequantize"),
        "dead weight dequantize removed: {text}"
    );
    // The same computation written out: per-row symmetric int8 x, per-channel int8 W.
    let cfg = QConfig {
        bits: 8,
        group: 0,
        sym: true,
    };
    let wq = cfg.quantize(&w["w"].data, 4, 8);
    let wd = cfg.dequantize(&wq, 4, 8);
    let fake_row = |row: &[f64]| -> Vec<f64> {
        let amax = row.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let s = amax / 127.0 + f32::MIN_POSITIVE as f64;
        row.iter()
            .map(|v| (v / s).round_ties_even().clamp(-128.0, 127.0) * s)
            .collect()
    };
    let xs = &x[0].data;
    let got = run_func(&after.funcs[0], &x, &wa).unwrap();
    for (out, sign, bias) in [(&got[0], 1.0, true), (&got[1], -1.0, false)] {
        for i in 0..3 {
            let row: Vec<f64> = xs[i * 8..(i + 1) * 8].iter().map(|v| sign * v).collect();
            let xq = fake_row(&row);
            for o in 0..4 {
                let mut want: f64 = (0..8).map(|k| xq[k] * wd[o * 8 + k]).sum();
                if bias {
                    want += w["b"].data[o];
                }
                let g = out.data[i * 4 + o];
                assert!(
                    (g - want).abs() <= 1e-12 * (1.0 + want.abs()),
                    "{g} vs {want}"
                );
            }
        }
    }
    // The linear with a run-time weight is untouched.
    let exact = run_func(&m.funcs[0], &x, &w).unwrap();
    assert_eq!(got[2], exact[2]);
}

#[test]
fn quantize_activations_static_and_grouped_weights() {
    let m = module(LINEARS);
    let w = random_weights(&m, &mut Rng(5));
    let x = inputs(&m, &mut Rng(6));
    let exact = run_func(&m.funcs[0], &x, &w).unwrap();
    // Static per-tensor scales from calibration.
    let (after, wa, stats) = run_env(
        "quantize-weights{bits=8 group=0},quantize-activations{granularity=per-tensor mode=static}",
        LINEARS,
        &w,
        vec![x.clone()],
    )
    .unwrap();
    assert!(stats.contains("qmatmul=2"), "{stats}");
    let got = run_func(&after.funcs[0], &x, &wa).unwrap();
    assert!(rel_err(&exact, &got) < 0.03, "{}", rel_err(&exact, &got));
    // Per-group weights cannot take an epilogue: quantize/dequantize pairs instead.
    let (after, wa, stats) = run_env(
        "quantize-weights{bits=8 group=4},quantize-activations",
        LINEARS,
        &w,
        vec![],
    )
    .unwrap();
    assert!(stats.contains("qmatmul=0 qdq=2"), "{stats}");
    let got = run_func(&after.funcs[0], &x, &wa).unwrap();
    assert!(rel_err(&exact, &got) < 0.03, "{}", rel_err(&exact, &got));
    // Errors: static without calibration; static per-token.
    let err = run_env(
        "quantize-weights{bits=8 group=0},quantize-activations{granularity=per-tensor mode=static}",
        LINEARS,
        &w,
        vec![],
    )
    .unwrap_err();
    assert!(err.contains("needs calibration inputs"), "{err}");
    let err = run_env("quantize-activations{mode=static}", LINEARS, &w, vec![]).unwrap_err();
    assert!(
        err.contains("option 'mode' of pass 'quantize-activations'"),
        "{err}"
    );
}
