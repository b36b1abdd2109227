//! The remote write hot path: decode and append in one go.
//!
//! [`super::decode_cached`] + [`super::apply_cached`] first build a
//! [`super::Batch`], a validated copy of the whole request, then append it.
//! For a remote write 1.0 request whose series the [`SeriesCache`] already
//! knows (every request after a sender's first), building that copy was
//! most of the decoding work: each series' labels and storage ref were
//! cloned into it, and dropped again after the commit. [`write_cached`]
//! instead walks the message once (stepping over the label fields), looks
//! every series up in the cache, and appends the hits straight from their
//! cache entries into one storage appender; only the misses are read
//! again, validated and cached, as in the general path.
//!
//! Guarantees are those of decode + apply: an invalid series refuses the
//! whole request and its appender is rolled back, so none of its samples is
//! written; a `204` is only possible once every counted sample is durable.
//! Series whose cached storage ref is unknown are appended only after every
//! miss was validated, so a refused request creates no series either,
//! except one case: a series whose ref went stale (storage garbage-collected
//! it after a whole head window without samples) is re-created, empty,
//! when it is resent in a request that is then refused.
//!
//! Requests the walk does not take (remote write 2.0, series with
//! histograms, label fields interleaved with other fields) go the general
//! way.

use std::sync::Arc;

use crate::model::Labels;
use crate::storage::{Appendable, SeriesRef};

use super::RemoteWriteError;
use super::batch::{SeriesHint, WriteOutcome, apply_learning};
use super::cache::SeriesCache;
use super::decode::{
    DecodeLimits, Protocol, decode_protobuf_cached, v1_metadata, validate_new, with_decompressed,
};
use super::metadata::MetricMetadata;
use super::wire::{
    Interner, RawSeries, Reader, Scanned, WireError, parse_labels, read_series, scan_series,
};

/// What [`write_cached`] wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    /// Samples written and refused one by one.
    pub outcome: WriteOutcome,
    /// Metadata the request carried (for [`super::MetadataStore::record`]).
    pub metadata: Vec<MetricMetadata>,
}

/// Why [`write_cached`] refused a request; nothing of it was written.
#[derive(Debug)]
pub struct Refused {
    /// The reason.
    pub error: RemoteWriteError,
    /// Samples the request carried, when it was decoded (0 otherwise), for
    /// the door's failure counters.
    pub samples: u64,
}

impl Refused {
    fn decoding(error: RemoteWriteError) -> Self {
        Refused { error, samples: 0 }
    }
}

/// Decompresses a remote write body, decodes it and appends it to `db`,
/// with `cache` remembering label sets and storage refs across requests
/// (the server keeps one per door). The same results as
/// [`super::decode_cached`] followed by [`super::apply_cached`].
pub fn write_cached(
    protocol: Protocol,
    body: &[u8],
    limits: &DecodeLimits,
    cache: &SeriesCache,
    db: &dyn Appendable,
) -> Result<Written, Refused> {
    with_decompressed(body, limits, |raw| {
        write_decompressed(protocol, raw, limits, cache, db)
    })
    .map_err(Refused::decoding)?
}

/// [`write_cached`] on a decompressed message.
pub(crate) fn write_decompressed(
    protocol: Protocol,
    raw: &[u8],
    limits: &DecodeLimits,
    cache: &SeriesCache,
    db: &dyn Appendable,
) -> Result<Written, Refused> {
    // Offsets are kept as u32; a message beyond 4 GiB (far over any sane
    // limit) takes the general path.
    if protocol == Protocol::V1
        && u32::try_from(raw.len()).is_ok()
        && let Some(w) = fast_v1(raw, limits, cache, db)?
    {
        return Ok(w);
    }
    let batch =
        decode_protobuf_cached(protocol, raw, limits, Some(cache)).map_err(Refused::decoding)?;
    let samples = (batch.float_samples() + batch.histogram_samples()) as u64;
    let (outcome, learned) =
        apply_learning(&batch, db).map_err(|error| Refused { error, samples })?;
    cache.learn(&batch, learned);
    Ok(Written {
        outcome,
        metadata: batch.metadata,
    })
}

/// One series of the request: where its `TimeSeries` message is (for a
/// second, full read on a cache miss) and its samples in the flat list.
struct Slot {
    at: u32,
    len: u32,
    first: u32,
    end: u32,
}

impl Slot {
    fn samples<'s>(&self, flat: &'s [(i64, f64)]) -> &'s [(i64, f64)] {
        &flat[self.first as usize..self.end as usize]
    }
}

/// The fast path; `Ok(None)` when a series needs the general path (then
/// nothing was appended).
fn fast_v1(
    raw: &[u8],
    limits: &DecodeLimits,
    cache: &SeriesCache,
    db: &dyn Appendable,
) -> Result<Option<Written>, Refused> {
    let pb_err = |e: WireError| {
        Refused::decoding(RemoteWriteError::Protobuf {
            message: "prometheus.WriteRequest",
            len: raw.len(),
            reason: e.into(),
        })
    };
    // Pass 1: walk the message; each series' key is hashed while its bytes
    // are in the CPU cache.
    // Sized from the message length (a series message takes ~100-200
    // bytes) rather than by a separate walk counting them.
    let n = raw.len() / 96 + 16;
    let mut slots: Vec<Slot> = Vec::with_capacity(n);
    let mut keys: Vec<(&[u8], u64)> = Vec::with_capacity(n);
    let mut flat: Vec<(i64, f64)> = Vec::with_capacity(n);
    let mut metadata = Vec::new();
    let mut r = Reader::new(raw);
    while let Some((field, wt)) = r.key().map_err(pb_err)? {
        match field {
            1 => {
                r.expect(field, wt, 2).map_err(pb_err)?;
                let sub = r.sub().map_err(pb_err)?;
                let (buf, base) = sub.whole();
                let first = flat.len();
                match scan_series(sub, &mut flat).map_err(pb_err)? {
                    Scanned::Plain { key: (a, b) } => {
                        let k = &buf[a..b];
                        keys.push((k, cache.hash(k)));
                        // In range: the message is under 4 GiB (checked).
                        slots.push(Slot {
                            at: base as u32,
                            len: buf.len() as u32,
                            first: first as u32,
                            end: flat.len() as u32,
                        });
                    }
                    Scanned::General => return Ok(None),
                }
            }
            3 => {
                r.expect(field, wt, 2).map_err(pb_err)?;
                let b = r.bytes().map_err(pb_err)?;
                let m = v1_metadata(b).map_err(|reason| {
                    Refused::decoding(RemoteWriteError::Protobuf {
                        message: "prometheus.WriteRequest",
                        len: raw.len(),
                        reason,
                    })
                })?;
                metadata.push(m);
            }
            _ => r.skip(wt).map_err(pb_err)?,
        }
    }
    let total = flat.len() as u64;
    let mut app = db.appender();
    app.reserve(flat.len());
    let mut out = WriteOutcome::default();
    // Pass 2: hits whose storage ref is known are appended from the cache
    // entry itself (no label or ref copies); the others wait until every
    // miss is validated, so a refused request creates no series.
    let mut later: Vec<(usize, Arc<Labels>, u64)> = Vec::new();
    let misses = cache.visit_hits(&keys, |i, labels, current| {
        if current.is_none() {
            later.push((i, labels.clone(), keys[i].1));
            return;
        }
        for &(t, v) in slots[i].samples(&flat) {
            match app.append_ref(current.as_ref(), labels, t, v) {
                Ok(Some(r)) => {
                    *current = Some(r);
                    out.samples_written += 1;
                }
                Ok(None) => out.samples_written += 1,
                Err(e) => out.reject(&e),
            }
        }
    });
    // Pass 3: misses are read in full, validated and cached, in request
    // order (the first invalid series is the one reported).
    let mut rs = RawSeries::default();
    let mut interner = Interner::default();
    for &i in &misses {
        let s = &slots[i];
        let (at, len) = (s.at as usize, s.len as usize);
        let validated = read_series(Reader::at(&raw[at..at + len], at), &mut rs)
            .and_then(|()| parse_labels(&mut rs))
            .map_err(pb_err);
        let validated = validated.and_then(|()| {
            validate_new(i, &rs, limits, &mut interner, Some(cache)).map_err(Refused::decoding)
        });
        match validated {
            Ok((labels, SeriesHint { cached, .. })) => {
                later.push((i, labels, cached.unwrap_or_else(|| cache.hash(rs.key()))));
            }
            Err(e) => {
                app.rollback();
                return Err(e);
            }
        }
    }
    for (i, labels, hash) in later {
        let mut fresh: Option<SeriesRef> = None;
        for &(t, v) in slots[i].samples(&flat) {
            match app.append_ref(fresh.as_ref(), &labels, t, v) {
                Ok(Some(r)) => {
                    fresh = Some(r);
                    out.samples_written += 1;
                }
                Ok(None) => out.samples_written += 1,
                Err(e) => out.reject(&e),
            }
        }
        if let Some(r) = fresh {
            cache.learn_one(hash, &labels, r);
        }
    }
    if slots.is_empty() {
        // Nothing to make durable.
        app.rollback();
    } else {
        out.commit = app.commit().map_err(|e| Refused {
            error: e.into(),
            samples: total,
        })?;
    }
    Ok(Some(Written {
        outcome: out,
        metadata,
    }))
}
