// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=8 group=0},quantize-activations' --weights cases/quantize-activations/weights.npz --pass-stats --diff-numerics=random:1 -o %t/out.mlir --print-ir-after=quantize-activations

// W8A8 with dynamic per-token activations. %x is read by two quantized linears: it is
// quantized once, with a run-time scale per row max(concat(x, -x))/127 (+ the smallest
// normal f32), as a per-block quantize {axis = 1, block_size = 6}; each linear becomes
// qmatmul(xq, transpose(wq), sx, sw) + bias. The mask add and the softmax stay float.
// Expected: qmatmul=2 activations=1; the weights' dequantizes are gone.
func @f(%x: tensor<3x6xf32>, %m: tensor<3x3xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x3xf32>) {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %b = graph.weight {name = "b"} : tensor<2xf32>
  %v = graph.weight {name = "v"} : tensor<2x6xf32>
  %y1 = graph.linear %x, %w, %b : tensor<3x2xf32>
  %y2 = graph.linear %x, %v : tensor<3x2xf32>
  %t = graph.transpose %y2 {perm = array<i64: 1, 0>} : tensor<2x3xf32>
  %s = graph.matmul %y1, %t : tensor<3x3xf32>
  %sm = graph.add %s, %m : tensor<3x3xf32>
  %p = graph.softmax %sm {axis = -1 : i64} : tensor<3x3xf32>
  return %y1, %y2, %p
}
