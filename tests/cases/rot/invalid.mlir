// RUN: lowbit opt %s --split-input-file --verify-diagnostics

// A rotation keeps its operand's type.
func @result_type(%arg0: tensor<2x8xf32>) -> tensor<2x8xf16> {
  %0 = rot.hadamard %arg0 {axis = -1 : i64} : tensor<2x8xf16>
  return %0
}

// -----

// The rotation axis is within the rank.
func @hadamard_axis(%arg0: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %0 = rot.hadamard %arg0 {axis = -3 : i64} : tensor<2x8xf32>
  return %0
}

// -----

// Rotations compute in floats.
func @hadamard_elem(%arg0: tensor<8xi8>) -> tensor<8xi8> {
  %0 = rot.hadamard %arg0 {axis = 0 : i64} : tensor<8xi8>
  return %0
}

// -----

// No Hadamard matrix of order 10 exists (orders above 2 are multiples of 4).
func @hadamard_size(%arg0: tensor<2x10xf32>) -> tensor<2x10xf32> {
  %0 = rot.hadamard %arg0 {axis = 1 : i64} : tensor<2x10xf32>
  return %0
}

// -----

// The rotation matrix is [n, n] for the rotated dim's size n.
func @rotate_shape(%arg0: tensor<2x4xf32>, %arg1: tensor<2x2xf32>) -> tensor<2x4xf32> {
  %0 = rot.rotate %arg0, %arg1 {axis = 1 : i64} : tensor<2x4xf32>
  return %0
}

// -----

// The rotation matrix shares the operand's element type.
func @rotate_elem(%arg0: tensor<2x4xf32>, %arg1: tensor<4x4xf16>) -> tensor<2x4xf32> {
  %0 = rot.rotate %arg0, %arg1 {axis = 1 : i64} : tensor<2x4xf32>
  return %0
}

// -----

// A Hadamard matrix of order 92 exists, but no construction lowbit has builds it.
func @hadamard_unbuildable(%arg0: tensor<92xf32>) -> tensor<92xf32> {
  %0 = rot.hadamard %arg0 {axis = 0 : i64} : tensor<92xf32>
  return %0
}
