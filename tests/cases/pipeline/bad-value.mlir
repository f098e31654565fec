// RUN: lowbit opt %s --pass-pipeline='cse,canonicalize{max-fold-elements=lots}'

// An option value of the wrong kind.
func @f(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  return %arg0
}
