//! Head append throughput (samples/s) on the shared workload: one appender
//! per scrape (10,000 classic series), committed through the WAL.
//!
//! - `interval_fsync`: WAL fsync every second (CPU cost of the append path).
//! - `every_commit_fsync`: one fsync per commit (durability cost).
//!
//! Run: `cargo bench --bench storage_append`.

#[path = "workload/mod.rs"]
mod workload;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use watchpost::storage::{Appendable, Db, DbOptions, WalSyncPolicy};
use workload::{Scrape, Workload, WorkloadConfig};

/// Scrapes per measured iteration: 30 minutes of data, 300,000 samples.
const STEPS: usize = 120;

fn append_all(db: &Db, w: &Workload, scrapes: &[Scrape]) {
    for s in scrapes {
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
}

fn bench(c: &mut Criterion) {
    let w = Workload::new(WorkloadConfig {
        steps: STEPS,
        ..WorkloadConfig::default()
    });
    let scrapes: Vec<Scrape> = w.scrapes().collect();
    let samples: usize = scrapes
        .iter()
        .map(|s| s.floats.len() + s.histograms.len() * (w.bounds.len() + 3))
        .sum();
    let mut g = c.benchmark_group("storage_append");
    g.sample_size(10);
    g.throughput(Throughput::Elements(samples as u64));
    for (name, policy) in [
        (
            "interval_fsync",
            WalSyncPolicy::Interval(Duration::from_secs(1)),
        ),
        ("every_commit_fsync", WalSyncPolicy::EveryCommit),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let mut opts = DbOptions::new(dir.path());
                    opts.wal_sync = policy;
                    opts.maintenance_interval = None;
                    let db = Db::open(opts).expect("open");
                    let start = Instant::now();
                    append_all(&db, &w, &scrapes);
                    total += start.elapsed();
                    db.close().expect("close");
                }
                total
            })
        });
    }
    g.finish();

    // Resident memory per active series after 30 minutes of data (printed,
    // not timed): the head's own estimate.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = DbOptions::new(dir.path());
    opts.wal_sync = WalSyncPolicy::Interval(Duration::from_secs(1));
    opts.maintenance_interval = None;
    let db = Db::open(opts).expect("open");
    append_all(&db, &w, &scrapes);
    let st = db.stats();
    println!(
        "head: {} stored series ({} classic), {} bytes estimated, {:.0} bytes per classic series",
        st.head_series,
        w.classic_series(),
        st.head_bytes,
        st.head_bytes as f64 / w.classic_series() as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
