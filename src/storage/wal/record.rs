//! WAL record payloads and their codec (storage-format.md section 3.3).
//!
//! Records say what happened ("series 7 is `up{job="a"}`", "series 7 got
//! 1.0 at t") and nothing about how the head stores it. Encoding appends to
//! a caller-owned buffer; decoding validates everything and never panics.

use std::sync::Arc;

use crate::model::{Label, Labels};

/// Record type byte: new series.
pub(crate) const TYPE_SERIES: u8 = 1;
/// Record type byte: float sample batch.
pub(crate) const TYPE_FLOATS: u8 = 2;
/// Record type byte: histogram bounds for series refs.
pub(crate) const TYPE_BOUNDS: u8 = 3;
/// Record type byte: histogram sample batch.
pub(crate) const TYPE_HISTOGRAMS: u8 = 4;
/// Record type byte: end of a commit (empty payload). Replay applies a
/// segment's records only up to the last commit marker, so a torn commit
/// is dropped whole.
pub(crate) const TYPE_COMMIT: u8 = 5;

/// Whether a series holds float or histogram samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeriesKind {
    /// Float samples.
    Float,
    /// Histogram samples (labels are the family labels).
    Histogram,
}

impl SeriesKind {
    /// Printable name, used in errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SeriesKind::Float => "float series",
            SeriesKind::Histogram => "histogram series",
        }
    }
}

/// A new series: its ref (stable for the life of the head) and labels.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SeriesRecord {
    /// Head series ref.
    pub(crate) series_ref: u64,
    /// Float or histogram.
    pub(crate) kind: SeriesKind,
    /// Labels (family labels for a histogram series).
    pub(crate) labels: Labels,
}

/// One float sample of a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FloatRecord {
    /// Series ref.
    pub(crate) series_ref: u64,
    /// Timestamp (ms).
    pub(crate) t: i64,
    /// Value (bits preserved exactly).
    pub(crate) v: f64,
}

/// Bounds in force for a histogram series' following samples.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BoundsRecord {
    /// Series ref.
    pub(crate) series_ref: u64,
    /// Finite upper bounds, ascending.
    pub(crate) bounds: Arc<[f64]>,
}

/// One histogram sample of a batch; its bounds are the latest
/// [`BoundsRecord`] for the ref (so the bucket count is bounds + 1).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HistogramRecord {
    /// Series ref.
    pub(crate) series_ref: u64,
    /// Timestamp (ms).
    pub(crate) t: i64,
    /// Cumulative bucket counts (bounds + 1).
    pub(crate) buckets: Vec<f64>,
    /// Sum.
    pub(crate) sum: f64,
    /// Count.
    pub(crate) count: f64,
}

/// A decoded WAL record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Record {
    /// New series.
    Series(Vec<SeriesRecord>),
    /// Float samples.
    Floats(Vec<FloatRecord>),
    /// Histogram bounds.
    Bounds(Vec<BoundsRecord>),
    /// Histogram samples.
    Histograms(Vec<HistogramRecord>),
    /// End of a commit: every record since the previous marker belongs to
    /// one write and is applied together.
    Commit,
}

/// Why a record payload could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("cannot decode WAL record at payload byte {offset}: {reason}")]
pub(crate) struct RecordError {
    /// Offset inside the payload.
    pub(crate) offset: usize,
    /// What did not hold.
    pub(crate) reason: &'static str,
}

/// Appends a LEB128 uvarint.
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends a zig-zag varint.
pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// A LEB128 uvarint of `v` < 2^56 packed little-endian into a `u64` (its
/// bytes in order from the lowest), and its length in bytes (1..=8). The
/// lengths of real refs and time offsets (up to 4 bytes) are unrolled.
#[inline]
fn packed_uvarint(v: u64) -> (u64, usize) {
    debug_assert!(v < 1 << 56);
    // Byte i holds bits 7i..7i+7 of `v`; every byte but the last has its
    // continuation bit set.
    let spread = |v: u64, n: u32| -> u64 {
        let mut out = 0;
        for i in 0..n {
            out |= (v >> (7 * i) & 0x7f) << (8 * i);
        }
        out
    };
    match v {
        0..0x80 => (v, 1),
        0x80..0x4000 => (spread(v, 2) | 0x80, 2),
        0x4000..0x20_0000 => (spread(v, 3) | 0x8080, 3),
        0x20_0000..0x1000_0000 => (spread(v, 4) | 0x80_8080, 4),
        _ => {
            let mut out = 0u64;
            let mut n = 0;
            let mut x = v;
            while x >= 0x80 {
                out |= (x & 0x7f | 0x80) << (8 * n);
                x >>= 7;
                n += 1;
            }
            (out | x << (8 * n), n + 1)
        }
    }
}

/// Largest encoding of one float sample of a batch on the fast path of
/// [`encode_float_batch`]: two packed uvarints (8 each) + f64 (8).
const FLOAT_SAMPLE_FAST: usize = 24;

/// Appends a float-batch payload ([`Record::Floats`], type
/// [`TYPE_FLOATS`]) for `items`, each mapped by `f` to (series ref, time in
/// ms, value). Same bytes as encoding the equivalent [`FloatRecord`]s, but
/// callers holding samples in another shape need not build them. A sample
/// whose ref and zig-zag time offset are below 2^56 (all real ones) is
/// assembled in a 24-byte stack buffer, appended whole and cut to length.
pub(crate) fn encode_float_batch<T>(
    buf: &mut Vec<u8>,
    items: &[T],
    f: impl Fn(&T) -> (u64, i64, f64),
) {
    let base = items.first().map_or(0, |s| f(s).1);
    put_uvarint(buf, items.len() as u64);
    put_varint(buf, base);
    buf.reserve(items.len() * FLOAT_SAMPLE_FAST);
    for item in items {
        let (series_ref, t, v) = f(item);
        let d = t.wrapping_sub(base);
        let zz = ((d << 1) ^ (d >> 63)) as u64;
        if series_ref >= 1 << 56 || zz >= 1 << 56 {
            put_uvarint(buf, series_ref);
            put_uvarint(buf, zz);
            put_f64(buf, v);
            continue;
        }
        let (r, rn) = packed_uvarint(series_ref);
        let (z, zn) = packed_uvarint(zz);
        let mut tmp = [0u8; FLOAT_SAMPLE_FAST];
        tmp[..8].copy_from_slice(&r.to_le_bytes());
        // `rn` <= 8 and `zn` <= 8, so both slices are in range.
        let at = rn.min(8);
        tmp[at..at + 8].copy_from_slice(&z.to_le_bytes());
        let at = (at + zn).min(16);
        tmp[at..at + 8].copy_from_slice(&v.to_bits().to_le_bytes());
        let len = buf.len() + at + 8;
        buf.extend_from_slice(&tmp);
        buf.truncate(len);
    }
}

fn put_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_bits().to_le_bytes());
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A cursor over a payload that tracks its offset for error messages.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: &'static str) -> RecordError {
        RecordError {
            offset: self.pos,
            reason,
        }
    }

    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| self.err("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn varint(&mut self) -> Result<i64, RecordError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err("field runs past the end of the record"))?;
        let s = self.buf.get(self.pos..end).unwrap_or(&[]);
        self.pos = end;
        Ok(s)
    }

    fn f64(&mut self) -> Result<f64, RecordError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_bits(u64::from_le_bytes(a)))
    }

    fn str(&mut self) -> Result<Arc<str>, RecordError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| self.err("string length too large"))?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b)
            .map(Arc::from)
            .map_err(|_| self.err("label is not UTF-8"))
    }

    /// A count of items each at least `min_item` bytes long, checked against
    /// the bytes left so a corrupt count cannot trigger a huge allocation.
    fn count(&mut self, min_item: usize) -> Result<usize, RecordError> {
        let n = self.uvarint()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_item as u64) > left {
            return Err(self.err("item count exceeds record size"));
        }
        Ok(n as usize)
    }

    fn done(&self) -> Result<(), RecordError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(self.err("trailing bytes after record"))
        }
    }
}

impl Record {
    /// The record's type byte.
    pub(crate) fn type_byte(&self) -> u8 {
        match self {
            Record::Series(_) => TYPE_SERIES,
            Record::Floats(_) => TYPE_FLOATS,
            Record::Bounds(_) => TYPE_BOUNDS,
            Record::Histograms(_) => TYPE_HISTOGRAMS,
            Record::Commit => TYPE_COMMIT,
        }
    }

    /// Appends the payload (without type byte or framing) to `buf`.
    pub(crate) fn encode_payload(&self, buf: &mut Vec<u8>) {
        match self {
            Record::Commit => {}
            Record::Series(v) => {
                put_uvarint(buf, v.len() as u64);
                for s in v {
                    put_uvarint(buf, s.series_ref);
                    buf.push(match s.kind {
                        SeriesKind::Float => 0,
                        SeriesKind::Histogram => 1,
                    });
                    put_uvarint(buf, s.labels.len() as u64);
                    for l in s.labels.iter() {
                        put_str(buf, &l.name);
                        put_str(buf, &l.value);
                    }
                }
            }
            Record::Floats(v) => encode_float_batch(buf, v, |s| (s.series_ref, s.t, s.v)),
            Record::Bounds(v) => {
                put_uvarint(buf, v.len() as u64);
                for b in v {
                    put_uvarint(buf, b.series_ref);
                    put_uvarint(buf, b.bounds.len() as u64);
                    for &f in b.bounds.iter() {
                        put_f64(buf, f);
                    }
                }
            }
            Record::Histograms(v) => {
                let base = v.first().map_or(0, |s| s.t);
                put_uvarint(buf, v.len() as u64);
                put_varint(buf, base);
                for h in v {
                    put_uvarint(buf, h.series_ref);
                    put_varint(buf, h.t.wrapping_sub(base));
                    put_uvarint(buf, h.buckets.len() as u64);
                    for &b in &h.buckets {
                        put_f64(buf, b);
                    }
                    put_f64(buf, h.sum);
                    put_f64(buf, h.count);
                }
            }
        }
    }

    /// Decodes a payload of record type `ty`, validating every field.
    pub(crate) fn decode(ty: u8, payload: &[u8]) -> Result<Record, RecordError> {
        let mut c = Cursor {
            buf: payload,
            pos: 0,
        };
        let rec = match ty {
            TYPE_SERIES => {
                let n = c.count(3)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let series_ref = c.uvarint()?;
                    let kind = match c.bytes(1)?.first() {
                        Some(0) => SeriesKind::Float,
                        Some(1) => SeriesKind::Histogram,
                        _ => return Err(c.err("unknown series kind")),
                    };
                    let nl = c.count(2)?;
                    let mut labels: Vec<Label> = Vec::with_capacity(nl);
                    for _ in 0..nl {
                        let name = c.str()?;
                        let value = c.str()?;
                        if labels.last().is_some_and(|l| l.name >= name) {
                            return Err(c.err("labels not sorted or not unique"));
                        }
                        if value.is_empty() {
                            return Err(c.err("empty label value"));
                        }
                        labels.push(Label { name, value });
                    }
                    v.push(SeriesRecord {
                        series_ref,
                        kind,
                        labels: Labels::from_sorted(labels),
                    });
                }
                Record::Series(v)
            }
            TYPE_FLOATS => {
                let n = c.count(10)?;
                let base = c.varint()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let series_ref = c.uvarint()?;
                    let t = base.wrapping_add(c.varint()?);
                    let val = c.f64()?;
                    v.push(FloatRecord {
                        series_ref,
                        t,
                        v: val,
                    });
                }
                Record::Floats(v)
            }
            TYPE_BOUNDS => {
                let n = c.count(2)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let series_ref = c.uvarint()?;
                    let nb = c.count(8)?;
                    let mut b = Vec::with_capacity(nb);
                    for _ in 0..nb {
                        b.push(c.f64()?);
                    }
                    v.push(BoundsRecord {
                        series_ref,
                        bounds: Arc::from(b),
                    });
                }
                Record::Bounds(v)
            }
            TYPE_HISTOGRAMS => {
                let n = c.count(19)?;
                let base = c.varint()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let series_ref = c.uvarint()?;
                    let t = base.wrapping_add(c.varint()?);
                    let nb = c.count(8)?;
                    let mut buckets = Vec::with_capacity(nb);
                    for _ in 0..nb {
                        buckets.push(c.f64()?);
                    }
                    let sum = c.f64()?;
                    let count = c.f64()?;
                    v.push(HistogramRecord {
                        series_ref,
                        t,
                        buckets,
                        sum,
                        count,
                    });
                }
                Record::Histograms(v)
            }
            TYPE_COMMIT => Record::Commit,
            _ => return Err(c.err("unknown record type")),
        };
        c.done()?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN_BITS;
    use proptest::prelude::*;

    fn roundtrip(r: &Record) -> Record {
        let mut buf = vec![0xAA, 0xBB];
        r.encode_payload(&mut buf);
        Record::decode(r.type_byte(), &buf[2..]).unwrap()
    }

    #[test]
    fn golden_float_record() {
        let r = Record::Floats(vec![
            FloatRecord {
                series_ref: 1,
                t: 1000,
                v: 1.0,
            },
            FloatRecord {
                series_ref: 2,
                t: 1001,
                v: f64::from_bits(STALE_NAN_BITS),
            },
        ]);
        let mut buf = Vec::new();
        r.encode_payload(&mut buf);
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        // count 2 | base varint(1000)=d00f | ref 1, dt 0, 1.0 LE | ref 2, dt +1 (zig-zag 2), stale NaN LE
        assert_eq!(hex, "02d00f0100000000000000f03f0202020000000000f07f");
        // NaN != NaN, so compare re-encoded bytes.
        let mut again = Vec::new();
        roundtrip(&r).encode_payload(&mut again);
        assert_eq!(again, buf);
    }

    #[test]
    fn series_and_histogram_records_round_trip() {
        let s = Record::Series(vec![SeriesRecord {
            series_ref: 300,
            kind: SeriesKind::Histogram,
            labels: Labels::from_pairs([("__name__", "lat"), ("job", "api")]),
        }]);
        assert_eq!(roundtrip(&s), s);
        let b = Record::Bounds(vec![BoundsRecord {
            series_ref: 300,
            bounds: Arc::from(vec![0.1, 1.0]),
        }]);
        assert_eq!(roundtrip(&b), b);
        let h = Record::Histograms(vec![HistogramRecord {
            series_ref: 300,
            t: -5,
            buckets: vec![1.0, 2.0, 3.0],
            sum: 4.5,
            count: 3.0,
        }]);
        assert_eq!(roundtrip(&h), h);
        assert_eq!(roundtrip(&Record::Commit), Record::Commit);
        assert_eq!(
            Record::decode(TYPE_COMMIT, &[0]).unwrap_err().reason,
            "trailing bytes after record"
        );
    }

    #[test]
    fn bad_payloads_are_errors() {
        assert_eq!(
            Record::decode(9, &[]).unwrap_err().reason,
            "unknown record type"
        );
        assert_eq!(
            Record::decode(TYPE_FLOATS, &[0x05, 0x00])
                .unwrap_err()
                .reason,
            "item count exceeds record size"
        );
        assert_eq!(
            Record::decode(TYPE_FLOATS, &[0x00, 0x00, 0x00])
                .unwrap_err()
                .reason,
            "trailing bytes after record"
        );
    }

    proptest! {
        #[test]
        fn floats_round_trip(samples in proptest::collection::vec((any::<u64>(), any::<i64>(), any::<u64>()), 0..40)) {
            let r = Record::Floats(samples.iter().map(|&(r, t, v)| FloatRecord { series_ref: r, t, v: f64::from_bits(v) }).collect());
            let back = roundtrip(&r);
            let (Record::Floats(a), Record::Floats(b)) = (&r, &back) else { panic!("kind changed") };
            prop_assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                prop_assert_eq!(x.series_ref, y.series_ref);
                prop_assert_eq!(x.t, y.t);
                prop_assert_eq!(x.v.to_bits(), y.v.to_bits());
            }
        }

        /// The batch encoder writes exactly the bytes of the original
        /// field-by-field encoding, for refs and time offsets of every
        /// varint length (the fast path and the fallback past 2^56).
        #[test]
        fn float_batch_matches_field_by_field(samples in proptest::collection::vec((
                prop_oneof![0u64..300, 0u64..1 << 21, any::<u64>(), (50u32..64).prop_map(|s| (1u64 << s) - 1)],
                prop_oneof![1_700_000_000_000i64..1_700_000_100_000, any::<i64>()],
                any::<u64>()), 0..40)) {
            let mut want = Vec::new();
            let base = samples.first().map_or(0, |s| s.1);
            put_uvarint(&mut want, samples.len() as u64);
            put_varint(&mut want, base);
            for &(r, t, v) in &samples {
                put_uvarint(&mut want, r);
                put_varint(&mut want, t.wrapping_sub(base));
                put_f64(&mut want, f64::from_bits(v));
            }
            let mut got = vec![0xAA];
            encode_float_batch(&mut got, &samples, |&(r, t, v)| (r, t, f64::from_bits(v)));
            prop_assert_eq!(&got[1..], &want[..]);
        }

        #[test]
        fn arbitrary_payloads_never_panic(ty in 0u8..6, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Record::decode(ty, &bytes);
        }
    }
}
