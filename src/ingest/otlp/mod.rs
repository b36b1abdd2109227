//! OTLP/HTTP metrics (`POST /v1/metrics`), as a library.
//!
//! The handler calls [`OtlpEncoding::from_content_type`], then
//! [`OtlpReceiver::ingest`] (decode protobuf or JSON, translate to
//! Prometheus series, append through one [`crate::storage::Appender`],
//! commit, then advance the delta-to-cumulative state), and answers with
//! [`response_body`].
//!
//! Translation follows Prometheus's OTLP receiver (underscore escaping with
//! suffixes): metric names get unit suffixes (`ms` -> `_milliseconds`,
//! `By/s` -> `_bytes_per_second`, gauges in `1` -> `_ratio`) and monotonic
//! sums get `_total`; attribute names are sanitized (invalid characters to
//! `_`, a leading digit gets `key_`); `service.namespace/service.name`
//! becomes `job`, `service.instance.id` becomes `instance`, and the other
//! resource attributes go to a `target_info` series. Gauges and sums become
//! float series, delta sums and delta histograms are turned into cumulative
//! ones with per-series state, explicit-bucket histograms become first-class
//! histogram samples, summaries become `{quantile}`, `_sum` and `_count`.
//! Exponential histograms are counted as unsupported.

mod convert;
mod json;
mod naming;

#[cfg(test)]
mod tests;

pub use convert::{OtlpConfig, OtlpReceiver};
pub use json::decode_json;
pub use naming::{metric_name, sanitize_label_name};

use prost::Message;

use crate::ingest::remote_write::{RemoteWriteError, WriteOutcome};

/// Generated OTLP protobuf types (request, resource, scope, metrics).
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(
        env!("OUT_DIR"),
        "/opentelemetry.proto.metrics.v1.rs"
    ));
}

/// Body encoding of an OTLP/HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpEncoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json`
    Json,
}

impl OtlpEncoding {
    /// Picks the encoding from a `Content-Type` value (parameters ignored).
    pub fn from_content_type(ct: Option<&str>) -> Result<OtlpEncoding, OtlpError> {
        let media = ct.unwrap_or("").split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") {
            Ok(OtlpEncoding::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Ok(OtlpEncoding::Json)
        } else {
            Err(OtlpError::UnsupportedContentType(
                ct.unwrap_or("").to_string(),
            ))
        }
    }

    /// The `Content-Type` of responses in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            OtlpEncoding::Protobuf => "application/x-protobuf",
            OtlpEncoding::Json => "application/json",
        }
    }
}

/// Why an OTLP request was refused as a whole (nothing was written).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// Neither protobuf nor JSON.
    #[error("unsupported OTLP content type {0:?}: want application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    /// The protobuf body did not decode.
    #[error("cannot decode OTLP ExportMetricsServiceRequest protobuf ({len} bytes): {reason}")]
    Protobuf {
        /// Body length.
        len: usize,
        /// Decoder message.
        reason: String,
    },
    /// The JSON body did not decode or has a field of the wrong shape.
    #[error("cannot decode OTLP JSON at {path}: {reason}")]
    Json {
        /// JSON path of the problem, e.g. `resourceMetrics[0].scopeMetrics[1]`.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A data point is malformed (e.g. bucket counts do not match bounds).
    #[error("invalid data point of metric {metric:?}: {reason}")]
    InvalidPoint {
        /// Original OTLP metric name.
        metric: String,
        /// What is wrong.
        reason: String,
    },
    /// Appending or committing failed.
    #[error(transparent)]
    Write(#[from] RemoteWriteError),
}

/// Decodes a protobuf `ExportMetricsServiceRequest`.
pub fn decode_protobuf(body: &[u8]) -> Result<pb::ExportMetricsServiceRequest, OtlpError> {
    pb::ExportMetricsServiceRequest::decode(body).map_err(|e| OtlpError::Protobuf {
        len: body.len(),
        reason: e.to_string(),
    })
}

/// The success response body: an `ExportMetricsServiceResponse`, with a
/// partial-success part when some points were refused.
pub fn response_body(encoding: OtlpEncoding, outcome: &WriteOutcome) -> Vec<u8> {
    let rejected = outcome.rejected.total() as i64;
    let message = if rejected > 0 {
        outcome.report()
    } else {
        String::new()
    };
    match encoding {
        OtlpEncoding::Protobuf => pb::ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then_some(pb::ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: message,
            }),
        }
        .encode_to_vec(),
        OtlpEncoding::Json => {
            let v = if rejected > 0 {
                serde_json::json!({"partialSuccess": {
                    "rejectedDataPoints": rejected.to_string(),
                    "errorMessage": message,
                }})
            } else {
                serde_json::json!({})
            };
            v.to_string().into_bytes()
        }
    }
}
