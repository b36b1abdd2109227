//! The real [`Backend`]: the embedded database.

use std::hash::{BuildHasher, Hasher};

use super::params::format_rfc3339;
use super::state::{Backend, HeadStats, MetricSample};
use crate::model::Clock;
use crate::storage::{Appendable, Db, Querier, StorageError};

/// The database plus the clock used to name snapshots.
#[derive(Debug)]
pub struct DbBackend {
    /// The open database.
    pub db: std::sync::Arc<Db>,
    /// Time source for snapshot names.
    pub clock: std::sync::Arc<dyn Clock>,
}

/// Prometheus's snapshot name: `20060102T150405Z-<16 hex digits>`.
pub fn snapshot_name(now_ms: i64) -> String {
    let stamp: String = format_rfc3339(now_ms.div_euclid(1000) * 1000)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    // RandomState is seeded randomly per process and per instance; good
    // enough to keep two snapshots in the same second apart.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ms);
    format!("{stamp}-{:016x}", h.finish())
}

impl Backend for DbBackend {
    fn appendable(&self) -> &dyn Appendable {
        &*self.db
    }

    fn querier(&self) -> &dyn Querier {
        &*self.db
    }

    fn snapshot(&self, skip_head: bool) -> Result<String, StorageError> {
        if skip_head {
            return Err(StorageError::Other(
                "skip_head=true is not supported: snapshots always include the head".into(),
            ));
        }
        let name = snapshot_name(self.clock.now_ms());
        self.db.snapshot(&name)?;
        Ok(name)
    }

    fn head_stats(&self) -> HeadStats {
        let s = self.db.stats();
        HeadStats {
            num_series: s.head_series,
            chunk_count: 0,
            min_time: s.head_min_time,
            max_time: s.head_max_time,
        }
    }

    fn metrics(&self) -> Vec<MetricSample> {
        let s = self.db.stats();
        let m = |name: &str, help: &str, counter: bool, value: u64| MetricSample {
            name: format!("watchpost_tsdb_{name}"),
            labels: Vec::new(),
            help: help.to_string(),
            counter,
            value: value as f64,
        };
        vec![
            m(
                "head_bytes",
                "Estimated resident bytes of the head",
                false,
                s.head_bytes,
            ),
            m(
                "blocks_loaded",
                "Number of persistent blocks",
                false,
                s.blocks,
            ),
            m(
                "block_bytes",
                "Bytes of block data files",
                false,
                s.block_bytes,
            ),
            m(
                "block_series",
                "Series summed over blocks",
                false,
                s.block_series,
            ),
            m(
                "head_float_samples_appended",
                "Float samples appended",
                true,
                s.float_samples_appended,
            ),
            m(
                "head_histogram_samples_appended",
                "Histogram samples appended",
                true,
                s.histogram_samples_appended,
            ),
            m(
                "head_series_created",
                "Series created in the head",
                true,
                s.series_created,
            ),
            m(
                "head_series_removed",
                "Series removed from the head",
                true,
                s.series_removed,
            ),
            m(
                "out_of_window_samples",
                "Samples rejected as older than the out-of-order window",
                true,
                s.out_of_window_rejections,
            ),
            m(
                "duplicate_samples",
                "Samples rejected as duplicates with a different value",
                true,
                s.duplicate_rejections,
            ),
            m(
                "invalid_samples",
                "Samples rejected for an invalid series or kind mismatch",
                true,
                s.invalid_rejections,
            ),
            m(
                "out_of_order_samples",
                "Samples accepted out of order",
                true,
                s.out_of_order_accepted,
            ),
            m("wal_fsyncs", "WAL fsyncs", true, s.wal_fsyncs),
            m(
                "wal_fsync_failures",
                "Failed WAL fsyncs",
                true,
                s.wal_fsync_errors,
            ),
            m(
                "wal_write_failures",
                "Failed WAL writes (e.g. disk full)",
                true,
                s.wal_write_errors,
            ),
            m(
                "wal_written_bytes",
                "Bytes written to WAL segments",
                true,
                s.wal_bytes_written,
            ),
            m(
                "wal_segments_created",
                "WAL segments created",
                true,
                s.wal_segments_created,
            ),
            m(
                "wal_checkpoints",
                "WAL checkpoints written",
                true,
                s.wal_checkpoints,
            ),
            m(
                "wal_corruptions",
                "WAL tails truncated or files moved aside on replay",
                true,
                s.wal_corruptions,
            ),
            m(
                "wal_replayed_records",
                "WAL records replayed at start",
                true,
                s.wal_replayed_records,
            ),
            m("head_cuts", "Blocks cut from the head", true, s.head_cuts),
            m(
                "compactions",
                "Blocks written by compaction",
                true,
                s.compactions,
            ),
            m(
                "retention_deletions",
                "Blocks deleted by retention",
                true,
                s.retention_deletions,
            ),
            m(
                "maintenance_failures",
                "Failed maintenance runs",
                true,
                s.maintenance_errors,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_look_like_prometheus() {
        let n = snapshot_name(1_512_940_344_123);
        assert!(n.starts_with("20171210T211224Z-"), "{n}");
        assert_eq!(n.len(), "20171210T211224Z-".len() + 16);
        assert_ne!(snapshot_name(0), snapshot_name(0));
    }
}
