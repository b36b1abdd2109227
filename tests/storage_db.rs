//! The `Db` facade end to end through the public API: append, commit,
//! reopen, query; the out-of-order window; histogram views; head cuts into
//! blocks with WAL checkpoints; snapshots; the directory lock.

use std::path::Path;
use std::sync::Arc;

use watchpost::model::{
    HistogramSample, Labels, METRIC_NAME, ManualClock, MatchOp, Matcher, is_stale_nan, stale_nan,
};
use watchpost::storage::{
    AppendError, Appendable, Db, DbOptions, Querier, SelectHints, Series, StorageError,
};

const HOUR: i64 = 3600 * 1000;

fn opts(dir: &Path) -> DbOptions {
    let mut o = DbOptions::new(dir);
    o.maintenance_interval = None;
    o.clock = Arc::new(ManualClock::new(0));
    o
}

fn all() -> SelectHints {
    SelectHints::range(i64::MIN, i64::MAX)
}

fn re(name: &str, v: &str) -> Matcher {
    Matcher::new(MatchOp::RegexMatch, name, v).unwrap()
}

fn series(name: &str, inst: &str) -> Labels {
    Labels::from_pairs([(METRIC_NAME, name), ("instance", inst)])
}

fn hist(bounds: &[f64], counts: &[f64], sum: f64) -> HistogramSample {
    HistogramSample {
        upper_bounds: bounds.to_vec().into(),
        bucket_counts: counts.to_vec(),
        sum,
        count: *counts.last().unwrap(),
    }
}

fn summary(v: &[Series]) -> Vec<(String, Vec<i64>, Vec<f64>)> {
    v.iter()
        .map(|s| (s.labels.to_string(), s.timestamps.clone(), s.values.clone()))
        .collect()
}

#[test]
fn append_commit_reopen_query() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(opts(dir.path())).unwrap();
        let mut a = db.appender();
        for i in 0..10 {
            a.append(&series("up", "a"), i * 15_000, 1.0).unwrap();
            a.append(&series("up", "b"), i * 15_000, i as f64).unwrap();
        }
        a.append(&series("up", "a"), 10 * 15_000, stale_nan())
            .unwrap();
        let s = a.commit().unwrap();
        assert_eq!((s.float_samples, s.new_series), (21, 2));
        // Not visible before commit.
        let mut a = db.appender();
        a.append(&series("pending", "a"), 0, 1.0).unwrap();
        assert!(
            db.select(&all(), &[Matcher::equal(METRIC_NAME, "pending")])
                .unwrap()
                .is_empty()
        );
        a.rollback();
        db.close().unwrap();
        // Closed: commits refused, reads still work.
        let mut a = db.appender();
        a.append(&series("up", "c"), 0, 1.0).unwrap();
        assert!(matches!(a.commit(), Err(StorageError::Closed)));
    }
    let db = Db::open(opts(dir.path())).unwrap();
    let got = db
        .select(&all(), &[Matcher::equal(METRIC_NAME, "up")])
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].labels.get("instance"), Some("a"));
    assert_eq!(got[0].timestamps.len(), 11);
    assert!(is_stale_nan(got[0].values[10]));
    assert_eq!(got[1].values, (0..10).map(|i| i as f64).collect::<Vec<_>>());
    let r = db
        .select(
            &SelectHints::range(30_000, 45_000),
            &[Matcher::equal("instance", "b")],
        )
        .unwrap();
    assert_eq!(r[0].timestamps, vec![30_000, 45_000]);
    assert!(
        db.select(&all(), &[Matcher::equal(METRIC_NAME, "pending")])
            .unwrap()
            .is_empty()
    );
    // The rolled-back batch's new series was logged (empty): it is
    // replayed but invisible, and dropped at the next head cut.
    assert_eq!(db.stats().head_series, 3);
}

#[test]
fn directory_lock_refuses_a_second_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    let err = Db::open(opts(dir.path())).unwrap_err();
    assert!(err.to_string().contains("lock data directory"), "{err}");
    drop(db);
    Db::open(opts(dir.path())).unwrap();
}

#[test]
fn out_of_order_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.ooo_window_ms = 60_000;
    let db = Db::open(o).unwrap();
    let mut a = db.appender();
    a.append(&series("m", "a"), 1_000_000, 1.0).unwrap();
    a.commit().unwrap();
    let mut a = db.appender();
    a.append(&series("m", "a"), 950_000, 0.5).unwrap();
    a.append(&series("m", "b"), 940_000, 0.5).unwrap();
    let err = a.append(&series("m", "a"), 939_999, 0.5).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sample for m{instance=\"a\"} at 939999 ms is too old: out-of-order window starts at 940000 ms"
    );
    assert!(matches!(err, AppendError::TooOld { min_t: 940_000, .. }));
    // In order for its own series, a sample may lag the head's newest by up
    // to half a block (a lagging remote-write shard), far beyond the
    // out-of-order window; out of order for its series, it may not.
    a.append(&series("lag", "a"), 400_000, 1.0).unwrap();
    a.commit().unwrap();
    let mut a = db.appender();
    a.append(&series("lag", "a"), 500_000, 2.0).unwrap();
    a.commit().unwrap();
    let mut a = db.appender();
    let err = a.append(&series("lag", "a"), 450_000, 1.5).unwrap_err();
    assert!(
        matches!(err, AppendError::TooOld { min_t: 940_000, .. }),
        "{err}"
    );
    a.rollback();
    let lag = db
        .select(&all(), &[Matcher::equal(METRIC_NAME, "lag")])
        .unwrap();
    assert_eq!(lag[0].timestamps, vec![400_000, 500_000]);
    let got = db
        .select(&all(), &[Matcher::equal(METRIC_NAME, "m")])
        .unwrap();
    assert_eq!(got[0].timestamps, vec![950_000, 1_000_000]);
    assert_eq!(got[1].timestamps, vec![940_000]);
    let st = db.stats();
    assert_eq!(st.out_of_window_rejections, 2);
    assert_eq!(st.out_of_order_accepted, 1);
}

#[test]
fn histogram_views_are_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    let fam = Labels::from_pairs([(METRIC_NAME, "lat"), ("job", "api")]);
    let mut a = db.appender();
    a.append_histogram(&fam, 1000, &hist(&[0.005, 1.0], &[1.0, 3.0, 4.0], 2.5))
        .unwrap();
    a.append_histogram(&fam, 2000, &hist(&[0.005, 1.0], &[2.0, 5.0, 7.0], 4.0))
        .unwrap();
    // A classic untyped `le` series of another family, stored as floats.
    a.append(
        &Labels::from_pairs([(METRIC_NAME, "old_bucket"), ("le", "1"), ("job", "api")]),
        1000,
        9.0,
    )
    .unwrap();
    a.commit().unwrap();

    let b = db
        .select(&all(), &[Matcher::equal(METRIC_NAME, "lat_bucket")])
        .unwrap();
    assert_eq!(
        summary(&b),
        vec![
            (
                r#"lat_bucket{job="api", le="+Inf"}"#.into(),
                vec![1000, 2000],
                vec![4.0, 7.0]
            ),
            (
                r#"lat_bucket{job="api", le="0.005"}"#.into(),
                vec![1000, 2000],
                vec![1.0, 2.0]
            ),
            (
                r#"lat_bucket{job="api", le="1"}"#.into(),
                vec![1000, 2000],
                vec![3.0, 5.0]
            ),
        ]
    );
    let le = db
        .select(
            &all(),
            &[re(METRIC_NAME, ".*_bucket"), Matcher::equal("le", "1")],
        )
        .unwrap();
    let names: Vec<String> = le.iter().map(|s| s.labels.to_string()).collect();
    assert_eq!(
        names,
        vec![
            r#"lat_bucket{job="api", le="1"}"#,
            r#"old_bucket{job="api", le="1"}"#
        ]
    );
    let sc = db
        .select(&all(), &[re(METRIC_NAME, "lat_(sum|count)")])
        .unwrap();
    assert_eq!(
        summary(&sc),
        vec![
            (
                r#"lat_count{job="api"}"#.into(),
                vec![1000, 2000],
                vec![4.0, 7.0]
            ),
            (
                r#"lat_sum{job="api"}"#.into(),
                vec![1000, 2000],
                vec![2.5, 4.0]
            ),
        ]
    );
    // le!="1" keeps sum and count (they have no le) and the other buckets.
    let ne = db
        .select(
            &all(),
            &[
                re(METRIC_NAME, "lat.*"),
                Matcher::new(MatchOp::NotEqual, "le", "1").unwrap(),
            ],
        )
        .unwrap();
    assert_eq!(ne.len(), 4);
    // The family name itself is not a series.
    assert!(
        db.select(&all(), &[Matcher::equal(METRIC_NAME, "lat")])
            .unwrap()
            .is_empty()
    );
    let hs = db
        .select_histograms(&all(), &[Matcher::equal(METRIC_NAME, "lat_bucket")])
        .unwrap();
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].labels.to_string(), r#"lat_bucket{job="api"}"#);
    assert_eq!(
        hs[0].buckets,
        vec![vec![1.0, 2.0], vec![3.0, 5.0], vec![4.0, 7.0]]
    );
    // Skipping views leaves only float series.
    let mut hints = all();
    hints.skip_histogram_views = true;
    assert_eq!(
        db.select(&hints, &[Matcher::equal("job", "api")])
            .unwrap()
            .len(),
        1
    );

    let names = db.label_names(&all(), &[]).unwrap();
    assert_eq!(names, vec!["__name__", "job", "le"]);
    let vals = db.label_values(METRIC_NAME, &all(), &[]).unwrap();
    assert_eq!(
        vals,
        vec!["lat_bucket", "lat_count", "lat_sum", "old_bucket"]
    );
    assert_eq!(db.series_count().unwrap(), 6);
    let les = db.label_values("le", &all(), &[]).unwrap();
    assert_eq!(les, vec!["+Inf", "0.005", "1"]);
    let les = db
        .label_values("le", &all(), &[Matcher::equal(METRIC_NAME, "lat_sum")])
        .unwrap();
    assert!(les.is_empty());
}

/// What `select_visit` with `workers` delivers, in worker order then call
/// order (which must be `select`'s order).
fn visit_all(db: &Db, hints: &SelectHints, m: &[Matcher], workers: usize) -> Vec<Series> {
    let seen = std::sync::Mutex::new(Vec::new());
    db.select_visit(hints, m, workers, &|w, s| {
        assert!(w < workers.max(1), "worker {w} of {workers}");
        seen.lock().unwrap().push((w, s.clone()));
    })
    .unwrap();
    let mut seen = seen.into_inner().unwrap();
    seen.sort_by_key(|(w, _)| *w);
    seen.into_iter().map(|(_, s)| s).collect()
}

/// Writes `hours` of one float series and one histogram at 1-minute steps.
fn fill(db: &Db, from: i64, hours: i64) {
    let fam = Labels::from_pairs([(METRIC_NAME, "lat")]);
    let mut t = from;
    while t < from + hours * HOUR {
        let mut a = db.appender();
        a.append(&series("c", "a"), t, (t / 60_000) as f64).unwrap();
        let n = (t / 60_000) as f64;
        a.append_histogram(&fam, t, &hist(&[1.0], &[n, 2.0 * n], n))
            .unwrap();
        a.commit().unwrap();
        t += 60_000;
    }
}

#[test]
fn head_cut_into_blocks_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let db = Db::open(opts(dir.path())).unwrap();
        fill(&db, 0, 5);
        before = db.select(&all(), &[re(METRIC_NAME, ".+")]).unwrap();
        assert_eq!(visit_all(&db, &all(), &[re(METRIC_NAME, ".+")], 3), before);
        db.maintain().unwrap();
        let st = db.stats();
        // 5 h of data: [0,2h) is due (newest sample 5h-1m >= 2h + 1h);
        // [2h,4h) is not (needs >= 5h).
        assert_eq!(st.head_cuts, 1, "{st:?}");
        assert_eq!(st.blocks, 1);
        assert_eq!(st.wal_checkpoints, 1);
        assert_eq!(st.head_min_time, Some(2 * HOUR));
        assert_eq!(db.select(&all(), &[re(METRIC_NAME, ".+")]).unwrap(), before);
        // Histogram views and floats from the block and the head, streamed.
        for workers in 0..4 {
            assert_eq!(
                visit_all(&db, &all(), &[re(METRIC_NAME, ".+")], workers),
                before
            );
        }
        let part = SelectHints::range(HOUR, 3 * HOUR);
        assert_eq!(
            visit_all(&db, &part, &[re(METRIC_NAME, "lat_.*")], 2),
            db.select(&part, &[re(METRIC_NAME, "lat_.*")]).unwrap()
        );
        // Samples in the persisted range are now rejected.
        let mut a = db.appender();
        assert!(matches!(
            a.append(&series("c", "a"), HOUR, 1.0),
            Err(AppendError::TooOld { .. })
        ));
        a.rollback();
        db.close().unwrap();
    }
    let db = Db::open(opts(dir.path())).unwrap();
    assert_eq!(db.select(&all(), &[re(METRIC_NAME, ".+")]).unwrap(), before);
    let h = db.select_histograms(&all(), &[]).unwrap();
    let n: usize = h.iter().map(|h| h.timestamps.len()).sum();
    assert_eq!(n, 5 * 60);
    // A forced cut persists everything.
    db.cut_head_before(i64::MAX).unwrap();
    assert_eq!(db.stats().head_series, 0);
    assert_eq!(db.select(&all(), &[re(METRIC_NAME, ".+")]).unwrap(), before);
    let wal_files = std::fs::read_dir(dir.path().join("wal")).unwrap().count();
    assert!(wal_files <= 3, "old WAL segments deleted");
}

#[test]
fn snapshot_holds_blocks_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    fill(&db, 0, 4);
    db.maintain().unwrap();
    assert_eq!(db.stats().blocks, 1);
    let want = db.select(&all(), &[re(METRIC_NAME, ".+")]).unwrap();
    let snap = db.snapshot("backup-1").unwrap();
    assert_eq!(snap, dir.path().join("snapshots").join("backup-1"));
    assert!(db.snapshot("backup-1").is_err());
    assert!(db.snapshot("../x").is_err());
    // The snapshot is a data directory of its own.
    let copy = Db::open(opts(&snap)).unwrap();
    assert_eq!(copy.stats().blocks, 2);
    assert_eq!(copy.select(&all(), &[re(METRIC_NAME, ".+")]).unwrap(), want);
}

#[test]
fn db_is_shareable_and_interval_sync_fsyncs_in_background() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Db>();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.wal_sync = watchpost::storage::WalSyncPolicy::Interval(std::time::Duration::from_millis(5));
    let db = Arc::new(Db::open(o).unwrap());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let mut a = db.appender();
                    a.append(&series("c", &format!("w{w}")), i * 1000, i as f64)
                        .unwrap();
                    a.commit().unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    // The background syncer fsyncs within a few intervals (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.stats().wal_fsyncs == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(db.stats().wal_fsyncs > 0);
    let got = db
        .select(&all(), &[Matcher::equal(METRIC_NAME, "c")])
        .unwrap();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|s| s.timestamps.len() == 50));
}

/// Reads running while the head is cut into a block always see every
/// sample: the range is in the head, in the new block, or both (merged),
/// never in neither.
#[test]
fn reads_during_a_head_cut_see_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    // 200 series x 5 h at 1 min: [0, 2h) is due for a cut.
    let mut a = db.appender();
    for m in 0..200 {
        let l = series("cut", &m.to_string());
        for i in 0..5 * 60 {
            a.append(&l, i * 60_000, i as f64).unwrap();
        }
    }
    a.commit().unwrap();
    let total = |db: &Db| -> usize {
        db.select(&all(), &[Matcher::equal(METRIC_NAME, "cut")])
            .unwrap()
            .iter()
            .map(|s| s.timestamps.len())
            .sum()
    };
    assert_eq!(total(&db), 200 * 300);
    // The streaming read holds the same lock across blocks and head.
    let visited = |db: &Db| -> usize {
        let n = std::sync::atomic::AtomicUsize::new(0);
        db.select_visit(&all(), &[Matcher::equal(METRIC_NAME, "cut")], 2, &|_, s| {
            n.fetch_add(s.timestamps.len(), std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        n.into_inner()
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        let reader = sc.spawn(|| {
            let mut reads = 0;
            // Bounded: stops once the cut is done (and after 100k reads).
            while !done.load(std::sync::atomic::Ordering::Acquire) && reads < 100_000 {
                assert_eq!(total(&db), 200 * 300, "read {reads} lost samples");
                assert_eq!(visited(&db), 200 * 300, "visit {reads} lost samples");
                reads += 1;
            }
        });
        db.maintain().unwrap();
        done.store(true, std::sync::atomic::Ordering::Release);
        reader.join().unwrap();
    });
    assert_eq!(db.stats().head_cuts, 1);
    assert_eq!(total(&db), 200 * 300);
    assert_eq!(visited(&db), 200 * 300);
}
