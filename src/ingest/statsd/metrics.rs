//! Self-metrics of the StatsD door (spec §12), as plain atomics.
//!
//! Counters are bumped from the receive, aggregation and flush threads with
//! relaxed ordering (they are statistics, not synchronisation). The server
//! exposes [`StatsdMetrics::snapshot_flat`] on `/metrics`; the StatsD flusher
//! writes [`StatsdMetrics::snapshot`] into the store at every flush.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::parse::BadReason;
use crate::model::HistogramSample;

/// Most distinct `family` label values kept per labelled counter; later
/// families are folded into [`OVERFLOW_FAMILY`] so a flood of conflicting
/// names cannot grow memory without bound.
pub const MAX_FAMILY_LABELS: usize = 1000;
/// The `family` label value used once [`MAX_FAMILY_LABELS`] is reached.
pub const OVERFLOW_FAMILY: &str = "_other";

/// Bounds (seconds) of `statsd_flush_duration_seconds`: flushes take
/// microseconds to a few seconds (a WAL fsync on a slow disk).
pub const FLUSH_DURATION_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 5.0,
];

/// The transports that receive packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// Newline-framed TCP streams.
    Tcp,
    /// Unix datagram socket.
    Unixgram,
}

impl Transport {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Unixgram => "unixgram",
        }
    }
    const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Unixgram];
}

/// Prometheus kind of a self-metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfKind {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Classic histogram.
    Histogram,
}

/// Every self-metric family with its kind and help text. User StatsD lines
/// whose escaped family equals one of these (or a histogram view of one) are
/// type conflicts.
pub const SELF_METRICS: &[(&str, SelfKind, &str)] = &[
    (
        "statsd_packets_received_total",
        SelfKind::Counter,
        "Packets (datagrams or TCP reads) received, by transport.",
    ),
    (
        "statsd_packets_truncated_total",
        SelfKind::Counter,
        "Datagrams longer than the read buffer; their partial last line was dropped.",
    ),
    (
        "statsd_kernel_drops_total",
        SelfKind::Counter,
        "Datagrams the kernel dropped because a socket receive buffer was full.",
    ),
    (
        "statsd_queue_drops_total",
        SelfKind::Counter,
        "Packets dropped because the aggregation queue was full.",
    ),
    (
        "statsd_lines_received_total",
        SelfKind::Counter,
        "Non-empty lines received (good and bad).",
    ),
    (
        "statsd_samples_received_total",
        SelfKind::Counter,
        "Values accepted from good lines.",
    ),
    (
        "statsd_bad_lines_total",
        SelfKind::Counter,
        "Lines dropped as malformed, by reason.",
    ),
    (
        "statsd_tag_errors_total",
        SelfKind::Counter,
        "Tags skipped as malformed on otherwise good lines.",
    ),
    (
        "statsd_unknown_fields_total",
        SelfKind::Counter,
        "Unknown |-separated extension fields ignored.",
    ),
    (
        "statsd_events_ignored_total",
        SelfKind::Counter,
        "DogStatsD events and service checks ignored, by kind.",
    ),
    (
        "statsd_type_conflicts_total",
        SelfKind::Counter,
        "Lines refused because their family has another type, by family and refused type.",
    ),
    (
        "statsd_series_limit_drops_total",
        SelfKind::Counter,
        "Lines refused because they would create a series beyond a limit, by family.",
    ),
    (
        "statsd_live_series",
        SelfKind::Gauge,
        "Series held by the aggregator, by type.",
    ),
    (
        "statsd_flushes_total",
        SelfKind::Counter,
        "Flushes completed.",
    ),
    (
        "statsd_flush_duration_seconds",
        SelfKind::Histogram,
        "Time to snapshot and write one flush.",
    ),
    (
        "statsd_tcp_line_too_long_total",
        SelfKind::Counter,
        "TCP connections closed because a line exceeded the limit.",
    ),
    (
        "statsd_set_overflow_total",
        SelfKind::Counter,
        "Set members not counted because a set reached its per-window cap.",
    ),
    (
        "statsd_mapping_drops_total",
        SelfKind::Counter,
        "Lines dropped by a mapping rule with action drop.",
    ),
    (
        "statsd_append_errors_total",
        SelfKind::Counter,
        "Samples the store refused during a flush.",
    ),
];

/// Live-series type label values, indexed like `StatsdMetrics::live_series`.
pub const LIVE_TYPES: [&str; 4] = ["counter", "gauge", "histogram", "set"];

/// The value of one self-metric series.
#[derive(Clone, Debug, PartialEq)]
pub enum SelfValue {
    /// A counter or gauge value.
    Float(f64),
    /// A histogram (cumulative buckets).
    Histogram(HistogramSample),
}

/// One self-metric series.
#[derive(Clone, Debug, PartialEq)]
pub struct SelfSample {
    /// Family name (for a histogram, without `_bucket`).
    pub name: &'static str,
    /// Labels other than `__name__`, in name order.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: SelfValue,
}

#[derive(Debug, Default)]
struct DurationHist {
    buckets: [u64; FLUSH_DURATION_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// All StatsD self-metrics. Shared as `Arc<StatsdMetrics>`.
#[derive(Debug, Default)]
pub struct StatsdMetrics {
    packets_received: [AtomicU64; 3],
    /// `statsd_packets_truncated_total`.
    pub packets_truncated: AtomicU64,
    /// `statsd_kernel_drops_total` (absolute, refreshed from the kernel).
    pub kernel_drops: AtomicU64,
    /// `statsd_queue_drops_total{queue="aggregator"}`.
    pub queue_drops: AtomicU64,
    /// `statsd_lines_received_total`.
    pub lines_received: AtomicU64,
    /// `statsd_samples_received_total`.
    pub samples_received: AtomicU64,
    bad_lines: [AtomicU64; BadReason::ALL.len()],
    /// `statsd_tag_errors_total`.
    pub tag_errors: AtomicU64,
    /// `statsd_unknown_fields_total`.
    pub unknown_fields: AtomicU64,
    /// `statsd_events_ignored_total{kind="event"}`.
    pub events_ignored: AtomicU64,
    /// `statsd_events_ignored_total{kind="service_check"}`.
    pub service_checks_ignored: AtomicU64,
    type_conflicts: Mutex<HashMap<(String, &'static str), u64>>,
    series_limit_drops: Mutex<HashMap<String, u64>>,
    live_series: [AtomicI64; 4],
    /// `statsd_flushes_total`.
    pub flushes: AtomicU64,
    flush_duration: Mutex<DurationHist>,
    /// `statsd_tcp_line_too_long_total`.
    pub tcp_line_too_long: AtomicU64,
    /// `statsd_set_overflow_total`.
    pub set_overflow: AtomicU64,
    /// `statsd_mapping_drops_total`.
    pub mapping_drops: AtomicU64,
    /// `statsd_append_errors_total`.
    pub append_errors: AtomicU64,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn bump_family<K: Eq + std::hash::Hash>(map: &mut HashMap<K, u64>, key: K, overflow: K) {
    let key = if map.len() >= MAX_FAMILY_LABELS && !map.contains_key(&key) {
        overflow
    } else {
        key
    };
    *map.entry(key).or_default() += 1;
}

impl StatsdMetrics {
    /// A fresh, all-zero set.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts one received packet.
    pub fn packet(&self, t: Transport) {
        self.packets_received[t as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Packets received over `t`.
    pub fn packets_received(&self, t: Transport) -> u64 {
        get(&self.packets_received[t as usize])
    }

    /// Counts one bad line.
    pub fn bad_line(&self, r: BadReason) {
        self.bad_lines[r.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Bad lines seen for `r`.
    pub fn bad_lines(&self, r: BadReason) -> u64 {
        get(&self.bad_lines[r.index()])
    }

    /// Bad lines of every reason.
    pub fn bad_lines_total(&self) -> u64 {
        self.bad_lines.iter().map(get).sum()
    }

    /// Counts a line refused by a type conflict on `family` (`kind` is the
    /// refused line's Prometheus type).
    pub fn type_conflict(&self, family: &str, kind: &'static str) {
        bump_family(
            &mut self.type_conflicts.lock(),
            (family.to_string(), kind),
            (OVERFLOW_FAMILY.to_string(), kind),
        );
    }

    /// Type conflicts counted for `family`, all refused types together.
    pub fn type_conflicts(&self, family: &str) -> u64 {
        self.type_conflicts
            .lock()
            .iter()
            .filter(|((f, _), _)| f == family)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Counts a line refused by a series limit on `family`.
    pub fn series_limit_drop(&self, family: &str) {
        bump_family(
            &mut self.series_limit_drops.lock(),
            family.to_string(),
            OVERFLOW_FAMILY.to_string(),
        );
    }

    /// Series-limit drops counted for `family`.
    pub fn series_limit_drops(&self, family: &str) -> u64 {
        self.series_limit_drops
            .lock()
            .get(family)
            .copied()
            .unwrap_or(0)
    }

    /// Adjusts the live-series gauge of type index `i` (see [`LIVE_TYPES`]).
    pub fn live_series_add(&self, i: usize, delta: i64) {
        if let Some(g) = self.live_series.get(i) {
            g.fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// Live series of type index `i`.
    pub fn live_series(&self, i: usize) -> i64 {
        self.live_series
            .get(i)
            .map_or(0, |g| g.load(Ordering::Relaxed))
    }

    /// Records one completed flush that took `seconds`.
    pub fn flush_done(&self, seconds: f64) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        let mut h = self.flush_duration.lock();
        let i = FLUSH_DURATION_BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(FLUSH_DURATION_BUCKETS.len());
        h.buckets[i] += 1;
        h.sum += seconds;
        h.count += 1;
    }

    /// Every self-metric series, histograms whole.
    pub fn snapshot(&self) -> Vec<SelfSample> {
        let f = |name: &'static str, labels: Vec<(&'static str, String)>, v: u64| SelfSample {
            name,
            labels,
            value: SelfValue::Float(v as f64),
        };
        let mut out = Vec::with_capacity(48);
        for t in Transport::ALL {
            out.push(f(
                "statsd_packets_received_total",
                vec![("transport", t.as_str().to_string())],
                self.packets_received(t),
            ));
        }
        out.push(f(
            "statsd_packets_truncated_total",
            vec![],
            get(&self.packets_truncated),
        ));
        out.push(f(
            "statsd_kernel_drops_total",
            vec![],
            get(&self.kernel_drops),
        ));
        out.push(f(
            "statsd_queue_drops_total",
            vec![("queue", "aggregator".to_string())],
            get(&self.queue_drops),
        ));
        out.push(f(
            "statsd_lines_received_total",
            vec![],
            get(&self.lines_received),
        ));
        out.push(f(
            "statsd_samples_received_total",
            vec![],
            get(&self.samples_received),
        ));
        for r in BadReason::ALL {
            out.push(f(
                "statsd_bad_lines_total",
                vec![("reason", r.as_str().to_string())],
                self.bad_lines(r),
            ));
        }
        out.push(f("statsd_tag_errors_total", vec![], get(&self.tag_errors)));
        out.push(f(
            "statsd_unknown_fields_total",
            vec![],
            get(&self.unknown_fields),
        ));
        out.push(f(
            "statsd_events_ignored_total",
            vec![("kind", "event".to_string())],
            get(&self.events_ignored),
        ));
        out.push(f(
            "statsd_events_ignored_total",
            vec![("kind", "service_check".to_string())],
            get(&self.service_checks_ignored),
        ));
        let mut conflicts: Vec<_> = self
            .type_conflicts
            .lock()
            .iter()
            .map(|((fam, k), n)| (fam.clone(), *k, *n))
            .collect();
        conflicts.sort();
        for (fam, k, n) in conflicts {
            out.push(f(
                "statsd_type_conflicts_total",
                vec![("family", fam), ("type", k.to_string())],
                n,
            ));
        }
        let mut limits: Vec<_> = self
            .series_limit_drops
            .lock()
            .iter()
            .map(|(fam, n)| (fam.clone(), *n))
            .collect();
        limits.sort();
        for (fam, n) in limits {
            out.push(f(
                "statsd_series_limit_drops_total",
                vec![("family", fam)],
                n,
            ));
        }
        for (i, t) in LIVE_TYPES.iter().enumerate() {
            out.push(SelfSample {
                name: "statsd_live_series",
                labels: vec![("type", t.to_string())],
                value: SelfValue::Float(self.live_series(i) as f64),
            });
        }
        out.push(f("statsd_flushes_total", vec![], get(&self.flushes)));
        {
            let h = self.flush_duration.lock();
            let mut cum = 0u64;
            let bucket_counts = h
                .buckets
                .iter()
                .map(|&n| {
                    cum += n;
                    cum as f64
                })
                .collect();
            out.push(SelfSample {
                name: "statsd_flush_duration_seconds",
                labels: vec![],
                value: SelfValue::Histogram(HistogramSample {
                    upper_bounds: Arc::from(&FLUSH_DURATION_BUCKETS[..]),
                    bucket_counts,
                    sum: h.sum,
                    count: h.count as f64,
                }),
            });
        }
        out.push(f(
            "statsd_tcp_line_too_long_total",
            vec![],
            get(&self.tcp_line_too_long),
        ));
        out.push(f(
            "statsd_set_overflow_total",
            vec![],
            get(&self.set_overflow),
        ));
        out.push(f(
            "statsd_mapping_drops_total",
            vec![],
            get(&self.mapping_drops),
        ));
        out.push(f(
            "statsd_append_errors_total",
            vec![],
            get(&self.append_errors),
        ));
        out
    }

    /// Every self-metric as (series name, labels, value) triples; histograms
    /// expanded into `_bucket{le}`, `_sum` and `_count`.
    pub fn snapshot_flat(&self) -> Vec<(String, Vec<(String, String)>, f64)> {
        let mut out = Vec::new();
        for s in self.snapshot() {
            let labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            match s.value {
                SelfValue::Float(v) => out.push((s.name.to_string(), labels, v)),
                SelfValue::Histogram(h) => {
                    for (i, c) in h.bucket_counts.iter().enumerate() {
                        let le = h
                            .upper_bounds
                            .get(i)
                            .map_or_else(|| "+Inf".to_string(), |b| format!("{b}"));
                        let mut l = labels.clone();
                        l.push(("le".to_string(), le));
                        out.push((format!("{}_bucket", s.name), l, *c));
                    }
                    out.push((format!("{}_sum", s.name), labels.clone(), h.sum));
                    out.push((format!("{}_count", s.name), labels, h.count));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_and_histogram() {
        let m = StatsdMetrics::new();
        m.packet(Transport::Tcp);
        m.bad_line(BadReason::UnknownType);
        m.type_conflict("x", "gauge");
        m.flush_done(0.0003);
        let flat = m.snapshot_flat();
        let find = |n: &str, l: &[(&str, &str)]| {
            flat.iter()
                .find(|(name, labels, _)| {
                    name == n
                        && l.iter()
                            .all(|(k, v)| labels.iter().any(|(a, b)| a == k && b == v))
                })
                .map(|x| x.2)
        };
        assert_eq!(
            find("statsd_packets_received_total", &[("transport", "tcp")]),
            Some(1.0)
        );
        assert_eq!(
            find("statsd_bad_lines_total", &[("reason", "unknown_type")]),
            Some(1.0)
        );
        assert_eq!(
            find("statsd_bad_lines_total", &[("reason", "too_long")]),
            Some(0.0)
        );
        assert_eq!(
            find(
                "statsd_type_conflicts_total",
                &[("family", "x"), ("type", "gauge")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find("statsd_flush_duration_seconds_bucket", &[("le", "0.00025")]),
            Some(0.0)
        );
        assert_eq!(
            find("statsd_flush_duration_seconds_bucket", &[("le", "0.0005")]),
            Some(1.0)
        );
        assert_eq!(
            find("statsd_flush_duration_seconds_bucket", &[("le", "+Inf")]),
            Some(1.0)
        );
        assert_eq!(find("statsd_flush_duration_seconds_count", &[]), Some(1.0));
    }

    #[test]
    fn family_labels_are_capped() {
        let m = StatsdMetrics::new();
        for i in 0..MAX_FAMILY_LABELS + 5 {
            m.series_limit_drop(&format!("f{i}"));
        }
        assert_eq!(m.series_limit_drops(OVERFLOW_FAMILY), 5);
    }
}
