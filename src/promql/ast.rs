//! The PromQL syntax tree, shared by the parser, the printer and the
//! evaluator. Durations and offsets are milliseconds.

use crate::model::Matcher;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A float literal (`1`, `0x1f`, `1e3`, `Inf`, `NaN`, `5m` as seconds in 3.x).
    NumberLiteral(f64),
    /// A string literal, already unescaped.
    StringLiteral(String),
    /// `name{matchers} offset 5m @ 123`.
    VectorSelector(VectorSelector),
    /// `selector[5m]`.
    MatrixSelector(MatrixSelector),
    /// `expr[range:step]` with optional offset/@.
    Subquery(SubqueryExpr),
    /// `-expr` / `+expr`.
    Unary(UnaryOp, Box<Expr>),
    /// `lhs op rhs`.
    Binary(BinaryExpr),
    /// `(expr)`, kept so the printer round-trips.
    Paren(Box<Expr>),
    /// `func(args...)`.
    Call(Call),
    /// `sum by (x) (expr)` etc.
    Aggregate(AggregateExpr),
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `+`
    Pos,
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AtModifier {
    /// `@ <timestamp>`, in milliseconds.
    Timestamp(i64),
    /// `@ start()`
    Start,
    /// `@ end()`
    End,
}

/// An instant-vector selector.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VectorSelector {
    /// The metric name if written outside the braces.
    pub name: Option<String>,
    /// All matchers, including a `__name__` matcher for `name` when present.
    pub matchers: Vec<Matcher>,
    /// `offset` in ms (negative allowed).
    pub offset: i64,
    /// `@` modifier.
    pub at: Option<AtModifier>,
    /// Experimental `offset <duration expression>` that depends on `step()`
    /// or `range()`; resolved into `offset` by
    /// [`crate::promql::resolve_durations`] before evaluation. Constant
    /// duration expressions are folded into `offset` by the parser.
    pub offset_expr: Option<DurationExpr>,
    /// Experimental `anchored` modifier (range selectors only).
    pub anchored: bool,
    /// Experimental `smoothed` modifier.
    pub smoothed: bool,
}

/// A range-vector selector.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatrixSelector {
    /// The underlying selector (carries offset and @).
    pub selector: VectorSelector,
    /// Range in ms.
    pub range: i64,
    /// Experimental range duration expression depending on `step()` or
    /// `range()` (see [`VectorSelector::offset_expr`]).
    pub range_expr: Option<DurationExpr>,
}

/// An experimental duration expression (`[5m + step()]`,
/// `offset min_of(step(), 1m)`), in seconds. Only expressions that use
/// `step()` or `range()` are kept in the tree; constant ones are folded by
/// the parser.
#[derive(Debug, Clone, PartialEq)]
pub enum DurationExpr {
    /// A number of seconds (duration literals are converted).
    Number(f64),
    /// `step()`: the range query's step (0 for instant queries).
    Step,
    /// `range()`: the range query's end minus start (0 for instant queries).
    Range,
    /// `-expr` / `+expr` (`true` for minus).
    Unary(bool, Box<DurationExpr>),
    /// `lhs op rhs` with `+ - * / % ^`.
    Binary(BinaryOp, Box<DurationExpr>, Box<DurationExpr>),
    /// `(expr)`, kept so the printer round-trips.
    Paren(Box<DurationExpr>),
    /// `min_of(a, b)`.
    MinOf(Box<DurationExpr>, Box<DurationExpr>),
    /// `max_of(a, b)`.
    MaxOf(Box<DurationExpr>, Box<DurationExpr>),
}

/// A subquery.
#[derive(Debug, Clone, PartialEq)]
pub struct SubqueryExpr {
    /// The inner expression.
    pub expr: Box<Expr>,
    /// Range in ms.
    pub range: i64,
    /// Step in ms; `None` means the default evaluation interval.
    pub step: Option<i64>,
    /// `offset` in ms.
    pub offset: i64,
    /// `@` modifier.
    pub at: Option<AtModifier>,
    /// Experimental range duration expression (see
    /// [`VectorSelector::offset_expr`]).
    pub range_expr: Option<DurationExpr>,
    /// Experimental step duration expression.
    pub step_expr: Option<DurationExpr>,
    /// Experimental offset duration expression.
    pub offset_expr: Option<DurationExpr>,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eql,
    /// `!=`
    Neq,
    /// `>`
    Gtr,
    /// `<`
    Lss,
    /// `>=`
    Gte,
    /// `<=`
    Lte,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinaryOp {
    /// True for `== != > < >= <=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eql
                | BinaryOp::Neq
                | BinaryOp::Gtr
                | BinaryOp::Lss
                | BinaryOp::Gte
                | BinaryOp::Lte
        )
    }
    /// True for `and or unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }
}

/// Matching cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cardinality {
    /// one-to-one
    #[default]
    OneToOne,
    /// `group_left`
    ManyToOne,
    /// `group_right`
    OneToMany,
    /// set operators
    ManyToMany,
}

/// `on`/`ignoring` and `group_left`/`group_right`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VectorMatching {
    /// Cardinality.
    pub card: Cardinality,
    /// True for `on(...)`, false for `ignoring(...)` (or no clause).
    pub on: bool,
    /// The `on`/`ignoring` label list.
    pub labels: Vec<String>,
    /// Extra labels named in `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
    /// Experimental `fill(v)`/`fill_left(v)`: value used for a missing
    /// left-hand sample.
    pub fill_lhs: Option<f64>,
    /// Experimental `fill(v)`/`fill_right(v)`: value used for a missing
    /// right-hand sample.
    pub fill_rhs: Option<f64>,
}

/// A binary expression.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    /// Operator.
    pub op: BinaryOp,
    /// Left operand.
    pub lhs: Box<Expr>,
    /// Right operand.
    pub rhs: Box<Expr>,
    /// `bool` modifier on a comparison.
    pub return_bool: bool,
    /// Vector matching, when either side is a vector (or written explicitly).
    pub matching: Option<VectorMatching>,
}

/// A function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Function name as written (validated by the parser against the table).
    pub func: String,
    /// Arguments.
    pub args: Vec<Expr>,
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `count`
    Count,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `group`
    Group,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
    /// `count_values`
    CountValues,
    /// `quantile`
    Quantile,
    /// `limitk`
    Limitk,
    /// `limit_ratio`
    LimitRatio,
}

/// An aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateExpr {
    /// Operator.
    pub op: AggregateOp,
    /// The aggregated expression.
    pub expr: Box<Expr>,
    /// Parameter for topk/bottomk/quantile/count_values/limitk/limit_ratio.
    pub param: Option<Box<Expr>>,
    /// `by`/`without` labels.
    pub grouping: Vec<String>,
    /// True for `without`.
    pub without: bool,
}
