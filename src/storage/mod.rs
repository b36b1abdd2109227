//! The embedded time-series store: the only door other modules use.
//!
//! Writers go through [`Appender`] (obtained from an [`Appendable`]); readers
//! go through [`Querier`]. Everything behind these traits (WAL, head, chunk
//! encodings, block files, index, compaction) is private to this module and
//! specified byte by byte in `storage-format.md`.
//!
//! Histograms are first-class: a histogram series is written once with
//! [`Appender::append_histogram`] and stored as columns (bounds once, then
//! cumulative bucket counts, sum and count). Readers see it through
//! [`Querier::select`] as the classic `<name>_bucket{le="..."}`, `<name>_sum`
//! and `<name>_count` float series ("views"), and through
//! [`Querier::select_histograms`] as whole columns for fast quantiles.

mod api;
mod background;
mod block;
mod chunk;
mod codec;
mod db;
mod files;
mod head;
mod index;
pub mod memory;
mod merge;
pub(crate) mod views;
mod visit;
mod wal;

pub use api::*;
pub use db::{Db, DbOptions, DbStats};
pub use wal::{DEFAULT_SEGMENT_SIZE, WalSyncPolicy};

#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals;
