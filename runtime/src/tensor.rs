//! Host tensors: an element type, a shape and an 8-byte-aligned byte buffer.
//!
//! [`HostTensor`] is what the runtime passes to and gets back from a compiled
//! entry, and what the tensor files of [`crate::io`] hold. Its data is a
//! contiguous row-major buffer in host (little-endian) byte order, with packed
//! sub-byte types two elements per byte, low nibble first.
//!
//! Invariants: `data.len() == dtype.byte_size(product(shape))` always holds (the
//! fields are private and every constructor checks it), and the data pointer is
//! 8-byte aligned ([`AlignedBytes`] is backed by `u64` words), so any element
//! type, `f64` and `i64` included, can be read in place.
//!
//! [`random_inputs`] makes deterministic pseudo-random inputs for a manifest,
//! for `lowbit bench` and for tests.

use half::{bf16, f16};

use crate::error::{RuntimeError, RuntimeResult};
use crate::manifest::{DType, Manifest};

/// A byte buffer whose start is 8-byte aligned (backed by `u64` words).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        AlignedBytes {
            words: vec![0; len.div_ceil(8)],
            len,
        }
    }

    /// A copy of `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Self {
        let mut out = AlignedBytes::zeroed(bytes.len());
        out.as_mut_slice().copy_from_slice(bytes);
        out
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `words` owns at least `len` initialized bytes (len <= 8 * words.len()),
        // and any bit pattern of a `u64` is a valid sequence of `u8`s.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; the borrow of `self` is unique.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

impl std::ops::Deref for AlignedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for AlignedBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl std::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.len)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that is exactly one element of a [`DType`], with no padding and
/// every bit pattern valid, so tensor data can be viewed as a slice of it.
pub trait Element: sealed::Sealed + Copy + 'static {
    /// The element type it stands for.
    const DTYPE: DType;
}

macro_rules! element {
    ($($ty:ty => $dtype:ident),* $(,)?) => {$(
        impl sealed::Sealed for $ty {}
        impl Element for $ty {
            const DTYPE: DType = DType::$dtype;
        }
    )*};
}

element!(f32 => F32, f64 => F64, f16 => F16, bf16 => BF16, i64 => I64, i32 => I32, i8 => I8, u8 => UI8);

/// A tensor in host memory. See the module documentation for its invariants.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    dtype: DType,
    shape: Vec<usize>,
    data: AlignedBytes,
}

impl HostTensor {
    /// A tensor of the given type and shape with all bytes zero.
    ///
    /// Panics only if the byte size overflows `usize`, which no allocatable
    /// tensor does.
    pub fn zeros(dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        let shape = shape.into();
        let bytes = dtype
            .checked_byte_size(shape.iter().product())
            .expect("a tensor's byte size fits in usize");
        HostTensor {
            dtype,
            shape,
            data: AlignedBytes::zeroed(bytes),
        }
    }

    /// A tensor holding a copy of `bytes`, which must be exactly the tensor's byte size.
    pub fn from_bytes(
        dtype: DType,
        shape: impl Into<Vec<usize>>,
        bytes: &[u8],
    ) -> RuntimeResult<Self> {
        let shape = shape.into();
        check_size(dtype, &shape, bytes.len())?;
        Ok(HostTensor {
            dtype,
            shape,
            data: AlignedBytes::from_slice(bytes),
        })
    }

    /// A tensor taking ownership of an aligned buffer of exactly its byte size.
    pub fn from_aligned(
        dtype: DType,
        shape: impl Into<Vec<usize>>,
        data: AlignedBytes,
    ) -> RuntimeResult<Self> {
        let shape = shape.into();
        check_size(dtype, &shape, data.len())?;
        Ok(HostTensor { dtype, shape, data })
    }

    /// A tensor of `T::DTYPE` holding `values`, one per element of `shape`.
    pub fn from_values<T: Element>(
        shape: impl Into<Vec<usize>>,
        values: &[T],
    ) -> RuntimeResult<Self> {
        // SAFETY: `Element` types have no padding, so their bytes are initialized.
        let bytes = unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
        };
        HostTensor::from_bytes(T::DTYPE, shape, bytes)
    }

    /// An `f32` tensor holding `values`, one per element of `shape`.
    pub fn from_f32(shape: impl Into<Vec<usize>>, values: &[f32]) -> RuntimeResult<Self> {
        HostTensor::from_values(shape, values)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements (1 for a scalar).
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// The raw data bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The raw data bytes, mutably (the length cannot change).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// The elements as a slice of `T`, or `None` when `T::DTYPE` is not this tensor's type.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        if T::DTYPE != self.dtype {
            return None;
        }
        let ptr = self.data.as_ptr().cast::<T>();
        debug_assert_eq!(ptr as usize % std::mem::align_of::<T>(), 0);
        // SAFETY: the data is 8-byte aligned (>= align_of::<T>()), holds exactly
        // num_elements * size_of::<T>() initialized bytes (the size invariant), and
        // every bit pattern is a valid `T` (`Element` contract).
        Some(unsafe { std::slice::from_raw_parts(ptr, self.num_elements()) })
    }

    /// The elements converted to `f32`: floats by value (f16, bf16, f8 and f4
    /// decoded), integers and `i1` by value, `i4` sign-extended from its nibble.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let b = self.bytes();
        let n = self.num_elements();
        match self.dtype {
            DType::F32 => chunks(b, |c: [u8; 4]| f32::from_le_bytes(c)),
            DType::F64 => chunks(b, |c: [u8; 8]| f64::from_le_bytes(c) as f32),
            DType::F16 => chunks(b, |c: [u8; 2]| f16::from_le_bytes(c).to_f32()),
            DType::BF16 => chunks(b, |c: [u8; 2]| bf16::from_le_bytes(c).to_f32()),
            DType::I64 => chunks(b, |c: [u8; 8]| i64::from_le_bytes(c) as f32),
            DType::I32 => chunks(b, |c: [u8; 4]| i32::from_le_bytes(c) as f32),
            DType::I8 => b.iter().map(|&x| x as i8 as f32).collect(),
            DType::UI8 | DType::I1 => b.iter().map(|&x| f32::from(x)).collect(),
            DType::F8E4M3FN => b.iter().map(|&x| f8e4m3fn_to_f32(x)).collect(),
            DType::F8E5M2 => b.iter().map(|&x| f8e5m2_to_f32(x)).collect(),
            DType::F4E2M1FN => nibbles(b, n).map(f4e2m1fn_to_f32).collect(),
            DType::I4 => nibbles(b, n)
                .map(|x| (((x << 4) as i8) >> 4) as f32)
                .collect(),
            DType::UI4 => nibbles(b, n).map(f32::from).collect(),
        }
    }

    /// The raw data pointer (8-byte aligned).
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }

    /// The raw data pointer, for writing (8-byte aligned).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.data.as_mut_ptr()
    }
}

/// Checks that `len` bytes is the byte size of `dtype` x `shape`.
fn check_size(dtype: DType, shape: &[usize], len: usize) -> RuntimeResult<()> {
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| dtype.checked_byte_size(n));
    if expected == Some(len) {
        return Ok(());
    }
    Err(RuntimeError::DataSize {
        dtype,
        shape: shape.to_vec(),
        expected: expected.unwrap_or(usize::MAX),
        found: len,
    })
}

/// Decodes little-endian fixed-size chunks.
fn chunks<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
    bytes
        .chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
        .collect()
}

/// The first `n` nibbles of `bytes`, low nibble of each byte first.
fn nibbles(bytes: &[u8], n: usize) -> impl Iterator<Item = u8> + '_ {
    bytes.iter().flat_map(|&b| [b & 0x0f, b >> 4]).take(n)
}

/// Decodes an `f8E4M3FN` byte: bias 7, no infinities, `S.1111.111` is NaN.
pub fn f8e4m3fn_to_f32(bits: u8) -> f32 {
    let sign = if bits & 0x80 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 3) & 0x0f);
    let mant = f32::from(bits & 0x07);
    if exp == 0x0f && bits & 0x07 == 0x07 {
        f32::NAN
    } else if exp == 0 {
        sign * mant / 8.0 * 2f32.powi(-6)
    } else {
        sign * (1.0 + mant / 8.0) * 2f32.powi(exp - 7)
    }
}

/// Decodes an `f8E5M2` byte: it is the high byte of the `f16` of the same value.
pub fn f8e5m2_to_f32(bits: u8) -> f32 {
    f16::from_bits(u16::from(bits) << 8).to_f32()
}

/// Decodes an `f4E2M1FN` nibble (bit 3 is the sign): 0, 0.5, 1, 1.5, 2, 3, 4, 6.
pub fn f4e2m1fn_to_f32(nibble: u8) -> f32 {
    const MAGNITUDES: [f32; 8] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];
    let m = MAGNITUDES[usize::from(nibble & 0x07)];
    if nibble & 0x08 != 0 {
        -m
    } else {
        m
    }
}

/// The SplitMix64 generator: tiny, fast, and good enough for test inputs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on `k / 2^(bits-1) - 1` for `k` in `[0, 2^bits)`: exactly
    /// representable in any float with at least `bits - 1` mantissa bits.
    fn grid(&mut self, bits: u32) -> f64 {
        let k = self.next_u64() >> (64 - bits);
        k as f64 / (1u64 << (bits - 1)) as f64 - 1.0
    }

    /// Uniform on `[0, n)`.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The codes of a small float format whose value is finite and in `[-1, 1)`.
fn codes_in_unit_range(bits: u32, decode: fn(u8) -> f32) -> Vec<u8> {
    (0..1u16 << bits)
        .map(|c| c as u8)
        .filter(|&c| (-1.0..1.0).contains(&decode(c)))
        .collect()
}

/// One pseudo-random tensor of `dtype` x `shape` drawn from `rng`.
fn random_tensor(rng: &mut SplitMix64, dtype: DType, shape: &[usize]) -> HostTensor {
    let mut t = HostTensor::zeros(dtype, shape.to_vec());
    let n = t.num_elements();
    let out = t.bytes_mut();
    match dtype {
        DType::F32 => fill(out, || (rng.grid(24) as f32).to_le_bytes()),
        DType::F64 => fill(out, || rng.grid(53).to_le_bytes()),
        DType::F16 => fill(out, || f16::from_f64(rng.grid(11)).to_le_bytes()),
        DType::BF16 => fill(out, || bf16::from_f64(rng.grid(8)).to_le_bytes()),
        DType::I64 => fill(out, || (rng.below(8) as i64).to_le_bytes()),
        DType::I32 => fill(out, || (rng.below(8) as i32).to_le_bytes()),
        DType::I8 | DType::UI8 => fill(out, || [rng.below(8) as u8]),
        DType::I1 => fill(out, || [rng.below(2) as u8]),
        DType::F8E4M3FN | DType::F8E5M2 => {
            let decode: fn(u8) -> f32 = if dtype == DType::F8E4M3FN {
                f8e4m3fn_to_f32
            } else {
                f8e5m2_to_f32
            };
            let codes = codes_in_unit_range(8, decode);
            fill(out, || [codes[rng.below(codes.len() as u64) as usize]]);
        }
        DType::F4E2M1FN | DType::I4 | DType::UI4 => {
            let codes = match dtype {
                DType::F4E2M1FN => codes_in_unit_range(4, f4e2m1fn_to_f32),
                _ => (0..8).collect(),
            };
            for i in 0..n {
                let code = codes[rng.below(codes.len() as u64) as usize];
                out[i / 2] |= code << (4 * (i % 2));
            }
        }
    }
    t
}

/// Fills `out` with consecutive `N`-byte elements made by `next`.
fn fill<const N: usize>(out: &mut [u8], mut next: impl FnMut() -> [u8; N]) {
    for chunk in out.chunks_exact_mut(N) {
        chunk.copy_from_slice(&next());
    }
}

/// Deterministic pseudo-random values for every input of `manifest`, keyed by name.
///
/// The same manifest and seed always give the same tensors. Floats are uniform
/// in `[-1, 1)` on a grid the type represents exactly (f8/f4: uniform over the
/// codes whose value lies in `[-1, 1)`); `i1` is 0 or 1; the other integer
/// types (`i4` and `ui4` included) are uniform in `[0, 8)`.
pub fn random_inputs(
    manifest: &Manifest,
    seed: u64,
) -> std::collections::BTreeMap<String, HostTensor> {
    let mut rng = SplitMix64(seed);
    manifest
        .inputs
        .iter()
        .map(|spec| {
            (
                spec.name.clone(),
                random_tensor(&mut rng, spec.dtype, &spec.shape),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::TensorSpec;

    #[test]
    fn aligned_bytes_are_aligned() {
        for len in [0, 1, 7, 8, 9, 100] {
            let b = AlignedBytes::from_slice(&vec![3u8; len]);
            assert_eq!(b.as_ptr() as usize % 8, 0);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&x| x == 3));
        }
    }

    #[test]
    fn from_f32_and_back() {
        let t = HostTensor::from_f32([2, 2], &[1.0, -2.5, 3.25, 0.0]).unwrap();
        assert_eq!(t.dtype(), DType::F32);
        assert_eq!(t.num_elements(), 4);
        assert_eq!(t.bytes().len(), 16);
        assert_eq!(&t.bytes()[4..8], &(-2.5f32).to_le_bytes());
        assert_eq!(t.to_f32_vec(), vec![1.0, -2.5, 3.25, 0.0]);
        assert_eq!(t.as_slice::<f32>().unwrap(), &[1.0, -2.5, 3.25, 0.0]);
        assert!(t.as_slice::<i32>().is_none());
        let err = HostTensor::from_f32([3], &[1.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tensor of type f32 and shape [3] needs 12 bytes of data, got 4"
        );
    }

    #[test]
    fn conversions_to_f32() {
        let f16s = [f16::from_f32(0.5), f16::from_f32(-3.0)];
        let t = HostTensor::from_values([2], &f16s).unwrap();
        assert_eq!(t.to_f32_vec(), vec![0.5, -3.0]);
        let t =
            HostTensor::from_values([2], &[bf16::from_f32(1.5), bf16::from_f32(-0.25)]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![1.5, -0.25]);
        let t = HostTensor::from_values([3], &[-7i64, 0, 9]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![-7.0, 0.0, 9.0]);
        let t = HostTensor::from_values([2], &[-128i8, 127]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![-128.0, 127.0]);
        let t = HostTensor::from_values([2], &[0.1f64, -2.0]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![0.1f32, -2.0]);
        let t = HostTensor::from_bytes(DType::I1, [3], &[1, 0, 1]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![1.0, 0.0, 1.0]);
        // i4: 0x9 is -7, 0x7 is 7, 0xf is -1; three elements in two bytes.
        let t = HostTensor::from_bytes(DType::I4, [3], &[0x79, 0x0f]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![-7.0, 7.0, -1.0]);
        let t = HostTensor::from_bytes(DType::UI4, [3], &[0x79, 0x0f]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![9.0, 7.0, 15.0]);
        // f4E2M1FN: 0x1 = 0.5, 0xf = -6, 0x7 = 6.
        let t = HostTensor::from_bytes(DType::F4E2M1FN, [3], &[0xf1, 0x07]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![0.5, -6.0, 6.0]);
        // f8E4M3FN: 0x38 = 1.0, 0x7e = 448 (max), 0x01 = 2^-9, 0xc0 = -2.
        let t = HostTensor::from_bytes(DType::F8E4M3FN, [4], &[0x38, 0x7e, 0x01, 0xc0]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![1.0, 448.0, 2f32.powi(-9), -2.0]);
        assert!(f8e4m3fn_to_f32(0x7f).is_nan());
        // f8E5M2: 0x3c = 1.0, 0x7b = 57344 (max), 0x7c = inf.
        let t = HostTensor::from_bytes(DType::F8E5M2, [3], &[0x3c, 0x7b, 0x7c]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![1.0, 57344.0, f32::INFINITY]);
    }

    #[test]
    fn random_inputs_are_deterministic_and_in_range() {
        let specs: Vec<TensorSpec> = DType::ALL
            .iter()
            .map(|&d| TensorSpec::new(d.as_str(), d, [3, 67]))
            .collect();
        let manifest = Manifest {
            format_version: 1,
            compiler_version: String::new(),
            target: String::new(),
            pipeline: String::new(),
            entry: "e".into(),
            function: "f".into(),
            inputs: specs,
            outputs: vec![],
            weights: vec![],
        };
        let a = random_inputs(&manifest, 7);
        assert_eq!(a, random_inputs(&manifest, 7));
        assert_ne!(a, random_inputs(&manifest, 8));
        for d in DType::ALL {
            let t = &a[d.as_str()];
            assert_eq!(t.dtype(), d);
            assert_eq!(t.shape(), &[3, 67]);
            let v = t.to_f32_vec();
            assert_eq!(v.len(), 201);
            let (lo, hi) = match d {
                _ if d.is_float() => (-1.0, 1.0),
                DType::I1 => (0.0, 2.0),
                _ => (0.0, 8.0),
            };
            assert!(v.iter().all(|x| (lo..hi).contains(x)), "{d}: {v:?}");
            let distinct: std::collections::BTreeSet<u32> = v.iter().map(|x| x.to_bits()).collect();
            assert!(distinct.len() > 1, "{d} is constant");
            if d.is_packed() {
                // The pad nibble of the last byte stays zero.
                assert_eq!(t.bytes()[100] >> 4, 0);
            }
        }
    }
}
