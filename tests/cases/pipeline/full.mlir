// RUN: lowbit opt %s --pass-pipeline=canonicalize,cse,dce,lower-to-kernel --pass-stats

// The default `lowbit compile` pipeline on an attention block with a residual layer norm
// and an MLP: constants fold (1/sqrt(8)), `* 1` goes, dead code goes, the duplicated K
// projection merges, then linears, attention and add+layer_norm lower to kernels.
func @block(%arg0: tensor<1x4x16xf32>) -> tensor<1x4x16xf32> {
  %wq = graph.weight {name = "q.weight"} : tensor<16x16xf32>
  %wk = graph.weight {name = "k.weight"} : tensor<16x16xf32>
  %wv = graph.weight {name = "v.weight"} : tensor<16x16xf32>
  %q = graph.linear %arg0, %wq : tensor<1x4x16xf32>
  %k = graph.linear %arg0, %wk : tensor<1x4x16xf32>
  %k_again = graph.linear %arg0, %wk : tensor<1x4x16xf32>
  %v = graph.linear %arg0, %wv : tensor<1x4x16xf32>
  %q4 = graph.reshape %q : tensor<1x4x2x8xf32>
  %k4 = graph.reshape %k : tensor<1x4x2x8xf32>
  %v4 = graph.reshape %v : tensor<1x4x2x8xf32>
  %qh = graph.transpose %q4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x4x8xf32>
  %kh = graph.transpose %k4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x4x8xf32>
  %vh = graph.transpose %v4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x4x8xf32>
  %d = graph.constant {value = dense<8.0> : tensor<f32>} : tensor<f32>
  %rs = graph.rsqrt %d : tensor<f32>
  %ks = graph.mul %k_again, %rs : tensor<1x4x16xf32>
  %o = attn.sdpa %qh, %kh, %vh {causal = true, scale = 0.35355339 : f32} : tensor<1x2x4x8xf32>
  %ot = graph.transpose %o {perm = array<i64: 0, 2, 1, 3>} : tensor<1x4x2x8xf32>
  %o3 = graph.reshape %ot : tensor<1x4x16xf32>
  %r = graph.add %o3, %arg0 : tensor<1x4x16xf32>
  %g = graph.weight {name = "ln.weight"} : tensor<16xf32>
  %b = graph.weight {name = "ln.bias"} : tensor<16xf32>
  %n = graph.layer_norm %r, %g, %b {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<1x4x16xf32>
  %w1 = graph.weight {name = "fc1.weight"} : tensor<32x16xf32>
  %b1 = graph.weight {name = "fc1.bias"} : tensor<32xf32>
  %h = graph.linear %n, %w1, %b1 : tensor<1x4x32xf32>
  %a = graph.gelu %h : tensor<1x4x32xf32>
  %w2 = graph.weight {name = "fc2.weight"} : tensor<16x32xf32>
  %y = graph.linear %a, %w2 : tensor<1x4x16xf32>
  %one = graph.constant {value = dense<1.0> : tensor<f32>} : tensor<f32>
  %y1 = graph.mul %y, %one : tensor<1x4x16xf32>
  %out = graph.add %y1, %ks : tensor<1x4x16xf32>
  %dead = graph.exp %out : tensor<1x4x16xf32>
  return %out
}
