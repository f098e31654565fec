// RUN: lowbit opt %s --mlir-elide-elementsattrs-if-larger=2

// Constants with more than N elements print elided; smaller ones in full.
func @f() -> (tensor<2xf32>, tensor<3xf32>) {
  %0 = graph.constant {value = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  %1 = graph.constant {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>} : tensor<3xf32>
  return %0, %1
}
