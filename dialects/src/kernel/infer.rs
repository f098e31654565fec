//! Type inference for the `kernel` dialect.
//!
//! Kernels are fused forms of `graph` / `attn` ops and take their operands' types from
//! them: `gemm` is a `linear` with a choice of `b` layout and an epilogue (the gelu and
//! silu epilogues need floats; `none`/`relu` gemms may be integer), `attention` is
//! exactly `attn.sdpa`, `add_layer_norm` is `layer_norm(x + residual)` over the last dim.

use super::Op;
use crate::infer::{
    float, non_negative, one_of, positive, rank_at_least, rank_is, same_elem, shape_is, InferCx,
    InferResult,
};
use crate::ir::TensorType;

/// Infers the result types of a `kernel` op.
pub fn infer(op: Op, cx: &InferCx<'_>) -> InferResult {
    match op {
        Op::Gemm => gemm(cx),
        Op::Attention => crate::attn::infer::sdpa(cx),
        Op::AddLayerNorm => {
            let (x, res) = (cx.arg("x"), cx.arg("residual"));
            float("x", x)?;
            rank_at_least("x", x, 1)?;
            if x != res {
                return Err(format!("x and residual types differ: {x} vs {res}"));
            }
            non_negative(cx.attrs, "epsilon")?;
            let last = x.shape[x.rank() - 1];
            for name in ["gamma", "beta"] {
                let p = cx.arg(name);
                same_elem(&format!("x and {name}"), x.elem, p.elem)?;
                shape_is(name, p, &[last], "the last dim of x")?;
            }
            Ok(vec![x.clone()])
        }
    }
}

fn gemm(cx: &InferCx<'_>) -> InferResult {
    let epilogue = one_of(
        cx.attrs,
        "epilogue",
        None,
        &["none", "relu", "gelu", "gelu_tanh", "silu"],
    )?;
    positive(cx.attrs, "tile_m")?;
    positive(cx.attrs, "tile_n")?;
    let (a, b) = (cx.arg("a"), cx.arg("b"));
    rank_at_least("a", a, 2)?;
    let transpose_b = cx
        .attrs
        .bool("transpose_b")
        .expect("verified: 'transpose_b' is a bool");
    let layout = if transpose_b {
        "[N, K] (transpose_b)"
    } else {
        "[K, N]"
    };
    rank_is("b", b, 2, layout)?;
    same_elem("a and b", a.elem, b.elem)?;
    if matches!(epilogue, "gelu" | "gelu_tanh" | "silu") && !a.elem.is_float() {
        return Err(format!(
            "epilogue \"{epilogue}\" needs a float element type, found {}",
            a.elem
        ));
    }
    let (kb, n) = if transpose_b {
        (b.shape[1], b.shape[0])
    } else {
        (b.shape[0], b.shape[1])
    };
    let ka = a.shape[a.rank() - 1];
    if ka != kb {
        return Err(format!("inner dimensions differ: {ka} vs {kb}"));
    }
    if let Some(bias) = cx.operand("bias") {
        same_elem("a and bias", a.elem, bias.elem)?;
        shape_is("bias", bias, &[n], "[N]")?;
    }
    let mut shape = a.shape.clone();
    *shape.last_mut().expect("rank checked") = n;
    Ok(vec![TensorType::new(shape, a.elem)])
}
