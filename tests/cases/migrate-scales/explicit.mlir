// RUN: lowbit opt %s --pass-pipeline='migrate-scales{explicit=true}' --weights cases/migrate-scales/explicit.npz --calibration cases/migrate-scales/explicit-cal.npz --pass-stats --diff-numerics=random:2 -o %t/out.mlir --print-ir-after-all

// A post-LN residual block as BERT has it: %h feeds the linear o and the residual add, so
// the norm cannot absorb 1/s. With explicit=true the linear reads %h · (1/s) (a new weight
// "o.w.smooth_inv") and o's columns are multiplied by s; the add still reads %h.
// Expected: groups=1 explicit=1; rounding-level error only (EXACT-R).
func @f(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %g = graph.weight {name = "ln.g"} : tensor<4xf32>
  %b = graph.weight {name = "ln.b"} : tensor<4xf32>
  %h = graph.layer_norm %x, %g, %b {axis = -1 : i64, epsilon = 1.0e-5 : f32} : tensor<2x4xf32>
  %w = graph.weight {name = "o.w"} : tensor<4x4xf32>
  %o = graph.linear %h, %w : tensor<2x4xf32>
  %r = graph.add %o, %h : tensor<2x4xf32>
  return %r
}
