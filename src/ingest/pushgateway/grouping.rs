//! Grouping keys from URL paths.

use std::fmt;

use base64::Engine;

use crate::ingest::remote_write::is_valid_label_name;
use crate::model::{Label, Labels};

use super::PushError;

/// The labels identifying a push group; always contains a non-empty `job`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupingKey(Labels);

impl GroupingKey {
    /// Parses the part of the URL path after `/metrics/`, i.e.
    /// `job/<job>{/<label>/<value>}` (a leading `/metrics/` or `/` is
    /// also accepted). Segments are percent-decoded; a `name@base64`
    /// segment means the next one is URL-safe base64 (padding optional, a
    /// lone `=` is the empty string). Empty values are allowed except for
    /// `job`; an empty value means the label is absent.
    pub fn from_path(path: &str) -> Result<GroupingKey, PushError> {
        let bad = |reason: String| PushError::BadPath {
            path: path.to_string(),
            reason,
        };
        let rest = path.strip_prefix("/metrics/").unwrap_or(path);
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let segs: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        if !segs.len().is_multiple_of(2) {
            return Err(bad(format!(
                "odd number of path segments ({}): want name/value pairs",
                segs.len()
            )));
        }
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(segs.len() / 2);
        for c in segs.chunks_exact(2) {
            let name_raw = percent_decode(c[0]).map_err(&bad)?;
            let raw_value = percent_decode(c[1]).map_err(&bad)?;
            let (name, value) = match name_raw.strip_suffix("@base64") {
                Some(n) => (n.to_string(), decode_base64(&raw_value).map_err(&bad)?),
                None => (name_raw, raw_value),
            };
            if !is_valid_label_name(&name) || name.starts_with("__") {
                return Err(bad(format!("invalid label name {name:?}")));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(bad(format!("duplicate label name {name:?}")));
            }
            pairs.push((name, value));
        }
        match pairs.first() {
            Some((n, v)) if n == "job" && !v.is_empty() => {}
            Some((n, _)) if n == "job" => return Err(bad("job name is empty".into())),
            _ => return Err(bad("path must start with job/<job>".into())),
        }
        Ok(GroupingKey(Labels::from_pairs(pairs)))
    }

    /// Builds a key from labels (must contain a non-empty `job`).
    pub fn from_labels(labels: Labels) -> Result<GroupingKey, PushError> {
        if labels.get("job").is_none() {
            return Err(PushError::BadPath {
                path: labels.to_string(),
                reason: "grouping key has no job label".into(),
            });
        }
        Ok(GroupingKey(labels))
    }

    /// The grouping labels.
    pub fn labels(&self) -> &Labels {
        &self.0
    }

    /// The `job` value.
    pub fn job(&self) -> &str {
        self.0.get("job").unwrap_or("")
    }

    /// The canonical path (`job/<job>/<l>/<v>...`, every value base64 when it
    /// contains a `/` or is not plain), usable with [`GroupingKey::from_path`].
    pub fn to_path(&self) -> String {
        let mut parts: Vec<&Label> = self.0.iter().collect();
        // job first, like Pushgateway URLs.
        parts.sort_by_key(|l| &*l.name != "job");
        let mut s = String::new();
        for l in parts {
            if !s.is_empty() {
                s.push('/');
            }
            let plain = l
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
            if plain {
                s.push_str(&format!("{}/{}", l.name, l.value));
            } else {
                let enc = base64::engine::general_purpose::URL_SAFE.encode(l.value.as_bytes());
                s.push_str(&format!("{}@base64/{}", l.name, enc));
            }
        }
        s
    }
}

impl fmt::Display for GroupingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn decode_base64(s: &str) -> Result<String, String> {
    let trimmed = s.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|e| format!("invalid base64 value {s:?}: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("base64 value {s:?} is not UTF-8"))
}

fn percent_decode(s: &str) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid percent escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("path segment {s:?} is not UTF-8"))
}
