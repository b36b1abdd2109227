//! `histogram_quantile` and `histogram_fraction` over classic `le` buckets,
//! with Prometheus's bucket fix-ups (coalescing equal bounds, forcing
//! monotonicity, ignoring tiny float noise).

use std::collections::HashMap;

use crate::model::{Labels, METRIC_NAME};

use super::super::ast::Call;
use super::super::engine::EvalError;
use super::{Collector, Ctx, Grid, Series, drop_name, go_format_g};

/// Relative tolerance below which bucket count differences are float noise.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;
const MIN_NORMAL: f64 = 2.2250738585072014e-308;

/// One classic bucket: upper bound and cumulative count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub ub: f64,
    pub count: f64,
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn sort_and_coalesce(buckets: &mut Vec<Bucket>) {
    buckets.sort_by(|a, b| a.ub.partial_cmp(&b.ub).unwrap_or(std::cmp::Ordering::Equal));
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.ub == b.ub => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

/// Returns true when monotonicity had to be forced.
fn ensure_monotonic(buckets: &mut [Bucket]) -> bool {
    let mut forced = false;
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

/// Prometheus's `BucketQuantile`. Returns (quantile, forced_monotonicity).
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    sort_and_coalesce(buckets);
    if buckets.is_empty() || buckets[buckets.len() - 1].ub != f64::INFINITY {
        return (f64::NAN, false);
    }
    let forced = ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|x| x.count < rank);
    if b == n {
        return (buckets[n - 1].ub, forced);
    }
    if b == 0 && buckets[0].ub <= 0.0 {
        return (buckets[0].ub, forced);
    }
    let mut start = 0.0;
    let end = buckets[b].ub;
    let mut count = buckets[b].count;
    if b > 0 {
        start = buckets[b - 1].ub;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Prometheus's `BucketFraction` for classic buckets.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    sort_and_coalesce(buckets);
    if buckets.is_empty() || buckets[buckets.len() - 1].ub != f64::INFINITY {
        return f64::NAN;
    }
    ensure_monotonic(buckets);
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, b) in buckets.iter().enumerate() {
        let lb = if i == 0 {
            f64::NEG_INFINITY
        } else {
            buckets[i - 1].ub
        };
        let ub = b.ub;
        let interpolate = |v: f64| -> f64 {
            if lb == f64::NEG_INFINITY {
                // The first bucket has infinite width: for a bound <= 0 its
                // observations count as lying below any value inside it; for
                // a positive bound they are spread linearly over (0, ub].
                if ub <= 0.0 {
                    return b.count;
                }
                if v < 0.0 {
                    return rank;
                }
                return rank + (b.count - rank) * (v / ub);
            }
            if ub == f64::INFINITY {
                return rank;
            }
            rank + (b.count - rank) * (v - lb) / (ub - lb)
        };
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lb < lower && ub > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Parses a `le` label value like Go's `strconv.ParseFloat`.
pub(crate) fn parse_le(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t != s {
        return None;
    }
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    t.parse::<f64>().ok()
}

/// One output group of `histogram_quantile`: output labels, metric name
/// (for annotations) and its buckets as (upper bound, value per step), in
/// input order.
pub(crate) struct QuantileGroup<'v> {
    pub labels: Labels,
    pub name: String,
    pub buckets: Vec<(f64, &'v [Option<f64>])>,
}

/// Classic buckets of a vector grouped by labels-without-`le`.
pub(crate) struct BucketGroups {
    /// Output labels (no `le`, no `__name__`) per group.
    pub labels: Vec<Labels>,
    /// Metric name per group (for annotations).
    pub names: Vec<String>,
    /// (group, upper bound) per input series; None when `le` is bad.
    pub member: Vec<Option<(usize, f64)>>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn bucket_groups(&mut self, v: &[Series]) -> BucketGroups {
        let mut idx: HashMap<Labels, usize> = HashMap::new();
        let mut bg = BucketGroups {
            labels: Vec::new(),
            names: Vec::new(),
            member: Vec::new(),
        };
        for s in v {
            let le = s.labels.get("le").unwrap_or("");
            let name = s.labels.get(METRIC_NAME).unwrap_or("").to_string();
            let Some(ub) = parse_le(le) else {
                self.warn(format!(
                    "bucket label \"le\" is missing or has a malformed value of \"{le}\" for metric name \"{name}\""
                ));
                bg.member.push(None);
                continue;
            };
            let key = s.labels.drop_names(&["le"]);
            let n = bg.labels.len();
            let id = *idx.entry(key.clone()).or_insert(n);
            if id == n {
                bg.labels.push(drop_name(&key));
                bg.names.push(name);
            }
            bg.member.push(Some((id, ub)));
        }
        bg
    }

    /// `histogram_quantile(q, buckets)` over classic buckets.
    pub(crate) fn eval_histogram_quantile(
        &mut self,
        c: &Call,
        g: &Grid,
    ) -> Result<Vec<Series>, EvalError> {
        let q = self.eval_scalar(&c.args[0], g)?;
        if let Some(fast) = self.histogram_quantile_fast(c, &q, g)? {
            return Ok(fast);
        }
        let v = self.eval_vector(&c.args[1], g)?;
        self.quantile_over_buckets(&q, &v, g)
    }

    /// `histogram_quantiles(buckets, "label", q1, q2, ...)` (experimental in
    /// Prometheus 3.x): one output series per quantile, told apart by `label`.
    pub(crate) fn eval_histogram_quantiles(
        &mut self,
        c: &Call,
        g: &Grid,
    ) -> Result<Vec<Series>, EvalError> {
        let v = self.eval_vector(&c.args[0], g)?;
        let label = self.eval_string(&c.args[1], g)?;
        let mut col = Collector::new(g.n);
        for qe in &c.args[2..] {
            let q = self.eval_scalar(qe, g)?;
            let mut value = go_format_g(q.first().copied().unwrap_or(f64::NAN));
            if value.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                value.push_str(".0");
            }
            for s in self.quantile_over_buckets(&q, &v, g)? {
                let mut b = s.labels.builder();
                b.set(label.as_str(), value.as_str());
                let slot = col.slot(b.build(), false);
                for (i, x) in s.vals.iter().enumerate() {
                    if let Some(x) = x {
                        col.set(slot, i, *x)?;
                    }
                }
            }
        }
        Ok(col.finish())
    }

    /// The generic `histogram_quantile` over an evaluated bucket vector.
    pub(crate) fn quantile_over_buckets(
        &mut self,
        q: &[f64],
        v: &[Series],
        g: &Grid,
    ) -> Result<Vec<Series>, EvalError> {
        let bg = self.bucket_groups(v);
        let mut groups: Vec<QuantileGroup> = bg
            .labels
            .into_iter()
            .zip(bg.names)
            .map(|(labels, name)| QuantileGroup {
                labels,
                name,
                buckets: Vec::new(),
            })
            .collect();
        for (s, m) in v.iter().zip(&bg.member) {
            if let Some((id, ub)) = m {
                groups[*id].buckets.push((*ub, &s.vals));
            }
        }
        self.quantiles_of_groups(q, &groups, g)
    }

    /// The shared core of the generic and the column path: per step and
    /// group, gathers the buckets present and computes the quantile.
    pub(crate) fn quantiles_of_groups(
        &mut self,
        q: &[f64],
        groups: &[QuantileGroup],
        g: &Grid,
    ) -> Result<Vec<Series>, EvalError> {
        let mut warned = false;
        let mut col = Collector::new(g.n);
        let slots: Vec<usize> = groups
            .iter()
            .map(|gr| col.slot(gr.labels.clone(), false))
            .collect();
        let mut buf: Vec<Bucket> = Vec::new();
        for (i, &qi) in q.iter().enumerate().take(g.n) {
            self.check_deadline()?;
            if !warned && !(0.0..=1.0).contains(&qi) {
                self.warn(format!(
                    "quantile value should be between 0 and 1, got {}",
                    go_format_g(qi)
                ));
                warned = true;
            }
            for (gr, &slot) in groups.iter().zip(&slots) {
                buf.clear();
                buf.extend(
                    gr.buckets
                        .iter()
                        .filter_map(|(ub, vals)| vals[i].map(|count| Bucket { ub: *ub, count })),
                );
                if buf.is_empty() {
                    continue;
                }
                let (r, forced) = bucket_quantile(qi, &mut buf);
                if forced {
                    self.info(format!(
                        "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name \"{}\"",
                        gr.name
                    ));
                }
                col.set(slot, i, r)?;
            }
        }
        Ok(col.finish())
    }

    /// `histogram_fraction(lower, upper, buckets)` over classic buckets.
    pub(crate) fn eval_histogram_fraction(
        &mut self,
        c: &Call,
        g: &Grid,
    ) -> Result<Vec<Series>, EvalError> {
        let lo = self.eval_scalar(&c.args[0], g)?;
        let hi = self.eval_scalar(&c.args[1], g)?;
        let v = self.eval_vector(&c.args[2], g)?;
        let bg = self.bucket_groups(&v);
        let mut col = Collector::new(g.n);
        let slots: Vec<usize> = bg
            .labels
            .iter()
            .map(|l| col.slot(l.clone(), false))
            .collect();
        let mut buf: Vec<Vec<Bucket>> = vec![Vec::new(); bg.labels.len()];
        for i in 0..g.n {
            for b in &mut buf {
                b.clear();
            }
            for (s, m) in v.iter().zip(&bg.member) {
                if let (Some((id, ub)), Some(x)) = (m, s.vals[i]) {
                    buf[*id].push(Bucket { ub: *ub, count: x });
                }
            }
            for (id, b) in buf.iter_mut().enumerate() {
                if !b.is_empty() {
                    col.set(slots[id], i, bucket_fraction(lo[i], hi[i], b))?;
                }
            }
        }
        Ok(col.finish())
    }
}
