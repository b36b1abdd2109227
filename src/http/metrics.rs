//! The server's own metrics on `/metrics` (Prometheus text format 0.0.4):
//! HTTP requests by handler and code, request durations, import counts,
//! process metrics read from `/proc/self` at scrape time, and storage
//! statistics from the [`Backend`](super::state::Backend).

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::state::{Backend, MetricSample};

/// Labels of the per-request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/api/v1/query`), not the raw path, so cardinality
    /// stays bounded.
    pub handler: String,
    /// HTTP status code.
    pub code: String,
}

/// Labels of the duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandlerLabel {
    /// The route pattern.
    pub handler: String,
}

type Backends = Arc<OnceLock<Arc<dyn Backend>>>;

/// A component's metrics, read at every scrape.
pub type MetricSource = Arc<dyn Fn() -> Vec<MetricSample> + Send + Sync>;

/// The registry plus the metrics the HTTP layer updates.
pub struct ServerMetrics {
    registry: Registry,
    /// Requests by handler and status code.
    pub requests: Family<RequestLabels, Counter>,
    /// Request durations in seconds by handler.
    pub durations: Family<HandlerLabel, Histogram>,
    /// Samples (float and histogram) written by `/api/v1/import/prometheus`.
    pub imported_samples: Counter,
    /// Import requests rejected (bad body or refused sample).
    pub import_rejections: Counter,
    backend: Arc<OnceLock<Backends>>,
    sources: Arc<parking_lot::Mutex<Vec<MetricSource>>>,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMetrics").finish_non_exhaustive()
    }
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerMetrics {
    /// A registry with every server metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "watchpost_http_requests",
            "HTTP requests by handler and status code",
            requests.clone(),
        );
        let durations = Family::<HandlerLabel, Histogram>::new_with_constructor(|| {
            // 1 ms to about 33 s.
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "watchpost_http_request_duration_seconds",
            "HTTP request latency by handler",
            durations.clone(),
        );
        let imported_samples = Counter::default();
        registry.register(
            "watchpost_import_samples",
            "Samples written through /api/v1/import/prometheus",
            imported_samples.clone(),
        );
        let import_rejections = Counter::default();
        registry.register(
            "watchpost_import_rejected_requests",
            "Import requests rejected as a whole (nothing written)",
            import_rejections.clone(),
        );
        let backend: Arc<OnceLock<Backends>> = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(ProcessCollector {
            start_time_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default(),
        }));
        let sources: Arc<parking_lot::Mutex<Vec<MetricSource>>> = Arc::default();
        registry.register_collector(Box::new(StorageCollector {
            backend: backend.clone(),
            sources: sources.clone(),
        }));
        ServerMetrics {
            registry,
            requests,
            durations,
            imported_samples,
            import_rejections,
            backend,
            sources,
        }
    }

    /// Adds a component whose metrics are read at every scrape.
    pub fn add_source(&self, source: MetricSource) {
        self.sources.lock().push(source);
    }

    pub(super) fn attach_backend(&self, b: Backends) {
        let _ = self.backend.set(b);
    }

    /// Renders the registry in text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!("cannot encode metrics: {e}");
        }
        out
    }
}

struct StorageCollector {
    backend: Arc<OnceLock<Backends>>,
    sources: Arc<parking_lot::Mutex<Vec<MetricSource>>>,
}

impl std::fmt::Debug for StorageCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageCollector")
    }
}

impl Collector for StorageCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut samples = Vec::new();
        if let Some(b) = self.backend.get().and_then(|b| b.get()) {
            let hs = b.head_stats();
            for (name, help, v) in [
                (
                    "watchpost_tsdb_head_series",
                    "Series in the head",
                    hs.num_series,
                ),
                (
                    "watchpost_tsdb_head_chunks",
                    "Chunks in the head",
                    hs.chunk_count,
                ),
            ] {
                samples.push(MetricSample {
                    name: name.into(),
                    labels: Vec::new(),
                    help: help.into(),
                    counter: false,
                    value: v as f64,
                });
            }
            samples.extend(b.metrics());
        }
        let sources: Vec<MetricSource> = self.sources.lock().clone();
        for src in sources {
            samples.extend(src());
        }
        // One descriptor per name, then one sample per label set.
        let mut by_name: std::collections::BTreeMap<String, Vec<MetricSample>> =
            std::collections::BTreeMap::new();
        for m in samples {
            by_name.entry(m.name.clone()).or_default().push(m);
        }
        for (name, ms) in by_name {
            let Some(first) = ms.first() else { continue };
            let (help, counter) = (first.help.clone(), first.counter);
            let ty = if counter {
                ConstCounter::new(0.0).metric_type()
            } else {
                ConstGauge::new(0.0).metric_type()
            };
            let mut me = encoder.encode_descriptor(&name, &help, None, ty)?;
            for m in &ms {
                let fe = me.encode_family(&m.labels)?;
                if counter {
                    ConstCounter::new(m.value).encode(fe)?;
                } else {
                    ConstGauge::new(m.value).encode(fe)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct ProcessCollector {
    start_time_s: f64,
}

/// CPU seconds, resident bytes, virtual bytes from `/proc/self`.
fn proc_stat() -> Option<(f64, f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in USER_HZ ticks, which Linux fixes at
    // 100 per second for everything it reports under /proc.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok());
    let cpu = (num(11)? + num(12)?) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|v| v * 1024.0)
    };
    Some((cpu, kb("VmRSS:")?, kb("VmSize:")?))
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let g = ConstGauge::new(self.start_time_s);
        g.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            None,
            g.metric_type(),
        )?)?;
        if let Some((cpu, rss, vsize)) = proc_stat() {
            let c = ConstCounter::new(cpu);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                c.metric_type(),
            )?)?;
            for (name, help, v) in [
                (
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    rss,
                ),
                (
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                    vsize,
                ),
            ] {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let g = ConstGauge::new(rd.count() as i64);
            g.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::text::{Entry, parse};

    #[test]
    fn renders_parsable_text() {
        let m = ServerMetrics::new();
        m.imported_samples.inc_by(3);
        m.requests
            .get_or_create(&RequestLabels {
                handler: "/-/healthy".into(),
                code: "200".into(),
            })
            .inc();
        let text = m.render();
        let entries = parse(&text).expect("our /metrics parses with our own parser");
        let has = |name: &str, v: f64| {
            entries
                .iter()
                .any(|e| matches!(e, Entry::Sample(s) if s.name == name && s.value == v))
        };
        assert!(has("watchpost_import_samples_total", 3.0), "{text}");
        assert!(has("watchpost_http_requests_total", 1.0), "{text}");
        assert!(text.contains("process_start_time_seconds"), "{text}");
    }
}
