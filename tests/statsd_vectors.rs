//! Every test vector of `shared/specs/statsd.md` §15, one test each, named
//! after the vector id. Default config, flush interval 10 s, lines received
//! in (T−10s, T], one flush at T; samples go through the storage seam into
//! the recording test double.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Rec, RecordingStore, series_id, wait_until};
use watchpost::ingest::statsd::{
    Aggregator, AggregatorConfig, BadReason, DEFAULT_BUCKETS, GaugeSign, StatsdConfig,
    StatsdMetrics, StatsdServer,
};
use watchpost::model::{ManualClock, is_stale_nan};
use watchpost::storage::Appendable;

use BadReason::*;

/// First flush time: a multiple of 10 s.
const T: i64 = 1_700_000_000_000;
const DELTA: i64 = 10_000;

struct Harness {
    agg: Aggregator,
    store: RecordingStore,
    m: Arc<StatsdMetrics>,
    t: i64,
}

impl Harness {
    fn new(cfg: AggregatorConfig) -> Self {
        let m = StatsdMetrics::new();
        Harness {
            agg: Aggregator::new(cfg, None, m.clone()),
            store: RecordingStore::default(),
            m,
            t: T - DELTA,
        }
    }
    /// Sends datagrams 3 s before the next flush.
    fn send(&mut self, datagrams: &[&[u8]]) -> &mut Self {
        for d in datagrams {
            self.agg.ingest(d, self.t + DELTA - 3000);
        }
        self
    }
    /// Flushes at the next 10 s boundary and returns that flush's records.
    fn flush(&mut self) -> Flushed {
        self.t += DELTA;
        let samples = self.agg.flush(self.t).expect("flush");
        let mut app = self.store.appender();
        for s in &samples {
            s.append_to(&mut *app).expect("append");
        }
        app.commit().expect("commit");
        Flushed {
            recs: samples
                .into_iter()
                .map(|s| match s {
                    watchpost::ingest::statsd::FlushSample::Float { labels, t, v, .. } => {
                        Rec::Float { labels, t, v }
                    }
                    watchpost::ingest::statsd::FlushSample::Histogram { labels, t, h } => {
                        Rec::Hist { labels, t, h }
                    }
                })
                .collect(),
            t: self.t,
            m: self.m.clone(),
        }
    }
}

struct Flushed {
    recs: Vec<Rec>,
    t: i64,
    m: Arc<StatsdMetrics>,
}

/// Expected histogram shape.
enum H<'a> {
    /// k in every bucket with le >= a.
    At(f64, f64),
    /// Cumulative counts from each listed boundary on.
    Cum(&'a [(f64, f64)]),
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

impl Flushed {
    fn at_t(&self) -> impl Iterator<Item = &Rec> {
        self.recs.iter().filter(move |r| r.t() == self.t)
    }
    /// Exactly these float series at T (histograms checked separately).
    fn floats(&self, want: &[(&str, f64)]) -> &Self {
        let mut got: Vec<(String, f64)> = self
            .at_t()
            .filter_map(|r| match r {
                Rec::Float { v, .. } => Some((r.id(), *v)),
                Rec::Hist { .. } => None,
            })
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want: Vec<(String, f64)> = want.iter().map(|(s, v)| (s.to_string(), *v)).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let ok = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.0 == w.0 && close(g.1, w.1));
        assert!(ok, "float series at T:\n got  {got:?}\n want {want:?}");
        self
    }
    fn hist_count(&self) -> usize {
        self.at_t()
            .filter(|r| matches!(r, Rec::Hist { .. }))
            .count()
    }
    fn no_hists(&self) -> &Self {
        assert_eq!(
            self.hist_count(),
            0,
            "unexpected histograms: {:?}",
            self.recs
        );
        self
    }
    /// Nothing written at all.
    fn nothing(&self) -> &Self {
        assert!(
            self.recs.is_empty(),
            "expected no series, got {:?}",
            self.recs
        );
        self
    }
    fn hist(&self, id: &str, shape: H<'_>, sum: f64, count: f64) -> &Self {
        let h = self
            .at_t()
            .find_map(|r| match r {
                Rec::Hist { h, .. } if r.id() == id => Some(h),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no histogram {id} at T in {:?}", self.recs));
        assert_eq!(&h.upper_bounds[..], &DEFAULT_BUCKETS[..]);
        let bounds: Vec<f64> = DEFAULT_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .collect();
        for (i, le) in bounds.iter().enumerate() {
            let want = match &shape {
                H::At(k, a) => {
                    if *le >= *a {
                        *k
                    } else {
                        0.0
                    }
                }
                H::Cum(list) => list
                    .iter()
                    .filter(|(a, _)| *le >= *a)
                    .map(|(_, k)| *k)
                    .next_back()
                    .unwrap_or(0.0),
            };
            assert!(
                close(h.bucket_counts[i], want),
                "{id} bucket le={le}: got {}, want {want} ({:?})",
                h.bucket_counts[i],
                h.bucket_counts
            );
        }
        assert!(close(h.sum, sum), "{id} sum: got {}, want {sum}", h.sum);
        assert!(
            close(h.count, count),
            "{id} count: got {}, want {count}",
            h.count
        );
        self
    }
    /// Exactly these bad-line counts (all other reasons zero).
    fn bad(&self, want: &[(BadReason, u64)]) -> &Self {
        for r in BadReason::ALL {
            let w = want.iter().find(|(x, _)| *x == r).map_or(0, |x| x.1);
            assert_eq!(self.m.bad_lines(r), w, "bad lines {r}");
        }
        self
    }
    fn tagerr(&self, n: u64) -> &Self {
        assert_eq!(
            self.m.tag_errors.load(std::sync::atomic::Ordering::Relaxed),
            n,
            "tag errors"
        );
        self
    }
    fn conflict(&self, family: &str, n: u64) -> &Self {
        assert_eq!(
            self.m.type_conflicts(family),
            n,
            "type conflicts of {family}"
        );
        self
    }
    fn lines(&self, n: u64) -> &Self {
        assert_eq!(
            self.m
                .lines_received
                .load(std::sync::atomic::Ordering::Relaxed),
            n,
            "lines"
        );
        self
    }
}

fn run(d: &str) -> Flushed {
    Harness::new(AggregatorConfig::default())
        .send(&[d.as_bytes()])
        .flush()
}

fn run_bytes(d: &[u8]) -> Flushed {
    Harness::new(AggregatorConfig::default()).send(&[d]).flush()
}

/// A counter/float vector with no bad lines and no histograms.
fn ok(d: &str, want: &[(&str, f64)]) -> Flushed {
    let f = run(d);
    f.floats(want).no_hists().bad(&[]);
    f
}

/// A vector that writes nothing and counts bad lines.
fn bad(d: &str, want: &[(BadReason, u64)]) {
    run(d).nothing().bad(want);
}

// ---- Counters ----
#[test]
fn c1() {
    ok("req:1|c", &[("req_total", 1.0)]);
}
#[test]
fn c2() {
    ok("req:1|c\nreq:2|c", &[("req_total", 3.0)]);
}
#[test]
fn c3() {
    ok("req:1|c|@0.1", &[("req_total", 10.0)]);
}
#[test]
fn c4() {
    ok("req:2.5|c", &[("req_total", 2.5)]);
}
#[test]
fn c5() {
    ok("req:+3|c", &[("req_total", 3.0)]);
}
#[test]
fn c6() {
    bad("req:-1|c", &[(NegativeCounter, 1)]);
}
#[test]
fn c7() {
    ok("req:1e3|c", &[("req_total", 1000.0)]);
}
#[test]
fn c8() {
    ok("req:1|c|@0.5|#a:b", &[("req_total{a=\"b\"}", 2.0)]);
}
#[test]
fn c9() {
    ok("req:1|c|#a:b|@0.5", &[("req_total{a=\"b\"}", 2.0)]);
}
#[test]
fn c10() {
    ok("req:1|c|@0", &[("req_total", 1.0)]);
}
#[test]
fn c11() {
    bad("req:1|c|@1.5", &[(InvalidSampleRate, 1)]);
}
#[test]
fn c12() {
    bad("req:1|c|@", &[(InvalidSampleRate, 1)]);
}
#[test]
fn c13() {
    bad("req:1|c|@abc", &[(InvalidSampleRate, 1)]);
}
#[test]
fn c14() {
    ok("req:1:2:3|c", &[("req_total", 6.0)]);
}
#[test]
fn c15() {
    ok("req:1|c:2|c", &[("req_total", 3.0)]);
}
#[test]
fn c16() {
    ok("req:1|c:4|c|@0.5", &[("req_total", 9.0)]);
}
#[test]
fn c17() {
    bad("req:1|c:2|c|#a:b", &[(MalformedLine, 1)]);
}
#[test]
fn c18() {
    ok("req_total:1|c", &[("req_total", 1.0)]);
}
#[test]
fn c19() {
    ok("req:1|c|@0.3", &[("req_total", 3.3333333333333335)]);
}

// ---- Gauges ----
#[test]
fn g1() {
    ok("temp:42|g", &[("temp", 42.0)]);
}
#[test]
fn g2() {
    ok("temp:+4|g", &[("temp", 4.0)]);
}
#[test]
fn g3() {
    ok("temp:-5|g", &[("temp", -5.0)]);
}
#[test]
fn g4() {
    ok("temp:10|g\ntemp:-4|g", &[("temp", 6.0)]);
}
#[test]
fn g5() {
    ok("temp:10|g\ntemp:-5|g", &[("temp", 5.0)]);
}
#[test]
fn g6() {
    ok("temp:10|g\ntemp:0|g\ntemp:-5|g", &[("temp", -5.0)]);
}
#[test]
fn g7() {
    ok("temp:3|g|@0.5", &[("temp", 3.0)]);
}
#[test]
fn g8() {
    ok("temp:1|g\ntemp:2|g\ntemp:3|g", &[("temp", 3.0)]);
}
#[test]
fn g9() {
    ok("temp:5:+2:-1|g", &[("temp", 6.0)]);
}
#[test]
fn g10() {
    bad("temp:+-1|g", &[(MalformedValue, 1)]);
}
#[test]
fn g11() {
    bad(
        "temp:NaN|g\ntemp:inf|g\ntemp:1e400|g",
        &[(MalformedValue, 3)],
    );
}
#[test]
fn g12() {
    ok("temp:.5|g", &[("temp", 0.5)]);
}
#[test]
fn g13() {
    let mut h = Harness::new(AggregatorConfig::default());
    h.send(&[b"temp:7|g"]).flush().floats(&[("temp", 7.0)]);
    h.flush().floats(&[("temp", 7.0)]).nothing_but_t();
}
#[test]
fn g14() {
    ok("py.g:0|g\npy.g:-5|g", &[("py_g", -5.0)]);
}
#[test]
fn g15() {
    let cfg = AggregatorConfig {
        gauge_sign: GaugeSign::Absolute,
        ..Default::default()
    };
    Harness::new(cfg)
        .send(&[b"temp:10|g\ntemp:-5|g"])
        .flush()
        .floats(&[("temp", -5.0)]);
}

impl Flushed {
    /// Every record of this flush is at T (no zero samples, no markers).
    fn nothing_but_t(&self) -> &Self {
        assert!(self.recs.iter().all(|r| r.t() == self.t), "{:?}", self.recs);
        self
    }
}

// ---- Timers and histograms ----
fn hist(d: &str, id: &str, shape: H<'_>, sum: f64, count: f64) {
    let f = run(d);
    f.floats(&[]).bad(&[]).hist(id, shape, sum, count);
    assert_eq!(f.hist_count(), 1);
}
#[test]
fn t1() {
    hist("lat:320|ms", "lat", H::At(1.0, 0.5), 0.32, 1.0);
}
#[test]
fn t2() {
    hist("lat:320|ms|@0.1", "lat", H::At(10.0, 0.5), 3.2, 10.0);
}
#[test]
fn t3() {
    hist("lat:5|ms", "lat", H::At(1.0, 0.005), 0.005, 1.0);
}
#[test]
fn t4() {
    hist("lat:0|ms", "lat", H::At(1.0, 0.005), 0.0, 1.0);
}
#[test]
fn t5() {
    bad("lat:-1|ms", &[(NegativeTimer, 1)]);
}
#[test]
fn t6() {
    hist(
        "lat:100:200:300|ms",
        "lat",
        H::Cum(&[(0.1, 1.0), (0.25, 2.0), (0.5, 3.0)]),
        0.6,
        3.0,
    );
}
#[test]
fn t7() {
    hist(
        "lat:100:200|ms|@0.5|#a:b",
        "lat{a=\"b\"}",
        H::Cum(&[(0.1, 2.0), (0.25, 4.0)]),
        0.6,
        4.0,
    );
}
#[test]
fn t8() {
    bad("lat:1:x:2|ms", &[(MalformedValue, 1)]);
}
#[test]
fn t9() {
    hist("lat:1::2|ms", "lat", H::At(2.0, 0.005), 0.003, 2.0);
}
#[test]
fn t10() {
    hist("lat:20000|ms", "lat", H::At(1.0, 25.0), 20.0, 1.0);
}
#[test]
fn t11() {
    hist("lat:320.000000|ms", "lat", H::At(1.0, 0.5), 0.32, 1.0);
}
#[test]
fn t12() {
    hist(
        "lat:1|ms|@0.3",
        "lat",
        H::At(3.3333333333333335, 0.005),
        0.0033333333333333335,
        3.3333333333333335,
    );
}
#[test]
fn t13() {
    hist(
        "lat:99999999|ms",
        "lat",
        H::At(1.0, f64::INFINITY),
        99999.999,
        1.0,
    );
}
#[test]
fn t14() {
    hist("lat:250|ms", "lat", H::At(1.0, 0.25), 0.25, 1.0);
}
#[test]
fn h1() {
    hist("size:5|h", "size", H::At(1.0, 5.0), 5.0, 1.0);
}
#[test]
fn h2() {
    hist("size:0.003|d", "size", H::At(1.0, 0.005), 0.003, 1.0);
}
#[test]
fn h3() {
    hist("size:-2|h", "size", H::At(1.0, 0.005), -2.0, 1.0);
}
#[test]
fn h4() {
    hist("size:1e-05|h", "size", H::At(1.0, 0.005), 1e-05, 1.0);
}
#[test]
fn h5() {
    hist("size:2|d|@0.25", "size", H::At(4.0, 2.5), 8.0, 4.0);
}
#[test]
fn h6() {
    hist(
        "size:1|h|#le:5",
        "size{exported_le=\"5\"}",
        H::At(1.0, 1.0),
        1.0,
        1.0,
    );
}
#[test]
fn h7() {
    hist(
        "api.response_time:230|h|#method:GET",
        "api_response_time{method=\"GET\"}",
        H::At(1.0, 250.0),
        230.0,
        1.0,
    );
}
#[test]
fn h8() {
    hist(
        "x:100|ms\nx:100|h",
        "x",
        H::Cum(&[(0.1, 1.0), (100.0, 2.0)]),
        100.1,
        2.0,
    );
}

// ---- Sets ----
#[test]
fn s1() {
    ok(
        "users:alice|s\nusers:bob|s\nusers:alice|s",
        &[("users", 2.0)],
    );
}
#[test]
fn s2() {
    ok("users:a:b|s", &[("users", 1.0)]);
}
#[test]
fn s3() {
    ok("users:1|s|@0.5", &[("users", 1.0)]);
}
#[test]
fn s4() {
    let mut h = Harness::new(AggregatorConfig::default());
    h.send(&[b"users:a|s\nusers:b|s"])
        .flush()
        .floats(&[("users", 2.0)]);
    h.flush().floats(&[("users", 0.0)]);
}
#[test]
fn s5() {
    bad("users:|s", &[(MalformedValue, 1)]);
}
#[test]
fn s6() {
    ok("users:a|s:b|s", &[("users", 2.0)]);
}

// ---- Framing and packets ----
#[test]
fn p1() {
    let f = run("a:1|c\nb:2|g\nc:3|ms\nd:x|s");
    f.floats(&[("a_total", 1.0), ("b", 2.0), ("d", 1.0)])
        .bad(&[]);
    f.hist("c", H::At(1.0, 0.005), 0.003, 1.0);
}
#[test]
fn p2() {
    ok("a:1|c\n", &[("a_total", 1.0)]).lines(1);
}
#[test]
fn p3() {
    ok("a:1|c\r\nb:1|c\r\n", &[("a_total", 1.0), ("b_total", 1.0)]);
}
#[test]
fn p4() {
    ok("\n\na:1|c\n\n", &[("a_total", 1.0)]).lines(1);
}
#[test]
fn p5() {
    run("a:1|c\nbogus\nb:1|c")
        .floats(&[("a_total", 1.0), ("b_total", 1.0)])
        .bad(&[(MalformedLine, 1)]);
}
#[test]
fn p6() {
    let d: Vec<String> = (0..43).map(|i| format!("k{i:02}:1|c")).collect();
    let d = d.join("\n");
    assert_eq!(d.len(), 343);
    let want: Vec<(String, f64)> = (0..43).map(|i| (format!("k{i:02}_total"), 1.0)).collect();
    let want: Vec<(&str, f64)> = want.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    ok(&d, &want).lines(43);
}
#[test]
fn p7() {
    ok(
        "dd.count:1|c|#env:prod,novalue\n",
        &[("dd_count_total{env=\"prod\"}", 1.0)],
    )
    .tagerr(1);
}

// ---- Names and malformed lines ----
#[test]
fn n1() {
    ok("api.http-requests:1|c", &[("api_http_requests_total", 1.0)]);
}
#[test]
fn n2() {
    ok("1st.metric:1|c", &[("_1st_metric_total", 1.0)]);
}
#[test]
fn n3() {
    ok("a b:1|g", &[("a_b", 1.0)]);
}
#[test]
fn n4() {
    ok("café:1|g", &[("caf_", 1.0)]);
}
#[test]
fn n5() {
    ok("a--b:1|g\na..b:2|g", &[("a_b", 1.0), ("a__b", 2.0)]);
}
#[test]
fn n6() {
    bad(":1|c", &[(MalformedLine, 1)]);
}
#[test]
fn n7() {
    bad("req", &[(MalformedLine, 1)]);
}
#[test]
fn n8() {
    bad("req:1", &[(MissingType, 1)]);
}
#[test]
fn n9() {
    bad("req:1|x\nreq:1|C", &[(UnknownType, 2)]);
}
#[test]
fn n10() {
    bad("req:|c", &[(MalformedValue, 1)]);
}
#[test]
fn n11() {
    run_bytes(b"r\xffq:1|c").nothing().bad(&[(InvalidUtf8, 1)]);
}
#[test]
fn n12() {
    bad("req:0x10|c\nreq:1_000|c\nreq: 1|c", &[(MalformedValue, 3)]);
}
#[test]
fn n13() {
    ok("_scale:1|g", &[("_scale", 1.0)]);
}
#[test]
fn n14() {
    ok("a.b:1|c\na_b:1|c", &[("a_b_total", 2.0)]);
}

// ---- Tags ----
#[test]
fn tg1() {
    ok(
        "req:1|c|#env:prod,region:us",
        &[("req_total{env=\"prod\",region=\"us\"}", 1.0)],
    );
}
#[test]
fn tg2() {
    ok(
        "req:1|c|#region:us,env:prod\nreq:1|c|#env:prod,region:us",
        &[("req_total{env=\"prod\",region=\"us\"}", 2.0)],
    );
}
#[test]
fn tg3() {
    ok(
        "req:1|c|#novalue,env:prod",
        &[("req_total{env=\"prod\"}", 1.0)],
    )
    .tagerr(1);
}
#[test]
fn tg4() {
    ok("req:1|c|#k:a:b", &[("req_total{k=\"a:b\"}", 1.0)]);
}
#[test]
fn tg5() {
    ok(
        "req:1|c|#my.tag:1,9k:2",
        &[("req_total{_9k=\"2\",my_tag=\"1\"}", 1.0)],
    );
}
#[test]
fn tg6() {
    ok("req:1|c|#env:a,env:b", &[("req_total{env=\"b\"}", 1.0)]);
}
#[test]
fn tg7() {
    ok("req:1|c|#env:", &[("req_total", 1.0)]).tagerr(1);
}
#[test]
fn tg8() {
    ok("req:1|c|#", &[("req_total", 1.0)]).tagerr(0);
}
#[test]
fn tg9() {
    ok(
        "req:1|c|#tag1:bar,#tag2:baz",
        &[("req_total{tag1=\"bar\",tag2=\"baz\"}", 1.0)],
    );
}
#[test]
fn tg10() {
    ok("req:1|c|#__name__:x", &[("req_total", 1.0)]).tagerr(1);
}
#[test]
fn tg11() {
    ok(
        "req,env=prod,region=us:1|c",
        &[("req_total{env=\"prod\",region=\"us\"}", 1.0)],
    );
}
#[test]
fn tg12() {
    ok("req#env=prod:1|c", &[("req_total{env=\"prod\"}", 1.0)]);
}
#[test]
fn tg13() {
    ok(
        "req.[env=prod]errors:1|c",
        &[("req_errors_total{env=\"prod\"}", 1.0)],
    );
}
#[test]
fn tg14() {
    ok("req[env=prod:1|g", &[("req_env_prod", 1.0)]).tagerr(1);
}
#[test]
fn tg15() {
    bad("req,env=a:1|c|#env:b", &[(MixedTagStyles, 1)]);
}
#[test]
fn tg16() {
    ok(
        "req:1|c|#env:prod|c:ci-abc123|T1700000000",
        &[("req_total{env=\"prod\"}", 1.0)],
    );
}
#[test]
fn tg17() {
    ok(
        "req:1|c|#env:prod|e:it-false|card:high",
        &[("req_total{env=\"prod\"}", 1.0)],
    );
}
#[test]
fn tg18() {
    ok("req:1|c|#a:b|#c:d", &[("req_total{a=\"b\",c=\"d\"}", 1.0)]);
}
#[test]
fn tg19() {
    let f = ok("req:1|c|zzz", &[("req_total", 1.0)]);
    assert_eq!(
        f.m.unknown_fields
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
#[test]
fn tg20() {
    ok("req:1|c|", &[("req_total", 1.0)]);
}
#[test]
fn tg21() {
    ok(
        "tg.count,env=prod,region=us:1|c",
        &[("tg_count_total{env=\"prod\",region=\"us\"}", 1.0)],
    );
}
#[test]
fn tg22() {
    ok("req:1|c|#host:web1", &[("req_total{host=\"web1\"}", 1.0)]);
}

// ---- Conflicts, events, flush behaviour ----
#[test]
fn x1() {
    ok("x:1|g\nx:2|ms", &[("x", 1.0)]).conflict("x", 1);
}
#[test]
fn x2() {
    let f = run("x:1|ms\nx_count:1|g");
    f.floats(&[])
        .hist("x", H::At(1.0, 0.005), 0.001, 1.0)
        .conflict("x_count", 1)
        .bad(&[]);
}
#[test]
fn x3() {
    ok("x:1|c\nx_total:5|g", &[("x_total", 1.0)]).conflict("x_total", 1);
}
#[test]
fn x4() {
    ok(
        "x:1|c|#a:b\nx:1|c|#c:d",
        &[("x_total{a=\"b\"}", 1.0), ("x_total{c=\"d\"}", 1.0)],
    );
}
#[test]
fn x5() {
    run("statsd_lines_received_total:1|g")
        .nothing()
        .conflict("statsd_lines_received_total", 1);
}
#[test]
fn e1() {
    let f = run("_e{5,4}:title|text|#a:b");
    f.nothing().bad(&[]);
    assert_eq!(
        f.m.events_ignored
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
#[test]
fn e2() {
    let f = run("_sc|db.up|0|#env:prod|m:ok");
    f.nothing().bad(&[]);
    assert_eq!(
        f.m.service_checks_ignored
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
#[test]
fn e3() {
    let f = ok("_e{5,4}:title|text\nreq:1|c", &[("req_total", 1.0)]);
    assert_eq!(
        f.m.events_ignored
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
#[test]
fn f1() {
    let mut h = Harness::new(AggregatorConfig::default());
    h.send(&[b"req:1|c"]).flush().floats(&[("req_total", 1.0)]);
    h.send(&[b"req:2|c"])
        .flush()
        .floats(&[("req_total", 3.0)])
        .nothing_but_t();
}
#[test]
fn f2() {
    let mut h = Harness::new(AggregatorConfig::default());
    let f = h.send(&[b"req:1|c"]).flush();
    let got: Vec<(i64, f64)> = f
        .recs
        .iter()
        .map(|r| match r {
            Rec::Float { t, v, .. } => (*t, *v),
            Rec::Hist { .. } => panic!("histogram"),
        })
        .collect();
    assert_eq!(got, vec![(T - DELTA, 0.0), (T, 1.0)]);
    // increase(req_total[20s]) at T over these two points is 1 - 0.
    assert_eq!(got[1].1 - got[0].1, 1.0);
}
#[test]
fn f3() {
    let mut h = Harness::new(AggregatorConfig::default());
    h.send(&[b"req:1|c"]);
    let first = h.flush();
    assert_eq!(first.recs.len(), 2);
    // Dense writes for the whole 5 min TTL (the line arrived 3 s before T).
    let mut flushes = 1;
    loop {
        let f = h.flush();
        let rec = &f.recs[0];
        assert_eq!(f.recs.len(), 1);
        match rec {
            Rec::Float { v, .. } if is_stale_nan(*v) => break,
            Rec::Float { v, .. } => assert_eq!(*v, 1.0),
            Rec::Hist { .. } => panic!("histogram"),
        }
        flushes += 1;
        assert!(flushes <= 31, "no staleness marker after the TTL");
    }
    // Last line at T-3s; TTL 300 s; flushes every 10 s: live through T+290s.
    assert_eq!(flushes, 30);
    assert_eq!(h.agg.live_series(), 0);
    // A later line starts a new series with its own zero sample.
    let f = h.send(&[b"req:1|c"]).flush();
    let got: Vec<(i64, f64)> = f
        .recs
        .iter()
        .map(|r| match r {
            Rec::Float { t, v, .. } => (*t, *v),
            Rec::Hist { .. } => panic!("histogram"),
        })
        .collect();
    // The marker sat at t-10s, so the zero goes 1 ms after it.
    assert_eq!(got, vec![(f.t - DELTA + 1, 0.0), (f.t, 1.0)]);
}
#[test]
fn f4() {
    let mut h = Harness::new(AggregatorConfig::default());
    let f = h.send(&[b"lat:100|ms"]).flush();
    assert_eq!(f.recs.len(), 2);
    match &f.recs[0] {
        Rec::Hist { t, h, .. } => {
            assert_eq!(*t, T - DELTA);
            assert!(h.bucket_counts.iter().all(|&c| c == 0.0) && h.sum == 0.0 && h.count == 0.0);
        }
        r => panic!("{r:?}"),
    }
    f.hist("lat", H::At(1.0, 0.1), 0.1, 1.0);
}

/// F5 over a real loopback UDP socket: one client socket, 200 datagrams.
#[test]
fn f5() {
    let store = Arc::new(RecordingStore::default());
    let clock = ManualClock::new(T - 3000);
    let cfg = StatsdConfig {
        udp_addrs: vec!["127.0.0.1:0".parse().unwrap()],
        udp_threads: 2,
        background_flush: false,
        write_self_metrics: false,
        ..Default::default()
    };
    let server = StatsdServer::start(cfg, store.clone(), Arc::new(clock.clone())).unwrap();
    let addr = server.local_addrs().udp[0];
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 1..=200 {
        client.send_to(format!("g:{i}|g").as_bytes(), addr).unwrap();
        if i % 50 == 0 {
            // Bounded pacing so the loopback buffer never overflows.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let m = server.metrics();
    assert!(wait_until(10, || m
        .lines_received
        .load(std::sync::atomic::Ordering::Relaxed)
        == 200));
    clock.set(T);
    server.flush_now().unwrap();
    let recs = store.user_records();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(series_id(recs[0].labels()), "g");
    assert!(matches!(recs[0], Rec::Float { v, t, .. } if v == 200.0 && t == T));
    server.shutdown().unwrap();
}
