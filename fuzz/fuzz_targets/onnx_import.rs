//! Fuzzes the ONNX importer: any byte string goes to `lowbit_compiler::onnx::import::
//! import_bytes` (protobuf decoding, opsets, initializers, symbolic dims, every node
//! mapping, constant folding) and must give a module or an error whose message renders,
//! never a panic. External data is confined to a directory that does not exist, so no
//! input reads files. A module that imports is verified (the verifier runs every dialect's
//! type inference), which must not panic either. `tests/tests/onnx_contrib.rs`
//! (`fuzz_regressions_import_cleanly`) replays the crashing inputs found so far.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lowbit_compiler::onnx::import::import_bytes;
use lowbit_compiler::onnx::{DimBindings, ImportOptions};
use lowbit_dialects::ir::verify::verify_module;

fuzz_target!(|data: &[u8]| {
    let mut dims = DimBindings::new();
    for name in ["batch", "batch_size", "sequence", "sequence_length", "N"] {
        dims.insert(name.to_string(), 2);
    }
    let options = ImportOptions {
        dims,
        assume_no_nan: data.first().is_some_and(|b| b & 1 == 1),
    };
    let dir = Path::new("/nonexistent/lowbit-fuzz");
    match import_bytes(data, "fuzz.onnx", dir, &options) {
        Ok(imported) => {
            let _ = verify_module(&imported.module);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
