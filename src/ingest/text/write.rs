//! Writing the text exposition format: the inverse of [`super::parse`].
//! Used by `watchpost tsdb dump` and by the round-trip property test.
//! Floats are printed like Go's `strconv.FormatFloat(v, 'g', -1, 64)`, as
//! Prometheus's own writer does.

use std::fmt::Write as _;

use super::float::format_g;
use super::parse::{Entry, TextSample};
use crate::model::{Labels, METRIC_NAME};

/// Appends a label value with `\\`, `\"` and `\n` escaped.
pub fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_tail(out: &mut String, v: f64, t: Option<i64>) {
    out.push(' ');
    out.push_str(&format_g(v));
    if let Some(t) = t {
        let _ = write!(out, " {t}");
    }
    out.push('\n');
}

/// Appends one sample line for a stored series: `name{a="b"} value [t]\n`.
/// The `__name__` label becomes the metric name; a series without one is
/// written with an empty name, which [`super::parse`] rejects (Prometheus
/// cannot express such a series in this format either).
pub fn write_series_sample(out: &mut String, labels: &Labels, v: f64, t: Option<i64>) {
    out.push_str(labels.metric_name().unwrap_or(""));
    let mut first = true;
    for l in labels.iter().filter(|l| &*l.name != METRIC_NAME) {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(&l.name);
        out.push_str("=\"");
        escape_label_value(out, &l.value);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    write_tail(out, v, t);
}

/// Appends one parsed entry back in text form.
pub fn write_entry(out: &mut String, e: &Entry) {
    match e {
        Entry::Help { name, text } => {
            let _ = write!(out, "# HELP {name} ");
            escape_help(out, text);
            out.push('\n');
        }
        Entry::Type { name, kind } => {
            let _ = writeln!(out, "# TYPE {name} {kind}");
        }
        Entry::Sample(TextSample {
            name,
            labels,
            value,
            timestamp,
            ..
        }) => {
            out.push_str(name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (n, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(n);
                    out.push_str("=\"");
                    escape_label_value(out, v);
                    out.push('"');
                }
                out.push('}');
            }
            write_tail(out, *value, *timestamp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_lines() {
        let mut out = String::new();
        let l = Labels::from_pairs([(METRIC_NAME, "up"), ("job", "a\"b\\c\nd")]);
        write_series_sample(&mut out, &l, 1e6, Some(1500));
        write_series_sample(
            &mut out,
            &Labels::from_pairs([(METRIC_NAME, "x")]),
            f64::NAN,
            None,
        );
        assert_eq!(out, "up{job=\"a\\\"b\\\\c\\nd\"} 1e+06 1500\nx NaN\n");
    }
}
