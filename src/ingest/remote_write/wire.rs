//! A zero-copy decoder for the remote write 1.0 hot path.
//!
//! `prost` allocates a `String` for every label name and value; a typical
//! request carries 2,000 series of ~8 labels, so decoding spent most of its
//! time in the allocator. This reader walks the protobuf wire format
//! directly and hands out `&str` slices of the decompressed buffer; label
//! strings are then interned per request (names and most values repeat), so
//! building [`crate::model::Labels`] costs one allocation per distinct string. Rare
//! messages (histograms, metadata) are still decoded with `prost`.
//! Field numbers: see `proto/remote_v1.proto`.

use std::collections::HashMap;
use std::sync::Arc;

use super::cache::FxBuild;

/// Wire types.
const VARINT: u64 = 0;
const I64: u64 = 1;
const LEN: u64 = 2;
const I32: u64 = 5;

/// A decoding failure at a byte offset of the decompressed message.
#[derive(Debug)]
pub(crate) struct WireError {
    pub(crate) offset: usize,
    pub(crate) reason: String,
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the whole message, for error positions.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// A reader over `buf`, which starts at byte `base` of the whole message.
    pub(crate) fn at(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// The bytes and their offset in the whole message.
    pub(crate) fn whole(&self) -> (&'a [u8], usize) {
        (self.buf, self.base)
    }

    #[cold]
    #[inline(never)]
    fn err(&self, reason: impl Into<String>) -> WireError {
        WireError {
            offset: self.base + self.pos,
            reason: reason.into(),
        }
    }

    #[inline]
    pub(crate) fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        // Fast paths: tags and lengths of labels are nearly always one
        // byte, lengths of series messages two.
        match self.buf.get(self.pos..) {
            Some(&[b, ..]) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            Some(&[b0, b1, ..]) if b1 < 0x80 => {
                self.pos += 2;
                Ok(u64::from(b0 & 0x7f) | u64::from(b1) << 7)
            }
            _ => self.varint_long(),
        }
    }

    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64, WireError> {
        // Word at a time when 8 bytes remain (timestamps take 6 bytes, the
        // lengths of series messages 2): find the last byte from the
        // continuation bits, then squeeze out the continuation bits in
        // three shift-and-mask steps.
        if let Some(b) = self.buf.get(self.pos..self.pos + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let w = u64::from_le_bytes(a);
            let stops = !w & 0x8080_8080_8080_8080;
            if stops != 0 {
                let bits = stops.trailing_zeros() + 1; // through the last byte's top bit
                self.pos += (bits / 8) as usize;
                return Ok(squeeze(w, bits));
            }
        }
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    /// Next `(field number, wire type)`, or `None` at the end.
    #[inline]
    pub(crate) fn key(&mut self) -> Result<Option<(u64, u64)>, WireError> {
        if self.done() {
            return Ok(None);
        }
        let k = self.varint()?;
        let field = k >> 3;
        if field == 0 {
            return Err(self.err("field number 0"));
        }
        Ok(Some((field, k & 7)))
    }

    #[inline]
    pub(crate) fn fixed64(&mut self) -> Result<u64, WireError> {
        let end = self.pos + 8;
        let Some(b) = self.buf.get(self.pos..end) else {
            return Err(self.err("truncated fixed64"));
        };
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        self.pos = end;
        Ok(u64::from_le_bytes(a))
    }

    /// A length-delimited field's bytes, as a sub-reader.
    #[inline]
    pub(crate) fn sub(&mut self) -> Result<Reader<'a>, WireError> {
        let len = self.varint()?;
        let start = self.pos;
        match usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= self.buf.len())
        {
            Some(end) => {
                self.pos = end;
                Ok(Reader {
                    buf: &self.buf[start..end],
                    pos: 0,
                    base: self.base + start,
                })
            }
            None => Err(self.overrun(len, start)),
        }
    }

    #[cold]
    #[inline(never)]
    fn overrun(&self, len: u64, start: usize) -> WireError {
        self.err(format!(
            "length {len} exceeds the {} remaining bytes",
            self.buf.len() - start
        ))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let r = self.sub()?;
        Ok(r.buf)
    }

    pub(crate) fn string(&mut self) -> Result<&'a str, WireError> {
        let at = self.base + self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| WireError {
            offset: at,
            reason: "string is not valid UTF-8".into(),
        })
    }

    /// A whole `Sample` message in the shape every sender writes: the value
    /// (field 1, fixed64), then the timestamp (field 2, varint), nothing
    /// else. `None` (reader unmoved) for any other shape, which the general
    /// field loop then reads.
    #[inline]
    pub(crate) fn value_then_timestamp(&mut self) -> Option<(i64, f64)> {
        // Value tag, 8 bytes, timestamp tag, then a varint of 1 to 8 bytes
        // (any timestamp after 1970 up to year 4253) ending the message.
        let (buf, len) = (self.buf, self.buf.len());
        if self.pos != 0 || !(11..=18).contains(&len) || buf[0] != 0x09 || buf[9] != 0x10 {
            return None;
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(&buf[1..9]);
        let v = f64::from_le_bytes(a);
        // The 8 bytes ending the message hold the whole varint at their top;
        // shift out the bytes before it.
        a.copy_from_slice(&buf[len - 8..]);
        let w = u64::from_le_bytes(a) >> (8 * (18 - len));
        let t = varint_exact(w, (len - 10) as u32)?;
        self.pos = len;
        Some((t as i64, v))
    }

    /// Skips a field of wire type `wt`.
    #[inline]
    pub(crate) fn skip(&mut self, wt: u64) -> Result<(), WireError> {
        match wt {
            VARINT => {
                self.varint()?;
            }
            I64 => {
                self.fixed64()?;
            }
            LEN => {
                self.sub()?;
            }
            I32 => {
                let end = self.pos + 4;
                if end > self.buf.len() {
                    return Err(self.err("truncated fixed32"));
                }
                self.pos = end;
            }
            other => return Err(self.err(format!("unsupported wire type {other}"))),
        }
        Ok(())
    }

    /// Checks the wire type of a known field.
    #[inline]
    pub(crate) fn expect(&self, field: u64, got: u64, want: u64) -> Result<(), WireError> {
        if got == want {
            Ok(())
        } else {
            Err(self.err(format!("field {field} has wire type {got}, want {want}")))
        }
    }
}

/// The value of the varint in the low `bits` (a multiple of 8, at most
/// 64) of `w`, little-endian: the continuation bits are masked off and the
/// 7-bit groups squeezed together in three shift-and-mask steps.
#[inline]
fn squeeze(w: u64, bits: u32) -> u64 {
    let x = (w & (u64::MAX >> (64 - bits))) & 0x7f7f_7f7f_7f7f_7f7f;
    let x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    (x & 0x0000_0000_0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
}

/// A varint that is exactly the low `k` (1 to 8) bytes of `w`: `None`
/// unless every byte before the `k`-th has the continuation bit and the
/// `k`-th does not.
#[inline]
fn varint_exact(w: u64, k: u32) -> Option<u64> {
    let stops = !w & 0x8080_8080_8080_8080;
    (stops != 0 && stops.trailing_zeros() == 8 * k - 1).then(|| squeeze(w, 8 * k))
}

/// One series as borrowed from the message.
#[derive(Default)]
pub(crate) struct RawSeries<'a> {
    /// Raw `Label` messages with their offsets; parsed by
    /// [`parse_labels`] only on a cache miss.
    pub(crate) label_msgs: Vec<(usize, &'a [u8])>,
    /// Parsed labels (filled by [`parse_labels`]).
    pub(crate) labels: Vec<(&'a str, &'a str)>,
    pub(crate) samples: Vec<(i64, f64)>,
    /// Encoded `prometheus.Histogram` messages (decoded with prost).
    pub(crate) histograms: Vec<&'a [u8]>,
    /// The series' identity on the wire, used as the [`super::SeriesCache`]
    /// key when the label fields are not contiguous: a 0xff marker, then
    /// the raw label messages, each prefixed by its u32 LE length.
    key: Vec<u8>,
    /// The label fields (tags, lengths and messages) as one slice of the
    /// message when they are contiguous, as every sender writes them: the
    /// key without a copy. It starts with field 1's tag (0x0a, or 0x8a when
    /// over-long), so it never equals a built key (0xff).
    key_span: Option<&'a [u8]>,
}

impl<'a> RawSeries<'a> {
    /// The cache key: equal keys mean equal label fields, byte for byte.
    pub(crate) fn key(&self) -> &[u8] {
        match self.key_span {
            Some(k) => k,
            None => &self.key,
        }
    }

    /// The key when it is a slice of the message (contiguous labels).
    pub(crate) fn key_span(&self) -> Option<&'a [u8]> {
        self.key_span
    }
}

/// Reads one `TimeSeries` message.
pub(crate) fn read_series<'a>(mut r: Reader<'a>, out: &mut RawSeries<'a>) -> Result<(), WireError> {
    out.labels.clear();
    out.label_msgs.clear();
    out.samples.clear();
    out.histograms.clear();
    out.key.clear();
    out.key_span = None;
    let (mut span_start, mut span_end, mut contiguous) = (0usize, 0usize, true);
    loop {
        let at = r.pos;
        let Some((field, wt)) = r.key()? else { break };
        match field {
            1 => {
                r.expect(field, wt, LEN)?;
                let l = r.sub()?;
                if out.label_msgs.is_empty() {
                    span_start = at;
                } else if at != span_end {
                    contiguous = false;
                }
                span_end = r.pos;
                out.label_msgs.push((l.base, l.buf));
            }
            2 => {
                r.expect(field, wt, LEN)?;
                out.samples.push(read_sample(r.sub()?)?);
            }
            4 => {
                r.expect(field, wt, LEN)?;
                out.histograms.push(r.bytes()?);
            }
            _ => r.skip(wt)?,
        }
    }
    if contiguous {
        out.key_span = Some(&r.buf[span_start..span_end]);
    } else {
        out.key.push(0xff);
        for &(_, m) in &out.label_msgs {
            out.key.extend_from_slice(&(m.len() as u32).to_le_bytes());
            out.key.extend_from_slice(m);
        }
    }
    Ok(())
}

/// Reads a `Sample` message: `(timestamp ms, value)`; missing fields are
/// zero, unknown ones skipped, a repeated field's last value wins.
fn read_sample(mut s: Reader<'_>) -> Result<(i64, f64), WireError> {
    let (mut t, mut v) = (0i64, 0f64);
    while let Some((f, wt)) = s.key()? {
        match f {
            1 => {
                s.expect(f, wt, I64)?;
                v = f64::from_bits(s.fixed64()?);
            }
            2 => {
                s.expect(f, wt, VARINT)?;
                t = s.varint()? as i64;
            }
            _ => s.skip(wt)?,
        }
    }
    Ok((t, v))
}

/// What [`scan_series`] learned of one `TimeSeries` message.
pub(crate) enum Scanned {
    /// Its label fields are one contiguous run at `key` (a range of the
    /// message reader's buffer, `(start, end)`), and it has no histograms:
    /// the fast path can take it.
    Plain { key: (usize, usize) },
    /// Histograms, or label fields split by other fields: only the general
    /// path ([`read_series`]) handles it.
    General,
}

/// The fast path's walk over one `TimeSeries` message: the label fields
/// are only stepped over (their contents matter only on a cache miss,
/// where [`read_series`] and [`parse_labels`] read them again), and the
/// samples are appended to `samples`. Accepts and refuses exactly the
/// messages [`read_series`] does.
pub(crate) fn scan_series(
    r: Reader<'_>,
    samples: &mut Vec<(i64, f64)>,
) -> Result<Scanned, WireError> {
    // Senders write the label fields first, each with a one-byte length:
    // step over that run in a tight loop (the general loop in `scan_rest`
    // takes anything else, and reports malformed fields).
    let buf = r.buf;
    let mut rest = buf.get(r.pos..).unwrap_or_default();
    while let [0x0a, len @ 0..=0x7f, tail @ ..] = rest {
        match tail.get(usize::from(*len)..) {
            Some(next) => rest = next,
            None => break,
        }
    }
    let p = buf.len() - rest.len();
    let labels = (p > r.pos).then_some((r.pos, p));
    scan_rest(r, labels, samples)
}

/// [`scan_series`] for a message known to start with a run of label fields
/// ending at byte `end` (a cache key compared equal there). `Plain` only if
/// no further label field follows (the run really ends there).
pub(crate) fn scan_after_labels(
    r: Reader<'_>,
    end: usize,
    samples: &mut Vec<(i64, f64)>,
) -> Result<Scanned, WireError> {
    scan_rest(r, Some((0, end)), samples)
}

/// The general field loop of [`scan_series`], after an already-stepped-over
/// run of label fields `labels` (`(start, end)`).
fn scan_rest(
    mut r: Reader<'_>,
    labels: Option<(usize, usize)>,
    samples: &mut Vec<(i64, f64)>,
) -> Result<Scanned, WireError> {
    let (mut span_start, mut span_end) = labels.unwrap_or((0, 0));
    let (mut labels, mut contiguous, mut histograms) = (labels.is_some(), true, false);
    if labels {
        r.pos = span_end;
    }
    loop {
        let at = r.pos;
        let Some((field, wt)) = r.key()? else { break };
        match field {
            1 => {
                r.expect(field, wt, LEN)?;
                r.sub()?;
                if !labels {
                    span_start = at;
                    labels = true;
                } else if at != span_end {
                    contiguous = false;
                }
                span_end = r.pos;
            }
            2 => {
                r.expect(field, wt, LEN)?;
                let mut s = r.sub()?;
                match s.value_then_timestamp() {
                    Some(tv) => samples.push(tv),
                    None => samples.push(read_sample(s)?),
                }
            }
            4 => {
                r.expect(field, wt, LEN)?;
                r.sub()?;
                histograms = true;
            }
            _ => r.skip(wt)?,
        }
    }
    if histograms || !contiguous {
        return Ok(Scanned::General);
    }
    Ok(Scanned::Plain {
        key: (span_start, span_end),
    })
}

/// Parses the `Label` messages collected by [`read_series`] into
/// `out.labels`.
pub(crate) fn parse_labels(out: &mut RawSeries<'_>) -> Result<(), WireError> {
    out.labels.clear();
    for &(base, buf) in &out.label_msgs {
        let mut l = Reader { buf, pos: 0, base };
        let (mut name, mut value) = ("", "");
        while let Some((f, wt)) = l.key()? {
            match f {
                1 => {
                    l.expect(f, wt, LEN)?;
                    name = l.string()?;
                }
                2 => {
                    l.expect(f, wt, LEN)?;
                    value = l.string()?;
                }
                _ => l.skip(wt)?,
            }
        }
        out.labels.push((name, value));
    }
    Ok(())
}

/// Per-request string interner: label names and values repeat across
/// series, so each distinct string is allocated once.
#[derive(Default)]
pub(crate) struct Interner<'a> {
    map: HashMap<&'a str, Arc<str>, FxBuild>,
}

impl<'a> Interner<'a> {
    /// Entries kept; beyond this, strings are allocated without interning
    /// so a request of unique values does not build a huge map.
    const MAX: usize = 1 << 16;

    pub(crate) fn get(&mut self, s: &'a str) -> Arc<str> {
        if let Some(a) = self.map.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        if self.map.len() < Self::MAX {
            self.map.insert(s, a.clone());
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook varint loop: value and bytes consumed, or `None`.
    fn reference(buf: &[u8]) -> Option<(u64, usize)> {
        let mut v = 0u64;
        for (i, &b) in buf.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some((v, i + 1));
            }
        }
        None
    }

    /// [`scan_series`] and [`read_series`] on the same bytes: the same
    /// verdict (and error position), the same samples, and `Plain` with the
    /// same key exactly when the general reader found contiguous labels and
    /// no histogram.
    fn scan_agrees_with_read(bytes: &[u8]) -> Result<(), TestCaseError> {
        let mut rs = RawSeries::default();
        let full = read_series(Reader::new(bytes), &mut rs);
        let mut samples = Vec::new();
        let scanned = scan_series(Reader::new(bytes), &mut samples);
        match (full, scanned) {
            (Ok(()), Ok(sc)) => {
                prop_assert_eq!(&samples, &rs.samples);
                let plain = rs.histograms.is_empty() && rs.key_span().is_some();
                match sc {
                    Scanned::Plain { key: (a, b) } => {
                        prop_assert!(plain);
                        prop_assert_eq!(Some(&bytes[a..b]), rs.key_span());
                        // Told that the label run ends at any label field
                        // boundary, the scan still finds where it really ends.
                        let mut at = a;
                        for &(base, m) in &rs.label_msgs {
                            if a != 0 {
                                break;
                            }
                            let mut more = Vec::new();
                            let after = scan_after_labels(Reader::new(bytes), at, &mut more)
                                .map_err(|e| TestCaseError::fail(e.reason))?;
                            let ends_at_b =
                                matches!(after, Scanned::Plain { key } if key == (0, b));
                            prop_assert!(ends_at_b);
                            prop_assert_eq!(&more, &rs.samples);
                            at = base + m.len();
                        }
                    }
                    Scanned::General => prop_assert!(!plain),
                }
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.offset, b.offset),
            (a, b) => prop_assert!(
                false,
                "read_series {:?}, scan_series {:?}",
                a.err(),
                b.err()
            ),
        }
        Ok(())
    }

    fn arb_series() -> impl Strategy<Value = Vec<u8>> {
        use crate::ingest::remote_write::pb::v1;
        use prost::Message;
        let label = ("[a-z]{0,3}", "[a-z]{0,140}");
        // Timestamps of every varint length (1 to 10 bytes).
        let t = prop_oneof![0i64..128, 0i64..(1 << 56), any::<i64>()];
        let sample = (t, any::<f64>());
        (
            proptest::collection::vec(label, 0..5),
            proptest::collection::vec(sample, 0..3),
            any::<bool>(),
        )
            .prop_map(|(labels, samples, hist)| {
                v1::TimeSeries {
                    labels: labels
                        .into_iter()
                        .map(|(name, value)| v1::Label { name, value })
                        .collect(),
                    samples: samples
                        .into_iter()
                        .map(|(timestamp, value)| v1::Sample { value, timestamp })
                        .collect(),
                    histograms: if hist {
                        vec![v1::Histogram::default()]
                    } else {
                        vec![]
                    },
                    ..Default::default()
                }
                .encode_to_vec()
            })
    }

    proptest! {
        #[test]
        fn scan_series_agrees_with_read_series(
            msg in arb_series(),
            flip in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut m = msg;
            if let Some((i, b)) = flip && !m.is_empty() {
                let i = i.index(m.len());
                m[i] = b;
            }
            scan_agrees_with_read(&m)?;
            scan_agrees_with_read(&junk)?;
        }

        /// The word-at-a-time decoder agrees with the loop on any bytes:
        /// canonical varints of any value, with anything after them, and
        /// arbitrary (also over-long or truncated) input.
        #[test]
        fn varint_matches_the_reference(
            v in any::<u64>(),
            tail in proptest::collection::vec(any::<u8>(), 0..10),
            junk in proptest::collection::vec(any::<u8>(), 0..14),
        ) {
            let mut buf = Vec::new();
            prost::encoding::encode_varint(v, &mut buf);
            let n = buf.len();
            buf.extend_from_slice(&tail);
            let mut r = Reader::new(&buf);
            prop_assert_eq!(r.varint().ok(), Some(v));
            prop_assert_eq!(r.pos, n);
            let mut r = Reader::new(&junk);
            let got = r.varint().ok().map(|v| (v, r.pos));
            prop_assert_eq!(got, reference(&junk));
        }
    }
}
