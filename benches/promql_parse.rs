//! Parse time against input length: operator chains and nested parentheses
//! at growing sizes. Linear parsing shows a constant time per term across the
//! sizes (criterion's throughput in elements/s stays flat); quadratic
//! behaviour shows as throughput falling with size.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use watchpost::promql::{ParseOptions, parse_with_options};

fn chain(n: usize) -> String {
    vec!["a"; n].join(" + ")
}

fn nest(n: usize) -> String {
    format!("{}a{}", "(".repeat(n), ")".repeat(n))
}

fn bench_parse(c: &mut Criterion) {
    let opts = ParseOptions {
        max_depth: 100_000,
        stack_budget: 400 << 20,
    };
    let mut g = c.benchmark_group("promql_parse_chain");
    for n in [1_000usize, 10_000, 40_000] {
        let input = chain(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter(|| parse_with_options(input, &opts).expect("parses"))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("promql_parse_nested");
    for n in [50usize, 200, 400] {
        let input = nest(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter(|| parse_with_options(input, &opts).expect("parses"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
