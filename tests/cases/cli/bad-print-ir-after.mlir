// RUN: lowbit opt %s --pass-pipeline=cse --print-ir-after=fuse-everything

// --print-ir-after must name a registered pass.
func @f(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  return %arg0
}
