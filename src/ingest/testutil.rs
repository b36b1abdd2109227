//! A recording test double of [`Appendable`] shared by the ingest tests.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::model::{HistogramSample, Labels};
use crate::storage::{AppendError, Appendable, Appender, CommitSummary, StorageError};

/// One committed write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rec {
    Float(Labels, i64, f64),
    Hist(Labels, i64, HistogramSample),
}

impl Rec {
    pub(crate) fn labels(&self) -> &Labels {
        match self {
            Rec::Float(l, ..) | Rec::Hist(l, ..) => l,
        }
    }
}

/// Keeps committed writes in order. Rejects samples older than `min_t`
/// with `TooOld`, a different value at an existing timestamp with
/// `DuplicateTimestamp`, and float/histogram mixes with `KindMismatch`.
#[derive(Debug, Default)]
pub(crate) struct RecordingDb {
    pub(crate) committed: Mutex<Vec<Rec>>,
    pub(crate) min_t: i64,
    pub(crate) fail_commit: bool,
    pub(crate) commits: Mutex<u64>,
}

impl RecordingDb {
    pub(crate) fn new() -> Self {
        RecordingDb {
            min_t: i64::MIN,
            ..Default::default()
        }
    }
    pub(crate) fn with_min_t(min_t: i64) -> Self {
        RecordingDb {
            min_t,
            ..Default::default()
        }
    }
    pub(crate) fn recs(&self) -> Vec<Rec> {
        self.committed.lock().clone()
    }
    /// Float (t, v) pairs of the series printed as `printed`.
    pub(crate) fn floats(&self, printed: &str) -> Vec<(i64, f64)> {
        self.recs()
            .iter()
            .filter_map(|r| match r {
                Rec::Float(l, t, v) if l.to_string() == printed => Some((*t, *v)),
                _ => None,
            })
            .collect()
    }
    pub(crate) fn hists(&self, printed: &str) -> Vec<(i64, HistogramSample)> {
        self.recs()
            .iter()
            .filter_map(|r| match r {
                Rec::Hist(l, t, h) if l.to_string() == printed => Some((*t, h.clone())),
                _ => None,
            })
            .collect()
    }
}

struct RecApp<'a> {
    db: &'a RecordingDb,
    buf: Vec<Rec>,
}

impl RecApp<'_> {
    fn check(
        &self,
        labels: &Labels,
        t: i64,
        float: bool,
        same: &dyn Fn(&Rec) -> bool,
    ) -> Result<(), AppendError> {
        if t < self.db.min_t {
            return Err(AppendError::TooOld {
                series: labels.to_string(),
                t,
                min_t: self.db.min_t,
            });
        }
        let committed = self.db.committed.lock();
        let mut kinds: HashMap<bool, ()> = HashMap::new();
        for r in committed.iter().chain(self.buf.iter()) {
            if r.labels() != labels {
                continue;
            }
            let (rt, is_float) = match r {
                Rec::Float(_, t, _) => (*t, true),
                Rec::Hist(_, t, _) => (*t, false),
            };
            kinds.insert(is_float, ());
            if rt == t && is_float == float && !same(r) {
                return Err(AppendError::DuplicateTimestamp {
                    series: labels.to_string(),
                    t,
                });
            }
        }
        if kinds.contains_key(&!float) {
            return Err(AppendError::KindMismatch {
                series: labels.to_string(),
                existing: if float { "histogram" } else { "float" },
                attempted: if float { "float" } else { "histogram" },
            });
        }
        Ok(())
    }
}

impl Appender for RecApp<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        self.check(
            labels,
            t,
            true,
            &|r| matches!(r, Rec::Float(_, _, x) if x.to_bits() == v.to_bits()),
        )?;
        self.buf.push(Rec::Float(labels.clone(), t, v));
        Ok(())
    }
    fn append_histogram(
        &mut self,
        labels: &Labels,
        t: i64,
        h: &HistogramSample,
    ) -> Result<(), AppendError> {
        self.check(
            labels,
            t,
            false,
            &|r| matches!(r, Rec::Hist(_, _, x) if x == h),
        )?;
        self.buf.push(Rec::Hist(labels.clone(), t, h.clone()));
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError> {
        if self.db.fail_commit {
            return Err(StorageError::Other("injected commit failure".into()));
        }
        let mut s = CommitSummary::default();
        for r in &self.buf {
            match r {
                Rec::Float(..) => s.float_samples += 1,
                Rec::Hist(..) => s.histogram_samples += 1,
            }
        }
        self.db.committed.lock().extend(self.buf);
        *self.db.commits.lock() += 1;
        Ok(s)
    }
    fn rollback(self: Box<Self>) {}
}

impl Appendable for RecordingDb {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(RecApp {
            db: self,
            buf: Vec::new(),
        })
    }
}
