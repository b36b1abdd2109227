//! Prometheus's OTLP naming translation (underscore escaping with suffixes).

use super::pb;

/// Sanitizes an attribute name into a Prometheus label name: characters
/// other than `[a-zA-Z0-9_]` become `_`, a leading digit gets a `key_`
/// prefix and a single leading underscore a `key` prefix (`__` names are
/// kept). An empty name stays empty (the caller drops it).
pub fn sanitize_label_name(name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.as_bytes()[0].is_ascii_digit() {
        format!("key_{s}")
    } else if s.starts_with('_') && !s.starts_with("__") {
        format!("key{s}")
    } else {
        s
    }
}

fn unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
}

/// The Prometheus name of an OTLP metric: sanitized, with unit suffixes and
/// `_total` for monotonic sums (`ratio` for gauges in unit `1`).
pub fn metric_name(metric: &pb::Metric) -> String {
    let (is_counter, is_gauge) = match &metric.data {
        Some(pb::metric::Data::Sum(s)) => (s.is_monotonic, false),
        Some(pb::metric::Data::Gauge(_)) => (false, true),
        _ => (false, false),
    };
    let mut toks: Vec<String> = tokens(&metric.name).map(str::to_string).collect();
    // Units in braces are annotations ({request}); drop them.
    let unit = {
        let mut u = String::new();
        let mut depth = 0;
        for c in metric.unit.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                c if depth == 0 => u.push(c),
                _ => {}
            }
        }
        u.trim().to_string()
    };
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), p.trim()),
        None => (unit.as_str(), ""),
    };
    let push_unique = |toks: &mut Vec<String>, w: &str| {
        if !toks.iter().any(|t| t == w) {
            toks.push(w.to_string());
        }
    };
    if !main.is_empty() && main != "1" {
        let w = unit_word(main)
            .map(str::to_string)
            .unwrap_or_else(|| tokens(main).collect::<Vec<_>>().join("_"));
        if !w.is_empty() {
            push_unique(&mut toks, &w);
        }
    }
    if !per.is_empty() {
        let w = per_unit_word(per)
            .map(str::to_string)
            .unwrap_or_else(|| tokens(per).collect::<Vec<_>>().join("_"));
        if !w.is_empty() && !toks.contains(&w) {
            toks.push("per".into());
            toks.push(w);
        }
    }
    if is_counter {
        toks.retain(|t| t != "total");
        toks.push("total".into());
    }
    if is_gauge && main == "1" {
        push_unique(&mut toks, "ratio");
    }
    let mut name = toks.join("_");
    if name.is_empty() {
        return "_".into();
    }
    if name.as_bytes()[0].is_ascii_digit() {
        name.insert(0, '_');
    }
    name
}
