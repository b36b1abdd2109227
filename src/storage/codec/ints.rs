//! Integer streams: a sequence of `n` signed integers whose count the caller
//! stores. Four encodings:
//!
//! | mode | name    | body |
//! |------|---------|------|
//! | 0    | CONST   | `varint v`: all `n` values equal `v` |
//! | 1    | VARINT  | `uvarint len`, then `len` bytes: `n` zig-zag varints |
//! | 2    | DEFLATE | `uvarint len`, then `len` bytes: raw DEFLATE (RFC 1951) of the VARINT body |
//! | 3    | PACKED  | frame-of-reference bit packing in groups of 128 (`packed`) |
//!
//! DEFLATE's Huffman stage brings jittery timestamps and counter increments
//! closest to their entropy, but every stream pays for building its Huffman
//! tables when read, and a block holds one small stream per series per
//! column. PACKED spends up to about one bit per value more and decodes
//! several times faster, so the encoder keeps DEFLATE only when it saves a
//! real share of the bytes (see [`encode_ints`]).

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};
use std::io::Write;

use super::cursor::{Cursor, put_uvarint, put_varint, unzigzag, uvarint_len, zigzag};
use super::packed::{decode_packed_into, encode_packed, packed_size};
use super::{CodecError, MAX_COLUMN_LEN};

const MODE_CONST: u8 = 0;
const MODE_VARINT: u8 = 1;
const MODE_DEFLATE: u8 = 2;
const MODE_PACKED: u8 = 3;

/// DEFLATE is written only when its stream is at most
/// `DEFLATE_KEEP_NUM / DEFLATE_KEEP_DEN` of the smaller of PACKED and
/// VARINT (chosen from `cargo bench --bench block_codec`; see
/// storage-format.md section 4.2).
const DEFLATE_KEEP_NUM: usize = 3;
const DEFLATE_KEEP_DEN: usize = 4;

/// Shorter streams stay VARINT: both decode in a few ns, and the block
/// format's golden examples (tiny columns) keep their version-1 bytes.
const PACKED_MIN_LEN: usize = 16;

/// Bytes `vals` take as plain zig-zag varints (the VARINT body length).
pub(crate) fn varint_size(vals: &[i64]) -> usize {
    vals.iter().map(|&v| uvarint_len(zigzag(v))).sum()
}

/// Appends the stream for `vals` (the caller records `vals.len()`).
///
/// CONST when all values are equal; otherwise the smaller of PACKED and
/// VARINT (PACKED on a tie; VARINT below 16 values), unless DEFLATE is at
/// most 3/4 of that size.
pub(crate) fn encode_ints(vals: &[i64], out: &mut Vec<u8>) {
    if let Some(&first) = vals.first()
        && vals.iter().all(|&v| v == first)
    {
        out.push(MODE_CONST);
        put_varint(out, first);
        return;
    }
    let mut plain = Vec::with_capacity(varint_size(vals));
    for &v in vals {
        put_varint(&mut plain, v);
    }
    let varint_len = uvarint_len(plain.len() as u64) + plain.len();
    let packed_len = packed_size(vals);
    let fast_len = varint_len.min(packed_len);
    // Below this size the ~10 bytes of DEFLATE framing cannot pay off.
    if plain.len() >= 32 {
        // Level 6: on these columns the Huffman stage does the work; level 9
        // was measured 0.01% smaller and up to 3x slower to encode.
        let mut enc = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(plain.len() / 2),
            flate2::Compression::new(6),
        );
        // Writing into a Vec cannot fail.
        if enc.write_all(&plain).is_ok()
            && let Ok(packed) = enc.finish()
            && (packed.len() + uvarint_len(packed.len() as u64)) * DEFLATE_KEEP_DEN
                <= fast_len * DEFLATE_KEEP_NUM
        {
            out.push(MODE_DEFLATE);
            put_uvarint(out, packed.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    if vals.len() >= PACKED_MIN_LEN && packed_len <= varint_len {
        out.push(MODE_PACKED);
        encode_packed(vals, out);
        return;
    }
    out.push(MODE_VARINT);
    put_uvarint(out, plain.len() as u64);
    out.extend_from_slice(&plain);
}

/// Decodes a stream of exactly `n` integers from `c`.
#[cfg(test)]
pub(crate) fn decode_ints(c: &mut Cursor<'_>, n: usize) -> Result<Vec<i64>, CodecError> {
    let mut out = Vec::new();
    decode_ints_into(c, n, &mut out)?;
    Ok(out)
}

thread_local! {
    /// One inflater and one output buffer per thread, reused by every
    /// DEFLATE stream. The inflater is miniz_oxide's core decompressor used
    /// directly, writing into a flat (non-wrapping) output slice: a column's
    /// whole plain body fits in it (at most `10·n` bytes), so no 32 KiB
    /// window has to be zeroed per stream. Re-initialising it resets a few
    /// state fields, where `flate2::Decompress::reset` re-zeroed ~40 KiB
    /// (measured at 18% of a 6 h range query's CPU).
    static INFLATE: std::cell::RefCell<(Box<DecompressorOxide>, Vec<u8>)> =
        std::cell::RefCell::new((Box::default(), Vec::new()));
}

/// Decodes a stream of exactly `n` integers from `c`, appending them to
/// `out`. On error `out` may hold part of the values.
pub(crate) fn decode_ints_into(
    c: &mut Cursor<'_>,
    n: usize,
    out: &mut Vec<i64>,
) -> Result<(), CodecError> {
    const WHAT: &str = "integer stream";
    if n > MAX_COLUMN_LEN {
        return Err(c.err(WHAT, format!("{n} values exceed limit {MAX_COLUMN_LEN}")));
    }
    let mode = c.u8(WHAT)?;
    match mode {
        MODE_CONST => {
            let v = c.varint(WHAT)?;
            out.resize(out.len() + n, v);
            Ok(())
        }
        MODE_VARINT => {
            let len = c.count(n.saturating_mul(10), WHAT)?;
            let start = c.offset();
            let body = c.bytes(len, WHAT)?;
            parse_varints_into(body, n, start, out)
        }
        MODE_DEFLATE => {
            let len = c.count(c.remaining(), WHAT)?;
            let start = c.offset();
            let body = c.bytes(len, WHAT)?;
            // A valid body inflates to at most 10 bytes per value; room for
            // one byte more detects oversized (corrupt or hostile) streams
            // without inflating them fully.
            let limit = n.saturating_mul(10);
            let bad = |reason: String| CodecError {
                what: WHAT,
                offset: start,
                reason,
            };
            INFLATE.with(|cell| {
                let mut guard = cell.borrow_mut();
                let (inflater, plain) = &mut *guard;
                inflater.init();
                if plain.len() < limit + 1 {
                    plain.resize(limit + 1, 0);
                }
                // Raw DEFLATE (no zlib header), all input given at once.
                let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
                let (status, _, written) =
                    decompress(inflater, body, &mut plain[..limit + 1], 0, flags);
                if written > limit || status == TINFLStatus::HasMoreOutput {
                    return Err(bad(format!(
                        "inflates to more than {limit} bytes for {n} values"
                    )));
                }
                match status {
                    TINFLStatus::Done => {}
                    TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                        return Err(bad(
                            "bad DEFLATE data: stream ends before its final block".into()
                        ));
                    }
                    e => return Err(bad(format!("bad DEFLATE data: {e:?}"))),
                }
                let r = parse_varints_into(&plain[..written], n, start, out);
                // Do not keep a huge buffer alive after an outsized column.
                if plain.len() > 1 << 20 {
                    *plain = Vec::new();
                }
                r
            })
        }
        MODE_PACKED => decode_packed_into(c, n, out),
        m => Err(c.err(WHAT, format!("unknown mode {m}"))),
    }
}

/// Parses exactly `n` varints that must fill `body` exactly, appending them
/// to `out`.
fn parse_varints_into(
    body: &[u8],
    n: usize,
    base: usize,
    out: &mut Vec<i64>,
) -> Result<(), CodecError> {
    out.reserve(n.min(body.len()));
    let mut pos = 0usize;
    for _ in 0..n {
        // Fast path: after delta transforms most values are one byte.
        match body.get(pos) {
            Some(&b) if b < 0x80 => {
                out.push(unzigzag(u64::from(b)));
                pos += 1;
            }
            _ => {
                let mut c = Cursor::with_base(body.get(pos..).unwrap_or(&[]), base + pos);
                out.push(c.varint("integer stream value")?);
                pos = c.offset() - base;
            }
        }
    }
    if pos != body.len() {
        let left = body.len() - pos;
        return Err(CodecError {
            what: "integer stream",
            offset: base + pos,
            reason: format!("{left} bytes left after {n} values"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(vals: &[i64]) -> usize {
        let mut b = vec![0xee];
        encode_ints(vals, &mut b);
        let len = b.len() - 1;
        b.push(0x55);
        let mut c = Cursor::new(&b);
        c.u8("junk").unwrap();
        assert_eq!(decode_ints(&mut c, vals.len()).unwrap(), vals);
        assert_eq!(c.rest(), &[0x55]);
        len
    }

    #[test]
    fn golden() {
        let mut b = Vec::new();
        encode_ints(&[5, 5, 5], &mut b);
        assert_eq!(b, [0, 10]);
        b.clear();
        encode_ints(&[1, -1, 64], &mut b);
        assert_eq!(b, [1, 4, 2, 1, 0x80, 0x01]);
    }

    #[test]
    fn golden_packed() {
        // 16 values in 0..=3 (below 32 varint bytes, so DEFLATE is not
        // tried): mode 3, one group: base 0, width 2, 4 bytes.
        let vals: Vec<i64> = (0..16).map(|i| i % 4).collect();
        let mut b = Vec::new();
        encode_ints(&vals, &mut b);
        assert_eq!(b, [3, 0, 2, 0xe4, 0xe4, 0xe4, 0xe4]);
        assert_eq!(decode_ints(&mut Cursor::new(&b), 16).unwrap(), vals);
        // 15 values stay VARINT.
        b.clear();
        encode_ints(&vals[..15], &mut b);
        assert_eq!(b[0], MODE_VARINT);
    }

    #[test]
    fn deflate_only_when_much_smaller() {
        // Random jitter in a small range: PACKED (4 bits per value) is
        // kept, DEFLATE saves less than a quarter.
        let mut x = 0x2545_f491_u32;
        let jitter: Vec<i64> = (0..480)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                i64::from(x % 11) - 5
            })
            .collect();
        let mut b = Vec::new();
        encode_ints(&jitter, &mut b);
        assert_eq!(b[0], MODE_PACKED);
        // Steps of ±1000 and 0: wide for PACKED, three symbols for DEFLATE.
        let steps: Vec<i64> = (0..480).map(|i| ((i * 7919 % 3) - 1) * 1000).collect();
        b.clear();
        encode_ints(&steps, &mut b);
        assert_eq!(b[0], MODE_DEFLATE);
        assert_eq!(decode_ints(&mut Cursor::new(&b), 480).unwrap(), steps);
    }

    #[test]
    fn modes() {
        assert_eq!(round_trip(&[]), 2);
        assert_eq!(round_trip(&[7; 1000]), 2);
        let noisy: Vec<i64> = (0..1000).map(|i| (i * 7919 % 13) - 6).collect();
        assert!(round_trip(&noisy) < 700);
        assert_eq!(round_trip(&[i64::MIN, i64::MAX]), 2 + 20);
    }

    #[test]
    fn rejects_garbage() {
        let cases: &[&[u8]] = &[
            &[],
            &[9],
            &[1, 5, 0],
            &[1, 1, 0, 0],
            &[2, 3, 1, 2, 3],
            &[1, 200],
        ];
        for bad in cases {
            assert!(decode_ints(&mut Cursor::new(bad), 2).is_err(), "{bad:?}");
        }
    }

    /// A DEFLATE stream wrapped as mode 2 for `n` values.
    fn deflate_stream(plain: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
        enc.write_all(plain).unwrap();
        let packed = enc.finish().unwrap();
        let mut b = vec![MODE_DEFLATE];
        put_uvarint(&mut b, packed.len() as u64);
        b.extend_from_slice(&packed);
        b
    }

    #[test]
    fn deflate_errors_say_why() {
        // 1 MiB of zero bytes claimed to hold 10 values: refused without
        // inflating past 10·n + 1 bytes.
        let bomb = deflate_stream(&vec![0u8; 1 << 20]);
        let e = decode_ints(&mut Cursor::new(&bomb), 10).unwrap_err();
        assert!(e.reason.contains("inflates to more than 100 bytes"), "{e}");
        // A body cut short ends before its final block.
        let mut cut = deflate_stream(&[2u8; 64]);
        let packed_len = cut.len() - 2;
        cut.truncate(cut.len() - 1);
        cut[1] = (packed_len - 1) as u8;
        let e = decode_ints(&mut Cursor::new(&cut), 64).unwrap_err();
        assert!(e.reason.contains("bad DEFLATE data"), "{e}");
        // The reused inflater is clean after both errors.
        let ok = deflate_stream(&[2u8; 64]);
        assert_eq!(decode_ints(&mut Cursor::new(&ok), 64).unwrap(), vec![1; 64]);
    }

    proptest! {
        #[test]
        fn ints_round_trip(vals in proptest::collection::vec(any::<i64>(), 0..200),
                           small in proptest::collection::vec(-20i64..20, 0..500)) {
            round_trip(&vals);
            round_trip(&small);
        }

        #[test]
        fn ints_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..100) {
            let _ = decode_ints(&mut Cursor::new(&bytes), n);
        }
    }
}
