// RUN: lowbit opt %s --split-input-file --verify-diagnostics --pass-pipeline=canonicalize

// With --verify-diagnostics every chunk must fail; the diagnostics go to stdout. This
// file's second chunk verifies, so the run fails and names it.
func @bad(%arg0: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %0 = graph.transpose %arg0 {perm = array<i64: 0, 0>} : tensor<3x2xf32>
  return %0
}

// -----

func @fine(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  return %arg0
}
