//! The reference interpreter: evaluates any verified function on concrete inputs.
//!
//! It is the numerical oracle of lowbit. Importers are checked through it against ONNX
//! Runtime, exact rewrites by evaluating before and after, generated code against it.
//!
//! Values are [`Tensor`]s holding `f64` elements, each already rounded to its element type
//! ([`crate::numeric::round_to`]): an `f16` tensor holds only `f16` values, an `i4` tensor only
//! integers in [-8, 7]. Ops compute in `f64` and round their results once. Reference
//! semantics per dialect live in the sibling files, each an exhaustive match over its ops.

mod attn;
mod graph;
mod kernel;
mod lowbit;
mod rot;
pub mod util;

use std::collections::BTreeMap;

use thiserror::Error;

use crate::dialect::Opcode;
use crate::ir::{Attrs, Func, Loc, TensorType};

/// A concrete tensor: a type and its row-major elements, rounded to the element type.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Shape and element type.
    pub ty: TensorType,
    /// Row-major elements.
    pub data: Vec<f64>,
}

impl Tensor {
    /// A tensor from raw values, rounding each to `ty`'s element type.
    pub fn new(ty: TensorType, data: Vec<f64>) -> Tensor {
        assert_eq!(ty.num_elements(), data.len(), "data length must match {ty}");
        let e = ty.elem;
        let data = data
            .into_iter()
            .map(|v| crate::numeric::round_to(v, e))
            .collect();
        Tensor { ty, data }
    }

    /// A tensor of zeros.
    pub fn zeros(ty: TensorType) -> Tensor {
        let n = ty.num_elements();
        Tensor {
            ty,
            data: vec![0.0; n],
        }
    }

    /// The shape as `usize`s.
    pub fn dims(&self) -> Vec<usize> {
        self.ty.shape.iter().map(|&d| d as usize).collect()
    }
}

/// Weights by name.
pub type Weights = BTreeMap<String, Tensor>;

/// Why evaluation failed.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum InterpError {
    /// The inputs do not match the function's parameters.
    #[error("function '@{func}' {message}")]
    Inputs {
        /// The function.
        func: String,
        /// What is wrong.
        message: String,
    },
    /// An op could not be evaluated.
    #[error("'{op}' op {message} at {loc}")]
    Op {
        /// The op's name.
        op: &'static str,
        /// Its location.
        loc: Loc,
        /// What is wrong.
        message: String,
    },
}

/// What one op's evaluation sees.
pub struct EvalCx<'a> {
    /// Operand values.
    pub args: &'a [&'a Tensor],
    /// Attributes.
    pub attrs: &'a Attrs,
    /// Declared result types.
    pub results: &'a [&'a TensorType],
    /// The weight store.
    pub weights: &'a Weights,
}

/// Evaluation of one op: result tensors, or a message.
pub type EvalResult = Result<Vec<Tensor>, String>;

/// Evaluates one op.
pub fn eval_op(opcode: Opcode, cx: &EvalCx<'_>) -> EvalResult {
    match opcode {
        Opcode::Graph(op) => graph::eval(op, cx),
        Opcode::Lowbit(op) => lowbit::eval(op, cx),
        Opcode::Attn(op) => attn::eval(op, cx),
        Opcode::Rot(op) => rot::eval(op, cx),
        Opcode::Kernel(op) => kernel::eval(op, cx),
    }
}

/// Evaluates a verified function on `inputs` (one per parameter, types equal).
pub fn run_func(
    f: &Func,
    inputs: &[Tensor],
    weights: &Weights,
) -> Result<Vec<Tensor>, InterpError> {
    let bad = |message: String| InterpError::Inputs {
        func: f.name.clone(),
        message,
    };
    if inputs.len() != f.params.len() {
        return Err(bad(format!(
            "takes {} input(s), given {}",
            f.params.len(),
            inputs.len()
        )));
    }
    let mut env: cranelift_entity::SecondaryMap<crate::ir::Value, Option<Tensor>> =
        cranelift_entity::SecondaryMap::new();
    for (i, (&p, t)) in f.params.iter().zip(inputs).enumerate() {
        if &t.ty != f.ty(p) {
            return Err(bad(format!(
                "input #{i} has type {} but the parameter is {}",
                t.ty,
                f.ty(p)
            )));
        }
        env[p] = Some(t.clone());
    }
    for &op in &f.body {
        let d = &f.ops[op];
        let args: Vec<&Tensor> = d
            .args
            .iter()
            .map(|&a| {
                env[a]
                    .as_ref()
                    .expect("verified: operands are defined before use")
            })
            .collect();
        let results: Vec<&TensorType> = d.results.iter().map(|&r| f.ty(r)).collect();
        let cx = EvalCx {
            args: &args,
            attrs: &d.attrs,
            results: &results,
            weights,
        };
        let out = eval_op(d.opcode, &cx).map_err(|message| InterpError::Op {
            op: d.opcode.name(),
            loc: d.loc.clone(),
            message,
        })?;
        debug_assert_eq!(out.len(), d.results.len());
        for (&r, t) in d.results.iter().zip(out) {
            debug_assert_eq!(&t.ty, f.ty(r), "{} produced a wrong type", d.opcode);
            env[r] = Some(t);
        }
    }
    Ok(f.rets
        .iter()
        .map(|&r| env[r].clone().expect("verified: returns are defined"))
        .collect())
}
