//! The artifact manifest (`manifest.json`) and the element types it names.
//!
//! A manifest says which symbol of `model.so` to call and, in order, the
//! inputs, outputs and weights that entry takes, each as a [`TensorSpec`]
//! (name, [`DType`], static shape). The order of each list is the order of the
//! pointer arrays passed to the entry (see `include/lowbit.h`).
//!
//! Invariants after [`Manifest::parse`] / [`Manifest::load`] succeed:
//! `format_version` is [`FORMAT_VERSION`]; the entry symbol is non-empty; tensor
//! names are non-empty and unique within each list; and every tensor's element
//! count and byte size fit in `usize`, so [`TensorSpec::num_elements`] and
//! [`TensorSpec::byte_size`] cannot overflow.
//!
//! Element types use MLIR spellings. Sub-byte types (`i4`, `ui4`, `f4E2M1FN`)
//! are packed two per byte, low nibble first; `i1` takes one byte per element.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{RuntimeError, RuntimeResult};

/// The only manifest format version this runtime reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// An element type, spelled as MLIR spells it in manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE binary32 (`f32`).
    F32,
    /// IEEE binary64 (`f64`).
    F64,
    /// IEEE binary16 (`f16`).
    F16,
    /// bfloat16 (`bf16`).
    BF16,
    /// Signed 64-bit integer (`i64`).
    I64,
    /// Signed 32-bit integer (`i32`).
    I32,
    /// Signed 8-bit integer (`i8`).
    I8,
    /// Unsigned 8-bit integer (`ui8`).
    UI8,
    /// Boolean (`i1`), stored one byte per element, 0 or 1.
    I1,
    /// 8-bit float, 4 exponent and 3 mantissa bits, finite only (`f8E4M3FN`).
    F8E4M3FN,
    /// 8-bit float, 5 exponent and 2 mantissa bits (`f8E5M2`).
    F8E5M2,
    /// 4-bit float, 2 exponent and 1 mantissa bit (`f4E2M1FN`), packed two per byte.
    F4E2M1FN,
    /// Signed 4-bit integer (`i4`), packed two per byte.
    I4,
    /// Unsigned 4-bit integer (`ui4`), packed two per byte.
    UI4,
}

impl DType {
    /// Every element type, in declaration order.
    pub const ALL: [DType; 14] = [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::I32,
        DType::I8,
        DType::UI8,
        DType::I1,
        DType::F8E4M3FN,
        DType::F8E5M2,
        DType::F4E2M1FN,
        DType::I4,
        DType::UI4,
    ];

    /// The MLIR spelling, e.g. `"f8E4M3FN"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I8 => "i8",
            DType::UI8 => "ui8",
            DType::I1 => "i1",
            DType::F8E4M3FN => "f8E4M3FN",
            DType::F8E5M2 => "f8E5M2",
            DType::F4E2M1FN => "f4E2M1FN",
            DType::I4 => "i4",
            DType::UI4 => "ui4",
        }
    }

    /// Parses an MLIR spelling; `None` when it is not one of [`DType::ALL`].
    pub fn parse(spelling: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.as_str() == spelling)
    }

    /// Bits one element occupies in storage (`i1` takes 8).
    pub fn storage_bits(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 64,
            DType::F32 | DType::I32 => 32,
            DType::F16 | DType::BF16 => 16,
            DType::I8 | DType::UI8 | DType::I1 | DType::F8E4M3FN | DType::F8E5M2 => 8,
            DType::F4E2M1FN | DType::I4 | DType::UI4 => 4,
        }
    }

    /// Whether two elements share a byte (low nibble first).
    pub fn is_packed(self) -> bool {
        self.storage_bits() < 8
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DType::F32
                | DType::F64
                | DType::F16
                | DType::BF16
                | DType::F8E4M3FN
                | DType::F8E5M2
                | DType::F4E2M1FN
        )
    }

    /// The alignment, in bytes, a buffer of this type needs: its element size,
    /// or 1 for byte-sized and packed types.
    pub fn alignment(self) -> usize {
        (self.storage_bits() / 8).max(1)
    }

    /// Bytes needed for `num_elements` elements; packed types round up.
    ///
    /// Overflows like ordinary arithmetic; see [`DType::checked_byte_size`].
    pub fn byte_size(self, num_elements: usize) -> usize {
        let bits = self.storage_bits();
        if bits < 8 {
            num_elements.div_ceil(8 / bits)
        } else {
            num_elements * (bits / 8)
        }
    }

    /// [`DType::byte_size`], or `None` on overflow.
    pub fn checked_byte_size(self, num_elements: usize) -> Option<usize> {
        let bits = self.storage_bits();
        if bits < 8 {
            Some(num_elements.div_ceil(8 / bits))
        } else {
            num_elements.checked_mul(bits / 8)
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DType {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::parse(s).ok_or_else(|| RuntimeError::UnknownDType {
            spelling: s.to_string(),
        })
    }
}

impl Serialize for DType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        DType::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown element type `{s}` (expected one of {})",
                DType::ALL.map(DType::as_str).join(", ")
            ))
        })
    }
}

/// One tensor of an entry's signature: its name, element type and static shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// The tensor's name (an input/output name, or a key in `weights.safetensors`).
    pub name: String,
    /// Its element type.
    pub dtype: DType,
    /// Its shape, outermost dimension first; `[]` is a scalar.
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// Builds a spec.
    pub fn new(name: impl Into<String>, dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        TensorSpec {
            name: name.into(),
            dtype,
            shape: shape.into(),
        }
    }

    /// The number of elements (1 for a scalar).
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// The bytes its contiguous row-major buffer takes.
    pub fn byte_size(&self) -> usize {
        self.dtype.byte_size(self.num_elements())
    }

    /// `"f32 [1, 16, 32]"`: the dtype and shape, as error messages show them.
    pub fn describe(&self) -> String {
        format!("{} {:?}", self.dtype, self.shape)
    }

    /// The byte size, or `None` when the element count or size overflows.
    fn checked_byte_size(&self) -> Option<usize> {
        let n = self
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
        let bytes = self.dtype.checked_byte_size(n)?;
        // Keep room for the element-count arithmetic of packed types.
        (bytes <= isize::MAX as usize).then_some(bytes)
    }
}

/// The contents of `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_VERSION`] once parsed.
    pub format_version: u32,
    /// The version of `lowbit` that wrote the artifact.
    pub compiler_version: String,
    /// The target triple, e.g. `x86_64-unknown-linux-gnu`.
    pub target: String,
    /// The pass pipeline the compiler ran, in MLIR pipeline syntax.
    pub pipeline: String,
    /// The C symbol of the entry point in `model.so`.
    pub entry: String,
    /// The name of the IR function the entry was compiled from.
    pub function: String,
    /// Inputs, in the order of the entry's `inputs` pointer array.
    pub inputs: Vec<TensorSpec>,
    /// Outputs, in the order of the entry's `outputs` pointer array.
    pub outputs: Vec<TensorSpec>,
    /// Weights, in the order of the entry's `weights` pointer array.
    #[serde(default)]
    pub weights: Vec<TensorSpec>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: impl AsRef<Path>) -> RuntimeResult<Manifest> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| RuntimeError::io("read", path, e))?;
        Manifest::parse(&text, path)
    }

    /// Parses and validates manifest text; `path` is used only in error messages.
    ///
    /// The format version is checked before anything else, so a manifest of
    /// another version is reported as such rather than as a missing field.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> RuntimeResult<Manifest> {
        let path = path.as_ref();
        let invalid = |reason: String| RuntimeError::InvalidManifest {
            path: path.to_path_buf(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let version = value
            .get("format_version")
            .ok_or_else(|| invalid("missing field `format_version`".to_string()))?;
        let version = version
            .as_u64()
            .ok_or_else(|| invalid(format!("`format_version` is {version}, not an integer")))?;
        if version != u64::from(FORMAT_VERSION) {
            return Err(RuntimeError::UnsupportedFormatVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        manifest.validate().map_err(invalid)?;
        Ok(manifest)
    }

    /// The manifest as pretty-printed JSON, ending in a newline.
    pub fn to_json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(self).expect("a manifest always serializes to JSON");
        text.push('\n');
        text
    }

    /// Writes the manifest to `path` atomically (temp file, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> RuntimeResult<()> {
        let text = self.to_json();
        let path = path.as_ref();
        crate::io::write_atomic(path, |_, file| {
            std::io::Write::write_all(file, text.as_bytes())
                .map_err(|e| RuntimeError::io("write", path, e))
        })
    }

    /// Checks the invariants listed in the module documentation.
    fn validate(&self) -> Result<(), String> {
        if self.entry.is_empty() {
            return Err("`entry` is empty".to_string());
        }
        for (list, specs) in [
            ("inputs", &self.inputs),
            ("outputs", &self.outputs),
            ("weights", &self.weights),
        ] {
            let mut seen = BTreeSet::new();
            for spec in specs {
                if spec.name.is_empty() {
                    return Err(format!("a tensor in `{list}` has an empty name"));
                }
                if !seen.insert(spec.name.as_str()) {
                    return Err(format!("`{list}` names `{}` twice", spec.name));
                }
                if spec.checked_byte_size().is_none() {
                    return Err(format!(
                        "the size of `{}` ({}) overflows",
                        spec.name,
                        spec.describe()
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "format_version": 1,
      "compiler_version": "0.1.0",
      "target": "x86_64-unknown-linux-gnu",
      "pipeline": "canonicalize,cse",
      "entry": "lowbit_main",
      "function": "main",
      "inputs":  [{"name": "x", "dtype": "f32", "shape": [1, 16, 32]}],
      "outputs": [{"name": "out", "dtype": "f32", "shape": [1, 16, 32]}],
      "weights": [{"name": "wq", "dtype": "i4", "shape": [32, 33]}]
    }"#;

    #[test]
    fn dtype_spellings_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::parse(d.as_str()), Some(d));
            assert_eq!(d.to_string().parse::<DType>().unwrap(), d);
        }
        assert_eq!(DType::parse("f8E4M3FN"), Some(DType::F8E4M3FN));
        assert_eq!(DType::parse("u8"), None);
        assert_eq!(DType::parse("F32"), None);
        let err = "float".parse::<DType>().unwrap_err();
        assert_eq!(err.to_string(), "unknown element type `float`");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(DType::F32.byte_size(10), 40);
        assert_eq!(DType::F64.byte_size(3), 24);
        assert_eq!(DType::BF16.byte_size(3), 6);
        assert_eq!(DType::I1.byte_size(5), 5);
        assert_eq!(DType::F8E5M2.byte_size(5), 5);
        assert_eq!(DType::I4.byte_size(5), 3);
        assert_eq!(DType::UI4.byte_size(4), 2);
        assert_eq!(DType::F4E2M1FN.byte_size(1), 1);
        assert_eq!(DType::I4.byte_size(0), 0);
        assert_eq!(DType::I64.checked_byte_size(usize::MAX), None);
        assert_eq!(
            DType::I4.checked_byte_size(usize::MAX),
            Some(usize::MAX / 2 + 1)
        );
        assert_eq!(DType::F64.alignment(), 8);
        assert_eq!(DType::I4.alignment(), 1);
    }

    #[test]
    fn parses_the_example() {
        let m = Manifest::parse(EXAMPLE, "m.json").unwrap();
        assert_eq!(m.entry, "lowbit_main");
        assert_eq!(m.inputs[0], TensorSpec::new("x", DType::F32, [1, 16, 32]));
        assert_eq!(m.weights[0].dtype, DType::I4);
        assert_eq!(m.weights[0].byte_size(), 528);
        assert_eq!(m.inputs[0].byte_size(), 2048);
        assert_eq!(m.inputs[0].describe(), "f32 [1, 16, 32]");
    }

    #[test]
    fn json_round_trip() {
        let m = Manifest::parse(EXAMPLE, "m.json").unwrap();
        let again = Manifest::parse(&m.to_json(), "again.json").unwrap();
        assert_eq!(m, again);
        assert!(m.to_json().contains("\"dtype\": \"i4\""));
    }

    #[test]
    fn rejects_other_format_versions() {
        let text = EXAMPLE.replace("\"format_version\": 1", "\"format_version\": 2");
        let err = Manifest::parse(&text, "dir/manifest.json").unwrap_err();
        assert!(matches!(
            err,
            RuntimeError::UnsupportedFormatVersion { found: 2, .. }
        ));
        assert_eq!(
            err.to_string(),
            "manifest `dir/manifest.json` has format_version 2, but this runtime reads only version 1"
        );
        let text = EXAMPLE.replace("\"format_version\": 1,", "");
        let err = Manifest::parse(&text, "m.json").unwrap_err();
        assert!(
            err.to_string().contains("missing field `format_version`"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_manifests() {
        let cases = [
            (
                EXAMPLE.replace(
                    "\"f32\", \"shape\": [1, 16, 32]}],\n      \"outputs\"",
                    "\"f31\", \"shape\": [1]}],\n      \"outputs\"",
                ),
                "unknown element type `f31`",
            ),
            (EXAMPLE.replace("\"out\"", "\"\""), "empty name"),
            (
                EXAMPLE.replace("\"lowbit_main\"", "\"\""),
                "`entry` is empty",
            ),
            (
                EXAMPLE.replace(
                    "\"wq\", \"dtype\": \"i4\", \"shape\": [32, 33]",
                    "\"wq\", \"dtype\": \"f64\", \"shape\": [4294967296, 4294967296]",
                ),
                "overflows",
            ),
            (
                EXAMPLE.replace("\"entry\"", "\"entry_symbol\""),
                "missing field `entry`",
            ),
            ("{\"format_version\": 1".to_string(), "EOF"),
        ];
        for (text, needle) in cases {
            let err = Manifest::parse(&text, "m.json").unwrap_err();
            assert!(matches!(err, RuntimeError::InvalidManifest { .. }), "{err}");
            assert!(err.to_string().contains(needle), "{err} lacks {needle}");
        }
        let dup = EXAMPLE.replace(
            r#""outputs": [{"name": "out""#,
            r#""outputs": [{"name": "out", "dtype": "f32", "shape": []}, {"name": "out""#,
        );
        let err = Manifest::parse(&dup, "m.json").unwrap_err();
        assert!(
            err.to_string().contains("`outputs` names `out` twice"),
            "{err}"
        );
    }

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        let m = Manifest::parse(EXAMPLE, "m.json").unwrap();
        m.save(&path).unwrap();
        assert_eq!(Manifest::load(&path).unwrap(), m);
        let missing = dir.path().join("nope.json");
        let err = Manifest::load(&missing).unwrap_err();
        assert!(err.to_string().contains("nope.json"), "{err}");
    }
}
