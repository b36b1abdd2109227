//! `MemStorage`: an in-memory [`Querier`] + [`Appendable`] **test double**
//! with plain vectors and no durability. It lets the PromQL engine's unit
//! tests and benchmarks run without the real database (the conformance
//! runner uses the real `Db` by default and this double with
//! `WATCHPOST_PROMQL_BACKEND=memory`); production code uses `Db`.
//!
//! Histogram series are stored whole and exposed like the real storage:
//! through [`Querier::select`] as `<name>_bucket{le=...}`, `<name>_sum` and
//! `<name>_count` float views, and through [`Querier::select_histograms`]
//! as columns.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::api::{
    AppendError, Appendable, Appender, CommitSummary, HistogramSeries, Querier, SelectHints,
    Series, StorageError,
};
use crate::model::{HistogramSample, Labels, METRIC_NAME, Matcher, stale_nan};

#[derive(Default)]
struct Inner {
    floats: BTreeMap<Labels, (Vec<i64>, Vec<f64>)>,
    hists: BTreeMap<Labels, (Vec<i64>, Vec<HistogramSample>)>,
}

/// The in-memory test double. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct MemStorage {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for MemStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.read();
        write!(
            f,
            "MemStorage {{ float series: {}, histogram series: {} }}",
            i.floats.len(),
            i.hists.len()
        )
    }
}

/// Formats a bucket bound like Prometheus client libraries (`0.5`, `1`,
/// `1e+06`, `+Inf`).
pub fn format_le(b: f64) -> String {
    if b == f64::INFINITY {
        return "+Inf".into();
    }
    if b == f64::NEG_INFINITY {
        return "-Inf".into();
    }
    if b.is_nan() {
        return "NaN".into();
    }
    if b == 0.0 {
        return "0".into();
    }
    let e = format!("{b:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        format!("{b}")
    }
}

fn matches_all(l: &Labels, ms: &[Matcher]) -> bool {
    ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or("")))
}

fn with_name(l: &Labels, name: &str, le: Option<&str>) -> Labels {
    let mut b = l.builder();
    b.set(METRIC_NAME, name);
    if let Some(le) = le {
        b.set("le", le);
    }
    b.build()
}

fn cut(ts: &[i64], min_t: i64, max_t: i64) -> (usize, usize) {
    (
        ts.partition_point(|&t| t < min_t),
        ts.partition_point(|&t| t <= max_t),
    )
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes everything (the `clear` command of test scripts).
    pub fn clear(&self) {
        *self.inner.write() = Inner::default();
    }

    /// Number of float series plus histogram series.
    pub fn num_series(&self) -> usize {
        let i = self.inner.read();
        i.floats.len() + i.hists.len()
    }

    fn insert_float(
        inner: &mut Inner,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<bool, AppendError> {
        if inner.hists.contains_key(labels) {
            return Err(AppendError::KindMismatch {
                series: labels.to_string(),
                existing: "histogram",
                attempted: "float",
            });
        }
        let (ts, vs) = inner.floats.entry(labels.clone()).or_default();
        let new = ts.is_empty();
        let pos = ts.partition_point(|&x| x < t);
        if pos < ts.len() && ts[pos] == t {
            if vs[pos].to_bits() != v.to_bits() {
                return Err(AppendError::DuplicateTimestamp {
                    series: labels.to_string(),
                    t,
                });
            }
            return Ok(false);
        }
        ts.insert(pos, t);
        vs.insert(pos, v);
        Ok(new)
    }

    fn insert_hist(
        inner: &mut Inner,
        labels: &Labels,
        t: i64,
        h: &HistogramSample,
    ) -> Result<bool, AppendError> {
        if h.bucket_counts.len() != h.upper_bounds.len() + 1 {
            return Err(AppendError::InvalidSeries {
                series: labels.to_string(),
                reason: format!(
                    "histogram has {} bucket counts for {} finite bounds",
                    h.bucket_counts.len(),
                    h.upper_bounds.len()
                ),
            });
        }
        if inner.floats.contains_key(labels) {
            return Err(AppendError::KindMismatch {
                series: labels.to_string(),
                existing: "float",
                attempted: "histogram",
            });
        }
        let (ts, hs) = inner.hists.entry(labels.clone()).or_default();
        let new = ts.is_empty();
        let pos = ts.partition_point(|&x| x < t);
        if pos < ts.len() && ts[pos] == t {
            if hs[pos] != *h {
                return Err(AppendError::DuplicateTimestamp {
                    series: labels.to_string(),
                    t,
                });
            }
            return Ok(false);
        }
        ts.insert(pos, t);
        hs.insert(pos, h.clone());
        Ok(new)
    }
}

enum Op {
    F(Labels, i64, f64),
    H(Labels, i64, HistogramSample),
}

struct MemAppender<'a> {
    store: &'a MemStorage,
    ops: Vec<Op>,
}

impl Appender for MemAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        if labels.is_empty() {
            return Err(AppendError::InvalidSeries {
                series: "{}".into(),
                reason: "empty label set".into(),
            });
        }
        self.ops.push(Op::F(labels.clone(), t, v));
        Ok(())
    }

    fn append_histogram(
        &mut self,
        labels: &Labels,
        t: i64,
        h: &HistogramSample,
    ) -> Result<(), AppendError> {
        if labels.is_empty() {
            return Err(AppendError::InvalidSeries {
                series: "{}".into(),
                reason: "empty label set".into(),
            });
        }
        self.ops.push(Op::H(labels.clone(), t, h.clone()));
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError> {
        let mut inner = self.store.inner.write();
        let mut sum = CommitSummary::default();
        for op in self.ops {
            let r = match &op {
                Op::F(l, t, v) => {
                    MemStorage::insert_float(&mut inner, l, *t, *v).map(|n| (n, true))
                }
                Op::H(l, t, h) => MemStorage::insert_hist(&mut inner, l, *t, h).map(|n| (n, false)),
            };
            let (new, float) = r.map_err(|e| StorageError::Other(e.to_string()))?;
            sum.new_series += new as u64;
            if float {
                sum.float_samples += 1;
            } else {
                sum.histogram_samples += 1;
            }
        }
        Ok(sum)
    }

    fn rollback(self: Box<Self>) {}
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(MemAppender {
            store: self,
            ops: Vec::new(),
        })
    }
}

impl MemStorage {
    /// All float views of one histogram series, as (labels, column getter).
    fn views(
        labels: &Labels,
        ts: &[i64],
        hs: &[HistogramSample],
        a: usize,
        b: usize,
    ) -> Vec<Series> {
        let family = labels.metric_name().unwrap_or("").to_string();
        let mut bounds: Vec<f64> = Vec::new();
        for h in &hs[a..b] {
            for &ub in h.upper_bounds.iter() {
                if !bounds.contains(&ub) {
                    bounds.push(ub);
                }
            }
        }
        bounds.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
        bounds.push(f64::INFINITY);
        let mut out = Vec::new();
        for &ub in &bounds {
            let mut s = Series {
                labels: with_name(labels, &format!("{family}_bucket"), Some(&format_le(ub))),
                timestamps: Vec::new(),
                values: Vec::new(),
            };
            for (t, h) in ts[a..b].iter().zip(&hs[a..b]) {
                let idx = if ub == f64::INFINITY {
                    Some(h.upper_bounds.len())
                } else {
                    h.upper_bounds.iter().position(|x| *x == ub)
                };
                if let Some(i) = idx {
                    s.timestamps.push(*t);
                    s.values.push(if h.is_stale() {
                        stale_nan()
                    } else {
                        h.bucket_counts[i]
                    });
                }
            }
            out.push(s);
        }
        for (suffix, get) in [("_sum", 0), ("_count", 1)] {
            out.push(Series {
                labels: with_name(labels, &format!("{family}{suffix}"), None),
                timestamps: ts[a..b].to_vec(),
                values: hs[a..b]
                    .iter()
                    .map(|h| {
                        if h.is_stale() {
                            stale_nan()
                        } else if get == 0 {
                            h.sum
                        } else {
                            h.count
                        }
                    })
                    .collect(),
            });
        }
        out
    }
}

impl Querier for MemStorage {
    fn select(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, StorageError> {
        let inner = self.inner.read();
        let mut out = Vec::new();
        for (l, (ts, vs)) in &inner.floats {
            if !matches_all(l, matchers) {
                continue;
            }
            let (a, b) = cut(ts, hints.min_t, hints.max_t);
            if a == b && !hints.labels_only {
                continue;
            }
            out.push(Series {
                labels: l.clone(),
                timestamps: ts[a..b].to_vec(),
                values: vs[a..b].to_vec(),
            });
        }
        if !hints.skip_histogram_views {
            let mut added = false;
            for (l, (ts, hs)) in &inner.hists {
                // Cheap pre-checks before building any view: the family's
                // own labels, and the three possible view names.
                let family_ok = matchers
                    .iter()
                    .filter(|m| m.name != METRIC_NAME && m.name != "le")
                    .all(|m| m.matches(l.get(&m.name).unwrap_or("")));
                let family = l.metric_name().unwrap_or("");
                let name_ok = ["_bucket", "_sum", "_count"].iter().any(|suf| {
                    let n = format!("{family}{suf}");
                    matchers
                        .iter()
                        .filter(|m| m.name == METRIC_NAME)
                        .all(|m| m.matches(&n))
                });
                if !family_ok || !name_ok {
                    continue;
                }
                let (a, b) = cut(ts, hints.min_t, hints.max_t);
                if a == b && !hints.labels_only {
                    continue;
                }
                for v in Self::views(l, ts, hs, a, b) {
                    if matches_all(&v.labels, matchers) {
                        out.push(v);
                        added = true;
                    }
                }
            }
            if added {
                out.sort_by(|x, y| x.labels.cmp(&y.labels));
            }
        }
        if hints.labels_only {
            for s in &mut out {
                s.timestamps.clear();
                s.values.clear();
            }
        }
        Ok(out)
    }

    fn select_histograms(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        let inner = self.inner.read();
        let mut out = Vec::new();
        for (l, (ts, hs)) in &inner.hists {
            let family = l.metric_name().unwrap_or("");
            let view = with_name(l, &format!("{family}_bucket"), None);
            if !matches_all(&view, matchers) {
                continue;
            }
            let (a, b) = cut(ts, hints.min_t, hints.max_t);
            let mut start = a;
            while start < b {
                let bounds = hs[start].upper_bounds.clone();
                let mut end = start;
                while end < b && hs[end].upper_bounds == bounds {
                    end += 1;
                }
                let nb = bounds.len() + 1;
                let mut hsr = HistogramSeries {
                    labels: view.clone(),
                    upper_bounds: Arc::clone(&bounds),
                    timestamps: ts[start..end].to_vec(),
                    buckets: vec![Vec::with_capacity(end - start); nb],
                    sum: Vec::with_capacity(end - start),
                    count: Vec::with_capacity(end - start),
                };
                for h in &hs[start..end] {
                    let stale = h.is_stale();
                    for (i, col) in hsr.buckets.iter_mut().enumerate() {
                        col.push(if stale {
                            stale_nan()
                        } else {
                            h.bucket_counts[i]
                        });
                    }
                    hsr.sum.push(if stale { stale_nan() } else { h.sum });
                    hsr.count.push(if stale { stale_nan() } else { h.count });
                }
                out.push(hsr);
                start = end;
            }
        }
        Ok(out)
    }

    fn label_names(
        &self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let series = self.select(hints, matchers)?;
        let mut names: Vec<String> = series
            .iter()
            .flat_map(|s| s.labels.iter().map(|l| l.name.to_string()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let series = self.select(hints, matchers)?;
        let mut vals: Vec<String> = series
            .iter()
            .filter_map(|s| s.labels.get(name).map(str::to_string))
            .collect();
        vals.sort();
        vals.dedup();
        Ok(vals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    #[test]
    fn views_and_columns() {
        let s = MemStorage::new();
        let mut a = s.appender();
        let l = Labels::from_pairs([(METRIC_NAME, "lat"), ("job", "x")]);
        let bounds: Arc<[f64]> = Arc::from(vec![0.1, 1.0]);
        for (t, c) in [(0, 1.0), (1000, 3.0)] {
            let h = HistogramSample {
                upper_bounds: bounds.clone(),
                bucket_counts: vec![c, c * 2.0, c * 3.0],
                sum: c,
                count: c * 3.0,
            };
            a.append_histogram(&l, t, &h).unwrap();
        }
        a.append(&Labels::from_pairs([(METRIC_NAME, "up")]), 0, 1.0)
            .unwrap();
        a.commit().unwrap();
        let m = [Matcher::new(MatchOp::RegexMatch, METRIC_NAME, "lat_.*").unwrap()];
        let got = s.select(&SelectHints::range(0, 1000), &m).unwrap();
        let names: Vec<String> = got.iter().map(|s| s.labels.to_string()).collect();
        assert_eq!(
            names,
            vec![
                r#"lat_bucket{job="x", le="+Inf"}"#,
                r#"lat_bucket{job="x", le="0.1"}"#,
                r#"lat_bucket{job="x", le="1"}"#,
                r#"lat_count{job="x"}"#,
                r#"lat_sum{job="x"}"#,
            ]
        );
        assert_eq!(got[1].values, vec![1.0, 3.0]);
        let mut hints = SelectHints::range(0, 1000);
        hints.skip_histogram_views = true;
        assert!(s.select(&hints, &m).unwrap().is_empty());
        let hs = s
            .select_histograms(&hints, &[Matcher::equal(METRIC_NAME, "lat_bucket")])
            .unwrap();
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].buckets[2], vec![3.0, 9.0]);
        assert_eq!(format_le(1e6), "1e+06");
        assert_eq!(format_le(0.25), "0.25");
    }
}
