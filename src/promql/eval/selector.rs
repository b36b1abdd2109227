//! Storage access: instant selectors with lookback and staleness, range
//! windows over matrix selectors and subqueries.
//!
//! Every selector reads storage once for the whole grid and then slides over
//! the returned columns with two pointers.

use std::cmp::Ordering;
use std::sync::OnceLock;

use crate::model::{Matcher, is_stale_nan};
use crate::storage::{Querier, SelectHints, Series as StoredSeries, StorageError};

use super::super::ast::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};
use super::super::engine::EvalError;
use super::{Ctx, Grid, RangeData, Series, Val, strip_parens};

/// A range-vector argument prepared for windowing: the samples, the window
/// length, and for every step of the grid the window's (inclusive) end.
pub(crate) struct RangeArg {
    pub data: Vec<RangeData>,
    /// Window length (ms); windows are `(end - range, end]`.
    pub range: i64,
    /// Window end per step.
    pub ends: Vec<i64>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn select(
        &mut self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<StoredSeries>, EvalError> {
        let series = parallel_select(self.q, &SelectHints::range(min_t, max_t), matchers)?;
        self.add_series(series.len())?;
        self.add_samples(series.iter().map(|s| s.timestamps.len()).sum())?;
        Ok(series)
    }

    /// Evaluates an instant selector over `g`. With `want_ts` the values are
    /// the sample timestamps in seconds (for `timestamp()`).
    pub(crate) fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        g: &Grid,
        want_ts: bool,
    ) -> Result<Vec<Series>, EvalError> {
        if g.n == 0 {
            return Ok(Vec::new());
        }
        if let Some(at) = &vs.at {
            let t = self.at_time(at);
            let one = Grid::new(t, t, 1);
            let mut out = self.vector_selector_grid(vs, &one, want_ts)?;
            for s in &mut out {
                let v = s.vals[0];
                s.vals = vec![v; g.n];
            }
            return Ok(out);
        }
        self.vector_selector_grid(vs, g, want_ts)
    }

    fn vector_selector_grid(
        &mut self,
        vs: &VectorSelector,
        g: &Grid,
        want_ts: bool,
    ) -> Result<Vec<Series>, EvalError> {
        let lookback = self.opts.lookback_delta_ms;
        let first = g.start - vs.offset;
        let last = g.end - vs.offset;
        // `smoothed` interpolates towards the next sample, up to one
        // lookback ahead.
        let ahead = if vs.smoothed { lookback } else { 0 };
        let stored = self.select(&vs.matchers, first - lookback + 1, last + ahead)?;
        let mut out = Vec::with_capacity(stored.len());
        for s in stored {
            self.check_deadline()?;
            if vs.smoothed {
                let vals = smoothed_points(&s.timestamps, &s.values, g, vs.offset, lookback);
                if vals.iter().any(Option::is_some) {
                    self.add_samples(g.n)?;
                    out.push(Series {
                        labels: s.labels,
                        drop_name: false,
                        vals,
                    });
                }
                continue;
            }
            let mut vals = vec![None; g.n];
            let mut j = 0usize; // number of samples with ts <= current t
            let mut any = false;
            for (i, slot) in vals.iter_mut().enumerate() {
                let t = g.t(i) - vs.offset;
                while j < s.timestamps.len() && s.timestamps[j] <= t {
                    j += 1;
                }
                if j == 0 {
                    continue;
                }
                let ts = s.timestamps[j - 1];
                let v = s.values[j - 1];
                if ts > t - lookback && !is_stale_nan(v) {
                    *slot = Some(if want_ts { ts as f64 / 1000.0 } else { v });
                    any = true;
                }
            }
            if any {
                // Dense per-step columns are what the query holds in memory.
                self.add_samples(g.n)?;
                out.push(Series {
                    labels: s.labels,
                    drop_name: false,
                    vals,
                });
            }
        }
        Ok(out)
    }

    fn load_range(
        &mut self,
        ms: &MatrixSelector,
        min_end: i64,
        max_end: i64,
    ) -> Result<Vec<RangeData>, EvalError> {
        let vs = &ms.selector;
        let stored = self.select(&vs.matchers, min_end - ms.range + 1, max_end)?;
        Ok(stored
            .into_iter()
            .map(|s| {
                // Most series hold no stale marker: keep their columns as
                // they are instead of copying.
                if !s.values.iter().any(|x| is_stale_nan(*x)) {
                    return RangeData {
                        labels: s.labels,
                        drop_name: false,
                        ts: s.timestamps,
                        vs: s.values,
                    };
                }
                let (mut ts, mut v) = (
                    Vec::with_capacity(s.timestamps.len()),
                    Vec::with_capacity(s.values.len()),
                );
                for (t, x) in s.timestamps.into_iter().zip(s.values) {
                    if !is_stale_nan(x) {
                        ts.push(t);
                        v.push(x);
                    }
                }
                RangeData {
                    labels: s.labels,
                    drop_name: false,
                    ts,
                    vs: v,
                }
            })
            .collect())
    }

    /// A matrix selector evaluated at `t` (an instant query of `x[5m]`).
    pub(crate) fn matrix_at(
        &mut self,
        ms: &MatrixSelector,
        t: i64,
    ) -> Result<Vec<RangeData>, EvalError> {
        let t = ms
            .selector
            .at
            .as_ref()
            .map(|a| self.at_time(a))
            .unwrap_or(t);
        let end = t - ms.selector.offset;
        let data = self.load_range(ms, end, end)?;
        Ok(data
            .into_iter()
            .map(|mut r| {
                let a = r.ts.partition_point(|&x| x <= end - ms.range);
                let b = r.ts.partition_point(|&x| x <= end);
                r.ts = r.ts[a..b].to_vec();
                r.vs = r.vs[a..b].to_vec();
                r
            })
            .filter(|r| !r.ts.is_empty())
            .collect())
    }

    /// A subquery evaluated at `t` (an instant query of `x[5m:1m]`).
    pub(crate) fn subquery_at(
        &mut self,
        sq: &SubqueryExpr,
        t: i64,
    ) -> Result<Vec<RangeData>, EvalError> {
        let g = Grid::new(t, t, 1);
        let arg = self.subquery_arg(sq, &g)?;
        let end = arg.ends[0];
        Ok(arg
            .data
            .into_iter()
            .map(|mut r| {
                let a = r.ts.partition_point(|&x| x <= end - arg.range);
                let b = r.ts.partition_point(|&x| x <= end);
                r.ts = r.ts[a..b].to_vec();
                r.vs = r.vs[a..b].to_vec();
                r
            })
            .filter(|r| !r.ts.is_empty())
            .collect())
    }

    /// Prepares a range-vector function argument (a matrix selector or a
    /// subquery, possibly parenthesised) for the grid `g`.
    pub(crate) fn range_arg(&mut self, e: &Expr, g: &Grid) -> Result<RangeArg, EvalError> {
        match strip_parens(e) {
            Expr::MatrixSelector(ms) => {
                let vs = &ms.selector;
                let ends: Vec<i64> = match &vs.at {
                    Some(at) => vec![self.at_time(at) - vs.offset; g.n],
                    None => (0..g.n).map(|i| g.t(i) - vs.offset).collect(),
                };
                if ends.is_empty() {
                    return Ok(RangeArg {
                        data: Vec::new(),
                        range: ms.range,
                        ends,
                    });
                }
                // `anchored` also needs the last sample before each window
                // (up to one lookback earlier).
                // `smoothed` also looks one lookback past each window's end.
                let lookback = self.opts.lookback_delta_ms;
                let extra = if vs.anchored || vs.smoothed {
                    lookback
                } else {
                    0
                };
                let ahead = if vs.smoothed { lookback } else { 0 };
                let data = self.load_range(ms, ends[0] - extra, ends[ends.len() - 1] + ahead)?;
                Ok(RangeArg {
                    data,
                    range: ms.range,
                    ends,
                })
            }
            Expr::Subquery(sq) => self.subquery_arg(sq, g),
            other => Err(EvalError::BadData(format!(
                "expected type range vector in call, got {}",
                match other {
                    Expr::NumberLiteral(_) => "scalar",
                    Expr::StringLiteral(_) => "string",
                    _ => "instant vector",
                }
            ))),
        }
    }

    fn subquery_arg(&mut self, sq: &SubqueryExpr, g: &Grid) -> Result<RangeArg, EvalError> {
        let (outer_start, outer_end, pinned) = match &sq.at {
            Some(at) => {
                let t = self.at_time(at);
                (t, t, true)
            }
            None => (g.start, g.end, false),
        };
        let step = sq
            .step
            .filter(|s| *s > 0)
            .unwrap_or(self.opts.default_subquery_step_ms);
        let lo = outer_start - sq.offset - sq.range;
        // First step-aligned timestamp strictly after `lo` (Go's truncating
        // division, as Prometheus aligns subquery steps to absolute time).
        let mut s = step * (lo / step);
        if s <= lo {
            s += step;
        }
        let inner = Grid::new(s, outer_end - sq.offset, step);
        let data = if inner.n == 0 {
            Vec::new()
        } else {
            match self.eval(&sq.expr, &inner)? {
                Val::Vector(vs) => {
                    let mut out = Vec::with_capacity(vs.len());
                    let mut points = 0;
                    for s in vs {
                        let mut ts = Vec::new();
                        let mut v = Vec::new();
                        for (i, x) in s.vals.iter().enumerate() {
                            if let Some(x) = x {
                                ts.push(inner.t(i));
                                v.push(*x);
                            }
                        }
                        points += ts.len();
                        out.push(RangeData {
                            labels: s.labels,
                            drop_name: s.drop_name,
                            ts,
                            vs: v,
                        });
                    }
                    self.add_samples(points)?;
                    out
                }
                other => {
                    return Err(EvalError::BadData(format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        other.type_name()
                    )));
                }
            }
        };
        let ends: Vec<i64> = if pinned {
            vec![outer_start - sq.offset; g.n]
        } else {
            (0..g.n).map(|i| g.t(i) - sq.offset).collect()
        };
        Ok(RangeArg {
            data,
            range: sq.range,
            ends,
        })
    }
}

/// Shortest time span (ms) worth a thread of its own when a select is
/// split: below about an hour of data per slice the thread start-up and
/// merge cost more than they save.
const MIN_SLICE_MS: i64 = 3_600_000;

/// Threads a select may use: the machine's parallelism, at most 4.
pub(crate) fn select_threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4)
    })
}

/// `q.select` over `[hints.min_t, hints.max_t]`, with long ranges split into disjoint
/// time slices decoded on parallel threads and joined back per series.
///
/// Guarantees: the result is what one `select` over the whole range
/// returns (series sorted by labels, samples in time order, each sample
/// once, series without samples left out), because the slices are
/// disjoint, consecutive and cover the range. Each slice is a consistent
/// view on its own; samples appended while a split select runs may show up
/// in a later slice and not in an earlier one, as with any read racing a
/// write.
pub(crate) fn parallel_select(
    q: &dyn Querier,
    hints: &SelectHints,
    matchers: &[Matcher],
) -> Result<Vec<StoredSeries>, StorageError> {
    let (min_t, max_t) = (hints.min_t, hints.max_t);
    let span = max_t.saturating_sub(min_t);
    let n = select_threads().min((span / MIN_SLICE_MS).max(1) as usize);
    if n < 2 || hints.labels_only {
        return q.select(hints, matchers);
    }
    let slice = |lo: i64, hi: i64| SelectHints {
        min_t: lo,
        max_t: hi,
        ..hints.clone()
    };
    // Slice k covers [bounds[k], bounds[k + 1] - 1]; the last ends at max_t.
    let width = span / n as i64;
    let bounds: Vec<i64> = (0..n as i64)
        .map(|k| min_t + k * width)
        .chain(std::iter::once(max_t.saturating_add(1)))
        .collect();
    let parts: Vec<Result<Vec<StoredSeries>, StorageError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = bounds
            .windows(2)
            .skip(1)
            .map(|b| {
                let (lo, hi) = (b[0], b[1] - 1);
                let h = slice(lo, hi);
                sc.spawn(move || q.select(&h, matchers))
            })
            .collect();
        let first = q.select(&slice(bounds[0], bounds[1] - 1), matchers);
        std::iter::once(first)
            .chain(handles.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(StorageError::Other("select thread panicked".into())))
            }))
            .collect()
    });
    let mut merged: Option<Vec<StoredSeries>> = None;
    for part in parts {
        let part = part?;
        merged = Some(match merged {
            None => part,
            Some(m) => join_in_time(m, part),
        });
    }
    Ok(merged.unwrap_or_default())
}

/// Joins two label-sorted series lists whose samples lie in consecutive
/// time ranges (`early` before `late`): series present in both get the
/// late samples appended.
fn join_in_time(early: Vec<StoredSeries>, late: Vec<StoredSeries>) -> Vec<StoredSeries> {
    if late.is_empty() {
        return early;
    }
    if early.is_empty() {
        return late;
    }
    let mut out = Vec::with_capacity(early.len().max(late.len()));
    let mut a = early.into_iter().peekable();
    let mut b = late.into_iter().peekable();
    loop {
        let ord = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.labels.cmp(&y.labels),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        match ord {
            Ordering::Less => out.extend(a.next()),
            Ordering::Greater => out.extend(b.next()),
            Ordering::Equal => {
                if let (Some(mut x), Some(y)) = (a.next(), b.next()) {
                    x.timestamps.extend_from_slice(&y.timestamps);
                    x.values.extend_from_slice(&y.values);
                    out.push(x);
                }
            }
        }
    }
    out
}

/// Values of a `smoothed` instant selector: at each step the series is
/// linearly interpolated between the last sample at or before the time and
/// the next one after it (each within one lookback); with only an earlier
/// sample its value is held. Stale markers are skipped.
fn smoothed_points(
    ts: &[i64],
    vs: &[f64],
    g: &Grid,
    offset: i64,
    lookback: i64,
) -> Vec<Option<f64>> {
    let (ts, vs): (Vec<i64>, Vec<f64>) = ts
        .iter()
        .zip(vs)
        .filter(|(_, v)| !is_stale_nan(**v))
        .map(|(t, v)| (*t, *v))
        .unzip();
    (0..g.n)
        .map(|i| {
            let t = g.t(i) - offset;
            let j = ts.partition_point(|&x| x <= t);
            let prev = (j > 0 && ts[j - 1] > t - lookback).then(|| j - 1)?;
            if ts[prev] == t {
                return Some(vs[prev]);
            }
            match (j < ts.len() && ts[j] < t + lookback).then_some(j) {
                Some(next) => {
                    let (t0, t1) = (ts[prev], ts[next]);
                    Some(vs[prev] + (vs[next] - vs[prev]) * (t - t0) as f64 / (t1 - t0) as f64)
                }
                None => Some(vs[prev]),
            }
        })
        .collect()
}

/// Window bounds `[a, b)` (indices into `ts`) for every step: samples with
/// `end - range < t <= end`. `ends` must be non-decreasing.
pub(crate) fn windows(ts: &[i64], ends: &[i64], range: i64) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(ends.len());
    let (mut a, mut b) = (0usize, 0usize);
    for &end in ends {
        while b < ts.len() && ts[b] <= end {
            b += 1;
        }
        while a < b && ts[a] <= end - range {
            a += 1;
        }
        out.push((a, b));
    }
    out
}
