//! File tests: every `tests/cases/**/*.mlir` runs its `// RUN:` line in-process and the
//! output is snapshotted (`tests/tests/snapshots/filetests__cases@<path>.snap`).
//!
//! Update snapshots with `INSTA_UPDATE=always cargo test -p lowbit-tests --test filetests`
//! (or `cargo insta review`) and read every changed snapshot like code. With `CI=true`,
//! insta writes nothing and fails on any mismatch or missing snapshot. One folder:
//! `INSTA_GLOB_FILTER='canonicalize/**'`.

use lowbit_compiler::cli::{split_input_file, Chunk};
use lowbit_dialects::ir::parse::parse_module;
use lowbit_dialects::ir::print::{print_module_with, PrintOptions};
use lowbit_tests::{all_cases, Case};

#[test]
fn cases() {
    insta::glob!("../cases", "**/*.mlir", |path| {
        let case = Case::load(path);
        let outcome = case.run();
        insta::with_settings!({ description => case.run_line(), omit_expression => true }, {
            insta::assert_snapshot!(outcome.snapshot());
        });
    });
}

#[test]
fn run_lines_are_lowbit_opt() {
    let cases = all_cases();
    assert!(!cases.is_empty(), "no case files found");
    for path in cases {
        let case = Case::load(&path);
        let cmd = case.command().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cmd.get(..2),
            Some(&["lowbit".to_string(), "opt".to_string()][..]),
            "{}: RUN line must be 'lowbit opt ...'",
            case.rel_path
        );
        assert!(
            cmd.iter().any(|w| w.contains(&case.rel_path)),
            "{}: RUN line must name the file as %s",
            case.rel_path
        );
    }
}

/// parse → print → parse → print is stable, in the custom and the generic form, for every
/// chunk of every case whose RUN line lacks `--verify-diagnostics`. In a case whose run
/// fails on purpose (its snapshot shows the errors), chunks that do not parse are skipped.
#[test]
fn cases_round_trip() {
    for path in all_cases() {
        let case = Case::load(&path);
        let cmd = case.command().unwrap_or_else(|e| panic!("{e}"));
        if cmd.iter().any(|w| w == "--verify-diagnostics") {
            continue;
        }
        let expect_all = case.run().code == 0;
        let split = cmd.iter().any(|w| w == "--split-input-file");
        let chunks = if split {
            split_input_file(&case.text)
        } else {
            vec![Chunk {
                text: &case.text,
                line_offset: 0,
            }]
        };
        for chunk in chunks {
            let where_ = format!(
                "{} (chunk at line {})",
                case.rel_path,
                chunk.line_offset + 1
            );
            let m = match parse_module(chunk.text, &case.rel_path, chunk.line_offset) {
                Ok(m) => m,
                Err(_) if !expect_all => continue,
                Err(e) => panic!(
                    "{where_}: {}",
                    e.render(chunk.text, &case.rel_path, chunk.line_offset)
                ),
            };
            for generic in [false, true] {
                let opts = PrintOptions {
                    generic,
                    locs: false,
                    elide: false,
                };
                let once = print_module_with(&m, opts);
                let m2 = parse_module(&once, "printed.mlir", 0).unwrap_or_else(|e| {
                    panic!(
                        "{where_}: printed form does not parse:\n{}",
                        e.render(&once, "printed.mlir", 0)
                    )
                });
                assert_eq!(
                    print_module_with(&m2, opts),
                    once,
                    "{where_}: printing is not stable (generic: {generic})"
                );
            }
        }
    }
}
