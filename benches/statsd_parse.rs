//! StatsD hot paths: parsing one line (targets: <= 150 ns simple, <= 300 ns
//! with four tags) and aggregating one line into existing series.
//!
//! Run: `cargo bench --bench statsd_parse -- --measurement-time 3`
//!
//! `simple`, `four_tags` and `timer_rate` parse with a [`LineParser`] (what
//! the aggregator does: one tag buffer reused across lines);
//! `four_tags_fresh_vec` uses [`parse_line`], which allocates the tag list.
//! Instruction counts (stable under load):
//! `valgrind --tool=callgrind --collect-atstart=no '--toggle-collect=*Bencher*iter*'
//! <bench exe> --bench --profile-time 2 'statsd_parse_line/four_tags$'`.
//!
//! Each case is measured twice: wall time (criterion's default) and the
//! thread's CPU time (`*_cpu` groups). The build machine is shared (load
//! average around 5 on 2 cores), so wall time includes time spent
//! descheduled; CPU time is the figure to compare with the targets.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use watchpost::ingest::statsd::{
    Aggregator, AggregatorConfig, LineParser, Parsed, StatsdMetrics, parse_line,
};

const SIMPLE: &[u8] = b"api.requests:1|c";
const FOUR_TAGS: &[u8] =
    b"api.response_time:230|h|#method:GET,endpoint:/users,status:200,region:eu-west-1";

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call, and CLOCK_THREAD_CPUTIME_ID is supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` `iters` times and returns the CPU time it took.
fn cpu_iters(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = thread_cpu();
    for _ in 0..iters {
        f();
    }
    thread_cpu() - start
}

/// Parses `raw` with `p` and hands the line back, as the aggregator does.
fn parse_reuse(p: &mut LineParser, raw: &[u8]) -> bool {
    match black_box(p.parse(black_box(raw))) {
        Ok(Parsed::Metric(l)) => {
            p.recycle(l);
            true
        }
        r => r.is_ok(),
    }
}

fn parse_cpu(c: &mut Criterion) {
    let mut g = c.benchmark_group("statsd_parse_line_cpu");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_utf8_check", |b| {
        b.iter_custom(|n| {
            cpu_iters(n, || {
                let _ = black_box(std::str::from_utf8(black_box(SIMPLE)));
            })
        })
    });
    let mut p = LineParser::new();
    g.bench_function("simple", |b| {
        b.iter_custom(|n| {
            cpu_iters(n, || {
                parse_reuse(&mut p, SIMPLE);
            })
        })
    });
    g.bench_function("four_tags", |b| {
        b.iter_custom(|n| {
            cpu_iters(n, || {
                parse_reuse(&mut p, FOUR_TAGS);
            })
        })
    });
    g.bench_function("four_tags_fresh_vec", |b| {
        b.iter_custom(|n| cpu_iters(n, || drop(black_box(parse_line(black_box(FOUR_TAGS))))))
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("statsd_parse_line");
    g.throughput(Throughput::Elements(1));
    // Machine baseline: validating 16 bytes of UTF-8, the first step of a parse.
    g.bench_function("baseline_utf8_check", |b| {
        b.iter(|| std::str::from_utf8(black_box(SIMPLE)).is_ok())
    });
    let mut p = LineParser::new();
    g.bench_function("simple", |b| b.iter(|| parse_reuse(&mut p, SIMPLE)));
    g.bench_function("four_tags", |b| b.iter(|| parse_reuse(&mut p, FOUR_TAGS)));
    g.bench_function("four_tags_fresh_vec", |b| {
        b.iter(|| parse_line(black_box(FOUR_TAGS)).is_ok())
    });
    g.bench_function("timer_rate", |b| {
        b.iter(|| parse_reuse(&mut p, b"api.latency:320.000000|ms|@0.5"))
    });
    g.finish();
}

/// A 1,400-byte-class datagram of `n` lines over 100 series (the shape of a
/// buffered DogStatsD client), applied to an aggregator that already holds
/// those series.
fn datagram(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        match i % 4 {
            0 => s.push_str(&format!(
                "api.requests:1|c|#endpoint:/e{},method:GET\n",
                i % 25
            )),
            1 => s.push_str(&format!(
                "api.response_time:{}|h|#endpoint:/e{}\n",
                i * 7 % 900,
                i % 25
            )),
            2 => s.push_str(&format!("queue.depth:{}|g|#q:q{}\n", i, i % 25)),
            _ => s.push_str(&format!("db.query:{}|ms|#table:t{}\n", i % 300, i % 25)),
        }
    }
    s.into_bytes()
}

fn aggregate(c: &mut Criterion) {
    let mut g = c.benchmark_group("statsd_aggregate");
    let buf = datagram(32);
    g.throughput(Throughput::Elements(32));
    let mut agg = Aggregator::new(AggregatorConfig::default(), None, StatsdMetrics::new());
    agg.ingest(&buf, 0);
    g.bench_function("ingest_32_lines_existing_series", |b| {
        b.iter(|| agg.ingest(black_box(&buf), 1))
    });
    let simple: Vec<u8> = SIMPLE
        .iter()
        .copied()
        .chain(*b"\n")
        .cycle()
        .take(17 * 32)
        .collect();
    g.bench_function("ingest_32_simple_counter_lines", |b| {
        b.iter(|| agg.ingest(black_box(&simple), 1))
    });
    g.finish();
    let mut g = c.benchmark_group("statsd_aggregate_cpu");
    g.throughput(Throughput::Elements(32));
    g.bench_function("ingest_32_lines_existing_series", |b| {
        b.iter_custom(|n| cpu_iters(n, || agg.ingest(black_box(&buf), 1)))
    });
    g.bench_function("ingest_32_simple_counter_lines", |b| {
        b.iter_custom(|n| cpu_iters(n, || agg.ingest(black_box(&simple), 1)))
    });
    g.finish();
}

criterion_group!(benches, parse, parse_cpu, aggregate);
criterion_main!(benches);
