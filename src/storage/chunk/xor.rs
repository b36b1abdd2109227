//! The XOR chunk (storage-format.md section 4.1).
//!
//! Layout: `u16` LE sample count, then a bit stream (MSB first):
//! sample 0 = zig-zag varint timestamp + 64 raw value bits;
//! sample 1 = uvarint timestamp delta + XOR value;
//! sample n>=2 = delta-of-delta timestamp + XOR value.
//!
//! Delta-of-delta: `0` (dod = 0) | `10` + 7 bits | `110` + 14 bits |
//! `1110` + 24 bits | `1111` + 64 bits, two's complement. The 7-bit class
//! holds millisecond scrape jitter (±64 ms) in 9 bits instead of 16; the
//! 24-bit class holds gaps of up to ±2.3 h.
//!
//! XOR value (against the previous value's bits): `0` (identical bits) |
//! `10` + meaningful bits inside the previous leading/trailing-zero window |
//! `11` + 5 bits leading zeros (capped at 31) + 6 bits meaningful-bit count
//! (64 written as 0) + the meaningful bits. Values are compared as bit
//! patterns, so NaN payloads (the stale marker) and -0.0 survive exactly.

use super::ChunkError;
use super::bits::{BitReader, BitWriter};

/// Size of the sample-count header in bytes.
const HEADER_LEN: usize = 2;

/// Initial byte capacity of a new chunk: room for the header, the first
/// sample and a few more, so a chunk is not grown from 2 bytes one
/// doubling at a time (a whole chunk of regular samples is usually a few
/// hundred bytes; [`XorAppender::into_bytes`] shrinks it when closed).
const INITIAL_CAPACITY: usize = 128;

/// Appends samples to an XOR chunk. Timestamps must be strictly increasing
/// (the head guarantees it; out-of-order samples go elsewhere).
#[derive(Clone, Debug)]
pub(crate) struct XorAppender {
    w: BitWriter,
    count: u16,
    t: i64,
    delta: i64,
    v_bits: u64,
    leading: u8,
    trailing: u8,
    min_t: i64,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    /// An empty chunk.
    pub(crate) fn new() -> Self {
        let mut bytes = Vec::with_capacity(INITIAL_CAPACITY);
        bytes.extend_from_slice(&[0; HEADER_LEN]);
        XorAppender {
            w: BitWriter {
                bytes,
                bit_len: (HEADER_LEN * 8) as u64,
            },
            count: 0,
            t: 0,
            delta: 0,
            v_bits: 0,
            // 0xff marks "no window yet" so the first XOR writes a full window.
            leading: 0xff,
            trailing: 0,
            min_t: 0,
        }
    }

    /// Samples in the chunk.
    pub(crate) fn count(&self) -> u16 {
        self.count
    }

    /// First timestamp (meaningless when empty).
    pub(crate) fn min_t(&self) -> i64 {
        self.min_t
    }

    /// Last timestamp (meaningless when empty).
    pub(crate) fn max_t(&self) -> i64 {
        self.t
    }

    /// Last value (meaningless when empty).
    pub(crate) fn last_value(&self) -> f64 {
        f64::from_bits(self.v_bits)
    }

    /// The encoded bytes so far (a complete, decodable chunk).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.w.bytes
    }

    /// Consumes the appender into its bytes (shrunk to fit).
    pub(crate) fn into_bytes(self) -> Box<[u8]> {
        self.w.bytes.into_boxed_slice()
    }

    /// Appends one sample. Panics (a bug) if the chunk is full or `t` does
    /// not increase.
    #[inline]
    pub(crate) fn append(&mut self, t: i64, v: f64) {
        if (2..u16::MAX).contains(&self.count) {
            self.append_regular(t, v);
        } else {
            self.append_start(t, v);
        }
    }

    /// [`XorAppender::append`] of sample 2 onwards (not full): the
    /// delta-of-delta and XOR codes.
    #[inline]
    fn append_regular(&mut self, t: i64, v: f64) {
        assert!(t > self.t, "bug: chunk timestamps must increase");
        let bits = v.to_bits();
        let delta = t.wrapping_sub(self.t);
        let dod = delta.wrapping_sub(self.delta);
        match dod_code(dod) {
            Some((code, n)) => self.write_xor(code, n, bits),
            None => {
                self.w.write_bits(0b1111, 4);
                self.w.write_bits(dod as u64, 64);
                self.write_xor(0, 0, bits);
            }
        }
        self.delta = delta;
        self.finish(t, bits);
    }

    /// [`XorAppender::append`] of samples 0 and 1 (and the full-chunk
    /// panic): raw first sample, then a plain delta.
    #[cold]
    #[inline(never)]
    fn append_start(&mut self, t: i64, v: f64) {
        assert!(self.count < u16::MAX, "bug: XOR chunk full");
        let bits = v.to_bits();
        if self.count == 0 {
            self.w.write_varint(t);
            self.w.write_bits(bits, 64);
            self.min_t = t;
        } else {
            assert!(t > self.t, "bug: chunk timestamps must increase");
            let delta = t.wrapping_sub(self.t);
            self.w.write_uvarint(delta as u64);
            self.write_xor(0, 0, bits);
            self.delta = delta;
        }
        self.finish(t, bits);
    }

    /// Records the appended sample and rewrites the count header.
    #[inline(always)]
    fn finish(&mut self, t: i64, bits: u64) {
        self.t = t;
        self.v_bits = bits;
        self.count += 1;
        if let Some(h) = self.w.bytes.get_mut(..HEADER_LEN) {
            h.copy_from_slice(&self.count.to_le_bytes());
        }
    }

    /// Writes the XOR value code of `bits`, preceded by the `prefix_n`
    /// (<= 28) low bits of `prefix` (the sample's timestamp code), in as
    /// few bit-writer calls as the widths allow (one or two).
    #[inline(always)]
    fn write_xor(&mut self, prefix: u64, prefix_n: u32, bits: u64) {
        debug_assert!(prefix_n <= 28);
        let x = bits ^ self.v_bits;
        if x == 0 {
            self.w.write_bits(prefix << 1, prefix_n + 1);
            return;
        }
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        let (head, head_n, sig, shift) =
            if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
                // `10`: the meaningful bits inside the previous window.
                let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
                (prefix << 2 | 0b10, prefix_n + 2, sig, self.trailing)
            } else {
                self.leading = leading;
                self.trailing = trailing;
                let sig = 64 - u32::from(leading) - u32::from(trailing);
                // `11`, 5 bits leading zeros, 6 bits meaningful-bit count
                // (64 meaningful bits do not fit in 6 bits; 0 stands for
                // 64, and 0 itself is impossible: x != 0).
                let h = 0b11 << 11 | u64::from(leading) << 6 | (u64::from(sig) & 0x3f);
                (prefix << 13 | h, prefix_n + 13, sig, trailing)
            };
        let payload = x >> shift;
        if head_n + sig <= 64 {
            // `sig` < 64 here, so the shift is in range.
            self.w.write_bits(head << sig | payload, head_n + sig);
        } else {
            self.w.write_bits(head, head_n);
            self.w.write_bits(payload, sig);
        }
    }
}

/// The delta-of-delta code (prefix and two's complement payload as one
/// value, and its width in bits), or `None` for the 64-bit class (68 bits,
/// written in two steps by the caller).
#[inline]
fn dod_code(dod: i64) -> Option<(u64, u32)> {
    let fits = |n: u32| dod >= -(1i64 << (n - 1)) && dod < (1i64 << (n - 1));
    let payload = |n: u32| dod as u64 & ((1u64 << n) - 1);
    if dod == 0 {
        Some((0, 1))
    } else if fits(7) {
        Some((0b10 << 7 | payload(7), 9))
    } else if fits(14) {
        Some((0b110 << 14 | payload(14), 17))
    } else if fits(24) {
        Some((0b1110 << 24 | payload(24), 28))
    } else {
        None
    }
}

/// Iterates the samples of an XOR chunk. Stops at the first malformed
/// sample and records the error (see [`XorIter::error`]); never panics and
/// never reads past the slice.
#[derive(Clone, Debug)]
pub(crate) struct XorIter<'a> {
    r: BitReader<'a>,
    count: u16,
    read: u16,
    t: i64,
    delta: i64,
    v_bits: u64,
    leading: u32,
    trailing: u32,
    err: Option<ChunkError>,
}

impl<'a> XorIter<'a> {
    /// An iterator over `bytes` (a whole chunk, header included).
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let (count, err) = match bytes.get(..HEADER_LEN) {
            Some(h) => (u16::from_le_bytes([h[0], h[1]]), None),
            None => (
                0,
                Some(ChunkError::Invalid("shorter than its 2-byte header")),
            ),
        };
        XorIter {
            r: BitReader::new(bytes.get(HEADER_LEN..).unwrap_or(&[])),
            count,
            read: 0,
            t: 0,
            delta: 0,
            v_bits: 0,
            leading: 0,
            trailing: 0,
            err,
        }
    }

    /// Samples the header promises.
    #[cfg(test)]
    pub(crate) fn sample_count(&self) -> u16 {
        self.count
    }

    /// The error that stopped iteration early, if any. (Head chunks are
    /// produced by [`XorAppender`] in memory, so outside tests an error can
    /// only be a bug; the head reads them as plain iterators.)
    #[cfg(test)]
    pub(crate) fn error(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }

    fn step(&mut self) -> Option<(i64, f64)> {
        match self.read {
            0 => {
                self.t = self.r.read_varint()?;
                self.v_bits = self.r.read_bits(64)?;
            }
            1 => {
                self.delta = self.r.read_uvarint()? as i64;
                self.t = self.t.wrapping_add(self.delta);
                self.read_xor()?;
            }
            _ => {
                let dod = self.read_dod()?;
                self.delta = self.delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.delta);
                self.read_xor()?;
            }
        }
        Some((self.t, f64::from_bits(self.v_bits)))
    }

    #[inline]
    fn read_dod(&mut self) -> Option<i64> {
        // The prefix is up to four 1-bits, ended by a 0 when shorter.
        let (peek, avail) = self.r.peek8();
        let ones = peek.leading_ones().min(4);
        let prefix_len = if ones < 4 { ones + 1 } else { 4 };
        if prefix_len > avail {
            return None;
        }
        self.r.skip(prefix_len);
        let n = match ones {
            0 => return Some(0),
            1 => 7,
            2 => 14,
            3 => 24,
            _ => 64,
        };
        let raw = self.r.read_bits(n)?;
        Some(if n == 64 {
            raw as i64
        } else {
            // Sign-extend from n bits.
            ((raw << (64 - n)) as i64) >> (64 - n)
        })
    }

    #[inline]
    fn read_xor(&mut self) -> Option<()> {
        let (peek, avail) = self.r.peek8();
        if avail == 0 {
            return None;
        }
        if peek & 0x80 == 0 {
            self.r.skip(1);
            return Some(());
        }
        if avail < 2 {
            return None;
        }
        self.r.skip(2);
        if peek & 0x40 != 0 {
            let head = self.r.read_bits(11)? as u32;
            self.leading = head >> 6;
            let mut sig = head & 0x3f;
            if sig == 0 {
                sig = 64;
            }
            if self.leading + sig > 64 {
                return None;
            }
            self.trailing = 64 - self.leading - sig;
        }
        let sig = 64 - self.leading - self.trailing;
        if sig == 0 || sig > 64 {
            return None;
        }
        let x = self.r.read_bits(sig)?;
        self.v_bits ^= x << self.trailing;
        Some(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.err.is_some() || self.read >= self.count {
            return None;
        }
        match self.step() {
            Some(s) => {
                self.read += 1;
                Some(s)
            }
            None => {
                self.err = Some(ChunkError::Truncated {
                    index: self.read,
                    count: self.count,
                });
                None
            }
        }
    }
}

/// Decodes a whole chunk into two columns.
#[cfg(test)]
pub(crate) fn decode_xor(bytes: &[u8]) -> Result<(Vec<i64>, Vec<f64>), ChunkError> {
    let mut it = XorIter::new(bytes);
    let mut ts = Vec::with_capacity(usize::from(it.sample_count()));
    let mut vs = Vec::with_capacity(usize::from(it.sample_count()));
    for (t, v) in it.by_ref() {
        ts.push(t);
        vs.push(v);
    }
    match it.error() {
        Some(e) => Err(e.clone()),
        None => Ok((ts, vs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN_BITS;
    use proptest::prelude::*;

    fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut a = XorAppender::new();
        for &(t, v) in samples {
            a.append(t, v);
        }
        a.bytes().to_vec()
    }

    /// The original one-field-per-write encoder, kept as the reference the
    /// combined writes of [`XorAppender::append`] must match byte for byte.
    fn reference_encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut w = BitWriter {
            bytes: vec![0; HEADER_LEN],
            bit_len: (HEADER_LEN * 8) as u64,
        };
        let (mut pt, mut pdelta, mut pv) = (0i64, 0i64, 0u64);
        let (mut pl, mut ptr) = (0xffu8, 0u8);
        for (i, &(t, v)) in samples.iter().enumerate() {
            let bits = v.to_bits();
            if i == 0 {
                w.write_varint(t);
                w.write_bits(bits, 64);
            } else {
                let delta = t.wrapping_sub(pt);
                if i == 1 {
                    w.write_uvarint(delta as u64);
                } else {
                    let dod = delta.wrapping_sub(pdelta);
                    let fits = |n: u32| dod >= -(1i64 << (n - 1)) && dod < (1i64 << (n - 1));
                    if dod == 0 {
                        w.write_bit(false);
                    } else if fits(7) {
                        w.write_bits(0b10, 2);
                        w.write_bits(dod as u64, 7);
                    } else if fits(14) {
                        w.write_bits(0b110, 3);
                        w.write_bits(dod as u64, 14);
                    } else if fits(24) {
                        w.write_bits(0b1110, 4);
                        w.write_bits(dod as u64, 24);
                    } else {
                        w.write_bits(0b1111, 4);
                        w.write_bits(dod as u64, 64);
                    }
                }
                pdelta = delta;
                let x = bits ^ pv;
                if x == 0 {
                    w.write_bit(false);
                } else {
                    w.write_bit(true);
                    let leading = (x.leading_zeros() as u8).min(31);
                    let trailing = x.trailing_zeros() as u8;
                    if pl != 0xff && leading >= pl && trailing >= ptr {
                        w.write_bit(false);
                        w.write_bits(x >> ptr, 64 - u32::from(pl) - u32::from(ptr));
                    } else {
                        (pl, ptr) = (leading, trailing);
                        w.write_bit(true);
                        w.write_bits(u64::from(leading), 5);
                        let sig = 64 - u32::from(leading) - u32::from(trailing);
                        w.write_bits(u64::from(sig) & 0x3f, 6);
                        w.write_bits(x >> trailing, sig);
                    }
                }
            }
            pt = t;
            pv = bits;
        }
        w.bytes[..HEADER_LEN].copy_from_slice(&(samples.len() as u16).to_le_bytes());
        w.bytes
    }

    fn special_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            proptest::num::f64::ANY,
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(0.0),
            Just(f64::from_bits(STALE_NAN_BITS)),
            (0i64..1000).prop_map(|i| i as f64),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(start in proptest::num::i64::ANY,
                      gaps in proptest::collection::vec(prop_oneof![Just(15_000i64), 14_900i64..15_100, 1i64..100_000, 1i64..20_000_000, 1i64..i64::MAX / 300], 0..200),
                      vals in proptest::collection::vec(special_f64(), 201)) {
            let mut samples = Vec::new();
            let mut t = start;
            samples.push((t, vals[0]));
            for (i, g) in gaps.iter().enumerate() {
                match t.checked_add(*g) {
                    Some(n) => t = n,
                    None => break,
                }
                samples.push((t, vals[i + 1]));
            }
            let bytes = encode(&samples);
            prop_assert_eq!(&bytes, &reference_encode(&samples));
            let (ts, vs) = decode_xor(&bytes).unwrap();
            prop_assert_eq!(ts.len(), samples.len());
            for (i, &(t, v)) in samples.iter().enumerate() {
                prop_assert_eq!(ts[i], t);
                prop_assert_eq!(vs[i].to_bits(), v.to_bits());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut it = XorIter::new(&bytes);
            let n = it.sample_count();
            let got = it.by_ref().count();
            prop_assert!(got <= usize::from(n));
            prop_assert!(got == usize::from(n) || it.error().is_some());
        }
    }

    #[test]
    fn golden_bytes() {
        // 3 samples: t=1000 v=1, t=16000 v=1, t=31000 v=2.5 (regular 15 s).
        let bytes = encode(&[(1000, 1.0), (16_000, 1.0), (31_000, 2.5)]);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // 0300              count = 3 (u16 LE)
        // d00f              zig-zag varint(1000)
        // 3ff0000000000000  1.0 as raw bits
        // 9875              uvarint(15000), delta of sample 1
        // then bits: 0 (value unchanged) | 0 (dod 0) | 11 00001 001101
        // 1111111111101 (xor 1.0^2.5: leading 1, 13 meaningful bits) | pad
        // = 0011_0000 1001_1011 1111_1111 1101_0000 = 30 9b ff d0
        assert_eq!(hex, "0300d00f3ff00000000000009875309bffd0");
        let (ts, vs) = decode_xor(&bytes).unwrap();
        assert_eq!(ts, vec![1000, 16_000, 31_000]);
        assert_eq!(vs, vec![1.0, 1.0, 2.5]);
    }

    #[test]
    fn golden_bytes_with_jitter() {
        // Deltas 15000, 15007, 14990, 15000, 25000: dod +7, -17, +10 (all
        // in the 7-bit class), then +10000 (24-bit class); constant value.
        let ts = [0, 15_000, 30_007, 44_997, 59_997, 84_997];
        let samples: Vec<(i64, f64)> = ts.iter().map(|&t| (t, 5.0)).collect();
        let bytes = encode(&samples);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // 0600 | 00 (t0 = 0) | 4014000000000000 (5.0) | 9875 (delta 15000) |
        // bits: 0 (xor) | 10 0000111 0 | 10 1101111 0 | 10 0001010 0 |
        // 1110 000000000010011100010000 0 | pad
        assert_eq!(hex, "0600004014000000000000987541d6f429c004e200");
        let (got_ts, got_vs) = decode_xor(&bytes).unwrap();
        assert_eq!(got_ts, ts);
        assert!(got_vs.iter().all(|&v| v == 5.0));
    }

    #[test]
    fn truncated_chunk_reports_error() {
        let bytes = encode(&[(1, 1.0), (2, 2.0), (3, 7.0)]);
        let err = decode_xor(&bytes[..bytes.len() - 2]).unwrap_err();
        assert!(
            matches!(err, ChunkError::Truncated { count: 3, .. }),
            "{err}"
        );
        assert_eq!(
            decode_xor(&[1]).unwrap_err(),
            ChunkError::Invalid("shorter than its 2-byte header")
        );
    }
}
