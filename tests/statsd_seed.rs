//! The seed's StatsD calls end to end (`operations-monitoring-guide.md`,
//! `recordMetrics()`): `histogram('api.response_time', $duration * 1000,
//! $tags)`, `increment('api.requests', 1, $tags)` and, for status >= 400,
//! `increment('api.errors', 1, $tags)`, with method/endpoint/status tags, as
//! DogStatsD datagrams over loopback UDP into the real StatsD door, flushed
//! into the real `Db` at controlled times (a `ManualClock` drives both), then
//! queried over the real HTTP API with the seed's expressions. The expected
//! numbers are computed here from what the test sent, with Prometheus's
//! `rate` extrapolation and `histogram_quantile` interpolation written out
//! independently of the engine.
//!
//! The deployment's mapping file scales `api.response_time` by 0.001, so the
//! seed's alert `histogram_quantile(0.95, api_response_time_bucket) > 1`
//! reads seconds (spec §4.4).

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use watchpost::cli::client::{form, request};
use watchpost::http::backend::DbBackend;
use watchpost::http::metrics::ServerMetrics;
use watchpost::http::query::QueryConfig;
use watchpost::http::{AppState, ServerInfo, paths};
use watchpost::ingest::statsd::{MappingConfig, StatsdConfig, StatsdServer};
use watchpost::model::{Clock, ManualClock};
use watchpost::promql::EngineOptions;
use watchpost::storage::{Db, DbOptions};

/// Flush interval (ms).
const STEP: i64 = 10_000;
/// First window start, on a flush boundary.
const T0: i64 = 1_700_000_000_000;
/// Windows sent.
const WINDOWS: i64 = 40;
/// The spec's default bounds (§10), written out independently.
const BOUNDS: [f64; 21] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
    5000.0,
    10000.0,
    f64::INFINITY,
];

/// xorshift64*: deterministic traffic without depending on a crate's
/// stream stability.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// (method, endpoint, status) of one route outcome.
type Key = (&'static str, &'static str, u16);

const ROUTES: [Key; 5] = [
    ("GET", "api/users", 200),
    ("POST", "api/orders", 201),
    ("GET", "api/users", 500),
    ("POST", "api/orders", 503),
    ("GET", "api/orders/{id}", 404),
];

/// One series' sample history: (t ms, value).
type History = Vec<(i64, f64)>;

/// What the test sent, turned into the samples the store must hold.
#[derive(Default)]
struct Model {
    requests: BTreeMap<Key, History>,
    errors: BTreeMap<Key, History>,
    /// Per series, per bound: cumulative bucket history.
    buckets: BTreeMap<Key, Vec<History>>,
    // Running state.
    req_total: BTreeMap<Key, f64>,
    err_total: BTreeMap<Key, f64>,
    bucket_total: BTreeMap<Key, [f64; 21]>,
}

impl Model {
    /// Applies one request's calls (value in ms, as the seed sends).
    fn observe(&mut self, k: Key, ms: f64, window_start: i64) {
        // New counter/histogram series get a zero sample at the start of
        // the window they appear in (spec §9.2 item 3).
        *self.req_total.entry(k).or_insert_with(|| {
            self.requests.insert(k, vec![(window_start, 0.0)]);
            self.bucket_total.insert(k, [0.0; 21]);
            self.buckets.insert(k, vec![vec![(window_start, 0.0)]; 21]);
            0.0
        }) += 1.0;
        if k.2 >= 400 {
            *self.err_total.entry(k).or_insert_with(|| {
                self.errors.insert(k, vec![(window_start, 0.0)]);
                0.0
            }) += 1.0;
        }
        let x = ms * 0.001;
        let b = self.bucket_total.get_mut(&k).unwrap();
        for (i, le) in BOUNDS.iter().enumerate() {
            if x <= *le {
                b[i] += 1.0;
            }
        }
    }

    /// Every live series writes its cumulative value at each flush.
    fn flush(&mut self, t: i64) {
        for (k, v) in &self.req_total {
            self.requests.get_mut(k).unwrap().push((t, *v));
        }
        for (k, v) in &self.err_total {
            self.errors.get_mut(k).unwrap().push((t, *v));
        }
        for (k, b) in &self.bucket_total {
            let h = self.buckets.get_mut(k).unwrap();
            for (i, v) in b.iter().enumerate() {
                h[i].push((t, *v));
            }
        }
    }
}

/// Prometheus's `rate()` of a counter over (t - range, t]: extrapolated to
/// the range edges unless a gap exceeds 1.1 × the average sample spacing
/// (then by half a spacing), and never before the counter's zero point.
fn rate(h: &History, t: i64, range: i64) -> Option<f64> {
    let pts: Vec<(i64, f64)> = h
        .iter()
        .copied()
        .filter(|(ts, _)| *ts > t - range && *ts <= t)
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let (first, last) = (pts[0], pts[pts.len() - 1]);
    let mut delta = 0.0;
    let mut prev = first.1;
    for &(_, v) in &pts[1..] {
        // Counter resets (none expected, but written out for completeness).
        delta += if v < prev { v } else { v - prev };
        prev = v;
    }
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg = sampled / (pts.len() - 1) as f64;
    let mut to_start = (first.0 - (t - range)) as f64 / 1000.0;
    let mut to_end = (t - last.0) as f64 / 1000.0;
    if delta > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / delta);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let interval = sampled + to_start + to_end;
    Some(delta * (interval / sampled) / (range as f64 / 1000.0))
}

/// Prometheus's `histogram_quantile` over cumulative classic buckets:
/// linear interpolation inside the bucket holding the rank; the +Inf bucket
/// answers with the highest finite bound.
fn quantile(q: f64, cumulative: &[f64; 21]) -> f64 {
    let total = cumulative[20];
    if total == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * total;
    let b = cumulative.iter().position(|&c| c >= rank).unwrap();
    if b == 20 {
        return BOUNDS[19];
    }
    let (start, count) = if b == 0 {
        (0.0, cumulative[0])
    } else {
        rank -= cumulative[b - 1];
        (BOUNDS[b - 1], cumulative[b] - cumulative[b - 1])
    };
    start + (BOUNDS[b] - start) * (rank / count)
}

struct Http {
    base: String,
}

impl Http {
    /// Instant query at `t` → {labels (method, endpoint, status or ""): value}.
    fn query(&self, q: &str, t: i64) -> BTreeMap<String, f64> {
        let time = format!("{}.{:03}", t / 1000, t % 1000);
        let url = format!(
            "{}{}?{}",
            self.base,
            paths::QUERY,
            form(&[("query", q), ("time", &time)])
        );
        let r = request("GET", &url, &[], b"", Duration::from_secs(30)).expect("query");
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        let mut out = BTreeMap::new();
        for s in v["data"]["result"].as_array().expect("vector") {
            let m = &s["metric"];
            let key = format!(
                "{} {} {}",
                m["method"].as_str().unwrap_or(""),
                m["endpoint"].as_str().unwrap_or(""),
                m["status"].as_str().unwrap_or("")
            );
            let val: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
            assert!(out.insert(key, val).is_none(), "{q}: duplicate series");
        }
        out
    }
}

fn key_str(k: &Key) -> String {
    format!("{} {} {}", k.0, k.1, k.2)
}

fn assert_same(q: &str, got: &BTreeMap<String, f64>, want: &BTreeMap<String, f64>) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{q}: series differ"
    );
    for (k, w) in want {
        let g = got[k];
        assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{q} {k}: got {g}, want {w}"
        );
    }
}

#[test]
fn seed_api_metrics_rate_and_quantiles() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let clock_arc: Arc<dyn Clock> = Arc::new(clock.clone());
    let mut opts = DbOptions::new(tmp.path().join("data"));
    opts.clock = clock_arc.clone();
    let db = Arc::new(Db::open(opts).expect("open db"));

    let mapping =
        MappingConfig::from_yaml("mappings:\n  - match: api.response_time\n    scale: 0.001\n")
            .expect("mapping");
    let mut cfg = StatsdConfig {
        udp_addrs: vec!["127.0.0.1:0".parse().unwrap()],
        background_flush: false,
        mapping: Some(Arc::new(mapping)),
        ..Default::default()
    };
    cfg.aggregator.flush_interval = Duration::from_millis(STEP as u64);
    let server = StatsdServer::start(cfg, db.clone(), clock_arc.clone()).expect("statsd");
    let udp = server.local_addrs().udp[0];

    // The HTTP API over the same Db.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let state = AppState::new(
        clock_arc.clone(),
        Arc::new(ServerMetrics::new()),
        QueryConfig {
            engine: EngineOptions::default(),
        },
        ServerInfo::default(),
    );
    state.set_backend(Arc::new(DbBackend {
        db: db.clone(),
        clock: clock_arc.clone(),
    }));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let http = Http {
        base: format!("http://{}", listener.local_addr().unwrap()),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = rt.spawn(watchpost::http::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));

    // Traffic: every window, each route gets 1..=6 requests; the 404
    // route appears only from window 25 on (a series born inside the
    // queried range, with its zero sample at that window's start).
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut model = Model::default();
    let mut lines = 0u64;
    let metrics = server.metrics();
    for w in 1..=WINDOWS {
        let start = T0 + (w - 1) * STEP;
        clock.set(start + 1);
        for k in ROUTES {
            if k.2 == 404 && w < 25 {
                continue;
            }
            for _ in 0..=rng.below(6) {
                // Mostly fast, sometimes slow (never for the 201 route, so
                // the alert fires for some series only); +0.5 ms keeps
                // every value off the bucket bounds.
                let ms = if rng.below(10) == 0 && k.2 != 201 {
                    800 + rng.below(2500)
                } else {
                    3 + rng.below(400)
                } as f64
                    + 0.5;
                let tags = format!("|#method:{},endpoint:{},status:{}", k.0, k.1, k.2);
                let mut dgram = format!("api.response_time:{ms}|h{tags}\napi.requests:1|c{tags}\n");
                lines += 2;
                if k.2 >= 400 {
                    dgram.push_str(&format!("api.errors:1|c{tags}\n"));
                    lines += 1;
                }
                sock.send_to(dgram.as_bytes(), udp).unwrap();
                model.observe(k, ms, start);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while metrics.lines_received.load(Ordering::Relaxed) < lines {
            assert!(Instant::now() < deadline, "lines lost in window {w}");
            std::thread::sleep(Duration::from_millis(2));
        }
        let t = start + STEP;
        clock.set(t);
        server.flush_now().expect("flush");
        model.flush(t);
    }
    assert_eq!(metrics.lines_received.load(Ordering::Relaxed), lines);
    assert_eq!(metrics.bad_lines_total(), 0);

    // Off the flush grid, so no sample sits on a range edge.
    let tq = T0 + WINDOWS * STEP + 3_000;
    let range = 300_000;

    // The seed's alert rule: rate(api_errors_total[5m]) > 0.05.
    let q = "rate(api_errors_total[5m])";
    let want: BTreeMap<String, f64> = model
        .errors
        .iter()
        .map(|(k, h)| (key_str(k), rate(h, tq, range).unwrap()))
        .collect();
    assert_eq!(want.len(), 3);
    assert_same(q, &http.query(q, tq), &want);

    // The dashboard's request rate, summed.
    let q = "sum(rate(api_requests_total[5m]))";
    let total: f64 = model
        .requests
        .values()
        .map(|h| rate(h, tq, range).unwrap())
        .sum();
    assert_same(
        q,
        &http.query(q, tq),
        &BTreeMap::from([("  ".into(), total)]),
    );

    // The seed's alert: histogram_quantile(0.95, api_response_time_bucket) > 1,
    // per (method, endpoint, status), over everything since the start.
    let q = "histogram_quantile(0.95, api_response_time_bucket)";
    let want: BTreeMap<String, f64> = model
        .bucket_total
        .iter()
        .map(|(k, b)| (key_str(k), quantile(0.95, b)))
        .collect();
    let got = http.query(q, tq);
    assert_same(q, &got, &want);
    // Milliseconds left unscaled would put every p95 far above 5.
    assert!(got.values().all(|v| *v < 5.0), "scaled to seconds: {got:?}");

    // The dashboard form: the last 5 minutes, all series together.
    for q in [
        "histogram_quantile(0.95, sum by (le) (rate(api_response_time_bucket[5m])))",
        "histogram_quantile(0.95, sum(rate(api_response_time_bucket[5m])) by (le))",
    ] {
        let mut summed = [0.0; 21];
        for h in model.buckets.values() {
            for (i, hist) in h.iter().enumerate() {
                summed[i] += rate(hist, tq, range).unwrap();
            }
        }
        let want = quantile(0.95, &summed);
        assert!(want > 0.0 && want.is_finite());
        assert_same(
            q,
            &http.query(q, tq),
            &BTreeMap::from([("  ".into(), want)]),
        );
    }

    // The seed's alert fires exactly for the series whose p95 is over 1 s.
    let q = "histogram_quantile(0.95, api_response_time_bucket) > 1";
    let want: BTreeMap<String, f64> = model
        .bucket_total
        .iter()
        .map(|(k, b)| (key_str(k), quantile(0.95, b)))
        .filter(|(_, v)| *v > 1.0)
        .collect();
    assert!(
        !want.is_empty() && want.len() < model.bucket_total.len(),
        "the traffic should make the alert fire for some series only: {want:?}"
    );
    assert_same(q, &http.query(q, tq), &want);

    server.shutdown().expect("shutdown");
    let _ = stop_tx.send(());
    rt.block_on(served).unwrap().unwrap();
    db.close().unwrap();
}
