// RUN: lowbit opt %s --pass-pipeline=canonicalize,fuse-qkv,dce

// An unknown pass: the pipeline error points at it, and nothing runs.
func @f(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  return %arg0
}
