// RUN: lowbit opt %s --split-input-file --pass-pipeline=canonicalize

// A chunk that parses and verifies prints; a chunk that does not prints its error to
// stderr (line numbers count from the top of the file) and the exit code is 1.
func @good(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  %0 = graph.relu %arg0 : tensor<2xf32>
  return %0
}

// -----

func @parse_error(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  %0 = graph.relux %arg0 : tensor<2xf32>
  return %0
}

// -----

func @verify_error(%arg0: tensor<2x3xf32>, %arg1: tensor<4x5xf32>) -> tensor<2x5xf32> {
  %0 = graph.matmul %arg0, %arg1 : tensor<2x5xf32>
  return %0
}

// -----

func @also_good(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  return %arg0
}
