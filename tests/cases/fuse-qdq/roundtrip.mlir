// RUN: lowbit opt %s --split-input-file --pass-pipeline=fuse-qdq --print-locs

// quantize(dequantize(q, s), s) gives q back exactly when the float in between is fine
// enough (i8 through f32 here): the round trip goes (EXACT-BIT, guarded).
func @roundtrip(%arg0: tensor<2x3xi8>) -> tensor<2x3xi8> {
  %0 = graph.constant {value = dense<0.1> : tensor<f32>} : tensor<f32>
  %1 = lowbit.dequantize %arg0, %0 : tensor<2x3xf32>
  %2 = lowbit.quantize %1, %0 : tensor<2x3xi8>
  return %2
}

// -----

// A requantize chain Q(DQ(Q(x))) with the same parameters is Q(x); per-axis scales and
// zero points, through f16 (255·2⁻¹¹ < 1/4). The dequantized value is also returned, so
// it stays.
func @requantize_chain(%arg0: tensor<2x3xf32>) -> (tensor<2x3xui8>, tensor<2x3xf16>) {
  %0 = graph.constant {value = dense<[0.02, 0.5, 3.0]> : tensor<3xf32>} : tensor<3xf32>
  %1 = graph.constant {value = dense<[128, 0, 255]> : tensor<3xui8>} : tensor<3xui8>
  %2 = lowbit.quantize %arg0, %0, %1 {axis = 1 : i64} : tensor<2x3xui8> loc("q1")
  %3 = lowbit.dequantize %2, %0, %1 {axis = 1 : i64} : tensor<2x3xf16> loc("dq")
  %4 = lowbit.quantize %3, %0, %1 {axis = 1 : i64} : tensor<2x3xui8> loc("q2")
  return %4, %3
}

// -----

// Negative: through bf16 an i8 round trip can change values (255·2⁻⁸ ≈ 1), so it stays.
func @through_bf16(%arg0: tensor<2x3xi8>) -> tensor<2x3xi8> {
  %0 = graph.constant {value = dense<0.1> : tensor<f32>} : tensor<f32>
  %1 = lowbit.dequantize %arg0, %0 : tensor<2x3xbf16>
  %2 = lowbit.quantize %1, %0 : tensor<2x3xi8>
  return %2
}

// -----

// Negative: a different scale on the way back is a real requantization; a scale that is a
// run-time argument cannot be checked by the guard.
func @not_a_roundtrip(%arg0: tensor<2x3xi8>, %arg1: tensor<f32>) -> (tensor<2x3xi8>, tensor<2x3xi8>) {
  %0 = graph.constant {value = dense<0.1> : tensor<f32>} : tensor<f32>
  %1 = graph.constant {value = dense<0.2> : tensor<f32>} : tensor<f32>
  %2 = lowbit.dequantize %arg0, %0 : tensor<2x3xf32>
  %3 = lowbit.quantize %2, %1 : tensor<2x3xi8>
  %4 = lowbit.dequantize %arg0, %arg1 : tensor<2x3xf32>
  %5 = lowbit.quantize %4, %arg1 : tensor<2x3xi8>
  return %3, %5
}
