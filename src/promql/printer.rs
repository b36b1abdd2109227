//! Canonical PromQL text for an [`Expr`], in the style of Prometheus's
//! `String()`: `sum by (job) (rate(x{a="b"}[5m] offset 1m))`. Printing and
//! re-parsing yields the same tree (the parser keeps parentheses as
//! [`Expr::Paren`], so the printer never needs to add any).

use super::ast::*;
use super::parser::{is_label_name, is_metric_name};
use crate::model::{METRIC_NAME, Matcher};
use std::fmt::{self, Write};

/// Formats milliseconds as a Prometheus duration (`1h30m`, `90d`, `100ms`,
/// `0s`). Years and weeks are used only when they divide the value exactly.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    const DAY: u64 = 24 * 3_600_000;
    for (unit, mult, exact) in [
        ("y", 365 * DAY, true),
        ("w", 7 * DAY, true),
        ("d", DAY, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if exact && !rest.is_multiple_of(mult) {
            continue;
        }
        let v = rest / mult;
        if v > 0 {
            let _ = write!(out, "{v}{unit}");
            rest -= v * mult;
        }
    }
    out
}

/// Formats a float the way it round-trips through the lexer: `Inf`, `-Inf`,
/// `NaN`, integers without a fraction, otherwise the shortest exact form.
pub fn format_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Inf".into() } else { "-Inf".into() }
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{v}")
    } else {
        // Debug gives the shortest representation that parses back exactly,
        // switching to exponent notation for very large or small values.
        format!("{v:?}")
    }
}

/// Quotes a string with Go's `%q` rules so the PromQL lexer reads it back.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_label_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if is_label_name(name) {
        f.write_str(name)
    } else {
        f.write_str(&quote(name))
    }
}

fn write_labels(f: &mut fmt::Formatter<'_>, labels: &[String]) -> fmt::Result {
    f.write_char('(')?;
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_label_name(f, l)?;
    }
    f.write_char(')')
}

fn write_matcher(f: &mut fmt::Formatter<'_>, m: &Matcher) -> fmt::Result {
    write_label_name(f, &m.name)?;
    write!(f, "{}{}", m.op, quote(&m.value))
}

impl fmt::Display for DurationExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationExpr::Number(v) => f.write_str(&format_number(*v)),
            DurationExpr::Step => f.write_str("step()"),
            DurationExpr::Range => f.write_str("range()"),
            DurationExpr::Unary(neg, e) => write!(f, "{}{e}", if *neg { '-' } else { '+' }),
            DurationExpr::Binary(op, a, b) => {
                write!(f, "{a} {} {b}", super::parser::op_str(*op))
            }
            DurationExpr::Paren(e) => write!(f, "({e})"),
            DurationExpr::MinOf(a, b) => write!(f, "min_of({a}, {b})"),
            DurationExpr::MaxOf(a, b) => write!(f, "max_of({a}, {b})"),
        }
    }
}

/// A range or step: the duration, or the unresolved duration expression.
fn duration_or_expr(ms: i64, e: &Option<DurationExpr>) -> String {
    match e {
        Some(e) => e.to_string(),
        None => format_duration(ms),
    }
}

fn write_at_offset(
    f: &mut fmt::Formatter<'_>,
    at: Option<AtModifier>,
    offset: i64,
    offset_expr: &Option<DurationExpr>,
) -> fmt::Result {
    match at {
        Some(AtModifier::Timestamp(ms)) => {
            let sign = if ms < 0 { "-" } else { "" };
            let a = ms.unsigned_abs();
            write!(f, " @ {sign}{}.{:03}", a / 1000, a % 1000)?;
        }
        Some(AtModifier::Start) => f.write_str(" @ start()")?,
        Some(AtModifier::End) => f.write_str(" @ end()")?,
        None => {}
    }
    match offset_expr {
        // Only a (signed) primary may follow `offset`.
        Some(e @ DurationExpr::Binary(..)) => write!(f, " offset ({e})")?,
        Some(e) => write!(f, " offset {e}")?,
        None if offset != 0 => write!(f, " offset {}", format_duration(offset))?,
        None => {}
    }
    Ok(())
}

fn write_anchored_smoothed(f: &mut fmt::Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    if vs.anchored {
        f.write_str(" anchored")?;
    }
    if vs.smoothed {
        f.write_str(" smoothed")?;
    }
    Ok(())
}

impl fmt::Display for VectorSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest: Vec<&Matcher> = self.matchers.iter().collect();
        let mut printed_name = false;
        if let Some(name) = &self.name {
            if let Some(i) = rest.iter().position(|m| {
                m.name == METRIC_NAME && m.op == crate::model::MatchOp::Equal && &m.value == name
            }) {
                rest.remove(i);
            }
            if is_metric_name(name) {
                f.write_str(name)?;
                printed_name = true;
            }
        }
        if !rest.is_empty() || !printed_name {
            f.write_char('{')?;
            if let (Some(name), false) = (&self.name, printed_name) {
                f.write_str(&quote(name))?;
                if !rest.is_empty() {
                    f.write_str(", ")?;
                }
            }
            for (i, m) in rest.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_matcher(f, m)?;
            }
            f.write_char('}')?;
        }
        write_at_offset(f, self.at, self.offset, &self.offset_expr)?;
        write_anchored_smoothed(f, self)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::NumberLiteral(v) => f.write_str(&format_number(*v)),
            Expr::StringLiteral(s) => f.write_str(&quote(s)),
            Expr::VectorSelector(vs) => vs.fmt(f),
            Expr::MatrixSelector(ms) => {
                let bare = VectorSelector {
                    offset: 0,
                    at: None,
                    offset_expr: None,
                    anchored: false,
                    smoothed: false,
                    ..ms.selector.clone()
                };
                write!(f, "{bare}[{}]", duration_or_expr(ms.range, &ms.range_expr))?;
                let s = &ms.selector;
                write_at_offset(f, s.at, s.offset, &s.offset_expr)?;
                write_anchored_smoothed(f, s)
            }
            Expr::Subquery(sq) => {
                write!(
                    f,
                    "{}[{}:",
                    sq.expr,
                    duration_or_expr(sq.range, &sq.range_expr)
                )?;
                if let Some(step) = sq.step {
                    f.write_str(&duration_or_expr(step, &sq.step_expr))?;
                }
                f.write_char(']')?;
                write_at_offset(f, sq.at, sq.offset, &sq.offset_expr)
            }
            Expr::Unary(op, e) => {
                f.write_char(if *op == UnaryOp::Neg { '-' } else { '+' })?;
                e.fmt(f)
            }
            Expr::Binary(b) => {
                write!(f, "{} {}", b.lhs, super::parser::op_str(b.op))?;
                if b.return_bool {
                    f.write_str(" bool")?;
                }
                if let Some(vm) = &b.matching {
                    let grouped =
                        matches!(vm.card, Cardinality::ManyToOne | Cardinality::OneToMany);
                    if vm.on || !vm.labels.is_empty() || grouped {
                        f.write_str(if vm.on { " on " } else { " ignoring " })?;
                        write_labels(f, &vm.labels)?;
                    }
                    if grouped {
                        f.write_str(if vm.card == Cardinality::ManyToOne {
                            " group_left "
                        } else {
                            " group_right "
                        })?;
                        write_labels(f, &vm.include)?;
                    }
                    match (vm.fill_lhs, vm.fill_rhs) {
                        (Some(l), Some(r)) if l.to_bits() == r.to_bits() => {
                            write!(f, " fill({})", format_number(l))?
                        }
                        (l, r) => {
                            if let Some(l) = l {
                                write!(f, " fill_left({})", format_number(l))?;
                            }
                            if let Some(r) = r {
                                write!(f, " fill_right({})", format_number(r))?;
                            }
                        }
                    }
                }
                write!(f, " {}", b.rhs)
            }
            Expr::Paren(e) => write!(f, "({e})"),
            Expr::Call(c) => {
                write!(f, "{}(", c.func)?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    a.fmt(f)?;
                }
                f.write_char(')')
            }
            Expr::Aggregate(a) => {
                f.write_str(super::parser::aggregate_name(a.op))?;
                if a.without {
                    f.write_str(" without ")?;
                    write_labels(f, &a.grouping)?;
                    f.write_char(' ')?;
                } else if !a.grouping.is_empty() {
                    f.write_str(" by ")?;
                    write_labels(f, &a.grouping)?;
                    f.write_char(' ')?;
                }
                f.write_char('(')?;
                if let Some(p) = &a.param {
                    write!(f, "{p}, ")?;
                }
                write!(f, "{})", a.expr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90_000), "1m30s");
        assert_eq!(format_duration(-300_000), "-5m");
        assert_eq!(format_duration(100), "100ms");
        assert_eq!(format_duration(86_400_000 * 90), "90d");
        assert_eq!(format_duration(86_400_000 * 14), "2w");
        assert_eq!(format_duration(86_400_000 * 365), "1y");
        assert_eq!(format_duration(3_601_001), "1h1s1ms");
    }

    #[test]
    fn numbers_and_strings() {
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(-0.5), "-0.5");
        assert_eq!(format_number(1e300), "1e300");
        assert_eq!(format_number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(quote("a\"b\\\n\u{1}é"), "\"a\\\"b\\\\\\n\\x01é\"");
    }
}
