use proptest::prelude::*;
use prost::Message;

use super::pb::{self, any_value, metric::Data, number_data_point};
use super::*;
use crate::ingest::remote_write::is_valid_label_name;
use crate::ingest::testutil::RecordingDb;
use crate::model::is_stale_nan;

const T_NS: u64 = 1_700_000_000_123_456_789;
const T_MS: i64 = 1_700_000_000_123;

fn kv(k: &str, v: &str) -> pb::KeyValue {
    pb::KeyValue {
        key: k.into(),
        value: Some(pb::AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
    }
}

fn num(v: number_data_point::Value, attrs: Vec<pb::KeyValue>, t: u64) -> pb::NumberDataPoint {
    pb::NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t,
        value: Some(v),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: Data) -> pb::Metric {
    pb::Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("{name} description"),
        data: Some(data),
        ..Default::default()
    }
}

fn request(
    resource: Vec<pb::KeyValue>,
    metrics: Vec<pb::Metric>,
) -> pb::ExportMetricsServiceRequest {
    pb::ExportMetricsServiceRequest {
        resource_metrics: vec![pb::ResourceMetrics {
            resource: Some(pb::Resource {
                attributes: resource,
                dropped_attributes_count: 0,
            }),
            scope_metrics: vec![pb::ScopeMetrics {
                scope: Some(pb::InstrumentationScope {
                    name: "app".into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn service() -> Vec<pb::KeyValue> {
    vec![
        kv("service.name", "checkout"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "pod-1"),
        kv("host.name", "node7"),
    ]
}

fn sum(points: Vec<pb::NumberDataPoint>, temporality: i32, monotonic: bool) -> Data {
    Data::Sum(pb::Sum {
        data_points: points,
        aggregation_temporality: temporality,
        is_monotonic: monotonic,
    })
}

fn ingest(
    r: &OtlpReceiver,
    req: &pb::ExportMetricsServiceRequest,
    db: &RecordingDb,
) -> crate::ingest::remote_write::WriteOutcome {
    r.ingest(OtlpEncoding::Protobuf, &req.encode_to_vec(), db)
        .unwrap()
        .0
}

#[test]
fn metric_names_follow_prometheus_translation() {
    let hist = || Data::Histogram(pb::Histogram::default());
    let gauge = || Data::Gauge(pb::Gauge::default());
    let cases = [
        (
            "http.server.duration",
            "ms",
            hist(),
            "http_server_duration_milliseconds",
        ),
        ("requests", "1", sum(vec![], 2, true), "requests_total"),
        (
            "requests",
            "{request}",
            sum(vec![], 2, true),
            "requests_total",
        ),
        ("total.requests", "", sum(vec![], 2, true), "requests_total"),
        ("cpu.utilization", "1", gauge(), "cpu_utilization_ratio"),
        ("net.io", "By/s", gauge(), "net_io_bytes_per_second"),
        ("queue.size", "{items}", gauge(), "queue_size"),
        (
            "process.memory",
            "By",
            sum(vec![], 2, false),
            "process_memory_bytes",
        ),
        ("latency_seconds", "s", hist(), "latency_seconds"),
        ("2xx.count", "", gauge(), "_2xx_count"),
        ("weird..name--x", "", gauge(), "weird_name_x"),
    ];
    for (name, unit, data, want) in cases {
        assert_eq!(
            metric_name(&metric(name, unit, data)),
            want,
            "{name} [{unit}]"
        );
    }
}

#[test]
fn label_names_are_sanitized() {
    assert_eq!(sanitize_label_name("http.method"), "http_method");
    assert_eq!(sanitize_label_name("1st"), "key_1st");
    assert_eq!(sanitize_label_name("_x"), "key_x");
    assert_eq!(sanitize_label_name("__x"), "__x");
    assert_eq!(sanitize_label_name("ünï"), "key_n_");
}

#[test]
fn gauges_sums_resource_labels_and_target_info() {
    let db = RecordingDb::new();
    let r = OtlpReceiver::new(OtlpConfig::default());
    let req = request(
        service(),
        vec![
            metric(
                "queue.depth",
                "",
                Data::Gauge(pb::Gauge {
                    data_points: vec![num(
                        number_data_point::Value::AsInt(42),
                        vec![kv("queue.name", "a"), kv("queue_name", "b")],
                        T_NS,
                    )],
                }),
            ),
            metric(
                "http.requests",
                "1",
                sum(
                    vec![num(
                        number_data_point::Value::AsDouble(10.0),
                        vec![kv("http.method", "GET")],
                        T_NS,
                    )],
                    2,
                    true,
                ),
            ),
        ],
    );
    let (out, meta) = r
        .ingest(OtlpEncoding::Protobuf, &req.encode_to_vec(), &db)
        .unwrap();
    assert_eq!(out.samples_written, 3);
    let id = r#"instance="pod-1", job="shop/checkout""#;
    // Attributes colliding after sanitization are joined with ';'.
    assert_eq!(
        db.floats(&format!(r#"queue_depth{{{id}, queue_name="a;b"}}"#)),
        vec![(T_MS, 42.0)]
    );
    assert_eq!(
        db.floats(&format!(
            r#"http_requests_total{{http_method="GET", {id}}}"#
        )),
        vec![(T_MS, 10.0)]
    );
    assert_eq!(
        db.floats(&format!(r#"target_info{{host_name="node7", {id}}}"#)),
        vec![(T_MS, 1.0)]
    );
    assert_eq!(meta.len(), 2);
    assert_eq!(meta[1].metric, "http_requests_total");
    assert_eq!(meta[1].kind.as_str(), "counter");
    assert_eq!(response_body(OtlpEncoding::Json, &out), b"{}");
    assert!(response_body(OtlpEncoding::Protobuf, &out).is_empty());
}

#[test]
fn delta_sums_become_cumulative_only_after_commit() {
    let r = OtlpReceiver::new(OtlpConfig::default());
    let delta = |v: f64, t: u64| {
        request(
            vec![kv("service.name", "w")],
            vec![metric(
                "jobs.done",
                "",
                sum(
                    vec![num(number_data_point::Value::AsDouble(v), vec![], t)],
                    1,
                    true,
                ),
            )],
        )
    };
    let db = RecordingDb::new();
    ingest(&r, &delta(3.0, T_NS), &db);
    // A failed commit must not advance the state.
    let failing = RecordingDb {
        fail_commit: true,
        ..RecordingDb::new()
    };
    assert!(
        r.ingest(
            OtlpEncoding::Protobuf,
            &delta(100.0, T_NS + 1_000_000_000).encode_to_vec(),
            &failing
        )
        .is_err()
    );
    ingest(&r, &delta(2.0, T_NS + 2_000_000_000), &db);
    assert_eq!(
        db.floats(r#"jobs_done_total{job="w"}"#),
        vec![(T_MS, 3.0), (T_MS + 2000, 5.0)]
    );
}

fn hist_point(counts: Vec<u64>, bounds: Vec<f64>, sum: f64, t: u64) -> pb::HistogramDataPoint {
    pb::HistogramDataPoint {
        time_unix_nano: t,
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts,
        explicit_bounds: bounds,
        ..Default::default()
    }
}

#[test]
fn histograms_become_bucket_columns_and_deltas_accumulate() {
    let r = OtlpReceiver::new(OtlpConfig::default());
    let db = RecordingDb::new();
    let h = |temporality: i32, p: pb::HistogramDataPoint| {
        request(
            vec![kv("service.name", "api")],
            vec![metric(
                "http.server.duration",
                "ms",
                Data::Histogram(pb::Histogram {
                    data_points: vec![p],
                    aggregation_temporality: temporality,
                }),
            )],
        )
    };
    ingest(
        &r,
        &h(2, hist_point(vec![1, 2, 0], vec![10.0, 100.0], 150.0, T_NS)),
        &db,
    );
    let got = db.hists(r#"http_server_duration_milliseconds{job="api"}"#);
    assert_eq!(&*got[0].1.upper_bounds, &[10.0, 100.0]);
    assert_eq!(got[0].1.bucket_counts, vec![1.0, 3.0, 3.0]);
    assert_eq!((got[0].1.sum, got[0].1.count), (150.0, 3.0));

    let dh = |p| {
        let mut q = h(1, p);
        q.resource_metrics[0].resource = Some(pb::Resource {
            attributes: vec![kv("service.name", "batch")],
            dropped_attributes_count: 0,
        });
        q
    };
    ingest(
        &r,
        &dh(hist_point(vec![1, 0, 1], vec![1.0, 2.0], 5.0, T_NS)),
        &db,
    );
    ingest(
        &r,
        &dh(hist_point(
            vec![0, 2, 0],
            vec![1.0, 2.0],
            3.0,
            T_NS + 1_000_000_000,
        )),
        &db,
    );
    let got = db.hists(r#"http_server_duration_milliseconds{job="batch"}"#);
    assert_eq!(got[1].1.bucket_counts, vec![1.0, 3.0, 4.0]);
    assert_eq!((got[1].1.sum, got[1].1.count), (8.0, 4.0));

    let e = r
        .ingest(
            OtlpEncoding::Protobuf,
            &h(2, hist_point(vec![1, 2], vec![1.0, 2.0], 1.0, T_NS)).encode_to_vec(),
            &db,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid data point of metric \"http.server.duration\": 2 bucket counts for 2 explicit bounds (want 3)"
    );
}

#[test]
fn summaries_stale_points_and_unsupported_exponential_histograms() {
    let r = OtlpReceiver::new(OtlpConfig::default());
    let db = RecordingDb::new();
    let req = request(
        vec![kv("service.name", "s")],
        vec![
            metric(
                "rpc.latency",
                "s",
                Data::Summary(pb::Summary {
                    data_points: vec![pb::SummaryDataPoint {
                        time_unix_nano: T_NS,
                        count: 4,
                        sum: 2.0,
                        quantile_values: vec![pb::summary_data_point::ValueAtQuantile {
                            quantile: 0.99,
                            value: 0.9,
                        }],
                        ..Default::default()
                    }],
                }),
            ),
            metric(
                "temp",
                "Cel",
                Data::Gauge(pb::Gauge {
                    data_points: vec![pb::NumberDataPoint {
                        time_unix_nano: T_NS,
                        flags: 1,
                        ..Default::default()
                    }],
                }),
            ),
            metric(
                "exp",
                "",
                Data::ExponentialHistogram(pb::ExponentialHistogram {
                    data_points: vec![pb::ExponentialHistogramDataPoint {}; 2],
                    aggregation_temporality: 2,
                }),
            ),
        ],
    );
    let out = ingest(&r, &req, &db);
    assert_eq!(
        db.floats(r#"rpc_latency_seconds{job="s", quantile="0.99"}"#),
        vec![(T_MS, 0.9)]
    );
    assert_eq!(
        db.floats(r#"rpc_latency_seconds_count{job="s"}"#),
        vec![(T_MS, 4.0)]
    );
    assert!(is_stale_nan(db.floats(r#"temp_celsius{job="s"}"#)[0].1));
    assert_eq!(out.rejected.unsupported, 2);
    let resp =
        pb::ExportMetricsServiceResponse::decode(&response_body(OtlpEncoding::Protobuf, &out)[..])
            .unwrap();
    assert_eq!(resp.partial_success.unwrap().rejected_data_points, 2);
    let json: serde_json::Value =
        serde_json::from_slice(&response_body(OtlpEncoding::Json, &out)).unwrap();
    assert_eq!(json["partialSuccess"]["rejectedDataPoints"], "2");
}

const JSON_BODY: &str = r#"{
  "resourceMetrics": [{
    "resource": {"attributes": [
      {"key": "service.name", "value": {"stringValue": "checkout"}},
      {"key": "service.namespace", "value": {"stringValue": "shop"}},
      {"key": "service.instance.id", "value": {"stringValue": "pod-1"}},
      {"key": "host.name", "value": {"stringValue": "node7"}}
    ]},
    "scopeMetrics": [{
      "scope": {"name": "app"},
      "metrics": [
        {"name": "http.requests", "unit": "1", "description": "http.requests description",
         "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [
           {"attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}],
            "timeUnixNano": "1700000000123456789", "asDouble": 10}]}},
        {"name": "queue.depth", "description": "queue.depth description",
         "gauge": {"dataPoints": [{"timeUnixNano": "1700000000123456789", "asInt": "42",
           "attributes": [{"key": "queue.name", "value": {"stringValue": "a"}},
                          {"key": "queue_name", "value": {"stringValue": "b"}}]}]}}
      ]
    }]
  }]
}"#;

#[test]
fn json_decodes_like_protobuf() {
    let from_json = decode_json(JSON_BODY.as_bytes()).unwrap();
    let want = request(
        service(),
        vec![
            metric(
                "http.requests",
                "1",
                sum(
                    vec![num(
                        number_data_point::Value::AsDouble(10.0),
                        vec![kv("http.method", "GET")],
                        T_NS,
                    )],
                    2,
                    true,
                ),
            ),
            metric(
                "queue.depth",
                "",
                Data::Gauge(pb::Gauge {
                    data_points: vec![num(
                        number_data_point::Value::AsInt(42),
                        vec![kv("queue.name", "a"), kv("queue_name", "b")],
                        T_NS,
                    )],
                }),
            ),
        ],
    );
    assert_eq!(from_json, want);
    let db = RecordingDb::new();
    let r = OtlpReceiver::new(OtlpConfig::default());
    let (out, _) = r
        .ingest(OtlpEncoding::Json, JSON_BODY.as_bytes(), &db)
        .unwrap();
    assert_eq!(out.samples_written, 3);
}

#[test]
fn bad_bodies_are_clear_errors() {
    let e = decode_json(br#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", "gauge": {"dataPoints": [{"asInt": "4x"}]}}]}]}]}"#)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot decode OTLP JSON at resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].asInt: want an integer, got \"4x\""
    );
    let e = decode_json(b"{\"resourceMetrics\": 5}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot decode OTLP JSON at resourceMetrics: want an array, got a number"
    );
    assert!(
        decode_json(b"{")
            .unwrap_err()
            .to_string()
            .contains("invalid JSON at line 1")
    );
    let e = decode_protobuf(b"\x0a\x05\x0a").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot decode OTLP ExportMetricsServiceRequest protobuf (3 bytes)"),
        "{e}"
    );
    assert!(OtlpEncoding::from_content_type(Some("text/plain")).is_err());
    assert_eq!(
        OtlpEncoding::from_content_type(Some("application/json; charset=utf-8")).unwrap(),
        OtlpEncoding::Json
    );
    // Nothing was written by any of these.
    let db = RecordingDb::new();
    let r = OtlpReceiver::new(OtlpConfig::default());
    assert!(r.ingest(OtlpEncoding::Json, b"[]", &db).is_err());
    assert!(db.recs().is_empty());
}

proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let db = RecordingDb::new();
        let r = OtlpReceiver::new(OtlpConfig::default());
        let _ = r.ingest(OtlpEncoding::Protobuf, &bytes, &db);
        let _ = r.ingest(OtlpEncoding::Json, &bytes, &db);
    }

    #[test]
    fn sanitized_names_are_valid(name in "\\PC{1,20}") {
        let s = sanitize_label_name(&name);
        prop_assert!(is_valid_label_name(&s), "{:?} -> {:?}", name, s);
    }

    #[test]
    fn translated_metric_names_are_valid(name in "\\PC{0,20}", unit in "\\PC{0,6}") {
        let n = metric_name(&metric(&name, &unit, Data::Gauge(pb::Gauge::default())));
        prop_assert!(crate::ingest::remote_write::is_valid_metric_name(&n), "{:?} -> {:?}", name, n);
    }
}

#[test]
fn seed_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/otlp_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let enc = if name.ends_with(".json") {
            OtlpEncoding::Json
        } else {
            OtlpEncoding::Protobuf
        };
        let db = RecordingDb::new();
        let r = OtlpReceiver::new(OtlpConfig::default());
        let res = r.ingest(enc, &bytes, &db);
        if name.starts_with("ok_") {
            let (out, _) = res.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(out.samples_written + out.histograms_written > 0, "{name}");
        } else {
            assert!(
                name.starts_with("err_"),
                "corpus file {name} must start with ok_ or err_"
            );
            assert!(res.is_err(), "{name} should be refused");
            assert!(db.recs().is_empty(), "{name} wrote data");
        }
        n += 1;
    }
    assert!(n >= 5, "seed corpus has only {n} files");
}

/// Replays the export captured from PyPI `opentelemetry-sdk` +
/// `opentelemetry-exporter-otlp-proto-http` 1.29.0
/// (`testdata/capture_opentelemetry_python.py`): a counter, an up/down
/// counter, an observable gauge and a histogram, cumulative temporality.
#[test]
fn opentelemetry_python_export_replays() {
    let body = include_bytes!("testdata/opentelemetry-python-1.29.0-export.pb");
    let db = RecordingDb::new();
    let r = OtlpReceiver::new(OtlpConfig::default());
    let (out, meta) = r.ingest(OtlpEncoding::Protobuf, body, &db).unwrap();
    assert_eq!(out.rejected.total(), 0);
    let id = r#"instance="pod-1", job="shop/checkout""#;
    let one = |s: String| {
        let v = db.floats(&s);
        assert_eq!(v.len(), 1, "{s}: {:?}", db.recs());
        v[0].1
    };
    assert_eq!(
        one(format!(
            r#"orders_placed_total{{{id}, payment_method="card"}}"#
        )),
        3.0
    );
    assert_eq!(
        one(format!(
            r#"orders_placed_total{{{id}, payment_method="cash"}}"#
        )),
        2.0
    );
    assert_eq!(one(format!("queue_size{{{id}}}")), 5.0);
    assert_eq!(
        one(format!(r#"cpu_temperature_celsius{{cpu="0", {id}}}"#)),
        61.5
    );
    let h = db.hists(&format!(
        r#"http_server_duration_milliseconds{{http_route="/api/orders", {id}}}"#
    ));
    assert_eq!(h.len(), 1);
    let h = &h[0].1;
    assert_eq!((h.count, h.sum), (3.0, 743.0));
    let le = |b: f64| h.bucket_counts[h.upper_bounds.iter().position(|&x| x == b).unwrap()];
    assert_eq!(
        (le(5.0), le(50.0), le(500.0), le(750.0)),
        (1.0, 2.0, 2.0, 3.0)
    );
    let info: Vec<_> = db
        .recs()
        .into_iter()
        .filter(|r| r.labels().metric_name() == Some("target_info"))
        .collect();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].labels().get("deployment_environment"), Some("prod"));
    assert_eq!(
        info[0].labels().get("telemetry_sdk_language"),
        Some("python")
    );
    let kinds: Vec<(&str, &str)> = meta
        .iter()
        .map(|m| (m.metric.as_str(), m.kind.as_str()))
        .collect();
    assert!(
        kinds.contains(&("orders_placed_total", "counter")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("http_server_duration_milliseconds", "histogram")),
        "{kinds:?}"
    );
}
