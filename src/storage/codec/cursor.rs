//! Bounds-checked reading of the primitive types used by every on-disk
//! structure: bytes, little-endian integers and LEB128 varints.

use super::CodecError;

/// Appends `v` as LEB128 (7 bits per byte, low group first).
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zig-zag maps signed to unsigned so small magnitudes stay small.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends `v` zig-zag encoded as a uvarint.
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// Length in bytes of `v` as a uvarint.
pub(crate) fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// A read position in a byte slice. Every getter checks bounds and reports
/// the absolute offset (`base` + position) of a failure.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`; error offsets are relative to it.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Cursor {
            data,
            pos: 0,
            base: 0,
        }
    }

    /// A cursor whose error offsets are shifted by `base` (for slices cut
    /// out of a larger file).
    pub(crate) fn with_base(data: &'a [u8], base: usize) -> Self {
        Cursor { data, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// The unread bytes.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    /// Number of unread bytes.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// An error at the current position.
    pub(crate) fn err(&self, what: &'static str, reason: impl Into<String>) -> CodecError {
        CodecError {
            what,
            offset: self.offset(),
            reason: reason.into(),
        }
    }

    /// Takes the next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                self.err(
                    what,
                    format!("need {n} bytes, only {} left", self.remaining()),
                )
            })?;
        let s = self.data.get(self.pos..end).unwrap_or(&[]);
        self.pos = end;
        Ok(s)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.bytes(1, what)?.first().copied().unwrap_or(0))
    }

    /// Reads a little-endian `u32`.
    pub(crate) fn u32_le(&mut self, what: &'static str) -> Result<u32, CodecError> {
        let b = self.bytes(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    /// Reads a little-endian `u64`.
    pub(crate) fn u64_le(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a LEB128 uvarint of at most 10 bytes that fits in a `u64`.
    pub(crate) fn uvarint(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for i in 0..10u32 {
            let b = self.u8(what)?;
            let low = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(self.err(what, "uvarint overflows 64 bits"));
            }
            v |= low << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err(what, "uvarint longer than 10 bytes"))
    }

    /// Reads a zig-zag varint.
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<i64, CodecError> {
        Ok(unzigzag(self.uvarint(what)?))
    }

    /// Reads a uvarint that must be at most `max` (a count or a length).
    pub(crate) fn count(&mut self, max: usize, what: &'static str) -> Result<usize, CodecError> {
        let v = self.uvarint(what)?;
        if v > max as u64 {
            return Err(self.err(what, format!("count {v} exceeds limit {max}")));
        }
        Ok(v as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_varints() {
        let mut b = Vec::new();
        put_uvarint(&mut b, 300);
        put_varint(&mut b, -1);
        put_varint(&mut b, 1);
        assert_eq!(b, [0xac, 0x02, 0x01, 0x02]);
        assert_eq!(uvarint_len(0), 1);
        assert_eq!(uvarint_len(127), 1);
        assert_eq!(uvarint_len(128), 2);
        assert_eq!(uvarint_len(u64::MAX), 10);
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        let mut c = Cursor::new(&[0xff; 11]);
        assert!(c.uvarint("x").is_err());
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert!(c.uvarint("x").is_err());
        let mut c = Cursor::new(&[0x80]);
        let e = c.uvarint("x").unwrap_err();
        assert_eq!(e.offset, 1);
    }

    proptest! {
        #[test]
        fn varint_round_trip(v: i64, u: u64, junk in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            put_uvarint(&mut b, u);
            prop_assert_eq!(b.len(), uvarint_len(zigzag(v)) + uvarint_len(u));
            b.extend_from_slice(&junk);
            let mut c = Cursor::new(&b);
            prop_assert_eq!(c.varint("v").unwrap(), v);
            prop_assert_eq!(c.uvarint("u").unwrap(), u);
            prop_assert_eq!(c.rest(), &junk[..]);
        }
    }
}
