//! Block column codecs: encode/decode throughput and bytes per sample on
//! realistic columns (24 h at 15 s: integer counters, integer random-walk
//! gauges, 12-bucket histograms; scrape timestamps with millisecond jitter).
//!
//! Run: `cargo bench --bench block_codec`. Before the timed runs it prints a
//! bytes/sample table, including a whole block written to disk (all files).

#[path = "workload/mod.rs"]
mod workload;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use watchpost::model::Labels;
use watchpost::storage::internals::codec::{
    decode_timestamps, decode_values, encode_histogram, encode_timestamps, encode_values,
};
use watchpost::storage::internals::{BlockSeries, BlockSeriesData, HistogramRun, write_block};

/// Samples per series: 24 h at a 15 s interval.
const N: usize = 5760;
const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const SERIES_PER_KIND: usize = 100;
const HISTOGRAMS: usize = 20;
/// Scrape timestamps deviate from the 15 s grid by up to this many ms.
const JITTER_MS: i64 = 5;

/// Deterministic generator (SplitMix64) so every run measures the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

/// Scrape timestamps of one target: on the grid plus jitter.
fn timestamps(r: &mut Rng) -> Vec<i64> {
    let offset = r.range(0, 14_999);
    (0..N as i64)
        .map(|i| START + offset + i * 15_000 + r.range(-JITTER_MS, JITTER_MS))
        .collect()
}

/// A request counter: per-scrape increments ~ Poisson(mean), mean per series
/// log-uniform between 1.5 and 1500 requests per scrape.
fn counter(r: &mut Rng) -> Vec<f64> {
    let mean = 1.5 * 10f64.powf(3.0 * r.unit());
    let mut c = r.range(0, 1_000_000) as f64;
    (0..N)
        .map(|_| {
            c += (mean + mean.sqrt() * r.normal()).round().max(0.0);
            c
        })
        .collect()
}

/// An integer gauge doing a random walk (step sd log-uniform 0.5..20);
/// one in ten is constant.
fn gauge(r: &mut Rng) -> Vec<f64> {
    let constant = r.range(0, 9) == 0;
    let sd = 0.5 * 40f64.powf(r.unit());
    let mut g = r.range(0, 10_000) as f64;
    (0..N)
        .map(|_| {
            if !constant {
                g = (g + (sd * r.normal()).round()).max(0.0);
            }
            g
        })
        .collect()
}

const BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram: ~Poisson(mean) observations per scrape spread over
/// 12 buckets; the sum accumulates float durations (binary noise, as client
/// libraries produce).
fn histogram(r: &mut Rng, ts: Vec<i64>) -> HistogramRun {
    let mean = 5.0 * 10f64.powf(2.0 * r.unit());
    let mut buckets = vec![Vec::with_capacity(N); BOUNDS.len() + 1];
    let mut cum = vec![0f64; BOUNDS.len() + 1];
    let (mut sum, mut count) = (Vec::with_capacity(N), Vec::with_capacity(N));
    let (mut s, mut c) = (0f64, 0f64);
    for _ in 0..N {
        let n = (mean + mean.sqrt() * r.normal()).round().max(0.0) as usize;
        for _ in 0..n {
            let d = 0.002 * (-r.unit().max(1e-12).ln()) * 40.0;
            s += d;
            c += 1.0;
            let first = BOUNDS.iter().position(|&b| d <= b).unwrap_or(BOUNDS.len());
            for x in cum.iter_mut().skip(first) {
                *x += 1.0;
            }
        }
        for (col, &v) in buckets.iter_mut().zip(&cum) {
            col.push(v);
        }
        sum.push(s);
        count.push(c);
    }
    HistogramRun {
        upper_bounds: Arc::from(BOUNDS.to_vec()),
        timestamps: ts,
        buckets,
        sum,
        count,
    }
}

struct Data {
    ts: Vec<Vec<i64>>,
    counters: Vec<Vec<f64>>,
    gauges: Vec<Vec<f64>>,
    hists: Vec<HistogramRun>,
}

fn data() -> Data {
    let mut r = Rng(7);
    let ts: Vec<Vec<i64>> = (0..SERIES_PER_KIND).map(|_| timestamps(&mut r)).collect();
    Data {
        counters: (0..SERIES_PER_KIND).map(|_| counter(&mut r)).collect(),
        gauges: (0..SERIES_PER_KIND).map(|_| gauge(&mut r)).collect(),
        hists: (0..HISTOGRAMS)
            .map(|i| histogram(&mut r, ts[i].clone()))
            .collect(),
        ts,
    }
}

fn enc_ts(t: &[i64]) -> usize {
    let mut b = Vec::new();
    encode_timestamps(t, &mut b);
    b.len()
}

fn enc_v(v: &[f64]) -> usize {
    let mut b = Vec::new();
    encode_values(v, &mut b);
    b.len()
}

fn report(d: &Data) {
    let samples = (SERIES_PER_KIND * N) as f64;
    let ts: usize = d.ts.iter().map(|t| enc_ts(t)).sum();
    let c: usize = d.counters.iter().map(|v| enc_v(v)).sum();
    let g: usize = d.gauges.iter().map(|v| enc_v(v)).sum();
    println!(
        "bytes/sample, {SERIES_PER_KIND} series per kind x {N} samples (24 h at 15 s, +-{JITTER_MS} ms jitter):"
    );
    println!(
        "  timestamps column (one per series)      {:.3}",
        ts as f64 / samples
    );
    println!(
        "  counter values                          {:.3}",
        c as f64 / samples
    );
    println!(
        "  gauge values                            {:.3}",
        g as f64 / samples
    );
    println!(
        "  counter: timestamps + values            {:.3}",
        (ts + c) as f64 / samples
    );
    println!(
        "  gauge:   timestamps + values            {:.3}",
        (ts + g) as f64 / samples
    );
    let hs = (HISTOGRAMS * N) as f64;
    let per_view = hs * (BOUNDS.len() + 3) as f64;
    let (mut hts, mut hsum, mut hcount, mut hbuckets) = (0usize, 0usize, 0usize, 0usize);
    for h in &d.hists {
        hts += enc_ts(&h.timestamps);
        hsum += enc_v(&h.sum);
        hcount += enc_v(&h.count);
        // The whole record minus the count and sum columns: bucket columns
        // (as differences where smaller; +Inf equals count, a flag byte).
        let mut rec = Vec::new();
        encode_histogram(h, 0..N, &mut rec);
        hbuckets += rec.len() - enc_v(&h.sum) - enc_v(&h.count);
    }
    let hb = hts + hsum + hcount + hbuckets;
    println!(
        "  histogram, per histogram sample: timestamps {:.3}, 12 bucket columns {:.3}, count {:.3}, sum {:.3}; total {:.3} = {:.3} per classic-series sample (12 _bucket + _sum + _count)",
        hts as f64 / hs,
        hbuckets as f64 / hs,
        hcount as f64 / hs,
        hsum as f64 / hs,
        hb as f64 / hs,
        hb as f64 / per_view
    );

    // Whole blocks on disk (all files: columns, index, meta.json). Series of
    // one target share that target's scrape timestamps, as in a real scrape
    // (10 targets), which the block writer stores once per chunk.
    let target = |i: usize| format!("host{}", i % 10);
    let mut floats = Vec::new();
    for (i, (cv, gv)) in d.counters.iter().zip(&d.gauges).enumerate() {
        for (name, v) in [("requests_total", cv), ("in_flight", gv)] {
            floats.push(BlockSeries {
                labels: Labels::from_pairs([
                    ("__name__", name),
                    ("instance", &target(i)),
                    ("id", &i.to_string()),
                ]),
                data: BlockSeriesData::Float {
                    timestamps: d.ts[i % 10].clone(),
                    values: v.clone(),
                },
            });
        }
    }
    let hists: Vec<BlockSeries> = d
        .hists
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut h = h.clone();
            h.timestamps = d.ts[i % 10].clone();
            BlockSeries {
                labels: Labels::from_pairs([
                    ("__name__", "latency_seconds"),
                    ("instance", &target(i)),
                    ("id", &i.to_string()),
                ]),
                data: BlockSeriesData::Histogram { runs: vec![h] },
            }
        })
        .collect();
    let f = block_bytes(floats);
    let h = block_bytes(hists);
    println!(
        "  block on disk, 100 counters + 100 gauges: {f} bytes = {:.3} per sample",
        f as f64 / (2.0 * samples)
    );
    println!(
        "  block on disk, {HISTOGRAMS} histograms: {h} bytes = {:.3} per classic-series sample",
        h as f64 / per_view
    );
}

/// Bytes on disk per sample of the shared workload of `benches/workload`
/// (10,000 series, 6 h at 15 s) written as one block.
fn report_workload() {
    let w = workload::Workload::standard();
    let mut ts: Vec<Vec<i64>> = vec![Vec::new(); w.floats.len()];
    let mut vs: Vec<Vec<f64>> = vec![Vec::new(); w.floats.len()];
    let nb = w.bounds.len() + 1;
    let mut runs: Vec<HistogramRun> = w
        .histograms
        .iter()
        .map(|_| HistogramRun {
            upper_bounds: w.bounds.clone(),
            timestamps: Vec::new(),
            buckets: vec![Vec::new(); nb],
            sum: Vec::new(),
            count: Vec::new(),
        })
        .collect();
    for sc in w.scrapes() {
        for (i, t, v) in sc.floats {
            ts[i].push(t);
            vs[i].push(v);
        }
        for (i, t, h) in sc.histograms {
            let r = &mut runs[i];
            r.timestamps.push(t);
            for (col, v) in r.buckets.iter_mut().zip(&h.bucket_counts) {
                col.push(*v);
            }
            r.sum.push(h.sum);
            r.count.push(h.count);
        }
    }
    let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
    for t in ts
        .iter()
        .chain(runs.iter().map(|r| &r.timestamps))
        .flatten()
    {
        min_t = min_t.min(*t);
        max_t = max_t.max(*t);
    }
    let float_samples: usize = ts.iter().map(Vec::len).sum();
    let hist_samples: usize = runs.iter().map(|r| r.timestamps.len()).sum();
    let mut series: Vec<BlockSeries> = w
        .floats
        .iter()
        .zip(ts.into_iter().zip(vs))
        .map(|(spec, (timestamps, values))| BlockSeries {
            labels: spec.labels.clone(),
            data: BlockSeriesData::Float { timestamps, values },
        })
        .collect();
    series.extend(w.histograms.iter().zip(runs).map(|(spec, r)| BlockSeries {
        labels: spec.labels.clone(),
        data: BlockSeriesData::Histogram { runs: vec![r] },
    }));
    let (float_series, hist_series): (Vec<_>, Vec<_>) = series
        .into_iter()
        .partition(|s| matches!(s.data, BlockSeriesData::Float { .. }));
    let f = block_bytes_range(float_series, min_t, max_t + 1);
    let h = block_bytes_range(hist_series, min_t, max_t + 1);
    let classic = float_samples + hist_samples * (nb + 2);
    println!(
        "benches/workload (10,000 series, 6 h at 15 s, 0..40 ms jitter per instance), one block on disk:"
    );
    println!(
        "  7,000 counters + gauges: {f} bytes = {:.3} per sample",
        f as f64 / float_samples as f64
    );
    println!(
        "  200 histograms: {h} bytes = {:.3} per classic-series sample",
        h as f64 / (hist_samples * (nb + 2)) as f64
    );
    println!(
        "  all: {} bytes = {:.3} per classic-series sample",
        f + h,
        (f + h) as f64 / classic as f64
    );
}

/// Writes `series` as one block and returns the bytes of all its files.
fn block_bytes(series: Vec<BlockSeries>) -> u64 {
    block_bytes_range(series, START, START + 86_400_000 + 15_000)
}

/// [`block_bytes`] for a block covering `[min_t, max_t)`.
fn block_bytes_range(series: Vec<BlockSeries>, min_t: i64, max_t: i64) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = write_block(dir.path(), min_t, max_t, series).expect("write block");
    std::fs::read_dir(dir.path().join(&meta.id))
        .expect("block dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Rows of one 2 h block chunk at 15 s.
const BLOCK_ROWS: usize = 480;

fn benches(c: &mut Criterion) {
    let d = data();
    report(&d);
    report_workload();
    let mut g = c.benchmark_group("block_codec");
    g.throughput(Throughput::Elements(N as u64));
    let t = &d.ts[0];
    let mut tb = Vec::new();
    encode_timestamps(t, &mut tb);
    g.bench_function("encode_timestamps", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(8192);
            encode_timestamps(black_box(t), &mut out);
            out
        })
    });
    g.bench_function("decode_timestamps", |b| {
        b.iter(|| decode_timestamps(black_box(&tb)))
    });
    // Block-sized columns (a 2 h chunk at 15 s): per-stream setup costs
    // (DEFLATE's table building) weigh 12x more than in a 24 h column.
    g.throughput(Throughput::Elements(BLOCK_ROWS as u64));
    let mut tb2 = Vec::new();
    encode_timestamps(&t[..BLOCK_ROWS], &mut tb2);
    g.bench_function("decode_timestamps_2h", |b| {
        b.iter(|| decode_timestamps(black_box(&tb2)))
    });
    for (name, v) in [("counter", &d.counters[0]), ("gauge", &d.gauges[0])] {
        let mut vb = Vec::new();
        encode_values(&v[..BLOCK_ROWS], &mut vb);
        g.bench_function(format!("decode_values_{name}_2h"), |b| {
            b.iter(|| decode_values(black_box(&vb)))
        });
    }
    g.throughput(Throughput::Elements(N as u64));
    for (name, v) in [
        ("counter", &d.counters[0]),
        ("gauge", &d.gauges[0]),
        ("histogram_sum", &d.hists[0].sum),
    ] {
        let mut vb = Vec::new();
        encode_values(v, &mut vb);
        g.bench_function(format!("encode_values_{name}"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(8192);
                encode_values(black_box(v), &mut out);
                out
            })
        });
        g.bench_function(format!("decode_values_{name}"), |b| {
            b.iter(|| decode_values(black_box(&vb)))
        });
    }
    g.finish();
}

criterion_group! {
    name = block_codec;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(block_codec);
