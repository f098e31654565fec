// RUN: lowbit opt %s --pass-pipeline='rotate{where=linears},fold-rotations,cse' --pass-stats --mlir-elide-elementsattrs-if-larger=8 --diff-numerics=random:3

// The LayerNorm block of layer-norm.mlir, whose residual stream cannot be rotated, with an
// online Hadamard on every linear input instead (incoherence processing for weight-only
// quantization). Expected: rotate puts hadamard(x) then Hᵀ before each of the 7 linears
// (linears=7); fold-rotations folds every Hᵀ into its weight constant
// (folded-into-consumer=7) and keeps the 7 online hadamards; cse merges those on q/k/v's and
// gate/up's shared inputs (merged=3), leaving 4. Exact: the diff table shows rounding-level
// error only.
func @block(%x: tensor<1x4x8xf32>, %cos: tensor<4x2xf32>, %sin: tensor<4x2xf32>) -> tensor<1x4x8xf32> {
  %g1 = graph.constant {value = dense<[0.75, 0.75, 1.25, 0.5, 1.0, 1.25, 0.75, 0.5]> : tensor<8xf32>} : tensor<8xf32>
  %wq = graph.constant {value = dense<[[-0.75, 0.5, 0.25, -1.0, -0.25, 0.5, -0.25, 0.5], [1.5, 0.5, -0.25, -1.0, -0.5, 0.0, 1.25, 0.75], [-0.5, 1.25, -0.0, 0.5, -1.25, -1.25, -1.0, 1.25], [0.5, 1.0, 0.5, -0.25, 0.0, 0.25, 1.0, -0.25], [1.25, 0.25, 1.0, -0.0, 0.5, -0.5, 0.0, -0.75], [-1.25, -1.5, 0.5, -0.25, 1.25, 1.0, -0.25, 1.5], [0.25, 0.75, -0.25, -1.0, -1.0, -1.0, 0.25, -1.25], [-1.5, 1.0, -1.25, -0.25, -0.0, 0.25, 0.0, 1.25]]> : tensor<8x8xf32>} : tensor<8x8xf32>
  %wk = graph.constant {value = dense<[[0.75, 0.25, 0.25, 0.0, 1.5, -0.75, 0.5, 0.25], [-1.25, -0.5, 1.25, 0.75, -1.5, -0.5, -1.5, 1.0], [-1.25, -1.25, 1.5, -0.25, -0.5, -1.25, -0.25, -0.5], [0.0, -1.5, -1.0, -0.75, -0.25, -0.5, 0.25, -0.75]]> : tensor<4x8xf32>} : tensor<4x8xf32>
  %wv = graph.constant {value = dense<[[1.25, 1.5, -1.25, -0.75, 0.25, 0.75, -1.25, -1.0], [-0.25, 0.5, 1.25, 1.0, 1.0, -1.25, 1.5, 0.25], [-1.25, -0.75, 0.25, -0.25, -0.25, 1.0, 1.0, 0.25], [1.0, -0.25, 1.5, 0.25, 1.5, -1.25, 1.25, 0.25]]> : tensor<4x8xf32>} : tensor<4x8xf32>
  %wo = graph.constant {value = dense<[[0.75, -1.0, 0.25, -0.75, -1.25, -1.5, 1.25, 0.5], [-1.0, -0.75, -0.0, 1.0, -1.25, 1.5, 1.25, -0.75], [0.5, -0.5, 0.5, -1.25, -0.0, 0.25, 0.5, 0.5], [1.25, -0.75, -1.0, -0.25, 0.25, 1.5, 0.75, 0.75], [1.5, -0.75, -0.75, -0.25, -0.5, 0.5, 1.25, -1.0], [0.0, 0.5, -0.0, 1.25, 0.75, 1.25, -1.25, -1.0], [-1.25, 1.0, 1.5, -1.5, 0.75, 0.75, 1.25, -0.75], [0.75, -0.75, -1.25, 0.75, -1.25, 0.5, -0.75, -0.0]]> : tensor<8x8xf32>} : tensor<8x8xf32>
  %g2 = graph.constant {value = dense<[1.5, 0.75, 1.0, 0.75, 0.75, 1.0, 0.75, 1.25]> : tensor<8xf32>} : tensor<8xf32>
  %wg = graph.constant {value = dense<[[0.25, -0.75, 1.5, -0.5, 0.5, 0.75, -0.75, -1.5], [1.25, 1.25, -1.0, -1.0, -0.25, 0.25, 1.5, 1.5], [1.5, -0.75, 0.25, -0.25, -0.75, -1.25, -1.0, -0.5], [-1.25, -1.0, -1.25, 0.25, -0.0, -0.75, 0.0, -0.25], [0.5, 1.25, -0.5, 0.5, -0.75, 1.25, 0.25, -1.0], [-0.75, -1.0, -1.0, -0.5, 1.0, -0.25, -0.75, -0.25], [-0.75, 0.75, -1.25, -0.75, -0.5, -1.0, 0.75, -1.0], [-0.5, -1.25, 0.75, -0.5, 0.5, -0.75, -1.5, -0.5], [0.75, 1.0, -0.5, 1.0, -1.25, 0.0, -0.75, -0.25], [-0.75, 1.25, -0.5, 1.25, -1.25, -0.25, -0.25, 0.75], [-0.5, -0.0, -1.25, -0.5, 0.75, -1.25, -0.0, -0.75], [-1.0, -1.25, 1.0, 0.5, -0.25, -0.25, 0.75, 0.25], [1.25, 1.25, -0.0, 0.5, 0.25, -0.5, -0.25, 0.75], [0.25, 0.5, -0.0, 1.25, 0.75, -1.0, 1.0, 1.25], [1.0, -0.5, -0.5, -0.75, -1.25, -0.0, 1.0, 0.75], [0.5, 1.0, 0.5, -0.75, 1.0, -0.5, 1.25, -0.5]]> : tensor<16x8xf32>} : tensor<16x8xf32>
  %wu = graph.constant {value = dense<[[-1.25, 0.75, -1.25, 1.0, -0.25, 0.75, -1.25, 0.25], [0.5, -1.0, 0.25, -1.0, -0.5, -0.5, 0.25, -1.0], [-1.0, 0.75, 0.75, -0.25, -0.75, 0.5, -0.0, -0.5], [1.0, -1.0, 1.0, 0.25, 0.5, 0.5, 0.75, 1.25], [1.25, -0.75, -1.0, 1.25, -1.0, -0.75, 1.0, 1.5], [1.0, 0.0, -0.25, 1.5, 0.75, 0.5, -1.5, -1.0], [-1.5, 1.25, -0.75, -1.0, 0.25, -1.0, 0.25, 1.25], [1.0, -0.75, 1.25, -0.25, 0.0, -0.5, 1.5, -0.5], [0.75, 0.25, 0.5, -1.25, 0.0, 1.5, 0.25, -1.0], [-1.25, -0.5, 0.75, -1.5, -1.25, 0.5, 1.25, -0.25], [0.25, -0.75, -0.75, -0.0, -0.75, -0.25, -1.0, 1.25], [0.5, -1.25, -1.0, 1.0, -0.5, -0.75, -1.5, 0.5], [0.25, 1.0, -1.0, 0.75, 1.0, 1.0, 0.75, -0.25], [-1.25, 0.5, -1.5, -1.25, -0.25, -1.25, -0.25, 1.0], [-1.0, 1.0, 1.5, -1.5, -0.25, 0.5, 0.75, -0.75], [1.0, -0.5, -1.0, 0.0, 0.25, 1.0, 0.5, -1.25]]> : tensor<16x8xf32>} : tensor<16x8xf32>
  %wd = graph.constant {value = dense<[[0.25, -0.5, 0.5, -1.25, 0.5, 0.75, -1.5, -1.5, 1.25, 1.25, -1.0, 1.25, -0.25, 0.0, -0.0, -0.5], [1.25, 0.25, 1.25, 0.25, 1.25, 0.0, -0.0, 0.25, -1.5, 0.75, -1.0, 1.25, -1.25, 0.5, 0.75, 0.0], [-1.25, 1.0, -0.5, -0.75, 0.5, 1.5, -1.25, -0.25, 0.5, -0.75, 1.25, 0.25, -1.25, -1.0, -1.0, -0.25], [1.25, -1.25, -1.0, -0.75, 0.25, -0.25, -0.25, -1.0, 1.0, -0.0, 1.0, -1.5, -0.25, -0.5, 1.0, 0.5], [0.0, -1.0, 0.5, 1.25, 0.75, 1.5, 0.25, -0.5, -0.75, 1.0, 1.0, 0.5, 0.75, -0.0, 1.0, 0.5], [-0.75, 0.25, 0.5, -1.0, 1.25, 1.0, -1.0, -0.75, -1.5, 1.25, -1.0, 1.0, 0.0, -1.25, -0.75, -0.75], [0.75, -0.5, -1.0, 1.25, 0.0, -1.25, 1.5, 0.5, -0.25, -1.0, 0.5, -1.25, 1.25, 0.75, 0.75, 0.75], [1.0, -0.0, 1.0, -1.25, 0.5, 0.75, -0.75, -1.25, 1.25, 1.25, -1.25, 0.25, -1.0, -1.0, 1.25, 0.5]]> : tensor<8x16xf32>} : tensor<8x16xf32>
  %h = graph.layer_norm %x, %g1 {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<1x4x8xf32>
  %q = graph.linear %h, %wq : tensor<1x4x8xf32>
  %k = graph.linear %h, %wk : tensor<1x4x4xf32>
  %v = graph.linear %h, %wv : tensor<1x4x4xf32>
  %q1 = graph.reshape %q : tensor<1x4x2x4xf32>
  %q2 = graph.transpose %q1 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x4x4xf32>
  %q3 = graph.rope %q2, %cos, %sin {interleaved = false} : tensor<1x2x4x4xf32>
  %k1 = graph.reshape %k : tensor<1x4x1x4xf32>
  %k2 = graph.transpose %k1 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x1x4x4xf32>
  %k3 = graph.rope %k2, %cos, %sin {interleaved = false} : tensor<1x1x4x4xf32>
  %v1 = graph.reshape %v : tensor<1x4x1x4xf32>
  %v2 = graph.transpose %v1 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x1x4x4xf32>
  %a = attn.sdpa %q3, %k3, %v2 {causal = true, scale = 0.5 : f32} : tensor<1x2x4x4xf32>
  %a1 = graph.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<1x4x2x4xf32>
  %a2 = graph.reshape %a1 : tensor<1x4x8xf32>
  %o = graph.linear %a2, %wo : tensor<1x4x8xf32>
  %r1 = graph.add %x, %o : tensor<1x4x8xf32>
  %h2 = graph.layer_norm %r1, %g2 {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<1x4x8xf32>
  %gt = graph.linear %h2, %wg : tensor<1x4x16xf32>
  %up = graph.linear %h2, %wu : tensor<1x4x16xf32>
  %s = graph.silu %gt : tensor<1x4x16xf32>
  %m = graph.mul %s, %up : tensor<1x4x16xf32>
  %dn = graph.linear %m, %wd : tensor<1x4x8xf32>
  %r2 = graph.add %r1, %dn : tensor<1x4x8xf32>
  return %r2
}
