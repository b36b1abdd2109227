use std::sync::Arc;

use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::ingest::testutil::{Rec, RecordingDb};
use crate::model::{Labels, ManualClock, is_stale_nan};

fn key(path: &str) -> GroupingKey {
    GroupingKey::from_path(path).unwrap()
}

fn gauge(name: &str, labels: &[(&str, &str)], v: f64) -> PushedFamily {
    PushedFamily {
        name: name.into(),
        help: format!("{name} help"),
        kind: FamilyKind::Gauge,
        metrics: vec![PushedMetric {
            labels: labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            value: PushedValue::Single(v),
            timestamp_ms: None,
        }],
    }
}

fn store_at(ms: i64) -> (PushStore, ManualClock) {
    let c = ManualClock::new(ms);
    (PushStore::in_memory(Arc::new(c.clone())), c)
}

#[test]
fn grouping_key_paths() {
    assert_eq!(key("/metrics/job/backup").to_string(), r#"{job="backup"}"#);
    assert_eq!(
        key("job/backup/instance/db1/").to_string(),
        r#"{instance="db1", job="backup"}"#
    );
    // prometheus_client: a value with '/' is sent as URL-safe base64 with padding.
    assert_eq!(
        key("job/some_job/path@base64/L3Zhci90bXA=")
            .labels()
            .get("path"),
        Some("/var/tmp")
    );
    // ...and padding is optional.
    assert_eq!(
        key("job/some_job/path@base64/L3Zhci90bXA")
            .labels()
            .get("path"),
        Some("/var/tmp")
    );
    // The empty-value form names the same group as leaving the label out.
    assert_eq!(key("job/j/instance@base64/="), key("job/j"));
    assert_eq!(key("job@base64/Zm9vL2Jhcg").job(), "foo/bar");
    assert_eq!(key("job/a%20b").job(), "a b");
    for (p, want) in [
        ("job/j/instance", "odd number of path segments (3)"),
        ("instance/x/job/j", "path must start with job/<job>"),
        ("job@base64/=", "job name is empty"),
        ("job/j/a-b/x", "invalid label name \"a-b\""),
        ("job/j/a/1/a/2", "duplicate label name \"a\""),
        ("job/j/__x/1", "invalid label name \"__x\""),
        ("job/j/a@base64/!!", "invalid base64 value \"!!\""),
        ("", "path must start with job/<job>"),
    ] {
        let e = GroupingKey::from_path(p).unwrap_err().to_string();
        assert!(e.contains(want), "{p}: {e}");
    }
}

#[test]
fn delimited_protobuf_byte_exact() {
    // What the Go client (`push.New(...).Format(expfmt.FmtProtoDelim)`)
    // sends for one gauge `some_metric 2.5`: a varint length, then the
    // MetricFamily {name=1, type=3, metric=4 {gauge=2 {value=1}}}.
    let mut body = vec![0x1c, 0x0a, 0x0b];
    body.extend_from_slice(b"some_metric");
    body.extend_from_slice(&[0x18, 0x01, 0x22, 0x0b, 0x12, 0x09, 0x09]);
    body.extend_from_slice(&2.5f64.to_le_bytes());
    let fams = decode_delimited(&body).unwrap();
    assert_eq!(
        fams,
        vec![PushedFamily {
            help: String::new(),
            ..gauge("some_metric", &[], 2.5)
        }]
    );
    // The same bytes as prost's own encoder produces.
    let mf = pb::MetricFamily {
        name: Some("some_metric".into()),
        r#type: Some(pb::MetricType::Gauge as i32),
        metric: vec![pb::Metric {
            gauge: Some(pb::Gauge { value: Some(2.5) }),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(mf.encode_length_delimited_to_vec(), body);

    let e = decode_delimited(&body[..body.len() - 1])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "cannot decode pushed protobuf body at byte 0: message length 28 exceeds the 27 remaining bytes"
    );
}

#[test]
fn delimited_protobuf_histogram_summary_and_counter() {
    let fams = vec![
        pb::MetricFamily {
            name: Some("jobs_total".into()),
            help: Some("Jobs.".into()),
            r#type: Some(pb::MetricType::Counter as i32),
            metric: vec![pb::Metric {
                label: vec![pb::LabelPair {
                    name: Some("kind".into()),
                    value: Some("full".into()),
                }],
                counter: Some(pb::Counter { value: Some(5.0) }),
                ..Default::default()
            }],
            ..Default::default()
        },
        pb::MetricFamily {
            name: Some("dur_seconds".into()),
            r#type: Some(pb::MetricType::Histogram as i32),
            metric: vec![pb::Metric {
                histogram: Some(pb::Histogram {
                    sample_count: Some(4),
                    sample_sum: Some(9.5),
                    bucket: vec![
                        pb::Bucket {
                            cumulative_count: Some(1),
                            upper_bound: Some(1.0),
                            ..Default::default()
                        },
                        pb::Bucket {
                            cumulative_count: Some(3),
                            upper_bound: Some(5.0),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        },
        pb::MetricFamily {
            name: Some("rpc_seconds".into()),
            r#type: Some(pb::MetricType::Summary as i32),
            metric: vec![pb::Metric {
                summary: Some(pb::Summary {
                    sample_count: Some(10),
                    sample_sum: Some(2.0),
                    quantile: vec![pb::Quantile {
                        quantile: Some(0.5),
                        value: Some(0.2),
                    }],
                }),
                ..Default::default()
            }],
            ..Default::default()
        },
    ];
    let mut body = Vec::new();
    for f in &fams {
        body.extend(f.encode_length_delimited_to_vec());
    }
    let got = decode_delimited(&body).unwrap();
    assert_eq!(got.len(), 3);
    let (s, _) = store_at(1_000);
    s.push(&key("job/nightly/instance/h1"), PushMethod::Put, got)
        .unwrap();
    let db = RecordingDb::new();
    let out = s.resample(60_000, &db).unwrap();
    assert_eq!((out.groups, out.histograms_written), (1, 1));
    // 2 push-time gauges + counter + quantile + _sum + _count
    assert_eq!(out.samples_written, 6);
    let g = r#"instance="h1", job="nightly""#;
    assert_eq!(
        db.floats(&format!(r#"jobs_total{{{g}, kind="full"}}"#)),
        vec![(60_000, 5.0)]
    );
    assert_eq!(
        db.floats(&format!(r#"rpc_seconds{{{g}, quantile="0.5"}}"#)),
        vec![(60_000, 0.2)]
    );
    assert_eq!(
        db.floats(&format!("rpc_seconds_count{{{g}}}")),
        vec![(60_000, 10.0)]
    );
    assert_eq!(
        db.floats(&format!("push_time_seconds{{{g}}}")),
        vec![(60_000, 1.0)]
    );
    assert_eq!(
        db.floats(&format!("push_failure_time_seconds{{{g}}}")),
        vec![(60_000, 0.0)]
    );
    let h = db.hists(&format!("dur_seconds{{{g}}}"));
    assert_eq!(&*h[0].1.upper_bounds, &[1.0, 5.0]);
    assert_eq!(h[0].1.bucket_counts, vec![1.0, 3.0, 4.0]);
    assert_eq!((h[0].1.sum, h[0].1.count), (9.5, 4.0));

    // A metric without the value its type requires is a clear error.
    let bad = pb::MetricFamily {
        name: Some("x".into()),
        r#type: Some(pb::MetricType::Counter as i32),
        metric: vec![pb::Metric {
            gauge: Some(pb::Gauge { value: Some(1.0) }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let e = decode_delimited(&bad.encode_length_delimited_to_vec()).unwrap_err();
    assert!(
        e.to_string()
            .contains("metric x of type counter has no counter value"),
        "{e}"
    );
}

#[test]
fn put_post_delete_semantics() {
    let (s, clock) = store_at(10_000);
    let k = key("job/batch");
    s.push(
        &k,
        PushMethod::Put,
        vec![gauge("a", &[], 1.0), gauge("b", &[], 2.0)],
    )
    .unwrap();
    clock.set(20_000);
    // POST replaces only same-name families.
    s.push(
        &k,
        PushMethod::Post,
        vec![gauge("b", &[("x", "1")], 3.0), gauge("c", &[], 4.0)],
    )
    .unwrap();
    let g = &s.list()[0];
    let names: Vec<&str> = g.families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(g.families[1].metrics.len(), 1);
    assert_eq!(g.families[1].metrics[0].value, PushedValue::Single(3.0));
    assert_eq!(g.push_time_ms, 20_000);
    assert!(g.last_push_successful());
    // PUT replaces everything.
    s.push(&k, PushMethod::Put, vec![gauge("d", &[], 5.0)])
        .unwrap();
    assert_eq!(s.list()[0].families.len(), 1);
    // PUT with an empty body leaves an empty group.
    s.push(&k, PushMethod::Put, vec![]).unwrap();
    assert_eq!(s.list()[0].families.len(), 0);
    assert_eq!(s.len(), 1);
    assert!(s.delete(&k).unwrap());
    assert!(!s.delete(&k).unwrap());
    assert!(s.is_empty());
    s.push(&key("job/a"), PushMethod::Put, vec![]).unwrap();
    s.push(&key("job/b"), PushMethod::Put, vec![]).unwrap();
    assert_eq!(s.wipe().unwrap(), 2);
    assert!(s.is_empty());
}

#[test]
fn grouping_labels_override_and_invalid_pushes_fail() {
    let (s, clock) = store_at(1_000);
    let k = key("job/batch/instance/h1");
    s.push(
        &k,
        PushMethod::Put,
        vec![gauge(
            "a",
            &[("instance", "other"), ("job", "x"), ("z", "1")],
            1.0,
        )],
    )
    .unwrap();
    let m = &s.list()[0].families[0].metrics[0];
    assert_eq!(
        m.labels,
        vec![
            ("instance".to_string(), "h1".to_string()),
            ("job".into(), "batch".into()),
            ("z".into(), "1".into())
        ]
    );
    clock.set(5_000);
    let mut ts = gauge("a", &[], 1.0);
    ts.metrics[0].timestamp_ms = Some(5);
    let e = s.push(&k, PushMethod::Put, vec![ts]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "pushed metrics are invalid or inconsistent with existing metrics: \
         metric a has a timestamp; pushed metrics must not have timestamps"
    );
    let g = &s.list()[0];
    assert_eq!((g.push_time_ms, g.push_failure_time_ms), (1_000, 5_000));
    assert!(!g.last_push_successful());
    // The failed push changed nothing else.
    assert_eq!(g.families[0].metrics[0].value, PushedValue::Single(1.0));

    // Same family name with another type in another group.
    let mut c = gauge("a", &[], 1.0);
    c.kind = FamilyKind::Counter;
    let e = s
        .push(&key("job/other"), PushMethod::Put, vec![c])
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("metric a is a counter here but a gauge in group"),
        "{e}"
    );
    // A failed push to an unknown group does not create it.
    assert_eq!(s.len(), 1);

    let dup = PushedFamily {
        metrics: vec![
            gauge("d", &[], 1.0).metrics[0].clone(),
            gauge("d", &[], 2.0).metrics[0].clone(),
        ],
        ..gauge("d", &[], 1.0)
    };
    let e = s.push(&k, PushMethod::Post, vec![dup]).unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"duplicate metric d{instance="h1", job="batch"}"#),
        "{e}"
    );
    let e = s
        .push(
            &k,
            PushMethod::Post,
            vec![gauge("push_time_seconds", &[], 1.0)],
        )
        .unwrap_err();
    assert!(e.to_string().contains("reserved"), "{e}");
    let e = s
        .push(&k, PushMethod::Post, vec![gauge("bad-name", &[], 1.0)])
        .unwrap_err();
    assert!(
        e.to_string().contains("invalid metric name \"bad-name\""),
        "{e}"
    );
}

#[test]
fn resample_keeps_daily_push_alertable_and_stales_deleted_groups() {
    // A backup job pushes its success time once, then stops (it broke).
    let day_ms = 86_400_000i64;
    let t0 = 1_700_000_000_000i64;
    let (s, clock) = store_at(t0);
    let k = key("job/backup/instance/db1");
    s.push(
        &k,
        PushMethod::Put,
        vec![gauge(
            "backup_last_success_timestamp_seconds",
            &[],
            (t0 / 1000) as f64,
        )],
    )
    .unwrap();
    let db = RecordingDb::new();
    // Re-sample hourly for two days (the server does it every 15 s).
    let mut t = t0;
    while t <= t0 + 2 * day_ms {
        clock.set(t);
        s.resample(t, &db).unwrap();
        t += 3_600_000;
    }
    let series = r#"backup_last_success_timestamp_seconds{instance="db1", job="backup"}"#;
    let pts = db.floats(series);
    assert_eq!(pts.len(), 49);
    // Evaluate `time() - backup_last_success_timestamp_seconds > 86400*1.5`
    // on the stored data: the latest sample is always recent, so the
    // expression sees the value; it fires once 1.5 days have passed.
    let alert_at = |now_ms: i64| {
        let (_, v) = pts.iter().rev().find(|(pt, _)| *pt <= now_ms).unwrap();
        (now_ms / 1000) as f64 - v > 86400.0 * 1.5
    };
    assert!(!alert_at(t0 + day_ms));
    assert!(alert_at(t0 + 2 * day_ms));

    // Deleting the group writes stale markers at the next resample.
    s.delete(&k).unwrap();
    let out = s.resample(t + 15_000, &db).unwrap();
    assert_eq!(out.groups, 0);
    assert_eq!(out.stale_markers, 3);
    assert!(is_stale_nan(db.floats(series).last().unwrap().1));
    // And nothing more afterwards, not even an empty commit.
    let commits = *db.commits.lock();
    let out = s.resample(t + 30_000, &db).unwrap();
    assert_eq!((out.samples_written, out.stale_markers), (0, 0));
    assert_eq!(*db.commits.lock(), commits);
}

#[test]
fn resample_stales_replaced_metrics_and_histograms() {
    let (s, _) = store_at(1_000);
    let k = key("job/j");
    let h = PushedFamily {
        name: "lat".into(),
        help: String::new(),
        kind: FamilyKind::Histogram,
        metrics: vec![PushedMetric {
            labels: vec![],
            value: PushedValue::Histogram {
                count: 2.0,
                sum: 1.0,
                buckets: vec![(0.5, 1.0), (f64::INFINITY, 2.0)],
            },
            timestamp_ms: None,
        }],
    };
    s.push(&k, PushMethod::Put, vec![h, gauge("g", &[], 1.0)])
        .unwrap();
    let db = RecordingDb::new();
    s.resample(10_000, &db).unwrap();
    let hs = db.hists(r#"lat{job="j"}"#);
    assert_eq!(&*hs[0].1.upper_bounds, &[0.5]);
    assert_eq!(hs[0].1.bucket_counts, vec![1.0, 2.0]);
    s.push(&k, PushMethod::Put, vec![gauge("g", &[], 2.0)])
        .unwrap();
    let out = s.resample(20_000, &db).unwrap();
    assert_eq!(out.stale_markers, 1);
    assert!(db.hists(r#"lat{job="j"}"#)[1].1.is_stale());
    assert_eq!(
        db.floats(r#"g{job="j"}"#),
        vec![(10_000, 1.0), (20_000, 2.0)]
    );
    // Too-old rejections are counted, not fatal.
    let old = RecordingDb::with_min_t(100_000);
    let out = s.resample(30_000, &old).unwrap();
    assert_eq!(out.rejected.too_old, 3);
    assert!(old.recs().is_empty());
    assert!(db.recs().iter().any(|r| matches!(r, Rec::Hist(..))));
}

#[test]
fn groups_survive_restart_and_corruption_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(42_000));
    {
        let s = PushStore::open(dir.path(), clock.clone()).unwrap();
        s.push(
            &key("job/a/path@base64/L3Zhcg=="),
            PushMethod::Put,
            vec![gauge("x", &[("k", "v")], 1.5)],
        )
        .unwrap();
        s.push(&key("job/b"), PushMethod::Put, vec![]).unwrap();
        s.delete(&key("job/b")).unwrap();
    }
    let s = PushStore::open(dir.path(), clock.clone()).unwrap();
    let l = s.list();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].key.to_string(), r#"{job="a", path="/var"}"#);
    assert_eq!(l[0].push_time_ms, 42_000);
    assert_eq!(
        l[0].families[0],
        PushedFamily {
            metrics: vec![PushedMetric {
                labels: vec![
                    ("job".into(), "a".into()),
                    ("k".into(), "v".into()),
                    ("path".into(), "/var".into())
                ],
                value: PushedValue::Single(1.5),
                timestamp_ms: None,
            }],
            ..gauge("x", &[], 1.5)
        }
    );
    drop(s);
    let path = dir.path().join(PUSH_GROUPS_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let e = PushStore::open(dir.path(), clock).unwrap_err().to_string();
    assert!(e.starts_with("corrupt push groups file"), "{e}");
    assert!(e.contains("CRC32C mismatch"), "{e}");
}

#[test]
fn push_groups_file_golden_bytes() {
    let mut groups = std::collections::BTreeMap::new();
    let mut fams = std::collections::BTreeMap::new();
    fams.insert(
        "x".to_string(),
        PushedFamily {
            name: "x".into(),
            help: "h".into(),
            kind: FamilyKind::Gauge,
            metrics: vec![PushedMetric {
                labels: vec![("job".into(), "j".into())],
                value: PushedValue::Single(1.0),
                timestamp_ms: None,
            }],
        },
    );
    groups.insert(
        key("job/j"),
        super::store::Group {
            families: fams,
            push_ms: 1000,
            failure_ms: 0,
        },
    );
    let bytes = super::persist::encode(&groups);
    let mut want: Vec<u8> = b"WPPG\x01\x00\x00\x00".to_vec();
    want.extend_from_slice(&[1, 1, 3]); // 1 group, 1 label, "job"
    want.extend_from_slice(b"job\x01j");
    want.extend_from_slice(&1000i64.to_le_bytes());
    want.extend_from_slice(&0i64.to_le_bytes());
    want.extend_from_slice(&[1, 1, b'x', 1, b'h', 1, 1, 1, 3]); // family x, help h, gauge, 1 metric, 1 label
    want.extend_from_slice(b"job\x01j");
    want.push(0); // single value
    want.extend_from_slice(&1.0f64.to_le_bytes());
    let crc = crc32c::crc32c(&want);
    want.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(bytes, want);
    assert_eq!(super::persist::decode(&bytes).unwrap(), groups);
}

proptest! {
    #[test]
    fn path_parsing_never_panics(p in "[a-z@/=%0-9A-Z_.-]{0,40}") {
        let _ = GroupingKey::from_path(&p);
    }

    #[test]
    fn grouping_key_path_round_trip(
        job in "[ -~]{1,12}",
        extra in proptest::collection::btree_map("[a-z][a-z0-9_]{0,6}", "[ -~]{0,12}", 0..4),
    ) {
        let mut pairs = vec![("job".to_string(), job)];
        pairs.extend(extra.into_iter().filter(|(k, _)| k != "job"));
        let k = GroupingKey::from_labels(Labels::from_pairs(pairs)).unwrap();
        let back = GroupingKey::from_path(&k.to_path()).unwrap();
        prop_assert_eq!(back, k);
    }

    #[test]
    fn delimited_and_file_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_delimited(&bytes);
        let _ = super::persist::decode(&bytes);
    }

    #[test]
    fn push_groups_file_round_trip(
        vals in proptest::collection::vec(("[a-z]{1,6}", any::<f64>(), any::<i64>()), 0..6),
    ) {
        let (s, clock) = store_at(0);
        for (i, (name, v, t)) in vals.iter().enumerate() {
            clock.set(*t);
            s.push(&key(&format!("job/j{}", i % 3)), PushMethod::Post, vec![gauge(name, &[], *v)]).unwrap();
        }
        let groups = s.list_groups_for_test();
        let bytes = super::persist::encode(&groups);
        let back = super::persist::decode(&bytes).unwrap();
        prop_assert_eq!(super::persist::encode(&back), bytes);
    }
}

/// Replays the exact requests PyPI `prometheus_client` 0.21.1 sent
/// (`push_to_gateway`, `pushadd_to_gateway`, `delete_from_gateway`),
/// captured by `testdata/capture_prometheus_client.py`.
#[test]
fn prometheus_client_requests_replay() {
    use base64::Engine;
    let raw = include_str!("testdata/prometheus_client_0.21.1_requests.json");
    let reqs: Vec<serde_json::Value> = serde_json::from_str(raw).unwrap();
    assert_eq!(reqs.len(), 4);
    let (s, clock) = store_at(1_000_000);
    let db = RecordingDb::new();
    let mut t = 1_000_000;
    for (i, r) in reqs.iter().enumerate() {
        let path = r["path"].as_str().unwrap();
        let key = GroupingKey::from_path(path).unwrap();
        let body = base64::engine::general_purpose::STANDARD
            .decode(r["body_b64"].as_str().unwrap())
            .unwrap();
        let fams = decode_body(r["content_type"].as_str(), &body).unwrap();
        t += 15_000;
        clock.set(t);
        match r["method"].as_str().unwrap() {
            "PUT" => s.push(&key, PushMethod::Put, fams).unwrap(),
            "POST" => s.push(&key, PushMethod::Post, fams).unwrap(),
            "DELETE" => assert!(s.delete(&key).unwrap()),
            m => panic!("unexpected method {m}"),
        }
        if i == 1 {
            // After push_to_gateway + pushadd_to_gateway.
            let l = s.list();
            assert_eq!(l.len(), 1);
            assert_eq!(
                l[0].key.to_string(),
                r#"{instance="db1", job="backup", path="/var/lib/db"}"#
            );
            let names: Vec<(&str, &str)> = l[0]
                .families
                .iter()
                .map(|f| (f.name.as_str(), f.kind.as_str()))
                .collect();
            assert_eq!(
                names,
                [
                    ("backup_bytes", "gauge"),
                    ("backup_chunk_bytes", "summary"),
                    ("backup_chunk_bytes_created", "gauge"),
                    ("backup_duration_seconds", "histogram"),
                    ("backup_duration_seconds_created", "gauge"),
                    ("backup_files_created", "gauge"),
                    ("backup_files_total", "counter"),
                    ("backup_last_success_timestamp_seconds", "gauge"),
                ]
            );
            assert_eq!(l[0].families[1].help, "Chunk sizes");
            assert_eq!(
                l[0].families[3].metrics[0].value,
                PushedValue::Histogram {
                    count: 2.0,
                    sum: 257.5,
                    buckets: vec![(1.0, 0.0), (10.0, 1.0), (100.0, 1.0), (f64::INFINITY, 2.0)],
                }
            );
            s.resample(t, &db).unwrap();
            let g = r#"instance="db1", job="backup", path="/var/lib/db""#;
            assert_eq!(
                db.floats(&format!("backup_last_success_timestamp_seconds{{{g}}}")),
                vec![(t, 1.7e9)]
            );
            assert_eq!(
                db.floats(r#"backup_files_total{instance="db1", job="backup", kind="full", path="/var/lib/db"}"#),
                vec![(t, 42.0)]
            );
            assert_eq!(
                db.floats(&format!("backup_chunk_bytes_sum{{{g}}}")),
                vec![(t, 4096.0)]
            );
            let h = db.hists(&format!("backup_duration_seconds{{{g}}}"));
            assert_eq!(&*h[0].1.upper_bounds, &[1.0, 10.0, 100.0]);
            assert_eq!(h[0].1.bucket_counts, vec![0.0, 1.0, 1.0, 2.0]);
        }
    }
    let meta = s.metadata();
    assert!(
        meta.iter()
            .any(|m| m.metric == "backup_bytes" && m.help == "Bytes written")
    );
    // The DELETE removed the backup group; `cron job` arrives as `cron+job`
    // (quote_plus), exactly as the Pushgateway stores it.
    let l = s.list();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].key.to_string(), r#"{job="cron+job"}"#);
}

#[test]
fn text_bodies_group_into_families() {
    let body = b"# TYPE rpc summary\nrpc{quantile=\"0.5\",m=\"a\"} 1\nrpc_sum{m=\"a\"} 5\nrpc_count{m=\"a\"} 3\n\
        plain_total 7\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"+Inf\"} 4\nh_sum 9\n";
    let f = families_from_text(body).unwrap();
    assert_eq!(f.len(), 3);
    assert_eq!(
        f[0].metrics[0].labels,
        vec![("m".to_string(), "a".to_string())]
    );
    assert_eq!(
        f[0].metrics[0].value,
        PushedValue::Summary {
            count: 3.0,
            sum: 5.0,
            quantiles: vec![(0.5, 1.0)]
        }
    );
    assert_eq!(
        (f[1].name.as_str(), f[1].kind),
        ("plain_total", FamilyKind::Untyped)
    );
    // Without _count the +Inf bucket gives the count.
    assert_eq!(
        f[2].metrics[0].value,
        PushedValue::Histogram {
            count: 4.0,
            sum: 9.0,
            buckets: vec![(2.0, 1.0), (f64::INFINITY, 4.0)]
        }
    );
    let e = families_from_text(b"ok 1\nbad{ 2\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot decode pushed text body at byte 0: line 2:"),
        "{e}"
    );
    let e = families_from_text(b"# TYPE h histogram\nh_bucket 1\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2: h_bucket sample without a le label"),
        "{e}"
    );
    // Timestamps parse, and the store refuses them like the Pushgateway.
    let f = families_from_text(b"x 1 1700000000000\n").unwrap();
    let (s, _) = store_at(0);
    assert!(s.push(&key("job/j"), PushMethod::Put, f).is_err());
}

#[test]
fn seed_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/pushgateway_body");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let ct = name.ends_with(".pb").then_some(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        );
        let res = decode_body(ct, &bytes);
        if name.starts_with("ok_") {
            let fams = res.unwrap_or_else(|e| panic!("{name}: {e}"));
            let (s, _) = store_at(1);
            s.push(&key("job/corpus"), PushMethod::Put, fams).unwrap();
            let db = RecordingDb::new();
            assert!(s.resample(2, &db).unwrap().samples_written > 2, "{name}");
        } else {
            assert!(
                name.starts_with("err_"),
                "corpus file {name} must start with ok_ or err_"
            );
            assert!(res.is_err(), "{name} should be refused");
        }
        n += 1;
    }
    assert!(n >= 5, "seed corpus has only {n} files");
}
