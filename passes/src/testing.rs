//! Test helpers: modules from text, pipelines run on text, and interpreter comparisons on
//! deterministic random inputs.

use lowbit_dialects::interp::{run_func, Tensor, Weights};
use lowbit_dialects::ir::parse::parse_module;
use lowbit_dialects::ir::print::{print_module_with, PrintOptions};
use lowbit_dialects::ir::verify::verify_module;
use lowbit_dialects::ir::{Elem, Module, TensorType};
use lowbit_dialects::numeric::round_to;

use crate::{PassCx, PassManager};

/// Parses and verifies `src`, panicking with the rendered error.
pub fn module(src: &str) -> Module {
    let m = parse_module(src, "test.mlir", 0)
        .unwrap_or_else(|e| panic!("{}", e.render(src, "test.mlir", 0)));
    if let Err(errs) = verify_module(&m) {
        panic!("test module does not verify: {errs:?}");
    }
    m
}

/// Prints without locations or elision.
pub fn print(m: &Module) -> String {
    print_module_with(
        m,
        PrintOptions {
            elide: false,
            ..PrintOptions::default()
        },
    )
}

/// Runs `pipeline` on `src`; returns the module and the stats report.
pub fn run(pipeline: &str, src: &str) -> (Module, String) {
    let mut m = module(src);
    let mut pm = PassManager::parse(pipeline).unwrap_or_else(|e| panic!("{}", e.render()));
    pm.run(&mut m, &mut PassCx::default())
        .unwrap_or_else(|e| panic!("{e}"));
    (m, pm.stats_report())
}

/// The body of the only function, one op per line, for compact assertions.
pub fn body(m: &Module) -> String {
    let text = print(m);
    text.lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("\n")
}

/// SplitMix64: tiny deterministic generator for test inputs.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// A random tensor of `ty`: floats in [-2, 2), integers in [-3, 3] (clamped), `i1` 0/1.
    pub fn tensor(&mut self, ty: &TensorType) -> Tensor {
        let data = (0..ty.num_elements())
            .map(|_| match ty.elem {
                Elem::I1 => (self.next_u64() & 1) as f64,
                e if e.is_int() => round_to((self.next_u64() % 7) as f64 - 3.0, e),
                _ => 2.0 * self.unit(),
            })
            .collect();
        Tensor::new(ty.clone(), data)
    }
}

/// Random weights for every `graph.weight` of `m`.
pub fn random_weights(m: &Module, rng: &mut Rng) -> Weights {
    let mut w = Weights::new();
    for f in &m.funcs {
        for &op in &f.body {
            let d = &f.ops[op];
            if let Some(name) = d.attrs.str("name") {
                if d.opcode.name() == "graph.weight" {
                    w.insert(name.to_string(), rng.tensor(f.ty(f.result(op))));
                }
            }
        }
    }
    w
}

/// Largest relative L1 error (Σ|a-b| / Σ|a|) over the outputs of every function of
/// `before` and `after` on `seeds` random input sets.
pub fn max_rel_l1(before: &Module, after: &Module, seeds: std::ops::Range<u64>) -> f64 {
    let mut worst: f64 = 0.0;
    for seed in seeds {
        let mut rng = Rng(seed);
        let weights = random_weights(before, &mut rng);
        for (fb, fa) in before.funcs.iter().zip(&after.funcs) {
            let inputs: Vec<Tensor> = fb.param_types().iter().map(|t| rng.tensor(t)).collect();
            let ob = run_func(fb, &inputs, &weights).unwrap_or_else(|e| panic!("before: {e}"));
            let oa = run_func(fa, &inputs, &weights).unwrap_or_else(|e| panic!("after: {e}"));
            assert_eq!(ob.len(), oa.len());
            for (b, a) in ob.iter().zip(&oa) {
                assert_eq!(b.ty, a.ty, "output types differ");
                let diff: f64 = b
                    .data
                    .iter()
                    .zip(&a.data)
                    .map(|(x, y)| elem_diff(*x, *y))
                    .sum();
                let norm: f64 = b
                    .data
                    .iter()
                    .map(|x| x.abs())
                    .sum::<f64>()
                    .max(f64::MIN_POSITIVE);
                worst = worst.max(diff / norm);
            }
        }
    }
    worst
}

/// `|x - y|`, with equal values (NaN included) at 0 and a NaN against a number at infinity.
fn elem_diff(x: f64, y: f64) -> f64 {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => 0.0,
        (false, false) if x == y => 0.0,
        (false, false) => (x - y).abs(),
        _ => f64::INFINITY,
    }
}
