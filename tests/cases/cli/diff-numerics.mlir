// RUN: lowbit opt %s --pass-pipeline=canonicalize,cse,lower-to-kernel --diff-numerics=random:7

// --diff-numerics evaluates the function on seeded random inputs before the pipeline and
// after every pass, and prints a table to stderr: max abs error, relative L1 and cosine
// against the unoptimized graph. Exact passes show zero error, the fused kernels of
// lower-to-kernel differ only by rounding (the interpreter computes in f64, so here none).
func @f(%x: tensor<2x8xf32>, %w: tensor<4x8xf32>) -> tensor<2x4xf32> {
  %b = graph.constant {value = dense<[0.5, -1.0, 2.0, 0.0]> : tensor<4xf32>} : tensor<4xf32>
  %0 = graph.transpose %x {perm = array<i64: 1, 0>} : tensor<8x2xf32>
  %1 = graph.transpose %0 {perm = array<i64: 1, 0>} : tensor<2x8xf32>
  %2 = graph.linear %1, %w, %b : tensor<2x4xf32>
  %3 = graph.relu %2 : tensor<2x4xf32>
  return %3
}
