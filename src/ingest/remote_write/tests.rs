use proptest::prelude::*;
use prost::Message;

use super::pb::{v1, v2};
use super::*;
use crate::ingest::testutil::{Rec, RecordingDb};
use crate::model::{Labels, METRIC_NAME, Sample, stale_nan};

pub(super) fn label(n: &str, v: &str) -> v1::Label {
    v1::Label {
        name: n.into(),
        value: v.into(),
    }
}

pub(super) fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> v1::TimeSeries {
    v1::TimeSeries {
        labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
        samples: samples
            .iter()
            .map(|&(t, v)| v1::Sample {
                timestamp: t,
                value: v,
            })
            .collect(),
        ..Default::default()
    }
}

pub(super) fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

pub(super) fn body_v1(ts: Vec<v1::TimeSeries>) -> Vec<u8> {
    snappy(
        &v1::WriteRequest {
            timeseries: ts,
            metadata: vec![],
        }
        .encode_to_vec(),
    )
}

pub(super) fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

#[test]
fn content_type_selects_protocol() {
    assert_eq!(Protocol::from_content_type(None).unwrap(), Protocol::V1);
    assert_eq!(
        Protocol::from_content_type(Some("application/x-protobuf")).unwrap(),
        Protocol::V1
    );
    assert_eq!(
        Protocol::from_content_type(Some("application/x-protobuf;proto=prometheus.WriteRequest"))
            .unwrap(),
        Protocol::V1
    );
    assert_eq!(
        Protocol::from_content_type(Some(
            "application/x-protobuf; proto=io.prometheus.write.v2.Request"
        ))
        .unwrap(),
        Protocol::V2
    );
    let e = Protocol::from_content_type(Some("application/json")).unwrap_err();
    assert!(e.to_string().contains("application/json"), "{e}");
    assert!(Protocol::from_content_type(Some("application/x-protobuf;proto=foo.Bar")).is_err());
}

#[test]
fn decodes_v1_and_sorts_unsorted_labels() {
    let body = body_v1(vec![series(
        &[("job", "a"), (METRIC_NAME, "up"), ("instance", "x:1")],
        &[(1000, 1.0), (2000, 0.0)],
    )]);
    let b = decode(Protocol::V1, &body, &limits()).unwrap();
    assert_eq!(b.series.len(), 1);
    assert_eq!(
        b.series[0].labels.to_string(),
        r#"up{instance="x:1", job="a"}"#
    );
    assert_eq!(
        b.series[0].samples,
        vec![Sample { t: 1000, v: 1.0 }, Sample { t: 2000, v: 0.0 }]
    );
}

#[test]
fn invalid_series_are_named_and_refuse_the_request() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[(METRIC_NAME, "up"), ("", "x")], "empty label name"),
        (
            &[(METRIC_NAME, "up"), ("a-b", "x")],
            "invalid label name \"a-b\"",
        ),
        (&[(METRIC_NAME, "1up")], "invalid metric name \"1up\""),
        (
            &[(METRIC_NAME, "up"), ("job", "a"), ("job", "b")],
            "duplicate label name \"job\"",
        ),
        (&[("job", "")], "empty label set"),
    ];
    for (labels, want) in cases {
        let body = body_v1(vec![
            series(&[(METRIC_NAME, "ok")], &[(1, 1.0)]),
            series(labels, &[(1, 1.0)]),
        ]);
        let e = decode(Protocol::V1, &body, &limits()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(want), "{msg} should contain {want}");
        assert!(msg.starts_with("invalid series #1 {"), "{msg}");
    }
}

#[test]
fn huge_label_values_are_refused() {
    let big = "x".repeat(20_000);
    let body = body_v1(vec![series(
        &[(METRIC_NAME, "up"), ("a", &big)],
        &[(1, 1.0)],
    )]);
    let e = decode(Protocol::V1, &body, &limits()).unwrap_err();
    assert!(
        e.to_string()
            .contains("label \"a\" has a value of 20000 bytes, the limit is 16384"),
        "{e}"
    );
    // The message stays short even though the value is huge.
    assert!(e.to_string().len() < 400, "{}", e.to_string().len());
}

#[test]
fn declared_length_is_checked_before_allocating() {
    // A 6-byte body whose snappy header declares ~4 GiB.
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    match decode(Protocol::V1, &body, &limits()) {
        Err(RemoteWriteError::TooLarge { declared, max }) => {
            assert_eq!(declared, 0xffff_ffff);
            assert_eq!(max, 64 << 20);
        }
        other => panic!("want TooLarge, got {other:?}"),
    }
    let small = DecodeLimits {
        max_decompressed_bytes: 10,
        ..limits()
    };
    let body = body_v1(vec![series(&[(METRIC_NAME, "up")], &[(1, 1.0)])]);
    assert!(matches!(
        decode(Protocol::V1, &body, &small),
        Err(RemoteWriteError::TooLarge { .. })
    ));
}

#[test]
fn truncated_snappy_and_garbage_protobuf_are_clear_errors() {
    let body = body_v1(vec![series(&[(METRIC_NAME, "up")], &[(1, 1.0)])]);
    let e = decode(Protocol::V1, &body[..body.len() - 3], &limits()).unwrap_err();
    assert!(matches!(e, RemoteWriteError::Snappy { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("cannot decompress snappy body"),
        "{e}"
    );
    let e = decode(
        Protocol::V1,
        &snappy(b"\xff\xff\xff\xff garbage"),
        &limits(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot decode prometheus.WriteRequest protobuf (12 bytes)"),
        "{e}"
    );
}

#[test]
fn apply_keeps_valid_samples_and_counts_too_old() {
    let db = RecordingDb::with_min_t(1500);
    let body = body_v1(vec![
        series(&[(METRIC_NAME, "a")], &[(1000, 1.0), (2000, 2.0)]),
        series(&[(METRIC_NAME, "b")], &[(3000, 3.0)]),
    ]);
    let b = decode(Protocol::V1, &body, &limits()).unwrap();
    let out = apply(&b, &db).unwrap();
    assert_eq!(out.samples_written, 2);
    assert_eq!(out.rejected.too_old, 1);
    assert_eq!(out.rejected.total(), 1);
    assert_eq!(
        out.report(),
        "wrote 2 samples, 0 histograms; rejected 1 samples (too_old: 1); first: \
         sample for a at 1000 ms is too old: out-of-order window starts at 1500 ms"
    );
    assert_eq!(db.floats("a"), vec![(2000, 2.0)]);
    assert_eq!(db.floats("b"), vec![(3000, 3.0)]);
    let m = DoorMetrics::new();
    m.record_outcome(&out);
    let s = m.snapshot();
    assert_eq!((s.requests, s.samples_accepted), (1, 2));
    assert!(s.rejected.contains(&("too_old", 1)));
}

#[test]
fn invalid_request_writes_nothing() {
    let db = RecordingDb::new();
    let body = body_v1(vec![
        series(&[(METRIC_NAME, "a")], &[(1000, 1.0)]),
        series(
            &[(METRIC_NAME, "b"), ("x", "1"), ("x", "2")],
            &[(1000, 1.0)],
        ),
    ]);
    assert!(decode(Protocol::V1, &body, &limits()).is_err());
    // Decoding failed, so there is no batch to apply: the store is untouched.
    assert!(db.recs().is_empty());
    assert_eq!(*db.commits.lock(), 0);
}

#[test]
fn commit_failure_is_an_error() {
    let db = RecordingDb {
        fail_commit: true,
        ..RecordingDb::new()
    };
    let b = decode(
        Protocol::V1,
        &body_v1(vec![series(&[(METRIC_NAME, "a")], &[(1, 1.0)])]),
        &limits(),
    )
    .unwrap();
    let e = apply(&b, &db).unwrap_err();
    assert!(e.to_string().contains("injected commit failure"), "{e}");
    assert!(db.recs().is_empty());
}

#[test]
fn stale_markers_pass_through() {
    let db = RecordingDb::new();
    let b = decode(
        Protocol::V1,
        &body_v1(vec![series(&[(METRIC_NAME, "a")], &[(1, stale_nan())])]),
        &limits(),
    )
    .unwrap();
    apply(&b, &db).unwrap();
    assert!(crate::model::is_stale_nan(db.floats("a")[0].1));
}

#[test]
fn v1_metadata_is_kept() {
    let req = v1::WriteRequest {
        timeseries: vec![],
        metadata: vec![v1::MetricMetadata {
            r#type: 1,
            metric_family_name: "http_requests_total".into(),
            help: "Requests.".into(),
            unit: String::new(),
        }],
    };
    let b = decode(Protocol::V1, &snappy(&req.encode_to_vec()), &limits()).unwrap();
    let store = MetadataStore::new();
    store.record(&b.metadata);
    store.record(&b.metadata);
    let got = store.query(Some("http_requests_total"), None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind.as_str(), "counter");
    assert_eq!(got[0].help, "Requests.");
    assert!(store.query(Some("nope"), None).is_empty());
    assert_eq!(store.query(None, Some(0)).len(), 0);
}

pub(super) fn nhcb(ts: i64) -> v1::Histogram {
    // Bounds 0.1, 1, 10; per-bucket counts 2, 0, 3, 1 (+Inf) as deltas.
    v1::Histogram {
        count: Some(v1::histogram::Count::CountInt(6)),
        sum: 12.5,
        schema: -53,
        positive_spans: vec![
            v1::BucketSpan {
                offset: 0,
                length: 1,
            },
            v1::BucketSpan {
                offset: 1,
                length: 2,
            },
        ],
        positive_deltas: vec![2, 1, -2],
        custom_values: vec![0.1, 1.0, 10.0],
        timestamp: ts,
        ..Default::default()
    }
}

#[test]
fn custom_bucket_histograms_become_classic_histograms() {
    let ts = v1::TimeSeries {
        labels: vec![label(METRIC_NAME, "lat_seconds")],
        histograms: vec![nhcb(5000)],
        ..Default::default()
    };
    let exp = v1::TimeSeries {
        labels: vec![label(METRIC_NAME, "exp_seconds")],
        histograms: vec![v1::Histogram {
            schema: 3,
            ..nhcb(5000)
        }],
        ..Default::default()
    };
    let b = decode(Protocol::V1, &body_v1(vec![ts, exp]), &limits()).unwrap();
    assert_eq!(b.unsupported, 1);
    let db = RecordingDb::new();
    let out = apply(&b, &db).unwrap();
    assert_eq!(out.histograms_written, 1);
    assert_eq!(out.rejected.unsupported, 1);
    let h = db.hists("lat_seconds");
    assert_eq!(h.len(), 1);
    assert_eq!(&*h[0].1.upper_bounds, &[0.1, 1.0, 10.0]);
    assert_eq!(h[0].1.bucket_counts, vec![2.0, 2.0, 5.0, 6.0]);
    assert_eq!((h[0].1.sum, h[0].1.count), (12.5, 6.0));

    let bad = v1::TimeSeries {
        labels: vec![label(METRIC_NAME, "bad")],
        histograms: vec![v1::Histogram {
            positive_spans: vec![v1::BucketSpan {
                offset: 7,
                length: 1,
            }],
            positive_deltas: vec![1],
            ..nhcb(1)
        }],
        ..Default::default()
    };
    let e = decode(Protocol::V1, &body_v1(vec![bad]), &limits()).unwrap_err();
    assert!(e.to_string().contains("bucket index 7 outside 0..4"), "{e}");
}

fn v2_request() -> v2::Request {
    v2::Request {
        symbols: vec![
            "".into(),
            METRIC_NAME.into(),
            "http_requests_total".into(),
            "job".into(),
            "api".into(),
            "Requests served.".into(),
        ],
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![3, 4, 1, 2],
            samples: vec![v2::Sample {
                value: 7.0,
                timestamp: 10_000,
            }],
            metadata: Some(v2::Metadata {
                r#type: 1,
                help_ref: 5,
                unit_ref: 0,
            }),
            created_timestamp: 4_000,
            ..Default::default()
        }],
    }
}

#[test]
fn v2_symbols_metadata_and_created_timestamp() {
    let body = snappy(&v2_request().encode_to_vec());
    let b = decode(Protocol::V2, &body, &limits()).unwrap();
    assert_eq!(b.metadata.len(), 1);
    assert_eq!(b.metadata[0].help, "Requests served.");
    let db = RecordingDb::new();
    let out = apply(&b, &db).unwrap();
    assert_eq!(out.samples_written, 1);
    assert_eq!(
        db.floats(r#"http_requests_total{job="api"}"#),
        vec![(4_000, 0.0), (10_000, 7.0)]
    );
    // Decoding the same body as 1.0 must not silently succeed with data.
    if let Ok(b1) = decode(Protocol::V1, &body, &limits()) {
        assert_eq!(b1.float_samples(), 0);
    }
}

#[test]
fn v2_bad_references_are_refused() {
    let mut r = v2_request();
    r.timeseries[0].labels_refs = vec![1, 99];
    let e = decode(Protocol::V2, &snappy(&r.encode_to_vec()), &limits()).unwrap_err();
    assert!(
        e.to_string()
            .contains("symbol reference 99 out of range (symbols table has 6 entries)"),
        "{e}"
    );
    let mut r = v2_request();
    r.timeseries[0].labels_refs = vec![1, 2, 3];
    let e = decode(Protocol::V2, &snappy(&r.encode_to_vec()), &limits()).unwrap_err();
    assert!(
        e.to_string().contains("odd number of label references (3)"),
        "{e}"
    );
}

#[test]
fn seed_corpus_replays() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/remote_write_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let proto = if name.contains("v2") {
            Protocol::V2
        } else {
            Protocol::V1
        };
        let res = decode(proto, &bytes, &limits());
        // The server's fused path, twice (cache misses, then hits).
        let fused_db = RecordingDb::new();
        let cache = SeriesCache::default();
        let fused: Vec<_> = (0..2)
            .map(|_| write_cached(proto, &bytes, &limits(), &cache, &fused_db))
            .collect();
        if name.starts_with("ok_") {
            let b = res.unwrap_or_else(|e| panic!("{name}: {e}"));
            let db = RecordingDb::new();
            let out = apply(&b, &db).unwrap();
            assert!(!db.recs().is_empty(), "{name} wrote nothing");
            for f in fused {
                let f = f.unwrap_or_else(|r| panic!("{name}: fused: {}", r.error));
                assert_eq!(f.outcome.samples_written, out.samples_written, "{name}");
            }
            assert_eq!(fused_db.recs().len(), 2 * db.recs().len(), "{name}");
        } else if name.starts_with("err_") {
            assert!(res.is_err(), "{name} should be refused");
            assert!(
                fused.iter().all(Result::is_err),
                "{name}: fused path accepted it"
            );
            assert!(fused_db.recs().is_empty(), "{name}");
        } else {
            panic!("corpus file {name} must start with ok_ or err_");
        }
        n += 1;
    }
    assert!(n >= 5, "seed corpus has only {n} files");
}

fn arb_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,12}"
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for p in [Protocol::V1, Protocol::V2] {
            let _ = decode(p, &bytes, &limits());
            let _ = decode_protobuf(p, &bytes, &limits());
        }
    }

    #[test]
    fn encode_decode_round_trip(
        input in proptest::collection::vec(
            (arb_name(), proptest::collection::btree_map(arb_name(), "[ -~]{1,20}", 0..5),
             proptest::collection::vec((any::<i64>(), any::<f64>()), 0..5)),
            0..8)
    ) {
        let mut ts = Vec::new();
        let mut want = Vec::new();
        for (name, labels, samples) in &input {
            let mut pairs: Vec<(&str, &str)> = vec![(METRIC_NAME, name.as_str())];
            pairs.extend(labels.iter().filter(|(k, _)| k.as_str() != METRIC_NAME).map(|(k, v)| (k.as_str(), v.as_str())));
            // Reverse so the decoder has to sort.
            pairs.reverse();
            ts.push(series(&pairs, samples));
            want.push((Labels::from_pairs(pairs.iter().copied()), samples.clone()));
        }
        let body = body_v1(ts);
        let b = decode(Protocol::V1, &body, &limits()).unwrap();
        let cache = SeriesCache::default();
        for _ in 0..2 {
            prop_assert_eq!(&decode_cached(Protocol::V1, &body, &limits(), &cache).unwrap(), &b);
        }
        prop_assert_eq!(b.series.len(), want.len());
        for (got, (labels, samples)) in b.series.iter().zip(&want) {
            prop_assert_eq!(&*got.labels, labels);
            let got_s: Vec<(i64, u64)> = got.samples.iter().map(|s| (s.t, s.v.to_bits())).collect();
            // proto3 does not encode a zero value, so -0.0 arrives as 0.0.
            let want_s: Vec<(i64, u64)> = samples
                .iter()
                .map(|(t, v)| (*t, if *v == 0.0 { 0.0f64.to_bits() } else { v.to_bits() }))
                .collect();
            prop_assert_eq!(got_s, want_s);
        }
        let db = RecordingDb::new();
        let out = apply(&b, &db).unwrap();
        prop_assert_eq!(out.samples_written + out.rejected.total(), b.float_samples() as u64);
        prop_assert!(db.recs().iter().all(|r| matches!(r, Rec::Float(..))));
    }
}

#[test]
fn exemplars_and_unknown_fields_are_skipped() {
    let mut ts = series(&[(METRIC_NAME, "up")], &[(5, 1.0)]);
    ts.exemplars.push(v1::Exemplar {
        labels: vec![label("trace_id", "abc")],
        value: 1.0,
        timestamp: 5,
    });
    let mut raw = v1::WriteRequest {
        timeseries: vec![ts],
        metadata: vec![],
    }
    .encode_to_vec();
    // Unknown field 9 (varint) and 10 (fixed32) at the top level.
    raw.extend_from_slice(&[0x48, 0x96, 0x01, 0x55, 1, 2, 3, 4]);
    let b = decode(Protocol::V1, &snappy(&raw), &limits()).unwrap();
    assert_eq!(b.series.len(), 1);
    assert_eq!(b.series[0].samples, vec![Sample { t: 5, v: 1.0 }]);
    // Field 1 with the wrong wire type names the byte offset.
    let e = decode(Protocol::V1, &snappy(&[0x08, 0x01]), &limits()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot decode prometheus.WriteRequest protobuf (2 bytes): at byte 1: field 1 has wire type 0, want 2"
    );
    let e = decode(Protocol::V1, &snappy(&[0x0a, 0x05, 0x0a]), &limits()).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("at byte 2: length 5 exceeds the 1 remaining bytes"),
        "{e}"
    );
}

#[test]
fn series_cache_gives_the_same_batches_and_never_caches_invalid_series() {
    let cache = SeriesCache::new(1000);
    let body = body_v1(vec![
        series(&[("job", "a"), (METRIC_NAME, "up")], &[(1, 1.0)]),
        series(&[(METRIC_NAME, "up"), ("job", "b")], &[(2, 2.0)]),
    ]);
    let plain = decode(Protocol::V1, &body, &limits()).unwrap();
    for _ in 0..3 {
        assert_eq!(
            decode_cached(Protocol::V1, &body, &limits(), &cache).unwrap(),
            plain
        );
    }
    assert_eq!(cache.len(), 2);
    let bad = body_v1(vec![series(
        &[(METRIC_NAME, "up"), ("x", "1"), ("x", "2")],
        &[(1, 1.0)],
    )]);
    for _ in 0..2 {
        assert!(decode_cached(Protocol::V1, &bad, &limits(), &cache).is_err());
    }
    assert_eq!(cache.len(), 2);
    // Bounded: many distinct series never grow it past the limit (per shard
    // rounding allows at most one entry per shard here).
    let small = SeriesCache::new(4);
    for i in 0..100 {
        let v = i.to_string();
        let b = body_v1(vec![series(&[(METRIC_NAME, "m"), ("i", &v)], &[(1, 1.0)])]);
        decode_cached(Protocol::V1, &b, &limits(), &small).unwrap();
    }
    assert!((1..=16).contains(&small.len()), "{}", small.len());
}

/// Decodes every request captured from a real Prometheus 2.42 remote-writing
/// its own scrape (`testdata/prometheus-2.42-*.snappy`, captured with the
/// headers `Content-Type: application/x-protobuf`, `Content-Encoding:
/// snappy`, `X-Prometheus-Remote-Write-Version: 0.1.0`).
#[test]
fn prometheus_2_42_requests_decode() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ingest/remote_write/testdata");
    let store = MetadataStore::new();
    let db = RecordingDb::new();
    let cache = SeriesCache::default();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".snappy"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let proto = Protocol::from_content_type(Some("application/x-protobuf")).unwrap();
    for f in &files {
        let body = std::fs::read(f).unwrap();
        let b = decode_cached(proto, &body, &limits(), &cache).unwrap();
        store.record(&b.metadata);
        apply(&b, &db).unwrap();
    }
    let up = db.floats(r#"up{instance="127.0.0.1:19091", job="prometheus"}"#);
    assert!(!up.is_empty());
    assert!(up.iter().all(|(_, v)| *v == 1.0));
    let info: Vec<_> = db
        .recs()
        .into_iter()
        .filter(|r| r.labels().metric_name() == Some("prometheus_build_info"))
        .collect();
    assert!(!info.is_empty());
    assert_eq!(info[0].labels().get("version"), Some("2.42.0+ds"));
    // Prometheus also sends metadata; it is kept for /api/v1/metadata.
    let m = store.query(Some("prometheus_build_info"), None);
    assert_eq!(m[0].kind.as_str(), "gauge");
    assert!(
        m[0].help.starts_with("A metric with a constant '1' value"),
        "{:?}",
        m[0]
    );
}

/// Hand-encodes a `TimeSeries` whose label fields are split by a sample
/// field (legal protobuf, unlike what senders write): the cache then keys
/// on a built copy of the labels instead of the contiguous slice.
fn interleaved_body(job: &str, t: i64, v: f64) -> Vec<u8> {
    let mut ts = Vec::new();
    let name = label(METRIC_NAME, "up").encode_to_vec();
    ts.push(0x0a);
    ts.push(name.len() as u8);
    ts.extend_from_slice(&name);
    let s = v1::Sample {
        value: v,
        timestamp: t,
    }
    .encode_to_vec();
    ts.push(0x12);
    ts.push(s.len() as u8);
    ts.extend_from_slice(&s);
    let j = label("job", job).encode_to_vec();
    ts.push(0x0a);
    ts.push(j.len() as u8);
    ts.extend_from_slice(&j);
    let mut raw = vec![0x0a, ts.len() as u8];
    raw.extend_from_slice(&ts);
    snappy(&raw)
}

#[test]
fn cache_keys_tell_interleaved_and_contiguous_labels_apart() {
    let cache = SeriesCache::default();
    for round in 0..2 {
        for job in ["a", "b"] {
            let inter = interleaved_body(job, 10 + round, 1.0);
            let plain = body_v1(vec![series(
                &[(METRIC_NAME, "up"), ("job", job)],
                &[(10 + round, 1.0)],
            )]);
            let want = decode(Protocol::V1, &plain, &limits()).unwrap();
            assert_eq!(decode(Protocol::V1, &inter, &limits()).unwrap(), want);
            assert_eq!(
                decode_cached(Protocol::V1, &inter, &limits(), &cache).unwrap(),
                want
            );
            assert_eq!(
                decode_cached(Protocol::V1, &plain, &limits(), &cache).unwrap(),
                want
            );
        }
    }
    // One built key and one slice key per job.
    assert_eq!(cache.len(), 4);
}

/// Cached series carry the storage's series ref from one request to the
/// next; the data is the same as without refs, also after the head dropped
/// the series (stale ref) and across a database reopen (foreign ref).
#[test]
fn series_refs_from_the_cache_reach_the_right_series() {
    use crate::model::Matcher;
    use crate::storage::{Db, DbOptions, Querier, SelectHints};
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let mut o = DbOptions::new(dir.path());
        o.maintenance_interval = None;
        o.block_duration_ms = 1000;
        o.ooo_window_ms = 0;
        Db::open(o).unwrap()
    };
    let cache = SeriesCache::default();
    let body = |t: i64| {
        body_v1(vec![
            series(&[(METRIC_NAME, "up"), ("job", "a")], &[(t, 1.0)]),
            series(&[(METRIC_NAME, "up"), ("job", "b")], &[(t, 2.0)]),
        ])
    };
    let push = |db: &Db, t: i64| {
        let b = decode_cached(Protocol::V1, &body(t), &limits(), &cache).unwrap();
        let out = apply_cached(&b, db, &cache).unwrap();
        assert_eq!(out.samples_written, 2, "{}", out.report());
    };
    let read = |db: &Db, job: &str| -> Vec<(i64, f64)> {
        let m = [
            Matcher::new(crate::model::MatchOp::Equal, METRIC_NAME, "up").unwrap(),
            Matcher::new(crate::model::MatchOp::Equal, "job", job).unwrap(),
        ];
        let s = db.select(&SelectHints::range(0, i64::MAX), &m).unwrap();
        s.iter()
            .flat_map(|s| s.timestamps.iter().copied().zip(s.values.iter().copied()))
            .collect()
    };
    let db = open();
    push(&db, 100);
    // The first apply taught the cache both series' refs.
    assert_eq!(cache.known_refs(), 2);
    push(&db, 200);
    assert_eq!(read(&db, "a"), vec![(100, 1.0), (200, 1.0)]);
    assert_eq!(read(&db, "b"), vec![(100, 2.0), (200, 2.0)]);
    // Cut everything into a block: the head drops both series, so the
    // cached refs are stale.
    db.cut_head_before(1000).unwrap();
    assert_eq!(db.stats().head_series, 0);
    push(&db, 1500);
    assert_eq!(db.stats().head_series, 2);
    assert_eq!(read(&db, "a"), vec![(100, 1.0), (200, 1.0), (1500, 1.0)]);
    drop(db);
    // A new Db in the same process: the refs belong to the old head.
    let db = open();
    push(&db, 1600);
    push(&db, 1700);
    assert_eq!(
        read(&db, "b"),
        vec![
            (100, 2.0),
            (200, 2.0),
            (1500, 2.0),
            (1600, 2.0),
            (1700, 2.0)
        ]
    );
    assert_eq!(db.stats().head_series, 2);
}

#[test]
fn a_series_twice_in_one_request_decodes_the_same_with_the_cache() {
    let cache = SeriesCache::default();
    let body = body_v1(vec![
        series(&[(METRIC_NAME, "up"), ("job", "a")], &[(1, 1.0)]),
        series(&[(METRIC_NAME, "up"), ("job", "b")], &[(1, 2.0)]),
        series(&[(METRIC_NAME, "up"), ("job", "a")], &[(2, 3.0), (3, 4.0)]),
    ]);
    let plain = decode(Protocol::V1, &body, &limits()).unwrap();
    assert_eq!(plain.series.len(), 3);
    assert_eq!(
        plain.series[2].samples,
        vec![Sample { t: 2, v: 3.0 }, Sample { t: 3, v: 4.0 }]
    );
    // First request: every lookup misses (the repeat too); then all hit.
    for _ in 0..2 {
        assert_eq!(
            decode_cached(Protocol::V1, &body, &limits(), &cache).unwrap(),
            plain
        );
    }
    assert_eq!(cache.len(), 2);
}
