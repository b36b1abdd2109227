//! Head append throughput (samples/s) on the shared workload: one appender
//! per scrape (10,000 classic series), committed through the WAL.
//!
//! - `interval_fsync`: WAL fsync every second (CPU cost of the append path).
//! - `every_commit_fsync`: one fsync per commit (durability cost).
//! - `interval_fsync_refs`: as `interval_fsync`, but through
//!   `Appender::append_ref` with the refs learned on the first scrape (the
//!   remote-write receiver's steady state: no label lookup).
//!
//! Run: `cargo bench --bench storage_append`.

#[path = "workload/mod.rs"]
mod workload;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use watchpost::storage::{Appendable, Db, DbOptions, SeriesRef, WalSyncPolicy};
use workload::{Scrape, Workload, WorkloadConfig};

/// Scrapes per measured iteration: 30 minutes of data, 1,200,000 classic
/// samples (a histogram sample counts as its 15 classic samples).
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

/// How a measured run appends the scrapes.
type AppendRun = fn(&Db, &Workload, &[Scrape]);

/// [`append_all`] through `append_ref`: each float series' ref is learned
/// on its first sample and passed as the hint afterwards.
fn append_all_refs(db: &Db, w: &Workload, scrapes: &[Scrape]) {
    let mut refs: Vec<Option<SeriesRef>> = vec![None; w.floats.len()];
    for s in scrapes {
        let mut a = db.appender();
        a.reserve(s.floats.len());
        for (i, t, v) in &s.floats {
            if let Some(r) = a
                .append_ref(refs[*i].as_ref(), &w.floats[*i].labels, *t, *v)
                .expect("append_ref")
            {
                refs[*i] = Some(r);
            }
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
    let interval = WalSyncPolicy::Interval(Duration::from_secs(1));
    let runs: [(&str, WalSyncPolicy, AppendRun); 3] = [
        ("interval_fsync", interval, append_all),
        ("every_commit_fsync", WalSyncPolicy::EveryCommit, append_all),
        ("interval_fsync_refs", interval, append_all_refs),
    ];
    for (name, policy, run) in runs {
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
                    run(&db, &w, &scrapes);
                    total += start.elapsed();
                    db.close().expect("close");
                }
                total
            })
        });
    }
    g.finish();

    memory_per_series();
}

/// Resident memory of the process, in bytes (Linux `/proc/self/status`).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resident memory per active series with 3 h of data in the head (the
/// most it holds before a 2 h block is cut), printed, not timed. Scrapes
/// are generated on the fly so they do not count.
fn memory_per_series() {
    let w = Workload::new(WorkloadConfig {
        steps: 3 * 3600 / 15,
        ..WorkloadConfig::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = DbOptions::new(dir.path());
    opts.wal_sync = WalSyncPolicy::Interval(Duration::from_secs(1));
    opts.maintenance_interval = None;
    let before = rss_bytes();
    let db = Db::open(opts).expect("open");
    for s in w.scrapes() {
        append_all(&db, &w, std::slice::from_ref(&s));
    }
    let after = rss_bytes();
    let st = db.stats();
    let classic = w.classic_series() as f64;
    println!(
        "head after 3 h: {} stored series ({} classic), estimate {} bytes = {:.0} B/classic series",
        st.head_series,
        w.classic_series(),
        st.head_bytes,
        st.head_bytes as f64 / classic
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "process RSS growth: {} bytes = {:.0} B/classic series",
            a.saturating_sub(b),
            a.saturating_sub(b) as f64 / classic
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
