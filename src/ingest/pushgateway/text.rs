//! Text exposition bodies (`text/plain; version=0.0.4`) to pushed families,
//! on top of the `ingest::text` line parser. Samples are grouped into
//! families the way Prometheus's text parser does: `_bucket`/`_sum`/`_count`
//! (and `{quantile}`) lines join their `histogram`/`summary` family; a name
//! without a `# TYPE` is `untyped`.

use std::collections::HashMap;

use crate::ingest::text::{self, Entry, MetricType};

use super::PushError;
use super::family::{FamilyKind, PushedFamily, PushedMetric, PushedValue};

/// Per-metric accumulation for summaries and histograms.
#[derive(Default)]
struct Parts {
    count: Option<f64>,
    sum: Option<f64>,
    pairs: Vec<(f64, f64)>,
    timestamp_ms: Option<i64>,
}

/// A metric's sorted label pairs.
type LabelKey = Vec<(String, String)>;

struct Fam {
    name: String,
    help: String,
    kind: FamilyKind,
    /// Metric label sets in first-seen order with their parts or value.
    order: Vec<LabelKey>,
    singles: HashMap<LabelKey, (f64, Option<i64>)>,
    parts: HashMap<LabelKey, Parts>,
}

fn kind_of(t: MetricType) -> FamilyKind {
    match t {
        MetricType::Counter => FamilyKind::Counter,
        MetricType::Gauge => FamilyKind::Gauge,
        MetricType::Histogram => FamilyKind::Histogram,
        MetricType::Summary => FamilyKind::Summary,
        _ => FamilyKind::Untyped,
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Parses a text-format push body into families.
pub fn families_from_text(body: &[u8]) -> Result<Vec<PushedFamily>, PushError> {
    let entries = text::parse_bytes(body).map_err(|e| PushError::BadBody {
        format: "text",
        offset: 0,
        reason: e.to_string(),
    })?;
    let mut types: HashMap<String, FamilyKind> = HashMap::new();
    let mut helps: HashMap<String, String> = HashMap::new();
    let mut fams: Vec<Fam> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for e in entries {
        let s = match e {
            Entry::Type { name, kind } => {
                types.insert(name, kind_of(kind));
                continue;
            }
            Entry::Help { name, text } => {
                helps.insert(name, text);
                continue;
            }
            Entry::Sample(s) => s,
        };
        let bad = |reason: String| PushError::BadBody {
            format: "text",
            offset: 0,
            reason: format!("line {}: {reason}", s.line),
        };
        // Which family does this sample belong to, and as which part?
        let (family, part) = match types.get(&s.name) {
            Some(_) => (s.name.clone(), ""),
            None => {
                let mut found = (s.name.clone(), "");
                for suffix in ["_bucket", "_sum", "_count"] {
                    if let Some(base) = s.name.strip_suffix(suffix) {
                        let ok = match types.get(base) {
                            Some(FamilyKind::Histogram) => true,
                            Some(FamilyKind::Summary) => suffix != "_bucket",
                            _ => false,
                        };
                        if ok {
                            found = (base.to_string(), suffix);
                        }
                    }
                }
                found
            }
        };
        let kind = types.get(&family).copied().unwrap_or(FamilyKind::Untyped);
        let i = *index.entry(family.clone()).or_insert_with(|| {
            fams.push(Fam {
                help: helps.get(&family).cloned().unwrap_or_default(),
                name: family.clone(),
                kind,
                order: Vec::new(),
                singles: HashMap::new(),
                parts: HashMap::new(),
            });
            fams.len() - 1
        });
        let f = &mut fams[i];
        if f.help.is_empty()
            && let Some(h) = helps.get(&family)
        {
            f.help = h.clone();
        }
        let special = match (kind, part) {
            (FamilyKind::Histogram, "_bucket") => Some("le"),
            (FamilyKind::Summary, "") => Some("quantile"),
            _ => None,
        };
        let mut labels: Vec<(String, String)> = Vec::with_capacity(s.labels.len());
        let mut special_value = None;
        for (n, v) in s.labels {
            if Some(n.as_str()) == special {
                special_value = Some(v);
            } else if !v.is_empty() {
                labels.push((n, v));
            }
        }
        labels.sort();
        match kind {
            FamilyKind::Histogram | FamilyKind::Summary | FamilyKind::GaugeHistogram => {
                if !f.parts.contains_key(&labels) {
                    f.order.push(labels.clone());
                }
                let p = f.parts.entry(labels).or_default();
                p.timestamp_ms = p.timestamp_ms.or(s.timestamp);
                match part {
                    "_sum" => p.sum = Some(s.value),
                    "_count" => p.count = Some(s.value),
                    _ => {
                        let name = special.unwrap_or("le");
                        let raw = special_value.ok_or_else(|| {
                            bad(format!("{} sample without a {name} label", s.name))
                        })?;
                        let x = parse_float(&raw)
                            .ok_or_else(|| bad(format!("{name} label {raw:?} is not a float")))?;
                        p.pairs.push((x, s.value));
                    }
                }
            }
            _ => {
                if f.singles
                    .insert(labels.clone(), (s.value, s.timestamp))
                    .is_some()
                {
                    return Err(bad(format!("duplicate sample for {}", s.name)));
                }
                f.order.push(labels);
            }
        }
    }
    let mut out = Vec::with_capacity(fams.len());
    for mut f in fams {
        let mut metrics = Vec::with_capacity(f.order.len());
        for labels in std::mem::take(&mut f.order) {
            let (value, timestamp_ms) = match f.kind {
                FamilyKind::Histogram | FamilyKind::GaugeHistogram => {
                    let mut p = f.parts.remove(&labels).unwrap_or_default();
                    p.pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let inf = p
                        .pairs
                        .iter()
                        .find(|(b, _)| *b == f64::INFINITY)
                        .map(|x| x.1);
                    let count = p.count.or(inf).unwrap_or(0.0);
                    (
                        PushedValue::Histogram {
                            count,
                            sum: p.sum.unwrap_or(0.0),
                            buckets: p.pairs,
                        },
                        p.timestamp_ms,
                    )
                }
                FamilyKind::Summary => {
                    let p = f.parts.remove(&labels).unwrap_or_default();
                    (
                        PushedValue::Summary {
                            count: p.count.unwrap_or(0.0),
                            sum: p.sum.unwrap_or(0.0),
                            quantiles: p.pairs,
                        },
                        p.timestamp_ms,
                    )
                }
                _ => {
                    let (v, t) = f.singles.get(&labels).copied().unwrap_or((0.0, None));
                    (PushedValue::Single(v), t)
                }
            };
            metrics.push(PushedMetric {
                labels,
                value,
                timestamp_ms,
            });
        }
        out.push(PushedFamily {
            name: f.name,
            help: f.help,
            kind: f.kind,
            metrics,
        });
    }
    Ok(out)
}
