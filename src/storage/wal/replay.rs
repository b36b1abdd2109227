//! Reading the WAL back on open: the newest checkpoint, then every later
//! segment in order. A torn or corrupt tail is truncated (with a warning
//! naming file, offset and reason), never a crash; a file with a foreign
//! magic is moved aside; an unknown format version is a hard error because
//! truncating a newer format would destroy data.

use std::fs;
use std::path::{Path, PathBuf};

use super::segment::{HeaderCheck, check_header, scan_frames};
use super::{Record, WalCounters};
use crate::storage::StorageError;
use crate::storage::files::{TMP_SUFFIX, parse_checkpoint_name, parse_segment_name};

/// What replay found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ReplayOutcome {
    /// Number for the next segment the writer should create.
    pub(crate) next_segment: u64,
    /// Records handed to the callback.
    pub(crate) records: u64,
    /// Tails truncated or files moved aside.
    pub(crate) corruptions: u64,
}

fn io<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StorageError + use<'a> {
    move |source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Replays the WAL in `dir` (created if missing), calling `f` for every
/// record in write order.
pub(crate) fn replay(
    dir: &Path,
    counters: &WalCounters,
    mut f: impl FnMut(Record),
) -> Result<ReplayOutcome, StorageError> {
    fs::create_dir_all(dir).map_err(io("create WAL directory", dir))?;
    let mut segments: Vec<(u64, PathBuf)> = Vec::new();
    let mut checkpoints: Vec<(u64, PathBuf)> = Vec::new();
    for e in fs::read_dir(dir).map_err(io("list WAL directory", dir))? {
        let e = e.map_err(io("list WAL directory", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.ends_with(TMP_SUFFIX) {
            // An unfinished checkpoint: the segments it would replace are
            // still there.
            fs::remove_file(&path).map_err(io("remove unfinished checkpoint", &path))?;
        } else if let Some(n) = parse_segment_name(&name) {
            segments.push((n, path));
        } else if let Some(n) = parse_checkpoint_name(&name) {
            checkpoints.push((n, path));
        }
    }
    segments.sort();
    checkpoints.sort();
    let mut out = ReplayOutcome::default();
    let mut first_segment = 0;
    if let Some((n, cp)) = checkpoints.pop() {
        first_segment = n;
        // Leftovers of a checkpoint whose clean-up was interrupted.
        for (_, old) in &checkpoints {
            fs::remove_file(old).map_err(io("remove old checkpoint", old))?;
        }
        for (_, seg) in segments.iter().filter(|(s, _)| *s < n) {
            fs::remove_file(seg).map_err(io("remove checkpointed segment", seg))?;
        }
        replay_file(&cp, false, counters, &mut out, &mut f)?;
    }
    let mut last = first_segment.saturating_sub(1);
    for (n, seg) in segments.iter().filter(|(s, _)| *s >= first_segment) {
        replay_file(seg, true, counters, &mut out, &mut f)?;
        last = *n;
    }
    out.next_segment = (last + 1).max(first_segment).max(1);
    Ok(out)
}

/// Replays one file. In a segment (`commits` true) records are applied per
/// commit, up to the last commit marker; records after it (a torn commit)
/// are dropped and truncated away. A checkpoint is complete by construction
/// (fsynced before being renamed), so its records apply as read.
fn replay_file(
    path: &Path,
    commits: bool,
    counters: &WalCounters,
    out: &mut ReplayOutcome,
    f: &mut impl FnMut(Record),
) -> Result<(), StorageError> {
    let bytes = fs::read(path).map_err(io("read WAL file", path))?;
    match check_header(&bytes) {
        HeaderCheck::Ok => {}
        HeaderCheck::Torn => {
            tracing::warn!(file = %path.display(), offset = 0, reason = "file shorter than its header", "WAL: removing torn segment");
            WalCounters::inc(&counters.corruptions);
            out.corruptions += 1;
            fs::remove_file(path).map_err(io("remove torn WAL segment", path))?;
            return Ok(());
        }
        HeaderCheck::BadMagic => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".corrupt");
            let aside = PathBuf::from(aside);
            tracing::warn!(file = %path.display(), offset = 0, reason = "bad magic", moved_to = %aside.display(), "WAL: moving unreadable file aside");
            WalCounters::inc(&counters.corruptions);
            out.corruptions += 1;
            fs::rename(path, &aside).map_err(io("move corrupt WAL file aside", path))?;
            return Ok(());
        }
        HeaderCheck::UnknownVersion(v) => {
            return Err(StorageError::Corrupt {
                path: path.to_path_buf(),
                offset: 4,
                reason: format!("WAL format version {v} is not supported by this build (want 1)"),
            });
        }
    }
    let mut group: Vec<Record> = Vec::new();
    let mut applied_end = super::segment::SEGMENT_HEADER_LEN as u64;
    let mut scan = scan_frames(&bytes, |r, end| {
        if !commits {
            if r != Record::Commit {
                out.records += 1;
                f(r);
            }
            return;
        }
        if r == Record::Commit {
            for r in group.drain(..) {
                out.records += 1;
                f(r);
            }
            applied_end = end;
        } else {
            group.push(r);
        }
    });
    if commits && !group.is_empty() {
        // Whole frames after the last commit marker: a write torn at a
        // frame boundary.
        let dropped = group.len();
        scan.stopped = Some(match scan.stopped.take() {
            Some((off, reason)) => (
                off,
                format!("{reason}; {dropped} record(s) of the torn commit before it dropped"),
            ),
            None => (
                applied_end,
                format!("{dropped} record(s) after the last commit marker (torn commit)"),
            ),
        });
        scan.valid_len = applied_end;
    }
    if let Some((offset, reason)) = scan.stopped {
        tracing::warn!(
            file = %path.display(),
            offset,
            reason = %reason,
            kept_records = scan.records,
            dropped_bytes = bytes.len() as u64 - offset,
            "WAL: truncating torn or corrupt tail"
        );
        WalCounters::inc(&counters.corruptions);
        out.corruptions += 1;
        let file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io("open WAL segment for truncation", path))?;
        file.set_len(scan.valid_len)
            .map_err(io("truncate WAL segment", path))?;
        file.sync_all().map_err(io("fsync WAL segment", path))?;
    }
    Ok(())
}
