// RUN: lowbit opt %s --pass-pipeline=fuse-qdq --diff-numerics=random:7

// fuse-qdq is exact up to rounding: on seeded random inputs the fused graph agrees with
// the unfused one to f32 rounding (the integer sum is exact; only the epilogue and the
// unfused graph's f32 intermediates round). The ×2 after the matmul folds into the weight
// scales (qmatmul-scale-fold).
func @f(%arg0: tensor<4x16xi8>, %arg1: tensor<16x8xi8>) -> tensor<4x8xf32> {
  %0 = graph.constant {value = dense<[0.013, 0.021, 0.5, 0.7]> : tensor<4xf32>} : tensor<4xf32>
  %1 = graph.constant {value = dense<[0.1, 0.2, 0.3, 0.7, 1.1, 0.05, 0.9, 0.33]> : tensor<8xf32>} : tensor<8xf32>
  %2 = lowbit.dequantize %arg0, %0 {axis = 0 : i64} : tensor<4x16xf32>
  %3 = lowbit.dequantize %arg1, %1 {axis = 1 : i64} : tensor<16x8xf32>
  %4 = graph.matmul %2, %3 : tensor<4x8xf32>
  %5 = graph.constant {value = dense<2.0> : tensor<4x8xf32>} : tensor<4x8xf32>
  %6 = graph.mul %4, %5 : tensor<4x8xf32>
  return %6
}
