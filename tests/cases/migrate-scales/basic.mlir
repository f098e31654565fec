// RUN: lowbit opt %s --pass-pipeline='migrate-scales{alpha=0.5}' --weights cases/migrate-scales/basic.npz --calibration cases/migrate-scales/basic-cal.npz --pass-stats --diff-numerics=random:1 -o %t/out.mlir --print-ir-after-all

// Two foldable groups. %h (a layer norm) feeds only the linears q and k: γ and β become
// "ln.g.smooth"/"ln.b.smooth" (divided by s) and q.w, k.w get their columns multiplied by s.
// %q feeds only the linear up: q's rows and bias are divided by up's s ("q.w.smooth.1",
// "q.b.smooth") and up's columns multiplied. Expected: groups=2 folded-norm=1
// folded-linear=1, no new op, and an error of float rounding only in the table (EXACT-R).
func @f(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x2xf32>) {
  %g = graph.weight {name = "ln.g"} : tensor<4xf32>
  %b = graph.weight {name = "ln.b"} : tensor<4xf32>
  %h = graph.layer_norm %x, %g, %b {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x4xf32>
  %wq = graph.weight {name = "q.w"} : tensor<4x4xf32>
  %bq = graph.weight {name = "q.b"} : tensor<4xf32>
  %q = graph.linear %h, %wq, %bq : tensor<2x4xf32>
  %wk = graph.weight {name = "k.w"} : tensor<4x4xf32>
  %k = graph.linear %h, %wk : tensor<2x4xf32>
  %wu = graph.weight {name = "up.w"} : tensor<2x4xf32>
  %u = graph.linear %q, %wu : tensor<2x2xf32>
  return %k, %u
}
