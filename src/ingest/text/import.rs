//! From parsed text to storage writes: series labels, default timestamps,
//! histogram assembly, and the all-or-nothing append.
//!
//! A family declared `# TYPE x histogram` is written as histogram samples
//! (through [`Appender::append_histogram`]) for every label set and
//! timestamp whose `x_bucket{le=...}`, `x_sum` and `x_count` lines are all
//! present and consistent (bounds unique, a `+Inf` bucket, cumulative
//! counts non-decreasing, `x_count` equal to the `+Inf` bucket). Any other
//! group is written as the plain float series it was sent as, so nothing is
//! lost or altered.

use std::collections::HashMap;
use std::sync::Arc;

use super::parse::{Entry, MetricType, ParseError, TextSample, parse_bytes};
use crate::model::{HistogramSample, Labels, LabelsBuilder, METRIC_NAME};
use crate::storage::{AppendError, Appendable, CommitSummary, StorageError};

/// One float sample to write, with the input line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatPoint {
    /// Series labels, including `__name__`.
    pub labels: Labels,
    /// Timestamp (ms).
    pub t: i64,
    /// Value.
    pub v: f64,
    /// 1-based input line.
    pub line: usize,
}

/// One histogram sample to write.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPoint {
    /// Histogram series labels; `__name__` is the family name.
    pub labels: Labels,
    /// Timestamp (ms).
    pub t: i64,
    /// The assembled sample.
    pub h: HistogramSample,
    /// 1-based line of the group's first line.
    pub line: usize,
}

/// Everything one request writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportBatch {
    /// Float samples in input order.
    pub floats: Vec<FloatPoint>,
    /// Histogram samples in order of their first line.
    pub histograms: Vec<HistogramPoint>,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The body is not valid text exposition format.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Storage refused one sample; the whole request was rolled back.
    #[error("line {line}: {source}")]
    Rejected {
        /// 1-based input line of the refused sample.
        line: usize,
        /// Storage's reason.
        #[source]
        source: AppendError,
    },
    /// The commit failed (I/O, closed database); nothing is acknowledged.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[derive(Default)]
struct Group {
    first_line: usize,
    buckets: Vec<(String, f64, usize)>,
    sum: Option<f64>,
    count: Option<f64>,
    /// The original lines, for the float fallback.
    members: Vec<FloatPoint>,
}

fn series_labels(s: &TextSample) -> Labels {
    let mut b = LabelsBuilder::new();
    b.set(METRIC_NAME, s.name.as_str());
    for (n, v) in &s.labels {
        b.set(n.as_str(), v.as_str());
    }
    b.build()
}

/// Turns parsed entries into writes. Samples without a timestamp get
/// `default_t` (ms; the server passes "now" from its clock).
pub fn build_batch(entries: &[Entry], default_t: i64) -> ImportBatch {
    let hist_families: std::collections::HashSet<&str> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Type {
                name,
                kind: MetricType::Histogram,
            } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut batch = ImportBatch::default();
    // Group key: family, labels without `le` (and without name), timestamp.
    let mut groups: HashMap<(String, Labels, i64), Group> = HashMap::new();
    let mut order: Vec<(String, Labels, i64)> = Vec::new();
    for e in entries {
        let Entry::Sample(s) = e else { continue };
        let t = s.timestamp.unwrap_or(default_t);
        let point = FloatPoint {
            labels: series_labels(s),
            t,
            v: s.value,
            line: s.line,
        };
        let role = histogram_role(&s.name, &hist_families);
        let Some((family, role)) = role else {
            batch.floats.push(point);
            continue;
        };
        let mut key_labels = point.labels.builder();
        key_labels.del(METRIC_NAME).del("le");
        let key = (family.to_string(), key_labels.build(), t);
        let g = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Group {
                first_line: s.line,
                ..Group::default()
            }
        });
        match role {
            Role::Bucket => match point.labels.get("le") {
                Some(le) => g.buckets.push((le.to_string(), s.value, s.line)),
                // A `_bucket` line without `le` can never be part of a
                // histogram: poison the group so it falls back to floats.
                None => g.buckets.push((String::new(), s.value, s.line)),
            },
            Role::Sum => {
                if g.sum.replace(s.value).is_some() {
                    g.buckets.push((String::new(), s.value, s.line));
                }
            }
            Role::Count => {
                if g.count.replace(s.value).is_some() {
                    g.buckets.push((String::new(), s.value, s.line));
                }
            }
        }
        g.members.push(point);
    }
    let mut bounds_cache: HashMap<Vec<u64>, Arc<[f64]>> = HashMap::new();
    for key in order {
        let Some(g) = groups.remove(&key) else {
            continue;
        };
        let (family, labels, t) = key;
        match assemble(&g, &mut bounds_cache) {
            Some(h) => {
                let mut b = labels.builder();
                b.set(METRIC_NAME, family.as_str());
                batch.histograms.push(HistogramPoint {
                    labels: b.build(),
                    t,
                    h,
                    line: g.first_line,
                });
            }
            None => batch.floats.extend(g.members),
        }
    }
    batch.floats.sort_by_key(|p| p.line);
    batch
}

enum Role {
    Bucket,
    Sum,
    Count,
}

fn histogram_role<'a>(
    name: &'a str,
    families: &std::collections::HashSet<&str>,
) -> Option<(&'a str, Role)> {
    for (suffix, role) in [
        ("_bucket", Role::Bucket),
        ("_sum", Role::Sum),
        ("_count", Role::Count),
    ] {
        if let Some(base) = name.strip_suffix(suffix)
            && families.contains(base)
        {
            return Some((base, role));
        }
    }
    None
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        _ => s.parse::<f64>().ok().filter(|v| !v.is_nan()),
    }
}

fn assemble(g: &Group, cache: &mut HashMap<Vec<u64>, Arc<[f64]>>) -> Option<HistogramSample> {
    let (sum, count) = (g.sum?, g.count?);
    let mut buckets: Vec<(f64, f64)> = g
        .buckets
        .iter()
        .map(|(le, v, _)| parse_le(le).map(|b| (b, *v)))
        .collect::<Option<_>>()?;
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets
        .windows(2)
        .any(|w| w[0].0 == w[1].0 || w[1].1 < w[0].1)
    {
        return None;
    }
    if buckets.iter().any(|(_, v)| v.is_nan()) {
        return None;
    }
    let (inf_bound, inf_count) = *buckets.last()?;
    if inf_bound != f64::INFINITY || inf_count != count {
        return None;
    }
    let finite: Vec<f64> = buckets
        .iter()
        .map(|b| b.0)
        .filter(|b| b.is_finite())
        .collect();
    let key: Vec<u64> = finite.iter().map(|b| b.to_bits()).collect();
    let upper_bounds = cache
        .entry(key)
        .or_insert_with(|| Arc::from(finite.as_slice()))
        .clone();
    Some(HistogramSample {
        upper_bounds,
        bucket_counts: buckets.iter().map(|b| b.1).collect(),
        sum,
        count,
    })
}

/// What a successful import wrote, plus the metadata lines it carried.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportOutcome {
    /// What the commit made durable.
    pub summary: CommitSummary,
    /// The `# HELP` and `# TYPE` entries of the body, in order.
    pub metadata: Vec<Entry>,
}

/// Parses `body` and writes it in one appender batch. Returns only after
/// the commit, i.e. once the samples are durable. On any error nothing of
/// the request is written.
pub fn import(
    db: &dyn Appendable,
    body: &[u8],
    default_t: i64,
) -> Result<ImportOutcome, ImportError> {
    let entries = parse_bytes(body)?;
    let batch = build_batch(&entries, default_t);
    let mut app = db.appender();
    for p in &batch.floats {
        if let Err(source) = app.append(&p.labels, p.t, p.v) {
            app.rollback();
            return Err(ImportError::Rejected {
                line: p.line,
                source,
            });
        }
    }
    for p in &batch.histograms {
        if let Err(source) = app.append_histogram(&p.labels, p.t, &p.h) {
            app.rollback();
            return Err(ImportError::Rejected {
                line: p.line,
                source,
            });
        }
    }
    let summary = app.commit()?;
    let metadata = entries
        .into_iter()
        .filter(|e| !matches!(e, Entry::Sample(_)))
        .collect();
    Ok(ImportOutcome { summary, metadata })
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn batch(s: &str) -> ImportBatch {
        build_batch(&parse(s).unwrap(), 1000)
    }

    const HIST: &str = "# TYPE rt histogram
rt_bucket{path=\"/\",le=\"0.1\"} 1
rt_bucket{path=\"/\",le=\"1\"} 3
rt_bucket{path=\"/\",le=\"+Inf\"} 4
rt_sum{path=\"/\"} 2.5
rt_count{path=\"/\"} 4
other 7 5
";

    #[test]
    fn complete_histogram_is_one_sample() {
        let b = batch(HIST);
        assert_eq!(b.floats.len(), 1);
        assert_eq!(b.floats[0].t, 5);
        assert_eq!(b.histograms.len(), 1);
        let h = &b.histograms[0];
        assert_eq!(
            h.labels,
            Labels::from_pairs([(METRIC_NAME, "rt"), ("path", "/")])
        );
        assert_eq!((h.t, h.line), (1000, 2));
        assert_eq!(&*h.h.upper_bounds, &[0.1, 1.0]);
        assert_eq!(h.h.bucket_counts, vec![1.0, 3.0, 4.0]);
        assert_eq!((h.h.sum, h.h.count), (2.5, 4.0));
    }

    #[test]
    fn incomplete_or_untyped_histograms_stay_floats() {
        // Missing _count.
        let b = batch(&HIST.replace("rt_count{path=\"/\"} 4\n", ""));
        assert_eq!((b.floats.len(), b.histograms.len()), (5, 0));
        // Count disagrees with +Inf.
        let b = batch(&HIST.replace("rt_count{path=\"/\"} 4", "rt_count{path=\"/\"} 5"));
        assert_eq!((b.floats.len(), b.histograms.len()), (6, 0));
        // Not cumulative.
        let b = batch(&HIST.replace("} 3", "} 0"));
        assert_eq!(b.histograms.len(), 0);
        // Untyped.
        let b = batch(&HIST.replace("# TYPE rt histogram\n", ""));
        assert_eq!((b.floats.len(), b.histograms.len()), (6, 0));
        // Floats keep input order and line numbers.
        assert!(b.floats.windows(2).all(|w| w[0].line < w[1].line));
    }

    #[test]
    fn groups_split_by_timestamp() {
        let s = "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1 10\nh_sum 1 10\nh_count 1 10\n\
                 h_bucket{le=\"+Inf\"} 2 20\nh_sum 3 20\nh_count 2 20\n";
        let b = batch(s);
        assert_eq!(b.histograms.len(), 2);
        assert_eq!(b.histograms[1].t, 20);
        assert!(b.histograms[0].h.upper_bounds.is_empty());
        assert!(Arc::ptr_eq(
            &b.histograms[0].h.upper_bounds,
            &b.histograms[1].h.upper_bounds
        ));
    }
}
