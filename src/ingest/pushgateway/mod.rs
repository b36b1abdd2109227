//! Pushgateway-compatible pushes, as a library.
//!
//! Semantics follow the Prometheus Pushgateway (1.x):
//! - a *group* is identified by its grouping key, parsed from the URL path
//!   `/metrics/job/<job>{/<label>/<value>}` by [`GroupingKey::from_path`]
//!   (with `@base64` values and the `/<label>@base64/=` empty-value form);
//! - `PUT` replaces the whole group, `POST` replaces the metric families of
//!   the same name, `DELETE` removes the group ([`PushStore::push`],
//!   [`PushStore::delete`], [`PushStore::wipe`]);
//! - pushed metrics get the grouping labels (overriding their own) and must
//!   not carry timestamps; every group exposes `push_time_seconds` and
//!   `push_failure_time_seconds`;
//! - bodies come in the text exposition format ([`families_from_text`],
//!   on top of `ingest::text`) or the varint length-delimited protobuf
//!   format ([`decode_delimited`]); [`decode_body`] picks by content type.
//!
//! Because Watchpost has no scraper, [`PushStore::resample`] writes every
//! live group's current values at a given time (the server calls it every
//! 15 s by default), so pushed values stay visible to queries and rules the
//! way a scraped Pushgateway's are; series of deleted groups or replaced
//! metrics get stale markers. Groups persist in `push_groups.wpg` under the
//! data directory (format in `storage-format.md`, section "Push groups").

mod family;
mod grouping;
mod persist;
mod store;
mod text;

#[cfg(test)]
mod tests;

pub use family::{FamilyKind, PushedFamily, PushedMetric, PushedValue, decode_delimited};
pub use grouping::GroupingKey;
pub use persist::PUSH_GROUPS_FILE;
pub use store::{
    GroupSnapshot, PUSH_FAILURE_TIME_METRIC, PUSH_TIME_METRIC, PushMethod, PushStore,
    ResampleOutcome,
};
pub use text::families_from_text;

/// Decodes a push body, choosing the format from the `Content-Type`
/// header: `application/vnd.google.protobuf` with
/// `proto=io.prometheus.client.MetricFamily` (and `encoding=delimited`)
/// is protobuf; anything else, including a missing header, is text (as in
/// the Pushgateway).
pub fn decode_body(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<PushedFamily>, PushError> {
    let ct = content_type.unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    let is_proto = media.eq_ignore_ascii_case("application/vnd.google.protobuf")
        && ct.contains("io.prometheus.client.MetricFamily");
    if is_proto {
        decode_delimited(body)
    } else {
        families_from_text(body)
    }
}

/// Generated protobuf types of the client data model (`io.prometheus.client`).
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/io.prometheus.client.rs"));
}

/// Why a push, delete or load failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The URL path does not name a valid group.
    #[error("invalid grouping key in path {path:?}: {reason}")]
    BadPath {
        /// The path as received.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The body could not be decoded.
    #[error("cannot decode pushed {format} body at byte {offset}: {reason}")]
    BadBody {
        /// `protobuf` or `text`.
        format: &'static str,
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The pushed metrics are invalid or inconsistent with the stored ones;
    /// the group's `push_failure_time_seconds` was updated.
    #[error("pushed metrics are invalid or inconsistent with existing metrics: {0}")]
    Inconsistent(String),
    /// Reading or writing the persistence file failed.
    #[error("cannot {op} push groups file {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The persistence file is damaged.
    #[error("corrupt push groups file {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// Byte offset of the problem.
        offset: usize,
        /// What did not hold.
        reason: String,
    },
    /// Writing re-sampled values to storage failed.
    #[error("cannot commit re-sampled push groups: {0}")]
    Storage(#[from] crate::storage::StorageError),
}
