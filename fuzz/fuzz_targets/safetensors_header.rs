//! Fuzzes the safetensors reader: header validation, then reading every tensor.
//!
//! The input is written to a per-process temporary file and opened with
//! `WeightStore::open`, which maps it and validates the header (length, JSON, dtypes,
//! shapes, offsets inside the data, no overlaps). A file that validates must then hand out
//! every tensor without reading out of bounds. Every panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lowbit_compiler::import::WeightStore;

fuzz_target!(|data: &[u8]| {
    let path =
        std::env::temp_dir().join(format!("lowbit-fuzz-st-{}.safetensors", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(store) = WeightStore::open(&path) else {
        return;
    };
    let names: Vec<String> = store.names().map(String::from).collect();
    for name in names {
        let e = store.entry(&name).expect("names come from the store");
        // Bounded by the input's size: the header check guarantees it.
        assert!(e.range.end <= data.len());
        let t = store.tensor(&name).expect("a validated tensor reads");
        assert_eq!(t.data.len(), e.shape.iter().product::<usize>());
    }
});
