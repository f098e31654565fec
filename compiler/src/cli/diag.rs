//! Rendering located errors for people: the one place that turns verifier, pass and
//! interpreter errors into text.
//!
//! An error whose location is a position in the input being processed renders as
//! `file:line:col: error: message`, then the source line and a caret under the op's name
//! (the same layout as parse errors, [`ParseError::render`]). A fused location points at
//! the first input position it holds; any other location is printed after the message.
//! The CLI and `--verify-diagnostics` (and so the snapshots) use these functions, so tests
//! see exactly what users see.
//!
//! [`ParseError::render`]: lowbit_dialects::ir::parse::ParseError::render

use lowbit_dialects::interp::InterpError;
use lowbit_dialects::ir::diag::{render, Span};
use lowbit_dialects::ir::verify::VerifyError;
use lowbit_dialects::ir::{Loc, Module};
use lowbit_passes::PassError;

/// The text an input came from: a whole file or one chunk of a split file.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    /// The text (the chunk, for a split file).
    pub text: &'a str,
    /// The file name as given on the command line.
    pub file: &'a str,
    /// Lines of the file before `text` (0 unless the file was split).
    pub line_offset: u32,
}

impl Source<'_> {
    /// The byte span of `op_name` on the line of `loc`, at or after its column; a one-byte
    /// span at the column when the name is not there. `None` when `loc` is not in this text.
    fn span_of(&self, loc: &Loc, op_name: Option<&str>) -> Option<Span> {
        let (line, col) = file_pos(loc, self.file)?;
        let line = line.checked_sub(self.line_offset)?.checked_sub(1)? as usize;
        let start = self
            .text
            .split_inclusive('\n')
            .take(line)
            .map(str::len)
            .sum::<usize>();
        let text = self.text.get(start..)?.split('\n').next()?;
        if line >= self.text.split_inclusive('\n').count() {
            return None;
        }
        let col_byte = text
            .char_indices()
            .nth(col.checked_sub(1)? as usize)
            .map_or(text.len(), |(i, _)| i);
        let at = start + col_byte;
        let width = op_name
            .and_then(|n| text[col_byte..].find(n).map(|i| (i, n.len())))
            .map_or(Span::new(at, at + 1), |(i, n)| {
                Span::new(at + i, at + i + n)
            });
        Some(width)
    }

    /// Renders `message` at `loc`.
    pub fn render_at(&self, loc: &Loc, op_name: Option<&str>, message: &str) -> String {
        match self.span_of(loc, op_name) {
            Some(span) => render(self.text, self.file, span, message, self.line_offset),
            None => match loc {
                Loc::Unknown => format!("error: {message}\n"),
                Loc::File { file, line, col } => format!("{file}:{line}:{col}: error: {message}\n"),
                other => format!("error: {message} at {other}\n"),
            },
        }
    }
}

/// The first file position inside `loc` that lies in `file`.
fn file_pos(loc: &Loc, file: &str) -> Option<(u32, u32)> {
    match loc {
        Loc::File { file: f, line, col } if f == file => Some((*line, *col)),
        Loc::File { .. } | Loc::Unknown => None,
        Loc::Name { child, .. } => child.as_deref().and_then(|c| file_pos(c, file)),
        Loc::Fused(v) => v.iter().find_map(|l| file_pos(l, file)),
    }
}

/// The name of the op a verifier error is about, found in `module`.
fn op_name(module: &Module, e: &VerifyError) -> Option<&'static str> {
    let f = module.func(&e.func)?;
    let op = e.op?;
    f.ops.get(op).map(|d| d.opcode.name())
}

/// Renders verifier errors, each with its source line and caret when it points into `src`.
/// `suffix` is appended to each message (e.g. ` (after pass 'cse')`).
pub fn render_verify_errors(
    errors: &[VerifyError],
    module: &Module,
    src: &Source<'_>,
    suffix: &str,
) -> String {
    errors
        .iter()
        .map(|e| {
            src.render_at(
                &e.loc,
                op_name(module, e),
                &format!("{}{suffix}", e.message),
            )
        })
        .collect()
}

/// Renders a pass failure.
pub fn render_pass_error(e: &PassError, module: &Module, src: &Source<'_>) -> String {
    match e {
        PassError::Verify { pass, errors } => {
            render_verify_errors(errors, module, src, &format!(" (after pass '{pass}')"))
        }
        PassError::Op {
            pass,
            op,
            loc,
            message,
        } => src.render_at(
            loc,
            Some(op),
            &format!("'{op}' op {message} (in pass '{pass}')"),
        ),
    }
}

/// Renders an interpreter failure.
pub fn render_interp_error(e: &InterpError, src: &Source<'_>) -> String {
    match e {
        InterpError::Op { op, loc, message } => {
            src.render_at(loc, Some(op), &format!("'{op}' op {message}"))
        }
        other => format!("error: {other}\n"),
    }
}
