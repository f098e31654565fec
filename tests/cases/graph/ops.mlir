// RUN: lowbit opt %s --split-input-file

// Named weights and dense constants of several element types, including splats and scalars.
func @weights_and_constants() -> (tensor<4x8xf16>, tensor<2xf32>, tensor<2x2xbf16>, tensor<3xi64>, tensor<4xi1>, tensor<f32>, tensor<4xf8E4M3FN>, tensor<2x3xi4>) {
  %0 = graph.weight {name = "layers.0.self_attn.q_proj.weight"} : tensor<4x8xf16>
  %1 = graph.constant {value = dense<[1.0, 2.5]> : tensor<2xf32>} : tensor<2xf32>
  %2 = graph.constant {value = dense<[[1.0, -2.0], [0.5, 0.25]]> : tensor<2x2xbf16>} : tensor<2x2xbf16>
  %3 = graph.constant {value = dense<[0, -1, 7]> : tensor<3xi64>} : tensor<3xi64>
  %4 = graph.constant {value = dense<[true, false, true, true]> : tensor<4xi1>} : tensor<4xi1>
  %5 = graph.constant {value = dense<0.125> : tensor<f32>} : tensor<f32>
  %6 = graph.constant {value = dense<[448.0, -0.5, 0.001953125, 0.0]> : tensor<4xf8E4M3FN>} : tensor<4xf8E4M3FN>
  %7 = graph.constant {value = dense<-8> : tensor<2x3xi4>} : tensor<2x3xi4>
  return %0, %1, %2, %3, %4, %5, %6, %7
}

// -----

// Matmul: batch broadcasting, rank-1 promotion on either side, and a vector dot product.
func @matmul(%arg0: tensor<2x3x4xf32>, %arg1: tensor<4x5xf32>, %arg2: tensor<4xf32>, %arg3: tensor<3x2x4xf16>, %arg4: tensor<1x4x2xf16>) -> (tensor<2x3x5xf32>, tensor<5xf32>, tensor<2x3xf32>, tensor<f32>, tensor<3x2x2xf16>) {
  %0 = graph.matmul %arg0, %arg1 : tensor<2x3x5xf32>
  %1 = graph.matmul %arg2, %arg1 : tensor<5xf32>
  %2 = graph.matmul %arg0, %arg2 : tensor<2x3xf32>
  %3 = graph.matmul %arg2, %arg2 : tensor<f32>
  %4 = graph.matmul %arg3, %arg4 : tensor<3x2x2xf16>
  return %0, %1, %2, %3, %4
}

// -----

// Linear layers with and without a bias (weights stored [out, in]).
func @linear(%arg0: tensor<2x3x8xbf16>, %arg1: tensor<4x8xbf16>, %arg2: tensor<4xbf16>, %arg3: tensor<8xf32>, %arg4: tensor<2x8xf32>) -> (tensor<2x3x4xbf16>, tensor<2x3x4xbf16>, tensor<2xf32>) {
  %0 = graph.linear %arg0, %arg1, %arg2 : tensor<2x3x4xbf16>
  %1 = graph.linear %arg0, %arg1 : tensor<2x3x4xbf16>
  %2 = graph.linear %arg3, %arg4 : tensor<2xf32>
  return %0, %1, %2
}

// -----

// Binary elementwise ops broadcast like numpy, on float and integer types.
func @binary(%arg0: tensor<2x3xf32>, %arg1: tensor<3xf32>, %arg2: tensor<f32>, %arg3: tensor<4x1xi32>, %arg4: tensor<1x5xi32>, %arg5: tensor<2x1x4xf16>, %arg6: tensor<3x1xf16>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<4x5xi32>, tensor<2x3x4xf16>) {
  %0 = graph.add %arg0, %arg1 : tensor<2x3xf32>
  %1 = graph.sub %arg2, %arg0 : tensor<2x3xf32>
  %2 = graph.mul %0, %1 : tensor<2x3xf32>
  %3 = graph.div %arg3, %arg4 : tensor<4x5xi32>
  %4 = graph.pow %arg5, %arg6 : tensor<2x3x4xf16>
  return %2, %0, %1, %3, %4
}

// -----

// Unary elementwise ops; relu and neg also take integers, the rest need floats.
func @unary(%arg0: tensor<2x4xf32>, %arg1: tensor<3xi8>, %arg2: tensor<2x2xbf16>) -> (tensor<2x4xf32>, tensor<3xi8>, tensor<3xi8>, tensor<2x2xbf16>) {
  %0 = graph.neg %arg0 : tensor<2x4xf32>
  %1 = graph.exp %0 : tensor<2x4xf32>
  %2 = graph.log %1 : tensor<2x4xf32>
  %3 = graph.sqrt %1 : tensor<2x4xf32>
  %4 = graph.rsqrt %3 : tensor<2x4xf32>
  %5 = graph.tanh %4 : tensor<2x4xf32>
  %6 = graph.erf %5 : tensor<2x4xf32>
  %7 = graph.relu %6 : tensor<2x4xf32>
  %8 = graph.gelu %7 : tensor<2x4xf32>
  %9 = graph.gelu %8 {approximate = "tanh"} : tensor<2x4xf32>
  %10 = graph.gelu %9 {approximate = "none"} : tensor<2x4xf32>
  %11 = graph.silu %10 : tensor<2x4xf32>
  %12 = graph.sigmoid %11 : tensor<2x4xf32>
  %13 = graph.add %12, %2 : tensor<2x4xf32>
  %14 = graph.neg %arg1 : tensor<3xi8>
  %15 = graph.relu %arg1 : tensor<3xi8>
  %16 = graph.silu %arg2 : tensor<2x2xbf16>
  return %13, %14, %15, %16
}

// -----

// Softmax and normalizations; affine parameters have the normalized shape.
func @normalize(%arg0: tensor<2x3x4xf32>, %arg1: tensor<4xf32>, %arg2: tensor<4xf32>, %arg3: tensor<3x4xf32>, %arg4: tensor<2x8xf16>, %arg5: tensor<8xf16>) -> (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x8xf16>, tensor<2x8xf16>) {
  %0 = graph.softmax %arg0 {axis = -1 : i64} : tensor<2x3x4xf32>
  %1 = graph.log_softmax %arg0 {axis = 0 : i64} : tensor<2x3x4xf32>
  %2 = graph.layer_norm %arg0, %arg1, %arg2 {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x3x4xf32>
  %3 = graph.layer_norm %arg0, %arg3 {axis = 1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x3x4xf32>
  %4 = graph.layer_norm %arg0 {axis = 2 : i64, epsilon = 0.0 : f32} : tensor<2x3x4xf32>
  %5 = graph.rms_norm %arg4, %arg5 {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<2x8xf16>
  %6 = graph.rms_norm %arg4 {axis = 1 : i64, epsilon = 1.0e-6 : f32} : tensor<2x8xf16>
  return %0, %1, %2, %3, %4, %5, %6
}

// -----

// Reductions: each kind, kept and dropped dims, negative axes, and an empty axis list.
func @reduce(%arg0: tensor<2x3x4xf32>, %arg1: tensor<4x4xi32>) -> (tensor<2x1x1xf32>, tensor<3xf32>, tensor<4xi32>, tensor<4x4xi32>, tensor<f32>) {
  %0 = graph.reduce %arg0 {axes = array<i64: 1, 2>, keepdims = true, kind = "sum"} : tensor<2x1x1xf32>
  %1 = graph.reduce %arg0 {axes = array<i64: 0, -1>, keepdims = false, kind = "mean"} : tensor<3xf32>
  %2 = graph.reduce %arg1 {axes = array<i64: 0>, keepdims = false, kind = "max"} : tensor<4xi32>
  %3 = graph.reduce %arg1 {axes = array<i64>, keepdims = false, kind = "sum"} : tensor<4x4xi32>
  %4 = graph.reduce %arg0 {axes = array<i64: 0, 1, 2>, keepdims = false, kind = "max"} : tensor<f32>
  return %0, %1, %2, %3, %4
}

// -----

// Layout ops: transpose, reshape, concat (one and three inputs), split (two and three results).
func @layout(%arg0: tensor<2x3x4xf16>, %arg1: tensor<2x1x4xf16>, %arg2: tensor<6x4xui8>) -> (tensor<4x2x3xf16>, tensor<6x4xf16>, tensor<2x5x4xf16>, tensor<2x3x4xf16>, tensor<2x4xui8>, tensor<4x4xui8>, tensor<6x1xui8>, tensor<6x2xui8>, tensor<6x1xui8>) {
  %0 = graph.transpose %arg0 {perm = array<i64: 2, 0, 1>} : tensor<4x2x3xf16>
  %1 = graph.reshape %0 : tensor<6x4xf16>
  %2 = graph.concat %arg0, %arg1, %arg1 {axis = 1 : i64} : tensor<2x5x4xf16>
  %3 = graph.concat %arg0 {axis = -1 : i64} : tensor<2x3x4xf16>
  %4, %5 = graph.split %arg2 {axis = 0 : i64} : tensor<2x4xui8>, tensor<4x4xui8>
  %6, %7, %8 = graph.split %arg2 {axis = -1 : i64} : tensor<6x1xui8>, tensor<6x2xui8>, tensor<6x1xui8>
  return %0, %1, %2, %3, %4, %5, %6, %7, %8
}

// -----

// Slices with Python semantics (negative bounds, clamping, negative steps) and gathers.
func @slice_gather(%arg0: tensor<4x6xf32>, %arg1: tensor<8x4xbf16>, %arg2: tensor<2x3xi64>, %arg3: tensor<5xi32>) -> (tensor<2x6xf32>, tensor<4x3xf32>, tensor<3x6xf32>, tensor<2x3x4xbf16>, tensor<8x5xbf16>) {
  %0 = graph.slice %arg0 {ends = array<i64: 3, 100>, starts = array<i64: 1, 0>} : tensor<2x6xf32>
  %1 = graph.slice %arg0 {ends = array<i64: -9223372036854775808, 0>, starts = array<i64: -1, 5>, steps = array<i64: -1, -2>} : tensor<4x3xf32>
  %2 = graph.slice %arg0 {ends = array<i64: 4, 6>, starts = array<i64: -3, -100>, steps = array<i64: 1, 1>} : tensor<3x6xf32>
  %3 = graph.gather %arg1, %arg2 {axis = 0 : i64} : tensor<2x3x4xbf16>
  %4 = graph.gather %arg1, %arg3 {axis = -1 : i64} : tensor<8x5xbf16>
  return %0, %1, %2, %3, %4
}

// -----

// Select with broadcasting, and casts between float, integer and low-bit types.
func @select_cast(%arg0: tensor<2x1xi1>, %arg1: tensor<2x4xf32>, %arg2: tensor<f32>) -> (tensor<2x4xf32>, tensor<2x4xf16>, tensor<2x4xi8>, tensor<2x4xf8E5M2>, tensor<2x4xf4E2M1FN>, tensor<2x4xui4>, tensor<2x4xi1>) {
  %0 = graph.select %arg0, %arg1, %arg2 : tensor<2x4xf32>
  %1 = graph.cast %0 : tensor<2x4xf16>
  %2 = graph.cast %0 : tensor<2x4xi8>
  %3 = graph.cast %1 : tensor<2x4xf8E5M2>
  %4 = graph.cast %0 : tensor<2x4xf4E2M1FN>
  %5 = graph.cast %2 : tensor<2x4xui4>
  %6 = graph.cast %2 : tensor<2x4xi1>
  return %0, %1, %2, %3, %4, %5, %6
}

// -----

// Rotary embeddings (rotate-half and interleaved) and attention masks.
func @rope_masks(%arg0: tensor<1x2x4x8xf16>, %arg1: tensor<4x4xf32>, %arg2: tensor<4x4xf32>, %arg3: tensor<1x1x4x4xf16>, %arg4: tensor<2x8xi64>, %arg5: tensor<2x8xi1>) -> (tensor<1x2x4x8xf16>, tensor<1x2x4x8xf16>, tensor<4x4xf32>, tensor<1x1x4x6xi1>, tensor<2x1x1x8xf32>, tensor<2x1x1x8xi1>) {
  %0 = graph.rope %arg0, %arg1, %arg2 {interleaved = false} : tensor<1x2x4x8xf16>
  %1 = graph.rope %arg0, %arg3, %arg3 {interleaved = true} : tensor<1x2x4x8xf16>
  %2 = graph.causal_mask : tensor<4x4xf32>
  %3 = graph.causal_mask : tensor<1x1x4x6xi1>
  %4 = graph.padding_mask %arg4 : tensor<2x1x1x8xf32>
  %5 = graph.padding_mask %arg5 : tensor<2x1x1x8xi1>
  return %0, %1, %2, %3, %4, %5
}

// -----

// Maximum and minimum broadcast like the other binary ops, on float and integer types;
// pow's exponent may have another element type than its base (the result has the base's).
func @max_min_pow(%arg0: tensor<2x3xf32>, %arg1: tensor<3xf32>, %arg2: tensor<4x1xi8>, %arg3: tensor<1x5xi8>, %arg4: tensor<3xi64>, %arg5: tensor<2x3xi32>) -> (tensor<2x3xf32>, tensor<4x5xi8>, tensor<2x3xf32>, tensor<2x3xi32>) {
  %0 = graph.maximum %arg0, %arg1 : tensor<2x3xf32>
  %1 = graph.minimum %arg2, %arg3 : tensor<4x5xi8>
  %2 = graph.pow %arg0, %arg4 : tensor<2x3xf32>
  %3 = graph.pow %arg5, %arg1 : tensor<2x3xi32>
  return %0, %1, %2, %3
}

// -----

// Comparisons: operands of one element type (float, integer, i1), broadcast; i1 results.
func @compare(%arg0: tensor<2x3xf32>, %arg1: tensor<3xf32>, %arg2: tensor<4x1xui16>, %arg3: tensor<1x5xui16>, %arg4: tensor<2xi1>, %arg5: tensor<bf16>, %arg6: tensor<2x2xbf16>) -> (tensor<2x3xi1>, tensor<4x5xi1>, tensor<2xi1>, tensor<2x3xi1>, tensor<2x3xi1>, tensor<2x2xi1>) {
  %0 = graph.equal %arg0, %arg1 : tensor<2x3xi1>
  %1 = graph.less %arg2, %arg3 : tensor<4x5xi1>
  %2 = graph.equal %arg4, %arg4 : tensor<2xi1>
  %3 = graph.less_equal %arg1, %arg0 : tensor<2x3xi1>
  %4 = graph.greater %arg0, %arg1 : tensor<2x3xi1>
  %5 = graph.greater_equal %arg5, %arg6 : tensor<2x2xi1>
  return %0, %1, %2, %3, %4, %5
}
