//! A loaded artifact: its manifest, its memory-mapped weights and its entry point.
//!
//! [`Artifact::load`] reads `DIR/manifest.json`, memory-maps
//! `DIR/weights.safetensors` (no copy), checks that every weight the manifest
//! names is in the file with the manifest's dtype and shape, and `dlopen`s
//! `DIR/model.so`, resolving the manifest's entry symbol. [`Artifact::run`]
//! checks the inputs against the manifest, allocates zeroed outputs and calls
//! the entry with the pointer arrays of the C ABI (`include/lowbit.h`).
//!
//! Invariants of a loaded `Artifact`: there is one weight slot per manifest
//! weight, in manifest order, each exactly `spec.byte_size()` bytes and aligned
//! to its element size. A weight is served straight from the map when its bytes
//! are aligned there; otherwise it is copied once, at load time, into an
//! aligned buffer. The library stays loaded as long as the `Artifact` lives, so
//! the entry pointer stays valid.
//!
//! Safety rests on the artifact being what the compiler wrote: the entry must
//! honour the ABI (read only the bytes of each input and weight, write only the
//! bytes of each output), and `weights.safetensors` must not be modified while
//! mapped. An `Artifact` is `Send + Sync`; whether one may be run from several
//! threads at once depends on the generated code, which lowbit makes reentrant.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::fs::File;
use std::path::{Path, PathBuf};

use libloading::Library;
use memmap2::Mmap;
use safetensors::SafeTensors;

use crate::error::{RuntimeError, RuntimeResult};
use crate::io::entry_matches;
use crate::manifest::{Manifest, TensorSpec};
use crate::tensor::{AlignedBytes, HostTensor};

/// The file names inside an artifact directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The weights file inside an artifact directory.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// The x86-64 shared object inside an artifact directory.
pub const LIBRARY_FILE: &str = "model.so";

/// The C type of an entry point (`lowbit_entry_fn` in `include/lowbit.h`).
pub type EntryFn = unsafe extern "C" fn(
    inputs: *const *const c_void,
    outputs: *const *mut c_void,
    weights: *const *const c_void,
) -> i32;

/// Where one weight's bytes live.
enum WeightSlot {
    /// `len` bytes at `offset` in the map, suitably aligned there.
    Mapped { offset: usize, len: usize },
    /// A load-time copy of a weight that was misaligned in the map.
    Copied(AlignedBytes),
}

/// The weights, one slot per manifest weight, in manifest order.
struct WeightStore {
    /// The mapped file; `None` when the manifest names no weights and the file is absent.
    map: Option<Mmap>,
    slots: Vec<WeightSlot>,
}

impl WeightStore {
    /// Maps `path` and checks it holds every weight in `specs`.
    fn open(path: &Path, specs: &[TensorSpec]) -> RuntimeResult<WeightStore> {
        if specs.is_empty() && !path.exists() {
            return Ok(WeightStore {
                map: None,
                slots: Vec::new(),
            });
        }
        let file = File::open(path).map_err(|e| RuntimeError::io("read", path, e))?;
        // SAFETY: the map is read-only; the artifact contract says the file is not
        // modified while loaded (see the module documentation).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| RuntimeError::io("map", path, e))?;
        let st = SafeTensors::deserialize(&map).map_err(|e| RuntimeError::malformed(path, e))?;
        let base = map.as_ptr() as usize;
        let mut slots = Vec::with_capacity(specs.len());
        for spec in specs {
            let view = st
                .tensor(&spec.name)
                .map_err(|_| RuntimeError::MissingWeight {
                    name: spec.name.clone(),
                    path: path.to_path_buf(),
                })?;
            let data = view.data();
            if !entry_matches(spec, view.dtype(), view.shape(), data.len()) {
                return Err(RuntimeError::WeightMismatch {
                    name: spec.name.clone(),
                    path: path.to_path_buf(),
                    expected: spec.describe(),
                    found: format!("{:?} {:?}", view.dtype(), view.shape()),
                });
            }
            let start = data.as_ptr() as usize;
            slots.push(if start.is_multiple_of(spec.dtype.alignment()) {
                WeightSlot::Mapped {
                    offset: start - base,
                    len: data.len(),
                }
            } else {
                WeightSlot::Copied(AlignedBytes::from_slice(data))
            });
        }
        Ok(WeightStore {
            map: Some(map),
            slots,
        })
    }

    /// The bytes of weight `index`.
    fn bytes(&self, index: usize) -> &[u8] {
        match &self.slots[index] {
            WeightSlot::Mapped { offset, len } => {
                let map = self.map.as_ref().expect("a mapped weight implies a map");
                &map[*offset..*offset + *len]
            }
            WeightSlot::Copied(bytes) => bytes,
        }
    }

    /// One data pointer per weight, in manifest order.
    fn pointers(&self) -> Vec<*const c_void> {
        (0..self.slots.len())
            .map(|i| self.bytes(i).as_ptr().cast::<c_void>())
            .collect()
    }
}

/// A compiled artifact, loaded and ready to run.
pub struct Artifact {
    dir: PathBuf,
    manifest: Manifest,
    weights: WeightStore,
    entry: EntryFn,
    /// Keeps `model.so` loaded while `entry` may be called.
    _library: Library,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifact")
            .field("dir", &self.dir)
            .field("entry", &self.manifest.entry)
            .finish_non_exhaustive()
    }
}

impl Artifact {
    /// Loads the artifact in directory `dir`; see the module documentation.
    pub fn load(dir: impl AsRef<Path>) -> RuntimeResult<Artifact> {
        let dir = dir.as_ref();
        // An absolute path keeps dlopen from searching the library path.
        let dir = dir
            .canonicalize()
            .map_err(|e| RuntimeError::io("open artifact directory", dir, e))?;
        let manifest = Manifest::load(dir.join(MANIFEST_FILE))?;
        let weights = WeightStore::open(&dir.join(WEIGHTS_FILE), &manifest.weights)?;
        let lib_path = dir.join(LIBRARY_FILE);
        if !lib_path.is_file() {
            let e = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
            return Err(RuntimeError::io("load", lib_path, e));
        }
        // SAFETY: loading runs the object's initializers; a lowbit artifact is
        // trusted code written by the compiler, with no initializers of its own.
        let library =
            unsafe { Library::new(&lib_path) }.map_err(|source| RuntimeError::LoadLibrary {
                path: lib_path.clone(),
                source,
            })?;
        // SAFETY: the manifest's entry symbol has the `EntryFn` type by the
        // artifact contract; the pointer is copied out but only called while
        // `library` (moved into the artifact) keeps it loaded.
        let entry: EntryFn = unsafe {
            *library
                .get::<EntryFn>(manifest.entry.as_bytes())
                .map_err(|source| RuntimeError::MissingSymbol {
                    path: lib_path.clone(),
                    symbol: manifest.entry.clone(),
                    source,
                })?
        };
        Ok(Artifact {
            dir,
            manifest,
            weights,
            entry,
            _library: library,
        })
    }

    /// The artifact's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The (canonical) directory the artifact was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bytes of weight `name`, as the entry sees them; `None` if the
    /// manifest names no such weight.
    pub fn weight_bytes(&self, name: &str) -> Option<&[u8]> {
        let index = self.manifest.weights.iter().position(|w| w.name == name)?;
        Some(self.weights.bytes(index))
    }

    /// Whether weight `name` is served straight from the memory map (`true`) or
    /// from an aligned load-time copy (`false`); `None` if there is no such weight.
    pub fn is_weight_mapped(&self, name: &str) -> Option<bool> {
        let index = self.manifest.weights.iter().position(|w| w.name == name)?;
        Some(matches!(
            self.weights.slots[index],
            WeightSlot::Mapped { .. }
        ))
    }

    /// Runs the entry on `inputs` (keyed by name) and returns the outputs, keyed by name.
    ///
    /// Every manifest input must be present with its dtype and shape, and no
    /// other may be; outputs start zeroed. A non-zero return code is an error.
    pub fn run(
        &self,
        inputs: &BTreeMap<String, HostTensor>,
    ) -> RuntimeResult<BTreeMap<String, HostTensor>> {
        let ordered = self.check_inputs(inputs)?;
        let mut outputs = self.zeroed_outputs();
        let mut call = self.prepare(&ordered, &mut outputs);
        call.invoke()?;
        Ok(self
            .manifest
            .outputs
            .iter()
            .map(|spec| spec.name.clone())
            .zip(outputs)
            .collect())
    }

    /// Checks `inputs` against the manifest and returns them in manifest order.
    pub(crate) fn check_inputs<'a>(
        &self,
        inputs: &'a BTreeMap<String, HostTensor>,
    ) -> RuntimeResult<Vec<&'a HostTensor>> {
        let mut ordered = Vec::with_capacity(self.manifest.inputs.len());
        for spec in &self.manifest.inputs {
            let t = inputs
                .get(&spec.name)
                .ok_or_else(|| RuntimeError::MissingInput {
                    name: spec.name.clone(),
                    dtype: spec.dtype,
                    shape: spec.shape.clone(),
                })?;
            if t.dtype() != spec.dtype {
                return Err(RuntimeError::InputDTypeMismatch {
                    name: spec.name.clone(),
                    expected: spec.dtype,
                    found: t.dtype(),
                });
            }
            if t.shape() != spec.shape.as_slice() {
                return Err(RuntimeError::InputShapeMismatch {
                    name: spec.name.clone(),
                    expected: spec.shape.clone(),
                    found: t.shape().to_vec(),
                });
            }
            ordered.push(t);
        }
        if let Some(extra) = inputs
            .keys()
            .find(|name| !self.manifest.inputs.iter().any(|s| &s.name == *name))
        {
            return Err(RuntimeError::UnexpectedInput {
                name: extra.clone(),
                declared: self
                    .manifest
                    .inputs
                    .iter()
                    .map(|s| s.name.clone())
                    .collect(),
            });
        }
        Ok(ordered)
    }

    /// Zeroed output tensors, in manifest order.
    pub(crate) fn zeroed_outputs(&self) -> Vec<HostTensor> {
        self.manifest
            .outputs
            .iter()
            .map(|spec| HostTensor::zeros(spec.dtype, spec.shape.clone()))
            .collect()
    }

    /// Builds the pointer arrays for one or more calls of the entry.
    ///
    /// `inputs` must have passed [`Artifact::check_inputs`] and `outputs` come
    /// from [`Artifact::zeroed_outputs`]; the borrows keep every buffer alive
    /// and unmoved while the returned call exists.
    pub(crate) fn prepare<'a>(
        &'a self,
        inputs: &[&'a HostTensor],
        outputs: &'a mut [HostTensor],
    ) -> PreparedCall<'a> {
        PreparedCall {
            artifact: self,
            inputs: inputs.iter().map(|t| t.as_ptr().cast::<c_void>()).collect(),
            outputs: outputs
                .iter_mut()
                .map(|t| t.as_mut_ptr().cast::<c_void>())
                .collect(),
            weights: self.weights.pointers(),
            _borrows: std::marker::PhantomData,
        }
    }
}

/// The pointer arrays of one entry call, ready to be invoked (repeatedly, for benchmarks).
pub(crate) struct PreparedCall<'a> {
    artifact: &'a Artifact,
    inputs: Vec<*const c_void>,
    outputs: Vec<*mut c_void>,
    weights: Vec<*const c_void>,
    /// Ties the pointers to the buffers borrowed in [`Artifact::prepare`].
    _borrows: std::marker::PhantomData<&'a mut [HostTensor]>,
}

/// The array's pointer, or null for an empty list (the ABI allows either to be unread).
fn array_ptr<T>(v: &[T]) -> *const T {
    if v.is_empty() {
        std::ptr::null()
    } else {
        v.as_ptr()
    }
}

impl PreparedCall<'_> {
    /// Calls the entry once; a non-zero return code is an error.
    pub(crate) fn invoke(&mut self) -> RuntimeResult<()> {
        let entry = self.artifact.entry;
        // SAFETY: every pointer addresses a live buffer of exactly the byte size
        // the manifest gives its tensor (checked inputs, zeroed outputs, checked
        // weights), aligned to its element size, in manifest order; output
        // buffers are uniquely borrowed. The entry honours the ABI by the artifact
        // contract, and the library is kept loaded by `self.artifact`.
        let code = unsafe {
            entry(
                array_ptr(&self.inputs),
                array_ptr(&self.outputs),
                array_ptr(&self.weights),
            )
        };
        if code != 0 {
            return Err(RuntimeError::EntryFailed {
                entry: self.artifact.manifest.entry.clone(),
                code,
            });
        }
        Ok(())
    }
}
