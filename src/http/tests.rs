//! Handler tests over a real socket against an in-memory storage double.
//! The binary-level tests (`tests/server_e2e.rs`) repeat the important
//! ones against the real database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::*;
use crate::cli::client::{HttpResponse, request};
use crate::model::{HistogramSample, Labels, ManualClock, Matcher};
use crate::storage::{
    AppendError, Appendable, Appender, CommitSummary, HistogramSeries, Querier, SelectHints,
    Series, StorageError,
};

/// Floats and histograms by series; rejects samples older than `min_t`.
#[derive(Default)]
pub(crate) struct MemStore {
    pub floats: Mutex<BTreeMap<Labels, Vec<(i64, f64)>>>,
    pub hists: Mutex<BTreeMap<Labels, Vec<(i64, HistogramSample)>>>,
    pub min_t: i64,
    pub snapshots: Mutex<u32>,
}

struct MemAppender<'a> {
    store: &'a MemStore,
    floats: Vec<(Labels, i64, f64)>,
    hists: Vec<(Labels, i64, HistogramSample)>,
}

impl Appender for MemAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        if t < self.store.min_t {
            return Err(AppendError::TooOld {
                series: labels.to_string(),
                t,
                min_t: self.store.min_t,
            });
        }
        self.floats.push((labels.clone(), t, v));
        Ok(())
    }
    fn append_histogram(
        &mut self,
        labels: &Labels,
        t: i64,
        h: &HistogramSample,
    ) -> Result<(), AppendError> {
        self.hists.push((labels.clone(), t, h.clone()));
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError> {
        let mut s = CommitSummary::default();
        let mut f = self.store.floats.lock();
        for (l, t, v) in self.floats {
            f.entry(l).or_default().push((t, v));
            s.float_samples += 1;
        }
        let mut h = self.store.hists.lock();
        for (l, t, x) in self.hists {
            h.entry(l).or_default().push((t, x));
            s.histogram_samples += 1;
        }
        Ok(s)
    }
    fn rollback(self: Box<Self>) {}
}

impl Appendable for MemStore {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(MemAppender {
            store: self,
            floats: Vec::new(),
            hists: Vec::new(),
        })
    }
}

fn matches(l: &Labels, ms: &[Matcher]) -> bool {
    ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or("")))
}

impl Querier for MemStore {
    fn select(&self, h: &SelectHints, ms: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        Ok(self
            .floats
            .lock()
            .iter()
            .filter(|(l, _)| matches(l, ms))
            .filter_map(|(l, pts)| {
                let pts: Vec<_> = pts
                    .iter()
                    .filter(|(t, _)| *t >= h.min_t && *t <= h.max_t)
                    .collect();
                (!pts.is_empty() || h.labels_only).then(|| Series {
                    labels: l.clone(),
                    timestamps: pts.iter().map(|p| p.0).collect(),
                    values: pts.iter().map(|p| p.1).collect(),
                })
            })
            .collect())
    }
    fn select_histograms(
        &self,
        _h: &SelectHints,
        _ms: &[Matcher],
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        Ok(Vec::new())
    }
    fn label_names(&self, h: &SelectHints, ms: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = self
            .select(h, ms)?
            .iter()
            .flat_map(|s| {
                s.labels
                    .iter()
                    .map(|l| l.name.to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
    fn label_values(
        &self,
        name: &str,
        h: &SelectHints,
        ms: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = self
            .select(h, ms)?
            .iter()
            .filter_map(|s| s.labels.get(name).map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}

impl Backend for MemStore {
    fn appendable(&self) -> &dyn Appendable {
        self
    }
    fn querier(&self) -> &dyn Querier {
        self
    }
    fn snapshot(&self, _skip_head: bool) -> Result<String, StorageError> {
        let mut n = self.snapshots.lock();
        *n += 1;
        Ok(format!("snap-{n}"))
    }
    fn head_stats(&self) -> HeadStats {
        HeadStats {
            num_series: self.floats.lock().len() as u64,
            ..HeadStats::default()
        }
    }
    fn metrics(&self) -> Vec<MetricSample> {
        vec![MetricSample {
            name: "watchpost_tsdb_test_gauge".into(),
            labels: Vec::new(),
            help: "test".into(),
            counter: false,
            value: 7.0,
        }]
    }
}

pub(crate) struct TestServer {
    pub base: String,
    pub state: AppState,
    _rt: tokio::runtime::Runtime,
}

impl TestServer {
    pub fn start(configure: impl FnOnce(&mut AppState)) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let mut state = AppState::new(
            Arc::new(ManualClock::new(1_000_000)),
            Arc::new(metrics::ServerMetrics::new()),
            query::QueryConfig::default(),
            ServerInfo::default(),
        );
        configure(&mut state);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let st = state.clone();
        rt.spawn(async move { serve(listener, st, std::future::pending()).await });
        TestServer {
            base,
            state,
            _rt: rt,
        }
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.req("GET", path, &[], b"")
    }

    pub fn req(&self, method: &str, path: &str, h: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        request(
            method,
            &format!("{}{path}", self.base),
            h,
            body,
            Duration::from_secs(10),
        )
        .expect("request")
    }
}

fn with_store(min_t: i64) -> (TestServer, Arc<MemStore>) {
    let store = Arc::new(MemStore {
        min_t,
        ..MemStore::default()
    });
    let srv = TestServer::start(|s| {
        s.import_body_limit = 4096;
        s.admin_api = true;
    });
    srv.state.set_backend(store.clone());
    (srv, store)
}

#[test]
fn health_and_readiness() {
    let srv = TestServer::start(|_| {});
    assert_eq!(srv.get(paths::HEALTHY).status, 200);
    assert_eq!(srv.get(paths::READY).status, 503);
    let r = srv.req("POST", paths::IMPORT_PROMETHEUS, &[], b"x 1\n");
    assert_eq!(r.status, 503);
    assert!(
        r.text().contains("\"errorType\":\"unavailable\""),
        "{}",
        r.text()
    );
    srv.state.set_backend(Arc::new(MemStore::default()));
    assert_eq!(srv.get(paths::READY).status, 200);
}

#[test]
fn import_writes_and_reports_lines() {
    let (srv, store) = with_store(0);
    let body = b"# TYPE rt histogram\n# HELP rt Response time.\nrt_bucket{le=\"1\"} 1 5\nrt_bucket{le=\"+Inf\"} 2 5\nrt_sum 3 5\nrt_count 2 5\nup{job=\"a\"} 1\n";
    let r = srv.req("POST", paths::IMPORT_PROMETHEUS, &[], body);
    assert_eq!(r.status, 204, "{}", r.text());
    let floats = store.floats.lock().clone();
    assert_eq!(floats.len(), 1);
    // No timestamp: the server clock's now.
    assert_eq!(floats.values().next().unwrap(), &vec![(1_000_000, 1.0)]);
    assert_eq!(store.hists.lock().len(), 1);
    let md = srv.get(paths::METADATA);
    assert_eq!(
        md.text(),
        r#"{"status":"success","data":{"rt":[{"type":"histogram","help":"Response time.","unit":""}]}}"#
    );

    let r = srv.req(
        "POST",
        paths::IMPORT_PROMETHEUS,
        &[],
        b"a 1\nb 2\nc{x=\"1\" 3\n",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        r#"{"status":"error","errorType":"bad_data","error":"cannot parse import body: line 3:9: expected ',' or '}' after label \"x\", got '3'"}"#
    );
    assert_eq!(
        store.floats.lock().len(),
        1,
        "nothing of a bad request is written"
    );
    let m = srv.get(paths::METRICS).text();
    assert!(m.contains("watchpost_import_samples_total 2"), "{m}");
    assert!(
        m.contains("watchpost_import_rejected_requests_total 1"),
        "{m}"
    );
    assert!(m.contains("watchpost_tsdb_test_gauge 7"), "{m}");
    assert!(
        m.contains(
            "watchpost_http_requests_total{handler=\"/api/v1/import/prometheus\",code=\"400\"} 1"
        ),
        "{m}"
    );
}

#[test]
fn storage_rejection_writes_nothing() {
    let (srv, store) = with_store(100);
    let r = srv.req("POST", paths::IMPORT_PROMETHEUS, &[], b"a 1 200\nb 1 50\n");
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("line 2: sample for b at 50 ms is too old"),
        "{}",
        r.text()
    );
    assert!(store.floats.lock().is_empty());
}

#[test]
fn import_limits_and_gzip() {
    let (srv, store) = with_store(0);
    let big = "x 1 1\n".repeat(1000);
    let r = srv.req("POST", paths::IMPORT_PROMETHEUS, &[], big.as_bytes());
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("\"errorType\":\"bad_data\""));
    assert!(store.floats.lock().is_empty());

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"g 1 1\ng 2 2\n").unwrap();
    let body = gz.finish().unwrap();
    let r = srv.req(
        "POST",
        paths::IMPORT_PROMETHEUS,
        &[("Content-Encoding", "gzip")],
        &body,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(store.floats.lock().values().next().unwrap().len(), 2);

    let r = srv.req("GET", paths::METRICS, &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut text)
        .unwrap();
    assert!(text.contains("process_start_time_seconds"));
}

#[test]
fn snapshot_and_status() {
    let (srv, _store) = with_store(0);
    let r = srv.req("POST", paths::ADMIN_SNAPSHOT, &[], b"");
    assert_eq!(r.text(), r#"{"status":"success","data":{"name":"snap-1"}}"#);
    let r = srv.req(
        "POST",
        &format!("{}?skip_head=maybe", paths::ADMIN_SNAPSHOT),
        &[],
        b"",
    );
    assert_eq!(r.status, 400);
    let b = srv.get(paths::BUILDINFO).text();
    assert!(
        b.starts_with(r#"{"status":"success","data":{"version":""#),
        "{b}"
    );
    let r = srv.get(paths::RUNTIMEINFO).text();
    assert!(r.contains("\"storageRetention\":"), "{r}");
    let r = srv.get("/api/v1/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "404 page not found\n");

    let disabled = TestServer::start(|_| {});
    let r = disabled.req("POST", paths::ADMIN_SNAPSHOT, &[], b"");
    assert_eq!(r.status, 503);
}
