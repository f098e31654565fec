//! The x86-64 code generator: one lowbit function → one exported C entry point.
//!
//! [`compile`] plans the buffers ([`super::plan`]), builds the entry with inkwell, lowers
//! each op in program order (`lower`, `lower_nn`), runs LLVM's verifier, optimizes with
//! the new pass manager's `default<O2>` pipeline, and emits an object for the host
//! (triple, CPU and features of the machine compiling, PIC so it links into a shared
//! object), plus textual IR and assembly on request. [`link_shared`] links the object
//! with `cc -shared … -lm`.
//!
//! The entry, `int32_t entry(const void *const *inputs, void *const *outputs,
//! const void *const *weights)`:
//! 1. loads the buffer pointers of the three arrays (manifest order);
//! 2. `malloc`s the arena for intermediates and scratch once (returns 1 if that fails);
//! 3. runs every op's loop nest, writing returned values straight into their outputs;
//! 4. copies the returns that could not be computed in place, frees the arena, returns 0.
//!
//! All state is on the stack or in the per-call arena, so the entry is reentrant: an
//! artifact can run on several threads at once. Constants are private read-only globals.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use cranelift_entity::SecondaryMap;
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::context::Context;
use inkwell::module::{Linkage, Module};
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{
    CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine,
};
use inkwell::values::{BasicValue, FunctionValue, PointerValue};
use inkwell::{AddressSpace, OptimizationLevel};
use lowbit_dialects::ir::{Elem, Func, Op, Value};

use super::cg::Cg;
use super::lower::{lower_op, Buf, OpCx};
use super::plan::{self, byte_size, Place, Plan};
use super::{BackendError, BackendResult, TARGET_NAME};

/// What to build and what to emit beside the object.
#[derive(Clone, Debug, Default)]
pub struct CodegenOptions {
    /// The entry symbol.
    pub entry: String,
    /// Also return the optimized module as textual LLVM IR.
    pub emit_llvm: bool,
    /// Also return the assembly.
    pub emit_asm: bool,
}

/// The result of compiling one function.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The relocatable object (ELF), ready for [`link_shared`].
    pub object: Vec<u8>,
    /// Optimized LLVM IR, when asked for.
    pub llvm_ir: Option<String>,
    /// Assembly, when asked for.
    pub asm: Option<String>,
    /// The target triple compiled for.
    pub triple: String,
    /// The target CPU compiled for.
    pub cpu: String,
    /// The buffer plan; its `weights` are the entry's weights, in order.
    pub plan: Plan,
}

fn llvm_err(stage: &'static str, message: impl ToString) -> BackendError {
    BackendError::Llvm {
        stage,
        message: message.to_string(),
    }
}

/// The host target machine: triple, CPU and features of this machine, default
/// optimization level, PIC.
fn host_machine() -> BackendResult<TargetMachine> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| Target::initialize_native(&InitializationConfig::default()))
        .clone()
        .map_err(|e| llvm_err("native target initialization", e))?;
    let triple = TargetMachine::get_default_triple();
    let target = Target::from_triple(&triple).map_err(|e| llvm_err("target lookup", e))?;
    let cpu = TargetMachine::get_host_cpu_name();
    let features = TargetMachine::get_host_cpu_features();
    target
        .create_target_machine(
            &triple,
            &cpu.to_string_lossy(),
            &features.to_string_lossy(),
            OptimizationLevel::Default,
            RelocMode::PIC,
            CodeModel::Default,
        )
        .ok_or_else(|| llvm_err("target machine creation", triple.as_str().to_string_lossy()))
}

/// The triple [`compile`] targets.
pub fn host_triple() -> String {
    TargetMachine::get_default_triple()
        .as_str()
        .to_string_lossy()
        .into_owned()
}

/// Checks that the signature uses only element types an entry can take.
fn check_signature(f: &Func) -> BackendResult<()> {
    let bad = |what: String, elem: Elem| {
        BackendError::Func {
        func: f.name.clone(),
        message: format!("{what} has element type {elem}, which the {TARGET_NAME} code generator does not support yet"),
    }
    };
    for (i, &p) in f.params.iter().enumerate() {
        let e = f.ty(p).elem;
        if !matches!(e, Elem::F32 | Elem::I1) {
            return Err(bad(format!("parameter #{i}"), e));
        }
    }
    for (i, &r) in f.rets.iter().enumerate() {
        let e = f.ty(r).elem;
        if !matches!(e, Elem::F32 | Elem::I1) {
            return Err(bad(format!("result #{i}"), e));
        }
    }
    Ok(())
}

/// Compiles `f` for the host; see the module documentation.
pub fn compile(f: &Func, opts: &CodegenOptions) -> BackendResult<Compiled> {
    check_signature(f)?;
    let plan = plan::plan(f);
    let context = Context::create();
    let module = context.create_module(&f.name);
    let machine = host_machine()?;
    module.set_triple(&machine.get_triple());
    module.set_data_layout(&machine.get_target_data().get_data_layout());
    build_entry(&context, &module, f, &plan, &opts.entry)?;
    module
        .verify()
        .map_err(|e| llvm_err("module verification", e))?;
    module
        .run_passes("default<O2>", &machine, PassBuilderOptions::create())
        .map_err(|e| llvm_err("optimization", e))?;
    let llvm_ir = opts.emit_llvm.then(|| module.print_to_string().to_string());
    let asm = if opts.emit_asm {
        let buf = machine
            .write_to_memory_buffer(&module, FileType::Assembly)
            .map_err(|e| llvm_err("assembly emission", e))?;
        Some(String::from_utf8_lossy(buf.as_slice()).into_owned())
    } else {
        None
    };
    let object = machine
        .write_to_memory_buffer(&module, FileType::Object)
        .map_err(|e| llvm_err("object emission", e))?
        .as_slice()
        .to_vec();
    Ok(Compiled {
        object,
        llvm_ir,
        asm,
        triple: machine.get_triple().as_str().to_string_lossy().into_owned(),
        cpu: machine.get_cpu().to_string(),
        plan,
    })
}

/// Links `object` into the shared object `output` with `cc -shared -o OUTPUT OBJECT -lm`.
pub fn link_shared(object: &Path, output: &Path) -> BackendResult<()> {
    let mut cmd = Command::new("cc");
    cmd.arg("-shared")
        .arg("-o")
        .arg(output)
        .arg(object)
        .arg("-lm");
    let command = format!(
        "cc -shared -o {} {} -lm",
        output.display(),
        object.display()
    );
    let fail = |message: String| BackendError::Link {
        output: output.display().to_string(),
        command: command.clone(),
        message,
    };
    let result = cmd.output().map_err(|e| fail(e.to_string()))?;
    if !result.status.success() {
        let text = String::from_utf8_lossy(&result.stderr).trim().to_string();
        return Err(fail(if text.is_empty() {
            result.status.to_string()
        } else {
            text
        }));
    }
    Ok(())
}

/// Declares `name` as an external C function.
fn declare<'ctx>(
    module: &Module<'ctx>,
    name: &str,
    ty: inkwell::types::FunctionType<'ctx>,
) -> FunctionValue<'ctx> {
    module
        .get_function(name)
        .unwrap_or_else(|| module.add_function(name, ty, None))
}

/// Builds the entry function of `f` in `module`.
fn build_entry<'ctx>(
    cx: &'ctx Context,
    module: &Module<'ctx>,
    f: &Func,
    plan: &Plan,
    entry: &str,
) -> BackendResult<()> {
    let ptrt = cx.ptr_type(AddressSpace::default());
    let i32t = cx.i32_type();
    let func = module.add_function(entry, i32t.fn_type(&[ptrt.into(); 3], false), None);
    let nounwind = cx.create_enum_attribute(Attribute::get_named_enum_kind_id("nounwind"), 0);
    func.add_attribute(AttributeLoc::Function, nounwind);
    let cg = Cg::new(cx, module, func);
    let arrays: Vec<PointerValue<'ctx>> = (0..3)
        .map(|i| {
            func.get_nth_param(i)
                .expect("the entry has three parameters")
                .into_pointer_value()
        })
        .collect();

    // The arena, allocated once per call.
    let arena = if plan.arena_bytes > 0 {
        let malloc = declare(module, "malloc", ptrt.fn_type(&[cg.i64t.into()], false));
        let p =
            cg.b.build_call(malloc, &[cg.i64(plan.arena_bytes as i64).into()], "arena")?;
        let p = p.try_as_basic_value().unwrap_basic().into_pointer_value();
        let fail = cx.append_basic_block(func, "oom");
        let ok = cx.append_basic_block(func, "run");
        let null = cg.b.build_is_null(p, "")?;
        cg.b.build_conditional_branch(null, fail, ok)?;
        cg.b.position_at_end(fail);
        cg.b.build_return(Some(&i32t.const_int(1, false)))?;
        cg.b.position_at_end(ok);
        Some(p)
    } else {
        None
    };

    let consts = plan
        .constants
        .iter()
        .enumerate()
        .map(|(i, &op)| constant_global(cx, module, f, op, i))
        .collect::<BackendResult<Vec<_>>>()?;

    // One pointer per place, all computed here, before any loop: they dominate every use.
    let mut by_place: HashMap<Place, PointerValue<'ctx>> = HashMap::new();
    let mut ptrs: SecondaryMap<Value, Option<PointerValue<'ctx>>> = SecondaryMap::new();
    let slot = |array: usize, i: usize| -> BackendResult<PointerValue<'ctx>> {
        // SAFETY (of the generated code): the ABI passes one pointer per manifest entry.
        let at = unsafe {
            cg.b.build_in_bounds_gep(ptrt, arrays[array], &[cg.i64(i as i64)], "")?
        };
        Ok(cg.b.build_load(ptrt, at, "")?.into_pointer_value())
    };
    let values = f.params.iter().copied().chain(
        f.body
            .iter()
            .flat_map(|&op| f.ops[op].results.iter().copied()),
    );
    for v in values {
        let place = plan.place(v);
        let p = match by_place.get(&place) {
            Some(&p) => p,
            None => {
                let p = match place {
                    Place::Input(i) => slot(0, i)?,
                    Place::Output(k) => slot(1, k)?,
                    Place::Weight(j) => slot(2, j)?,
                    Place::Constant(c) => consts[c],
                    // Only empty tensors live in an empty arena: never accessed.
                    Place::Arena(off) => match arena {
                        Some(a) => cg.byte_ptr(a, off)?,
                        None => ptrt.const_null(),
                    },
                };
                by_place.insert(place, p);
                p
            }
        };
        ptrs[v] = Some(p);
    }
    let outputs = (0..f.rets.len())
        .map(|k| slot(1, k))
        .collect::<BackendResult<Vec<_>>>()?;

    for &op in &f.body {
        let d = &f.ops[op];
        let buf = |v: Value| Buf {
            ptr: ptrs[v].expect("every value has a pointer"),
            ty: f.ty(v).clone(),
        };
        let ocx = OpCx {
            cg: &cg,
            opcode: d.opcode,
            loc: &d.loc,
            attrs: &d.attrs,
            args: d.args.iter().map(|&a| buf(a)).collect(),
            results: d.results.iter().map(|&r| buf(r)).collect(),
            scratch: match (plan.scratch[op], arena) {
                (Some(off), Some(a)) => Some(cg.byte_ptr(a, off)?),
                _ => None,
            },
        };
        lower_op(&ocx)?;
    }
    for &(k, v) in &plan.ret_copies {
        cg.memcpy(
            outputs[k],
            ptrs[v].expect("returned values have pointers"),
            byte_size(f.ty(v)),
        )?;
    }
    if let Some(a) = arena {
        let free = declare(
            module,
            "free",
            cx.void_type().fn_type(&[ptrt.into()], false),
        );
        cg.b.build_call(free, &[a.into()], "")?;
    }
    cg.b.build_return(Some(&i32t.const_zero()))?;
    cg.seal_allocas()
}

/// The private constant global holding the value of `graph.constant` op `op`.
fn constant_global<'ctx>(
    cx: &'ctx Context,
    module: &Module<'ctx>,
    f: &Func,
    op: Op,
    index: usize,
) -> BackendResult<PointerValue<'ctx>> {
    let d = &f.ops[op];
    let err = |message: String| BackendError::Op {
        op: d.opcode.name(),
        loc: d.loc.clone(),
        message,
    };
    let dense = d
        .attrs
        .dense("value")
        .ok_or_else(|| err("needs a dense attribute 'value'".into()))?;
    let values = dense
        .values
        .as_ref()
        .ok_or_else(|| err("has an elided value, which cannot be compiled".into()))?;
    let ty = d
        .results
        .first()
        .map(|&r| f.ty(r))
        .ok_or_else(|| err("has no result".into()))?;
    if values.len() != ty.num_elements() {
        return Err(err(format!(
            "value has {} elements, its type {ty} needs {}",
            values.len(),
            ty.num_elements()
        )));
    }
    let init = match ty.elem {
        Elem::F32 => {
            let t = cx.f32_type();
            let vals: Vec<_> = values.iter().map(|&v| t.const_float(v)).collect();
            t.const_array(&vals).as_basic_value_enum()
        }
        Elem::I1 => {
            let t = cx.i8_type();
            let vals: Vec<_> = values
                .iter()
                .map(|&v| t.const_int(u64::from(v != 0.0), false))
                .collect();
            t.const_array(&vals).as_basic_value_enum()
        }
        e => {
            return Err(err(format!(
                "element type {e} is not supported by the {TARGET_NAME} code generator yet"
            )))
        }
    };
    let g = module.add_global(init.get_type(), None, &format!("const.{index}"));
    g.set_initializer(&init);
    g.set_constant(true);
    g.set_linkage(Linkage::Private);
    g.set_unnamed_addr(true);
    g.set_alignment(64);
    Ok(g.as_pointer_value())
}

/// `true` when `name` is a valid C identifier (an entry symbol).
pub fn is_c_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}
