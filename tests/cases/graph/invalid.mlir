// RUN: lowbit opt %s --split-input-file --verify-diagnostics

// An op with the wrong number of operands.
func @operand_count(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  %0 = graph.add %arg0 : tensor<2xf32>
  return %0
}

// -----

// An op with the wrong number of results.
func @result_count(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  %0, %1 = graph.relu %arg0 : tensor<2xf32>, tensor<2xf32>
  return %0
}

// -----

// A variadic op with no operands.
func @concat_nothing() -> tensor<2xf32> {
  %0 = graph.concat {axis = 0 : i64} : tensor<2xf32>
  return %0
}

// -----

// A required attribute is missing.
func @missing_attr(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = graph.softmax %arg0 : tensor<2x3xf32>
  return %0
}

// -----

// An attribute of the wrong kind.
func @attr_kind(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = graph.softmax %arg0 {axis = 1.0 : f32} : tensor<2x3xf32>
  return %0
}

// -----

// An attribute the op does not declare.
func @unknown_attr(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = graph.softmax %arg0 {axis = 1 : i64, dim = 1 : i64} : tensor<2x3xf32>
  return %0
}

// -----

// An attribute on an op that takes none.
func @attr_on_attrless(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  %0 = graph.exp %arg0 {fast = true} : tensor<2xf32>
  return %0
}

// -----

// The declared result type differs from the inferred one.
func @result_type(%arg0: tensor<2x3xf32>, %arg1: tensor<3xf32>) -> tensor<3x3xf32> {
  %0 = graph.add %arg0, %arg1 : tensor<3x3xf32>
  return %0
}

// -----

// A weight needs a name.
func @weight_name() -> tensor<4xf32> {
  %0 = graph.weight {name = ""} : tensor<4xf32>
  return %0
}

// -----

// A constant's value has the result type.
func @constant_type() -> tensor<3xf32> {
  %0 = graph.constant {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<3xf32>
  return %0
}

// -----

// Matmul needs operands of rank 1 or more.
func @matmul_scalar(%arg0: tensor<f32>, %arg1: tensor<2xf32>) -> tensor<2xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<2xf32>
  return %0
}

// -----

// Matmul operands share an element type.
func @matmul_elem(%arg0: tensor<2x4xf32>, %arg1: tensor<4x3xf16>) -> tensor<2x3xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<2x3xf32>
  return %0
}

// -----

// Matmul inner dimensions agree.
func @matmul_inner(%arg0: tensor<2x4xf32>, %arg1: tensor<8x3xf32>) -> tensor<2x3xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<2x3xf32>
  return %0
}

// -----

// Matmul batch dims broadcast.
func @matmul_batch(%arg0: tensor<2x2x4xf32>, %arg1: tensor<3x4x3xf32>) -> tensor<2x2x3xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<2x2x3xf32>
  return %0
}

// -----

// A linear weight is [out, in].
func @linear_weight_rank(%arg0: tensor<2x8xf32>, %arg1: tensor<8xf32>) -> tensor<2xf32> {
  %0 = graph.linear %arg0, %arg1 : tensor<2xf32>
  return %0
}

// -----

// Linear input features match the weight's.
func @linear_features(%arg0: tensor<2x8xf32>, %arg1: tensor<4x6xf32>) -> tensor<2x4xf32> {
  %0 = graph.linear %arg0, %arg1 : tensor<2x4xf32>
  return %0
}

// -----

// A linear bias has one entry per output feature.
func @linear_bias(%arg0: tensor<2x8xf32>, %arg1: tensor<4x8xf32>, %arg2: tensor<8xf32>) -> tensor<2x4xf32> {
  %0 = graph.linear %arg0, %arg1, %arg2 : tensor<2x4xf32>
  return %0
}

// -----

// Elementwise operands broadcast.
func @add_broadcast(%arg0: tensor<2x3xf32>, %arg1: tensor<2xf32>) -> tensor<2x3xf32> {
  %0 = graph.add %arg0, %arg1 : tensor<2x3xf32>
  return %0
}

// -----

// Elementwise operands share an element type.
func @sub_elem(%arg0: tensor<2xf32>, %arg1: tensor<2xi32>) -> tensor<2xf32> {
  %0 = graph.sub %arg0, %arg1 : tensor<2xf32>
  return %0
}

// -----

// Negation needs a numeric type, not i1.
func @neg_bool(%arg0: tensor<2xi1>) -> tensor<2xi1> {
  %0 = graph.neg %arg0 : tensor<2xi1>
  return %0
}

// -----

// Transcendental ops need floats.
func @exp_int(%arg0: tensor<2xi32>) -> tensor<2xi32> {
  %0 = graph.exp %arg0 : tensor<2xi32>
  return %0
}

// -----

// GELU's approximation is "none" or "tanh".
func @gelu_mode(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  %0 = graph.gelu %arg0 {approximate = "fast"} : tensor<2xf32>
  return %0
}

// -----

// An axis is within the operand's rank.
func @softmax_axis(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = graph.softmax %arg0 {axis = 2 : i64} : tensor<2x3xf32>
  return %0
}

// -----

// Normalization epsilon is non-negative.
func @norm_epsilon(%arg0: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = graph.rms_norm %arg0 {axis = -1 : i64, epsilon = -1.0e-5 : f32} : tensor<2x4xf32>
  return %0
}

// -----

// Layer-norm parameters have the normalized shape (the dims from `axis` on).
func @norm_gamma_shape(%arg0: tensor<2x3x4xf32>, %arg1: tensor<4xf32>) -> tensor<2x3x4xf32> {
  %0 = graph.layer_norm %arg0, %arg1 {axis = 1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x3x4xf32>
  return %0
}

// -----

// Normalization parameters share the input's element type.
func @norm_gamma_elem(%arg0: tensor<2x4xf16>, %arg1: tensor<4xf32>) -> tensor<2x4xf16> {
  %0 = graph.rms_norm %arg0, %arg1 {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x4xf16>
  return %0
}

// -----

// Reductions are "sum", "mean" or "max".
func @reduce_kind(%arg0: tensor<2x4xf32>) -> tensor<2xf32> {
  %0 = graph.reduce %arg0 {axes = array<i64: 1>, keepdims = false, kind = "min"} : tensor<2xf32>
  return %0
}

// -----

// Reduction axes are within the rank.
func @reduce_axis_range(%arg0: tensor<2x4xf32>) -> tensor<2xf32> {
  %0 = graph.reduce %arg0 {axes = array<i64: 2>, keepdims = false, kind = "sum"} : tensor<2xf32>
  return %0
}

// -----

// Reduction axes are unique, after negative ones are normalized.
func @reduce_axis_twice(%arg0: tensor<2x4xf32>) -> tensor<2xf32> {
  %0 = graph.reduce %arg0 {axes = array<i64: 1, -1>, keepdims = false, kind = "sum"} : tensor<2xf32>
  return %0
}

// -----

// A permutation has one entry per dim.
func @transpose_len(%arg0: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %0 = graph.transpose %arg0 {perm = array<i64: 1, 0, 2>} : tensor<3x2xf32>
  return %0
}

// -----

// A permutation names each dim once.
func @transpose_perm(%arg0: tensor<2x3xf32>) -> tensor<2x2xf32> {
  %0 = graph.transpose %arg0 {perm = array<i64: 0, 0>} : tensor<2x2xf32>
  return %0
}

// -----

// Reshape keeps the element count.
func @reshape_count(%arg0: tensor<2x3xf32>) -> tensor<2x4xf32> {
  %0 = graph.reshape %arg0 : tensor<2x4xf32>
  return %0
}

// -----

// Reshape keeps the element type.
func @reshape_elem(%arg0: tensor<2x3xf32>) -> tensor<6xf16> {
  %0 = graph.reshape %arg0 : tensor<6xf16>
  return %0
}

// -----

// Concat inputs share a rank.
func @concat_rank(%arg0: tensor<2x3xf32>, %arg1: tensor<3xf32>) -> tensor<5x3xf32> {
  %0 = graph.concat %arg0, %arg1 {axis = 0 : i64} : tensor<5x3xf32>
  return %0
}

// -----

// Concat inputs agree off the axis.
func @concat_dims(%arg0: tensor<2x3xf32>, %arg1: tensor<2x4xf32>) -> tensor<4x3xf32> {
  %0 = graph.concat %arg0, %arg1 {axis = 0 : i64} : tensor<4x3xf32>
  return %0
}

// -----

// Concat inputs share an element type.
func @concat_elem(%arg0: tensor<2xf32>, %arg1: tensor<2xf16>) -> tensor<4xf32> {
  %0 = graph.concat %arg0, %arg1 {axis = 0 : i64} : tensor<4xf32>
  return %0
}

// -----

// A concat whose result size does not fit in 64 bits.
func @concat_overflow(%arg0: tensor<0x4611686018427387903xf32>) -> tensor<0x4611686018427387903xf32> {
  %0 = graph.concat %arg0, %arg0, %arg0 {axis = 1 : i64} : tensor<0x4611686018427387903xf32>
  return %0
}

// -----

// Split results share the operand's element type.
func @split_elem(%arg0: tensor<4xf32>) -> (tensor<2xf32>, tensor<2xf16>) {
  %0, %1 = graph.split %arg0 {axis = 0 : i64} : tensor<2xf32>, tensor<2xf16>
  return %0, %1
}

// -----

// Split results have the operand's rank.
func @split_rank(%arg0: tensor<4x2xf32>) -> (tensor<2x2xf32>, tensor<4xf32>) {
  %0, %1 = graph.split %arg0 {axis = 0 : i64} : tensor<2x2xf32>, tensor<4xf32>
  return %0, %1
}

// -----

// Split results agree with the operand off the axis.
func @split_dims(%arg0: tensor<4x2xf32>) -> (tensor<2x2xf32>, tensor<2x3xf32>) {
  %0, %1 = graph.split %arg0 {axis = 0 : i64} : tensor<2x2xf32>, tensor<2x3xf32>
  return %0, %1
}

// -----

// Split sizes add up to the operand's size along the axis.
func @split_sum(%arg0: tensor<4x2xf32>) -> (tensor<2x2xf32>, tensor<3x2xf32>) {
  %0, %1 = graph.split %arg0 {axis = 0 : i64} : tensor<2x2xf32>, tensor<3x2xf32>
  return %0, %1
}

// -----

// Slice bounds have one entry per dim.
func @slice_len(%arg0: tensor<4x6xf32>) -> tensor<2x6xf32> {
  %0 = graph.slice %arg0 {ends = array<i64: 3>, starts = array<i64: 1, 0>} : tensor<2x6xf32>
  return %0
}

// -----

// Slice steps are non-zero.
func @slice_step(%arg0: tensor<4x6xf32>) -> tensor<4x6xf32> {
  %0 = graph.slice %arg0 {ends = array<i64: 4, 6>, starts = array<i64: 0, 0>, steps = array<i64: 1, 0>} : tensor<4x6xf32>
  return %0
}

// -----

// Gather indices are integers.
func @gather_indices(%arg0: tensor<8x4xf32>, %arg1: tensor<3xf32>) -> tensor<3x4xf32> {
  %0 = graph.gather %arg0, %arg1 {axis = 0 : i64} : tensor<3x4xf32>
  return %0
}

// -----

// Select conditions are i1.
func @select_cond(%arg0: tensor<2xi8>, %arg1: tensor<2xf32>, %arg2: tensor<2xf32>) -> tensor<2xf32> {
  %0 = graph.select %arg0, %arg1, %arg2 : tensor<2xf32>
  return %0
}

// -----

// Cast keeps the shape.
func @cast_shape(%arg0: tensor<2x3xf32>) -> tensor<3x2xf16> {
  %0 = graph.cast %arg0 : tensor<3x2xf16>
  return %0
}

// -----

// Rotary embeddings need operands of rank 1 or more.
func @rope_rank(%arg0: tensor<f32>, %arg1: tensor<f32>, %arg2: tensor<f32>) -> tensor<f32> {
  %0 = graph.rope %arg0, %arg1, %arg2 {interleaved = false} : tensor<f32>
  return %0
}

// -----

// Rotary embeddings rotate pairs, so the last dim is even.
func @rope_odd(%arg0: tensor<4x7xf32>, %arg1: tensor<4x3xf32>, %arg2: tensor<4x3xf32>) -> tensor<4x7xf32> {
  %0 = graph.rope %arg0, %arg1, %arg2 {interleaved = false} : tensor<4x7xf32>
  return %0
}

// -----

// Rotary tables hold d/2 frequencies broadcasting against x.
func @rope_table(%arg0: tensor<4x8xf32>, %arg1: tensor<4x8xf32>, %arg2: tensor<4x4xf32>) -> tensor<4x8xf32> {
  %0 = graph.rope %arg0, %arg1, %arg2 {interleaved = true} : tensor<4x8xf32>
  return %0
}

// -----

// A causal mask is at least [N, M].
func @causal_rank() -> tensor<4xf32> {
  %0 = graph.causal_mask : tensor<4xf32>
  return %0
}

// -----

// Masks are float (additive) or i1 (keep).
func @causal_elem() -> tensor<4x4xi32> {
  %0 = graph.causal_mask : tensor<4x4xi32>
  return %0
}

// -----

// A padding mask is built from a [B, S] keep-mask.
func @padding_rank(%arg0: tensor<8xi64>) -> tensor<1x1x1x8xf32> {
  %0 = graph.padding_mask %arg0 : tensor<1x1x1x8xf32>
  return %0
}

// -----

// Comparison operands must have one element type.
func @compare_elems(%arg0: tensor<2xf32>, %arg1: tensor<2xf16>) -> tensor<2xi1> {
  %0 = graph.less %arg0, %arg1 : tensor<2xi1>
  return %0
}

// -----

// A comparison's result is i1, not the operands' element type.
func @compare_result(%arg0: tensor<2xf32>, %arg1: tensor<2xf32>) -> tensor<2xf32> {
  %0 = graph.equal %arg0, %arg1 : tensor<2xf32>
  return %0
}

// -----

// Comparison operands must broadcast.
func @compare_shapes(%arg0: tensor<2x3xi32>, %arg1: tensor<2xi32>) -> tensor<2x3xi1> {
  %0 = graph.greater_equal %arg0, %arg1 : tensor<2x3xi1>
  return %0
}

// -----

// Maximum operands must have one element type.
func @maximum_elems(%arg0: tensor<2xf32>, %arg1: tensor<2xi32>) -> tensor<2xf32> {
  %0 = graph.maximum %arg0, %arg1 : tensor<2xf32>
  return %0
}

// -----

// Minimum's result has the operands' broadcast shape.
func @minimum_shape(%arg0: tensor<2x1xf32>, %arg1: tensor<3xf32>) -> tensor<2x1xf32> {
  %0 = graph.minimum %arg0, %arg1 : tensor<2x1xf32>
  return %0
}

// -----

// Pow's result has the base's element type, not the exponent's.
func @pow_result_elem(%arg0: tensor<2xi32>, %arg1: tensor<2xf32>) -> tensor<2xf32> {
  %0 = graph.pow %arg0, %arg1 : tensor<2xf32>
  return %0
}

// -----

// A mixed-type pow takes no i1 operand.
func @pow_i1(%arg0: tensor<2xf32>, %arg1: tensor<2xi1>) -> tensor<2xf32> {
  %0 = graph.pow %arg0, %arg1 : tensor<2xf32>
  return %0
}
