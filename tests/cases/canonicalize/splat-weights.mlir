// RUN: lowbit opt %s --pass-pipeline='canonicalize' --weights cases/canonicalize/weights.npz --pass-stats --diff-numerics=random:1

// With the weights at hand, weights holding one repeated value become splat constants
// ("one" = 1.0 and "zero" = 0.0 of type f32, "isnan" = all false [2, 4], "half" = 0.5 x4),
// which lets the identities fire: `x * 1` and the NaN guard `select(false, 0, x)` go
// away (the shape of the torch dynamo export's attention). "w" has distinct values and
// stays a weight. Expected: splat-weights=4, the function computes (p + w) * 0.5, and
// diff-numerics shows no error (exact).
func @f(%p: tensor<2x4xf32>) -> (tensor<2x4xf32>) {
  %s = graph.weight {name = "one"} : tensor<f32>
  %nan = graph.weight {name = "isnan"} : tensor<2x4xi1>
  %z = graph.weight {name = "zero"} : tensor<f32>
  %w = graph.weight {name = "w"} : tensor<4xf32>
  %h = graph.weight {name = "half"} : tensor<4xf32>
  %a = graph.mul %p, %s : tensor<2x4xf32>
  %b = graph.select %nan, %z, %a : tensor<2x4xf32>
  %c = graph.add %b, %w : tensor<2x4xf32>
  %d = graph.mul %c, %h : tensor<2x4xf32>
  return %d
}
