//! Bulk decoding of an XOR chunk (storage-format.md section 4.1) into two
//! columns, for the head's read path.
//!
//! Same bit stream and same results as [`XorIter`](super::XorIter) (a
//! property test holds them equal on valid and arbitrary bytes), but the
//! next up to 64 bits live in a register that is refilled 8 bytes at a
//! time, and samples are written straight into the caller's columns, so a
//! sample costs a few shifts instead of several bounds-checked byte reads.

use super::ChunkError;

/// Size of the sample-count header in bytes.
const HEADER_LEN: usize = 2;

/// A refilling MSB-first bit reader. `buf` holds the next `n` bits of the
/// stream left-aligned; the bits below them are either zero or the bits
/// that follow in the stream (so OR-ing those bytes in again is harmless).
struct BitBuf<'a> {
    bytes: &'a [u8],
    /// Next byte of `bytes` not yet counted in `n`.
    next: usize,
    buf: u64,
    n: u32,
}

impl<'a> BitBuf<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let mut b = BitBuf {
            bytes,
            next: 0,
            buf: 0,
            n: 0,
        };
        b.refill();
        b
    }

    /// Tops `buf` up to at least 56 valid bits, or to the end of the data.
    #[inline]
    fn refill(&mut self) {
        if self.n >= 56 {
            return;
        }
        if let Some(w) = self.bytes.get(self.next..self.next + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            // n < 56: the load's top (64 - n) bits land right after the
            // valid ones; only whole bytes are counted.
            self.buf |= u64::from_be_bytes(a) >> self.n;
            let k = (63 - self.n) / 8;
            self.next += k as usize;
            self.n += k * 8;
        } else {
            while self.n <= 56 {
                let Some(&b) = self.bytes.get(self.next) else {
                    break;
                };
                self.buf |= u64::from(b) << (56 - self.n);
                self.next += 1;
                self.n += 8;
            }
        }
    }

    /// Reads `k` bits, 1 <= k <= 56.
    #[inline]
    fn read(&mut self, k: u32) -> Option<u64> {
        if self.n < k {
            self.refill();
            if self.n < k {
                return None;
            }
        }
        let v = self.buf >> (64 - k);
        self.buf <<= k;
        self.n -= k;
        Some(v)
    }

    /// Reads `k` bits, 1 <= k <= 64.
    #[inline]
    fn read_long(&mut self, k: u32) -> Option<u64> {
        if k <= 56 {
            return self.read(k);
        }
        let hi = self.read(k - 32)?;
        let lo = self.read(32)?;
        Some((hi << 32) | lo)
    }

    /// The next 8 bits (bits past the end read as 0) and how many exist.
    #[inline]
    fn peek8(&mut self) -> (u8, u32) {
        if self.n < 8 {
            self.refill();
        }
        ((self.buf >> 56) as u8, self.n.min(8))
    }

    /// Drops `k` bits already seen through [`BitBuf::peek8`] (k <= 8).
    #[inline]
    fn skip(&mut self, k: u32) {
        self.buf <<= k;
        self.n -= k;
    }

    /// A LEB128 uvarint written as whole bytes into the bit stream.
    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.read(8)?;
            v |= (b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

/// The delta-of-delta field: `0` | `10`+7 | `110`+14 | `1110`+24 | `1111`+64.
#[inline]
fn read_dod(r: &mut BitBuf<'_>) -> Option<i64> {
    let (peek, avail) = r.peek8();
    let ones = peek.leading_ones().min(4);
    let prefix_len = if ones < 4 { ones + 1 } else { 4 };
    if prefix_len > avail {
        return None;
    }
    r.skip(prefix_len);
    let n = match ones {
        0 => return Some(0),
        1 => 7,
        2 => 14,
        3 => 24,
        _ => return r.read_long(64).map(|raw| raw as i64),
    };
    let raw = r.read(n)?;
    // Sign-extend from n bits.
    Some(((raw << (64 - n)) as i64) >> (64 - n))
}

/// XOR value state: previous bits and the leading/trailing-zero window.
struct XorState {
    bits: u64,
    leading: u32,
    trailing: u32,
}

#[inline]
fn read_xor(r: &mut BitBuf<'_>, s: &mut XorState) -> Option<()> {
    let (peek, avail) = r.peek8();
    if avail == 0 {
        return None;
    }
    if peek & 0x80 == 0 {
        r.skip(1);
        return Some(());
    }
    if avail < 2 {
        return None;
    }
    r.skip(2);
    if peek & 0x40 != 0 {
        let head = r.read(11)? as u32;
        s.leading = head >> 6;
        let sig = match head & 0x3f {
            0 => 64,
            x => x,
        };
        if s.leading + sig > 64 {
            return None;
        }
        s.trailing = 64 - s.leading - sig;
    }
    let sig = 64 - s.leading - s.trailing;
    if sig == 0 || sig > 64 {
        return None;
    }
    let x = r.read_long(sig)?;
    s.bits ^= x << s.trailing;
    Some(())
}

/// Appends the samples of the chunk `bytes` with `min_t <= t <= max_t` to
/// `ts`/`vs`, stopping at the first sample past `max_t` (chunk timestamps
/// increase). On a malformed chunk the samples before the bad one are kept
/// (as far as they are in range) and the error is returned.
pub(crate) fn decode_range_into(
    bytes: &[u8],
    min_t: i64,
    max_t: i64,
    ts: &mut Vec<i64>,
    vs: &mut Vec<f64>,
) -> Result<(), ChunkError> {
    let Some(h) = bytes.get(..HEADER_LEN) else {
        return Err(ChunkError::Invalid("shorter than its 2-byte header"));
    };
    let count = u16::from_le_bytes([h[0], h[1]]);
    if count == 0 {
        return Ok(());
    }
    let truncated = |index: u16| ChunkError::Truncated { index, count };
    let mut r = BitBuf::new(bytes.get(HEADER_LEN..).unwrap_or(&[]));
    ts.reserve(usize::from(count));
    vs.reserve(usize::from(count));

    let zz = r.uvarint().ok_or(truncated(0))?;
    let mut t = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
    let mut s = XorState {
        bits: r.read_long(64).ok_or(truncated(0))?,
        leading: 0,
        trailing: 0,
    };
    let mut push = |t: i64, bits: u64| -> bool {
        if t > max_t {
            return false;
        }
        if t >= min_t {
            ts.push(t);
            vs.push(f64::from_bits(bits));
        }
        true
    };
    if !push(t, s.bits) || count == 1 {
        return Ok(());
    }
    let mut delta = r.uvarint().ok_or(truncated(1))? as i64;
    t = t.wrapping_add(delta);
    read_xor(&mut r, &mut s).ok_or(truncated(1))?;
    if !push(t, s.bits) {
        return Ok(());
    }
    for i in 2..count {
        let dod = read_dod(&mut r).ok_or(truncated(i))?;
        delta = delta.wrapping_add(dod);
        t = t.wrapping_add(delta);
        read_xor(&mut r, &mut s).ok_or(truncated(i))?;
        if !push(t, s.bits) {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{XorAppender, XorIter};
    use super::*;
    use crate::model::STALE_NAN_BITS;
    use proptest::prelude::*;

    /// What `XorIter` yields in range, and whether it stopped on an error
    /// before `max_t` was passed.
    fn reference(bytes: &[u8], min_t: i64, max_t: i64) -> (Vec<(i64, u64)>, bool) {
        let mut it = XorIter::new(bytes);
        let mut out = Vec::new();
        for (t, v) in it.by_ref() {
            if t > max_t {
                return (out, false);
            }
            if t >= min_t {
                out.push((t, v.to_bits()));
            }
        }
        (out, it.error().is_some())
    }

    fn bulk(bytes: &[u8], min_t: i64, max_t: i64) -> (Vec<(i64, u64)>, bool) {
        let (mut ts, mut vs) = (vec![7], vec![7.0]);
        let r = decode_range_into(bytes, min_t, max_t, &mut ts, &mut vs);
        assert_eq!((ts[0], vs[0]), (7, 7.0), "existing entries kept");
        let got = ts
            .into_iter()
            .zip(vs)
            .skip(1)
            .map(|(t, v)| (t, v.to_bits()))
            .collect();
        (got, r.is_err())
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            proptest::num::f64::ANY,
            Just(f64::NAN),
            Just(f64::from_bits(STALE_NAN_BITS)),
            Just(-0.0),
            (0i64..1000).prop_map(|i| i as f64),
            (0i64..100).prop_map(|i| i as f64 * 0.25),
        ]
    }

    proptest! {
        #[test]
        fn same_as_iterator_on_valid_chunks(
            start in -1_000_000_000_000i64..2_000_000_000_000,
            samples in proptest::collection::vec((prop_oneof![Just(15_000i64), 14_960i64..15_040, 1i64..100_000, 1i64..10_000_000_000], value()), 1..300),
            lo in 0usize..300,
            len in 0usize..300,
        ) {
            let mut a = XorAppender::new();
            let mut t = start;
            let mut times = Vec::new();
            for &(gap, v) in &samples {
                t += gap;
                a.append(t, v);
                times.push(t);
            }
            let min_t = times.get(lo).copied().unwrap_or(i64::MAX);
            let max_t = times.get(lo + len).copied().unwrap_or(i64::MAX);
            for (min_t, max_t) in [(i64::MIN, i64::MAX), (min_t, max_t), (min_t.saturating_add(1), max_t.saturating_sub(1))] {
                let want = reference(a.bytes(), min_t, max_t);
                prop_assert!(!want.1);
                prop_assert_eq!(bulk(a.bytes(), min_t, max_t), want);
            }
        }

        #[test]
        fn same_as_iterator_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(bulk(&bytes, i64::MIN, i64::MAX), reference(&bytes, i64::MIN, i64::MAX));
        }
    }

    #[test]
    fn errors() {
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        assert_eq!(
            decode_range_into(&[1], 0, 0, &mut ts, &mut vs),
            Err(ChunkError::Invalid("shorter than its 2-byte header"))
        );
        let mut a = XorAppender::new();
        a.append(1000, 1.0);
        a.append(16000, 2.0);
        a.append(31000, 3.5);
        let b = a.bytes();
        assert_eq!(
            decode_range_into(&b[..b.len() - 1], i64::MIN, i64::MAX, &mut ts, &mut vs),
            Err(ChunkError::Truncated { index: 2, count: 3 })
        );
        assert_eq!(ts, [1000, 16000]);
    }
}
