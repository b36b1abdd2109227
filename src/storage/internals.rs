//! Storage internals for this crate's own integration tests and benches
//! only (cargo feature `internals`, switched on by the crate's dev-dependency
//! on itself). Not a stable API; other modules use the seam traits.

pub use super::block::{
    Block, BlockFile, BlockMeta, BlockSeries, BlockSeriesData, BlockStats, Blocks, BlocksOptions,
    Compaction, HistogramRun, write_block,
};

/// Block column codecs (see `storage-format.md`, section 4).
pub mod codec {
    pub use crate::storage::block::encode_histogram;
    pub use crate::storage::codec::{
        CodecError, decode_timestamps, decode_values, encode_timestamps, encode_values,
    };
}
