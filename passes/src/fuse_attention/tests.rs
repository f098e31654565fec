//! Tests of `fuse-attention`: fixed chains (exporter patterns, negatives) and a property
//! test over generated chains, each checked against the interpreter in float64.

use crate::testing::{body, max_rel_l1, module, run};

/// Runs `fuse-attention` on `src`, checks the stats line, and checks that the output
/// agrees with the unfused function on random inputs (float64, ≤ 1e-9 relative L1).
fn fuses(src: &str, stats: &str) -> String {
    let (m, s) = run("fuse-attention", src);
    assert_eq!(s, format!("fuse-attention: {stats}\n"), "{}", body(&m));
    let err = max_rel_l1(&module(src), &m, 0..3);
    assert!(err <= 1e-9, "relative L1 {err:e}\n{}", body(&m));
    body(&m)
}

fn unchanged(src: &str) {
    let (m, s) = run("fuse-attention", src);
    assert_eq!(s, "fuse-attention: fused=0 gqa=0 causal=0 masked=0\n");
    assert_eq!(body(&m), body(&module(src)));
}

#[test]
fn basic_chain_with_scaled_scores() {
    let src = r#"
func @f(%q: tensor<1x2x3x4xf64>, %k: tensor<1x2x5x4xf64>, %v: tensor<1x2x5x3xf64>) -> tensor<1x2x3x3xf64> {
  %kt = graph.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x2x4x5xf64>
  %s = graph.matmul %q, %kt : tensor<1x2x3x5xf64>
  %c = graph.constant {value = dense<0.125> : tensor<f64>} : tensor<f64>
  %ss = graph.mul %s, %c : tensor<1x2x3x5xf64>
  %p = graph.softmax %ss {axis = -1 : i64} : tensor<1x2x3x5xf64>
  %o = graph.matmul %p, %v : tensor<1x2x3x3xf64>
  return %o
}"#;
    let out = fuses(src, "fused=1 gqa=0 causal=0 masked=0");
    assert_eq!(
        out,
        "%0 = attn.sdpa %arg0, %arg1, %arg2 {causal = false, scale = 0.125 : f32} : tensor<1x2x3x3xf64>\nreturn %0"
    );
}

#[test]
fn bert_export_pattern() {
    // As the ONNX importer brings in the MiniLM export: heads split by reshape and
    // transpose (k by perm [0, 2, 3, 1]), div by sqrt(d), an additive mask built from
    // the attention mask, heads merged after.
    let src = r#"
func @f(%x: tensor<1x5x8xf64>, %am: tensor<1x5xf64>) -> tensor<1x5x8xf64> {
  %q0 = graph.reshape %x : tensor<1x5x2x4xf64>
  %q = graph.transpose %q0 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x5x4xf64>
  %k0 = graph.reshape %x : tensor<1x5x2x4xf64>
  %kt = graph.transpose %k0 {perm = array<i64: 0, 2, 3, 1>} : tensor<1x2x4x5xf64>
  %v = graph.transpose %k0 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x5x4xf64>
  %m0 = graph.reshape %am : tensor<1x1x1x5xf64>
  %one = graph.constant {value = dense<1.0> : tensor<f64>} : tensor<f64>
  %m1 = graph.sub %one, %m0 : tensor<1x1x1x5xf64>
  %low = graph.constant {value = dense<-10000.0> : tensor<f64>} : tensor<f64>
  %mask = graph.mul %m1, %low : tensor<1x1x1x5xf64>
  %s = graph.matmul %q, %kt : tensor<1x2x5x5xf64>
  %c = graph.constant {value = dense<2.0> : tensor<f64>} : tensor<f64>
  %ss = graph.div %s, %c : tensor<1x2x5x5xf64>
  %sm = graph.add %ss, %mask : tensor<1x2x5x5xf64>
  %p = graph.softmax %sm {axis = 3 : i64} : tensor<1x2x5x5xf64>
  %o = graph.matmul %p, %v : tensor<1x2x5x4xf64>
  %o1 = graph.transpose %o {perm = array<i64: 0, 2, 1, 3>} : tensor<1x5x2x4xf64>
  %o2 = graph.reshape %o1 : tensor<1x5x8xf64>
  return %o2
}"#;
    let out = fuses(src, "fused=1 gqa=0 causal=0 masked=1");
    assert!(
        out.contains("attn.sdpa %1, %9, %3, %8 {causal = false, scale = 0.5 : f32}"),
        "{out}"
    );
    assert!(
        out.contains("%9 = graph.transpose %2 {perm = array<i64: 0, 2, 1, 3>}"),
        "{out}"
    );
    assert!(!out.contains("softmax"), "{out}");
}

#[test]
fn negative_cases_are_left_alone() {
    let head = "func @f(%q: tensor<1x2x3x4xf64>, %k: tensor<1x2x4x3xf64>, %v: tensor<1x2x3x3xf64>, %t: tensor<f64>) -> ";
    // The scores have another use.
    unchanged(&format!(
        "{head}(tensor<1x2x3x3xf64>, tensor<1x2x3x3xf64>) {{
  %s = graph.matmul %q, %k : tensor<1x2x3x3xf64>
  %p = graph.softmax %s {{axis = -1 : i64}} : tensor<1x2x3x3xf64>
  %o = graph.matmul %p, %v : tensor<1x2x3x3xf64>
  return %o, %s
}}"
    ));
    // The probabilities have another use.
    unchanged(&format!(
        "{head}(tensor<1x2x3x3xf64>, tensor<1x2x3x3xf64>) {{
  %s = graph.matmul %q, %k : tensor<1x2x3x3xf64>
  %p = graph.softmax %s {{axis = -1 : i64}} : tensor<1x2x3x3xf64>
  %o = graph.matmul %p, %v : tensor<1x2x3x3xf64>
  %e = graph.exp %p : tensor<1x2x3x3xf64>
  return %o, %e
}}"
    ));
    // Softmax over the query axis.
    unchanged(&format!(
        "{head}tensor<1x2x3x3xf64> {{
  %s = graph.matmul %q, %k : tensor<1x2x3x3xf64>
  %p = graph.softmax %s {{axis = 2 : i64}} : tensor<1x2x3x3xf64>
  %o = graph.matmul %p, %v : tensor<1x2x3x3xf64>
  return %o
}}"
    ));
    // A scale that is not a constant.
    unchanged(&format!(
        "{head}tensor<1x2x3x3xf64> {{
  %s = graph.matmul %q, %k : tensor<1x2x3x3xf64>
  %ss = graph.mul %s, %t : tensor<1x2x3x3xf64>
  %p = graph.softmax %ss {{axis = -1 : i64}} : tensor<1x2x3x3xf64>
  %o = graph.matmul %p, %v : tensor<1x2x3x3xf64>
  return %o
}}"
    ));
    // A scale applied after the mask (it would scale the mask too).
    unchanged(&format!(
        "{head}tensor<1x2x3x3xf64> {{
  %c = graph.constant {{value = dense<0.5> : tensor<f64>}} : tensor<f64>
  %s = graph.matmul %q, %k : tensor<1x2x3x3xf64>
  %sm = graph.add %s, %t : tensor<1x2x3x3xf64>
  %ss = graph.mul %sm, %c : tensor<1x2x3x3xf64>
  %p = graph.softmax %ss {{axis = -1 : i64}} : tensor<1x2x3x3xf64>
  %o = graph.matmul %p, %v : tensor<1x2x3x3xf64>
  return %o
}}"
    ));
    // A per-head (non-splat) scale.
    unchanged(&format!(
        "{head}tensor<1x2x3x3xf64> {{
  %c = graph.constant {{value = dense<[[[0.5]], [[0.25]]]> : tensor<2x1x1xf64>}} : tensor<2x1x1xf64>
  %s = graph.matmul %q, %k : tensor<1x2x3x3xf64>
  %ss = graph.mul %s, %c : tensor<1x2x3x3xf64>
  %p = graph.softmax %ss {{axis = -1 : i64}} : tensor<1x2x3x3xf64>
  %o = graph.matmul %p, %v : tensor<1x2x3x3xf64>
  return %o
}}"
    ));
}

/// How the scale is applied in a generated chain.
#[derive(Clone, Copy, Debug)]
enum ScaleAt {
    ScoresMul,
    ScoresDiv,
    QAndK,
    QAndKt,
}

/// How K/V heads relate to query heads in a generated chain.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kv {
    Mha,
    Expand,
    Concat5,
    Gather,
    MqaBroadcast,
    MqaConcat,
}

/// Mask of a generated chain.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mask {
    None,
    Padding,
    Causal,
    Full,
}

/// A decomposed attention over `q [2, 4, 3, 4]`, `k [2, G, 5, 4]`, `v [2, G, 5, 3]`
/// written the way `at`, `kv`, `mask` and `bnhd` (k arrives `[B, M, G·d]`) say.
fn chain(at: ScaleAt, kv: Kv, mask: Mask, bnhd: bool) -> String {
    let (b, h, n, m, d, dv) = (2, 4, 3, 5, 4, 3);
    let g = match kv {
        Kv::Mha => h,
        Kv::MqaBroadcast | Kv::MqaConcat => 1,
        _ => 2,
    };
    let r = h / g;
    let t = |s: &[i64]| {
        let dims: Vec<String> = s.iter().map(|x| x.to_string()).collect();
        format!("tensor<{}xf64>", dims.join("x"))
    };
    let mut params = vec![format!("%q: {}", t(&[b, h, n, d]))];
    let mut lines = Vec::new();
    if bnhd {
        params.push(format!("%kin: {}", t(&[b, m, g * d])));
        lines.push(format!("%kr = graph.reshape %kin : {}", t(&[b, m, g, d])));
        lines.push(format!(
            "%k = graph.transpose %kr {{perm = array<i64: 0, 2, 1, 3>}} : {}",
            t(&[b, g, m, d])
        ));
    } else {
        params.push(format!("%k: {}", t(&[b, g, m, d])));
    }
    params.push(format!("%v: {}", t(&[b, g, m, dv])));
    match mask {
        Mask::Padding => params.push(format!("%mask: {}", t(&[b, 1, 1, m]))),
        Mask::Full => params.push(format!("%mask: {}", t(&[b, h, n, m]))),
        Mask::None | Mask::Causal => {}
    }
    let repeat = |lines: &mut Vec<String>, x: &str, e: i64| -> String {
        let full = t(&[b, h, m, e]);
        match kv {
            Kv::Mha | Kv::MqaBroadcast => x.to_string(),
            Kv::Expand | Kv::Concat5 => {
                lines.push(format!(
                    "%{x}5 = graph.reshape %{x} : {}",
                    t(&[b, g, 1, m, e])
                ));
                if kv == Kv::Expand {
                    let z = t(&[b, g, r, m, e]);
                    lines.push(format!(
                        "%{x}z = graph.constant {{value = dense<0.0> : {z}}} : {z}"
                    ));
                    lines.push(format!("%{x}e = graph.add %{x}5, %{x}z : {z}"));
                } else {
                    let ins = vec![format!("%{x}5"); r as usize].join(", ");
                    lines.push(format!(
                        "%{x}e = graph.concat {ins} {{axis = 2 : i64}} : {}",
                        t(&[b, g, r, m, e])
                    ));
                }
                lines.push(format!("%{x}rep = graph.reshape %{x}e : {full}"));
                format!("{x}rep")
            }
            Kv::Gather => {
                lines.push(format!(
                    "%{x}i = graph.constant {{value = dense<[0, 0, 1, 1]> : tensor<4xi64>}} : tensor<4xi64>"
                ));
                lines.push(format!(
                    "%{x}rep = graph.gather %{x}, %{x}i {{axis = 1 : i64}} : {full}"
                ));
                format!("{x}rep")
            }
            Kv::MqaConcat => {
                let ins = vec![format!("%{x}"); h as usize].join(", ");
                lines.push(format!(
                    "%{x}rep = graph.concat {ins} {{axis = 1 : i64}} : {full}"
                ));
                format!("{x}rep")
            }
        }
    };
    let k = repeat(&mut lines, "k", d);
    let v = repeat(&mut lines, "v", dv);
    let kh = if kv == Kv::MqaBroadcast { 1 } else { h };
    lines.push("%c = graph.constant {value = dense<0.5> : tensor<f64>} : tensor<f64>".into());
    lines.push(
        "%c2 = graph.constant {value = dense<0.7071067811865476> : tensor<f64>} : tensor<f64>"
            .into(),
    );
    let mut qv = "q".to_string();
    let mut kv_ = k.clone();
    match at {
        ScaleAt::QAndK => {
            lines.push(format!("%qs = graph.mul %q, %c2 : {}", t(&[b, h, n, d])));
            lines.push(format!("%ks = graph.mul %c2, %{k} : {}", t(&[b, kh, m, d])));
            qv = "qs".into();
            kv_ = "ks".into();
        }
        ScaleAt::QAndKt => {
            lines.push(format!("%qs = graph.mul %q, %c2 : {}", t(&[b, h, n, d])));
            qv = "qs".into();
        }
        _ => {}
    }
    lines.push(format!(
        "%kt0 = graph.transpose %{kv_} {{perm = array<i64: 0, 1, 3, 2>}} : {}",
        t(&[b, kh, d, m])
    ));
    let mut kt = "kt0".to_string();
    if let ScaleAt::QAndKt = at {
        lines.push(format!("%kt = graph.mul %kt0, %c2 : {}", t(&[b, kh, d, m])));
        kt = "kt".into();
    }
    let st = t(&[b, h, n, m]);
    lines.push(format!("%s = graph.matmul %{qv}, %{kt} : {st}"));
    let mut s = "s".to_string();
    match at {
        ScaleAt::ScoresMul => {
            lines.push(format!("%ss = graph.mul %c, %s : {st}"));
            s = "ss".into();
        }
        ScaleAt::ScoresDiv => {
            lines.push(
                "%c4 = graph.constant {value = dense<4.0> : tensor<1x1x1x1xf64>} : tensor<1x1x1x1xf64>"
                    .to_string(),
            );
            lines.push(format!("%ss = graph.div %s, %c4 : {st}"));
            s = "ss".into();
        }
        _ => {}
    }
    match mask {
        Mask::Padding | Mask::Full => {
            lines.push(format!("%sm = graph.add %mask, %{s} : {st}"));
            s = "sm".into();
        }
        Mask::Causal => {
            lines.push(format!("%cm = graph.causal_mask : {}", t(&[n, m])));
            lines.push(format!("%sm = graph.add %{s}, %cm : {st}"));
            s = "sm".into();
        }
        Mask::None => {}
    }
    lines.push(format!(
        "%p = graph.softmax %{s} {{axis = -1 : i64}} : {st}"
    ));
    let ot = t(&[b, h, n, dv]);
    lines.push(format!("%o = graph.matmul %p, %{v} : {ot}"));
    format!(
        "func @f({}) -> {ot} {{\n  {}\n  return %o\n}}\n",
        params.join(", "),
        lines.join("\n  ")
    )
}

/// Property: every generated chain fuses into exactly one sdpa (GQA forms with
/// `Hkv < H`, the causal mask as `causal = true`), nothing of the softmax chain is
/// left, and the interpreter agrees before and after to 1e-9 relative (float64) on
/// random inputs.
#[test]
fn generated_chains_fuse_and_agree() {
    let ats = [
        ScaleAt::ScoresMul,
        ScaleAt::ScoresDiv,
        ScaleAt::QAndK,
        ScaleAt::QAndKt,
    ];
    let kvs = [
        Kv::Mha,
        Kv::Expand,
        Kv::Concat5,
        Kv::Gather,
        Kv::MqaBroadcast,
        Kv::MqaConcat,
    ];
    let masks = [Mask::None, Mask::Padding, Mask::Causal, Mask::Full];
    let mut n = 0;
    for at in ats {
        for kv in kvs {
            for mask in masks {
                for bnhd in [false, true] {
                    let src = chain(at, kv, mask, bnhd);
                    let (m, stats) = run("fuse-attention", &src);
                    let gqa = u8::from(kv != Kv::Mha);
                    let causal = u8::from(mask == Mask::Causal);
                    let masked = u8::from(matches!(mask, Mask::Padding | Mask::Full));
                    assert_eq!(
                        stats,
                        format!(
                            "fuse-attention: fused=1 gqa={gqa} causal={causal} masked={masked}\n"
                        ),
                        "{at:?} {kv:?} {mask:?} {bnhd}\n{src}\n{}",
                        body(&m)
                    );
                    let out = body(&m);
                    assert!(!out.contains("softmax") && !out.contains("matmul"), "{out}");
                    let hkv = match kv {
                        Kv::Mha => 4,
                        Kv::MqaBroadcast | Kv::MqaConcat => 1,
                        _ => 2,
                    };
                    let f = &m.funcs[0];
                    let sdpa = f
                        .body
                        .iter()
                        .find(|&&o| f.ops[o].opcode.name() == "attn.sdpa");
                    let sdpa = &f.ops[*sdpa.expect("one sdpa")];
                    assert_eq!(f.ty(sdpa.args[1]).shape[1], hkv, "{at:?} {kv:?}: {out}");
                    assert_eq!(f.ty(sdpa.args[2]).shape[1], hkv, "{at:?} {kv:?}: {out}");
                    let err = max_rel_l1(&module(&src), &m, 0..2);
                    assert!(err <= 1e-9, "{at:?} {kv:?} {mask:?} {bnhd}: {err:e}\n{out}");
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 192);
}

#[test]
fn rank_three_chains_are_promoted() {
    let src = r#"
func @f(%q: tensor<6x3x4xf64>, %k: tensor<6x5x4xf64>, %v: tensor<6x5x2xf64>, %mask: tensor<3x5xf64>) -> tensor<6x3x2xf64> {
  %kt = graph.transpose %k {perm = array<i64: 0, 2, 1>} : tensor<6x4x5xf64>
  %s = graph.matmul %q, %kt : tensor<6x3x5xf64>
  %sm = graph.add %s, %mask : tensor<6x3x5xf64>
  %p = graph.softmax %sm {axis = 2 : i64} : tensor<6x3x5xf64>
  %o = graph.matmul %p, %v : tensor<6x3x2xf64>
  return %o
}"#;
    let out = fuses(src, "fused=1 gqa=0 causal=0 masked=1");
    assert_eq!(
        out,
        "%0 = graph.reshape %arg0 : tensor<1x6x3x4xf64>\n\
         %1 = graph.reshape %arg1 : tensor<1x6x5x4xf64>\n\
         %2 = graph.reshape %arg2 : tensor<1x6x5x2xf64>\n\
         %3 = attn.sdpa %0, %1, %2, %arg3 {causal = false, scale = 1.0 : f32} : tensor<1x6x3x2xf64>\n\
         %4 = graph.reshape %3 : tensor<6x3x2xf64>\n\
         return %4"
    );
}

#[test]
fn pre_transposed_key_and_two_layers() {
    // `kt` arrives already transposed (a parameter): k = transpose(kt) is inserted.
    // Two chains in one function both fuse.
    let src = r#"
func @f(%q: tensor<1x1x3x4xf64>, %kt: tensor<1x1x4x5xf64>, %v: tensor<1x1x5x4xf64>) -> tensor<1x1x3x4xf64> {
  %s = graph.matmul %q, %kt : tensor<1x1x3x5xf64>
  %p = graph.softmax %s {axis = -1 : i64} : tensor<1x1x3x5xf64>
  %o = graph.matmul %p, %v : tensor<1x1x3x4xf64>
  %s2 = graph.matmul %o, %kt : tensor<1x1x3x5xf64>
  %p2 = graph.softmax %s2 {axis = -1 : i64} : tensor<1x1x3x5xf64>
  %o2 = graph.matmul %p2, %v : tensor<1x1x3x4xf64>
  return %o2
}"#;
    let out = fuses(src, "fused=2 gqa=0 causal=0 masked=0");
    assert_eq!(out.matches("attn.sdpa").count(), 2, "{out}");
}
