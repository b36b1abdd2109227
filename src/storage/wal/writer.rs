//! The WAL writer: appends framed records to the current segment, rotates
//! segments, and makes commits durable with group-committed fsyncs.
//!
//! Guarantees:
//! - A commit's bytes are written with positional writes at the end of the
//!   last good record. If a write fails (disk full, I/O error) the file is
//!   truncated back to that point, the commit fails with
//!   `StorageError::Io`, and the next commit tries again: the file never
//!   keeps a partial record from a failed commit.
//! - Series records logged with [`Wal::log_deferred`] are written before (in
//!   the same write as) the next commit's records, so a sample record never
//!   precedes the series record it refers to.
//! - Under [`WalSyncPolicy::EveryCommit`], `commit` returns only after an
//!   fsync that covers its bytes; one fsync serves every commit written
//!   before it started (group commit).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::segment::{SEGMENT_HEADER_LEN, commit_marker, frame_record, segment_header};
use super::{Record, WalCounters, WalSyncPolicy};
use crate::storage::StorageError;
use crate::storage::files::{
    TMP_SUFFIX, checkpoint_name, parse_checkpoint_name, parse_segment_name, segment_name,
};

struct Writer {
    file: Arc<File>,
    path: PathBuf,
    seg: u64,
    /// End of the last fully written record.
    len: u64,
    /// Number of successful writes so far (commit sequence).
    seq: u64,
    /// Framed records waiting for the next write (series records).
    pending: Vec<u8>,
    /// A failed write could not be truncated away yet.
    needs_truncate: bool,
    /// Reused encoding buffer.
    scratch: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct SyncState {
    synced_seq: u64,
    /// Highest sequence whose fsync failed (those commits were rejected).
    failed_seq: u64,
    last_error: Option<(std::io::ErrorKind, String)>,
    /// A commit is running the fsync (without holding the lock).
    in_progress: bool,
}

/// An open WAL, ready for appends. Share it behind an `Arc`.
pub(crate) struct Wal {
    dir: PathBuf,
    policy: WalSyncPolicy,
    segment_size: u64,
    w: Mutex<Writer>,
    sync: Mutex<SyncState>,
    /// Signalled when an fsync ends (commits waiting for one park here
    /// instead of spinning on `sync`).
    synced: Condvar,
    counters: Arc<WalCounters>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    syncer: Mutex<Option<JoinHandle<()>>>,
}

fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// fsyncs a directory so a created, renamed or removed entry is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync directory", dir, e))
}

fn create_segment(
    dir: &Path,
    n: u64,
    counters: &WalCounters,
) -> Result<(File, PathBuf), StorageError> {
    let path = dir.join(segment_name(n));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| io_err("create WAL segment", &path, e))?;
    if let Err(e) = file.write_all_at(&segment_header(), 0) {
        // Leave no headerless file behind (replay would count it as torn).
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(io_err("write WAL segment header", &path, e));
    }
    sync_dir(dir)?;
    WalCounters::inc(&counters.segments_created);
    Ok((file, path))
}

impl Wal {
    /// Opens the WAL for writing, starting a fresh segment `first_segment`
    /// (replay must have run first and said which number comes next).
    pub(crate) fn open(
        dir: &Path,
        first_segment: u64,
        policy: WalSyncPolicy,
        segment_size: u64,
        counters: Arc<WalCounters>,
    ) -> Result<Arc<Wal>, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create WAL directory", dir, e))?;
        let (file, path) = create_segment(dir, first_segment, &counters)?;
        let wal = Arc::new(Wal {
            dir: dir.to_path_buf(),
            policy,
            segment_size: segment_size.max(SEGMENT_HEADER_LEN as u64 + 1),
            w: Mutex::new(Writer {
                file: Arc::new(file),
                path,
                seg: first_segment,
                len: SEGMENT_HEADER_LEN as u64,
                seq: 0,
                pending: Vec::new(),
                needs_truncate: false,
                scratch: Vec::new(),
                closed: false,
            }),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            counters,
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            syncer: Mutex::new(None),
        });
        if let WalSyncPolicy::Interval(every) = policy {
            let weak: Weak<Wal> = Arc::downgrade(&wal);
            let stop = wal.stop.clone();
            let h = std::thread::Builder::new()
                .name("wal-syncer".into())
                .spawn(move || syncer_loop(weak, stop, every))
                .map_err(|e| io_err("start WAL syncer thread", dir, e))?;
            *wal.syncer.lock() = Some(h);
        }
        Ok(wal)
    }

    /// Queues a record (a new series) to be written with the next commit.
    pub(crate) fn log_deferred(&self, rec: &Record) {
        frame_record(&mut self.w.lock().pending, rec);
    }

    /// Writes a batch of framed records (see [`frame_record`]) after any
    /// deferred records and makes it durable per the sync policy. `encode`
    /// fills the batch and `on_written`
    /// runs after a successful write, both under the writer lock: records
    /// whose content depends on what was logged before (histogram bounds)
    /// are encoded in the same order they are written.
    pub(crate) fn commit_with<T>(
        &self,
        encode: impl FnOnce(&mut Vec<u8>) -> T,
        on_written: impl FnOnce(T),
    ) -> Result<(), StorageError> {
        let seq = {
            let mut w = self.w.lock();
            // The batch is encoded right after the deferred records, in the
            // buffer that is written (no copy of the batch).
            let mut buf = std::mem::take(&mut w.scratch);
            buf.clear();
            buf.extend_from_slice(&w.pending);
            let pending_len = buf.len();
            let encoded = encode(&mut buf);
            w.pending.clear();
            let res = self.write_out_locked(&mut w, &mut buf, pending_len);
            // Keep a modest buffer for the next commit, not a huge one.
            if buf.capacity() <= 4 << 20 {
                w.scratch = buf;
            }
            let seq = res?;
            on_written(encoded);
            seq
        };
        match self.policy {
            WalSyncPolicy::EveryCommit => self.wait_synced(seq),
            WalSyncPolicy::Interval(_) => Ok(()),
        }
    }

    fn write_locked(&self, w: &mut Writer, batch: &[u8]) -> Result<u64, StorageError> {
        let mut out = std::mem::take(&mut w.pending);
        let pending_len = out.len();
        out.extend_from_slice(batch);
        self.write_out_locked(w, &mut out, pending_len)
    }

    /// Writes `out` (the deferred records, moved out of `w.pending` into
    /// its first `pending_len` bytes, then the batch) and a commit marker
    /// in one write, so replay applies all of it or none of it. On failure
    /// the deferred records go back to `w.pending` (written with the next
    /// commit).
    fn write_out_locked(
        &self,
        w: &mut Writer,
        out: &mut Vec<u8>,
        pending_len: usize,
    ) -> Result<u64, StorageError> {
        let res = self.write_out_inner(w, out);
        if res.is_err() {
            w.pending.clear();
            w.pending
                .extend_from_slice(out.get(..pending_len).unwrap_or(&[]));
        }
        res
    }

    fn write_out_inner(&self, w: &mut Writer, out: &mut Vec<u8>) -> Result<u64, StorageError> {
        if w.closed {
            return Err(StorageError::Closed);
        }
        if w.needs_truncate {
            w.file
                .set_len(w.len)
                .map_err(|e| io_err("truncate WAL segment after failed write", &w.path, e))?;
            w.needs_truncate = false;
        }
        if out.is_empty() {
            return Ok(w.seq);
        }
        out.extend_from_slice(&commit_marker());
        let total = out.len() as u64;
        if w.len + total > self.segment_size && w.len > SEGMENT_HEADER_LEN as u64 {
            self.rotate_locked(w)?;
        }
        if let Err(e) = w.file.write_all_at(out, w.len) {
            WalCounters::inc(&self.counters.write_errors);
            if let Err(te) = w.file.set_len(w.len) {
                w.needs_truncate = true;
                tracing::warn!(file = %w.path.display(), offset = w.len, error = %te, "WAL: cannot truncate after failed write; will retry before the next write");
            }
            return Err(io_err("write WAL segment", &w.path, e));
        }
        w.len += total;
        w.seq += 1;
        self.counters
            .bytes_written
            .fetch_add(total, std::sync::atomic::Ordering::Relaxed);
        Ok(w.seq)
    }

    /// Closes the current segment (fsynced) and starts the next one.
    fn rotate_locked(&self, w: &mut Writer) -> Result<(), StorageError> {
        w.file
            .sync_data()
            .map_err(|e| io_err("fsync WAL segment", &w.path, e))?;
        WalCounters::inc(&self.counters.fsyncs);
        let (file, path) = create_segment(&self.dir, w.seg + 1, &self.counters)?;
        w.file = Arc::new(file);
        w.path = path;
        w.seg += 1;
        w.len = SEGMENT_HEADER_LEN as u64;
        Ok(())
    }

    fn wait_synced(&self, seq: u64) -> Result<(), StorageError> {
        let mut s = self.sync.lock();
        loop {
            if seq <= s.synced_seq {
                return Ok(());
            }
            if seq <= s.failed_seq {
                let (kind, msg) = s
                    .last_error
                    .clone()
                    .unwrap_or((std::io::ErrorKind::Other, "fsync failed".into()));
                let path = self.w.lock().path.clone();
                return Err(io_err(
                    "fsync WAL segment",
                    &path,
                    std::io::Error::new(kind, msg),
                ));
            }
            if s.in_progress {
                // Another commit's fsync is running. It covers this commit
                // if this one was written before it started; otherwise one
                // of the waiters runs the next. Parking (not spinning on the
                // lock) keeps waiting commits off the CPU during the fsync.
                self.synced.wait(&mut s);
                continue;
            }
            // Everything written so far is covered by this fsync; commits
            // written meanwhile wait for it and are covered by the next.
            let (file, target, path) = {
                let w = self.w.lock();
                (w.file.clone(), w.seq, w.path.clone())
            };
            s.in_progress = true;
            let res = MutexGuard::unlocked(&mut s, || file.sync_data());
            s.in_progress = false;
            match res {
                Ok(()) => {
                    WalCounters::inc(&self.counters.fsyncs);
                    s.synced_seq = s.synced_seq.max(target);
                }
                Err(e) => {
                    // The page cache state after a failed fsync is unknown:
                    // reject every commit it was meant to cover.
                    WalCounters::inc(&self.counters.fsync_errors);
                    tracing::warn!(file = %path.display(), error = %e, "WAL: fsync failed; rejecting the commits it covered");
                    s.failed_seq = s.failed_seq.max(target);
                    s.last_error = Some((e.kind(), e.to_string()));
                }
            }
            self.synced.notify_all();
        }
    }

    /// Writes deferred records and fsyncs everything written so far.
    pub(crate) fn sync(&self) -> Result<(), StorageError> {
        let seq = {
            let mut w = self.w.lock();
            self.write_locked(&mut w, &[])?
        };
        self.wait_synced(seq)
    }

    /// Flushes and fsyncs, stops the syncer, and refuses further writes.
    pub(crate) fn close(&self) -> Result<(), StorageError> {
        {
            let (m, c) = &*self.stop;
            *m.lock() = true;
            c.notify_all();
        }
        if let Some(h) = self.syncer.lock().take() {
            let _ = h.join();
        }
        let res = self.sync();
        self.w.lock().closed = true;
        res
    }

    /// Starts a new segment and returns its number `n`: every record
    /// written before this call is in segments `< n` (deferred records are
    /// flushed first and fsynced by the rotation).
    pub(crate) fn cut_segment(&self) -> Result<u64, StorageError> {
        let mut w = self.w.lock();
        self.write_locked(&mut w, &[])?;
        self.rotate_locked(&mut w)?;
        Ok(w.seg)
    }

    /// Starts writing checkpoint `n` (it will replace segments `< n`).
    pub(crate) fn checkpoint(&self, n: u64) -> Result<CheckpointWriter, StorageError> {
        let final_path = self.dir.join(checkpoint_name(n));
        let tmp = self.dir.join(format!("{}{TMP_SUFFIX}", checkpoint_name(n)));
        let file = File::create(&tmp).map_err(|e| io_err("create WAL checkpoint", &tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&segment_header())
            .map_err(|e| io_err("write WAL checkpoint", &tmp, e))?;
        Ok(CheckpointWriter {
            out,
            tmp,
            final_path,
            n,
            dir: self.dir.clone(),
            buf: Vec::new(),
            counters: self.counters.clone(),
        })
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let (m, c) = &*self.stop;
        *m.lock() = true;
        c.notify_all();
    }
}

fn syncer_loop(wal: Weak<Wal>, stop: Arc<(Mutex<bool>, Condvar)>, every: std::time::Duration) {
    crate::storage::background::run_every(wal, stop, every, |wal| {
        if let Err(e) = wal.sync() {
            tracing::warn!(error = %e, "WAL: periodic fsync failed");
        }
    });
}

/// Writes a checkpoint file: the same format as a segment, holding records
/// equivalent to every segment it replaces. Written to a temporary name,
/// fsynced, then renamed, so a crash leaves either the old segments or the
/// complete checkpoint.
pub(crate) struct CheckpointWriter {
    out: BufWriter<File>,
    tmp: PathBuf,
    final_path: PathBuf,
    n: u64,
    dir: PathBuf,
    buf: Vec<u8>,
    counters: Arc<WalCounters>,
}

impl CheckpointWriter {
    /// Appends one record.
    pub(crate) fn add(&mut self, rec: &Record) -> Result<(), StorageError> {
        self.buf.clear();
        frame_record(&mut self.buf, rec);
        self.out
            .write_all(&self.buf)
            .map_err(|e| io_err("write WAL checkpoint", &self.tmp, e))
    }

    /// Makes the checkpoint durable and visible, then deletes the segments
    /// and older checkpoints it replaces.
    pub(crate) fn finish(self) -> Result<(), StorageError> {
        let CheckpointWriter {
            out,
            tmp,
            final_path,
            n,
            dir,
            counters,
            ..
        } = self;
        let file = out
            .into_inner()
            .map_err(|e| io_err("write WAL checkpoint", &tmp, e.into_error()))?;
        file.sync_all()
            .map_err(|e| io_err("fsync WAL checkpoint", &tmp, e))?;
        std::fs::rename(&tmp, &final_path).map_err(|e| io_err("rename WAL checkpoint", &tmp, e))?;
        sync_dir(&dir)?;
        for e in std::fs::read_dir(&dir).map_err(|e| io_err("list WAL directory", &dir, e))? {
            let e = e.map_err(|e| io_err("list WAL directory", &dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let old = parse_segment_name(&name).is_some_and(|s| s < n)
                || parse_checkpoint_name(&name).is_some_and(|c| c < n);
            if old {
                std::fs::remove_file(e.path())
                    .map_err(|err| io_err("remove checkpointed WAL file", &e.path(), err))?;
            }
        }
        sync_dir(&dir)?;
        WalCounters::inc(&counters.checkpoints);
        Ok(())
    }
}
