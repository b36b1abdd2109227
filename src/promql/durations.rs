//! Experimental duration expressions (`[5m + step()]`, `offset
//! min_of(step(), 1m)`): evaluation and the per-query resolution pass.
//!
//! The parser folds constant duration expressions into the plain
//! millisecond fields, so only expressions that use `step()` or `range()`
//! reach the tree. Before evaluating a query, the engine calls
//! [`resolve_durations`] with the query's step and range (both 0 for instant
//! queries), like Prometheus's preprocessing does.

use super::ast::{BinaryOp, DurationExpr, Expr};

impl DurationExpr {
    /// True when the value does not depend on `step()` or `range()`.
    pub fn is_constant(&self) -> bool {
        match self {
            DurationExpr::Number(_) => true,
            DurationExpr::Step | DurationExpr::Range => false,
            DurationExpr::Unary(_, e) | DurationExpr::Paren(e) => e.is_constant(),
            DurationExpr::Binary(_, a, b)
            | DurationExpr::MinOf(a, b)
            | DurationExpr::MaxOf(a, b) => a.is_constant() && b.is_constant(),
        }
    }

    /// Evaluates to seconds, given the query step and range in seconds.
    pub fn eval_secs(&self, step: f64, range: f64) -> Result<f64, String> {
        Ok(match self {
            DurationExpr::Number(v) => *v,
            DurationExpr::Step => step,
            DurationExpr::Range => range,
            DurationExpr::Paren(e) => e.eval_secs(step, range)?,
            DurationExpr::Unary(neg, e) => {
                let v = e.eval_secs(step, range)?;
                if *neg { -v } else { v }
            }
            // Like Go's math.Min/Max, NaN wins.
            DurationExpr::MinOf(a, b) => {
                let (x, y) = (a.eval_secs(step, range)?, b.eval_secs(step, range)?);
                if x.is_nan() || y.is_nan() {
                    f64::NAN
                } else {
                    x.min(y)
                }
            }
            DurationExpr::MaxOf(a, b) => {
                let (x, y) = (a.eval_secs(step, range)?, b.eval_secs(step, range)?);
                if x.is_nan() || y.is_nan() {
                    f64::NAN
                } else {
                    x.max(y)
                }
            }
            DurationExpr::Binary(op, a, b) => {
                let (x, y) = (a.eval_secs(step, range)?, b.eval_secs(step, range)?);
                match op {
                    BinaryOp::Add => x + y,
                    BinaryOp::Sub => x - y,
                    BinaryOp::Mul => x * y,
                    BinaryOp::Div if y == 0.0 => {
                        return Err("division by zero in duration expression".into());
                    }
                    BinaryOp::Div => x / y,
                    BinaryOp::Mod if y == 0.0 => {
                        return Err("modulo by zero in duration expression".into());
                    }
                    BinaryOp::Mod => x % y,
                    BinaryOp::Pow => x.powf(y),
                    other => {
                        return Err(format!(
                            "operator {other:?} not allowed in duration expression"
                        ));
                    }
                }
            }
        })
    }

    /// Evaluates to whole milliseconds (rounded), rejecting non-finite and
    /// out-of-range results.
    pub fn eval_ms(&self, step_ms: i64, range_ms: i64) -> Result<i64, String> {
        let secs = self.eval_secs(step_ms as f64 / 1000.0, range_ms as f64 / 1000.0)?;
        let ms = (secs * 1000.0).round();
        if !ms.is_finite() || ms.abs() >= i64::MAX as f64 {
            return Err(format!(
                "duration expression evaluates to an invalid duration ({secs}s)"
            ));
        }
        Ok(ms as i64)
    }
}

/// Replaces every duration expression in `expr` by its value for a query
/// with the given step and range (milliseconds; 0 and 0 for instant
/// queries). Fails if a range or subquery step comes out non-positive.
pub fn resolve_durations(expr: &mut Expr, step_ms: i64, range_ms: i64) -> Result<(), String> {
    let positive = |ms: i64| {
        if ms > 0 {
            Ok(ms)
        } else {
            Err(format!("duration must be greater than 0, got {ms}ms"))
        }
    };
    match expr {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::VectorSelector(vs) => {
            if let Some(e) = vs.offset_expr.take() {
                vs.offset = e.eval_ms(step_ms, range_ms)?;
            }
        }
        Expr::MatrixSelector(ms) => {
            if let Some(e) = ms.range_expr.take() {
                ms.range = positive(e.eval_ms(step_ms, range_ms)?)?;
            }
            if let Some(e) = ms.selector.offset_expr.take() {
                ms.selector.offset = e.eval_ms(step_ms, range_ms)?;
            }
        }
        Expr::Subquery(sq) => {
            if let Some(e) = sq.range_expr.take() {
                sq.range = positive(e.eval_ms(step_ms, range_ms)?)?;
            }
            if let Some(e) = sq.step_expr.take() {
                sq.step = Some(positive(e.eval_ms(step_ms, range_ms)?)?);
            }
            if let Some(e) = sq.offset_expr.take() {
                sq.offset = e.eval_ms(step_ms, range_ms)?;
            }
            resolve_durations(&mut sq.expr, step_ms, range_ms)?;
        }
        Expr::Unary(_, e) | Expr::Paren(e) => resolve_durations(e, step_ms, range_ms)?,
        Expr::Binary(b) => {
            resolve_durations(&mut b.lhs, step_ms, range_ms)?;
            resolve_durations(&mut b.rhs, step_ms, range_ms)?;
        }
        Expr::Call(c) => {
            for a in &mut c.args {
                resolve_durations(a, step_ms, range_ms)?;
            }
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &mut a.param {
                resolve_durations(p, step_ms, range_ms)?;
            }
            resolve_durations(&mut a.expr, step_ms, range_ms)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::parse;

    #[test]
    fn resolves_step_and_range() {
        let mut e =
            parse("count_over_time(m[step() + 1ms])[range():step()] offset min_of(step(), 1s)")
                .unwrap();
        resolve_durations(&mut e, 5_000, 10_000).unwrap();
        let Expr::Subquery(sq) = &e else { panic!() };
        assert_eq!((sq.range, sq.step, sq.offset), (10_000, Some(5_000), 1_000));
        assert!(sq.range_expr.is_none() && sq.step_expr.is_none() && sq.offset_expr.is_none());
        let Expr::Call(c) = &*sq.expr else { panic!() };
        let Expr::MatrixSelector(m) = &c.args[0] else {
            panic!()
        };
        assert_eq!(m.range, 5_001);
        // Instant queries: step() and range() are 0.
        let mut e = parse("m[step()]").unwrap();
        assert!(
            resolve_durations(&mut e, 0, 0)
                .unwrap_err()
                .contains("greater than 0")
        );
        let mut e = parse("m offset -step() * 2").unwrap();
        resolve_durations(&mut e, 5_000, 0).unwrap();
        let Expr::Binary(b) = &e else { panic!() };
        let Expr::VectorSelector(vs) = &*b.lhs else {
            panic!()
        };
        assert_eq!(vs.offset, -5_000);
    }

    #[test]
    fn eval_arithmetic() {
        let e = DurationExpr::Binary(
            BinaryOp::Div,
            Box::new(DurationExpr::Step),
            Box::new(DurationExpr::Number(0.0)),
        );
        assert!(e.eval_ms(1000, 0).is_err());
        let e = DurationExpr::MaxOf(
            Box::new(DurationExpr::Range),
            Box::new(DurationExpr::Number(3.0)),
        );
        assert_eq!(e.eval_ms(0, 1000).unwrap(), 3000);
        assert!(!e.is_constant());
    }
}
