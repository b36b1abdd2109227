//! Select + decode throughput (samples/s) on the shared workload, in the
//! shapes PromQL range queries read: 12 h of the 10,000-series workload
//! appended, the first 6 h cut into 2 h blocks (so one 6 h range is read
//! from three memory-mapped blocks, the other from the head), then
//! `Querier::select` with every sample decoded.
//!
//! - `block_6h`: the 5,000 `http_requests_total` counters over 6 h from
//!   the blocks (7.2 M samples; the read behind `rate(x[5m])` over 6 h).
//! - `block_6h_visit_1w`, `block_6h_visit_2w`: the same read through
//!   `Querier::select_visit` with 1 and 2 workers (samples counted, not
//!   kept); CPU time of the whole process, since workers are threads.
//! - `head_6h`: the same 6 h shape from the head's XOR chunks.
//! - `histograms_block_6h`: `select_histograms` of the 200 histograms
//!   over the blocks' 6 h (each sample = 13 buckets + sum + count, counted
//!   as 15 samples).
//! - `all_series_head_5m`: `{__name__=~".+"}` over the last 5 minutes (the
//!   read behind an instant `count({__name__=~".+"})`: every series, few
//!   samples each, so per-series costs dominate).
//!
//! Times are the **CPU time of the benchmark thread** per iteration
//! (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the build machine is shared
//! and wall time mostly measures the other jobs. Reads run on the calling
//! thread, so this is the whole cost of a select.
//!
//! Run: `cargo bench --bench storage_select -- --warm-up-time 1 --measurement-time 5`.

#[path = "workload/mod.rs"]
mod workload;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use watchpost::model::{ManualClock, MatchOp, Matcher};
use watchpost::storage::{Appendable, Db, DbOptions, Querier, SelectHints, WalSyncPolicy};
use workload::{Workload, WorkloadConfig};

const HOUR_MS: i64 = 3_600_000;

/// CPU time consumed so far by `clock` (the calling thread, or the whole
/// process for reads that use worker threads).
fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids used are
    // constants supported by Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime({clock}) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Criterion routine measuring `f`'s thread CPU time over `iters` calls.
fn cpu_iter<T>(iters: u64, f: impl FnMut() -> T) -> Duration {
    cpu_iter_on(libc::CLOCK_THREAD_CPUTIME_ID, iters, f)
}

/// Criterion routine measuring `f`'s CPU time on `clock` over `iters` calls.
fn cpu_iter_on<T>(clock: libc::clockid_t, iters: u64, mut f: impl FnMut() -> T) -> Duration {
    let start = cpu_clock(clock);
    for _ in 0..iters {
        std::hint::black_box(f());
    }
    cpu_clock(clock) - start
}

fn bench(c: &mut Criterion) {
    let w = Workload::new(WorkloadConfig {
        steps: (12 * HOUR_MS / 15_000) as usize,
        ..WorkloadConfig::default()
    });
    let start = w.cfg.start_ms;
    let mid = start + 6 * HOUR_MS;
    let end = start + 12 * HOUR_MS;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = DbOptions::new(dir.path());
    opts.wal_sync = WalSyncPolicy::Interval(Duration::from_secs(1));
    opts.maintenance_interval = None;
    opts.clock = Arc::new(ManualClock::new(end));
    let db = Db::open(opts).expect("open");
    for s in w.scrapes() {
        let mut a = db.appender();
        for (i, t, v) in &s.floats {
            a.append(&w.floats[*i].labels, *t, *v).expect("append");
        }
        for (i, t, h) in &s.histograms {
            a.append_histogram(&w.histograms[*i].labels, *t, h)
                .expect("append histogram");
        }
        a.commit().expect("commit");
    }
    db.cut_head_before(mid).expect("cut");

    let counters = [Matcher::equal("__name__", "http_requests_total")];
    let hists = [Matcher::equal(
        "__name__",
        "http_request_duration_seconds_bucket",
    )];
    let all = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").expect("regex")];
    let count = |m: &[Matcher], min_t, max_t| -> usize {
        db.select(&SelectHints::range(min_t, max_t), m)
            .expect("select")
            .iter()
            .map(|s| s.values.len())
            .sum()
    };
    let block = (start, mid - 1);
    let head = (mid, end);
    let last5m = (end - 5 * 60_000 + 1, end);
    let block_samples = count(&counters, block.0, block.1);
    let head_samples = count(&counters, head.0, head.1);
    let all_samples = count(&all, last5m.0, last5m.1);
    let hist_samples: usize = db
        .select_histograms(&SelectHints::range(block.0, block.1), &hists)
        .expect("select histograms")
        .iter()
        .map(|h| h.timestamps.len() * (h.buckets.len() + 2))
        .sum();
    println!(
        "select: {block_samples} block samples, {head_samples} head samples, \
         {hist_samples} histogram block samples, {all_samples} samples of all series in 5 m"
    );
    assert!(block_samples > 0 && head_samples > 0 && hist_samples > 0 && all_samples > 0);

    let mut g = c.benchmark_group("storage_select");
    g.sample_size(10);
    g.throughput(Throughput::Elements(block_samples as u64));
    g.bench_function("block_6h", |b| {
        b.iter_custom(|n| cpu_iter(n, || count(&counters, block.0, block.1)))
    });
    // The streaming read of the same series: every sample visited, none
    // kept. CPU time of the whole process (the workers are threads).
    let visit_count = |workers: usize| -> usize {
        let n = std::sync::atomic::AtomicUsize::new(0);
        db.select_visit(
            &SelectHints::range(block.0, block.1),
            &counters,
            workers,
            &|_, s| {
                n.fetch_add(s.values.len(), std::sync::atomic::Ordering::Relaxed);
            },
        )
        .expect("select_visit");
        n.into_inner()
    };
    assert_eq!(visit_count(2), block_samples);
    for workers in [1, 2] {
        g.bench_function(format!("block_6h_visit_{workers}w"), |b| {
            b.iter_custom(|n| {
                cpu_iter_on(libc::CLOCK_PROCESS_CPUTIME_ID, n, || visit_count(workers))
            })
        });
    }
    g.throughput(Throughput::Elements(head_samples as u64));
    g.bench_function("head_6h", |b| {
        b.iter_custom(|n| cpu_iter(n, || count(&counters, head.0, head.1)))
    });
    g.throughput(Throughput::Elements(hist_samples as u64));
    g.bench_function("histograms_block_6h", |b| {
        b.iter_custom(|n| {
            cpu_iter(n, || {
                db.select_histograms(&SelectHints::range(block.0, block.1), &hists)
                    .expect("select histograms")
                    .len()
            })
        })
    });
    g.throughput(Throughput::Elements(all_samples as u64));
    g.bench_function("all_series_head_5m", |b| {
        b.iter_custom(|n| cpu_iter(n, || count(&all, last5m.0, last5m.1)))
    });
    g.finish();
    db.close().expect("close");
}

criterion_group!(benches, bench);
criterion_main!(benches);
