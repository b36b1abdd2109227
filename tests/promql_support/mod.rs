//! Shared pieces of the PromQL conformance runner.

pub mod compare;
pub mod script;
