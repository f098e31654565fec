// RUN: lowbit opt %s --split-input-file --pass-pipeline=fuse-qdq --print-locs

// A constant factor after a dequantize folds into its scale (EXACT-R).
func @fold_factor(%arg0: tensor<2x3xi8>) -> tensor<2x3xf32> {
  %0 = graph.constant {value = dense<[0.5, 0.25, 2.0]> : tensor<3xf32>} : tensor<3xf32> loc("s")
  %1 = lowbit.dequantize %arg0, %0 {axis = 1 : i64} : tensor<2x3xf32> loc("dq")
  %2 = graph.constant {value = dense<0.125> : tensor<2x3xf32>} : tensor<2x3xf32> loc("c")
  %3 = graph.mul %1, %2 : tensor<2x3xf32> loc("mul")
  return %3
}

// -----

// A weight stored [out, in] with per-output-row scales, transposed for the matmul: the
// transpose moves to the int8 side (the scale axis follows it), which makes the scales
// per-column of the matmul's right operand, and the matmul fuses.
func @transposed_weight(%arg0: tensor<4x8xi8>, %arg1: tensor<5x8xi8>) -> tensor<4x5xf32> {
  %0 = graph.constant {value = dense<0.03> : tensor<f32>} : tensor<f32>
  %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf32>} : tensor<5xf32>
  %2 = lowbit.dequantize %arg0, %0 : tensor<4x8xf32> loc("dq_x")
  %3 = lowbit.dequantize %arg1, %1 {axis = 0 : i64} : tensor<5x8xf32> loc("dq_w")
  %4 = graph.transpose %3 {perm = array<i64: 1, 0>} : tensor<8x5xf32> loc("wt")
  %5 = graph.matmul %2, %4 : tensor<4x5xf32> loc("mm")
  return %5
}

// -----

// Negative: a factor that is not a splat does not fold.
func @not_a_splat(%arg0: tensor<2x3xi8>) -> tensor<2x3xf32> {
  %0 = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32>
  %1 = lowbit.dequantize %arg0, %0 : tensor<2x3xf32>
  %2 = graph.constant {value = dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>} : tensor<2x3xf32>
  %3 = graph.mul %1, %2 : tensor<2x3xf32>
  return %3
}
