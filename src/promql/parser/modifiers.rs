//! Postfix modifiers: `[range]`, `[range:step]`, `offset`, `@`, and the
//! experimental `anchored`/`smoothed` modifiers and duration expressions
//! (`[5m + step()]`, `offset min_of(step(), 1s)`).

use super::expr::{PREC_POW, binary_op, go_float, go_type_name, precedence};
use super::{Node, PResult, Parser};
use crate::promql::ast::*;
use crate::promql::functions::ValueType;
use crate::promql::lexer::TokenKind;
use std::ops::Range;

/// A parsed duration: folded to milliseconds, or kept as an expression
/// because it uses `step()` or `range()`.
enum Dur {
    Const(i64),
    Expr(DurationExpr),
}

impl Dur {
    /// Milliseconds and expression for storing in the tree (0 while the
    /// expression is unresolved).
    fn split(self) -> (i64, Option<DurationExpr>) {
        match self {
            Dur::Const(ms) => (ms, None),
            Dur::Expr(e) => (0, Some(e)),
        }
    }
}

const DURATION_EXPECTED: &str = "number, duration, step(), or range()";

impl Parser<'_> {
    /// `[range]` on a selector or `[range:step]` on any instant expression.
    pub(super) fn parse_range_or_subquery(&mut self, node: Node) -> PResult<Node> {
        let open = self.next();
        let (range, rspan) = self.parse_bracket_duration("subquery or range selector")?;
        self.check_positive(&range, rspan)?;
        if self.peek().kind == TokenKind::Colon {
            self.next();
            let step = if self.peek().kind == TokenKind::RBracket {
                None
            } else {
                let (s, sspan) = self.parse_bracket_duration("subquery step")?;
                self.check_positive(&s, sspan)?;
                Some(s)
            };
            let close = self.expect(TokenKind::RBracket, "subquery selector", "\"]\"")?;
            if node.ty != ValueType::Vector {
                return Err(self.error(
                    node.span.clone(),
                    format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        go_type_name(node.ty)
                    ),
                ));
            }
            let span = node.span.start..close.span.end;
            let depth = node.depth + 1;
            let (range, range_expr) = range.split();
            let (step, step_expr) = match step.map(Dur::split) {
                Some((ms, e)) => (Some(ms), e),
                None => (None, None),
            };
            return self.node(
                Expr::Subquery(SubqueryExpr {
                    expr: node.expr,
                    range,
                    step,
                    offset: 0,
                    at: None,
                    range_expr,
                    step_expr,
                    offset_expr: None,
                }),
                span,
                ValueType::Matrix,
                depth,
            );
        }
        let close = self.expect(TokenKind::RBracket, "matrix selector", "\"]\" or \":\"")?;
        let span = node.span.start..close.span.end;
        match *node.expr {
            Expr::VectorSelector(vs) => {
                if vs.offset != 0 || vs.offset_expr.is_some() {
                    return Err(self.error(open.span, "no offset modifiers allowed before range"));
                }
                if vs.at.is_some() {
                    return Err(self.error(open.span, "no @ modifiers allowed before range"));
                }
                if vs.anchored || vs.smoothed {
                    return Err(self.error(
                        open.span,
                        "no anchored or smoothed modifiers allowed before range",
                    ));
                }
                let (range, range_expr) = range.split();
                self.node(
                    Expr::MatrixSelector(MatrixSelector {
                        selector: vs,
                        range,
                        range_expr,
                    }),
                    span,
                    ValueType::Matrix,
                    node.depth,
                )
            }
            _ => Err(self.error(node.span, "ranges only allowed for vector selectors")),
        }
    }

    fn check_positive(&self, d: &Dur, span: Range<usize>) -> PResult<()> {
        match d {
            Dur::Const(ms) if *ms <= 0 => Err(self.error(span, "duration must be greater than 0")),
            _ => Ok(()),
        }
    }

    /// A whole duration expression inside brackets (up to `:` or `]`).
    fn parse_bracket_duration(&mut self, context: &str) -> PResult<(Dur, Range<usize>)> {
        let start = self.peek().span.start;
        let e = self.parse_dur_expr(0, context)?;
        let span = start..self.prev_end();
        Ok((self.fold(e, span.clone())?, span))
    }

    /// After `offset`: an optionally signed duration, number, `(expr)`,
    /// `step()`, `range()`, `min_of(..)` or `max_of(..)`. Operators after it
    /// belong to the enclosing expression: `foo offset 5m + 1`.
    fn parse_offset_duration(&mut self) -> PResult<(Dur, Range<usize>)> {
        let start = self.peek().span.start;
        let e = match self.peek().kind {
            TokenKind::Sub | TokenKind::Add => {
                let neg = self.next().kind == TokenKind::Sub;
                DurationExpr::Unary(neg, Box::new(self.parse_dur_primary("offset")?))
            }
            _ => self.parse_dur_primary("offset")?,
        };
        let span = start..self.prev_end();
        Ok((self.fold(e, span.clone())?, span))
    }

    /// Folds constant expressions to milliseconds.
    fn fold(&self, e: DurationExpr, span: Range<usize>) -> PResult<Dur> {
        if !e.is_constant() {
            return Ok(Dur::Expr(e));
        }
        e.eval_ms(0, 0)
            .map(Dur::Const)
            .map_err(|msg| self.error(span, msg))
    }

    fn parse_dur_expr(&mut self, min_prec: u8, context: &str) -> PResult<DurationExpr> {
        self.enter()?;
        let mut lhs = match self.peek().kind {
            TokenKind::Sub | TokenKind::Add => {
                let neg = self.next().kind == TokenKind::Sub;
                DurationExpr::Unary(neg, Box::new(self.parse_dur_expr(PREC_POW, context)?))
            }
            _ => self.parse_dur_primary(context)?,
        };
        while let Some(op) = binary_op(self) {
            if !matches!(
                op,
                BinaryOp::Add
                    | BinaryOp::Sub
                    | BinaryOp::Mul
                    | BinaryOp::Div
                    | BinaryOp::Mod
                    | BinaryOp::Pow
            ) {
                break;
            }
            let prec = precedence(op);
            if prec < min_prec {
                break;
            }
            self.next();
            let next_min = if op == BinaryOp::Pow { prec } else { prec + 1 };
            let rhs = self.parse_dur_expr(next_min, context)?;
            lhs = DurationExpr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        self.leave();
        Ok(lhs)
    }

    fn parse_dur_primary(&mut self, context: &str) -> PResult<DurationExpr> {
        let t = self.peek().clone();
        match t.kind {
            TokenKind::Number(secs) => {
                self.next();
                Ok(DurationExpr::Number(secs))
            }
            TokenKind::Duration(ms) => {
                self.next();
                Ok(DurationExpr::Number(ms as f64 / 1000.0))
            }
            TokenKind::LParen => {
                self.next();
                let inner = self.parse_dur_expr(0, context)?;
                self.expect(TokenKind::RParen, "duration expression", "\")\"")?;
                Ok(DurationExpr::Paren(Box::new(inner)))
            }
            TokenKind::Ident if self.peek_at(1).kind == TokenKind::LParen => {
                let word = self.text(&t).to_ascii_lowercase();
                match word.as_str() {
                    "step" | "range" => {
                        self.next();
                        self.next();
                        self.expect(TokenKind::RParen, "duration expression", "\")\"")?;
                        Ok(if word == "step" {
                            DurationExpr::Step
                        } else {
                            DurationExpr::Range
                        })
                    }
                    "min_of" | "max_of" => {
                        self.next();
                        self.next();
                        let a = self.parse_dur_expr(0, context)?;
                        self.expect(TokenKind::Comma, "duration expression", "\",\"")?;
                        let b = self.parse_dur_expr(0, context)?;
                        self.expect(TokenKind::RParen, "duration expression", "\")\"")?;
                        let (a, b) = (Box::new(a), Box::new(b));
                        Ok(if word == "min_of" {
                            DurationExpr::MinOf(a, b)
                        } else {
                            DurationExpr::MaxOf(a, b)
                        })
                    }
                    _ => Err(self.unexpected(context, Some(DURATION_EXPECTED))),
                }
            }
            _ => Err(self.unexpected(context, Some(DURATION_EXPECTED))),
        }
    }

    pub(super) fn parse_offset(&mut self, mut node: Node) -> PResult<Node> {
        let kw = self.next();
        let (dur, dspan) = self.parse_offset_duration()?;
        let (off, off_expr) = dur.split();
        let slots = match &mut *node.expr {
            Expr::VectorSelector(vs) => Some((&mut vs.offset, &mut vs.offset_expr)),
            Expr::MatrixSelector(ms) => {
                Some((&mut ms.selector.offset, &mut ms.selector.offset_expr))
            }
            Expr::Subquery(sq) => Some((&mut sq.offset, &mut sq.offset_expr)),
            _ => None,
        };
        let Some((offset, offset_expr)) = slots else {
            return Err(self.error(
                kw.span,
                "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
            ));
        };
        if *offset != 0 || offset_expr.is_some() {
            return Err(self.error(kw.span, "offset may not be set multiple times"));
        }
        *offset = off;
        *offset_expr = off_expr;
        node.span.end = dspan.end;
        Ok(node)
    }

    /// The experimental `anchored` / `smoothed` modifiers on a selector.
    pub(super) fn parse_anchored_smoothed(&mut self, mut node: Node) -> PResult<Node> {
        let t = self.next();
        let anchored = self.text(&t).eq_ignore_ascii_case("anchored");
        let vs = match &mut *node.expr {
            Expr::VectorSelector(vs) if !anchored => vs,
            Expr::MatrixSelector(ms) => &mut ms.selector,
            _ => {
                let what = if anchored { "anchored" } else { "smoothed" };
                let target = if anchored {
                    "a range vector selector"
                } else {
                    "an instant or range vector selector"
                };
                return Err(self.error(
                    t.span,
                    format!("{what} modifier must be preceded by {target}"),
                ));
            }
        };
        if vs.anchored || vs.smoothed {
            return Err(self.error(
                t.span,
                "anchored and smoothed modifiers may be given only once per selector",
            ));
        }
        if anchored {
            vs.anchored = true;
        } else {
            vs.smoothed = true;
        }
        node.span.end = t.span.end;
        Ok(node)
    }

    pub(super) fn parse_at(&mut self, mut node: Node) -> PResult<Node> {
        let at_tok = self.next();
        let t = self.peek().clone();
        let (at, end) = match t.kind {
            TokenKind::Ident if self.at_keyword("start") || self.at_keyword("end") => {
                let is_start = self.at_keyword("start");
                self.next();
                self.expect(TokenKind::LParen, "@ modifier", "\"(\"")?;
                let close = self.expect(TokenKind::RParen, "@ modifier", "\")\"")?;
                (
                    if is_start {
                        AtModifier::Start
                    } else {
                        AtModifier::End
                    },
                    close.span.end,
                )
            }
            _ => {
                let neg = match t.kind {
                    TokenKind::Sub => {
                        self.next();
                        true
                    }
                    TokenKind::Add => {
                        self.next();
                        false
                    }
                    _ => false,
                };
                let v = self.peek().clone();
                let secs = match v.kind {
                    TokenKind::Number(x) => x,
                    TokenKind::Duration(ms) => ms as f64 / 1000.0,
                    _ => return Err(self.unexpected("@", Some("timestamp"))),
                };
                self.next();
                let secs = if neg { -secs } else { secs };
                let ms = (secs * 1000.0).round();
                if !ms.is_finite() || ms >= i64::MAX as f64 || ms <= i64::MIN as f64 {
                    return Err(self.error(
                        t.span.start..v.span.end,
                        format!("timestamp out of bounds for @ modifier: {}", go_float(secs)),
                    ));
                }
                (AtModifier::Timestamp(ms as i64), v.span.end)
            }
        };
        let slot = match &mut *node.expr {
            Expr::VectorSelector(vs) => &mut vs.at,
            Expr::MatrixSelector(ms) => &mut ms.selector.at,
            Expr::Subquery(sq) => &mut sq.at,
            _ => {
                return Err(self.error(
                    at_tok.span,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ));
            }
        };
        if slot.replace(at).is_some() {
            return Err(self.error(at_tok.span, "@ <timestamp> may not be set multiple times"));
        }
        node.span.end = end;
        Ok(node)
    }
}
