//! Fuzzes the GGUF reader: `parse_gguf` on the raw bytes, then, for a file that
//! validates, every field of every tensor through the storage-format registry (the
//! derived tensors the importer hands the IR). Every panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lowbit_compiler::import::gguf::{parse_gguf, GgufFile, GgufPart, PartKind};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = parse_gguf(data) else {
        return;
    };
    for info in header.tensors.values() {
        assert!(info.range.end <= data.len());
    }
    let path = std::env::temp_dir().join(format!("lowbit-fuzz-{}.gguf", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let file = GgufFile::open(&path).expect("bytes that parse open");
    for name in &header.order {
        let info = &header.tensors[name];
        let (rows, _) = info.matrix();
        for kind in [
            PartKind::Values,
            PartKind::Codes,
            PartKind::Scale,
            PartKind::Min,
            PartKind::SubScale,
            PartKind::SubMin,
        ] {
            // Fields the format lacks are errors; the rest must read. Reversed rows
            // exercise the permutation path.
            let perm = (rows <= 4096).then(|| (0..rows).rev().collect());
            let _ = file.part_tensor(&GgufPart {
                tensor: name.clone(),
                kind,
                perm,
            });
        }
    }
});
