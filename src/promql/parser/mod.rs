//! Hand-written PromQL parser: a precedence-climbing expression parser over
//! the token list from [`super::lexer`], with Prometheus's type checks done
//! while the tree is built (so every error has a position).
//!
//! # Regular expressions: RE2 versus the `regex` crate
//!
//! Regex matchers are compiled by [`crate::model::Matcher`], anchored as
//! `^(?s:...)$` exactly like Prometheus (so `.` also matches `\n`). Both Go's
//! RE2 and the `regex` crate are linear-time engines with nearly the same
//! syntax; the known differences are:
//! * `\C` (any byte) exists only in RE2; the `regex` crate rejects it.
//! * `\pN` style one-letter classes and Unicode class names: the `regex` crate
//!   knows more Unicode properties (scripts, `\p{Greek}` both do), and its
//!   `\w`, `\d`, `\s`, `\b` are Unicode-aware by default where RE2's are
//!   ASCII-only. Prometheus users nearly always match ASCII, where the two
//!   agree; write `[0-9]` instead of `\d` for strict equality.
//! * The `regex` crate accepts a few constructs RE2 rejects (for example
//!   character-class set operations `[a-z&&[^aeiou]]` and `(?<name>...)` is
//!   accepted by both in recent versions) and rejects some escapes RE2 allows
//!   (for example `\Q...\E` quoting; `\z` exists in both).
//! * Repetition limits differ: RE2 caps `{n,m}` at 1000, the `regex` crate
//!   has a compiled-size limit instead, so huge counts fail with a different
//!   message.
//!
//! Errors from the regex engine are reported with the matcher's position.

mod expr;
mod modifiers;
mod selector;

pub use selector::{is_label_name, is_metric_name};

use super::ast::Expr;
use super::error::{ParseError, ParseErrorKind};
use super::functions::ValueType;

use super::lexer::{Token, TokenKind, lex};
use crate::model::Matcher;
use std::ops::Range;

/// Default maximum nesting depth of an expression tree (parentheses,
/// function calls, chains of binary operators all count). Deep enough for
/// any hand-written or generated query seen in practice, shallow enough that
/// the parser, printer, evaluator and `Drop` never run out of stack on a
/// 2 MiB thread.
pub const DEFAULT_MAX_DEPTH: usize = 500;

/// Default stack budget of the recursive-descent parser, in bytes. Half of
/// the smallest thread stack the crate runs on (2 MiB: test threads, tokio
/// workers), so parsing never overflows even in debug builds, where each
/// nesting level takes several KiB.
pub const DEFAULT_STACK_BUDGET: usize = 1 << 20;

/// Parser settings.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Maximum height of the expression tree (parentheses, calls and chains
    /// of binary operators all count); higher trees are rejected with
    /// [`ParseErrorKind::TooDeep`]. Callers that raise it must make sure
    /// their stack can hold the tree when printing, evaluating or dropping it.
    pub max_depth: usize,
    /// Maximum stack the parser itself may use, in bytes; deeper nesting is
    /// rejected with [`ParseErrorKind::TooDeep`].
    pub stack_budget: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_depth: DEFAULT_MAX_DEPTH,
            stack_budget: DEFAULT_STACK_BUDGET,
        }
    }
}

/// An address on the current stack (for measuring stack use; never
/// dereferenced).
#[inline(never)]
fn stack_position() -> usize {
    let probe = 0u8;
    std::hint::black_box(&probe) as *const u8 as usize
}

/// Parses a PromQL expression with default options.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    parse_with_options(input, &ParseOptions::default())
}

/// Parses a PromQL expression.
pub fn parse_with_options(input: &str, opts: &ParseOptions) -> Result<Expr, ParseError> {
    let mut p = Parser::new(input, *opts);
    let run = |p: &mut Parser<'_>| -> PResult<Expr> {
        if p.peek().kind == TokenKind::Eof {
            return Err(p.error(0..0, "no expression found in input"));
        }
        let node = p.parse_expr(0)?;
        p.expect_eof()?;
        Ok(*node.expr)
    };
    run(&mut p).map_err(|e| *e)
}

/// Parses a bare series selector (`foo{a="b"}`, `{__name__=~"x.*"}`), as
/// used by the `match[]` API parameter. Returns all matchers, including the
/// `__name__` matcher for a metric name written outside the braces.
pub fn parse_metric_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    let mut p = Parser::new(input, ParseOptions::default());
    metric_selector(&mut p).map_err(|e| *e)
}

fn metric_selector(p: &mut Parser<'_>) -> PResult<Vec<Matcher>> {
    let tok = p.peek().clone();
    let node = match tok.kind {
        TokenKind::Ident | TokenKind::LBrace => p.parse_vector_selector()?,
        _ => return Err(p.unexpected("metric selector", Some("label matching"))),
    };
    p.expect_eof()?;
    match *node.expr {
        Expr::VectorSelector(vs) => Ok(vs.matchers),
        _ => Err(p.error(node.span, "expected a vector selector")),
    }
}

/// Internal result type: errors are boxed so that results passed up the
/// recursive descent stay small (each nesting level costs less stack).
pub(crate) type PResult<T> = Result<T, Box<ParseError>>;

/// A parsed subtree with what the type checker needs.
#[derive(Debug)]
pub(crate) struct Node {
    /// Boxed so that results passed up the recursive descent stay small.
    pub(crate) expr: Box<Expr>,
    pub(crate) span: Range<usize>,
    pub(crate) ty: ValueType,
    /// Height of the tree (a leaf is 1).
    pub(crate) depth: usize,
}

pub(crate) struct Parser<'a> {
    pub(crate) input: &'a str,
    toks: Vec<Token>,
    pos: usize,
    /// Current recursion depth of `parse_expr`.
    nesting: usize,
    /// Stack position when parsing started.
    stack_base: usize,
    opts: ParseOptions,
    /// Set while parsing the label-selector argument of `info()`, which
    /// Prometheus allows to match the empty string (`{data=~".*"}`).
    pub(crate) allow_empty_selector: bool,
}

/// Keywords that can never be metric names.
const NON_METRIC_KEYWORDS: &[&str] = &[
    "atan2",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Aggregation operator keywords.
pub(crate) const AGGREGATORS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Other keywords (shown as `<kw>` in messages).
const KEYWORDS: &[&str] = &[
    "by", "without", "offset", "start", "end", "step", "range", "anchored", "smoothed",
];

impl<'a> Parser<'a> {
    pub(crate) fn new(input: &'a str, opts: ParseOptions) -> Self {
        Parser {
            input,
            toks: lex(input),
            pos: 0,
            nesting: 0,
            stack_base: stack_position(),
            opts,
            allow_empty_selector: false,
        }
    }

    pub(crate) fn peek(&self) -> &Token {
        &self.toks[self.pos]
    }

    /// The token `n` positions ahead (clamped to the final token).
    pub(crate) fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }

    pub(crate) fn next(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    /// End offset of the most recently consumed token.
    pub(crate) fn prev_end(&self) -> usize {
        self.toks[self.pos.saturating_sub(1)].span.end
    }

    pub(crate) fn text(&self, t: &Token) -> &'a str {
        &self.input[t.span.clone()]
    }

    /// True if the next token is the identifier `kw` (case-insensitive).
    pub(crate) fn at_keyword(&self, kw: &str) -> bool {
        let t = self.peek();
        t.kind == TokenKind::Ident && self.text(t).eq_ignore_ascii_case(kw)
    }

    pub(crate) fn error(&self, span: Range<usize>, msg: impl Into<String>) -> Box<ParseError> {
        Box::new(ParseError::new(self.input, span, msg))
    }

    pub(crate) fn error_kind(
        &self,
        span: Range<usize>,
        msg: impl Into<String>,
        kind: ParseErrorKind,
    ) -> Box<ParseError> {
        Box::new(ParseError::with_kind(self.input, span, msg, kind))
    }

    /// Describes a token the way Prometheus does in "unexpected ..." messages.
    pub(crate) fn describe(&self, t: &Token) -> String {
        let text = self.text(t);
        match &t.kind {
            TokenKind::Eof => "end of input".into(),
            TokenKind::Error(m) => m.clone(),
            TokenKind::Ident => {
                let lower = text.to_ascii_lowercase();
                if AGGREGATORS.contains(&lower.as_str()) {
                    format!("<aggr:{lower}>")
                } else if matches!(lower.as_str(), "and" | "or" | "unless" | "atan2") {
                    format!("<op:{lower}>")
                } else if NON_METRIC_KEYWORDS.contains(&lower.as_str())
                    || KEYWORDS.contains(&lower.as_str())
                {
                    format!("<{lower}>")
                } else {
                    format!("identifier {text:?}")
                }
            }
            TokenKind::Number(_) => format!("number {text:?}"),
            TokenKind::Duration(_) => format!("duration {text:?}"),
            TokenKind::Str(_) => format!("string {text:?}"),
            TokenKind::Add
            | TokenKind::Sub
            | TokenKind::Mul
            | TokenKind::Div
            | TokenKind::Mod
            | TokenKind::Pow
            | TokenKind::EqlC
            | TokenKind::Neq
            | TokenKind::Gtr
            | TokenKind::Lss
            | TokenKind::Gte
            | TokenKind::Lte
            | TokenKind::EqlRegex
            | TokenKind::NeqRegex
            | TokenKind::At => format!("<op:{text}>"),
            _ => format!("{text:?}"),
        }
    }

    /// "unexpected X [in CONTEXT][, expected WHAT]" at the next token. A
    /// lexical error token reports its own message instead.
    pub(crate) fn unexpected(&self, context: &str, expected: Option<&str>) -> Box<ParseError> {
        let t = self.peek();
        if let TokenKind::Error(m) = &t.kind {
            return self.error(t.span.clone(), m.clone());
        }
        let mut msg = format!("unexpected {}", self.describe(t));
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if let Some(e) = expected {
            msg.push_str(", expected ");
            msg.push_str(e);
        }
        self.error(t.span.clone(), msg)
    }

    pub(crate) fn expect(
        &mut self,
        kind: TokenKind,
        context: &str,
        expected: &str,
    ) -> PResult<Token> {
        if self.peek().kind == kind {
            Ok(self.next())
        } else {
            Err(self.unexpected(context, Some(expected)))
        }
    }

    pub(crate) fn expect_eof(&mut self) -> PResult<()> {
        match self.peek().kind {
            TokenKind::Eof => Ok(()),
            TokenKind::RParen => {
                let t = self.peek().span.clone();
                Err(self.error(t, "unexpected right parenthesis ')'"))
            }
            _ => Err(self.unexpected("", None)),
        }
    }

    /// Enters one level of recursion, enforcing the depth limit.
    pub(crate) fn enter(&mut self) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > self.opts.max_depth
            || stack_position().abs_diff(self.stack_base) > self.opts.stack_budget
        {
            let span = self.peek().span.clone();
            return Err(self.too_deep(span));
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.nesting -= 1;
    }

    pub(crate) fn too_deep(&self, span: Range<usize>) -> Box<ParseError> {
        self.error_kind(
            span,
            format!(
                "expression nests too deeply (more than {} levels)",
                self.opts.max_depth
            ),
            ParseErrorKind::TooDeep,
        )
    }

    /// Builds a node, enforcing the tree-height limit.
    pub(crate) fn node(
        &self,
        expr: Expr,
        span: Range<usize>,
        ty: ValueType,
        depth: usize,
    ) -> PResult<Node> {
        if depth > self.opts.max_depth {
            return Err(self.too_deep(span));
        }
        Ok(Node {
            expr: Box::new(expr),
            span,
            ty,
            depth,
        })
    }

    /// True when `word` (any case) can never be a metric name.
    pub(crate) fn is_non_metric_keyword(word: &str) -> bool {
        NON_METRIC_KEYWORDS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(word))
    }
}

pub use expr::{aggregate_name, op_str};
