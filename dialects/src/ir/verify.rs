//! The verifier: checks a module and reports every error, each with its op and location.
//!
//! Structure first (definitions dominate uses, operand/result counts match the op table,
//! attributes are present and of the declared kind, no unknown attributes), then each op's
//! types through the dialects' inference ([`crate::infer`]): the declared result types
//! must equal the inferred ones. Messages follow MLIR: `'graph.matmul' op inner dimensions
//! differ: 64 vs 128`.

use std::fmt;

use cranelift_entity::EntitySet;
use thiserror::Error;

use super::func::{Func, Module, Op, ValueDef};
use super::loc::Loc;
use crate::dialect::Arity;
use crate::infer::{infer, InferCx};

/// One verifier error.
#[derive(Clone, Debug, Error, PartialEq)]
pub struct VerifyError {
    /// The function it is in.
    pub func: String,
    /// The op, when the error is about one.
    pub op: Option<Op>,
    /// The op's (or function's) location.
    pub loc: Loc,
    /// The message, starting with the op name (`'graph.add' op ...`).
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Loc::File { file, line, col } => {
                write!(f, "{file}:{line}:{col}: error: {}", self.message)
            }
            Loc::Unknown => write!(f, "error: {} (in '@{}')", self.message, self.func),
            loc => write!(f, "error: {} at {loc}", self.message),
        }
    }
}

/// Verifies every function; `Err` holds all errors found, in program order.
pub fn verify_module(m: &Module) -> Result<(), Vec<VerifyError>> {
    let errs: Vec<_> = m.funcs.iter().flat_map(verify_func).collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Verifies one function, returning every error.
pub fn verify_func(f: &Func) -> Vec<VerifyError> {
    let mut errs = Vec::new();
    let mut defined = EntitySet::new();
    for (i, &p) in f.params.iter().enumerate() {
        if f.values[p].def != ValueDef::Param(i as u32) {
            errs.push(func_error(
                f,
                format!("parameter {i} is not defined as a parameter"),
            ));
        }
        defined.insert(p);
    }
    for &op in &f.body {
        let d = &f.ops[op];
        let name = d.opcode.name();
        let mut push = |message: String| {
            errs.push(VerifyError {
                func: f.name.clone(),
                op: Some(op),
                loc: d.loc.clone(),
                message: format!("'{name}' op {message}"),
            })
        };
        let mut ok = true;
        for (i, &a) in d.args.iter().enumerate() {
            if !defined.contains(a) {
                push(format!("operand #{i} is used before it is defined"));
                ok = false;
            }
        }
        let info = d.opcode.info();
        let (lo, hi) = info.operand_range();
        if d.args.len() < lo || d.args.len() > hi {
            push(format!(
                "expects {} operand(s), found {}",
                describe_range(lo, hi),
                d.args.len()
            ));
            ok = false;
        }
        let (rlo, rhi) = info.result_range();
        if d.results.len() < rlo || d.results.len() > rhi {
            push(format!(
                "expects {} result(s), found {}",
                describe_range(rlo, rhi),
                d.results.len()
            ));
            ok = false;
        }
        if info.operands.iter().any(|s| s.arity == Arity::Variadic) && d.args.is_empty() {
            push("expects at least one operand".to_string());
            ok = false;
        }
        for spec in info.attrs {
            match d.attrs.get(spec.name) {
                None if spec.required => {
                    push(format!("requires attribute '{}'", spec.name));
                    ok = false;
                }
                Some(a) if a.kind() != spec.kind => {
                    push(format!(
                        "attribute '{}' must be {}, found {}",
                        spec.name,
                        spec.kind.describe(),
                        a.kind().describe()
                    ));
                    ok = false;
                }
                _ => {}
            }
        }
        for (n, _) in d.attrs.iter() {
            if info.attr(n).is_none() {
                let known: Vec<_> = info.attrs.iter().map(|a| a.name).collect();
                let expected = if known.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("expected one of: {}", known.join(", "))
                };
                push(format!("has unknown attribute '{n}'; {expected}"));
                ok = false;
            }
        }
        for (i, &r) in d.results.iter().enumerate() {
            if f.values[r].def != ValueDef::Result(op, i as u32) {
                push(format!("result #{i} is not defined by this op"));
                ok = false;
            }
        }
        if ok {
            let args: Vec<_> = d.args.iter().map(|&a| f.ty(a)).collect();
            let results: Vec<_> = d.results.iter().map(|&r| f.ty(r)).collect();
            let cx = InferCx {
                opcode: d.opcode,
                args: &args,
                attrs: &d.attrs,
                results: &results,
            };
            match infer(&cx) {
                Err(m) => push(m),
                Ok(expected) => {
                    if expected.len() != results.len() {
                        push(format!(
                            "has {} result(s) but {} were inferred",
                            results.len(),
                            expected.len()
                        ));
                    } else {
                        for (i, (e, r)) in expected.iter().zip(&results).enumerate() {
                            if e != *r {
                                push(format!(
                                    "result #{i} type {r} does not match the inferred type {e}"
                                ));
                            }
                        }
                    }
                }
            }
        }
        for &r in &d.results {
            defined.insert(r);
        }
    }
    for (i, &r) in f.rets.iter().enumerate() {
        if !defined.contains(r) {
            errs.push(func_error(f, format!("returned value #{i} is not defined")));
        }
    }
    errs
}

fn func_error(f: &Func, message: String) -> VerifyError {
    VerifyError {
        func: f.name.clone(),
        op: None,
        loc: f.loc.clone(),
        message: format!("function '@{}' {message}", f.name),
    }
}

fn describe_range(lo: usize, hi: usize) -> String {
    if lo == hi {
        lo.to_string()
    } else if hi == usize::MAX {
        format!("at least {lo}")
    } else {
        format!("{lo} to {hi}")
    }
}
