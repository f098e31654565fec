// RUN: lowbit opt %s --split-input-file

// Hadamard transforms of power-of-two sizes and of K·2^m sizes (K = 12, 20, 28, 36, 40,
// 44, 52, 60), along any axis.
func @hadamard(%arg0: tensor<2x8xf32>, %arg1: tensor<4x16xf16>, %arg2: tensor<24x2xbf16>, %arg3: tensor<1x20xf32>, %arg4: tensor<28xf32>, %arg5: tensor<36xf32>, %arg6: tensor<40xf32>, %arg7: tensor<44xf32>, %arg8: tensor<52xf32>, %arg9: tensor<60xf32>, %arg10: tensor<12xf8E4M3FN>, %arg11: tensor<1x3xf32>) -> (tensor<2x8xf32>, tensor<4x16xf16>, tensor<24x2xbf16>, tensor<1x20xf32>, tensor<28xf32>, tensor<36xf32>, tensor<40xf32>, tensor<44xf32>, tensor<52xf32>, tensor<60xf32>, tensor<12xf8E4M3FN>, tensor<1x3xf32>) {
  %0 = rot.hadamard %arg0 {axis = -1 : i64} : tensor<2x8xf32>
  %1 = rot.hadamard %arg1 {axis = 1 : i64} : tensor<4x16xf16>
  %2 = rot.hadamard %arg2 {axis = 0 : i64} : tensor<24x2xbf16>
  %3 = rot.hadamard %arg3 {axis = 1 : i64} : tensor<1x20xf32>
  %4 = rot.hadamard %arg4 {axis = 0 : i64} : tensor<28xf32>
  %5 = rot.hadamard %arg5 {axis = 0 : i64} : tensor<36xf32>
  %6 = rot.hadamard %arg6 {axis = 0 : i64} : tensor<40xf32>
  %7 = rot.hadamard %arg7 {axis = 0 : i64} : tensor<44xf32>
  %8 = rot.hadamard %arg8 {axis = 0 : i64} : tensor<52xf32>
  %9 = rot.hadamard %arg9 {axis = 0 : i64} : tensor<60xf32>
  %10 = rot.hadamard %arg10 {axis = 0 : i64} : tensor<12xf8E4M3FN>
  %11 = rot.hadamard %arg11 {axis = 0 : i64} : tensor<1x3xf32>
  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11
}

// -----

// Rotations by a matrix operand along the last and a leading axis.
func @rotate(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf32>, %arg2: tensor<3x2x2xf16>, %arg3: tensor<3x3xf16>) -> (tensor<2x4xf32>, tensor<3x2x2xf16>) {
  %0 = rot.rotate %arg0, %arg1 {axis = -1 : i64} : tensor<2x4xf32>
  %1 = rot.rotate %arg2, %arg3 {axis = 0 : i64} : tensor<3x2x2xf16>
  return %0, %1
}
