//! PromQL: lexer, parser, AST, printer, function table and evaluator. The
//! evaluator reads only through [`crate::storage::Querier`].

pub mod ast;
