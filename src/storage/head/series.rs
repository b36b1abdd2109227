//! A head series: identity (ref, interned labels, kind) and its data
//! (one float column, or runs of histogram columns).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use parking_lot::Mutex;

use super::column::{Column, Placed};
use crate::model::{HistogramSample, Labels};
use crate::storage::wal::SeriesKind;

/// A histogram run: constant bounds and one column per bucket (finite
/// bounds then `+Inf`), then the sum column, then the count column.
#[derive(Debug, Clone)]
pub(crate) struct HistRun {
    pub(crate) bounds: Arc<[f64]>,
    /// `bounds.len() + 3` columns: buckets, sum, count.
    pub(crate) cols: Vec<Column>,
}

impl HistRun {
    fn new(bounds: Arc<[f64]>) -> Self {
        let n = bounds.len() + 3;
        HistRun {
            bounds,
            cols: vec![Column::default(); n],
        }
    }

    /// The timestamp column (all columns share timestamps; the count column
    /// is used).
    pub(crate) fn time_col(&self) -> &Column {
        self.cols
            .last()
            .unwrap_or_else(|| unreachable!("bug: histogram run without columns"))
    }

    fn append(&mut self, t: i64, h: &HistogramSample) -> Placed {
        let mut placed = Placed::Duplicate;
        let vals = h.bucket_counts.iter().copied().chain([h.sum, h.count]);
        for (c, v) in self.cols.iter_mut().zip(vals) {
            match c.append(t, v) {
                Placed::Duplicate => {}
                p => placed = p,
            }
        }
        placed
    }

    /// Columns of the samples in `[min_t, max_t]`: (timestamps, buckets, sum, count).
    pub(crate) fn collect(
        &self,
        min_t: i64,
        max_t: i64,
    ) -> (Vec<i64>, Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
        let mut ts = Vec::new();
        let mut cols: Vec<Vec<f64>> = Vec::with_capacity(self.cols.len());
        for (i, c) in self.cols.iter().enumerate() {
            let mut t = Vec::new();
            let mut v = Vec::new();
            c.collect(min_t, max_t, &mut t, &mut v);
            if i == 0 {
                ts = t;
            }
            cols.push(v);
        }
        let count = cols.pop().unwrap_or_default();
        let sum = cols.pop().unwrap_or_default();
        (ts, cols, sum, count)
    }
}

/// The samples of a series.
#[derive(Debug)]
pub(crate) enum SeriesData {
    /// A float series.
    Float(Column),
    /// A histogram series: runs of constant bounds, in time order.
    Histogram {
        runs: Vec<HistRun>,
        /// Bounds last written to the WAL for this series (so a bounds
        /// record is written only when they change).
        logged_bounds: Option<Arc<[f64]>>,
    },
}

impl SeriesData {
    /// Empty data of a kind.
    pub(crate) fn new(kind: SeriesKind) -> Self {
        match kind {
            SeriesKind::Float => SeriesData::Float(Column::default()),
            SeriesKind::Histogram => SeriesData::Histogram {
                runs: Vec::new(),
                logged_bounds: None,
            },
        }
    }

    /// Earliest and latest timestamps held.
    pub(crate) fn time_range(&self) -> Option<(i64, i64)> {
        match self {
            SeriesData::Float(c) => c.min_t().zip(c.max_t()),
            SeriesData::Histogram { runs, .. } => {
                let mut r: Option<(i64, i64)> = None;
                for run in runs {
                    let c = run.time_col();
                    if let Some((a, b)) = c.min_t().zip(c.max_t()) {
                        r = Some(r.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
                    }
                }
                r
            }
        }
    }

    /// Adds a float sample (the caller checked the kind). Private: every
    /// float append goes through [`MemSeries::append_float`], which keeps
    /// the series' last-time bound.
    fn append_float(&mut self, t: i64, v: f64) -> Placed {
        match self {
            SeriesData::Float(c) => c.append(t, v),
            SeriesData::Histogram { .. } => {
                unreachable!("bug: float sample applied to histogram series")
            }
        }
    }

    /// Adds a histogram sample: to the last run when the bounds are equal,
    /// else to a new run (the append path rejected out-of-order samples
    /// with changed bounds).
    pub(crate) fn append_histogram(&mut self, t: i64, h: &HistogramSample) -> Placed {
        let SeriesData::Histogram { runs, .. } = self else {
            unreachable!("bug: histogram sample applied to float series")
        };
        let same = runs
            .last()
            .is_some_and(|r| r.bounds[..] == h.upper_bounds[..]);
        if !same {
            runs.push(HistRun::new(h.upper_bounds.clone()));
        }
        match runs.last_mut() {
            Some(r) if r.cols.len() == h.bucket_counts.len() + 2 => r.append(t, h),
            _ => unreachable!("bug: histogram sample shape does not match its bounds"),
        }
    }

    /// Whether a histogram sample at `t` with `bounds` can be placed: in
    /// order with any bounds (new bounds start a new run), out of order only
    /// with the last run's bounds.
    pub(crate) fn histogram_ooo_ok(&self, t: i64, bounds: &[f64]) -> bool {
        match self {
            SeriesData::Histogram { runs, .. } => match runs.last() {
                None => true,
                Some(r) => r.bounds[..] == *bounds || r.time_col().max_t().is_none_or(|m| t > m),
            },
            SeriesData::Float(_) => false,
        }
    }

    /// Last in-order sample time and, for floats, value.
    pub(crate) fn last(&self) -> Option<(i64, f64)> {
        match self {
            SeriesData::Float(c) => c.last(),
            SeriesData::Histogram { runs, .. } => runs.last().and_then(|r| r.time_col().last()),
        }
    }

    /// Out-of-order buffer value at `t` (float series).
    pub(crate) fn ooo_value_at(&self, t: i64) -> Option<f64> {
        match self {
            SeriesData::Float(c) => c.ooo_value_at(t),
            SeriesData::Histogram { .. } => None,
        }
    }

    /// Drops every sample before `t` (and empty histogram runs).
    pub(crate) fn truncate_before(&mut self, t: i64) {
        match self {
            SeriesData::Float(c) => c.truncate_before(t),
            SeriesData::Histogram { runs, .. } => {
                for r in runs.iter_mut() {
                    for c in r.cols.iter_mut() {
                        c.truncate_before(t);
                    }
                }
                let keep_last = runs.len().saturating_sub(1);
                let mut i = 0;
                runs.retain(|r| {
                    let keep = i == keep_last || !r.time_col().is_empty();
                    i += 1;
                    keep
                });
                if runs.len() == 1 && runs[0].time_col().is_empty() {
                    runs.clear();
                }
            }
        }
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            SeriesData::Float(c) => c.heap_bytes(),
            SeriesData::Histogram { runs, .. } => runs
                .iter()
                .map(|r| {
                    r.cols
                        .iter()
                        .map(|c| c.heap_bytes() + std::mem::size_of::<Column>())
                        .sum::<usize>()
                        + r.bounds.len() * 8
                })
                .sum(),
        }
    }
}

/// A series in the head. Its ref and labels never change; its data is
/// behind a mutex (one lock per series keeps appenders on different series
/// from contending).
#[derive(Debug)]
pub(crate) struct MemSeries {
    pub(crate) series_ref: u64,
    pub(crate) labels: Labels,
    pub(crate) kind: SeriesKind,
    /// Set (under the head's GC lock) when garbage collection removed the
    /// series; an appender still holding it re-resolves its labels.
    deleted: AtomicBool,
    /// An upper bound of the time of the last in-order float sample
    /// (`i64::MIN` while there is none), readable without the data lock:
    /// set to the sample's time under the lock by every in-order float
    /// append ([`MemSeries::append_float`] is the only float append), and
    /// never raised otherwise (truncation and out-of-order merges only
    /// lower or keep the real last time). Every out-of-order buffer entry
    /// is at or before the last in-order time, so a float sample later
    /// than the bound is in order, neither a duplicate nor too old for
    /// the out-of-order window: the append path accepts it without
    /// locking (see `HeadAppender::push_float`).
    last_t_bound: AtomicI64,
    pub(crate) data: Mutex<SeriesData>,
}

impl MemSeries {
    pub(crate) fn new(series_ref: u64, labels: Labels, kind: SeriesKind) -> Self {
        MemSeries {
            series_ref,
            labels,
            kind,
            deleted: AtomicBool::new(false),
            last_t_bound: AtomicI64::new(i64::MIN),
            data: Mutex::new(SeriesData::new(kind)),
        }
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    /// True when a float sample at `t` is later than every float sample
    /// the series holds (see `last_t_bound`); false means "unknown, look".
    #[inline]
    pub(crate) fn float_in_order(&self, t: i64) -> bool {
        t > self.last_t_bound.load(Ordering::Acquire)
    }

    /// Adds a float sample (the series is a float series), taking the data
    /// lock; keeps the bound behind [`MemSeries::float_in_order`].
    pub(crate) fn append_float(&self, t: i64, v: f64) -> Placed {
        let mut d = self.data.lock();
        let placed = d.append_float(t, v);
        if placed == Placed::InOrder {
            // `t` is now the last in-order time; stored while the lock is
            // held, so bounds are stored in the order of the appends.
            self.last_t_bound.store(t, Ordering::Release);
        }
        placed
    }
}
