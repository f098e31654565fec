// RUN: lowbit opt %s.missing

// A missing input file is one sentence on stderr and exit code 1.
func @f(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  return %arg0
}
