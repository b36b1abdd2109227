//! Pushed metric families (plain data) and the delimited protobuf decoder.

use prost::Message;

use super::PushError;
use super::pb;
use crate::ingest::remote_write::{is_valid_label_name, is_valid_metric_name};

/// Type of a pushed family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FamilyKind {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `untyped` (also used for the text format's `unknown`)
    Untyped,
    /// `summary`
    Summary,
    /// `histogram`
    Histogram,
    /// `gaugehistogram`
    GaugeHistogram,
}

impl FamilyKind {
    /// Lower-case name as in the text format's `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyKind::Counter => "counter",
            FamilyKind::Gauge => "gauge",
            FamilyKind::Untyped => "untyped",
            FamilyKind::Summary => "summary",
            FamilyKind::Histogram => "histogram",
            FamilyKind::GaugeHistogram => "gaugehistogram",
        }
    }

    /// Stable one-byte code (used by the persistence file).
    pub(crate) fn code(self) -> u8 {
        match self {
            FamilyKind::Counter => 0,
            FamilyKind::Gauge => 1,
            FamilyKind::Summary => 2,
            FamilyKind::Untyped => 3,
            FamilyKind::Histogram => 4,
            FamilyKind::GaugeHistogram => 5,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<FamilyKind> {
        Some(match c {
            0 => FamilyKind::Counter,
            1 => FamilyKind::Gauge,
            2 => FamilyKind::Summary,
            3 => FamilyKind::Untyped,
            4 => FamilyKind::Histogram,
            5 => FamilyKind::GaugeHistogram,
            _ => return None,
        })
    }
}

/// The value of one pushed metric.
#[derive(Debug, Clone, PartialEq)]
pub enum PushedValue {
    /// Counter, gauge or untyped value.
    Single(f64),
    /// Summary: count, sum and `(quantile, value)` pairs.
    Summary {
        /// Observation count.
        count: f64,
        /// Observation sum.
        sum: f64,
        /// `(quantile, value)`, in pushed order.
        quantiles: Vec<(f64, f64)>,
    },
    /// Histogram: count, sum and `(upper_bound, cumulative_count)` buckets
    /// (a `+Inf` bucket may or may not be present; `count` is authoritative).
    Histogram {
        /// Observation count (the `+Inf` bucket).
        count: f64,
        /// Observation sum.
        sum: f64,
        /// `(upper_bound, cumulative_count)`, ascending bounds.
        buckets: Vec<(f64, f64)>,
    },
}

/// One pushed metric: its labels (without `__name__`) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedMetric {
    /// Label pairs, sorted by name, unique, no empty values.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: PushedValue,
    /// Timestamp given by the pusher (ms); pushes carrying one are refused,
    /// as Pushgateway 1.x does.
    pub timestamp_ms: Option<i64>,
}

/// One pushed metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedFamily {
    /// Family name (for histograms and summaries, without suffixes).
    pub name: String,
    /// Help text (may be empty).
    pub help: String,
    /// Type.
    pub kind: FamilyKind,
    /// Metrics of the family.
    pub metrics: Vec<PushedMetric>,
}

impl PushedFamily {
    /// Checks names and value shapes; the error names the metric.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !is_valid_metric_name(&self.name) {
            return Err(format!("invalid metric name {:?}", self.name));
        }
        for m in &self.metrics {
            for w in m.labels.windows(2) {
                if w[0].0 >= w[1].0 {
                    return Err(format!(
                        "metric {}: labels not sorted or duplicate label {:?}",
                        self.name, w[1].0
                    ));
                }
            }
            for (n, _) in &m.labels {
                if !is_valid_label_name(n) || n.starts_with("__") {
                    return Err(format!("metric {}: invalid label name {n:?}", self.name));
                }
            }
            let shape_ok = matches!(
                (self.kind, &m.value),
                (
                    FamilyKind::Counter | FamilyKind::Gauge | FamilyKind::Untyped,
                    PushedValue::Single(_)
                ) | (FamilyKind::Summary, PushedValue::Summary { .. })
                    | (
                        FamilyKind::Histogram | FamilyKind::GaugeHistogram,
                        PushedValue::Histogram { .. }
                    )
            );
            if !shape_ok {
                return Err(format!(
                    "metric {} of type {} has a value of another type",
                    self.name,
                    self.kind.as_str()
                ));
            }
            if let PushedValue::Histogram { buckets, .. } = &m.value
                && !buckets.windows(2).all(|w| w[0].0 < w[1].0)
            {
                return Err(format!(
                    "histogram {}: bucket bounds not strictly increasing",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// Decodes a varint length-delimited stream of `io.prometheus.client.MetricFamily`
/// messages (`Content-Type: application/vnd.google.protobuf;
/// proto=io.prometheus.client.MetricFamily; encoding=delimited`).
pub fn decode_delimited(body: &[u8]) -> Result<Vec<PushedFamily>, PushError> {
    let mut out = Vec::new();
    let mut buf = body;
    while !buf.is_empty() {
        let offset = body.len() - buf.len();
        let bad = |reason: String| PushError::BadBody {
            format: "protobuf",
            offset,
            reason,
        };
        let len = prost::encoding::decode_varint(&mut buf)
            .map_err(|e| bad(format!("bad length prefix: {e}")))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= buf.len())
            .ok_or_else(|| {
                bad(format!(
                    "message length {len} exceeds the {} remaining bytes",
                    buf.len()
                ))
            })?;
        let (msg, rest) = buf.split_at(len);
        buf = rest;
        let mf = pb::MetricFamily::decode(msg).map_err(|e| bad(e.to_string()))?;
        out.push(convert(mf).map_err(bad)?);
    }
    Ok(out)
}

fn convert(mf: pb::MetricFamily) -> Result<PushedFamily, String> {
    let kind = match mf.r#type() {
        pb::MetricType::Counter => FamilyKind::Counter,
        pb::MetricType::Gauge => FamilyKind::Gauge,
        pb::MetricType::Summary => FamilyKind::Summary,
        pb::MetricType::Untyped => FamilyKind::Untyped,
        pb::MetricType::Histogram => FamilyKind::Histogram,
        pb::MetricType::GaugeHistogram => FamilyKind::GaugeHistogram,
    };
    let name = mf.name().to_string();
    let help = mf.help().to_string();
    let mut metrics = Vec::with_capacity(mf.metric.len());
    for m in mf.metric {
        let missing = || format!("metric {name} of type {} has no {0} value", kind.as_str());
        let value = match kind {
            FamilyKind::Counter => PushedValue::Single(m.counter.ok_or_else(missing)?.value()),
            FamilyKind::Gauge => PushedValue::Single(m.gauge.ok_or_else(missing)?.value()),
            FamilyKind::Untyped => PushedValue::Single(m.untyped.ok_or_else(missing)?.value()),
            FamilyKind::Summary => {
                let s = m.summary.ok_or_else(missing)?;
                PushedValue::Summary {
                    count: s.sample_count() as f64,
                    sum: s.sample_sum(),
                    quantiles: s
                        .quantile
                        .iter()
                        .map(|q| (q.quantile(), q.value()))
                        .collect(),
                }
            }
            FamilyKind::Histogram | FamilyKind::GaugeHistogram => {
                let h = m.histogram.ok_or_else(missing)?;
                let count = match h.sample_count_float {
                    Some(c) if h.sample_count.is_none() => c,
                    _ => h.sample_count() as f64,
                };
                PushedValue::Histogram {
                    count,
                    sum: h.sample_sum(),
                    buckets: h
                        .bucket
                        .iter()
                        .map(|b| {
                            let c = match b.cumulative_count_float {
                                Some(c) if b.cumulative_count.is_none() => c,
                                _ => b.cumulative_count() as f64,
                            };
                            (b.upper_bound(), c)
                        })
                        .collect(),
                }
            }
        };
        let mut labels: Vec<(String, String)> = m
            .label
            .iter()
            .filter(|l| !l.value().is_empty())
            .map(|l| (l.name().to_string(), l.value().to_string()))
            .collect();
        labels.sort();
        metrics.push(PushedMetric {
            labels,
            value,
            timestamp_ms: m.timestamp_ms,
        });
    }
    Ok(PushedFamily {
        name,
        help,
        kind,
        metrics,
    })
}
