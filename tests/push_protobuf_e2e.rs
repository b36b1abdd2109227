//! Push doors over HTTP against the real binary, for the parts of the push
//! issue the client-library tests do not reach:
//! - Pushgateway protobuf pushes (varint length-delimited
//!   `io.prometheus.client.MetricFamily`, the format Go clients send), the
//!   same bodies against Debian's `prometheus-pushgateway` 1.5: the groups
//!   agree after PUT, POST and DELETE. Skips loudly when the gateway is
//!   missing; fails instead when `WATCHPOST_REQUIRE_ALL=1`.
//! - OTLP/HTTP delta sums (JSON encoding) turned into cumulative series.

mod harness;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Proc, Server, free_port, now_ms, require, tempdir};
use prost::Message;
use watchpost::cli::client::form;
use watchpost::http::paths;
use watchpost::ingest::pushgateway::pb;

const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn request(
    method: &str,
    url: &str,
    ct: Option<&str>,
    body: &[u8],
) -> watchpost::cli::client::HttpResponse {
    let headers: Vec<(&str, &str)> = ct.map(|c| ("Content-Type", c)).into_iter().collect();
    watchpost::cli::client::request(method, url, &headers, body, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

fn pair(n: &str, v: &str) -> pb::LabelPair {
    pb::LabelPair {
        name: Some(n.into()),
        value: Some(v.into()),
    }
}

fn family(
    name: &str,
    help: &str,
    typ: pb::MetricType,
    metrics: Vec<pb::Metric>,
) -> pb::MetricFamily {
    pb::MetricFamily {
        name: Some(name.into()),
        help: Some(help.into()),
        r#type: Some(typ as i32),
        metric: metrics,
        unit: None,
    }
}

fn counter(labels: Vec<pb::LabelPair>, v: f64) -> pb::Metric {
    pb::Metric {
        label: labels,
        counter: Some(pb::Counter { value: Some(v) }),
        ..Default::default()
    }
}

fn gauge(labels: Vec<pb::LabelPair>, v: f64) -> pb::Metric {
    pb::Metric {
        label: labels,
        gauge: Some(pb::Gauge { value: Some(v) }),
        ..Default::default()
    }
}

/// Families as a varint length-delimited stream.
fn delimited(fams: &[pb::MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fams {
        f.encode_length_delimited(&mut out).expect("encode");
    }
    out
}

fn instant(base: &str, q: &str) -> Vec<(serde_json::Value, String)> {
    let url = format!("{base}{}?{}", paths::QUERY, form(&[("query", q)]));
    let r = request("GET", &url, None, b"");
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["data"]["result"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|s| {
            (
                s["metric"].clone(),
                s["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn protobuf_pushes_agree_with_debian_pushgateway() {
    let pg_bin = Path::new("/usr/bin/prometheus-pushgateway");
    if !require(pg_bin.exists(), "Debian prometheus-pushgateway") {
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
    assert!(
        wait_for(30, || watchpost::cli::client::request(
            "GET",
            &format!("{pg}/-/ready"),
            &[],
            b"",
            Duration::from_secs(5)
        )
        .is_ok_and(|r| r.status == 200)),
        "pushgateway not ready"
    );
    let (_tmp, data) = tempdir();
    // Live groups are re-sampled into the store every second.
    let s = Server::start(&data, &["--push.resample-interval=1s"]);
    s.wait_ready();

    // `path@base64/L3Zhci90bXA=` is path="/var/tmp".
    let group = "/metrics/job/pbjob/path@base64/L3Zhci90bXA=";
    let put = delimited(&[
        family(
            "pb_jobs_processed_total",
            "Jobs processed.",
            pb::MetricType::Counter,
            vec![
                counter(vec![pair("queue", "a")], 12.0),
                counter(vec![pair("queue", "b")], 30.0),
            ],
        ),
        family(
            "pb_queue_depth",
            "Queue depth.",
            pb::MetricType::Gauge,
            vec![gauge(vec![], 4.0)],
        ),
    ]);
    // POST replaces only the families it names.
    let post = delimited(&[family(
        "pb_queue_depth",
        "Queue depth.",
        pb::MetricType::Gauge,
        vec![gauge(vec![], 9.0)],
    )]);
    let other = "/metrics/job/pbother";
    let steps: [(&str, &str, &[u8]); 4] = [
        ("PUT", group, &put),
        ("POST", group, &post),
        ("PUT", other, &put),
        ("DELETE", other, b""),
    ];
    for (i, (method, path, body)) in steps.into_iter().enumerate() {
        let ct = (!body.is_empty()).then_some(PROTO_CT);
        for base in [&pg, &s.base] {
            let r = request(method, &format!("{base}{path}"), ct, body);
            assert!(
                (200..300).contains(&r.status),
                "{base}: {method} {path}: {} {}",
                r.status,
                r.text()
            );
        }
        let theirs: serde_json::Value = serde_json::from_slice(
            &request("GET", &format!("{pg}{}", paths::PUSH_GROUPS), None, b"").body,
        )
        .expect("json");
        let ours: serde_json::Value =
            serde_json::from_slice(&s.get(paths::PUSH_GROUPS).body).expect("json");
        let (t, o) = (
            harness::pushgateway_groups(&theirs),
            harness::pushgateway_groups(&ours),
        );
        assert!(!t.is_empty());
        assert_eq!(o, t, "after step {i}\nours:\n{ours}\ntheirs:\n{theirs}");
    }
    // The pushed values are queryable, with the grouping labels.
    assert!(
        wait_for(10, || {
            let v = instant(&s.base, "pb_queue_depth");
            v.len() == 1 && v[0].1 == "9" && v[0].0["path"] == "/var/tmp"
        }),
        "{:?}",
        instant(&s.base, "pb_queue_depth")
    );
    let v = instant(&s.base, "sum(pb_jobs_processed_total{job=\"pbjob\"})");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].1, "42");
    // A truncated protobuf body is refused and changes nothing.
    let r = request(
        "PUT",
        &format!("{}{group}", s.base),
        Some(PROTO_CT),
        &put[..put.len() - 3],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let ours: serde_json::Value =
        serde_json::from_slice(&s.get(paths::PUSH_GROUPS).body).expect("json");
    assert_eq!(harness::pushgateway_groups(&ours).len(), 1, "{ours}");
    s.stop();
}

/// One OTLP/JSON request with a monotonic delta sum point.
fn otlp_delta(v: i64, start_ns: i64, t_ns: i64) -> String {
    serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "billing"}},
            {"key": "service.instance.id", "value": {"stringValue": "b-1"}}
        ]},
        "scopeMetrics": [{"metrics": [{
            "name": "invoices.sent",
            "sum": {
                "aggregationTemporality": 1,
                "isMonotonic": true,
                "dataPoints": [{
                    "asInt": v.to_string(),
                    "startTimeUnixNano": start_ns.to_string(),
                    "timeUnixNano": t_ns.to_string(),
                    "attributes": [{"key": "region", "value": {"stringValue": "eu"}}]
                }]
            }
        }]}]
    }]})
    .to_string()
}

#[test]
fn otlp_delta_sums_become_cumulative_over_http() {
    let (_tmp, data) = tempdir();
    let s = Server::start(&data, &[]);
    s.wait_ready();
    let t0 = now_ms() - 60_000;
    let ms = 1_000_000i64;
    // Three delta intervals of 10 s: 3, 4 and 5 invoices.
    for (i, v) in [3, 4, 5].into_iter().enumerate() {
        let start = (t0 + i as i64 * 10_000) * ms;
        let end = (t0 + (i as i64 + 1) * 10_000) * ms;
        let r = s
            .try_req(
                "POST",
                paths::OTLP_METRICS,
                &[("Content-Type", "application/json")],
                otlp_delta(v, start, end).as_bytes(),
            )
            .expect("post");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let q = "invoices_sent_total{job=\"billing\",instance=\"b-1\",region=\"eu\"}[5m]";
    let url = format!("{}{}?{}", s.base, paths::QUERY, form(&[("query", q)]));
    let r = request("GET", &url, None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let result = v["data"]["result"].as_array().expect("matrix");
    assert_eq!(result.len(), 1, "{v}");
    let points: Vec<(f64, String)> = result[0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().to_string()))
        .collect();
    let want: Vec<(f64, String)> = [3, 7, 12]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                ((t0 + (i as i64 + 1) * 10_000) as f64) / 1000.0,
                c.to_string(),
            )
        })
        .collect();
    assert_eq!(points, want);
    s.stop();
}
