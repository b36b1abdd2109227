//! Storage internals for this crate's own integration tests and benches
//! only (cargo feature `internals`, switched on by the crate's dev-dependency
//! on itself). Not a stable API; other modules use the seam traits.

pub use super::block::blocks::BlocksOptions;
pub use super::block::meta::BlockFile;
pub use super::block::{
    Block, BlockMeta, BlockSeries, BlockSeriesData, BlockStats, Blocks, Compaction, HistogramRun,
    write_block,
};

/// Block column codecs (see `storage-format.md`, section 4).
pub mod codec {
    pub use crate::storage::block::columns::encode_histogram;
    pub use crate::storage::codec::CodecError;
    pub use crate::storage::codec::timestamps::{decode_timestamps, encode_timestamps};
    pub use crate::storage::codec::values::{decode_values, encode_values};
}
