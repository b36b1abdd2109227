//! The function table: Go's builtins (`and or not len index eq ne lt le gt
//! ge print printf println html js urlquery slice`) and Prometheus's
//! template functions (`humanize*`, `query`, `first`, `label`, ...), with
//! Prometheus's exact output rules (spec §3.3).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::ExpandContext;
use super::gofmt::{Flags, format_float, sprint, sprintf, sprintln};
use super::value::{QuerySample, Value};

/// Every function name a template may call (checked at parse time, like Go's
/// `function "x" not defined`).
pub(crate) const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "slice",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toDuration",
    "now",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "stripPort",
    "stripDomain",
    "urlQueryEscape",
];

/// True when `name` is a known function.
pub(crate) fn is_func(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

fn arity(name: &str, args: &[Value], want: usize) -> Result<(), String> {
    if args.len() != want {
        return Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn want_str(v: &Value) -> Result<Arc<str>, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn want_sample(v: &Value) -> Result<Arc<QuerySample>, String> {
    match v {
        Value::Sample(s) => Ok(s.clone()),
        other => Err(format!(
            "wrong type for value; expected *template.sample; got {}",
            other.type_name()
        )),
    }
}

fn want_list(v: &Value) -> Result<Arc<Vec<Value>>, String> {
    match v {
        Value::List(l) => Ok(l.clone()),
        Value::Nil => Ok(Arc::new(Vec::new())),
        other => Err(format!(
            "wrong type for value; expected template.queryResult; got {}",
            other.type_name()
        )),
    }
}

/// Prometheus `convertToFloat`: floats, ints and numeric strings.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s).ok_or_else(|| {
            format!(
                "strconv.ParseFloat: parsing {}: invalid syntax",
                super::gofmt::go_quote(s)
            )
        }),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

/// Go `strconv.ParseFloat` for the common spellings (incl. `Inf`, `NaN`).
fn parse_go_float(s: &str) -> Option<f64> {
    let l = s.to_ascii_lowercase();
    let body = l.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        let neg = l.starts_with('-');
        return Some(match body {
            "nan" => f64::NAN,
            _ if neg => f64::NEG_INFINITY,
            _ => f64::INFINITY,
        });
    }
    s.replace('_', "").parse().ok()
}

fn g4(v: f64) -> String {
    format_float(
        v,
        'g',
        &Flags {
            prec: Some(4),
            ..Flags::default()
        },
    )
}

/// `humanize`: SI prefixes, 4 significant digits.
pub(crate) fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

/// `humanize1024`: binary prefixes.
pub(crate) fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// `humanizeDuration`: seconds to `1d 2h 3m 4s` / `12.35s` / `250ms`.
pub(crate) fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go `time.Time.String()` in UTC for a millisecond timestamp:
/// `2015-06-23 13:19:44.128 +0000 UTC` (fraction trimmed of zeros).
pub(crate) fn format_time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac_ms = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if frac_ms != 0 {
        let f = format!("{frac_ms:03}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Prometheus `floatToTime`: Unix seconds to ms, truncated like
/// `model.TimeFromUnixNano(int64(v * 1e9))`.
fn float_to_ms(v: f64) -> Result<i64, String> {
    if !v.is_finite() {
        return Err("value is NaN or Inf".into());
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            super::gofmt::format_float_v(v)
        ));
    }
    Ok((ns as i64) / 1_000_000)
}

/// Go `time.Duration.String()` for a number of seconds.
pub(crate) fn go_duration(secs: f64) -> String {
    let ns = (secs * 1e9) as i64;
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1u64)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&trim_frac(u / div, u % div, div));
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let s_ns = u % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&trim_frac(
            s_ns / 1_000_000_000,
            s_ns % 1_000_000_000,
            1_000_000_000,
        ));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

fn trim_frac(int: u64, frac: u64, div: u64) -> String {
    if frac == 0 {
        return int.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

/// Go `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go `net.SplitHostPort` (enough for `host:port` and `[v6]:port`).
fn split_host_port(s: &str) -> Option<(String, String)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((host.to_string(), port.to_string()));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        };
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Ordering of two basic values for `eq`/`lt`/...; ints and floats compare
/// numerically (DIVERGE-3: Go rejects `gt $value 80` as incompatible types).
fn compare(a: &Value, b: &Value) -> Result<Option<std::cmp::Ordering>, String> {
    use Value::*;
    Ok(match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Int(x), Float(y)) => (*x as f64).partial_cmp(y),
        (Float(x), Int(y)) => x.partial_cmp(&(*y as f64)),
        (Str(x), Str(y)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Nil, Nil) => Some(std::cmp::Ordering::Equal),
        (Map(..) | List(_) | Sample(_) | Data(_), _)
        | (_, Map(..) | List(_) | Sample(_) | Data(_)) => {
            return Err("invalid type for comparison".into());
        }
        _ => return Err("incompatible types for comparison".into()),
    })
}

fn duration_to_secs(s: &str) -> Result<f64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let ms = crate::rules::duration::parse_duration_ms(body).map_err(|e| e.to_string())?;
    let secs = ms as f64 / 1000.0;
    Ok(if neg { -secs } else { secs })
}

/// Calls function `name` with evaluated `args` (pipe input last).
pub(crate) fn call(name: &str, args: Vec<Value>, ctx: &ExpandContext) -> Result<Value, String> {
    use Value::*;
    let a = &args;
    let s = |v: String| Ok(Str(v.into()));
    match name {
        "not" => {
            arity(name, a, 1)?;
            Ok(Bool(!a[0].truthy()))
        }
        "len" => {
            arity(name, a, 1)?;
            match &a[0] {
                Str(x) => Ok(Int(x.len() as i64)),
                Map(m, _) => Ok(Int(m.len() as i64)),
                List(l) => Ok(Int(l.len() as i64)),
                other => Err(format!("len of type {}", other.type_name())),
            }
        }
        "index" => {
            if a.is_empty() {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            }
            let mut v = a[0].clone();
            for idx in &a[1..] {
                v = match (&v, idx) {
                    (Map(m, sv), Str(k)) => {
                        m.get(&**k)
                            .cloned()
                            .unwrap_or(if *sv { Value::str("") } else { Nil })
                    }
                    (List(l), Int(i)) => l
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    (Str(st), Int(i)) => {
                        let b = st
                            .as_bytes()
                            .get(
                                usize::try_from(*i)
                                    .map_err(|_| format!("index out of range: {i}"))?,
                            )
                            .ok_or_else(|| format!("index out of range: {i}"))?;
                        Int(i64::from(*b))
                    }
                    (Nil, _) => return Err("index of untyped nil".into()),
                    (x, i) => {
                        return Err(format!(
                            "can't index item of type {} with {}",
                            x.type_name(),
                            i.type_name()
                        ));
                    }
                };
            }
            Ok(v)
        }
        "slice" => {
            let Some(item) = a.first() else {
                return Err("wrong number of args for slice: want at least 1 got 0".into());
            };
            let idx: Vec<usize> = a[1..]
                .iter()
                .map(|v| match v {
                    Int(i) if *i >= 0 => Ok(*i as usize),
                    other => Err(format!(
                        "cannot index slice/array with {}",
                        other.to_go_string()
                    )),
                })
                .collect::<Result<_, _>>()?;
            match item {
                Str(st) => {
                    let lo = idx.first().copied().unwrap_or(0);
                    let hi = idx.get(1).copied().unwrap_or(st.len());
                    st.get(lo..hi)
                        .map(Value::str)
                        .ok_or_else(|| format!("index out of range: {hi}"))
                }
                List(l) => {
                    let lo = idx.first().copied().unwrap_or(0);
                    let hi = idx.get(1).copied().unwrap_or(l.len());
                    l.get(lo..hi)
                        .map(|x| List(Arc::new(x.to_vec())))
                        .ok_or_else(|| format!("index out of range: {hi}"))
                }
                other => Err(format!("can't slice item of type {}", other.type_name())),
            }
        }
        "eq" => {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for b in &a[1..] {
                if compare(&a[0], b)? == Some(std::cmp::Ordering::Equal) {
                    return Ok(Bool(true));
                }
            }
            Ok(Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(name, a, 2)?;
            if name != "ne" && (matches!(a[0], Bool(_) | Nil) || matches!(a[1], Bool(_) | Nil)) {
                return Err("invalid type for comparison".into());
            }
            let o = compare(&a[0], &a[1])?;
            use std::cmp::Ordering::*;
            Ok(Bool(match name {
                "ne" => o != Some(Equal),
                "lt" => o == Some(Less),
                "le" => matches!(o, Some(Less | Equal)),
                "gt" => o == Some(Greater),
                _ => matches!(o, Some(Greater | Equal)),
            }))
        }
        "print" => s(sprint(a)),
        "println" => s(sprintln(a)),
        "printf" => {
            let Some(f) = a.first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            s(sprintf(&want_str(f)?, &a[1..]))
        }
        "html" => s(html_escape(&sprint(a))),
        "js" => s(js_escape(&sprint(a))),
        "urlquery" | "urlQueryEscape" => {
            if name == "urlQueryEscape" {
                arity(name, a, 1)?;
                return s(query_escape(&want_str(&a[0])?));
            }
            s(query_escape(&sprint(a)))
        }
        "query" => {
            arity(name, a, 1)?;
            let q = want_str(&a[0])?;
            let Some(f) = &ctx.query else {
                return Err("no query function configured".into());
            };
            let res = f(&q, ctx.ts_ms)?;
            Ok(List(Arc::new(
                res.into_iter().map(|x| Sample(Arc::new(x))).collect(),
            )))
        }
        "first" => {
            arity(name, a, 1)?;
            want_list(&a[0])?
                .first()
                .cloned()
                .ok_or_else(|| "first() called on vector with no elements".to_string())
        }
        "label" => {
            arity(name, a, 2)?;
            let l = want_str(&a[0])?;
            let smp = want_sample(&a[1])?;
            s(smp.labels.get(&*l).cloned().unwrap_or_default())
        }
        "value" => {
            arity(name, a, 1)?;
            Ok(Float(want_sample(&a[0])?.value))
        }
        "strvalue" => {
            arity(name, a, 1)?;
            s(want_sample(&a[0])?
                .labels
                .get("__value__")
                .cloned()
                .unwrap_or_default())
        }
        "sortByLabel" => {
            arity(name, a, 2)?;
            let l = want_str(&a[0])?;
            let mut v = (*want_list(&a[1])?).clone();
            v.sort_by(|x, y| {
                let g = |s: &Value| match s {
                    Sample(s) => s.labels.get(&*l).cloned().unwrap_or_default(),
                    _ => String::new(),
                };
                g(x).cmp(&g(y))
            });
            Ok(List(Arc::new(v)))
        }
        "args" => {
            let m: BTreeMap<String, Value> = a
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone()))
                .collect();
            Ok(Map(Arc::new(m), false))
        }
        "reReplaceAll" => {
            arity(name, a, 3)?;
            let re = regex::Regex::new(&want_str(&a[0])?)
                .map_err(|e| format!("error parsing regexp: {e}"))?;
            let repl = want_str(&a[1])?;
            s(re.replace_all(&want_str(&a[2])?, &*repl).into_owned())
        }
        "match" => {
            arity(name, a, 2)?;
            let re = regex::Regex::new(&want_str(&a[0])?)
                .map_err(|e| format!("error parsing regexp: {e}"))?;
            Ok(Bool(re.is_match(&want_str(&a[1])?)))
        }
        "safeHtml" => {
            arity(name, a, 1)?;
            Ok(Str(want_str(&a[0])?))
        }
        "title" => {
            arity(name, a, 1)?;
            s(title(&want_str(&a[0])?))
        }
        "toUpper" => {
            arity(name, a, 1)?;
            s(want_str(&a[0])?.to_uppercase())
        }
        "toLower" => {
            arity(name, a, 1)?;
            s(want_str(&a[0])?.to_lowercase())
        }
        "graphLink" | "tableLink" => {
            arity(name, a, 1)?;
            let tab = if name == "graphLink" { 0 } else { 1 };
            s(format!(
                "/graph?g0.expr={}&g0.tab={tab}",
                query_escape(&want_str(&a[0])?)
            ))
        }
        "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
        | "humanizeTimestamp" | "toTime" | "toDuration" => {
            arity(name, a, 1)?;
            let v = to_float(&a[0])?;
            s(match name {
                "humanize" => humanize(v),
                "humanize1024" => humanize1024(v),
                "humanizeDuration" => humanize_duration(v),
                "humanizePercentage" => format!("{}%", g4(v * 100.0)),
                "humanizeTimestamp" if !v.is_finite() => g4(v),
                "toDuration" => go_duration(v),
                _ => format_time_ms(float_to_ms(v)?),
            })
        }
        "now" => {
            arity(name, a, 0)?;
            Ok(Float(ctx.ts_ms as f64 / 1000.0))
        }
        "externalURL" => {
            arity(name, a, 0)?;
            s(ctx.data.external_url.clone())
        }
        "pathPrefix" => {
            arity(name, a, 0)?;
            let u = &ctx.data.external_url;
            let after_scheme = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
            s(after_scheme
                .find('/')
                .map(|i| after_scheme[i..].to_string())
                .unwrap_or_default())
        }
        "parseDuration" => {
            arity(name, a, 1)?;
            Ok(Float(duration_to_secs(&want_str(&a[0])?)?))
        }
        "stripPort" => {
            arity(name, a, 1)?;
            let hp = want_str(&a[0])?;
            s(split_host_port(&hp)
                .map(|(h, _)| h)
                .unwrap_or_else(|| hp.to_string()))
        }
        "stripDomain" => {
            arity(name, a, 1)?;
            let hp = want_str(&a[0])?;
            let (host, port) =
                split_host_port(&hp).unwrap_or_else(|| (hp.to_string(), String::new()));
            if host.parse::<std::net::IpAddr>().is_ok() {
                return s(hp.to_string());
            }
            let first = host.split('.').next().unwrap_or_default().to_string();
            if port.is_empty() {
                s(first)
            } else if first.contains(':') {
                s(format!("[{first}]:{port}"))
            } else {
                s(format!("{first}:{port}"))
            }
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}
