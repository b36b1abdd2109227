//! Every route path the server answers, in one place. Handlers, the router,
//! tests and the CLI client use these constants, never string literals.

/// Liveness: 200 as soon as the process serves HTTP.
pub const HEALTHY: &str = "/-/healthy";
/// Readiness: 200 once the WAL is replayed and storage is open, 503 before.
pub const READY: &str = "/-/ready";
/// The server's own metrics in text format.
pub const METRICS: &str = "/metrics";
/// Text-exposition import (VictoriaMetrics-compatible name).
pub const IMPORT_PROMETHEUS: &str = "/api/v1/import/prometheus";
/// Snapshot for backups (admin API).
pub const ADMIN_SNAPSHOT: &str = "/api/v1/admin/tsdb/snapshot";
/// Forced StatsD flush (admin API): applies queued lines and writes the
/// current window now.
pub const ADMIN_STATSD_FLUSH: &str = "/api/v1/admin/statsd/flush";
/// Instant query.
pub const QUERY: &str = "/api/v1/query";
/// Range query.
pub const QUERY_RANGE: &str = "/api/v1/query_range";
/// Series by matchers.
pub const SERIES: &str = "/api/v1/series";
/// Label names.
pub const LABELS: &str = "/api/v1/labels";
/// Label values; `{name}` is the label name.
pub const LABEL_VALUES: &str = "/api/v1/label/{name}/values";
/// Metric metadata.
pub const METADATA: &str = "/api/v1/metadata";
/// Build information.
pub const BUILDINFO: &str = "/api/v1/status/buildinfo";
/// Runtime information.
pub const RUNTIMEINFO: &str = "/api/v1/status/runtimeinfo";
/// TSDB cardinality statistics.
pub const STATUS_TSDB: &str = "/api/v1/status/tsdb";
/// Pretty-prints a PromQL expression.
pub const FORMAT_QUERY: &str = "/api/v1/format_query";

/// Exemplar queries (always empty: no exemplars are stored).
pub const QUERY_EXEMPLARS: &str = "/api/v1/query_exemplars";

/// Rule groups and their state.
pub const RULES: &str = "/api/v1/rules";
/// Pending and firing alerts.
pub const ALERTS: &str = "/api/v1/alerts";

/// Prometheus remote write receiver (1.0 and 2.0).
pub const REMOTE_WRITE: &str = "/api/v1/write";

/// Pushgateway-compatible group push/delete (`job` and then label/value pairs).
pub const PUSH_GROUP: &str = "/metrics/job/{*rest}";
/// Pushgateway-compatible group listing.
pub const PUSH_GROUPS: &str = "/api/v1/metrics";
/// Pushgateway-compatible wipe of every group.
pub const PUSH_WIPE: &str = "/api/v1/admin/wipe";
/// OTLP/HTTP metrics receiver.
pub const OTLP_METRICS: &str = "/v1/metrics";

/// The label-values path for `name` (for clients).
pub fn label_values(name: &str) -> String {
    LABEL_VALUES.replace("{name}", name)
}
/// `POST`/`PUT`: reload the rule files.
pub const RELOAD: &str = "/-/reload";
