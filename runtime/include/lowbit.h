/*
 * lowbit.h — the C ABI between lowbit-compiled code and the lowbit runtime.
 *
 * An artifact directory written by `lowbit compile MODEL -o DIR` holds:
 *
 *   model.so             a native shared object exporting one entry point per
 *                        compiled function, each of type lowbit_entry_fn;
 *   weights.safetensors  the weights, keyed by name;
 *   manifest.json        what the runtime needs to call the entry (below).
 *
 * Manifest (format_version 1), e.g.:
 *
 *   {
 *     "format_version": 1,
 *     "compiler_version": "0.1.0",
 *     "target": "x86_64-unknown-linux-gnu",
 *     "pipeline": "canonicalize,cse",
 *     "entry": "lowbit_main",
 *     "function": "main",
 *     "inputs":  [{"name": "x",   "dtype": "f32", "shape": [1, 16, 32]}],
 *     "outputs": [{"name": "out", "dtype": "f32", "shape": [1, 16, 32]}],
 *     "weights": [{"name": "wq",  "dtype": "f32", "shape": [32, 32]}]
 *   }
 *
 *   - "entry" is the exported C symbol; "function" the IR function it came from.
 *   - Names are unique within each list; the order of each list is the order
 *     of the matching pointer array below.
 *   - "dtype" uses MLIR spellings: f32 f64 f16 bf16 i64 i32 i8 ui8 i1
 *     f8E4M3FN f8E5M2 f4E2M1FN i4 ui4.
 *   - A runtime rejects any format_version it does not know.
 *
 * Tensor buffers are contiguous, row-major (last dimension fastest), in host
 * (little-endian) byte order, with no padding. Byte size for N elements:
 *   f64 i64: 8N   f32 i32: 4N   f16 bf16: 2N
 *   i8 ui8 f8E4M3FN f8E5M2: N   i1: N (one byte per element, 0 or 1)
 *   i4 ui4 f4E2M1FN: ceil(N / 2), packed two per byte, element 2k in the low
 *   nibble of byte k, element 2k+1 in its high nibble; a final unused high
 *   nibble is zero.
 * Every buffer is aligned to its element size (8 for f64/i64, 4 for f32/i32,
 * 2 for f16/bf16, 1 otherwise).
 *
 * Weights in weights.safetensors use the safetensors dtypes F64 F32 F16 BF16
 * I64 I32 I8 U8 BOOL(i1) F8_E4M3 F8_E5M2 with the manifest's shape. Packed
 * types (i4 ui4 f4E2M1FN) are stored as a U8 (or I8) tensor of exactly
 * ceil(N / 2) bytes, their logical dtype and shape recorded in the header's
 * __metadata__ under "lowbit:NAME" as {"dtype":"i4","shape":[...]}; an f4E2M1FN
 * weight may instead be an F4 tensor of the manifest's shape.
 */
#ifndef LOWBIT_H
#define LOWBIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The manifest format version this header describes. */
#define LOWBIT_FORMAT_VERSION 1

/*
 * An entry point:
 *
 *   inputs   inputs[i] points to the buffer of manifest input i (read only).
 *   outputs  outputs[i] points to the buffer of manifest output i, zero-filled
 *            by the runtime; the entry writes every element it produces.
 *   weights  weights[i] points to the bytes of manifest weight i (read only;
 *            they may live in a read-only memory map of weights.safetensors).
 *
 * Any of the three arrays may be NULL when its manifest list is empty.
 * Buffers do not overlap. The entry reads and writes only within the buffers
 * it is given, keeps no pointer after returning, and is reentrant: the runtime
 * may call it from several threads at once with distinct outputs.
 *
 * Returns 0 on success and a non-zero status on failure; the runtime reports
 * the status and discards the outputs.
 */
typedef int32_t (*lowbit_entry_fn)(const void *const *inputs,
                                   void *const *outputs,
                                   const void *const *weights);

#ifdef __cplusplus
}
#endif

#endif /* LOWBIT_H */
