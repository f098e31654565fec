//! ONNX nodes to ops: one arm per ONNX op type, each located at the node name.
//!
//! Ops that compute on shapes and masks (`Shape`, `Range`, `ConstantOfShape`, `Equal`,
//! comparisons, `Expand`/`Max`/`Min`/`Clip` of constants) are evaluated here when their
//! inputs are constants; graph-op arms fold through [`Importer::emit`]. Comparisons of
//! run-time tensors are `graph` comparison ops, `Max`/`Min` of run-time tensors (variadic:
//! a chain) `graph.maximum`/`graph.minimum`, as is `Clip` with a run-time bound. Forms the
//! dialects lack on run-time tensors are emulated exactly where possible (`Expand` as an
//! `add` of zeros, `Reciprocal` as a `div`, `And`/`Or`/`Not` as `select`, `Xor` as `select`
//! of `equal`, `GatherND` with constant indices as `reshape` + `gather`) or up to rounding
//! (`Clip` with constant bounds and `Max`/`Min` of a tensor and a constant, through
//! `relu`, which the LLVM backend lowers); `IsNaN` reads false only under `--assume-no-nan`.
//! The rest are [`OnnxError::Unsupported`] with the nearest supported form.
//!
//! Weight-only quantization as exporters write it, `Mul(Cast(q: int8), scale)`, and
//! `DequantizeLinear` become `lowbit.dequantize` of the integer weight, so weights stay
//! low-bit in the weight store.

use std::rc::Rc;

use lowbit_dialects::interp::Tensor;
use lowbit_dialects::ir::{Attr, Attrs, Elem, TensorType};
use lowbit_dialects::{graph, lowbit, Opcode};

use super::import::{Importer, Val};
use super::proto::{AttributeProto, NodeProto};
use super::tensor::{decode, elem_of, type_name};
use super::{OnnxError, OnnxResult};

pub(super) fn g(op: graph::Op) -> Opcode {
    Opcode::Graph(op)
}

/// One node being imported: the node and helpers for its inputs and attributes.
pub(super) struct N<'a> {
    pub(super) node: &'a NodeProto,
}

impl N<'_> {
    pub(super) fn err(&self, message: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            node: self.node.name.clone(),
            op_type: self.node.op_type.clone(),
            message: message.into(),
        }
    }

    pub(super) fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub(super) fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }

    pub(super) fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).map_or(default, |a| a.f)
    }

    pub(super) fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    pub(super) fn string(&self, name: &str) -> Option<String> {
        self.attr(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// Input `i`, or `None` when absent or empty (an omitted optional input).
    pub(super) fn input(&self, im: &Importer, i: usize) -> OnnxResult<Option<Val>> {
        match self.node.input.get(i) {
            None => Ok(None),
            Some(name) if name.is_empty() => Ok(None),
            Some(name) => {
                im.vals.get(name).cloned().map(Some).ok_or_else(|| {
                    self.err(format!("input '{name}' is not defined before the node"))
                })
            }
        }
    }

    pub(super) fn req(&self, im: &Importer, i: usize) -> OnnxResult<Val> {
        self.input(im, i)?
            .ok_or_else(|| self.err(format!("input #{i} is missing")))
    }

    /// Input `i` as a constant tensor (shape operands).
    pub(super) fn konst(&self, im: &Importer, i: usize) -> OnnxResult<Option<Rc<Tensor>>> {
        match self.input(im, i)? {
            None => Ok(None),
            Some(Val::Const(t, _)) => Ok(Some(t)),
            // A run-time tensor with no elements is known: it is empty.
            Some(Val::Ir(v)) if im.f.ty(v).num_elements() == 0 => {
                Ok(Some(Rc::new(Tensor::new(im.f.ty(v).clone(), vec![]))))
            }
            Some(Val::Ir(_)) => Err(self.err(format!(
                "input #{i} must be a constant (a shape computation that folds at import); bind every symbolic dimension with --dim"
            ))),
        }
    }

    pub(super) fn const_ints(&self, im: &Importer, i: usize) -> OnnxResult<Option<Vec<i64>>> {
        Ok(self
            .konst(im, i)?
            .map(|t| t.data.iter().map(|&v| v as i64).collect()))
    }

    pub(super) fn emit(
        &self,
        im: &mut Importer,
        opcode: Opcode,
        args: &[Val],
        attrs: Attrs,
        declared: Option<Vec<TensorType>>,
    ) -> OnnxResult<Vec<Val>> {
        im.emit(opcode, args, attrs, declared, &self.node.name)
            .map_err(|m| self.err(m))
    }

    pub(super) fn emit1(
        &self,
        im: &mut Importer,
        opcode: Opcode,
        args: &[Val],
        attrs: Attrs,
    ) -> OnnxResult<Val> {
        Ok(self.emit(im, opcode, args, attrs, None)?.remove(0))
    }

    pub(super) fn reshape(&self, im: &mut Importer, x: &Val, shape: Vec<i64>) -> OnnxResult<Val> {
        let ty = TensorType::new(shape, im.ty(x).elem);
        Ok(self
            .emit(
                im,
                g(graph::Op::Reshape),
                std::slice::from_ref(x),
                Attrs::new(),
                Some(vec![ty]),
            )?
            .remove(0))
    }
}

pub(super) fn konst(t: Tensor) -> Val {
    Val::Const(Rc::new(t), None)
}

pub(super) fn scalar(v: f64, elem: Elem) -> Val {
    konst(Tensor::new(TensorType::scalar(elem), vec![v]))
}

/// Normalizes a possibly negative axis against `rank`.
pub(super) fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// Default-domain ops the importer maps whose meaning changed at an opset above
/// [`MIN_OPSET`](super::import::MIN_OPSET): the op, the first opset with the form the
/// importer maps by default, and the older form, which is imported too (the schema history
/// of `onnx.defs.get_all_schemas_with_history()`, onnx 1.23.2). Every other mapped op means
/// the same at every opset from `MIN_OPSET` on (later versions add element types, or
/// attributes whose defaults keep the older meaning: `Gemm`'s optional `C` (11),
/// `Concat`/`Flatten`/`Gather`/`Slice`'s negative axes (11), `GatherND`'s `batch_dims` (12),
/// `Dropout`'s `training_mode` (12), `QuantizeLinear`/`DequantizeLinear`'s `axis` (13)).
/// Ops that take their axes from an input from opset 18 on (`ReduceMean`, `ReduceMax`) are
/// handled in [`reduce`].
pub const OLD_FORMS: &[(&str, i64, &str)] = &[
    (
        "Softmax",
        13,
        "softmax of the input coerced to 2-D at `axis` (default 1): reshape, softmax over the last axis, reshape back",
    ),
    (
        "LogSoftmax",
        13,
        "log-softmax of the input coerced to 2-D at `axis` (default 1), as Softmax",
    ),
    ("ReduceSum", 13, "`axes` an attribute instead of input #1"),
    ("Squeeze", 13, "`axes` an attribute instead of input #1"),
    ("Unsqueeze", 13, "`axes` an attribute instead of input #1"),
    ("Split", 13, "`split` an attribute instead of input #1"),
    ("Clip", 11, "`min` and `max` attributes instead of inputs #1 and #2"),
];

/// Whether node `n` is read in its older form of [`OLD_FORMS`] at the model's opset.
fn old_form(im: &Importer, n: &N<'_>) -> bool {
    OLD_FORMS
        .iter()
        .any(|&(op, since, _)| op == n.node.op_type && im.opset < since)
}

/// `Softmax` / `LogSoftmax`; before opset 13 over the input coerced to 2-D at `axis`
/// (default 1), which is a softmax over the last axis when `axis` is the last one.
fn softmax(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let x = n.req(im, 0)?;
    let op = if n.node.op_type == "Softmax" {
        graph::Op::Softmax
    } else {
        graph::Op::LogSoftmax
    };
    if !old_form(im, n) {
        let attrs = Attrs::new().with("axis", Attr::Int(n.int("axis", -1)));
        return n.emit1(im, g(op), &[x], attrs);
    }
    let shape = im.ty(&x).shape;
    let r = shape.len();
    let axis = n.int("axis", 1);
    let a = if r == 0 {
        0
    } else {
        norm_axis(axis, r).ok_or_else(|| {
            n.err(format!(
                "axis {axis} is out of range for rank {r} (opset {} coerces the input to 2-D at axis)",
                im.opset
            ))
        })?
    };
    let last = Attrs::new().with("axis", Attr::Int(-1));
    if r > 0 && a == r - 1 {
        return n.emit1(im, g(op), &[x], last);
    }
    let lead: i64 = shape[..a].iter().product();
    let rest: i64 = shape[a..].iter().product();
    let x2 = n.reshape(im, &x, vec![lead, rest])?;
    let y = n.emit1(im, g(op), &[x2], last)?;
    n.reshape(im, &y, shape)
}

/// Imports one node, binding its outputs in `im.vals`.
pub fn import_node(im: &mut Importer, node: &NodeProto) -> OnnxResult<()> {
    let n = N { node };
    let outs = match node.domain.as_str() {
        "" | "ai.onnx" => map_node(im, &n)?,
        "com.microsoft" => super::msft::map_node(im, &n)?,
        _ => {
            return Err(unsupported(
                im,
                node,
                "the importer maps the default ONNX domain and com.microsoft only",
            ))
        }
    };
    for (name, v) in node.output.iter().zip(outs) {
        if !name.is_empty() {
            im.vals.insert(name.clone(), v);
        }
    }
    Ok(())
}

pub(super) fn unsupported(im: &Importer, node: &NodeProto, hint: &str) -> OnnxError {
    let domain = if node.domain.is_empty() {
        "ai.onnx".to_string()
    } else {
        node.domain.clone()
    };
    let opset = im.opsets.get(&domain).copied().unwrap_or(im.opset);
    OnnxError::Unsupported {
        op_type: node.op_type.clone(),
        domain,
        opset,
        node: node.name.clone(),
        hint: hint.to_string(),
    }
}

/// The nearest supported form of an op the importer does not map.
fn hint(op_type: &str) -> &'static str {
    match op_type {
        "Einsum" => "express it as MatMul with Transpose/Reshape",
        "GatherND" => "GatherND is supported with constant indices and batch_dims = 0",
        "GatherElements" | "ScatterND" => "use Gather along one axis",
        "IsInf" => "IsInf is supported only on constants (folded at import)",
        "ConvInteger" | "QLinearConv" => {
            "the importer maps quantized matmuls (MatMulInteger, QLinearMatMul) and QDQ pairs"
        }
        "Loop" | "If" | "Scan" => "control flow is not supported; export a static graph",
        "Attention" | "MultiHeadAttention" => {
            "export attention as MatMul, Softmax, MatMul (fused by the fuse-attention pass)"
        }
        "SkipLayerNormalization" | "SimplifiedLayerNormalization" => {
            "use Add followed by LayerNormalization"
        }
        _ => "see the supported ops in compiler/src/onnx/ops.rs",
    }
}

fn map_node(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    use graph::Op as G;
    let op_type = n.node.op_type.as_str();
    let unary = |op: G| -> Option<G> { Some(op) };
    let un = match op_type {
        "Sqrt" => unary(G::Sqrt),
        "Erf" => unary(G::Erf),
        "Tanh" => unary(G::Tanh),
        "Exp" => unary(G::Exp),
        "Log" => unary(G::Log),
        "Neg" => unary(G::Neg),
        "Relu" => unary(G::Relu),
        "Sigmoid" => unary(G::Sigmoid),
        _ => None,
    };
    if let Some(op) = un {
        let x = n.req(im, 0)?;
        return Ok(vec![n.emit1(im, g(op), &[x], Attrs::new())?]);
    }
    let bin = match op_type {
        "Add" => Some(G::Add),
        "Sub" => Some(G::Sub),
        "Mul" => Some(G::Mul),
        "Div" => Some(G::Div),
        "Pow" => Some(G::Pow),
        "Equal" => Some(G::Equal),
        "Less" => Some(G::Less),
        "LessOrEqual" => Some(G::LessEqual),
        "Greater" => Some(G::Greater),
        "GreaterOrEqual" => Some(G::GreaterEqual),
        _ => None,
    };
    // Comparisons of constants fold below (on any element type the importer reads).
    let bin = match bin {
        Some(G::Equal | G::Less | G::LessEqual | G::Greater | G::GreaterEqual)
            if all_const(im, n)? =>
        {
            None
        }
        b => b,
    };
    if let Some(op) = bin {
        if op == G::Mul {
            if let Some(v) = weight_dequantize(im, n)? {
                return Ok(vec![v]);
            }
        }
        let (a, b) = (n.req(im, 0)?, n.req(im, 1)?);
        // Pow's exponent may have another element type (the result has the base's).
        let b = match (&b, im.ty(&a).elem) {
            (Val::Const(t, _), e) if t.ty.elem != e && op != G::Pow => {
                konst(Tensor::new(t.ty.with_elem(e), t.data.clone()))
            }
            _ => b,
        };
        return Ok(vec![n.emit1(im, g(op), &[a, b], Attrs::new())?]);
    }
    Ok(match op_type {
        "Identity" => vec![n.req(im, 0)?],
        "Dropout" => super::transformer::dropout(im, n)?,
        "Constant" => vec![constant(im, n)?],
        "Reciprocal" => {
            let x = n.req(im, 0)?;
            let one = scalar(1.0, im.ty(&x).elem);
            vec![n.emit1(im, g(G::Div), &[one, x], Attrs::new())?]
        }
        "MatMul" => {
            let (a, b) = (n.req(im, 0)?, n.req(im, 1)?);
            vec![n.emit1(im, g(G::MatMul), &[a, b], Attrs::new())?]
        }
        "Gemm" => vec![gemm(im, n)?],
        "Softmax" | "LogSoftmax" => vec![softmax(im, n)?],
        "LayerNormalization" => super::transformer::layer_norm(im, n)?,
        "RMSNormalization" => super::transformer::rms_norm(im, n)?,
        "RotaryEmbedding" => super::transformer::rotary_embedding(im, n)?,
        "Attention" => super::transformer::attention(im, n)?,
        "Trilu" => super::transformer::trilu(im, n)?,
        "CastLike" => super::transformer::cast_like(im, n)?,
        "Gelu" => {
            let x = n.req(im, 0)?;
            let approx = n.string("approximate").unwrap_or_else(|| "none".into());
            let attrs = Attrs::new().with("approximate", Attr::Str(approx));
            vec![n.emit1(im, g(G::Gelu), &[x], attrs)?]
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" => vec![reduce(im, n)?],
        "Transpose" => {
            let x = n.req(im, 0)?;
            let rank = im.ty(&x).rank() as i64;
            let perm = n.ints("perm").unwrap_or_else(|| (0..rank).rev().collect());
            vec![n.emit1(
                im,
                g(G::Transpose),
                &[x],
                Attrs::new().with("perm", Attr::Ints(perm)),
            )?]
        }
        "Reshape" => {
            let x = n.req(im, 0)?;
            let spec = n
                .const_ints(im, 1)?
                .ok_or_else(|| n.err("has no shape input"))?;
            let shape = reshape_target(&im.ty(&x).shape, &spec, n.int("allowzero", 0) != 0)
                .map_err(|m| n.err(m))?;
            vec![n.reshape(im, &x, shape)?]
        }
        "Flatten" => {
            let x = n.req(im, 0)?;
            let shape = im.ty(&x).shape;
            // Flatten's axis lies in [-r, r]; a negative one counts from r.
            let r = shape.len() as i64;
            let a = n.int("axis", 1);
            let a = if a < 0 { a + r } else { a };
            let axis = usize::try_from(a)
                .ok()
                .filter(|&a| a <= shape.len())
                .ok_or_else(|| n.err("axis is out of range"))?;
            let lead: i64 = shape[..axis].iter().product();
            let rest: i64 = shape[axis..].iter().product();
            vec![n.reshape(im, &x, vec![lead, rest])?]
        }
        "Unsqueeze" | "Squeeze" => vec![squeeze(im, n)?],
        "Concat" => {
            let args = (0..n.node.input.len())
                .map(|i| n.req(im, i))
                .collect::<OnnxResult<Vec<_>>>()?;
            let attrs = Attrs::new().with("axis", Attr::Int(n.int("axis", 0)));
            vec![n.emit1(im, g(G::Concat), &args, attrs)?]
        }
        "Split" => split(im, n)?,
        "Slice" => vec![slice(im, n)?],
        "Gather" => {
            let (data, idx) = (n.req(im, 0)?, n.req(im, 1)?);
            let attrs = Attrs::new().with("axis", Attr::Int(n.int("axis", 0)));
            vec![n.emit1(im, g(G::Gather), &[data, idx], attrs)?]
        }
        "Where" => {
            let (c, a, b) = (n.req(im, 0)?, n.req(im, 1)?, n.req(im, 2)?);
            vec![n.emit1(im, g(G::Select), &[c, a, b], Attrs::new())?]
        }
        "Cast" => {
            let x = n.req(im, 0)?;
            let to = n.int("to", 1) as i32;
            let elem = elem_of(to)
                .ok_or_else(|| n.err(format!("casts to unsupported {}", type_name(to))))?;
            if im.ty(&x).elem == elem {
                vec![x]
            } else {
                if let (Val::Const(q, Some(_)), true) = (&x, elem.is_float()) {
                    if q.ty.elem.is_int() && q.data.len() > INT_WEIGHT_MIN {
                        im.int_casts.insert(n.node.output[0].clone(), x.clone());
                    }
                }
                let ty = im.ty(&x).with_elem(elem);
                let attrs = super::transformer::saturate_attr(n, elem);
                n.emit(im, g(G::Cast), &[x], attrs, Some(vec![ty]))?
            }
        }
        "Shape" => {
            let x = n.req(im, 0)?;
            let shape = im.ty(&x).shape;
            let r = shape.len() as i64;
            let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let (s, e) = (clampi(n.int("start", 0)), clampi(n.int("end", r)));
            let dims: Vec<f64> = shape[s..e.max(s)].iter().map(|&d| d as f64).collect();
            vec![konst(Tensor::new(
                TensorType::new(vec![dims.len() as i64], Elem::I64),
                dims,
            ))]
        }
        "Size" => {
            let x = n.req(im, 0)?;
            vec![scalar(im.ty(&x).num_elements() as f64, Elem::I64)]
        }
        "ConstantOfShape" => {
            let shape = n.const_ints(im, 0)?.unwrap_or_default();
            let value = match n.attr("value").and_then(|a| a.t.as_ref()) {
                Some(t) => decode(t, std::path::Path::new("."))?,
                None => Tensor::new(TensorType::new(vec![1], Elem::F32), vec![0.0]),
            };
            if shape.iter().any(|&d| d < 0) {
                return Err(n.err(format!("shape {shape:?} has a negative dimension")));
            }
            let count: i64 = shape.iter().product();
            let v = value.data.first().copied().unwrap_or(0.0);
            vec![konst(Tensor::new(
                TensorType::new(shape, value.ty.elem),
                vec![v; count.max(0) as usize],
            ))]
        }
        "Range" => {
            let get = |i| -> OnnxResult<Rc<Tensor>> {
                n.konst(im, i)?
                    .ok_or_else(|| n.err(format!("input #{i} is missing")))
            };
            let (s, l, d) = (get(0)?, get(1)?, get(2)?);
            let first = |t: &Tensor| t.data.first().copied();
            let (Some(s0), Some(l0), Some(d0)) = (first(&s), first(&l), first(&d)) else {
                return Err(n.err("start, limit and delta must be scalars"));
            };
            if d0 == 0.0 {
                return Err(n.err("delta is zero"));
            }
            let count = ((l0 - s0) / d0).ceil().max(0.0) as usize;
            let data = (0..count).map(|i| s0 + i as f64 * d0).collect();
            vec![konst(Tensor::new(
                TensorType::new(vec![count as i64], s.ty.elem),
                data,
            ))]
        }
        "Expand" => vec![expand(im, n)?],
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor"
        | "Max" | "Min"
            if all_const(im, n)? =>
        {
            vec![const_binary(im, n)?]
        }
        "Not" if all_const(im, n)? => {
            let t = n.konst(im, 0)?.expect("all inputs are constants");
            let data = t
                .data
                .iter()
                .map(|&v| f64::from(u8::from(v == 0.0)))
                .collect();
            vec![konst(Tensor::new(t.ty.clone(), data))]
        }
        "And" | "Or" => vec![logic(im, n)?],
        "Not" => {
            // not(x) = select(x, false, true), exact on i1.
            let x = n.req(im, 0)?;
            let (f, t) = (scalar(0.0, Elem::I1), scalar(1.0, Elem::I1));
            vec![n.emit1(im, g(G::Select), &[x, f, t], Attrs::new())?]
        }
        "GatherND" => vec![gather_nd(im, n)?],
        // ONNX Runtime registers this contrib op in the default domain.
        "SimplifiedLayerNormalization" => super::msft::simplified_norm(im, n)?,
        "IsNaN" if im.assume_no_nan => {
            let x = n.req(im, 0)?;
            let ty = im.ty(&x).with_elem(Elem::I1);
            vec![konst(Tensor::zeros(ty))]
        }
        "IsNaN" => {
            // isnan(x) = select(equal(x, x), false, true): NaN is the one value unequal to
            // itself. `--assume-no-nan` reads it as false instead (the arm above), which
            // lets canonicalize drop `where(isnan(p), 0, p)` guards.
            let x = n.req(im, 0)?;
            if !im.ty(&x).elem.is_float() {
                return Err(n.err(format!("takes a float operand, not {}", im.ty(&x))));
            }
            let eq = n.emit1(im, g(G::Equal), &[x.clone(), x], Attrs::new())?;
            let (f, t) = (scalar(0.0, Elem::I1), scalar(1.0, Elem::I1));
            vec![n.emit1(im, g(G::Select), &[eq, f, t], Attrs::new())?]
        }
        "Xor" => {
            // xor(a, b) = select(equal(a, b), false, true), exact on i1.
            let (a, b) = (n.req(im, 0)?, n.req(im, 1)?);
            for v in [&a, &b] {
                if im.ty(v).elem != Elem::I1 {
                    return Err(n.err(format!("takes i1 operands, not {}", im.ty(v))));
                }
            }
            let eq = n.emit1(im, g(G::Equal), &[a, b], Attrs::new())?;
            let (f, t) = (scalar(0.0, Elem::I1), scalar(1.0, Elem::I1));
            vec![n.emit1(im, g(G::Select), &[eq, f, t], Attrs::new())?]
        }
        "Max" | "Min"
            if n.node.input.len() == 2 && matches!(n.input(im, 1)?, Some(Val::Const(..))) =>
        {
            vec![clip(im, n)?]
        }
        "Max" | "Min" => vec![max_min(im, n)?],
        "Clip" => vec![clip(im, n)?],
        "DequantizeLinear" => vec![super::quant::dequantize_linear(im, n)?],
        "QuantizeLinear" => vec![super::quant::quantize_linear(im, n)?],
        "DynamicQuantizeLinear" => super::quant::dynamic_quantize_linear(im, n)?,
        "MatMulInteger" => vec![super::quant::matmul_integer(im, n)?],
        "QLinearMatMul" => vec![super::quant::qlinear_matmul(im, n)?],
        _ => return Err(unsupported(im, n.node, hint(op_type))),
    })
}

/// Integer initializers with more elements than this, cast to float and scaled, stay
/// low-bit in the IR (`lowbit.dequantize` of the integer weight).
const INT_WEIGHT_MIN: usize = 1024;

/// `Mul(Cast(q), scale)` with `q` a large integer initializer and `scale` a constant that is
/// per-tensor or per-row/per-column of a rank-2 `q`: `lowbit.dequantize q, scale` (exact:
/// `(q - 0) · scale` in the float type), so the weight stays integer in the weight store.
/// `None` when the node is not of that form.
fn weight_dequantize(im: &mut Importer, n: &N<'_>) -> OnnxResult<Option<Val>> {
    let (Some(cast_out), Some(scale_name)) = (n.node.input.first(), n.node.input.get(1)) else {
        return Ok(None);
    };
    let (Some(q), Some(Val::Const(scale, _))) = (
        im.int_casts.get(cast_out).cloned(),
        im.vals.get(scale_name).cloned(),
    ) else {
        return Ok(None);
    };
    let qt = im.ty(&q);
    let float = im.ty(&im.vals[cast_out].clone()).elem;
    if scale.ty.elem != float {
        return Ok(None);
    }
    let ss = &scale.ty.shape;
    let mut attrs = Attrs::new();
    let scale_shape = if scale.data.len() == 1 && ss.len() <= qt.rank() {
        vec![]
    } else if qt.rank() == 2 && ss.len() == 2 && ss[0] == 1 && ss[1] == qt.shape[1] {
        attrs.set("axis", Attr::Int(1));
        vec![qt.shape[1]]
    } else if qt.rank() == 2 && ss.len() == 2 && ss[1] == 1 && ss[0] == qt.shape[0] {
        attrs.set("axis", Attr::Int(0));
        vec![qt.shape[0]]
    } else {
        return Ok(None);
    };
    let scale = konst(Tensor::new(
        TensorType::new(scale_shape, float),
        scale.data.clone(),
    ));
    let ty = qt.with_elem(float);
    // Materialized first so that `emit` does not fold the dequantization away.
    let q = Val::Ir(im.materialize(&q, cast_out));
    Ok(Some(
        n.emit(
            im,
            Opcode::Lowbit(lowbit::Op::Dequantize),
            &[q, scale],
            attrs,
            Some(vec![ty]),
        )?
        .remove(0),
    ))
}

fn all_const(im: &Importer, n: &N<'_>) -> OnnxResult<bool> {
    for i in 0..n.node.input.len() {
        if let Some(Val::Ir(_)) = n.input(im, i)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn constant(im: &Importer, n: &N<'_>) -> OnnxResult<Val> {
    let a = n
        .node
        .attribute
        .first()
        .ok_or_else(|| n.err("has no value attribute"))?;
    let _ = im;
    Ok(konst(match a.name.as_str() {
        "value" => decode(
            a.t.as_ref().ok_or_else(|| n.err("value is not a tensor"))?,
            std::path::Path::new("."),
        )?,
        "value_float" => Tensor::new(TensorType::scalar(Elem::F32), vec![f64::from(a.f)]),
        "value_int" => Tensor::new(TensorType::scalar(Elem::I64), vec![a.i as f64]),
        "value_floats" => Tensor::new(
            TensorType::new(vec![a.floats.len() as i64], Elem::F32),
            a.floats.iter().map(|&v| f64::from(v)).collect(),
        ),
        "value_ints" => Tensor::new(
            TensorType::new(vec![a.ints.len() as i64], Elem::I64),
            a.ints.iter().map(|&v| v as f64).collect(),
        ),
        other => return Err(n.err(format!("has an unsupported value attribute '{other}'"))),
    }))
}

fn gemm(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let (mut a, mut b) = (n.req(im, 0)?, n.req(im, 1)?);
    let tr = Attrs::new().with("perm", Attr::Ints(vec![1, 0]));
    if n.int("transA", 0) != 0 {
        a = n.emit1(im, g(graph::Op::Transpose), &[a], tr.clone())?;
    }
    if n.int("transB", 0) != 0 {
        b = n.emit1(im, g(graph::Op::Transpose), &[b], tr)?;
    }
    let elem = im.ty(&a).elem;
    let mut y = n.emit1(im, g(graph::Op::MatMul), &[a, b], Attrs::new())?;
    let alpha = f64::from(n.float("alpha", 1.0));
    if alpha != 1.0 {
        y = n.emit1(
            im,
            g(graph::Op::Mul),
            &[y, scalar(alpha, elem)],
            Attrs::new(),
        )?;
    }
    if let Some(mut c) = n.input(im, 2)? {
        let beta = f64::from(n.float("beta", 1.0));
        if beta != 1.0 {
            c = n.emit1(
                im,
                g(graph::Op::Mul),
                &[c, scalar(beta, elem)],
                Attrs::new(),
            )?;
        }
        y = n.emit1(im, g(graph::Op::Add), &[y, c], Attrs::new())?;
    }
    Ok(y)
}

fn reduce(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let x = n.req(im, 0)?;
    let rank = im.ty(&x).rank();
    // ReduceSum takes its axes from input #1 from opset 13, the others from opset 18.
    let axes_from_input = if n.node.op_type == "ReduceSum" {
        !old_form(im, n)
    } else {
        im.opset >= 18
    };
    let axes = if axes_from_input {
        n.const_ints(im, 1)?
    } else {
        n.ints("axes")
    };
    let axes = match axes {
        Some(a) if !a.is_empty() => a,
        _ if n.int("noop_with_empty_axes", 0) != 0 => return Ok(x),
        _ => (0..rank as i64).collect(),
    };
    let kind = match n.node.op_type.as_str() {
        "ReduceMean" => "mean",
        "ReduceSum" => "sum",
        _ => "max",
    };
    let attrs = Attrs::new()
        .with("kind", Attr::Str(kind.into()))
        .with("axes", Attr::Ints(axes))
        .with("keepdims", Attr::Bool(n.int("keepdims", 1) != 0));
    n.emit1(im, g(graph::Op::Reduce), &[x], attrs)
}

/// ONNX `Reshape`'s target: `0` copies the input dim (unless `allowzero`), one `-1` is
/// inferred.
fn reshape_target(input: &[i64], spec: &[i64], allowzero: bool) -> Result<Vec<i64>, String> {
    let total: i64 = input.iter().product();
    let mut out: Vec<i64> = spec
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 && !allowzero {
                input.get(i).copied().unwrap_or(0)
            } else {
                d
            }
        })
        .collect();
    let known: i64 = out.iter().filter(|&&d| d != -1).product();
    if let Some(p) = out.iter().position(|&d| d == -1) {
        if known == 0 || total % known != 0 {
            return Err(format!("cannot reshape {input:?} to {spec:?}"));
        }
        out[p] = total / known;
    }
    if out.iter().product::<i64>() != total || out.iter().any(|&d| d < 0) {
        return Err(format!("cannot reshape {input:?} to {spec:?}"));
    }
    Ok(out)
}

fn squeeze(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let x = n.req(im, 0)?;
    let shape = im.ty(&x).shape;
    let axes = if old_form(im, n) {
        n.ints("axes")
    } else {
        n.const_ints(im, 1)?
    };
    let out = if n.node.op_type == "Unsqueeze" {
        let axes = axes.ok_or_else(|| n.err("has no axes"))?;
        let r = shape.len() + axes.len();
        let mut norm = axes
            .iter()
            .map(|&a| norm_axis(a, r).ok_or_else(|| n.err(format!("axis {a} is out of range"))))
            .collect::<OnnxResult<Vec<_>>>()?;
        norm.sort_unstable();
        let mut src = shape.iter();
        (0..r)
            .map(|i| {
                if norm.contains(&i) {
                    1
                } else {
                    *src.next().unwrap_or(&1)
                }
            })
            .collect()
    } else {
        let norm = match axes {
            Some(a) => a
                .iter()
                .map(|&a| {
                    norm_axis(a, shape.len())
                        .ok_or_else(|| n.err(format!("axis {a} is out of range")))
                })
                .collect::<OnnxResult<Vec<_>>>()?,
            None => (0..shape.len()).filter(|&i| shape[i] == 1).collect(),
        };
        shape
            .iter()
            .enumerate()
            .filter(|(i, _)| !norm.contains(i))
            .map(|(_, &d)| d)
            .collect()
    };
    n.reshape(im, &x, out)
}

fn split(im: &mut Importer, n: &N<'_>) -> OnnxResult<Vec<Val>> {
    let x = n.req(im, 0)?;
    let ty = im.ty(&x);
    let axis = n.int("axis", 0);
    let ax = norm_axis(axis, ty.rank()).ok_or_else(|| n.err("axis is out of range"))?;
    let parts = n.node.output.len() as i64;
    if parts == 0 {
        return Err(n.err("has no outputs"));
    }
    let split = if old_form(im, n) {
        n.ints("split")
    } else {
        n.const_ints(im, 1)?
    };
    let sizes = match split {
        Some(s) => s,
        None => {
            let d = ty.shape[ax];
            let chunk = (d + parts - 1) / parts;
            (0..parts)
                .map(|i| chunk.min(d - i * chunk).max(0))
                .collect()
        }
    };
    let types = sizes
        .iter()
        .map(|&s| {
            let mut t = ty.clone();
            t.shape[ax] = s;
            t
        })
        .collect();
    n.emit(
        im,
        g(graph::Op::Split),
        &[x],
        Attrs::new().with("axis", Attr::Int(axis)),
        Some(types),
    )
}

fn slice(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let x = n.req(im, 0)?;
    let shape = im.ty(&x).shape;
    let r = shape.len();
    let starts = n.const_ints(im, 1)?.ok_or_else(|| n.err("has no starts"))?;
    let ends = n.const_ints(im, 2)?.ok_or_else(|| n.err("has no ends"))?;
    let axes = n
        .const_ints(im, 3)?
        .unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = n
        .const_ints(im, 4)?
        .unwrap_or_else(|| vec![1; starts.len()]);
    let (mut s, mut e, mut st) = (vec![0i64; r], shape.clone(), vec![1i64; r]);
    for (k, &a) in axes.iter().enumerate() {
        let ax = norm_axis(a, r).ok_or_else(|| n.err(format!("axis {a} is out of range")))?;
        let (d, step) = (shape[ax], steps.get(k).copied().unwrap_or(1));
        if step == 0 {
            return Err(n.err("has a zero step"));
        }
        let fix = |v: i64| if v < 0 { v + d } else { v };
        let (Some(&b), Some(&f)) = (starts.get(k), ends.get(k)) else {
            return Err(n.err("starts and ends must have one entry per axis"));
        };
        let (b, f) = (fix(b), fix(f));
        // Clamp as ONNX does, then spell the end in a form numpy-style slicing reads the same.
        if step > 0 {
            s[ax] = b.clamp(0, d);
            e[ax] = f.clamp(0, d);
        } else {
            s[ax] = b.clamp(0, d - 1);
            let end = f.clamp(-1, d - 1);
            e[ax] = if end < 0 { -(d + 1) } else { end };
        }
        st[ax] = step;
    }
    let attrs = Attrs::new()
        .with("starts", Attr::Ints(s))
        .with("ends", Attr::Ints(e))
        .with("steps", Attr::Ints(st));
    n.emit1(im, g(graph::Op::Slice), &[x], attrs)
}

/// The numpy broadcast of two shapes (the verifier's rule).
fn broadcast_shape(a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    lowbit_dialects::infer::broadcast(a, b).ok()
}

/// The elements of `t` broadcast to `shape` (which `t` broadcasts to).
fn broadcast_to(t: &Tensor, shape: &[i64]) -> Vec<f64> {
    let dims = |s: &[i64]| s.iter().map(|&d| d as usize).collect::<Vec<_>>();
    lowbit_dialects::interp::util::broadcast_to(&t.data, &dims(&t.ty.shape), &dims(shape))
        .expect("callers broadcast `t` to a shape computed by broadcast_shape")
}

fn const_binary(im: &Importer, n: &N<'_>) -> OnnxResult<Val> {
    let a = n
        .konst(im, 0)?
        .ok_or_else(|| n.err("input #0 is missing"))?;
    let b = n
        .konst(im, 1)?
        .ok_or_else(|| n.err("input #1 is missing"))?;
    let shape = broadcast_shape(&a.ty.shape, &b.ty.shape)
        .ok_or_else(|| n.err(format!("shapes {} and {} do not broadcast", a.ty, b.ty)))?;
    let (x, y) = (broadcast_to(&a, &shape), broadcast_to(&b, &shape));
    let bit = |c: bool| f64::from(u8::from(c));
    let op_type = n.node.op_type.as_str();
    let data: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(&p, &q)| match op_type {
            "Equal" => bit(p == q),
            "Less" => bit(p < q),
            "Greater" => bit(p > q),
            "LessOrEqual" => bit(p <= q),
            "GreaterOrEqual" => bit(p >= q),
            "And" => bit(p != 0.0 && q != 0.0),
            "Or" => bit(p != 0.0 || q != 0.0),
            "Xor" => bit((p != 0.0) != (q != 0.0)),
            "Max" => p.max(q),
            _ => p.min(q),
        })
        .collect();
    let elem = if matches!(op_type, "Max" | "Min") {
        a.ty.elem
    } else {
        Elem::I1
    };
    Ok(konst(Tensor::new(TensorType::new(shape, elem), data)))
}

/// `And`/`Or` on run-time `i1` tensors: `and(a, b) = select(a, b, false)`,
/// `or(a, b) = select(a, true, b)` (exact).
fn logic(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let (a, b) = (n.req(im, 0)?, n.req(im, 1)?);
    for v in [&a, &b] {
        if im.ty(v).elem != Elem::I1 {
            return Err(n.err(format!("takes i1 operands, not {}", im.ty(v))));
        }
    }
    let args = if n.node.op_type == "And" {
        [a, b, scalar(0.0, Elem::I1)]
    } else {
        [a, scalar(1.0, Elem::I1), b]
    };
    n.emit1(im, g(graph::Op::Select), &args, Attrs::new())
}

/// `GatherND` with constant indices (`batch_dims = 0`): the first `k` dims of `data`
/// flattened into one, then a `gather` along it with the linearized indices (exact).
fn gather_nd(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let data = n.req(im, 0)?;
    let idx = match n.req(im, 1)? {
        Val::Const(t, _) if n.int("batch_dims", 0) == 0 => t,
        _ => return super::transformer::gather_nd(im, n),
    };
    let shape = im.ty(&data).shape;
    let k = *idx
        .ty
        .shape
        .last()
        .ok_or_else(|| n.err("indices must have rank 1 or more"))? as usize;
    if k == 0 || k > shape.len() {
        return Err(n.err(format!(
            "index tuples of length {k} do not fit data of rank {}",
            shape.len()
        )));
    }
    let mut strides = vec![1i64; k];
    for j in (0..k - 1).rev() {
        strides[j] = strides[j + 1] * shape[j + 1];
    }
    let linear = idx
        .data
        .chunks(k)
        .map(|tuple| {
            tuple.iter().enumerate().try_fold(0i64, |acc, (j, &v)| {
                let d = shape[j];
                let v = if v < 0.0 { v as i64 + d } else { v as i64 };
                (0..d).contains(&v).then_some(acc + v * strides[j])
            })
        })
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(|| n.err("an index is out of range"))?;
    let lead: i64 = shape[..k].iter().product();
    let mut flat_shape = vec![lead];
    flat_shape.extend_from_slice(&shape[k..]);
    let flat = n.reshape(im, &data, flat_shape)?;
    let out_idx_shape = idx.ty.shape[..idx.ty.shape.len() - 1].to_vec();
    let indices = konst(Tensor::new(
        TensorType::new(out_idx_shape, Elem::I64),
        linear.into_iter().map(|v| v as f64).collect(),
    ));
    n.emit1(
        im,
        g(graph::Op::Gather),
        &[flat, indices],
        Attrs::new().with("axis", Attr::Int(0)),
    )
}

fn expand(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let x = n.req(im, 0)?;
    let target = n
        .const_ints(im, 1)?
        .ok_or_else(|| n.err("has no shape input"))?;
    let ty = im.ty(&x);
    let shape = broadcast_shape(&ty.shape, &target)
        .ok_or_else(|| n.err(format!("{ty} does not broadcast to {target:?}")))?;
    if let Val::Const(t, _) = &x {
        return Ok(konst(Tensor::new(
            TensorType::new(shape.clone(), ty.elem),
            broadcast_to(t, &shape),
        )));
    }
    if shape == ty.shape {
        return Ok(x);
    }
    // No broadcast op: `x + zeros(shape)` is exact.
    let zeros = konst(Tensor::zeros(TensorType::new(shape, ty.elem)));
    n.emit1(im, g(graph::Op::Add), &[x, zeros], Attrs::new())
}

/// Variadic `Max`/`Min`: a chain of `graph.maximum`/`graph.minimum` (one input: itself).
fn max_min(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    let op = if n.node.op_type == "Max" {
        graph::Op::Maximum
    } else {
        graph::Op::Minimum
    };
    let args = (0..n.node.input.len())
        .map(|i| n.req(im, i))
        .collect::<OnnxResult<Vec<_>>>()?;
    let mut args = args.into_iter();
    let first = args
        .next()
        .ok_or_else(|| n.err("takes one or more inputs, has none"))?;
    args.try_fold(first, |acc, v| n.emit1(im, g(op), &[acc, v], Attrs::new()))
}

/// `Clip`, or `Max`/`Min` of a run-time tensor and a constant. With constant bounds through
/// `relu`: `max(x, lo) = relu(x - lo) + lo`, `min(x, hi) = hi - relu(hi - x)` (exact up to
/// rounding); with a run-time bound through `graph.maximum`/`graph.minimum`
/// (`min(max(x, lo), hi)`: `hi` where `lo > hi`, as ONNX specifies).
fn clip(im: &mut Importer, n: &N<'_>) -> OnnxResult<Val> {
    use graph::Op as G;
    let x = n.req(im, 0)?;
    let (lo, hi) = match n.node.op_type.as_str() {
        // Clip-6: `min`/`max` attributes (absent: no bound).
        "Clip" if old_form(im, n) => {
            let e = im.ty(&x).elem;
            let bound = |name| n.attr(name).map(|a| scalar(f64::from(a.f), e));
            if n.node.input.len() > 1 {
                return Err(n.err(format!(
                    "has {} inputs; at opset {} Clip takes min and max as attributes",
                    n.node.input.len(),
                    im.opset
                )));
            }
            (bound("min"), bound("max"))
        }
        "Clip" => (n.input(im, 1)?, n.input(im, 2)?),
        "Max" => (n.input(im, 1)?, None),
        _ => (None, n.input(im, 1)?),
    };
    if n.node.input.len() > 3 || (n.node.op_type != "Clip" && n.node.input.len() != 2) {
        return Err(unsupported(im, n.node, "Max/Min take two inputs here"));
    }
    let mut y = x;
    if [&lo, &hi]
        .into_iter()
        .flatten()
        .any(|b| matches!(b, Val::Ir(_)))
    {
        if let Some(lo) = lo {
            y = n.emit1(im, g(G::Maximum), &[y, lo], Attrs::new())?;
        }
        if let Some(hi) = hi {
            y = n.emit1(im, g(G::Minimum), &[y, hi], Attrs::new())?;
        }
        return Ok(y);
    }
    if let Some(lo) = lo {
        let d = n.emit1(im, g(G::Sub), &[y, lo.clone()], Attrs::new())?;
        let r = n.emit1(im, g(G::Relu), &[d], Attrs::new())?;
        y = n.emit1(im, g(G::Add), &[r, lo], Attrs::new())?;
    }
    if let Some(hi) = hi {
        let d = n.emit1(im, g(G::Sub), &[hi.clone(), y], Attrs::new())?;
        let r = n.emit1(im, g(G::Relu), &[d], Attrs::new())?;
        y = n.emit1(im, g(G::Sub), &[hi, r], Attrs::new())?;
    }
    Ok(y)
}
