//! Test double of the storage seam: a recording `Appendable` that keeps
//! committed samples in memory. It enforces the one storage rule the StatsD
//! door must respect (timestamps strictly increase per series), so a flush
//! that writes a duplicate or out-of-order sample fails the test.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use watchpost::model::{HistogramSample, Labels};
use watchpost::storage::{AppendError, Appendable, Appender, CommitSummary, StorageError};

/// One committed sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Rec {
    /// A float sample.
    Float { labels: Labels, t: i64, v: f64 },
    /// A histogram sample.
    Hist {
        labels: Labels,
        t: i64,
        h: HistogramSample,
    },
}

impl Rec {
    pub fn labels(&self) -> &Labels {
        match self {
            Rec::Float { labels, .. } | Rec::Hist { labels, .. } => labels,
        }
    }
    pub fn t(&self) -> i64 {
        match self {
            Rec::Float { t, .. } | Rec::Hist { t, .. } => *t,
        }
    }
    /// `name{a="b",c="d"}`, the form the vectors are written in.
    pub fn id(&self) -> String {
        series_id(self.labels())
    }
}

/// `name{a="b",c="d"}` without spaces.
pub fn series_id(l: &Labels) -> String {
    l.to_string().replace("\", ", "\",")
}

/// The recording store (test double of the real `Db`).
#[derive(Default, Debug)]
pub struct RecordingStore {
    committed: Mutex<Vec<Rec>>,
    last_t: Mutex<HashMap<Labels, i64>>,
    pub commits: AtomicUsize,
}

impl RecordingStore {
    pub fn records(&self) -> Vec<Rec> {
        self.committed.lock().clone()
    }
    /// Committed records excluding the door's own `statsd_*` self-metrics.
    pub fn user_records(&self) -> Vec<Rec> {
        self.records()
            .into_iter()
            .filter(|r| {
                !r.labels()
                    .metric_name()
                    .unwrap_or("")
                    .starts_with("statsd_")
            })
            .collect()
    }
    pub fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }
}

struct RecAppender<'a> {
    store: &'a RecordingStore,
    buf: Vec<Rec>,
}

impl RecAppender<'_> {
    fn check(&self, labels: &Labels, t: i64) -> Result<(), AppendError> {
        let last = self.store.last_t.lock().get(labels).copied();
        let pending = self
            .buf
            .iter()
            .filter(|r| r.labels() == labels)
            .map(Rec::t)
            .max();
        if let Some(prev) = last.max(pending)
            && t <= prev
        {
            return Err(AppendError::TooOld {
                series: labels.to_string(),
                t,
                min_t: prev + 1,
            });
        }
        Ok(())
    }
}

impl Appender for RecAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        self.check(labels, t)?;
        self.buf.push(Rec::Float {
            labels: labels.clone(),
            t,
            v,
        });
        Ok(())
    }
    fn append_histogram(
        &mut self,
        labels: &Labels,
        t: i64,
        h: &HistogramSample,
    ) -> Result<(), AppendError> {
        self.check(labels, t)?;
        if h.bucket_counts.len() != h.upper_bounds.len() + 1 {
            return Err(AppendError::InvalidSeries {
                series: labels.to_string(),
                reason: "bucket count does not match bounds".into(),
            });
        }
        self.buf.push(Rec::Hist {
            labels: labels.clone(),
            t,
            h: h.clone(),
        });
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError> {
        let mut last = self.store.last_t.lock();
        let mut s = CommitSummary::default();
        for r in &self.buf {
            last.insert(r.labels().clone(), r.t());
            match r {
                Rec::Float { .. } => s.float_samples += 1,
                Rec::Hist { .. } => s.histogram_samples += 1,
            }
        }
        self.store.committed.lock().extend(self.buf);
        self.store.commits.fetch_add(1, Ordering::SeqCst);
        Ok(s)
    }
    fn rollback(self: Box<Self>) {}
}

impl Appendable for RecordingStore {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(RecAppender {
            store: self,
            buf: Vec::new(),
        })
    }
}

/// Polls `f` every 5 ms until it is true or `secs` pass.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    f()
}
