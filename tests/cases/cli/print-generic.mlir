// RUN: lowbit opt %s --print-generic --print-locs

// The generic form with locations: real MLIR syntax (func.func, quoted op names,
// functional types), which mlir-opt parses with --allow-unregistered-dialect.
func @f(%arg0: tensor<2x4xf32>) -> tensor<4x2xf32> {
  %0 = graph.transpose %arg0 {perm = array<i64: 1, 0>} : tensor<4x2xf32> loc("node.t")
  %1 = graph.relu %0 : tensor<4x2xf32>
  return %1
}
