//! Tensor-file tests: npz and safetensors round trips, files written or read by
//! the format libraries directly (so the runtime's reader and writer are each
//! checked against an independent implementation), and every error path.

use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};
use lowbit_runtime::io::{read_npz, read_safetensors, write_npz};
use lowbit_runtime::{read_tensors, write_tensors, DType, HostTensor, RuntimeError, TensorMap};
use npyz::WriterBuilder;

fn map(entries: Vec<(&str, HostTensor)>) -> TensorMap {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Tensors of every type npz holds, including a scalar and an empty tensor.
fn npz_tensors() -> TensorMap {
    map(vec![
        (
            "a/f32",
            HostTensor::from_f32([2, 3], &[1.0, -2.0, 3.5, 0.0, 1e-8, -7.25]).unwrap(),
        ),
        (
            "f64",
            HostTensor::from_values([3], &[0.1f64, -1e300, 2.0]).unwrap(),
        ),
        (
            "f16",
            HostTensor::from_values([2], &[f16::from_f32(0.5), f16::from_f32(-65504.0)]).unwrap(),
        ),
        (
            "i64",
            HostTensor::from_values([2, 1], &[i64::MIN, 42i64]).unwrap(),
        ),
        ("i32", HostTensor::from_values([], &[-5i32]).unwrap()),
        (
            "i8",
            HostTensor::from_values([3], &[-128i8, 0, 127]).unwrap(),
        ),
        ("ui8", HostTensor::from_values([1, 2], &[255u8, 1]).unwrap()),
        (
            "i1",
            HostTensor::from_bytes(DType::I1, [4], &[1, 0, 0, 1]).unwrap(),
        ),
        ("empty", HostTensor::from_f32([0, 3], &[]).unwrap()),
    ])
}

/// One tensor of every element type (packed ones with an odd element count).
fn all_dtype_tensors() -> TensorMap {
    let mut m = npz_tensors();
    let bf = [bf16::from_f32(1.5), bf16::from_f32(-0.0078125)];
    m.insert("bf16".into(), HostTensor::from_values([2], &bf).unwrap());
    m.insert(
        "f8a".into(),
        HostTensor::from_bytes(DType::F8E4M3FN, [3], &[0x38, 0x7e, 0x81]).unwrap(),
    );
    m.insert(
        "f8b".into(),
        HostTensor::from_bytes(DType::F8E5M2, [2], &[0x3c, 0xfb]).unwrap(),
    );
    m.insert(
        "f4".into(),
        HostTensor::from_bytes(DType::F4E2M1FN, [3], &[0xf1, 0x07]).unwrap(),
    );
    m.insert(
        "i4".into(),
        HostTensor::from_bytes(DType::I4, [1, 3], &[0x79, 0x0f]).unwrap(),
    );
    m.insert(
        "ui4".into(),
        HostTensor::from_bytes(DType::UI4, [2, 2], &[0x21, 0x43]).unwrap(),
    );
    m
}

/// The names of the files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn npz_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.npz");
    let tensors = npz_tensors();
    write_tensors(&path, &tensors).unwrap();
    let back = read_tensors(&path).unwrap();
    assert_eq!(back, tensors);
    assert_eq!(
        back["a/f32"].to_f32_vec(),
        vec![1.0, -2.0, 3.5, 0.0, 1e-8, -7.25]
    );
    assert_eq!(back["i64"].as_slice::<i64>().unwrap(), &[i64::MIN, 42]);
    assert_eq!(back["i32"].shape(), &[] as &[usize]);
    assert_eq!(back["i1"].dtype(), DType::I1);
    assert_eq!(listing(dir.path()), vec!["t.npz"]);
}

#[test]
fn safetensors_round_trip_of_every_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    let tensors = all_dtype_tensors();
    assert_eq!(tensors.len(), 15);
    write_tensors(&path, &tensors).unwrap();
    let back = read_tensors(&path).unwrap();
    assert_eq!(back, tensors);
    assert_eq!(back["i4"].to_f32_vec(), vec![-7.0, 7.0, -1.0]);
    assert_eq!(back["f8a"].to_f32_vec(), vec![1.0, 448.0, -2f32.powi(-9)]);
    assert_eq!(back["f8b"].to_f32_vec(), vec![1.0, -57344.0]);
    assert_eq!(back["bf16"].to_f32_vec(), vec![1.5, -0.0078125]);
    assert_eq!(listing(dir.path()), vec!["t.safetensors"]);
}

#[test]
fn safetensors_written_here_read_by_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    write_tensors(&path, &all_dtype_tensors()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let f32s = st.tensor("a/f32").unwrap();
    assert_eq!(f32s.dtype(), safetensors::Dtype::F32);
    assert_eq!(f32s.shape(), &[2, 3]);
    assert_eq!(&f32s.data()[8..12], &3.5f32.to_le_bytes());
    assert_eq!(st.tensor("i1").unwrap().dtype(), safetensors::Dtype::BOOL);
    assert_eq!(
        st.tensor("f8a").unwrap().dtype(),
        safetensors::Dtype::F8_E4M3
    );
    let i4 = st.tensor("i4").unwrap();
    assert_eq!(
        (i4.dtype(), i4.shape(), i4.data()),
        (safetensors::Dtype::U8, &[2usize][..], &[0x79u8, 0x0f][..])
    );
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["lowbit:i4"], r#"{"dtype":"i4","shape":[1,3]}"#);
}

#[test]
fn safetensors_written_by_the_library_read_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lib.safetensors");
    let h: Vec<u8> = [1.0f32, -2.0]
        .iter()
        .flat_map(|&x| f16::from_f32(x).to_le_bytes())
        .collect();
    let b = [1u8, 0, 1];
    let f4 = [0x21u8, 0xf7];
    let views = vec![
        (
            "h",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![2], &h).unwrap(),
        ),
        (
            "b",
            safetensors::tensor::TensorView::new(safetensors::Dtype::BOOL, vec![3], &b).unwrap(),
        ),
        (
            "f4",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F4, vec![4], &f4).unwrap(),
        ),
    ];
    safetensors::serialize_to_file(views, None, &path).unwrap();
    let got = read_safetensors(&path).unwrap();
    assert_eq!(got["h"].dtype(), DType::F16);
    assert_eq!(got["h"].to_f32_vec(), vec![1.0, -2.0]);
    assert_eq!(got["b"].dtype(), DType::I1);
    assert_eq!(got["b"].to_f32_vec(), vec![1.0, 0.0, 1.0]);
    assert_eq!(got["f4"].dtype(), DType::F4E2M1FN);
    assert_eq!(got["f4"].to_f32_vec(), vec![0.5, 1.0, 6.0, -6.0]);

    let u16s = [1u8, 0, 2, 0];
    let views = vec![(
        "u",
        safetensors::tensor::TensorView::new(safetensors::Dtype::U16, vec![2], &u16s).unwrap(),
    )];
    let path = dir.path().join("u16.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    let err = read_safetensors(&path).unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnsupportedDType { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("tensor `u`") && err.to_string().contains("U16"),
        "{err}"
    );
}

#[test]
fn npz_written_by_npyz_read_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lib.npz");
    {
        let mut npz = npyz::npz::NpzWriter::create(&path).unwrap();
        let opts = || npyz::zip::write::FileOptions::default();
        let mut w = npz
            .array::<f32>("c", opts())
            .unwrap()
            .default_dtype()
            .shape(&[2, 3])
            .begin_nd()
            .unwrap();
        w.extend([0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        w.finish().unwrap();
        // Fortran order: the file lists a[0,0], a[1,0], a[0,1], a[1,1], a[0,2], a[1,2].
        let mut w = npz
            .array::<f64>("fortran", opts())
            .unwrap()
            .default_dtype()
            .order(npyz::Order::Fortran)
            .shape(&[2, 3])
            .begin_nd()
            .unwrap();
        w.extend([0.0f64, 10.0, 1.0, 11.0, 2.0, 12.0]).unwrap();
        w.finish().unwrap();
        let be: npyz::TypeStr = ">i4".parse().unwrap();
        let mut w = npz
            .array::<i32>("big", opts())
            .unwrap()
            .dtype(npyz::DType::Plain(be))
            .shape(&[3])
            .begin_nd()
            .unwrap();
        w.extend([1i32, -2, 300_000]).unwrap();
        w.finish().unwrap();
        let mut w = npz
            .array::<u16>("u16", opts())
            .unwrap()
            .default_dtype()
            .shape(&[1])
            .begin_nd()
            .unwrap();
        w.push(&7).unwrap();
        w.finish().unwrap();
    }
    let err = read_npz(&path).unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnsupportedDType { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("`u16`") && err.to_string().contains("<u2"),
        "{err}"
    );

    // Rewrite without the u16 array and read the rest.
    let path = dir.path().join("ok.npz");
    {
        let mut npz = npyz::npz::NpzWriter::create(&path).unwrap();
        let mut w = npz
            .array::<f64>("fortran", Default::default())
            .unwrap()
            .default_dtype()
            .order(npyz::Order::Fortran)
            .shape(&[2, 3])
            .begin_nd()
            .unwrap();
        w.extend([0.0f64, 10.0, 1.0, 11.0, 2.0, 12.0]).unwrap();
        w.finish().unwrap();
        let be: npyz::TypeStr = ">i4".parse().unwrap();
        let mut w = npz
            .array::<i32>("big", Default::default())
            .unwrap()
            .dtype(npyz::DType::Plain(be))
            .shape(&[3])
            .begin_nd()
            .unwrap();
        w.extend([1i32, -2, 300_000]).unwrap();
        w.finish().unwrap();
    }
    let got = read_npz(&path).unwrap();
    assert_eq!(got["fortran"].shape(), &[2, 3]);
    assert_eq!(
        got["fortran"].as_slice::<f64>().unwrap(),
        &[0.0, 1.0, 2.0, 10.0, 11.0, 12.0]
    );
    assert_eq!(got["big"].as_slice::<i32>().unwrap(), &[1, -2, 300_000]);
}

#[test]
fn npz_written_here_read_by_npyz() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.npz");
    write_npz(&path, &npz_tensors()).unwrap();
    let mut npz = npyz::npz::NpzArchive::open(&path).unwrap();
    let a = npz.by_name("a/f32").unwrap().unwrap();
    assert_eq!(a.shape(), &[2, 3]);
    assert_eq!(
        a.into_vec::<f32>().unwrap(),
        vec![1.0, -2.0, 3.5, 0.0, 1e-8, -7.25]
    );
    let b = npz.by_name("i1").unwrap().unwrap();
    assert_eq!(
        b.into_vec::<bool>().unwrap(),
        vec![true, false, false, true]
    );
    let h = npz.by_name("f16").unwrap().unwrap();
    assert_eq!(h.dtype().descr(), "'<f2'");
}

#[test]
fn missing_files_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["nope.npz", "nope.safetensors"] {
        let path = dir.path().join(name);
        let err = read_tensors(&path).unwrap_err();
        assert!(matches!(err, RuntimeError::Io { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn unknown_extensions_are_errors() {
    for name in ["t.npy", "t", "t.safetensor", "t.NPZ"] {
        let err = read_tensors(name).unwrap_err();
        assert!(
            matches!(err, RuntimeError::UnknownExtension { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
        let err = write_tensors(name, &BTreeMap::new()).unwrap_err();
        assert!(
            matches!(err, RuntimeError::UnknownExtension { .. }),
            "{err}"
        );
    }
}

#[test]
fn malformed_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A valid header for 16 bytes of data, followed by only 2 bytes.
    let header = br#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let mut truncated = (header.len() as u64).to_le_bytes().to_vec();
    truncated.extend_from_slice(header);
    truncated.extend_from_slice(&[0, 0]);
    let cases: [(&str, &[u8]); 5] = [
        ("garbage.npz", b"definitely not a zip archive"),
        ("empty.npz", b""),
        (
            "garbage.safetensors",
            b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ",
        ),
        ("short.safetensors", b"\x01\x00"),
        ("truncated.safetensors", &truncated),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_tensors(&path).unwrap_err();
        assert!(
            matches!(err, RuntimeError::MalformedFile { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }

    // An npz whose array header promises more data than the member holds.
    let path = dir.path().join("lying.npz");
    {
        let mut npz = npyz::npz::NpzWriter::create(&path).unwrap();
        let mut w = npz
            .array::<f32>("x", Default::default())
            .unwrap()
            .default_dtype()
            .shape(&[2])
            .begin_nd()
            .unwrap();
        w.extend([1.0f32, 2.0]).unwrap();
        w.finish().unwrap();
        npz.zip_writer()
            .start_file("y.npy", Default::default())
            .unwrap();
        let header = npyz::WriteOptions::new_header_only()
            .dtype(npyz::DType::Plain("<f4".parse().unwrap()))
            .shape(&[1000])
            .writer(npz.zip_writer())
            .write_header_only()
            .unwrap();
        std::io::Write::write_all(header, &[0; 12]).unwrap();
    }
    let err = read_tensors(&path).unwrap_err();
    assert!(matches!(err, RuntimeError::MalformedFile { .. }), "{err}");
    assert!(err.to_string().contains("array `y`"), "{err}");
}

#[test]
fn failed_writes_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.npz");
    std::fs::write(&path, b"old contents").unwrap();
    // bf16 has no npy type: the write fails and the old file stays as it was.
    let err = write_tensors(&path, &all_dtype_tensors()).unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnsupportedDType { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("`bf16`") && err.to_string().contains("out.npz"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"old contents");
    assert_eq!(listing(dir.path()), vec!["out.npz"]);

    let missing_dir = dir.path().join("no/such/dir/t.safetensors");
    let err = write_tensors(&missing_dir, &npz_tensors()).unwrap_err();
    assert!(matches!(err, RuntimeError::Io { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    assert_eq!(listing(dir.path()), vec!["out.npz"]);
}

#[test]
fn overwrites_replace_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["t.npz", "t.safetensors"] {
        let path = dir.path().join(name);
        write_tensors(&path, &npz_tensors()).unwrap();
        let small = map(vec![("only", HostTensor::from_f32([1], &[9.0]).unwrap())]);
        write_tensors(&path, &small).unwrap();
        assert_eq!(read_tensors(&path).unwrap(), small);
    }
    assert_eq!(listing(dir.path()), vec!["t.npz", "t.safetensors"]);
}
