//! Head tests: append/commit/read, out-of-order window, histograms, replay
//! from the WAL, truncation and checkpoints.

use std::sync::Arc;

use super::{Head, ReplayState};
use crate::model::{HistogramSample, Labels, METRIC_NAME, MatchOp, Matcher, stale_nan};
use crate::storage::api::{AppendError, Appender, SelectHints};
use crate::storage::wal::{Wal, WalCounters, WalSyncPolicy, replay};

fn l(name: &str, job: &str) -> Labels {
    Labels::from_pairs([(METRIC_NAME, name), ("job", job)])
}

/// A head over the WAL in `dir` (replayed first), fsyncing every commit.
pub(super) fn open(dir: &std::path::Path, window: i64) -> Head {
    let head = Head::new(window, window);
    let counters = Arc::new(WalCounters::default());
    let mut st = ReplayState::default();
    let out = replay(dir, &counters, |r| head.replay_record(r, &mut st)).unwrap();
    let wal = Wal::open(
        dir,
        out.next_segment,
        WalSyncPolicy::EveryCommit,
        1 << 20,
        counters,
    )
    .unwrap();
    head.set_wal(wal);
    head
}

fn all() -> SelectHints {
    SelectHints::range(i64::MIN, i64::MAX)
}

fn hist(bounds: &Arc<[f64]>, counts: &[f64], sum: f64) -> HistogramSample {
    HistogramSample {
        upper_bounds: bounds.clone(),
        bucket_counts: counts.to_vec(),
        sum,
        count: *counts.last().unwrap(),
    }
}

#[test]
fn append_commit_select_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let bounds: Arc<[f64]> = Arc::from(vec![0.1, 1.0]);
    {
        let head = open(dir.path(), 600_000);
        let mut a: Box<dyn Appender> = Box::new(super::HeadAppender::new(&head));
        a.append(&l("up", "a"), 1000, 1.0).unwrap();
        a.append(&l("up", "a"), 2000, stale_nan()).unwrap();
        a.append(&l("up", "b"), 1000, 0.0).unwrap();
        a.append_histogram(&l("lat", "a"), 1000, &hist(&bounds, &[1.0, 2.0, 3.0], 0.5))
            .unwrap();
        let sum = a.commit().unwrap();
        assert_eq!(sum.float_samples, 3);
        assert_eq!(sum.histogram_samples, 1);
        assert_eq!(sum.new_series, 3);
        // Nothing committed: a rolled-back batch leaves no sample.
        let mut a: Box<dyn Appender> = Box::new(super::HeadAppender::new(&head));
        a.append(&l("up", "c"), 1000, 1.0).unwrap();
        a.rollback();
        // Histogram bounds change: new run.
        let b2: Arc<[f64]> = Arc::from(vec![0.5]);
        let mut a: Box<dyn Appender> = Box::new(super::HeadAppender::new(&head));
        a.append_histogram(&l("lat", "a"), 2000, &hist(&b2, &[4.0, 5.0], 1.5))
            .unwrap();
        a.commit().unwrap();
        head.wal().unwrap().close().unwrap();
    }
    let head = open(dir.path(), 600_000);
    let got = head.select(&all(), &[Matcher::equal(METRIC_NAME, "up")]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].timestamps, vec![1000, 2000]);
    assert!(crate::model::is_stale_nan(got[0].values[1]));
    let b = head.select(&all(), &[Matcher::equal(METRIC_NAME, "lat_bucket")]);
    let les: Vec<_> = b
        .iter()
        .map(|s| s.labels.get("le").unwrap().to_string())
        .collect();
    assert_eq!(les, vec!["+Inf", "0.1", "0.5", "1"]);
    let inf = &b[0];
    assert_eq!(inf.timestamps, vec![1000, 2000]);
    assert_eq!(inf.values, vec![3.0, 5.0]);
    let hs = head.select_histograms(&all(), &[Matcher::equal(METRIC_NAME, "lat_bucket")]);
    assert_eq!(hs.len(), 2);
    assert_eq!(hs[1].upper_bounds[..], [0.5]);
    let names = head.label_names(&all(), &[]);
    assert!(names.contains("le") && names.contains("job"));
    let vals = head.label_values(METRIC_NAME, &all(), &[]);
    assert_eq!(
        vals.into_iter().collect::<Vec<_>>(),
        vec!["lat_bucket", "lat_count", "lat_sum", "up"]
    );
    assert!(
        head.select(&all(), &[Matcher::equal("job", "c")])
            .is_empty()
    );
}

#[test]
fn out_of_order_window_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let head = open(dir.path(), 600_000);
    let mut a: Box<dyn Appender> = Box::new(super::HeadAppender::new(&head));
    a.append(&l("m", "a"), 1_000_000, 1.0).unwrap();
    a.commit().unwrap();
    let mut a: Box<dyn Appender> = Box::new(super::HeadAppender::new(&head));
    // Within 10 minutes: accepted out of order.
    a.append(&l("m", "a"), 1_000_000 - 600_000, 0.5).unwrap();
    let err = a
        .append(&l("m", "a"), 1_000_000 - 600_001, 0.5)
        .unwrap_err();
    assert_eq!(
        err,
        AppendError::TooOld {
            series: "m{job=\"a\"}".into(),
            t: 399_999,
            min_t: 400_000
        }
    );
    let err = a.append(&l("m", "a"), 1_000_000, 2.0).unwrap_err();
    assert!(matches!(
        err,
        AppendError::DuplicateTimestamp { t: 1_000_000, .. }
    ));
    a.append(&l("m", "a"), 1_000_000, 1.0).unwrap();
    let err = a
        .append_histogram(
            &l("m", "a"),
            1_000_001,
            &HistogramSample::stale(Arc::from(vec![1.0])),
        )
        .unwrap_err();
    assert!(matches!(err, AppendError::KindMismatch { .. }));
    a.commit().unwrap();
    assert_eq!(
        head.counters
            .too_old
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let got = head.select(
        &all(),
        &[Matcher::new(MatchOp::RegexMatch, METRIC_NAME, "m").unwrap()],
    );
    assert_eq!(got[0].timestamps, vec![400_000, 1_000_000]);
    assert_eq!(got[0].values, vec![0.5, 1.0]);
}

#[test]
fn truncate_and_checkpoint_keep_live_data() {
    let dir = tempfile::tempdir().unwrap();
    let bounds: Arc<[f64]> = Arc::from(vec![1.0]);
    {
        let head = open(dir.path(), 600_000);
        let mut a: Box<dyn Appender> = Box::new(super::HeadAppender::new(&head));
        for i in 0..100 {
            a.append(&l("old", "a"), i * 1000, i as f64).unwrap();
            a.append(&l("live", "a"), i * 1000 + 50_000, i as f64)
                .unwrap();
            a.append_histogram(
                &l("h", "a"),
                i * 1000 + 50_000,
                &hist(&bounds, &[i as f64, i as f64 * 2.0], 1.0),
            )
            .unwrap();
        }
        a.commit().unwrap();
        let wal = head.wal().unwrap().clone();
        let n = {
            let _x = head.exclusive();
            let n = wal.cut_segment().unwrap();
            assert_eq!(head.truncate_before_locked(100_000), 1);
            head.reset_logged_bounds();
            n
        };
        let mut cp = wal.checkpoint(n).unwrap();
        head.write_checkpoint(&mut cp).unwrap();
        cp.finish().unwrap();
        // After the checkpoint, appends continue in the new segment.
        let mut a: Box<dyn Appender> = Box::new(super::HeadAppender::new(&head));
        a.append(&l("live", "a"), 200_000, 7.0).unwrap();
        a.append_histogram(&l("h", "a"), 200_000, &hist(&bounds, &[1.0, 9.0], 1.0))
            .unwrap();
        a.commit().unwrap();
        wal.close().unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("checkpoint.")),
        "{names:?}"
    );
    assert!(!names.contains(&"00000001".to_string()), "{names:?}");
    let head = open(dir.path(), 600_000);
    assert!(
        head.select(&all(), &[Matcher::equal(METRIC_NAME, "old")])
            .is_empty()
    );
    let live = head.select(&all(), &[Matcher::equal(METRIC_NAME, "live")]);
    assert_eq!(live[0].timestamps.first(), Some(&100_000));
    assert_eq!(live[0].timestamps.last(), Some(&200_000));
    assert_eq!(live[0].timestamps.len(), 51);
    let h = head.select(&all(), &[Matcher::equal(METRIC_NAME, "h_count")]);
    assert_eq!(h[0].timestamps.len(), 51);
    assert_eq!(h[0].values.last(), Some(&9.0));
}

/// Commits from several threads under `EveryCommit` share fsyncs (waiters
/// park while one runs) and every acknowledged sample survives a reopen.
#[test]
fn concurrent_commits_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    const THREADS: usize = 4;
    const COMMITS: i64 = 40;
    {
        let head = open(dir.path(), i64::MAX / 4);
        std::thread::scope(|s| {
            for th in 0..THREADS {
                let head = &head;
                s.spawn(move || {
                    let job = format!("j{th}");
                    for t in 0..COMMITS {
                        let mut a: Box<dyn Appender> = Box::new(super::HeadAppender::new(head));
                        a.append(&l("up", &job), t, t as f64).unwrap();
                        assert_eq!(a.commit().unwrap().float_samples, 1);
                    }
                });
            }
        });
    }
    let head = open(dir.path(), i64::MAX / 4);
    let got = head.select(&all(), &[Matcher::equal(METRIC_NAME, "up")]);
    assert_eq!(got.len(), THREADS);
    for s in &got {
        let want: Vec<i64> = (0..COMMITS).collect();
        assert_eq!(s.timestamps, want, "{}", s.labels);
    }
}
