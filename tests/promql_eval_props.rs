//! Property: a range query's value at every step equals the instant query
//! at that time (Prometheus's own range-mode invariant), over generated data
//! with gaps, NaNs and stale markers, for a set of query shapes covering
//! selectors, range functions, subqueries, `@`/`offset`, aggregations and
//! binary matching.

use proptest::prelude::*;
use watchpost::model::{Labels, stale_nan};
use watchpost::promql::{Engine, Value, parse};
use watchpost::storage::Appendable;
use watchpost::storage::memory::MemStorage;

const QUERIES: &[&str] = &[
    "a",
    "rate(a[2m])",
    "increase(a[3m])",
    "sum by (i) (rate(a[5m]))",
    "a / on(i) b",
    "a * ignoring(j) group_left b",
    "a > 2",
    "a >= bool b",
    "a and b",
    "a or b",
    "a unless on(i) b",
    "topk(2, a)",
    "bottomk(1, a) by (j)",
    "avg_over_time(a[3m])",
    "max_over_time(a[1m:30s])",
    "sum_over_time(rate(a[2m])[5m:1m])",
    "rate(a[2m] offset 1m)",
    "a @ 300",
    "sum(a @ 200) + count(b)",
    "count_values(\"v\", a)",
    "quantile(0.5, a)",
    "stddev by (i) (a)",
    "delta(a[4m])",
    "deriv(a[4m])",
    "predict_linear(a[4m], 60)",
    "changes(a[5m])",
    "resets(a[5m])",
    "irate(a[3m])",
    "absent(nonexistent)",
    "absent_over_time(a[1m])",
    "label_replace(a, \"x\", \"$1\", \"i\", \"(.*)\")",
    "-a",
    "scalar(sum(a)) * b",
    "timestamp(a)",
    "last_over_time(a[2m]) - first_over_time(a[2m])",
    "clamp(a, 1, 3)",
    "round(a / 3, 0.5)",
    "increase(a[3m] anchored)",
    "rate(a[2m] smoothed)",
    "a smoothed",
    "a + fill(0) b",
    "a > on(i) group_left fill_right(1) b",
    "info(a, {__name__=\"b\"})",
];

/// One series: labels index and per-slot values (`None` = no sample,
/// `Some(None)` = stale marker).
type Slots = Vec<Option<Option<f64>>>;

fn slot() -> impl Strategy<Value = Option<Option<f64>>> {
    prop_oneof![
        6 => (0i32..20).prop_map(|v| Some(Some(v as f64))),
        2 => Just(None),
        1 => Just(Some(None)),
        1 => Just(Some(Some(f64::NAN))),
    ]
}

fn load(s: &MemStorage, a: &[Slots], b: &[Slots]) {
    let mut app = s.appender();
    for (name, set) in [("a", a), ("b", b)] {
        for (k, slots) in set.iter().enumerate() {
            let l = Labels::from_pairs([
                ("__name__", name.to_string()),
                ("i", (k % 2).to_string()),
                ("j", k.to_string()),
            ]);
            for (n, v) in slots.iter().enumerate() {
                if let Some(v) = v {
                    app.append(&l, n as i64 * 15_000, v.unwrap_or_else(stale_nan))
                        .unwrap();
                }
            }
        }
    }
    app.commit().unwrap();
}

fn same(x: f64, y: f64) -> bool {
    x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn range_equals_instant_at_each_step(
        a in prop::collection::vec(prop::collection::vec(slot(), 40), 1..4),
        b in prop::collection::vec(prop::collection::vec(slot(), 40), 1..3),
        qi in 0..QUERIES.len(),
        start in 0i64..600,
        step in prop_oneof![Just(15i64), Just(30), Just(47), Just(60)],
        steps in 1i64..15,
    ) {
        let s = MemStorage::new();
        load(&s, &a, &b);
        let e = parse(QUERIES[qi]).unwrap();
        let engine = Engine::default();
        let (start, step) = (start * 1000, step * 1000);
        let end = start + (steps - 1) * step;
        let Ok(r) = engine.range(&s, &e, start, end, step) else { return Ok(()) };
        let Value::Matrix(m) = r.value else { panic!("range query must return a matrix") };
        for k in 0..steps {
            let t = start + k * step;
            let inst = engine.instant(&s, &e, t).map_err(|e| TestCaseError::fail(format!("{}: instant at {t} failed: {e}", QUERIES[qi])))?;
            let mut want: Vec<(String, f64)> = match inst.value {
                Value::Vector(v) => v.into_iter().map(|x| (x.labels.to_string(), x.v)).collect(),
                Value::Scalar { v, .. } => vec![("{}".to_string(), v)],
                other => panic!("unexpected {other:?}"),
            };
            let mut got: Vec<(String, f64)> = m
                .iter()
                .filter_map(|s| s.samples.iter().find(|p| p.t == t).map(|p| (s.labels.to_string(), p.v)))
                .collect();
            want.sort_by(|x, y| x.0.cmp(&y.0));
            got.sort_by(|x, y| x.0.cmp(&y.0));
            prop_assert_eq!(
                want.iter().map(|x| &x.0).collect::<Vec<_>>(),
                got.iter().map(|x| &x.0).collect::<Vec<_>>(),
                "{} at {}", QUERIES[qi], t
            );
            for (w, g) in want.iter().zip(&got) {
                prop_assert!(same(w.1, g.1), "{} at {} for {}: instant {} range {}", QUERIES[qi], t, w.0, w.1, g.1);
            }
        }
    }
}
