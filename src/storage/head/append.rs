//! The append path: an appender buffers samples against resolved series;
//! `commit` writes them to the WAL (durable per the sync policy) and only
//! then applies them to memory, so nothing is visible before it is durable.

use std::collections::HashMap;
use std::sync::Arc;

use super::column::Placed;
use super::series::{MemSeries, SeriesData};
use super::{Head, inc};
use crate::model::{HistogramSample, Labels};
use crate::storage::api::{AppendError, Appender, CommitSummary, SeriesRef, StorageError};
use crate::storage::wal::{
    BoundsRecord, HistogramRecord, Record, SeriesKind, TYPE_FLOATS, encode_float_batch,
    frame_record, frame_with,
};

/// Samples per WAL record: keeps each record far below the frame size
/// limit (a float sample encodes to at most 28 bytes) while amortising the
/// frame header.
const SAMPLES_PER_RECORD: usize = 10_000;

/// A batch of writes to the head.
pub(crate) struct HeadAppender<'a> {
    head: &'a Head,
    floats: Vec<(Arc<MemSeries>, i64, f64)>,
    hists: Vec<(Arc<MemSeries>, i64, HistogramSample)>,
    /// Earliest time buffered (`i64::MAX` when nothing is): `commit` looks
    /// for samples behind a block cut only when this is behind it.
    min_t: i64,
    created: u64,
}

impl<'a> HeadAppender<'a> {
    pub(crate) fn new(head: &'a Head) -> Self {
        HeadAppender {
            head,
            floats: Vec::new(),
            hists: Vec::new(),
            min_t: i64::MAX,
            created: 0,
        }
    }

    /// Rejects `t` if it is older than the head's appendable window (the
    /// cheap check, before the series is looked up).
    fn check_time(&self, labels: &Labels, t: i64) -> Result<(), AppendError> {
        self.check_floor(labels, t, self.head.min_valid_t())
    }

    /// Rejects `t` for a series whose last sample is at `last_t` or later
    /// (out of order) if it is older than the out-of-order window.
    fn check_ooo(&self, labels: &Labels, t: i64, last_t: Option<i64>) -> Result<(), AppendError> {
        match last_t {
            Some(lt) if t < lt => self.check_floor(labels, t, self.head.min_ooo_t()),
            _ => Ok(()),
        }
    }

    #[inline]
    fn check_floor(&self, labels: &Labels, t: i64, min_t: i64) -> Result<(), AppendError> {
        if t < min_t {
            return Err(self.too_old(labels, t, min_t));
        }
        Ok(())
    }

    #[cold]
    fn too_old(&self, labels: &Labels, t: i64, min_t: i64) -> AppendError {
        inc(&self.head.counters.too_old, 1);
        AppendError::TooOld {
            series: labels.to_string(),
            t,
            min_t,
        }
    }

    #[cold]
    fn duplicate(&self, labels: &Labels, t: i64) -> AppendError {
        inc(&self.head.counters.duplicates, 1);
        AppendError::DuplicateTimestamp {
            series: labels.to_string(),
            t,
        }
    }

    /// Buffers a float sample for a resolved series after the duplicate
    /// check (same timestamp as the last or an out-of-order sample, other
    /// value) and the out-of-order window check.
    #[inline(always)]
    fn push_float(
        &mut self,
        s: Arc<MemSeries>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<(), AppendError> {
        // Nearly every sample is later than everything its series holds:
        // then neither check can fail and the series' lock is not needed.
        if !s.float_in_order(t) {
            self.check_float_locked(&s, labels, t, v)?;
        }
        self.min_t = self.min_t.min(t);
        self.floats.push((s, t, v));
        Ok(())
    }

    /// The checks of [`HeadAppender::push_float`] against the series'
    /// data, under its lock (kept out of line: the hot path skips them).
    #[inline(never)]
    fn check_float_locked(
        &self,
        s: &MemSeries,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<(), AppendError> {
        let d = s.data.lock();
        let last = d.last();
        self.check_ooo(labels, t, last.map(|(lt, _)| lt))?;
        let dup_last = last.is_some_and(|(lt, lv)| lt == t && lv.to_bits() != v.to_bits());
        let dup_ooo = d
            .ooo_value_at(t)
            .is_some_and(|o| o.to_bits() != v.to_bits());
        if dup_last || dup_ooo {
            return Err(self.duplicate(labels, t));
        }
        Ok(())
    }

    /// [`Appender::append_ref`] without a usable hint: resolves the labels
    /// and hands out a ref for them.
    #[inline(never)]
    fn append_resolving(
        &mut self,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<Option<SeriesRef>, AppendError> {
        let (s, created) = self.head.get_or_create(labels, SeriesKind::Float)?;
        self.created += u64::from(created);
        let r = SeriesRef {
            series: s.clone(),
            owner: self.head.id,
        };
        self.push_float(s, labels, t, v)?;
        Ok(Some(r))
    }

    /// Replaces a series that garbage collection removed since it was
    /// resolved (caller holds the GC lock shared).
    #[inline]
    fn reresolve(&self, s: &mut Arc<MemSeries>) -> Result<(), StorageError> {
        if s.is_deleted() {
            self.recreate(s)?;
        }
        Ok(())
    }

    #[cold]
    fn recreate(&self, s: &mut Arc<MemSeries>) -> Result<(), StorageError> {
        let labels = s.labels.clone();
        let (n, _) = self
            .head
            .get_or_create(&labels, s.kind)
            .map_err(|e| StorageError::Other(format!("cannot re-create series: {e}")))?;
        *s = n;
        Ok(())
    }
}

/// Encodes the float samples as WAL float records of at most
/// [`SAMPLES_PER_RECORD`] samples (one record, possibly empty, when they
/// fit: the bytes a commit has always written).
fn encode_floats(buf: &mut Vec<u8>, floats: &[(Arc<MemSeries>, i64, f64)]) {
    let item = |f: &(Arc<MemSeries>, i64, f64)| (f.0.series_ref, f.1, f.2);
    if floats.len() <= SAMPLES_PER_RECORD {
        frame_with(buf, TYPE_FLOATS, |b| encode_float_batch(b, floats, item));
        return;
    }
    for chunk in floats.chunks(SAMPLES_PER_RECORD) {
        frame_with(buf, TYPE_FLOATS, |b| encode_float_batch(b, chunk, item));
    }
}

/// Encodes histogram samples, writing a bounds record before the first
/// sample of a series whose bounds differ from those last logged. Returns
/// the bounds logged per series (to record after a successful write).
fn encode_histograms(
    buf: &mut Vec<u8>,
    hists: &[(Arc<MemSeries>, i64, HistogramSample)],
) -> HashMap<u64, (Arc<MemSeries>, Arc<[f64]>)> {
    let mut logged: HashMap<u64, (Arc<MemSeries>, Arc<[f64]>)> = HashMap::new();
    let mut batch: Vec<HistogramRecord> = Vec::new();
    for (s, t, h) in hists {
        let current = match logged.get(&s.series_ref) {
            Some((_, b)) => Some(b.clone()),
            None => match &*s.data.lock() {
                SeriesData::Histogram { logged_bounds, .. } => logged_bounds.clone(),
                SeriesData::Float(_) => None,
            },
        };
        if current.as_deref() != Some(&h.upper_bounds[..]) {
            if !batch.is_empty() {
                frame_record(buf, &Record::Histograms(std::mem::take(&mut batch)));
            }
            frame_record(
                buf,
                &Record::Bounds(vec![BoundsRecord {
                    series_ref: s.series_ref,
                    bounds: h.upper_bounds.clone(),
                }]),
            );
            logged.insert(s.series_ref, (s.clone(), h.upper_bounds.clone()));
        }
        batch.push(HistogramRecord {
            series_ref: s.series_ref,
            t: *t,
            buckets: h.bucket_counts.clone(),
            sum: h.sum,
            count: h.count,
        });
        if batch.len() >= SAMPLES_PER_RECORD / 10 {
            frame_record(buf, &Record::Histograms(std::mem::take(&mut batch)));
        }
    }
    if !batch.is_empty() {
        frame_record(buf, &Record::Histograms(batch));
    }
    logged
}

impl Appender for HeadAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        self.check_time(labels, t)?;
        let (s, created) = self.head.get_or_create(labels, SeriesKind::Float)?;
        self.created += u64::from(created);
        self.push_float(s, labels, t, v)
    }

    fn append_ref(
        &mut self,
        hint: Option<&SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<Option<SeriesRef>, AppendError> {
        self.check_time(labels, t)?;
        // A usable hint: this head's float series, not removed since. Its
        // labels are the caller's (the `append_ref` contract), so no lookup.
        // (A ref's `series` is the head's `MemSeries` itself and `owner`
        // the head's id: a ref kept across a reopen does not resolve into
        // the new head.)
        if let Some(h) = hint
            && h.owner == self.head.id
            && let Ok(s) = Arc::downcast::<MemSeries>(h.series.clone())
            && s.kind == SeriesKind::Float
            && !s.is_deleted()
        {
            self.push_float(s, labels, t, v)?;
            return Ok(None);
        }
        self.append_resolving(labels, t, v)
    }

    fn reserve(&mut self, samples: usize) {
        self.floats.reserve(samples);
    }

    fn append_histogram(
        &mut self,
        labels: &Labels,
        t: i64,
        h: &HistogramSample,
    ) -> Result<(), AppendError> {
        let bounds_ok = h.upper_bounds.iter().all(|b| b.is_finite())
            && h.upper_bounds.windows(2).all(|w| w[0] < w[1]);
        if !bounds_ok || h.bucket_counts.len() != h.upper_bounds.len() + 1 {
            inc(&self.head.counters.invalid, 1);
            return Err(AppendError::InvalidSeries {
                series: labels.to_string(),
                reason: format!(
                    "histogram needs finite ascending bounds and one count per bound plus +Inf: got {} bounds, {} counts",
                    h.upper_bounds.len(),
                    h.bucket_counts.len()
                ),
            });
        }
        self.check_time(labels, t)?;
        let (s, created) = self.head.get_or_create(labels, SeriesKind::Histogram)?;
        self.created += u64::from(created);
        {
            let d = s.data.lock();
            self.check_ooo(labels, t, d.last().map(|(lt, _)| lt))?;
            if !d.histogram_ooo_ok(t, &h.upper_bounds) {
                inc(&self.head.counters.invalid, 1);
                return Err(AppendError::InvalidSeries {
                    series: labels.to_string(),
                    reason: format!(
                        "out-of-order histogram sample at {t} ms has bucket bounds different from the current ones"
                    ),
                });
            }
        }
        self.min_t = self.min_t.min(t);
        self.hists.push((s, t, h.clone()));
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<CommitSummary, StorageError> {
        let head = self.head;
        let wal = head.wal().ok_or(StorageError::Closed)?.clone();
        let _shared = head.gc_lock.read();
        // Samples that fell behind a block cut made after they were
        // appended: the cut already persisted that range.
        let boundary = head.boundary();
        let mut late = 0;
        if self.min_t < boundary {
            let before = self.floats.len() + self.hists.len();
            self.floats.retain(|(_, t, _)| *t >= boundary);
            self.hists.retain(|(_, t, _)| *t >= boundary);
            late = (before - self.floats.len() - self.hists.len()) as u64;
        }
        inc(&head.counters.too_old, late);
        let mut floats = std::mem::take(&mut self.floats);
        let mut hists = std::mem::take(&mut self.hists);
        // Re-resolving may create series, which logs to the WAL: done
        // before the WAL lock is taken for the records.
        for (s, _, _) in floats.iter_mut() {
            self.reresolve(s)?;
        }
        for (s, _, _) in hists.iter_mut() {
            self.reresolve(s)?;
        }
        wal.commit_with(
            |buf| {
                encode_floats(buf, &floats);
                encode_histograms(buf, &hists)
            },
            |logged| {
                for (s, b) in logged.values() {
                    if let SeriesData::Histogram { logged_bounds, .. } = &mut *s.data.lock() {
                        *logged_bounds = Some(b.clone());
                    }
                }
            },
        )?;
        let mut ooo = 0;
        let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
        for (s, t, v) in &floats {
            if s.append_float(*t, *v) == Placed::OutOfOrder {
                ooo += 1;
            }
            min_t = min_t.min(*t);
            max_t = max_t.max(*t);
        }
        for (s, t, h) in &hists {
            if s.data.lock().append_histogram(*t, h) == Placed::OutOfOrder {
                ooo += 1;
            }
            min_t = min_t.min(*t);
            max_t = max_t.max(*t);
        }
        if min_t <= max_t {
            head.observe_t(min_t);
            head.observe_t(max_t);
        }
        inc(&head.counters.out_of_order, ooo);
        inc(&head.counters.float_samples, floats.len() as u64);
        inc(&head.counters.histogram_samples, hists.len() as u64);
        Ok(CommitSummary {
            float_samples: floats.len() as u64,
            histogram_samples: hists.len() as u64,
            new_series: self.created,
        })
    }

    fn rollback(self: Box<Self>) {
        // Series created by this batch stay (empty) until the next
        // truncation removes them; their WAL records are harmless.
    }
}

#[cfg(test)]
mod tests {
    use super::HeadAppender;
    use crate::model::{Labels, METRIC_NAME};
    use crate::storage::api::{AppendError, Appender, SeriesRef};
    use crate::storage::head::Head;

    fn open(dir: &std::path::Path) -> Head {
        crate::storage::head::tests::open(dir, 600_000)
    }

    fn samples(head: &Head, labels: &Labels) -> Vec<(i64, f64)> {
        let (s, _) = head
            .get_or_create(labels, crate::storage::wal::SeriesKind::Float)
            .unwrap();
        let d = s.data.lock();
        let super::SeriesData::Float(c) = &*d else {
            panic!("not a float series")
        };
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        c.collect(i64::MIN, i64::MAX, &mut ts, &mut vs);
        ts.into_iter().zip(vs).collect()
    }

    /// The lock-free in-order check (the series' last-time bound) gives
    /// the same answers as the locked checks: duplicates with another value
    /// and out-of-order duplicates are rejected through a hint, equal
    /// resends are accepted, and after a WAL replay the bound is rebuilt.
    #[test]
    fn hinted_appends_keep_duplicate_and_order_rules() {
        let dir = tempfile::tempdir().unwrap();
        let up = Labels::from_pairs([(METRIC_NAME, "up"), ("job", "a")]);
        let r: SeriesRef;
        {
            let head = open(dir.path());
            let mut a: Box<dyn Appender> = Box::new(HeadAppender::new(&head));
            r = a.append_ref(None, &up, 1000, 1.0).unwrap().unwrap();
            for t in [2000, 3000, 5000] {
                assert!(a.append_ref(Some(&r), &up, t, t as f64).unwrap().is_none());
            }
            a.commit().unwrap();

            let mut a: Box<dyn Appender> = Box::new(HeadAppender::new(&head));
            let dup = a.append_ref(Some(&r), &up, 5000, 7.0).unwrap_err();
            assert!(matches!(
                dup,
                AppendError::DuplicateTimestamp { t: 5000, .. }
            ));
            // Same value again: accepted (a no-op).
            a.append_ref(Some(&r), &up, 5000, 5000.0).unwrap();
            // Out of order inside the window: accepted.
            a.append_ref(Some(&r), &up, 4000, 4.0).unwrap();
            a.commit().unwrap();

            let mut a: Box<dyn Appender> = Box::new(HeadAppender::new(&head));
            let dup = a.append_ref(Some(&r), &up, 4000, 9.0).unwrap_err();
            assert!(matches!(
                dup,
                AppendError::DuplicateTimestamp { t: 4000, .. }
            ));
            a.append_ref(Some(&r), &up, 6000, 6.0).unwrap();
            a.commit().unwrap();
            assert_eq!(
                samples(&head, &up),
                vec![
                    (1000, 1.0),
                    (2000, 2000.0),
                    (3000, 3000.0),
                    (4000, 4.0),
                    (5000, 5000.0),
                    (6000, 6.0)
                ]
            );
        }
        // After a replay the series (a new object) knows its last time:
        // the duplicate is still caught without a hint.
        let head = open(dir.path());
        let mut a: Box<dyn Appender> = Box::new(HeadAppender::new(&head));
        let dup = a.append_ref(None, &up, 6000, 1.0).unwrap_err();
        assert!(matches!(
            dup,
            AppendError::DuplicateTimestamp { t: 6000, .. }
        ));
        // The old head's ref does not resolve into the new head.
        assert!(a.append_ref(Some(&r), &up, 7000, 7.0).unwrap().is_some());
        a.commit().unwrap();
        assert_eq!(samples(&head, &up).last(), Some(&(7000, 7.0)));
    }
}
