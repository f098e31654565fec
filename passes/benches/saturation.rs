//! `cargo bench -p lowbit-passes --bench saturation`: `fuse-qdq` on stacks of 1, 12 and 48
//! identical W8A8 transformer blocks ([`lowbit_passes::egg::examples::w8a8_stack`]), with
//! region reuse (the default: each distinct region saturated once) and without
//! (`reuse=false`: each function saturated whole). Prints the median time of each, the
//! ratios to one block, and the region counts; checks that both give the same function.
//!
//! Without `--bench` (`cargo test --benches`) it runs each case once, as a smoke test.

use std::time::{Duration, Instant};

use lowbit_dialects::ir::parse::parse_module;
use lowbit_dialects::ir::print::{print_module_with, PrintOptions};
use lowbit_dialects::ir::{Func, Module};
use lowbit_passes::egg::examples::w8a8_stack;
use lowbit_passes::fuse_qdq::FuseQdq;
use lowbit_passes::Pass;

fn run_once(f: &Func, reuse: bool) -> (Duration, Func, String) {
    let mut pass = FuseQdq {
        reuse,
        ..FuseQdq::default()
    };
    let mut g = f.clone();
    let t = Instant::now();
    let r = pass.run(&mut g).expect("fuse-qdq runs");
    let dt = t.elapsed();
    (dt, g, r.stats.to_string())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn stat(stats: &str, key: &str) -> String {
    stats
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or("?")
        .to_string()
}

fn show(f: Func) -> String {
    print_module_with(
        &Module { funcs: vec![f] },
        PrintOptions {
            elide: false,
            locs: true,
            ..PrintOptions::default()
        },
    )
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let reps = if bench { 21 } else { 1 };
    let mut one = [Duration::ZERO; 2];
    println!("fuse-qdq on a stack of W8A8 blocks, median of {reps} run(s)");
    println!(
        "{:>6}  {:>12}  {:>8}  {:>12}  {:>8}  regions",
        "blocks", "reuse", "x 1 blk", "whole", "x 1 blk"
    );
    for n in [1, 12, 48] {
        let src = w8a8_stack(n);
        let f = parse_module(&src, "stack.mlir", 0)
            .expect("the stack parses")
            .funcs
            .remove(0);
        let mut times = [Vec::new(), Vec::new()];
        let mut outs: [Option<(Func, String)>; 2] = [None, None];
        for _ in 0..reps {
            for (i, reuse) in [true, false].into_iter().enumerate() {
                let (dt, g, stats) = run_once(&f, reuse);
                times[i].push(dt);
                outs[i] = Some((g, stats));
            }
        }
        let [a, b] = outs;
        let (a, stats) = a.expect("ran");
        let (b, _) = b.expect("ran");
        assert_eq!(show(a), show(b), "reuse changed the result on {n} blocks");
        let med = [median(times[0].clone()), median(times[1].clone())];
        if n == 1 {
            one = med;
        }
        let ratio = |i: usize| med[i].as_secs_f64() / one[i].as_secs_f64();
        println!(
            "{n:>6}  {:>12?}  {:>8.1}  {:>12?}  {:>8.1}  {} ({} saturated, {} reused)",
            med[0],
            ratio(0),
            med[1],
            ratio(1),
            stat(&stats, "regions"),
            stat(&stats, "regions_saturated"),
            stat(&stats, "regions_reused"),
        );
    }
}
