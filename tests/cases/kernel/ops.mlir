// RUN: lowbit opt %s --split-input-file

// GEMMs with each epilogue, both b layouts, with and without bias and tile hints, and an
// integer GEMM.
func @gemm(%arg0: tensor<2x3x8xf32>, %arg1: tensor<8x4xf32>, %arg2: tensor<4x8xf32>, %arg3: tensor<4xf32>, %arg4: tensor<4x8xf16>, %arg5: tensor<2x8xf16>, %arg6: tensor<2x4xi32>, %arg7: tensor<4x2xi32>) -> (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<4x2xf16>, tensor<2x2xi32>) {
  %0 = kernel.gemm %arg0, %arg1 {epilogue = "none", transpose_b = false} : tensor<2x3x4xf32>
  %1 = kernel.gemm %arg0, %arg2, %arg3 {epilogue = "relu", tile_m = 4 : i64, tile_n = 4 : i64, transpose_b = true} : tensor<2x3x4xf32>
  %2 = kernel.gemm %arg0, %arg1, %arg3 {epilogue = "gelu", transpose_b = false} : tensor<2x3x4xf32>
  %3 = kernel.gemm %arg0, %arg2 {epilogue = "gelu_tanh", tile_m = 32 : i64, transpose_b = true} : tensor<2x3x4xf32>
  %4 = kernel.gemm %arg4, %arg5 {epilogue = "silu", tile_n = 16 : i64, transpose_b = true} : tensor<4x2xf16>
  %5 = kernel.gemm %arg6, %arg7 {epilogue = "relu", transpose_b = false} : tensor<2x2xi32>
  return %0, %1, %2, %3, %4, %5
}

// -----

// Streaming-softmax attention, with and without a mask, MHA and GQA heads.
func @attention(%arg0: tensor<1x2x4x4xf16>, %arg1: tensor<1x2x4x4xf16>, %arg2: tensor<1x1x4x4xf16>, %arg3: tensor<1x1x4x4xf16>, %arg4: tensor<1x1x4x4xi1>) -> (tensor<1x2x4x4xf16>, tensor<1x2x4x4xf16>, tensor<1x2x4x4xf16>) {
  %0 = kernel.attention %arg0, %arg1, %arg1 {causal = true, scale = 0.5 : f32} : tensor<1x2x4x4xf16>
  %1 = kernel.attention %arg0, %arg2, %arg2, %arg3 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf16>
  %2 = kernel.attention %arg0, %arg1, %arg1, %arg4 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf16>
  return %0, %1, %2
}

// -----

// Residual add fused with layer normalization over the last dim.
func @add_layer_norm(%arg0: tensor<2x3x8xf32>, %arg1: tensor<2x3x8xf32>, %arg2: tensor<8xf32>, %arg3: tensor<8xf32>, %arg4: tensor<8xbf16>, %arg5: tensor<8xbf16>) -> (tensor<2x3x8xf32>, tensor<8xbf16>) {
  %0 = kernel.add_layer_norm %arg0, %arg1, %arg2, %arg3 {epsilon = 1.0e-5 : f32} : tensor<2x3x8xf32>
  %1 = kernel.add_layer_norm %arg4, %arg5, %arg4, %arg5 {epsilon = 0.0 : f32} : tensor<8xbf16>
  return %0, %1
}
