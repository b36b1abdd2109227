//! Parse errors with byte positions, rendered like Prometheus's
//! (`1:14: parse error: unexpected <op:+>`).

use std::fmt;
use std::ops::Range;

/// What kind of problem a [`ParseError`] reports. Callers (the conformance
/// runner, the HTTP layer) use it to tell "not supported yet" apart from
/// plain syntax errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Malformed input or a type error.
    Syntax,
    /// A native-histogram literal (`{{...}}`) in a series description.
    NativeHistogramUnsupported,
    /// Experimental Prometheus syntax this parser deliberately rejects
    /// (duration expressions, `fill` modifiers, `anchored`/`smoothed`, ...).
    ExperimentalUnsupported,
    /// The expression nests deeper than the configured limit.
    TooDeep,
}

/// One error: a message and the byte range of the input it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorItem {
    /// Byte range in the query (start inclusive, end exclusive).
    pub pos: Range<usize>,
    /// Human-readable message without the position prefix.
    pub msg: String,
}

/// A failed parse: one or more positioned errors plus the query they refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The full input that was parsed.
    pub query: String,
    /// The errors, in input order; never empty.
    pub errors: Vec<ErrorItem>,
    /// Classification of the (first) error.
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// A single syntax error at `pos`.
    pub fn new(query: &str, pos: Range<usize>, msg: impl Into<String>) -> Self {
        Self::with_kind(query, pos, msg, ParseErrorKind::Syntax)
    }

    /// A single error of the given kind at `pos`.
    pub fn with_kind(
        query: &str,
        pos: Range<usize>,
        msg: impl Into<String>,
        kind: ParseErrorKind,
    ) -> Self {
        ParseError {
            query: query.to_string(),
            errors: vec![ErrorItem {
                pos,
                msg: msg.into(),
            }],
            kind,
        }
    }

    /// The first error's message (without position).
    pub fn message(&self) -> &str {
        &self.errors[0].msg
    }

    /// The first error's byte range.
    pub fn position(&self) -> Range<usize> {
        self.errors[0].pos.clone()
    }

    /// True when the input used a native-histogram literal.
    pub fn is_native_histogram_unsupported(&self) -> bool {
        self.kind == ParseErrorKind::NativeHistogramUnsupported
    }

    /// True when the input used experimental syntax that is rejected.
    pub fn is_experimental_unsupported(&self) -> bool {
        self.kind == ParseErrorKind::ExperimentalUnsupported
    }
}

/// `line:col` (both 1-based, column counted in bytes) of byte offset `pos`,
/// the way Prometheus reports positions.
pub fn line_col(query: &str, pos: usize) -> Option<(usize, usize)> {
    if pos > query.len() {
        return None;
    }
    let mut line = 1;
    let mut last_break: isize = -1;
    for (i, b) in query.as_bytes()[..pos].iter().enumerate() {
        if *b == b'\n' {
            line += 1;
            last_break = i as isize;
        }
    }
    Some((line, (pos as isize - last_break) as usize))
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match line_col(&self.query, e.pos.start) {
                Some((l, c)) => write!(f, "{l}:{c}: parse error: {}", e.msg)?,
                None => write!(f, "invalid position: parse error: {}", e.msg)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_like_prometheus() {
        let e = ParseError::new("foo + ", 6..6, "unexpected end of input");
        assert_eq!(e.to_string(), "1:7: parse error: unexpected end of input");
        let e = ParseError::new("a\nbc +", 5..6, "x");
        assert_eq!(e.to_string(), "2:4: parse error: x");
        let mut e = ParseError::new("ab", 0..1, "one");
        e.errors.push(ErrorItem {
            pos: 1..2,
            msg: "two".into(),
        });
        assert_eq!(
            e.to_string(),
            "1:1: parse error: one; 1:2: parse error: two"
        );
    }
}
