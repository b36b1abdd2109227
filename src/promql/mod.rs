//! PromQL: lexer, parser, AST, printer, function table and evaluator. The
//! evaluator reads only through [`crate::storage::Querier`].

pub mod ast;
pub mod engine;
mod eval;
pub mod value;

pub use engine::{Engine, EngineOptions, EvalError};
pub use value::{EvalResult, RangeSeries, Value, VectorSample};
