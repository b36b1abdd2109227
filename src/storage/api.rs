//! The storage seam: traits and plain data types shared by storage and its users.

use std::sync::Arc;

use crate::model::{HistogramSample, Labels, Matcher};

/// Why a single sample was not accepted. The caller decides whether this
/// fails the request (a rejected request writes nothing) or is counted and
/// reported while the rest is kept.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum AppendError {
    /// Older than the out-of-order window allows.
    #[error("sample for {series} at {t} ms is too old: out-of-order window starts at {min_t} ms")]
    TooOld {
        /// The series, printed.
        series: String,
        /// Sample timestamp (ms).
        t: i64,
        /// Oldest acceptable timestamp (ms).
        min_t: i64,
    },
    /// Same timestamp as an existing sample but a different value.
    #[error("duplicate sample for {series} at {t} ms with a different value")]
    DuplicateTimestamp {
        /// The series, printed.
        series: String,
        /// Sample timestamp (ms).
        t: i64,
    },
    /// The label set is not acceptable (empty, bad name, ...).
    #[error("invalid series {series}: {reason}")]
    InvalidSeries {
        /// The series, printed.
        series: String,
        /// What is wrong.
        reason: String,
    },
    /// A float sample for a histogram series or the reverse.
    #[error("series {series} is a {existing}, cannot append a {attempted} sample")]
    KindMismatch {
        /// The series, printed.
        series: String,
        /// Kind stored.
        existing: &'static str,
        /// Kind attempted.
        attempted: &'static str,
    },
}

/// Storage-level failures (I/O, corruption, closed database).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O operation on a named path failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done ("write WAL segment", "fsync", ...).
        op: &'static str,
        /// File or directory involved.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file failed validation (magic, version, checksum, bounds).
    #[error("corrupt {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// Byte offset of the problem.
        offset: u64,
        /// What did not hold.
        reason: String,
    },
    /// A query exceeded a configured limit.
    #[error("query limit exceeded: {0}")]
    LimitExceeded(String),
    /// The database is shutting down or closed.
    #[error("storage is closed")]
    Closed,
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

/// An opaque handle to one series of one storage, handed out by
/// [`Appender::append_ref`] so a caller that sees the same series again
/// (remote write senders resend every series each interval) can skip the
/// label lookup. Holding one keeps a little of the series' memory alive.
#[derive(Clone)]
pub struct SeriesRef {
    /// The storage's own series object (downcast by the storage).
    pub(crate) series: Arc<dyn std::any::Any + Send + Sync>,
    /// Which storage instance handed it out: a ref kept across a reopen
    /// must not resolve into the new instance. Kept inline (not behind the
    /// `Arc`) so checking a ref reads no extra memory.
    pub(crate) owner: u64,
}

impl std::fmt::Debug for SeriesRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeriesRef(..)")
    }
}

/// What a commit made durable.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    /// Float samples written.
    pub float_samples: u64,
    /// Histogram samples written.
    pub histogram_samples: u64,
    /// Series created by this commit.
    pub new_series: u64,
}

/// A batch of writes. Nothing is visible or durable until [`Appender::commit`]
/// returns Ok; after that every sample survives a crash (kill -9).
pub trait Appender: Send {
    /// Buffers one float sample. Errors reject only this sample.
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError>;
    /// Buffers one histogram sample for the histogram series `labels` (whose
    /// `__name__` is the family name, without `_bucket`).
    fn append_histogram(
        &mut self,
        labels: &Labels,
        t: i64,
        h: &HistogramSample,
    ) -> Result<(), AppendError>;
    /// [`Appender::append`] with a series hint: `hint` is a ref this
    /// storage returned earlier for the same `labels`, letting it skip the
    /// label lookup. A missing, stale (series since removed) or foreign
    /// (another storage's) hint is detected and the labels are looked up as
    /// usual. Returns a ref to remember for next time when `hint` was not
    /// usable, `None` when it was or when the storage has no refs (the
    /// default). Errors and guarantees are those of `append`.
    fn append_ref(
        &mut self,
        hint: Option<&SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<Option<SeriesRef>, AppendError> {
        let _ = hint;
        self.append(labels, t, v).map(|()| None)
    }
    /// A hint that about `samples` more samples will be appended, so the
    /// batch can size its buffers once. The default does nothing.
    fn reserve(&mut self, samples: usize) {
        let _ = samples;
    }
    /// Makes the batch durable (WAL fsync per the configured policy) and visible.
    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError>;
    /// Drops the batch; nothing of it is written.
    fn rollback(self: Box<Self>);
}

/// Something that hands out appenders.
pub trait Appendable: Send + Sync {
    /// A new, empty batch.
    fn appender(&self) -> Box<dyn Appender + '_>;
}

/// Bounds and hints for a read. Times are inclusive milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectHints {
    /// Earliest timestamp wanted (inclusive).
    pub min_t: i64,
    /// Latest timestamp wanted (inclusive).
    pub max_t: i64,
    /// Only labels are needed (series API); samples may be left empty.
    pub labels_only: bool,
    /// Leave out the `_bucket`/`_sum`/`_count` views of histogram series
    /// (the caller reads them through `select_histograms` instead).
    pub skip_histogram_views: bool,
}

impl SelectHints {
    /// Samples in `[min_t, max_t]`, all views.
    pub fn range(min_t: i64, max_t: i64) -> Self {
        SelectHints {
            min_t,
            max_t,
            labels_only: false,
            skip_histogram_views: false,
        }
    }
}

/// One float series with its samples in `[min_t, max_t]`, in time order,
/// as two parallel columns. Stale markers are included as the stale NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels (for a histogram view, including `le`).
    pub labels: Labels,
    /// Timestamps (ms), strictly increasing.
    pub timestamps: Vec<i64>,
    /// Values, same length as `timestamps`.
    pub values: Vec<f64>,
}

/// One histogram series read as columns. `labels` are those of the
/// `_bucket` view without `le` (so `__name__` is `<family>_bucket`).
/// `buckets[i][j]` is the cumulative count of bound `i` (the last being
/// `+Inf`) at `timestamps[j]`. If the bounds changed inside the range,
/// storage returns the series once per run of constant bounds; callers that
/// need one entry per label set fall back to `select`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries {
    /// `_bucket` labels without `le`.
    pub labels: Labels,
    /// Finite upper bounds, ascending (`+Inf` implicit).
    pub upper_bounds: Arc<[f64]>,
    /// Timestamps (ms), strictly increasing.
    pub timestamps: Vec<i64>,
    /// One column per bucket (finite bounds then `+Inf`).
    pub buckets: Vec<Vec<f64>>,
    /// Sum column.
    pub sum: Vec<f64>,
    /// Count column.
    pub count: Vec<f64>,
}

/// The read side. Implementations give a consistent view per call.
pub trait Querier: Send + Sync {
    /// Series matching all `matchers`, sorted by labels, with samples in the
    /// hinted range. Series with no sample in range are left out unless
    /// `labels_only` is set (then series whose data overlaps the range).
    fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError>;

    /// Streams the series `select` would return to `visit`, one at a time,
    /// without materialising them all: the read behind aggregations over
    /// long ranges, where holding every decoded sample costs more than
    /// computing on it.
    ///
    /// Guarantees: `visit(worker, series)` sees exactly the series and
    /// samples of `select(hints, matchers)`, each once; `worker` is in
    /// `0..workers.max(1)`; each worker's calls are sequential and receive a
    /// contiguous run of the sorted order, in order, and every series of
    /// worker `w` sorts before every series of worker `w + 1` (so per-worker
    /// results merged in worker order are in label order, whatever the
    /// scheduling). Implementations may call `visit` from several threads at
    /// once (different workers) and may reuse the `Series` buffers between
    /// calls. This default reads through `select` on the calling thread.
    fn select_visit(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
        workers: usize,
        visit: &(dyn Fn(usize, &Series) + Sync),
    ) -> Result<(), StorageError> {
        let _ = workers;
        for s in self.select(hints, matchers)? {
            visit(0, &s);
        }
        Ok(())
    }

    /// Histogram-typed series whose `_bucket` view (ignoring `le`) matches
    /// `matchers`. Classic float `le` series are not included.
    fn select_histograms(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<HistogramSeries>, StorageError>;

    /// Sorted label names of series matching `matchers` (all series when empty)
    /// with data in the range.
    fn label_names(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError>;

    /// Sorted values of label `name` over matching series with data in range.
    fn label_values(
        &self,
        name: &str,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError>;
}
