//! The promqltest / promtool series notation:
//! `metric{a="b"} 1+2x3 _ stale 5 -1x2 _x3`.
//!
//! Values expand to one [`SeriesValue`] per slot: `VxN` and `A+BxN` give
//! N+1 values (computed by repeated floating-point addition, like upstream),
//! `_xN` gives N omitted slots. Native-histogram literals (`{{...}}`) are
//! rejected with [`ParseErrorKind::NativeHistogramUnsupported`].

use super::error::{ParseError, ParseErrorKind};
use super::lexer::{TokenKind, lex};
use super::parser::{is_label_name, is_metric_name};
use crate::model::{Labels, METRIC_NAME};

/// One slot of a series description.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeriesValue {
    /// A float sample.
    Float(f64),
    /// A staleness marker.
    Stale,
    /// No sample in this slot (`_`).
    Omitted,
}

/// A parsed series line.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesDesc {
    /// The label set (including `__name__`).
    pub labels: Labels,
    /// The expanded values, one per slot.
    pub values: Vec<SeriesValue>,
}

/// Upper bound on the number of slots one line may expand to, so a typo like
/// `1x99999999999` fails cleanly instead of exhausting memory.
pub const MAX_SERIES_SLOTS: usize = 10_000_000;

/// Parses one series description line.
pub fn parse_series_desc(input: &str) -> Result<SeriesDesc, ParseError> {
    let b = input.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    // Metric name outside braces.
    let ns = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
        i += 1;
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    if i > ns {
        let name = &input[ns..i];
        if !is_metric_name(name) {
            return Err(ParseError::new(
                input,
                ns..i,
                format!("invalid metric name {name:?}"),
            ));
        }
        pairs.push((METRIC_NAME.to_string(), name.to_string()));
    }
    if i < b.len() && b[i] == b'{' {
        if b.get(i + 1) == Some(&b'{') {
            return Err(histogram_error(input, i));
        }
        let end = find_brace_end(input, i)
            .ok_or_else(|| ParseError::new(input, i..b.len(), "unterminated label set"))?;
        parse_label_set(input, i, end, &mut pairs)?;
        i = end;
    }
    if i < b.len() && !b[i].is_ascii_whitespace() {
        return Err(ParseError::new(
            input,
            i..i + 1,
            "unexpected character after the label set",
        ));
    }
    let mut values = Vec::new();
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let s = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        if input[s..i].contains("{{") {
            return Err(histogram_error(input, s));
        }
        parse_item(input, s, i, &mut values)?;
        if values.len() > MAX_SERIES_SLOTS {
            return Err(ParseError::new(
                input,
                s..i,
                format!("series expands to more than {MAX_SERIES_SLOTS} values"),
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (n, _) in &pairs {
        if !seen.insert(n.as_str()) {
            return Err(ParseError::new(
                input,
                0..input.len(),
                format!("label {n:?} set more than once"),
            ));
        }
    }
    Ok(SeriesDesc {
        labels: Labels::from_pairs(pairs),
        values,
    })
}

fn histogram_error(input: &str, at: usize) -> ParseError {
    ParseError::with_kind(
        input,
        at..at + 2,
        "native histograms not supported in series descriptions",
        ParseErrorKind::NativeHistogramUnsupported,
    )
}

/// Offset just past the `}` closing the brace at `open`, skipping quoted
/// strings.
fn find_brace_end(input: &str, open: usize) -> Option<usize> {
    let b = input.as_bytes();
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'}' => return Some(i + 1),
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `{name="v", "quoted"="v", "metric.name"}` between `open` and `end`.
fn parse_label_set(
    input: &str,
    open: usize,
    end: usize,
    pairs: &mut Vec<(String, String)>,
) -> Result<(), ParseError> {
    let sub = &input[open..end];
    let toks = lex(sub);
    let err = |span: std::ops::Range<usize>, msg: String| {
        ParseError::new(input, open + span.start..open + span.end, msg)
    };
    let text = |t: &super::lexer::Token| &sub[t.span.clone()];
    let mut k = 1; // skip `{`
    loop {
        let t = &toks[k];
        match &t.kind {
            TokenKind::RBrace => return Ok(()),
            TokenKind::Error(m) => return Err(err(t.span.clone(), m.clone())),
            TokenKind::Str(s) => {
                k += 1;
                if toks[k].kind == TokenKind::Assign {
                    let TokenKind::Str(v) = &toks[k + 1].kind else {
                        return Err(err(
                            toks[k + 1].span.clone(),
                            "expected a string label value".into(),
                        ));
                    };
                    pairs.push((s.clone(), v.clone()));
                    k += 2;
                } else {
                    pairs.push((METRIC_NAME.to_string(), s.clone()));
                }
            }
            TokenKind::Ident | TokenKind::Number(_) if is_label_name(text(t)) => {
                let name = text(t).to_string();
                if toks[k + 1].kind != TokenKind::Assign {
                    return Err(err(
                        toks[k + 1].span.clone(),
                        "expected \"=\" after a label name (series descriptions are label sets)"
                            .into(),
                    ));
                }
                let TokenKind::Str(v) = &toks[k + 2].kind else {
                    return Err(err(
                        toks[k + 2].span.clone(),
                        "expected a string label value".into(),
                    ));
                };
                pairs.push((name, v.clone()));
                k += 3;
            }
            _ => {
                return Err(err(
                    t.span.clone(),
                    format!("unexpected {:?} in label set", text(t)),
                ));
            }
        }
        match toks[k].kind {
            TokenKind::Comma => k += 1,
            TokenKind::RBrace => return Ok(()),
            _ => {
                return Err(err(
                    toks[k].span.clone(),
                    "expected \",\" or \"}\" in label set".into(),
                ));
            }
        }
    }
}

/// Scans an optionally signed decimal number, `Inf` or `NaN` at `i`;
/// returns the value and the end offset.
fn scan_number(b: &[u8], mut i: usize, end: usize) -> Option<(f64, usize)> {
    let s = i;
    if i < end && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i + 3 <= end {
        let w = &b[i..i + 3];
        if w.eq_ignore_ascii_case(b"inf") || w.eq_ignore_ascii_case(b"nan") {
            let neg = b[s] == b'-';
            let v = if w.eq_ignore_ascii_case(b"nan") {
                f64::NAN
            } else if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            return Some((v, i + 3));
        }
    }
    let ds = i;
    while i < end && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < end && b[i] == b'.' {
        i += 1;
        while i < end && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == ds || (i == ds + 1 && b[ds] == b'.') {
        return None;
    }
    if i < end && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < end && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < end && b[j].is_ascii_digit() {
            while j < end && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let v: f64 = std::str::from_utf8(&b[s..i]).ok()?.parse().ok()?;
    Some((v, i))
}

/// Parses `xN` at `i`, which must run to `end`.
fn scan_times(input: &str, i: usize, end: usize) -> Option<usize> {
    let b = input.as_bytes();
    if i >= end || b[i] != b'x' || i + 1 >= end {
        return None;
    }
    if !b[i + 1..end].iter().all(u8::is_ascii_digit) {
        return None;
    }
    input[i + 1..end].parse().ok()
}

fn parse_item(
    input: &str,
    s: usize,
    end: usize,
    out: &mut Vec<SeriesValue>,
) -> Result<(), ParseError> {
    let b = input.as_bytes();
    let item = &input[s..end];
    let bad = || {
        ParseError::new(
            input,
            s..end,
            format!(
                "invalid series value {item:?}; expected a number, \"_\", \"stale\", \"VxN\", \"A+BxN\" or \"_xN\""
            ),
        )
    };
    let too_many = || {
        ParseError::new(
            input,
            s..end,
            format!("series expands to more than {MAX_SERIES_SLOTS} values"),
        )
    };
    if item == "_" {
        out.push(SeriesValue::Omitted);
        return Ok(());
    }
    if item == "stale" {
        out.push(SeriesValue::Stale);
        return Ok(());
    }
    if let Some(rest) = item.strip_prefix('_') {
        let n = scan_times(input, s + 1, end).ok_or_else(bad)?;
        let _ = rest;
        if n > MAX_SERIES_SLOTS {
            return Err(too_many());
        }
        out.extend(std::iter::repeat_n(SeriesValue::Omitted, n));
        return Ok(());
    }
    let (a, i) = scan_number(b, s, end).ok_or_else(bad)?;
    if i == end {
        out.push(SeriesValue::Float(a));
        return Ok(());
    }
    let (inc, i) = if b[i] == b'+' || b[i] == b'-' {
        let (d, j) = scan_number(b, i, end).ok_or_else(bad)?;
        (Some(d), j)
    } else {
        (None, i)
    };
    let n = scan_times(input, i, end).ok_or_else(bad)?;
    if n >= MAX_SERIES_SLOTS {
        return Err(too_many());
    }
    match inc {
        None => out.extend(std::iter::repeat_n(SeriesValue::Float(a), n + 1)),
        Some(d) => {
            let mut v = a;
            out.push(SeriesValue::Float(v));
            for _ in 0..n {
                v += d;
                out.push(SeriesValue::Float(v));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use SeriesValue::*;

    fn vals(s: &str) -> Vec<SeriesValue> {
        parse_series_desc(s).unwrap().values
    }

    #[test]
    fn expansions() {
        assert_eq!(
            vals("m 1+2x3 _ stale 5 -1x2 _x3"),
            vec![
                Float(1.0),
                Float(3.0),
                Float(5.0),
                Float(7.0),
                Omitted,
                Stale,
                Float(5.0),
                Float(-1.0),
                Float(-1.0),
                Float(-1.0),
                Omitted,
                Omitted,
                Omitted
            ]
        );
        assert_eq!(vals("m 5-1x2"), vec![Float(5.0), Float(4.0), Float(3.0)]);
        assert_eq!(vals("m -5+1x1"), vec![Float(-5.0), Float(-4.0)]);
        assert_eq!(
            vals("m 1e-3 .5 2."),
            vec![Float(0.001), Float(0.5), Float(2.0)]
        );
        assert_eq!(vals("m 1e-3+1e-3x1"), vec![Float(0.001), Float(0.002)]);
        let v = vals("m Inf -inf +Inf NaN nanx1");
        assert_eq!(v[0], Float(f64::INFINITY));
        assert_eq!(v[1], Float(f64::NEG_INFINITY));
        assert_eq!(v[2], Float(f64::INFINITY));
        assert!(matches!(v[3], Float(x) if x.is_nan()));
        assert_eq!(v.len(), 6);
        // Hex is not a series number: `0x10` is 0 repeated 11 times, as upstream.
        assert_eq!(vals("m 0x10"), vec![Float(0.0); 11]);
        // Repeated addition, not multiplication.
        let v = vals("m 0+0.1x3");
        assert_eq!(v[3], Float(0.1 + 0.1 + 0.1));
    }

    #[test]
    fn labels() {
        let d = parse_series_desc(r#"http_requests{job="api", "a.b"="x y", inst='1',}"#).unwrap();
        assert_eq!(d.labels.get("__name__"), Some("http_requests"));
        assert_eq!(d.labels.get("a.b"), Some("x y"));
        assert_eq!(d.labels.get("inst"), Some("1"));
        let d = parse_series_desc(r#"{"my.metric", a="b"} 1"#).unwrap();
        assert_eq!(d.labels.get("__name__"), Some("my.metric"));
        assert_eq!(parse_series_desc("{} 1").unwrap().labels, Labels::empty());
        let d = parse_series_desc("sum{by=\"x\"} 1").unwrap();
        assert_eq!(d.labels.get("__name__"), Some("sum"));
        assert_eq!(d.labels.get("by"), Some("x"));
    }

    #[test]
    fn errors() {
        let e = parse_series_desc("m {{schema:0 sum:1}}").unwrap_err();
        assert!(e.is_native_histogram_unsupported());
        let e = parse_series_desc("m 1 {{}}x2").unwrap_err();
        assert!(e.is_native_histogram_unsupported());
        for bad in [
            "m 1x",
            "m 1+2",
            "m abc",
            r#"m{a=~"b"} 1"#,
            r#"m{a="b" 1"#,
            "m 1x99999999999",
            r#"m{a="1",a="2"} 1"#,
        ] {
            let e = parse_series_desc(bad).unwrap_err();
            assert_eq!(e.kind, ParseErrorKind::Syntax, "{bad}");
        }
        let e = parse_series_desc("m 1 2 zz").unwrap_err();
        assert_eq!(e.position(), 6..8);
    }
}
