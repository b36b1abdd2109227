//! The line parser for the Prometheus text exposition format (version 0.0.4).
//!
//! Grammar, one construct per `\n`-terminated line (a trailing `\r` is
//! tolerated; blanks are spaces and tabs):
//!
//! ```text
//! line    = blank* ( "" | comment | sample ) blank*
//! comment = "#" blank* ( "HELP" blank+ name ( blank+ docstring )?
//!                      | "TYPE" blank+ name blank+ type
//!                      | anything-else )            ; ignored
//! sample  = name ( "{" blank* ( label ( blank* "," blank* label )* blank* ","? )? blank* "}" )?
//!           blank+ value ( blank+ timestamp )?
//! label   = label_name blank* "=" blank* '"' escaped '"'
//! ```
//!
//! Label values understand the escapes `\\`, `\"` and `\n`; HELP text
//! understands `\\` and `\n`. Values are Go-`ParseFloat`-style decimals plus
//! `NaN`, `Inf`, `+Inf`, `-Inf` (any case); hexadecimal floats are not
//! accepted. Timestamps are signed 64-bit integers in milliseconds.
//!
//! Every error carries the 1-based line and character column where parsing
//! stopped. The parser never panics on any input (a proptest checks this).

use std::collections::HashSet;
use std::fmt;

/// Metric family types from `# TYPE` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram` (classic `_bucket{le}`, `_sum`, `_count`).
    Histogram,
    /// `summary`
    Summary,
    /// `untyped`
    Untyped,
}

impl MetricType {
    /// The keyword as written in `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Untyped,
            _ => return None,
        })
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSample {
    /// Metric name.
    pub name: String,
    /// Label pairs in the order written (names are unique; may include
    /// empty values, which storage treats as absent).
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// Timestamp in ms, if the line had one.
    pub timestamp: Option<i64>,
    /// 1-based line number.
    pub line: usize,
}

/// One meaningful line. Plain comments and blank lines produce nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// `# HELP name text` (text unescaped).
    Help {
        /// Metric family name.
        name: String,
        /// Docstring, unescaped.
        text: String,
    },
    /// `# TYPE name type`.
    Type {
        /// Metric family name.
        name: String,
        /// The declared type.
        kind: MetricType,
    },
    /// A sample.
    Sample(TextSample),
}

/// What went wrong on a line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A metric name was expected.
    #[error("expected a metric name, got {0}")]
    ExpectedMetricName(String),
    /// A label name was expected.
    #[error("expected a label name, got {0}")]
    ExpectedLabelName(String),
    /// `=` missing after a label name.
    #[error("expected '=' after label name {0:?}, got {1}")]
    ExpectedEquals(String, String),
    /// The opening quote of a label value is missing.
    #[error("expected '\"' to start the value of label {0:?}, got {1}")]
    ExpectedQuote(String, String),
    /// The line ended inside a quoted label value.
    #[error("unterminated value of label {0:?}")]
    UnterminatedLabelValue(String),
    /// An escape other than `\\`, `\"`, `\n`.
    #[error("invalid escape sequence \\{0}")]
    InvalidEscape(String),
    /// `,` or `}` expected after a label pair.
    #[error("expected ',' or '}}' after label {0:?}, got {1}")]
    ExpectedCommaOrBrace(String, String),
    /// The same label name twice in one sample.
    #[error("duplicate label name {0:?}")]
    DuplicateLabel(String),
    /// The sample value is missing.
    #[error("missing value after {0}")]
    MissingValue(String),
    /// The sample value does not parse as a float.
    #[error("invalid value {0:?}: not a float")]
    InvalidValue(String),
    /// The timestamp does not parse as an integer (milliseconds).
    #[error("invalid timestamp {0:?}: want integer milliseconds")]
    InvalidTimestamp(String),
    /// Text after the timestamp.
    #[error("unexpected text {0:?} after the timestamp")]
    TrailingText(String),
    /// `# TYPE` without a type or with an unknown one.
    #[error("invalid metric type {0:?}: want counter, gauge, histogram, summary or untyped")]
    InvalidType(String),
    /// A second `# TYPE` line for the same family.
    #[error("second TYPE line for metric {0:?}")]
    DuplicateType(String),
    /// `__name__` written inside the braces; the name goes before them.
    #[error("label name {0:?} is reserved: write the metric name before the braces")]
    ReservedLabel(String),
    /// `# HELP`/`# TYPE` without a metric name.
    #[error("expected a metric name after # {0}")]
    MissingMetadataName(&'static str),
}

/// A parse error with its position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}:{col}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based character column within the line.
    pub col: usize,
    /// What went wrong.
    pub kind: ParseErrorKind,
}

/// Parses a whole input, stopping at the first error.
pub fn parse(input: &str) -> Result<Vec<Entry>, ParseError> {
    Parser::new(input).collect()
}

/// Parses bytes, first checking they are UTF-8 (the error then names the
/// line and column of the first invalid byte).
pub fn parse_bytes(input: &[u8]) -> Result<Vec<Entry>, ParseError> {
    match std::str::from_utf8(input) {
        Ok(s) => parse(s),
        Err(e) => {
            let good = input.get(..e.valid_up_to()).unwrap_or_default();
            // The prefix is valid UTF-8 by construction.
            let good = std::str::from_utf8(good).unwrap_or_default();
            let line = good.matches('\n').count() + 1;
            let last = good.rsplit('\n').next().unwrap_or_default();
            Err(ParseError {
                line,
                col: last.chars().count() + 1,
                kind: ParseErrorKind::InvalidUtf8,
            })
        }
    }
}

/// A streaming parser: one item per HELP/TYPE/sample line.
#[derive(Debug)]
pub struct Parser<'a> {
    lines: std::iter::Enumerate<std::str::Split<'a, char>>,
    typed: HashSet<String>,
    failed: bool,
}

impl<'a> Parser<'a> {
    /// A parser over `input`.
    pub fn new(input: &'a str) -> Self {
        Parser {
            lines: input.split('\n').enumerate(),
            typed: HashSet::new(),
            failed: false,
        }
    }
}

impl Iterator for Parser<'_> {
    type Item = Result<Entry, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        for (i, raw) in self.lines.by_ref() {
            let text = raw.strip_suffix('\r').unwrap_or(raw);
            let mut cur = Cursor { s: text, pos: 0 };
            match parse_line(&mut cur, i + 1) {
                Ok(None) => continue,
                Ok(Some(Entry::Type { name, kind })) => {
                    if !self.typed.insert(name.clone()) {
                        self.failed = true;
                        return Some(Err(ParseError {
                            line: i + 1,
                            col: 1,
                            kind: ParseErrorKind::DuplicateType(name),
                        }));
                    }
                    return Some(Ok(Entry::Type { name, kind }));
                }
                Ok(Some(e)) => return Some(Ok(e)),
                Err(kind) => {
                    self.failed = true;
                    return Some(Err(ParseError {
                        line: i + 1,
                        col: cur.col(),
                        kind,
                    }));
                }
            }
        }
        None
    }
}

/// Byte cursor over one line. `pos` always sits on a char boundary.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or_default()
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    /// Skips spaces and tabs; returns how many were skipped.
    fn blanks(&mut self) -> usize {
        let n = self
            .rest()
            .bytes()
            .take_while(|&b| b == b' ' || b == b'\t')
            .count();
        self.pos += n;
        n
    }
    /// A run of non-blank characters.
    fn token(&mut self) -> &'a str {
        let rest = self.rest();
        let n = rest
            .bytes()
            .take_while(|&b| b != b' ' && b != b'\t')
            .count();
        self.pos += n;
        rest.get(..n).unwrap_or_default()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    /// 1-based character column of the cursor.
    fn col(&self) -> usize {
        self.s.get(..self.pos).map_or(1, |p| p.chars().count() + 1)
    }
    /// What is at the cursor, for messages.
    fn describe(&self) -> String {
        match self.peek() {
            None => "end of line".to_string(),
            Some(c) => format!("{c:?}"),
        }
    }
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` (metric) or without `:` (label).
    fn ident(&mut self, colon: bool) -> Option<&'a str> {
        let rest = self.rest();
        let ok_first = |b: u8| b.is_ascii_alphabetic() || b == b'_' || (colon && b == b':');
        let ok = |b: u8| ok_first(b) || b.is_ascii_digit();
        let mut bytes = rest.bytes();
        if !bytes.next().is_some_and(ok_first) {
            return None;
        }
        let n = 1 + bytes.take_while(|&b| ok(b)).count();
        self.pos += n;
        rest.get(..n)
    }
}

fn parse_line(cur: &mut Cursor<'_>, line: usize) -> Result<Option<Entry>, ParseErrorKind> {
    cur.blanks();
    if cur.at_end() {
        return Ok(None);
    }
    if cur.eat('#') {
        return parse_comment(cur);
    }
    parse_sample(cur, line).map(|s| Some(Entry::Sample(s)))
}

fn parse_comment(cur: &mut Cursor<'_>) -> Result<Option<Entry>, ParseErrorKind> {
    cur.blanks();
    let keyword = cur.token();
    let which = match keyword {
        "HELP" => "HELP",
        "TYPE" => "TYPE",
        _ => return Ok(None),
    };
    if cur.blanks() == 0 {
        return Err(ParseErrorKind::MissingMetadataName(which));
    }
    let name = cur
        .ident(true)
        .ok_or(ParseErrorKind::MissingMetadataName(which))?
        .to_string();
    if which == "HELP" {
        if !cur.at_end() && cur.blanks() == 0 {
            return Err(ParseErrorKind::MissingMetadataName(which));
        }
        let text = unescape_help(cur.rest());
        cur.pos = cur.s.len();
        return Ok(Some(Entry::Help { name, text }));
    }
    cur.blanks();
    let start = cur.pos;
    let t = cur.token();
    let kind = MetricType::parse(t).ok_or_else(|| {
        cur.pos = start;
        ParseErrorKind::InvalidType(t.to_string())
    })?;
    cur.blanks();
    if !cur.at_end() {
        return Err(ParseErrorKind::InvalidType(cur.rest().to_string()));
    }
    Ok(Some(Entry::Type { name, kind }))
}

/// HELP text: `\\` -> `\`, `\n` -> newline, any other backslash kept as is
/// (Prometheus is lenient here).
fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn parse_sample(cur: &mut Cursor<'_>, line: usize) -> Result<TextSample, ParseErrorKind> {
    let name = cur
        .ident(true)
        .ok_or_else(|| ParseErrorKind::ExpectedMetricName(cur.describe()))?
        .to_string();
    let mut labels: Vec<(String, String)> = Vec::new();
    cur.blanks();
    if cur.eat('{') {
        parse_labels(cur, &mut labels)?;
    }
    let before_value = if labels.is_empty() {
        format!("metric name {name:?}")
    } else {
        "the label set".to_string()
    };
    cur.blanks();
    if cur.at_end() {
        return Err(ParseErrorKind::MissingValue(before_value));
    }
    let vstart = cur.pos;
    let vtok = cur.token();
    let value = parse_value(vtok).ok_or_else(|| {
        cur.pos = vstart;
        ParseErrorKind::InvalidValue(vtok.to_string())
    })?;
    cur.blanks();
    let mut timestamp = None;
    if !cur.at_end() {
        let tstart = cur.pos;
        let ttok = cur.token();
        let t: i64 = ttok.parse().map_err(|_| {
            cur.pos = tstart;
            ParseErrorKind::InvalidTimestamp(ttok.to_string())
        })?;
        timestamp = Some(t);
        cur.blanks();
        if !cur.at_end() {
            return Err(ParseErrorKind::TrailingText(cur.rest().to_string()));
        }
    }
    Ok(TextSample {
        name,
        labels,
        value,
        timestamp,
        line,
    })
}

fn parse_labels(
    cur: &mut Cursor<'_>,
    labels: &mut Vec<(String, String)>,
) -> Result<(), ParseErrorKind> {
    loop {
        cur.blanks();
        if cur.eat('}') {
            return Ok(());
        }
        let lstart = cur.pos;
        let lname = cur
            .ident(false)
            .ok_or_else(|| ParseErrorKind::ExpectedLabelName(cur.describe()))?
            .to_string();
        if lname == crate::model::METRIC_NAME {
            cur.pos = lstart;
            return Err(ParseErrorKind::ReservedLabel(lname));
        }
        if labels.iter().any(|(n, _)| *n == lname) {
            cur.pos = lstart;
            return Err(ParseErrorKind::DuplicateLabel(lname));
        }
        cur.blanks();
        if !cur.eat('=') {
            return Err(ParseErrorKind::ExpectedEquals(lname, cur.describe()));
        }
        cur.blanks();
        if !cur.eat('"') {
            return Err(ParseErrorKind::ExpectedQuote(lname, cur.describe()));
        }
        let value = parse_quoted(cur, &lname)?;
        labels.push((lname, value));
        cur.blanks();
        if cur.eat(',') {
            continue;
        }
        if cur.eat('}') {
            return Ok(());
        }
        let last = labels.last().map(|(n, _)| n.clone()).unwrap_or_default();
        return Err(ParseErrorKind::ExpectedCommaOrBrace(last, cur.describe()));
    }
}

/// The body of a quoted label value; the opening quote is consumed.
fn parse_quoted(cur: &mut Cursor<'_>, lname: &str) -> Result<String, ParseErrorKind> {
    let mut out = String::new();
    loop {
        let at = cur.pos;
        match cur.bump() {
            None => return Err(ParseErrorKind::UnterminatedLabelValue(lname.to_string())),
            Some('"') => return Ok(out),
            Some('\\') => match cur.bump() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(o) => {
                    cur.pos = at;
                    return Err(ParseErrorKind::InvalidEscape(o.to_string()));
                }
                None => return Err(ParseErrorKind::UnterminatedLabelValue(lname.to_string())),
            },
            Some(c) => out.push(c),
        }
    }
}

/// Go `ParseFloat`-like: decimal floats with optional sign and exponent,
/// `NaN`, `Inf`/`Infinity` with optional sign, case-insensitive.
fn parse_value(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    if lower == "nan" {
        // Go accepts no sign on NaN.
        return (body.len() == s.len()).then_some(f64::NAN);
    }
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Only digits, '.', 'e', 'E', and signs after an exponent: keeps out
    // Rust-only spellings so behaviour matches Prometheus.
    let ok = !body.is_empty()
        && body
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok {
        return None;
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> TextSample {
        match parse(s).unwrap().pop() {
            Some(Entry::Sample(x)) => x,
            other => panic!("not a sample: {other:?}"),
        }
    }

    fn err(s: &str) -> ParseError {
        parse(s).unwrap_err()
    }

    #[test]
    fn samples() {
        let s = one("http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000");
        assert_eq!(s.name, "http_requests_total");
        assert_eq!(
            s.labels,
            vec![
                ("method".into(), "post".into()),
                ("code".into(), "200".into())
            ]
        );
        assert_eq!(s.value, 1027.0);
        assert_eq!(s.timestamp, Some(1395066363000));
        let s = one("  up   1  ");
        assert_eq!((s.value, s.timestamp), (1.0, None));
        let s = one("x{} -Inf");
        assert_eq!(s.value, f64::NEG_INFINITY);
        assert!(one("x NaN").value.is_nan());
        assert_eq!(one("x +Inf -5").timestamp, Some(-5));
        assert_eq!(one("x{a=\"1\",} 1.5e3").value, 1500.0);
        assert_eq!(one("x{ a = \"1\" , b=\"2\" } 1\r").labels.len(), 2);
        assert_eq!(one("a:b_c 0.5").name, "a:b_c");
    }

    #[test]
    fn escapes() {
        let s = one(r#"x{path="C:\\dir\"q\"\nend"} 1"#);
        assert_eq!(s.labels[0].1, "C:\\dir\"q\"\nend");
        let e = err(r#"x{a="\t"} 1"#);
        assert_eq!((e.line, e.col), (1, 6));
        assert_eq!(e.kind, ParseErrorKind::InvalidEscape("t".into()));
    }

    #[test]
    fn metadata_and_comments() {
        let got = parse(
            "# HELP x Some \\\\ help\\nmore\n# TYPE x counter\n# random comment\n#\n\nx 1\n# EOF",
        )
        .unwrap();
        assert_eq!(
            got[0],
            Entry::Help {
                name: "x".into(),
                text: "Some \\ help\nmore".into()
            }
        );
        assert_eq!(
            got[1],
            Entry::Type {
                name: "x".into(),
                kind: MetricType::Counter
            }
        );
        assert_eq!(got.len(), 3);
        assert_eq!(
            err("# TYPE x counter\n# TYPE x gauge").kind,
            ParseErrorKind::DuplicateType("x".into())
        );
        let e = err("# TYPE x countr");
        assert_eq!((e.line, e.col), (1, 10));
        assert_eq!(
            err("# TYPE").kind,
            ParseErrorKind::MissingMetadataName("TYPE")
        );
    }

    #[test]
    fn errors_have_positions() {
        let e = err("ok 1\nok 2\nbad{a=\"1\" 3\n");
        assert_eq!((e.line, e.col), (3, 11));
        assert!(matches!(e.kind, ParseErrorKind::ExpectedCommaOrBrace(..)));
        assert_eq!(
            e.to_string(),
            "line 3:11: expected ',' or '}' after label \"a\", got '3'"
        );
        let e = err("x 1 2 3");
        assert_eq!(
            (e.col, e.kind),
            (7, ParseErrorKind::TrailingText("3".into()))
        );
        let e = err("x abc");
        assert_eq!(
            (e.col, e.kind),
            (3, ParseErrorKind::InvalidValue("abc".into()))
        );
        let e = err("x 1 1.5");
        assert_eq!(e.kind, ParseErrorKind::InvalidTimestamp("1.5".into()));
        assert_eq!(
            err("x").kind,
            ParseErrorKind::MissingValue("metric name \"x\"".into())
        );
        assert_eq!(
            err("x{a=\"1\",a=\"2\"} 1").kind,
            ParseErrorKind::DuplicateLabel("a".into())
        );
        assert_eq!(
            err("x{a=\"1} 1").kind,
            ParseErrorKind::UnterminatedLabelValue("a".into())
        );
        assert_eq!(
            err("x{__name__=\"y\"} 1").kind,
            ParseErrorKind::ReservedLabel("__name__".into())
        );
        assert!(matches!(
            err("1x 1").kind,
            ParseErrorKind::ExpectedMetricName(_)
        ));
        assert!(matches!(
            err("x{1=\"\"} 1").kind,
            ParseErrorKind::ExpectedLabelName(_)
        ));
        assert!(matches!(
            err("x{a \"1\"} 1").kind,
            ParseErrorKind::ExpectedEquals(..)
        ));
        assert!(matches!(
            err("x{a=1} 1").kind,
            ParseErrorKind::ExpectedQuote(..)
        ));
        assert_eq!(
            err("x 0x10").kind,
            ParseErrorKind::InvalidValue("0x10".into())
        );
        assert_eq!(
            err("x -NaN").kind,
            ParseErrorKind::InvalidValue("-NaN".into())
        );
        // Column counts characters, not bytes.
        let e = err("x{a=\"é\"} 1 x");
        assert_eq!(e.col, 12);
    }

    #[test]
    fn invalid_utf8_is_located() {
        let e = parse_bytes(b"a 1\nb{x=\"\xff\"} 1").unwrap_err();
        assert_eq!((e.line, e.col, e.kind), (2, 6, ParseErrorKind::InvalidUtf8));
    }
}
