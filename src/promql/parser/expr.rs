//! Expressions: operators with Prometheus precedence, unary signs, postfix
//! modifiers (ranges, subqueries, `offset`, `@`), calls and aggregations.

use super::{Node, PResult, Parser};
use crate::promql::ast::*;
use crate::promql::error::ParseErrorKind;
use crate::promql::functions::{ValueType, Variadic, get_function};
use crate::promql::lexer::{Token, TokenKind};

/// A value with the byte range it was parsed from.
type Spanned<T> = (T, std::ops::Range<usize>);

/// A binary operator's position and modifiers.
struct BinModifiers {
    op_span: std::ops::Range<usize>,
    return_bool: bool,
    matching: Option<Spanned<VectorMatching>>,
}

/// `by`/`without` labels and whether it was `without`.
type Grouping = (Vec<String>, bool);

/// What an identifier in operand position starts.
enum IdentUse {
    Aggregate(AggregateOp),
    Call,
    Selector,
    Unexpected,
}

/// Precedence of `^`; unary operators bind just below it.
pub(super) const PREC_POW: u8 = 6;

pub(super) fn binary_op(p: &Parser<'_>) -> Option<BinaryOp> {
    let t = p.peek();
    Some(match t.kind {
        TokenKind::Add => BinaryOp::Add,
        TokenKind::Sub => BinaryOp::Sub,
        TokenKind::Mul => BinaryOp::Mul,
        TokenKind::Div => BinaryOp::Div,
        TokenKind::Mod => BinaryOp::Mod,
        TokenKind::Pow => BinaryOp::Pow,
        TokenKind::EqlC => BinaryOp::Eql,
        TokenKind::Neq => BinaryOp::Neq,
        TokenKind::Gtr => BinaryOp::Gtr,
        TokenKind::Lss => BinaryOp::Lss,
        TokenKind::Gte => BinaryOp::Gte,
        TokenKind::Lte => BinaryOp::Lte,
        TokenKind::Ident => match p.text(t).to_ascii_lowercase().as_str() {
            "and" => BinaryOp::And,
            "or" => BinaryOp::Or,
            "unless" => BinaryOp::Unless,
            "atan2" => BinaryOp::Atan2,
            _ => return None,
        },
        _ => return None,
    })
}

/// Binding strength; higher binds tighter.
pub(crate) fn precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And | BinaryOp::Unless => 2,
        BinaryOp::Eql
        | BinaryOp::Neq
        | BinaryOp::Gtr
        | BinaryOp::Lss
        | BinaryOp::Gte
        | BinaryOp::Lte => 3,
        BinaryOp::Add | BinaryOp::Sub => 4,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 => 5,
        BinaryOp::Pow => PREC_POW,
    }
}

/// The operator as written in PromQL.
pub fn op_str(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        BinaryOp::Mod => "%",
        BinaryOp::Pow => "^",
        BinaryOp::Atan2 => "atan2",
        BinaryOp::Eql => "==",
        BinaryOp::Neq => "!=",
        BinaryOp::Gtr => ">",
        BinaryOp::Lss => "<",
        BinaryOp::Gte => ">=",
        BinaryOp::Lte => "<=",
        BinaryOp::And => "and",
        BinaryOp::Or => "or",
        BinaryOp::Unless => "unless",
    }
}

/// Parses an aggregation keyword (any case).
pub(crate) fn aggregate_op(word: &str) -> Option<AggregateOp> {
    Some(match word.to_ascii_lowercase().as_str() {
        "sum" => AggregateOp::Sum,
        "avg" => AggregateOp::Avg,
        "count" => AggregateOp::Count,
        "min" => AggregateOp::Min,
        "max" => AggregateOp::Max,
        "group" => AggregateOp::Group,
        "stddev" => AggregateOp::Stddev,
        "stdvar" => AggregateOp::Stdvar,
        "topk" => AggregateOp::Topk,
        "bottomk" => AggregateOp::Bottomk,
        "count_values" => AggregateOp::CountValues,
        "quantile" => AggregateOp::Quantile,
        "limitk" => AggregateOp::Limitk,
        "limit_ratio" => AggregateOp::LimitRatio,
        _ => return None,
    })
}

/// True for aggregations that take a parameter before the expression.
pub(crate) fn takes_param(op: AggregateOp) -> bool {
    matches!(
        op,
        AggregateOp::Topk
            | AggregateOp::Bottomk
            | AggregateOp::CountValues
            | AggregateOp::Quantile
            | AggregateOp::Limitk
            | AggregateOp::LimitRatio
    )
}

fn is_scalar_or_vector(t: ValueType) -> bool {
    matches!(t, ValueType::Scalar | ValueType::Vector)
}

impl Parser<'_> {
    /// Parses an expression whose binary operators bind at least as
    /// tightly as `min_prec`.
    ///
    /// The functions on the recursive path (`parse_expr`, `parse_unary`,
    /// `parse_postfix`, `parse_primary`, `parse_paren`, `parse_call`,
    /// `parse_aggregate`, `parse_args`) keep few locals and leave checks and
    /// error formatting to non-recursive `#[inline(never)]` helpers, so each
    /// nesting level costs little stack even in debug builds.
    pub(crate) fn parse_expr(&mut self, min_prec: u8) -> PResult<Node> {
        self.enter()?;
        let mut lhs = self.parse_unary()?;
        while let Some(op) = binary_op(self) {
            let prec = precedence(op);
            if prec < min_prec {
                break;
            }
            let modifiers = self.parse_operator(op)?;
            let next_min = if op == BinaryOp::Pow { prec } else { prec + 1 };
            let rhs = self.parse_expr(next_min)?;
            lhs = self.make_binary(op, lhs, rhs, modifiers)?;
        }
        self.leave();
        Ok(lhs)
    }

    /// Consumes a binary operator and its modifiers.
    #[inline(never)]
    fn parse_operator(&mut self, op: BinaryOp) -> PResult<BinModifiers> {
        let op_tok = self.next();
        if matches!(op, BinaryOp::Gtr | BinaryOp::Lss)
            && self.peek().kind == TokenKind::Div
            && self.peek().span.start == op_tok.span.end
        {
            return Err(self.error_kind(
                op_tok.span.start..op_tok.span.end + 1,
                "the experimental histogram trim operators </ and >/ are not supported",
                ParseErrorKind::ExperimentalUnsupported,
            ));
        }
        let (return_bool, matching) = self.parse_bin_modifiers(op)?;
        Ok(BinModifiers {
            op_span: op_tok.span,
            return_bool,
            matching,
        })
    }

    fn parse_unary(&mut self) -> PResult<Node> {
        let op = match self.peek().kind {
            TokenKind::Sub => UnaryOp::Neg,
            TokenKind::Add => UnaryOp::Pos,
            _ => return self.parse_postfix(),
        };
        let start = self.next().span.start;
        let operand = self.parse_expr(PREC_POW)?;
        self.finish_unary(op, start, operand)
    }

    #[inline(never)]
    fn finish_unary(&self, op: UnaryOp, start: usize, operand: Node) -> PResult<Node> {
        let span = start..operand.span.end;
        if !is_scalar_or_vector(operand.ty) {
            return Err(self.error(
                span,
                format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                    operand.ty.to_string()
                ),
            ));
        }
        // Like Prometheus, a sign directly on a number literal is folded in.
        if let Expr::NumberLiteral(v) = *operand.expr {
            let v = if op == UnaryOp::Neg { -v } else { v };
            return self.node(
                Expr::NumberLiteral(v),
                span,
                ValueType::Scalar,
                operand.depth,
            );
        }
        self.node(
            Expr::Unary(op, operand.expr),
            span,
            operand.ty,
            operand.depth + 1,
        )
    }

    /// A primary expression followed by `[range]`, `[range:step]`, `offset`
    /// and `@` modifiers.
    fn parse_postfix(&mut self) -> PResult<Node> {
        let node = self.parse_primary()?;
        self.parse_postfix_modifiers(node)
    }

    #[inline(never)]
    fn parse_postfix_modifiers(&mut self, mut node: Node) -> PResult<Node> {
        loop {
            match self.peek().kind {
                TokenKind::LBracket => node = self.parse_range_or_subquery(node)?,
                TokenKind::At => node = self.parse_at(node)?,
                TokenKind::Ident if self.at_keyword("offset") => node = self.parse_offset(node)?,
                TokenKind::Ident if self.at_keyword("anchored") || self.at_keyword("smoothed") => {
                    node = self.parse_anchored_smoothed(node)?
                }
                _ => return Ok(node),
            }
        }
    }

    fn parse_primary(&mut self) -> PResult<Node> {
        match self.peek().kind {
            TokenKind::LParen => self.parse_paren(),
            TokenKind::LBrace => self.parse_vector_selector(),
            TokenKind::Ident => match self.classify_ident() {
                IdentUse::Aggregate(op) => self.parse_aggregate(op),
                IdentUse::Call => self.parse_call(),
                IdentUse::Selector => self.parse_vector_selector(),
                IdentUse::Unexpected => Err(self.unexpected("", None)),
            },
            _ => self.parse_literal(),
        }
    }

    /// Number, duration (as seconds) or string literal.
    #[inline(never)]
    fn parse_literal(&mut self) -> PResult<Node> {
        let t = self.peek().clone();
        let (expr, ty) = match t.kind {
            TokenKind::Number(v) => (Expr::NumberLiteral(v), ValueType::Scalar),
            TokenKind::Duration(ms) => (Expr::NumberLiteral(ms as f64 / 1000.0), ValueType::Scalar),
            TokenKind::Str(s) => (Expr::StringLiteral(s), ValueType::String),
            _ => return Err(self.unexpected("", None)),
        };
        self.next();
        self.node(expr, t.span, ty, 1)
    }

    /// What an identifier in operand position starts.
    #[inline(never)]
    fn classify_ident(&self) -> IdentUse {
        let word = self.text(self.peek());
        let next = self.peek_at(1);
        let next_is_grouping = next.kind == TokenKind::Ident
            && (self.text(next).eq_ignore_ascii_case("by")
                || self.text(next).eq_ignore_ascii_case("without"));
        if let Some(op) = aggregate_op(word)
            && (next.kind == TokenKind::LParen || next_is_grouping)
        {
            return IdentUse::Aggregate(op);
        }
        if Self::is_non_metric_keyword(word) {
            return IdentUse::Unexpected;
        }
        if next.kind == TokenKind::LParen {
            return IdentUse::Call;
        }
        IdentUse::Selector
    }

    fn parse_paren(&mut self) -> PResult<Node> {
        let start = self.next().span.start;
        self.check_not_eof("unclosed left parenthesis")?;
        let inner = self.parse_expr(0)?;
        self.finish_paren(start, inner)
    }

    #[inline(never)]
    fn finish_paren(&mut self, start: usize, inner: Node) -> PResult<Node> {
        self.check_not_eof("unclosed left parenthesis")?;
        let close = self.expect(TokenKind::RParen, "paren expression", "\")\"")?;
        self.node(
            Expr::Paren(inner.expr),
            start..close.span.end,
            inner.ty,
            inner.depth + 1,
        )
    }

    #[inline(never)]
    fn check_not_eof(&self, msg: &str) -> PResult<()> {
        if self.peek().kind == TokenKind::Eof {
            let t = self.peek().span.clone();
            return Err(self.error(t, msg));
        }
        Ok(())
    }

    /// Comma-separated arguments up to and including `)`; the `(` has been
    /// consumed. Returns the arguments and the end offset of `)`. Trailing
    /// commas are rejected like in Prometheus.
    fn parse_args(&mut self, context: &'static str, info: bool) -> PResult<(Vec<Node>, usize)> {
        let mut args = Vec::new();
        loop {
            if let Some(end) = self.args_end(args.is_empty(), context)? {
                return Ok((args, end));
            }
            // `info()`'s second argument may match the empty string.
            self.allow_empty_selector =
                info && args.len() == 1 && self.peek().kind == TokenKind::LBrace;
            let arg = self.parse_expr(0);
            self.allow_empty_selector = false;
            args.push(arg?);
        }
    }

    /// Before an argument: consumes `,` (returning `None`: another argument
    /// follows) or `)` (returning its end offset).
    #[inline(never)]
    fn args_end(&mut self, first: bool, context: &str) -> PResult<Option<usize>> {
        if first {
            return Ok(match self.peek().kind {
                TokenKind::RParen => Some(self.next().span.end),
                _ => None,
            });
        }
        match self.peek().kind {
            TokenKind::Comma => {
                let comma = self.next();
                if self.peek().kind == TokenKind::RParen {
                    return Err(self.error(
                        comma.span,
                        "trailing commas not allowed in function call args",
                    ));
                }
                Ok(None)
            }
            TokenKind::RParen => Ok(Some(self.next().span.end)),
            TokenKind::Eof => {
                let t = self.peek().span.clone();
                Err(self.error(t, "unclosed left parenthesis"))
            }
            _ => Err(self.unexpected(context, Some("\",\" or \")\""))),
        }
    }

    fn parse_call(&mut self) -> PResult<Node> {
        let name_tok = self.next();
        self.check_call_name(&name_tok)?;
        self.next(); // (
        let info = self.text(&name_tok) == "info";
        let (args, end) = self.parse_args("function call", info)?;
        self.finish_call(name_tok, args, end)
    }

    #[inline(never)]
    fn check_call_name(&self, name_tok: &Token) -> PResult<()> {
        let name = self.text(name_tok);
        if get_function(name).is_none() {
            return Err(self.error(
                name_tok.span.clone(),
                format!("unknown function with name {name:?}"),
            ));
        }
        Ok(())
    }

    /// Arity and argument-type checks of a call.
    #[inline(never)]
    fn finish_call(&self, name_tok: Token, args: Vec<Node>, end: usize) -> PResult<Node> {
        let name = self.text(&name_tok).to_string();
        let func = get_function(&name).expect("checked by check_call_name");
        let span = name_tok.span.start..end;
        let n = args.len();
        if func.variadic == Variadic::None {
            if n != func.arg_types.len() {
                return Err(self.error(
                    span,
                    format!(
                        "expected {} argument(s) in call to {name:?}, got {n}",
                        func.arg_types.len()
                    ),
                ));
            }
        } else {
            if n < func.min_args() {
                return Err(self.error(
                    span,
                    format!(
                        "expected at least {} argument(s) in call to {name:?}, got {n}",
                        func.min_args()
                    ),
                ));
            }
            if let Some(max) = func.max_args()
                && n > max
            {
                return Err(self.error(
                    span,
                    format!("expected at most {max} argument(s) in call to {name:?}, got {n}"),
                ));
            }
        }
        for (i, a) in args.iter().enumerate() {
            let want = func.arg_type(i);
            if a.ty != want {
                return Err(self.error(
                    a.span.clone(),
                    format!(
                        "expected type {want} in call to function {name:?}, got {}",
                        a.ty
                    ),
                ));
            }
        }
        for a in &args {
            if let Expr::MatrixSelector(m) = &*a.expr {
                let (what, allowed): (&str, &[&str]) = if m.selector.anchored {
                    (
                        "anchored",
                        &["changes", "delta", "increase", "rate", "resets"],
                    )
                } else if m.selector.smoothed {
                    ("smoothed", &["delta", "increase", "rate"])
                } else {
                    continue;
                };
                if !allowed.contains(&name.as_str()) {
                    return Err(self.error(
                        a.span.clone(),
                        format!(
                            "{what} modifier can only be used with: {} - not with {name}",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
        }
        let depth = args.iter().map(|a| a.depth).max().unwrap_or(0) + 1;
        self.node(
            Expr::Call(Call {
                func: name,
                args: args.into_iter().map(|a| *a.expr).collect(),
            }),
            span,
            func.return_type,
            depth,
        )
    }

    fn parse_aggregate(&mut self, op: AggregateOp) -> PResult<Node> {
        let head = self.parse_aggregate_head()?;
        let (args, end) = self.parse_args("aggregation", false)?;
        self.finish_aggregate(op, head, args, end)
    }

    /// The aggregation keyword, an optional leading `by`/`without` clause
    /// and the `(`. Returns the start offset and the grouping.
    #[inline(never)]
    fn parse_aggregate_head(&mut self) -> PResult<(usize, Option<Grouping>)> {
        let start = self.next().span.start;
        let mut grouping = None;
        if self.at_keyword("by") || self.at_keyword("without") {
            let without = self.next();
            let without = self.text(&without).eq_ignore_ascii_case("without");
            grouping = Some((self.parse_grouping_labels()?, without));
        }
        self.expect(TokenKind::LParen, "aggregation", "\"(\"")?;
        Ok((start, grouping))
    }

    #[inline(never)]
    fn finish_aggregate(
        &mut self,
        op: AggregateOp,
        head: (usize, Option<Grouping>),
        mut args: Vec<Node>,
        mut end: usize,
    ) -> PResult<Node> {
        let (start, mut grouping) = head;
        if self.at_keyword("by") || self.at_keyword("without") {
            if grouping.is_some() {
                return Err(self.unexpected("aggregation", None));
            }
            let without = self.next();
            let without = self.text(&without).eq_ignore_ascii_case("without");
            grouping = Some((self.parse_grouping_labels()?, without));
            end = self.prev_end();
        }
        let span = start..end;
        if args.is_empty() {
            return Err(self.error(span, "no arguments for aggregate expression provided"));
        }
        let want = if takes_param(op) { 2 } else { 1 };
        if args.len() != want {
            return Err(self.error(
                span,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
            ));
        }
        let expr = args.pop().expect("checked length");
        if expr.ty != ValueType::Vector {
            return Err(self.error(
                expr.span,
                format!(
                    "expected type instant vector in aggregation expression, got {}",
                    expr.ty
                ),
            ));
        }
        let param = args.pop();
        if let Some(p) = &param {
            let want = if op == AggregateOp::CountValues {
                ValueType::String
            } else {
                ValueType::Scalar
            };
            if p.ty != want {
                return Err(self.error(
                    p.span.clone(),
                    format!(
                        "expected type {want} in aggregation parameter, got {}",
                        p.ty
                    ),
                ));
            }
        }
        let depth = expr.depth.max(param.as_ref().map_or(0, |p| p.depth)) + 1;
        let (grouping, without) = grouping.unwrap_or_default();
        self.node(
            Expr::Aggregate(AggregateExpr {
                op,
                expr: expr.expr,
                param: param.map(|p| p.expr),
                grouping,
                without,
            }),
            span,
            ValueType::Vector,
            depth,
        )
    }

    fn parse_bin_modifiers(
        &mut self,
        op: BinaryOp,
    ) -> PResult<(bool, Option<Spanned<VectorMatching>>)> {
        let mut return_bool = false;
        if self.at_keyword("bool") {
            let t = self.next();
            if !op.is_comparison() {
                return Err(self.error(
                    t.span,
                    "bool modifier can only be used on comparison operators",
                ));
            }
            return_bool = true;
        }
        let mut matching = None;
        if self.at_keyword("on") || self.at_keyword("ignoring") {
            let t = self.next();
            let on = self.text(&t).eq_ignore_ascii_case("on");
            let labels = self.parse_grouping_labels()?;
            let mut vm = VectorMatching {
                fill_lhs: None,
                fill_rhs: None,
                card: if op.is_set() {
                    Cardinality::ManyToMany
                } else {
                    Cardinality::OneToOne
                },
                on,
                labels,
                include: Vec::new(),
            };
            let mut span = t.span.clone();
            if self.at_keyword("group_left") || self.at_keyword("group_right") {
                let g = self.next();
                span.end = g.span.end;
                if op.is_set() {
                    return Err(self.error(
                        g.span,
                        format!("no grouping allowed for \"{}\" operation", op_str(op)),
                    ));
                }
                vm.card = if self.text(&g).eq_ignore_ascii_case("group_left") {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                };
                if self.peek().kind == TokenKind::LParen {
                    vm.include = self.parse_grouping_labels()?;
                }
                if vm.on
                    && let Some(l) = vm.include.iter().find(|l| vm.labels.contains(l))
                {
                    return Err(self.error(
                        g.span,
                        format!("label {l:?} must not occur in ON and GROUP clause at once"),
                    ));
                }
            }
            matching = Some((vm, span));
        } else if self.at_keyword("group_left") || self.at_keyword("group_right") {
            return Err(self.unexpected("binary expression", Some("\"on\" or \"ignoring\"")));
        }
        self.parse_fill_modifiers(op, &mut matching)?;
        Ok((return_bool, matching))
    }

    /// The experimental `fill(v)`, `fill_left(v)` and `fill_right(v)`
    /// modifiers (after any `on`/`ignoring`/`group_*` clause). A metric
    /// named `fill` stays a metric: only `fill` followed by `(` counts.
    fn parse_fill_modifiers(
        &mut self,
        op: BinaryOp,
        matching: &mut Option<Spanned<VectorMatching>>,
    ) -> PResult<()> {
        loop {
            let which = ["fill", "fill_left", "fill_right"]
                .into_iter()
                .find(|f| self.at_keyword(f) && self.peek_at(1).kind == TokenKind::LParen);
            let Some(which) = which else { return Ok(()) };
            let kw = self.next();
            if op.is_set() {
                return Err(self.error(
                    kw.span,
                    format!(
                        "fill modifiers are not allowed with set operator \"{}\"",
                        op_str(op)
                    ),
                ));
            }
            self.next(); // (
            let neg = match self.peek().kind {
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
            let TokenKind::Number(v) = self.peek().kind else {
                return Err(self.unexpected("fill modifier", Some("number")));
            };
            self.next();
            let close = self.expect(TokenKind::RParen, "fill modifier", "\")\"")?;
            let v = if neg { -v } else { v };
            let (vm, span) = matching.get_or_insert_with(|| {
                (
                    VectorMatching {
                        card: Cardinality::OneToOne,
                        ..VectorMatching::default()
                    },
                    kw.span.clone(),
                )
            });
            span.end = close.span.end;
            let (lhs, rhs) = match which {
                "fill" => (true, true),
                "fill_left" => (true, false),
                _ => (false, true),
            };
            if (lhs && vm.fill_lhs.is_some()) || (rhs && vm.fill_rhs.is_some()) {
                return Err(self.error(kw.span, "fill value may not be set multiple times"));
            }
            if lhs {
                vm.fill_lhs = Some(v);
            }
            if rhs {
                vm.fill_rhs = Some(v);
            }
        }
    }

    #[inline(never)]
    fn make_binary(
        &self,
        op: BinaryOp,
        lhs: Node,
        rhs: Node,
        modifiers: BinModifiers,
    ) -> PResult<Node> {
        let BinModifiers {
            op_span,
            return_bool,
            matching,
        } = modifiers;
        let span = lhs.span.start..rhs.span.end;
        for side in [&lhs, &rhs] {
            if !is_scalar_or_vector(side.ty) {
                return Err(self.error(
                    side.span.clone(),
                    format!(
                        "binary expression must contain only scalar and instant vector types, got {}",
                        side.ty
                    ),
                ));
            }
        }
        let both_vectors = lhs.ty == ValueType::Vector && rhs.ty == ValueType::Vector;
        let any_scalar = lhs.ty == ValueType::Scalar || rhs.ty == ValueType::Scalar;
        let both_scalars = lhs.ty == ValueType::Scalar && rhs.ty == ValueType::Scalar;
        if op.is_comparison() && !return_bool && both_scalars {
            return Err(self.error(span, "comparisons between scalars must use BOOL modifier"));
        }
        if op.is_set() && any_scalar {
            return Err(self.error(
                op_span,
                format!(
                    "set operator \"{}\" not allowed in binary scalar expression",
                    op_str(op)
                ),
            ));
        }
        let matching = match matching {
            Some((vm, mspan)) => {
                if !both_vectors {
                    return Err(self.error(
                        mspan,
                        "vector matching only allowed between instant vectors",
                    ));
                }
                Some(vm)
            }
            None if both_vectors => Some(VectorMatching {
                fill_lhs: None,
                fill_rhs: None,
                card: if op.is_set() {
                    Cardinality::ManyToMany
                } else {
                    Cardinality::OneToOne
                },
                on: false,
                labels: Vec::new(),
                include: Vec::new(),
            }),
            None => None,
        };
        let ty = if both_scalars {
            ValueType::Scalar
        } else {
            ValueType::Vector
        };
        let depth = lhs.depth.max(rhs.depth) + 1;
        self.node(
            Expr::Binary(BinaryExpr {
                op,
                lhs: lhs.expr,
                rhs: rhs.expr,
                return_bool,
                matching,
            }),
            span,
            ty,
            depth,
        )
    }
}

/// The aggregation keyword as printed (lower case).
pub fn aggregate_name(op: AggregateOp) -> &'static str {
    match op {
        AggregateOp::Sum => "sum",
        AggregateOp::Avg => "avg",
        AggregateOp::Count => "count",
        AggregateOp::Min => "min",
        AggregateOp::Max => "max",
        AggregateOp::Group => "group",
        AggregateOp::Stddev => "stddev",
        AggregateOp::Stdvar => "stdvar",
        AggregateOp::Topk => "topk",
        AggregateOp::Bottomk => "bottomk",
        AggregateOp::CountValues => "count_values",
        AggregateOp::Quantile => "quantile",
        AggregateOp::Limitk => "limitk",
        AggregateOp::LimitRatio => "limit_ratio",
    }
}

/// Go's `ValueType` names, used in a few Prometheus messages.
pub(super) fn go_type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::Vector => "vector",
        ValueType::Matrix => "matrix",
        ValueType::String => "string",
    }
}

/// A float the way Go's `%f` prints it (`+Inf`, `-Inf`, `NaN`, `1.500000`).
pub(super) fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v:.6}")
    }
}
