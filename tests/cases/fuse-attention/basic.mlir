// RUN: lowbit opt %s --split-input-file --pass-pipeline=fuse-attention --print-locs --pass-stats

// matmul(q, kᵀ) · 0.125 → softmax → matmul(·, v) becomes one sdpa at the fused location of
// the chain; the transposed key is read from before its transpose.
func @basic(%arg0: tensor<1x2x8x16xf32>, %arg1: tensor<1x2x8x16xf32>, %arg2: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %0 = graph.transpose %arg1 {perm = array<i64: 0, 1, 3, 2>} : tensor<1x2x16x8xf32> loc("kt")
  %1 = graph.matmul %arg0, %0 : tensor<1x2x8x8xf32> loc("qk")
  %2 = graph.constant {value = dense<0.125> : tensor<f32>} : tensor<f32> loc("c")
  %3 = graph.mul %1, %2 : tensor<1x2x8x8xf32> loc("scale")
  %4 = graph.softmax %3 {axis = -1 : i64} : tensor<1x2x8x8xf32> loc("softmax")
  %5 = graph.matmul %4, %arg2 : tensor<1x2x8x16xf32> loc("pv")
  return %5
}

// -----

// As the ONNX exporter writes BERT self-attention: heads split by reshape + transpose
// (the key by perm [0, 2, 3, 1]), scores divided by sqrt(d), the additive padding mask
// `(1 - mask) · lowest` added, heads merged after. The mask stays sdpa's mask operand; the
// key becomes a [0, 2, 1, 3] transpose of the split heads.
func @bert(%arg0: tensor<1x8x32xf32>, %arg1: tensor<1x8xf32>) -> tensor<1x8x32xf32> {
  %0 = graph.reshape %arg1 : tensor<1x1x1x8xf32> loc("mask.unsqueeze")
  %1 = graph.constant {value = dense<1.0> : tensor<f32>} : tensor<f32> loc("one")
  %2 = graph.sub %1, %0 : tensor<1x1x1x8xf32> loc("mask.sub")
  %3 = graph.constant {value = dense<-3.4028235e38> : tensor<f32>} : tensor<f32> loc("lowest")
  %4 = graph.mul %2, %3 : tensor<1x1x1x8xf32> loc("mask.mul")
  %5 = graph.reshape %arg0 : tensor<1x8x2x16xf32> loc("q.split")
  %6 = graph.transpose %5 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x8x16xf32> loc("q.heads")
  %7 = graph.reshape %arg0 : tensor<1x8x2x16xf32> loc("k.split")
  %8 = graph.transpose %7 {perm = array<i64: 0, 2, 3, 1>} : tensor<1x2x16x8xf32> loc("k.heads")
  %9 = graph.reshape %arg0 : tensor<1x8x2x16xf32> loc("v.split")
  %10 = graph.transpose %9 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x8x16xf32> loc("v.heads")
  %11 = graph.matmul %6, %8 : tensor<1x2x8x8xf32> loc("MatMul")
  %12 = graph.constant {value = dense<4.0> : tensor<f32>} : tensor<f32> loc("sqrt_d")
  %13 = graph.div %11, %12 : tensor<1x2x8x8xf32> loc("Div")
  %14 = graph.add %13, %4 : tensor<1x2x8x8xf32> loc("Add")
  %15 = graph.softmax %14 {axis = -1 : i64} : tensor<1x2x8x8xf32> loc("Softmax")
  %16 = graph.matmul %15, %10 : tensor<1x2x8x16xf32> loc("MatMul_1")
  %17 = graph.transpose %16 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x8x2x16xf32> loc("merge")
  %18 = graph.reshape %17 : tensor<1x8x32xf32> loc("merge.reshape")
  return %18
}

// -----

// scaled_dot_product_attention as exported: q and kᵀ each multiplied by d^-1/4 (here
// 0.5 with d = 16); the factors multiply into scale = 0.25.
func @sdpa_export(%arg0: tensor<1x2x8x16xf32>, %arg1: tensor<1x2x8x16xf32>, %arg2: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %0 = graph.constant {value = dense<0.5> : tensor<f32>} : tensor<f32> loc("c")
  %1 = graph.mul %arg0, %0 : tensor<1x2x8x16xf32> loc("q.scale")
  %2 = graph.transpose %arg1 {perm = array<i64: 0, 1, 3, 2>} : tensor<1x2x16x8xf32> loc("kt")
  %3 = graph.mul %2, %0 : tensor<1x2x16x8xf32> loc("k.scale")
  %4 = graph.matmul %1, %3 : tensor<1x2x8x8xf32> loc("qk")
  %5 = graph.softmax %4 {axis = 3 : i64} : tensor<1x2x8x8xf32> loc("softmax")
  %6 = graph.matmul %5, %arg2 : tensor<1x2x8x16xf32> loc("pv")
  return %6
}

// -----

// [B·H, N, d] chains (rank 3) are reshaped to rank 4 around the sdpa.
func @rank3(%arg0: tensor<4x8x16xf32>, %arg1: tensor<4x16x8xf32>, %arg2: tensor<4x8x16xf32>) -> tensor<4x8x16xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<4x8x8xf32> loc("qk")
  %1 = graph.softmax %0 {axis = -1 : i64} : tensor<4x8x8xf32> loc("softmax")
  %2 = graph.matmul %1, %arg2 : tensor<4x8x16xf32> loc("pv")
  return %2
}
