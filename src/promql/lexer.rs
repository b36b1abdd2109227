//! PromQL tokenizer. Produces the whole token list up front (linear in the
//! input); a lexical error becomes a final [`TokenKind::Error`] token so the
//! parser reports it in order with its own errors. Positions are byte offsets.

use std::ops::Range;

/// Token categories. Keywords are plain [`TokenKind::Ident`]s; the parser
/// decides from context whether `sum`, `by`, `offset` ... are keywords.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// Identifier or keyword (`[a-zA-Z_:][a-zA-Z0-9_:]*`, `:` not allowed
    /// inside `[...]`).
    Ident,
    /// Number literal (decimal, hex, `Inf`, `NaN`).
    Number(f64),
    /// Duration literal (`5m`, `1h30m`), in milliseconds.
    Duration(i64),
    /// String literal, already unescaped.
    Str(String),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `:` (only inside brackets)
    Colon,
    /// `@`
    At,
    /// `=`
    Assign,
    /// `==`
    EqlC,
    /// `!=`
    Neq,
    /// `=~`
    EqlRegex,
    /// `!~`
    NeqRegex,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `>`
    Gtr,
    /// `<`
    Lss,
    /// `>=`
    Gte,
    /// `<=`
    Lte,
    /// End of input.
    Eof,
    /// A lexical error; the message says what went wrong.
    Error(String),
}

/// One token with its byte range.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Byte range in the input.
    pub span: Range<usize>,
}

/// True for bytes that may start an identifier.
pub fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// True for bytes that may continue an identifier (without `:`).
pub fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Tokenizes `input`. The result always ends with `Eof` or `Error`.
pub fn lex(input: &str) -> Vec<Token> {
    let b = input.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut bracket_depth = 0usize;
    macro_rules! push {
        ($kind:expr, $start:expr, $end:expr) => {
            toks.push(Token {
                kind: $kind,
                span: $start..$end,
            })
        };
    }
    macro_rules! fail {
        ($start:expr, $end:expr, $($arg:tt)*) => {{
            push!(TokenKind::Error(format!($($arg)*)), $start, $end);
            return toks;
        }};
    }
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                i += 1;
                push!(TokenKind::LParen, start, i);
            }
            b')' => {
                i += 1;
                push!(TokenKind::RParen, start, i);
            }
            b'{' => {
                i += 1;
                push!(TokenKind::LBrace, start, i);
            }
            b'}' => {
                i += 1;
                push!(TokenKind::RBrace, start, i);
            }
            b'[' => {
                i += 1;
                bracket_depth += 1;
                push!(TokenKind::LBracket, start, i);
            }
            b']' => {
                i += 1;
                bracket_depth = bracket_depth.saturating_sub(1);
                push!(TokenKind::RBracket, start, i);
            }
            b',' => {
                i += 1;
                push!(TokenKind::Comma, start, i);
            }
            b'@' => {
                i += 1;
                push!(TokenKind::At, start, i);
            }
            b'+' => {
                i += 1;
                push!(TokenKind::Add, start, i);
            }
            b'-' => {
                i += 1;
                push!(TokenKind::Sub, start, i);
            }
            b'*' => {
                i += 1;
                push!(TokenKind::Mul, start, i);
            }
            b'/' => {
                i += 1;
                push!(TokenKind::Div, start, i);
            }
            b'%' => {
                i += 1;
                push!(TokenKind::Mod, start, i);
            }
            b'^' => {
                i += 1;
                push!(TokenKind::Pow, start, i);
            }
            b'=' => {
                let (k, n) = match b.get(i + 1) {
                    Some(b'=') => (TokenKind::EqlC, 2),
                    Some(b'~') => (TokenKind::EqlRegex, 2),
                    _ => (TokenKind::Assign, 1),
                };
                i += n;
                push!(k, start, i);
            }
            b'!' => match b.get(i + 1) {
                Some(b'=') => {
                    i += 2;
                    push!(TokenKind::Neq, start, i);
                }
                Some(b'~') => {
                    i += 2;
                    push!(TokenKind::NeqRegex, start, i);
                }
                _ => fail!(start, start + 1, "unexpected character after '!'"),
            },
            b'>' | b'<' => {
                let eq = b.get(i + 1) == Some(&b'=');
                let k = match (c, eq) {
                    (b'>', true) => TokenKind::Gte,
                    (b'>', false) => TokenKind::Gtr,
                    (_, true) => TokenKind::Lte,
                    _ => TokenKind::Lss,
                };
                i += if eq { 2 } else { 1 };
                push!(k, start, i);
            }
            b':' if bracket_depth > 0 => {
                i += 1;
                push!(TokenKind::Colon, start, i);
            }
            b'"' | b'\'' => match lex_quoted(input, i) {
                Ok((s, end)) => {
                    i = end;
                    push!(TokenKind::Str(s), start, i);
                }
                Err((msg, at)) => fail!(at, (at + 1).min(b.len()), "{msg}"),
            },
            b'`' => match input[i + 1..].find('`') {
                Some(off) => {
                    let s = input[i + 1..i + 1 + off].to_string();
                    i = i + 2 + off;
                    push!(TokenKind::Str(s), start, i);
                }
                None => fail!(start, b.len(), "unterminated raw string"),
            },
            b'0'..=b'9' => match lex_number_or_duration(b, i) {
                Ok((k, end)) => {
                    let is_err = matches!(k, TokenKind::Error(_));
                    i = end;
                    push!(k, start, i);
                    if is_err {
                        return toks;
                    }
                }
                Err(end) => fail!(
                    start,
                    end,
                    "bad number or duration syntax: {:?}",
                    &input[start..end]
                ),
            },
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                match lex_number_or_duration(b, i) {
                    Ok((k, end)) => {
                        i = end;
                        push!(k, start, i);
                    }
                    Err(end) => fail!(
                        start,
                        end,
                        "bad number or duration syntax: {:?}",
                        &input[start..end]
                    ),
                }
            }
            _ if is_ident_start(c) || c == b':' => {
                i += 1;
                while i < b.len() && (is_ident_char(b[i]) || (b[i] == b':' && bracket_depth == 0)) {
                    i += 1;
                }
                let word = &input[start..i];
                if word.eq_ignore_ascii_case("inf") {
                    push!(TokenKind::Number(f64::INFINITY), start, i);
                } else if word.eq_ignore_ascii_case("nan") {
                    push!(TokenKind::Number(f64::NAN), start, i);
                } else {
                    push!(TokenKind::Ident, start, i);
                }
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                fail!(start, start + ch.len_utf8(), "unexpected character: {ch:?}")
            }
        }
    }
    push!(TokenKind::Eof, b.len(), b.len());
    toks
}

/// Scans a number or duration starting at `i`. Returns the token and its end,
/// or the end of the bad run on error.
fn lex_number_or_duration(b: &[u8], start: usize) -> Result<(TokenKind, usize), usize> {
    let mut i = start;
    let alnum_end = |mut j: usize| {
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.') {
            j += 1;
        }
        j
    };
    // Hexadecimal integer.
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        let ds = i;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        if i == ds || (i < b.len() && (is_ident_char(b[i]) || b[i] == b'.')) {
            return Err(alnum_end(i));
        }
        let text = std::str::from_utf8(&b[ds..i]).map_err(|_| i)?;
        let v = u128::from_str_radix(text, 16)
            .map(|v| v as f64)
            .unwrap_or(f64::INFINITY);
        return Ok((TokenKind::Number(v), i));
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_only_end = i;
    let mut is_int = true;
    if i < b.len() && b[i] == b'.' {
        is_int = false;
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            is_int = false;
            i = j;
        }
    }
    let followed_by_word = i < b.len() && (is_ident_char(b[i]) || b[i] == b'.');
    if !followed_by_word {
        let text = std::str::from_utf8(&b[start..i]).map_err(|_| i)?;
        // Like Go's base-detecting ParseInt: a leading 0 means octal.
        if is_int
            && text.len() > 1
            && text.starts_with('0')
            && let Ok(v) = u64::from_str_radix(&text[1..], 8)
        {
            return Ok((TokenKind::Number(v as f64), i));
        }
        let v: f64 = text.parse().map_err(|_| i)?;
        if v.is_infinite() {
            return Ok((
                TokenKind::Error(format!(
                    "error parsing number: {text:?}: value out of range"
                )),
                i,
            ));
        }
        return Ok((TokenKind::Number(v), i));
    }
    // Duration: integer followed by units, e.g. 1h30m.
    if is_int && int_only_end > int_start {
        let end = alnum_end(int_start);
        let text = std::str::from_utf8(&b[int_start..end]).map_err(|_| end)?;
        return match parse_duration_ms(text) {
            Some(ms) if text.bytes().any(|c| c.is_ascii_alphabetic()) => {
                Ok((TokenKind::Duration(ms), end))
            }
            _ => Err(end),
        };
    }
    Err(alnum_end(i))
}

/// Parses a Prometheus duration (`1y2w3d4h5m6s7ms`, units in this order, each
/// at most once, or `0`) into milliseconds. `None` on bad syntax or overflow.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let ds = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == ds {
            return None;
        }
        let n: i64 = s[ds..i].parse().ok()?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[us..i];
        let idx = UNITS.iter().position(|(u, _)| *u == unit)?;
        if idx < next_unit {
            return None;
        }
        next_unit = idx + 1;
        total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
    }
    Some(total)
}

/// Unquotes a `"` or `'` string starting at `start` with Go escape rules.
/// Returns the value and the end offset, or a message and error offset.
fn lex_quoted(input: &str, start: usize) -> Result<(String, usize), (String, usize)> {
    let b = input.as_bytes();
    let q = b[start];
    let mut out: Vec<u8> = Vec::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = b.get(i) else {
            return Err(("unterminated quoted string".into(), start));
        };
        match c {
            b'\n' => return Err(("unterminated quoted string".into(), start)),
            _ if c == q => {
                i += 1;
                break;
            }
            b'\\' => {
                let Some(&e) = b.get(i + 1) else {
                    return Err(("escape sequence not terminated".into(), start));
                };
                i += 2;
                match e {
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(11),
                    b'\\' => out.push(b'\\'),
                    _ if e == q => out.push(q),
                    b'0'..=b'7' => {
                        let digits = b.get(i - 1..i + 2).unwrap_or(&[]);
                        if digits.len() != 3 || !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                            return Err(("invalid octal escape sequence".into(), i - 2));
                        }
                        let v = digits.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
                        if v > 255 {
                            return Err(("octal escape value > 255".into(), i - 2));
                        }
                        out.push(v as u8);
                        i += 2;
                    }
                    b'x' | b'u' | b'U' => {
                        let n = match e {
                            b'x' => 2,
                            b'u' => 4,
                            _ => 8,
                        };
                        let hex = input.get(i..i + n).unwrap_or("");
                        if let Some(bad) =
                            input[i..].chars().take(n).find(|c| !c.is_ascii_hexdigit())
                        {
                            return Err((
                                format!(
                                    "illegal character U+{:04X} {bad:?} in escape sequence",
                                    bad as u32
                                ),
                                i - 2,
                            ));
                        }
                        if hex.len() != n {
                            return Err(("escape sequence not terminated".into(), i - 2));
                        }
                        let v = u32::from_str_radix(hex, 16).unwrap_or(u32::MAX);
                        if e == b'x' {
                            out.push(v as u8);
                        } else {
                            let Some(ch) = char::from_u32(v) else {
                                return Err(("invalid Unicode code point in escape".into(), i - 2));
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        i += n;
                    }
                    _ => {
                        let ch = input[i - 1..].chars().next().unwrap_or('?');
                        return Err((
                            format!("unknown escape sequence U+{:04X} {ch:?}", ch as u32),
                            i - 2,
                        ));
                    }
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(|s| (s, i))
        .map_err(|_| ("invalid UTF-8 in string literal".into(), start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokenKind> {
        lex(s).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn numbers_and_durations() {
        use TokenKind::*;
        assert_eq!(kinds("0x1f"), vec![Number(31.0), Eof]);
        assert_eq!(
            kinds("1e3 .5 5."),
            vec![Number(1000.0), Number(0.5), Number(5.0), Eof]
        );
        assert_eq!(kinds("1h30m"), vec![Duration(5_400_000), Eof]);
        assert_eq!(
            kinds("100ms 1y"),
            vec![Duration(100), Duration(31_536_000_000), Eof]
        );
        assert!(matches!(kinds("1.5m")[0], Error(_)));
        assert!(matches!(kinds("5m1h")[0], Error(_)));
        assert!(matches!(kinds("0x")[0], Error(_)));
        assert!(matches!(kinds("InF")[0], Number(v) if v.is_infinite()));
        assert!(matches!(kinds("nan")[0], Number(v) if v.is_nan()));
        assert_eq!(kinds("Infinity"), vec![Ident, Eof]);
    }

    #[test]
    fn strings() {
        use TokenKind::*;
        assert_eq!(kinds(r#""a\n\"b""#), vec![Str("a\n\"b".into()), Eof]);
        assert_eq!(kinds(r"'it\'s'"), vec![Str("it's".into()), Eof]);
        assert_eq!(kinds(r"`a\nb`"), vec![Str(r"a\nb".into()), Eof]);
        assert_eq!(kinds(r#""\u00e9\x41\101""#), vec![Str("éAA".into()), Eof]);
        assert!(matches!(&kinds(r#""\'""#)[0], Error(_)));
        assert!(matches!(&kinds("\"abc")[0], Error(m) if m == "unterminated quoted string"));
        assert!(matches!(&kinds("`abc")[0], Error(m) if m == "unterminated raw string"));
        assert!(matches!(&kinds(r#""\xff""#)[0], Error(_)));
    }

    #[test]
    fn colon_inside_brackets() {
        use TokenKind::*;
        assert_eq!(
            kinds("a:b[5m:1m]"),
            vec![
                Ident,
                LBracket,
                Duration(300_000),
                Colon,
                Duration(60_000),
                RBracket,
                Eof
            ]
        );
        assert_eq!(kinds("# comment\n1"), vec![Number(1.0), Eof]);
    }
}
