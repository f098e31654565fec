// RUN: lowbit opt %s --split-input-file --verify-diagnostics

// The declared result shape differs from the inferred one.
func @result_type(%arg0: tensor<4x8xf32>, %arg1: tensor<f32>) -> tensor<8x4xi8> {
  %0 = lowbit.quantize %arg0, %arg1 : tensor<8x4xi8>
  return %0
}

// -----

// Quantize reads floats.
func @quantize_input(%arg0: tensor<4xi32>, %arg1: tensor<f32>) -> tensor<4xi8> {
  %0 = lowbit.quantize %arg0, %arg1 : tensor<4xi8>
  return %0
}

// -----

// Quantize writes an integer, float8 or float4 storage type.
func @quantize_result(%arg0: tensor<4xf32>, %arg1: tensor<f32>) -> tensor<4xf16> {
  %0 = lowbit.quantize %arg0, %arg1 : tensor<4xf16>
  return %0
}

// -----

// Scales are floats.
func @scale_elem(%arg0: tensor<4xf32>, %arg1: tensor<i32>) -> tensor<4xi8> {
  %0 = lowbit.quantize %arg0, %arg1 : tensor<4xi8>
  return %0
}

// -----

// Without `axis` the scale is per-tensor.
func @per_tensor_scale(%arg0: tensor<4x8xf32>, %arg1: tensor<4xf32>) -> tensor<4x8xi8> {
  %0 = lowbit.quantize %arg0, %arg1 : tensor<4x8xi8>
  return %0
}

// -----

// A per-axis scale has one entry per index along the axis.
func @per_axis_scale(%arg0: tensor<4x8xf32>, %arg1: tensor<8xf32>) -> tensor<4x8xi8> {
  %0 = lowbit.quantize %arg0, %arg1 {axis = 0 : i64} : tensor<4x8xi8>
  return %0
}

// -----

// A per-block scale has one entry per block along the axis.
func @per_block_scale(%arg0: tensor<2x16xf32>, %arg1: tensor<2x4xf32>) -> tensor<2x16xi4> {
  %0 = lowbit.quantize %arg0, %arg1 {axis = 1 : i64, block_size = 8 : i64} : tensor<2x16xi4>
  return %0
}

// -----

// A block size needs an axis to run along.
func @block_without_axis(%arg0: tensor<16xf32>, %arg1: tensor<2xf32>) -> tensor<16xi8> {
  %0 = lowbit.quantize %arg0, %arg1 {block_size = 8 : i64} : tensor<16xi8>
  return %0
}

// -----

// Block sizes are positive.
func @block_size_zero(%arg0: tensor<16xf32>, %arg1: tensor<2xf32>) -> tensor<16xi8> {
  %0 = lowbit.quantize %arg0, %arg1 {axis = 0 : i64, block_size = 0 : i64} : tensor<16xi8>
  return %0
}

// -----

// The quantization axis is within the operand's rank.
func @axis_range(%arg0: tensor<4x8xf32>, %arg1: tensor<4xf32>) -> tensor<4x8xi8> {
  %0 = lowbit.quantize %arg0, %arg1 {axis = 2 : i64} : tensor<4x8xi8>
  return %0
}

// -----

// A zero point has the quantized element type.
func @zero_point_elem(%arg0: tensor<4xf32>, %arg1: tensor<f32>, %arg2: tensor<i8>) -> tensor<4xui8> {
  %0 = lowbit.quantize %arg0, %arg1, %arg2 : tensor<4xui8>
  return %0
}

// -----

// A zero point has the scale's shape.
func @zero_point_shape(%arg0: tensor<4x8xf32>, %arg1: tensor<4xf32>, %arg2: tensor<1xi8>) -> tensor<4x8xi8> {
  %0 = lowbit.quantize %arg0, %arg1, %arg2 {axis = 0 : i64} : tensor<4x8xi8>
  return %0
}

// -----

// Float formats take no zero point.
func @zero_point_float(%arg0: tensor<4xf8E4M3FN>, %arg1: tensor<f32>, %arg2: tensor<f8E4M3FN>) -> tensor<4xf32> {
  %0 = lowbit.dequantize %arg0, %arg1, %arg2 : tensor<4xf32>
  return %0
}

// -----

// Dequantize reads a storage type.
func @dequantize_input(%arg0: tensor<4xf32>, %arg1: tensor<f32>) -> tensor<4xf32> {
  %0 = lowbit.dequantize %arg0, %arg1 : tensor<4xf32>
  return %0
}

// -----

// Dequantize produces floats.
func @dequantize_result(%arg0: tensor<4xi8>, %arg1: tensor<f32>) -> tensor<4xi32> {
  %0 = lowbit.dequantize %arg0, %arg1 : tensor<4xi32>
  return %0
}

// -----

// Integer matmul operands are integers.
func @qmatmul_float(%arg0: tensor<2x8xf16>, %arg1: tensor<8x4xi8>, %arg2: tensor<f32>) -> tensor<2x4xf32> {
  %0 = lowbit.qmatmul %arg0, %arg1, %arg2, %arg2 : tensor<2x4xf32>
  return %0
}

// -----

// Integer matmul operands are matrices (or batches of them).
func @qmatmul_rank(%arg0: tensor<8xi8>, %arg1: tensor<8x4xi8>, %arg2: tensor<f32>) -> tensor<4xf32> {
  %0 = lowbit.qmatmul %arg0, %arg1, %arg2, %arg2 : tensor<4xf32>
  return %0
}

// -----

// Integer matmul inner dimensions agree.
func @qmatmul_inner(%arg0: tensor<2x8xi8>, %arg1: tensor<4x4xi8>, %arg2: tensor<f32>) -> tensor<2x4xf32> {
  %0 = lowbit.qmatmul %arg0, %arg1, %arg2, %arg2 : tensor<2x4xf32>
  return %0
}

// -----

// Integer matmul batch dims broadcast.
func @qmatmul_batch(%arg0: tensor<2x2x8xi8>, %arg1: tensor<3x8x4xi8>, %arg2: tensor<f32>) -> tensor<2x2x4xf32> {
  %0 = lowbit.qmatmul %arg0, %arg1, %arg2, %arg2 : tensor<2x2x4xf32>
  return %0
}

// -----

// Scales broadcast to the output: a per-column scale of the wrong length.
func @qmatmul_scale(%arg0: tensor<2x8xi8>, %arg1: tensor<8x4xi8>, %arg2: tensor<f32>, %arg3: tensor<8xf32>) -> tensor<2x4xf32> {
  %0 = lowbit.qmatmul %arg0, %arg1, %arg2, %arg3 : tensor<2x4xf32>
  return %0
}

// -----

// A zero point has its operand's element type.
func @qmatmul_zero_elem(%arg0: tensor<2x8xi8>, %arg1: tensor<8x4xi8>, %arg2: tensor<f32>, %arg3: tensor<2x1xui8>) -> tensor<2x4xf32> {
  %0 = lowbit.qmatmul %arg0, %arg1, %arg2, %arg2, %arg3 : tensor<2x4xf32>
  return %0
}

// -----

// The accumulator result is a float or i32.
func @qmatmul_result(%arg0: tensor<2x8xi8>, %arg1: tensor<8x4xi8>, %arg2: tensor<f32>) -> tensor<2x4xi8> {
  %0 = lowbit.qmatmul %arg0, %arg1, %arg2, %arg2 : tensor<2x4xi8>
  return %0
}

// -----

// Only 4-bit types pack into nibbles.
func @pack_elem(%arg0: tensor<8xi8>) -> tensor<4xui8> {
  %0 = lowbit.pack %arg0 : tensor<4xui8>
  return %0
}

// -----

// Packing needs a last dim.
func @pack_rank(%arg0: tensor<i4>) -> tensor<ui8> {
  %0 = lowbit.pack %arg0 : tensor<ui8>
  return %0
}

// -----

// Unpacking reads ui8 bytes.
func @unpack_input(%arg0: tensor<4xi8>) -> tensor<8xi4> {
  %0 = lowbit.unpack %arg0 : tensor<8xi4>
  return %0
}

// -----

// Each byte unpacks into at most two nibbles.
func @unpack_len(%arg0: tensor<4xui8>) -> tensor<6xi4> {
  %0 = lowbit.unpack %arg0 : tensor<6xi4>
  return %0
}

// -----

// A codebook is [K, v].
func @codebook_rank(%arg0: tensor<4xui8>, %arg1: tensor<16xf32>) -> tensor<4xf32> {
  %0 = lowbit.codebook %arg0, %arg1 : tensor<4xf32>
  return %0
}

// -----

// Codebook indices are integers.
func @codebook_indices(%arg0: tensor<4xf32>, %arg1: tensor<16x1xf32>) -> tensor<4xf32> {
  %0 = lowbit.codebook %arg0, %arg1 : tensor<4xf32>
  return %0
}

// -----

// A lookup whose result dim does not fit in 64 bits.
func @codebook_overflow(%arg0: tensor<0x4611686018427387903xi32>, %arg1: tensor<0x4xf32>) -> tensor<0x4611686018427387903xf32> {
  %0 = lowbit.codebook %arg0, %arg1 : tensor<0x4611686018427387903xf32>
  return %0
}
