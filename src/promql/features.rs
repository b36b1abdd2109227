//! Which experimental PromQL features an expression uses, so an engine can
//! refuse the ones it does not implement instead of silently evaluating
//! them as if the modifier were absent.

use super::ast::Expr;
use super::functions::get_function;
use std::collections::BTreeSet;

/// One experimental feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Experimental {
    /// `[... step() ...]`, `offset range()` and friends that survive parsing
    /// (constant duration expressions are folded and not reported).
    DurationExpression,
    /// The `anchored` range modifier.
    Anchored,
    /// The `smoothed` modifier.
    Smoothed,
    /// `fill()`, `fill_left()`, `fill_right()`.
    Fill,
    /// A function marked experimental in the table (named).
    Function(&'static str),
}

/// Collects the experimental features used anywhere in `expr`.
pub fn experimental_features(expr: &Expr) -> BTreeSet<Experimental> {
    let mut out = BTreeSet::new();
    collect(expr, &mut out);
    out
}

fn collect(expr: &Expr, out: &mut BTreeSet<Experimental>) {
    let selector = |vs: &super::ast::VectorSelector, out: &mut BTreeSet<Experimental>| {
        if vs.offset_expr.is_some() {
            out.insert(Experimental::DurationExpression);
        }
        if vs.anchored {
            out.insert(Experimental::Anchored);
        }
        if vs.smoothed {
            out.insert(Experimental::Smoothed);
        }
    };
    match expr {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::VectorSelector(vs) => selector(vs, out),
        Expr::MatrixSelector(ms) => {
            selector(&ms.selector, out);
            if ms.range_expr.is_some() {
                out.insert(Experimental::DurationExpression);
            }
        }
        Expr::Subquery(sq) => {
            if sq.range_expr.is_some() || sq.step_expr.is_some() || sq.offset_expr.is_some() {
                out.insert(Experimental::DurationExpression);
            }
            collect(&sq.expr, out);
        }
        Expr::Unary(_, e) | Expr::Paren(e) => collect(e, out),
        Expr::Binary(b) => {
            if let Some(m) = &b.matching
                && (m.fill_lhs.is_some() || m.fill_rhs.is_some())
            {
                out.insert(Experimental::Fill);
            }
            collect(&b.lhs, out);
            collect(&b.rhs, out);
        }
        Expr::Call(c) => {
            if let Some(f) = get_function(&c.func).filter(|f| f.experimental) {
                out.insert(Experimental::Function(f.name));
            }
            for a in &c.args {
                collect(a, out);
            }
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                collect(p, out);
            }
            collect(&a.expr, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::parse;

    #[test]
    fn finds_features() {
        let e = parse("rate(x[1m] anchored) + fill(0) sort_by_label(y smoothed, \"a\")").unwrap();
        let f = experimental_features(&e);
        assert!(f.contains(&Experimental::Anchored));
        assert!(f.contains(&Experimental::Smoothed));
        assert!(f.contains(&Experimental::Fill));
        assert!(f.contains(&Experimental::Function("sort_by_label")));
        assert!(!f.contains(&Experimental::DurationExpression));
        let e = parse("x[5m + 1m]").unwrap();
        assert!(
            experimental_features(&e).is_empty(),
            "constant durations fold"
        );
        let e = parse("x[5m:step()]").unwrap();
        assert!(experimental_features(&e).contains(&Experimental::DurationExpression));
        let e = parse("sum(rate(x[5m])) by (a)").unwrap();
        assert!(experimental_features(&e).is_empty());
    }
}
