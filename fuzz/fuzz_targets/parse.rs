//! Fuzzes the text parser, the verifier and the printer.
//!
//! Any UTF-8 input goes to `parse_module`; errors must render. A module that parses is
//! verified (which runs every dialect's type inference), printed in both forms (custom and
//! generic, with locations, nothing elided) and reparsed, and must come back equal and
//! print the same; valid or not, a parsed module is well-formed and must round-trip.
//! Every panic is a bug. `tests/tests/properties.rs` (`fuzz_check`) runs the same steps
//! over the crashing inputs found so far.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lowbit_dialects::ir::parse::parse_module;
use lowbit_dialects::ir::print::{print_module_with, PrintOptions};
use lowbit_dialects::ir::verify::verify_module;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let m = match parse_module(src, "fuzz.mlir", 0) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.render(src, "fuzz.mlir", 0);
            return;
        }
    };
    let _ = print_module_with(&m, PrintOptions::default());
    // Verified or not, a parsed module is well-formed, so it must round-trip; the
    // verifier (and with it every dialect's inference) must not panic either.
    let _ = verify_module(&m);
    for generic in [false, true] {
        let opts = PrintOptions {
            generic,
            locs: true,
            elide: false,
        };
        let text = print_module_with(&m, opts);
        let back = parse_module(&text, "fuzz.mlir", 0)
            .unwrap_or_else(|e| panic!("printed module does not parse: {e}\n{text}"));
        // `Debug`, not `==`: NaN attributes are equal in text but not under `==`.
        assert_eq!(
            format!("{back:?}"),
            format!("{m:?}"),
            "round trip changed the module:\n{text}"
        );
        assert_eq!(
            print_module_with(&back, opts),
            text,
            "reprinting changed the text"
        );
    }
});
