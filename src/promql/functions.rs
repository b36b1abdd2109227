//! The table of PromQL functions known to Prometheus 3.x: name, argument
//! types, how many trailing arguments are optional/variadic, return type and
//! whether Prometheus gates it behind `--enable-feature=promql-experimental-functions`.

use super::ast::Expr;
use std::fmt;

/// PromQL value types, as used for type checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// A single float.
    Scalar,
    /// An instant vector.
    Vector,
    /// A range vector.
    Matrix,
    /// A string.
    String,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same wording as Prometheus's DocumentedType.
        f.write_str(match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        })
    }
}

/// How many arguments beyond the fixed list a function accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variadic {
    /// Exactly `arg_types.len()` arguments.
    None,
    /// The last entry of `arg_types` may appear between zero and `n` times
    /// (Prometheus's `Variadic: n`): `len-1 ..= len-1+n` arguments.
    UpTo(usize),
    /// The last entry of `arg_types` may appear any number of times, also
    /// zero times (Prometheus's `Variadic: -1`).
    Unbounded,
}

/// One function's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// Name as written in queries (case-sensitive).
    pub name: &'static str,
    /// Declared argument types, in order.
    pub arg_types: &'static [ValueType],
    /// Optional / repeated trailing arguments.
    pub variadic: Variadic,
    /// Result type.
    pub return_type: ValueType,
    /// Experimental in Prometheus (needs a feature flag there).
    pub experimental: bool,
    /// Removed from Prometheus 3.x (kept so 2.x rule files keep parsing).
    pub legacy: bool,
}

impl Function {
    /// Minimum number of arguments.
    pub fn min_args(&self) -> usize {
        match self.variadic {
            Variadic::None => self.arg_types.len(),
            Variadic::UpTo(_) | Variadic::Unbounded => self.arg_types.len() - 1,
        }
    }

    /// Maximum number of arguments (`None` = unbounded).
    pub fn max_args(&self) -> Option<usize> {
        match self.variadic {
            Variadic::None => Some(self.arg_types.len()),
            Variadic::UpTo(n) => Some(self.arg_types.len() - 1 + n),
            Variadic::Unbounded => None,
        }
    }

    /// The expected type of argument `i` (0-based), repeating the last
    /// declared type for variadic tails.
    pub fn arg_type(&self, i: usize) -> ValueType {
        let n = self.arg_types.len();
        self.arg_types[i.min(n - 1)]
    }
}

use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

const fn f(
    name: &'static str,
    arg_types: &'static [ValueType],
    variadic: Variadic,
    return_type: ValueType,
) -> Function {
    Function {
        name,
        arg_types,
        variadic,
        return_type,
        experimental: false,
        legacy: false,
    }
}

const fn exp(mut func: Function) -> Function {
    func.experimental = true;
    func
}

const N: Variadic = Variadic::None;
const OPT1: Variadic = Variadic::UpTo(1);

/// Every function, sorted by name.
pub static FUNCTIONS: &[Function] = &[
    f("abs", &[V], N, V),
    f("absent", &[V], N, V),
    f("absent_over_time", &[M], N, V),
    f("acos", &[V], N, V),
    f("acosh", &[V], N, V),
    f("asin", &[V], N, V),
    f("asinh", &[V], N, V),
    f("atan", &[V], N, V),
    f("atanh", &[V], N, V),
    f("avg_over_time", &[M], N, V),
    f("ceil", &[V], N, V),
    f("changes", &[M], N, V),
    f("clamp", &[V, S, S], N, V),
    f("clamp_max", &[V, S], N, V),
    f("clamp_min", &[V, S], N, V),
    f("cos", &[V], N, V),
    f("cosh", &[V], N, V),
    f("count_over_time", &[M], N, V),
    f("day_of_month", &[V], OPT1, V),
    f("day_of_week", &[V], OPT1, V),
    f("day_of_year", &[V], OPT1, V),
    f("days_in_month", &[V], OPT1, V),
    f("deg", &[V], N, V),
    f("delta", &[M], N, V),
    f("deriv", &[M], N, V),
    exp(f("double_exponential_smoothing", &[M, S, S], N, V)),
    exp(f("end", &[], N, S)),
    f("exp", &[V], N, V),
    exp(f("first_over_time", &[M], N, V)),
    f("floor", &[V], N, V),
    f("histogram_avg", &[V], N, V),
    f("histogram_count", &[V], N, V),
    f("histogram_fraction", &[S, S, V], N, V),
    f("histogram_quantile", &[S, V], N, V),
    exp(f(
        "histogram_quantiles",
        &[V, Str, S, S],
        Variadic::UpTo(9),
        V,
    )),
    f("histogram_stddev", &[V], N, V),
    f("histogram_stdvar", &[V], N, V),
    f("histogram_sum", &[V], N, V),
    Function {
        legacy: true,
        ..f("holt_winters", &[M, S, S], N, V)
    },
    f("hour", &[V], OPT1, V),
    f("idelta", &[M], N, V),
    f("increase", &[M], N, V),
    exp(f("info", &[V, V], OPT1, V)),
    exp(f("integral", &[M, S], OPT1, V)),
    f("irate", &[M], N, V),
    f("label_join", &[V, Str, Str, Str], Variadic::Unbounded, V),
    f("label_replace", &[V, Str, Str, Str, Str], N, V),
    f("last_over_time", &[M], N, V),
    f("ln", &[V], N, V),
    f("log10", &[V], N, V),
    f("log2", &[V], N, V),
    exp(f("mad_over_time", &[M], N, V)),
    exp(f("max_of", &[S, S], N, S)),
    f("max_over_time", &[M], N, V),
    exp(f("min_of", &[S, S], N, S)),
    f("min_over_time", &[M], N, V),
    f("minute", &[V], OPT1, V),
    f("month", &[V], OPT1, V),
    f("pi", &[], N, S),
    f("predict_linear", &[M, S], N, V),
    f("present_over_time", &[M], N, V),
    f("quantile_over_time", &[S, M], N, V),
    f("rad", &[V], N, V),
    exp(f("range", &[], N, S)),
    f("rate", &[M], N, V),
    f("resets", &[M], N, V),
    f("round", &[V, S], OPT1, V),
    f("scalar", &[V], N, S),
    f("sgn", &[V], N, V),
    f("sin", &[V], N, V),
    f("sinh", &[V], N, V),
    f("sort", &[V], N, V),
    exp(f("sort_by_label", &[V, Str], Variadic::Unbounded, V)),
    exp(f("sort_by_label_desc", &[V, Str], Variadic::Unbounded, V)),
    f("sort_desc", &[V], N, V),
    f("sqrt", &[V], N, V),
    exp(f("start", &[], N, S)),
    exp(f("start_timestamp", &[V], N, V)),
    f("stddev_over_time", &[M], N, V),
    f("stdvar_over_time", &[M], N, V),
    exp(f("step", &[], N, S)),
    f("sum_over_time", &[M], N, V),
    f("tan", &[V], N, V),
    f("tanh", &[V], N, V),
    f("time", &[], N, S),
    f("timestamp", &[V], N, V),
    exp(f("ts_of_first_over_time", &[M], N, V)),
    exp(f("ts_of_last_over_time", &[M], N, V)),
    exp(f("ts_of_max_over_time", &[M], N, V)),
    exp(f("ts_of_min_over_time", &[M], N, V)),
    f("vector", &[S], N, V),
    f("year", &[V], OPT1, V),
];

/// Looks a function up by name (case-sensitive, like Prometheus).
pub fn get_function(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

impl Expr {
    /// The static type of the expression, as Prometheus's type checker sees it.
    /// Unknown function names (which the parser never produces) count as
    /// instant vectors.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::NumberLiteral(_) => ValueType::Scalar,
            Expr::StringLiteral(_) => ValueType::String,
            Expr::VectorSelector(_) | Expr::Aggregate(_) => ValueType::Vector,
            Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Unary(_, e) | Expr::Paren(e) => e.value_type(),
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Call(c) => get_function(&c.func).map_or(ValueType::Vector, |f| f.return_type),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sorted_and_consistent() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
        for func in FUNCTIONS {
            assert!(func.min_args() <= func.max_args().unwrap_or(usize::MAX));
            if func.variadic != Variadic::None {
                assert!(!func.arg_types.is_empty(), "{}", func.name);
            }
        }
        assert_eq!(
            get_function("rate").unwrap().arg_types,
            &[ValueType::Matrix]
        );
        assert_eq!(get_function("label_join").unwrap().max_args(), None);
        assert_eq!(get_function("round").unwrap().min_args(), 1);
        assert_eq!(
            get_function("histogram_quantiles").unwrap().max_args(),
            Some(12)
        );
        assert!(get_function("Rate").is_none());
    }
}
