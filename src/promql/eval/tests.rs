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
        offset: 0,
        at: None,
    }
}

fn vs(name: &str) -> Expr {
    Expr::VectorSelector(sel(name))
}

fn ms(name: &str, range_s: i64) -> Expr {
    Expr::MatrixSelector(MatrixSelector {
        selector: sel(name),
        range: range_s * 1000,
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
fn load(s: &MemStorage, series: &[(&[(&str, &str)], &[f64])], step_s: i64) {
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
    });
    // At 1005 s: steps 980, 990, 1000 -> values 98 + 99 + 99 (the series ends at 990 s).
    let got = instant_vec(&e, &s, &call("sum_over_time", vec![sq]), 1005);
    assert_eq!(got, vec![("{}".to_string(), 98.0 + 99.0 + 99.0)]);
}
