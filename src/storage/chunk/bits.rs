//! Bit-level writer and reader over a byte vector / slice (most significant
//! bit first), the substrate of the Gorilla chunk encoding.

/// Appends bits to a byte vector, MSB first. `bit_len` counts valid bits;
/// unused low bits of the last byte are zero.
#[derive(Clone, Debug, Default)]
pub(crate) struct BitWriter {
    pub(crate) bytes: Vec<u8>,
    pub(crate) bit_len: u64,
}

impl BitWriter {
    /// Writes the low `n` bits of `v` (n <= 64), most significant first.
    ///
    /// The partial last byte and the new bits are assembled MSB-aligned in
    /// one `u64` and stored as one fixed 8-byte big-endian extend, then the
    /// vector is cut to the bytes actually started; so the output is the
    /// same as writing bit by bit and the unused low bits stay zero. Only
    /// when the partial byte and the bits exceed 64 bits (`n` > 56) are
    /// two such steps taken.
    #[inline]
    pub(crate) fn write_bits(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64);
        if n == 0 {
            return;
        }
        let used = (self.bit_len % 8) as u32;
        if used + n > 64 {
            self.write_bits_split(v, n);
            return;
        }
        // `used` > 0 means the last byte is partial: it is rewritten with
        // the new bits below its used ones (its unused bits are zero).
        let start = self.bytes.len() - usize::from(used != 0);
        let prev = match used {
            0 => 0,
            _ => u64::from(self.bytes.get(start).copied().unwrap_or(0)),
        };
        // The low `n` bits of `v` MSB-aligned (bits above them shift out),
        // then moved below the `used` bits of the partial byte.
        let word = prev << 56 | (v << (64 - n)) >> used;
        self.bytes.truncate(start);
        self.bytes.extend_from_slice(&word.to_be_bytes());
        self.bytes.truncate(start + (used + n).div_ceil(8) as usize);
        self.bit_len += u64::from(n);
    }

    /// [`BitWriter::write_bits`] of more than 56 bits after a partial
    /// byte: the top `n - 32` bits, then the low 32 (each fits one step).
    #[cold]
    fn write_bits_split(&mut self, v: u64, n: u32) {
        self.write_bits(v >> 32, n - 32);
        self.write_bits(v & 0xffff_ffff, 32);
    }

    /// Writes one bit.
    #[cfg(test)]
    pub(crate) fn write_bit(&mut self, b: bool) {
        self.write_bits(u64::from(b), 1);
    }

    /// Writes a LEB128 unsigned varint as whole bytes into the bit stream.
    pub(crate) fn write_uvarint(&mut self, v: u64) {
        // Up to 8 varint bytes (v < 2^56) are packed into one u64 and
        // written at once; longer ones fall back to byte at a time.
        if v < 1 << 56 {
            let mut packed = 0u64;
            let mut n = 0u32;
            let mut x = v;
            loop {
                let b = x & 0x7f;
                x >>= 7;
                if x == 0 {
                    packed = packed << 8 | b;
                    n += 8;
                    break;
                }
                packed = packed << 8 | b | 0x80;
                n += 8;
            }
            self.write_bits(packed, n);
            return;
        }
        let mut x = v;
        loop {
            let b = x & 0x7f;
            x >>= 7;
            if x == 0 {
                self.write_bits(b, 8);
                return;
            }
            self.write_bits(b | 0x80, 8);
        }
    }

    /// Writes a zig-zag signed varint.
    pub(crate) fn write_varint(&mut self, v: i64) {
        self.write_uvarint(((v << 1) ^ (v >> 63)) as u64);
    }
}

/// Reads bits from a slice, MSB first. Every read is bounds-checked and
/// returns `None` past the end (never panics on arbitrary input).
#[derive(Clone, Debug)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    pos: u64,
}

impl<'a> BitReader<'a> {
    /// A reader at bit 0 of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    /// Reads `n` bits (n <= 64) as the low bits of the result.
    #[inline]
    pub(crate) fn read_bits(&mut self, n: u32) -> Option<u64> {
        if self.pos + u64::from(n) > self.bytes.len() as u64 * 8 {
            return None;
        }
        // Fast path: one big-endian 8-byte load holds bits `pos..pos + 57`
        // at least (the load starts at most 7 bits before `pos`).
        let byte = (self.pos / 8) as usize;
        let used = (self.pos % 8) as u32;
        if n >= 1
            && n + used <= 64
            && let Some(w) = self.bytes.get(byte..byte + 8)
        {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            let v = (u64::from_be_bytes(a) << used) >> (64 - n);
            self.pos += u64::from(n);
            return Some(v);
        }
        self.read_bits_slow(n)
    }

    /// Byte-at-a-time form of [`BitReader::read_bits`], for the last bytes
    /// of the slice and reads crossing more than 8 bytes (bounds already
    /// checked by the caller).
    fn read_bits_slow(&mut self, n: u32) -> Option<u64> {
        let mut out = 0u64;
        let mut remaining = n;
        while remaining > 0 {
            let byte = *self.bytes.get((self.pos / 8) as usize)?;
            let used = (self.pos % 8) as u32;
            let avail = 8 - used;
            let take = avail.min(remaining);
            let bits = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            out = (out << take) | u64::from(bits);
            remaining -= take;
            self.pos += u64::from(take);
        }
        Some(out)
    }

    /// The next up to 8 bits without consuming them, MSB-aligned in a
    /// `u8` (missing bits past the end read as 0), plus how many are real.
    #[inline]
    pub(crate) fn peek8(&self) -> (u8, u32) {
        let byte = (self.pos / 8) as usize;
        let used = (self.pos % 8) as u32;
        let hi = self.bytes.get(byte).copied().unwrap_or(0);
        let lo = self.bytes.get(byte + 1).copied().unwrap_or(0);
        let w = (u16::from(hi) << 8 | u16::from(lo)) << used;
        let avail = (self.bytes.len() as u64 * 8).saturating_sub(self.pos);
        ((w >> 8) as u8, avail.min(8) as u32)
    }

    /// Skips `n` bits already seen through [`BitReader::peek8`].
    #[inline]
    pub(crate) fn skip(&mut self, n: u32) {
        self.pos += u64::from(n);
    }

    /// Reads one bit.
    #[cfg(test)]
    pub(crate) fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }

    /// Reads a LEB128 unsigned varint written by [`BitWriter::write_uvarint`].
    pub(crate) fn read_uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.read_bits(8)?;
            v |= (b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// Reads a zig-zag signed varint.
    pub(crate) fn read_varint(&mut self) -> Option<i64> {
        let u = self.read_uvarint()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original bit-at-a-time writer, kept as the reference the fast
    /// [`BitWriter::write_bits`] must match byte for byte.
    fn reference_write_bits(bytes: &mut Vec<u8>, bit_len: &mut u64, v: u64, n: u32) {
        let mut remaining = n;
        while remaining > 0 {
            let used = (*bit_len % 8) as u32;
            if used == 0 {
                bytes.push(0);
            }
            let free = 8 - used;
            let take = free.min(remaining);
            let shift = remaining - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = bytes.last_mut() {
                *last |= chunk << (free - take);
            }
            remaining -= take;
            *bit_len += u64::from(take);
        }
    }

    /// The original byte-at-a-time uvarint writer (reference).
    fn reference_write_uvarint(bytes: &mut Vec<u8>, bit_len: &mut u64, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                reference_write_bits(bytes, bit_len, u64::from(b), 8);
                return;
            }
            reference_write_bits(bytes, bit_len, u64::from(b | 0x80), 8);
        }
    }

    /// One write of a random sequence: plain bits or a uvarint.
    #[derive(Clone, Debug)]
    enum Op {
        Bits(u64, u32),
        Uvarint(u64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (any::<u64>(), 0u32..=64).prop_map(|(v, n)| Op::Bits(v, n)),
            // Small widths dominate real chunks (control bits, dod classes).
            (any::<u64>(), 0u32..=12).prop_map(|(v, n)| Op::Bits(v, n)),
            any::<u64>().prop_map(Op::Uvarint),
            (0u32..64).prop_map(|s| Op::Uvarint(1u64 << s)),
            (0u32..64).prop_map(|s| Op::Uvarint((1u64 << s) - 1)),
        ]
    }

    proptest::proptest! {
        /// The fast writer produces exactly the reference writer's bytes
        /// (including an existing prefix, as a chunk header is) and the
        /// reader reads every value back.
        #[test]
        fn writer_matches_reference_and_reader(pre in proptest::collection::vec(proptest::num::u8::ANY, 0..3),
                                               ops in proptest::collection::vec(op(), 0..80)) {
            let mut w = BitWriter { bytes: pre.clone(), bit_len: pre.len() as u64 * 8 };
            let (mut rb, mut rl) = (pre.clone(), pre.len() as u64 * 8);
            for o in &ops {
                match *o {
                    Op::Bits(v, n) => {
                        w.write_bits(v, n);
                        reference_write_bits(&mut rb, &mut rl, v, n);
                    }
                    Op::Uvarint(v) => {
                        w.write_uvarint(v);
                        reference_write_uvarint(&mut rb, &mut rl, v);
                    }
                }
                proptest::prop_assert_eq!(&w.bytes, &rb);
                proptest::prop_assert_eq!(w.bit_len, rl);
            }
            let mut r2 = BitReader::new(&w.bytes);
            for _ in 0..pre.len() {
                r2.read_bits(8);
            }
            for o in &ops {
                match *o {
                    Op::Bits(v, n) => {
                        if n == 0 {
                            continue;
                        }
                        let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                        proptest::prop_assert_eq!(r2.read_bits(n), Some(v & mask));
                    }
                    Op::Uvarint(v) => proptest::prop_assert_eq!(r2.read_uvarint(), Some(v)),
                }
            }
            proptest::prop_assert_eq!(r2.read_bits(8), None);
        }

        #[test]
        fn bits_round_trip(items in proptest::collection::vec((proptest::num::u64::ANY, 1u32..=64), 0..50)) {
            let mut w = BitWriter::default();
            for &(v, n) in &items {
                w.write_bits(v, n);
            }
            proptest::prop_assert_eq!(w.bytes.len() as u64, w.bit_len.div_ceil(8));
            let mut r = BitReader::new(&w.bytes);
            for &(v, n) in &items {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                proptest::prop_assert_eq!(r.read_bits(n), Some(v & mask));
            }
        }

        #[test]
        fn varints_round_trip(a in proptest::num::i64::ANY, b in proptest::num::u64::ANY, pre in 0u32..8) {
            let mut w = BitWriter::default();
            w.write_bits(0, pre);
            w.write_varint(a);
            w.write_uvarint(b);
            let mut r = BitReader::new(&w.bytes);
            r.read_bits(pre);
            proptest::prop_assert_eq!(r.read_varint(), Some(a));
            proptest::prop_assert_eq!(r.read_uvarint(), Some(b));
        }
    }

    #[test]
    fn reads_past_end_fail() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(8), Some(0xff));
        assert_eq!(r.read_bit(), None);
        assert_eq!(BitReader::new(&[0x80, 0x80]).read_uvarint(), None);
    }
}
