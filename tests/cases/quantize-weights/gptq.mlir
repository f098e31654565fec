// RUN: lowbit opt %s --pass-pipeline='quantize-weights{bits=4 group=3 sym=false scheme=gptq act-order=false}' --weights cases/quantize-weights/weights.npz --calibration cases/quantize-weights/cal.npz --pass-stats --diff-numerics=cases/quantize-weights/cal.npz -o %t/out.mlir

// GPTQ in channel order (damp 0.01 by default) on the linear of %x, whose 3 calibration rows
// (6 inputs: a rank-3 Hessian, made definite by the damping) give H = XᵀX. The storage is
// the ordinary int4 form of scheme=rtn (qweight, scales, qzeros; groups of 3 inputs); %r's
// linear reads a parameter, not a weight, and is left alone. Expected: quantized=1,
// gptq-rows=3, and on the calibration rows about half the error of round to nearest:
// max-abs 2.191e-1 against 4.667e-1 with scheme=rtn (and 3.945e-1 with act-order=true: on 3
// rows, ordering by energy spreads errors into the small-range group).
func @f(%x: tensor<3x6xf32>, %r: tensor<2x6xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>) {
  %w = graph.weight {name = "w"} : tensor<2x6xf32>
  %y = graph.linear %x, %w : tensor<3x2xf32>
  %z = graph.linear %x, %r : tensor<3x2xf32>
  return %y, %z
}
