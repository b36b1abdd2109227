//! Window aggregation (spec §4, §9, §10, §11): parsed lines in, one sample per
//! live series per flush out.
//!
//! The [`Aggregator`] is single-threaded state; the listener owns it behind a
//! mutex and the flusher takes the lock only to snapshot ([`Aggregator::flush`]
//! returns owned [`FlushSample`]s), then writes them to storage with the lock
//! released, so a slow store never stalls ingestion and ingestion never
//! delays a flush by more than one packet.
//!
//! Semantics (per series = family name + sorted labels):
//! - counter `c` → `<name>_total`: cumulative Σ value/rate since creation;
//! - gauge `g` → `<name>`: absolute, or relative when signed (`+3`, `-5`) in
//!   the default [`GaugeSign::Relative`] mode; last state at flush wins;
//! - `ms` (÷1000 → seconds), `h`, `d` → histogram `<name>` with weight 1/rate;
//! - set `s` → gauge `<name>` = distinct members in the window, then reset;
//! - new counter and histogram series also get a zero sample at T−Δ;
//! - a series idle for its TTL is dropped and a staleness marker written;
//! - a family keeps the first type seen while it has live series.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::mapping::{Mapped, MappingConfig};
use super::metrics::{SELF_METRICS, SelfKind, StatsdMetrics};
use super::parse::{self, Line, LineParser, MetricType, Parsed, Value, escape_name_into};
use crate::model::{HistogramSample, Labels, METRIC_NAME, stale_nan};
use crate::storage::{AppendError, Appender};

/// Default histogram bounds (spec §10): Prometheus `DefBuckets` extended so
/// unitless `h`/`d` values sent in milliseconds stay out of `+Inf`.
pub const DEFAULT_BUCKETS: [f64; 20] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0,
    1000.0, 2500.0, 5000.0, 10000.0,
];

/// How signed gauge values are read (spec §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GaugeSign {
    /// etsy/statsd_exporter: a leading `+`/`-` adds to the current value.
    #[default]
    Relative,
    /// DogStatsD: every value sets the gauge.
    Absolute,
}

/// Aggregation settings. `Default` is the spec's default configuration.
#[derive(Clone, Debug)]
pub struct AggregatorConfig {
    /// Δ, the flush interval: zero samples of new series go at T−Δ.
    pub flush_interval: Duration,
    /// Idle TTL after which a series is dropped (zero = never).
    pub idle_ttl: Duration,
    /// Per-type TTL overrides: counter, gauge, histogram, set.
    pub idle_ttl_by_type: [Option<Duration>; 4],
    /// Signed gauge semantics.
    pub gauge_sign: GaugeSign,
    /// Suffix appended to counter families unless already present.
    pub counter_suffix: String,
    /// Histogram bounds for series without a mapping override.
    pub buckets: Arc<[f64]>,
    /// Cap on live series overall (0 = unlimited).
    pub max_series: usize,
    /// Cap on live series per family (0 = unlimited).
    pub max_series_per_family: usize,
    /// Distinct members a set counts per window before overflowing.
    pub max_set_members: usize,
    /// Add the DogStatsD `|c:` container id as label `container_id`.
    pub container_id_label: bool,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            flush_interval: Duration::from_secs(10),
            idle_ttl: Duration::from_secs(300),
            idle_ttl_by_type: [None; 4],
            gauge_sign: GaugeSign::Relative,
            counter_suffix: "_total".to_string(),
            buckets: Arc::from(&DEFAULT_BUCKETS[..]),
            max_series: 1_000_000,
            max_series_per_family: 100_000,
            max_set_members: 100_000,
            container_id_label: false,
        }
    }
}

/// Prometheus-side kind of a family; the index matches `LIVE_TYPES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
    Set = 3,
}

impl Kind {
    fn of(t: MetricType) -> Kind {
        match t {
            MetricType::Counter => Kind::Counter,
            MetricType::Gauge => Kind::Gauge,
            MetricType::Set => Kind::Set,
            _ => Kind::Histogram,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Set => "set",
        }
    }
}

#[derive(Debug)]
enum State {
    Counter(f64),
    Gauge(f64),
    Histogram {
        bounds: Arc<[f64]>,
        /// Non-cumulative weight per bucket (last = above every bound).
        counts: Vec<f64>,
        sum: f64,
    },
    Set(HashSet<Box<str>>),
}

#[derive(Debug)]
struct Series {
    labels: Labels,
    family: Box<str>,
    kind: Kind,
    state: State,
    last_update_ms: i64,
    ttl_ms: i64,
    /// Not flushed yet: counters and histograms get a zero sample first.
    fresh: bool,
}

#[derive(Debug)]
struct Family {
    kind: Kind,
    live: usize,
    names: Vec<Box<str>>,
}

/// One sample produced by a flush, ready for an [`Appender`].
#[derive(Clone, Debug, PartialEq)]
pub enum FlushSample {
    /// A counter, gauge or set value (or a float staleness marker).
    Float {
        /// Series labels including `__name__`.
        labels: Labels,
        /// The family's type: `"counter"`, `"gauge"` or `"set"` (the `type`
        /// label of `statsd_type_conflicts_total`).
        kind: &'static str,
        /// Timestamp (ms).
        t: i64,
        /// Value.
        v: f64,
    },
    /// A histogram value (or staleness marker).
    Histogram {
        /// Series labels; `__name__` is the family name.
        labels: Labels,
        /// Timestamp (ms).
        t: i64,
        /// Cumulative buckets, sum, count.
        h: HistogramSample,
    },
}

impl FlushSample {
    /// The series labels.
    pub fn labels(&self) -> &Labels {
        match self {
            FlushSample::Float { labels, .. } | FlushSample::Histogram { labels, .. } => labels,
        }
    }
    /// The timestamp (ms).
    pub fn t(&self) -> i64 {
        match self {
            FlushSample::Float { t, .. } | FlushSample::Histogram { t, .. } => *t,
        }
    }

    /// The family's type label: `"counter"`, `"gauge"`, `"set"` or
    /// `"histogram"`.
    pub fn kind(&self) -> &'static str {
        match self {
            FlushSample::Float { kind, .. } => kind,
            FlushSample::Histogram { .. } => Kind::Histogram.label(),
        }
    }

    /// Buffers the sample in `app`.
    pub fn append_to(&self, app: &mut dyn Appender) -> Result<(), AppendError> {
        match self {
            FlushSample::Float { labels, t, v, .. } => app.append(labels, *t, *v),
            FlushSample::Histogram { labels, t, h } => app.append_histogram(labels, *t, h),
        }
    }
}

/// A flush was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushError {
    /// Flush timestamps must strictly increase.
    #[error(
        "cannot flush at {t} ms: the previous flush was at {previous} ms (timestamps must increase)"
    )]
    NotAfterPrevious {
        /// Requested time (ms).
        t: i64,
        /// Last flush time (ms).
        previous: i64,
    },
}

const SELF_OWNER: &str = "<statsd self-metrics>";
/// Entries in the mapping cache before it is cleared (bounds memory when
/// names are unbounded, e.g. ids embedded in names).
const MAPPING_CACHE_MAX: usize = 100_000;
/// Bad lines logged per minute; the rest are only counted.
const BAD_LINE_LOGS_PER_MINUTE: u32 = 10;

type MapCacheEntry = [Option<Option<Arc<Mapped>>>; 4];

/// Window aggregation state. See the module docs for semantics.
#[derive(Debug)]
pub struct Aggregator {
    cfg: AggregatorConfig,
    mapping: Option<Arc<MappingConfig>>,
    map_cache: HashMap<Box<str>, MapCacheEntry>,
    metrics: Arc<StatsdMetrics>,
    series: HashMap<Box<str>, Series>,
    families: HashMap<Box<str>, Family>,
    /// Every occupied series name (family names and histogram views) → owner.
    owners: HashMap<Box<str>, Box<str>>,
    /// Series keys whose staleness marker was written at the given time.
    tombstones: HashMap<Box<str>, i64>,
    live_total: usize,
    last_flush_t: Option<i64>,
    bad_log_minute: i64,
    bad_logged: u32,
    key_buf: String,
    parser: LineParser,
}

/// Scratch labels of one line: (name, value) before sorting.
type LabelPairs<'x> = Vec<(&'x str, &'x str)>;

impl Aggregator {
    /// A new aggregator. `mapping` rules are applied in order; its
    /// `defaults` (TTL, buckets) override `cfg` when set.
    pub fn new(
        mut cfg: AggregatorConfig,
        mapping: Option<Arc<MappingConfig>>,
        metrics: Arc<StatsdMetrics>,
    ) -> Self {
        if let Some(m) = &mapping {
            if let Some(t) = m.default_ttl() {
                cfg.idle_ttl = t;
            }
            if let Some(b) = m.default_buckets() {
                cfg.buckets = b;
            }
        }
        let mut owners = HashMap::new();
        for (name, kind, _) in SELF_METRICS {
            owners.insert(Box::from(*name), Box::from(SELF_OWNER));
            if *kind == SelfKind::Histogram {
                for suf in ["_bucket", "_sum", "_count"] {
                    owners.insert(format!("{name}{suf}").into(), Box::from(SELF_OWNER));
                }
            }
        }
        Aggregator {
            cfg,
            mapping: mapping.filter(|m| !m.is_empty()),
            map_cache: HashMap::new(),
            metrics,
            series: HashMap::new(),
            families: HashMap::new(),
            owners,
            tombstones: HashMap::new(),
            live_total: 0,
            last_flush_t: None,
            bad_log_minute: i64::MIN,
            bad_logged: 0,
            key_buf: String::new(),
            parser: LineParser::new(),
        }
    }

    /// Replaces the mapping rules (on reload). Existing series keep their
    /// names, bounds and TTL; new lines use the new rules.
    pub fn set_mapping(&mut self, mapping: Option<Arc<MappingConfig>>) {
        self.mapping = mapping.filter(|m| !m.is_empty());
        self.map_cache.clear();
    }

    /// The shared self-metrics.
    pub fn metrics(&self) -> &Arc<StatsdMetrics> {
        &self.metrics
    }

    /// Live series held.
    pub fn live_series(&self) -> usize {
        self.live_total
    }

    /// Parses and applies every line of one datagram (or TCP chunk) received
    /// at `now_ms`, counting lines, samples, bad lines, events.
    pub fn ingest(&mut self, buf: &[u8], now_ms: i64) {
        let (mut lines, mut samples, mut tag_errors, mut unknown) = (0u64, 0u64, 0u64, 0u64);
        for raw in parse::lines(buf) {
            lines += 1;
            match self.parser.parse(raw) {
                Ok(Parsed::Metric(line)) => {
                    samples += line.samples.as_slice().len() as u64;
                    tag_errors += u64::from(line.tag_errors);
                    unknown += u64::from(line.unknown_fields);
                    self.apply(&line, now_ms);
                    self.parser.recycle(line);
                }
                Ok(Parsed::Event) => {
                    self.metrics.events_ignored.fetch_add(1, RELAXED);
                }
                Ok(Parsed::ServiceCheck) => {
                    self.metrics.service_checks_ignored.fetch_add(1, RELAXED);
                }
                Err(reason) => {
                    self.metrics.bad_line(reason);
                    self.log_bad_line(raw, reason, now_ms);
                }
            }
        }
        let m = &self.metrics;
        m.samples_received.fetch_add(samples, RELAXED);
        m.tag_errors.fetch_add(tag_errors, RELAXED);
        m.unknown_fields.fetch_add(unknown, RELAXED);
        // Last: tests wait on this counter, so everything above is visible.
        m.lines_received.fetch_add(lines, RELAXED);
    }

    fn log_bad_line(&mut self, raw: &[u8], reason: parse::BadReason, now_ms: i64) {
        let minute = now_ms.div_euclid(60_000);
        if minute != self.bad_log_minute {
            self.bad_log_minute = minute;
            self.bad_logged = 0;
        }
        if self.bad_logged < BAD_LINE_LOGS_PER_MINUTE {
            self.bad_logged += 1;
            let shown = String::from_utf8_lossy(&raw[..raw.len().min(200)]);
            tracing::warn!(reason = reason.as_str(), line = %shown, "statsd: bad line dropped");
        }
    }

    fn mapped(&mut self, name: &str, t: MetricType) -> Option<Arc<Mapped>> {
        let mapping = self.mapping.as_ref()?;
        let slot = Kind::of(t) as usize;
        if let Some(entry) = self.map_cache.get(name)
            && let Some(hit) = &entry[slot]
        {
            return hit.clone();
        }
        let result = mapping.map(name, t).map(Arc::new);
        if self.map_cache.len() >= MAPPING_CACHE_MAX {
            self.map_cache.clear();
        }
        self.map_cache.entry(Box::from(name)).or_default()[slot] = Some(result.clone());
        result
    }

    /// Applies one good line received at `now_ms`.
    pub fn apply(&mut self, line: &Line<'_>, now_ms: i64) {
        let samples = line.samples.as_slice();
        let mut i = 0;
        while i < samples.len() {
            let t = samples[i].kind;
            let run = samples[i..].iter().take_while(|s| s.kind == t).count();
            self.apply_run(line, &samples[i..i + run], now_ms);
            i += run;
        }
    }

    /// Applies consecutive samples of one type (same series).
    fn apply_run(&mut self, line: &Line<'_>, samples: &[parse::Sample<'_>], now_ms: i64) {
        let t = samples[0].kind;
        let kind = Kind::of(t);
        let mapped = self.mapped(&line.name, t);
        if mapped.as_ref().is_some_and(|m| m.drop) {
            self.metrics.mapping_drops.fetch_add(1, RELAXED);
            return;
        }
        let mut key = std::mem::take(&mut self.key_buf);
        key.clear();
        match mapped.as_ref().and_then(|m| m.name.as_deref()) {
            Some(n) => key.push_str(n),
            None => escape_name_into(&line.name, &mut key),
        }
        if kind == Kind::Counter
            && !self.cfg.counter_suffix.is_empty()
            && !key.ends_with(&self.cfg.counter_suffix)
        {
            key.push_str(&self.cfg.counter_suffix);
        }
        let family_len = key.len();
        let labels = line_labels(line, mapped.as_deref(), kind, self.cfg.container_id_label);
        for (k, v) in &labels {
            key.push('\u{0}');
            key.push_str(k);
            key.push('\u{1}');
            key.push_str(v);
        }
        let scale = mapped.as_ref().and_then(|m| m.scale).unwrap_or(1.0);
        if !self.series.contains_key(key.as_str())
            && !self.create_series(&key, family_len, &labels, kind, mapped.as_deref(), now_ms)
        {
            self.key_buf = key;
            return;
        }
        let gauge_sign = self.cfg.gauge_sign;
        let max_members = self.cfg.max_set_members;
        let Some(series) = self.series.get_mut(key.as_str()) else {
            self.key_buf = key;
            return;
        };
        if series.kind != kind {
            // Same family and labels, other type (counter `x` vs gauge `x_total`).
            self.metrics.type_conflict(&key[..family_len], kind.label());
            self.key_buf = key;
            return;
        }
        series.last_update_ms = now_ms;
        for s in samples {
            match (&mut series.state, s.value) {
                (State::Counter(total), Value::Number { v, .. }) => *total += v * scale / s.rate,
                (State::Gauge(g), Value::Number { v, signed }) => {
                    if signed && gauge_sign == GaugeSign::Relative {
                        *g += v * scale;
                    } else {
                        *g = v * scale;
                    }
                }
                (
                    State::Histogram {
                        bounds,
                        counts,
                        sum,
                    },
                    Value::Number { v, .. },
                ) => {
                    // IEEE division, not ×0.001 (spec §4.3).
                    let x = if t == MetricType::Timer {
                        v / 1000.0
                    } else {
                        v
                    } * scale;
                    let w = 1.0 / s.rate;
                    let i = bounds.partition_point(|&b| b < x);
                    counts[i] += w;
                    *sum += x * w;
                }
                (State::Set(members), Value::Member(m)) if !members.contains(m) => {
                    if members.len() >= max_members {
                        self.metrics.set_overflow.fetch_add(1, RELAXED);
                    } else {
                        members.insert(Box::from(m));
                    }
                }
                // A member already in the set; the parser never pairs a set
                // with a number or the reverse.
                _ => {}
            }
        }
        self.key_buf = key;
    }

    /// Registers a new series if type ownership and limits allow.
    fn create_series(
        &mut self,
        key: &str,
        family_len: usize,
        labels: &LabelPairs<'_>,
        kind: Kind,
        mapped: Option<&Mapped>,
        now_ms: i64,
    ) -> bool {
        let family = &key[..family_len];
        match self.families.get(family) {
            Some(f) if f.kind != kind => {
                self.metrics.type_conflict(family, kind.label());
                return false;
            }
            Some(_) => {}
            None => {
                let names = family_names(family, kind);
                if names.iter().any(|n| self.owners.contains_key(n.as_ref())) {
                    self.metrics.type_conflict(family, kind.label());
                    return false;
                }
            }
        }
        let family_live = self.families.get(family).map_or(0, |f| f.live);
        if (self.cfg.max_series > 0 && self.live_total >= self.cfg.max_series)
            || (self.cfg.max_series_per_family > 0 && family_live >= self.cfg.max_series_per_family)
        {
            self.metrics.series_limit_drop(family);
            return false;
        }
        if !self.families.contains_key(family) {
            let names = family_names(family, kind);
            for n in &names {
                self.owners.insert(n.clone(), Box::from(family));
            }
            self.families.insert(
                Box::from(family),
                Family {
                    kind,
                    live: 0,
                    names,
                },
            );
        }
        if let Some(f) = self.families.get_mut(family) {
            f.live += 1;
        }
        self.live_total += 1;
        self.metrics.live_series_add(kind as usize, 1);

        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
        pairs.push((METRIC_NAME, family));
        pairs.extend(labels.iter().copied());
        let state = match kind {
            Kind::Counter => State::Counter(0.0),
            Kind::Gauge => State::Gauge(0.0),
            Kind::Set => State::Set(HashSet::new()),
            Kind::Histogram => {
                let bounds = mapped
                    .and_then(|m| m.buckets.clone())
                    .unwrap_or_else(|| self.cfg.buckets.clone());
                State::Histogram {
                    counts: vec![0.0; bounds.len() + 1],
                    bounds,
                    sum: 0.0,
                }
            }
        };
        let ttl = mapped
            .and_then(|m| m.ttl)
            .or(self.cfg.idle_ttl_by_type[kind as usize])
            .unwrap_or(self.cfg.idle_ttl);
        self.series.insert(
            Box::from(key),
            Series {
                labels: Labels::from_pairs(pairs),
                family: Box::from(family),
                kind,
                state,
                last_update_ms: now_ms,
                ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
                fresh: true,
            },
        );
        true
    }

    /// Closes the window ending at `t` (ms): one sample per live series, zero
    /// samples for new counters and histograms, staleness markers for series
    /// idle past their TTL (which are then forgotten). Sets are reset.
    pub fn flush(&mut self, t: i64) -> Result<Vec<FlushSample>, FlushError> {
        if let Some(previous) = self.last_flush_t
            && t <= previous
        {
            return Err(FlushError::NotAfterPrevious { t, previous });
        }
        self.last_flush_t = Some(t);
        let delta = i64::try_from(self.cfg.flush_interval.as_millis()).unwrap_or(i64::MAX);
        let mut out = Vec::with_capacity(self.series.len() + 8);
        let Aggregator {
            series,
            families,
            owners,
            tombstones,
            metrics,
            live_total,
            ..
        } = self;
        series.retain(|key, s| {
            if s.ttl_ms > 0 && t.saturating_sub(s.last_update_ms) >= s.ttl_ms {
                match &s.state {
                    State::Histogram { bounds, .. } => out.push(FlushSample::Histogram {
                        labels: s.labels.clone(),
                        t,
                        h: HistogramSample::stale(bounds.clone()),
                    }),
                    _ => out.push(FlushSample::Float {
                        labels: s.labels.clone(),
                        kind: s.kind.label(),
                        t,
                        v: stale_nan(),
                    }),
                }
                tombstones.insert(key.clone(), t);
                *live_total -= 1;
                metrics.live_series_add(s.kind as usize, -1);
                if let Some(f) = families.get_mut(&s.family) {
                    f.live -= 1;
                    if f.live == 0 {
                        for n in &f.names {
                            owners.remove(n);
                        }
                        families.remove(&s.family);
                    }
                }
                return false;
            }
            if s.fresh && matches!(s.kind, Kind::Counter | Kind::Histogram) {
                let mut z = t.saturating_sub(delta);
                if let Some(&stale_t) = tombstones.get(key) {
                    z = z.max(stale_t + 1);
                }
                if z < t {
                    out.push(zero_sample(s, z));
                }
            }
            s.fresh = false;
            out.push(current_sample(s, t));
            if let State::Set(m) = &mut s.state {
                m.clear();
            }
            true
        });
        tombstones.retain(|_, &mut st| st > t.saturating_sub(delta));
        Ok(out)
    }
}

const RELAXED: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Relaxed;

/// The names a family occupies: histograms reserve their views.
fn family_names(family: &str, kind: Kind) -> Vec<Box<str>> {
    let mut v = vec![Box::from(family)];
    if kind == Kind::Histogram {
        for suf in ["_bucket", "_sum", "_count"] {
            v.push(format!("{family}{suf}").into());
        }
    }
    v
}

/// The final label pairs of a line (without `__name__`), sorted and unique:
/// tags (in wire order from the parser; of a repeated key the last wins,
/// kept so by the stable sort and `dedup_by` below), mapping labels (rule
/// wins unless `honor_labels`), container id, and `le` renamed
/// `exported_le` on histograms.
fn line_labels<'x>(
    line: &'x Line<'_>,
    mapped: Option<&'x Mapped>,
    kind: Kind,
    container_label: bool,
) -> LabelPairs<'x> {
    let mut v: LabelPairs<'x> = Vec::with_capacity(line.tags.len());
    let rule_labels = mapped.map_or(&[][..], |m| &m.labels[..]);
    let honor = mapped.is_some_and(|m| m.honor_labels);
    if !honor {
        v.extend(line.tags.iter().map(|(k, val)| (k.as_ref(), *val)));
    }
    for (k, val) in rule_labels {
        v.retain(|(a, _)| a != k);
        v.push((k.as_str(), val.as_str()));
    }
    if honor {
        for (k, val) in &line.tags {
            v.retain(|(a, _)| a != k);
            v.push((k.as_ref(), *val));
        }
    }
    if container_label
        && let Some(c) = line.container_id
        && !c.is_empty()
    {
        v.retain(|(a, _)| *a != "container_id");
        v.push(("container_id", c));
    }
    if kind == Kind::Histogram {
        for p in v.iter_mut() {
            if p.0 == "le" {
                p.0 = "exported_le";
            }
        }
    }
    v.retain(|(_, val)| !val.is_empty());
    if v.len() > 1 {
        v.sort_by(|a, b| a.0.cmp(b.0));
        v.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                *earlier = *later;
                true
            } else {
                false
            }
        });
    }
    v
}

fn zero_sample(s: &Series, t: i64) -> FlushSample {
    match &s.state {
        State::Histogram { bounds, .. } => FlushSample::Histogram {
            labels: s.labels.clone(),
            t,
            h: HistogramSample {
                upper_bounds: bounds.clone(),
                bucket_counts: vec![0.0; bounds.len() + 1],
                sum: 0.0,
                count: 0.0,
            },
        },
        _ => FlushSample::Float {
            labels: s.labels.clone(),
            kind: s.kind.label(),
            t,
            v: 0.0,
        },
    }
}

fn current_sample(s: &Series, t: i64) -> FlushSample {
    let labels = s.labels.clone();
    match &s.state {
        State::Counter(v) | State::Gauge(v) => FlushSample::Float {
            labels,
            kind: s.kind.label(),
            t,
            v: *v,
        },
        State::Set(m) => FlushSample::Float {
            labels,
            kind: s.kind.label(),
            t,
            v: m.len() as f64,
        },
        State::Histogram {
            bounds,
            counts,
            sum,
        } => {
            let mut cum = 0.0;
            let bucket_counts = counts
                .iter()
                .map(|c| {
                    cum += c;
                    cum
                })
                .collect();
            FlushSample::Histogram {
                labels,
                t,
                h: HistogramSample {
                    upper_bounds: bounds.clone(),
                    bucket_counts,
                    sum: *sum,
                    // The `+Inf` bucket, so count and buckets agree exactly.
                    count: cum,
                },
            }
        }
    }
}
