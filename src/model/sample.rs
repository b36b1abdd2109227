//! Samples. Timestamps are i64 milliseconds since the Unix epoch everywhere.

use std::sync::Arc;

/// Bit pattern Prometheus uses for a staleness marker: a NaN that ordinary
/// arithmetic never produces. Compare bits, never values.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness-marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True when `v` is exactly the staleness marker (not any other NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One sample of a classic (bucketed) histogram, stored as first-class
/// columns. `upper_bounds` are the finite bucket bounds in ascending order;
/// the `+Inf` bucket is implicit, so `bucket_counts.len() == upper_bounds.len() + 1`.
/// Counts are cumulative (like `le` buckets) and `count == bucket_counts.last()`.
/// A stale marker is a sample whose `sum` is the stale NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSample {
    /// Finite upper bounds, ascending, shared between samples of a series.
    pub upper_bounds: Arc<[f64]>,
    /// Cumulative counts, one per finite bound plus the `+Inf` bucket.
    pub bucket_counts: Vec<f64>,
    /// Sum of observed values.
    pub sum: f64,
    /// Number of observations (equals the `+Inf` bucket).
    pub count: f64,
}

impl HistogramSample {
    /// A stale marker for a histogram series with these bounds.
    pub fn stale(upper_bounds: Arc<[f64]>) -> Self {
        let n = upper_bounds.len() + 1;
        HistogramSample {
            upper_bounds,
            bucket_counts: vec![stale_nan(); n],
            sum: stale_nan(),
            count: stale_nan(),
        }
    }

    /// True when this sample is a staleness marker.
    pub fn is_stale(&self) -> bool {
        is_stale_nan(self.sum)
    }
}
