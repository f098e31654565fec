// One post-LN transformer encoder block: batch 1, 16 tokens, hidden 64, 4 heads of 16,
// MLP 64 -> 256 -> 64 with erf GELU. Weights: attention_block.safetensors (written by
// scripts/gen_example.py); `lowbit compile` picks them up by the file stem.
//
// A few ops are redundant on purpose, so that the IR dumps of
// `canonicalize,cse,dce,lower-to-kernel` show the passes at work: a transpose pair that
// cancels and an unused reshape (both removed by canonicalize, which also drops dead
// ops, so dce finds nothing left), and a duplicated layer norm (merged by cse).
func @main(%x: tensor<1x16x64xf32>) -> tensor<1x16x64xf32> {
  %wq = graph.weight {name = "attn.q.weight"} : tensor<64x64xf32>
  %bq = graph.weight {name = "attn.q.bias"} : tensor<64xf32>
  %wk = graph.weight {name = "attn.k.weight"} : tensor<64x64xf32>
  %bk = graph.weight {name = "attn.k.bias"} : tensor<64xf32>
  %wv = graph.weight {name = "attn.v.weight"} : tensor<64x64xf32>
  %bv = graph.weight {name = "attn.v.bias"} : tensor<64xf32>
  %wo = graph.weight {name = "attn.o.weight"} : tensor<64x64xf32>
  %bo = graph.weight {name = "attn.o.bias"} : tensor<64xf32>
  %g1 = graph.weight {name = "ln1.weight"} : tensor<64xf32>
  %b1 = graph.weight {name = "ln1.bias"} : tensor<64xf32>
  %w1 = graph.weight {name = "mlp.fc1.weight"} : tensor<256x64xf32>
  %c1 = graph.weight {name = "mlp.fc1.bias"} : tensor<256xf32>
  %w2 = graph.weight {name = "mlp.fc2.weight"} : tensor<64x256xf32>
  %c2 = graph.weight {name = "mlp.fc2.bias"} : tensor<64xf32>
  %g2 = graph.weight {name = "ln2.weight"} : tensor<64xf32>
  %b2 = graph.weight {name = "ln2.bias"} : tensor<64xf32>

  // Self-attention.
  %q = graph.linear %x, %wq, %bq : tensor<1x16x64xf32>
  %k = graph.linear %x, %wk, %bk : tensor<1x16x64xf32>
  %v = graph.linear %x, %wv, %bv : tensor<1x16x64xf32>
  %qh = graph.reshape %q : tensor<1x16x4x16xf32>
  %kh = graph.reshape %k : tensor<1x16x4x16xf32>
  %vh = graph.reshape %v : tensor<1x16x4x16xf32>
  %qt = graph.transpose %qh {perm = array<i64: 0, 2, 1, 3>} : tensor<1x4x16x16xf32>
  %kt = graph.transpose %kh {perm = array<i64: 0, 2, 1, 3>} : tensor<1x4x16x16xf32>
  %vt = graph.transpose %vh {perm = array<i64: 0, 2, 1, 3>} : tensor<1x4x16x16xf32>
  // Swapping the last two dims twice is the identity.
  %ktt = graph.transpose %kt {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x16x16xf32>
  %kt2 = graph.transpose %ktt {perm = array<i64: 0, 1, 3, 2>} : tensor<1x4x16x16xf32>
  %att = attn.sdpa %qt, %kt2, %vt {causal = false, scale = 0.25 : f32} : tensor<1x4x16x16xf32>
  %at = graph.transpose %att {perm = array<i64: 0, 2, 1, 3>} : tensor<1x16x4x16xf32>
  %ac = graph.reshape %at : tensor<1x16x64xf32>
  %o = graph.linear %ac, %wo, %bo : tensor<1x16x64xf32>
  %r1 = graph.add %x, %o : tensor<1x16x64xf32>
  %h = graph.layer_norm %r1, %g1, %b1 {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<1x16x64xf32>

  // MLP.
  %m1 = graph.linear %h, %w1, %c1 : tensor<1x16x256xf32>
  %m2 = graph.gelu %m1 {approximate = "none"} : tensor<1x16x256xf32>
  %m3 = graph.linear %m2, %w2, %c2 : tensor<1x16x64xf32>
  // The same layer norm as %h.
  %h2 = graph.layer_norm %r1, %g1, %b1 {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<1x16x64xf32>
  %r2 = graph.add %h2, %m3 : tensor<1x16x64xf32>
  %y = graph.layer_norm %r2, %g2, %b2 {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<1x16x64xf32>
  // Never used.
  %flat = graph.reshape %y : tensor<16x64xf32>
  return %y
}
