//! The per-dialect case files in `tests/cases/<dialect>/`.
//!
//! - every `ops.mlir` chunk parses, verifies, is written exactly as the printer prints it,
//!   and round-trips through the custom form and the generic form with locations;
//! - every `invalid.mlir` chunk parses and fails verification with exactly one error, and
//!   no two chunks of a file report the same message;
//! - every op of each dialect's table appears in its `ops.mlir`, so the case file cannot
//!   fall behind the table.
//!
//! Files are split on lines that are exactly `// -----`, as `lowbit opt --split-input-file`
//! does; each chunk is parsed with its line offset so locations name lines of the file.

use std::collections::BTreeSet;
use std::path::PathBuf;

use lowbit_dialects::dialect::Opcode;
use lowbit_dialects::ir::parse::parse_module;
use lowbit_dialects::ir::print::{print_module, print_module_with, PrintOptions};
use lowbit_dialects::ir::verify::{verify_module, VerifyError};
use lowbit_dialects::ir::Module;
use lowbit_dialects::{attn, graph, kernel, lowbit, rot};

const OPS_RUN: &str = "// RUN: lowbit opt %s --split-input-file";
const INVALID_RUN: &str = "// RUN: lowbit opt %s --split-input-file --verify-diagnostics";

/// One `// -----`-separated piece of a case file.
struct Chunk {
    /// Its text.
    text: String,
    /// Lines of the file before it.
    line_offset: u32,
}

fn read_case(dialect: &str, file: &str) -> (String, String) {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "tests",
        "cases",
        dialect,
        file,
    ]
    .iter()
    .collect();
    let name = format!("tests/cases/{dialect}/{file}");
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {name}: {e}"));
    (name, src)
}

fn chunks(src: &str) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut start = 0u32;
    for (i, line) in src.lines().enumerate() {
        if line == "// -----" {
            out.push(Chunk {
                text: std::mem::take(&mut text),
                line_offset: start,
            });
            start = i as u32 + 1;
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    out.push(Chunk {
        text,
        line_offset: start,
    });
    out
}

fn parse_chunk(name: &str, c: &Chunk) -> Module {
    parse_module(&c.text, name, c.line_offset)
        .unwrap_or_else(|e| panic!("{}", e.render(&c.text, name, c.line_offset)))
}

fn show_errors(errs: &[VerifyError]) -> String {
    errs.iter().map(|e| format!("  {e}\n")).collect()
}

/// The chunk without comment and blank lines: what the printer should give back.
fn code_lines(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Checks `ops.mlir` of `dialect` and returns every op it uses.
fn check_ops(dialect: &str) -> BTreeSet<Opcode> {
    let (name, src) = read_case(dialect, "ops.mlir");
    assert_eq!(
        src.lines().next(),
        Some(OPS_RUN),
        "{name}: first line must be the RUN line"
    );
    let mut used = BTreeSet::new();
    for c in chunks(&src) {
        let m = parse_chunk(&name, &c);
        let at = format!("{name}:{}", c.line_offset + 1);
        assert!(!m.funcs.is_empty(), "{at}: chunk holds no function");
        if let Err(errs) = verify_module(&m) {
            panic!("{at}: chunk does not verify:\n{}", show_errors(&errs));
        }
        let printed = print_module(&m);
        assert_eq!(
            printed,
            code_lines(&c.text),
            "{at}: chunk is not in printed form"
        );
        let again = parse_module(&printed, "printed.mlir", 0).expect("printed form parses");
        assert_eq!(
            print_module(&again),
            printed,
            "{at}: custom form does not round-trip"
        );
        let opts = PrintOptions {
            generic: true,
            locs: true,
            elide: false,
        };
        let generic = print_module_with(&m, opts);
        let back = parse_module(&generic, "generic.mlir", 0)
            .unwrap_or_else(|e| panic!("{at}: {}", e.render(&generic, "generic.mlir", 0)));
        assert_eq!(
            back, m,
            "{at}: generic form does not round-trip:\n{generic}"
        );
        for f in &m.funcs {
            used.extend(f.body.iter().map(|&op| f.ops[op].opcode));
        }
    }
    used
}

/// Checks `invalid.mlir` of `dialect`; returns each case's single message.
fn check_invalid(dialect: &str) -> Vec<String> {
    let (name, src) = read_case(dialect, "invalid.mlir");
    assert_eq!(
        src.lines().next(),
        Some(INVALID_RUN),
        "{name}: first line must be the RUN line"
    );
    let mut messages = Vec::new();
    for c in chunks(&src) {
        let m = parse_chunk(&name, &c);
        let at = format!("{name}:{}", c.line_offset + 1);
        assert!(
            c.text
                .lines()
                .any(|l| l.starts_with("// ") && !l.starts_with("// RUN:")),
            "{at}: each case needs a comment saying what it checks"
        );
        let errs = match verify_module(&m) {
            Ok(()) => panic!("{at}: case verifies but should fail"),
            Err(errs) => errs,
        };
        assert_eq!(
            errs.len(),
            1,
            "{at}: expected exactly one error, found:\n{}",
            show_errors(&errs)
        );
        let msg = errs[0].message.clone();
        assert!(
            !messages.contains(&msg),
            "{at}: message repeats an earlier case: {msg}"
        );
        messages.push(msg);
    }
    messages
}

fn check_coverage(dialect: &str, all: impl Iterator<Item = Opcode>) {
    let used = check_ops(dialect);
    let missing: Vec<_> = all
        .filter(|op| !used.contains(op))
        .map(|op| op.name())
        .collect();
    assert!(
        missing.is_empty(),
        "tests/cases/{dialect}/ops.mlir does not use: {}",
        missing.join(", ")
    );
}

macro_rules! dialect_cases {
    ($dialect:ident, $variant:ident, $ops:ident, $invalid:ident, $cover:ident) => {
        #[test]
        fn $ops() {
            check_ops(stringify!($dialect));
        }

        #[test]
        fn $invalid() {
            for m in check_invalid(stringify!($dialect)) {
                println!("{m}");
            }
        }

        #[test]
        fn $cover() {
            check_coverage(
                stringify!($dialect),
                $dialect::Op::ALL.iter().map(|&o| Opcode::$variant(o)),
            );
        }
    };
}

dialect_cases!(
    graph,
    Graph,
    graph_ops_round_trip,
    graph_invalid_fails,
    graph_ops_cover_table
);
dialect_cases!(
    lowbit,
    Lowbit,
    lowbit_ops_round_trip,
    lowbit_invalid_fails,
    lowbit_ops_cover_table
);
dialect_cases!(
    attn,
    Attn,
    attn_ops_round_trip,
    attn_invalid_fails,
    attn_ops_cover_table
);
dialect_cases!(
    rot,
    Rot,
    rot_ops_round_trip,
    rot_invalid_fails,
    rot_ops_cover_table
);
dialect_cases!(
    kernel,
    Kernel,
    kernel_ops_round_trip,
    kernel_invalid_fails,
    kernel_ops_cover_table
);

/// An `f32` attribute written with more digits than `f32` holds still round-trips: the
/// parser rounds it to `f32`, the precision it prints in.
#[test]
fn f32_attributes_round_trip() {
    let src = "func @f(%arg0: tensor<1x1x2x8xf32>) -> tensor<1x1x2x8xf32> {\n  %0 = attn.sdpa %arg0, %arg0, %arg0 {causal = false, scale = 0.35355339059327373 : f32} : tensor<1x1x2x8xf32>\n  return %0\n}\n";
    let m = parse_module(src, "f.mlir", 0).expect("parses");
    for generic in [false, true] {
        let text = print_module_with(
            &m,
            PrintOptions {
                generic,
                locs: true,
                elide: false,
            },
        );
        assert_eq!(
            parse_module(&text, "p.mlir", 0).expect("printed form parses"),
            m,
            "{text}"
        );
    }
}
