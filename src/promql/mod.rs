//! PromQL: lexer, parser, AST, printer, function table and evaluator. The
//! evaluator reads only through [`crate::storage::Querier`].

pub mod ast;
pub mod durations;
pub mod engine;
pub mod error;
mod eval;
pub mod features;
pub mod functions;
pub mod lexer;
pub mod parser;
pub mod printer;
pub mod series;
pub mod value;

pub use engine::{Engine, EngineOptions, EvalError};
pub use value::{EvalResult, RangeSeries, Value, VectorSample};

pub use durations::resolve_durations;
pub use error::{ErrorItem, ParseError, ParseErrorKind};
pub use features::{Experimental, experimental_features};
pub use functions::{Function, ValueType, get_function};
pub use parser::{
    DEFAULT_MAX_DEPTH, DEFAULT_STACK_BUDGET, ParseOptions, parse, parse_metric_selector,
    parse_with_options,
};
pub use series::{SeriesDesc, SeriesValue, parse_series_desc};

/// Parses a Prometheus duration (`1h30m`, `5m`, `1d`, `1w`, `1y`, `100ms`,
/// `0`) into milliseconds. Units must appear in descending order, each at
/// most once; no sign, fraction or spaces.
pub fn parse_duration(s: &str) -> Result<i64, ParseError> {
    lexer::parse_duration_ms(s).ok_or_else(|| {
        ParseError::new(s, 0..s.len(), format!("not a valid duration string: {s:?}"))
    })
}
