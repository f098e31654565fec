// RUN: lowbit opt %s --split-input-file

// Per-tensor quantization: a scalar or single-entry scale, with and without a zero point.
func @per_tensor(%arg0: tensor<4x8xf32>, %arg1: tensor<f32>, %arg2: tensor<i8>, %arg3: tensor<1xf16>) -> (tensor<4x8xf32>, tensor<4x8xf16>) {
  %0 = lowbit.quantize %arg0, %arg1, %arg2 : tensor<4x8xi8>
  %1 = lowbit.dequantize %0, %arg1, %arg2 : tensor<4x8xf32>
  %2 = lowbit.quantize %arg0, %arg3 : tensor<4x8xui8>
  %3 = lowbit.dequantize %2, %arg3 : tensor<4x8xf16>
  return %1, %3
}

// -----

// Per-axis quantization: one scale (and zero point) per entry along `axis`.
func @per_axis(%arg0: tensor<4x8xf16>, %arg1: tensor<4xf16>, %arg2: tensor<4xui4>, %arg3: tensor<8xf32>) -> (tensor<4x8xf16>, tensor<4x8xbf16>) {
  %0 = lowbit.quantize %arg0, %arg1, %arg2 {axis = 0 : i64} : tensor<4x8xui4>
  %1 = lowbit.dequantize %0, %arg1, %arg2 {axis = 0 : i64} : tensor<4x8xf16>
  %2 = lowbit.quantize %arg0, %arg3 {axis = -1 : i64} : tensor<4x8xi4>
  %3 = lowbit.dequantize %2, %arg3 {axis = 1 : i64} : tensor<4x8xbf16>
  return %1, %3
}

// -----

// Per-block (group) quantization, including a block size that does not divide the dim.
func @per_block(%arg0: tensor<2x16xf32>, %arg1: tensor<2x2xf32>, %arg2: tensor<2x2xi16>, %arg3: tensor<2x4xf32>, %arg4: tensor<2x4xui16>) -> (tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xi32>) {
  %0 = lowbit.quantize %arg0, %arg1, %arg2 {axis = 1 : i64, block_size = 8 : i64} : tensor<2x16xi16>
  %1 = lowbit.dequantize %0, %arg1, %arg2 {axis = 1 : i64, block_size = 8 : i64} : tensor<2x16xf32>
  %2 = lowbit.quantize %arg0, %arg3, %arg4 {axis = -1 : i64, block_size = 5 : i64} : tensor<2x16xui16>
  %3 = lowbit.dequantize %2, %arg3, %arg4 {axis = 1 : i64, block_size = 5 : i64} : tensor<2x16xf32>
  %4 = lowbit.quantize %arg0, %arg1 {axis = 1 : i64, block_size = 8 : i64} : tensor<2x16xi32>
  return %1, %3, %4
}

// -----

// Float8 and float4 formats; NVFP4-style blocks whose f8 scales are themselves dequantized
// by a per-tensor f32 scale (a two-level scale).
func @minifloats(%arg0: tensor<2x32xf32>, %arg1: tensor<f32>, %arg2: tensor<2xf32>, %arg3: tensor<2x2xf8E4M3FN>) -> (tensor<2x32xf16>, tensor<2x32xf32>, tensor<2x32xf32>) {
  %0 = lowbit.quantize %arg0, %arg1 : tensor<2x32xf8E4M3FN>
  %1 = lowbit.dequantize %0, %arg1 : tensor<2x32xf16>
  %2 = lowbit.quantize %arg0, %arg2 {axis = 0 : i64} : tensor<2x32xf8E5M2>
  %3 = lowbit.dequantize %2, %arg2 {axis = 0 : i64} : tensor<2x32xf32>
  %4 = lowbit.dequantize %arg3, %arg1 : tensor<2x2xf32>
  %5 = lowbit.quantize %arg0, %4 {axis = 1 : i64, block_size = 16 : i64} : tensor<2x32xf4E2M1FN>
  %6 = lowbit.dequantize %5, %4 {axis = 1 : i64, block_size = 16 : i64} : tensor<2x32xf32>
  return %1, %3, %6
}

// -----

// Integer matmuls: per-row and per-column scales, zero points on one or both sides,
// batch broadcasting, and an i32 accumulator result.
func @qmatmul(%arg0: tensor<2x4x8xi8>, %arg1: tensor<8x4xui8>, %arg2: tensor<4x1xf32>, %arg3: tensor<4xf32>, %arg4: tensor<4x1xi8>, %arg5: tensor<4xui8>, %arg6: tensor<1x4x8xi4>, %arg7: tensor<2x8x4xi4>, %arg8: tensor<f32>) -> (tensor<2x4x4xf32>, tensor<2x4x4xf16>, tensor<2x4x4xbf16>, tensor<2x4x4xi32>) {
  %0 = lowbit.qmatmul %arg0, %arg1, %arg2, %arg3 : tensor<2x4x4xf32>
  %1 = lowbit.qmatmul %arg0, %arg1, %arg2, %arg3, %arg4, %arg5 : tensor<2x4x4xf16>
  %2 = lowbit.qmatmul %arg0, %arg1, %arg8, %arg3, %arg4 : tensor<2x4x4xbf16>
  %3 = lowbit.qmatmul %arg6, %arg7, %arg8, %arg8 : tensor<2x4x4xi32>
  return %0, %1, %2, %3
}

// -----

// Nibble packing of every 4-bit type, with odd and even last dims.
func @pack(%arg0: tensor<4x7xi4>, %arg1: tensor<2x8xui4>, %arg2: tensor<16xf4E2M1FN>) -> (tensor<4x7xi4>, tensor<2x8xui4>, tensor<16xf4E2M1FN>, tensor<4x8xi4>) {
  %0 = lowbit.pack %arg0 : tensor<4x4xui8>
  %1 = lowbit.unpack %0 : tensor<4x7xi4>
  %2 = lowbit.pack %arg1 : tensor<2x4xui8>
  %3 = lowbit.unpack %2 : tensor<2x8xui4>
  %4 = lowbit.pack %arg2 : tensor<8xui8>
  %5 = lowbit.unpack %4 : tensor<16xf4E2M1FN>
  %6 = lowbit.unpack %0 : tensor<4x8xi4>
  return %1, %3, %5, %6
}

// -----

// Codebook lookups: scalar entries (an NF4-style table) and vector entries.
func @codebook(%arg0: tensor<2x8xui4>, %arg1: tensor<16x1xf32>, %arg2: tensor<2x4xi32>, %arg3: tensor<4x2xf16>) -> (tensor<2x8xf32>, tensor<2x8xf16>) {
  %0 = lowbit.codebook %arg0, %arg1 : tensor<2x8xf32>
  %1 = lowbit.codebook %arg2, %arg3 : tensor<2x8xf16>
  return %0, %1
}
