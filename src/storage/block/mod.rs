//! Immutable blocks (`storage-format.md`, section 5): one directory per
//! block under the data directory,
//!
//! ```text
//! <data>/<block-id>/meta.json   id, time range, stats, compaction level and sources, CRC32C
//! <data>/<block-id>/columns     column records (timestamps, values, histogram columns)
//! <data>/<block-id>/index       symbols, series, postings, TOC
//! ```
//!
//! written once by [`write_block`] (temporary directory, fsync, atomic
//! rename) and read through memory maps by [`Block`]. [`Blocks`] is the set
//! of open blocks in a data directory: it answers queries, compacts adjacent
//! blocks into larger ones, applies retention and moves corrupt blocks aside.
//!
//! Histograms are first-class: a histogram series stores its bucket bounds
//! once per run (in the index) and its cumulative bucket counts, sum and count
//! as separate columns; readers see the classic `_bucket`/`_sum`/`_count`
//! views through `crate::storage::views`.

pub(crate) mod blocks;
pub(crate) mod columns;
mod merge;
pub(crate) mod meta;
mod reader;
mod writer;

use std::sync::Arc;

pub use blocks::Blocks;
pub use meta::{BlockMeta, BlockStats, Compaction};
pub use reader::Block;
pub(crate) use reader::TsCache;
pub use writer::write_block;

use crate::model::Labels;

/// Name of the metadata file in a block directory.
pub(crate) const META_FILE: &str = "meta.json";
/// Name of the column file in a block directory.
pub(crate) const COLUMNS_FILE: &str = "columns";
/// Name of the index file in a block directory.
pub(crate) const INDEX_FILE: &str = "index";
/// Directory (under the data directory) corrupt blocks are moved to.
pub(crate) const CORRUPTED_DIR: &str = "corrupted";
/// Suffix of a block directory being written.
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// Suffix of a block directory being deleted.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

/// One series handed to or read from a block, with all its samples.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSeries {
    /// Labels (for a histogram: the family labels, `__name__` without suffix).
    pub labels: Labels,
    /// Samples.
    pub data: BlockSeriesData,
}

/// The samples of a [`BlockSeries`].
#[derive(Clone, Debug, PartialEq)]
pub enum BlockSeriesData {
    /// A float series: strictly increasing timestamps (ms), equal-length values.
    Float {
        /// Timestamps (ms), strictly increasing.
        timestamps: Vec<i64>,
        /// Values, bit-exact (stale markers included).
        values: Vec<f64>,
    },
    /// A histogram series as runs of constant bucket bounds, in time order.
    Histogram {
        /// Runs, non-overlapping and in time order.
        runs: Vec<HistogramRun>,
    },
}

/// Histogram samples sharing one set of bucket bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramRun {
    /// Finite upper bounds, strictly ascending (`+Inf` implicit).
    pub upper_bounds: Arc<[f64]>,
    /// Timestamps (ms), strictly increasing.
    pub timestamps: Vec<i64>,
    /// `upper_bounds.len() + 1` columns of cumulative counts (last = `+Inf`).
    pub buckets: Vec<Vec<f64>>,
    /// Sum column.
    pub sum: Vec<f64>,
    /// Count column.
    pub count: Vec<f64>,
}

impl HistogramRun {
    /// A run with the bounds `b` and no samples (what a labels-only read
    /// reports).
    pub fn empty(b: &Arc<[f64]>) -> Self {
        HistogramRun {
            upper_bounds: b.clone(),
            timestamps: Vec::new(),
            buckets: vec![Vec::new(); b.len() + 1],
            sum: Vec::new(),
            count: Vec::new(),
        }
    }
}

/// A new block id: 26 Crockford base32 characters like a ULID (48 bits of
/// wall-clock milliseconds, then 80 bits mixed from the clock's nanoseconds,
/// the process id and a counter). Ids only name directories; nothing orders
/// blocks by id except as a tie-breaker.
pub(crate) fn new_block_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ms = now.as_millis() as u64 & ((1 << 48) - 1);
    let mut x = u64::from(now.subsec_nanos())
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let hi = (u128::from(ms) << 80) | (u128::from(next() & 0xffff) << 64) | u128::from(next());
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..26)
        .rev()
        .map(|i| char::from(ALPHABET[((hi >> (i * 5)) & 31) as usize]))
        .collect()
}

/// True when `name` looks like a block id (26 Crockford base32 characters).
pub(crate) fn is_block_id(name: &str) -> bool {
    name.len() == 26
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
}

#[cfg(test)]
mod tests;
