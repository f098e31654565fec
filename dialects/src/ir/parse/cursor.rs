//! A byte cursor with the few lexical helpers the parser needs.
//!
//! Invariant: `pos` is always on a char boundary of `src` (every helper consumes ASCII
//! bytes only, or whole strings).

use crate::ir::diag::Span;

/// A number literal.
#[derive(Clone, Copy, Debug)]
pub(super) enum Number {
    Int(i64),
    Float(f64),
    Hex(u64),
}

pub(super) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$')
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a str) -> Self {
        Cursor { src, pos: 0 }
    }

    pub fn src(&self) -> &'a str {
        self.src
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    /// A one-character span at the cursor (empty at the end).
    pub fn here(&self) -> Span {
        let end = self.src[self.pos..]
            .chars()
            .next()
            .map_or(self.pos, |c| self.pos + c.len_utf8());
        Span::new(self.pos, end)
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Skips whitespace and `//` comments.
    pub fn skip_ws(&mut self) {
        let b = self.bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'/' if b.get(self.pos + 1) == Some(&b'/') => {
                    while self.pos < b.len() && b[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// Skips spaces and tabs only.
    pub fn skip_inline_ws(&mut self) {
        let b = self.bytes();
        while self.pos < b.len() && matches!(b[self.pos], b' ' | b'\t') {
            self.pos += 1;
        }
    }

    pub fn peek_is(&self, tok: &str) -> bool {
        self.src[self.pos..].starts_with(tok)
    }

    pub fn eat(&mut self, tok: &str) -> bool {
        if self.peek_is(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    pub fn unread(&mut self, n: usize) {
        self.pos -= n;
    }

    fn word_end(&self) -> usize {
        let b = self.bytes();
        let mut e = self.pos;
        while e < b.len() && is_ident(b[e]) {
            e += 1;
        }
        e
    }

    /// The identifier at the cursor, without consuming it.
    pub fn peek_word(&self) -> &'a str {
        &self.src[self.pos..self.word_end()]
    }

    /// Consumes an identifier (letters, digits, `_`, `.`, `$`); empty if none.
    pub fn word(&mut self) -> &'a str {
        let e = self.word_end();
        let w = &self.src[self.pos..e];
        self.pos = e;
        w
    }

    /// Same as [`Cursor::word`]; used where the name may start with a digit (`%0`).
    pub fn ident(&mut self) -> &'a str {
        self.word()
    }

    pub fn uint(&mut self) -> Option<u64> {
        let b = self.bytes();
        let start = self.pos;
        let mut e = start;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        if e == start {
            return None;
        }
        let v = self.src[start..e].parse().ok()?;
        self.pos = e;
        Some(v)
    }

    /// An integer, float or hexadecimal literal, with an optional leading `-`.
    pub fn number(&mut self) -> Option<Number> {
        let b = self.bytes();
        let start = self.pos;
        let mut e = start;
        let neg = b.get(e) == Some(&b'-');
        if neg || b.get(e) == Some(&b'+') {
            e += 1;
        }
        if b.get(e) == Some(&b'0') && matches!(b.get(e + 1), Some(b'x') | Some(b'X')) {
            let hs = e + 2;
            let mut he = hs;
            while he < b.len() && b[he].is_ascii_hexdigit() {
                he += 1;
            }
            let v = u64::from_str_radix(&self.src[hs..he], 16).ok()?;
            if neg {
                return None;
            }
            self.pos = he;
            return Some(Number::Hex(v));
        }
        let ds = e;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        if e == ds {
            // `inf` / `nan` spelled out.
            for (w, v) in [("inf", f64::INFINITY), ("nan", f64::NAN)] {
                if self.src[e..].starts_with(w) && !b.get(e + w.len()).is_some_and(|&c| is_ident(c))
                {
                    self.pos = e + w.len();
                    return Some(Number::Float(if neg { -v } else { v }));
                }
            }
            return None;
        }
        let mut float = false;
        if b.get(e) == Some(&b'.') {
            float = true;
            e += 1;
            while e < b.len() && b[e].is_ascii_digit() {
                e += 1;
            }
        }
        if matches!(b.get(e), Some(b'e') | Some(b'E')) {
            let mut x = e + 1;
            if matches!(b.get(x), Some(b'-') | Some(b'+')) {
                x += 1;
            }
            if b.get(x).is_some_and(|c| c.is_ascii_digit()) {
                while x < b.len() && b[x].is_ascii_digit() {
                    x += 1;
                }
                float = true;
                e = x;
            }
        }
        let text = &self.src[start..e];
        let n = if float {
            Number::Float(text.parse().ok()?)
        } else {
            Number::Int(text.parse().ok()?)
        };
        self.pos = e;
        Some(n)
    }

    /// A string literal with MLIR escapes.
    pub fn string(&mut self) -> Result<String, (Span, String)> {
        let start = self.pos;
        if !self.eat("\"") {
            return Err((
                self.here(),
                format!("expected a string, found {}", self.describe()),
            ));
        }
        let mut out = Vec::new();
        let b = self.bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return String::from_utf8(out).map_err(|_| {
                        (
                            Span::new(start, self.pos),
                            "string is not valid UTF-8".to_string(),
                        )
                    });
                }
                b'\n' => break,
                b'\\' => {
                    let esc = b.get(self.pos + 1).copied();
                    match esc {
                        Some(b'"') => out.push(b'"'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'n') => out.push(b'\n'),
                        Some(b't') => out.push(b'\t'),
                        Some(h)
                            if h.is_ascii_hexdigit()
                                && b.get(self.pos + 2).is_some_and(|c| c.is_ascii_hexdigit()) =>
                        {
                            let v = u8::from_str_radix(&self.src[self.pos + 1..self.pos + 3], 16)
                                .expect("two hex digits");
                            out.push(v);
                            self.pos += 1;
                        }
                        _ => {
                            return Err((
                                Span::new(self.pos, self.pos + 2),
                                "unknown escape in string".to_string(),
                            ))
                        }
                    }
                    self.pos += 2;
                }
                c => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        Err((
            Span::new(start, self.pos),
            "unterminated string".to_string(),
        ))
    }

    /// The token at `at`, quoted, for messages.
    pub fn describe_at(&self, at: usize) -> String {
        let rest = &self.src[at.min(self.src.len())..];
        let Some(first) = rest.chars().next() else {
            return "the end of the input".to_string();
        };
        if first == '\n' {
            return "the end of the line".to_string();
        }
        let b = rest.as_bytes();
        let mut e = 0;
        while e < b.len() && is_ident(b[e]) && e < 24 {
            e += 1;
        }
        if e == 0 {
            e = first.len_utf8();
        }
        format!("'{}'", &rest[..e])
    }

    pub fn describe(&self) -> String {
        self.describe_at(self.pos)
    }
}
