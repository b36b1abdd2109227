//! The `Db` facade: opens a data directory (lock file, blocks, WAL replay
//! into the head), hands out appenders, answers queries over blocks + head,
//! cuts the head into blocks, checkpoints the WAL, compacts, applies
//! retention, takes snapshots and closes cleanly.
//!
//! Directory layout and lifecycle: storage-format.md sections 1 and 2.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::model::{Clock, Matcher, SystemClock};
use crate::storage::api::{
    Appendable, Appender, HistogramSeries, Querier, SelectHints, Series, StorageError,
};
use crate::storage::block::{
    Block, BlockSeries, BlockSeriesData, Blocks, HistogramRun, write_block,
};
use crate::storage::files::{LOCK_FILE, SNAPSHOTS_DIR, TMP_SUFFIX, WAL_DIR};
use crate::storage::head::{Head, HeadAppender, HeadSeriesData, ReplayState};
use crate::storage::merge::sort_and_merge;
use crate::storage::wal::{DEFAULT_SEGMENT_SIZE, Wal, WalCounters, WalSyncPolicy, replay};

const HOUR_MS: i64 = 3600 * 1000;

/// How to open a [`Db`].
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// Data directory (created if missing).
    pub path: PathBuf,
    /// Blocks whose data ends more than this long ago (ms) are deleted;
    /// 0 disables time-based retention. Default 15 days (Prometheus's).
    pub retention_time_ms: i64,
    /// Oldest blocks are deleted while blocks use more than this many
    /// bytes; 0 disables size-based retention. Default 0.
    pub retention_size_bytes: u64,
    /// When commits are fsynced. Default [`WalSyncPolicy::EveryCommit`].
    pub wal_sync: WalSyncPolicy,
    /// WAL segment size in bytes. Default 128 MiB.
    pub wal_segment_size: u64,
    /// Samples up to this many ms older than the newest sample are accepted
    /// out of order (older than their series' last sample); older ones are
    /// rejected with `AppendError::TooOld`. In-order samples are accepted up
    /// to half a block (or this window, if larger) behind the newest sample,
    /// as in Prometheus. Default 10 minutes.
    pub ooo_window_ms: i64,
    /// Time range of a block cut from the head (ms). Default 2 h.
    pub block_duration_ms: i64,
    /// How often the background thread cuts the head, compacts and applies
    /// retention. `None`: no thread; call [`Db::maintain`] yourself.
    /// Default 1 minute.
    pub maintenance_interval: Option<Duration>,
    /// Time source for retention and compaction decisions.
    pub clock: Arc<dyn Clock>,
}

impl DbOptions {
    /// Defaults for a data directory.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DbOptions {
            path: path.into(),
            retention_time_ms: 15 * 24 * HOUR_MS,
            retention_size_bytes: 0,
            wal_sync: WalSyncPolicy::EveryCommit,
            wal_segment_size: DEFAULT_SEGMENT_SIZE,
            ooo_window_ms: 10 * 60 * 1000,
            block_duration_ms: 2 * HOUR_MS,
            maintenance_interval: Some(Duration::from_secs(60)),
            clock: Arc::new(SystemClock),
        }
    }
}

/// A point-in-time view of the database's counters and sizes, for
/// `/metrics` and `tsdb analyze`. Counters are totals since open (replayed
/// samples included in the sample counters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Series in the head.
    pub head_series: u64,
    /// Earliest sample time in the head (ms).
    pub head_min_time: Option<i64>,
    /// Latest sample time in the head (ms).
    pub head_max_time: Option<i64>,
    /// Estimated resident bytes of the head's series and chunks.
    pub head_bytes: u64,
    /// Number of blocks.
    pub blocks: u64,
    /// Series summed over blocks (a series in two blocks counts twice).
    pub block_series: u64,
    /// Bytes of block data files.
    pub block_bytes: u64,
    /// Float samples appended (committed or replayed).
    pub float_samples_appended: u64,
    /// Histogram samples appended (committed or replayed).
    pub histogram_samples_appended: u64,
    /// Series created in the head.
    pub series_created: u64,
    /// Series removed from the head after being cut into blocks.
    pub series_removed: u64,
    /// Samples rejected as older than the out-of-order window (or than the
    /// last block cut).
    pub out_of_window_rejections: u64,
    /// Samples rejected as duplicates with a different value.
    pub duplicate_rejections: u64,
    /// Samples rejected for an invalid series or kind mismatch.
    pub invalid_rejections: u64,
    /// Samples accepted out of order.
    pub out_of_order_accepted: u64,
    /// WAL fsyncs.
    pub wal_fsyncs: u64,
    /// Failed WAL fsyncs.
    pub wal_fsync_errors: u64,
    /// Failed WAL writes (e.g. disk full); each failed its commit cleanly.
    pub wal_write_errors: u64,
    /// Bytes written to WAL segments.
    pub wal_bytes_written: u64,
    /// WAL segments created.
    pub wal_segments_created: u64,
    /// WAL checkpoints written.
    pub wal_checkpoints: u64,
    /// Corruption events: WAL tails truncated or files moved aside on replay.
    pub wal_corruptions: u64,
    /// WAL records replayed at open.
    pub wal_replayed_records: u64,
    /// Replayed samples whose series record was missing (dropped).
    pub wal_replay_unknown_refs: u64,
    /// Blocks cut from the head.
    pub head_cuts: u64,
    /// Blocks written by compaction.
    pub compactions: u64,
    /// Blocks deleted by retention.
    pub retention_deletions: u64,
    /// Failed maintenance runs (head cut, compaction, retention).
    pub maintenance_errors: u64,
}

#[derive(Debug, Default)]
struct DbCounters {
    head_cuts: AtomicU64,
    compactions: AtomicU64,
    retention_deletions: AtomicU64,
    maintenance_errors: AtomicU64,
    replayed_records: AtomicU64,
}

struct Inner {
    opts: DbOptions,
    head: Head,
    wal: Arc<Wal>,
    wal_counters: Arc<WalCounters>,
    blocks: Blocks,
    counters: DbCounters,
    /// Serializes head cuts, checkpoints, compaction and snapshots.
    maintenance: Mutex<()>,
    /// Held shared by every read across blocks and head, exclusively by a
    /// head cut while it adds the new block and drops that range from the
    /// head: a read sees the range in one of the two, never in neither (a
    /// read of blocks before the add and of the head after the drop lost
    /// the whole block's samples).
    views: RwLock<()>,
    closed: AtomicBool,
    _lock: File,
}

/// An open database. Cheap to share by reference across threads; implements
/// [`Appendable`] and [`Querier`].
pub struct Db {
    inner: Arc<Inner>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.opts.path)
            .finish_non_exhaustive()
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + use<> {
    let path = path.to_path_buf();
    move |source| StorageError::Io { op, path, source }
}

/// Takes an exclusive, non-blocking `flock` on `<data>/lock`; the lock dies
/// with the process, so a crash never leaves a stale lock behind.
fn lock_dir(dir: &Path) -> Result<File, StorageError> {
    let path = dir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("open lock file", &path))?;
    // SAFETY: flock on a file descriptor we own and keep open; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(StorageError::Io {
            op: "lock data directory (is another watchpost using it?)",
            path,
            source: err,
        });
    }
    Ok(f)
}

fn to_block_series(labels: crate::model::Labels, data: HeadSeriesData) -> BlockSeries {
    let data = match data {
        HeadSeriesData::Float { timestamps, values } => {
            BlockSeriesData::Float { timestamps, values }
        }
        HeadSeriesData::Histogram(runs) => BlockSeriesData::Histogram {
            runs: runs
                .into_iter()
                .map(|r| HistogramRun {
                    upper_bounds: r.bounds,
                    timestamps: r.timestamps,
                    buckets: r.buckets,
                    sum: r.sum,
                    count: r.count,
                })
                .collect(),
        },
    };
    BlockSeries { labels, data }
}

fn valid_snapshot_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Db {
    /// Opens (or creates) the database in `opts.path`: takes the directory
    /// lock, opens blocks (corrupt ones are moved to `corrupted/`), replays
    /// the WAL into the head (torn tails truncated with a warning), and
    /// starts the maintenance thread if configured.
    pub fn open(opts: DbOptions) -> Result<Db, StorageError> {
        if opts.block_duration_ms <= 0 {
            return Err(StorageError::Other(format!(
                "block duration must be positive, got {} ms",
                opts.block_duration_ms
            )));
        }
        std::fs::create_dir_all(&opts.path).map_err(io("create data directory", &opts.path))?;
        let lock = lock_dir(&opts.path)?;
        let blocks = Blocks::open(&opts.path)?;
        let head = Head::new(opts.ooo_window_ms, opts.block_duration_ms / 2);
        if let Some(end) = blocks.max_time() {
            // Block max_time is exclusive: everything before it is persisted.
            head.raise_boundary(end);
        }
        let wal_dir = opts.path.join(WAL_DIR);
        let wal_counters = Arc::new(WalCounters::default());
        let mut st = ReplayState::default();
        let started = std::time::Instant::now();
        let out = replay(&wal_dir, &wal_counters, |r| head.replay_record(r, &mut st))?;
        tracing::info!(
            records = out.records,
            corruptions = out.corruptions,
            series = head.num_series(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "WAL replayed"
        );
        let wal = Wal::open(
            &wal_dir,
            out.next_segment,
            opts.wal_sync,
            opts.wal_segment_size,
            wal_counters.clone(),
        )?;
        head.set_wal(wal.clone());
        let counters = DbCounters::default();
        counters
            .replayed_records
            .store(out.records, Ordering::Relaxed);
        let inner = Arc::new(Inner {
            opts,
            head,
            wal,
            wal_counters,
            blocks,
            counters,
            maintenance: Mutex::new(()),
            views: RwLock::new(()),
            closed: AtomicBool::new(false),
            _lock: lock,
        });
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = match inner.opts.maintenance_interval {
            Some(every) => {
                let weak = Arc::downgrade(&inner);
                let stop2 = stop.clone();
                Some(
                    std::thread::Builder::new()
                        .name("tsdb-maintenance".into())
                        .spawn(move || maintenance_loop(weak, stop2, every))
                        .map_err(io("start maintenance thread", &inner.opts.path))?,
                )
            }
            None => None,
        };
        Ok(Db {
            inner,
            stop,
            thread: Mutex::new(thread),
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.opts.path
    }

    /// Cuts every head range that is due into a block (then checkpoints
    /// the WAL), compacts blocks and applies retention. The background
    /// thread calls this periodically; tests and tools may call it directly.
    pub fn maintain(&self) -> Result<(), StorageError> {
        self.inner.maintain()
    }

    /// Cuts the head into blocks up to `end` (ms, exclusive), regardless of
    /// the usual delay, then checkpoints the WAL. Samples before `end` are
    /// rejected afterwards.
    pub fn cut_head_before(&self, end: i64) -> Result<(), StorageError> {
        let _m = self.inner.maintenance.lock();
        self.inner.cut_head(Some(end))
    }

    /// Writes a consistent copy under `<data>/snapshots/<name>/`: hard links
    /// to every block plus the head written out as a block. Returns the
    /// snapshot directory. `name` may hold `[A-Za-z0-9._-]` (not starting
    /// with a dot); an existing snapshot of that name is an error.
    pub fn snapshot(&self, name: &str) -> Result<PathBuf, StorageError> {
        self.inner.check_open()?;
        if !valid_snapshot_name(name) {
            return Err(StorageError::Other(format!(
                "invalid snapshot name {name:?}: use letters, digits, '-', '_' and '.', not starting with '.'"
            )));
        }
        let root = self.inner.opts.path.join(SNAPSHOTS_DIR);
        let dst = root.join(name);
        if dst.exists() {
            return Err(StorageError::Other(format!(
                "snapshot {} already exists",
                dst.display()
            )));
        }
        let tmp = root.join(format!("{name}{TMP_SUFFIX}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io("remove unfinished snapshot", &tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io("create snapshot directory", &tmp))?;
        let _m = self.inner.maintenance.lock();
        let res = (|| {
            for b in self.inner.blocks.blocks() {
                let bdst = tmp.join(b.id());
                std::fs::create_dir(&bdst).map_err(io("create snapshot block directory", &bdst))?;
                for e in std::fs::read_dir(b.dir()).map_err(io("list block directory", b.dir()))? {
                    let e = e.map_err(io("list block directory", b.dir()))?;
                    let to = bdst.join(e.file_name());
                    std::fs::hard_link(e.path(), &to)
                        .map_err(io("hard-link block file into snapshot", &to))?;
                }
            }
            let head = &self.inner.head;
            if let (Some(min), Some(max)) = (head.min_t(), head.max_t()) {
                let min = min.max(head.boundary());
                if min <= max {
                    write_block(
                        &tmp,
                        min,
                        max.saturating_add(1),
                        head.series_data(min, max)
                            .map(|(l, d)| to_block_series(l, d)),
                    )?;
                }
            }
            crate::storage::wal::sync_dir(&tmp)?;
            std::fs::rename(&tmp, &dst).map_err(io("rename snapshot directory", &tmp))?;
            crate::storage::wal::sync_dir(&root)
        })();
        if res.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        res.map(|()| dst)
    }

    /// Number of distinct series as readers see them (histogram views
    /// counted individually) over all blocks and the head. Walks the label
    /// sets of every series, so it is meant for tools and occasional
    /// metrics, not hot paths.
    pub fn series_count(&self) -> Result<u64, StorageError> {
        let hints = SelectHints {
            min_t: i64::MIN,
            max_t: i64::MAX,
            labels_only: true,
            skip_histogram_views: false,
        };
        let any_name = Matcher::new(
            crate::model::MatchOp::RegexMatch,
            crate::model::METRIC_NAME,
            ".+",
        )
        .map_err(|e| StorageError::Other(e.to_string()))?;
        Ok(Querier::select(self, &hints, &[any_name])?.len() as u64)
    }

    /// Counters and sizes.
    pub fn stats(&self) -> DbStats {
        let i = &self.inner;
        let h = &i.head.counters;
        let w = &i.wal_counters;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let blocks = i.blocks.blocks();
        DbStats {
            head_series: i.head.num_series() as u64,
            head_min_time: i.head.min_t(),
            head_max_time: i.head.max_t(),
            head_bytes: i.head.approx_bytes() as u64,
            blocks: blocks.len() as u64,
            block_series: blocks.iter().map(|b| b.series_count()).sum(),
            block_bytes: i.blocks.size_bytes(),
            float_samples_appended: get(&h.float_samples),
            histogram_samples_appended: get(&h.histogram_samples),
            series_created: get(&h.series_created),
            series_removed: get(&h.series_removed),
            out_of_window_rejections: get(&h.too_old),
            duplicate_rejections: get(&h.duplicates),
            invalid_rejections: get(&h.invalid),
            out_of_order_accepted: get(&h.out_of_order),
            wal_fsyncs: get(&w.fsyncs),
            wal_fsync_errors: get(&w.fsync_errors),
            wal_write_errors: get(&w.write_errors),
            wal_bytes_written: get(&w.bytes_written),
            wal_segments_created: get(&w.segments_created),
            wal_checkpoints: get(&w.checkpoints),
            wal_corruptions: get(&w.corruptions),
            wal_replayed_records: get(&i.counters.replayed_records),
            wal_replay_unknown_refs: get(&h.replay_unknown_refs),
            head_cuts: get(&i.counters.head_cuts),
            compactions: get(&i.counters.compactions),
            retention_deletions: get(&i.counters.retention_deletions),
            maintenance_errors: get(&i.counters.maintenance_errors),
        }
    }

    /// Stops the maintenance thread, flushes and fsyncs the WAL, and
    /// refuses further commits (`StorageError::Closed`). Queries keep
    /// working. Idempotent.
    pub fn close(&self) -> Result<(), StorageError> {
        {
            let (m, c) = &*self.stop;
            *m.lock() = true;
            c.notify_all();
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _m = self.inner.maintenance.lock();
        self.inner.wal.close()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "closing the database on drop failed");
        }
    }
}

fn maintenance_loop(inner: Weak<Inner>, stop: Arc<(Mutex<bool>, Condvar)>, every: Duration) {
    super::background::run_every(inner, stop, every, |inner| {
        if let Err(e) = inner.maintain() {
            tracing::warn!(error = %e, "storage maintenance failed; will retry");
        }
    });
}

impl Inner {
    fn check_open(&self) -> Result<(), StorageError> {
        if self.closed.load(Ordering::Acquire) {
            Err(StorageError::Closed)
        } else {
            Ok(())
        }
    }

    fn maintain(&self) -> Result<(), StorageError> {
        self.check_open()?;
        let _m = self.maintenance.lock();
        let res = (|| {
            self.cut_head(None)?;
            let now = self.opts.clock.now_ms();
            let made = self.blocks.compact(now)?;
            self.counters
                .compactions
                .fetch_add(made.len() as u64, Ordering::Relaxed);
            let deleted = self.blocks.apply_retention(
                now,
                self.opts.retention_time_ms,
                self.opts.retention_size_bytes,
            );
            self.counters
                .retention_deletions
                .fetch_add(deleted.len() as u64, Ordering::Relaxed);
            Ok(())
        })();
        if res.is_err() {
            self.counters
                .maintenance_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        res
    }

    /// Cuts due head ranges into blocks (all ranges before `force_end` when
    /// given), then truncates the head and checkpoints the WAL. Caller holds
    /// the maintenance lock.
    ///
    /// A range `[start, end)` aligned to the block duration is due once the
    /// head's newest sample is past `end + max(block/2, ooo window)`: by then
    /// no acceptable sample can fall into it, so blocks never overlap the
    /// head's writable range.
    fn cut_head(&self, force_end: Option<i64>) -> Result<(), StorageError> {
        let dur = self.opts.block_duration_ms;
        let delay = (dur / 2).max(self.opts.ooo_window_ms);
        let head = &self.head;
        let mut cut_any = false;
        while let (Some(min), Some(max)) = (head.min_t(), head.max_t()) {
            // `min` (not the boundary) so a range whose block write failed
            // is retried: its samples are still in the head.
            let start = min;
            if start > max {
                break;
            }
            // Never start a block before an earlier cut's end (a forced
            // cut may end mid-window), so blocks from the head never overlap.
            let block_start = start
                .div_euclid(dur)
                .saturating_mul(dur)
                .max(head.boundary().min(start));
            let block_end = block_start.saturating_add(dur);
            let due = match force_end {
                Some(end) => block_start < end,
                None => max >= block_end.saturating_add(delay),
            };
            if !due {
                break;
            }
            let block_end = force_end.map_or(block_end, |e| block_end.min(e));
            {
                // From here on no commit can add samples before block_end,
                // and every commit that did is applied.
                let _x = head.exclusive();
                head.raise_boundary(block_end);
            }
            let series = head
                .series_data(block_start, block_end - 1)
                .map(|(l, d)| to_block_series(l, d));
            let meta = write_block(&self.opts.path, block_start, block_end, series)?;
            let block = Block::open(&self.opts.path.join(&meta.id))?;
            {
                // Add the block and drop the persisted range from memory as
                // one step for readers.
                let _v = self.views.write();
                self.blocks.add(block);
                let _x = head.exclusive();
                head.truncate_before_locked(block_end);
            }
            self.counters.head_cuts.fetch_add(1, Ordering::Relaxed);
            tracing::info!(block = %meta.id, min_t = block_start, max_t = block_end, series = meta.stats.num_series, "head cut into block");
            cut_any = true;
        }
        if cut_any {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Replaces the WAL segments written so far by a checkpoint of the
    /// head's current state.
    fn checkpoint(&self) -> Result<(), StorageError> {
        let n = {
            let _x = self.head.exclusive();
            let n = self.wal.cut_segment()?;
            self.head.reset_logged_bounds();
            n
        };
        let mut cp = self.wal.checkpoint(n)?;
        self.head.write_checkpoint(&mut cp)?;
        cp.finish()
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(HeadAppender::new(&self.inner.head))
    }
}

impl Querier for Db {
    fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        let _v = self.inner.views.read();
        let blocks = self.inner.blocks.in_range(hints.min_t, hints.max_t);
        if blocks.is_empty() {
            // Head only: its own read decodes straight into the results.
            return Ok(self.inner.head.select(hints, matchers));
        }
        if !hints.labels_only {
            // Planned like `select_visit`: each series decoded once from
            // its blocks and the head (which wins at equal timestamps), then
            // copied out at its exact size; no per-block results merged and
            // re-copied.
            let head = self.inner.head.select_parts(hints, matchers);
            return crate::storage::visit::select_parts(&blocks, head, hints, matchers);
        }
        let mut v = self.inner.blocks.select(hints, matchers)?;
        // Head results come last so they win at equal timestamps.
        v.extend(self.inner.head.select(hints, matchers));
        Ok(sort_and_merge(v))
    }

    /// Streams `select`'s series: planned under the shared `views` lock,
    /// which is held until every worker is done (a concurrent head cut
    /// cannot move samples between the blocks and the head mid-read), then
    /// decoded on up to `workers` scoped threads (the calling thread is
    /// worker 0), each series once, into reused buffers.
    fn select_visit(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
        workers: usize,
        visit: &(dyn Fn(usize, &Series) + Sync),
    ) -> Result<(), StorageError> {
        if hints.labels_only {
            for s in self.select(hints, matchers)? {
                visit(0, &s);
            }
            return Ok(());
        }
        let _v = self.inner.views.read();
        let blocks = self.inner.blocks.in_range(hints.min_t, hints.max_t);
        let head = self.inner.head.select_parts(hints, matchers);
        crate::storage::visit::visit_parts(&blocks, head, hints, matchers, workers, visit)
    }

    fn select_histograms(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        let _v = self.inner.views.read();
        let mut v = self.inner.blocks.select_histograms(hints, matchers)?;
        v.extend(self.inner.head.select_histograms(hints, matchers));
        Ok(crate::storage::merge::sort_histograms(v))
    }

    fn label_names(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let _v = self.inner.views.read();
        let mut set: BTreeSet<String> = self
            .inner
            .blocks
            .label_names(hints, matchers)?
            .into_iter()
            .collect();
        set.extend(self.inner.head.label_names(hints, matchers));
        Ok(set.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let _v = self.inner.views.read();
        let mut set: BTreeSet<String> = self
            .inner
            .blocks
            .label_values(name, hints, matchers)?
            .into_iter()
            .collect();
        set.extend(self.inner.head.label_values(name, hints, matchers));
        Ok(set.into_iter().collect())
    }
}
