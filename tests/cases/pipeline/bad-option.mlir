// RUN: lowbit opt %s --pass-pipeline='canonicalize{max-fold=3},cse'

// An option the pass does not have.
func @f(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  return %arg0
}
