//! The fused path ([`write_cached`]) against the general one
//! ([`decode_cached`] + [`apply_cached`]): the same answers and the same
//! stored data for any sequence of requests, and nothing written (not even
//! a new series) by a refused request.

use proptest::prelude::*;

use super::pb::v1;
use super::tests::{body_v1, limits, nhcb, series};
use super::*;
use crate::model::{METRIC_NAME, MatchOp, Matcher};
use crate::storage::{Db, DbOptions, Querier, SelectHints};

fn open(dir: &std::path::Path) -> Db {
    let mut o = DbOptions::new(dir);
    o.maintenance_interval = None;
    Db::open(o).unwrap()
}

/// Every stored series with its samples, in label order.
fn dump(db: &Db) -> Vec<(String, Vec<(i64, f64)>)> {
    let m = [Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+").unwrap()];
    db.select(&SelectHints::range(i64::MIN, i64::MAX), &m)
        .unwrap()
        .iter()
        .map(|s| {
            let samples = s.timestamps.iter().copied().zip(s.values.iter().copied());
            (s.labels.to_string(), samples.collect())
        })
        .collect()
}

const JOBS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// A series of a generated request: picks 0..16 are five valid label sets
/// (so most series repeat across requests and hit the cache), 17 has a
/// duplicate label name (refuses its request), 18 extends pick 0's labels
/// (its label bytes start with pick 0's cache key: a wrong prediction must
/// not take it for pick 0), 19 carries a histogram (the general path).
fn pick_series(pick: usize, samples: &[(i64, f64)]) -> v1::TimeSeries {
    match pick {
        0..=16 => series(&[(METRIC_NAME, "up"), ("job", JOBS[pick % 5])], samples),
        17 => series(&[(METRIC_NAME, "up"), ("job", "x"), ("job", "y")], samples),
        18 => series(&[(METRIC_NAME, "up"), ("job", "a"), ("zone", "z")], samples),
        _ => {
            let mut s = series(&[(METRIC_NAME, "latency")], &[]);
            let t = samples.first().map_or(0, |s| s.0);
            s.histograms = vec![nhcb(t)];
            s
        }
    }
}

type Request = Vec<(usize, Vec<(i64, u8)>)>;

/// Requests; about half repeat the previous request's series in the same
/// order with new samples (what senders do, so the cache's predictions of
/// the next series hit), except where the fresh request has one of the
/// special picks (17..20) at that position: then a prediction meets
/// another series, such as one whose labels extend the predicted one's.
/// The others are fresh mixes.
fn arb_requests() -> impl Strategy<Value = Vec<Request>> {
    let sample = (0i64..40, 0u8..3);
    let series = (0usize..20, proptest::collection::vec(sample, 0..3));
    let request = (any::<bool>(), proptest::collection::vec(series, 0..8));
    proptest::collection::vec(request, 1..7).prop_map(|reqs| {
        let mut out: Vec<Request> = Vec::new();
        for (repeat, req) in reqs {
            match out.last() {
                Some(last) if repeat && !last.is_empty() => {
                    let fresh = req.into_iter().chain(std::iter::repeat((0, vec![(50, 1)])));
                    let again = last
                        .iter()
                        .zip(fresh)
                        .map(|((old, _), (new, samples))| {
                            (if new >= 17 { new } else { *old }, samples)
                        })
                        .collect();
                    out.push(again);
                }
                _ => out.push(req),
            }
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fused_path_matches_decode_then_apply(requests in arb_requests()) {
        let (da, dbb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (open(da.path()), open(dbb.path()));
        let (ca, cb) = (SeriesCache::default(), SeriesCache::default());
        for req in &requests {
            let ts: Vec<v1::TimeSeries> = req
                .iter()
                .map(|(pick, samples)| {
                    let s: Vec<(i64, f64)> = samples.iter().map(|&(t, v)| (t, f64::from(v))).collect();
                    pick_series(*pick, &s)
                })
                .collect();
            let body = body_v1(ts);
            let general = decode_cached(Protocol::V1, &body, &limits(), &ca)
                .and_then(|batch| apply_cached(&batch, &a, &ca));
            let fused = write_cached(Protocol::V1, &body, &limits(), &cb, &b);
            match (general, fused) {
                (Ok(g), Ok(f)) => {
                    let f = f.outcome;
                    prop_assert_eq!(g.samples_written, f.samples_written);
                    prop_assert_eq!(g.histograms_written, f.histograms_written);
                    prop_assert_eq!(&g.rejected, &f.rejected);
                    prop_assert_eq!(&g.commit, &f.commit);
                }
                (Err(g), Err(f)) => {
                    prop_assert_eq!(g.to_string(), f.error.to_string());
                    prop_assert_eq!(f.samples, 0);
                }
                (g, f) => prop_assert!(false, "general {:?}, fused {:?}", g, f),
            }
            prop_assert_eq!(dump(&a), dump(&b));
            prop_assert_eq!(a.stats().head_series, b.stats().head_series);
        }
    }
}

#[test]
fn fused_path_learns_refs_and_a_refused_request_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let cache = SeriesCache::default();
    let up =
        |job: &'static str, t: i64, v: f64| series(&[(METRIC_NAME, "up"), ("job", job)], &[(t, v)]);
    let w = write_cached(
        Protocol::V1,
        &body_v1(vec![up("a", 10, 1.0), up("b", 10, 2.0)]),
        &limits(),
        &cache,
        &db,
    )
    .unwrap();
    assert_eq!(w.outcome.samples_written, 2);
    // Both series were cached with the storage's refs: the next request
    // appends them straight from the cache.
    assert_eq!(cache.known_refs(), 2);
    let w = write_cached(
        Protocol::V1,
        &body_v1(vec![up("a", 20, 3.0), up("b", 20, 4.0)]),
        &limits(),
        &cache,
        &db,
    )
    .unwrap();
    assert_eq!(w.outcome.samples_written, 2);
    // A request with known series, a new one and an invalid one (a
    // duplicate label name) is refused whole: no sample, no new series.
    let bad = body_v1(vec![
        up("a", 30, 5.0),
        up("c", 30, 6.0),
        series(
            &[(METRIC_NAME, "up"), ("job", "x"), ("job", "y")],
            &[(30, 7.0)],
        ),
    ]);
    let err = write_cached(Protocol::V1, &bad, &limits(), &cache, &db).unwrap_err();
    assert!(
        err.error.to_string().contains("invalid series #2"),
        "{}",
        err.error
    );
    assert_eq!(db.stats().head_series, 2);
    assert_eq!(
        dump(&db),
        vec![
            (r#"up{job="a"}"#.to_string(), vec![(10, 1.0), (20, 3.0)]),
            (r#"up{job="b"}"#.to_string(), vec![(10, 2.0), (20, 4.0)]),
        ]
    );
}

#[test]
fn a_commit_failure_reports_the_samples_the_request_carried() {
    use crate::ingest::testutil::RecordingDb;
    let db = RecordingDb {
        fail_commit: true,
        ..RecordingDb::new()
    };
    let cache = SeriesCache::default();
    let body = body_v1(vec![
        series(&[(METRIC_NAME, "up"), ("job", "a")], &[(1, 1.0), (2, 1.0)]),
        series(&[(METRIC_NAME, "up"), ("job", "b")], &[(1, 2.0)]),
    ]);
    for _ in 0..2 {
        // The first time every series misses; the second time they hit.
        let err = write_cached(Protocol::V1, &body, &limits(), &cache, &db).unwrap_err();
        assert!(
            matches!(err.error, RemoteWriteError::Storage(_)),
            "{}",
            err.error
        );
        assert_eq!(err.samples, 3);
    }
    assert!(db.recs().is_empty());
}

/// A series whose label run starts with the predicted series' key but goes
/// on with a label field whose tag is an over-long varint (0x8a 0x00) is
/// another series: both paths store it under its own labels.
#[test]
fn a_prediction_is_not_fooled_by_an_over_long_label_tag() {
    use prost::Message;
    let p = series(&[(METRIC_NAME, "up"), ("job", "p")], &[(1, 1.0)]);
    let x = series(&[(METRIC_NAME, "up"), ("job", "x")], &[(1, 2.0)]);
    // x's labels, then `zone="z"` under tag 0x8a 0x00, then a sample.
    let mut x2 = Vec::new();
    for l in &x.labels {
        prost::encoding::message::encode(1, l, &mut x2);
    }
    let zone = super::tests::label("zone", "z").encode_to_vec();
    x2.extend_from_slice(&[0x8a, 0x00, zone.len() as u8]);
    x2.extend_from_slice(&zone);
    let sample = v1::Sample {
        value: 3.0,
        timestamp: 2,
    };
    prost::encoding::message::encode(2, &sample, &mut x2);
    let mut req2 = Vec::new();
    prost::encoding::message::encode(1, &p, &mut req2);
    req2.push(0x0a);
    prost::encoding::encode_varint(x2.len() as u64, &mut req2);
    req2.extend_from_slice(&x2);
    // Twice, so the second time links p's entry to x's (the prediction).
    let bodies = [
        body_v1(vec![p.clone(), x.clone()]),
        body_v1(vec![p.clone(), x.clone()]),
        super::tests::snappy(&req2),
    ];
    let (da, dbb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path()), open(dbb.path()));
    let (ca, cb) = (SeriesCache::default(), SeriesCache::default());
    for body in &bodies {
        let g = decode_cached(Protocol::V1, body, &limits(), &ca)
            .and_then(|batch| apply_cached(&batch, &a, &ca))
            .unwrap();
        let f = write_cached(Protocol::V1, body, &limits(), &cb, &b).unwrap();
        assert_eq!(g.samples_written, f.outcome.samples_written);
    }
    let got = dump(&b);
    assert_eq!(got, dump(&a));
    assert!(
        got.iter()
            .any(|(l, s)| l == r#"up{job="x", zone="z"}"# && s == &vec![(2, 3.0)]),
        "{got:?}"
    );
}
