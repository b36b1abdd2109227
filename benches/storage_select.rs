//! Select + decode throughput (samples/s) on the shared workload: 4 h of
//! the 10,000-series workload appended, the first 2 h cut into a block (so
//! one 2 h range is read from the memory-mapped block, the other from the
//! head), then `Querier::select` of every `http_requests_total` series
//! (5,000 counters, 480 samples each per 2 h) with all samples decoded.
//!
//! - `block_2h`: 2.4 M samples decoded from the block's columns.
//! - `head_2h`: 2.4 M samples decoded from the head's XOR chunks.
//! - `histograms_block_2h`: `select_histograms` of the 200 histograms
//!   (each sample = 13 buckets + sum + count, counted as 15 samples).
//!
//! Run: `cargo bench --bench storage_select -- --warm-up-time 1 --measurement-time 3`.

#[path = "workload/mod.rs"]
mod workload;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use watchpost::model::{ManualClock, Matcher};
use watchpost::storage::{Appendable, Db, DbOptions, Querier, SelectHints, WalSyncPolicy};
use workload::{Workload, WorkloadConfig};

const HOUR_MS: i64 = 3_600_000;

fn bench(c: &mut Criterion) {
    let w = Workload::new(WorkloadConfig {
        steps: (4 * HOUR_MS / 15_000) as usize,
        ..WorkloadConfig::default()
    });
    let start = w.cfg.start_ms;
    let mid = start + 2 * HOUR_MS;
    let end = start + 4 * HOUR_MS + 1000;
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
    let count = |min_t, max_t| -> usize {
        db.select(&SelectHints::range(min_t, max_t), &counters)
            .expect("select")
            .iter()
            .map(|s| s.values.len())
            .sum()
    };
    let block_samples = count(start, mid - 1);
    let head_samples = count(mid, end);
    let hist_samples: usize = db
        .select_histograms(&SelectHints::range(start, mid - 1), &hists)
        .expect("select histograms")
        .iter()
        .map(|h| h.timestamps.len() * (h.buckets.len() + 2))
        .sum();
    println!(
        "select: {block_samples} block samples, {head_samples} head samples, {hist_samples} histogram block samples"
    );
    assert!(block_samples > 0 && head_samples > 0 && hist_samples > 0);

    let mut g = c.benchmark_group("storage_select");
    g.sample_size(10);
    g.throughput(Throughput::Elements(block_samples as u64));
    g.bench_function("block_2h", |b| b.iter(|| count(start, mid - 1)));
    g.throughput(Throughput::Elements(head_samples as u64));
    g.bench_function("head_2h", |b| b.iter(|| count(mid, end)));
    g.throughput(Throughput::Elements(hist_samples as u64));
    g.bench_function("histograms_block_2h", |b| {
        b.iter(|| {
            db.select_histograms(&SelectHints::range(start, mid - 1), &hists)
                .expect("select histograms")
                .len()
        })
    });
    g.finish();
    db.close().expect("close");
}

criterion_group!(benches, bench);
criterion_main!(benches);
