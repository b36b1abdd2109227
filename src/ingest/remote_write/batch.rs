//! A validated write batch and its all-or-nothing application to storage.

use std::sync::Arc;

use crate::model::{HistogramSample, Labels, Sample};
use crate::storage::{AppendError, Appendable, CommitSummary, SeriesRef};

use super::RemoteWriteError;
use super::cache::SeriesCache;
use super::metadata::MetricMetadata;

/// One validated series of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSeries {
    /// Sorted, validated labels; shared with the series cache, so a
    /// repeat series costs one reference-count increment.
    pub labels: Arc<Labels>,
    /// Float samples in request order (ms timestamps).
    pub samples: Samples,
    /// Histogram samples (ms timestamp, value) in request order.
    pub histograms: Vec<(i64, HistogramSample)>,
    /// A created timestamp (ms) at which a synthetic zero sample is written
    /// before the first real sample (remote write 2.0 counters and
    /// histograms). Its append errors are ignored, as Prometheus does.
    pub created_zero: Option<i64>,
    /// The storage's ref for these labels when a [`super::SeriesCache`]
    /// knows it, and the cache entry to teach a new one; empty for series
    /// that are not cached.
    pub hint: SeriesHint,
}

/// The float samples of one [`BatchSeries`], a slice underneath. The first
/// sample is stored inline: a remote write series nearly always carries one
/// sample per request, and a heap vector per series cost an allocation and
/// a free per sample.
#[derive(Clone, Default)]
pub struct Samples(SamplesRepr);

#[derive(Clone, Default)]
enum SamplesRepr {
    #[default]
    Empty,
    One(Sample),
    Many(Vec<Sample>),
}

impl Samples {
    /// Appends a sample.
    pub fn push(&mut self, s: Sample) {
        self.0 = match std::mem::take(&mut self.0) {
            SamplesRepr::Empty => SamplesRepr::One(s),
            SamplesRepr::One(a) => SamplesRepr::Many(vec![a, s]),
            SamplesRepr::Many(mut v) => {
                v.push(s);
                SamplesRepr::Many(v)
            }
        };
    }
}

impl std::ops::Deref for Samples {
    type Target = [Sample];
    fn deref(&self) -> &[Sample] {
        match &self.0 {
            SamplesRepr::Empty => &[],
            SamplesRepr::One(s) => std::slice::from_ref(s),
            SamplesRepr::Many(v) => v,
        }
    }
}

impl<'a> IntoIterator for &'a Samples {
    type Item = &'a Sample;
    type IntoIter = std::slice::Iter<'a, Sample>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl From<Vec<Sample>> for Samples {
    fn from(v: Vec<Sample>) -> Self {
        match v.len() {
            0 => Samples(SamplesRepr::Empty),
            1 => Samples(SamplesRepr::One(v[0])),
            _ => Samples(SamplesRepr::Many(v)),
        }
    }
}

impl FromIterator<Sample> for Samples {
    fn from_iter<I: IntoIterator<Item = Sample>>(iter: I) -> Self {
        let mut s = Samples::default();
        for x in iter {
            s.push(x);
        }
        s
    }
}

impl PartialEq for Samples {
    fn eq(&self, o: &Self) -> bool {
        self[..] == o[..]
    }
}

impl PartialEq<Vec<Sample>> for Samples {
    fn eq(&self, o: &Vec<Sample>) -> bool {
        self[..] == o[..]
    }
}

impl std::fmt::Debug for Samples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// What a batch series knows about its storage series, so a series seen
/// before skips the storage's label lookup: the [`SeriesRef`] last learned
/// for its labels, and which [`super::SeriesCache`] entry to teach a new
/// one ([`apply_cached`]). A hint is an optimisation, not data: two hints
/// always compare equal.
#[derive(Clone, Default)]
pub struct SeriesHint {
    /// The storage's ref for these labels, when known.
    pub(crate) current: Option<SeriesRef>,
    /// The series' cache key hash, when it came from a cache.
    pub(crate) cached: Option<u64>,
}

impl SeriesHint {
    /// A hint for a series of cache entry `hash` (no ref known yet).
    pub(crate) fn cached(hash: u64, current: Option<SeriesRef>) -> Self {
        SeriesHint {
            current,
            cached: Some(hash),
        }
    }
}

impl PartialEq for SeriesHint {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for SeriesHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SeriesHint(cached: {}, ref: {})",
            self.cached.is_some(),
            self.current.is_some()
        )
    }
}

impl BatchSeries {
    /// A series with float samples only.
    pub fn floats(labels: Labels, samples: Vec<Sample>) -> Self {
        BatchSeries {
            labels: Arc::new(labels),
            samples: samples.into(),
            histograms: Vec::new(),
            created_zero: None,
            hint: SeriesHint::default(),
        }
    }
}

/// A fully validated request: applying it cannot fail on input grounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Series with their samples.
    pub series: Vec<BatchSeries>,
    /// Metadata carried by the request (for `/api/v1/metadata`).
    pub metadata: Vec<MetricMetadata>,
    /// Data points that were well-formed but cannot be stored (for example
    /// exponential native histograms); counted as rejected, reason
    /// "unsupported".
    pub unsupported: u64,
}

impl Batch {
    /// Total float samples (without synthetic created-timestamp zeros).
    pub fn float_samples(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
    /// Total histogram samples.
    pub fn histogram_samples(&self) -> usize {
        self.series.iter().map(|s| s.histograms.len()).sum()
    }
}

/// Per-reason counts of samples storage refused while the rest was kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectionCounts {
    /// Older than the out-of-order window.
    pub too_old: u64,
    /// Same timestamp, different value.
    pub duplicate: u64,
    /// Float sample for a histogram series or the reverse.
    pub kind_mismatch: u64,
    /// Storage refused the series.
    pub invalid_series: u64,
    /// Well-formed but not storable (exponential native histograms...).
    pub unsupported: u64,
}

impl RejectionCounts {
    /// Counts one refusal.
    pub fn add(&mut self, e: &AppendError) {
        match e {
            AppendError::TooOld { .. } => self.too_old += 1,
            AppendError::DuplicateTimestamp { .. } => self.duplicate += 1,
            AppendError::KindMismatch { .. } => self.kind_mismatch += 1,
            AppendError::InvalidSeries { .. } => self.invalid_series += 1,
        }
    }

    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        self.too_old + self.duplicate + self.kind_mismatch + self.invalid_series + self.unsupported
    }

    /// `(reason, count)` pairs with stable reason names, for metrics and
    /// response bodies.
    pub fn by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("too_old", self.too_old),
            ("duplicate_timestamp", self.duplicate),
            ("kind_mismatch", self.kind_mismatch),
            ("invalid_series", self.invalid_series),
            ("unsupported", self.unsupported),
        ]
    }
}

/// What [`apply`] wrote and what it refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteOutcome {
    /// Float samples made durable.
    pub samples_written: u64,
    /// Histogram samples made durable.
    pub histograms_written: u64,
    /// Samples refused one by one.
    pub rejected: RejectionCounts,
    /// The first few refusal messages (at most [`WriteOutcome::MAX_MESSAGES`]).
    pub messages: Vec<String>,
    /// Storage's own summary of the commit.
    pub commit: CommitSummary,
}

impl WriteOutcome {
    /// How many refusal messages are kept.
    pub const MAX_MESSAGES: usize = 5;

    /// A one-paragraph plain-text report for a response body, e.g.
    /// `"wrote 10 samples, 0 histograms; rejected 2 samples (too_old: 2); first: ..."`.
    pub fn report(&self) -> String {
        let mut s = format!(
            "wrote {} samples, {} histograms",
            self.samples_written, self.histograms_written
        );
        if self.rejected.total() > 0 {
            let reasons: Vec<String> = self
                .rejected
                .by_reason()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            s.push_str(&format!(
                "; rejected {} samples ({})",
                self.rejected.total(),
                reasons.join(", ")
            ));
            if !self.messages.is_empty() {
                s.push_str("; first: ");
                s.push_str(&self.messages.join("; "));
            }
        }
        s
    }

    pub(crate) fn reject(&mut self, e: &AppendError) {
        self.rejected.add(e);
        if self.messages.len() < Self::MAX_MESSAGES {
            self.messages.push(e.to_string());
        }
    }
}

/// Appends a validated batch through one appender and commits it.
///
/// Guarantees: when this returns `Ok`, every counted sample is durable;
/// samples refused individually (too old, duplicate, ...) are counted and
/// the rest kept. When it returns `Err`, nothing was committed.
pub fn apply(batch: &Batch, db: &dyn Appendable) -> Result<WriteOutcome, RemoteWriteError> {
    apply_learning(batch, db).map(|(out, _)| out)
}

/// [`apply`] for a batch decoded with [`super::decode_cached`]: afterwards
/// the cache remembers the storage refs learned for its series, so the next
/// request carrying them skips the storage's label lookup. Same guarantees
/// as [`apply`].
pub fn apply_cached(
    batch: &Batch,
    db: &dyn Appendable,
    cache: &SeriesCache,
) -> Result<WriteOutcome, RemoteWriteError> {
    let (out, learned) = apply_learning(batch, db)?;
    cache.learn(batch, learned);
    Ok(out)
}

/// [`apply`], also returning the refs storage handed out for cached series
/// (index in `batch.series`, ref).
pub(crate) fn apply_learning(
    batch: &Batch,
    db: &dyn Appendable,
) -> Result<(WriteOutcome, Vec<(usize, SeriesRef)>), RemoteWriteError> {
    let mut app = db.appender();
    app.reserve(batch.float_samples());
    let mut out = WriteOutcome::default();
    let mut learned = Vec::new();
    out.rejected.unsupported = batch.unsupported;
    for (i, s) in batch.series.iter().enumerate() {
        if let Some(ct) = s.created_zero {
            // Errors ignored on purpose: the zero is a hint, not data.
            if let Some((_, h)) = s.histograms.first() {
                let zero = HistogramSample {
                    upper_bounds: h.upper_bounds.clone(),
                    bucket_counts: vec![0.0; h.bucket_counts.len()],
                    sum: 0.0,
                    count: 0.0,
                };
                let _ = app.append_histogram(&s.labels, ct, &zero);
            } else {
                let _ = app.append(&s.labels, ct, 0.0);
            }
        }
        if s.hint.cached.is_some() {
            let mut fresh: Option<SeriesRef> = None;
            for smp in &s.samples {
                let r = fresh.as_ref().or(s.hint.current.as_ref());
                match app.append_ref(r, &s.labels, smp.t, smp.v) {
                    Ok(Some(new)) => {
                        fresh = Some(new);
                        out.samples_written += 1;
                    }
                    Ok(None) => out.samples_written += 1,
                    Err(e) => out.reject(&e),
                }
            }
            if let Some(r) = fresh {
                learned.push((i, r));
            }
        } else {
            for smp in &s.samples {
                match app.append(&s.labels, smp.t, smp.v) {
                    Ok(()) => out.samples_written += 1,
                    Err(e) => out.reject(&e),
                }
            }
        }
        for (t, h) in &s.histograms {
            match app.append_histogram(&s.labels, *t, h) {
                Ok(()) => out.histograms_written += 1,
                Err(e) => out.reject(&e),
            }
        }
    }
    if batch.series.is_empty() {
        // Nothing to make durable.
        app.rollback();
        return Ok((out, learned));
    }
    out.commit = app.commit()?;
    Ok((out, learned))
}
