//! Metric metadata received from pushers, kept for `/api/v1/metadata`.
//!
//! In memory only: senders resend metadata periodically (Prometheus every
//! minute), so a restart loses nothing that does not come back.

use std::collections::BTreeMap;

use parking_lot::RwLock;

/// Metric type as Prometheus names it in `/api/v1/metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `gaugehistogram`
    GaugeHistogram,
    /// `summary`
    Summary,
    /// `info`
    Info,
    /// `stateset`
    StateSet,
    /// `unknown`
    Unknown,
}

impl MetricKind {
    /// The lower-case name used by the Prometheus API.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::GaugeHistogram => "gaugehistogram",
            MetricKind::Summary => "summary",
            MetricKind::Info => "info",
            MetricKind::StateSet => "stateset",
            MetricKind::Unknown => "unknown",
        }
    }

    /// From the remote-write enum number (same numbering in 1.0 and 2.0).
    pub fn from_remote_write(n: i32) -> Self {
        match n {
            1 => MetricKind::Counter,
            2 => MetricKind::Gauge,
            3 => MetricKind::Histogram,
            4 => MetricKind::GaugeHistogram,
            5 => MetricKind::Summary,
            6 => MetricKind::Info,
            7 => MetricKind::StateSet,
            _ => MetricKind::Unknown,
        }
    }
}

/// Metadata of one metric family.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricMetadata {
    /// Family name (e.g. `http_requests_total`, or `http_duration_seconds`
    /// for a histogram).
    pub metric: String,
    /// Type.
    pub kind: MetricKind,
    /// Help text.
    pub help: String,
    /// Unit, often empty.
    pub unit: String,
}

/// Latest metadata per metric family, shared between handlers.
#[derive(Debug, Default)]
pub struct MetadataStore {
    // family -> distinct (kind, help, unit) entries, newest last.
    inner: RwLock<BTreeMap<String, Vec<MetricMetadata>>>,
}

impl MetadataStore {
    /// Distinct entries kept per family; senders that disagree (several
    /// Prometheus servers with different versions) are listed side by side
    /// like Prometheus does, but bounded.
    pub const MAX_PER_METRIC: usize = 4;
    /// Families kept; beyond this new families are ignored, so a hostile
    /// sender cannot grow memory without bound.
    pub const MAX_METRICS: usize = 100_000;

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records metadata entries (a repeat of a known entry is a no-op).
    pub fn record(&self, entries: &[MetricMetadata]) {
        if entries.is_empty() {
            return;
        }
        let mut m = self.inner.write();
        for e in entries {
            if e.metric.is_empty() {
                continue;
            }
            if !m.contains_key(&e.metric) && m.len() >= Self::MAX_METRICS {
                continue;
            }
            let list = m.entry(e.metric.clone()).or_default();
            if let Some(pos) = list.iter().position(|x| x == e) {
                // Move to the back: newest last.
                let x = list.remove(pos);
                list.push(x);
            } else {
                if list.len() >= Self::MAX_PER_METRIC {
                    list.remove(0);
                }
                list.push(e.clone());
            }
        }
    }

    /// Entries for `metric` (all families when `None`), family-sorted, at
    /// most `limit` families when given.
    pub fn query(&self, metric: Option<&str>, limit: Option<usize>) -> Vec<MetricMetadata> {
        let m = self.inner.read();
        let mut out = Vec::new();
        let iter: Box<dyn Iterator<Item = (&String, &Vec<MetricMetadata>)>> = match metric {
            Some(name) => Box::new(m.get_key_value(name).into_iter()),
            None => Box::new(m.iter()),
        };
        for (_, list) in iter.take(limit.unwrap_or(usize::MAX)) {
            out.extend(list.iter().cloned());
        }
        out
    }

    /// Number of families known.
    pub fn len(&self) -> usize {
        self.inner.read().len()
    }

    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
