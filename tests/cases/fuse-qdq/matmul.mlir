// RUN: lowbit opt %s --split-input-file --pass-pipeline=fuse-qdq --print-locs --pass-stats

// Per-row activation scales and per-column weight scales: the matmul of the two
// dequantized tensors becomes one integer matmul with the scales as its epilogue
// (EXACT-R). The row scale is reshaped to [M, 1] so that it broadcasts against the output;
// the qmatmul carries the fused location of the three ops it replaces.
func @per_row_per_column(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>) -> tensor<4x5xf32> {
  %0 = graph.constant {value = dense<[0.5, 0.25, 0.125, 3.0]> : tensor<4xf32>} : tensor<4xf32> loc("sx")
  %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf32>} : tensor<5xf32> loc("sw")
  %2 = lowbit.dequantize %arg0, %0 {axis = 0 : i64} : tensor<4x8xf32> loc("dq_x")
  %3 = lowbit.dequantize %arg1, %1 {axis = 1 : i64} : tensor<8x5xf32> loc("dq_w")
  %4 = graph.matmul %2, %3 : tensor<4x5xf32> loc("mm")
  return %4
}

// -----

// Per-tensor scales with zero points on both sides (ONNX QDQ with uint8 activations).
func @zero_points(%arg0: tensor<4x8xui8>, %arg1: tensor<8x5xi8>) -> tensor<4x5xf32> {
  %0 = graph.constant {value = dense<0.02> : tensor<f32>} : tensor<f32>
  %1 = graph.constant {value = dense<128> : tensor<ui8>} : tensor<ui8>
  %2 = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32>
  %3 = graph.constant {value = dense<-3> : tensor<i8>} : tensor<i8>
  %4 = lowbit.dequantize %arg0, %0, %1 : tensor<4x8xf32>
  %5 = lowbit.dequantize %arg1, %2, %3 : tensor<8x5xf32>
  %6 = graph.matmul %4, %5 : tensor<4x5xf32>
  return %6
}

// -----

// Batched activations with a per-tensor scale against a per-column weight.
func @batched(%arg0: tensor<2x4x8xi8>, %arg1: tensor<8x5xi8>) -> tensor<2x4x5xf32> {
  %0 = graph.constant {value = dense<0.03> : tensor<f32>} : tensor<f32>
  %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf32>} : tensor<5xf32>
  %2 = lowbit.dequantize %arg0, %0 : tensor<2x4x8xf32>
  %3 = lowbit.dequantize %arg1, %1 {axis = 1 : i64} : tensor<8x5xf32>
  %4 = graph.matmul %2, %3 : tensor<2x4x5xf32>
  return %4
}

// -----

// The dequantized activation has another use: it stays for the add, and the matmul still
// reads the int8 tensor (a quarter of the bytes of the f32 one).
func @intermediate_with_another_use(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>, %arg2: tensor<4x8xf32>) -> (tensor<4x5xf32>, tensor<4x8xf32>) {
  %0 = graph.constant {value = dense<0.03> : tensor<f32>} : tensor<f32>
  %1 = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32>
  %2 = lowbit.dequantize %arg0, %0 : tensor<4x8xf32> loc("dq_x")
  %3 = lowbit.dequantize %arg1, %1 : tensor<8x5xf32> loc("dq_w")
  %4 = graph.matmul %2, %3 : tensor<4x5xf32> loc("mm")
  %5 = graph.add %2, %arg2 : tensor<4x8xf32> loc("add")
  return %4, %5
}

// -----

// Negative: the activation scale varies along the reduction axis (per-column of x), so it
// cannot move out of the sum. Nothing changes.
func @x_scale_along_k(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>) -> tensor<4x5xf32> {
  %0 = graph.constant {value = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]> : tensor<8xf32>} : tensor<8xf32>
  %1 = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32>
  %2 = lowbit.dequantize %arg0, %0 {axis = 1 : i64} : tensor<4x8xf32>
  %3 = lowbit.dequantize %arg1, %1 : tensor<8x5xf32>
  %4 = graph.matmul %2, %3 : tensor<4x5xf32>
  return %4
}

// -----

// Negative: per-row weight scales (along K) and per-block weight scales do not fuse.
func @w_scale_along_k(%arg0: tensor<4x8xi8>, %arg1: tensor<8x5xi8>, %arg2: tensor<8x5xi4>) -> (tensor<4x5xf32>, tensor<4x5xf32>) {
  %0 = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32>
  %1 = graph.constant {value = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]> : tensor<8xf32>} : tensor<8xf32>
  %2 = graph.constant {value = dense<[[0.5, 0.25, 1.0, 2.0, 4.0], [1.5, 0.5, 0.5, 0.5, 0.5]]> : tensor<2x5xf32>} : tensor<2x5xf32>
  %3 = lowbit.dequantize %arg0, %0 : tensor<4x8xf32>
  %4 = lowbit.dequantize %arg1, %1 {axis = 0 : i64} : tensor<8x5xf32>
  %5 = graph.matmul %3, %4 : tensor<4x5xf32>
  %6 = lowbit.dequantize %arg2, %2 {axis = 0 : i64, block_size = 4 : i64} : tensor<8x5xf32>
  %7 = graph.matmul %3, %6 : tensor<4x5xf32>
  return %5, %7
}

// -----

// Negative: float8 storage has no integer matmul.
func @float8(%arg0: tensor<4x8xf8E4M3FN>, %arg1: tensor<8x5xi8>) -> tensor<4x5xf32> {
  %0 = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32>
  %1 = lowbit.dequantize %arg0, %0 : tensor<4x8xf32>
  %2 = lowbit.dequantize %arg1, %0 : tensor<8x5xf32>
  %3 = graph.matmul %1, %2 : tensor<4x5xf32>
  return %3
}
