//! Label validation shared by the push doors.
//!
//! Names follow Prometheus's classic rules (`[a-zA-Z_][a-zA-Z0-9_]*` for
//! label names, `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names) because the
//! PromQL layer does not support quoted UTF-8 names.

use std::sync::Arc;

use crate::model::{Label, Labels, METRIC_NAME};

/// True for a valid classic label name.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// True for a valid classic metric name.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Prints raw (possibly invalid) pairs as `{a="b", c="d"}` for error messages,
/// truncating long values so a hostile label cannot blow up the response.
pub(crate) fn print_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    const MAX_VALUE: usize = 128;
    let mut out = String::from("{");
    for (i, (n, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if i >= 32 {
            out.push_str("...");
            break;
        }
        let v = match v.char_indices().nth(MAX_VALUE) {
            Some((cut, _)) => format!("{}...", &v[..cut]),
            None => v.to_string(),
        };
        out.push_str(&format!("{n:?}={v:?}"));
    }
    out.push('}');
    out
}

/// Validates raw label pairs (any order) and returns them sorted.
///
/// Rejects empty names, invalid names, invalid metric names and duplicate
/// names; tolerates unsorted input.
fn checked_sorted<'a>(pairs: &[(&'a str, &'a str)]) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut v: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
    for &(n, val) in pairs {
        if n.is_empty() {
            return Err("empty label name".into());
        }
        if n == METRIC_NAME {
            if !is_valid_metric_name(val) {
                return Err(format!("invalid metric name {val:?}"));
            }
        } else if !is_valid_label_name(n) {
            return Err(format!("invalid label name {n:?}"));
        }
        v.push((n, val));
    }
    // Senders normally send sorted labels; sort only when needed.
    if !v.windows(2).all(|w| w[0].0 <= w[1].0) {
        v.sort_by(|a, b| a.0.cmp(b.0));
    }
    if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("duplicate label name {:?}", w[0].0));
    }
    Ok(v)
}

/// Validates raw label pairs (see `checked_sorted`) and builds the label
/// set. Pairs with empty values are dropped (an empty value means
/// "absent"); an empty result is rejected.
pub(crate) fn labels_from_pairs(pairs: &[(&str, &str)]) -> Result<Labels, String> {
    labels_with(pairs, &mut |s| Arc::from(s))
}

/// Like [`labels_from_pairs`], allocating strings through `intern`.
pub(crate) fn labels_with<'a>(
    pairs: &[(&'a str, &'a str)],
    intern: &mut dyn FnMut(&'a str) -> Arc<str>,
) -> Result<Labels, String> {
    let v = checked_sorted(pairs)?;
    let labels: Vec<Label> = v
        .into_iter()
        .filter(|(_, val)| !val.is_empty())
        .map(|(n, val)| Label {
            name: intern(n),
            value: intern(val),
        })
        .collect();
    if labels.is_empty() {
        return Err("empty label set".into());
    }
    Ok(Labels::from_sorted(labels))
}
