// RUN: lowbit opt %s --split-input-file --pass-pipeline=fuse-qdq --print-locs

// The W8A8 form the quantization passes write: per-token activation scales (one block
// spanning the hidden dim, scales [B, S, 1]) and per-output-channel weight scales on a
// [out, in] weight. The linear becomes an integer matmul against the transposed int8
// weight, then the bias add (EXACT-R).
func @w8a8_linear(%arg0: tensor<1x3x8xf32>, %arg1: tensor<5x8xi8>, %arg2: tensor<5xf32>) -> tensor<1x3x5xf32> {
  %0 = graph.constant {value = dense<[[[0.5], [0.25], [0.125]]]> : tensor<1x3x1xf32>} : tensor<1x3x1xf32> loc("sx")
  %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1]> : tensor<5xf32>} : tensor<5xf32> loc("sw")
  %2 = lowbit.quantize %arg0, %0 {axis = 2 : i64, block_size = 8 : i64} : tensor<1x3x8xi8> loc("q_x")
  %3 = lowbit.dequantize %2, %0 {axis = 2 : i64, block_size = 8 : i64} : tensor<1x3x8xf32> loc("dq_x")
  %4 = lowbit.dequantize %arg1, %1 {axis = 0 : i64} : tensor<5x8xf32> loc("dq_w")
  %5 = graph.linear %3, %4, %arg2 : tensor<1x3x5xf32> loc("fc")
  return %5
}

// -----

// Negative: group-quantized weights (blocks of 4 along the 8 input channels) have scales
// that vary along the reduction, so the linear stays in float.
func @grouped_weight(%arg0: tensor<3x8xi8>, %arg1: tensor<5x8xi4>) -> tensor<3x5xf32> {
  %0 = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32>
  %1 = graph.constant {value = dense<[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8], [0.9, 1.0]]> : tensor<5x2xf32>} : tensor<5x2xf32>
  %2 = lowbit.dequantize %arg0, %0 : tensor<3x8xf32>
  %3 = lowbit.dequantize %arg1, %1 {axis = 1 : i64, block_size = 4 : i64} : tensor<5x8xf32>
  %4 = graph.linear %2, %3 : tensor<3x5xf32>
  return %4
}
