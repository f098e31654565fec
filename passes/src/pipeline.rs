//! Pipeline strings: MLIR's textual pass pipeline syntax, and pass options.
//!
//! ```text
//! pipeline := element (',' element)*         (whitespace around elements is ignored)
//! element  := pass-name options?
//! options  := '{' (option (' '+ option)*)? '}'
//! option   := key ('=' value)?                (value: bare word or "quoted string")
//! ```
//!
//! e.g. `canonicalize{max-fold-elements=64},cse,dce`. The empty string is the empty
//! pipeline. Options are space-separated inside braces, as in MLIR; a key without a value
//! is a flag set to true. Every error carries the byte span of the offending part, and
//! [`PipelineError::render`] shows it under the pipeline text with a caret, like a parse
//! error in an IR file.

use std::cell::RefCell;

use lowbit_dialects::ir::diag::{render, Span};
use thiserror::Error;

use crate::PassInfo;

/// What is wrong with a pipeline.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PipelineErrorKind {
    /// The text does not follow the pipeline grammar.
    #[error("{0}")]
    Syntax(String),
    /// No pass has this name.
    #[error("unknown pass '{name}'; known passes: {known}")]
    UnknownPass {
        /// The name given.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// The pass has no such option.
    #[error("unknown option '{option}' for pass '{pass}'; {}", known_options(.known))]
    UnknownOption {
        /// The pass.
        pass: &'static str,
        /// The option given.
        option: String,
        /// The options the pass knows.
        known: Vec<&'static str>,
    },
    /// An option appears twice in one element.
    #[error("option '{option}' of pass '{pass}' is given more than once")]
    DuplicateOption {
        /// The pass.
        pass: &'static str,
        /// The option.
        option: String,
    },
    /// An option's value does not parse.
    #[error("option '{option}' of pass '{pass}' expects {expected}, found '{value}'")]
    BadValue {
        /// The pass.
        pass: &'static str,
        /// The option.
        option: String,
        /// What it takes ("a non-negative integer").
        expected: &'static str,
        /// What was given.
        value: String,
    },
}

fn known_options(known: &[&'static str]) -> String {
    if known.is_empty() {
        "it takes no options".to_string()
    } else {
        format!("known options: {}", known.join(", "))
    }
}

/// A pipeline error with the pipeline text and the span it is about.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{kind}")]
pub struct PipelineError {
    /// What is wrong.
    pub kind: PipelineErrorKind,
    /// The offending bytes of `pipeline`.
    pub span: Span,
    /// The whole pipeline string.
    pub pipeline: String,
}

impl PipelineError {
    /// Renders the error as `<pipeline>:1:COL: error: message`, then the pipeline string
    /// with a caret under the offending part.
    pub fn render(&self) -> String {
        render(
            &self.pipeline,
            "<pipeline>",
            self.span,
            &self.kind.to_string(),
            0,
        )
    }
}

/// One option as written: `key=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OptEntry {
    key: String,
    key_span: Span,
    value: Option<String>,
    value_span: Span,
}

/// The options given to one pass in a pipeline, with typed accessors that record which
/// keys the pass knows.
#[derive(Debug)]
pub struct PassOptions {
    pass: &'static str,
    pipeline: String,
    entries: Vec<OptEntry>,
    queried: RefCell<Vec<&'static str>>,
}

impl PassOptions {
    /// No options (for building passes outside a pipeline string).
    pub fn empty(pass: &'static str) -> PassOptions {
        PassOptions {
            pass,
            pipeline: String::new(),
            entries: Vec::new(),
            queried: RefCell::new(Vec::new()),
        }
    }

    fn entry(&self, key: &'static str) -> Option<&OptEntry> {
        let mut q = self.queried.borrow_mut();
        if !q.contains(&key) {
            q.push(key);
        }
        self.entries.iter().find(|e| e.key == key)
    }

    fn bad(&self, e: &OptEntry, expected: &'static str) -> PipelineError {
        PipelineError {
            kind: PipelineErrorKind::BadValue {
                pass: self.pass,
                option: e.key.clone(),
                expected,
                value: e.value.clone().unwrap_or_default(),
            },
            span: if e.value.is_some() {
                e.value_span
            } else {
                e.key_span
            },
            pipeline: self.pipeline.clone(),
        }
    }

    /// The error for option `key`, whose value the pass read but cannot accept: it names
    /// `expected` and points at the value in the pipeline (or at nothing when the option
    /// was not given, e.g. a default that conflicts with another option).
    pub fn invalid(&self, key: &str, expected: &'static str) -> PipelineError {
        match self.entries.iter().find(|e| e.key == key) {
            Some(e) => self.bad(e, expected),
            None => PipelineError {
                kind: PipelineErrorKind::BadValue {
                    pass: self.pass,
                    option: key.to_string(),
                    expected,
                    value: String::new(),
                },
                span: Span { start: 0, end: 0 },
                pipeline: self.pipeline.clone(),
            },
        }
    }

    /// A non-negative integer option; `None` when absent.
    pub fn usize(&self, key: &'static str) -> Result<Option<usize>, PipelineError> {
        let Some(e) = self.entry(key) else {
            return Ok(None);
        };
        match e.value.as_deref().map(str::parse::<usize>) {
            Some(Ok(v)) => Ok(Some(v)),
            _ => Err(self.bad(e, "a non-negative integer")),
        }
    }

    /// A boolean option: absent is false, a bare key is true, else `true`/`false`/`1`/`0`.
    pub fn flag(&self, key: &'static str) -> Result<bool, PipelineError> {
        let Some(e) = self.entry(key) else {
            return Ok(false);
        };
        match e.value.as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(_) => Err(self.bad(e, "true or false")),
        }
    }

    /// A string option; `None` when absent.
    pub fn string(&self, key: &'static str) -> Result<Option<&str>, PipelineError> {
        let Some(e) = self.entry(key) else {
            return Ok(None);
        };
        match &e.value {
            Some(v) => Ok(Some(v)),
            None => Err(self.bad(e, "a value")),
        }
    }

    /// Fails on the first option the pass never asked about.
    pub(crate) fn check_known(&self) -> Result<(), PipelineError> {
        let known = self.queried.borrow();
        match self
            .entries
            .iter()
            .find(|e| !known.contains(&e.key.as_str()))
        {
            None => Ok(()),
            Some(e) => Err(PipelineError {
                kind: PipelineErrorKind::UnknownOption {
                    pass: self.pass,
                    option: e.key.clone(),
                    known: known.clone(),
                },
                span: e.key_span,
                pipeline: self.pipeline.clone(),
            }),
        }
    }

    /// The options as written back in pipeline syntax (` {k=v k2}` or empty).
    pub(crate) fn to_text(&self) -> String {
        if self.entries.is_empty() {
            return String::new();
        }
        let items: Vec<String> = self
            .entries
            .iter()
            .map(|e| match &e.value {
                None => e.key.clone(),
                Some(v) if v.is_empty() || v.contains([' ', '{', '}', ',', '"']) => {
                    format!("{}={v:?}", e.key)
                }
                Some(v) => format!("{}={v}", e.key),
            })
            .collect();
        format!("{{{}}}", items.join(" "))
    }
}

/// One element of a parsed pipeline.
#[derive(Debug)]
pub struct Element {
    /// The registered pass.
    pub info: &'static PassInfo,
    /// Its options.
    pub options: PassOptions,
    /// The span of the pass name.
    pub span: Span,
}

/// Parses a pipeline string into its elements (pass names resolved, options not yet
/// checked against the passes: that is [`crate::PassManager::parse`]'s job).
pub fn parse(pipeline: &str) -> Result<Vec<Element>, PipelineError> {
    let mut p = Parser {
        src: pipeline,
        pos: 0,
    };
    let mut out = Vec::new();
    p.skip_ws();
    if p.at_end() {
        return Ok(out);
    }
    loop {
        out.push(p.element()?);
        p.skip_ws();
        if p.at_end() {
            return Ok(out);
        }
        if !p.eat(',') {
            let found = p.describe();
            return Err(p.syntax(
                p.here(),
                format!("expected ',' or the end of the pipeline, found {found}"),
            ));
        }
        p.skip_ws();
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn here(&self) -> Span {
        let w = self.peek().map_or(0, char::len_utf8);
        Span::new(self.pos, self.pos + w)
    }

    fn describe(&self) -> String {
        match self.peek() {
            None => "the end of the pipeline".to_string(),
            Some(c) => format!("'{c}'"),
        }
    }

    fn syntax(&self, span: Span, message: String) -> PipelineError {
        PipelineError {
            kind: PipelineErrorKind::Syntax(message),
            span,
            pipeline: self.src.to_string(),
        }
    }

    /// `[A-Za-z0-9_.-]+`.
    fn word(&mut self) -> (String, Span) {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            self.pos += 1;
        }
        (
            self.src[start..self.pos].to_string(),
            Span::new(start, self.pos),
        )
    }

    fn element(&mut self) -> Result<Element, PipelineError> {
        let (name, span) = self.word();
        if name.is_empty() {
            let found = self.describe();
            return Err(self.syntax(self.here(), format!("expected a pass name, found {found}")));
        }
        if self.peek() == Some('(') {
            return Err(self.syntax(span, format!(
                "nested pipelines such as '{name}(...)' are not supported; list the passes directly, as in 'canonicalize,cse'"
            )));
        }
        let Some(info) = crate::lookup(&name) else {
            return Err(PipelineError {
                kind: PipelineErrorKind::UnknownPass {
                    name,
                    known: crate::known_passes(),
                },
                span,
                pipeline: self.src.to_string(),
            });
        };
        let mut options = PassOptions {
            pass: info.name,
            pipeline: self.src.to_string(),
            entries: Vec::new(),
            queried: RefCell::new(Vec::new()),
        };
        self.skip_ws();
        if self.peek() == Some('{') {
            options.entries = self.options(info.name)?;
        }
        Ok(Element {
            info,
            options,
            span,
        })
    }

    fn options(&mut self, pass: &'static str) -> Result<Vec<OptEntry>, PipelineError> {
        let open = self.here();
        self.eat('{');
        let mut entries: Vec<OptEntry> = Vec::new();
        loop {
            self.skip_ws();
            if self.eat('}') {
                return Ok(entries);
            }
            if self.at_end() {
                return Err(self.syntax(
                    open,
                    "unclosed '{' in the options of pass '".to_string() + pass + "'",
                ));
            }
            let (key, key_span) = self.word();
            if key.is_empty() {
                let found = self.describe();
                return Err(self.syntax(
                    self.here(),
                    format!("expected an option name or '}}', found {found}"),
                ));
            }
            if entries.iter().any(|e| e.key == key) {
                return Err(PipelineError {
                    kind: PipelineErrorKind::DuplicateOption { pass, option: key },
                    span: key_span,
                    pipeline: self.src.to_string(),
                });
            }
            let (value, value_span) = if self.eat('=') {
                self.value()?
            } else {
                (None, key_span)
            };
            entries.push(OptEntry {
                key,
                key_span,
                value,
                value_span,
            });
            match self.peek() {
                Some(c) if c.is_whitespace() || c == '}' => {}
                None => {}
                Some(_) => {
                    let found = self.describe();
                    return Err(self.syntax(
                        self.here(),
                        format!("expected a space or '}}' after an option, found {found}"),
                    ));
                }
            }
        }
    }

    fn value(&mut self) -> Result<(Option<String>, Span), PipelineError> {
        let start = self.pos;
        if self.eat('"') {
            let mut s = String::new();
            loop {
                match self.peek() {
                    None => {
                        return Err(self.syntax(
                            Span::new(start, start + 1),
                            "unterminated string in an option value".into(),
                        ))
                    }
                    Some('"') => {
                        self.pos += 1;
                        return Ok((Some(s), Span::new(start, self.pos)));
                    }
                    Some('\\') if self.src[self.pos + 1..].starts_with(['"', '\\']) => {
                        s.push(self.src.as_bytes()[self.pos + 1] as char);
                        self.pos += 2;
                    }
                    Some(c) => {
                        s.push(c);
                        self.pos += c.len_utf8();
                    }
                }
            }
        }
        while self
            .peek()
            .is_some_and(|c| !c.is_whitespace() && !matches!(c, '{' | '}' | ',' | '"'))
        {
            self.pos += self.peek().map_or(1, char::len_utf8);
        }
        let span = Span::new(start, self.pos.max(start));
        if self.pos == start {
            let found = self.describe();
            return Err(self.syntax(
                self.here(),
                format!("expected a value after '=', found {found}"),
            ));
        }
        Ok((Some(self.src[start..self.pos].to_string()), span))
    }
}

#[cfg(test)]
mod tests {
    use crate::PassManager;

    fn err(pipeline: &str) -> String {
        PassManager::parse(pipeline)
            .expect_err("the pipeline must not parse")
            .render()
    }

    #[test]
    fn good_pipelines() {
        for (text, canonical) in [
            ("", ""),
            ("cse", "cse"),
            ("  canonicalize , cse,dce ", "canonicalize,cse,dce"),
            (
                "canonicalize{max-fold-elements=64}",
                "canonicalize{max-fold-elements=64}",
            ),
            (
                "canonicalize{ max-fold-elements=8  },lower-to-kernel",
                "canonicalize{max-fold-elements=8},lower-to-kernel",
            ),
            (
                "canonicalize {max-fold-elements=\"16\"}",
                "canonicalize{max-fold-elements=16}",
            ),
            ("cse{},cse", "cse,cse"),
        ] {
            let pm =
                PassManager::parse(text).unwrap_or_else(|e| panic!("{text:?}: {}", e.render()));
            assert_eq!(pm.to_string(), canonical);
        }
        assert_eq!(
            PassManager::parse("cse,dce,cse").unwrap().pass_names(),
            ["cse", "dce", "cse"]
        );
    }

    #[test]
    fn unknown_pass() {
        // The list of known passes grows with the registry: it is checked to name every
        // registered pass, in table order.
        let names: Vec<&str> = crate::PASSES.iter().map(|p| p.name).collect();
        for core in ["canonicalize", "cse", "dce", "lower-to-kernel"] {
            assert!(names.contains(&core), "{core} is not registered");
        }
        assert_eq!(
            err("canonicalize,fuse-qkv,dce"),
            format!(
                "<pipeline>:1:14: error: unknown pass 'fuse-qkv'; known passes: {}\n\
                 canonicalize,fuse-qkv,dce\n\
                 \x20            ^^^^^^^^\n",
                names.join(", ")
            )
        );
    }

    #[test]
    fn unknown_option() {
        assert_eq!(
            err("canonicalize{max-fold=3}"),
            "<pipeline>:1:14: error: unknown option 'max-fold' for pass 'canonicalize'; known options: max-fold-elements\n\
             canonicalize{max-fold=3}\n\
             \x20            ^^^^^^^^\n"
        );
        assert_eq!(
            err("cse{aggressive}"),
            "<pipeline>:1:5: error: unknown option 'aggressive' for pass 'cse'; it takes no options\n\
             cse{aggressive}\n\
             \x20   ^^^^^^^^^^\n"
        );
    }

    #[test]
    fn bad_value() {
        assert_eq!(
            err("canonicalize{max-fold-elements=lots}"),
            "<pipeline>:1:32: error: option 'max-fold-elements' of pass 'canonicalize' expects a non-negative integer, found 'lots'\n\
             canonicalize{max-fold-elements=lots}\n\
             \x20                              ^^^^\n"
        );
        assert_eq!(
            err("canonicalize{max-fold-elements=-1}"),
            "<pipeline>:1:32: error: option 'max-fold-elements' of pass 'canonicalize' expects a non-negative integer, found '-1'\n\
             canonicalize{max-fold-elements=-1}\n\
             \x20                              ^^\n"
        );
        assert_eq!(
            err("canonicalize{max-fold-elements=1 max-fold-elements=2}"),
            "<pipeline>:1:34: error: option 'max-fold-elements' of pass 'canonicalize' is given more than once\n\
             canonicalize{max-fold-elements=1 max-fold-elements=2}\n\
             \x20                                ^^^^^^^^^^^^^^^^^\n"
        );
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            err("cse,,dce"),
            "<pipeline>:1:5: error: expected a pass name, found ','\ncse,,dce\n    ^\n"
        );
        assert_eq!(
            err("cse,"),
            "<pipeline>:1:5: error: expected a pass name, found the end of the pipeline\ncse,\n    ^\n"
        );
        assert_eq!(
            err("canonicalize{max-fold-elements=3"),
            "<pipeline>:1:13: error: unclosed '{' in the options of pass 'canonicalize'\ncanonicalize{max-fold-elements=3\n            ^\n"
        );
        assert_eq!(
            err("cse dce"),
            "<pipeline>:1:5: error: expected ',' or the end of the pipeline, found 'd'\ncse dce\n    ^\n"
        );
        assert_eq!(
            err("func.func(cse)"),
            "<pipeline>:1:1: error: nested pipelines such as 'func.func(...)' are not supported; list the passes directly, as in 'canonicalize,cse'\n\
             func.func(cse)\n\
             ^^^^^^^^^\n"
        );
        assert_eq!(
            err("canonicalize{max-fold-elements=}"),
            "<pipeline>:1:32: error: expected a value after '=', found '}'\ncanonicalize{max-fold-elements=}\n                               ^\n"
        );
    }
}
