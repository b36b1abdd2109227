//! Prometheus remote write receiver (1.0 and 2.0), as a library.
//!
//! The HTTP handler calls, in order:
//! 1. [`Protocol::from_content_type`] on the `Content-Type` header;
//! 2. [`write_cached`] on the raw (snappy-compressed) body: the snappy
//!    header's declared length is checked against
//!    [`DecodeLimits::max_decompressed_bytes`] *before* anything is
//!    allocated, then the message is decoded, every series validated and
//!    appended through one [`crate::storage::Appender`], and committed. An
//!    invalid request yields an error naming the series and nothing is
//!    written; per-sample rejections (too old, duplicate, ...) are counted in
//!    the [`WriteOutcome`] while the valid samples are kept. For remote write
//!    1.0 it decodes and appends in one pass: series the [`SeriesCache`]
//!    knows (found by predicting each series from the previous one, or by
//!    hashing its label bytes) are appended straight from their cache entry,
//!    which also holds the storage's [`crate::storage::SeriesRef`], so a
//!    series seen before needs no label lookup in storage (see
//!    `direct.rs`);
//! 3. [`MetadataStore::record`] with [`Written::metadata`], and
//!    [`DoorMetrics::record_outcome`] for the self-metrics.
//!
//! The two steps [`write_cached`] fuses are also available, and give the
//! same results: [`decode_cached`] (or [`decode`]) builds a validated
//! [`Batch`], and [`apply_cached`] (or [`apply`]) appends and commits it.
//! The OTLP door and gzip-encoded bodies use them.

mod batch;
mod cache;
mod decode;
mod direct;
mod metadata;
mod metrics;
mod validate;
mod wire;

#[cfg(test)]
mod direct_tests;
#[cfg(test)]
mod tests;

pub use batch::{
    Batch, BatchSeries, RejectionCounts, Samples, SeriesHint, WriteOutcome, apply, apply_cached,
};
pub use cache::SeriesCache;
pub use decode::{DecodeLimits, Protocol, decode, decode_cached, decode_protobuf};
pub use direct::{Refused, Written, write_cached};
pub use metadata::{MetadataStore, MetricKind, MetricMetadata};
pub use metrics::{DoorMetrics, DoorMetricsSnapshot};
pub use validate::{is_valid_label_name, is_valid_metric_name};

use crate::storage::StorageError;

/// Generated protobuf types (see `build.rs` and `proto/`).
#[allow(missing_docs, clippy::all)]
pub mod pb {
    /// Remote write 1.0 messages (`prometheus.*`).
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
    }
    /// Remote write 2.0 messages (`io.prometheus.write.v2.*`).
    pub mod v2 {
        #![allow(missing_docs, clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/io.prometheus.write.v2.rs"));
    }
}

/// Why a remote write request was refused as a whole. Nothing from a
/// refused request has been written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteWriteError {
    /// The `Content-Type` asks for a protocol Watchpost does not speak.
    #[error(
        "unsupported remote write content type {0:?}: want application/x-protobuf with \
         proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request"
    )]
    UnsupportedContentType(String),
    /// The snappy header declares more bytes than the configured maximum.
    #[error(
        "remote write body too large: snappy header declares {declared} decompressed bytes, \
         the limit is {max} bytes"
    )]
    TooLarge {
        /// Declared decompressed length.
        declared: u64,
        /// Configured maximum.
        max: usize,
    },
    /// The body is not valid snappy block-format data.
    #[error("cannot decompress snappy body ({len} bytes): {reason}")]
    Snappy {
        /// Compressed body length.
        len: usize,
        /// The decompressor's message.
        reason: String,
    },
    /// The decompressed bytes are not the expected protobuf message.
    #[error("cannot decode {message} protobuf ({len} bytes): {reason}")]
    Protobuf {
        /// Message type expected.
        message: &'static str,
        /// Decompressed length.
        len: usize,
        /// The decoder's message.
        reason: String,
    },
    /// A series failed validation; the whole request is refused.
    #[error("invalid series #{index} {series}: {reason}")]
    InvalidSeries {
        /// Position of the series in the request (0-based).
        index: usize,
        /// The series' labels as received.
        series: String,
        /// What is wrong.
        reason: String,
    },
    /// Committing the batch failed; nothing was written.
    #[error("cannot commit remote write batch: {0}")]
    Storage(#[from] StorageError),
}
