//! Deterministic workload shared by the benches (storage issue, section
//! "Benchmarks"): 10,000 series at 15 s resolution for 6 h.
//!
//! - 5,000 request counters `http_requests_total{method, endpoint, status,
//!   instance}` (4 methods × 25 endpoints × 5 statuses × 10 instances),
//!   integer-valued, increasing by a per-series rate with noise;
//! - 2,000 random-walk gauges `<name>{instance}` (20 names × 100
//!   instances), integer-valued;
//! - 200 histograms `http_request_duration_seconds{endpoint, instance}`
//!   (20 endpoints × 10 instances) with 12 finite buckets, i.e. 15 classic
//!   series each (13 `_bucket`, `_sum`, `_count`): 3,000 series.
//!
//! Every scrape of an instance has a millisecond jitter (0..=40 ms) so
//! timestamps are realistic rather than perfectly regular. The same
//! `WorkloadConfig` always yields the same samples (own SplitMix64 PRNG; no
//! dependency on a `rand` version).
//!
//! Include from a bench with `#[path = "workload/mod.rs"] mod workload;`.

#![allow(dead_code, reason = "shared by several benches, each using a subset")]

use std::sync::Arc;

use watchpost::model::{HistogramSample, Labels};

/// Shape of the workload.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// First scrape time (ms).
    pub start_ms: i64,
    /// Scrape interval (ms).
    pub step_ms: i64,
    /// Number of scrapes (6 h at 15 s = 1440).
    pub steps: usize,
    /// PRNG seed.
    pub seed: u64,
    /// Instances (scrape targets).
    pub instances: usize,
    /// Whether the 20 × `instances` histograms are included (the
    /// counters-and-gauges-only dataset of the comparison script turns
    /// them off).
    pub histograms: bool,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            start_ms: 1_700_000_000_000,
            step_ms: 15_000,
            steps: 6 * 3600 / 15,
            seed: 42,
            instances: 10,
            histograms: true,
        }
    }
}

/// SplitMix64: tiny, fast, and fully determined by its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const STATUSES: [&str; 5] = ["200", "201", "404", "500", "503"];
const BOUNDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug)]
enum FloatKind {
    /// Counter with a mean increase per scrape.
    Counter { rate: u64 },
    /// Random walk with a step size.
    Gauge { step: i64 },
}

/// One float series of the workload.
#[derive(Clone, Debug)]
pub struct FloatSpec {
    /// Labels.
    pub labels: Labels,
    /// Instance index (drives the scrape jitter).
    pub instance: usize,
    kind: FloatKind,
}

/// One histogram series of the workload (family labels, bounds).
#[derive(Clone, Debug)]
pub struct HistogramSpec {
    /// Family labels (`__name__` without `_bucket`).
    pub labels: Labels,
    /// Instance index.
    pub instance: usize,
    /// Mean observations per scrape.
    pub rate: u64,
}

/// One scrape: every series' sample at (about) one time.
#[derive(Clone, Debug)]
pub struct Scrape {
    /// `(series index into Workload::floats, t, v)`.
    pub floats: Vec<(usize, i64, f64)>,
    /// `(series index into Workload::histograms, t, sample)`.
    pub histograms: Vec<(usize, i64, HistogramSample)>,
}

/// The series of the workload and a generator of its scrapes.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Configuration.
    pub cfg: WorkloadConfig,
    /// Float series (counters then gauges).
    pub floats: Vec<FloatSpec>,
    /// Histogram series.
    pub histograms: Vec<HistogramSpec>,
    /// Shared bucket bounds.
    pub bounds: Arc<[f64]>,
}

impl Workload {
    /// Builds the series set.
    pub fn new(cfg: WorkloadConfig) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let mut floats = Vec::new();
        for m in METHODS {
            for e in 0..25 {
                for s in STATUSES {
                    for i in 0..cfg.instances {
                        floats.push(FloatSpec {
                            labels: Labels::from_pairs([
                                ("__name__", "http_requests_total".to_string()),
                                ("method", m.to_string()),
                                ("endpoint", format!("/api/v1/resource{e}")),
                                ("status", s.to_string()),
                                ("instance", format!("10.0.0.{i}:9100")),
                                ("job", "api".to_string()),
                            ]),
                            instance: i,
                            kind: FloatKind::Counter {
                                rate: 1 + rng.below(50),
                            },
                        });
                    }
                }
            }
        }
        for g in 0..20 {
            for i in 0..10 * cfg.instances {
                floats.push(FloatSpec {
                    labels: Labels::from_pairs([
                        ("__name__", format!("node_gauge_{g}")),
                        ("instance", format!("10.0.1.{i}:9100")),
                        ("job", "node".to_string()),
                    ]),
                    instance: i % cfg.instances,
                    kind: FloatKind::Gauge {
                        step: 1 + rng.below(100) as i64,
                    },
                });
            }
        }
        let mut histograms = Vec::new();
        let endpoints = if cfg.histograms { 20 } else { 0 };
        for e in 0..endpoints {
            for i in 0..cfg.instances {
                histograms.push(HistogramSpec {
                    labels: Labels::from_pairs([
                        ("__name__", "http_request_duration_seconds".to_string()),
                        ("endpoint", format!("/api/v1/resource{e}")),
                        ("instance", format!("10.0.0.{i}:9100")),
                        ("job", "api".to_string()),
                    ]),
                    instance: i,
                    rate: 1 + rng.below(100),
                });
            }
        }
        Workload {
            cfg,
            floats,
            histograms,
            bounds: Arc::from(BOUNDS.to_vec()),
        }
    }

    /// The default workload (10,000 series, 15 s, 6 h).
    pub fn standard() -> Self {
        Self::new(WorkloadConfig::default())
    }

    /// Number of classic series (histograms counted as their 15 views).
    pub fn classic_series(&self) -> usize {
        self.floats.len() + self.histograms.len() * (self.bounds.len() + 3)
    }

    /// Iterates the scrapes in time order.
    pub fn scrapes(&self) -> ScrapeIter<'_> {
        let mut rng = Rng::new(self.cfg.seed ^ 0x5eed);
        ScrapeIter {
            w: self,
            step: 0,
            float_state: self
                .floats
                .iter()
                .map(|_| 1000 + rng.below(100_000) as i64)
                .collect(),
            hist_state: self
                .histograms
                .iter()
                .map(|_| (vec![0.0; BOUNDS.len() + 1], 0.0))
                .collect(),
            rng,
        }
    }
}

/// Generator of scrapes (see [`Workload::scrapes`]).
pub struct ScrapeIter<'a> {
    w: &'a Workload,
    step: usize,
    float_state: Vec<i64>,
    hist_state: Vec<(Vec<f64>, f64)>,
    rng: Rng,
}

impl Iterator for ScrapeIter<'_> {
    type Item = Scrape;

    fn next(&mut self) -> Option<Scrape> {
        if self.step >= self.w.cfg.steps {
            return None;
        }
        let base = self.w.cfg.start_ms + self.step as i64 * self.w.cfg.step_ms;
        let jitter: Vec<i64> = (0..self.w.cfg.instances)
            .map(|_| self.rng.below(41) as i64)
            .collect();
        let mut floats = Vec::with_capacity(self.w.floats.len());
        for (i, spec) in self.w.floats.iter().enumerate() {
            let v = &mut self.float_state[i];
            match spec.kind {
                FloatKind::Counter { rate } => *v += self.rng.below(2 * rate + 1) as i64,
                FloatKind::Gauge { step } => {
                    *v += self.rng.below(2 * step as u64 + 1) as i64 - step;
                }
            }
            floats.push((i, base + jitter[spec.instance], *v as f64));
        }
        let mut histograms = Vec::with_capacity(self.w.histograms.len());
        for (i, spec) in self.w.histograms.iter().enumerate() {
            let (counts, sum) = &mut self.hist_state[i];
            let n = self.rng.below(2 * spec.rate + 1);
            let mut per_bucket = vec![0.0; counts.len()];
            for _ in 0..n {
                // Log-uniform latency between 1 ms and ~40 s.
                let x = (0.001f64).powf(1.0 - self.rng.unit()) * 40.0;
                *sum += x;
                let b = BOUNDS.iter().position(|&u| x <= u).unwrap_or(BOUNDS.len());
                per_bucket[b] += 1.0;
            }
            let mut cum = 0.0;
            for (c, add) in counts.iter_mut().zip(&per_bucket) {
                cum += add;
                *c += cum;
            }
            // counts[j] accumulates the cumulative count over time.
            histograms.push((
                i,
                base + jitter[spec.instance],
                HistogramSample {
                    upper_bounds: self.w.bounds.clone(),
                    bucket_counts: counts.clone(),
                    sum: (*sum * 1000.0).round() / 1000.0,
                    count: *counts.last().unwrap_or(&0.0),
                },
            ));
        }
        self.step += 1;
        Some(Scrape { floats, histograms })
    }
}
