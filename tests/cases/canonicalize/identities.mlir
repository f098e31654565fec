// RUN: lowbit opt %s --split-input-file --pass-pipeline=canonicalize

// Adding or subtracting zero and multiplying or dividing by one are removed when the
// result type is the other operand's type.
func @arith_identities(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %zero = graph.constant {value = dense<0.0> : tensor<2x3xf32>} : tensor<2x3xf32>
  %one = graph.constant {value = dense<1.0> : tensor<f32>} : tensor<f32>
  %0 = graph.add %arg0, %zero : tensor<2x3xf32>
  %1 = graph.add %zero, %0 : tensor<2x3xf32>
  %2 = graph.sub %1, %zero : tensor<2x3xf32>
  %3 = graph.mul %one, %2 : tensor<2x3xf32>
  %4 = graph.div %3, %one : tensor<2x3xf32>
  return %4
}

// -----

// Layout no-ops: identity transpose, reshape and cast to the operand's own type.
func @layout_identities(%arg0: tensor<2x3xf16>) -> tensor<2x3xf16> {
  %0 = graph.transpose %arg0 {perm = array<i64: 0, 1>} : tensor<2x3xf16>
  %1 = graph.reshape %0 : tensor<2x3xf16>
  %2 = graph.cast %1 : tensor<2x3xf16>
  return %2
}

// -----

// Not identities: adding zero broadcasts, `0 - x` negates, `1 / x` inverts, a cast changes
// the element type, and a non-splat constant of zeros and ones is neither zero nor one.
func @not_identities(%arg0: tensor<3xf32>) -> (tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf16>, tensor<3xf32>) {
  %zero = graph.constant {value = dense<0.0> : tensor<2x3xf32>} : tensor<2x3xf32>
  %zero1 = graph.constant {value = dense<0.0> : tensor<3xf32>} : tensor<3xf32>
  %one1 = graph.constant {value = dense<1.0> : tensor<3xf32>} : tensor<3xf32>
  %mixed = graph.constant {value = dense<[1.0, 0.0, 1.0]> : tensor<3xf32>} : tensor<3xf32>
  %0 = graph.add %arg0, %zero : tensor<2x3xf32>
  %1 = graph.sub %zero1, %arg0 : tensor<3xf32>
  %2 = graph.div %one1, %arg0 : tensor<3xf32>
  %3 = graph.cast %arg0 : tensor<3xf16>
  %4 = graph.mul %arg0, %mixed : tensor<3xf32>
  return %0, %1, %2, %3, %4
}
