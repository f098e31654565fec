//! The code generator's building blocks over inkwell: counted loops and loop nests,
//! affine offsets, `f32` loads and stores, scalar accumulators and math calls.
//!
//! Everything works on one function being built. Loops count an `i64` from 0 to a
//! compile-time trip count; a trip count of 1 emits the body once with index 0 and a trip
//! count of 0 emits nothing. Offsets are in elements, strides are signed (negative slice
//! steps), and every address built is inside its buffer (kernels only index within the
//! shapes they were given), hence `inbounds` GEPs. Scalar accumulators are `alloca`s in
//! the function's first block, which `mem2reg` turns into registers.
//!
//! Math: `exp`, `log`, `sqrt`, `pow` and `maxnum` use LLVM intrinsics, which become
//! inline code or libm calls (`expf`, `logf`, `powf`); `erf` and `tanh` call libm
//! (`erff`, `tanhf`) directly, so the shared object links with `-lm`. No fast-math flags
//! are set: results are IEEE `f32`, op by op.

use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::context::Context;
use inkwell::module::Module;
use inkwell::types::{BasicMetadataTypeEnum, FloatType, IntType};
use inkwell::values::{BasicMetadataValueEnum, FloatValue, FunctionValue, IntValue, PointerValue};
use inkwell::{FloatPredicate, IntPredicate};

use super::BackendResult;

/// A body emitted once per iteration with the loop index.
pub(crate) type LoopBody<'b, 'ctx> = dyn FnMut(IntValue<'ctx>) -> BackendResult<()> + 'b;
/// A body emitted once per point of a loop nest with its indices, outermost first.
pub(crate) type NestBody<'b, 'ctx> = dyn FnMut(&[IntValue<'ctx>]) -> BackendResult<()> + 'b;

/// A scalar `f32` variable (an `alloca`).
#[derive(Clone, Copy)]
pub(crate) struct Var<'ctx>(PointerValue<'ctx>);

/// The function being built and the builder positioned in it.
pub(crate) struct Cg<'a, 'ctx> {
    /// The LLVM context.
    pub cx: &'ctx Context,
    /// The module the function lives in.
    pub module: &'a Module<'ctx>,
    /// The instruction builder.
    pub b: Builder<'ctx>,
    /// The function.
    pub func: FunctionValue<'ctx>,
    /// The first block, holding only allocas until [`Cg::seal_allocas`] closes it.
    alloca_block: BasicBlock<'ctx>,
    /// `f32`.
    pub f32t: FloatType<'ctx>,
    /// `i64`.
    pub i64t: IntType<'ctx>,
    /// `i8`.
    pub i8t: IntType<'ctx>,
}

impl<'a, 'ctx> Cg<'a, 'ctx> {
    /// Starts building `func`: an alloca block, then a body block the builder is at.
    pub fn new(cx: &'ctx Context, module: &'a Module<'ctx>, func: FunctionValue<'ctx>) -> Self {
        let alloca_block = cx.append_basic_block(func, "allocas");
        let body = cx.append_basic_block(func, "body");
        let b = cx.create_builder();
        b.position_at_end(body);
        Cg {
            cx,
            module,
            b,
            func,
            alloca_block,
            f32t: cx.f32_type(),
            i64t: cx.i64_type(),
            i8t: cx.i8_type(),
        }
    }

    /// Ends the alloca block with a branch to the body. Call once, when done.
    pub fn seal_allocas(&self) -> BackendResult<()> {
        let here = self.block();
        self.b.position_at_end(self.alloca_block);
        let body = self
            .alloca_block
            .get_next_basic_block()
            .expect("the body block follows the alloca block");
        self.b.build_unconditional_branch(body)?;
        self.b.position_at_end(here);
        Ok(())
    }

    /// The block the builder is in.
    pub fn block(&self) -> BasicBlock<'ctx> {
        self.b
            .get_insert_block()
            .expect("the builder is always positioned inside the function")
    }

    /// An `i64` constant (two's complement for negative values).
    pub fn i64(&self, v: i64) -> IntValue<'ctx> {
        self.i64t.const_int(v as u64, true)
    }

    /// An `f32` constant.
    pub fn f32(&self, v: f64) -> FloatValue<'ctx> {
        self.f32t.const_float(v)
    }

    /// Emits `body(i)` for `i` in `0..n`.
    pub fn for_range(&self, n: u64, body: &mut LoopBody<'_, 'ctx>) -> BackendResult<()> {
        match n {
            0 => return Ok(()),
            1 => return body(self.i64(0)),
            _ => {}
        }
        let pre = self.block();
        let head = self.cx.append_basic_block(self.func, "loop");
        let exit = self.cx.append_basic_block(self.func, "loop.end");
        self.b.build_unconditional_branch(head)?;
        self.b.position_at_end(head);
        let phi = self.b.build_phi(self.i64t, "i")?;
        let i = phi.as_basic_value().into_int_value();
        body(i)?;
        let latch = self.block();
        let next = self.b.build_int_nuw_add(i, self.i64(1), "i.next")?;
        let more = self
            .b
            .build_int_compare(IntPredicate::ULT, next, self.i64(n as i64), "more")?;
        self.b.build_conditional_branch(more, head, exit)?;
        phi.add_incoming(&[(&self.i64(0), pre), (&next, latch)]);
        self.b.position_at_end(exit);
        Ok(())
    }

    /// Emits `body(idx)` for every index tuple of `dims`, the last dim innermost.
    pub fn nest(&self, dims: &[u64], body: &mut NestBody<'_, 'ctx>) -> BackendResult<()> {
        let mut idx = Vec::with_capacity(dims.len());
        self.nest_from(dims, &mut idx, body)
    }

    fn nest_from(
        &self,
        dims: &[u64],
        idx: &mut Vec<IntValue<'ctx>>,
        body: &mut NestBody<'_, 'ctx>,
    ) -> BackendResult<()> {
        if idx.len() == dims.len() {
            return body(idx);
        }
        let n = dims[idx.len()];
        self.for_range(n, &mut |i| {
            idx.push(i);
            self.nest_from(dims, idx, body)?;
            idx.pop();
            Ok(())
        })
    }

    /// `base + Σ idx[i] · strides[i]`, in elements.
    pub fn offset(
        &self,
        base: i64,
        idx: &[IntValue<'ctx>],
        strides: &[i64],
    ) -> BackendResult<IntValue<'ctx>> {
        let mut acc = self.i64(base);
        for (&i, &s) in idx.iter().zip(strides) {
            if s != 0 {
                let t = self.b.build_int_mul(i, self.i64(s), "")?;
                acc = self.b.build_int_add(acc, t, "")?;
            }
        }
        Ok(acc)
    }

    /// `a + b` on offsets.
    pub fn add(&self, a: IntValue<'ctx>, b: IntValue<'ctx>) -> BackendResult<IntValue<'ctx>> {
        Ok(self.b.build_int_add(a, b, "")?)
    }

    /// `a · s` on an index.
    pub fn mul(&self, a: IntValue<'ctx>, s: i64) -> BackendResult<IntValue<'ctx>> {
        Ok(self.b.build_int_mul(a, self.i64(s), "")?)
    }

    /// The address of element `off` of an `f32` buffer.
    pub fn f32_ptr(
        &self,
        base: PointerValue<'ctx>,
        off: IntValue<'ctx>,
    ) -> BackendResult<PointerValue<'ctx>> {
        // SAFETY (of the generated code): kernels index only within their buffers.
        Ok(unsafe { self.b.build_in_bounds_gep(self.f32t, base, &[off], "")? })
    }

    /// The address `bytes` past `base`.
    pub fn byte_ptr(
        &self,
        base: PointerValue<'ctx>,
        bytes: u64,
    ) -> BackendResult<PointerValue<'ctx>> {
        // SAFETY (of the generated code): the offset is inside the arena or array.
        Ok(unsafe {
            self.b
                .build_in_bounds_gep(self.i8t, base, &[self.i64(bytes as i64)], "")?
        })
    }

    /// Loads element `off` of an `f32` buffer.
    pub fn load(
        &self,
        base: PointerValue<'ctx>,
        off: IntValue<'ctx>,
    ) -> BackendResult<FloatValue<'ctx>> {
        let p = self.f32_ptr(base, off)?;
        Ok(self.b.build_load(self.f32t, p, "")?.into_float_value())
    }

    /// Stores `v` into element `off` of an `f32` buffer.
    pub fn store(
        &self,
        base: PointerValue<'ctx>,
        off: IntValue<'ctx>,
        v: FloatValue<'ctx>,
    ) -> BackendResult<()> {
        let p = self.f32_ptr(base, off)?;
        self.b.build_store(p, v)?;
        Ok(())
    }

    /// Loads element `off` of an `i1` buffer (one byte each) as a truth value.
    pub fn load_bool(
        &self,
        base: PointerValue<'ctx>,
        off: IntValue<'ctx>,
    ) -> BackendResult<IntValue<'ctx>> {
        // SAFETY (of the generated code): kernels index only within their buffers.
        let p = unsafe { self.b.build_in_bounds_gep(self.i8t, base, &[off], "")? };
        let byte = self.b.build_load(self.i8t, p, "")?.into_int_value();
        Ok(self
            .b
            .build_int_compare(IntPredicate::NE, byte, self.i8t.const_zero(), "")?)
    }

    /// Copies `bytes` bytes from `src` to `dst` (non-overlapping).
    pub fn memcpy(
        &self,
        dst: PointerValue<'ctx>,
        src: PointerValue<'ctx>,
        bytes: u64,
    ) -> BackendResult<()> {
        if bytes > 0 {
            self.b
                .build_memcpy(dst, 1, src, 1, self.i64(bytes as i64))?;
        }
        Ok(())
    }

    /// A new scalar variable holding `init`.
    pub fn var(&self, init: FloatValue<'ctx>) -> BackendResult<Var<'ctx>> {
        let here = self.block();
        self.b.position_at_end(self.alloca_block);
        let slot = self.b.build_alloca(self.f32t, "acc")?;
        self.b.position_at_end(here);
        self.b.build_store(slot, init)?;
        Ok(Var(slot))
    }

    /// The value of `v`.
    pub fn get(&self, v: Var<'ctx>) -> BackendResult<FloatValue<'ctx>> {
        Ok(self.b.build_load(self.f32t, v.0, "")?.into_float_value())
    }

    /// Sets `v` to `x`.
    pub fn set(&self, v: Var<'ctx>, x: FloatValue<'ctx>) -> BackendResult<()> {
        self.b.build_store(v.0, x)?;
        Ok(())
    }

    /// `v = f(v)`.
    pub fn update(
        &self,
        v: Var<'ctx>,
        f: impl FnOnce(FloatValue<'ctx>) -> BackendResult<FloatValue<'ctx>>,
    ) -> BackendResult<()> {
        let x = self.get(v)?;
        let y = f(x)?;
        self.set(v, y)
    }

    /// Calls the `f32` function `name` (an intrinsic or a libm function), declaring it
    /// on first use.
    pub fn call(&self, name: &str, args: &[FloatValue<'ctx>]) -> BackendResult<FloatValue<'ctx>> {
        let f = self.module.get_function(name).unwrap_or_else(|| {
            let params: Vec<BasicMetadataTypeEnum<'ctx>> =
                args.iter().map(|_| self.f32t.into()).collect();
            self.module
                .add_function(name, self.f32t.fn_type(&params, false), None)
        });
        let args: Vec<BasicMetadataValueEnum<'ctx>> = args.iter().map(|&a| a.into()).collect();
        let v = self.b.build_call(f, &args, "")?;
        Ok(v.try_as_basic_value().unwrap_basic().into_float_value())
    }

    /// `a + b`.
    pub fn fadd(
        &self,
        a: FloatValue<'ctx>,
        b: FloatValue<'ctx>,
    ) -> BackendResult<FloatValue<'ctx>> {
        Ok(self.b.build_float_add(a, b, "")?)
    }

    /// `a - b`.
    pub fn fsub(
        &self,
        a: FloatValue<'ctx>,
        b: FloatValue<'ctx>,
    ) -> BackendResult<FloatValue<'ctx>> {
        Ok(self.b.build_float_sub(a, b, "")?)
    }

    /// `a · b`.
    pub fn fmul(
        &self,
        a: FloatValue<'ctx>,
        b: FloatValue<'ctx>,
    ) -> BackendResult<FloatValue<'ctx>> {
        Ok(self.b.build_float_mul(a, b, "")?)
    }

    /// `a / b`.
    pub fn fdiv(
        &self,
        a: FloatValue<'ctx>,
        b: FloatValue<'ctx>,
    ) -> BackendResult<FloatValue<'ctx>> {
        Ok(self.b.build_float_div(a, b, "")?)
    }

    /// `-a`.
    pub fn fneg(&self, a: FloatValue<'ctx>) -> BackendResult<FloatValue<'ctx>> {
        Ok(self.b.build_float_neg(a, "")?)
    }

    /// `max(a, b)`, ignoring a NaN operand (IEEE `maxNum`, as Rust's `f64::max`).
    pub fn fmax(
        &self,
        a: FloatValue<'ctx>,
        b: FloatValue<'ctx>,
    ) -> BackendResult<FloatValue<'ctx>> {
        self.call("llvm.maxnum.f32", &[a, b])
    }

    /// `e^a`.
    pub fn exp(&self, a: FloatValue<'ctx>) -> BackendResult<FloatValue<'ctx>> {
        self.call("llvm.exp.f32", &[a])
    }

    /// `√a`.
    pub fn sqrt(&self, a: FloatValue<'ctx>) -> BackendResult<FloatValue<'ctx>> {
        self.call("llvm.sqrt.f32", &[a])
    }

    /// `c ? a : b` for a float comparison `x pred y`.
    pub fn select_cmp(
        &self,
        pred: FloatPredicate,
        x: FloatValue<'ctx>,
        y: FloatValue<'ctx>,
        a: FloatValue<'ctx>,
        b: FloatValue<'ctx>,
    ) -> BackendResult<FloatValue<'ctx>> {
        let c = self.b.build_float_compare(pred, x, y, "")?;
        Ok(self.b.build_select(c, a, b, "")?.into_float_value())
    }

    /// `c ? a : b`.
    pub fn select(
        &self,
        c: IntValue<'ctx>,
        a: FloatValue<'ctx>,
        b: FloatValue<'ctx>,
    ) -> BackendResult<FloatValue<'ctx>> {
        Ok(self.b.build_select(c, a, b, "")?.into_float_value())
    }
}
