//! OTLP request -> validated [`Batch`], with delta-to-cumulative state.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::ingest::remote_write::{
    Batch, BatchSeries, MetricKind, MetricMetadata, WriteOutcome, apply,
};
use crate::model::{HistogramSample, Labels, METRIC_NAME, Sample, stale_nan};
use crate::storage::Appendable;

use super::naming::{metric_name, sanitize_label_name};
use super::{OtlpEncoding, OtlpError, decode_protobuf, json, pb};

const NO_RECORDED_VALUE: u32 = 1;
const TEMPORALITY_DELTA: i32 = 1;
const TEMPORALITY_CUMULATIVE: i32 = 2;

/// Translation options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Resource attributes also copied onto every series (Prometheus's
    /// `otlp.promote_resource_attributes`), by original name.
    pub promote_resource_attributes: Vec<String>,
    /// Write `target_info` for resources with attributes beyond job/instance.
    pub target_info: bool,
    /// Most series tracked for delta-to-cumulative conversion; delta points
    /// of further series are refused as unsupported, so memory stays bounded.
    pub max_delta_series: usize,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            promote_resource_attributes: Vec::new(),
            target_info: true,
            max_delta_series: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Cumulative {
    Float(f64),
    Histogram(HistogramSample),
}

/// Decodes, translates and writes OTLP metrics; holds the delta state.
#[derive(Debug, Default)]
pub struct OtlpReceiver {
    config: OtlpConfig,
    delta: Mutex<HashMap<Labels, Cumulative>>,
}

impl OtlpReceiver {
    /// A receiver with empty delta state.
    pub fn new(config: OtlpConfig) -> Self {
        OtlpReceiver {
            config,
            delta: Mutex::new(HashMap::new()),
        }
    }

    /// Decodes `body`, translates it and writes it in one commit. Delta
    /// state only advances when the commit succeeds. Per-point refusals
    /// (too old, unsupported) are counted in the outcome.
    pub fn ingest(
        &self,
        encoding: OtlpEncoding,
        body: &[u8],
        db: &dyn Appendable,
    ) -> Result<(WriteOutcome, Vec<MetricMetadata>), OtlpError> {
        let req = match encoding {
            OtlpEncoding::Protobuf => decode_protobuf(body)?,
            OtlpEncoding::Json => json::decode_json(body)?,
        };
        if !has_delta(&req) {
            // Cumulative-only requests (the common case) need no state, so
            // they do not serialize on the delta lock.
            let (batch, _) = self.translate(&req, &HashMap::new())?;
            let outcome = apply(&batch, db)?;
            return Ok((outcome, batch.metadata));
        }
        // The lock is held across apply so concurrent delta pushes of the
        // same series accumulate in order.
        let mut state = self.delta.lock();
        let (batch, updates) = self.translate(&req, &state)?;
        let outcome = apply(&batch, db)?;
        for (l, c) in updates {
            state.insert(l, c);
        }
        Ok((outcome, batch.metadata))
    }

    /// Translates a request into a batch without writing (also used by
    /// tests and benchmarks). Returns the delta-state updates to apply
    /// after a successful commit.
    fn translate(
        &self,
        req: &pb::ExportMetricsServiceRequest,
        state: &HashMap<Labels, Cumulative>,
    ) -> Result<(Batch, HashMap<Labels, Cumulative>), OtlpError> {
        let mut t = Translator {
            config: &self.config,
            state,
            updates: HashMap::new(),
            series: BTreeMap::new(),
            batch: Batch::default(),
        };
        for rm in &req.resource_metrics {
            t.resource(rm)?;
        }
        let Translator {
            mut batch,
            series,
            updates,
            ..
        } = t;
        batch.series = series.into_values().collect();
        Ok((batch, updates))
    }
}

struct Translator<'a> {
    config: &'a OtlpConfig,
    state: &'a HashMap<Labels, Cumulative>,
    updates: HashMap<Labels, Cumulative>,
    series: BTreeMap<Labels, BatchSeries>,
    batch: Batch,
}

/// Renders an attribute value as a label value (Prometheus/pdata style).
fn any_value_string(v: Option<&pb::AnyValue>) -> String {
    use pb::any_value::Value;
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        Some(Value::ArrayValue(a)) => {
            let parts: Vec<serde_json::Value> = a
                .values
                .iter()
                .map(|x| serde_json::Value::String(any_value_string(Some(x))))
                .collect();
            serde_json::Value::Array(parts).to_string()
        }
        Some(Value::KvlistValue(kv)) => {
            let m: serde_json::Map<String, serde_json::Value> = kv
                .values
                .iter()
                .map(|x| {
                    (
                        x.key.clone(),
                        serde_json::Value::String(any_value_string(x.value.as_ref())),
                    )
                })
                .collect();
            serde_json::Value::Object(m).to_string()
        }
    }
}

/// Sanitized `(name, value)` pairs; names colliding after sanitization
/// get their values joined with `;` in attribute order (as Prometheus does).
fn attr_pairs(attrs: &[pb::KeyValue]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(attrs.len());
    for kv in attrs {
        let name = sanitize_label_name(&kv.key);
        if name.is_empty() {
            continue;
        }
        let value = any_value_string(kv.value.as_ref());
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(';');
                v.push_str(&value);
            }
            None => out.push((name, value)),
        }
    }
    out
}

fn find_attr<'a>(attrs: &'a [pb::KeyValue], key: &str) -> Option<&'a pb::KeyValue> {
    attrs.iter().find(|kv| kv.key == key)
}

fn ns_to_ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

impl Translator<'_> {
    fn resource(&mut self, rm: &pb::ResourceMetrics) -> Result<(), OtlpError> {
        let attrs: &[pb::KeyValue] = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let attr_str = |k: &str| find_attr(attrs, k).map(|kv| any_value_string(kv.value.as_ref()));
        let mut base: Vec<(String, String)> = Vec::new();
        if let Some(name) = attr_str("service.name") {
            let job = match attr_str("service.namespace") {
                Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
                _ => name,
            };
            base.push(("job".into(), job));
        }
        if let Some(inst) = attr_str("service.instance.id") {
            base.push(("instance".into(), inst));
        }
        for p in &self.config.promote_resource_attributes {
            if let Some(kv) = find_attr(attrs, p) {
                let n = sanitize_label_name(p);
                if !base.iter().any(|(b, _)| *b == n) {
                    base.push((n, any_value_string(kv.value.as_ref())));
                }
            }
        }
        let mut latest_ms: Option<i64> = None;
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                if let Some(t) = self.metric(m, &base)? {
                    latest_ms = Some(latest_ms.map_or(t, |l| l.max(t)));
                }
            }
        }
        // target_info carries the resource attributes that are not
        // identifying, once per resource, at the newest point's time.
        if self.config.target_info
            && let Some(t) = latest_ms
        {
            let skip = ["service.name", "service.namespace", "service.instance.id"];
            let rest: Vec<pb::KeyValue> = attrs
                .iter()
                .filter(|kv| !skip.contains(&kv.key.as_str()))
                .cloned()
                .collect();
            if !rest.is_empty() {
                let mut pairs = attr_pairs(&rest);
                pairs.retain(|(n, _)| n != "job" && n != "instance");
                pairs.extend(
                    base.iter()
                        .filter(|(n, _)| n == "job" || n == "instance")
                        .cloned(),
                );
                pairs.push((METRIC_NAME.into(), "target_info".into()));
                self.float(Labels::from_pairs(pairs), t, 1.0);
            }
        }
        Ok(())
    }

    fn labels(
        &self,
        name: &str,
        base: &[(String, String)],
        attrs: &[pb::KeyValue],
        extra: Option<(&str, String)>,
    ) -> Labels {
        let mut b = crate::model::LabelsBuilder::new();
        for (n, v) in attr_pairs(attrs) {
            b.set(n, v);
        }
        // Resource-derived labels win over point attributes of the same name.
        for (n, v) in base {
            b.set(n.as_str(), v.as_str());
        }
        if let Some((n, v)) = extra {
            b.set(n, v);
        }
        b.set(METRIC_NAME, name);
        b.build()
    }

    fn float(&mut self, labels: Labels, t: i64, v: f64) {
        self.series
            .entry(labels.clone())
            .or_insert_with(|| BatchSeries::floats(labels, Vec::new()))
            .samples
            .push(Sample { t, v });
    }

    fn histogram(&mut self, labels: Labels, t: i64, h: HistogramSample) {
        self.series
            .entry(labels.clone())
            .or_insert_with(|| BatchSeries::floats(labels, Vec::new()))
            .histograms
            .push((t, h));
    }

    fn previous(&self, l: &Labels) -> Option<&Cumulative> {
        self.updates.get(l).or_else(|| self.state.get(l))
    }

    fn can_track(&self, l: &Labels) -> bool {
        self.previous(l).is_some()
            || self.state.len() + self.updates.len() < self.config.max_delta_series
    }

    /// Translates one metric; returns the newest point time (ms).
    fn metric(
        &mut self,
        m: &pb::Metric,
        base: &[(String, String)],
    ) -> Result<Option<i64>, OtlpError> {
        use pb::metric::Data;
        let name = metric_name(m);
        let invalid = |reason: String| OtlpError::InvalidPoint {
            metric: m.name.clone(),
            reason,
        };
        let mut latest: Option<i64> = None;
        let mut seen = |t: i64| latest = Some(latest.map_or(t, |l: i64| l.max(t)));
        let meta = |kind| MetricMetadata {
            metric: name.clone(),
            kind,
            help: m.description.clone(),
            unit: m.unit.clone(),
        };
        match &m.data {
            None => {}
            Some(Data::Gauge(g)) => {
                self.batch.metadata.push(meta(MetricKind::Gauge));
                for p in &g.data_points {
                    let t = ns_to_ms(p.time_unix_nano);
                    seen(t);
                    let l = self.labels(&name, base, &p.attributes, None);
                    self.float(l, t, number(p));
                }
            }
            Some(Data::Sum(s)) => {
                let kind = if s.is_monotonic {
                    MetricKind::Counter
                } else {
                    MetricKind::Gauge
                };
                self.batch.metadata.push(meta(kind));
                for p in &s.data_points {
                    let t = ns_to_ms(p.time_unix_nano);
                    let l = self.labels(&name, base, &p.attributes, None);
                    match s.aggregation_temporality {
                        TEMPORALITY_CUMULATIVE => {
                            seen(t);
                            self.float(l, t, number(p));
                        }
                        TEMPORALITY_DELTA => {
                            if p.flags & NO_RECORDED_VALUE != 0 {
                                seen(t);
                                self.float(l, t, stale_nan());
                                continue;
                            }
                            if !self.can_track(&l) {
                                self.batch.unsupported += 1;
                                continue;
                            }
                            let prev = match self.previous(&l) {
                                Some(Cumulative::Float(v)) => *v,
                                _ => 0.0,
                            };
                            let v = prev + number(p);
                            self.updates.insert(l.clone(), Cumulative::Float(v));
                            seen(t);
                            self.float(l, t, v);
                        }
                        _ => self.batch.unsupported += 1,
                    }
                }
            }
            Some(Data::Histogram(h)) => {
                self.batch.metadata.push(meta(MetricKind::Histogram));
                for p in &h.data_points {
                    let t = ns_to_ms(p.time_unix_nano);
                    let l = self.labels(&name, base, &p.attributes, None);
                    let bounds = &p.explicit_bounds;
                    if bounds.iter().any(|b| !b.is_finite())
                        || !bounds.windows(2).all(|w| w[0] < w[1])
                    {
                        return Err(invalid(
                            "explicit bounds are not finite and strictly increasing".into(),
                        ));
                    }
                    let upper_bounds: Arc<[f64]> = Arc::from(bounds.as_slice());
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        seen(t);
                        self.histogram(l, t, HistogramSample::stale(upper_bounds));
                        continue;
                    }
                    if !p.bucket_counts.is_empty() && p.bucket_counts.len() != bounds.len() + 1 {
                        return Err(invalid(format!(
                            "{} bucket counts for {} explicit bounds (want {})",
                            p.bucket_counts.len(),
                            bounds.len(),
                            bounds.len() + 1
                        )));
                    }
                    let mut acc = 0.0;
                    let mut bucket_counts: Vec<f64> = if p.bucket_counts.is_empty() {
                        // No buckets: only count and sum are known.
                        let mut v = vec![0.0; bounds.len()];
                        v.push(p.count as f64);
                        v
                    } else {
                        p.bucket_counts
                            .iter()
                            .map(|c| {
                                acc += *c as f64;
                                acc
                            })
                            .collect()
                    };
                    let mut count = *bucket_counts.last().unwrap_or(&0.0);
                    // Without a sum the series has no meaningful _sum;
                    // NaN says "unknown" rather than inventing zero.
                    let mut sum = p.sum.unwrap_or(f64::NAN);
                    match h.aggregation_temporality {
                        TEMPORALITY_CUMULATIVE => {}
                        TEMPORALITY_DELTA => {
                            if !self.can_track(&l) {
                                self.batch.unsupported += 1;
                                continue;
                            }
                            if let Some(Cumulative::Histogram(prev)) = self.previous(&l)
                                && prev.upper_bounds == upper_bounds
                            {
                                for (c, pc) in bucket_counts.iter_mut().zip(&prev.bucket_counts) {
                                    *c += pc;
                                }
                                count += prev.count;
                                sum += prev.sum;
                            }
                        }
                        _ => {
                            self.batch.unsupported += 1;
                            continue;
                        }
                    }
                    let hs = HistogramSample {
                        upper_bounds,
                        bucket_counts,
                        sum,
                        count,
                    };
                    if h.aggregation_temporality == TEMPORALITY_DELTA {
                        self.updates
                            .insert(l.clone(), Cumulative::Histogram(hs.clone()));
                    }
                    seen(t);
                    self.histogram(l, t, hs);
                }
            }
            Some(Data::Summary(s)) => {
                self.batch.metadata.push(meta(MetricKind::Summary));
                for p in &s.data_points {
                    let t = ns_to_ms(p.time_unix_nano);
                    seen(t);
                    let stale = p.flags & NO_RECORDED_VALUE != 0;
                    let val = |v: f64| if stale { stale_nan() } else { v };
                    for q in &p.quantile_values {
                        let l = self.labels(
                            &name,
                            base,
                            &p.attributes,
                            Some(("quantile", q.quantile.to_string())),
                        );
                        self.float(l, t, val(q.value));
                    }
                    let l = self.labels(&format!("{name}_sum"), base, &p.attributes, None);
                    self.float(l, t, val(p.sum));
                    let l = self.labels(&format!("{name}_count"), base, &p.attributes, None);
                    self.float(l, t, val(p.count as f64));
                }
            }
            Some(Data::ExponentialHistogram(e)) => {
                self.batch.unsupported += e.data_points.len() as u64;
            }
        }
        Ok(latest)
    }
}

/// True when any sum or histogram in the request has delta temporality.
fn has_delta(req: &pb::ExportMetricsServiceRequest) -> bool {
    use pb::metric::Data;
    req.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .any(|m| match &m.data {
            Some(Data::Sum(s)) => s.aggregation_temporality == TEMPORALITY_DELTA,
            Some(Data::Histogram(h)) => h.aggregation_temporality == TEMPORALITY_DELTA,
            _ => false,
        })
}

fn number(p: &pb::NumberDataPoint) -> f64 {
    if p.flags & NO_RECORDED_VALUE != 0 {
        return stale_nan();
    }
    match p.value {
        Some(pb::number_data_point::Value::AsDouble(d)) => d,
        Some(pb::number_data_point::Value::AsInt(i)) => i as f64,
        None => 0.0,
    }
}
