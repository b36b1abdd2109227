//! Column codecs for compacted blocks (`storage-format.md`, section 4.2).
//!
//! Every codec is a pure function over byte slices: `encode_*` appends to a
//! caller-given `Vec<u8>`, `decode_*` returns the decoded values plus the
//! unread tail. Decoders validate every length and index before use, never
//! panic and never read outside the slice, whatever the input bytes are.
//!
//! Columns are written once per compacted block and read many times, so the
//! encoders spend CPU to save bytes: they try several encodings and keep the
//! smallest (see `ints`, `timestamps`, `values`), except that integer
//! streams prefer the fast-to-decode PACKED mode unless DEFLATE saves a
//! quarter of the bytes.

mod bits;
pub(crate) mod cursor;
pub(crate) mod ints;
mod packed;
pub(crate) mod timestamps;
pub(crate) mod values;

pub(crate) use cursor::{Cursor, put_uvarint, put_varint};
pub use timestamps::encode_timestamps;
pub(crate) use timestamps::read_timestamps_into;
pub use values::encode_values;
pub(crate) use values::{read_values, read_values_into};

/// Upper bound on the number of values in one column. Block writers split
/// longer series into several chunks; decoders reject larger counts so that
/// corrupt input cannot make them allocate without bound.
pub(crate) const MAX_COLUMN_LEN: usize = 1 << 20;

/// A column could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("cannot decode {what} at byte {offset}: {reason}")]
pub struct CodecError {
    /// Which structure was being read ("timestamps column", "uvarint", ...).
    pub what: &'static str,
    /// Offset from the start of the slice handed to the outermost decoder.
    pub offset: usize,
    /// What did not hold.
    pub reason: String,
}
