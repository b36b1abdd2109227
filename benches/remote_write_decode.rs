//! Remote write decode (+ append into a counting test double, and into a
//! real `Db`) throughput: the general path (`decode_cached` + `apply_cached`)
//! and the server's fused one (`write_cached`).
//!
//! The request mirrors what Prometheus sends: batches of 2,000 series with
//! one sample each and ~8 labels, snappy-compressed. Throughput is reported
//! in samples/s. The `db_*` benches run the whole receive path below HTTP
//! (decode with the label cache, series refs, head append, WAL write, and
//! with `every_commit_fsync` the fsync of the default configuration) on a
//! steady state of 2,000 known series with advancing timestamps.
//! Run: `cargo bench --bench remote_write_decode`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use watchpost::ingest::remote_write::{
    DecodeLimits, Protocol, SeriesCache, apply_cached, decode, decode_cached, pb::v1, write_cached,
};
use watchpost::model::{HistogramSample, Labels};
use watchpost::storage::{
    AppendError, Appendable, Appender, CommitSummary, Db, DbOptions, StorageError, WalSyncPolicy,
};

/// Counts appends; the cheapest possible storage, so the bench measures
/// decoding, validation and the append-call overhead only.
#[derive(Default)]
struct CountingDb(AtomicU64);

struct CountingApp<'a>(&'a CountingDb, u64);

impl Appender for CountingApp<'_> {
    fn append(&mut self, labels: &Labels, _t: i64, v: f64) -> Result<(), AppendError> {
        black_box((labels, v));
        self.1 += 1;
        Ok(())
    }
    fn append_histogram(
        &mut self,
        _: &Labels,
        _: i64,
        _: &HistogramSample,
    ) -> Result<(), AppendError> {
        self.1 += 1;
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError> {
        self.0.0.fetch_add(self.1, Ordering::Relaxed);
        Ok(CommitSummary {
            float_samples: self.1,
            ..Default::default()
        })
    }
    fn rollback(self: Box<Self>) {}
}

impl Appendable for CountingDb {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(CountingApp(self, 0))
    }
}

fn request(series: usize) -> Vec<u8> {
    request_at(series, 1_700_000_000_000)
}

fn request_at(series: usize, t0: i64) -> Vec<u8> {
    let label = |n: &str, v: String| v1::Label {
        name: n.to_string(),
        value: v,
    };
    let ts = (0..series)
        .map(|i| v1::TimeSeries {
            labels: vec![
                label("__name__", format!("http_requests_total_{}", i % 50)),
                label("code", ["200", "404", "500"][i % 3].to_string()),
                label("env", "prod".to_string()),
                label("handler", format!("/api/v1/item/{}", i % 40)),
                label("instance", format!("10.0.{}.{}:9100", i / 250, i % 250)),
                label("job", "api".to_string()),
                label("method", ["GET", "POST"][i % 2].to_string()),
                label("region", "eu-west-1".to_string()),
            ],
            samples: vec![v1::Sample {
                value: i as f64,
                timestamp: t0 + i as i64,
            }],
            ..Default::default()
        })
        .collect();
    let raw = v1::WriteRequest {
        timeseries: ts,
        metadata: vec![],
    }
    .encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy")
}

fn bench(c: &mut Criterion) {
    let body = request(2000);
    let limits = DecodeLimits::default();
    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(2000));
    g.bench_function("decode_2000_series", |b| {
        b.iter(|| decode(Protocol::V1, black_box(&body), &limits).expect("decode"))
    });
    // The steady state of a real sender: the same series every interval,
    // so the label cache hits.
    let cache = SeriesCache::default();
    g.bench_function("decode_cached_2000_series", |b| {
        b.iter(|| decode_cached(Protocol::V1, black_box(&body), &limits, &cache).expect("decode"))
    });
    let db = CountingDb::default();
    g.bench_function("decode_cached_apply_2000_series", |b| {
        b.iter(|| {
            let batch =
                decode_cached(Protocol::V1, black_box(&body), &limits, &cache).expect("decode");
            apply_cached(&batch, &db, &cache).expect("apply")
        })
    });
    // The server's path: decode and append in one pass (`write_cached`).
    let fused_cache = SeriesCache::default();
    g.bench_function("write_cached_2000_series", |b| {
        b.iter(|| {
            write_cached(Protocol::V1, black_box(&body), &limits, &fused_cache, &db)
                .map_err(|r| r.error)
                .expect("write")
        })
    });
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .expect("snappy");
    g.bench_function("snappy_only_2000_series", |b| {
        b.iter(|| {
            snap::raw::Decoder::new()
                .decompress_vec(black_box(&body))
                .expect("snappy")
        })
    });
    black_box(raw);

    // The whole path into a real database, as the server runs it
    // (`write_cached`): every iteration pushes the 2,000 series 15 s after
    // the previous one (encoded in the untimed setup), so each sample is a
    // new in-order sample, as from a real sender. (Cycling through a fixed
    // set of bodies would turn every later sample into an out-of-order
    // duplicate, a different and slower path.)
    for (name, policy) in [
        (
            "db_interval_fsync_2000_series",
            WalSyncPolicy::Interval(Duration::from_secs(1)),
        ),
        (
            "db_every_commit_fsync_2000_series",
            WalSyncPolicy::EveryCommit,
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = DbOptions::new(dir.path());
        o.maintenance_interval = None;
        o.wal_sync = policy;
        let db = Db::open(o).expect("open db");
        let cache = SeriesCache::default();
        let mut t = 1_700_000_000_000i64;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    t += 15_000;
                    request_at(2000, t)
                },
                |body| {
                    write_cached(Protocol::V1, &body, &limits, &cache, &db)
                        .map_err(|r| r.error)
                        .expect("write")
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
