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
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSelector {
    /// The metric name if written outside the braces.
    pub name: Option<String>,
    /// All matchers, including a `__name__` matcher for `name` when present.
    pub matchers: Vec<Matcher>,
    /// `offset` in ms (negative allowed).
    pub offset: i64,
    /// `@` modifier.
    pub at: Option<AtModifier>,
}

/// A range-vector selector.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSelector {
    /// The underlying selector (carries offset and @).
    pub selector: VectorSelector,
    /// Range in ms.
    pub range: i64,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// one-to-one
    OneToOne,
    /// `group_left`
    ManyToOne,
    /// `group_right`
    OneToMany,
    /// set operators
    ManyToMany,
}

/// `on`/`ignoring` and `group_left`/`group_right`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMatching {
    /// Cardinality.
    pub card: Cardinality,
    /// True for `on(...)`, false for `ignoring(...)` (or no clause).
    pub on: bool,
    /// The `on`/`ignoring` label list.
    pub labels: Vec<String>,
    /// Extra labels named in `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
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
