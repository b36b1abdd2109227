//! A full disk, simulated with `RLIMIT_FSIZE` (writes past the limit fail
//! with EFBIG, exactly like ENOSPC for the writer): commits fail with a
//! clear `StorageError::Io`, are counted, leave no partial record behind,
//! and work again once space returns; after a reopen every acknowledged
//! sample is there and no failed one is.
//!
//! This file holds a single test because the limit applies to the whole
//! test process.

use std::path::Path;

use watchpost::model::{Labels, METRIC_NAME, Matcher};
use watchpost::storage::{Appendable, Db, DbOptions, Querier, SelectHints, StorageError};

fn set_fsize_limit(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass; no memory is retained.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

fn commit_batch(db: &Db, t: i64, n: usize) -> Result<(), StorageError> {
    let mut a = db.appender();
    for i in 0..n {
        let l = Labels::from_pairs([(METRIC_NAME, "m".to_string()), ("i", i.to_string())]);
        a.append(&l, t, t as f64).expect("append");
    }
    a.commit().map(|_| ())
}

fn times(dir: &Path) -> Vec<i64> {
    let mut o = DbOptions::new(dir);
    o.maintenance_interval = None;
    let db = Db::open(o).unwrap();
    assert_eq!(
        db.stats().wal_corruptions,
        0,
        "no torn record after a full disk"
    );
    let got = db
        .select(
            &SelectHints::range(i64::MIN, i64::MAX),
            &[Matcher::equal("i", "0")],
        )
        .unwrap();
    let all = db
        .select(
            &SelectHints::range(i64::MIN, i64::MAX),
            &[Matcher::equal(METRIC_NAME, "m")],
        )
        .unwrap();
    // Commits are atomic: every series written by the small commits
    // (i < 5) has the same timestamps as i="0"; the others only have the
    // big commits'.
    let big: Vec<i64> = got[0]
        .timestamps
        .iter()
        .copied()
        .filter(|t| *t < 3000 || *t >= 100_000)
        .collect();
    for s in &all {
        let i: usize = s.labels.get("i").unwrap().parse().unwrap();
        let want = if i < 5 { &got[0].timestamps } else { &big };
        assert_eq!(&s.timestamps, want, "{}", s.labels);
    }
    got[0].timestamps.clone()
}

#[test]
fn full_disk_fails_commits_cleanly_and_recovers() {
    // SAFETY: ignoring SIGXFSZ makes an oversized write return EFBIG
    // instead of killing the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join("wal").join("00000001");
    let mut acked = Vec::new();
    {
        let mut o = DbOptions::new(dir.path());
        o.maintenance_interval = None;
        let db = Db::open(o).unwrap();
        for t in 0..3 {
            commit_batch(&db, t * 1000, 50).unwrap();
            acked.push(t * 1000);
        }
        let len = std::fs::metadata(&seg).unwrap().len();
        // Room for a few more small commits, not for the big one.
        set_fsize_limit(len + 400);
        let mut failures = 0;
        for t in 3..20 {
            let before = std::fs::metadata(&seg).unwrap().len();
            match commit_batch(&db, t * 1000, 5) {
                Ok(()) => acked.push(t * 1000),
                Err(e) => {
                    failures += 1;
                    let msg = e.to_string();
                    assert!(msg.starts_with("cannot write WAL segment"), "{msg}");
                    assert!(matches!(e, StorageError::Io { .. }));
                    // Nothing of the failed commit stays in the file.
                    assert_eq!(std::fs::metadata(&seg).unwrap().len(), before);
                }
            }
        }
        assert!(failures > 0, "the limit was never hit");
        assert!(acked.len() > 3, "some small commits fitted");
        assert_eq!(db.stats().wal_write_errors, failures);
        // Failed samples are not visible either.
        let visible = db
            .select(
                &SelectHints::range(i64::MIN, i64::MAX),
                &[Matcher::equal("i", "0")],
            )
            .unwrap();
        assert_eq!(visible[0].timestamps, acked);
        // Space returns: writes work again.
        set_fsize_limit(libc::RLIM_INFINITY);
        commit_batch(&db, 100_000, 50).unwrap();
        acked.push(100_000);
        db.close().unwrap();
    }
    assert_eq!(times(dir.path()), acked);
}
