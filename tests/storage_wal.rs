//! WAL crash-consistency through the public API: a small log written by
//! several commits is truncated at every byte offset, and corrupted by a
//! flipped byte at every offset; reopening must keep exactly the commits
//! that are wholly before the damage, drop the rest, never panic, and
//! count the corruption.

use std::path::{Path, PathBuf};

use watchpost::model::{HistogramSample, Labels, METRIC_NAME, MatchOp, Matcher};
use watchpost::storage::{Appendable, Db, DbOptions, Querier, SelectHints};

const COMMITS: usize = 6;

fn opts(dir: &Path) -> DbOptions {
    let mut o = DbOptions::new(dir);
    o.maintenance_interval = None;
    o
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs([(METRIC_NAME, format!("m{i}")), ("job", "wal".to_string())])
}

/// Writes COMMITS commits (floats, a histogram, new series along the way)
/// and returns the segment's bytes and its length after each commit.
fn write_log(dir: &Path) -> (Vec<u8>, Vec<u64>, PathBuf) {
    let db = Db::open(opts(dir)).unwrap();
    let seg = dir.join("wal").join("00000001");
    let mut ends = Vec::new();
    for c in 0..COMMITS {
        let mut a = db.appender();
        for i in 0..=c {
            a.append(&labels(i), (c as i64 + 1) * 1000, (c * 10 + i) as f64)
                .unwrap();
        }
        let h = HistogramSample {
            upper_bounds: vec![0.5, 1.0].into(),
            bucket_counts: vec![c as f64, c as f64 + 1.0, c as f64 + 2.0],
            sum: 1.5,
            count: c as f64 + 2.0,
        };
        a.append_histogram(
            &Labels::from_pairs([(METRIC_NAME, "h")]),
            (c as i64 + 1) * 1000,
            &h,
        )
        .unwrap();
        a.commit().unwrap();
        ends.push(std::fs::metadata(&seg).unwrap().len());
    }
    db.close().unwrap();
    drop(db);
    (std::fs::read(&seg).unwrap(), ends, seg)
}

/// Which commits are visible: commit `c` wrote one sample at
/// t = (c+1)*1000 to c+1 float series and one histogram sample (5 views).
/// Panics if a commit is only partly visible.
fn visible_commits(db: &Db) -> Vec<usize> {
    let all = Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+").unwrap();
    let got = db
        .select(&SelectHints::range(i64::MIN, i64::MAX), &[all])
        .unwrap();
    let mut per_commit = [0usize; COMMITS];
    for s in &got {
        for &t in &s.timestamps {
            per_commit[(t / 1000 - 1) as usize] += 1;
        }
    }
    let mut out = Vec::new();
    for (c, n) in per_commit.iter().enumerate() {
        if *n > 0 {
            assert_eq!(*n, c + 1 + 5, "commit {c} partially visible: {got:?}");
            out.push(c);
        }
    }
    out
}

fn reopen_with(bytes: &[u8], check: impl FnOnce(&Db)) {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    std::fs::write(wal.join("00000001"), bytes).unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    check(&db);
    db.close().unwrap();
}

#[test]
fn truncation_at_every_offset_keeps_whole_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, ends, _) = write_log(dir.path());
    assert_eq!(*ends.last().unwrap() as usize, bytes.len());
    for cut in 0..=bytes.len() {
        reopen_with(&bytes[..cut], |db| {
            let want: Vec<usize> = (0..COMMITS).filter(|&c| ends[c] as usize <= cut).collect();
            assert_eq!(visible_commits(db), want, "truncated at {cut}");
            let header_torn = cut < 8;
            let tail_torn = cut > 8 && !ends.contains(&(cut as u64));
            let st = db.stats();
            assert_eq!(
                st.wal_corruptions,
                u64::from(header_torn || tail_torn),
                "corruption counter at cut {cut}: {st:?}"
            );
        });
    }
}

#[test]
fn flipped_byte_at_every_offset_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, ends, _) = write_log(dir.path());
    // Records start at byte 8 (after magic, version, reserved).
    for pos in 8..bytes.len() {
        let mut b = bytes.clone();
        b[pos] ^= 0x5a;
        reopen_with(&b, |db| {
            let want: Vec<usize> = (0..COMMITS).filter(|&c| ends[c] as usize <= pos).collect();
            assert_eq!(visible_commits(db), want, "flip at {pos}");
            assert_eq!(db.stats().wal_corruptions, 1, "flip at {pos}");
        });
    }
    // A flipped magic: the file is moved aside, nothing replayed.
    let mut b = bytes.clone();
    b[0] ^= 0xff;
    reopen_with(&b, |db| {
        assert!(visible_commits(db).is_empty());
        assert_eq!(db.stats().wal_corruptions, 1);
    });
    // An unknown version is refused with a clear error and left untouched.
    let mut b = bytes;
    b[4] = 9;
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("wal")).unwrap();
    std::fs::write(d.path().join("wal/00000001"), &b).unwrap();
    let err = Db::open(opts(d.path())).unwrap_err();
    assert!(
        err.to_string()
            .contains("WAL format version 9 is not supported"),
        "{err}"
    );
    assert_eq!(std::fs::read(d.path().join("wal/00000001")).unwrap(), b);
}

#[test]
fn replay_after_truncation_accepts_new_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, ends, seg) = write_log(dir.path());
    // Tear the last commit, reopen, write more, reopen again.
    std::fs::write(&seg, &bytes[..bytes.len() - 3]).unwrap();
    {
        let db = Db::open(opts(dir.path())).unwrap();
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), ends[COMMITS - 2]);
        let mut a = db.appender();
        a.append(&labels(0), 99_000, 1.0).unwrap();
        a.commit().unwrap();
        db.close().unwrap();
    }
    let db = Db::open(opts(dir.path())).unwrap();
    let got = db
        .select(
            &SelectHints::range(i64::MIN, i64::MAX),
            &[Matcher::equal(METRIC_NAME, "m0")],
        )
        .unwrap();
    // Commits 0..COMMITS-1 survived, plus the new sample.
    assert_eq!(got[0].timestamps.len(), COMMITS);
    assert_eq!(got[0].timestamps.last(), Some(&99_000));
}
