//! The Prometheus text exposition format (0.0.4): a pure line parser
//! ([`parse`]), a writer ([`write_series_sample`]), Go-compatible float
//! formatting ([`float`]), and the import step that turns a request body into
//! one all-or-nothing appender batch ([`import`]).
//!
//! This is what `POST /api/v1/import/prometheus` accepts: the same lines a
//! `/metrics` endpoint serves, with optional millisecond timestamps.

pub mod float;
mod import;
mod parse;
mod write;

pub use import::{
    FloatPoint, HistogramPoint, ImportBatch, ImportError, ImportOutcome, build_batch, import,
};
pub use parse::{
    Entry, MetricType, ParseError, ParseErrorKind, Parser, TextSample, parse, parse_bytes,
};
pub use write::{escape_label_value, write_entry, write_series_sample};

#[cfg(test)]
mod proptests;
