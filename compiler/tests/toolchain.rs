//! Toolchain smoke tests: melior (MLIR 22) and inkwell (LLVM 22) link and work.
//!
//! This file is also the reference for the codegen engineer: every API used
//! here was checked against melior 0.27.8 / mlir-sys 220.0.2 and inkwell 0.11.0
//! (feature `llvm22-1`) / llvm-sys 221.1.2 with Debian's LLVM/MLIR 22.1.
//!
//! APIs that work (see the tests below for the full code):
//!
//! melior
//! - context: `DialectRegistry::new()` + `utility::register_all_dialects(&r)`,
//!   `Context::new()`, `append_dialect_registry(&r)`,
//!   `load_all_available_dialects()`, `set_allow_unregistered_dialects(true)`.
//! - `Module::parse(&ctx, text) -> Option<Module>` (parses *and* verifies);
//!   `module.as_operation().verify()`; errors via `attach_diagnostic_handler`
//!   (see `capture_diagnostics`).
//! - printing: `op.to_string()` (pretty), `op.to_string_with_flags(
//!   OperationPrintingFlags::new().print_generic_operation_form())`; with
//!   `enable_debug_info(true, false)` locations come out as `#locN` aliases,
//!   `op.location().to_string()` prints one location in full.
//! - walking: `module.body().first_operation()`, `op.region(0)?.first_block()`,
//!   `op.next_in_block()` (traits `BlockLike`, `RegionLike`, `OperationLike`).
//!
//! inkwell (LLVM 22: opaque pointers only)
//! - types: `ctx.ptr_type(AddressSpace::default())`, `ctx.f32_type()`, ...;
//!   `build_load(ty, ptr, name)`, `unsafe build_in_bounds_gep(elem_ty, ptr, &[i], name)`;
//!   every `build_*` returns `Result<_, BuilderError>`.
//! - host: `Target::initialize_native(&InitializationConfig::default())`,
//!   `TargetMachine::get_default_triple()`, `Target::from_triple`,
//!   `create_target_machine(&triple, host_cpu, host_features,
//!   OptimizationLevel::Default, RelocMode::PIC, CodeModel::Default)`;
//!   `module.set_triple` + `set_data_layout(&tm.get_target_data().get_data_layout())`;
//!   optimize with `module.run_passes("default<O2>", &tm, PassBuilderOptions::create())`;
//!   `tm.write_to_file(&module, FileType::Object, path)` or
//!   `tm.write_to_memory_buffer(&module, FileType::Assembly)`; then
//!   `cc -shared -o x.so x.o` and `libloading::Library::new` + `get::<fn>(b"sym\0")`.
//! - PTX: `Target::initialize_nvptx(..)`, triple `nvptx64-nvidia-cuda`, cpu
//!   `sm_80`, features `+ptx80` (gives `.version 8.0`), `RelocMode::Default`;
//!   kernels use calling convention 71 (`ptx_kernel`):
//!   `function.set_call_conventions(71)` gives `.visible .entry`; thread ids
//!   come from declared intrinsics such as `llvm.nvvm.read.ptx.sreg.tid.x`.
//!   `FileType::Assembly` output is the PTX text.
//!
//! Linking: both `-sys` crates (and `tblgen`, melior's build-time helper) link
//! LLVM *statically*: `llvm-config --link-static --libnames` lists
//! `libPolly.a`/`libPollyISL.a` too (package `libpolly-22-dev`); mlir-sys links
//! every `libMLIR*.a` in `/usr/lib/llvm-22/lib` (Debian ships no
//! `libMLIR-C.so`, so `MLIR_SYS_LINK_SHARED=1` cannot work). A test binary
//! that links both is ~200 MB. Do not switch inkwell to a
//! `*-prefer-dynamic` feature: that would put a second copy of LLVM
//! (`libLLVM.so`) next to the static one MLIR pulls in. System libraries come
//! from `llvm-config --system-libs`: `-lrt -ldl -lm -lz -lzstd -lxml2` and
//! `libz3.so`, plus `-lstdc++`, and inkwell adds `-lffi` (packages
//! `zlib1g-dev libzstd-dev libxml2-dev libz3-dev libffi-dev`; see
//! `scripts/setup.sh`).

use std::cell::RefCell;
use std::rc::Rc;

// ---------------------------------------------------------------------------
// melior
// ---------------------------------------------------------------------------

use melior::dialect::DialectRegistry;
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationLike, OperationPrintingFlags};
use melior::ir::Module;
use melior::ir::RegionLike;
use melior::utility::register_all_dialects;
use melior::Context;

/// A context with every upstream dialect registered and loaded, and
/// unregistered dialects (our `graph`, `lowbit`, ...) allowed.
fn mlir_context() -> Context {
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    let context = Context::new();
    context.append_dialect_registry(&registry);
    context.load_all_available_dialects();
    context.set_allow_unregistered_dialects(true);
    context
}

/// Collects MLIR diagnostics as strings instead of letting MLIR print them.
///
/// How to capture MLIR's message on a parse failure with melior:
/// `Module::parse` only returns `Option<Module>`; the error text goes to the
/// context's diagnostic handlers (by default MLIR prints it to stderr).
/// `Context::attach_diagnostic_handler(|d: Diagnostic| -> bool)` installs a
/// handler; returning `true` marks the diagnostic handled (nothing is
/// printed). `Diagnostic` implements `Display` (the message only, e.g.
/// `expected ')' to end operand list`); `d.location()` is a `Location` whose
/// `Display` gives `loc("-":2:23)` (`Module::parse` names its buffer `-`);
/// `d.severity()` and `d.note(i)` / `d.note_count()` give the rest. The handler
/// is boxed and owned by the context (dropped on `detach_diagnostic_handler(id)`
/// or when the context dies). melior does not require `'static`, but sharing
/// through `Rc<RefCell<..>>` keeps it obviously sound.
fn capture_diagnostics(context: &Context) -> Rc<RefCell<Vec<String>>> {
    let messages = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&messages);
    context.attach_diagnostic_handler(move |diagnostic| {
        let mut text = format!("{}: {}", diagnostic.location(), diagnostic);
        for index in 0..diagnostic.note_count() {
            if let Ok(note) = diagnostic.note(index) {
                text.push_str(&format!("\n  note: {note}"));
            }
        }
        sink.borrow_mut().push(text);
        true
    });
    messages
}

const GRAPH_MODULE: &str = r#"module {
  func.func @f(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %0 = "graph.relu"(%arg0) {axis = -1 : i64, perm = array<i64: 1, 0>, name = "w", f = 1.250000e-01 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    "func.return"(%0) : (tensor<2x3xf32>) -> ()
  } loc("a.mlir":1:1)
}
"#;

#[test]
fn melior_parses_and_verifies_generic_form() {
    let context = mlir_context();
    let diagnostics = capture_diagnostics(&context);

    let module = Module::parse(&context, GRAPH_MODULE).expect("module parses");
    assert!(module.as_operation().verify(), "module verifies");
    assert!(
        diagnostics.borrow().is_empty(),
        "{:?}",
        diagnostics.borrow()
    );

    // Printing: the generic form keeps the unregistered op and its attributes.
    let generic = module
        .as_operation()
        .to_string_with_flags(OperationPrintingFlags::new().print_generic_operation_form())
        .expect("prints");
    assert!(generic.contains("\"graph.relu\""), "{generic}");
    assert!(generic.contains("perm = array<i64: 1, 0>"), "{generic}");
    // The pretty form round-trips through the parser too.
    let pretty = module.as_operation().to_string();
    let reparsed = Module::parse(&context, &pretty).expect("printed module reparses");
    assert!(reparsed.as_operation().verify());
}

#[test]
fn melior_reports_parse_errors() {
    let context = mlir_context();
    let diagnostics = capture_diagnostics(&context);

    let broken = "module {\n  %0 = \"graph.relu\"(%x : () -> ()\n}\n";
    assert!(Module::parse(&context, broken).is_none());
    let messages = diagnostics.borrow();
    assert!(
        !messages.is_empty(),
        "a parse failure produces a diagnostic"
    );
    // Exactly: `loc("-":2:23): expected ')' to end operand list`
    assert!(messages[0].starts_with("loc(\"-\":2:"), "{messages:?}");

    // An op that parses but does not verify: func.return with a wrong type.
    drop(messages);
    let invalid = r#"func.func @g(%a: tensor<2xf32>) -> tensor<3xf32> {
  "func.return"(%a) : (tensor<2xf32>) -> ()
}"#;
    // The parser runs the verifier: a module that does not verify is not returned.
    assert!(Module::parse(&context, invalid).is_none());
    assert!(
        diagnostics
            .borrow()
            .iter()
            .any(|m| m.contains("func.return")),
        "{:?}",
        diagnostics.borrow()
    );
}

#[test]
fn melior_parses_low_bit_types_and_locations() {
    let context = mlir_context();
    let diagnostics = capture_diagnostics(&context);

    let element_types = [
        "f32", "f16", "bf16", "f8E4M3FN", "f8E5M2", "f4E2M1FN", "i32", "i8", "ui8", "i4", "ui4",
    ];
    let arguments = element_types
        .iter()
        .enumerate()
        .map(|(index, ty)| format!("%a{index}: tensor<4x8x{ty}>"))
        .collect::<Vec<_>>()
        .join(", ");
    let source = format!(
        r#"func.func @types({arguments}) {{
  %0 = "graph.identity"(%a3) : (tensor<4x8xf8E4M3FN>) -> tensor<4x8xf8E4M3FN> loc(fused["a", "b.mlir":1:2])
  %1 = "graph.identity"(%a5) : (tensor<4x8xf4E2M1FN>) -> tensor<4x8xf4E2M1FN> loc("name")
  %2 = "graph.identity"(%a10) : (tensor<4x8xui4>) -> tensor<4x8xui4> loc(fused<"attn.fused">["q_proj", "k_proj"])
  "func.return"() : () -> ()
}}"#
    );
    let module = Module::parse(&context, &source)
        .unwrap_or_else(|| panic!("parse failed: {:?}\n{source}", diagnostics.borrow()));
    assert!(module.as_operation().verify());

    let printed = module.as_operation().to_string();
    for ty in element_types {
        assert!(
            printed.contains(&format!("tensor<4x8x{ty}>")),
            "{ty}: {printed}"
        );
    }

    // Locations: the module printer (with `enable_debug_info`) hoists them
    // into `#locN` aliases; `Location`'s `Display` prints one in full.
    let func = module.body().first_operation().expect("func.func");
    let body = func.region(0).unwrap().first_block().expect("body");
    let mut locations = Vec::new();
    let mut op = body.first_operation();
    while let Some(current) = op {
        locations.push(current.location().to_string());
        op = current.next_in_block();
    }
    assert_eq!(
        locations[..3],
        [
            r#"loc(fused["a", "b.mlir":1:2])"#,
            r#"loc("name")"#,
            r#"loc(fused<"attn.fused">["q_proj", "k_proj"])"#,
        ],
    );
    assert!(
        diagnostics.borrow().is_empty(),
        "{:?}",
        diagnostics.borrow()
    );
}

// ---------------------------------------------------------------------------
// inkwell
// ---------------------------------------------------------------------------

use std::ffi::c_void;
use std::process::Command;

use inkwell::context::Context as LlvmContext;
use inkwell::module::Module as LlvmModule;
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{
    CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine, TargetTriple,
};
use inkwell::{AddressSpace, IntPredicate, OptimizationLevel};

/// Number of f32 elements the test kernel adds.
const LEN: u64 = 1000;

/// Builds
/// `int32_t lowbit_add(const void* const* in, void* const* out, const void* const* w)`:
/// `out[0][i] = in[0][i] + w[0][i] + 1.0f` for `i < LEN`, then `return 0`.
/// LLVM 22 has opaque pointers only: every pointer is `context.ptr_type(..)`;
/// loads and GEPs name the pointee type.
fn build_add_kernel<'ctx>(context: &'ctx LlvmContext, name: &str) -> LlvmModule<'ctx> {
    let module = context.create_module(name);
    let builder = context.create_builder();
    let ptr = context.ptr_type(AddressSpace::default());
    let f32t = context.f32_type();
    let i64t = context.i64_type();
    let i32t = context.i32_type();

    let fn_type = i32t.fn_type(&[ptr.into(), ptr.into(), ptr.into()], false);
    let function = module.add_function("lowbit_add", fn_type, None);
    let entry = context.append_basic_block(function, "entry");
    let body = context.append_basic_block(function, "loop");
    let exit = context.append_basic_block(function, "exit");

    let param = |n| function.get_nth_param(n).unwrap().into_pointer_value();
    let (inputs, outputs, weights) = (param(0), param(1), param(2));

    builder.position_at_end(entry);
    let a = builder
        .build_load(ptr, inputs, "a")
        .unwrap()
        .into_pointer_value();
    let c = builder
        .build_load(ptr, outputs, "c")
        .unwrap()
        .into_pointer_value();
    let b = builder
        .build_load(ptr, weights, "b")
        .unwrap()
        .into_pointer_value();
    builder.build_unconditional_branch(body).unwrap();

    builder.position_at_end(body);
    let i = builder.build_phi(i64t, "i").unwrap();
    let index = i.as_basic_value().into_int_value();
    // SAFETY: indices stay below LEN, the length of every buffer.
    let (pa, pb, pc) = unsafe {
        (
            builder
                .build_in_bounds_gep(f32t, a, &[index], "pa")
                .unwrap(),
            builder
                .build_in_bounds_gep(f32t, b, &[index], "pb")
                .unwrap(),
            builder
                .build_in_bounds_gep(f32t, c, &[index], "pc")
                .unwrap(),
        )
    };
    let x = builder
        .build_load(f32t, pa, "x")
        .unwrap()
        .into_float_value();
    let y = builder
        .build_load(f32t, pb, "y")
        .unwrap()
        .into_float_value();
    let sum = builder.build_float_add(x, y, "sum").unwrap();
    let sum = builder
        .build_float_add(sum, f32t.const_float(1.0), "sum1")
        .unwrap();
    builder.build_store(pc, sum).unwrap();
    let next = builder
        .build_int_add(index, i64t.const_int(1, false), "next")
        .unwrap();
    let more = builder
        .build_int_compare(IntPredicate::ULT, next, i64t.const_int(LEN, false), "more")
        .unwrap();
    builder.build_conditional_branch(more, body, exit).unwrap();
    i.add_incoming(&[(&i64t.const_zero(), entry), (&next, body)]);

    builder.position_at_end(exit);
    builder.build_return(Some(&i32t.const_zero())).unwrap();

    module
        .verify()
        .unwrap_or_else(|e| panic!("{}", e.to_string()));
    module
}

/// Host target machine: x86-64 ELF, host CPU, `-O2`, PIC (for `cc -shared`).
fn host_target_machine() -> TargetMachine {
    Target::initialize_native(&InitializationConfig::default()).expect("native target");
    let triple = TargetMachine::get_default_triple();
    let target = Target::from_triple(&triple).expect("target for host triple");
    let cpu = TargetMachine::get_host_cpu_name();
    let features = TargetMachine::get_host_cpu_features();
    target
        .create_target_machine(
            &triple,
            cpu.to_str().unwrap(),
            features.to_str().unwrap(),
            OptimizationLevel::Default,
            RelocMode::PIC,
            CodeModel::Default,
        )
        .expect("host target machine")
}

type EntryFn =
    unsafe extern "C" fn(*const *const c_void, *const *mut c_void, *const *const c_void) -> i32;

#[test]
fn inkwell_emits_object_that_links_and_runs() {
    let context = LlvmContext::create();
    let module = build_add_kernel(&context, "lowbit_model");
    let machine = host_target_machine();
    module.set_triple(&machine.get_triple());
    module.set_data_layout(&machine.get_target_data().get_data_layout());
    // New pass manager pipeline, as `opt -passes=default<O2>`.
    module
        .run_passes("default<O2>", &machine, PassBuilderOptions::create())
        .unwrap_or_else(|e| panic!("{}", e.to_string()));

    let dir = tempfile::tempdir().unwrap();
    let object = dir.path().join("model.o");
    let library = dir.path().join("model.so");
    machine
        .write_to_file(&module, FileType::Object, &object)
        .unwrap_or_else(|e| panic!("{}", e.to_string()));
    let asm = machine
        .write_to_memory_buffer(&module, FileType::Assembly)
        .unwrap();
    assert!(String::from_utf8_lossy(asm.as_slice()).contains("lowbit_add:"));

    let status = Command::new("cc")
        .arg("-shared")
        .arg("-o")
        .arg(&library)
        .arg(&object)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc -shared failed");

    let a: Vec<f32> = (0..LEN).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..LEN).map(|i| 0.5 * i as f32).collect();
    let mut c = vec![0.0f32; LEN as usize];
    let inputs = [a.as_ptr().cast::<c_void>()];
    let weights = [b.as_ptr().cast::<c_void>()];
    let outputs = [c.as_mut_ptr().cast::<c_void>()];
    // SAFETY: the library is the one just built; `lowbit_add` has the
    // signature of `EntryFn` and reads/writes LEN floats per buffer.
    let status = unsafe {
        let lib = libloading::Library::new(&library).expect("dlopen model.so");
        let entry = lib
            .get::<EntryFn>(b"lowbit_add\0")
            .expect("dlsym lowbit_add");
        entry(inputs.as_ptr(), outputs.as_ptr(), weights.as_ptr())
    };
    assert_eq!(status, 0);
    for i in 0..LEN as usize {
        assert_eq!(c[i], a[i] + b[i] + 1.0, "element {i}");
    }
}

#[test]
fn inkwell_emits_ptx_for_sm80() {
    Target::initialize_nvptx(&InitializationConfig::default());
    let triple = TargetTriple::create("nvptx64-nvidia-cuda");
    let target = Target::from_triple(&triple).expect("nvptx target");
    let machine = target
        .create_target_machine(
            &triple,
            "sm_80",
            "+ptx80",
            OptimizationLevel::Default,
            RelocMode::Default,
            CodeModel::Default,
        )
        .expect("nvptx target machine");

    // `__global__ void scale(float* p) { p[tid.x] *= 2; }`
    let context = LlvmContext::create();
    let module = context.create_module("kernels");
    module.set_triple(&triple);
    module.set_data_layout(&machine.get_target_data().get_data_layout());
    let builder = context.create_builder();
    let global = context.ptr_type(AddressSpace::from(1u16));
    let f32t = context.f32_type();
    let i32t = context.i32_type();
    let kernel = module.add_function(
        "scale",
        context.void_type().fn_type(&[global.into()], false),
        None,
    );
    // A kernel (`.entry`) is marked by the `ptx_kernel` calling convention
    // (number 71); the old `nvvm.annotations` metadata is no longer needed.
    kernel.set_call_conventions(71);
    let tid_fn = module.add_function(
        "llvm.nvvm.read.ptx.sreg.tid.x",
        i32t.fn_type(&[], false),
        None,
    );
    builder.position_at_end(context.append_basic_block(kernel, "entry"));
    let tid = builder.build_call(tid_fn, &[], "tid").unwrap();
    let tid = tid.try_as_basic_value().unwrap_basic().into_int_value();
    let p = kernel.get_nth_param(0).unwrap().into_pointer_value();
    // SAFETY: the kernel is only compiled here, never run.
    let slot = unsafe {
        builder
            .build_in_bounds_gep(f32t, p, &[tid], "slot")
            .unwrap()
    };
    let x = builder
        .build_load(f32t, slot, "x")
        .unwrap()
        .into_float_value();
    let y = builder
        .build_float_mul(x, f32t.const_float(2.0), "y")
        .unwrap();
    builder.build_store(slot, y).unwrap();
    builder.build_return(None).unwrap();
    module
        .verify()
        .unwrap_or_else(|e| panic!("{}", e.to_string()));

    let ptx = machine
        .write_to_memory_buffer(&module, FileType::Assembly)
        .unwrap();
    let ptx = String::from_utf8_lossy(ptx.as_slice()).into_owned();
    assert!(ptx.contains(".target sm_80"), "{ptx}");
    assert!(ptx.contains(".visible .entry scale"), "{ptx}");
    assert!(ptx.contains(".version 8.0"), "{ptx}");
}
