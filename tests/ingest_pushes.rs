//! The push doors against the real storage `Db`: remote write, Pushgateway
//! re-sampling and OTLP histograms end up queryable through `Querier`.

use std::path::Path;
use std::sync::Arc;

use prost::Message;
use watchpost::ingest::otlp::{OtlpConfig, OtlpEncoding, OtlpReceiver, pb as otlp};
use watchpost::ingest::pushgateway::{GroupingKey, PushMethod, PushStore, decode_body};
use watchpost::ingest::remote_write::{
    DecodeLimits, Protocol, SeriesCache, apply, decode_cached, pb::v1,
};
use watchpost::model::{ManualClock, Matcher, is_stale_nan};
use watchpost::storage::{Db, DbOptions, Querier, SelectHints};

fn open(dir: &Path) -> Db {
    let mut o = DbOptions::new(dir);
    o.maintenance_interval = None;
    o.clock = Arc::new(ManualClock::new(0));
    Db::open(o).unwrap()
}

fn all() -> SelectHints {
    SelectHints::range(i64::MIN, i64::MAX)
}

fn points(db: &Db, name: &str) -> Vec<(String, Vec<i64>, Vec<f64>)> {
    db.select(&all(), &[Matcher::equal("__name__", name)])
        .unwrap()
        .into_iter()
        .map(|s| (s.labels.to_string(), s.timestamps, s.values))
        .collect()
}

fn rw_body(samples: &[(i64, f64)]) -> Vec<u8> {
    let req = v1::WriteRequest {
        timeseries: vec![v1::TimeSeries {
            labels: vec![
                v1::Label {
                    name: "__name__".into(),
                    value: "up".into(),
                },
                v1::Label {
                    name: "job".into(),
                    value: "node".into(),
                },
            ],
            samples: samples
                .iter()
                .map(|&(t, v)| v1::Sample {
                    value: v,
                    timestamp: t,
                })
                .collect(),
            ..Default::default()
        }],
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

#[test]
fn remote_write_into_db_counts_out_of_window_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let cache = SeriesCache::default();
    let limits = DecodeLimits::default();
    let b = decode_cached(Protocol::V1, &rw_body(&[(3_600_000, 1.0)]), &limits, &cache).unwrap();
    let out = apply(&b, &db).unwrap();
    assert_eq!(out.samples_written, 1);
    // One sample far outside the 10-minute out-of-order window, one fine.
    let b = decode_cached(
        Protocol::V1,
        &rw_body(&[(1_000, 5.0), (3_615_000, 0.0)]),
        &limits,
        &cache,
    )
    .unwrap();
    let out = apply(&b, &db).unwrap();
    assert_eq!((out.samples_written, out.rejected.too_old), (1, 1));
    assert_eq!(
        points(&db, "up"),
        vec![(
            r#"up{job="node"}"#.to_string(),
            vec![3_600_000, 3_615_000],
            vec![1.0, 0.0]
        )]
    );
}

#[test]
fn pushgateway_groups_resample_into_db_and_go_stale() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let clock = Arc::new(ManualClock::new(1_000));
    let store = PushStore::open(dir.path(), clock.clone()).unwrap();
    let key = GroupingKey::from_path("/metrics/job/backup/instance/db1").unwrap();
    let body = b"# TYPE backup_last_success_timestamp_seconds gauge\nbackup_last_success_timestamp_seconds 1\n";
    store
        .push(&key, PushMethod::Put, decode_body(None, body).unwrap())
        .unwrap();
    store.resample(15_000, &db).unwrap();
    // Restart of the push store: the group is still there.
    drop(store);
    let store = PushStore::open(dir.path(), clock).unwrap();
    store.resample(30_000, &db).unwrap();
    store.delete(&key).unwrap();
    store.resample(45_000, &db).unwrap();
    let got = points(&db, "backup_last_success_timestamp_seconds");
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].0,
        r#"backup_last_success_timestamp_seconds{instance="db1", job="backup"}"#
    );
    assert_eq!(got[0].1, vec![15_000, 30_000, 45_000]);
    assert_eq!(&got[0].2[..2], &[1.0, 1.0]);
    assert!(is_stale_nan(got[0].2[2]));
    assert_eq!(points(&db, "push_time_seconds")[0].2[0], 1.0);
}

#[test]
fn otlp_histograms_land_in_bucket_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let kv = |k: &str, v: &str| otlp::KeyValue {
        key: k.into(),
        value: Some(otlp::AnyValue {
            value: Some(otlp::any_value::Value::StringValue(v.into())),
        }),
    };
    let req = otlp::ExportMetricsServiceRequest {
        resource_metrics: vec![otlp::ResourceMetrics {
            resource: Some(otlp::Resource {
                attributes: vec![kv("service.name", "api")],
                dropped_attributes_count: 0,
            }),
            scope_metrics: vec![otlp::ScopeMetrics {
                metrics: vec![otlp::Metric {
                    name: "http.server.duration".into(),
                    unit: "ms".into(),
                    data: Some(otlp::metric::Data::Histogram(otlp::Histogram {
                        data_points: vec![otlp::HistogramDataPoint {
                            time_unix_nano: 60_000_000_000,
                            count: 3,
                            sum: Some(42.0),
                            bucket_counts: vec![1, 2, 0],
                            explicit_bounds: vec![10.0, 100.0],
                            ..Default::default()
                        }],
                        aggregation_temporality: 2,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    };
    let r = OtlpReceiver::new(OtlpConfig::default());
    let (out, _) = r
        .ingest(OtlpEncoding::Protobuf, &req.encode_to_vec(), &db)
        .unwrap();
    assert_eq!(out.histograms_written, 1);
    let hs = db
        .select_histograms(
            &all(),
            &[Matcher::equal(
                "__name__",
                "http_server_duration_milliseconds_bucket",
            )],
        )
        .unwrap();
    assert_eq!(hs.len(), 1);
    assert_eq!(&*hs[0].upper_bounds, &[10.0, 100.0]);
    assert_eq!(hs[0].buckets, vec![vec![1.0], vec![3.0], vec![3.0]]);
    assert_eq!(
        points(&db, "http_server_duration_milliseconds_sum")[0].2,
        vec![42.0]
    );
}
