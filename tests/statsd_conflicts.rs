//! Type conflicts across doors (spec §11: "applies across doors, a pushed
//! family vs a StatsD family"), against the real store: a series another
//! door already wrote as one kind (float or histogram) keeps its kind; the
//! StatsD sample of the other kind is refused by the store at flush and
//! counted in `statsd_type_conflicts_total{family,type}`, and every other
//! sample of the flush is still written.

use std::net::UdpSocket;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use watchpost::ingest::statsd::{StatsdConfig, StatsdServer};
use watchpost::model::{HistogramSample, Labels, ManualClock, Matcher};
use watchpost::storage::{Appendable, Db, DbOptions, Querier, SelectHints};

const T: i64 = 1_700_000_000_000;

fn open(dir: &Path, clock: &ManualClock) -> Arc<Db> {
    let mut o = DbOptions::new(dir);
    o.maintenance_interval = None;
    o.clock = Arc::new(clock.clone());
    Arc::new(Db::open(o).expect("open db"))
}

fn wait_lines(s: &StatsdServer, n: u64) {
    let m = s.metrics();
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.lines_received.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} lines arrived",
            m.lines_received.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn floats(db: &Db, name: &str) -> Vec<(String, Vec<i64>, Vec<f64>)> {
    db.select(
        &SelectHints::range(i64::MIN, i64::MAX),
        &[Matcher::equal("__name__", name)],
    )
    .expect("select")
    .into_iter()
    .map(|s| (s.labels.to_string(), s.timestamps, s.values))
    .collect()
}

#[test]
fn pushed_series_keeps_its_kind_and_statsd_counts_the_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T - 5_000);
    let db = open(dir.path(), &clock);

    // Another door (remote write, a push) wrote `latency` as a float series
    // and `queue_depth` as a histogram series.
    let mut app = db.appender();
    let float_series = Labels::from_pairs([("__name__", "latency")]);
    app.append(&float_series, T - 5_000, 0.25).unwrap();
    let hist_series = Labels::from_pairs([("__name__", "queue_depth")]);
    let h = HistogramSample {
        upper_bounds: Arc::from(vec![1.0]),
        bucket_counts: vec![1.0, 1.0],
        sum: 0.5,
        count: 1.0,
    };
    app.append_histogram(&hist_series, T - 5_000, &h).unwrap();
    app.commit().unwrap();

    let cfg = StatsdConfig {
        udp_addrs: vec!["127.0.0.1:0".parse().unwrap()],
        background_flush: false,
        write_self_metrics: false,
        ..Default::default()
    };
    let s = StatsdServer::start(cfg, db.clone(), Arc::new(clock.clone())).expect("start");
    let addr = s.local_addrs().udp[0];
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    // `latency` as a StatsD histogram clashes with the float series,
    // `queue.depth` as a gauge clashes with the histogram series; `ok` is
    // unrelated and must be written anyway.
    c.send_to(b"latency:120|ms\nqueue.depth:7|g\nok:1|c\n", addr)
        .unwrap();
    wait_lines(&s, 3);
    clock.set(T);
    let report = s.flush_now().expect("flush");

    // `latency` (histogram): the T-10s zero sample and the T sample are
    // refused; `queue_depth` (gauge): its T sample.
    assert_eq!(report.type_conflicts, 3, "{report:?}");
    assert_eq!(report.append_errors, 0, "{report:?}");
    let m = s.metrics();
    assert_eq!(m.type_conflicts("latency"), 2);
    assert_eq!(m.type_conflicts("queue_depth"), 1);
    let mut text = String::new();
    m.write_text(&mut text);
    assert!(
        text.contains("statsd_type_conflicts_total{family=\"latency\",type=\"histogram\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("statsd_type_conflicts_total{family=\"queue_depth\",type=\"gauge\"} 1\n"),
        "{text}"
    );

    // The store kept the first kind and value; the rest of the flush landed.
    assert_eq!(
        floats(&db, "latency"),
        vec![("latency".to_string(), vec![T - 5_000], vec![0.25])]
    );
    assert!(floats(&db, "queue_depth").is_empty());
    let hs = db
        .select_histograms(
            &SelectHints::range(i64::MIN, i64::MAX),
            &[Matcher::equal("__name__", "queue_depth_bucket")],
        )
        .expect("select histograms");
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].timestamps, vec![T - 5_000]);
    assert_eq!(hs[0].count, vec![1.0]);
    assert_eq!(
        floats(&db, "ok_total"),
        vec![("ok_total".to_string(), vec![T - 10_000, T], vec![0.0, 1.0])]
    );
    s.shutdown().unwrap();
}
