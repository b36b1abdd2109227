//! Timestamp columns. Layout:
//!
//! | field | type | meaning |
//! |-------|------|---------|
//! | n     | uvarint | number of timestamps |
//! | t0    | varint  | first timestamp (only if n >= 1) |
//! | mode  | u8      | only if n >= 2: 0 = DOD, 1 = GRID |
//! | DOD   | varint d1, then an integer stream of n-2 values | `t1 - t0`, then `(t[i]-t[i-1]) - (t[i-1]-t[i-2])` |
//! | GRID  | varint step, varint c, then an integer stream of n-1 values | `t[i] - t0 - i*step - c` for i = 1..n |
//!
//! All arithmetic wraps (two's complement), so any `i64` sequence round-trips.
//! GRID suits scrapes scheduled on a fixed interval with independent jitter:
//! its residuals span the jitter once, where delta-of-delta spans it four
//! times; `c` (their median) centres them on zero so that most stay
//! one-byte varints. DOD suits drifting or gappy series. The encoder writes both and
//! keeps the smaller.

use super::cursor::{Cursor, put_uvarint, put_varint};
use super::ints::{decode_ints_into, encode_ints};
use super::{CodecError, MAX_COLUMN_LEN};

const MODE_DOD: u8 = 0;
const MODE_GRID: u8 = 1;

/// Appends the timestamp column for `ts` (any order; block writers pass
/// strictly increasing milliseconds).
pub fn encode_timestamps(ts: &[i64], out: &mut Vec<u8>) {
    put_uvarint(out, ts.len() as u64);
    let (t0, t1) = match ts {
        [] => return,
        [t0] => {
            put_varint(out, *t0);
            return;
        }
        [t0, t1, ..] => (*t0, *t1),
    };
    put_varint(out, t0);

    let mut dod = vec![MODE_DOD];
    put_varint(&mut dod, t1.wrapping_sub(t0));
    let dods: Vec<i64> = ts
        .windows(3)
        .map(|w| {
            let d2 = w[2].wrapping_sub(w[1]);
            let d1 = w[1].wrapping_sub(w[0]);
            d2.wrapping_sub(d1)
        })
        .collect();
    encode_ints(&dods, &mut dod);

    let step = grid_step(ts);
    let mut residuals: Vec<i64> = ts
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, &t)| {
            t.wrapping_sub(t0)
                .wrapping_sub((i as i64).wrapping_mul(step))
        })
        .collect();
    let centre = median(&residuals);
    for r in &mut residuals {
        *r = r.wrapping_sub(centre);
    }
    let mut grid = vec![MODE_GRID];
    put_varint(&mut grid, step);
    put_varint(&mut grid, centre);
    encode_ints(&residuals, &mut grid);

    out.extend_from_slice(if grid.len() < dod.len() { &grid } else { &dod });
}

/// The most common interval, which for scraped series is the scrape
/// interval (the median is robust against a few gaps).
fn grid_step(ts: &[i64]) -> i64 {
    let deltas: Vec<i64> = ts.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    median(&deltas)
}

/// The upper median (0 for an empty slice).
fn median(v: &[i64]) -> i64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied().unwrap_or(0)
}

/// Decodes a timestamp column from the start of `input`; returns the
/// timestamps and the unread tail. Offsets in errors are relative to `input`.
#[cfg_attr(
    not(any(test, feature = "internals")),
    expect(dead_code, reason = "whole-column form for tests and benches; readers append in place")
)]
pub fn decode_timestamps(input: &[u8]) -> Result<(Vec<i64>, &[u8]), CodecError> {
    let mut c = Cursor::new(input);
    let mut ts = Vec::new();
    read_timestamps_into(&mut c, &mut ts)?;
    Ok((ts, c.rest()))
}

/// Cursor form of [`decode_timestamps`] that appends to `out` (decoding in
/// place, without a temporary column); returns how many were appended. On
/// error `out` may hold part of the column.
pub(crate) fn read_timestamps_into(
    c: &mut Cursor<'_>,
    out: &mut Vec<i64>,
) -> Result<usize, CodecError> {
    const WHAT: &str = "timestamps column";
    let n = c.count(MAX_COLUMN_LEN, WHAT)?;
    if n == 0 {
        return Ok(0);
    }
    let t0 = c.varint(WHAT)?;
    let base = out.len();
    out.reserve(n);
    out.push(t0);
    if n == 1 {
        return Ok(1);
    }
    match c.u8(WHAT)? {
        MODE_DOD => {
            let d1 = c.varint(WHAT)?;
            out.push(t0.wrapping_add(d1));
            decode_ints_into(c, n - 2, out)?;
            // Turn the delta-of-deltas into timestamps in place.
            let mut prev = t0.wrapping_add(d1);
            let mut delta = d1;
            for x in out.get_mut(base + 2..).unwrap_or(&mut []) {
                delta = delta.wrapping_add(*x);
                prev = prev.wrapping_add(delta);
                *x = prev;
            }
        }
        MODE_GRID => {
            let step = c.varint(WHAT)?;
            let centre = c.varint(WHAT)?;
            decode_ints_into(c, n - 1, out)?;
            // t[k] = t0 + k*step + centre + residual, k = 1..n, in place.
            let mut grid = t0.wrapping_add(centre);
            for x in out.get_mut(base + 1..).unwrap_or(&mut []) {
                grid = grid.wrapping_add(step);
                *x = grid.wrapping_add(*x);
            }
        }
        m => return Err(c.err(WHAT, format!("unknown mode {m}"))),
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(ts: &[i64]) -> Vec<u8> {
        let mut b = Vec::new();
        encode_timestamps(ts, &mut b);
        b
    }

    #[test]
    fn golden_bytes() {
        assert_eq!(enc(&[]), [0]);
        assert_eq!(enc(&[1000]), [1, 0xd0, 0x0f]);
        // Regular 15 s grid: DOD takes 6 bytes (d1 = 15000, then a CONST
        // stream of one zero), GRID 7 (step, centre 0, CONST 0).
        assert_eq!(
            enc(&[1000, 16000, 31000]),
            [3, 0xd0, 0x0f, 0, 0xb0, 0xea, 0x01, 0, 0]
        );
        // An irregular series: DOD mode, VARINT stream.
        assert_eq!(enc(&[0, 10, 11, 40]), [4, 0, 0, 20, 1, 2, 17, 56]);
        // Scrapes 10 ms late after the first: GRID with step 15000 and
        // centre 10 leaves a CONST stream of zeros (7 bytes; DOD needs 9).
        assert_eq!(
            enc(&[0, 15010, 30010, 45010, 60010]),
            [5, 0, 1, 0xb0, 0xea, 0x01, 0x14, 0, 0]
        );
    }

    #[test]
    fn jittered_scrapes_are_small() {
        let mut x: u64 = 42;
        let ts: Vec<i64> = (0..5760)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                1_700_000_000_000 + i * 15_000 + ((x >> 33) % 11) as i64 - 5
            })
            .collect();
        let b = enc(&ts);
        assert!(b.len() < ts.len() * 6 / 10, "{} bytes", b.len());
        assert_eq!(decode_timestamps(&b).unwrap().0, ts);
    }

    proptest! {
        #[test]
        fn round_trip_any(ts in proptest::collection::vec(any::<i64>(), 0..100),
                          junk in proptest::collection::vec(any::<u8>(), 0..5)) {
            let mut b = enc(&ts);
            b.extend_from_slice(&junk);
            let (got, tail) = decode_timestamps(&b).unwrap();
            prop_assert_eq!(got, ts);
            prop_assert_eq!(tail, &junk[..]);
        }

        #[test]
        fn round_trip_irregular(start in -1_000_000_000_000i64..2_000_000_000_000,
                                gaps in proptest::collection::vec(1i64..100_000, 0..400)) {
            let mut t = start;
            let ts: Vec<i64> = gaps.iter().map(|g| { t += g; t }).collect();
            let b = enc(&ts);
            prop_assert_eq!(decode_timestamps(&b).unwrap().0, ts);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_timestamps(&bytes);
        }
    }
}
