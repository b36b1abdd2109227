//! Properties for the evaluator's fast paths: each must give exactly what
//! a reference computation gives on random data.
//!
//! - `parallel_select` (time-sliced selects on threads) == one `select`;
//! - range evaluation (one sliding pass per series: `rollup_plain`, the
//!   name-dropping and aggregation over it) == one instant evaluation per
//!   step, bit for bit;
//! - the column path of `histogram_quantile` == the generic path.

use proptest::prelude::*;

use crate::model::{Labels, Matcher, stale_nan};
use crate::promql::engine::{Engine, EngineOptions};
use crate::promql::value::Value;
use crate::storage::memory::MemStorage;
use crate::storage::{Appendable, Querier, SelectHints, Series as StoredSeries, StorageError};

use super::selector::parallel_select;

const HOUR: i64 = 3_600_000;

/// One random series: `(instance, job, points)` with points as
/// `(gap ms, increment, stale?, reset?)`.
type SeriesSpec = (u8, u8, Vec<(i64, f64, bool, bool)>);

fn series_strategy() -> impl Strategy<Value = Vec<SeriesSpec>> {
    prop::collection::vec(
        (
            0u8..4,
            0u8..2,
            prop::collection::vec(
                (
                    1_000i64..200_000,
                    0.0f64..50.0,
                    prop::bool::weighted(0.02),
                    prop::bool::weighted(0.03),
                ),
                0..120,
            ),
        ),
        1..6,
    )
}

/// Loads the specs as counters `m{instance, job}` starting at `t0` (ms),
/// one commit per spec; specs with the same labels are merged by the
/// storage (appends of older samples are rejected and ignored here).
fn load(specs: &[SeriesSpec], t0: i64) -> MemStorage {
    let s = MemStorage::new();
    for (inst, job, pts) in specs {
        let mut app = s.appender();
        let l = Labels::from_pairs([
            ("__name__", "m".to_string()),
            ("instance", format!("i{inst}")),
            ("job", format!("j{job}")),
        ]);
        let (mut t, mut v) = (t0, 0.0);
        for &(gap, inc, stale, reset) in pts {
            t += gap;
            v = if reset { inc } else { v + inc.floor() };
            let x = if stale { stale_nan() } else { v };
            let _ = app.append(&l, t, x);
        }
        // A spec that rewrites an earlier spec's sample with another value
        // is rejected as a whole (a duplicate sample).
        let _ = app.commit();
    }
    s
}

/// Values as bit patterns so NaNs compare equal.
fn bits(v: &Value) -> Vec<(Labels, i64, u64)> {
    let mut out = Vec::new();
    match v {
        Value::Vector(vs) => {
            for s in vs {
                out.push((s.labels.clone(), s.t, s.v.to_bits()));
            }
        }
        Value::Matrix(m) => {
            for s in m {
                for p in &s.samples {
                    out.push((s.labels.clone(), p.t, p.v.to_bits()));
                }
            }
        }
        Value::Scalar { t, v } => out.push((Labels::empty(), *t, v.to_bits())),
        Value::String { .. } => {}
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn parallel_select_equals_one_select(
        specs in series_strategy(),
        lo in 0i64..4 * HOUR,
        len in 0i64..6 * HOUR,
    ) {
        let s = load(&specs, 0);
        let m = [Matcher::equal("__name__", "m")];
        let hints = SelectHints::range(lo, lo + len);
        let one = s.select(&hints, &m).expect("select");
        let par = parallel_select(&s, &hints, &m).expect("parallel select");
        prop_assert_eq!(one.len(), par.len());
        for (a, b) in one.iter().zip(&par) {
            prop_assert_eq!(&a.labels, &b.labels);
            prop_assert_eq!(&a.timestamps, &b.timestamps);
            let va: Vec<u64> = a.values.iter().map(|x| x.to_bits()).collect();
            let vb: Vec<u64> = b.values.iter().map(|x| x.to_bits()).collect();
            prop_assert_eq!(va, vb);
        }
    }

    #[test]
    fn range_equals_instant_per_step(
        specs in series_strategy(),
        start in 0i64..HOUR,
        step in 5_000i64..120_000,
        steps in 1i64..40,
        q in 0usize..12,
    ) {
        let queries = [
            "rate(m[5m])",
            "increase(m[2m])",
            "delta(m[3m])",
            "irate(m[1m])",
            "avg_over_time(m[5m]) > 10",
            "sum_over_time(m[4m])",
            "quantile_over_time(0.3, m[5m])",
            "max_over_time(m[90s])",
            "last_over_time(m[1m])",
            "sum by (job) (rate(m[5m]))",
            "count(m)",
            "rate(m[5m] @ 1800)",
        ];
        let s = load(&specs, 0);
        let e = crate::promql::parse(queries[q]).expect("parse");
        let engine = Engine::default();
        let end = start + (steps - 1) * step;
        let range = engine.range(&s, &e, start, end, step).expect("range");
        let mut want = Vec::new();
        for k in 0..steps {
            let t = start + k * step;
            let r = engine.instant(&s, &e, t).expect("instant");
            want.extend(bits(&r.value).into_iter().map(|(l, _, v)| (l, t, v)));
        }
        want.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        prop_assert_eq!(bits(&range.value), want, "{}", queries[q]);
    }

    #[test]
    fn histogram_column_path_equals_generic(
        counts in prop::collection::vec(prop::collection::vec(0.0f64..20.0, 4), 10..80),
        gap in 10_000i64..60_000,
        q in 0.0f64..1.0,
    ) {
        // Classic float buckets: two instances, bounds 0.1, 1, 10, +Inf.
        let s = MemStorage::new();
        let mut app = s.appender();
        for inst in ["a", "b"] {
            let mut cum = [0.0f64; 4];
            for (k, inc) in counts.iter().enumerate() {
                let mut run = 0.0;
                for (c, x) in cum.iter_mut().zip(inc) {
                    run += x.floor();
                    *c += run;
                }
                for (le, c) in ["0.1", "1", "10", "+Inf"].iter().zip(cum) {
                    let l = Labels::from_pairs([
                        ("__name__", "lat_bucket"),
                        ("instance", inst),
                        ("le", le),
                    ]);
                    app.append(&l, k as i64 * gap, c).expect("append");
                }
            }
        }
        app.commit().expect("commit");
        let fast = Engine::default();
        let slow = Engine::new(EngineOptions {
            histogram_fast_path: false,
            ..EngineOptions::default()
        });
        let end = counts.len() as i64 * gap;
        for query in [
            format!("histogram_quantile({q}, sum by (le) (rate(lat_bucket[5m])))"),
            format!("histogram_quantile({q}, sum by (le, instance) (rate(lat_bucket[5m])))"),
        ] {
            let e = crate::promql::parse(&query).expect("parse");
            let a = fast.range(&s, &e, 0, end, 30_000).expect("fast");
            let b = slow.range(&s, &e, 0, end, 30_000).expect("slow");
            prop_assert_eq!(bits(&a.value), bits(&b.value), "{}", query);
        }
    }
}

/// A querier whose `select_visit` splits the sorted series into `workers`
/// contiguous runs (sizes from `cuts`) visited on parallel threads, as a
/// storage with parallel decoding does.
struct SplitVisit {
    inner: MemStorage,
    workers: usize,
    cuts: Vec<usize>,
}

impl Querier for SplitVisit {
    fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<StoredSeries>, StorageError> {
        self.inner.select(hints, matchers)
    }

    fn select_visit(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
        workers: usize,
        visit: &(dyn Fn(usize, &StoredSeries) + Sync),
    ) -> Result<(), StorageError> {
        let all = self.inner.select(hints, matchers)?;
        let w = self.workers.min(workers.max(1));
        // Run boundaries: sorted cut points (possibly empty runs).
        let mut bounds: Vec<usize> = self
            .cuts
            .iter()
            .take(w - 1)
            .map(|c| c % (all.len() + 1))
            .collect();
        bounds.sort_unstable();
        bounds.insert(0, 0);
        bounds.push(all.len());
        std::thread::scope(|sc| {
            for (k, b) in bounds.windows(2).enumerate() {
                let run = &all[b[0]..b[1]];
                sc.spawn(move || run.iter().for_each(|s| visit(k, s)));
            }
        });
        Ok(())
    }

    fn select_histograms(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<crate::storage::HistogramSeries>, StorageError> {
        self.inner.select_histograms(hints, matchers)
    }

    fn label_names(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        self.inner.label_names(hints, matchers)
    }

    fn label_values(
        &self,
        name: &str,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        self.inner.label_values(name, hints, matchers)
    }
}

/// Loads gauges/counters with NaN, infinities and stale markers:
/// `m{instance, job}` whose points are `(gap ms, value kind)`.
fn load_wild(specs: &[SeriesSpec], t0: i64) -> MemStorage {
    let s = MemStorage::new();
    for (inst, job, pts) in specs {
        let mut app = s.appender();
        let l = Labels::from_pairs([
            ("__name__", "m".to_string()),
            ("instance", format!("i{inst}")),
            ("job", format!("j{job}")),
        ]);
        let mut t = t0;
        for (k, &(gap, inc, stale, reset)) in pts.iter().enumerate() {
            t += gap;
            let x = match (stale, reset, k % 17) {
                (true, _, _) => stale_nan(),
                (false, true, 3) => f64::NAN,
                (false, true, 5) => f64::INFINITY,
                (false, true, 7) => f64::NEG_INFINITY,
                (false, true, _) => -inc,
                _ => inc * 1e3,
            };
            let _ = app.append(&l, t, x);
        }
        // As in `load`: a conflicting spec is rejected as a whole.
        let _ = app.commit();
    }
    s
}

/// Equal labels and timestamps; values equal within 1e-9 relative (NaN
/// equals NaN, infinities exactly).
fn close(a: &Value, b: &Value) -> Result<(), String> {
    let (a, b) = (bits(a), bits(b));
    if a.len() != b.len() {
        return Err(format!("{} points vs {}", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(&b) {
        let (u, v) = (f64::from_bits(x.2), f64::from_bits(y.2));
        let same = (u.is_nan() && v.is_nan())
            || u == v
            || (u.is_finite() && v.is_finite() && (u - v).abs() <= 1e-9 * u.abs().max(v.abs()));
        if x.0 != y.0 || x.1 != y.1 || !same {
            return Err(format!("{x:?} vs {y:?} ({u} vs {v})"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn streamed_aggregation_equals_materialised(
        specs in series_strategy(),
        wild in any::<bool>(),
        workers in 1usize..5,
        cuts in prop::collection::vec(0usize..8, 4),
        start in 0i64..HOUR,
        step in 5_000i64..120_000,
        steps in 1i64..40,
        q in 0usize..18,
        instant in any::<bool>(),
    ) {
        let queries = [
            "sum by (job) (rate(m[5m]))",
            "sum(increase(m[2m]))",
            "avg without (instance) (delta(m[3m]))",
            "max by (instance) (irate(m[1m]))",
            "min(avg_over_time(m[5m]))",
            "count by (job) (count_over_time(m[4m]))",
            "group by (job) (last_over_time(m[1m]))",
            "sum by (__name__) (last_over_time(m[2m]))",
            "sum by (__name__, job) (rate(m[2m]))",
            "count(m)",
            "sum by (job) (m)",
            "avg(m offset 1m)",
            "max without (job) (m)",
            "sum(rate(m[5m] @ 1800))",
            "avg by (instance) (stddev_over_time(m[5m]))",
            "sum(resets(m[10m]))",
            "count({__name__=~\".+\"})",
            "sum by (job) (sum_over_time(m[90s] offset 30s))",
        ];
        let data = if wild { load_wild(&specs, 0) } else { load(&specs, 0) };
        let s = SplitVisit { inner: data, workers, cuts };
        let e = crate::promql::parse(queries[q]).expect("parse");
        let streamed = Engine::default();
        let materialised = Engine::new(EngineOptions {
            stream_aggregations: false,
            ..EngineOptions::default()
        });
        let end = start + (steps - 1) * step;
        let (a, b) = if instant {
            (streamed.instant(&s, &e, end), materialised.instant(&s, &e, end))
        } else {
            (
                streamed.range(&s, &e, start, end, step),
                materialised.range(&s, &e, start, end, step),
            )
        };
        match (a, b) {
            (Ok(a), Ok(b)) => {
                if let Err(m) = close(&a.value, &b.value) {
                    return Err(TestCaseError::fail(format!("{}: {m}", queries[q])));
                }
                prop_assert_eq!(a.warnings, b.warnings);
                // Instant vectors keep the materialising path's group order.
                if let (Value::Vector(x), Value::Vector(y)) = (&a.value, &b.value) {
                    let lx: Vec<&Labels> = x.iter().map(|s| &s.labels).collect();
                    let ly: Vec<&Labels> = y.iter().map(|s| &s.labels).collect();
                    prop_assert_eq!(lx, ly, "{}", queries[q]);
                }
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => prop_assert!(false, "{}: {:?} vs {:?}", queries[q], a.map(|_| ()), b.map(|_| ())),
        }
    }

    #[test]
    fn streamed_histogram_sums_equal_materialised(
        counts in prop::collection::vec(prop::collection::vec(0.0f64..20.0, 4), 10..80),
        gap in 10_000i64..60_000,
        q in 0.0f64..1.0,
        workers in 1usize..5,
        cuts in prop::collection::vec(0usize..12, 4),
        stale_at in prop::collection::vec(0usize..80, 0..3),
    ) {
        let data = MemStorage::new();
        let mut app = data.appender();
        for inst in ["a", "b", "c"] {
            let mut cum = [0.0f64; 4];
            for (k, inc) in counts.iter().enumerate() {
                let mut run = 0.0;
                for (c, x) in cum.iter_mut().zip(inc) {
                    run += x.floor();
                    *c += run;
                }
                for (le, c) in ["0.1", "1", "10", "+Inf"].iter().zip(cum) {
                    let l = Labels::from_pairs([
                        ("__name__", "lat_bucket"),
                        ("instance", inst),
                        ("le", le),
                        ("zone", if inst == "b" { "z1" } else { "z0" }),
                    ]);
                    let v = if stale_at.contains(&k) && inst == "a" { stale_nan() } else { c };
                    app.append(&l, k as i64 * gap, v).expect("append");
                }
            }
        }
        app.commit().expect("commit");
        let s = SplitVisit { inner: data, workers, cuts };
        let streamed = Engine::default();
        let materialised = Engine::new(EngineOptions {
            stream_aggregations: false,
            ..EngineOptions::default()
        });
        let generic = Engine::new(EngineOptions {
            stream_aggregations: false,
            histogram_fast_path: false,
            ..EngineOptions::default()
        });
        let end = counts.len() as i64 * gap;
        for query in [
            format!("histogram_quantile({q}, sum by (le) (rate(lat_bucket[5m])))"),
            format!("histogram_quantile({q}, sum by (le, zone) (increase(lat_bucket[3m])))"),
            format!("histogram_quantile({q}, sum by (zone, le, instance) (rate(lat_bucket[5m])))"),
        ] {
            let e = crate::promql::parse(&query).expect("parse");
            let a = streamed.range(&s, &e, 0, end, 30_000).expect("streamed");
            let b = materialised.range(&s, &e, 0, end, 30_000).expect("materialised");
            let c = generic.range(&s, &e, 0, end, 30_000).expect("generic");
            if let Err(m) = close(&a.value, &b.value).and_then(|_| close(&a.value, &c.value)) {
                return Err(TestCaseError::fail(format!("{query}: {m}")));
            }
            let ai = streamed.instant(&s, &e, end).expect("streamed");
            let bi = materialised.instant(&s, &e, end).expect("materialised");
            if let Err(m) = close(&ai.value, &bi.value) {
                return Err(TestCaseError::fail(format!("{query} (instant): {m}")));
            }
            // Instant vectors keep the materialising path's series order.
            let order = |v: &Value| match v {
                Value::Vector(vs) => vs.iter().map(|s| s.labels.clone()).collect(),
                _ => Vec::new(),
            };
            prop_assert_eq!(order(&ai.value), order(&bi.value), "{}", query);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The streamed path charges the same samples and series as the
    /// materialising one: the smallest `max_samples` and `max_series` a
    /// query passes with are the same on both paths.
    #[test]
    fn streamed_limits_equal_materialised(
        specs in series_strategy(),
        workers in 1usize..5,
        cuts in prop::collection::vec(0usize..8, 4),
        q in 0usize..4,
    ) {
        let queries = [
            "sum by (job) (rate(m[5m]))",
            "count(m)",
            "avg without (instance) (max_over_time(m[2m]))",
            "histogram_quantile(0.5, sum by (le) (rate(m_bucket[5m])))",
        ];
        let data = load(&specs, 0);
        // A few classic buckets for the histogram query.
        let mut app = data.appender();
        for (k, le) in ["1", "+Inf"].iter().enumerate() {
            let l = Labels::from_pairs([("__name__", "m_bucket"), ("le", le)]);
            for i in 0..40i64 {
                app.append(&l, i * 30_000, (i * (k as i64 + 1)) as f64).expect("append");
            }
        }
        app.commit().expect("commit");
        let s = SplitVisit { inner: data, workers, cuts };
        let e = crate::promql::parse(queries[q]).expect("parse");
        let passes = |stream: bool, max_samples: usize, max_series: usize| {
            Engine::new(EngineOptions {
                max_samples,
                max_series,
                stream_aggregations: stream,
                ..EngineOptions::default()
            })
            .range(&s, &e, 0, HOUR, 60_000)
            .is_ok()
        };
        // Smallest passing limit by bisection (passing is monotonic in it).
        let least = |ok: &dyn Fn(usize) -> bool| {
            let (mut lo, mut hi) = (0usize, 1usize << 20);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if ok(mid) { hi = mid } else { lo = mid + 1 }
            }
            lo
        };
        let big = usize::MAX;
        prop_assert_eq!(
            least(&|k| passes(true, k, big)),
            least(&|k| passes(false, k, big)),
            "max_samples, {}", queries[q]
        );
        prop_assert_eq!(
            least(&|k| passes(true, big, k)),
            least(&|k| passes(false, big, k)),
            "max_series, {}", queries[q]
        );
    }
}
