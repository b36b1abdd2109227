//! Self-metrics of one ingestion door, as plain atomics. The `http` module
//! exposes them; nothing here knows about exposition formats.

use std::sync::atomic::{AtomicU64, Ordering};

use super::batch::{RejectionCounts, WriteOutcome};

/// Counters for one door (remote write, pushgateway or OTLP). All counts
/// are monotonic since process start.
#[derive(Debug, Default)]
pub struct DoorMetrics {
    /// Requests received (any outcome).
    pub requests: AtomicU64,
    /// Requests refused as a whole (bad body, invalid series, storage error).
    pub requests_failed: AtomicU64,
    /// Float samples made durable.
    pub samples_accepted: AtomicU64,
    /// Histogram samples made durable.
    pub histograms_accepted: AtomicU64,
    /// Samples refused: older than the out-of-order window.
    pub rejected_too_old: AtomicU64,
    /// Samples refused: duplicate timestamp with a different value.
    pub rejected_duplicate: AtomicU64,
    /// Samples refused: float/histogram kind mismatch.
    pub rejected_kind_mismatch: AtomicU64,
    /// Samples refused: storage found the series invalid.
    pub rejected_invalid_series: AtomicU64,
    /// Samples refused: well-formed but unsupported (exponential histograms).
    pub rejected_unsupported: AtomicU64,
    /// Samples in requests refused as a whole (invalid requests).
    pub rejected_invalid_request: AtomicU64,
}

/// A consistent-enough copy of [`DoorMetrics`] for exposition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoorMetricsSnapshot {
    /// See [`DoorMetrics::requests`].
    pub requests: u64,
    /// See [`DoorMetrics::requests_failed`].
    pub requests_failed: u64,
    /// See [`DoorMetrics::samples_accepted`].
    pub samples_accepted: u64,
    /// See [`DoorMetrics::histograms_accepted`].
    pub histograms_accepted: u64,
    /// `(reason, count)` for rejected samples, stable reason names.
    pub rejected: Vec<(&'static str, u64)>,
}

impl DoorMetrics {
    /// Zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request that was applied (call once per request).
    pub fn record_outcome(&self, o: &WriteOutcome) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.samples_accepted
            .fetch_add(o.samples_written, Ordering::Relaxed);
        self.histograms_accepted
            .fetch_add(o.histograms_written, Ordering::Relaxed);
        self.record_rejections(&o.rejected);
    }

    /// Counts one accepted request that wrote `samples` float and
    /// `histograms` histogram samples (for doors without a [`WriteOutcome`],
    /// e.g. a Pushgateway push).
    pub fn record_ok(&self, samples: u64, histograms: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.samples_accepted.fetch_add(samples, Ordering::Relaxed);
        self.histograms_accepted
            .fetch_add(histograms, Ordering::Relaxed);
    }

    /// Adds per-reason refusals (for doors that do not go through [`WriteOutcome`]).
    pub fn record_rejections(&self, r: &RejectionCounts) {
        self.rejected_too_old
            .fetch_add(r.too_old, Ordering::Relaxed);
        self.rejected_duplicate
            .fetch_add(r.duplicate, Ordering::Relaxed);
        self.rejected_kind_mismatch
            .fetch_add(r.kind_mismatch, Ordering::Relaxed);
        self.rejected_invalid_series
            .fetch_add(r.invalid_series, Ordering::Relaxed);
        self.rejected_unsupported
            .fetch_add(r.unsupported, Ordering::Relaxed);
    }

    /// Counts one request refused as a whole, carrying `samples` samples
    /// (0 when the body could not be decoded far enough to know).
    pub fn record_failure(&self, samples: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.requests_failed.fetch_add(1, Ordering::Relaxed);
        self.rejected_invalid_request
            .fetch_add(samples, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> DoorMetricsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DoorMetricsSnapshot {
            requests: g(&self.requests),
            requests_failed: g(&self.requests_failed),
            samples_accepted: g(&self.samples_accepted),
            histograms_accepted: g(&self.histograms_accepted),
            rejected: vec![
                ("too_old", g(&self.rejected_too_old)),
                ("duplicate_timestamp", g(&self.rejected_duplicate)),
                ("kind_mismatch", g(&self.rejected_kind_mismatch)),
                ("invalid_series", g(&self.rejected_invalid_series)),
                ("unsupported", g(&self.rejected_unsupported)),
                ("invalid_request", g(&self.rejected_invalid_request)),
            ],
        }
    }
}
