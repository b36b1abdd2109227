//! Head chunks: (timestamp, value) runs compressed in a byte vector with the
//! Gorilla scheme (delta-of-delta timestamps, XOR floats). Specified in
//! `storage-format.md` section 4.1. This module knows nothing of files,
//! series identity or the WAL.

mod bits;
mod bulk;
mod xor;

pub(crate) use bulk::decode_range_into;
pub(crate) use xor::{XorAppender, XorIter};

/// Most samples a head chunk holds before the head starts a new one: about
/// 30 minutes at a 15 s scrape interval, small enough that decoding a chunk
/// to answer a narrow query stays cheap, large enough that the per-chunk
/// overhead (header, first full timestamp and value) is amortised.
pub(crate) const MAX_SAMPLES_PER_CHUNK: u16 = 120;

/// Longest time span (ms) of one head chunk: 2 h, so sparse series still get
/// their chunks closed and cut into blocks on time.
pub(crate) const MAX_CHUNK_SPAN_MS: i64 = 2 * 3600 * 1000;

/// A decoding failure (only possible for bytes not produced by
/// [`XorAppender`]).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum ChunkError {
    /// The bytes ended before the promised number of samples.
    #[error("cannot decode chunk: truncated at sample {index} of {count}")]
    Truncated {
        /// Index of the sample that could not be read.
        index: u16,
        /// Samples the header promised.
        count: u16,
    },
    /// A field is out of range.
    #[error("cannot decode chunk: {0}")]
    Invalid(&'static str),
}
