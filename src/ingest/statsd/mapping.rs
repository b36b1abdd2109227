//! statsd_exporter-compatible mapping rules (spec §8 item 7), read from YAML.
//!
//! ```yaml
//! defaults:
//!   ttl: 5m                       # idle TTL for every series (0 = never)
//!   match_type: glob              # or regex
//!   histogram_options: { buckets: [0.01, 0.1, 1] }
//! mappings:
//!   - match: "api.response_time"  # the seed sends ms via |h; alerts want seconds
//!     scale: 0.001
//!   - match: "test.dispatcher.*.*"
//!     name: "dispatcher_events_total"
//!     labels: { processor: "$1", action: "${2}" }
//!   - match: "(.*)\\.debug\\..*"
//!     match_type: regex
//!     action: drop
//!   - match: "jobs.*"
//!     match_metric_type: observer  # counter | gauge | observer | set
//!     histogram_options: { buckets: [1, 10, 60] }
//!     ttl: 1h
//! ```
//!
//! Rules run on the raw StatsD name (name-embedded tags removed, before
//! escaping) and the first matching rule wins. A glob `*` matches one
//! dot-free run of characters and is a capture. Regex rules are not
//! anchored (as in statsd_exporter). `$1`, `${1}` and `${name}` expand
//! captures in `name` and label values with the regex crate's `expand` rules
//! (so `$1_x` names a group `1_x`: write `${1}_x`); a reference to a group the
//! pattern does not define is a validation error. `name` is optional: without
//! it the line keeps its own (escaped) name, which is what a `scale`-only or
//! `buckets`-only rule wants. Fields statsd_exporter has but watchpost does
//! not use (`help`, `summary_options`, `quantiles`, `observer_type`,
//! `timer_type`) are accepted and ignored, since watchpost stores histograms
//! only; any other unknown field is an error.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use super::parse::{MetricType, escape_name};

/// A mapping file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// The file could not be read.
    #[error("cannot read statsd mapping config {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or has an unknown or mistyped field.
    #[error("invalid statsd mapping config{}: {reason}", location.map(|(l, c)| format!(" at line {l} column {c}")).unwrap_or_default())]
    Yaml {
        /// Line and column (1-based), when the YAML library knows them.
        location: Option<(usize, usize)>,
        /// What the YAML library reported.
        reason: String,
    },
    /// A rule is well-formed YAML but not a usable rule.
    #[error("invalid statsd mapping #{index} (match {pattern:?}): field `{field}`: {reason}")]
    Rule {
        /// 1-based position in `mappings`.
        index: usize,
        /// The rule's `match` text.
        pattern: String,
        /// The offending field.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The `defaults` section is not usable.
    #[error("invalid statsd mapping defaults: field `{field}`: {reason}")]
    Defaults {
        /// The offending field.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    mappings: Vec<RawMapping>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    ttl: Option<serde_yaml_ng::Value>,
    match_type: Option<String>,
    glob_disable_ordering: Option<bool>,
    observer_type: Option<String>,
    histogram_options: Option<RawHistogramOptions>,
    summary_options: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    #[serde(rename = "match")]
    pattern: String,
    name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    match_type: Option<String>,
    match_metric_type: Option<String>,
    action: Option<String>,
    honor_labels: Option<bool>,
    scale: Option<f64>,
    ttl: Option<serde_yaml_ng::Value>,
    histogram_options: Option<RawHistogramOptions>,
    buckets: Option<Vec<f64>>,
    help: Option<String>,
    observer_type: Option<String>,
    timer_type: Option<String>,
    summary_options: Option<serde_yaml_ng::Value>,
    quantiles: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistogramOptions {
    buckets: Option<Vec<f64>>,
    #[expect(
        dead_code,
        reason = "accepted for statsd_exporter configs; no native histograms yet"
    )]
    native_histogram_bucket_factor: Option<f64>,
    #[expect(
        dead_code,
        reason = "accepted for statsd_exporter configs; no native histograms yet"
    )]
    native_histogram_max_buckets: Option<u32>,
}

/// Which StatsD types a rule applies to (`match_metric_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeFilter {
    /// `c`
    Counter,
    /// `g`
    Gauge,
    /// `ms`, `h`, `d`
    Observer,
    /// `s`
    Set,
}

impl TypeFilter {
    fn accepts(self, t: MetricType) -> bool {
        match self {
            TypeFilter::Counter => t == MetricType::Counter,
            TypeFilter::Gauge => t == MetricType::Gauge,
            TypeFilter::Observer => t.is_observer(),
            TypeFilter::Set => t == MetricType::Set,
        }
    }
}

/// What a matching rule does to a line.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    /// Drop the line (`action: drop`).
    pub drop: bool,
    /// New family base name (valid Prometheus name; the counter suffix is
    /// still added by the aggregator), or `None` to keep the line's name.
    pub name: Option<String>,
    /// Labels to add, values expanded, in name order.
    pub labels: Vec<(String, String)>,
    /// When true, line tags win over rule labels; else rule labels win.
    pub honor_labels: bool,
    /// Factor applied to counter increments, gauge values and observations
    /// (after `ms` → seconds).
    pub scale: Option<f64>,
    /// Histogram bounds for series created by this rule.
    pub buckets: Option<Arc<[f64]>>,
    /// Idle TTL for series created by this rule (zero = never expire).
    pub ttl: Option<Duration>,
}

#[derive(Debug)]
struct Rule {
    regex: Regex,
    type_filter: Option<TypeFilter>,
    drop: bool,
    name: Option<String>,
    labels: Vec<(String, String)>,
    honor_labels: bool,
    scale: Option<f64>,
    buckets: Option<Arc<[f64]>>,
    ttl: Option<Duration>,
}

/// A validated mapping configuration.
#[derive(Debug, Default)]
pub struct MappingConfig {
    rules: Vec<Rule>,
    default_ttl: Option<Duration>,
    default_buckets: Option<Arc<[f64]>>,
}

impl MappingConfig {
    /// Reads and validates a mapping file.
    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Parses and validates mapping YAML.
    pub fn from_yaml(text: &str) -> Result<Self, MappingError> {
        let raw: RawFile = if text.trim().is_empty() {
            RawFile::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| MappingError::Yaml {
                location: e.location().map(|l| (l.line(), l.column())),
                reason: e.to_string(),
            })?
        };
        let d = raw.defaults;
        let default_ttl = match &d.ttl {
            Some(v) => Some(yaml_duration(v).map_err(|reason| MappingError::Defaults {
                field: "ttl",
                reason,
            })?),
            None => None,
        };
        let default_match_glob = match d.match_type.as_deref() {
            None | Some("glob") | Some("") => true,
            Some("regex") => false,
            Some(other) => {
                return Err(MappingError::Defaults {
                    field: "match_type",
                    reason: format!("got {other:?}, want \"glob\" or \"regex\""),
                });
            }
        };
        let default_buckets = match d.histogram_options.and_then(|h| h.buckets) {
            Some(b) => Some(check_buckets(&b).map_err(|reason| MappingError::Defaults {
                field: "histogram_options.buckets",
                reason,
            })?),
            None => None,
        };
        let _ = (d.glob_disable_ordering, d.observer_type, d.summary_options);
        let mut rules = Vec::with_capacity(raw.mappings.len());
        for (i, m) in raw.mappings.into_iter().enumerate() {
            rules.push(build_rule(i + 1, m, default_match_glob)?);
        }
        Ok(MappingConfig {
            rules,
            default_ttl,
            default_buckets,
        })
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `defaults.ttl`, if set.
    pub fn default_ttl(&self) -> Option<Duration> {
        self.default_ttl
    }

    /// `defaults.histogram_options.buckets`, if set.
    pub fn default_buckets(&self) -> Option<Arc<[f64]>> {
        self.default_buckets.clone()
    }

    /// The first rule matching `raw_name` for a line of type `t`, expanded.
    pub fn map(&self, raw_name: &str, t: MetricType) -> Option<Mapped> {
        for r in &self.rules {
            if r.type_filter.is_some_and(|f| !f.accepts(t)) {
                continue;
            }
            let Some(caps) = r.regex.captures(raw_name) else {
                continue;
            };
            let expand = |tmpl: &str| {
                let mut s = String::new();
                caps.expand(tmpl, &mut s);
                s
            };
            let name = r.name.as_deref().map(|n| {
                let s = expand(n);
                if is_prom_name(&s) {
                    s
                } else {
                    escape_name(&s).into_owned()
                }
            });
            let labels = r
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), expand(v)))
                .collect();
            return Some(Mapped {
                drop: r.drop,
                name,
                labels,
                honor_labels: r.honor_labels,
                scale: r.scale,
                buckets: r.buckets.clone(),
                ttl: r.ttl,
            });
        }
        None
    }
}

fn build_rule(index: usize, m: RawMapping, default_glob: bool) -> Result<Rule, MappingError> {
    let err = |field: &'static str, reason: String| MappingError::Rule {
        index,
        pattern: m.pattern.clone(),
        field,
        reason,
    };
    if m.pattern.is_empty() {
        return Err(err("match", "must not be empty".into()));
    }
    let glob = match m.match_type.as_deref() {
        None | Some("") => default_glob,
        Some("glob") => true,
        Some("regex") => false,
        Some(other) => {
            return Err(err(
                "match_type",
                format!("got {other:?}, want \"glob\" or \"regex\""),
            ));
        }
    };
    let source = if glob {
        if m.pattern.contains(['\n', '|', ':']) {
            return Err(err(
                "match",
                "a glob cannot contain '|', ':' or a newline (they never occur in a StatsD name)"
                    .into(),
            ));
        }
        let parts: Vec<String> = m.pattern.split('*').map(regex::escape).collect();
        format!("^{}$", parts.join("([^.]*)"))
    } else {
        m.pattern.clone()
    };
    let regex = Regex::new(&source).map_err(|e| err("match", format!("bad regex: {e}")))?;
    let type_filter = match m.match_metric_type.as_deref() {
        None | Some("") => None,
        Some("counter") => Some(TypeFilter::Counter),
        Some("gauge") => Some(TypeFilter::Gauge),
        Some("observer") | Some("timer") | Some("histogram") | Some("distribution") => {
            Some(TypeFilter::Observer)
        }
        Some("set") => Some(TypeFilter::Set),
        Some(other) => {
            return Err(err(
                "match_metric_type",
                format!("got {other:?}, want counter, gauge, observer or set"),
            ));
        }
    };
    let drop = match m.action.as_deref() {
        None | Some("") | Some("map") => false,
        Some("drop") => true,
        Some(other) => {
            return Err(err(
                "action",
                format!("got {other:?}, want \"map\" or \"drop\""),
            ));
        }
    };
    if let Some(n) = &m.name {
        check_refs(n, &regex).map_err(|r| err("name", r))?;
        let probe = placeholder(n);
        if !is_prom_name(&probe) {
            return Err(err(
                "name",
                format!(
                    "{n:?} is not a valid metric name (want [a-zA-Z_:][a-zA-Z0-9_:]*, captures allowed)"
                ),
            ));
        }
    }
    let mut labels = Vec::with_capacity(m.labels.len());
    for (k, v) in &m.labels {
        if !is_label_name(k) || k.starts_with("__") {
            return Err(err(
                "labels",
                format!(
                    "{k:?} is not a usable label name (want [a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
                ),
            ));
        }
        check_refs(v, &regex).map_err(|r| err("labels", format!("label {k:?}: {r}")))?;
        labels.push((k.clone(), v.clone()));
    }
    if let Some(s) = m.scale
        && (!s.is_finite() || s == 0.0)
    {
        return Err(err(
            "scale",
            format!("got {s}, want a finite non-zero number"),
        ));
    }
    let ttl = match &m.ttl {
        Some(v) => Some(yaml_duration(v).map_err(|r| err("ttl", r))?),
        None => None,
    };
    let bucket_list = match (m.histogram_options.and_then(|h| h.buckets), m.buckets) {
        (Some(_), Some(_)) => {
            return Err(err(
                "buckets",
                "set either buckets or histogram_options.buckets, not both".into(),
            ));
        }
        (a, b) => a.or(b),
    };
    let buckets = match bucket_list {
        Some(b) => Some(check_buckets(&b).map_err(|r| err("histogram_options.buckets", r))?),
        None => None,
    };
    let _ = (
        &m.help,
        &m.observer_type,
        &m.timer_type,
        &m.summary_options,
        &m.quantiles,
    );
    Ok(Rule {
        regex,
        type_filter,
        drop,
        name: m.name,
        labels,
        honor_labels: m.honor_labels.unwrap_or(false),
        scale: m.scale,
        buckets,
        ttl,
    })
}

/// Checks every `$ref` in `tmpl` names a group of `re`.
fn check_refs(tmpl: &str, re: &Regex) -> Result<(), String> {
    let b = tmpl.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        i += 1;
        if i < b.len() && b[i] == b'$' {
            i += 1;
            continue;
        }
        let (name, next) = if i < b.len() && b[i] == b'{' {
            match tmpl[i + 1..].find('}') {
                Some(e) => (&tmpl[i + 1..i + 1 + e], i + e + 2),
                None => return Err(format!("unclosed ${{ in {tmpl:?}")),
            }
        } else {
            let e = tmpl[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(tmpl.len(), |e| i + e);
            (&tmpl[i..e], e)
        };
        i = next;
        if name.is_empty() {
            continue;
        }
        let exists = match name.parse::<usize>() {
            Ok(n) => n < re.captures_len(),
            Err(_) => re.capture_names().flatten().any(|g| g == name),
        };
        if !exists {
            let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
            let hint = if digits.is_empty() {
                String::new()
            } else {
                format!("; to follow group {digits} with text, write ${{{digits}}}")
            };
            return Err(format!(
                "{tmpl:?} refers to capture group `{name}`, which the pattern does not define (it has {} groups){hint}",
                re.captures_len() - 1
            ));
        }
    }
    Ok(())
}

/// `tmpl` with every reference replaced by `x`, for name validation.
fn placeholder(tmpl: &str) -> String {
    let re = Regex::new(r"\$(\$|\{[^}]*\}|[A-Za-z0-9_]+)").expect("bug: static regex");
    re.replace_all(tmpl, |c: &regex::Captures<'_>| {
        if &c[1] == "$" {
            "$".to_string()
        } else {
            "x".to_string()
        }
    })
    .into_owned()
}

fn is_prom_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_buckets(b: &[f64]) -> Result<Arc<[f64]>, String> {
    if b.is_empty() {
        return Err("must list at least one bound".into());
    }
    if let Some(x) = b.iter().find(|x| !x.is_finite()) {
        return Err(format!("bound {x} is not finite (+Inf is implicit)"));
    }
    if let Some(w) = b.windows(2).find(|w| w[0] >= w[1]) {
        return Err(format!(
            "bounds must be strictly ascending, got {} then {}",
            w[0], w[1]
        ));
    }
    Ok(Arc::from(b))
}

fn yaml_duration(v: &serde_yaml_ng::Value) -> Result<Duration, String> {
    match v {
        serde_yaml_ng::Value::Number(n) if n.as_u64() == Some(0) => Ok(Duration::ZERO),
        serde_yaml_ng::Value::String(s) => parse_duration(s),
        other => Err(format!(
            "got {other:?}, want a duration such as \"30s\", \"5m\", \"1h\" or 0"
        )),
    }
}

/// Parses a Go-style duration (`1h30m`, `500ms`, `0`) into a `Duration`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("got {s:?}, want a duration such as \"30s\", \"5m\", \"1h30m\" or \"0\"");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * secs;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_scale_rule() {
        let m = MappingConfig::from_yaml("mappings:\n- match: api.response_time\n  scale: 0.001\n")
            .unwrap();
        let r = m.map("api.response_time", MetricType::Histogram).unwrap();
        assert_eq!(r.scale, Some(0.001));
        assert_eq!(r.name, None);
        assert!(
            m.map("api.response_time.x", MetricType::Histogram)
                .is_none()
        );
    }

    #[test]
    fn glob_captures_and_type_filter() {
        let m = MappingConfig::from_yaml(
            r#"
mappings:
- match: "test.dispatcher.*.*"
  match_metric_type: counter
  name: "dispatcher_${2}_total"
  labels: { processor: "$1" }
- match: "test.*.*"
  action: drop
"#,
        )
        .unwrap();
        let r = m.map("test.dispatcher.p1.ok", MetricType::Counter).unwrap();
        assert_eq!(r.name.as_deref(), Some("dispatcher_ok_total"));
        assert_eq!(r.labels, vec![("processor".to_string(), "p1".to_string())]);
        assert!(!r.drop);
        // `*` does not cross dots; the gauge skips the counter-only rule.
        assert!(m.map("test.dispatcher.p1.ok", MetricType::Gauge).is_none());
        assert!(m.map("test.a.b", MetricType::Gauge).unwrap().drop);
    }

    #[test]
    fn regex_rule() {
        let m = MappingConfig::from_yaml(
            "mappings:\n- match: '(.*)\\.(.*)--(.*)\\.status'\n  match_type: regex\n  name: \"${1}_req\"\n  labels: {a: \"$2\", b: \"$3\"}\n",
        )
        .unwrap();
        let r = m.map("svc.ep--x.status", MetricType::Counter).unwrap();
        assert_eq!(r.name.as_deref(), Some("svc_req"));
        assert_eq!(r.labels[1], ("b".to_string(), "x".to_string()));
    }

    #[test]
    fn errors_say_what_where_why() {
        let cases = [
            (
                "mappings:\n- match: a.*\n  name: \"x_$2\"\n",
                "mapping #1 (match \"a.*\"): field `name`",
            ),
            ("mappings:\n- match: a.*\n  name: \"$1_x\"\n", "write ${1}"),
            (
                "mappings:\n- match: a\n  name: \"1abc\"\n",
                "not a valid metric name",
            ),
            (
                "mappings:\n- match: a\n- match: b\n  labels: {__x: y}\n",
                "mapping #2",
            ),
            ("mappings:\n- match: a\n  ttl: 5 minutes\n", "field `ttl`"),
            (
                "mappings:\n- match: a\n  histogram_options: {buckets: [1, 1]}\n",
                "strictly ascending",
            ),
            ("mappings:\n- match: a\n  scale: 0\n", "field `scale`"),
            (
                "mappings:\n- match: '('\n  match_type: regex\n",
                "bad regex",
            ),
            ("mappings:\n- match: a\n  action: keep\n", "field `action`"),
            ("mappings:\n- match: a\n  nmae: x\n", "at line 3"),
            (
                "defaults:\n  match_type: fuzzy\n",
                "defaults: field `match_type`",
            ),
        ];
        for (yaml, want) in cases {
            let e = MappingConfig::from_yaml(yaml).unwrap_err().to_string();
            assert!(e.contains(want), "{yaml:?}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn defaults_section() {
        let m = MappingConfig::from_yaml(
            "defaults:\n  ttl: 10m\n  histogram_options:\n    buckets: [0.1, 1]\nmappings: []\n",
        )
        .unwrap();
        assert_eq!(m.default_ttl(), Some(Duration::from_secs(600)));
        assert_eq!(m.default_buckets().as_deref(), Some(&[0.1, 1.0][..]));
    }
}
