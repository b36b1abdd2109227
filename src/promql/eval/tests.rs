//! Unit tests built from hand-made ASTs (the conformance scripts cover the
//! rest through the parser).

use crate::model::{Labels, METRIC_NAME, Matcher, stale_nan};
use crate::promql::ast::*;
use crate::promql::engine::{Engine, EngineOptions, EvalError};
use crate::promql::value::Value;
use crate::storage::Appendable;
use crate::storage::memory::MemStorage;

fn sel(name: &str) -> VectorSelector {
    VectorSelector {
        name: Some(name.into()),
        matchers: vec![Matcher::equal(METRIC_NAME, name)],
        ..VectorSelector::default()
    }
}

fn vs(name: &str) -> Expr {
    Expr::VectorSelector(sel(name))
}

fn ms(name: &str, range_s: i64) -> Expr {
    Expr::MatrixSelector(MatrixSelector {
        selector: sel(name),
        range: range_s * 1000,
        ..MatrixSelector::default()
    })
}

fn call(f: &str, args: Vec<Expr>) -> Expr {
    Expr::Call(Call {
        func: f.into(),
        args,
    })
}

fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(l),
        rhs: Box::new(r),
        return_bool: false,
        matching: None,
    })
}

/// Loads `name{labels}` with `vals[i]` at `i * step_s` seconds.
type SeriesSpec<'a> = (&'a [(&'a str, &'a str)], &'a [f64]);

fn load(s: &MemStorage, series: &[SeriesSpec], step_s: i64) {
    let mut a = s.appender();
    for (labels, vals) in series {
        let l = Labels::from_pairs(labels.iter().copied());
        for (i, v) in vals.iter().enumerate() {
            a.append(&l, i as i64 * step_s * 1000, *v).unwrap();
        }
    }
    a.commit().unwrap();
}

fn instant_vec(e: &Engine, s: &MemStorage, x: &Expr, t_s: i64) -> Vec<(String, f64)> {
    match e.instant(s, x, t_s * 1000).unwrap().value {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> =
                v.into_iter().map(|x| (x.labels.to_string(), x.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("expected vector, got {other:?}"),
    }
}

#[test]
fn rate_extrapolates_like_prometheus() {
    let s = MemStorage::new();
    // 0, 10, 20, ... every 30 s; counter reset at the end.
    load(
        &s,
        &[(
            &[(METRIC_NAME, "c"), ("j", "a")],
            &[
                0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0,
            ],
        )],
        30,
    );
    let e = Engine::default();
    // At 300 s the window (0, 300] holds samples 30..300 s: increase 90 over 270 s,
    // extrapolated to 300 s because both ends are within 1.1 intervals.
    let got = instant_vec(&e, &s, &call("increase", vec![ms("c", 300)]), 300);
    assert_eq!(got, vec![("{j=\"a\"}".to_string(), 100.0)]);
    let got = instant_vec(&e, &s, &call("rate", vec![ms("c", 300)]), 300);
    assert!((got[0].1 - 100.0 / 300.0).abs() < 1e-12);
}

#[test]
fn staleness_and_lookback() {
    let s = MemStorage::new();
    load(&s, &[(&[(METRIC_NAME, "m")], &[1.0, 2.0, stale_nan()])], 60);
    let e = Engine::default();
    assert_eq!(
        instant_vec(&e, &s, &vs("m"), 60),
        vec![("m".to_string(), 2.0)]
    );
    assert!(
        instant_vec(&e, &s, &vs("m"), 120).is_empty(),
        "stale marker ends the series"
    );
    let s2 = MemStorage::new();
    load(&s2, &[(&[(METRIC_NAME, "m")], &[1.0])], 60);
    assert_eq!(instant_vec(&e, &s2, &vs("m"), 299).len(), 1);
    assert!(
        instant_vec(&e, &s2, &vs("m"), 300).is_empty(),
        "lookback window is left-open"
    );
}

#[test]
fn binary_matching_and_name_dropping() {
    let s = MemStorage::new();
    load(
        &s,
        &[
            (&[(METRIC_NAME, "a"), ("i", "1")], &[10.0]),
            (&[(METRIC_NAME, "a"), ("i", "2")], &[20.0]),
            (&[(METRIC_NAME, "b"), ("i", "1")], &[2.0]),
        ],
        60,
    );
    let e = Engine::default();
    assert_eq!(
        instant_vec(&e, &s, &bin(BinaryOp::Div, vs("a"), vs("b")), 0),
        vec![("{i=\"1\"}".to_string(), 5.0)]
    );
    // Comparison filters and keeps the name.
    assert_eq!(
        instant_vec(
            &e,
            &s,
            &bin(BinaryOp::Gtr, vs("a"), Expr::NumberLiteral(15.0)),
            0
        ),
        vec![("a{i=\"2\"}".to_string(), 20.0)]
    );
    // `100 - (a * 100)` drops the name.
    let x = bin(
        BinaryOp::Sub,
        Expr::NumberLiteral(100.0),
        bin(BinaryOp::Mul, vs("a"), Expr::NumberLiteral(100.0)),
    );
    assert_eq!(
        instant_vec(&e, &s, &x, 0)[0],
        ("{i=\"1\"}".to_string(), -900.0)
    );
    // Label sets that differ outside `__name__` do not match.
    let dup = bin(
        BinaryOp::Add,
        vs("b"),
        Expr::Aggregate(AggregateExpr {
            op: AggregateOp::Sum,
            expr: Box::new(vs("a")),
            param: None,
            grouping: vec![],
            without: false,
        }),
    );
    assert_eq!(instant_vec(&e, &s, &dup, 0), Vec::<(String, f64)>::new());
}

#[test]
fn range_query_matches_instant_queries() {
    let s = MemStorage::new();
    let vals: Vec<f64> = (0..40).map(|i| (i * i) as f64).collect();
    load(
        &s,
        &[
            (&[(METRIC_NAME, "c"), ("k", "x")], &vals),
            (&[(METRIC_NAME, "c"), ("k", "y")], &vals[..20]),
        ],
        15,
    );
    let e = Engine::default();
    let x = Expr::Aggregate(AggregateExpr {
        op: AggregateOp::Sum,
        expr: Box::new(call("rate", vec![ms("c", 120)])),
        param: None,
        grouping: vec![],
        without: false,
    });
    let Value::Matrix(m) = e.range(&s, &x, 0, 600_000, 30_000).unwrap().value else {
        panic!("matrix")
    };
    assert_eq!(m.len(), 1);
    for p in &m[0].samples {
        let inst = instant_vec(&e, &s, &x, p.t / 1000);
        assert_eq!(inst[0].1, p.v, "at {}", p.t);
    }
}

#[test]
fn limits_are_enforced() {
    let s = MemStorage::new();
    load(&s, &[(&[(METRIC_NAME, "m")], &[1.0; 100])], 1);
    let e = Engine::new(EngineOptions {
        max_samples: 10,
        ..EngineOptions::default()
    });
    let err = e
        .instant(&s, &call("sum_over_time", vec![ms("m", 100)]), 100_000)
        .unwrap_err();
    assert!(matches!(err, EvalError::TooManySamples(..)), "{err}");
    let e = Engine::new(EngineOptions {
        timeout: std::time::Duration::ZERO,
        ..EngineOptions::default()
    });
    assert!(matches!(
        e.instant(&s, &vs("m"), 0).unwrap_err(),
        EvalError::Timeout(_)
    ));
    let e = Engine::default();
    assert!(matches!(
        e.range(&s, &ms("m", 10), 0, 10, 1).unwrap_err(),
        EvalError::BadData(_)
    ));
}

#[test]
fn subquery_steps_are_aligned() {
    let s = MemStorage::new();
    load(
        &s,
        &[(
            &[(METRIC_NAME, "m")],
            &(0..100).map(f64::from).collect::<Vec<_>>(),
        )],
        10,
    );
    let e = Engine::default();
    let sq = Expr::Subquery(SubqueryExpr {
        expr: Box::new(vs("m")),
        range: 30_000,
        step: Some(10_000),
        offset: 0,
        at: None,
        range_expr: None,
        step_expr: None,
        offset_expr: None,
    });
    // At 1005 s: steps 980, 990, 1000 -> values 98 + 99 + 99 (the series ends at 990 s).
    let got = instant_vec(&e, &s, &call("sum_over_time", vec![sq]), 1005);
    assert_eq!(got, vec![("{}".to_string(), 98.0 + 99.0 + 99.0)]);
}

/// Loads histogram-typed series (stored as columns) and classic float `le`
/// series, with counter resets, gaps and a stale marker.
fn histogram_fixture() -> MemStorage {
    let s = MemStorage::new();
    load_histogram_fixture(&s);
    s
}

fn load_histogram_fixture(s: &dyn Appendable) {
    use crate::model::HistogramSample;
    use std::sync::Arc;
    let mut a = s.appender();
    let bounds: Arc<[f64]> = Arc::from(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5]);
    let mut seed = 7u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    for (job, inst) in [("api", "a"), ("api", "b"), ("web", "a")] {
        let l = Labels::from_pairs([(METRIC_NAME, "lat"), ("job", job), ("instance", inst)]);
        let mut counts = vec![0.0; bounds.len() + 1];
        for step in 0..120i64 {
            if step == 50 && inst == "b" {
                counts.iter_mut().for_each(|c| *c = 0.0); // counter reset
            }
            if step % 17 == 5 {
                continue; // a missed scrape
            }
            let t = step * 15_000;
            if step == 90 && job == "web" {
                a.append_histogram(&l, t, &HistogramSample::stale(bounds.clone()))
                    .unwrap();
                continue;
            }
            let mut cum = 0.0;
            for c in counts.iter_mut() {
                cum += (next() * 10.0).floor();
                *c += cum;
            }
            // Keep counts cumulative across buckets.
            for i in 1..counts.len() {
                if counts[i] < counts[i - 1] {
                    counts[i] = counts[i - 1];
                }
            }
            let h = HistogramSample {
                upper_bounds: bounds.clone(),
                bucket_counts: counts.clone(),
                sum: next() * 100.0,
                count: counts[counts.len() - 1],
            };
            a.append_histogram(&l, t, &h).unwrap();
        }
    }
    // Classic float buckets of another job under the same metric name.
    for (le, per_step) in [("0.1", 3.0), ("0.5", 7.0), ("1", 9.0), ("+Inf", 10.0)] {
        let l = Labels::from_pairs([
            (METRIC_NAME, "lat_bucket"),
            ("job", "batch"),
            ("instance", "a"),
            ("le", le),
        ]);
        for step in 0..120i64 {
            a.append(&l, step * 15_000, per_step * step as f64 + next())
                .unwrap();
        }
    }
    a.commit().unwrap();
}

fn bits(v: &Value) -> Vec<(String, Vec<(i64, u64)>)> {
    let mut out: Vec<(String, Vec<(i64, u64)>)> = match v {
        Value::Vector(v) => v
            .iter()
            .map(|s| (s.labels.to_string(), vec![(s.t, s.v.to_bits())]))
            .collect(),
        Value::Matrix(m) => m
            .iter()
            .map(|s| {
                (
                    s.labels.to_string(),
                    s.samples.iter().map(|p| (p.t, p.v.to_bits())).collect(),
                )
            })
            .collect(),
        other => panic!("unexpected {other:?}"),
    };
    out.sort();
    out
}

#[test]
fn histogram_column_path_matches_generic_path() {
    compare_histogram_paths(&histogram_fixture());
}

/// The same comparison over the real database (histograms stored as columns
/// by the storage engine, views derived by it).
#[test]
fn histogram_column_path_matches_generic_path_on_db() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = crate::storage::DbOptions::new(dir.path());
    opts.retention_time_ms = 0;
    opts.ooo_window_ms = i64::MAX / 4;
    opts.maintenance_interval = None;
    let db = crate::storage::Db::open(opts).unwrap();
    load_histogram_fixture(&db);
    compare_histogram_paths(&db);
    // And the column path was really taken on the real storage.
    use std::sync::atomic::{AtomicUsize, Ordering};
    let rec = Recording {
        inner: &db,
        view_selects: AtomicUsize::new(0),
        column_selects: AtomicUsize::new(0),
    };
    let e =
        crate::promql::parse("histogram_quantile(0.9, sum by (le, job) (rate(lat_bucket[5m])))")
            .unwrap();
    Engine::default()
        .range(&rec, &e, 0, 1_800_000, 30_000)
        .unwrap();
    assert_eq!(rec.view_selects.load(Ordering::Relaxed), 0);
    assert_eq!(rec.column_selects.load(Ordering::Relaxed), 1);
}

fn compare_histogram_paths(s: &dyn crate::storage::Querier) {
    let fast = Engine::default();
    let slow = Engine::new(EngineOptions {
        histogram_fast_path: false,
        ..EngineOptions::default()
    });
    let queries = [
        "histogram_quantile(0.95, rate(lat_bucket[5m]))",
        "histogram_quantile(0.5, rate(lat_bucket{job=\"api\"}[2m]))",
        "histogram_quantile(0.99, sum by (le) (rate(lat_bucket[5m])))",
        "histogram_quantile(0.9, sum by (le, job) (rate(lat_bucket[5m])))",
        "histogram_quantile(0.75, sum by (job, le) (increase(lat_bucket[10m] offset 1m)))",
        "histogram_quantile(0.2, rate(lat_bucket[5m] @ 1200))",
        "histogram_quantile(0.95, lat_bucket)",
        "histogram_quantile(0.5, sum by (le) (lat_bucket{instance=\"a\"} offset 30s))",
        "histogram_quantile(0.7, lat_bucket @ 900)",
    ];
    let mut checked = 0;
    for q in queries {
        let e = crate::promql::parse(q).unwrap();
        for t in [300_000, 612_345, 1_200_000, 1_790_000] {
            let a = fast.instant(s, &e, t).unwrap();
            let b = slow.instant(s, &e, t).unwrap();
            assert_eq!(bits(&a.value), bits(&b.value), "{q} at {t}");
            assert_eq!(a.infos, b.infos, "{q} at {t}");
            checked += bits(&a.value).len();
        }
        let a = fast.range(s, &e, 0, 1_800_000, 30_000).unwrap();
        let b = slow.range(s, &e, 0, 1_800_000, 30_000).unwrap();
        assert_eq!(bits(&a.value), bits(&b.value), "{q} as range query");
        checked += bits(&a.value).len();
    }
    assert!(checked > 50, "fixture produced too few results: {checked}");
}

/// A querier that records which kinds of reads the engine made.
struct Recording<'a> {
    inner: &'a dyn crate::storage::Querier,
    view_selects: std::sync::atomic::AtomicUsize,
    column_selects: std::sync::atomic::AtomicUsize,
}

impl crate::storage::Querier for Recording<'_> {
    fn select(
        &self,
        hints: &crate::storage::SelectHints,
        m: &[Matcher],
    ) -> Result<Vec<crate::storage::Series>, crate::storage::StorageError> {
        if !hints.skip_histogram_views {
            self.view_selects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.inner.select(hints, m)
    }
    fn select_histograms(
        &self,
        hints: &crate::storage::SelectHints,
        m: &[Matcher],
    ) -> Result<Vec<crate::storage::HistogramSeries>, crate::storage::StorageError> {
        self.column_selects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.select_histograms(hints, m)
    }
    fn label_names(
        &self,
        hints: &crate::storage::SelectHints,
        m: &[Matcher],
    ) -> Result<Vec<String>, crate::storage::StorageError> {
        self.inner.label_names(hints, m)
    }
    fn label_values(
        &self,
        name: &str,
        hints: &crate::storage::SelectHints,
        m: &[Matcher],
    ) -> Result<Vec<String>, crate::storage::StorageError> {
        self.inner.label_values(name, hints, m)
    }
}

#[test]
fn histogram_quantile_reads_columns_not_views() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let s = histogram_fixture();
    let rec = Recording {
        inner: &s,
        view_selects: AtomicUsize::new(0),
        column_selects: AtomicUsize::new(0),
    };
    let e = crate::promql::parse("histogram_quantile(0.95, sum by (le) (rate(lat_bucket[5m])))")
        .unwrap();
    Engine::default()
        .range(&rec, &e, 0, 1_800_000, 60_000)
        .unwrap();
    assert_eq!(
        rec.view_selects.load(Ordering::Relaxed),
        0,
        "no per-bucket view series were read"
    );
    assert_eq!(rec.column_selects.load(Ordering::Relaxed), 1);
    // The seed's dashboards query cumulative buckets directly.
    let e = crate::promql::parse("histogram_quantile(0.95, lat_bucket)").unwrap();
    Engine::default().instant(&rec, &e, 600_000).unwrap();
    assert_eq!(rec.view_selects.load(Ordering::Relaxed), 0);
    assert_eq!(rec.column_selects.load(Ordering::Relaxed), 2);
    // Other shapes take the generic path.
    let e =
        crate::promql::parse("histogram_quantile(0.95, sum by (le) (rate(lat_bucket[5m])) * 2)")
            .unwrap();
    Engine::default().instant(&rec, &e, 600_000).unwrap();
    assert_eq!(rec.view_selects.load(Ordering::Relaxed), 1);
}

#[test]
fn huge_offsets_are_rejected_not_overflowed() {
    let s = MemStorage::new();
    let e = Engine::default();
    let mut parsed = 0;
    for q in [
        "x offset 100000000y",
        "rate(x[100000000y])",
        "x @ 9e15",
        "max_over_time(x[1m:1m] offset -100000000y)",
    ] {
        // The parser may reject some of these itself; those it accepts must
        // fail cleanly here.
        let Ok(expr) = crate::promql::parse(q) else {
            continue;
        };
        parsed += 1;
        assert!(
            matches!(e.instant(&s, &expr, 0), Err(EvalError::BadData(_))),
            "{q}"
        );
    }
    assert!(parsed >= 2, "only {parsed} of the queries parsed");
    assert!(matches!(
        e.instant(&s, &vs("x"), i64::MAX),
        Err(EvalError::BadData(_))
    ));
}
