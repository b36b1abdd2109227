//! Integer streams: a sequence of `n` signed integers whose count the caller
//! stores. Three encodings, the encoder keeps the smallest:
//!
//! | mode | name    | body |
//! |------|---------|------|
//! | 0    | CONST   | `varint v`: all `n` values equal `v` |
//! | 1    | VARINT  | `uvarint len`, then `len` bytes: `n` zig-zag varints |
//! | 2    | DEFLATE | `uvarint len`, then `len` bytes: raw DEFLATE (RFC 1951) of the VARINT body |
//!
//! DEFLATE's Huffman stage is what brings jittery timestamps and counter
//! increments well below one byte per value: after delta transforms most
//! values fall in a small alphabet, and the Huffman code spends roughly the
//! entropy of that alphabet instead of a whole varint byte.

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};
use std::io::Write;

use super::cursor::{Cursor, put_uvarint, put_varint, unzigzag, uvarint_len, zigzag};
use super::{CodecError, MAX_COLUMN_LEN};

const MODE_CONST: u8 = 0;
const MODE_VARINT: u8 = 1;
const MODE_DEFLATE: u8 = 2;

/// Bytes `vals` take as plain zig-zag varints (the VARINT body length).
pub(crate) fn varint_size(vals: &[i64]) -> usize {
    vals.iter().map(|&v| uvarint_len(zigzag(v))).sum()
}

/// Appends the stream for `vals` (the caller records `vals.len()`).
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
            && packed.len() + uvarint_len(packed.len() as u64) < plain.len()
        {
            out.push(MODE_DEFLATE);
            put_uvarint(out, packed.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
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
