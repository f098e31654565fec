// RUN: lowbit opt %s --split-input-file --pass-pipeline=fuse-attention --pass-stats

// Llama-style: 2 KV heads repeated for 4 query heads by HF's repeat_kv as the ONNX
// importer brings it in (reshape → Expand, i.e. add of zeros → reshape), a causal mask
// added. The sdpa reads the unrepeated K and V (Hkv = 2) and says causal = true.
func @repeat_kv(%arg0: tensor<1x4x8x16xf32>, %arg1: tensor<1x2x8x16xf32>, %arg2: tensor<1x2x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %0 = graph.reshape %arg1 : tensor<1x2x1x8x16xf32>
  %1 = graph.constant {value = dense<0.0> : tensor<1x2x2x8x16xf32>} : tensor<1x2x2x8x16xf32>
  %2 = graph.add %0, %1 : tensor<1x2x2x8x16xf32>
  %3 = graph.reshape %2 : tensor<1x4x8x16xf32>
  %4 = graph.reshape %arg2 : tensor<1x2x1x8x16xf32>
  %5 = graph.add %4, %1 : tensor<1x2x2x8x16xf32>
  %6 = graph.reshape %5 : tensor<1x4x8x16xf32>
  %7 = graph.transpose %3 {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x16x8xf32>
  %8 = graph.matmul %arg0, %7 : tensor<1x4x8x8xf32>
  %9 = graph.constant {value = dense<0.25> : tensor<f32>} : tensor<f32>
  %10 = graph.mul %8, %9 : tensor<1x4x8x8xf32>
  %11 = graph.causal_mask : tensor<8x8xf32>
  %12 = graph.add %10, %11 : tensor<1x4x8x8xf32>
  %13 = graph.softmax %12 {axis = -1 : i64} : tensor<1x4x8x8xf32>
  %14 = graph.matmul %13, %6 : tensor<1x4x8x16xf32>
  return %14
}

// -----

// KV heads gathered with indices h / (H / Hkv).
func @gather(%arg0: tensor<1x4x8x16xf32>, %arg1: tensor<1x2x8x16xf32>, %arg2: tensor<1x2x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %0 = graph.constant {value = dense<[0, 0, 1, 1]> : tensor<4xi64>} : tensor<4xi64>
  %1 = graph.gather %arg1, %0 {axis = 1 : i64} : tensor<1x4x8x16xf32>
  %2 = graph.gather %arg2, %0 {axis = 1 : i64} : tensor<1x4x8x16xf32>
  %3 = graph.transpose %1 {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x16x8xf32>
  %4 = graph.matmul %arg0, %3 : tensor<1x4x8x8xf32>
  %5 = graph.softmax %4 {axis = -1 : i64} : tensor<1x4x8x8xf32>
  %6 = graph.matmul %5, %2 : tensor<1x4x8x16xf32>
  return %6
}

// -----

// Interleaved indices [0, 1, 0, 1] are not the contiguous grouping sdpa means: fused
// with the gathered (repeated) K and V as they are, Hkv = H.
func @interleaved(%arg0: tensor<1x4x8x16xf32>, %arg1: tensor<1x2x8x16xf32>, %arg2: tensor<1x2x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %0 = graph.constant {value = dense<[0, 1, 0, 1]> : tensor<4xi64>} : tensor<4xi64>
  %1 = graph.gather %arg1, %0 {axis = 1 : i64} : tensor<1x4x8x16xf32>
  %2 = graph.gather %arg2, %0 {axis = 1 : i64} : tensor<1x4x8x16xf32>
  %3 = graph.transpose %1 {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x16x8xf32>
  %4 = graph.matmul %arg0, %3 : tensor<1x4x8x8xf32>
  %5 = graph.softmax %4 {axis = -1 : i64} : tensor<1x4x8x8xf32>
  %6 = graph.matmul %5, %2 : tensor<1x4x8x16xf32>
  return %6
}

// -----

// MQA by broadcasting: one KV head against 4 query heads in the matmuls.
func @mqa(%arg0: tensor<1x4x8x16xf32>, %arg1: tensor<1x1x16x8xf32>, %arg2: tensor<1x1x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<1x4x8x8xf32>
  %1 = graph.softmax %0 {axis = -1 : i64} : tensor<1x4x8x8xf32>
  %2 = graph.matmul %1, %arg2 : tensor<1x4x8x16xf32>
  return %2
}
