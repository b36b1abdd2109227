//! The PACKED integer-stream body (mode 3 of `ints`): frame-of-reference bit
//! packing in groups of [`GROUP`] values.
//!
//! Per group of `k` values (every group holds [`GROUP`] values except the
//! last, which holds the rest):
//!
//! | field | type | meaning |
//! |-------|------|---------|
//! | base  | varint | the group's smallest value |
//! | w     | u8 | bit width, 0..=64 |
//! | bits  | `ceil(k·w/8)` bytes | value i's `(vᵢ − base) mod 2^64` in bits `[i·w, (i+1)·w)` |
//!
//! Bits are numbered little-endian: bit j of the group is bit `j % 8` of
//! byte `j / 8`. Unused high bits of the last byte are written as zero and
//! ignored by the decoder. With `w = 0` every value equals `base`.
//!
//! Why: DEFLATE gets closer to the entropy of small delta alphabets, but
//! each stream must first build its Huffman tables (a few hundred ns per
//! stream, and a block has one stream per series per column). A packed
//! group decodes with one unaligned load, a shift and a mask per value.

use super::CodecError;
use super::cursor::{Cursor, put_varint, uvarint_len, zigzag};

/// Values per group: large enough that the 2–4 header bytes cost little
/// per value, small enough that one outlier widens only 128 values.
pub(crate) const GROUP: usize = 128;

/// Bit width needed for the values of `g` relative to their minimum.
fn group_frame(g: &[i64]) -> (i64, u32) {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for &v in g {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if g.is_empty() {
        return (0, 0);
    }
    // hi ≥ lo, so the wrapping difference is the true range as a u64.
    let range = hi.wrapping_sub(lo) as u64;
    (lo, 64 - range.leading_zeros())
}

/// Exact size in bytes of the PACKED body for `vals`.
pub(crate) fn packed_size(vals: &[i64]) -> usize {
    vals.chunks(GROUP)
        .map(|g| {
            let (base, w) = group_frame(g);
            uvarint_len(zigzag(base)) + 1 + (g.len() * w as usize).div_ceil(8)
        })
        .sum()
}

/// Appends the PACKED body for `vals`.
pub(crate) fn encode_packed(vals: &[i64], out: &mut Vec<u8>) {
    for g in vals.chunks(GROUP) {
        let (base, w) = group_frame(g);
        put_varint(out, base);
        out.push(w as u8);
        if w == 0 {
            continue;
        }
        let start = out.len();
        out.resize(start + (g.len() * w as usize).div_ceil(8), 0);
        let bytes = &mut out[start..];
        for (i, &v) in g.iter().enumerate() {
            let u = v.wrapping_sub(base) as u64;
            let bit = i * w as usize;
            // Spread the w bits over at most 9 bytes from bit `bit`.
            let wide = u128::from(u) << (bit % 8);
            for (j, b) in wide.to_le_bytes().iter().enumerate() {
                if *b != 0
                    && let Some(slot) = bytes.get_mut(bit / 8 + j)
                {
                    *slot |= *b;
                }
            }
        }
    }
}

/// Decodes a PACKED body of exactly `n` values from `c`, appending them to
/// `out`. Reads only the bytes the group headers announce and checks each
/// against the input before use.
pub(crate) fn decode_packed_into(
    c: &mut Cursor<'_>,
    n: usize,
    out: &mut Vec<i64>,
) -> Result<(), CodecError> {
    const WHAT: &str = "packed integer stream";
    // Every group takes at least 2 bytes, so a valid body has at least
    // 2·ceil(n/GROUP) bytes: reject counts the input cannot hold before
    // allocating for them.
    if n.div_ceil(GROUP).saturating_mul(2) > c.remaining() {
        return Err(c.err(
            WHAT,
            format!("{} bytes cannot hold {n} values", c.remaining()),
        ));
    }
    let start = out.len();
    out.resize(start + n, 0);
    let dst = out.get_mut(start..).unwrap_or(&mut []);
    // A group's bits copied into a zero-padded buffer, so every value is
    // read with one fixed-size load (16 bytes past the last value's byte).
    let mut buf = [0u8; GROUP * 8 + 16];
    for g in dst.chunks_mut(GROUP) {
        let base = c.varint(WHAT)?;
        let w = u32::from(c.u8(WHAT)?);
        if w > 64 {
            return Err(c.err(WHAT, format!("bit width {w} exceeds 64")));
        }
        if w == 0 {
            g.fill(base);
            continue;
        }
        let len = (g.len() * w as usize).div_ceil(8);
        let bits = c.bytes(len, WHAT)?;
        let (head, _) = buf.split_at_mut(len);
        head.copy_from_slice(bits);
        // Clear what a previous, wider group left past this group's bytes:
        // the loads below may see up to 16 bytes beyond `len`.
        if let Some(tail) = buf.get_mut(len..len + 16) {
            tail.fill(0);
        }
        unpack(&buf, w, base, g);
    }
    Ok(())
}

/// Unpacks `g.len()` values of `w` bits (1..=64) from `buf`, adding `base`.
fn unpack(buf: &[u8; GROUP * 8 + 16], w: u32, base: i64, g: &mut [i64]) {
    let w = w as usize;
    if w <= 56 {
        // w + 7 ≤ 63: one u64 load holds the whole value.
        let mask = (1u64 << w) - 1;
        for (i, slot) in g.iter_mut().enumerate() {
            let bit = i * w;
            let mut word = [0u8; 8];
            if let Some(src) = buf.get(bit / 8..bit / 8 + 8) {
                word.copy_from_slice(src);
            }
            let u = (u64::from_le_bytes(word) >> (bit % 8)) & mask;
            *slot = base.wrapping_add(u as i64);
        }
    } else {
        let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
        for (i, slot) in g.iter_mut().enumerate() {
            let bit = i * w;
            let mut word = [0u8; 16];
            if let Some(src) = buf.get(bit / 8..bit / 8 + 16) {
                word.copy_from_slice(src);
            }
            let u = ((u128::from_le_bytes(word) >> (bit % 8)) as u64) & mask;
            *slot = base.wrapping_add(u as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(vals: &[i64]) {
        let mut b = Vec::new();
        encode_packed(vals, &mut b);
        assert_eq!(b.len(), packed_size(vals));
        b.push(0x77);
        let mut c = Cursor::new(&b);
        let mut out = vec![42];
        decode_packed_into(&mut c, vals.len(), &mut out).unwrap();
        assert_eq!(out[0], 42);
        assert_eq!(&out[1..], vals);
        assert_eq!(c.rest(), &[0x77]);
    }

    #[test]
    fn golden() {
        let mut b = Vec::new();
        // base -1, width 2: offsets 0, 2, 1, 3 → bits 00 10 01 11.
        encode_packed(&[-1, 1, 0, 2], &mut b);
        assert_eq!(b, [0x01, 0x02, 0b1101_1000]);
        b.clear();
        encode_packed(&[7, 7], &mut b);
        assert_eq!(b, [0x0e, 0x00]);
    }

    #[test]
    fn extremes_and_group_edges() {
        round_trip(&[i64::MIN, i64::MAX, 0, -1]);
        let wide: Vec<i64> = (0..300).map(|i| i64::MAX.wrapping_mul(i)).collect();
        round_trip(&wide);
        for n in [127, 128, 129, 256, 257] {
            let v: Vec<i64> = (0..n as i64).map(|i| (i * 37) % 61 - 30).collect();
            round_trip(&v);
        }
    }

    #[test]
    fn rejects_truncated_and_bad_width() {
        let mut out = Vec::new();
        // Width 65.
        assert!(decode_packed_into(&mut Cursor::new(&[0, 65, 0, 0]), 1, &mut out).is_err());
        // Bits cut short: 4 values of 8 bits need 4 bytes.
        assert!(decode_packed_into(&mut Cursor::new(&[0, 8, 1, 2, 3]), 4, &mut out).is_err());
        // A huge count is refused before allocating.
        out = Vec::new();
        assert!(decode_packed_into(&mut Cursor::new(&[0, 0]), 1 << 40, &mut out).is_err());
        assert!(out.capacity() < 1024);
    }

    proptest! {
        #[test]
        fn packed_round_trip(vals in proptest::collection::vec(any::<i64>(), 0..300),
                             small in proptest::collection::vec(-300i64..300, 0..700)) {
            round_trip(&vals);
            round_trip(&small);
        }

        #[test]
        fn packed_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), n in 0usize..600) {
            let mut out = Vec::new();
            let _ = decode_packed_into(&mut Cursor::new(&bytes), n, &mut out);
        }
    }
}
