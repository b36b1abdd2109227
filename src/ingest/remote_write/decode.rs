//! Snappy + protobuf decoding of remote write bodies into a validated [`Batch`].

use std::collections::HashSet;
use std::sync::Arc;

use prost::Message;

use crate::model::{HistogramSample, Sample, is_stale_nan};

use super::RemoteWriteError;
use super::batch::{Batch, BatchSeries, Samples, SeriesHint};
use super::cache::SeriesCache;
use super::metadata::{MetricKind, MetricMetadata};
use super::pb::{v1, v2};
use super::validate::{labels_from_pairs, labels_with, print_pairs};
use super::wire::{Interner, RawSeries, Reader, WireError, parse_labels, read_series};

/// Native-histogram schema number for custom (classic) bucket bounds.
const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// Which remote write message a body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Remote write 1.0, `prometheus.WriteRequest`.
    V1,
    /// Remote write 2.0, `io.prometheus.write.v2.Request`.
    V2,
}

impl Protocol {
    /// Picks the protocol from a `Content-Type` header value. A missing
    /// header or bare `application/x-protobuf` means 1.0 (what Prometheus
    /// 2.x sends); `proto=io.prometheus.write.v2.Request` selects 2.0.
    pub fn from_content_type(ct: Option<&str>) -> Result<Protocol, RemoteWriteError> {
        let Some(ct) = ct else {
            return Ok(Protocol::V1);
        };
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !(media.is_empty() || media.eq_ignore_ascii_case("application/x-protobuf")) {
            return Err(RemoteWriteError::UnsupportedContentType(ct.to_string()));
        }
        let mut proto = Protocol::V1;
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            if !k.trim().eq_ignore_ascii_case("proto") {
                continue;
            }
            proto = match v.trim().trim_matches('"') {
                "prometheus.WriteRequest" => Protocol::V1,
                "io.prometheus.write.v2.Request" => Protocol::V2,
                _ => return Err(RemoteWriteError::UnsupportedContentType(ct.to_string())),
            };
        }
        Ok(proto)
    }

    fn message_name(self) -> &'static str {
        match self {
            Protocol::V1 => "prometheus.WriteRequest",
            Protocol::V2 => "io.prometheus.write.v2.Request",
        }
    }
}

/// Limits applied while decoding. Defaults fit real senders (Prometheus
/// sends at most a few MiB per request) and stop hostile ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest decompressed body accepted, in bytes. Checked against the
    /// snappy header before allocating. Default 64 MiB.
    pub max_decompressed_bytes: usize,
    /// Longest label name, in bytes. Default 1 KiB.
    pub max_label_name_bytes: usize,
    /// Longest label value, in bytes. Default 16 KiB.
    pub max_label_value_bytes: usize,
    /// Most labels per series (including `__name__`). Default 256.
    pub max_labels_per_series: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decompressed_bytes: 64 << 20,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 16 << 10,
            max_labels_per_series: 256,
        }
    }
}

/// Decompresses a snappy block-format body and decodes it.
///
/// The declared length in the snappy header is compared with
/// `limits.max_decompressed_bytes` before the output buffer is allocated.
pub fn decode(
    protocol: Protocol,
    body: &[u8],
    limits: &DecodeLimits,
) -> Result<Batch, RemoteWriteError> {
    let raw = decompress(body, limits)?;
    decode_protobuf(protocol, &raw, limits)
}

fn decompress(body: &[u8], limits: &DecodeLimits) -> Result<Vec<u8>, RemoteWriteError> {
    let mut raw = Vec::new();
    let n = decompress_into(body, limits, &mut raw)?;
    raw.truncate(n);
    Ok(raw)
}

/// Decompresses into `out` (resized as needed, never shrunk) after checking
/// the snappy header's declared length against the limit; returns the
/// decompressed length.
fn decompress_into(
    body: &[u8],
    limits: &DecodeLimits,
    out: &mut Vec<u8>,
) -> Result<usize, RemoteWriteError> {
    let declared = snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy {
        len: body.len(),
        reason: e.to_string(),
    })?;
    if declared > limits.max_decompressed_bytes {
        return Err(RemoteWriteError::TooLarge {
            declared: declared as u64,
            max: limits.max_decompressed_bytes,
        });
    }
    if out.len() < declared {
        out.resize(declared, 0);
    }
    snap::raw::Decoder::new()
        .decompress(body, &mut out[..declared])
        .map_err(|e| RemoteWriteError::Snappy {
            len: body.len(),
            reason: e.to_string(),
        })
}

/// Decodes an uncompressed protobuf message and validates every series.
pub fn decode_protobuf(
    protocol: Protocol,
    raw: &[u8],
    limits: &DecodeLimits,
) -> Result<Batch, RemoteWriteError> {
    decode_protobuf_cached(protocol, raw, limits, None)
}

/// [`decode`] with a [`SeriesCache`] that remembers validated label sets
/// across requests (the server keeps one per door).
pub fn decode_cached(
    protocol: Protocol,
    body: &[u8],
    limits: &DecodeLimits,
    cache: &SeriesCache,
) -> Result<Batch, RemoteWriteError> {
    with_decompressed(body, limits, |raw| {
        decode_protobuf_cached(protocol, raw, limits, Some(cache))
    })?
}

/// Decompresses `body` (after the header check of [`decompress_into`])
/// into a buffer reused by the requests of one thread, and runs `f` on it.
pub(crate) fn with_decompressed<R>(
    body: &[u8],
    limits: &DecodeLimits,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, RemoteWriteError> {
    thread_local! {
        /// Decompression buffer reused by the requests of one thread: a
        /// fresh multi-hundred-KiB buffer per request costs a page-faulting
        /// allocation each time.
        static RAW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    /// Buffers above this are freed after use rather than kept per thread.
    const KEEP: usize = 8 << 20;
    RAW.with(|cell| {
        let Ok(mut raw) = cell.try_borrow_mut() else {
            // Re-entered on this thread (not expected): no reuse.
            let raw = decompress(body, limits)?;
            return Ok(f(&raw));
        };
        let n = decompress_into(body, limits, &mut raw)?;
        let res = f(&raw[..n]);
        if raw.capacity() > KEEP {
            *raw = Vec::new();
        }
        Ok(res)
    })
}

pub(crate) fn decode_protobuf_cached(
    protocol: Protocol,
    raw: &[u8],
    limits: &DecodeLimits,
    cache: Option<&SeriesCache>,
) -> Result<Batch, RemoteWriteError> {
    let pb_err = |e: prost::DecodeError| RemoteWriteError::Protobuf {
        message: protocol.message_name(),
        len: raw.len(),
        reason: e.to_string(),
    };
    match protocol {
        Protocol::V1 => from_v1(raw, limits, cache),
        Protocol::V2 => from_v2(v2::Request::decode(raw).map_err(pb_err)?, limits),
    }
}

fn check_limits(pairs: &[(&str, &str)], limits: &DecodeLimits) -> Result<(), String> {
    if pairs.len() > limits.max_labels_per_series {
        return Err(format!(
            "{} labels, the limit is {}",
            pairs.len(),
            limits.max_labels_per_series
        ));
    }
    for (n, v) in pairs {
        if n.len() > limits.max_label_name_bytes {
            return Err(format!(
                "label name of {} bytes, the limit is {}",
                n.len(),
                limits.max_label_name_bytes
            ));
        }
        if v.len() > limits.max_label_value_bytes {
            return Err(format!(
                "label {n:?} has a value of {} bytes, the limit is {}",
                v.len(),
                limits.max_label_value_bytes
            ));
        }
    }
    Ok(())
}

fn invalid(index: usize, pairs: &[(&str, &str)], reason: String) -> RemoteWriteError {
    RemoteWriteError::InvalidSeries {
        index,
        series: print_pairs(pairs.iter().copied()),
        reason,
    }
}

/// Remote write 1.0 and 2.0 generate structurally identical `Histogram`
/// messages in two protobuf packages; this one conversion reads either into
/// the version-independent [`NativeHistogram`] view.
macro_rules! native_histogram {
    ($pkg:ident, $h:expr) => {{
        let h = &$h;
        NativeHistogram {
            schema: h.schema,
            count: match h.count {
                Some($pkg::histogram::Count::CountInt(c)) => c as f64,
                Some($pkg::histogram::Count::CountFloat(c)) => c,
                None => 0.0,
            },
            sum: h.sum,
            zero_count: match h.zero_count {
                Some($pkg::histogram::ZeroCount::ZeroCountInt(c)) => c as f64,
                Some($pkg::histogram::ZeroCount::ZeroCountFloat(c)) => c,
                None => 0.0,
            },
            has_negative: !h.negative_spans.is_empty(),
            positive_spans: h
                .positive_spans
                .iter()
                .map(|s| (s.offset, s.length))
                .collect(),
            positive_deltas: &h.positive_deltas,
            positive_counts: &h.positive_counts,
            custom_values: &h.custom_values,
        }
    }};
}

/// The native-histogram fields both protocol versions share.
struct NativeHistogram<'a> {
    schema: i32,
    count: f64,
    sum: f64,
    zero_count: f64,
    has_negative: bool,
    positive_spans: Vec<(i32, u32)>,
    positive_deltas: &'a [i64],
    positive_counts: &'a [f64],
    custom_values: &'a [f64],
}

/// Converts a native histogram with custom buckets (schema -53) into a
/// classic histogram sample. `Ok(None)` means a well-formed exponential
/// histogram, which Watchpost cannot store.
fn convert_histogram(h: &NativeHistogram<'_>) -> Result<Option<HistogramSample>, String> {
    if h.schema != CUSTOM_BUCKETS_SCHEMA {
        return Ok(None);
    }
    let bounds = h.custom_values;
    if bounds.iter().any(|b| !b.is_finite()) || !bounds.windows(2).all(|w| w[0] < w[1]) {
        return Err("custom bucket bounds are not finite and strictly increasing".into());
    }
    if h.has_negative || h.zero_count != 0.0 {
        return Err("custom-bucket histogram has negative or zero buckets".into());
    }
    let upper_bounds: Arc<[f64]> = Arc::from(bounds);
    if is_stale_nan(h.sum) {
        return Ok(Some(HistogramSample::stale(upper_bounds)));
    }
    let n = bounds.len() + 1;
    let mut per_bucket = vec![0.0; n];
    let use_deltas = !h.positive_deltas.is_empty();
    let mut idx: i64 = 0;
    let mut k = 0usize;
    let mut running: i64 = 0;
    for (i, &(offset, len)) in h.positive_spans.iter().enumerate() {
        if i > 0 && offset < 0 {
            return Err(format!("span {i} has a negative offset {offset}"));
        }
        idx += i64::from(offset);
        for _ in 0..len {
            let slot = usize::try_from(idx)
                .ok()
                .filter(|&s| s < n)
                .ok_or_else(|| format!("bucket index {idx} outside 0..{n}"))?;
            let v = if use_deltas {
                let d = *h
                    .positive_deltas
                    .get(k)
                    .ok_or("fewer bucket deltas than spans declare")?;
                running = running.wrapping_add(d);
                running as f64
            } else {
                *h.positive_counts
                    .get(k)
                    .ok_or("fewer bucket counts than spans declare")?
            };
            per_bucket[slot] = v;
            k += 1;
            idx += 1;
        }
    }
    let declared = if use_deltas {
        h.positive_deltas.len()
    } else {
        h.positive_counts.len()
    };
    if k != declared {
        return Err(format!("{declared} bucket values but spans cover {k}"));
    }
    let mut acc = 0.0;
    let bucket_counts: Vec<f64> = per_bucket
        .iter()
        .map(|c| {
            acc += c;
            acc
        })
        .collect();
    let _ = h.count; // the +Inf bucket is authoritative for classic storage
    Ok(Some(HistogramSample {
        upper_bounds,
        count: acc,
        bucket_counts,
        sum: h.sum,
    }))
}

impl From<WireError> for String {
    fn from(e: WireError) -> String {
        format!("at byte {}: {}", e.offset, e.reason)
    }
}

fn from_v1(
    raw: &[u8],
    limits: &DecodeLimits,
    cache: Option<&SeriesCache>,
) -> Result<Batch, RemoteWriteError> {
    let pb_err = |reason: String| RemoteWriteError::Protobuf {
        message: Protocol::V1.message_name(),
        len: raw.len(),
        reason,
    };
    // Size the series vector exactly (a skim over the top-level fields)
    // instead of growing a multi-hundred-KiB vector by doubling.
    let mut batch = Batch {
        series: Vec::with_capacity(count_series(raw)),
        ..Batch::default()
    };
    // Pass 1: walk the message once, keeping each series' position, cache
    // key and samples; metadata is decoded here.
    let mut rs = RawSeries::default();
    let mut pending: Vec<Pending> = Vec::with_capacity(batch.series.capacity());
    let mut flat: Vec<(i64, f64)> = Vec::with_capacity(batch.series.capacity());
    let mut built_keys: Vec<u8> = Vec::new();
    let mut r = Reader::new(raw);
    while let Some((field, wt)) = r.key().map_err(|e| pb_err(e.into()))? {
        match field {
            1 => {
                r.expect(field, wt, 2).map_err(|e| pb_err(e.into()))?;
                let sub = r.sub().map_err(|e| pb_err(e.into()))?;
                let (sub_buf, sub_base) = sub.whole();
                read_series(sub, &mut rs).map_err(|e| pb_err(e.into()))?;
                let key = match rs.key_span() {
                    // A slice of `raw`: its offset is the pointer difference.
                    Some(k) => KeyLoc::Raw(k.as_ptr() as usize - raw.as_ptr() as usize, k.len()),
                    None => {
                        built_keys.extend_from_slice(rs.key());
                        KeyLoc::Built(built_keys.len() - rs.key().len(), rs.key().len())
                    }
                };
                let first = flat.len();
                flat.extend_from_slice(&rs.samples);
                pending.push(Pending {
                    at: sub_base,
                    len: sub_buf.len(),
                    key,
                    samples: first..flat.len(),
                    histograms: !rs.histograms.is_empty(),
                });
            }
            3 => {
                r.expect(field, wt, 2).map_err(|e| pb_err(e.into()))?;
                let b = r.bytes().map_err(|e| pb_err(e.into()))?;
                batch.metadata.push(v1_metadata(b).map_err(pb_err)?);
            }
            _ => r.skip(wt).map_err(|e| pb_err(e.into()))?,
        }
    }
    // Pass 2: every cache lookup of the request at once.
    let hits = match cache {
        Some(c) => {
            let keys: Vec<&[u8]> = pending
                .iter()
                .map(|p| match p.key {
                    KeyLoc::Raw(at, n) => &raw[at..at + n],
                    KeyLoc::Built(at, n) => &built_keys[at..at + n],
                })
                .collect();
            c.get_many(&keys)
        }
        None => vec![None; pending.len()],
    };
    // Pass 3: hits become series directly; misses (and the rare series
    // with histograms) are read again and validated.
    let mut interner = Interner::default();
    for (index, (p, hit)) in pending.iter().zip(hits).enumerate() {
        let hit = match hit {
            Some((labels, hint)) if !p.histograms => {
                batch.series.push(BatchSeries {
                    labels,
                    samples: flat[p.samples.clone()]
                        .iter()
                        .map(|&(t, v)| Sample { t, v })
                        .collect(),
                    histograms: Vec::new(),
                    created_zero: None,
                    hint,
                });
                continue;
            }
            h => h,
        };
        let sub = Reader::at(&raw[p.at..p.at + p.len], p.at);
        read_series(sub, &mut rs).map_err(|e| pb_err(e.into()))?;
        parse_labels(&mut rs).map_err(|e| pb_err(e.into()))?;
        let pairs = &rs.labels;
        let (labels, hint) = match hit {
            Some(c) => c,
            None => validate_new(index, &rs, limits, &mut interner, cache)?,
        };
        let samples = rs.samples.iter().map(|&(t, v)| Sample { t, v }).collect();
        let mut histograms = Vec::new();
        for hb in &rs.histograms {
            let h = v1::Histogram::decode(*hb)
                .map_err(|e| invalid(index, pairs, format!("cannot decode histogram: {e}")))?;
            let nh = native_histogram!(v1, h);
            match convert_histogram(&nh).map_err(|r| invalid(index, pairs, r))? {
                Some(hs) => histograms.push((h.timestamp, hs)),
                None => batch.unsupported += 1,
            }
        }
        batch.series.push(BatchSeries {
            labels,
            samples,
            histograms,
            created_zero: None,
            hint,
        });
    }
    Ok(batch)
}

/// Decodes a remote write 1.0 `MetricMetadata` message.
pub(crate) fn v1_metadata(b: &[u8]) -> Result<MetricMetadata, String> {
    let m = v1::MetricMetadata::decode(b).map_err(|e| format!("metadata: {e}"))?;
    Ok(MetricMetadata {
        kind: MetricKind::from_remote_write(m.r#type),
        metric: m.metric_family_name,
        help: m.help,
        unit: m.unit,
    })
}

/// Validates the labels of series `index` (read by [`read_series`] and
/// [`parse_labels`] into `rs`) that no cache knew, and caches them.
pub(crate) fn validate_new<'a>(
    index: usize,
    rs: &RawSeries<'a>,
    limits: &DecodeLimits,
    interner: &mut Interner<'a>,
    cache: Option<&SeriesCache>,
) -> Result<(Arc<crate::model::Labels>, SeriesHint), RemoteWriteError> {
    let pairs = &rs.labels;
    check_limits(pairs, limits).map_err(|r| invalid(index, pairs, r))?;
    let l = Arc::new(
        labels_with(pairs, &mut |s| interner.get(s)).map_err(|r| invalid(index, pairs, r))?,
    );
    let hint = match cache {
        Some(c) => c.insert(rs.key(), &l),
        None => SeriesHint::default(),
    };
    Ok((l, hint))
}

/// Where a series' cache key is: a range of the message, or of the buffer
/// of keys built for non-contiguous labels. `(offset, length)`.
enum KeyLoc {
    Raw(usize, usize),
    Built(usize, usize),
}

/// A series found by the first pass of [`from_v1`].
struct Pending {
    /// Offset and length of its `TimeSeries` message in the request.
    at: usize,
    len: usize,
    key: KeyLoc,
    /// Its samples in the flat sample list.
    samples: std::ops::Range<usize>,
    histograms: bool,
}

/// Number of `timeseries` fields (1) at the top level of a `WriteRequest`,
/// stopping quietly at the first malformed field (the real decode reports it).
fn count_series(raw: &[u8]) -> usize {
    let mut r = Reader::new(raw);
    let mut n = 0;
    while let Ok(Some((field, wt))) = r.key() {
        if r.skip(wt).is_err() {
            break;
        }
        n += usize::from(field == 1);
    }
    n
}

fn symbol(symbols: &[String], r: u32) -> Result<&str, String> {
    symbols.get(r as usize).map(String::as_str).ok_or_else(|| {
        format!(
            "symbol reference {r} out of range (symbols table has {} entries)",
            symbols.len()
        )
    })
}

fn from_v2(req: v2::Request, limits: &DecodeLimits) -> Result<Batch, RemoteWriteError> {
    let symbols = &req.symbols;
    let mut batch = Batch {
        series: Vec::with_capacity(req.timeseries.len()),
        ..Batch::default()
    };
    let mut seen_meta: HashSet<String> = HashSet::new();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (index, ts) in req.timeseries.iter().enumerate() {
        pairs.clear();
        let refs_err = |r: String| RemoteWriteError::InvalidSeries {
            index,
            series: format!(
                "(label refs {:?})",
                &ts.labels_refs[..ts.labels_refs.len().min(16)]
            ),
            reason: r,
        };
        if !ts.labels_refs.len().is_multiple_of(2) {
            return Err(refs_err(format!(
                "odd number of label references ({})",
                ts.labels_refs.len()
            )));
        }
        for c in ts.labels_refs.chunks_exact(2) {
            let n = symbol(symbols, c[0]).map_err(refs_err)?;
            let v = symbol(symbols, c[1]).map_err(refs_err)?;
            pairs.push((n, v));
        }
        check_limits(&pairs, limits).map_err(|r| invalid(index, &pairs, r))?;
        let labels = labels_from_pairs(&pairs).map_err(|r| invalid(index, &pairs, r))?;
        let kind = ts
            .metadata
            .as_ref()
            .map(|m| MetricKind::from_remote_write(m.r#type))
            .unwrap_or(MetricKind::Unknown);
        if let Some(m) = &ts.metadata {
            let help = symbol(symbols, m.help_ref).map_err(|r| invalid(index, &pairs, r))?;
            let unit = symbol(symbols, m.unit_ref).map_err(|r| invalid(index, &pairs, r))?;
            if let Some(name) = labels.metric_name()
                && m.r#type != 0
                && seen_meta.insert(name.to_string())
            {
                batch.metadata.push(MetricMetadata {
                    metric: name.to_string(),
                    kind,
                    help: help.to_string(),
                    unit: unit.to_string(),
                });
            }
        }
        let samples: Samples = ts
            .samples
            .iter()
            .map(|s| Sample {
                t: s.timestamp,
                v: s.value,
            })
            .collect();
        let mut histograms = Vec::new();
        for h in &ts.histograms {
            let nh = native_histogram!(v2, h);
            match convert_histogram(&nh).map_err(|r| invalid(index, &pairs, r))? {
                Some(hs) => histograms.push((h.timestamp, hs)),
                None => batch.unsupported += 1,
            }
        }
        // A created timestamp says when a cumulative series started from
        // zero; write that zero so rate() sees the first increase. Only for
        // cumulative kinds and only strictly before the first sample.
        let cumulative = !matches!(
            kind,
            MetricKind::Gauge
                | MetricKind::GaugeHistogram
                | MetricKind::Info
                | MetricKind::StateSet
        );
        let first_t = samples
            .iter()
            .map(|s| s.t)
            .chain(histograms.iter().map(|(t, _)| *t))
            .min();
        let created_zero = match first_t {
            Some(ft) if cumulative && ts.created_timestamp != 0 && ts.created_timestamp < ft => {
                Some(ts.created_timestamp)
            }
            _ => None,
        };
        batch.series.push(BatchSeries {
            labels: Arc::new(labels),
            samples,
            histograms,
            created_zero,
            hint: SeriesHint::default(),
        });
    }
    Ok(batch)
}
