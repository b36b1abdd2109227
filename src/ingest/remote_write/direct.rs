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
use crate::storage::{Appendable, Appender, SeriesRef};

use super::RemoteWriteError;
use super::batch::{SeriesHint, WriteOutcome, apply_learning};
use super::cache::{EntryId, SeriesCache};
use super::decode::{
    DecodeLimits, Protocol, decode_protobuf_cached, v1_metadata, validate_new, with_decompressed,
};
use super::metadata::MetricMetadata;
use super::wire::{
    Interner, RawSeries, Reader, Scanned, WireError, parse_labels, read_series, scan_after_labels,
    scan_series,
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
fn write_decompressed(
    protocol: Protocol,
    raw: &[u8],
    limits: &DecodeLimits,
    cache: &SeriesCache,
    db: &dyn Appendable,
) -> Result<Written, Refused> {
    if protocol == Protocol::V1
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

/// A series the cache did not know: where its `TimeSeries` message is
/// (for the full read), its position in the request, and its samples in the
/// flat list.
struct Miss {
    index: usize,
    at: usize,
    len: usize,
    samples: std::ops::Range<usize>,
}

/// How to teach the cache the storage ref of a series appended late.
enum Learn {
    /// A cached entry whose ref was unknown.
    Entry(EntryId),
    /// A series just validated and cached under this key hash.
    Hash(u64),
}

/// Appends `samples` of one series with the ref `current`, replacing it
/// when storage hands out a new one.
fn append_series(
    app: &mut dyn Appender,
    out: &mut WriteOutcome,
    labels: &Labels,
    current: &mut Option<SeriesRef>,
    samples: &[(i64, f64)],
) {
    for &(t, v) in samples {
        match app.append_ref(current.as_ref(), labels, t, v) {
            Ok(Some(r)) => {
                *current = Some(r);
                out.samples_written += 1;
            }
            Ok(None) => out.samples_written += 1,
            Err(e) => out.reject(&e),
        }
    }
}

/// The fast path; `Ok(None)` when a series needs the general path (then
/// nothing was written).
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
    // Sized from the message length (a series message takes ~100-200
    // bytes) rather than by a separate walk counting them.
    let mut flat: Vec<(i64, f64)> = Vec::with_capacity(raw.len() / 96 + 16);
    let mut app = db.appender();
    app.reserve(flat.capacity());
    let mut out = WriteOutcome::default();
    let mut metadata = Vec::new();
    let mut misses: Vec<Miss> = Vec::new();
    // Hits whose storage ref is unknown wait, with the validated misses,
    // until every miss is validated, so a refused request creates no series.
    let mut later: Vec<(Arc<Labels>, Learn, std::ops::Range<usize>)> = Vec::new();
    // The previous series' entry and the one predicted to follow it, and
    // the predictions to correct afterwards (previous, actual).
    let (mut prev, mut predicted): (Option<EntryId>, Option<EntryId>) = (None, None);
    let mut links: Vec<(EntryId, EntryId)> = Vec::new();
    let mut series = 0usize;
    let mut r = Reader::new(raw);
    while let Some((field, wt)) = r.key().map_err(pb_err)? {
        match field {
            1 => {
                r.expect(field, wt, 2).map_err(pb_err)?;
                let sub = r.sub().map_err(pb_err)?;
                let (buf, base) = sub.whole();
                let index = series;
                series += 1;
                let first = flat.len();
                // The predicted entry: its key must be exactly the label run
                // at the start of the message (one compare, no label walk,
                // no hash).
                let mut scanned = None;
                let mut hit = None;
                if let Some(c) = predicted
                    && let Some(g) = cache.entry(c)
                {
                    let l = g.key().len();
                    if buf.starts_with(g.key()) {
                        let sc = scan_after_labels(Reader::at(buf, base), l, &mut flat)
                            .map_err(pb_err)?;
                        if matches!(sc, Scanned::Plain { key: (0, b) } if b == l) {
                            hit = Some(g);
                        }
                        scanned = Some(sc);
                    }
                }
                let mut g = match hit {
                    Some(g) => g,
                    None => {
                        let sc = match scanned {
                            Some(sc) => sc,
                            None => scan_series(sub, &mut flat).map_err(pb_err)?,
                        };
                        let Scanned::Plain { key: (a, b) } = sc else {
                            app.rollback();
                            return Ok(None);
                        };
                        let k = &buf[a..b];
                        match cache.find(k, cache.hash(k)) {
                            Some(g) => {
                                if let Some(p) = prev {
                                    links.push((p, g.id()));
                                }
                                g
                            }
                            None => {
                                misses.push(Miss {
                                    index,
                                    at: base,
                                    len: buf.len(),
                                    samples: first..flat.len(),
                                });
                                (prev, predicted) = (None, None);
                                continue;
                            }
                        }
                    }
                };
                (prev, predicted) = (Some(g.id()), g.next());
                let id = g.id();
                let (labels, current) = g.parts();
                if current.is_none() {
                    later.push((labels.clone(), Learn::Entry(id), first..flat.len()));
                } else {
                    // Appended from the entry itself, under its lock: no
                    // label or ref copies.
                    append_series(&mut *app, &mut out, labels, current, &flat[first..]);
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
    for (p, n) in links {
        cache.link(p, n);
    }
    let total = flat.len() as u64;
    // Misses are read in full, validated and cached, in request order (the
    // first invalid series is the one reported).
    let mut rs = RawSeries::default();
    let mut interner = Interner::default();
    for m in misses {
        let validated = read_series(Reader::at(&raw[m.at..m.at + m.len], m.at), &mut rs)
            .and_then(|()| parse_labels(&mut rs))
            .map_err(pb_err);
        let validated = validated.and_then(|()| {
            validate_new(m.index, &rs, limits, &mut interner, Some(cache))
                .map_err(Refused::decoding)
        });
        match validated {
            Ok((labels, SeriesHint { cached, .. })) => {
                let h = cached.unwrap_or_else(|| cache.hash(rs.key()));
                later.push((labels, Learn::Hash(h), m.samples));
            }
            Err(e) => {
                app.rollback();
                return Err(e);
            }
        }
    }
    for (labels, learn, samples) in later {
        let mut fresh: Option<SeriesRef> = None;
        append_series(&mut *app, &mut out, &labels, &mut fresh, &flat[samples]);
        if let Some(r) = fresh {
            match learn {
                Learn::Entry(id) => cache.learn_id(id, &labels, r),
                Learn::Hash(h) => cache.learn_one(h, &labels, r),
            }
        }
    }
    if series == 0 {
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
