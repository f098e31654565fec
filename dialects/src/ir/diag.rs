//! Source positions and plain-text rendering of located errors.
//!
//! Errors carry byte spans; rendering turns a span into `file:line:col`, the source line and
//! a caret, the way `mlir-opt` and rustc show them. The CLI and the snapshot tests use the
//! same rendering, so snapshots show exactly what users see.

/// A byte range in a source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte (equal to `start` for a point).
    pub end: usize,
}

impl Span {
    /// A span.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `src`.
pub fn line_col(src: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(src.len());
    let before = &src[..floor_char(src, offset)];
    let line = before.matches('\n').count() as u32 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() as u32 + 1;
    (line, col)
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Renders `file:line:col: error: message`, the source line and a caret under `span`.
/// `line_offset` is added to line numbers (for split input files).
pub fn render(src: &str, file: &str, span: Span, message: &str, line_offset: u32) -> String {
    let (line, col) = line_col(src, span.start);
    let start = floor_char(src, span.start.min(src.len()));
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
    let text = &src[line_start..line_end];
    let width = src[start..floor_char(src, span.end.clamp(start, line_end))]
        .chars()
        .count()
        .max(1);
    let pad: String = text
        .chars()
        .take(col as usize - 1)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!(
        "{file}:{}:{col}: error: {message}\n{text}\n{pad}{}\n",
        line + line_offset,
        "^".repeat(width)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_under_the_span() {
        let src = "func @f() {\n  %0 = graph.nope\n}\n";
        let at = src.find("graph.nope").unwrap();
        let r = render(src, "a.mlir", Span::new(at, at + 10), "unknown op", 0);
        assert_eq!(
            r,
            "a.mlir:2:8: error: unknown op\n  %0 = graph.nope\n       ^^^^^^^^^^\n"
        );
    }
}
