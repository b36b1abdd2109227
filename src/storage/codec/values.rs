//! Float value columns. Layout:
//!
//! | field | type | meaning |
//! |-------|------|---------|
//! | n     | uvarint | number of values |
//! | kind  | u8      | 0 = XOR, 1 = DECIMAL (absent when n = 0) |
//!
//! XOR body: `uvarint len`, then `len` bytes of the Gorilla bit stream
//! (first value as 64 raw bits, then per value `0` for "same bits", or `1`
//! followed by either `0` + the meaningful bits in the previous window, or
//! `1` + 5 bits leading zeros + 6 bits significant-bit count (0 = 64) + the
//! bits). Bit-exact for every float, NaN payloads included.
//!
//! DECIMAL body, for columns whose values are decimals with few digits
//! (integers, counters, `0.25`, `12.5`): every value is `m / 10^e` for one
//! column exponent `e` and integer mantissas `m` (|m| <= 2^53):
//!
//! | field | type | meaning |
//! |-------|------|---------|
//! | e     | u8   | decimal exponent, 0..=15 |
//! | order | u8   | 0 = mantissas, 1 = deltas, 2 = delta-of-deltas, 3 = deltas minus a centre (first values are taken relative to 0) |
//! | c     | varint | order 3 only: the centre (median of the deltas after the first) |
//! | body  | integer stream of n values | the transformed mantissas |
//! | x     | uvarint | number of exceptions |
//! | exceptions | x times `uvarint gap` + `u64` bits | values stored bit-exactly: NaN (including the stale marker `0x7ff0000000000002`), ±Inf, -0.0 and anything not decimal. `gap` is the index distance to the previous exception minus one (the first: its index). Their mantissa slot repeats the previous mantissa, so deltas stay 0 |
//!
//! A value decodes as `(m as f64) / 10^e` (a correctly rounded division by an
//! exact power of ten), which reproduces the encoder's input bits; the
//! encoder verifies every value that way and turns mismatches into
//! exceptions. The encoder writes XOR and DECIMAL and keeps the smaller.

use super::bits::{BitReader, BitWriter};
use super::cursor::{Cursor, put_uvarint, put_varint, uvarint_len, zigzag};
use super::ints::{decode_ints_into, encode_ints, varint_size};
use super::{CodecError, MAX_COLUMN_LEN};

const KIND_XOR: u8 = 0;
const KIND_DECIMAL: u8 = 1;
const ORDER_RAW: u8 = 0;
const ORDER_DELTA: u8 = 1;
const ORDER_DOD: u8 = 2;
const ORDER_CENTRED_DELTA: u8 = 3;

/// Largest decimal exponent tried. Values needing more digits are almost
/// always binary fractions (durations, ratios) that XOR handles as well.
const MAX_EXP: usize = 15;
/// Mantissas must be exact as `f64`.
const MAX_MANTISSA: i64 = 1 << 53;
/// Powers of ten, each exactly representable as `f64`.
const POW10: [f64; MAX_EXP + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
const POW10_I: [i64; MAX_EXP + 1] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
];

/// Appends the value column for `vals`.
pub fn encode_values(vals: &[f64], out: &mut Vec<u8>) {
    put_uvarint(out, vals.len() as u64);
    if vals.is_empty() {
        return;
    }
    let xor = encode_xor(vals);
    match encode_decimal(vals) {
        Some(dec) if dec.len() < xor.len() => out.extend_from_slice(&dec),
        _ => out.extend_from_slice(&xor),
    }
}

/// `m / 10^e` as the decoder computes it.
fn from_decimal(m: i64, e: usize) -> f64 {
    (m as f64) / POW10.get(e).copied().unwrap_or(1.0)
}

/// The smallest-exponent decimal form of `v`, if it has one.
fn decimal_of(v: f64) -> Option<(i64, usize)> {
    if !v.is_finite() {
        return None;
    }
    for (e, p) in POW10.iter().enumerate() {
        let s = (v * p).round();
        if s.abs() > MAX_MANTISSA as f64 {
            return None;
        }
        let m = s as i64;
        if from_decimal(m, e).to_bits() == v.to_bits() {
            return Some((m, e));
        }
    }
    None
}

/// The DECIMAL body (kind byte included), or `None` when most values are
/// not decimal.
fn encode_decimal(vals: &[f64]) -> Option<Vec<u8>> {
    let forms: Vec<Option<(i64, usize)>> = vals.iter().map(|&v| decimal_of(v)).collect();
    let e = forms.iter().flatten().map(|f| f.1).max()?;
    let mut mantissas = Vec::with_capacity(vals.len());
    let mut exceptions: Vec<(usize, u64)> = Vec::new();
    let mut prev = 0i64;
    for (i, (&v, f)) in vals.iter().zip(&forms).enumerate() {
        let scaled = f.and_then(|(m, ev)| {
            let k = *POW10_I.get(e - ev)?;
            m.checked_mul(k)
                .filter(|m| m.abs() <= MAX_MANTISSA)
                .filter(|&m| from_decimal(m, e).to_bits() == v.to_bits())
        });
        match scaled {
            Some(m) => {
                mantissas.push(m);
                prev = m;
            }
            None => {
                mantissas.push(prev);
                exceptions.push((i, v.to_bits()));
            }
        }
    }
    if exceptions.len() > vals.len() / 2 {
        return None;
    }
    let deltas: Vec<i64> = std::iter::once(0)
        .chain(mantissas.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]))
        .collect();
    let dods: Vec<i64> = std::iter::once(0)
        .chain(deltas.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]))
        .collect();
    // Deltas centred on their median: counters' increments vary around a
    // rate, and centring them keeps most varints to one byte.
    let mut sorted: Vec<i64> = deltas.get(1..).unwrap_or(&[]).to_vec();
    sorted.sort_unstable();
    let centre = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let centred: Vec<i64> = deltas.iter().map(|d| d.wrapping_sub(centre)).collect();
    let candidates = [
        (ORDER_RAW, &mantissas, 0),
        (ORDER_DELTA, &deltas, 0),
        (ORDER_DOD, &dods, 0),
        (ORDER_CENTRED_DELTA, &centred, uvarint_len(zigzag(centre))),
    ];
    let (order, body, _) = candidates
        .iter()
        .min_by_key(|(_, v, extra)| varint_size(v) + extra)
        .copied()
        .unwrap_or((ORDER_RAW, &mantissas, 0));
    let mut out = vec![KIND_DECIMAL, e as u8, order];
    if order == ORDER_CENTRED_DELTA {
        put_varint(&mut out, centre);
    }
    encode_ints(body, &mut out);
    put_uvarint(&mut out, exceptions.len() as u64);
    let mut last: Option<usize> = None;
    for (i, bits) in exceptions {
        put_uvarint(&mut out, (i - last.map_or(0, |l| l + 1)) as u64);
        out.extend_from_slice(&bits.to_le_bytes());
        last = Some(i);
    }
    Some(out)
}

/// The XOR body (kind byte included).
fn encode_xor(vals: &[f64]) -> Vec<u8> {
    let mut w = BitWriter::default();
    let mut prev = 0u64;
    let mut window: Option<(u32, u32)> = None;
    for (i, v) in vals.iter().enumerate() {
        let bits = v.to_bits();
        if i == 0 {
            w.write(bits, 64);
            prev = bits;
            continue;
        }
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            w.bit(false);
            continue;
        }
        w.bit(true);
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        match window {
            Some((pl, pt)) if lead >= pl && trail >= pt => {
                w.bit(false);
                w.write(x >> pt, 64 - pl - pt);
            }
            _ => {
                let sig = 64 - lead - trail;
                w.bit(true);
                w.write(u64::from(lead), 5);
                w.write(u64::from(sig % 64), 6);
                w.write(x >> trail, sig);
                window = Some((lead, trail));
            }
        }
    }
    let body = w.finish();
    let mut out = vec![KIND_XOR];
    put_uvarint(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

/// Decodes a value column from the start of `input`; returns the values and
/// the unread tail. Offsets in errors are relative to `input`.
#[cfg_attr(
    not(any(test, feature = "internals")),
    expect(dead_code, reason = "whole-column form for tests and benches; readers append in place")
)]
pub fn decode_values(input: &[u8]) -> Result<(Vec<f64>, &[u8]), CodecError> {
    let mut c = Cursor::new(input);
    let v = read_values(&mut c)?;
    Ok((v, c.rest()))
}

/// Cursor form of [`decode_values`].
pub(crate) fn read_values(c: &mut Cursor<'_>) -> Result<Vec<f64>, CodecError> {
    let mut out = Vec::new();
    read_values_into(c, &mut out)?;
    Ok(out)
}

/// Cursor form of [`decode_values`] that appends to `out`; returns how many
/// values were appended. On error `out` may hold part of the column.
pub(crate) fn read_values_into(c: &mut Cursor<'_>, out: &mut Vec<f64>) -> Result<usize, CodecError> {
    const WHAT: &str = "values column";
    let n = c.count(MAX_COLUMN_LEN, WHAT)?;
    if n == 0 {
        return Ok(0);
    }
    match c.u8(WHAT)? {
        KIND_XOR => {
            let len = c.count(c.remaining(), WHAT)?;
            let start = c.offset();
            let body = c.bytes(len, WHAT)?;
            decode_xor_into(body, n, out).ok_or_else(|| CodecError {
                what: WHAT,
                offset: start,
                reason: format!("XOR bit stream ends before {n} values"),
            })?;
        }
        KIND_DECIMAL => decode_decimal_into(c, n, out)?,
        k => return Err(c.err(WHAT, format!("unknown kind {k}"))),
    }
    Ok(n)
}

fn decode_xor_into(body: &[u8], n: usize, out: &mut Vec<f64>) -> Option<()> {
    let mut r = BitReader::new(body);
    out.reserve(n.min(body.len() * 8));
    let mut prev = r.read(64)?;
    out.push(f64::from_bits(prev));
    let mut window: Option<(u32, u32)> = None;
    for _ in 1..n {
        if r.bit()? {
            if r.bit()? {
                // 5 bits leading zeros, 6 bits significant-bit count.
                let head = r.read(11)? as u32;
                let lead = head >> 6;
                let sig = match head & 0x3f {
                    0 => 64,
                    s => s,
                };
                let trail = 64u32.checked_sub(lead + sig)?;
                window = Some((lead, trail));
            }
            let (lead, trail) = window?;
            let x = r.read(64 - lead - trail)? << trail;
            prev ^= x;
        }
        out.push(f64::from_bits(prev));
    }
    Some(())
}

thread_local! {
    /// Reused mantissa buffer for DECIMAL columns (one per thread).
    static MANTISSAS: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn decode_decimal_into(c: &mut Cursor<'_>, n: usize, out: &mut Vec<f64>) -> Result<(), CodecError> {
    const WHAT: &str = "decimal values column";
    let e = usize::from(c.u8(WHAT)?);
    if e > MAX_EXP {
        return Err(c.err(WHAT, format!("exponent {e} exceeds {MAX_EXP}")));
    }
    let order = c.u8(WHAT)?;
    if order > ORDER_CENTRED_DELTA {
        return Err(c.err(WHAT, format!("unknown order {order}")));
    }
    let centre = if order == ORDER_CENTRED_DELTA {
        c.varint(WHAT)?
    } else {
        0
    };
    let base = out.len();
    MANTISSAS.with(|cell| {
        let mut m = cell.borrow_mut();
        m.clear();
        decode_ints_into(c, n, &mut m)?;
        if order == ORDER_CENTRED_DELTA {
            for x in m.iter_mut() {
                *x = x.wrapping_add(centre);
            }
        }
        let sums = if order == ORDER_CENTRED_DELTA {
            1
        } else {
            order
        };
        for _ in 0..sums {
            let mut acc = 0i64;
            for x in m.iter_mut() {
                acc = acc.wrapping_add(*x);
                *x = acc;
            }
        }
        let p = POW10.get(e).copied().unwrap_or(1.0);
        out.extend(m.iter().map(|&m| (m as f64) / p));
        if m.capacity() > 1 << 20 {
            *m = Vec::new();
        }
        Ok::<(), CodecError>(())
    })?;
    let x = c.count(n, WHAT)?;
    let mut next = 0usize;
    for _ in 0..x {
        let gap = c.count(n, WHAT)?;
        let i = next + gap;
        let bits = c.u64_le(WHAT)?;
        let slot = out
            .get_mut(base + i)
            .filter(|_| i < n)
            .ok_or_else(|| c.err(WHAT, format!("exception index {i} out of {n} values")))?;
        *slot = f64::from_bits(bits);
        next = i + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN_BITS;
    use proptest::prelude::*;

    fn enc(v: &[f64]) -> Vec<u8> {
        let mut b = Vec::new();
        encode_values(v, &mut b);
        b
    }

    fn assert_round_trip(v: &[f64]) -> usize {
        let mut b = enc(v);
        let len = b.len();
        b.extend_from_slice(&[1, 2, 3]);
        let (got, tail) = decode_values(&b).unwrap();
        assert_eq!(tail, &[1, 2, 3]);
        let a: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
        let g: Vec<u64> = got.iter().map(|x| x.to_bits()).collect();
        assert_eq!(a, g);
        len
    }

    #[test]
    fn golden_bytes() {
        assert_eq!(enc(&[]), [0]);
        // 10, 11, 12: DECIMAL e=0; raw, delta and dod streams all take 3
        // bytes and the tie goes to raw mantissas; no exceptions.
        assert_eq!(enc(&[10.0, 11.0, 12.0]), [3, 1, 0, 0, 1, 3, 20, 22, 24, 0]);
        // A counter whose increments scatter around 100: deltas centred on
        // their median (order 3, centre 100) beat delta-of-deltas (11 bytes).
        assert_eq!(
            enc(&[1000.0, 1050.0, 1200.0, 1260.0, 1400.0, 1500.0]),
            [
                6, 1, 0, 3, 0xc8, 0x01, 1, 7, 0x88, 0x0e, 0x63, 0x64, 0x4f, 0x50, 0, 0
            ]
        );
        // 0.5, 1.5: DECIMAL e=1, raw mantissas [5, 15].
        assert_eq!(enc(&[0.5, 1.5]), [2, 1, 1, 0, 1, 2, 10, 30, 0]);
        // A lone stale marker: XOR, 64 raw bits big-endian in the bit stream.
        assert_eq!(
            enc(&[f64::from_bits(STALE_NAN_BITS)]),
            [1, 0, 8, 0x7f, 0xf0, 0, 0, 0, 0, 0, 2]
        );
    }

    #[test]
    fn special_values_are_exact() {
        let stale = f64::from_bits(STALE_NAN_BITS);
        let other_nan = f64::from_bits(0x7ff8_0000_0000_0001);
        let mut v: Vec<f64> = (0..100).map(f64::from).collect();
        v[10] = stale;
        v[11] = f64::INFINITY;
        v[50] = f64::NEG_INFINITY;
        v[60] = -0.0;
        v[99] = other_nan;
        let len = assert_round_trip(&v);
        assert!(len < 100, "{len}");
        assert_round_trip(&[
            stale,
            stale,
            f64::NAN,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
        ]);
    }

    #[test]
    fn decimals_and_floats() {
        let dec: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.25 + 0.1).collect();
        assert!(assert_round_trip(&dec) < 200);
        let fl: Vec<f64> = (0..1000).map(|i| (f64::from(i) * 0.37).sin()).collect();
        assert_round_trip(&fl);
        assert_round_trip(&[1e300, -1e-300, 9007199254740993.0, 0.1 + 0.2]);
    }

    #[test]
    fn rejects_garbage() {
        let cases: &[&[u8]] = &[
            &[1],
            &[1, 7],
            &[2, 0, 1, 0xff],
            &[1, 1, 16, 0, 0, 0, 0],
            &[1, 1, 0, 3, 0, 0, 0],
            &[2, 1, 0, 0, 0, 0, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0],
        ];
        for bad in cases {
            assert!(decode_values(bad).is_err(), "{bad:?}");
        }
    }

    fn special() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::from_bits(STALE_NAN_BITS)),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(0.0),
            any::<u64>().prop_map(f64::from_bits),
            (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
            (-100_000i64..100_000, 0usize..6).prop_map(|(m, e)| m as f64 / POW10[e]),
        ]
    }

    proptest! {
        #[test]
        fn round_trip_mixed(v in proptest::collection::vec(special(), 0..300)) {
            assert_round_trip(&v);
        }

        #[test]
        fn round_trip_counters(start in 0u32..1_000_000, incs in proptest::collection::vec(0u32..500, 0..500)) {
            let mut c = f64::from(start);
            let v: Vec<f64> = incs.iter().map(|&i| { c += f64::from(i); c }).collect();
            assert_round_trip(&v);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_values(&bytes);
        }
    }
}
