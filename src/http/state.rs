//! Shared server state: the storage backend (set once the WAL is replayed),
//! the query engine, limits, metadata seen on imports, and metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::error::ApiError;
use super::metrics::ServerMetrics;
use crate::ingest::statsd::StatsdHandle;
use crate::ingest::text::{Entry, MetricType};
use crate::model::Clock;
use crate::storage::{Appendable, Querier, StorageError};

/// Head statistics for `/api/v1/status/tsdb` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeadStats {
    /// Series in the head.
    pub num_series: u64,
    /// Chunks in the head.
    pub chunk_count: u64,
    /// Oldest head sample (ms), if any.
    pub min_time: Option<i64>,
    /// Newest head sample (ms), if any.
    pub max_time: Option<i64>,
}

/// One sample exported on `/metrics` by a component read at scrape time
/// (storage's `watchpost_tsdb_*`, rule groups, alert delivery).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// Full metric name (counters without the `_total` suffix, which the
    /// encoder adds).
    pub name: String,
    /// Label pairs; samples of one name must all use the same label names.
    pub labels: Vec<(String, String)>,
    /// Help text.
    pub help: String,
    /// Counter (monotonic) or gauge.
    pub counter: bool,
    /// Current value.
    pub value: f64,
}

/// What the HTTP layer needs from storage beyond the seam traits.
pub trait Backend: Send + Sync + 'static {
    /// The write side.
    fn appendable(&self) -> &dyn Appendable;
    /// The read side.
    fn querier(&self) -> &dyn Querier;
    /// Writes a consistent snapshot under `<data>/snapshots/<name>/` and
    /// returns `<name>`. With `skip_head` the in-memory head is left out.
    fn snapshot(&self, skip_head: bool) -> Result<String, StorageError>;
    /// Head statistics.
    fn head_stats(&self) -> HeadStats;
    /// Storage metrics for `/metrics`, read at scrape time.
    fn metrics(&self) -> Vec<MetricSample>;
}

/// Metadata for one metric family, from `# TYPE`/`# HELP` lines of imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMetadata {
    /// `counter`, `gauge`, `histogram`, `summary`, `untyped` or `unknown`.
    pub kind: String,
    /// Help text (may be empty).
    pub help: String,
}

/// Static server facts for `/api/v1/status/*`.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// Process start (ms).
    pub start_time_ms: i64,
    /// Working directory.
    pub cwd: String,
    /// Retention as configured, printed (`15d`, `10GiB`, ...).
    pub storage_retention: String,
    /// When the config was (last) loaded (ms).
    pub last_config_time_ms: i64,
}

/// Everything handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    backend: Arc<OnceLock<Arc<dyn Backend>>>,
    /// Time source for default timestamps (imports, `time` defaults).
    pub clock: Arc<dyn Clock>,
    /// Metrics registry and the server's own metrics.
    pub metrics: Arc<ServerMetrics>,
    /// Largest accepted import body (bytes, after decompression).
    pub import_body_limit: usize,
    /// Whether `/api/v1/admin/*` is enabled (`--web.enable-admin-api`).
    pub admin_api: bool,
    /// Metadata seen on imports since start (not persisted).
    pub metadata: Arc<RwLock<BTreeMap<String, FamilyMetadata>>>,
    /// Server facts.
    pub info: Arc<ServerInfo>,
    /// The query side (engine and limits).
    pub query: Arc<super::query::QueryConfig>,
    /// The StatsD door, when enabled (set once it has started).
    statsd: Arc<OnceLock<StatsdHandle>>,
    rules: Arc<OnceLock<Arc<crate::rules::RuleManager>>>,
    reloader: Arc<OnceLock<Arc<crate::rules::reload::Reloader>>>,
    /// The push doors (remote write, Pushgateway, OTLP).
    pub push: Arc<super::push::PushState>,
}

impl AppState {
    /// State with no storage yet; `/-/ready` answers 503 until
    /// [`AppState::set_backend`] is called.
    pub fn new(
        clock: Arc<dyn Clock>,
        metrics: Arc<ServerMetrics>,
        query: super::query::QueryConfig,
        info: ServerInfo,
    ) -> Self {
        let backend: Arc<OnceLock<Arc<dyn Backend>>> = Arc::new(OnceLock::new());
        metrics.attach_backend(backend.clone());
        AppState {
            backend,
            clock,
            metrics,
            import_body_limit: 64 << 20,
            admin_api: false,
            metadata: Arc::new(RwLock::new(BTreeMap::new())),
            info: Arc::new(info),
            query: Arc::new(query),
            statsd: Arc::new(OnceLock::new()),
            rules: Arc::new(OnceLock::new()),
            reloader: Arc::new(OnceLock::new()),
            push: Arc::new(super::push::PushState::default()),
        }
    }

    /// Makes the StatsD door reachable (forced flush, self-metrics on
    /// `/metrics`). A second call is ignored.
    pub fn set_statsd(&self, h: StatsdHandle) {
        let _ = self.statsd.set(h);
    }

    /// The StatsD door, if enabled and started.
    pub fn statsd(&self) -> Option<&StatsdHandle> {
        self.statsd.get()
    }

    /// Makes the running rule manager visible to `/api/v1/rules` and
    /// `/api/v1/alerts` (which list nothing before). A second call is ignored.
    pub fn set_rules(&self, m: Arc<crate::rules::RuleManager>) {
        let _ = self.rules.set(m);
    }

    /// Enables `/-/reload` and the reload status in runtimeinfo and
    /// `/metrics`. A second call is ignored.
    pub fn set_reloader(&self, r: Arc<crate::rules::reload::Reloader>) {
        self.metrics.rule_sources.set_reloader(r.clone());
        let _ = self.reloader.set(r);
    }

    /// The rule reloader, once rules run.
    pub fn reloader(&self) -> Option<&Arc<crate::rules::reload::Reloader>> {
        self.reloader.get()
    }

    /// The rule manager, once started.
    pub fn rules(&self) -> Option<&Arc<crate::rules::RuleManager>> {
        self.rules.get()
    }

    /// Makes storage available (call once the WAL is replayed). A second
    /// call is ignored.
    pub fn set_backend(&self, b: Arc<dyn Backend>) {
        let _ = self.backend.set(b);
    }

    /// True once storage is available.
    pub fn is_ready(&self) -> bool {
        self.backend.get().is_some()
    }

    /// The backend, or `unavailable` while the WAL is being replayed.
    pub fn backend(&self) -> Result<Arc<dyn Backend>, ApiError> {
        self.backend.get().cloned().ok_or_else(ApiError::not_ready)
    }

    /// Records `# TYPE`/`# HELP` from an import.
    pub fn record_metadata(&self, entries: &[Entry]) {
        let mut any = false;
        for e in entries {
            any |= matches!(e, Entry::Help { .. } | Entry::Type { .. });
        }
        if !any {
            return;
        }
        let mut md = self.metadata.write();
        for e in entries {
            match e {
                Entry::Type { name, kind } => {
                    let m = md.entry(name.clone()).or_insert_with(|| FamilyMetadata {
                        kind: "unknown".into(),
                        help: String::new(),
                    });
                    m.kind = match kind {
                        MetricType::Untyped => "unknown".into(),
                        k => k.as_str().into(),
                    };
                }
                Entry::Help { name, text } => {
                    let m = md.entry(name.clone()).or_insert_with(|| FamilyMetadata {
                        kind: "unknown".into(),
                        help: String::new(),
                    });
                    m.help = text.clone();
                }
                Entry::Sample(_) => {}
            }
        }
    }
}
