//! Example functions for tests and benchmarks (`passes/benches/saturation.rs`).

/// A stack of `n` transformer-like blocks in W8A8 form (per-token activation QDQ,
/// per-channel int8 weights), each block: two quantized linears, gelu, residual add,
/// layer norm.
pub fn w8a8_stack(n: usize) -> String {
    let (s, h) = (4, 16);
    let mut t = format!("func @stack(%x: tensor<{s}x{h}xf32>) -> tensor<{s}x{h}xf32> {{\n");
    t += &format!(
        "  %sx = graph.constant {{value = dense<0.05> : tensor<{s}x1xf32>}} : tensor<{s}x1xf32>\n"
    );
    t += &format!(
        "  %sw = graph.constant {{value = dense<0.01> : tensor<{h}xf32>}} : tensor<{h}xf32>\n"
    );
    let mut cur = "%x".to_string();
    for i in 0..n {
        t += &format!(
            "  %w{i}a = graph.weight {{name = \"l{i}.a\"}} : tensor<{h}x{h}xi8>
  %w{i}b = graph.weight {{name = \"l{i}.b\"}} : tensor<{h}x{h}xi8>
  %b{i} = graph.weight {{name = \"l{i}.bias\"}} : tensor<{h}xf32>
  %q{i}a = lowbit.quantize {cur}, %sx {{axis = 1 : i64, block_size = {h} : i64}} : tensor<{s}x{h}xi8>
  %d{i}a = lowbit.dequantize %q{i}a, %sx {{axis = 1 : i64, block_size = {h} : i64}} : tensor<{s}x{h}xf32>
  %dw{i}a = lowbit.dequantize %w{i}a, %sw {{axis = 0 : i64}} : tensor<{h}x{h}xf32>
  %y{i}a = graph.linear %d{i}a, %dw{i}a, %b{i} : tensor<{s}x{h}xf32>
  %g{i} = graph.gelu %y{i}a : tensor<{s}x{h}xf32>
  %q{i}b = lowbit.quantize %g{i}, %sx {{axis = 1 : i64, block_size = {h} : i64}} : tensor<{s}x{h}xi8>
  %d{i}b = lowbit.dequantize %q{i}b, %sx {{axis = 1 : i64, block_size = {h} : i64}} : tensor<{s}x{h}xf32>
  %dw{i}b = lowbit.dequantize %w{i}b, %sw {{axis = 0 : i64}} : tensor<{h}x{h}xf32>
  %y{i}b = graph.linear %d{i}b, %dw{i}b : tensor<{s}x{h}xf32>
  %r{i} = graph.add %y{i}b, {cur} : tensor<{s}x{h}xf32>
  %n{i} = graph.layer_norm %r{i} {{axis = -1 : i64, epsilon = 1.0e-5 : f32}} : tensor<{s}x{h}xf32>
"
        );
        cur = format!("%n{i}");
    }
    t += &format!("  return {cur}\n}}\n");
    t
}
