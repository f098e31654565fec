//! Lowering of single ops to loop nests: the dispatch over every opcode, elementwise ops
//! with numpy broadcasting, and data movement (transpose, reshape, concat, split, slice).
//!
//! Each op sees its operands and results as [`Buf`]s (an address and a type) in an
//! [`OpCx`], and emits its code at the builder's position, leaving the builder after it.
//! The kernels of `lower_nn` (matmul, normalization, softmax, reduction, attention) share
//! the same context. Only `f32` data is computed on (and `i1` for masks and `select`
//! conditions); anything else is a [`BackendError::Op`] naming the op and its location.

use inkwell::values::{FloatValue, PointerValue};
use inkwell::FloatPredicate;
use lowbit_dialects::ir::{Attrs, Elem, Loc, TensorType};
use lowbit_dialects::{attn, graph, kernel, lowbit, rot, Opcode};

use super::cg::Cg;
use super::lower_nn;
use super::{BackendError, BackendResult, TARGET_NAME};

/// A tensor buffer: its address and type.
#[derive(Clone, Debug)]
pub(crate) struct Buf<'ctx> {
    /// The first element.
    pub ptr: PointerValue<'ctx>,
    /// Shape and element type.
    pub ty: TensorType,
}

impl Buf<'_> {
    /// The dims as `u64`.
    pub fn dims(&self) -> Vec<u64> {
        self.ty.shape.iter().map(|&d| d.max(0) as u64).collect()
    }

    /// The element count.
    pub fn len(&self) -> u64 {
        self.ty.num_elements() as u64
    }
}

/// What the lowering of one op sees.
pub(crate) struct OpCx<'l, 'a, 'ctx> {
    /// The code generator.
    pub cg: &'l Cg<'a, 'ctx>,
    /// The op.
    pub opcode: Opcode,
    /// Its location.
    pub loc: &'l Loc,
    /// Its attributes.
    pub attrs: &'l Attrs,
    /// Operands.
    pub args: Vec<Buf<'ctx>>,
    /// Results.
    pub results: Vec<Buf<'ctx>>,
    /// The op's scratch buffer, when the plan gave it one.
    pub scratch: Option<PointerValue<'ctx>>,
}

impl<'ctx> OpCx<'_, '_, 'ctx> {
    /// An error about this op.
    pub fn err(&self, message: impl Into<String>) -> BackendError {
        BackendError::Op {
            op: self.opcode.name(),
            loc: self.loc.clone(),
            message: message.into(),
        }
    }

    /// The error for an op this backend does not lower.
    fn unsupported(&self) -> BackendError {
        self.err(format!(
            "is not supported by the {TARGET_NAME} code generator yet"
        ))
    }

    /// The operand in slot `name`, if present.
    pub fn operand(&self, name: &str) -> Option<&Buf<'ctx>> {
        let i = self.opcode.info().operand_index(name, self.args.len())?;
        self.args.get(i)
    }

    /// The operand in required slot `name`.
    pub fn required(&self, name: &str) -> BackendResult<&Buf<'ctx>> {
        self.operand(name)
            .ok_or_else(|| self.err(format!("has no '{name}' operand")))
    }

    /// The first result.
    pub fn out(&self) -> BackendResult<&Buf<'ctx>> {
        self.results
            .first()
            .ok_or_else(|| self.err("has no result"))
    }

    /// Checks that every operand and result is `f32`, except the operands in `bool_ok`,
    /// which may also be `i1`.
    pub fn require_f32(&self, bool_ok: &[&str]) -> BackendResult<()> {
        let info = self.opcode.info();
        for (i, a) in self.args.iter().enumerate() {
            let slot = info.operands.get(i).map_or("", |s| s.name);
            let ok = a.ty.elem == Elem::F32 || (a.ty.elem == Elem::I1 && bool_ok.contains(&slot));
            if !ok {
                return Err(self.elem_error(a.ty.elem));
            }
        }
        match self.results.iter().find(|r| r.ty.elem != Elem::F32) {
            Some(r) => Err(self.elem_error(r.ty.elem)),
            None => Ok(()),
        }
    }

    fn elem_error(&self, elem: Elem) -> BackendError {
        self.err(format!(
            "element type {elem} is not supported by the {TARGET_NAME} code generator yet"
        ))
    }

    fn attr<T>(
        &self,
        name: &str,
        kind: &str,
        get: impl FnOnce(&Attrs) -> Option<T>,
    ) -> BackendResult<T> {
        get(self.attrs).ok_or_else(|| self.err(format!("needs {kind} attribute '{name}'")))
    }

    /// A required integer attribute.
    pub fn int(&self, name: &str) -> BackendResult<i64> {
        self.attr(name, "an integer", |a| a.int(name))
    }

    /// A required float attribute.
    pub fn float(&self, name: &str) -> BackendResult<f64> {
        self.attr(name, "a float", |a| a.float(name))
    }

    /// A required bool attribute.
    pub fn bool(&self, name: &str) -> BackendResult<bool> {
        self.attr(name, "a bool", |a| a.bool(name))
    }

    /// A required string attribute.
    pub fn str(&self, name: &str) -> BackendResult<String> {
        self.attr(name, "a string", |a| a.str(name).map(str::to_string))
    }

    /// A required integer-array attribute.
    pub fn ints(&self, name: &str) -> BackendResult<Vec<i64>> {
        self.attr(name, "an integer array", |a| {
            a.ints(name).map(<[i64]>::to_vec)
        })
    }

    /// Normalizes axis `a` against rank `rank`.
    pub fn axis(&self, name: &str, a: i64, rank: usize) -> BackendResult<usize> {
        TensorType::new(vec![1; rank], Elem::F32)
            .axis(a)
            .ok_or_else(|| self.err(format!("{name} {a} is out of range for rank {rank}")))
    }
}

/// Row-major strides of `shape`, in elements.
pub(crate) fn row_major(shape: &[i64]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1].max(1);
    }
    s
}

/// Strides that read an operand of shape `from` at the indices of the (numpy-)broadcast
/// shape `to`: broadcast dims get stride 0.
pub(crate) fn broadcast_strides(from: &[i64], to: &[i64]) -> Result<Vec<i64>, String> {
    if from.len() > to.len() {
        return Err(format!(
            "operand rank {} exceeds result rank {}",
            from.len(),
            to.len()
        ));
    }
    let own = row_major(from);
    let lead = to.len() - from.len();
    (0..to.len())
        .map(|i| match i.checked_sub(lead) {
            None => Ok(0),
            Some(j) if from[j] == to[i] => Ok(if from[j] == 1 { 0 } else { own[j] }),
            Some(j) if from[j] == 1 => Ok(0),
            Some(j) => Err(format!(
                "operand dim {j} of size {} does not broadcast to {}",
                from[j], to[i]
            )),
        })
        .collect()
}

/// Emits one op.
pub(crate) fn lower_op(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    use graph::Op as G;
    match cx.opcode {
        Opcode::Graph(op) => match op {
            // Their results are places of the plan: weights and constant globals.
            G::Weight | G::Constant => Ok(()),
            G::MatMul => lower_nn::matmul(cx),
            G::Linear => lower_nn::linear(cx),
            G::Add | G::Sub | G::Mul | G::Div | G::Pow | G::Maximum | G::Minimum => binary(cx, op),
            G::Neg | G::Exp | G::Log | G::Sqrt | G::Rsqrt | G::Tanh | G::Erf | G::Relu => {
                unary(cx, op)
            }
            G::Gelu | G::Silu | G::Sigmoid => unary(cx, op),
            G::Softmax => lower_nn::softmax(cx, false),
            G::LogSoftmax => lower_nn::softmax(cx, true),
            G::LayerNorm => lower_nn::layer_norm(cx),
            G::RmsNorm => lower_nn::rms_norm(cx),
            G::Reduce => lower_nn::reduce(cx),
            G::Transpose => transpose(cx),
            G::Reshape => reshape(cx),
            G::Concat => concat(cx),
            G::Split => split(cx),
            G::Slice => slice(cx),
            G::Select => select(cx),
            G::Gather
            | G::Cast
            | G::Rope
            | G::CausalMask
            | G::PaddingMask
            | G::Equal
            | G::Less
            | G::LessEqual
            | G::Greater
            | G::GreaterEqual => Err(cx.unsupported()),
        },
        Opcode::Attn(op) => match op {
            attn::Op::Sdpa => lower_nn::attention(cx),
            attn::Op::QuantizedSdpa
            | attn::Op::BlockSparseSdpa
            | attn::Op::SparseLinear
            | attn::Op::LinearAttention
            | attn::Op::SigmoidAttention => Err(cx.unsupported()),
        },
        Opcode::Kernel(op) => match op {
            kernel::Op::Gemm => lower_nn::gemm(cx),
            kernel::Op::Attention => lower_nn::attention(cx),
            kernel::Op::AddLayerNorm => lower_nn::add_layer_norm(cx),
        },
        Opcode::Lowbit(op) => match op {
            lowbit::Op::Quantize
            | lowbit::Op::Dequantize
            | lowbit::Op::QMatMul
            | lowbit::Op::Pack
            | lowbit::Op::Unpack
            | lowbit::Op::Codebook => Err(cx.unsupported()),
        },
        Opcode::Rot(op) => match op {
            rot::Op::Hadamard | rot::Op::Rotate => Err(cx.unsupported()),
        },
    }
}

/// Loads element `off` of `buf` as `f32` (`i1` as 0 or 1).
fn load_as_f32<'ctx>(
    cg: &Cg<'_, 'ctx>,
    buf: &Buf<'ctx>,
    off: inkwell::values::IntValue<'ctx>,
) -> BackendResult<FloatValue<'ctx>> {
    if buf.ty.elem == Elem::I1 {
        let c = cg.load_bool(buf.ptr, off)?;
        return cg.select(c, cg.f32(1.0), cg.f32(0.0));
    }
    cg.load(buf.ptr, off)
}

/// A scalar function of an elementwise op.
type ScalarFn<'f, 'ctx> = dyn Fn(&[FloatValue<'ctx>]) -> BackendResult<FloatValue<'ctx>> + 'f;

/// `out[i] = f(ins[0][i'], ins[1][i''], ...)` with numpy broadcasting of the inputs.
pub(crate) fn elementwise<'ctx>(
    cx: &OpCx<'_, '_, 'ctx>,
    f: &ScalarFn<'_, 'ctx>,
) -> BackendResult<()> {
    let cg = cx.cg;
    let out = cx.out()?;
    let ins = &cx.args;
    if ins.iter().all(|b| b.ty.shape == out.ty.shape) {
        return cg.for_range(out.len(), &mut |i| {
            let vals = ins
                .iter()
                .map(|b| load_as_f32(cg, b, i))
                .collect::<BackendResult<Vec<_>>>()?;
            cg.store(out.ptr, i, f(&vals)?)
        });
    }
    let strides = ins
        .iter()
        .map(|b| broadcast_strides(&b.ty.shape, &out.ty.shape).map_err(|m| cx.err(m)))
        .collect::<BackendResult<Vec<_>>>()?;
    let ostrides = row_major(&out.ty.shape);
    cg.nest(&out.dims(), &mut |idx| {
        let mut vals = Vec::with_capacity(ins.len());
        for (b, s) in ins.iter().zip(&strides) {
            vals.push(load_as_f32(cg, b, cg.offset(0, idx, s)?)?);
        }
        cg.store(out.ptr, cg.offset(0, idx, &ostrides)?, f(&vals)?)
    })
}

fn binary(cx: &OpCx<'_, '_, '_>, op: graph::Op) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let cg = cx.cg;
    elementwise(cx, &|v| match op {
        graph::Op::Add => cg.fadd(v[0], v[1]),
        graph::Op::Sub => cg.fsub(v[0], v[1]),
        graph::Op::Mul => cg.fmul(v[0], v[1]),
        graph::Op::Div => cg.fdiv(v[0], v[1]),
        // NaN when either is NaN (the interpreter's `maximum`/`minimum`, numpy's).
        graph::Op::Maximum | graph::Op::Minimum => {
            let pred = if op == graph::Op::Maximum {
                FloatPredicate::OGT
            } else {
                FloatPredicate::OLT
            };
            let m = cg.select_cmp(pred, v[0], v[1], v[0], v[1])?;
            cg.select_cmp(FloatPredicate::UNO, v[0], v[1], cg.f32(f64::NAN), m)
        }
        _ => cg.call("llvm.pow.f32", &[v[0], v[1]]),
    })
}

/// The activation functions, shared with the epilogues of `kernel.gemm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `x`.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `x/2 · (1 + erf(x/√2))`.
    GeluErf,
    /// `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
    GeluTanh,
    /// `x · sigmoid(x)`.
    Silu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
}

impl Activation {
    /// Emits the activation of `x`.
    pub fn apply<'ctx>(
        self,
        cg: &Cg<'_, 'ctx>,
        x: FloatValue<'ctx>,
    ) -> BackendResult<FloatValue<'ctx>> {
        let half = cg.f32(0.5);
        let one = cg.f32(1.0);
        match self {
            Activation::Identity => Ok(x),
            // `x < 0 ? 0 : x`: NaN passes through, as in the interpreter.
            Activation::Relu => {
                let zero = cg.f32(0.0);
                cg.select_cmp(FloatPredicate::OLT, x, zero, zero, x)
            }
            Activation::GeluErf => {
                let t = cg.call("erff", &[cg.fdiv(x, cg.f32(std::f64::consts::SQRT_2))?])?;
                cg.fmul(cg.fmul(half, x)?, cg.fadd(one, t)?)
            }
            Activation::GeluTanh => {
                let c = cg.f32((2.0 / std::f64::consts::PI).sqrt());
                let x3 = cg.fmul(cg.fmul(x, x)?, x)?;
                let inner = cg.fmul(c, cg.fadd(x, cg.fmul(cg.f32(0.044715), x3)?)?)?;
                let t = cg.call("tanhf", &[inner])?;
                cg.fmul(cg.fmul(half, x)?, cg.fadd(one, t)?)
            }
            Activation::Silu => cg.fdiv(x, cg.fadd(one, cg.exp(cg.fneg(x)?)?)?),
            Activation::Sigmoid => cg.fdiv(one, cg.fadd(one, cg.exp(cg.fneg(x)?)?)?),
        }
    }
}

/// The `approximate` attribute of `graph.gelu` as an activation.
fn gelu_kind(cx: &OpCx<'_, '_, '_>) -> BackendResult<Activation> {
    match cx.attrs.str("approximate").unwrap_or("none") {
        "none" => Ok(Activation::GeluErf),
        "tanh" => Ok(Activation::GeluTanh),
        other => Err(cx.err(format!(
            "approximate must be \"none\" or \"tanh\", not \"{other}\""
        ))),
    }
}

fn unary(cx: &OpCx<'_, '_, '_>, op: graph::Op) -> BackendResult<()> {
    use graph::Op as G;
    cx.require_f32(&[])?;
    let cg = cx.cg;
    let act = match op {
        G::Relu => Some(Activation::Relu),
        G::Gelu => Some(gelu_kind(cx)?),
        G::Silu => Some(Activation::Silu),
        G::Sigmoid => Some(Activation::Sigmoid),
        _ => None,
    };
    elementwise(cx, &|v| {
        let x = v[0];
        if let Some(a) = act {
            return a.apply(cg, x);
        }
        match op {
            G::Neg => cg.fneg(x),
            G::Exp => cg.exp(x),
            G::Log => cg.call("llvm.log.f32", &[x]),
            G::Sqrt => cg.sqrt(x),
            G::Rsqrt => cg.fdiv(cg.f32(1.0), cg.sqrt(x)?),
            G::Tanh => cg.call("tanhf", &[x]),
            _ => cg.call("erff", &[x]),
        }
    })
}

/// `graph.select`: `cond ? lhs : rhs`, `cond` an `i1` tensor.
fn select(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&["cond"])?;
    let cg = cx.cg;
    let zero = cg.f32(0.0);
    elementwise(cx, &|v| {
        cg.select_cmp(FloatPredicate::UNE, v[0], zero, v[1], v[2])
    })
}

/// Copies `src` into `out`, where out index `idx` reads `src` at `base + Σ idx·strides`.
fn gather_copy<'ctx>(
    cx: &OpCx<'_, '_, 'ctx>,
    src: &Buf<'ctx>,
    out: &Buf<'ctx>,
    base: i64,
    strides: &[i64],
) -> BackendResult<()> {
    let cg = cx.cg;
    let ostrides = row_major(&out.ty.shape);
    cg.nest(&out.dims(), &mut |idx| {
        let x = cg.load(src.ptr, cg.offset(base, idx, strides)?)?;
        cg.store(out.ptr, cg.offset(0, idx, &ostrides)?, x)
    })
}

fn transpose(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let (x, out) = (cx.required("x")?, cx.out()?);
    let perm = cx.ints("perm")?;
    let r = x.ty.rank();
    let mut seen = vec![false; r];
    for &p in &perm {
        match usize::try_from(p).ok().filter(|&p| p < r && !seen[p]) {
            Some(p) => seen[p] = true,
            None => return Err(cx.err(format!("perm {perm:?} is not a permutation of rank {r}"))),
        }
    }
    if perm.len() != r || out.ty.rank() != r {
        return Err(cx.err(format!("perm {perm:?} is not a permutation of rank {r}")));
    }
    if (0..r).any(|i| out.ty.shape[i] != x.ty.shape[perm[i] as usize]) {
        return Err(cx.err(format!(
            "result {} is not {} permuted by {perm:?}",
            out.ty, x.ty
        )));
    }
    let own = row_major(&x.ty.shape);
    let strides: Vec<i64> = perm.iter().map(|&p| own[p as usize]).collect();
    gather_copy(cx, x, out, 0, &strides)
}

fn reshape(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    let (x, out) = (cx.required("x")?, cx.out()?);
    if x.ty.elem != out.ty.elem || x.len() != out.len() {
        return Err(cx.err(format!("cannot reshape {} into {}", x.ty, out.ty)));
    }
    if !matches!(x.ty.elem, Elem::F32 | Elem::I1) {
        return Err(cx.elem_error(x.ty.elem));
    }
    // The plan aliases a reshape to its operand unless the result is returned.
    if x.ptr != out.ptr {
        cx.cg
            .memcpy(out.ptr, x.ptr, super::plan::byte_size(&out.ty))?;
    }
    Ok(())
}

fn concat(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let cg = cx.cg;
    let out = cx.out()?;
    let axis = cx.axis("axis", cx.int("axis")?, out.ty.rank())?;
    let ostrides = row_major(&out.ty.shape);
    let mut at = 0i64;
    for x in &cx.args {
        if !same_but(&x.ty.shape, &out.ty.shape, axis) {
            return Err(cx.err(format!(
                "operand {} does not match the result {} outside axis {axis}",
                x.ty, out.ty
            )));
        }
        let istrides = row_major(&x.ty.shape);
        cg.nest(&x.dims(), &mut |idx| {
            let v = cg.load(x.ptr, cg.offset(0, idx, &istrides)?)?;
            cg.store(out.ptr, cg.offset(at * ostrides[axis], idx, &ostrides)?, v)
        })?;
        at += x.ty.shape[axis];
    }
    if at != out.ty.shape[axis] {
        return Err(cx.err(format!(
            "operands give {at} rows along axis {axis}, the result has {}",
            out.ty.shape[axis]
        )));
    }
    Ok(())
}

fn split(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let x = cx.required("x")?;
    let axis = cx.axis("axis", cx.int("axis")?, x.ty.rank())?;
    let istrides = row_major(&x.ty.shape);
    let mut at = 0i64;
    for out in &cx.results {
        if !same_but(&out.ty.shape, &x.ty.shape, axis) {
            return Err(cx.err(format!(
                "result {} does not match the operand {} outside axis {axis}",
                out.ty, x.ty
            )));
        }
        gather_copy(cx, x, out, at * istrides[axis], &istrides)?;
        at += out.ty.shape[axis];
    }
    if at > x.ty.shape[axis] {
        return Err(cx.err(format!(
            "results take {at} rows along axis {axis}, the operand has {}",
            x.ty.shape[axis]
        )));
    }
    Ok(())
}

/// Whether shapes `a` and `b` have the same rank and agree on every dim but `axis`.
fn same_but(a: &[i64], b: &[i64], axis: usize) -> bool {
    a.len() == b.len() && (0..a.len()).all(|i| i == axis || a[i] == b[i])
}

/// The first index a numpy slice visits along a dim of size `d`.
fn slice_start(start: i64, d: i64, step: i64) -> i64 {
    let s = if start < 0 { start + d } else { start };
    if step > 0 {
        s.clamp(0, d)
    } else {
        s.clamp(-1, d - 1)
    }
}

fn slice(cx: &OpCx<'_, '_, '_>) -> BackendResult<()> {
    cx.require_f32(&[])?;
    let (x, out) = (cx.required("x")?, cx.out()?);
    let r = x.ty.rank();
    let starts = cx.ints("starts")?;
    let steps = cx
        .attrs
        .ints("steps")
        .map_or_else(|| vec![1; r], <[i64]>::to_vec);
    if starts.len() != r || steps.len() != r || out.ty.rank() != r || steps.contains(&0) {
        return Err(cx.err(format!(
            "starts {starts:?} and steps {steps:?} need one non-zero step per dim of {}",
            x.ty
        )));
    }
    let own = row_major(&x.ty.shape);
    let mut base = 0;
    let mut strides = Vec::with_capacity(r);
    for i in 0..r {
        let s0 = slice_start(starts[i], x.ty.shape[i], steps[i]);
        let last = s0 + (out.ty.shape[i] - 1) * steps[i];
        if out.ty.shape[i] > 0 && (s0.min(last) < 0 || s0.max(last) >= x.ty.shape[i]) {
            return Err(cx.err(format!("slice of {} reads outside dim {i}", x.ty)));
        }
        base += s0.max(0) * own[i];
        strides.push(steps[i] * own[i]);
    }
    gather_copy(cx, x, out, base, &strides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides() {
        assert_eq!(row_major(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(row_major(&[]), Vec::<i64>::new());
        assert_eq!(
            broadcast_strides(&[3, 1], &[2, 3, 4]).unwrap(),
            vec![0, 1, 0]
        );
        assert_eq!(broadcast_strides(&[4], &[2, 3, 4]).unwrap(), vec![0, 0, 1]);
        assert!(broadcast_strides(&[5], &[2, 3, 4]).is_err());
    }

    #[test]
    fn numpy_slice_starts() {
        assert_eq!(slice_start(-1, 5, 1), 4);
        assert_eq!(slice_start(-10, 5, 1), 0);
        assert_eq!(slice_start(10, 5, -1), 4);
        assert_eq!(slice_start(-1, 5, -1), 4);
    }
}
