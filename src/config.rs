//! The YAML configuration file (`--config.file`), read in two phases: the
//! raw document (serde, unknown fields rejected) and then the validated
//! [`Config`] with typed values. Every error names the file, line and
//! column: `watchpost.yml:12:18: invalid duration "5x": ...`.
//!
//! Values are validated while they are deserialized, so the YAML parser's
//! position of the offending value is the one reported. Flags override the
//! file (`main.rs` applies them through the `parse_*` helpers here, so a
//! flag and a config key accept exactly the same syntax). Library modules
//! never read this file, flags or the environment: `main.rs` hands each one
//! its part.
//!
//! ```yaml
//! global:
//!   external_labels: {site: ams1}
//!   evaluation_interval: 1m
//! storage:
//!   path: ./data
//!   retention_time: 15d
//!   retention_size: 50GiB
//!   wal_sync: always          # or an interval such as 100ms
//!   out_of_order_window: 10m
//! statsd:                     # absent: UDP on 127.0.0.1:8125 (the StatsD default)
//!   listen_udp: ["127.0.0.1:8125"]   # [] with no other listener: StatsD off
//!   listen_tcp: []
//!   listen_unix: /run/watchpost/statsd.sock
//!   flush_interval: 10s
//!   mapping_file: statsd-mapping.yml
//! rule_files: ["rules/*.yml"]   # relative to this file's directory
//! alerting:
//!   alertmanagers:
//!     - static_configs: [{targets: ["127.0.0.1:9093"]}]
//!       path_prefix: /
//!       timeout: 10s
//! query:
//!   timeout: 2m
//!   max_samples: 50000000
//!   max_series: 1000000
//!   lookback_delta: 5m
//! web:
//!   listen_address: 127.0.0.1:9090
//!   import_body_limit: 64MiB
//!   enable_admin_api: false
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::model::{Labels, LabelsBuilder};

/// A configuration problem, located in its file when it came from one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error, printed.
        reason: String,
    },
    /// A problem at a position in the file.
    #[error("{}:{line}:{col}: {msg}", path.display())]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        msg: String,
    },
    /// A problem with a value given on the command line.
    #[error("invalid flag --{flag}: {msg}")]
    Flag {
        /// Flag name without dashes.
        flag: &'static str,
        /// What is wrong.
        msg: String,
    },
}

/// How often the WAL is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalSync {
    /// Every commit waits for its fsync (group commit batches concurrent
    /// commits into one fsync).
    Always,
    /// Commits return after the write; an fsync runs every this many ms.
    Interval(u64),
}

/// `global:`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    /// Labels added to alerts and federation (as in Prometheus).
    pub external_labels: Labels,
    /// Default rule group evaluation interval (ms).
    pub evaluation_interval_ms: i64,
}

/// `storage:`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// The data directory.
    pub path: PathBuf,
    /// Delete blocks older than this (ms); `None` keeps Prometheus's 15 d
    /// default unless a size limit alone is set.
    pub retention_time_ms: Option<i64>,
    /// Delete oldest blocks beyond this many bytes.
    pub retention_size_bytes: Option<u64>,
    /// WAL fsync policy.
    pub wal_sync: WalSync,
    /// How far behind the newest sample a series may accept samples (ms).
    pub out_of_order_window_ms: i64,
}

/// `statsd:`; present only when StatsD is enabled (the default).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsdSection {
    /// UDP listen addresses.
    pub listen_udp: Vec<SocketAddr>,
    /// TCP listen addresses.
    pub listen_tcp: Vec<SocketAddr>,
    /// Unix datagram socket path.
    pub listen_unix: Option<PathBuf>,
    /// Aggregation window (ms).
    pub flush_interval_ms: i64,
    /// statsd_exporter-style mapping file, resolved against the config
    /// file's directory.
    pub mapping_file: Option<PathBuf>,
}

/// The StatsD UDP address used when nothing else is configured: the
/// address every StatsD client sends to by default, on loopback only.
pub const DEFAULT_STATSD_UDP: &str = "127.0.0.1:8125";

impl Default for StatsdSection {
    fn default() -> Self {
        StatsdSection {
            listen_udp: vec![DEFAULT_STATSD_UDP.parse().expect("valid default address")],
            listen_tcp: Vec::new(),
            listen_unix: None,
            flush_interval_ms: 10_000,
            mapping_file: None,
        }
    }
}

impl StatsdSection {
    /// Whether at least one listener is configured (otherwise StatsD is off).
    pub fn has_listener(&self) -> bool {
        !self.listen_udp.is_empty() || !self.listen_tcp.is_empty() || self.listen_unix.is_some()
    }
}

/// `query:`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryLimits {
    /// Per-query timeout (ms); also caps the request's `timeout` parameter.
    pub timeout_ms: i64,
    /// Most samples a query may load.
    pub max_samples: usize,
    /// Most series a query may select.
    pub max_series: usize,
    /// Instant-selector lookback (ms).
    pub lookback_delta_ms: i64,
}

/// `web:`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// HTTP listen address.
    pub listen_address: SocketAddr,
    /// Largest import body accepted, after decompression (bytes).
    pub import_body_limit: u64,
    /// Serve `/api/v1/admin/*`.
    pub enable_admin_api: bool,
}

/// `alerting:` (Prometheus's layout; only static targets over plain HTTP).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertingConfig {
    /// Alertmanagers, each with its own targets and settings.
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One `alerting.alertmanagers[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerConfig {
    /// `host:port` of every target (`static_configs[].targets`).
    pub targets: Vec<String>,
    /// Path prefix; alerts go to `<prefix>/api/v2/alerts`.
    pub path_prefix: String,
    /// Per-request timeout (ms).
    pub timeout_ms: i64,
    /// `basic_auth: {username, password}`.
    pub basic_auth: Option<(String, String)>,
    /// `authorization: {credentials}` (Bearer).
    pub bearer_token: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// `global:`.
    pub global: GlobalConfig,
    /// `storage:`.
    pub storage: StorageConfig,
    /// `statsd:`, when enabled (by default: UDP on [`DEFAULT_STATSD_UDP`]).
    pub statsd: Option<StatsdSection>,
    /// Rule file globs, relative to the config file's directory.
    pub rule_files: Vec<String>,
    /// `alerting:`: where alerts are sent.
    pub alerting: AlertingConfig,
    /// `query:`.
    pub query: QueryLimits,
    /// `web:`.
    pub web: WebConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            global: GlobalConfig {
                external_labels: Labels::empty(),
                evaluation_interval_ms: 60_000,
            },
            storage: StorageConfig {
                path: PathBuf::from("./data"),
                retention_time_ms: None,
                retention_size_bytes: None,
                wal_sync: WalSync::Always,
                out_of_order_window_ms: 600_000,
            },
            statsd: Some(StatsdSection::default()),
            rule_files: vec!["rules/*.yml".to_string()],
            alerting: AlertingConfig::default(),
            query: QueryLimits {
                timeout_ms: 120_000,
                max_samples: 50_000_000,
                max_series: 1_000_000,
                lookback_delta_ms: 300_000,
            },
            web: WebConfig {
                listen_address: SocketAddr::from(([127, 0, 0, 1], 9090)),
                import_body_limit: 64 << 20,
                enable_admin_api: false,
            },
        }
    }
}

// ---- value syntax shared by the file and the flags -------------------------

/// A Prometheus duration (`1h30m`, `10m`, `250ms`, `0`) in ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    crate::promql::lexer::parse_duration_ms(s)
        .ok_or_else(|| format!("invalid duration {s:?}: want e.g. 250ms, 10s, 5m, 1h30m, 15d"))
}

/// A byte size with binary units as Prometheus reads them
/// (`512MB` = 512 MiB): `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`,
/// `TB`/`TiB`, `PB`/`PiB`, or a bare number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let err = || format!("invalid size {s:?}: want e.g. 512MB, 10GiB, 1TB");
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    let num: u64 = s.get(..n).and_then(|d| d.parse().ok()).ok_or_else(err)?;
    let shift = match s.get(n..).unwrap_or_default() {
        "" | "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        "PB" | "PiB" => 50,
        _ => return Err(err()),
    };
    num.checked_mul(1u64 << shift).ok_or_else(err)
}

/// `host:port` with a literal IP (names are not resolved at config time).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("invalid listen address {s:?}: want ip:port, e.g. 127.0.0.1:9090"))
}

/// `always`, or an fsync interval such as `100ms`.
pub fn parse_wal_sync(s: &str) -> Result<WalSync, String> {
    if s == "always" {
        return Ok(WalSync::Always);
    }
    match parse_duration(s) {
        Ok(ms) if ms > 0 => Ok(WalSync::Interval(ms as u64)),
        _ => Err(format!(
            "invalid wal_sync {s:?}: want \"always\" or a positive interval such as 100ms"
        )),
    }
}

fn valid_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

// ---- raw document ------------------------------------------------------------

fn with<'de, D, T>(d: D, f: impl FnOnce(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let s = String::deserialize(d)?;
    f(&s).map_err(serde::de::Error::custom)
}

/// A positive Prometheus duration in ms.
#[derive(Debug, Clone, Copy)]
struct Dur(i64);
impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, |s| match parse_duration(s)? {
            0 => Err(format!("invalid duration {s:?}: must be greater than 0")),
            ms => Ok(Dur(ms)),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Size(u64);
impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, parse_size).map(Size)
    }
}

#[derive(Debug, Clone, Copy)]
struct Addr(SocketAddr);
impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, parse_addr).map(Addr)
    }
}

#[derive(Debug, Clone, Copy)]
struct Sync(WalSync);
impl<'de> Deserialize<'de> for Sync {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, parse_wal_sync).map(Sync)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LabelName(String);
impl<'de> Deserialize<'de> for LabelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, |s| {
            if valid_label_name(s) && !s.starts_with("__") {
                Ok(LabelName(s.to_string()))
            } else {
                Err(format!(
                    "invalid external label name {s:?}: want [a-zA-Z_][a-zA-Z0-9_]* not starting with __"
                ))
            }
        })
    }
}

#[derive(Debug, Clone)]
struct Glob(String);
impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, |s| {
            if s.is_empty() {
                return Err("empty rule_files entry".to_string());
            }
            let mut depth = 0i32;
            for c in s.chars() {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
                if depth < 0 {
                    break;
                }
            }
            if depth != 0 {
                return Err(format!("invalid glob {s:?}: unbalanced '[' ']'"));
            }
            Ok(Glob(s.to_string()))
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    #[serde(default)]
    external_labels: BTreeMap<LabelName, String>,
    evaluation_interval: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: Option<PathBuf>,
    retention_time: Option<Dur>,
    retention_size: Option<Size>,
    wal_sync: Option<Sync>,
    out_of_order_window: Option<OooWindow>,
}

/// The out-of-order window may be 0 (strictly in-order).
#[derive(Debug, Clone, Copy)]
struct OooWindow(i64);
impl<'de> Deserialize<'de> for OooWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, parse_duration).map(OooWindow)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatsd {
    /// Absent: the default address; `[]`: no UDP listener.
    listen_udp: Option<Vec<Addr>>,
    #[serde(default)]
    listen_tcp: Vec<Addr>,
    listen_unix: Option<PathBuf>,
    flush_interval: Option<Dur>,
    mapping_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    timeout: Option<Dur>,
    max_samples: Option<usize>,
    max_series: Option<usize>,
    lookback_delta: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen_address: Option<Addr>,
    import_body_limit: Option<Size>,
    enable_admin_api: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerting {
    #[serde(default)]
    alertmanagers: Vec<RawAlertmanager>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaticConfig {
    #[serde(default)]
    targets: Vec<Target>,
}

/// `host:port` (names allowed; resolved when sending).
#[derive(Debug, Clone)]
struct Target(String);
impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, |s| match s.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.contains('/') && p.parse::<u16>().is_ok() => {
                Ok(Target(s.to_string()))
            }
            _ => Err(format!("invalid alertmanager target {s:?}: want host:port")),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: String,
    #[serde(default)]
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorization {
    #[serde(rename = "type", default)]
    kind: Option<BearerType>,
    credentials: String,
}

#[derive(Debug)]
struct BearerType;
impl<'de> Deserialize<'de> for BearerType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, |s| {
            if s == "Bearer" {
                Ok(BearerType)
            } else {
                Err(format!("unsupported authorization type {s:?}: only Bearer"))
            }
        })
    }
}

/// Only plain HTTP: watchpost has no TLS client.
#[derive(Debug)]
struct Scheme;
impl<'de> Deserialize<'de> for Scheme {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, |s| {
            if s == "http" {
                Ok(Scheme)
            } else {
                Err(format!("unsupported scheme {s:?}: only http is supported"))
            }
        })
    }
}

/// Only the v2 API (Alertmanager 0.16+).
#[derive(Debug)]
struct ApiVersion;
impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with(d, |s| {
            if s == "v2" {
                Ok(ApiVersion)
            } else {
                Err(format!("unsupported api_version {s:?}: only v2"))
            }
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertmanager {
    #[serde(default)]
    static_configs: Vec<RawStaticConfig>,
    path_prefix: Option<String>,
    timeout: Option<Dur>,
    scheme: Option<Scheme>,
    api_version: Option<ApiVersion>,
    basic_auth: Option<RawBasicAuth>,
    authorization: Option<RawAuthorization>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: RawGlobal,
    #[serde(default)]
    storage: RawStorage,
    statsd: Option<RawStatsd>,
    rule_files: Option<Vec<Glob>>,
    #[serde(default)]
    alerting: RawAlerting,
    #[serde(default)]
    query: RawQuery,
    #[serde(default)]
    web: RawWeb,
}

// ---- loading -------------------------------------------------------------------

/// 1-based line and column of the first occurrence of `key:` in `text`, for
/// errors found after deserialization (the YAML parser no longer knows the
/// position then).
fn find_key(text: &str, key: &str) -> (usize, usize) {
    let pat = format!("{key}:");
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = line.find(&pat) {
            return (i + 1, c + 1);
        }
    }
    (1, 1)
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Validates `text` as if read from `path` (used in messages and to
    /// resolve relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                let msg = e.to_string();
                // The library appends " at line L column C"; we put the
                // position in front instead.
                let msg = match msg.find(" at line ") {
                    Some(i) => msg.get(..i).unwrap_or(&msg).to_string(),
                    None => msg,
                };
                ConfigError::At {
                    path: path.to_path_buf(),
                    line,
                    col,
                    msg,
                }
            })?
        };
        let at = |key: &str, msg: String| {
            let (line, col) = find_key(text, key);
            ConfigError::At {
                path: path.to_path_buf(),
                line,
                col,
                msg,
            }
        };
        let d = Config::default();
        let mut labels = LabelsBuilder::new();
        for (k, v) in &raw.global.external_labels {
            labels.set(k.0.as_str(), v.as_str());
        }
        let base = path.parent().unwrap_or(Path::new("."));
        // StatsD is on by default, like statsd_exporter: a missing section
        // or a section without `listen_udp` listens on the standard UDP
        // address; listing no listener at all turns the door off.
        let statsd = match raw.statsd {
            None => Some(StatsdSection::default()),
            Some(s) => {
                let section = StatsdSection {
                    listen_udp: match s.listen_udp {
                        None => StatsdSection::default().listen_udp,
                        Some(v) => v.into_iter().map(|a| a.0).collect(),
                    },
                    listen_tcp: s.listen_tcp.into_iter().map(|a| a.0).collect(),
                    listen_unix: s.listen_unix,
                    flush_interval_ms: s.flush_interval.map_or(10_000, |x| x.0),
                    mapping_file: s.mapping_file.map(|m| base.join(m)),
                };
                section.has_listener().then_some(section)
            }
        };
        let query = QueryLimits {
            timeout_ms: raw.query.timeout.map_or(d.query.timeout_ms, |x| x.0),
            max_samples: raw.query.max_samples.unwrap_or(d.query.max_samples),
            max_series: raw.query.max_series.unwrap_or(d.query.max_series),
            lookback_delta_ms: raw
                .query
                .lookback_delta
                .map_or(d.query.lookback_delta_ms, |x| x.0),
        };
        if query.max_samples == 0 {
            return Err(at("max_samples", "query.max_samples must be > 0".into()));
        }
        if query.max_series == 0 {
            return Err(at("max_series", "query.max_series must be > 0".into()));
        }
        let web = WebConfig {
            listen_address: raw.web.listen_address.map_or(d.web.listen_address, |a| a.0),
            import_body_limit: raw
                .web
                .import_body_limit
                .map_or(d.web.import_body_limit, |s| s.0),
            enable_admin_api: raw.web.enable_admin_api.unwrap_or(false),
        };
        if web.import_body_limit == 0 {
            return Err(at(
                "import_body_limit",
                "web.import_body_limit must be > 0".into(),
            ));
        }
        Ok(Config {
            source: Some(path.to_path_buf()),
            global: GlobalConfig {
                external_labels: labels.build(),
                evaluation_interval_ms: raw
                    .global
                    .evaluation_interval
                    .map_or(d.global.evaluation_interval_ms, |x| x.0),
            },
            storage: StorageConfig {
                path: raw.storage.path.unwrap_or(d.storage.path),
                retention_time_ms: raw.storage.retention_time.map(|x| x.0),
                retention_size_bytes: raw.storage.retention_size.map(|x| x.0),
                wal_sync: raw.storage.wal_sync.map_or(d.storage.wal_sync, |x| x.0),
                out_of_order_window_ms: raw
                    .storage
                    .out_of_order_window
                    .map_or(d.storage.out_of_order_window_ms, |x| x.0),
            },
            statsd,
            rule_files: raw
                .rule_files
                .map_or(d.rule_files, |g| g.into_iter().map(|g| g.0).collect())
                .into_iter()
                .map(|g| {
                    if Path::new(&g).is_absolute() {
                        g
                    } else {
                        base.join(g).to_string_lossy().into_owned()
                    }
                })
                .collect(),
            alerting: AlertingConfig {
                alertmanagers: raw
                    .alerting
                    .alertmanagers
                    .into_iter()
                    .map(|a| {
                        // `scheme` and `api_version` were validated while
                        // deserializing; only their one allowed value exists.
                        let _ = (a.scheme, a.api_version);
                        AlertmanagerConfig {
                            targets: a
                                .static_configs
                                .into_iter()
                                .flat_map(|s| s.targets.into_iter().map(|t| t.0))
                                .collect(),
                            path_prefix: a.path_prefix.unwrap_or_else(|| "/".into()),
                            timeout_ms: a.timeout.map_or(10_000, |d| d.0),
                            basic_auth: a.basic_auth.map(|b| (b.username, b.password)),
                            bearer_token: a.authorization.map(|x| {
                                let _ = x.kind;
                                x.credentials
                            }),
                        }
                    })
                    .collect(),
            },
            query,
            web,
        })
    }

    /// The effective retention as Prometheus prints it in
    /// `/api/v1/status/runtimeinfo` (`15d`, `10GiB`, `15d or 10GiB`).
    pub fn retention_description(&self) -> String {
        let time = self
            .storage
            .retention_time_ms
            .map(crate::promql::printer::format_duration);
        let size = self.storage.retention_size_bytes.map(|b| {
            let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
            let mut i = 0;
            let mut v = b;
            while i + 1 < units.len() && v >= 1024 && v % 1024 == 0 {
                v /= 1024;
                i += 1;
            }
            format!("{v}{}", units.get(i).copied().unwrap_or("B"))
        });
        match (time, size) {
            (Some(t), Some(s)) => format!("{t} or {s}"),
            (Some(t), None) => t,
            (None, Some(s)) => s,
            (None, None) => "15d".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("/etc/watchpost/watchpost.yml"))
    }

    #[test]
    fn full_example_parses() {
        let c = parse(
            "global:\n  external_labels: {site: ams1}\n  evaluation_interval: 30s\nstorage:\n  path: /var/lib/wp\n  retention_time: 30d\n  retention_size: 10GiB\n  wal_sync: 100ms\n  out_of_order_window: 0\nstatsd:\n  listen_udp: [\"127.0.0.1:8125\"]\n  flush_interval: 15s\n  mapping_file: map.yml\nrule_files: [\"rules/*.yml\", \"/x/[ab].yml\"]\nalerting:\n  alertmanagers:\n  - static_configs: [{targets: [\"am:9093\", \"127.0.0.1:9094\"]}]\n    timeout: 5s\n    authorization: {credentials: tok}\nquery:\n  timeout: 1m\n  max_samples: 1000\nweb:\n  listen_address: 0.0.0.0:9091\n  import_body_limit: 128MB\n  enable_admin_api: true\n",
        )
        .unwrap();
        assert_eq!(c.global.external_labels.get("site"), Some("ams1"));
        assert_eq!(c.global.evaluation_interval_ms, 30_000);
        assert_eq!(c.storage.retention_time_ms, Some(30 * 86_400_000));
        assert_eq!(c.storage.retention_size_bytes, Some(10 << 30));
        assert_eq!(c.storage.wal_sync, WalSync::Interval(100));
        assert_eq!(c.storage.out_of_order_window_ms, 0);
        let s = c.statsd.as_ref().unwrap();
        assert_eq!(s.flush_interval_ms, 15_000);
        assert_eq!(
            s.mapping_file.as_deref(),
            Some(Path::new("/etc/watchpost/map.yml"))
        );
        assert_eq!(
            c.rule_files,
            vec![
                "/etc/watchpost/rules/*.yml".to_string(),
                "/x/[ab].yml".to_string()
            ]
        );
        let am = &c.alerting.alertmanagers[0];
        assert_eq!(
            am.targets,
            vec!["am:9093".to_string(), "127.0.0.1:9094".to_string()]
        );
        assert_eq!(
            (am.timeout_ms, am.bearer_token.as_deref()),
            (5000, Some("tok"))
        );
        assert_eq!(c.query.timeout_ms, 60_000);
        assert_eq!(c.query.max_series, 1_000_000);
        assert_eq!(c.web.import_body_limit, 128 << 20);
        assert!(c.web.enable_admin_api);
        assert_eq!(c.retention_description(), "30d or 10GiB");
    }

    #[test]
    fn empty_file_is_defaults() {
        let c = parse("").unwrap();
        // Relative globs resolve against the config file's directory.
        assert_eq!(c.rule_files, vec!["/etc/watchpost/rules/*.yml".to_string()]);
        let s = c.statsd.as_ref().expect("StatsD is on by default");
        assert_eq!(s.listen_udp, vec![DEFAULT_STATSD_UDP.parse().unwrap()]);
        assert!(s.listen_tcp.is_empty() && s.listen_unix.is_none());
        assert_eq!(c.retention_description(), "15d");
    }

    #[test]
    fn statsd_section_defaults_and_off_switch() {
        // A section without listen_udp keeps the default UDP address.
        let c = parse("statsd:\n  flush_interval: 15s\n").unwrap();
        let s = c.statsd.as_ref().unwrap();
        assert_eq!(s.listen_udp, vec![DEFAULT_STATSD_UDP.parse().unwrap()]);
        assert_eq!(s.flush_interval_ms, 15_000);
        // Only TCP: UDP stays as listed (default kept unless listen_udp given).
        let c = parse("statsd:\n  listen_udp: []\n  listen_tcp: [\"127.0.0.1:9125\"]\n").unwrap();
        let s = c.statsd.as_ref().unwrap();
        assert!(s.listen_udp.is_empty());
        assert_eq!(s.listen_tcp.len(), 1);
        // No listener at all: StatsD off.
        let c = parse("statsd:\n  listen_udp: []\n").unwrap();
        assert!(c.statsd.is_none());
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = parse("storage:\n  retention_time: 5x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/watchpost/watchpost.yml:2:3: storage: invalid duration \"5x\": want e.g. 250ms, 10s, 5m, 1h30m, 15d"
        );
        let e = parse("web:\n  listen_adress: 1.2.3.4:1\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("/etc/watchpost/watchpost.yml:2:3: web: unknown field `listen_adress`"),
            "{s}"
        );
        let e = parse("statsd:\n  listen_udp: [\"localhost\"]\n").unwrap_err();
        assert!(
            e.to_string()
                .contains(":2:15: statsd.listen_udp: invalid listen address \"localhost\""),
            "{e}"
        );
        let e = parse("global:\n  external_labels:\n    bad-name: x\n").unwrap_err();
        assert!(
            e.to_string()
                .contains(":3:5: global.external_labels: invalid external label name"),
            "{e}"
        );
        let e = parse("storage:\n  wal_sync: sometimes\n").unwrap_err();
        assert!(
            e.to_string().contains(":2:3: storage: invalid wal_sync"),
            "{e}"
        );
        let e = parse("rule_files: [\"a[b.yml\"]\n").unwrap_err();
        assert!(e.to_string().contains("unbalanced"), "{e}");
        let e = parse("alerting:\n  alertmanagers:\n  - scheme: https\n").unwrap_err();
        assert!(e.to_string().contains("only http"), "{e}");
        let e =
            parse("alerting:\n  alertmanagers:\n  - static_configs: [{targets: [\"nohost\"]}]\n")
                .unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid alertmanager target \"nohost\""),
            "{e}"
        );
        let e = parse("storage: [1, 2\n").unwrap_err();
        assert!(
            e.to_string().starts_with("/etc/watchpost/watchpost.yml:"),
            "{e}"
        );
    }

    #[test]
    fn value_syntax() {
        assert_eq!(parse_size("512MB"), Ok(512 << 20));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("MB").is_err());
        assert_eq!(parse_wal_sync("always"), Ok(WalSync::Always));
        assert!(parse_wal_sync("0").is_err());
        assert!(parse_addr("127.0.0.1:9090").is_ok());
        assert!(parse_addr(":9090").is_err());
    }
}
