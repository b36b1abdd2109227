//! Result comparison with upstream's rules (FORMAT.md §8): float
//! tolerance, vectors, matrices, annotations.

use std::fmt::Write as _;

use watchpost::model::{Labels, stale_nan};
use watchpost::promql::{SeriesValue, Value, parse_series_desc};

use super::script::{ExpectLine, SeriesPoints};

// ---------------------------------------------------------------------------
// Comparison

const MIN_NORMAL: f64 = 2.2250738585072014e-308;

pub fn almost_equal(a: f64, b: f64) -> bool {
    let sa = a.to_bits() == stale_nan().to_bits();
    let sb = b.to_bits() == stale_nan().to_bits();
    if sa || sb {
        return sa && sb;
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    let sum = a.abs() + b.abs();
    if a == 0.0 || b == 0.0 || sum < MIN_NORMAL {
        return diff < 1e-6 * MIN_NORMAL;
    }
    diff / sum.min(f64::MAX) < 1e-6
}

pub fn strip_position(s: &str) -> &str {
    let t = s.trim_end();
    if t.ends_with(')')
        && let Some(p) = t.rfind(" (")
    {
        let inner = &t[p + 2..t.len() - 1];
        if inner.split(':').count() == 2
            && inner
                .split(':')
                .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        {
            return &t[..p];
        }
    }
    t
}

pub fn strip_regex_position(r: &str) -> String {
    // Loose position patterns such as ` \([0-9]+:[0-9]+\)` at the end.
    if let Some(p) = r.rfind("\\(")
        && (r.ends_with("\\)") || r.ends_with("\\)$"))
    {
        return r[..p].trim_end().to_string();
    }
    strip_position(r).to_string()
}

pub fn check_annotations(kind: &str, got: &[String], expects: &[ExpectLine]) -> Result<(), String> {
    let wanted: Vec<&ExpectLine> = expects.iter().filter(|e| e.kind == kind).collect();
    let none = expects.iter().any(|e| e.kind == format!("no_{kind}"));
    if none && !got.is_empty() {
        return Err(format!("expected no {kind} annotations, got {got:?}"));
    }
    if wanted.is_empty() {
        return Ok(());
    }
    if got.is_empty() {
        return Err(format!("expected {kind} annotations, got none"));
    }
    let matches = |e: &ExpectLine, g: &str| -> bool {
        if let Some(m) = &e.msg {
            strip_position(m) == g
        } else if let Some(r) = &e.regex {
            regex::Regex::new(&strip_regex_position(r))
                .map(|re| re.is_match(g))
                .unwrap_or(false)
        } else {
            true
        }
    };
    for e in &wanted {
        if !got.iter().any(|g| matches(e, g)) {
            return Err(format!(
                "expected {kind} {:?}/{:?} not among {got:?}",
                e.msg, e.regex
            ));
        }
    }
    for g in got {
        if !wanted.iter().any(|e| matches(e, g)) {
            return Err(format!("unexpected {kind} annotation {g:?}"));
        }
    }
    Ok(())
}

/// Expected series: labels and (timestamp, value) points.
pub fn expected_series(
    lines: &[(usize, String)],
    times: &dyn Fn(usize) -> i64,
    nslots: Option<usize>,
) -> Result<Vec<SeriesPoints>, String> {
    let mut out = Vec::new();
    for (ln, text) in lines {
        let d = parse_series_desc(text)
            .map_err(|e| format!("line {ln}: bad expected series: {}", e.message()))?;
        if let Some(n) = nslots
            && d.values.len() > n
        {
            {
                return Err(format!(
                    "line {ln}: expected series has {} slots, query has {n} steps",
                    d.values.len()
                ));
            }
        }
        let mut pts = Vec::new();
        for (k, v) in d.values.iter().enumerate() {
            match v {
                SeriesValue::Float(f) => pts.push((times(k), *f)),
                SeriesValue::Stale => pts.push((times(k), stale_nan())),
                SeriesValue::Omitted => {}
            }
        }
        out.push((d.labels, pts));
    }
    Ok(out)
}

pub fn compare_vector(
    got: &[(Labels, f64)],
    exp: &[(Labels, Vec<(i64, f64)>)],
    ordered: bool,
) -> Result<(), String> {
    for (l, p) in exp {
        if p.len() != 1 {
            return Err(format!(
                "expected instant series {l} needs exactly one value"
            ));
        }
    }
    if got.len() != exp.len() {
        return Err(format!(
            "expected {} series, got {}: {}",
            exp.len(),
            got.len(),
            show_vec(got)
        ));
    }
    for (i, (l, p)) in exp.iter().enumerate() {
        let Some(pos) = got.iter().position(|(gl, _)| gl == l) else {
            return Err(format!(
                "expected series {l} missing; got {}",
                show_vec(got)
            ));
        };
        if ordered && pos != i {
            return Err(format!("series {l} at position {pos}, expected {i}"));
        }
        if !almost_equal(p[0].1, got[pos].1) {
            return Err(format!(
                "series {l}: expected {}, got {}",
                p[0].1, got[pos].1
            ));
        }
    }
    Ok(())
}

fn show_vec(v: &[(Labels, f64)]) -> String {
    let mut s = String::new();
    for (l, x) in v.iter().take(6) {
        let _ = write!(s, "{l} {x}; ");
    }
    s
}

pub fn compare_matrix(
    got: &[(Labels, Vec<(i64, f64)>)],
    exp: &[(Labels, Vec<(i64, f64)>)],
) -> Result<(), String> {
    if got.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("matrix not sorted by labels".into());
    }
    if got.len() != exp.len() {
        let names: Vec<String> = got.iter().map(|g| g.0.to_string()).collect();
        return Err(format!(
            "expected {} series, got {}: {names:?}",
            exp.len(),
            got.len()
        ));
    }
    for (l, pts) in exp {
        let Some((_, gp)) = got.iter().find(|(gl, _)| gl == l) else {
            return Err(format!("expected series {l} missing"));
        };
        if gp.len() != pts.len() {
            return Err(format!("series {l}: expected points {pts:?}, got {gp:?}"));
        }
        for (a, b) in pts.iter().zip(gp) {
            if a.0 != b.0 || !almost_equal(a.1, b.1) {
                return Err(format!("series {l}: expected points {pts:?}, got {gp:?}"));
            }
        }
    }
    Ok(())
}

pub fn matrix_points(v: &Value) -> Option<Vec<SeriesPoints>> {
    match v {
        Value::Matrix(m) => Some(
            m.iter()
                .map(|s| {
                    (
                        s.labels.clone(),
                        s.samples.iter().map(|p| (p.t, p.v)).collect(),
                    )
                })
                .collect(),
        ),
        _ => None,
    }
}
