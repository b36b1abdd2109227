//! Block index file (`storage-format.md`, section 5.4): symbol table, series
//! entries (label refs, chunk refs, time ranges, histogram bounds), postings
//! (label pair -> sorted series ids), postings table and TOC, each section
//! followed by its CRC32C. [`write_index`] builds the file; [`IndexReader`]
//! reads it through a memory map and evaluates matchers over postings.
//!
//! Histogram series are posted under the three view names of their family
//! (`f_bucket`, `f_sum`, `f_count`) instead of `f`, and under the reserved
//! pair ([`HISTOGRAM_KEY`]), so readers can widen `le` matchers to every
//! histogram (see `crate::storage::views`).

mod mmap;
mod reader;
mod select;
mod writer;

use std::sync::Arc;

pub(crate) use mmap::map_file;
pub(crate) use reader::IndexReader;
pub(crate) use writer::write_index;

use crate::model::Labels;

/// First bytes of an index file.
pub(crate) const INDEX_MAGIC: [u8; 4] = *b"WPIX";
/// Current index format version.
pub(crate) const INDEX_VERSION: u8 = 1;
/// Reserved postings key listing every histogram series. A label name can
/// never be empty, so it cannot collide with a real pair.
pub(crate) const HISTOGRAM_KEY: (&str, &str) = ("", "histogram");

/// Size of the fixed TOC at the end of the file: five (offset, len) pairs,
/// the series count and a CRC32C.
pub(crate) const TOC_LEN: usize = 5 * 16 + 8 + 4;

/// What a series stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeriesKind {
    /// Float samples: each chunk is a timestamps record and a values record.
    Float = 0,
    /// Histogram samples: each chunk is a timestamps record and a histogram
    /// record (count, sum, bucket columns); bounds live in the index.
    Histogram = 1,
}

/// One chunk of a series: a time range and two records in the column file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChunkMeta {
    /// First timestamp in the chunk (ms).
    pub(crate) min_t: i64,
    /// Last timestamp in the chunk (ms).
    pub(crate) max_t: i64,
    /// Offset of the timestamps record in the column file.
    pub(crate) ts_ref: u64,
    /// Offset of the values (or histogram) record in the column file.
    pub(crate) val_ref: u64,
    /// Finite bucket bounds (histogram chunks only).
    pub(crate) bounds: Option<Arc<[f64]>>,
}

/// One series entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct IndexSeries {
    /// Stored labels (the family labels for a histogram).
    pub(crate) labels: Labels,
    /// Float or histogram.
    pub(crate) kind: SeriesKind,
    /// Chunks in time order, non-overlapping.
    pub(crate) chunks: Vec<ChunkMeta>,
}

#[cfg(test)]
mod tests;
