//! The text parser: reads the custom form and MLIR's generic form into a [`Module`].
//!
//! A hand-written recursive-descent parser over bytes (the grammar is small and MLIR's
//! type syntax, `tensor<1x8xf32>`, does not tokenize context-free). Every error carries a
//! byte span and one sentence; [`ParseError::render`] shows it with its line and a caret.
//!
//! Accepted, beside what the printer writes: a `module { ... }` wrapper (optionally with
//! `attributes {...}`), `func` or `func.func`, `return`, `func.return` or `"func.return"`,
//! named values (`%q`), `%0:2` result groups with `%0#1` uses, MLIR array attributes
//! `[1, 2]`, and `//` comments.

mod cursor;

use std::collections::HashMap;

use thiserror::Error;

use self::cursor::Cursor;
use super::attrs::{Attr, Attrs, DenseAttr};
use super::diag::{render, Span};
use super::func::{Func, Module, Value};
use super::loc::Loc;
use super::types::{Elem, TensorType};
use crate::dialect::Opcode;

/// A parse error: one sentence and where.
#[derive(Clone, Debug, Error, PartialEq)]
#[error("{message}")]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// Where, in bytes.
    pub span: Span,
}

impl ParseError {
    /// Renders `file:line:col: error: ...` with the source line and a caret.
    pub fn render(&self, src: &str, file: &str, line_offset: u32) -> String {
        render(src, file, self.span, &self.message, line_offset)
    }
}

/// Result alias for parsing.
pub type ParseResult<T> = Result<T, ParseError>;

/// Parses a module. `file` names the source in locations; `line_offset` is added to line
/// numbers in locations (for chunks of a split input file).
pub fn parse_module(src: &str, file: &str, line_offset: u32) -> ParseResult<Module> {
    let mut p = Parser {
        c: Cursor::new(src),
        file: file.to_string(),
        line_offset,
    };
    p.module()
}

struct Parser<'a> {
    c: Cursor<'a>,
    file: String,
    line_offset: u32,
}

/// Per-function name scope.
struct Scope {
    names: HashMap<String, Vec<Value>>,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, span: Span, message: impl Into<String>) -> ParseResult<T> {
        Err(ParseError {
            message: message.into(),
            span,
        })
    }

    fn file_loc(&self, at: usize) -> Loc {
        let (line, col) = super::diag::line_col(self.c.src(), at);
        Loc::File {
            file: self.file.clone(),
            line: line + self.line_offset,
            col,
        }
    }

    fn module(&mut self) -> ParseResult<Module> {
        let mut m = Module::default();
        self.c.skip_ws();
        let wrapped = self.c.peek_word() == "module";
        if wrapped {
            self.c.word();
            self.c.skip_ws();
            if self.c.peek_word() == "attributes" {
                self.c.word();
                self.attr_dict()?;
            }
            self.expect("{")?;
        }
        loop {
            self.c.skip_ws();
            if self.c.at_end() {
                if wrapped {
                    return self.err(
                        self.c.here(),
                        "expected '}' to close the module, found the end of the input",
                    );
                }
                break;
            }
            if wrapped && self.c.eat("}") {
                self.opt_loc()?;
                self.c.skip_ws();
                if !self.c.at_end() {
                    let at = self.c.here();
                    return self.err(
                        at,
                        format!(
                            "expected the end of the input after the module, found {}",
                            self.c.describe()
                        ),
                    );
                }
                break;
            }
            let at = self.c.pos();
            let f = self.func()?;
            if m.func(&f.name).is_some() {
                return self.err(
                    Span::new(at, at),
                    format!("redefinition of function '@{}'", f.name),
                );
            }
            m.funcs.push(f);
        }
        Ok(m)
    }

    fn expect(&mut self, tok: &str) -> ParseResult<()> {
        self.c.skip_ws();
        if self.c.eat(tok) {
            Ok(())
        } else {
            self.err(
                self.c.here(),
                format!("expected '{tok}', found {}", self.c.describe()),
            )
        }
    }

    fn func(&mut self) -> ParseResult<Func> {
        self.c.skip_ws();
        let start = self.c.pos();
        let kw = self.c.word();
        if kw != "func" && kw != "func.func" {
            return self.err(
                Span::new(start, self.c.pos().max(start + 1)),
                format!(
                    "expected 'func', found {}",
                    if kw.is_empty() {
                        self.c.describe_at(start)
                    } else {
                        format!("'{kw}'")
                    }
                ),
            );
        }
        self.expect("@")?;
        let name = self.symbol_name()?;
        self.expect("(")?;
        let mut scope = Scope {
            names: HashMap::new(),
        };
        let mut params = Vec::new();
        let mut param_names = Vec::new();
        self.c.skip_ws();
        if !self.c.eat(")") {
            loop {
                self.c.skip_ws();
                let at = self.c.pos();
                let (pname, _) = self.value_def()?;
                self.expect(":")?;
                let ty = self.tensor_type()?;
                self.opt_loc()?;
                params.push(ty);
                param_names.push((pname, at));
                self.c.skip_ws();
                if self.c.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        let mut f = Func::new(name, &params);
        f.loc = self.file_loc(start);
        for ((pname, at), &v) in param_names.into_iter().zip(&f.params) {
            if scope.names.insert(pname.clone(), vec![v]).is_some() {
                return self.err(
                    Span::new(at, at + pname.len() + 1),
                    format!("redefinition of value '%{pname}'"),
                );
            }
        }
        self.c.skip_ws();
        let mut declared_results = None;
        if self.c.eat("->") {
            declared_results = Some(self.type_list_or_one()?);
        }
        self.c.skip_ws();
        if self.c.peek_word() == "attributes" {
            self.c.word();
            self.attr_dict()?;
        }
        self.expect("{")?;
        loop {
            self.c.skip_ws();
            if self.c.at_end() {
                return self.err(
                    self.c.here(),
                    format!(
                        "expected '}}' to close function '@{}', found the end of the input",
                        f.name
                    ),
                );
            }
            if self.c.peek_is("}") {
                return self.err(
                    self.c.here(),
                    format!("function '@{}' has no return", f.name),
                );
            }
            let word = self.c.peek_word();
            if word == "return" || word == "func.return" || self.c.peek_is("\"func.return\"") {
                self.ret(&mut f, &scope)?;
                break;
            }
            self.op(&mut f, &mut scope)?;
        }
        self.expect("}")?;
        if let Some(loc) = self.opt_loc()? {
            f.loc = loc;
        }
        if let Some(decl) = declared_results {
            let got = f.result_types();
            if decl != got {
                return self.err(
                    Span::new(start, start + kw.len()),
                    format!(
                        "function '@{}' declares results ({}) but returns ({})",
                        f.name,
                        join_types(&decl),
                        join_types(&got)
                    ),
                );
            }
        }
        Ok(f)
    }

    fn ret(&mut self, f: &mut Func, scope: &Scope) -> ParseResult<()> {
        let generic = self.c.eat("\"func.return\"");
        if !generic {
            self.c.word();
        }
        self.c.skip_ws();
        let mut vals = Vec::new();
        if generic {
            self.expect("(")?;
            vals = self.operand_list(f, scope, ")")?;
        } else if self.c.peek_is("%") {
            vals = self.operand_list(f, scope, "")?;
        }
        self.c.skip_ws();
        if self.c.eat(":") {
            let at = self.c.here();
            let tys = if generic {
                let tys = self.paren_types()?;
                self.expect("->")?;
                self.expect("(")?;
                self.expect(")")?;
                tys
            } else {
                self.types_until_newline()?
            };
            let got: Vec<_> = vals.iter().map(|&v| f.ty(v).clone()).collect();
            if tys != got {
                return self.err(
                    at,
                    format!(
                        "return types ({}) do not match the returned values ({})",
                        join_types(&tys),
                        join_types(&got)
                    ),
                );
            }
        }
        self.opt_loc()?;
        f.rets = vals;
        Ok(())
    }

    fn op(&mut self, f: &mut Func, scope: &mut Scope) -> ParseResult<()> {
        self.c.skip_ws();
        let start = self.c.pos();
        // Results.
        let mut defs: Vec<(String, usize, usize)> = Vec::new();
        loop {
            self.c.skip_ws();
            let at = self.c.pos();
            if !self.c.peek_is("%") {
                return self.err(
                    self.c.here(),
                    format!(
                        "expected an op result like '%0 =', found {}",
                        self.c.describe()
                    ),
                );
            }
            let (name, count) = self.value_def()?;
            defs.push((name, count, at));
            self.c.skip_ws();
            if self.c.eat("=") {
                break;
            }
            self.expect(",")?;
        }
        self.c.skip_ws();
        let name_at = self.c.pos();
        let generic = self.c.peek_is("\"");
        let opname = if generic {
            self.string()?
        } else {
            self.c.word().to_string()
        };
        let name_span = Span::new(name_at, self.c.pos().max(name_at + 1));
        if opname.is_empty() {
            return self.err(
                name_span,
                format!("expected an op name, found {}", self.c.describe_at(name_at)),
            );
        }
        let Some(opcode) = Opcode::from_name(&opname) else {
            let hint = suggest(&opname)
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_default();
            return self.err(name_span, format!("unknown op '{opname}'{hint}"));
        };
        let args = if generic {
            self.expect("(")?;
            self.operand_list(f, scope, ")")?
        } else {
            self.c.skip_ws();
            if self.c.peek_is("%") {
                self.operand_list(f, scope, "")?
            } else {
                Vec::new()
            }
        };
        self.c.skip_ws();
        let attrs = if self.c.peek_is("{") {
            self.attr_dict()?
        } else {
            Attrs::new()
        };
        self.expect(":")?;
        let result_types = if generic {
            let at = self.c.here();
            let arg_tys = self.paren_types()?;
            let got: Vec<_> = args.iter().map(|&v| f.ty(v).clone()).collect();
            if arg_tys != got {
                return self.err(
                    at,
                    format!(
                        "'{opname}' op operand types ({}) do not match the operands' types ({})",
                        join_types(&arg_tys),
                        join_types(&got)
                    ),
                );
            }
            self.expect("->")?;
            self.type_list_or_one()?
        } else {
            self.types_until_newline()?
        };
        let loc = self.opt_loc()?.unwrap_or_else(|| self.file_loc(start));
        // Saturating: `%0:N` counts come from the text and may be huge.
        let declared = defs.iter().fold(0usize, |n, d| n.saturating_add(d.1));
        if declared != result_types.len() {
            return self.err(
                Span::new(start, name_span.end),
                format!(
                    "'{opname}' op defines {declared} result name(s) but has {} result type(s)",
                    result_types.len()
                ),
            );
        }
        let op = f.append_op(opcode, args, attrs, result_types, loc);
        let mut results = f.ops[op].results.clone().into_iter();
        for (name, count, at) in defs {
            let vals: Vec<Value> = results.by_ref().take(count).collect();
            if scope.names.insert(name.clone(), vals).is_some() {
                return self.err(
                    Span::new(at, at + name.len() + 1),
                    format!("redefinition of value '%{name}'"),
                );
            }
        }
        Ok(())
    }

    /// `%name` or `%name:N` at a definition site.
    fn value_def(&mut self) -> ParseResult<(String, usize)> {
        let at = self.c.pos();
        if !self.c.eat("%") {
            return self.err(
                self.c.here(),
                format!("expected a value name, found {}", self.c.describe()),
            );
        }
        let name = self.c.ident();
        if name.is_empty() {
            return self.err(Span::new(at, at + 1), "expected a name after '%'");
        }
        let name = name.to_string();
        if self.c.eat(":") {
            // `%0:2` groups only when a number follows directly.
            if let Some(n) = self.c.uint() {
                if n == 0 {
                    return self.err(
                        Span::new(at, self.c.pos()),
                        "a result group needs at least one result",
                    );
                }
                return Ok((name, n as usize));
            }
            self.c.unread(1);
        }
        Ok((name, 1))
    }

    fn operand_list(&mut self, f: &Func, scope: &Scope, close: &str) -> ParseResult<Vec<Value>> {
        let mut vals = Vec::new();
        self.c.skip_ws();
        if !close.is_empty() && self.c.eat(close) {
            return Ok(vals);
        }
        loop {
            self.c.skip_ws();
            let at = self.c.pos();
            if !self.c.eat("%") {
                return self.err(
                    self.c.here(),
                    format!("expected an operand, found {}", self.c.describe()),
                );
            }
            let name = self.c.ident().to_string();
            let mut idx = 0;
            if self.c.eat("#") {
                idx = self.c.uint().ok_or_else(|| ParseError {
                    message: "expected a result number after '#'".into(),
                    span: self.c.here(),
                })? as usize;
            }
            let span = Span::new(at, self.c.pos());
            let Some(group) = scope.names.get(&name) else {
                return self.err(span, format!("use of undefined value '%{name}'"));
            };
            let Some(&v) = group.get(idx) else {
                return self.err(
                    span,
                    format!(
                        "'%{name}' has {} result(s); there is no #{idx}",
                        group.len()
                    ),
                );
            };
            let _ = f;
            vals.push(v);
            self.c.skip_ws();
            if !close.is_empty() && self.c.eat(close) {
                break;
            }
            if !self.c.eat(",") {
                if close.is_empty() {
                    break;
                }
                return self.err(
                    self.c.here(),
                    format!("expected ',' or '{close}', found {}", self.c.describe()),
                );
            }
        }
        Ok(vals)
    }

    fn symbol_name(&mut self) -> ParseResult<String> {
        if self.c.peek_is("\"") {
            return self.string();
        }
        let n = self.c.ident();
        if n.is_empty() {
            return self.err(
                self.c.here(),
                format!("expected a function name, found {}", self.c.describe()),
            );
        }
        Ok(n.to_string())
    }

    fn string(&mut self) -> ParseResult<String> {
        self.c.skip_ws();
        match self.c.string() {
            Ok(s) => Ok(s),
            Err((span, msg)) => self.err(span, msg),
        }
    }

    fn tensor_type(&mut self) -> ParseResult<TensorType> {
        self.c.skip_ws();
        let at = self.c.pos();
        let w = self.c.word();
        if w != "tensor" {
            let found = if w.is_empty() {
                self.c.describe_at(at)
            } else {
                format!("'{w}'")
            };
            return self.err(
                Span::new(at, self.c.pos().max(at + 1)),
                format!("expected a tensor type, found {found}"),
            );
        }
        if !self.c.eat("<") {
            return self.err(
                self.c.here(),
                format!("expected '<' after 'tensor', found {}", self.c.describe()),
            );
        }
        let mut shape = Vec::new();
        loop {
            let dat = self.c.pos();
            if self.c.eat("?") {
                return self.err(
                    Span::new(dat, dat + 1),
                    "dynamic dimensions are not supported; bind every dimension to a size",
                );
            }
            if let Some(d) = self.c.uint() {
                if d > i64::MAX as u64 / 2 {
                    return self.err(
                        Span::new(dat, self.c.pos()),
                        format!("dimension {d} is too large"),
                    );
                }
                shape.push(d as i64);
                if !self.c.eat("x") {
                    return self.err(
                        self.c.here(),
                        format!(
                            "expected 'x' after a dimension, found {}",
                            self.c.describe()
                        ),
                    );
                }
                continue;
            }
            break;
        }
        let eat = self.c.pos();
        let e = self.c.ident();
        let Some(elem) = Elem::from_name(e) else {
            let found = if e.is_empty() {
                self.c.describe_at(eat)
            } else {
                format!("'{e}'")
            };
            return self.err(Span::new(eat, self.c.pos().max(eat + 1)), format!("expected an element type (f32, f16, bf16, f8E4M3FN, f8E5M2, f4E2M1FN, i64, i32, i16, ui16, i8, ui8, i4, ui4, i1, f64), found {found}"));
        };
        if !self.c.eat(">") {
            return self.err(
                self.c.here(),
                format!(
                    "expected '>' to close the tensor type, found {}",
                    self.c.describe()
                ),
            );
        }
        let ty = TensorType::new(shape, elem);
        if ty
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .is_none_or(|n| n > (1u64 << 40))
        {
            return self.err(
                Span::new(at, self.c.pos()),
                format!("{ty} has too many elements"),
            );
        }
        Ok(ty)
    }

    fn paren_types(&mut self) -> ParseResult<Vec<TensorType>> {
        self.expect("(")?;
        let mut tys = Vec::new();
        self.c.skip_ws();
        if self.c.eat(")") {
            return Ok(tys);
        }
        loop {
            tys.push(self.tensor_type()?);
            self.c.skip_ws();
            if self.c.eat(")") {
                return Ok(tys);
            }
            self.expect(",")?;
        }
    }

    fn type_list_or_one(&mut self) -> ParseResult<Vec<TensorType>> {
        self.c.skip_ws();
        if self.c.peek_is("(") {
            self.paren_types()
        } else {
            Ok(vec![self.tensor_type()?])
        }
    }

    /// Comma-separated types after a custom op's `:`.
    fn types_until_newline(&mut self) -> ParseResult<Vec<TensorType>> {
        let mut tys = vec![self.tensor_type()?];
        loop {
            self.c.skip_inline_ws();
            if !self.c.eat(",") {
                return Ok(tys);
            }
            tys.push(self.tensor_type()?);
        }
    }

    fn attr_dict(&mut self) -> ParseResult<Attrs> {
        self.expect("{")?;
        let mut attrs = Attrs::new();
        self.c.skip_ws();
        if self.c.eat("}") {
            return Ok(attrs);
        }
        loop {
            self.c.skip_ws();
            let at = self.c.pos();
            let name = if self.c.peek_is("\"") {
                self.string()?
            } else {
                self.c.ident().to_string()
            };
            if name.is_empty() {
                return self.err(
                    self.c.here(),
                    format!("expected an attribute name, found {}", self.c.describe()),
                );
            }
            if attrs.get(&name).is_some() {
                return self.err(
                    Span::new(at, self.c.pos()),
                    format!("attribute '{name}' occurs more than once"),
                );
            }
            self.c.skip_ws();
            let value = if self.c.eat("=") {
                self.attr_value()?
            } else {
                Attr::Bool(true)
            };
            attrs.set(name, value);
            self.c.skip_ws();
            if self.c.eat("}") {
                return Ok(attrs);
            }
            self.expect(",")?;
        }
    }

    fn attr_value(&mut self) -> ParseResult<Attr> {
        self.c.skip_ws();
        let at = self.c.pos();
        if self.c.peek_is("\"") {
            return Ok(Attr::Str(self.string()?));
        }
        if self.c.peek_is("[") {
            return self.bracket_array();
        }
        let w = self.c.peek_word();
        match w {
            "true" | "false" => {
                self.c.word();
                return Ok(Attr::Bool(w == "true"));
            }
            "array" => return self.dense_array(),
            "dense" | "dense_resource" => return self.dense(),
            _ => {}
        }
        let Some(num) = self.c.number() else {
            return self.err(
                self.c.here(),
                format!("expected an attribute value, found {}", self.c.describe()),
            );
        };
        self.c.skip_inline_ws();
        let ty = if self.c.peek_is(":") && !self.c.peek_is("::") {
            self.c.eat(":");
            self.c.skip_ws();
            let tat = self.c.pos();
            let t = self.c.ident();
            match Elem::from_name(t) {
                Some(e)
                    if e.is_int()
                        || matches!(e, Elem::F32 | Elem::F64 | Elem::F16 | Elem::BF16) =>
                {
                    Some(e)
                }
                _ => {
                    return self.err(
                        Span::new(tat, self.c.pos().max(tat + 1)),
                        format!("expected a scalar type (i64 or f32, ...) after ':', found '{t}'"),
                    )
                }
            }
        } else {
            None
        };
        let span = Span::new(at, self.c.pos());
        match (num, ty) {
            (cursor::Number::Int(v), None) => Ok(Attr::Int(v)),
            (cursor::Number::Int(v), Some(e)) if e.is_int() => Ok(Attr::Int(v)),
            (cursor::Number::Int(v), Some(e)) => Ok(float_attr(v as f64, e)),
            (cursor::Number::Float(v), None) => Ok(Attr::Float(v, Elem::F64)),
            (cursor::Number::Float(v), Some(e)) if e.is_float() => Ok(float_attr(v, e)),
            (cursor::Number::Hex(bits), Some(Elem::F32)) => {
                Ok(Attr::Float(f32::from_bits(bits as u32) as f64, Elem::F32))
            }
            (cursor::Number::Hex(bits), Some(Elem::F64)) => {
                Ok(Attr::Float(f64::from_bits(bits), Elem::F64))
            }
            (cursor::Number::Hex(bits), Some(e)) if e.is_int() => Ok(Attr::Int(bits as i64)),
            _ => self.err(span, "this number does not fit the type after ':'"),
        }
    }

    fn bracket_array(&mut self) -> ParseResult<Attr> {
        let at = self.c.pos();
        self.expect("[")?;
        // Integers stay exact (`i64::MAX` ends are common); floats only if any is one.
        let mut ints = Vec::new();
        let mut vals = Vec::new();
        let mut all_int = true;
        self.c.skip_ws();
        if !self.c.eat("]") {
            loop {
                self.c.skip_ws();
                match self.c.number() {
                    Some(cursor::Number::Int(v)) => {
                        ints.push(v);
                        vals.push(v as f64)
                    }
                    Some(cursor::Number::Float(v)) => {
                        all_int = false;
                        vals.push(v)
                    }
                    _ => {
                        return self.err(
                            self.c.here(),
                            format!(
                                "expected a number in the array, found {}",
                                self.c.describe()
                            ),
                        )
                    }
                }
                self.c.skip_ws();
                if self.c.eat("]") {
                    break;
                }
                self.expect(",")?;
            }
        }
        let _ = at;
        Ok(if all_int {
            Attr::Ints(ints)
        } else {
            Attr::Floats(vals)
        })
    }

    fn dense_array(&mut self) -> ParseResult<Attr> {
        self.c.word();
        self.expect("<")?;
        self.c.skip_ws();
        let tat = self.c.pos();
        let t = self.c.ident().to_string();
        let float = match t.as_str() {
            "i64" | "i32" | "i16" | "i8" => false,
            "f64" | "f32" => true,
            _ => {
                return self.err(
                    Span::new(tat, self.c.pos().max(tat + 1)),
                    format!("expected i64 or f64 in 'array<...>', found '{t}'"),
                )
            }
        };
        let mut ints = Vec::new();
        let mut floats = Vec::new();
        self.c.skip_ws();
        if self.c.eat(":") {
            loop {
                self.c.skip_ws();
                match self.c.number() {
                    Some(cursor::Number::Int(v)) if !float => ints.push(v),
                    Some(cursor::Number::Int(v)) => floats.push(v as f64),
                    Some(cursor::Number::Float(v)) if float => floats.push(v),
                    Some(cursor::Number::Hex(b)) if float => floats.push(if t == "f32" {
                        f32::from_bits(b as u32) as f64
                    } else {
                        f64::from_bits(b)
                    }),
                    _ => {
                        return self.err(
                            self.c.here(),
                            format!(
                                "expected {} in the array, found {}",
                                if float { "a float" } else { "an integer" },
                                self.c.describe()
                            ),
                        )
                    }
                }
                self.c.skip_ws();
                if !self.c.eat(",") {
                    break;
                }
            }
        }
        self.expect(">")?;
        Ok(if float {
            Attr::Floats(floats)
        } else {
            Attr::Ints(ints)
        })
    }

    fn dense(&mut self) -> ParseResult<Attr> {
        let kw = self.c.word();
        self.expect("<")?;
        let at = self.c.pos();
        if kw == "dense_resource" {
            self.c.skip_ws();
            let w = self.c.ident();
            if w != "__elided__" {
                return self.err(
                    Span::new(at, self.c.pos().max(at + 1)),
                    "only elided resources ('dense_resource<__elided__>') are supported",
                );
            }
            self.expect(">")?;
            self.expect(":")?;
            let ty = self.tensor_type()?;
            return Ok(Attr::Dense(DenseAttr { ty, values: None }));
        }
        let mut nums = Vec::new();
        self.dense_elems(&mut nums)?;
        self.expect(">")?;
        self.expect(":")?;
        let ty = self.tensor_type()?;
        let vals: Vec<f64> = nums.into_iter().map(|x| dense_number(x, ty.elem)).collect();
        let n = ty.num_elements();
        let mut values = if vals.len() == n {
            vals
        } else if vals.len() == 1 && n <= MAX_SPLAT {
            vec![vals[0]; n]
        } else if vals.len() == 1 {
            return self.err(
                Span::new(at, self.c.pos()),
                format!("splat literal of {ty} is too large to hold ({n} elements, at most {MAX_SPLAT}); use 'dense_resource<__elided__>'"),
            );
        } else {
            return self.err(
                Span::new(at, self.c.pos()),
                format!("dense literal has {} elements but {ty} has {n}", vals.len()),
            );
        };
        if ty.elem.is_int() && values.iter().any(|v| v.fract() != 0.0) {
            return self.err(
                Span::new(at, self.c.pos()),
                format!("dense literal of {ty} holds a non-integer value"),
            );
        }
        for v in &mut values {
            *v = crate::numeric::round_to(*v, ty.elem);
        }
        if ty.elem == Elem::F4E2M1FN && values.iter().any(|v| v.is_nan()) {
            return self.err(
                Span::new(at, self.c.pos()),
                format!("dense literal of {ty} holds a NaN, which f4E2M1FN cannot encode"),
            );
        }
        Ok(Attr::Dense(DenseAttr {
            ty,
            values: Some(values),
        }))
    }

    fn dense_elems(&mut self, out: &mut Vec<cursor::Number>) -> ParseResult<()> {
        self.c.skip_ws();
        if self.c.eat("[") {
            self.c.skip_ws();
            if self.c.eat("]") {
                return Ok(());
            }
            loop {
                self.dense_elems(out)?;
                self.c.skip_ws();
                if self.c.eat("]") {
                    return Ok(());
                }
                self.expect(",")?;
            }
        }
        match self.c.peek_word() {
            "true" => {
                self.c.word();
                out.push(cursor::Number::Int(1));
                return Ok(());
            }
            "false" => {
                self.c.word();
                out.push(cursor::Number::Int(0));
                return Ok(());
            }
            _ => {}
        }
        match self.c.number() {
            Some(x) => out.push(x),
            None => {
                return self.err(
                    self.c.here(),
                    format!(
                        "expected a number in the dense literal, found {}",
                        self.c.describe()
                    ),
                )
            }
        }
        Ok(())
    }

    fn opt_loc(&mut self) -> ParseResult<Option<Loc>> {
        self.c.skip_inline_ws();
        if self.c.peek_word() != "loc" {
            return Ok(None);
        }
        self.c.word();
        self.expect("(")?;
        let l = self.loc_inner()?;
        self.expect(")")?;
        Ok(Some(l))
    }

    fn loc_inner(&mut self) -> ParseResult<Loc> {
        self.c.skip_ws();
        if self.c.peek_is("\"") {
            let s = self.string()?;
            if self.c.eat(":") {
                let line = self.c.uint();
                let ok = line.is_some() && self.c.eat(":");
                let col = if ok { self.c.uint() } else { None };
                let (Some(line), Some(col)) = (line, col) else {
                    return self.err(
                        self.c.here(),
                        "expected 'line:column' after the file name in a location",
                    );
                };
                return Ok(Loc::File {
                    file: s,
                    line: line as u32,
                    col: col as u32,
                });
            }
            let child = if self.c.eat("(") {
                let c = self.loc_inner()?;
                self.expect(")")?;
                Some(Box::new(c))
            } else {
                None
            };
            return Ok(Loc::Name { name: s, child });
        }
        let at = self.c.pos();
        match self.c.word() {
            "unknown" => Ok(Loc::Unknown),
            "fused" => {
                self.expect("[")?;
                let mut v = Vec::new();
                loop {
                    v.push(self.loc_inner()?);
                    self.c.skip_ws();
                    if self.c.eat("]") {
                        break;
                    }
                    self.expect(",")?;
                }
                Ok(Loc::Fused(v))
            }
            w => self.err(
                Span::new(at, self.c.pos().max(at + 1)),
                format!(
                    "expected a location, found {}",
                    if w.is_empty() {
                        self.c.describe_at(at)
                    } else {
                        format!("'{w}'")
                    }
                ),
            ),
        }
    }
}

/// The most elements a splat literal (`dense<0.0> : tensor<...>`) expands to. Constants hold
/// every element, so a short text must not ask for terabytes.
const MAX_SPLAT: usize = 1 << 24;

/// An element of a dense literal of `elem`. A hexadecimal one is the element type's bit
/// pattern, as in MLIR (`0x7C00` is an f16 infinity; integers take the value itself); a
/// pattern wider than a narrow float type is read as `f32` bits, which is how the printer
/// writes values the type cannot encode (NaN in `f4E2M1FN`).
fn dense_number(x: cursor::Number, elem: Elem) -> f64 {
    match x {
        cursor::Number::Int(v) => v as f64,
        cursor::Number::Float(v) => v,
        cursor::Number::Hex(b) if elem.is_int() => b as i64 as f64,
        cursor::Number::Hex(b) => super::attrs::float_from_bits(b, elem)
            .unwrap_or_else(|| f32::from_bits(b as u32) as f64),
    }
}

/// A float attribute of type `e`: an `f32` attribute holds an `f32` value (rounded here, as
/// dense literals are), so that printing it in `f32` precision and parsing it back is exact.
fn float_attr(v: f64, e: Elem) -> Attr {
    match float_attr_ty(e) {
        Elem::F32 => Attr::Float(v as f32 as f64, Elem::F32),
        ty => Attr::Float(v, ty),
    }
}

fn float_attr_ty(e: Elem) -> Elem {
    if e == Elem::F64 {
        Elem::F64
    } else {
        Elem::F32
    }
}

fn join_types(tys: &[TensorType]) -> String {
    tys.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The known op name closest to `name` (edit distance at most 3), for "did you mean".
fn suggest(name: &str) -> Option<&'static str> {
    Opcode::all()
        .map(|o| (edit_distance(name, o.name()), o.name()))
        .filter(|&(d, _)| d <= 3)
        .min()
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
