// RUN: lowbit opt %s --pass-pipeline=cse,,dce

// Two commas in a row.
func @f(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  return %arg0
}
