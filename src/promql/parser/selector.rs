//! Vector selectors (`name{matchers}`) and label lists (`by (a, b)`).

use super::{Node, PResult, Parser};
use crate::model::{METRIC_NAME, MatchOp, Matcher};
use crate::promql::ast::{Expr, VectorSelector};
use crate::promql::functions::ValueType;
use crate::promql::lexer::{Token, TokenKind, is_ident_char, is_ident_start};

/// True for names matching `[a-zA-Z_][a-zA-Z0-9_]*` (classic label names).
pub fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_ident_start(b[0]) && b.iter().all(|c| is_ident_char(*c))
}

/// True for names matching `[a-zA-Z_:][a-zA-Z0-9_:]*` (classic metric names).
pub fn is_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (is_ident_start(b[0]) || b[0] == b':')
        && b.iter().all(|c| is_ident_char(*c) || *c == b':')
}

impl Parser<'_> {
    /// A bare label name token: an identifier or keyword, or `inf`/`nan`
    /// (which the lexer turned into numbers).
    fn label_name_of(&self, t: &Token) -> Option<String> {
        match t.kind {
            TokenKind::Ident | TokenKind::Number(_) if is_label_name(self.text(t)) => {
                Some(self.text(t).to_string())
            }
            _ => None,
        }
    }

    /// `( [label {, label}] [,] )` for `by`, `without`, `on`, `ignoring`,
    /// `group_left`, `group_right`. Labels may be quoted (UTF-8 names).
    pub(crate) fn parse_grouping_labels(&mut self) -> PResult<Vec<String>> {
        self.expect(TokenKind::LParen, "grouping opts", "\"(\"")?;
        let mut labels = Vec::new();
        loop {
            let t = self.peek().clone();
            if t.kind == TokenKind::RParen {
                self.next();
                return Ok(labels);
            }
            let name = match &t.kind {
                TokenKind::Str(s) => s.clone(),
                _ => match self.label_name_of(&t) {
                    Some(n) => n,
                    None => return Err(self.unexpected("grouping opts", Some("label"))),
                },
            };
            self.next();
            labels.push(name);
            match self.peek().kind {
                TokenKind::Comma => {
                    self.next();
                }
                TokenKind::RParen => {}
                _ => return Err(self.unexpected("grouping opts", Some("\",\" or \")\""))),
            }
        }
    }

    /// `name`, `name{...}` or `{...}`.
    pub(crate) fn parse_vector_selector(&mut self) -> PResult<Node> {
        let first = self.peek().clone();
        let mut name = None;
        if first.kind == TokenKind::Ident {
            self.next();
            let n = self.text(&first);
            if !is_metric_name(n) {
                return Err(self.error(first.span.clone(), format!("invalid metric name {n:?}")));
            }
            name = Some(n.to_string());
        }
        let mut matchers = Vec::new();
        let mut end = first.span.end;
        if self.peek().kind == TokenKind::LBrace {
            self.next();
            loop {
                let t = self.peek().clone();
                if t.kind == TokenKind::RBrace {
                    end = self.next().span.end;
                    break;
                }
                if t.kind == TokenKind::Eof {
                    return Err(self.error(t.span, "unexpected end of input inside braces"));
                }
                matchers.push(self.parse_matcher()?);
                match self.peek().kind {
                    TokenKind::Comma => {
                        self.next();
                    }
                    TokenKind::RBrace => {}
                    _ => {
                        return Err(self.unexpected("label matching", Some("\",\" or \"}\"")));
                    }
                }
            }
        }
        let span = first.span.start..end;
        if let Some(n) = &name {
            if let Some(m) = matchers.iter().find(|m| m.name == METRIC_NAME) {
                return Err(self.error(
                    span,
                    format!("metric name must not be set twice: {n:?} or {:?}", m.value),
                ));
            }
            matchers.insert(0, Matcher::equal(METRIC_NAME, n.clone()));
        }
        if !self.allow_empty_selector && !matchers.iter().any(|m| !m.matches_empty()) {
            return Err(self.error(
                span,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        self.node(
            Expr::VectorSelector(VectorSelector {
                name,
                matchers,
                ..VectorSelector::default()
            }),
            span,
            ValueType::Vector,
            1,
        )
    }

    /// `label op "value"`, `"label" op "value"` or a lone `"metric.name"`.
    fn parse_matcher(&mut self) -> PResult<Matcher> {
        let t = self.peek().clone();
        let (label, quoted) = match &t.kind {
            TokenKind::Str(s) => (s.clone(), true),
            _ => match self.label_name_of(&t) {
                Some(n) => (n, false),
                None => {
                    return Err(self.unexpected("label matching", Some("identifier or \"}\"")));
                }
            },
        };
        self.next();
        let op = match self.peek().kind {
            TokenKind::Assign => MatchOp::Equal,
            TokenKind::Neq => MatchOp::NotEqual,
            TokenKind::EqlRegex => MatchOp::RegexMatch,
            TokenKind::NeqRegex => MatchOp::RegexNoMatch,
            TokenKind::Comma | TokenKind::RBrace if quoted => {
                // A lone quoted string is the metric name (Prometheus 3.x).
                return Ok(Matcher::equal(METRIC_NAME, label));
            }
            _ => {
                return Err(self.unexpected("label matching", Some("label matching operator")));
            }
        };
        self.next();
        let v = self.peek().clone();
        let TokenKind::Str(value) = &v.kind else {
            return Err(self.unexpected("label matching", Some("string")));
        };
        self.next();
        Matcher::new(op, label, value.clone())
            .map_err(|e| self.error(t.span.start..v.span.end, e.to_string()))
    }
}
