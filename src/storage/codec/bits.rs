//! MSB-first bit writer and a bounds-checked bit reader, used by the XOR
//! value encoding.

/// Appends bits most-significant first; the last byte is zero-padded.
#[derive(Debug, Default)]
pub(super) struct BitWriter {
    buf: Vec<u8>,
    /// Bits used in the last byte of `buf` (0 = start a new byte).
    used: u32,
}

impl BitWriter {
    /// Writes the low `n` bits of `v` (n <= 64), highest first.
    pub(super) fn write(&mut self, v: u64, n: u32) {
        let mut left = n;
        while left > 0 {
            if self.used == 0 {
                self.buf.push(0);
                self.used = 0;
            }
            let free = 8 - self.used;
            let take = free.min(left);
            let shift = left - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << (free - take);
            }
            self.used = (self.used + take) % 8;
            left -= take;
        }
    }

    /// Writes one bit.
    pub(super) fn bit(&mut self, b: bool) {
        self.write(u64::from(b), 1);
    }

    /// The bytes written.
    pub(super) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads bits most-significant first; returns `None` past the end.
#[derive(Debug)]
pub(super) struct BitReader<'a> {
    buf: &'a [u8],
    /// Absolute bit position.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        BitReader { buf, pos: 0 }
    }

    /// Reads `n` bits (n <= 64).
    #[inline]
    pub(super) fn read(&mut self, n: u32) -> Option<u64> {
        // Fast path: one big-endian 8-byte load holds at least 57 bits
        // from `pos` on.
        let byte = self.pos / 8;
        let off = (self.pos % 8) as u32;
        if n >= 1
            && n + off <= 64
            && let Some(w) = self.buf.get(byte..byte + 8)
        {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.pos += n as usize;
            return Some((u64::from_be_bytes(a) << off) >> (64 - n));
        }
        self.read_slow(n)
    }

    /// Byte-at-a-time form of [`BitReader::read`] (end of the slice, reads
    /// spanning nine bytes).
    fn read_slow(&mut self, n: u32) -> Option<u64> {
        let mut v: u64 = 0;
        let mut left = n;
        while left > 0 {
            let byte = *self.buf.get(self.pos / 8)?;
            let off = (self.pos % 8) as u32;
            let avail = 8 - off;
            let take = avail.min(left);
            let bits = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            v = if take == 64 { bits } else { (v << take) | bits };
            self.pos += take as usize;
            left -= take;
        }
        Some(v)
    }

    /// Reads one bit.
    pub(super) fn bit(&mut self) -> Option<bool> {
        self.read(1).map(|b| b == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bits_round_trip(items in proptest::collection::vec((any::<u64>(), 1u32..=64), 0..50)) {
            let mut w = BitWriter::default();
            for &(v, n) in &items {
                w.write(v, n);
            }
            let buf = w.finish();
            let total: u32 = items.iter().map(|i| i.1).sum();
            prop_assert_eq!(buf.len(), total.div_ceil(8) as usize);
            let mut r = BitReader::new(&buf);
            for &(v, n) in &items {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.read(n), Some(v & mask));
            }
        }
    }
}
