// RUN: lowbit opt %s --pass-pipeline='migrate-scales' --weights cases/migrate-scales/not-applicable.npz --calibration cases/migrate-scales/not-applicable-cal.npz --pass-stats

// Nothing to migrate. %h feeds the linear %c but is also returned, so the norm cannot
// absorb 1/s (skipped-other-users=1; explicit=true would insert x·(1/s)). %w is shared by
// two linears on different inputs: scaling its columns for one would change the other, so
// they take no part. The linear on %y has a run-time weight %r.
// Expected: the IR unchanged; groups=0 skipped-other-users=1.
func @f(%x: tensor<2x4xf32>, %y: tensor<2x4xf32>, %r: tensor<4x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %g = graph.weight {name = "g"} : tensor<4xf32>
  %h = graph.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.0e-6 : f32} : tensor<2x4xf32>
  %w = graph.weight {name = "w"} : tensor<4x4xf32>
  %a = graph.linear %x, %w : tensor<2x4xf32>
  %b = graph.linear %y, %w : tensor<2x4xf32>
  %w3 = graph.weight {name = "w3"} : tensor<4x4xf32>
  %c = graph.linear %h, %w3 : tensor<2x4xf32>
  %d = graph.linear %y, %r : tensor<2x4xf32>
  return %a, %b, %c, %d, %h
}
