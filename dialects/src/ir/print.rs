//! The text printer: the readable custom form and MLIR's generic form.
//!
//! Both forms are printed from the op tables alone, so no op needs printing code.
//! Values are renumbered densely at print time (`%argN` for parameters, `%N` for results
//! in program order), attributes come out sorted, and large constants elided: the output
//! is deterministic and does not churn when passes allocate and drop values.
//!
//! Custom form:
//! ```text
//! func @f(%arg0: tensor<4x8xf32>) -> tensor<4x8xf32> {
//!   %0 = graph.softmax %arg0 {axis = -1 : i64} : tensor<4x8xf32>
//!   return %0
//! }
//! ```
//! Generic form (real MLIR; `mlir-opt --allow-unregistered-dialect` parses it):
//! ```text
//! module {
//!   func.func @f(%arg0: tensor<4x8xf32>) -> tensor<4x8xf32> {
//!     %0 = "graph.softmax"(%arg0) {axis = -1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
//!     "func.return"(%0) : (tensor<4x8xf32>) -> ()
//!   }
//! }
//! ```

use std::fmt::Write;

use cranelift_entity::SecondaryMap;

use super::attrs::write_attr;
use super::func::{Func, Module, Op, Value};
use super::types::TensorType;

/// How to print.
#[derive(Clone, Copy, Debug)]
pub struct PrintOptions {
    /// Print MLIR's generic form instead of the custom form.
    pub generic: bool,
    /// Print `loc(...)` after each op and function.
    pub locs: bool,
    /// Elide dense constants with more than [`super::attrs::ELIDE_LIMIT`] elements.
    pub elide: bool,
}

impl Default for PrintOptions {
    fn default() -> Self {
        PrintOptions {
            generic: false,
            locs: false,
            elide: true,
        }
    }
}

/// Prints a module in the custom form with default options.
pub fn print_module(m: &Module) -> String {
    print_module_with(m, PrintOptions::default())
}

/// Prints a module.
pub fn print_module_with(m: &Module, opts: PrintOptions) -> String {
    print_module_annotated(m, opts, &|_, _| Vec::new())
}

/// Prints a module with `// note` lines after the ops `notes(func, op)` returns text for;
/// used to show verifier errors beside the guilty ops.
pub fn print_module_annotated(
    m: &Module,
    opts: PrintOptions,
    notes: &dyn Fn(&Func, Op) -> Vec<String>,
) -> String {
    let mut out = String::new();
    let indent = if opts.generic {
        out.push_str("module {\n");
        "  "
    } else {
        ""
    };
    for (i, f) in m.funcs.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        print_func_into(&mut out, f, opts, indent, notes);
    }
    if opts.generic {
        out.push_str("}\n");
    }
    out
}

/// Prints one function in the custom form.
pub fn print_func(f: &Func) -> String {
    let mut out = String::new();
    print_func_into(&mut out, f, PrintOptions::default(), "", &|_, _| Vec::new());
    out
}

/// Writes a symbol or attribute name bare when it is an MLIR bare identifier
/// (`[a-zA-Z_][a-zA-Z0-9_$.]*`), quoted otherwise (`@"layers.0 attn"`), as MLIR does; the
/// parser reads both.
fn write_name(out: &mut String, name: &str) {
    let bare = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.'));
    if bare {
        out.push_str(name);
    } else {
        let _ = super::attrs::write_string(out, name);
    }
}

fn names(f: &Func) -> SecondaryMap<Value, String> {
    let mut names = SecondaryMap::new();
    for (i, &p) in f.params.iter().enumerate() {
        names[p] = format!("%arg{i}");
    }
    let mut n = 0;
    for &op in &f.body {
        for &r in &f.ops[op].results {
            names[r] = format!("%{n}");
            n += 1;
        }
    }
    names
}

fn type_list(out: &mut String, tys: &[&TensorType], parens_for_one: bool) {
    let paren = parens_for_one || tys.len() != 1;
    if paren {
        out.push('(');
    }
    for (i, t) in tys.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{t}");
    }
    if paren {
        out.push(')');
    }
}

fn print_func_into(
    out: &mut String,
    f: &Func,
    opts: PrintOptions,
    indent: &str,
    notes: &dyn Fn(&Func, Op) -> Vec<String>,
) {
    let names = names(f);
    let kw = if opts.generic { "func.func" } else { "func" };
    let _ = write!(out, "{indent}{kw} @");
    write_name(out, &f.name);
    out.push('(');
    for (i, &p) in f.params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}: {}", names[p], f.ty(p));
    }
    out.push(')');
    if !f.rets.is_empty() {
        out.push_str(" -> ");
        let tys: Vec<_> = f.rets.iter().map(|&r| f.ty(r)).collect();
        type_list(out, &tys, false);
    }
    out.push_str(" {\n");
    for &op in &f.body {
        let d = &f.ops[op];
        let _ = write!(out, "{indent}  ");
        for (i, &r) in d.results.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&names[r]);
        }
        if !d.results.is_empty() {
            out.push_str(" = ");
        }
        let arg_names: Vec<&str> = d.args.iter().map(|&a| names[a].as_str()).collect();
        if opts.generic {
            let _ = write!(out, "\"{}\"({})", d.opcode.name(), arg_names.join(", "));
        } else {
            out.push_str(d.opcode.name());
            if !arg_names.is_empty() {
                let _ = write!(out, " {}", arg_names.join(", "));
            }
        }
        if !d.attrs.is_empty() {
            out.push_str(" {");
            for (i, (name, a)) in d.attrs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_name(out, name);
                out.push_str(" = ");
                let _ = write_attr(out, a, opts.elide);
            }
            out.push('}');
        }
        out.push_str(" : ");
        let rtys: Vec<_> = d.results.iter().map(|&r| f.ty(r)).collect();
        if opts.generic {
            let atys: Vec<_> = d.args.iter().map(|&a| f.ty(a)).collect();
            type_list(out, &atys, true);
            out.push_str(" -> ");
            type_list(out, &rtys, false);
        } else {
            for (i, t) in rtys.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{t}");
            }
        }
        if opts.locs {
            let _ = write!(out, " {}", d.loc);
        }
        out.push('\n');
        for note in notes(f, op) {
            let _ = writeln!(out, "{indent}  // {note}");
        }
    }
    let rets: Vec<&str> = f.rets.iter().map(|&r| names[r].as_str()).collect();
    if opts.generic {
        let _ = write!(out, "{indent}  \"func.return\"({}) : ", rets.join(", "));
        let tys: Vec<_> = f.rets.iter().map(|&r| f.ty(r)).collect();
        type_list(out, &tys, true);
        out.push_str(" -> ()\n");
    } else if rets.is_empty() {
        let _ = writeln!(out, "{indent}  return");
    } else {
        let _ = writeln!(out, "{indent}  return {}", rets.join(", "));
    }
    let _ = write!(out, "{indent}}}");
    if opts.locs {
        let _ = write!(out, " {}", f.loc);
    }
    out.push('\n');
}
