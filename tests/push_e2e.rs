//! End-to-end tests of the push doors against the real binary with real
//! clients: Debian's Prometheus 2.42 remote-writing to watchpost, PyPI
//! `prometheus_client` pushing Pushgateway-style, the OpenTelemetry Python
//! SDK exporting OTLP/HTTP. A missing client skips loudly, and fails
//! instead when `WATCHPOST_REQUIRE_ALL=1`.

mod harness;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Proc, Server, free_port, now_ms, require, tempdir};
use prost::Message;
use watchpost::cli::client::form;
use watchpost::http::paths;
use watchpost::ingest::remote_write::pb::v1;

fn query_at(base: &str, q: &str, t_ms: Option<i64>) -> serde_json::Value {
    let mut params = vec![("query", q.to_string())];
    if let Some(t) = t_ms {
        params.push(("time", format!("{}.{:03}", t / 1000, t % 1000)));
    }
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = format!("{base}{}?{}", paths::QUERY, form(&p));
    let r = watchpost::cli::client::request("GET", &url, &[], b"", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    serde_json::from_slice(&r.body).expect("json")
}

/// `(metric labels, value)` of an instant vector, sorted.
fn vector(v: &serde_json::Value) -> Vec<(serde_json::Value, String)> {
    let mut out: Vec<_> = v["data"]["result"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort_by_key(|a| a.0.to_string());
    out
}

fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

fn start_prometheus(dir: &Path, watchpost: &str) -> (Proc, String) {
    let port = free_port();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
             remote_write:\n  - url: {watchpost}{}\n    queue_config:\n      batch_send_deadline: 1s\n    metadata_config:\n      send_interval: 1s\n",
            paths::REMOTE_WRITE
        ),
    )
    .expect("write prometheus.yml");
    let child = Command::new("/usr/bin/prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prom").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prometheus");
    (Proc(child), format!("http://127.0.0.1:{port}"))
}

#[test]
fn prometheus_remote_write_matches_prometheus() {
    if !require(
        Path::new("/usr/bin/prometheus").exists(),
        "Debian prometheus (/usr/bin/prometheus)",
    ) {
        return;
    }
    let (tmp, data) = tempdir();
    let s = Server::start(&data, &[]);
    s.wait_ready();
    let (_prom, prom) = start_prometheus(tmp.path(), &s.base);

    // Same instant in both: a moment both have data for (a few scrapes in).
    let mut t = 0;
    let ok = wait_for(60, || {
        let w = vector(&query_at(&s.base, "prometheus_build_info", None));
        let u = vector(&query_at(&s.base, "up", None));
        if w.is_empty() || u.is_empty() {
            return false;
        }
        t = now_ms() - 3_000;
        !vector(&query_at(&s.base, "up", Some(t))).is_empty()
    });
    assert!(ok, "no remote-written data in watchpost; log:\n{}", s.log());
    for q in ["prometheus_build_info", "up", "prometheus_ready"] {
        let ours = vector(&query_at(&s.base, q, Some(t)));
        let theirs = vector(&query_at(&prom, q, Some(t)));
        assert!(!ours.is_empty(), "{q} empty in watchpost");
        assert_eq!(ours, theirs, "{q} differs at {t}");
    }
    let up = vector(&query_at(&s.base, "up", Some(t)));
    assert_eq!(up[0].1, "1");
    assert_eq!(up[0].0["job"], "prometheus");

    // Metadata from the remote-write requests reaches /api/v1/metadata.
    let ok = wait_for(30, || {
        let r = s.get(&format!("{}?metric=prometheus_build_info", paths::METADATA));
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        v["data"]["prometheus_build_info"][0]["type"] == "gauge"
    });
    assert!(ok, "no metadata for prometheus_build_info");

    // The door's self-metrics count the accepted samples.
    let m = s.get(paths::METRICS).text();
    let line = m
        .lines()
        .find(|l| l.starts_with("watchpost_push_samples_accepted_total{door=\"remote_write\"}"))
        .unwrap_or_else(|| panic!("no remote write self-metric in:\n{m}"));
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n > 0.0, "{line}");
    s.stop();
}

fn write_request(name: &str, extra: (&str, &str), t: i64, v: f64) -> Vec<u8> {
    let mut labels = vec![
        v1::Label {
            name: "__name__".into(),
            value: name.into(),
        },
        v1::Label {
            name: extra.0.into(),
            value: extra.1.into(),
        },
    ];
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    v1::WriteRequest {
        timeseries: vec![v1::TimeSeries {
            labels,
            samples: vec![v1::Sample {
                value: v,
                timestamp: t,
            }],
            ..Default::default()
        }],
        metadata: vec![],
    }
    .encode_to_vec()
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).expect("snappy")
}

fn series_count(s: &Server) -> usize {
    let v = query_at(&s.base, "count({__name__=~\"rw_.*\"})", None);
    v["data"]["result"]
        .as_array()
        .and_then(|a| a.first())
        .map_or(0, |r| r["value"][1].as_str().unwrap().parse().unwrap())
}

/// What is sent, headers, body, and a word the error message must contain.
type BadCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, &'a str);

#[test]
fn remote_write_bad_bodies_are_refused_and_write_nothing() {
    let (_tmp, data) = tempdir();
    let s = Server::start(&data, &[]);
    s.wait_ready();
    let t = now_ms() - 1_000;
    let rw1 = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "snappy"),
        ("X-Prometheus-Remote-Write-Version", "0.1.0"),
    ];
    let post = |h: &[(&str, &str)], body: &[u8]| {
        s.try_req("POST", paths::REMOTE_WRITE, h, body)
            .expect("request")
    };

    // A valid request first: 204, and the sample is queryable.
    let good = snappy(&write_request("rw_ok", ("job", "a"), t, 42.0));
    let r = post(&rw1, &good);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(series_count(&s), 1);

    let full = snappy(&write_request("rw_bad", ("job", "b"), t, 1.0));
    let huge = "x".repeat(100_000);
    let big_text = "rw_text 1\n".repeat(1_000_000);
    let cases: Vec<BadCase> = vec![
        (
            "truncated snappy",
            rw1.to_vec(),
            full[..full.len() / 2].to_vec(),
            "snappy",
        ),
        (
            "garbage protobuf",
            rw1.to_vec(),
            snappy(b"\xff\xff\xff\xff garbage"),
            "protobuf",
        ),
        (
            "huge label value",
            rw1.to_vec(),
            snappy(&write_request("rw_huge", ("job", &huge), t, 1.0)),
            "label",
        ),
        (
            "10 MB of text",
            rw1.to_vec(),
            big_text.as_bytes().to_vec(),
            "snappy",
        ),
        (
            "text content type",
            vec![("Content-Type", "text/plain")],
            big_text.as_bytes().to_vec(),
            "content type",
        ),
        (
            "6-byte body declaring gigabytes",
            rw1.to_vec(),
            vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x00],
            "limit",
        ),
    ];
    for (what, h, body, needle) in cases {
        let r = post(&h, &body);
        assert!(
            (400..500).contains(&r.status),
            "{what}: status {} {}",
            r.status,
            r.text()
        );
        assert!(
            r.text().to_lowercase().contains(needle),
            "{what}: message {:?} lacks {needle:?}",
            r.text()
        );
        assert_eq!(series_count(&s), 1, "{what} wrote something");
    }

    // Remote write 2.0 content type is accepted and reports written counts.
    let v2 = watchpost::ingest::remote_write::pb::v2::Request {
        symbols: vec![
            "".into(),
            "__name__".into(),
            "rw_two".into(),
            "job".into(),
            "c".into(),
        ],
        timeseries: vec![watchpost::ingest::remote_write::pb::v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![watchpost::ingest::remote_write::pb::v2::Sample {
                value: 7.0,
                timestamp: t,
            }],
            ..Default::default()
        }],
    };
    let r = post(
        &[
            (
                "Content-Type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            ),
            ("Content-Encoding", "snappy"),
        ],
        &snappy(&v2.encode_to_vec()),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some("1")
    );
    assert_eq!(series_count(&s), 2);
    s.stop();
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_python(script: &str, arg: &str) {
    let out = Command::new("python3")
        .args(["-c", script, arg])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const PUSH_SCRIPT: &str = r#"
import sys
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client import push_to_gateway, pushadd_to_gateway, delete_from_gateway
gw = sys.argv[1]
key = {'instance': 'db/1'}
r = CollectorRegistry()
Gauge('backup_last_success_timestamp_seconds', 'Last good backup.', registry=r).set(1700000000)
Counter('backup_runs', 'Backup runs.', registry=r).inc(3)
push_to_gateway(gw, job='backup', registry=r, grouping_key=key)
r2 = CollectorRegistry()
Gauge('backup_rows', 'Rows backed up.', registry=r2).set(5)
pushadd_to_gateway(gw, job='backup', registry=r2, grouping_key=key)
r3 = CollectorRegistry()
Gauge('scratch_value', 'Deleted below.', registry=r3).set(9)
push_to_gateway(gw, job='scratch', registry=r3)
delete_from_gateway(gw, job='scratch')
"#;

#[test]
fn prometheus_client_pushes_are_resampled_and_survive_restart() {
    if !require(python_has("prometheus_client"), "PyPI prometheus_client") {
        return;
    }
    let (_tmp, data) = tempdir();
    let flags = ["--push.resample-interval=1s"];
    let s = Server::start(&data, &flags);
    s.wait_ready();
    run_python(PUSH_SCRIPT, &s.base);

    let want = [
        ("backup_last_success_timestamp_seconds", "1700000000"),
        ("backup_runs_total", "3"),
        ("backup_rows", "5"),
    ];
    let check = |s: &Server| {
        for (name, v) in want {
            let q = format!("{name}{{job=\"backup\",instance=\"db/1\"}}");
            let got = vector(&query_at(&s.base, &q, None));
            if got.len() != 1 || got[0].1 != v {
                return false;
            }
        }
        true
    };
    assert!(
        wait_for(30, || check(&s)),
        "pushed values not queryable; log:\n{}",
        s.log()
    );
    // Deleted group: gone after the next resample (stale marker).
    assert!(
        wait_for(10, || vector(&query_at(&s.base, "scratch_value", None))
            .is_empty()),
        "deleted group still visible"
    );
    // The daily-backup alert expression works on a pushed value.
    let a = vector(&query_at(
        &s.base,
        "time() - backup_last_success_timestamp_seconds > 86400*1.5",
        None,
    ));
    assert_eq!(a.len(), 1, "{a:?}");
    let pt = vector(&query_at(
        &s.base,
        "push_time_seconds{job=\"backup\"}",
        None,
    ));
    assert_eq!(pt.len(), 1, "{pt:?}");

    // Listing in Pushgateway's JSON shape.
    let r = s.get(paths::PUSH_GROUPS);
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let groups = v["data"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "{v}");
    let g = &groups[0];
    assert_eq!(g["labels"]["job"], "backup");
    assert_eq!(g["labels"]["instance"], "db/1");
    assert_eq!(g["last_push_successful"], true);
    assert_eq!(g["backup_rows"]["type"], "GAUGE");
    assert_eq!(g["backup_rows"]["metrics"][0]["value"], "5");
    assert_eq!(g["backup_runs_total"]["type"], "COUNTER", "{g}");

    // Groups survive a restart and keep being re-sampled.
    s.stop();
    let s = Server::start(&data, &flags);
    s.wait_ready();
    let r = s.get(paths::PUSH_GROUPS);
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1), "{v}");
    let t0 = now_ms();
    assert!(
        wait_for(30, || {
            let got = vector(&query_at(
                &s.base,
                "timestamp(backup_rows{job=\"backup\"})",
                None,
            ));
            got.len() == 1 && got[0].1.parse::<f64>().unwrap() * 1000.0 >= t0 as f64
        }),
        "not re-sampled after restart"
    );

    // A bad push is refused with a clear message; wipe empties the store.
    let r = s
        .try_req(
            "PUT",
            "/metrics/job/backup/instance/db1",
            &[],
            b"not a metric line{\n",
        )
        .expect("push");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.req("PUT", paths::PUSH_WIPE, b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&s.get(paths::PUSH_GROUPS).body).unwrap();
    assert_eq!(v["data"].as_array().map(Vec::len), Some(0), "{v}");
    s.stop();
}

const OTLP_SCRIPT: &str = r#"
import sys
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

class Checked(OTLPMetricExporter):
    results = []
    def export(self, *a, **kw):
        r = super().export(*a, **kw)
        Checked.results.append(r)
        return r

exp = Checked(endpoint=sys.argv[1] + '/v1/metrics')
reader = PeriodicExportingMetricReader(exp, export_interval_millis=3600000)
res = Resource.create({'service.name': 'checkout', 'service.instance.id': 'i-1'})
mp = MeterProvider(resource=res, metric_readers=[reader])
m = mp.get_meter('e2e')
m.create_counter('orders', description='Orders placed').add(5, {'region': 'eu'})
m.create_observable_gauge('queue_depth', callbacks=[lambda o: [Observation(7, {'queue': 'a'})]])
h = m.create_histogram('latency', unit='s', description='Request latency')
for v in (0.1, 0.2, 3.0):
    h.record(v)
reader.force_flush()
mp.shutdown()
assert Checked.results and all(r == MetricExportResult.SUCCESS for r in Checked.results), Checked.results
"#;

#[test]
fn opentelemetry_sdk_exports_counter_gauge_histogram() {
    if !require(
        python_has("opentelemetry.exporter.otlp.proto.http.metric_exporter"),
        "PyPI opentelemetry-sdk + opentelemetry-exporter-otlp-proto-http",
    ) {
        return;
    }
    let (_tmp, data) = tempdir();
    let s = Server::start(&data, &[]);
    s.wait_ready();
    run_python(OTLP_SCRIPT, &s.base);
    let r = s.get(&format!(
        "{}?{}",
        paths::SERIES,
        form(&[("match[]", "{job=\"checkout\"}")])
    ));
    let series = r.text();
    let one = |q: &str| {
        let v = vector(&query_at(&s.base, q, None));
        assert_eq!(v.len(), 1, "{q}: {v:?}; series: {series}");
        assert_eq!(v[0].0["job"], "checkout", "{q}");
        assert_eq!(v[0].0["instance"], "i-1", "{q}");
        v[0].1.clone()
    };
    assert_eq!(one("orders_total{region=\"eu\"}"), "5");
    assert_eq!(one("queue_depth{queue=\"a\"}"), "7");
    assert_eq!(one("latency_seconds_count"), "3");
    let sum: f64 = one("latency_seconds_sum").parse().unwrap();
    assert!((sum - 3.3).abs() < 1e-9, "{sum}");
    // The SDK's default explicit bounds are 0, 5, 10, 25, ...: all three
    // observations are <= 5, none <= 0.
    assert_eq!(one("latency_seconds_bucket{le=\"5\"}"), "3");
    assert_eq!(one("latency_seconds_bucket{le=\"0\"}"), "0");

    let m = s.get(paths::METRICS).text();
    assert!(
        m.lines().any(
            |l| l.starts_with("watchpost_push_requests_total{door=\"otlp\"}") && !l.ends_with(" 0")
        ),
        "no OTLP self-metrics in:\n{m}"
    );
    // A garbage body is refused with a clear message.
    let r = s
        .try_req(
            "POST",
            paths::OTLP_METRICS,
            &[("Content-Type", "application/json")],
            b"{\"resourceMetrics\": 5}",
        )
        .expect("post");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("resourceMetrics"), "{}", r.text());
    s.stop();
}

#[test]
fn pushes_agree_with_debian_pushgateway() {
    let pg_bin = Path::new("/usr/bin/prometheus-pushgateway");
    if !require(pg_bin.exists(), "Debian prometheus-pushgateway")
        || !require(python_has("prometheus_client"), "PyPI prometheus_client")
    {
        return;
    }
    let port = free_port();
    let _pg = Proc(
        Command::new(pg_bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Debian's default persists to /var/lib/prometheus: another
            // pushgateway's groups would be loaded here, and ours left there.
            .arg("--persistence.file=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pushgateway"),
    );
    let pg = format!("http://127.0.0.1:{port}");
    let get =
        |url: &str| watchpost::cli::client::request("GET", url, &[], b"", Duration::from_secs(10));
    assert!(
        wait_for(30, || get(&format!("{pg}/-/ready"))
            .is_ok_and(|r| r.status == 200)),
        "pushgateway not ready"
    );
    let (_tmp, data) = tempdir();
    let s = Server::start(&data, &[]);
    s.wait_ready();
    run_python(PUSH_SCRIPT, &pg);
    run_python(PUSH_SCRIPT, &s.base);
    let theirs: serde_json::Value = serde_json::from_slice(
        &get(&format!("{pg}{}", paths::PUSH_GROUPS))
            .expect("get")
            .body,
    )
    .expect("json");
    let ours: serde_json::Value =
        serde_json::from_slice(&s.get(paths::PUSH_GROUPS).body).expect("json");
    let (t, o) = (
        harness::pushgateway_groups(&theirs),
        harness::pushgateway_groups(&ours),
    );
    assert_eq!(t.len(), 1, "{theirs}");
    assert_eq!(o, t, "ours:\n{ours}\ntheirs:\n{theirs}");
    s.stop();
}
