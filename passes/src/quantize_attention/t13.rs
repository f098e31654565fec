//! The SageAttention accuracy emulation of techniques.md §1.6 recipe T1.3, computed through
//! the passes and the reference interpreter's `attn.quantized_sdpa`.
//!
//! Data (seeded, our own generator — numpy's stream is not reproduced, so numbers differ
//! from the §1.6 table within seed noise): `Q, K, V ~ N(0, 1)` of shape `[1, 1, N, d]`
//! (`N = 2048`, `d = 128` by default), `sm = d^-1/2`, float64. One base draw serves all
//! three scenarios: *none*; *K outliers* = 8 random K channels shifted by ±8 (constant over
//! tokens); *K + Q outliers* = also 8 random Q channels shifted by ±4.
//!
//! Each configuration is a real pass pipeline run on a one-op function
//! `attn.sdpa(q, k, v)`; its output is compared with the float64 `attn.sdpa` by the
//! metrics of §0.3 ([`Metrics`]). The granularities are those of §1.2, as
//! `attn.quantized_sdpa`'s `granularity` attribute: per-block (128 queries / 64 keys),
//! per-warp (32 queries / 64 keys), SageAttention2's per-thread groups (rows
//! `{g, g+8, g+16, g+24}` of each 32-query slab, keys `{8j+2t, 8j+2t+1}` of each 64-key
//! block) and per-token. Q smoothing uses 128-query blocks (`smooth_q_block`, independent
//! of the quantization groups), so per-thread and per-token INT4 with Q+K smoothing are one
//! op each; the per-token one is also run as the graph composition
//! `smooth-attention{q-block=128},quantize-attention{… smooth-k=false}` and must agree.
//! Rows marked `online` use the blocked online P̃ of T1.3 (`p = "online"`: 64-key blocks,
//! running max, P̃ in `[0, 448]` cast to E4M3, the denominator summing the quantized P̃);
//! the other rows quantize the normalized softmax (`e4m3(448·P)/448`), whose denominator
//! is exact. Remaining difference from the T1.3 emulator: integer rounding is
//! half-to-even (T1.3: half away from zero; ties are rare here).

use lowbit_dialects::attn::Op as A;
use lowbit_dialects::interp::{run_func, Tensor, Weights};
use lowbit_dialects::ir::{Attr, Attrs, Elem, Func, Loc, Module, TensorType};
use lowbit_dialects::Opcode;

use super::Metrics;
use crate::{PassCx, PassManager};

/// The three T1.3 data scenarios.
pub const SCENARIOS: [&str; 3] = ["no outliers", "K outliers", "K + Q outliers"];

/// One configuration: a name and the pipeline that lowers `attn.sdpa` to it.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Short name, used by tests and in the table.
    pub name: &'static str,
    /// The `lowbit opt --pass-pipeline` string.
    pub pipeline: &'static str,
}

/// The configurations of the report, in table order.
pub const CONFIGS: [Config; 19] = [
    Config {
        name: "int8 per-block, no smoothing, pv f16",
        pipeline: "quantize-attention{qk=i8 pv=f16 smooth-k=false}",
    },
    Config {
        name: "int8 per-block, smooth K, pv f16 (v1)",
        pipeline: "quantize-attention{qk=i8 pv=f16 smooth-k=true}",
    },
    Config {
        name: "int8 per-block, smooth K, pv f8",
        pipeline: "quantize-attention{qk=i8 pv=f8 smooth-k=true}",
    },
    Config {
        name: "int8 per-thread, smooth K, pv f8",
        pipeline: "quantize-attention{qk=i8 pv=f8 granularity=per-thread smooth-k=true}",
    },
    Config {
        name: "int8 per-thread, smooth K, pv f8 online (2-8b)",
        pipeline: "quantize-attention{qk=i8 pv=f8 granularity=per-thread p=online smooth-k=true}",
    },
    Config {
        name: "int8 per-token, smooth K, pv f8",
        pipeline: "quantize-attention{qk=i8 pv=f8 q-block=1 k-block=1 smooth-k=true}",
    },
    Config {
        name: "int4 per-block, smooth K, pv f16",
        pipeline: "quantize-attention{qk=i4 pv=f16 smooth-k=true}",
    },
    Config {
        name: "int4 per-block, smooth K, pv f8",
        pipeline: "quantize-attention{qk=i4 pv=f8 smooth-k=true}",
    },
    Config {
        name: "int4 per-block, smooth Q+K, pv f8",
        pipeline: "quantize-attention{qk=i4 pv=f8 smooth-q=true smooth-k=true}",
    },
    Config {
        name: "int4 per-warp, smooth Q+K, pv f8",
        pipeline: "quantize-attention{qk=i4 pv=f8 granularity=per-warp smooth-q=true smooth-k=true}",
    },
    Config {
        name: "int4 per-thread, no smoothing, pv f8",
        pipeline: "quantize-attention{qk=i4 pv=f8 granularity=per-thread smooth-k=false}",
    },
    Config {
        name: "int4 per-thread, smooth K, pv f8",
        pipeline: "quantize-attention{qk=i4 pv=f8 granularity=per-thread smooth-k=true}",
    },
    Config {
        name: "int4 per-thread, smooth Q+K, pv f8",
        pipeline: "quantize-attention{qk=i4 pv=f8 granularity=per-thread smooth-q=true smooth-k=true}",
    },
    Config {
        name: "int4 per-thread, smooth Q+K, pv f8 online (2-4b)",
        pipeline: "quantize-attention{qk=i4 pv=f8 granularity=per-thread p=online smooth-q=true smooth-k=true}",
    },
    Config {
        name: "int4 per-token, no smoothing, pv f8",
        pipeline: "quantize-attention{qk=i4 pv=f8 q-block=1 k-block=1 smooth-k=false}",
    },
    Config {
        name: "int4 per-token, smooth K, pv f8",
        pipeline: "quantize-attention{qk=i4 pv=f8 q-block=1 k-block=1 smooth-k=true}",
    },
    Config {
        name: "int4 per-token, smooth Q+K, pv f8",
        pipeline: "quantize-attention{qk=i4 pv=f8 granularity=per-token smooth-q=true smooth-k=true}",
    },
    Config {
        name: "int4 per-token, smooth Q+K, pv f8 (graph smoothing)",
        pipeline: "smooth-attention{q=true k=true q-block=128},quantize-attention{qk=i4 pv=f8 q-block=1 k-block=1 smooth-k=false}",
    },
    Config {
        name: "int4 per-token, smooth Q+K, pv f16",
        pipeline: "quantize-attention{qk=i4 pv=f16 granularity=per-token smooth-q=true smooth-k=true}",
    },
];

/// The problem size and seed.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Tokens (queries = keys).
    pub n: usize,
    /// Head dim.
    pub d: usize,
    /// Generator seed.
    pub seed: u64,
}

impl Default for Setup {
    /// T1.3's size, seed 0.
    fn default() -> Self {
        Setup {
            n: 2048,
            d: 128,
            seed: 0,
        }
    }
}

/// One table cell: a configuration on a scenario.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Index into [`CONFIGS`].
    pub config: usize,
    /// Index into [`SCENARIOS`].
    pub scenario: usize,
    /// Against the float64 `attn.sdpa`.
    pub metrics: Metrics,
}

/// SplitMix64 with Box–Muller normals.
struct Gen(u64);

impl Gen {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// `count` distinct channels of `0..d`, each with a random sign.
    fn channels(&mut self, d: usize, count: usize) -> Vec<(usize, f64)> {
        let mut idx: Vec<usize> = (0..d).collect();
        for i in 0..count.min(d) {
            let j = i + (self.next_u64() % (d - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx.into_iter()
            .take(count)
            .map(|c| (c, if self.next_u64() & 1 == 0 { 1.0 } else { -1.0 }))
            .collect()
    }
}

fn ty(s: &Setup) -> TensorType {
    TensorType::new(vec![1, 1, s.n as i64, s.d as i64], Elem::F64)
}

/// The `[q, k, v]` inputs of each scenario.
pub fn inputs(s: &Setup) -> [Vec<Tensor>; 3] {
    let mut g = Gen(s.seed);
    let len = s.n * s.d;
    let mut draw = || (0..len).map(|_| g.normal()).collect::<Vec<f64>>();
    let (q, k, v) = (draw(), draw(), draw());
    let k_out = g.channels(s.d, 8);
    let q_out = g.channels(s.d, 8);
    let shift = |x: &[f64], chans: &[(usize, f64)], by: f64| {
        let mut x = x.to_vec();
        for &(c, sign) in chans {
            for t in 0..s.n {
                x[t * s.d + c] += sign * by;
            }
        }
        x
    };
    let t = |x: Vec<f64>| Tensor::new(ty(s), x);
    let k8 = shift(&k, &k_out, 8.0);
    [
        vec![t(q.clone()), t(k.clone()), t(v.clone())],
        vec![t(q.clone()), t(k8.clone()), t(v.clone())],
        vec![t(shift(&q, &q_out, 4.0)), t(k8), t(v)],
    ]
}

/// The one-op module `@attn(q, k, v) = attn.sdpa(q, k, v){scale = d^-1/2}`.
pub fn sdpa_module(s: &Setup) -> Module {
    let t = ty(s);
    let mut f = Func::new("attn", &[t.clone(), t.clone(), t.clone()]);
    let attrs = Attrs::new()
        .with("scale", Attr::Float(1.0 / (s.d as f64).sqrt(), Elem::F64))
        .with("causal", Attr::Bool(false));
    let args = f.params.clone();
    let op = f.append_op(
        Opcode::Attn(A::Sdpa),
        args,
        attrs,
        vec![t],
        Loc::name("t1.3"),
    );
    f.rets = vec![f.result(op)];
    Module { funcs: vec![f] }
}

/// Runs configuration `config` on every scenario; with `only`, only those scenarios.
pub fn measure(s: &Setup, configs: &[usize], scenarios: &[usize]) -> Result<Vec<Cell>, String> {
    let data = inputs(s);
    let base = sdpa_module(s);
    let none = Weights::new();
    let mut cells = Vec::new();
    for &sc in scenarios {
        let reference = run_func(&base.funcs[0], &data[sc], &none).map_err(|e| e.to_string())?;
        for &c in configs {
            let mut m = base.clone();
            let mut pm = PassManager::parse(CONFIGS[c].pipeline).map_err(|e| e.render())?;
            pm.run(&mut m, &mut PassCx::default())
                .map_err(|e| e.to_string())?;
            let out = run_func(&m.funcs[0], &data[sc], &none).map_err(|e| e.to_string())?;
            cells.push(Cell {
                config: c,
                scenario: sc,
                metrics: Metrics::of(&out[0].data, &reference[0].data),
            });
        }
    }
    Ok(cells)
}

/// The whole table: every configuration on every scenario.
pub fn table(s: &Setup) -> Result<Vec<Cell>, String> {
    let all: Vec<usize> = (0..CONFIGS.len()).collect();
    measure(s, &all, &[0, 1, 2])
}

/// Renders cells as a text table: one row per configuration, `cos % / rel L1 / RMSE` per
/// scenario, then the pipelines.
pub fn render(s: &Setup, cells: &[Cell]) -> String {
    let mut out = format!(
        "T1.3 (techniques.md §1.6): N={} d={} seed={}, float64 sdpa reference\ncells: cosine % / relative L1 / RMSE\n\n",
        s.n, s.d, s.seed
    );
    let w = CONFIGS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    out += &format!("{:w$}", "configuration");
    for sc in SCENARIOS {
        out += &format!(" | {sc:^26}");
    }
    out += "\n";
    for (ci, c) in CONFIGS.iter().enumerate() {
        if !cells.iter().any(|x| x.config == ci) {
            continue;
        }
        out += &format!("{:w$}", c.name);
        for si in 0..SCENARIOS.len() {
            match cells.iter().find(|x| x.config == ci && x.scenario == si) {
                Some(x) => {
                    let m = x.metrics;
                    out += &format!(
                        " | {:>8.3} / {:.3} / {:.2e}",
                        100.0 * m.cosine,
                        m.rel_l1,
                        m.rmse
                    )
                }
                None => out += &format!(" | {:^26}", "-"),
            }
        }
        out += "\n";
    }
    out += "\npipelines:\n";
    for c in CONFIGS {
        out += &format!("  {:w$}  {}\n", c.name, c.pipeline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name(name: &str) -> usize {
        CONFIGS
            .iter()
            .position(|c| c.name == name)
            .expect("a configuration of the table")
    }

    fn cos(cells: &[Cell], name: &str, scenario: usize) -> f64 {
        let c = by_name(name);
        cells
            .iter()
            .find(|x| x.config == c && x.scenario == scenario)
            .expect("measured")
            .metrics
            .cosine
    }

    const I8_NONE: &str = "int8 per-block, no smoothing, pv f16";
    const I8_K: &str = "int8 per-block, smooth K, pv f16 (v1)";
    const I8_K_F8: &str = "int8 per-block, smooth K, pv f8";
    const I8_TOK: &str = "int8 per-token, smooth K, pv f8";
    const I4_BLK_K: &str = "int4 per-block, smooth K, pv f16";
    const I4_TOK_NONE: &str = "int4 per-token, no smoothing, pv f8";
    const I4_TOK_K: &str = "int4 per-token, smooth K, pv f8";
    const I4_TOK_QK: &str = "int4 per-token, smooth Q+K, pv f8";
    const I4_TOK_QK_GRAPH: &str = "int4 per-token, smooth Q+K, pv f8 (graph smoothing)";
    const I8_THREAD: &str = "int8 per-thread, smooth K, pv f8";
    const I8_THREAD_ONLINE: &str = "int8 per-thread, smooth K, pv f8 online (2-8b)";
    const I4_BLK_K_F8: &str = "int4 per-block, smooth K, pv f8";
    const I4_BLK_QK: &str = "int4 per-block, smooth Q+K, pv f8";
    const I4_WARP_QK: &str = "int4 per-warp, smooth Q+K, pv f8";
    const I4_THREAD_NONE: &str = "int4 per-thread, no smoothing, pv f8";
    const I4_THREAD_K: &str = "int4 per-thread, smooth K, pv f8";
    const I4_THREAD_QK: &str = "int4 per-thread, smooth Q+K, pv f8";
    const I4_THREAD_QK_ONLINE: &str = "int4 per-thread, smooth Q+K, pv f8 online (2-4b)";

    /// The acceptance numbers at T1.3's size (N = 2048, d = 128, seed 0), on the
    /// hardest scenario (K and Q channel outliers): INT8 QK with K smoothing ≥ 0.9993;
    /// INT4 per-token with Q+K smoothing ≥ 0.975 and ≥ 0.1 above INT4 per-token without
    /// smoothing (techniques.md §1.6: 98.55 % vs 80.48 % per-thread); the per-thread rows
    /// within 0.5 points of §1.6's numbers.
    #[test]
    fn acceptance_at_t13_size() {
        let s = Setup::default();
        let configs = [
            by_name(I8_K),
            by_name(I4_TOK_QK),
            by_name(I4_TOK_NONE),
            by_name(I8_THREAD_ONLINE),
            by_name(I4_THREAD_QK_ONLINE),
            by_name(I4_THREAD_NONE),
        ];
        let cells = measure(&s, &configs, &[2]).unwrap();
        let (i8k, i4qk, i4none) = (
            cos(&cells, I8_K, 2),
            cos(&cells, I4_TOK_QK, 2),
            cos(&cells, I4_TOK_NONE, 2),
        );
        assert!(i8k >= 0.9993, "int8 smooth K: {i8k}");
        assert!(i4qk >= 0.975, "int4 per-token smooth Q+K: {i4qk}");
        assert!(
            i4qk - i4none >= 0.1,
            "int4 smoothing gain {i4qk} - {i4none}"
        );
        // SageAttention2's per-thread kernels (§1.6 rows 2-8b, 2-4b, INT4 no smoothing:
        // 99.930 %, 97.99 %, 80.48 % on this scenario), each within 0.5 points.
        for (name, want) in [
            (I8_THREAD_ONLINE, 0.99930),
            (I4_THREAD_QK_ONLINE, 0.9799),
            (I4_THREAD_NONE, 0.8048),
        ] {
            let got = cos(&cells, name, 2);
            assert!((got - want).abs() < 0.005, "{name}: {got} vs §1.6 {want}");
        }
        // (c) at full size: per-thread below per-token (same smoothing, same P·V).
        assert!(cos(&cells, I4_THREAD_QK_ONLINE, 2) < i4qk);
    }

    /// The qualitative invariants (a)-(d) of §1.6 on a smaller problem (N = 512), every
    /// scenario. (c) is the chain per-block ≤ per-warp ≤ per-thread ≤ per-token (cosine)
    /// among INT4 configurations that differ only in their granularity: smooth Q+K with
    /// P·V in f8, smooth K with P·V in f8, and (per-thread ≤ per-token) no smoothing.
    #[test]
    fn invariants_a_to_d() {
        let s = Setup {
            n: 512,
            d: 128,
            seed: 3,
        };
        let all: Vec<usize> = (0..CONFIGS.len()).collect();
        let cells = measure(&s, &all, &[0, 1, 2]).unwrap();
        let tol = 2e-4;
        let chains: [&[&str]; 3] = [
            &[I4_BLK_QK, I4_WARP_QK, I4_THREAD_QK, I4_TOK_QK],
            &[I4_BLK_K_F8, I4_THREAD_K, I4_TOK_K],
            &[I4_THREAD_NONE, I4_TOK_NONE],
        ];
        for sc in 0..3 {
            // (a) smoothing K never hurts.
            assert!(
                cos(&cells, I8_K, sc) >= cos(&cells, I8_NONE, sc) - tol,
                "(a) int8, scenario {sc}"
            );
            // Without K outliers, smoothing K moves INT4 per-thread by quantization noise
            // only (N = 512: 4e-4; §1.6 at N = 2048: 98.02 both), hence the wider margin.
            for (none, k) in [(I4_TOK_NONE, I4_TOK_K), (I4_THREAD_NONE, I4_THREAD_K)] {
                let (with, without) = (cos(&cells, k, sc), cos(&cells, none, sc));
                assert!(
                    with >= without - 1e-3,
                    "(a) {k}, scenario {sc}: {with} vs {without}"
                );
            }
            // (c) finer groups are at least as good; per-thread sits between per-block
            // and per-token, strictly (the groups differ a lot on these data).
            assert!(
                cos(&cells, I4_TOK_K, sc) >= cos(&cells, I4_BLK_K, sc) - tol,
                "(c) scenario {sc}"
            );
            for chain in chains {
                for w in chain.windows(2) {
                    let (coarse, fine) = (cos(&cells, w[0], sc), cos(&cells, w[1], sc));
                    assert!(
                        fine > coarse,
                        "(c) scenario {sc}: {} {coarse} vs {} {fine}",
                        w[0],
                        w[1]
                    );
                }
            }
            // (d) INT8 QK is ≥ 99.9 % everywhere.
            for name in [I8_NONE, I8_K, I8_K_F8, I8_THREAD, I8_THREAD_ONLINE, I8_TOK] {
                assert!(cos(&cells, name, sc) >= 0.999, "(d) {name}, scenario {sc}");
            }
            // Per-token Q smoothing in the op (`granularity=per-token smooth-q`, block 128)
            // is the graph-level smoothing composition, up to float reassociation.
            let (op, graph) = (cos(&cells, I4_TOK_QK, sc), cos(&cells, I4_TOK_QK_GRAPH, sc));
            assert!((op - graph).abs() < 1e-6, "scenario {sc}: {op} vs {graph}");
            // The online P̃ (T1.3) changes only the P rounding: within 1e-3 of normalized P.
            for (norm, online) in [
                (I8_THREAD, I8_THREAD_ONLINE),
                (I4_THREAD_QK, I4_THREAD_QK_ONLINE),
            ] {
                let (a, b) = (cos(&cells, norm, sc), cos(&cells, online, sc));
                assert!(a != b && (a - b).abs() < 1e-3, "{online} {sc}: {a} vs {b}");
            }
        }
        // (a) ... and fixes the K-outlier case: back to the no-outlier accuracy.
        for name in [I8_K, I4_TOK_K, I4_THREAD_K] {
            assert!(
                (cos(&cells, name, 1) - cos(&cells, name, 0)).abs() < 1e-6,
                "(a) {name}"
            );
        }
        for name in [I4_TOK_NONE, I4_THREAD_NONE] {
            assert!(
                cos(&cells, name, 1) < cos(&cells, name, 0) - 0.03,
                "K outliers hurt unsmoothed int4: {name}"
            );
        }
        // (b) smoothing Q matters only with Q outliers, and then decisively for INT4.
        for (k, qk) in [(I4_TOK_K, I4_TOK_QK), (I4_THREAD_K, I4_THREAD_QK)] {
            for sc in [0, 1] {
                let gain = cos(&cells, qk, sc) - cos(&cells, k, sc);
                assert!(gain.abs() < 2e-3, "(b) {qk} scenario {sc}: {gain}");
            }
            let gain = cos(&cells, qk, 2) - cos(&cells, k, 2);
            assert!(gain > 0.015, "(b) {qk} Q outliers: {gain}");
        }
    }

    /// The generator is seeded: same seed, same data; the scenarios differ exactly by
    /// constant channel shifts of ±8 (K, 8 channels) and ±4 (Q, 8 channels).
    #[test]
    fn scenarios_follow_the_recipe() {
        let s = Setup {
            n: 16,
            d: 32,
            seed: 5,
        };
        let (a, b) = (inputs(&s), inputs(&s));
        assert_eq!(a, b);
        let shifts = |x: &Tensor, y: &Tensor| -> Vec<f64> {
            (0..s.d).map(|c| y.data[c] - x.data[c]).collect()
        };
        for (x, y, by) in [(&a[0][1], &a[1][1], 8.0), (&a[1][0], &a[2][0], 4.0)] {
            let sh = shifts(x, y);
            assert_eq!(
                sh.iter().filter(|&&v| (v.abs() - by).abs() < 1e-12).count(),
                8
            );
            assert_eq!(sh.iter().filter(|&&v| v == 0.0).count(), s.d - 8);
            for t in 0..s.n {
                for (c, shift) in sh.iter().enumerate() {
                    let dlt = y.data[t * s.d + c] - x.data[t * s.d + c];
                    assert!((dlt - shift).abs() < 1e-12);
                }
            }
        }
        assert_eq!(a[1][2], a[2][2]);
        let mean: f64 = a[0][0].data.iter().sum::<f64>() / (s.n * s.d) as f64;
        let var: f64 = a[0][0].data.iter().map(|x| x * x).sum::<f64>() / (s.n * s.d) as f64;
        assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.15, "{mean} {var}");
    }

    /// The emulation agrees with an independent numpy implementation of the same
    /// semantics on the same seeded data (`scripts/t13_reference.py`, nine configurations
    /// × three scenarios, N = 256, d = 32; its per-warp / per-thread groups and online P̃
    /// are written from techniques.md §1.2 and §1.6 T1.3): cosine to 1e-8, relative L1 and RMSE to 1e-4
    /// relative. (Not tighter: the interpreter rounds f64 to f16 through f32 —
    /// `half::f16::from_f64` — so a few P values round differently from numpy's direct
    /// round-to-nearest-even; that moves relative L1 by ~5e-6 relative on the f16 rows.)
    #[test]
    fn agrees_with_numpy_reference() {
        let s = Setup {
            n: 256,
            d: 32,
            seed: 4,
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/t13_reference.py");
        let out = std::process::Command::new("python3")
            .args([script, "256", "32", "4"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}); run scripts/setup.sh"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
        // Every configuration of the script, on each of the three scenarios.
        let mut configs: Vec<usize> = lines.iter().map(|l| by_name(l[0])).collect();
        configs.sort_unstable();
        configs.dedup();
        assert!(configs.len() >= 9, "{text}");
        assert_eq!(lines.len(), 3 * configs.len(), "{text}");
        for name in [
            I8_THREAD_ONLINE,
            I4_WARP_QK,
            I4_THREAD_QK,
            I4_THREAD_QK_ONLINE,
        ] {
            assert!(configs.contains(&by_name(name)), "{name} is cross-checked");
        }
        let cells = measure(&s, &configs, &[0, 1, 2]).unwrap();
        for l in &lines {
            let (c, sc) = (by_name(l[0]), l[1].parse::<usize>().unwrap());
            let m = cells
                .iter()
                .find(|x| x.config == c && x.scenario == sc)
                .unwrap()
                .metrics;
            let want: Vec<f64> = l[2..].iter().map(|v| v.parse().unwrap()).collect();
            assert!((m.cosine - want[0]).abs() < 1e-8, "{l:?}: {m:?}");
            assert!((m.rel_l1 - want[1]).abs() <= 1e-4 * want[1], "{l:?}: {m:?}");
            assert!((m.rmse - want[2]).abs() <= 1e-4 * want[2], "{l:?}: {m:?}");
        }
    }

    #[test]
    #[ignore = "prints the whole table (slow)"]
    fn print_table() {
        let s = Setup::default();
        let cells = table(&s).unwrap();
        println!("{}", render(&s, &cells));
    }
}
