//! The column path of `histogram_quantile`:
//! `histogram_quantile(q, rate(x_bucket[w]))`,
//! `histogram_quantile(q, sum by (le, ...) (rate(x_bucket[w])))` (also with
//! `increase`), `histogram_quantile(q, x_bucket)` and
//! `histogram_quantile(q, sum by (le, ...) (x_bucket))` read histogram-typed series through
//! [`Querier::select_histograms`](crate::storage::Querier::select_histograms)
//! as whole columns, and classic float `le` series through `select` with
//! `skip_histogram_views`. Window bounds are computed once per histogram
//! series (all its buckets share timestamps) instead of once per `le` series,
//! and no per-bucket label sets are built or hashed.
//!
//! Results are identical to the generic path: the same rate function runs on
//! the same samples, sums run in the same order (sorted by series labels)
//! with the same compensated summation, and the quantile core is shared.

use std::collections::HashMap;

use crate::model::{Labels, METRIC_NAME, MatchOp, is_stale_nan};
use crate::storage::SelectHints;

use super::super::ast::{AggregateOp, Call, Expr, VectorSelector};
use super::super::engine::EvalError;
use super::aggregate::{Acc, accumulate, finish};
use super::histogram::{QuantileGroup, parse_le};
use super::rollup::{RollupFn, Window, extrapolated_rate};
use super::selector::windows;
use super::stream::{BucketRead, SummedBucket};
use super::{Ctx, Grid, Series, drop_name, strip_parens};

/// One bucket source: base labels (the `_bucket` labels without `le`), bound
/// and its rate per step.
struct BucketRates {
    base: Labels,
    ub: f64,
    vals: Vec<Option<f64>>,
}

impl<'a> Ctx<'a> {
    /// Returns `None` when the call does not have one of the supported shapes
    /// (or a histogram's bounds change inside the range); the caller then
    /// takes the generic path.
    pub(crate) fn histogram_quantile_fast(
        &mut self,
        c: &Call,
        q: &[f64],
        g: &Grid,
    ) -> Result<Option<Vec<Series>>, EvalError> {
        if !self.opts.histogram_fast_path || c.args.len() != 2 {
            return Ok(None);
        }
        let is_rate_call = |e: &Expr| matches!(e, Expr::Call(rc) if (rc.func == "rate" || rc.func == "increase") && rc.args.len() == 1);
        let is_source = |e: &Expr| is_rate_call(e) || matches!(e, Expr::VectorSelector(_));
        let (inner, by): (&Expr, Option<&[String]>) = match strip_parens(&c.args[1]) {
            e if is_source(e) => (e, None),
            Expr::Aggregate(a)
                if a.op == AggregateOp::Sum
                    && !a.without
                    && a.param.is_none()
                    && a.grouping.iter().any(|l| l == "le")
                    && is_source(strip_parens(&a.expr)) =>
            {
                (strip_parens(&a.expr), Some(&a.grouping))
            }
            _ => return Ok(None),
        };
        // The bucket source: `rate`/`increase` over a range, or the plain
        // cumulative counts (`histogram_quantile(0.9, x_bucket)`).
        let (vs, rate): (&VectorSelector, Option<(&Call, i64)>) = match inner {
            Expr::VectorSelector(vs) if !vs.smoothed && !vs.anchored => (vs, None),
            Expr::Call(rc) => match strip_parens(&rc.args[0]) {
                Expr::MatrixSelector(ms) if !ms.selector.anchored && !ms.selector.smoothed => {
                    (&ms.selector, Some((rc, ms.range)))
                }
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        let named_bucket = vs.matchers.iter().any(|m| {
            m.name == METRIC_NAME && m.op == MatchOp::Equal && m.value.ends_with("_bucket")
        });
        if !named_bucket || g.n == 0 {
            return Ok(None);
        }
        // Reference time per step: window end for rates, lookup time for
        // plain selectors.
        let ends: Vec<i64> = match &vs.at {
            Some(at) => vec![self.at_time(at) - vs.offset; g.n],
            None => (0..g.n).map(|i| g.t(i) - vs.offset).collect(),
        };
        let lookback = self.opts.lookback_delta_ms;
        let reach = rate.map_or(lookback, |(_, range)| range);
        let hints = SelectHints {
            min_t: ends[0] - reach + 1,
            max_t: ends[ends.len() - 1],
            labels_only: false,
            skip_histogram_views: true,
        };
        let hists = self.q.select_histograms(&hints, &vs.matchers)?;
        {
            let mut seen: Vec<&Labels> = hists.iter().map(|h| &h.labels).collect();
            seen.sort();
            if seen.windows(2).any(|w| w[0] == w[1]) {
                // Bounds changed inside the range: one label set comes back
                // as several runs; the generic path handles that.
                return Ok(None);
            }
        }
        if let (true, Some(by), Some((rc, range))) =
            (self.opts.stream_aggregations && hists.is_empty(), by, rate)
        {
            // Classic buckets only: stream them into the per-(group, bound)
            // sums instead of materialising every bucket series and rate.
            let keep: Vec<&String> = by.iter().filter(|l| *l != "le").collect();
            let f = if rc.func == "rate" {
                RollupFn::Rate
            } else {
                RollupFn::Increase
            };
            let read = BucketRead {
                matchers: &vs.matchers,
                hints: &hints,
                ends: &ends,
                range,
                f,
            };
            let summed = self.histogram_sums_streamed(&read, &keep, g)?;
            return self.quantiles_of_sums(q, &summed, g).map(Some);
        }
        let classic = super::selector::parallel_select(self.q, &hints, &vs.matchers)?;
        self.add_series(classic.len() + hists.len())?;
        self.add_samples(
            classic.iter().map(|s| s.timestamps.len()).sum::<usize>()
                + hists
                    .iter()
                    .map(|h| h.timestamps.len() * (h.buckets.len() + 2))
                    .sum::<usize>(),
        )?;
        // Rate of one column (stale markers already removed).
        let rate_of = |ts: &[i64], v: &[f64], ws: &[(usize, usize)]| -> Vec<Option<f64>> {
            let Some((rc, range)) = rate else {
                return Vec::new();
            };
            ws.iter()
                .enumerate()
                .map(|(i, &(a, b))| {
                    if b - a < 2 {
                        return None;
                    }
                    let w = Window {
                        ts: &ts[a..b],
                        vs: &v[a..b],
                        range_start: ends[i] - range,
                        range_end: ends[i],
                        range,
                        t: g.t(i),
                    };
                    extrapolated_rate(&w, true, true, rc.func == "rate")
                })
                .collect()
        };
        // Index (+1) of the sample visible at each step's reference time,
        // 0 when none is (lookback, staleness judged on `stale_col`).
        let visible = |ts: &[i64], stale_col: &[f64]| -> Vec<usize> {
            let mut j = 0;
            ends.iter()
                .map(|&rt| {
                    while j < ts.len() && ts[j] <= rt {
                        j += 1;
                    }
                    if j > 0 && ts[j - 1] > rt - lookback && !is_stale_nan(stale_col[j - 1]) {
                        j
                    } else {
                        0
                    }
                })
                .collect()
        };
        let pick = |vis: &[usize], col: &[f64]| -> Vec<Option<f64>> {
            vis.iter().map(|&j| (j > 0).then(|| col[j - 1])).collect()
        };
        let mut rates: Vec<BucketRates> = Vec::new();
        for s in classic {
            self.check_deadline()?;
            let le = s.labels.get("le").unwrap_or("").to_string();
            let Some(ub) = parse_le(&le) else {
                let name = s.labels.get(METRIC_NAME).unwrap_or("").to_string();
                self.warn(format!(
                    "bucket label \"le\" is missing or has a malformed value of \"{le}\" for metric name \"{name}\""
                ));
                continue;
            };
            let vals = if rate.is_some() {
                let (ts, v): (Vec<i64>, Vec<f64>) = s
                    .timestamps
                    .iter()
                    .zip(&s.values)
                    .filter(|(_, x)| !is_stale_nan(**x))
                    .map(|(t, x)| (*t, *x))
                    .unzip();
                let ws = windows(&ts, &ends, reach);
                rate_of(&ts, &v, &ws)
            } else {
                pick(&visible(&s.timestamps, &s.values), &s.values)
            };
            rates.push(BucketRates {
                base: s.labels.drop_names(&["le"]),
                ub,
                vals,
            });
        }
        for h in hists {
            self.check_deadline()?;
            let bounds = h
                .upper_bounds
                .iter()
                .copied()
                .chain(std::iter::once(f64::INFINITY));
            if rate.is_some() {
                // A stale marker covers the whole sample (all columns).
                let keep: Vec<usize> = (0..h.timestamps.len())
                    .filter(|&j| !is_stale_nan(h.count[j]))
                    .collect();
                let ts: Vec<i64> = keep.iter().map(|&j| h.timestamps[j]).collect();
                let ws = windows(&ts, &ends, reach);
                for (ub, column) in bounds.zip(&h.buckets) {
                    let v: Vec<f64> = keep.iter().map(|&j| column[j]).collect();
                    rates.push(BucketRates {
                        base: h.labels.clone(),
                        ub,
                        vals: rate_of(&ts, &v, &ws),
                    });
                }
            } else {
                let vis = visible(&h.timestamps, &h.count);
                for (ub, column) in bounds.zip(&h.buckets) {
                    rates.push(BucketRates {
                        base: h.labels.clone(),
                        ub,
                        vals: pick(&vis, column),
                    });
                }
            }
        }
        // The generic path sees series in label order (le included); within
        // one base label set buckets keep their bound order.
        rates.sort_by(|a, b| a.base.cmp(&b.base));
        rates.retain(|r| r.vals.iter().any(Option::is_some));
        let out = match by {
            None => {
                let mut index: HashMap<&Labels, usize> = HashMap::new();
                let mut groups: Vec<QuantileGroup> = Vec::new();
                for r in &rates {
                    let id = *index.entry(&r.base).or_insert_with(|| {
                        groups.push(QuantileGroup {
                            labels: drop_name(&r.base),
                            name: r.base.get(METRIC_NAME).unwrap_or("").to_string(),
                            buckets: Vec::new(),
                        });
                        groups.len() - 1
                    });
                    groups[id].buckets.push((r.ub, &r.vals));
                }
                self.quantiles_of_groups(q, &groups, g)?
            }
            Some(by) => {
                // sum by (le, L...): accumulate per (L group, bound) in input
                // order with the aggregation's own summation.
                let keep: Vec<&String> = by.iter().filter(|l| *l != "le").collect();
                let mut index: HashMap<(Labels, u64), usize> = HashMap::new();
                let mut sums: Vec<(Labels, f64, Vec<Acc>)> = Vec::new();
                for r in &rates {
                    let key = r.base.keep(&keep);
                    let id = *index
                        .entry((key.clone(), r.ub.to_bits()))
                        .or_insert_with(|| {
                            sums.push((key, r.ub, vec![Acc::default(); g.n]));
                            sums.len() - 1
                        });
                    for (acc, v) in sums[id].2.iter_mut().zip(&r.vals) {
                        if let Some(v) = v {
                            accumulate(AggregateOp::Sum, acc, *v);
                        }
                    }
                }
                let summed: Vec<SummedBucket> = sums
                    .into_iter()
                    .map(|(k, ub, accs)| {
                        let vals = accs
                            .iter()
                            .map(|a| a.seen.then(|| finish(AggregateOp::Sum, a)))
                            .collect();
                        (k, ub, vals)
                    })
                    .collect();
                self.quantiles_of_sums(q, &summed, g)?
            }
        };
        Ok(Some(out))
    }

    /// Quantiles of summed buckets, grouped by their labels in order of
    /// first appearance.
    fn quantiles_of_sums(
        &mut self,
        q: &[f64],
        summed: &[SummedBucket],
        g: &Grid,
    ) -> Result<Vec<Series>, EvalError> {
        let mut index: HashMap<&Labels, usize> = HashMap::new();
        let mut groups: Vec<QuantileGroup> = Vec::new();
        for (k, ub, vals) in summed {
            let id = *index.entry(k).or_insert_with(|| {
                groups.push(QuantileGroup {
                    labels: drop_name(k),
                    name: k.get(METRIC_NAME).unwrap_or("").to_string(),
                    buckets: Vec::new(),
                });
                groups.len() - 1
            });
            groups[id].buckets.push((*ub, vals));
        }
        self.quantiles_of_groups(q, &groups, g)
    }
}
