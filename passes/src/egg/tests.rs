//! Tests of the bridge and the rules: start ⇒ goal for every exact rule (proved in the
//! e-graph), interpreter property tests on random inputs (bit-identical for EXACT-BIT,
//! ≤ 1e-9 relative in float64 for EXACT-R), determinism, the runner's refusal of
//! approximate rules, and the analysis's loud failure on unsound merges.

use egg::Id;
use lowbit_dialects::interp::{run_func, Tensor};
use lowbit_dialects::ir::Func;
use lowbit_dialects::Opcode;

use super::analysis::Graph;
use super::bridge::{add_func, load};
use super::lang::OpNode;
use super::rules::{self, Exactness, Rule};
use super::{optimize, saturate, EggError, Limits, Stop};
use crate::testing::{module, print, random_weights, Rng};
use crate::PassManager;

/// (rule, start, goal): the goal is a function with the start's parameters.
const CASES: &[(&str, &str, &str)] = &[
    ("transpose-transpose",
     "func @f(%arg0: tensor<2x3x4xf64>) -> tensor<4x2x3xf64> {
        %0 = graph.transpose %arg0 {perm = array<i64: 1, 0, 2>} : tensor<3x2x4xf64>
        %1 = graph.transpose %0 {perm = array<i64: 2, 1, 0>} : tensor<4x2x3xf64>
        return %1
      }",
     "func @f(%arg0: tensor<2x3x4xf64>) -> tensor<4x2x3xf64> {
        %0 = graph.transpose %arg0 {perm = array<i64: 2, 0, 1>} : tensor<4x2x3xf64>
        return %0
      }"),
    ("transpose-identity",
     "func @f(%arg0: tensor<2x3xf64>) -> tensor<2x3xf64> {
        %0 = graph.transpose %arg0 {perm = array<i64: 0, 1>} : tensor<2x3xf64>
        return %0
      }",
     "func @f(%arg0: tensor<2x3xf64>) -> tensor<2x3xf64> {
        return %arg0
      }"),
    ("reshape-reshape",
     "func @f(%arg0: tensor<2x3x4xf64>) -> tensor<24xf64> {
        %0 = graph.reshape %arg0 : tensor<6x4xf64>
        %1 = graph.reshape %0 : tensor<24xf64>
        return %1
      }",
     "func @f(%arg0: tensor<2x3x4xf64>) -> tensor<24xf64> {
        %0 = graph.reshape %arg0 : tensor<24xf64>
        return %0
      }"),
    ("reshape-identity",
     "func @f(%arg0: tensor<2x3xf64>) -> tensor<2x3xf64> {
        %0 = graph.reshape %arg0 : tensor<2x3xf64>
        return %0
      }",
     "func @f(%arg0: tensor<2x3xf64>) -> tensor<2x3xf64> {
        return %arg0
      }"),
    ("mul-one",
     "func @f(%arg0: tensor<2x3xf64>) -> tensor<2x3xf64> {
        %0 = graph.constant {value = dense<1.0> : tensor<2x3xf64>} : tensor<2x3xf64>
        %1 = graph.mul %0, %arg0 : tensor<2x3xf64>
        return %1
      }",
     "func @f(%arg0: tensor<2x3xf64>) -> tensor<2x3xf64> {
        return %arg0
      }"),
    ("div-one",
     "func @f(%arg0: tensor<2x3xf64>) -> tensor<2x3xf64> {
        %0 = graph.constant {value = dense<1.0> : tensor<2x3xf64>} : tensor<2x3xf64>
        %1 = graph.div %arg0, %0 : tensor<2x3xf64>
        return %1
      }",
     "func @f(%arg0: tensor<2x3xf64>) -> tensor<2x3xf64> {
        return %arg0
      }"),
    ("add-zero",
     "func @f(%arg0: tensor<2x3xf64>) -> tensor<2x3xf64> {
        %0 = graph.constant {value = dense<0.0> : tensor<2x3xf64>} : tensor<2x3xf64>
        %1 = graph.add %arg0, %0 : tensor<2x3xf64>
        return %1
      }",
     "func @f(%arg0: tensor<2x3xf64>) -> tensor<2x3xf64> {
        return %arg0
      }"),
    ("matmul-dequantize",
     "func @f(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>) -> tensor<4x5xf64> {
        %0 = graph.constant {value = dense<[0.5, 0.25, 0.125, 3.0]> : tensor<4xf64>} : tensor<4xf64>
        %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf64>} : tensor<5xf64>
        %2 = lowbit.dequantize %arg0, %0 {axis = 0 : i64} : tensor<4x8xf64>
        %3 = lowbit.dequantize %arg1, %1 {axis = 1 : i64} : tensor<8x5xf64>
        %4 = graph.matmul %2, %3 : tensor<4x5xf64>
        return %4
      }",
     "func @f(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>) -> tensor<4x5xf64> {
        %0 = graph.constant {value = dense<[0.5, 0.25, 0.125, 3.0]> : tensor<4xf64>} : tensor<4xf64>
        %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf64>} : tensor<5xf64>
        %2 = graph.reshape %0 : tensor<4x1xf64>
        %3 = lowbit.qmatmul %arg0, %arg1, %2, %1 : tensor<4x5xf64>
        return %3
      }"),
    ("linear-dequantize",
     "func @f(%arg0: tensor<3x8xi8>, %arg1: tensor<5x8xi8>) -> tensor<3x5xf64> {
        %0 = graph.constant {value = dense<0.0371> : tensor<f64>} : tensor<f64>
        %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf64>} : tensor<5xf64>
        %2 = lowbit.dequantize %arg0, %0 : tensor<3x8xf64>
        %3 = lowbit.dequantize %arg1, %1 {axis = 0 : i64} : tensor<5x8xf64>
        %4 = graph.linear %2, %3 : tensor<3x5xf64>
        return %4
      }",
     "func @f(%arg0: tensor<3x8xi8>, %arg1: tensor<5x8xi8>) -> tensor<3x5xf64> {
        %0 = graph.constant {value = dense<0.0371> : tensor<f64>} : tensor<f64>
        %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf64>} : tensor<5xf64>
        %2 = graph.transpose %arg1 {perm = array<i64: 1, 0>} : tensor<8x5xi8>
        %3 = lowbit.qmatmul %arg0, %2, %0, %1 : tensor<3x5xf64>
        return %3
      }"),
    ("linear-bias-dequantize",
     "func @f(%arg0: tensor<2x3x8xi8>, %arg1: tensor<5x8xi8>, %arg2: tensor<5xf64>) -> tensor<2x3x5xf64> {
        %0 = graph.constant {value = dense<[[[0.5], [0.25], [0.125]], [[1.0], [2.0], [0.1]]]> : tensor<2x3x1xf64>} : tensor<2x3x1xf64>
        %1 = graph.constant {value = dense<[[0.1], [0.2], [0.3], [0.7], [1.1]]> : tensor<5x1xf64>} : tensor<5x1xf64>
        %2 = lowbit.dequantize %arg0, %0 {axis = 2 : i64, block_size = 8 : i64} : tensor<2x3x8xf64>
        %3 = lowbit.dequantize %arg1, %1 {axis = 1 : i64, block_size = 8 : i64} : tensor<5x8xf64>
        %4 = graph.linear %2, %3, %arg2 : tensor<2x3x5xf64>
        return %4
      }",
     "func @f(%arg0: tensor<2x3x8xi8>, %arg1: tensor<5x8xi8>, %arg2: tensor<5xf64>) -> tensor<2x3x5xf64> {
        %0 = graph.constant {value = dense<[[[0.5], [0.25], [0.125]], [[1.0], [2.0], [0.1]]]> : tensor<2x3x1xf64>} : tensor<2x3x1xf64>
        %1 = graph.constant {value = dense<[[0.1], [0.2], [0.3], [0.7], [1.1]]> : tensor<5x1xf64>} : tensor<5x1xf64>
        %2 = graph.reshape %1 : tensor<5xf64>
        %3 = graph.transpose %arg1 {perm = array<i64: 1, 0>} : tensor<8x5xi8>
        %4 = lowbit.qmatmul %arg0, %3, %0, %2 : tensor<2x3x5xf64>
        %5 = graph.add %4, %arg2 : tensor<2x3x5xf64>
        return %5
      }"),
    ("dequantize-scale-fold",
     "func @f(%arg0: tensor<2x3xi8>) -> tensor<2x3xf64> {
        %0 = graph.constant {value = dense<[0.5, 0.3, 0.1]> : tensor<3xf64>} : tensor<3xf64>
        %1 = lowbit.dequantize %arg0, %0 {axis = 1 : i64} : tensor<2x3xf64>
        %2 = graph.constant {value = dense<0.7> : tensor<2x3xf64>} : tensor<2x3xf64>
        %3 = graph.mul %2, %1 : tensor<2x3xf64>
        return %3
      }",
     "func @f(%arg0: tensor<2x3xi8>) -> tensor<2x3xf64> {
        %0 = graph.constant {value = dense<[0.35, 0.21, 0.06999999999999999]> : tensor<3xf64>} : tensor<3xf64>
        %1 = lowbit.dequantize %arg0, %0 {axis = 1 : i64} : tensor<2x3xf64>
        return %1
      }"),
    ("qmatmul-scale-fold",
     "func @f(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>) -> tensor<4x5xf64> {
        %0 = graph.constant {value = dense<0.5> : tensor<f64>} : tensor<f64>
        %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf64>} : tensor<5xf64>
        %2 = lowbit.qmatmul %arg0, %arg1, %0, %1 : tensor<4x5xf64>
        %3 = graph.constant {value = dense<0.125> : tensor<4x5xf64>} : tensor<4x5xf64>
        %4 = graph.mul %3, %2 : tensor<4x5xf64>
        return %4
      }",
     "func @f(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>) -> tensor<4x5xf64> {
        %0 = graph.constant {value = dense<0.5> : tensor<f64>} : tensor<f64>
        %1 = graph.constant {value = dense<[0.0125, 0.025, 0.0375, 0.0875, 0.1375]> : tensor<5xf64>} : tensor<5xf64>
        %2 = lowbit.qmatmul %arg0, %arg1, %0, %1 : tensor<4x5xf64>
        return %2
      }"),
    ("quantize-dequantize",
     "func @f(%arg0: tensor<2x3xf32>) -> tensor<2x3xi8> {
        %0 = graph.constant {value = dense<0.1> : tensor<f32>} : tensor<f32>
        %1 = lowbit.quantize %arg0, %0 : tensor<2x3xi8>
        %2 = lowbit.dequantize %1, %0 : tensor<2x3xf16>
        %3 = lowbit.quantize %2, %0 : tensor<2x3xi8>
        return %3
      }",
     "func @f(%arg0: tensor<2x3xf32>) -> tensor<2x3xi8> {
        %0 = graph.constant {value = dense<0.1> : tensor<f32>} : tensor<f32>
        %1 = lowbit.quantize %arg0, %0 : tensor<2x3xi8>
        return %1
      }"),
    ("quantize-dequantize-zp",
     "func @f(%arg0: tensor<2x3xui8>) -> tensor<2x3xui8> {
        %0 = graph.constant {value = dense<[0.02, 0.5, 3.0]> : tensor<3xf32>} : tensor<3xf32>
        %1 = graph.constant {value = dense<[128, 0, 255]> : tensor<3xui8>} : tensor<3xui8>
        %2 = lowbit.dequantize %arg0, %0, %1 {axis = 1 : i64} : tensor<2x3xf32>
        %3 = lowbit.quantize %2, %0, %1 {axis = 1 : i64} : tensor<2x3xui8>
        return %3
      }",
     "func @f(%arg0: tensor<2x3xui8>) -> tensor<2x3xui8> {
        return %arg0
      }"),
    ("transpose-dequantize",
     "func @f(%arg0: tensor<2x3xi8>) -> tensor<3x2xf64> {
        %0 = graph.constant {value = dense<[0.5, 0.3, 0.1]> : tensor<3xf64>} : tensor<3xf64>
        %1 = lowbit.dequantize %arg0, %0 {axis = 1 : i64} : tensor<2x3xf64>
        %2 = graph.transpose %1 {perm = array<i64: 1, 0>} : tensor<3x2xf64>
        return %2
      }",
     "func @f(%arg0: tensor<2x3xi8>) -> tensor<3x2xf64> {
        %0 = graph.constant {value = dense<[0.5, 0.3, 0.1]> : tensor<3xf64>} : tensor<3xf64>
        %1 = graph.transpose %arg0 {perm = array<i64: 1, 0>} : tensor<3x2xi8>
        %2 = lowbit.dequantize %1, %0 {axis = 0 : i64} : tensor<3x2xf64>
        return %2
      }"),
    ("reshape-dequantize",
     "func @f(%arg0: tensor<2x3xi4>) -> tensor<6xf64> {
        %0 = graph.constant {value = dense<0.25> : tensor<f64>} : tensor<f64>
        %1 = lowbit.dequantize %arg0, %0 : tensor<2x3xf64>
        %2 = graph.reshape %1 : tensor<6xf64>
        return %2
      }",
     "func @f(%arg0: tensor<2x3xi4>) -> tensor<6xf64> {
        %0 = graph.constant {value = dense<0.25> : tensor<f64>} : tensor<f64>
        %1 = graph.reshape %arg0 : tensor<6xi4>
        %2 = lowbit.dequantize %1, %0 : tensor<6xf64>
        return %2
      }"),
];

fn rule(name: &str) -> Rule {
    rules::table()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no rule {name}"))
}

fn func(src: &str) -> Func {
    module(src).funcs.remove(0)
}

/// Saturates `start` with `set`, adds `goal` to the same e-graph and says whether their
/// results landed in the same classes.
fn proves(set: &[Rule], start: &Func, goal: &Func) -> bool {
    let (mut loaded, _) = saturate(load(start, false), set, &Limits::default()).expect("saturates");
    let (goal_roots, _) = add_func(&mut loaded.egraph, goal);
    loaded.egraph.rebuild();
    assert!(
        loaded.egraph.analysis.errors.is_empty(),
        "{:?}",
        loaded.egraph.analysis.errors
    );
    let eg = &loaded.egraph;
    loaded
        .roots
        .iter()
        .zip(&goal_roots)
        .all(|(&a, &b)| eg.find(a) == eg.find(b))
}

#[test]
fn table_is_complete_and_named() {
    let table = rules::table();
    let mut names: Vec<&str> = table.iter().map(|r| r.name).collect();
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "rule names are unique");
    for r in &table {
        assert!(r.doc.contains("->"), "{}: doc is 'lhs -> rhs'", r.name);
        let _ = r.rewrite(); // the pattern parses
        if r.exactness.is_exact() {
            assert!(
                CASES.iter().any(|(n, _, _)| *n == r.name),
                "exact rule {} has no start ⇒ goal case",
                r.name
            );
        }
    }
    assert!(table.iter().any(|r| r.exactness == Exactness::Approx));
}

#[test]
fn start_proves_goal() {
    for (name, start, goal) in CASES {
        let (start, goal) = (func(start), func(goal));
        assert!(proves(&[rule(name)], &start, &goal), "{name}: start ⇏ goal");
        // Without the rule the two are not known equal: the test can fail.
        assert!(
            !proves(&[], &start, &goal),
            "{name}: equal without the rule"
        );
    }
}

/// `after` evaluated against `before` on random inputs: bit-identical, or within `tol`
/// relative (max |a - b| / max |b|).
fn agree(before: &Func, after: &Func, seeds: u64, tol: Option<f64>) {
    let m = lowbit_dialects::ir::Module {
        funcs: vec![before.clone()],
    };
    for seed in 0..seeds {
        let mut rng = Rng(seed);
        let w = random_weights(&m, &mut rng);
        let inputs: Vec<Tensor> = before.param_types().iter().map(|t| rng.tensor(t)).collect();
        let b = run_func(before, &inputs, &w).expect("before runs");
        let a = run_func(after, &inputs, &w).expect("after runs");
        for (x, y) in b.iter().zip(&a) {
            assert_eq!(x.ty, y.ty);
            match tol {
                None => {
                    let bits = |t: &Tensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(x), bits(y), "not bit-identical (seed {seed})");
                }
                Some(tol) => {
                    let scale = x
                        .data
                        .iter()
                        .fold(0f64, |m, v| m.max(v.abs()))
                        .max(f64::MIN_POSITIVE);
                    let err = x
                        .data
                        .iter()
                        .zip(&y.data)
                        .fold(0f64, |m, (p, q)| m.max((p - q).abs()));
                    assert!(
                        err / scale <= tol,
                        "relative error {} > {tol} (seed {seed})",
                        err / scale
                    );
                }
            }
        }
    }
}

#[test]
fn exact_rules_agree_with_the_interpreter() {
    for (name, start, goal) in CASES {
        let r = rule(name);
        let (start, goal) = (func(start), func(goal));
        let tol = match r.exactness {
            Exactness::ExactBit => None,
            Exactness::ExactR => Some(1e-9),
            _ => unreachable!("only exact rules have cases"),
        };
        // The rule's right-hand side, and what extraction made of the start.
        agree(&start, &goal, 20, tol);
        let out = optimize(&start, &[r], &Limits::default(), false).expect("optimizes");
        agree(&start, &out.func, 20, tol);
    }
}

/// Scales that make i8 inputs land on awkward values, so EXACT-R is tested where rounding
/// differs, with a zero point on each side.
#[test]
fn matmul_dequantize_with_zero_points_agrees() {
    let src = "func @f(%arg0: tensor<2x3x16xi8>, %arg1: tensor<16x7xi8>) -> tensor<2x3x7xf64> {
        %0 = graph.constant {value = dense<0.0371> : tensor<f64>} : tensor<f64>
        %1 = graph.constant {value = dense<2> : tensor<i8>} : tensor<i8>
        %2 = graph.constant {value = dense<[0.013, 0.021, 0.5, 0.7, 1.3, 0.011, 0.9]> : tensor<7xf64>} : tensor<7xf64>
        %3 = graph.constant {value = dense<[1, -2, 3, 0, 0, 1, -1]> : tensor<7xi8>} : tensor<7xi8>
        %4 = lowbit.dequantize %arg0, %0, %1 : tensor<2x3x16xf64>
        %5 = lowbit.dequantize %arg1, %2, %3 {axis = 1 : i64} : tensor<16x7xf64>
        %6 = graph.matmul %4, %5 : tensor<2x3x7xf64>
        return %6
      }";
    let start = func(src);
    let out = optimize(&start, &rules::qdq::rules(), &Limits::default(), false).unwrap();
    let text = print(&lowbit_dialects::ir::Module {
        funcs: vec![out.func.clone()],
    });
    assert!(
        text.contains("lowbit.qmatmul %arg0, %arg1, %0, %2, %1, %3"),
        "{text}"
    );
    agree(&start, &out.func, 20, Some(1e-9));
}

#[test]
fn roundtrip_guard() {
    use lowbit_dialects::ir::Elem;
    use rules::qdq::roundtrip_is_exact;
    assert!(roundtrip_is_exact(Elem::I8, Elem::F16, &[0.1]));
    assert!(roundtrip_is_exact(Elem::I16, Elem::F32, &[0.1]));
    assert!(
        !roundtrip_is_exact(Elem::I8, Elem::BF16, &[0.1]),
        "255·2⁻⁸ ≈ 1 is too coarse"
    );
    assert!(!roundtrip_is_exact(Elem::I32, Elem::F32, &[0.1]));
    assert!(
        !roundtrip_is_exact(Elem::I8, Elem::F16, &[0.0]),
        "zero scale"
    );
    assert!(
        !roundtrip_is_exact(Elem::I8, Elem::F16, &[1000.0]),
        "255·1000 overflows f16"
    );
    assert!(
        !roundtrip_is_exact(Elem::I8, Elem::F16, &[1e-6]),
        "subnormal in f16"
    );
}

/// The guard is what makes the rule exact: exhaustively, every i8 and ui8 value with zero
/// points at the extremes survives a round trip through f16 at the guard's scales, and the
/// refused bf16 case really changes a value.
#[test]
fn roundtrip_guard_is_sound_exhaustively() {
    use lowbit_dialects::ir::Elem;
    use lowbit_dialects::numeric::{round_half_even, round_to};
    for &(q, f, s, z) in &[
        (Elem::I8, Elem::F16, 0.1, -128.0),
        (Elem::UI8, Elem::F16, 0.37, 255.0),
        (Elem::I8, Elem::F32, 1e-30, 127.0),
    ] {
        assert!(rules::qdq::roundtrip_is_exact(q, f, &[s]));
        let s = round_to(s, Elem::F32);
        let (lo, hi) = q.int_range().unwrap();
        for v in lo..=hi {
            let y = round_to((v as f64 - z) * s, f);
            let back = round_to(round_half_even(y / s) + z, q);
            assert_eq!(back, v as f64, "{q} {v} through {f}");
        }
    }
    let s = round_to(0.1, Elem::F32);
    let changed = (-128..=127).any(|v: i64| {
        let y = round_to((v as f64 + 128.0) * s, Elem::BF16);
        round_to(round_half_even(y / s) - 128.0, Elem::I8) != v as f64
    });
    assert!(
        changed,
        "bf16 must break some round trip, or the guard is too strict"
    );
}

#[test]
fn optimizing_twice_is_byte_identical() {
    let src = "func @f(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>, %arg2: tensor<4x5xf32>) -> (tensor<4x5xf32>, tensor<5x4xf32>) {
        %0 = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32>
        %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf32>} : tensor<5xf32>
        %2 = lowbit.dequantize %arg0, %0 : tensor<4x8xf32>
        %3 = lowbit.dequantize %arg1, %1 {axis = 1 : i64} : tensor<8x5xf32>
        %4 = graph.matmul %2, %3 : tensor<4x5xf32>
        %5 = graph.add %4, %arg2 : tensor<4x5xf32>
        %6 = graph.constant {value = dense<2.0> : tensor<4x5xf32>} : tensor<4x5xf32>
        %7 = graph.mul %5, %6 : tensor<4x5xf32>
        %8 = graph.transpose %7 {perm = array<i64: 1, 0>} : tensor<5x4xf32>
        %9 = graph.transpose %8 {perm = array<i64: 1, 0>} : tensor<4x5xf32>
        %10 = graph.transpose %3 {perm = array<i64: 1, 0>} : tensor<5x8xf32>
        %11 = graph.reshape %10 : tensor<40xf32>
        %12 = graph.reshape %11 : tensor<5x8xf32>
        %13 = graph.matmul %12, %3 : tensor<5x5xf32>
        %14 = graph.matmul %13, %8 : tensor<5x4xf32>
        return %9, %14
      }";
    let mut set = rules::qdq::rules();
    set.extend(rules::algebra::rules());
    let show = |f: Func| {
        lowbit_dialects::ir::print::print_module_with(
            &lowbit_dialects::ir::Module { funcs: vec![f] },
            lowbit_dialects::ir::print::PrintOptions {
                elide: false,
                locs: true,
                ..Default::default()
            },
        )
    };
    let first = show(
        optimize(&func(src), &set, &Limits::default(), false)
            .unwrap()
            .func,
    );
    for _ in 0..5 {
        let again = show(
            optimize(&func(src), &set, &Limits::default(), false)
                .unwrap()
                .func,
        );
        assert_eq!(first, again);
    }
    assert!(first.contains("lowbit.qmatmul"), "{first}");
    // And a 12-block stack, through the pass manager with the algebra rules too.
    let stack = w8a8_stack(12);
    let (a, _) = crate::testing::run("fuse-qdq{algebra},canonicalize,cse,dce", &stack);
    let (b, _) = crate::testing::run("fuse-qdq{algebra},canonicalize,cse,dce", &stack);
    assert_eq!(print(&a), print(&b));
    assert_eq!(print(&a).matches("lowbit.qmatmul").count(), 24);
}

#[test]
fn saturation_refuses_approximate_rules() {
    let f = func(CASES[0].1);
    let approx = rules::qdq::approx_rules();
    assert_eq!(approx[0].exactness, Exactness::Approx);
    let mut set = rules::algebra::rules();
    set.extend(approx);
    match saturate(load(&f, false), &set, &Limits::default()) {
        Err(EggError::NotExact { name, .. }) => assert_eq!(name, "dequantize-quantize-elide"),
        other => panic!("expected a refusal, got {:?}", other.map(|(_, r)| r)),
    }
    let trained = Rule {
        exactness: Exactness::Trained,
        ..rule("mul-one")
    };
    assert!(matches!(
        optimize(&f, &[trained], &Limits::default(), false),
        Err(EggError::NotExact { .. })
    ));
}

/// An unsound rule: equates a transpose with its operand, whatever the shapes.
fn drop_transpose(_eg: &mut Graph, _c: Id, node: &OpNode) -> Vec<Id> {
    vec![node.children[0]]
}

#[test]
fn a_merge_that_disagrees_on_shape_is_an_error() {
    let bogus = Rule {
        name: "bogus-drop-transpose",
        doc: "transpose(x) -> x",
        exactness: Exactness::ExactBit,
        lhs: "(graph.transpose ?a)",
        inspects: &[],
        builds: &[],
        apply: drop_transpose,
    };
    let f = func(
        "func @f(%arg0: tensor<2x3xf32>) -> tensor<3x2xf32> {
            %0 = graph.transpose %arg0 {perm = array<i64: 1, 0>} : tensor<3x2xf32>
            return %0
          }",
    );
    match optimize(&f, &[bogus], &Limits::default(), false) {
        Err(EggError::Analysis(msg)) => {
            assert!(
                msg.contains("tensor<3x2xf32>") && msg.contains("tensor<2x3xf32>"),
                "{msg}"
            )
        }
        other => panic!(
            "expected an analysis error, got changed={:?}",
            other.map(|o| o.changed)
        ),
    }
}

#[test]
fn limits_are_reported() {
    let f = func(CASES[0].1);
    let set = rules::algebra::rules();
    let out = optimize(&f, &set, &Limits::default(), false).unwrap();
    assert_eq!(out.report.stop, Stop::Saturated);
    let tight = Limits {
        iterations: 1,
        ..Limits::default()
    };
    // One iteration applies the rule and stops before seeing that nothing else fires.
    let out = optimize(&f, &set, &tight, false).unwrap();
    assert_eq!(out.report.stop, Stop::IterationLimit);
    let tiny = Limits {
        nodes: 1,
        ..Limits::default()
    };
    let out = optimize(&f, &set, &tiny, false).unwrap();
    assert_eq!(out.report.stop, Stop::NodeLimit);
}

#[test]
fn unchanged_functions_come_back_untouched_and_locations_survive() {
    let src = "func @f(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
        %0 = graph.relu %arg0 : tensor<2x3xf32> loc(\"relu\")
        %1 = graph.exp %0 : tensor<2x3xf32> loc(\"exp\")
        return %1
      }";
    let f = func(src);
    let out = optimize(&f, &rules::qdq::rules(), &Limits::default(), false).unwrap();
    assert!(!out.changed);
    assert_eq!(out.func, f);
}

#[test]
fn new_ops_get_fused_locations_and_kept_ops_keep_theirs() {
    let src = "func @f(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>) -> tensor<4x5xf32> {
        %0 = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32> loc(\"sx\")
        %1 = graph.constant {value = dense<0.25> : tensor<f32>} : tensor<f32> loc(\"sw\")
        %2 = lowbit.dequantize %arg0, %0 : tensor<4x8xf32> loc(\"dqx\")
        %3 = lowbit.dequantize %arg1, %1 : tensor<8x5xf32> loc(\"dqw\")
        %4 = graph.matmul %2, %3 : tensor<4x5xf32> loc(\"mm\")
        %5 = graph.relu %4 : tensor<4x5xf32> loc(\"relu\")
        return %5
      }";
    let out = optimize(&func(src), &rules::qdq::rules(), &Limits::default(), false).unwrap();
    let f = &out.func;
    let locs: Vec<String> = f
        .body
        .iter()
        .map(|&op| format!("{} {}", f.ops[op].opcode, f.ops[op].loc))
        .collect();
    assert_eq!(
        locs,
        [
            "graph.constant loc(\"sx\")",
            "graph.constant loc(\"sw\")",
            "lowbit.qmatmul loc(fused[\"mm\", \"dqx\", \"dqw\"])",
            "graph.relu loc(\"relu\")",
        ]
    );
    assert_eq!((out.new_ops, out.removed_ops), (1, 3));
}

#[test]
fn explanations_name_the_rule() {
    let (_, start, _) = CASES.iter().find(|c| c.0 == "matmul-dequantize").unwrap();
    let out = optimize(&func(start), &rules::qdq::rules(), &Limits::default(), true).unwrap();
    assert_eq!(
        out.report.explanations.len(),
        1,
        "{:?}",
        out.report.explanations
    );
    let e = &out.report.explanations[0];
    assert!(e.starts_with("lowbit.qmatmul at"), "{e}");
    assert!(e.contains("Rewrite=> matmul-dequantize"), "{e}");
}

use crate::egg::examples::w8a8_stack;

#[test]
fn a_stack_of_blocks_fuses_every_linear() {
    for n in [1, 12, 48] {
        let f = func(&w8a8_stack(n));
        // Best of 3, printed for the record (not asserted: CI timing is noisy).
        let mut dt = std::time::Duration::MAX;
        let mut out = None;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            out = Some(optimize(&f, &rules::qdq::rules(), &Limits::default(), false).unwrap());
            dt = dt.min(t.elapsed());
        }
        let out = out.expect("ran");
        let qmm = out
            .func
            .body
            .iter()
            .filter(|&&op| out.func.ops[op].opcode.name() == "lowbit.qmatmul")
            .count();
        assert_eq!(qmm, 2 * n);
        assert_eq!(out.report.stop, Stop::Saturated);
        eprintln!(
            "{n} block(s): {dt:?}, {} nodes, {} iterations",
            out.report.nodes, out.report.iterations
        );
    }
}

/// Prints `f` with locations and nothing elided: what byte-identical means here.
fn show(f: &Func) -> String {
    lowbit_dialects::ir::print::print_module_with(
        &lowbit_dialects::ir::Module {
            funcs: vec![f.clone()],
        },
        lowbit_dialects::ir::print::PrintOptions {
            elide: false,
            locs: true,
            ..Default::default()
        },
    )
}

/// Region-wise and whole-function optimization of `src` with `set`: the same function,
/// byte for byte (locations included when `locs`); returns the region counts and the
/// region-wise function.
fn regions_agree(src: &str, set: &[Rule], locs: bool) -> (crate::egg::regions::RegionCount, Func) {
    let f = func(src);
    let whole = optimize(&f, set, &Limits::default(), false).unwrap();
    let (regions, count) =
        crate::egg::regions::optimize_regions(&f, set, &Limits::default()).unwrap();
    if locs {
        assert_eq!(show(&regions.func), show(&whole.func));
    } else {
        assert_eq!(print_func(&regions.func), print_func(&whole.func));
    }
    assert_eq!(
        (regions.changed, regions.new_ops, regions.removed_ops),
        (whole.changed, whole.new_ops, whole.removed_ops)
    );
    let applied = |o: &crate::egg::Optimized| o.report.applied.clone();
    assert_eq!(applied(&regions), applied(&whole));
    (count, regions.func)
}

fn print_func(f: &Func) -> String {
    print(&lowbit_dialects::ir::Module {
        funcs: vec![f.clone()],
    })
}

#[test]
fn a_stack_saturates_one_block_and_reuses_it() {
    use crate::egg::regions::RegionCount;
    for algebra in [false, true] {
        let mut set = rules::qdq::rules();
        if algebra {
            set.extend(rules::algebra::rules());
        }
        // Two regions a block: cut after the gelu and after the layer norm (the values
        // crossing there are read by no rule's inspected opcode).
        for n in [1, 2, 12] {
            let (count, _) = regions_agree(&w8a8_stack(n), &set, true);
            let n = n as u64;
            let expect = RegionCount {
                regions: 2 * n,
                saturated: 2,
                reused: 2 * n - 2,
            };
            assert_eq!(count, expect, "{n} blocks, algebra {algebra}");
        }
    }
    // Every block's integer matmuls name that block's own ops.
    let (m, stats) = crate::testing::run("fuse-qdq", &w8a8_stack(12));
    assert!(
        stats.contains("regions=24 regions_saturated=2 regions_reused=22"),
        "{stats}"
    );
    assert!(stats.contains("linear-bias-dequantize=12"), "{stats}");
    let f = &m.funcs[0];
    let locs: Vec<String> = f
        .body
        .iter()
        .filter(|&&op| f.ops[op].opcode.name() == "lowbit.qmatmul")
        .map(|&op| f.ops[op].loc.to_string())
        .collect();
    assert_eq!(locs.len(), 24);
    let distinct: std::collections::BTreeSet<&String> = locs.iter().collect();
    assert_eq!(distinct.len(), 24, "{locs:?}");
    // Block 7's second linear is line 2 + 7·14 + 11 of the source (1-based).
    let line = 2 + 7 * 14 + 11 + 1;
    assert!(
        locs[15].contains(&format!("\"test.mlir\":{line}:")),
        "{}",
        locs[15]
    );
}

#[test]
fn the_pass_option_reuse_false_gives_the_same_function() {
    let src = w8a8_stack(4);
    let (a, sa) = crate::testing::run("fuse-qdq{algebra}", &src);
    let (b, sb) = crate::testing::run("fuse-qdq{algebra reuse=false}", &src);
    let show_m = |m: &lowbit_dialects::ir::Module| show(&m.funcs[0]);
    assert_eq!(show_m(&a), show_m(&b));
    assert!(
        sa.contains("regions=8 regions_saturated=2 regions_reused=6"),
        "{sa}"
    );
    assert!(
        sb.contains("regions=1 regions_saturated=1 regions_reused=0"),
        "{sb}"
    );
    match PassManager::parse("fuse-qdq{reuse=maybe}") {
        Err(bad) => assert!(bad.to_string().contains("reuse"), "{bad}"),
        Ok(_) => panic!("reuse=maybe was accepted"),
    }
}

/// Blocks that each fold a constant factor into a per-tensor scale: every block builds
/// the same new scale constant, which the whole-function e-graph shares and stitching
/// must share too; the duplicated factor constants merge the same way. (Locations then
/// differ: hash-consing the factor constants of all blocks into one class makes the
/// whole-function extraction fuse every block's factor location into each block's
/// integer matmul; region-wise, a block's matmul names its own ops only.)
fn scale_fold_stack(n: usize) -> String {
    let mut t = String::from(
        "func @s(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %s = graph.constant {value = dense<0.05> : tensor<f32>} : tensor<f32>
  %sw = graph.constant {value = dense<0.01> : tensor<16xf32>} : tensor<16xf32>
",
    );
    let mut cur = "%x".to_string();
    for i in 0..n {
        t += &format!(
            "  %q{i} = lowbit.quantize {cur}, %s : tensor<4x16xi8>
  %d{i} = lowbit.dequantize %q{i}, %s : tensor<4x16xf32>
  %c{i} = graph.constant {{value = dense<2.0> : tensor<4x16xf32>}} : tensor<4x16xf32>
  %m{i} = graph.mul %d{i}, %c{i} : tensor<4x16xf32>
  %w{i} = graph.weight {{name = \"w{i}\"}} : tensor<16x16xi8>
  %dw{i} = lowbit.dequantize %w{i}, %sw {{axis = 1 : i64}} : tensor<16x16xf32>
  %y{i} = graph.matmul %m{i}, %dw{i} : tensor<4x16xf32>
  %r{i} = graph.add %y{i}, {cur} : tensor<4x16xf32>
  %n{i} = graph.layer_norm %r{i} {{axis = -1 : i64, epsilon = 1.0e-5 : f32}} : tensor<4x16xf32>
"
        );
        cur = format!("%n{i}");
    }
    t + &format!("  return {cur}\n}}\n")
}

#[test]
fn regions_share_what_the_whole_function_shares() {
    let (count, f) = regions_agree(&scale_fold_stack(3), &rules::qdq::rules(), false);
    assert_eq!((count.regions, count.saturated, count.reused), (3, 1, 2));
    let out = show(&f);
    assert_eq!(out.matches("lowbit.qmatmul").count(), 3, "{out}");
    assert_eq!(out.matches("dense<0.1>").count(), 1, "{out}");
    // Block 1 is lines 13..=21; its matmul names its own quantize..matmul (14..=19).
    let mm1 = out
        .lines()
        .filter(|l| l.contains("lowbit.qmatmul"))
        .nth(1)
        .expect("three matmuls");
    assert!(
        mm1.ends_with(r#"loc(fused["test.mlir":19:3, "test.mlir":16:3, "test.mlir":14:3, "test.mlir":15:3, "test.mlir":18:3])"#),
        "{mm1}"
    );
}

/// [`w8a8_stack`] with every weight's dequantize hoisted to the top of the function, as
/// ONNX importers write weight-only quantized models: the dequantized weights are live
/// across every block, and are copied into the regions that read them.
fn hoisted_stack(n: usize) -> String {
    let src = w8a8_stack(n);
    let (mut head, mut rest) = (Vec::new(), Vec::new());
    for l in src.lines() {
        let hoist = l.contains("graph.weight")
            || l.contains("graph.constant")
            || (l.contains("%dw") && l.contains("lowbit.dequantize"));
        if hoist {
            head.push(l);
        } else {
            rest.push(l);
        }
    }
    let mut out = vec![rest[0]];
    out.extend(head);
    out.extend(&rest[1..]);
    out.join("\n")
}

#[test]
fn hoisted_weight_dequantizes_are_copied_into_each_block() {
    let mut set = rules::qdq::rules();
    set.extend(rules::algebra::rules());
    let (count, f) = regions_agree(&hoisted_stack(6), &set, true);
    assert_eq!((count.regions, count.saturated, count.reused), (12, 2, 10));
    let out = show(&f);
    assert_eq!(out.matches("lowbit.qmatmul").count(), 12, "{out}");
    // One transposed weight per linear, not one per region that copied the dequantize.
    assert_eq!(out.matches("graph.transpose").count(), 12, "{out}");
}

#[test]
fn values_a_rule_looks_through_are_never_cut() {
    use crate::egg::regions::{segment, Reach};
    let reach = Reach::of(&rules::qdq::rules()).unwrap();
    assert!(reach
        .inspects
        .contains(&Opcode::Lowbit(lowbit_dialects::lowbit::Op::Dequantize)));
    // A dequantized value crossing every place a cut could go: one region.
    let f = func(
        "func @f(%x: tensor<4x8xi8>, %w: tensor<8x8xi8>) -> tensor<4x8xf32> {
          %s = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32>
          %d = lowbit.dequantize %x, %s : tensor<4x8xf32>
          %e = graph.exp %d : tensor<4x8xf32>
          %n = graph.layer_norm %e {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<4x8xf32>
          %dw = lowbit.dequantize %w, %s : tensor<8x8xf32>
          %y = graph.matmul %d, %dw : tensor<4x8xf32>
          %z = graph.add %y, %n : tensor<4x8xf32>
          return %z
        }",
    );
    assert_eq!(segment(&f, &reach).len(), 1);
    // A layer norm read by a transpose: the algebra rules look through transposes, so
    // no cut before the transpose with them; the QDQ rules only look for dequantizes, so
    // a cut there without them. (The exp's output is a cut either way.)
    let src = "func @f(%x: tensor<4x8xf32>) -> tensor<8x4xf32> {
          %e = graph.exp %x : tensor<4x8xf32>
          %n = graph.layer_norm %e {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<4x8xf32>
          %t = graph.transpose %n {perm = array<i64: 1, 0>} : tensor<8x4xf32>
          return %t
        }";
    let mut all = rules::qdq::rules();
    all.extend(rules::algebra::rules());
    let with_algebra = segment(&func(src), &Reach::of(&all).unwrap());
    assert_eq!(with_algebra, vec![vec![0], vec![1, 2]]);
    assert_eq!(segment(&func(src), &reach), vec![vec![0], vec![1], vec![2]]);
}
