// RUN: lowbit opt %s --split-input-file --verify-diagnostics

// The declared result shape differs from the inferred one.
func @result_type(%arg0: tensor<2x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<2x8xf32> {
  %0 = kernel.gemm %arg0, %arg1 {epilogue = "none", transpose_b = false} : tensor<2x8xf32>
  return %0
}

// -----

// GEMM epilogues are "none", "relu", "gelu", "gelu_tanh" or "silu".
func @gemm_epilogue(%arg0: tensor<2x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<2x4xf32> {
  %0 = kernel.gemm %arg0, %arg1 {epilogue = "tanh", transpose_b = false} : tensor<2x4xf32>
  return %0
}

// -----

// Tile hints are positive.
func @gemm_tile(%arg0: tensor<2x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<2x4xf32> {
  %0 = kernel.gemm %arg0, %arg1 {epilogue = "none", tile_m = 0 : i64, transpose_b = false} : tensor<2x4xf32>
  return %0
}

// -----

// The GEMM lhs is [..., M, K].
func @gemm_a_rank(%arg0: tensor<8xf32>, %arg1: tensor<8x4xf32>) -> tensor<4xf32> {
  %0 = kernel.gemm %arg0, %arg1 {epilogue = "none", transpose_b = false} : tensor<4xf32>
  return %0
}

// -----

// The GEMM rhs is a matrix.
func @gemm_b_rank(%arg0: tensor<2x8xf32>, %arg1: tensor<2x8x4xf32>) -> tensor<2x4xf32> {
  %0 = kernel.gemm %arg0, %arg1 {epilogue = "none", transpose_b = false} : tensor<2x4xf32>
  return %0
}

// -----

// Transcendental epilogues need floats.
func @gemm_elem(%arg0: tensor<2x8xi8>, %arg1: tensor<8x4xi8>) -> tensor<2x4xi8> {
  %0 = kernel.gemm %arg0, %arg1 {epilogue = "silu", transpose_b = false} : tensor<2x4xi8>
  return %0
}

// -----

// GEMM operands share an element type.
func @gemm_b_elem(%arg0: tensor<2x8xf32>, %arg1: tensor<8x4xf16>) -> tensor<2x4xf32> {
  %0 = kernel.gemm %arg0, %arg1 {epilogue = "none", transpose_b = false} : tensor<2x4xf32>
  return %0
}

// -----

// With transpose_b, b is [N, K] and K must match a's.
func @gemm_inner(%arg0: tensor<2x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<2x8xf32> {
  %0 = kernel.gemm %arg0, %arg1 {epilogue = "none", transpose_b = true} : tensor<2x8xf32>
  return %0
}

// -----

// The bias has one entry per output column.
func @gemm_bias(%arg0: tensor<2x8xf32>, %arg1: tensor<8x4xf32>, %arg2: tensor<8xf32>) -> tensor<2x4xf32> {
  %0 = kernel.gemm %arg0, %arg1, %arg2 {epilogue = "none", transpose_b = false} : tensor<2x4xf32>
  return %0
}

// -----

// Attention kernels check their operands as attn.sdpa does.
func @attention_gqa(%arg0: tensor<1x6x2x4xf32>, %arg1: tensor<1x4x2x4xf32>) -> tensor<1x6x2x4xf32> {
  %0 = kernel.attention %arg0, %arg1, %arg1 {causal = false, scale = 0.5 : f32} : tensor<1x6x2x4xf32>
  return %0
}

// -----

// Attention kernel masks broadcast to [B, H, N, M].
func @attention_mask(%arg0: tensor<1x2x4x4xf32>, %arg1: tensor<4x2xi1>) -> tensor<1x2x4x4xf32> {
  %0 = kernel.attention %arg0, %arg0, %arg0, %arg1 {causal = false, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  return %0
}

// -----

// The residual has x's type.
func @add_ln_residual(%arg0: tensor<2x8xf32>, %arg1: tensor<1x8xf32>, %arg2: tensor<8xf32>) -> tensor<2x8xf32> {
  %0 = kernel.add_layer_norm %arg0, %arg1, %arg2, %arg2 {epsilon = 1.0e-5 : f32} : tensor<2x8xf32>
  return %0
}

// -----

// Layer-norm parameters cover the last dim.
func @add_ln_gamma(%arg0: tensor<2x8xf32>, %arg1: tensor<4xf32>, %arg2: tensor<8xf32>) -> tensor<2x8xf32> {
  %0 = kernel.add_layer_norm %arg0, %arg0, %arg1, %arg2 {epsilon = 1.0e-5 : f32} : tensor<2x8xf32>
  return %0
}

// -----

// Layer-norm parameters share x's element type.
func @add_ln_beta_elem(%arg0: tensor<2x8xf32>, %arg1: tensor<8xf32>, %arg2: tensor<8xf16>) -> tensor<2x8xf32> {
  %0 = kernel.add_layer_norm %arg0, %arg0, %arg1, %arg2 {epsilon = 1.0e-5 : f32} : tensor<2x8xf32>
  return %0
}

// -----

// Layer-norm epsilon is non-negative.
func @add_ln_epsilon(%arg0: tensor<2x8xf32>, %arg1: tensor<8xf32>) -> tensor<2x8xf32> {
  %0 = kernel.add_layer_norm %arg0, %arg0, %arg1, %arg1 {epsilon = -0.5 : f32} : tensor<2x8xf32>
  return %0
}

// -----

// Layer normalization computes in floats.
func @add_ln_elem(%arg0: tensor<2x8xi32>, %arg1: tensor<8xi32>) -> tensor<2x8xi32> {
  %0 = kernel.add_layer_norm %arg0, %arg0, %arg1, %arg1 {epsilon = 1.0e-5 : f32} : tensor<2x8xi32>
  return %0
}
