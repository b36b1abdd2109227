//! Evaluator benchmarks over the in-memory `MemStorage` test double, with the
//! query shapes of the benchmark table: rates, aggregated rates,
//! histogram quantiles (from histogram columns), a threshold over
//! `avg_over_time`, and `count({__name__=~".+"})`, each as an instant query
//! and as a 6 h range query at 60 s steps.
//!
//! Data: 1,000 counter series (`http_requests_total`, 10 endpoints x 20
//! instances x 5 codes), 200 histogram series with 11 buckets
//! (`api_response_time_seconds`, 10 endpoints x 20 instances), 200 gauges;
//! one sample every 30 s over 6.5 h. Run with `cargo bench --bench promql_eval`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use watchpost::model::{HistogramSample, Labels};
use watchpost::promql::{Engine, parse};
use watchpost::storage::Appendable;
use watchpost::storage::memory::MemStorage;

const STEP_MS: i64 = 30_000;
const END_MS: i64 = 6 * 3_600_000 + 1_800_000;

fn build() -> MemStorage {
    let s = MemStorage::new();
    let bounds: Arc<[f64]> = Arc::from(vec![
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ]);
    let mut app = s.appender();
    let mut seed = 42u64;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    for e in 0..10 {
        for i in 0..20 {
            let endpoint = format!("/api/v{e}");
            let instance = format!("10.0.0.{i}:9100");
            for code in ["200", "201", "404", "500", "503"] {
                let l = Labels::from_pairs([
                    ("__name__", "http_requests_total"),
                    ("endpoint", endpoint.as_str()),
                    ("instance", instance.as_str()),
                    ("code", code),
                ]);
                let mut v = 0.0;
                for t in (0..=END_MS).step_by(STEP_MS as usize) {
                    v += (rnd() * 20.0).floor();
                    app.append(&l, t, v).unwrap();
                }
            }
            let l = Labels::from_pairs([
                ("__name__", "api_response_time_seconds"),
                ("endpoint", endpoint.as_str()),
                ("instance", instance.as_str()),
            ]);
            let mut counts = vec![0.0; bounds.len() + 1];
            let mut sum = 0.0;
            for t in (0..=END_MS).step_by(STEP_MS as usize) {
                let mut cum = 0.0;
                for c in counts.iter_mut() {
                    cum += (rnd() * 5.0).floor();
                    *c += cum;
                }
                for k in 1..counts.len() {
                    if counts[k] < counts[k - 1] {
                        counts[k] = counts[k - 1];
                    }
                }
                sum += rnd() * 10.0;
                let h = HistogramSample {
                    upper_bounds: bounds.clone(),
                    bucket_counts: counts.clone(),
                    sum,
                    count: counts[counts.len() - 1],
                };
                app.append_histogram(&l, t, &h).unwrap();
            }
            let l = Labels::from_pairs([
                ("__name__", "node_load"),
                ("endpoint", endpoint.as_str()),
                ("instance", instance.as_str()),
            ]);
            for t in (0..=END_MS).step_by(STEP_MS as usize) {
                app.append(&l, t, rnd()).unwrap();
            }
        }
    }
    app.commit().unwrap();
    s
}

fn bench(c: &mut Criterion) {
    let s = build();
    let engine = Engine::default();
    let queries = [
        ("rate", "rate(http_requests_total[5m])"),
        (
            "sum_by_rate",
            "sum by (endpoint) (rate(http_requests_total[5m]))",
        ),
        (
            "hq95_sum_le",
            "histogram_quantile(0.95, sum by (le) (rate(api_response_time_seconds_bucket[5m])))",
        ),
        (
            "hq99_sum_le_endpoint",
            "histogram_quantile(0.99, sum by (le, endpoint) (rate(api_response_time_seconds_bucket[5m])))",
        ),
        ("avg_over_time_gt", "avg_over_time(node_load[10m]) > 0.8"),
        ("count_all", "count({__name__=~\".+\"})"),
    ];
    let mut g = c.benchmark_group("promql_eval");
    g.sample_size(10);
    for (name, q) in queries {
        let e = parse(q).unwrap();
        g.bench_function(format!("instant/{name}"), |b| {
            b.iter(|| black_box(engine.instant(&s, &e, END_MS).unwrap()))
        });
        g.bench_function(format!("range_6h_60s/{name}"), |b| {
            b.iter(|| {
                black_box(
                    engine
                        .range(&s, &e, END_MS - 6 * 3_600_000, END_MS, 60_000)
                        .unwrap(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
