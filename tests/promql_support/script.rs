//! The promqltest script language (FORMAT.md §1-6): commands, eval
//! headers, body lines and `expect` lines. No PromQL parsing happens here.

use watchpost::model::Labels;
use watchpost::promql::parse_duration;

// ---------------------------------------------------------------------------
// Script model

/// A label set and its (timestamp ms, value) points.
pub type SeriesPoints = (Labels, Vec<(i64, f64)>);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Instant { t: i64 },
    Range { start: i64, end: i64, step: i64 },
}

#[derive(Debug, Clone)]
pub enum Expected {
    /// Series lines (line number, text).
    Series(Vec<(usize, String)>),
    Scalar(f64),
    Str(String),
}

#[derive(Debug, Clone)]
pub struct ExpectLine {
    pub kind: String,
    pub msg: Option<String>,
    pub regex: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Eval {
    pub line: usize,
    pub kind: Kind,
    pub query: String,
    pub expects: Vec<ExpectLine>,
    pub expected: Expected,
    /// `expect range vector from t1 to t2 step d`.
    pub range_vector: Option<(i64, i64, i64)>,
}

#[derive(Debug, Clone)]
pub enum Cmd {
    Load {
        line: usize,
        step: i64,
        nhcb: bool,
        lines: Vec<(usize, String)>,
    },
    Clear,
    Eval(Box<Eval>),
}

fn rest_after_tokens(s: &str, n: usize) -> Option<&str> {
    let mut rest = s.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        rest = rest[end..].trim_start();
    }
    Some(rest)
}

fn dur(s: &str) -> Result<i64, String> {
    parse_duration(s).map_err(|e| format!("bad duration {s:?}: {}", e.message()))
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `ParseFloat(s, 64)`.
fn go_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let clean = body.replace('_', "");
    let int = if let Some(h) = clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = clean
        .strip_prefix("0o")
        .or_else(|| clean.strip_prefix("0O"))
    {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = clean
        .strip_prefix("0b")
        .or_else(|| clean.strip_prefix("0B"))
    {
        i64::from_str_radix(b, 2).ok()
    } else if clean.len() > 1 && clean.starts_with('0') && clean.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&clean[1..], 8).ok()
    } else if !clean.is_empty() && clean.bytes().all(|b| b.is_ascii_digit()) {
        clean.parse::<i64>().ok()
    } else {
        None
    };
    if let Some(i) = int {
        if body.contains('_')
            && !(body.starts_with("0x") || body.starts_with("0o") || body.starts_with("0b"))
        {
            return None;
        }
        return Some(if neg { -(i as f64) } else { i as f64 });
    }
    if s.contains('_') {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let ok = lower
        .trim_start_matches(['+', '-'])
        .bytes()
        .all(|b| b.is_ascii_digit() || b".e+-".contains(&b))
        || matches!(
            lower.trim_start_matches(['+', '-']),
            "inf" | "infinity" | "nan"
        );
    if !ok {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Go-style unquoting of `"..."`, `'...'` or `` `...` ``.
fn unquote(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        return Ok(s[1..s.len() - 1].to_string());
    }
    if s.len() < 2
        || !(s.starts_with('"') && s.ends_with('"') || s.starts_with('\'') && s.ends_with('\''))
    {
        return Err(format!("not a quoted string: {s}"));
    }
    let inner = &s[1..s.len() - 1];
    let mut out = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('\'') => out.push('\''),
            Some(o) => return Err(format!("unsupported escape \\{o}")),
            None => return Err("trailing backslash".into()),
        }
    }
    Ok(out)
}

pub fn parse_script(text: &str) -> Result<Vec<Cmd>, String> {
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let t = l.trim_matches([' ', '\t', '\r']);
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        let lineno = i + 1;
        if l.is_empty() {
            i += 1;
            continue;
        }
        let first = l
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let body_end = |start: usize| {
            let mut j = start;
            while j < lines.len() && !lines[j].is_empty() {
                j += 1;
            }
            j
        };
        if first == "clear" {
            cmds.push(Cmd::Clear);
            i += 1;
        } else if first.starts_with("load") {
            let parts: Vec<&str> = l.split_whitespace().collect();
            if parts.len() != 2 {
                return Err(format!("line {lineno}: bad load header"));
            }
            let step = dur(parts[1]).map_err(|e| format!("line {lineno}: {e}"))?;
            let end = body_end(i + 1);
            let body = (i + 1..end).map(|j| (j + 1, lines[j].clone())).collect();
            cmds.push(Cmd::Load {
                line: lineno,
                step,
                nhcb: parts[0] == "load_with_nhcb",
                lines: body,
            });
            i = end;
        } else if first.starts_with("eval") {
            let word = l.split_whitespace().next().unwrap_or("");
            let mut expects = Vec::new();
            match word {
                "eval" => {}
                "eval_fail" => expects.push(ExpectLine {
                    kind: "fail".into(),
                    msg: None,
                    regex: None,
                }),
                "eval_warn" => expects.push(ExpectLine {
                    kind: "warn".into(),
                    msg: None,
                    regex: None,
                }),
                "eval_info" => expects.push(ExpectLine {
                    kind: "info".into(),
                    msg: None,
                    regex: None,
                }),
                "eval_ordered" => expects.push(ExpectLine {
                    kind: "ordered".into(),
                    msg: None,
                    regex: None,
                }),
                _ => return Err(format!("line {lineno}: unknown command {word}")),
            }
            let toks: Vec<&str> = l.split_whitespace().collect();
            let (kind, query) = match toks.get(1).copied() {
                Some("instant") if toks.get(2) == Some(&"at") && toks.len() > 4 => {
                    let t = dur(toks[3]).map_err(|e| format!("line {lineno}: {e}"))?;
                    (
                        Kind::Instant { t },
                        rest_after_tokens(l, 4).unwrap_or("").to_string(),
                    )
                }
                Some("range")
                    if toks.len() > 8
                        && toks[2] == "from"
                        && toks[4] == "to"
                        && toks[6] == "step" =>
                {
                    let p = |s| dur(s).map_err(|e| format!("line {lineno}: {e}"));
                    (
                        Kind::Range {
                            start: p(toks[3])?,
                            end: p(toks[5])?,
                            step: p(toks[7])?,
                        },
                        rest_after_tokens(l, 8).unwrap_or("").to_string(),
                    )
                }
                _ => return Err(format!("line {lineno}: bad eval header: {l}")),
            };
            let mut series = Vec::new();
            let mut expected = None;
            let mut range_vector = None;
            let mut j = i + 1;
            while j < lines.len() && !lines[j].is_empty() {
                let b = &lines[j];
                if let Some(r) = b.strip_prefix("expect range vector") {
                    let t: Vec<&str> = r.split_whitespace().collect();
                    if t.len() != 6 || t[0] != "from" || t[2] != "to" || t[4] != "step" {
                        return Err(format!("line {}: bad expect range vector", j + 1));
                    }
                    let p = |s| dur(s).map_err(|e| format!("line {}: {e}", j + 1));
                    range_vector = Some((p(t[1])?, p(t[3])?, p(t[5])?));
                } else if let Some(r) = b.strip_prefix("expect string") {
                    expected = Some(Expected::Str(
                        unquote(r).map_err(|e| format!("line {}: {e}", j + 1))?,
                    ));
                } else if b.split(' ').next() == Some("expect") {
                    let rest = b["expect".len()..].trim();
                    let (k, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    let tail = tail.trim();
                    let mut e = ExpectLine {
                        kind: k.to_string(),
                        msg: None,
                        regex: None,
                    };
                    if let Some(m) = tail.strip_prefix("msg:") {
                        e.msg = Some(m.trim().to_string());
                    } else if let Some(m) = tail.strip_prefix("regex:") {
                        e.regex = Some(m.trim().to_string());
                    }
                    expects.push(e);
                } else if let Some(v) = go_number(b) {
                    expected = Some(Expected::Scalar(v));
                    j += 1;
                    break;
                } else if b.starts_with("expected_fail_message")
                    || b.starts_with("expected_fail_regexp")
                {
                    let (k, v) = b.split_once(char::is_whitespace).unwrap_or((b, ""));
                    if let Some(f) = expects.iter_mut().find(|e| e.kind == "fail") {
                        if k == "expected_fail_message" {
                            f.msg = Some(v.trim().to_string());
                        } else {
                            f.regex = Some(v.trim().to_string());
                        }
                    }
                    j += 1;
                    break;
                } else {
                    series.push((j + 1, b.clone()));
                }
                j += 1;
            }
            let expected = expected.unwrap_or(Expected::Series(series));
            cmds.push(Cmd::Eval(Box::new(Eval {
                line: lineno,
                kind,
                query,
                expects,
                expected,
                range_vector,
            })));
            i = j;
        } else {
            return Err(format!("line {lineno}: unknown command {l:?}"));
        }
    }
    Ok(cmds)
}
