//! Text form: parse → print → parse round trips and parse errors.

use lowbit_dialects::ir::parse::parse_module;
use lowbit_dialects::ir::print::{print_module, print_module_with, PrintOptions};

const SRC: &str = r#"
// An attention head with a split.
func @attn(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>) -> (tensor<1x2x4x8xf32>, tensor<1x1x4x8xf32>) {
  %kt = graph.transpose %k {perm = array<i64: 0, 1, 3, 2>} : tensor<1x2x8x4xf32>
  %s = graph.matmul %q, %kt : tensor<1x2x4x4xf32>
  %c = graph.constant {value = dense<0.353553385> : tensor<f32>} : tensor<f32>
  %ss = graph.mul %s, %c : tensor<1x2x4x4xf32>
  %p = graph.softmax %ss {axis = -1 : i64} : tensor<1x2x4x4xf32>
  %o = graph.matmul %p, %v : tensor<1x2x4x8xf32> loc("node0")
  %a, %b = graph.split %o {axis = 1} : tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>
  %w = graph.weight {name = "w.0"} : tensor<8x8xf32>
  %l = graph.linear %a, %w : tensor<1x1x4x8xf32>
  return %o, %l
}
"#;

#[test]
fn custom_round_trip() {
    let m = parse_module(SRC, "t.mlir", 0).unwrap();
    let printed = print_module(&m);
    let m2 = parse_module(&printed, "p.mlir", 0).unwrap();
    assert_eq!(print_module(&m2), printed);
    assert!(
        printed.contains("%4 = graph.softmax %3 {axis = -1 : i64} : tensor<1x2x4x4xf32>"),
        "{printed}"
    );
    assert!(
        printed.contains("%6, %7 = graph.split %5 {axis = 1 : i64}"),
        "{printed}"
    );
}

#[test]
fn generic_round_trip_with_locs() {
    let m = parse_module(SRC, "t.mlir", 0).unwrap();
    let opts = PrintOptions {
        generic: true,
        locs: true,
        elide: false,
    };
    let g = print_module_with(&m, opts);
    assert!(g.contains("\"graph.matmul\"(%4, %arg2) : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> loc(\"node0\")"), "{g}");
    let m2 = parse_module(&g, "g.mlir", 0).unwrap();
    assert_eq!(m2, m, "generic form with locations must round-trip exactly");
}

#[test]
fn errors_point_at_the_text() {
    let bad = "func @f(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = graph.relux %a : tensor<2xf32>\n  return %0\n}\n";
    let e = parse_module(bad, "bad.mlir", 0).unwrap_err();
    assert_eq!(
        e.render(bad, "bad.mlir", 0),
        "bad.mlir:2:8: error: unknown op 'graph.relux'; did you mean 'graph.relu'?\n  %0 = graph.relux %a : tensor<2xf32>\n       ^^^^^^^^^^^\n"
    );
    let undef = "func @f(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = graph.relu %b : tensor<2xf32>\n  return %0\n}\n";
    let e = parse_module(undef, "u.mlir", 0).unwrap_err();
    assert_eq!(e.message, "use of undefined value '%b'");
    for trunc in [
        &SRC[..SRC.len() / 2],
        "func @f(",
        "func",
        "module {",
        "%0 = ",
    ] {
        assert!(
            parse_module(trunc, "t.mlir", 0).is_err(),
            "{trunc:?} should not parse"
        );
    }
}
