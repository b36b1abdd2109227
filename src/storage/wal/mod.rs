//! The write-ahead log: segment files of CRC-checked records, group commit
//! with fsync, replay with torn-tail truncation, and checkpoints
//! (storage-format.md section 3). Records go in and come out; what they mean
//! belongs to the head.

mod record;
mod replay;
mod segment;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(crate) use record::{
    BoundsRecord, FloatRecord, HistogramRecord, Record, SeriesKind, SeriesRecord, TYPE_FLOATS,
    encode_float_batch,
};
pub(crate) use replay::replay;
pub(crate) use segment::{frame_record, frame_with};
pub(crate) use writer::{CheckpointWriter, Wal, sync_dir};

/// Default WAL segment size: 128 MiB. Big enough that rotation (an fsync
/// plus a directory fsync) is rare, small enough that a checkpoint frees
/// disk space in useful steps.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

/// When committed records reach stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalSyncPolicy {
    /// `commit` returns only after its records are fsynced. Concurrent
    /// commits share one fsync (group commit). Nothing acknowledged is lost,
    /// even on power loss.
    EveryCommit,
    /// `commit` returns once its records are written to the segment file
    /// (`write(2)`, in the OS page cache); a background thread fsyncs every
    /// given interval. Acknowledged data survives a process crash (kill -9)
    /// but up to one interval of acknowledged commits can be lost on an
    /// operating-system crash or power loss.
    Interval(Duration),
}

/// WAL counters (monotonic), read by `Db::stats`.
#[derive(Debug, Default)]
pub(crate) struct WalCounters {
    /// Successful fsyncs of segment files.
    pub(crate) fsyncs: AtomicU64,
    /// Failed fsyncs.
    pub(crate) fsync_errors: AtomicU64,
    /// Failed writes (e.g. disk full); each rejected the commit cleanly.
    pub(crate) write_errors: AtomicU64,
    /// Bytes appended to segments.
    pub(crate) bytes_written: AtomicU64,
    /// Torn or corrupt tails truncated (or files moved aside) on replay.
    pub(crate) corruptions: AtomicU64,
    /// Segments created.
    pub(crate) segments_created: AtomicU64,
    /// Checkpoints written.
    pub(crate) checkpoints: AtomicU64,
}

impl WalCounters {
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}
