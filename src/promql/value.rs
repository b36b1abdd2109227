//! Query results: the four PromQL value types plus the annotations
//! (warnings and infos) collected while evaluating.
//!
//! Timestamps are milliseconds since the Unix epoch. Instant vectors come
//! back in the engine's output order (label order unless the query sorted
//! them); matrices are always sorted by label set.

use crate::model::{Labels, Sample};

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    /// The series' labels (after name removal where the query drops it).
    pub labels: Labels,
    /// Evaluation timestamp (ms) for computed values; for a plain selector
    /// in an instant query this is still the evaluation time, as in
    /// Prometheus's API output.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One series of a matrix: a label set and its points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Points, strictly increasing in time.
    pub samples: Vec<Sample>,
}

/// A query result value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A single number at time `t` (ms).
    Scalar {
        /// Evaluation time (ms).
        t: i64,
        /// Value.
        v: f64,
    },
    /// A string at time `t` (ms).
    String {
        /// Evaluation time (ms).
        t: i64,
        /// Value.
        s: String,
    },
    /// An instant vector (instant queries).
    Vector(Vec<VectorSample>),
    /// A range vector (range queries, or an instant query of `x[5m]`).
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// Prometheus's `resultType` name: `scalar`, `string`, `vector`, `matrix`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// The outcome of a successful query: the value and the annotations.
/// Warnings and infos are rendered like Prometheus's
/// (`PromQL warning: ...`, `PromQL info: ...`), de-duplicated, in the order
/// first raised.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    /// The result.
    pub value: Value,
    /// `PromQL warning: ...` annotations.
    pub warnings: Vec<String>,
    /// `PromQL info: ...` annotations.
    pub infos: Vec<String>,
}
